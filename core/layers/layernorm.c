/*
 * layernorm: layer normalisation (Ba et al. 2016) of each sample over all
 * of its channels and positions (C, H, W), with a scale and shift per
 * channel. This is PyTorch's GroupNorm(1, C), which is what "LayerNorm over
 * C, H, W" means in modern ConvNets in practice (nn.LayerNorm([C, H, W])
 * would instead learn one scale per element):
 *
 *   mean, var = mean and biased variance of x[n] over its C*H*W values
 *   y[n][c] = (x[n][c] - mean) / sqrt(var + eps) * gamma[c] + beta[c]
 *
 * The statistics belong to the sample alone, so training and eval behave
 * the same and there are no running statistics.
 *
 * Option: eps > 0 and at most 1 (default 1e-5). Parameters gamma (ones)
 * and beta (zeros), per channel, trainable without weight decay.
 *
 * Sums are taken in double over values shifted by the sample's first value.
 * The state saved from forward to backward is each sample's mean and
 * 1/sqrt(var + eps) (2 floats per sample in l->saved); backward recomputes
 * x - mean from the input. Backward keeps per-sample, per-channel sums of
 * dy and dy*(x - mean) in l->work, [max_batch][2][C], and reduces them over
 * the samples for the parameter gradients, so samples run in parallel and
 * the result does not depend on the thread count.
 */
#include <math.h>
#include <stdio.h>
#include "layer.h"
#include "norm.h"
#include "parallel.h"

enum { LN_GAMMA, LN_BETA };

typedef struct ln_settings {
    float eps;
} ln_settings;

static cnn_status ln_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    ln_settings *s = l->settings;
    double eps;
    cnn_status st = cnn_opts_float(o, "eps", 1e-5, 0.0, 1.0, &eps, e);
    if (st != CNN_OK)
        return st;
    if (!(eps > 0.0)) {
        const cnn_opt *v = cnn_opts_find(o, "eps");
        return cnn_error_at(e, CNN_ERR_CONFIG, v ? v->line : 0, v ? v->col : 0,
                            "%s: eps must be a number above 0 and at most 1, got \"%s\"",
                            o->context ? o->context : "options",
                            v && v->text ? v->text : "?");
    }
    s->eps = (float)eps;
    return CNN_OK;
}

static cnn_status ln_infer(cnn_layer *l, cnn_error *e)
{
    const size_t c = l->in[0].c;
    (void)e;
    l->out = l->in[0];
    cnn_layer_param(l, "gamma", 1, &c, CNN_INIT_ONE, 0, 0, 1, 0);
    cnn_layer_param(l, "beta", 1, &c, CNN_INIT_ZERO, 0, 0, 1, 0);
    l->saved_per_sample = 2;                 /* mean, 1/sqrt(var + eps) */
    l->work_size = l->max_batch * 2 * c;     /* backward's per-channel sums */
    l->macs = cnn_shape_size(l->in[0]);
    return CNN_OK;
}

static void ln_forward(cnn_layer *l)
{
    const ln_settings *s = l->settings;
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    const size_t N = l->batch;
    const float *gamma = l->params[LN_GAMMA].data;   /* [C] */
    const float *beta = l->params[LN_BETA].data;     /* [C] */
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = l->x[0] + n * S;            /* [C][P] */
        float *y = l->y + n * S;                     /* [C][P] */
        float *saved = l->saved ? l->saved + n * 2 : NULL;   /* [2]: mean, inv;
                                                        none when inferring */
        const double shift = x[0];
        double s1 = 0, s2 = 0;
        for (size_t c = 0; c < C; c++)
            cnn_norm_sums(x + c * P, P, shift, &s1, &s2);
        const double d = s1 / (double)S;
        double var = s2 / (double)S - d * d;
        if (var < 0)
            var = 0;
        const float mean = (float)(shift + d);
        const float inv = (float)(1.0 / sqrt(var + s->eps));
        if (saved) {
            saved[0] = mean;
            saved[1] = inv;
        }
        for (size_t c = 0; c < C; c++) {
            const float a = gamma[c] * inv, b = beta[c];
            const float *xc = x + c * P;             /* [P] */
            float *yc = y + c * P;                   /* [P] */
            for (size_t p = 0; p < P; p++)
                yc[p] = (xc[p] - mean) * a + b;
        }
    }
}

/* With xhat = (x - mean) * inv and g = dy * gamma[c], over the sample's
 * M = C*H*W values:
 *   dx = inv * (g - mean(g) - xhat * mean(g * xhat))
 *   dgamma[c] += sum over n, p of dy * xhat,   dbeta[c] += sum of dy. */
static void ln_backward(cnn_layer *l)
{
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    const size_t N = l->batch;
    const float *gamma = l->params[LN_GAMMA].data;   /* [C] */
    float *dgamma = l->params[LN_GAMMA].grad;        /* [C] */
    float *dbeta = l->params[LN_BETA].grad;          /* [C] */
    if (!cnn_layer_param_grads(l)) dgamma = dbeta = NULL;
    float *sums = l->work;                           /* [batch][2][C] */
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = l->x[0] + n * S;            /* [C][P] */
        const float *dy = l->dy + n * S;             /* [C][P] */
        const float mean = l->saved[n * 2], inv = l->saved[n * 2 + 1];
        float *sdy = sums + n * 2 * C, *sdyx = sdy + C;   /* [C] each */
        double g1 = 0, g2 = 0;   /* sum(g), sum(g * (x - mean)) */
        for (size_t c = 0; c < C; c++) {
            double t1 = 0, t2 = 0;
            cnn_norm_dots(dy + c * P, x + c * P, P, mean, &t1, &t2);
            sdy[c] = (float)t1;
            sdyx[c] = (float)t2;
            g1 += gamma[c] * t1;
            g2 += gamma[c] * t2;
        }
        float *dxs = l->dx[0];
        if (!dxs)
            continue;
        /* dx = gamma[c]*inv*dy + B*(x - mean) + K */
        const float B = (float)(-(double)inv * inv * inv * g2 / (double)S);
        const float K = (float)(-(double)inv * g1 / (double)S);
        float *dx = dxs + n * S;                     /* [C][P] */
        for (size_t c = 0; c < C; c++) {
            const float A = gamma[c] * inv;
            const float *xc = x + c * P, *dyc = dy + c * P;   /* [P] */
            float *dxc = dx + c * P;                           /* [P] */
            for (size_t p = 0; p < P; p++)
                dxc[p] += A * dyc[p] + B * (xc[p] - mean) + K;
        }
    }
    for (size_t c = 0; c < C; c++) {
        double gg = 0, gb = 0;
        for (size_t n = 0; n < N; n++) {
            gb += sums[n * 2 * C + c];
            gg += (double)sums[n * 2 * C + C + c] * l->saved[n * 2 + 1];
        }
        if (dgamma)
            dgamma[c] += (float)gg;
        if (dbeta)
            dbeta[c] += (float)gb;
    }
}

static void ln_describe(const cnn_layer *l, char *buf, size_t n)
{
    const ln_settings *s = l->settings;
    snprintf(buf, n, "eps %g", (double)s->eps);
}

const cnn_layer_kind cnn_layer_layernorm = {
    .name = "layernorm",
    .summary = "layer normalisation per sample over C,H,W, scale and shift per channel",
    .settings_size = sizeof(ln_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = ln_parse,
    .infer = ln_infer,
    .forward = ln_forward,
    .backward = ln_backward,
    .describe = ln_describe,
};
