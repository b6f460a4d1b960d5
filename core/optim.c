/*
 * SGD (momentum, Nesterov), Adam and AdamW over the flat parameter arena,
 * the regularisers that act on gradients and weights (L1, clipping by global
 * norm, weight noise), and the learning-rate schedules (formulas in
 * optim.h). Each update is one pass over the flat arrays, tensor by tensor
 * (spans), with weight decay, L1 and the learning-rate multiplier as each
 * tensor's scalars: no per-element masks to read or to hold in memory.
 */
#include "optim.h"
#include "parallel.h"
#include "rng.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

const char *const cnn_optim_names[CNN_OPTIM_COUNT] = {"sgd", "adam", "adamw"};
const char *const cnn_schedule_names[CNN_SCHED_COUNT] = {
    "constant", "step", "multistep", "exponential", "cosine", "one_cycle", "plateau",
};

cnn_optim *cnn_optim_create(cnn_net *net, const cnn_optim_config *cfg, cnn_error *e)
{
    cnn_optim *o = cnn_alloc(1, sizeof *o, "optimizer", e);
    if (!o) return NULL;
    o->cfg = *cfg;
    o->net = net;
    o->n = net->nparam_floats;
    o->m = cnn_alloc(o->n, sizeof(float), "optimizer moments", e);
    size_t nspans = 0;
    for (size_t t = 0; t < net->nlayers; t++)
        for (size_t j = 0; j < net->layers[t].nparams; j++)
            nspans += net->layers[t].params[j].trainable;
    o->spans = cnn_alloc(nspans ? nspans : 1, sizeof *o->spans, "optimizer spans", e);
    if (cfg->type != CNN_OPTIM_SGD)
        o->v = cnn_alloc(o->n, sizeof(float), "optimizer moments", e);
    if (cfg->weight_noise > 0)
        o->saved = cnn_alloc(o->n, sizeof(float), "unperturbed weights", e);
    if (!o->m || !o->spans || (cfg->type != CNN_OPTIM_SGD && !o->v)
        || (cfg->weight_noise > 0 && !o->saved)) {
        cnn_optim_free(o);
        return NULL;
    }
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            if (!p->trainable) continue;
            /* a layer frozen now never decays, even if a later stage trains it */
            int decays = !l->frozen && (p->decay || cfg->decay_all);
            o->spans[o->nspans++] = (cnn_optim_span){(size_t)(p->data - net->params),
                                                     p->size, decays ? 1.0f : 0.0f, 1.0f};
        }
    }
    return o;
}

void cnn_optim_free(cnn_optim *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o->spans);
    free(o->saved);
    free(o);
}

void cnn_optim_set_scale(cnn_optim *o, const cnn_param *p, float scale)
{
    size_t start = (size_t)(p->data - o->net->params);
    for (size_t k = 0; k < o->nspans; k++)
        if (o->spans[k].start == start) o->spans[k].scale = scale;
}

/* The part [*a, *b) of span s that this thread updates: the flat arrays are
 * cut into one equal piece per thread (16-float aligned), the same every
 * step; empty when the span misses the piece. */
static void span_part(const cnn_optim *o, const cnn_optim_span *s, size_t *a, size_t *b)
{
    size_t parts = (size_t)omp_get_num_threads(), part = (size_t)omp_get_thread_num();
    size_t lo = o->n * part / parts / 16 * 16, hi = o->n * (part + 1) / parts / 16 * 16;
    if (part + 1 == parts) hi = o->n;
    *a = s->start > lo ? s->start : lo;
    *b = s->start + s->size < hi ? s->start + s->size : hi;
    if (*b < *a) *b = *a;
}

static void sgd_step(cnn_optim *o, float lr)
{
    float *w = o->net->params, *m = o->m;
    const float *g = o->net->grads;
    const float mu = o->cfg.momentum, wd = o->cfg.weight_decay;
    /* PyTorch's first step sets the buffer to the gradient itself. */
    const int first = o->step == 0, nesterov = o->cfg.nesterov;
    #pragma omp parallel if (o->n >= CNN_PARALLEL_MIN)
    for (size_t k = 0; k < o->nspans; k++) {
        const cnn_optim_span *s = &o->spans[k];
        const float dk = wd * s->decay, rate = lr * s->scale;
        size_t a, b;
        span_part(o, s, &a, &b);
        if (mu == 0.0f) {
            #pragma omp simd
            for (size_t i = a; i < b; i++)
                w[i] -= rate * (g[i] + dk * w[i]);
            continue;
        }
        #pragma omp simd
        for (size_t i = a; i < b; i++) {
            float gi = g[i] + dk * w[i];
            float mi = first ? gi : mu * m[i] + gi;
            m[i] = mi;
            w[i] -= rate * (nesterov ? gi + mu * mi : mi);
        }
    }
}

