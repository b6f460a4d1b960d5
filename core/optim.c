/*
 * SGD (momentum, Nesterov), Adam and AdamW over the flat parameter arena
 * (formulas in optim.h). Each update is one loop over flat arrays; weight
 * decay is selected per element through a mask built once from the layers'
 * parameter declarations.
 */
#include "optim.h"
#include "parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const cnn_optim_names[CNN_OPTIM_COUNT] = {"sgd", "adam", "adamw"};

cnn_optim *cnn_optim_create(cnn_net *net, const cnn_optim_config *cfg, cnn_error *e)
{
    cnn_optim *o = cnn_alloc(1, sizeof *o, "optimizer", e);
    if (!o) return NULL;
    o->cfg = *cfg;
    o->net = net;
    o->n = net->nparam_floats;
    o->m = cnn_alloc(o->n, sizeof(float), "optimizer moments", e);
    o->decay_mask = cnn_alloc(o->n, sizeof(float), "optimizer decay mask", e);
    if (cfg->type != CNN_OPTIM_SGD)
        o->v = cnn_alloc(o->n, sizeof(float), "optimizer moments", e);
    if (!o->m || !o->decay_mask || (cfg->type != CNN_OPTIM_SGD && !o->v)) {
        cnn_optim_free(o);
        return NULL;
    }
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            if (!p->trainable || !p->decay) continue;
            float *mask = o->decay_mask + (p->data - net->params);
            for (size_t i = 0; i < p->size; i++) mask[i] = 1.0f;
        }
    }
    return o;
}

void cnn_optim_free(cnn_optim *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o->decay_mask);
    free(o);
}

static void sgd_step(cnn_optim *o, float lr)
{
    float *w = o->net->params, *m = o->m;
    const float *g = o->net->grads, *mask = o->decay_mask;
    float mu = o->cfg.momentum, wd = o->cfg.weight_decay;
    size_t n = o->n;
    if (mu == 0.0f) {
        #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * mask[i] * w[i]);
        return;
    }
    /* PyTorch's first step sets the buffer to the gradient itself. */
    int first = o->step == 0, nesterov = o->cfg.nesterov;
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * mask[i] * w[i];
        float mi = first ? gi : mu * m[i] + gi;
        m[i] = mi;
        w[i] -= lr * (nesterov ? gi + mu * mi : mi);
    }
}

static void adam_step(cnn_optim *o, float lr)
{
    float *w = o->net->params, *m = o->m, *v = o->v;
    const float *g = o->net->grads, *mask = o->decay_mask;
    float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    float wd = o->cfg.weight_decay;
    int decoupled = o->cfg.type == CNN_OPTIM_ADAMW;
    double t = (double)(o->step + 1);
    float c1 = (float)(1.0 - pow(b1, t)), c2 = (float)(1.0 - pow(b2, t));
    float step = lr / c1, rc2 = 1.0f / sqrtf(c2);
    size_t n = o->n;
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) w[i] -= lr * wd * mask[i] * w[i];
        else gi += wd * mask[i] * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= step * m[i] / (sqrtf(v[i]) * rc2 + eps);
    }
}

void cnn_optim_step(cnn_optim *o, float lr)
{
    if (o->cfg.type == CNN_OPTIM_SGD) sgd_step(o, lr);
    else adam_step(o, lr);
    o->step++;
}
