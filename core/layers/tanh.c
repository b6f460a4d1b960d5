/*
 * tanh: y = tanh(x), elementwise. Backward uses dy/dx = 1 - y^2, so it reads
 * only y.
 */
#include <math.h>
#include "layer.h"
#include "parallel.h"

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
    .parse = cnn_layer_parse_none,
    .infer = cnn_layer_infer_same,
    .forward = tanh_forward,
    .backward = tanh_backward,
    .describe = NULL,
};