static void adam_step(cnn_optim *o, float lr)
{
    float *w = o->net->params, *m = o->m, *v = o->v;
    const float *g = o->net->grads;
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const float wd = o->cfg.weight_decay;
    const int decoupled = o->cfg.type == CNN_OPTIM_ADAMW;
    double t = (double)(o->step + 1);
    const float c1 = (float)(1.0 - pow(b1, t)), c2 = (float)(1.0 - pow(b2, t));
    const float step = lr / c1, rc2 = 1.0f / sqrtf(c2);
    #pragma omp parallel if (o->n >= CNN_PARALLEL_MIN)
    for (size_t k = 0; k < o->nspans; k++) {
        const cnn_optim_span *s = &o->spans[k];
        /* the same products, in the same order, as per-element factors gave */
        const float shrink = lr * s->scale * wd * s->decay, dk = wd * s->decay;
        const float rate = step * s->scale;
        size_t a, b;
        span_part(o, s, &a, &b);
        #pragma omp simd
        for (size_t i = a; i < b; i++) {
            float gi = g[i];
            if (decoupled) w[i] -= shrink * w[i];
            else gi += dk * w[i];
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            w[i] -= rate * m[i] / (sqrtf(v[i]) * rc2 + eps);
        }
    }
}

/* g += l1 * sign(w) where decay applies (sign(0) = 0, as torch.sign). */
static void add_l1(cnn_optim *o)
{
    const float *w = o->net->params;
    float *g = o->net->grads;
    #pragma omp parallel if (o->n >= CNN_PARALLEL_MIN)
    for (size_t k = 0; k < o->nspans; k++) {
        const float l1 = o->cfg.l1 * o->spans[k].decay;
        size_t a, b;
        span_part(o, &o->spans[k], &a, &b);
        #pragma omp simd
        for (size_t i = a; i < b; i++) {
            float sign = (float)(w[i] > 0.0f) - (float)(w[i] < 0.0f);
            g[i] += l1 * sign;
        }
    }
}

void cnn_optim_reset(cnn_optim *o)
{
    memset(o->m, 0, o->n * sizeof *o->m);
    if (o->v) memset(o->v, 0, o->n * sizeof *o->v);
    o->step = 0;
}

void cnn_optim_step(cnn_optim *o, float lr)
{
    if (o->cfg.l1 > 0) add_l1(o);
    if (o->cfg.clip_grad_norm > 0)
        o->grad_norm = cnn_optim_clip_grad_norm(o->net->grads, o->n, o->cfg.clip_grad_norm);
    if (o->cfg.type == CNN_OPTIM_SGD) sgd_step(o, lr);
    else adam_step(o, lr);
    o->step++;
}

/* Squares summed in double over 64 fixed chunks, then the chunks in order:
 * the same bits whatever the number of threads. */
#define NORM_CHUNKS 64

double cnn_optim_grad_norm(const float *g, size_t n)
{
    double part[NORM_CHUNKS] = {0};
    size_t len = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
    #pragma omp parallel for schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < NORM_CHUNKS; c++) {
        size_t lo = c * len < n ? c * len : n, hi = lo + len < n ? lo + len : n;
        double sum = 0;
        for (size_t i = lo; i < hi; i++) sum += (double)g[i] * g[i];
        part[c] = sum;
    }
    double total = 0;
    for (size_t c = 0; c < NORM_CHUNKS; c++) total += part[c];
    return sqrt(total);
}

double cnn_optim_clip_grad_norm(float *g, size_t n, float max_norm)
{
    double norm = cnn_optim_grad_norm(g, n);
    float coef = (float)((double)max_norm / (norm + 1e-6));
    if (!(coef < 1.0f)) return norm;
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) g[i] *= coef;
    return norm;
}

