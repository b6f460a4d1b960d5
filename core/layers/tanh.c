/*
 * tanh: y = tanh(x), elementwise. Backward uses dy/dx = 1 - y^2, so it reads
 * only y.
 */
#include <math.h>
#include "layer.h"
#include "parallel.h"

static cnn_status tanh_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    (void)l; (void)o; (void)e;
    return CNN_OK;
}

static cnn_status tanh_infer(cnn_layer *l, cnn_error *e)
{
    (void)e;
    l->out = l->in[0];
    l->macs = 0;
    return CNN_OK;
}

static void tanh_forward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][h][w] */
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

static void tanh_backward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *y = l->y, *dy = l->dy;   /* [batch][c][h][w] */
    float *dx = l->dx[0];                 /* [batch][c][h][w] */
    if (!dx)
        return;
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

const cnn_layer_kind cnn_layer_tanh = {
    .name = "tanh",
    .summary = "hyperbolic tangent, y = tanh(x)",
    .settings_size = 0,
    .min_inputs = 1, .max_inputs = 1,
    .parse = tanh_parse,
    .infer = tanh_infer,
    .forward = tanh_forward,
    .backward = tanh_backward,
    .describe = NULL,
};
