/*
 * batchnorm: batch normalisation (Ioffe & Szegedy 2015) per channel over
 * the batch and spatial positions (N, H, W), as PyTorch's BatchNorm2d; on a
 * (C,1,1) input (after dense) it is BatchNorm1d.
 *
 *   training: mean and biased variance of the batch normalise x;
 *             running = (1 - momentum) * running + momentum * batch, where
 *             the running variance takes the unbiased batch variance
 *   eval:     the running statistics normalise x
 *   y = gamma * (x - mean) / sqrt(var + eps) + beta
 *
 * Options: momentum in [0, 1] (default 0.1), eps > 0 (default 1e-5).
 * Parameters gamma (ones) and beta (zeros), trainable without weight decay;
 * buffers running_mean (zeros) and running_var (ones).
 *
 * Each pass touches a channel's data twice: statistics (sums of values
 * shifted by the channel's first value, for accuracy) then the output.
 * Backward recomputes x - mean from the input instead of keeping x-hat, so
 * the only state saved between forward and backward is the batch mean and
 * 1/sqrt(var + eps) per channel: 2C floats at the start of l->saved.
 *
 * Synchronised (l->sync set, data-parallel training): the statistics are
 * those of the whole batch over every process. Forward sums x - shift and
 * its square per channel, with the running mean as the shift (the same in
 * every process, which all update it from the same statistics), and adds
 * those sums and the sample count over the processes; backward does the
 * same with sum(dy) and sum(dy * (x - mean)) for the input gradient. gamma
 * and beta get this process's share of their gradients, as any parameter:
 * the trainer sums parameter gradients over the processes afterwards.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include "layer.h"
#include "norm.h"
#include "parallel.h"

enum { BN_GAMMA, BN_BETA, BN_MEAN, BN_VAR };

typedef struct bn_settings {
    float momentum, eps;
    double sync_count;   /* state, not a setting: samples per channel over every
                            process in the last synchronised forward */
} bn_settings;

static cnn_status bn_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    bn_settings *s = l->settings;
    double momentum, eps;
    cnn_status st = cnn_opts_float(o, "momentum", 0.1, 0.0, 1.0, &momentum, e);
    if (st != CNN_OK)
        return st;
    st = cnn_opts_float(o, "eps", 1e-5, 0.0, 1.0, &eps, e);
    if (st != CNN_OK)
        return st;
    if (!(eps > 0.0)) {
        const cnn_opt *v = cnn_opts_find(o, "eps");
        return cnn_error_at(e, CNN_ERR_CONFIG, v ? v->line : 0, v ? v->col : 0,
                            "%s: eps must be a number above 0 and at most 1, got \"%s\"",
                            o->context ? o->context : "options",
                            v && v->text ? v->text : "?");
    }
    s->momentum = (float)momentum;
    s->eps = (float)eps;
    return CNN_OK;
}

static cnn_status bn_infer(cnn_layer *l, cnn_error *e)
{
    const size_t c = l->in[0].c;
    const size_t mb = l->max_batch ? l->max_batch : 1;
    (void)e;
    l->out = l->in[0];
    cnn_layer_param(l, "gamma", 1, &c, CNN_INIT_ONE, 0, 0, 1, 0);
    cnn_layer_param(l, "beta", 1, &c, CNN_INIT_ZERO, 0, 0, 1, 0);
    cnn_layer_param(l, "running_mean", 1, &c, CNN_INIT_ZERO, 0, 0, 0, 0);
    cnn_layer_param(l, "running_var", 1, &c, CNN_INIT_ONE, 0, 0, 0, 0);
    l->saved_per_sample = (2 * c + mb - 1) / mb;   /* 2C floats in all */
    l->macs = cnn_shape_size(l->in[0]);
    return CNN_OK;
}