void cnn_optim_perturb(cnn_optim *o)
{
    float std = o->cfg.weight_noise;
    cnn_net *net = o->net;
    if (!(std > 0) || !o->saved) return;
    memcpy(o->saved, net->params, o->n * sizeof *o->saved);
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams && cnn_layer_param_grads(l); j++) {
            cnn_param *p = &l->params[j];
            if (!p->trainable || !p->decay) continue;
            for (size_t i = 0; i < p->size; i++) p->data[i] += std * cnn_rng_normal(&net->rng);
        }
    }
}

void cnn_optim_unperturb(cnn_optim *o)
{
    if (!(o->cfg.weight_noise > 0) || !o->saved) return;
    memcpy(o->net->params, o->saved, o->n * sizeof *o->saved);
}

/* ---- schedules ---------------------------------------------------------- */

/* Cosine annealing from a to b as pct goes from 0 to 1 (PyTorch's
 * OneCycleLR._annealing_cos). */
static double anneal_cos(double a, double b, double pct)
{
    return b + (a - b) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* OneCycleLR (three_phase=False): from lr/div up to lr over the first
 * pct_start of the steps, then down to lr/div/final_div. */
static double one_cycle(const cnn_schedule *s, double lr, double step, double total)
{
    double initial = lr / s->div_factor, low = initial / s->final_div_factor;
    double end1 = (double)s->pct_start * total - 1.0, end2 = total - 1.0;
    double start = 0, a = initial, b = lr, end = end1;
    if (step > end1) {
        start = end1;
        a = lr;
        b = low;
        end = end2;
    }
    double pct = end > start ? (step - start) / (end - start) : 1.0;
    if (pct > 1.0) pct = 1.0;
    return anneal_cos(a, b, pct);
}

double cnn_schedule_lr(const cnn_schedule *s, float lr, uint64_t step, size_t per_epoch,
                       size_t epochs)
{
    double base = lr;
    uint64_t epoch = per_epoch ? step / per_epoch : 0;
    switch (s->type) {
    case CNN_SCHED_STEP:
        return base * pow(s->gamma, (double)(epoch / s->step_epochs));
    case CNN_SCHED_MULTISTEP: {
        size_t passed = 0;
        while (passed < s->nmilestones && s->milestones[passed] <= epoch) passed++;
        return base * pow(s->gamma, (double)passed);
    }
    case CNN_SCHED_EXPONENTIAL:
        return base * pow(s->gamma, (double)epoch);
    case CNN_SCHED_COSINE: {
        uint64_t warm = (uint64_t)s->warmup_epochs * per_epoch;
        uint64_t total = (uint64_t)epochs * per_epoch;
        if (step < warm) return base * (double)(step + 1) / (double)warm;
        double frac = total > warm ? (double)(step - warm) / (double)(total - warm) : 1.0;
        if (frac > 1.0) frac = 1.0;
        return s->min_lr + (base - s->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
    }
    case CNN_SCHED_ONE_CYCLE:
        return one_cycle(s, base, (double)step, (double)epochs * (double)per_epoch);
    default:
        return base;
    }
}

void cnn_plateau_init(cnn_plateau *p, const cnn_schedule *s, float lr)
{
    p->lr = lr;
    p->best = s->maximize ? -INFINITY : INFINITY;
    p->bad_epochs = 0;
    p->cooldown = 0;
}

int cnn_plateau_step(cnn_plateau *p, const cnn_schedule *s, double metric)
{
    double t = s->threshold;
    int better = s->maximize ? metric > p->best * (1.0 + t) : metric < p->best * (1.0 - t);
    if (better) {
        p->best = metric;
        p->bad_epochs = 0;
    } else {
        p->bad_epochs++;
    }
    if (p->cooldown > 0) {
        p->cooldown--;
        p->bad_epochs = 0;
    }
    if (p->bad_epochs <= s->patience) return 0;
    p->cooldown = s->cooldown;
    p->bad_epochs = 0;
    double lower = p->lr * s->factor;
    if (lower < s->min_lr) lower = s->min_lr;
    if (p->lr - lower <= 1e-8) return 0;
    p->lr = lower;
    return 1;
}
