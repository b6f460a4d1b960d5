/*
 * softmax over the channels at each spatial position of each sample:
 * y[n][c][p] = exp(x[n][c][p]) / sum_c' exp(x[n][c'][p]). For a (K,1,1)
 * input (after dense) this is the usual softmax over K classes; for (C,H,W)
 * it is per pixel, as PyTorch's Softmax(dim=1). The maximum over channels is
 * subtracted first, so large logits cannot overflow. Backward uses the
 * Jacobian-vector product dx = y * (dy - sum_c dy*y) and reads only y.
 *
 * Loops run with the position p innermost (contiguous), keeping per-position
 * maxima, sums and dot products in the shared scratch l->work.
 */
#include <math.h>
#include <string.h>
#include "layer.h"

static cnn_status softmax_infer(cnn_layer *l, cnn_error *e)
{
    (void)e;
    l->out = l->in[0];
    l->work_size = 2 * l->in[0].h * l->in[0].w;
    l->macs = 0;
    return CNN_OK;
}

static void softmax_forward(cnn_layer *l)
{
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    float *mx = l->work;        /* [P] running maximum per position */
    float *sum = l->work + P;   /* [P] sum of exponentials, then its inverse */
    for (size_t n = 0; n < l->batch; n++) {
        const float *x = l->x[0] + n * S;   /* [C][P] */
        float *y = l->y + n * S;            /* [C][P] */
        memcpy(mx, x, P * sizeof *mx);
        for (size_t c = 1; c < C; c++)
            for (size_t p = 0; p < P; p++)
                mx[p] = x[c * P + p] > mx[p] ? x[c * P + p] : mx[p];
        memset(sum, 0, P * sizeof *sum);
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < P; p++) {
                float v = expf(x[c * P + p] - mx[p]);
                y[c * P + p] = v;
                sum[p] += v;
            }
        for (size_t p = 0; p < P; p++)
            sum[p] = 1.0f / sum[p];
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < P; p++)
                y[c * P + p] *= sum[p];
    }
}

static void softmax_backward(cnn_layer *l)
{
    const size_t C = l->out.c, P = l->out.h * l->out.w, S = C * P;
    float *dot = l->work;   /* [P] sum_c dy*y per position */
    if (!l->dx[0])
        return;
    for (size_t n = 0; n < l->batch; n++) {
        const float *y = l->y + n * S, *dy = l->dy + n * S;   /* [C][P] */
        float *dx = l->dx[0] + n * S;                         /* [C][P] */
        memset(dot, 0, P * sizeof *dot);
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < P; p++)
                dot[p] += dy[c * P + p] * y[c * P + p];
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < P; p++)
                dx[c * P + p] += y[c * P + p] * (dy[c * P + p] - dot[p]);
    }
}

const cnn_layer_kind cnn_layer_softmax = {
    .name = "softmax",
    .summary = "softmax over channels at each position (over classes after dense)",
    .settings_size = 0,
    .min_inputs = 1, .max_inputs = 1,
    .parse = cnn_layer_parse_none,
    .infer = softmax_infer,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .describe = NULL,
};