/* Training forward with synchronised statistics (see the top). */
static void bn_forward_sync(cnn_layer *l)
{
    bn_settings *s = l->settings;
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    const size_t N = l->batch;
    const float *gamma = l->params[BN_GAMMA].data;    /* [C] */
    const float *beta = l->params[BN_BETA].data;      /* [C] */
    float *rmean = l->params[BN_MEAN].data;           /* [C] */
    float *rvar = l->params[BN_VAR].data;             /* [C] */
    float *bmean = l->saved, *binv = l->saved + C;    /* [C] each */
    double *sums = l->sync->scratch;                  /* [2C + 1] */
    assert(l->sync->scratch_size >= 2 * C + 1 && "sync scratch holds a layer's sums");
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < C; c++) {
        double s1 = 0, s2 = 0;
        for (size_t n = 0; n < N; n++)
            cnn_norm_sums(l->x[0] + n * S + c * P, P, rmean[c], &s1, &s2);
        sums[c] = s1;
        sums[C + c] = s2;
    }
    sums[2 * C] = (double)(N * P);
    l->sync->sum(l->sync, sums, 2 * C + 1);
    const double M = sums[2 * C];
    s->sync_count = M;
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < C; c++) {
        double d = M > 0 ? sums[c] / M : 0;
        double var = M > 0 ? sums[C + c] / M - d * d : 0;
        if (var < 0)
            var = 0;
        double unbiased = M > 1 ? var * M / (M - 1) : var;
        const float mean = (float)(rmean[c] + d);
        const float inv = (float)(1.0 / sqrt(var + s->eps));
        bmean[c] = mean;
        binv[c] = inv;
        rmean[c] = (1.0f - s->momentum) * rmean[c] + s->momentum * mean;
        rvar[c] = (1.0f - s->momentum) * rvar[c] + s->momentum * (float)unbiased;
        const float a = gamma[c] * inv, b = beta[c];
        for (size_t n = 0; n < N; n++) {
            const float *x = l->x[0] + n * S + c * P;   /* [P] */
            float *y = l->y + n * S + c * P;            /* [P] */
            for (size_t p = 0; p < P; p++)
                y[p] = (x[p] - mean) * a + b;
        }
    }
}

static void bn_forward(cnn_layer *l)
{
    const bn_settings *s = l->settings;
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    const size_t N = l->batch, M = N * P;
    const float *gamma = l->params[BN_GAMMA].data;    /* [C] */
    const float *beta = l->params[BN_BETA].data;      /* [C] */
    float *rmean = l->params[BN_MEAN].data;           /* [C] */
    float *rvar = l->params[BN_VAR].data;             /* [C] */
    float *bmean = l->saved, *binv = l->saved + C;    /* [C] each */
    const int batch_stats = l->training && !l->frozen;   /* frozen: as in eval */
    if (batch_stats && l->sync) {
        bn_forward_sync(l);
        return;
    }
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < C; c++) {
        float mean, inv;
        if (batch_stats) {
            const float shift = l->x[0][c * P];
            double s1 = 0, s2 = 0;
            for (size_t n = 0; n < N; n++)
                cnn_norm_sums(l->x[0] + n * S + c * P, P, shift, &s1, &s2);
            double d = s1 / (double)M;
            double var = s2 / (double)M - d * d;
            if (var < 0)
                var = 0;
            double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
            mean = (float)(shift + d);
            inv = (float)(1.0 / sqrt(var + s->eps));
            bmean[c] = mean;
            binv[c] = inv;
            rmean[c] = (1.0f - s->momentum) * rmean[c] + s->momentum * mean;
            rvar[c] = (1.0f - s->momentum) * rvar[c]
                      + s->momentum * (float)unbiased;
        } else {
            mean = rmean[c];
            inv = 1.0f / sqrtf(rvar[c] + s->eps);
        }
        const float a = gamma[c] * inv, b = beta[c];
        for (size_t n = 0; n < N; n++) {
            const float *x = l->x[0] + n * S + c * P;   /* [P] */
            float *y = l->y + n * S + c * P;            /* [P] */
            for (size_t p = 0; p < P; p++)
                y[p] = (x[p] - mean) * a + b;
        }
    }
}

void cnn_batchnorm_affine(const cnn_layer *l, float *scale, float *shift)
{
    const bn_settings *s = l->settings;
    const float *gamma = l->params[BN_GAMMA].data, *beta = l->params[BN_BETA].data;
    const float *rmean = l->params[BN_MEAN].data, *rvar = l->params[BN_VAR].data;
    for (size_t c = 0; c < l->out.c; c++) {
        /* as bn_forward's evaluation branch computes it */
        const float inv = 1.0f / sqrtf(rvar[c] + s->eps);
        scale[c] = gamma[c] * inv;
        shift[c] = beta[c] - rmean[c] * scale[c];
    }
}

/* Training backward with synchronised statistics: the input gradient of
 * bn_backward below with the sums and the count of the whole batch. */
/* dx = A*dy + B*(x - mean) + K over channel c of every sample: written
 * where the graph asks (l->dx_assign), else added. */
static void channel_dx(const cnn_layer *l, size_t c, float A, float B, float K, float mean,
                       float *dxs)
{
    const size_t P = l->out.h * l->out.w, S = l->out.c * P;
    for (size_t n = 0; n < l->batch; n++) {
        const float *dy = l->dy + n * S + c * P;    /* [P] */
        const float *x = l->x[0] + n * S + c * P;   /* [P] */
        float *dx = dxs + n * S + c * P;            /* [P] */
        if (l->dx_assign & 1)
            for (size_t p = 0; p < P; p++)
                dx[p] = A * dy[p] + B * (x[p] - mean) + K;
        else
            for (size_t p = 0; p < P; p++)
                dx[p] += A * dy[p] + B * (x[p] - mean) + K;
    }
}

