/*
 * relu: y = max(x, 0), elementwise; the output shape is the input shape.
 * Backward passes the gradient where the output is positive, so it reads
 * only y and would stay correct if the graph ever ran it in place.
 */
#include "layer.h"
#include "parallel.h"

static void relu_forward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][h][w] */
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];   /* NaN passes through */
}

static void relu_backward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *y = l->y, *dy = l->dy;   /* [batch][c][h][w] */
    float *dx = l->dx[0];                 /* [batch][c][h][w] */
    if (!dx)
        return;
    if (l->dx_assign & 1) {
        #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        return;
    }
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}

const cnn_layer_kind cnn_layer_relu = {
    .name = "relu",
    .summary = "rectified linear unit, y = max(x, 0)",
    .settings_size = 0,
    .min_inputs = 1, .max_inputs = 1,
    .parse = cnn_layer_parse_none,
    .infer = cnn_layer_infer_same,
    .forward = relu_forward,
    .backward = relu_backward,
    .assigns_dx = 1,
    .describe = NULL,
};