static void bn_backward_sync(cnn_layer *l)
{
    const bn_settings *s = l->settings;
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    const size_t N = l->batch;
    const double M = s->sync_count;
    const float *gamma = l->params[BN_GAMMA].data;    /* [C] */
    float *dgamma = l->params[BN_GAMMA].grad;         /* [C] */
    float *dbeta = l->params[BN_BETA].grad;           /* [C] */
    float *dxs = l->dx[0];                            /* [batch][C][P] */
    const float *bmean = l->saved, *binv = l->saved + C;   /* [C] each */
    double *sums = l->sync->scratch;                  /* [2C]: sum dy, sum dy*(x-mean) */
    assert(l->sync->scratch_size >= 2 * C && "sync scratch holds a layer's sums");
    const int grads = cnn_layer_param_grads(l);
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0;
        for (size_t n = 0; n < N; n++)
            cnn_norm_dots(l->dy + n * S + c * P, l->x[0] + n * S + c * P, P, bmean[c],
                          &sdy, &sdyx);
        if (grads) {
            dgamma[c] += (float)(sdyx * binv[c]);   /* this process's share */
            dbeta[c] += (float)sdy;
        }
        sums[c] = sdy;
        sums[C + c] = sdyx;
    }
    /* every process has the same graph, so all of them skip this or none */
    if (!dxs)
        return;
    l->sync->sum(l->sync, sums, 2 * C);
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < C; c++) {
        const float mean = bmean[c], inv = binv[c];
        const float A = gamma[c] * inv;
        const float B = (float)(-(double)A * inv * inv * sums[C + c] / M);
        const float K = (float)(-(double)A * sums[c] / M);
        channel_dx(l, c, A, B, K, mean, dxs);
    }
}

/* In training, x-hat depends on x through the batch statistics too:
 *   dx = gamma*inv * (dy - mean(dy) - xhat * mean(dy * xhat)).
 * After an eval forward the statistics are constants: dx = gamma*inv*dy. */
static void bn_backward(cnn_layer *l)
{
    const bn_settings *s = l->settings;
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    const size_t N = l->batch, M = N * P;
    const float *gamma = l->params[BN_GAMMA].data;    /* [C] */
    float *dgamma = l->params[BN_GAMMA].grad;         /* [C] */
    float *dbeta = l->params[BN_BETA].grad;           /* [C] */
    float *dxs = l->dx[0];                            /* [batch][C][P] */
    const int batch_stats = l->training && !l->frozen;
    if (batch_stats && l->sync) {
        bn_backward_sync(l);
        return;
    }
    if (!cnn_layer_param_grads(l)) dgamma = dbeta = NULL;
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t c = 0; c < C; c++) {
        float mean, inv;
        if (batch_stats) {
            mean = l->saved[c];
            inv = l->saved[C + c];
        } else {
            mean = l->params[BN_MEAN].data[c];
            inv = 1.0f / sqrtf(l->params[BN_VAR].data[c] + s->eps);
        }
        double sdy = 0, sdyx = 0;
        for (size_t n = 0; n < N; n++)
            cnn_norm_dots(l->dy + n * S + c * P, l->x[0] + n * S + c * P, P, mean,
                     &sdy, &sdyx);
        if (dgamma)
            dgamma[c] += (float)(sdyx * inv);
        if (dbeta)
            dbeta[c] += (float)sdy;
        if (!dxs)
            continue;
        /* dx = A*dy + B*(x - mean) + K */
        const float A = gamma[c] * inv;
        float B = 0, K = 0;
        if (batch_stats) {
            B = (float)(-(double)A * inv * inv * sdyx / (double)M);
            K = (float)(-(double)A * sdy / (double)M);
        }
        channel_dx(l, c, A, B, K, mean, dxs);
    }
}

static void bn_describe(const cnn_layer *l, char *buf, size_t n)
{
    const bn_settings *s = l->settings;
    snprintf(buf, n, "momentum %g eps %g", (double)s->momentum, (double)s->eps);
}

const cnn_layer_kind cnn_layer_batchnorm = {
    .name = "batchnorm",
    .summary = "batch normalisation per channel (momentum 0.1, eps 1e-5)",
    .settings_size = sizeof(bn_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = bn_parse,
    .infer = bn_infer,
    .forward = bn_forward,
    .backward = bn_backward,
    .assigns_dx = 1,
    .describe = bn_describe,
};
