/*
 * flatten: (c, h, w) -> (c*h*w, 1, 1). NCHW is already flat per sample, so
 * forward is a copy and backward adds the gradient back unchanged.
 * No options.
 */
#include <string.h>

#include "layer.h"

static cnn_status flatten_infer(cnn_layer *l, cnn_error *e)
{
    (void)e;
    l->out = (cnn_shape){cnn_shape_size(l->in[0]), 1, 1};
    l->macs = 0;
    return CNN_OK;
}

static void flatten_forward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    memcpy(l->y, l->x[0], n * sizeof *l->y);   /* [batch][c*h*w] */
}

static void flatten_backward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *dy = l->dy;   /* [batch][c*h*w] */
    float *dx = l->dx[0];      /* [batch][c][h][w] */
    if (!dx)
        return;
    if (l->dx_assign & 1)
        memcpy(dx, dy, n * sizeof *dx);
    else
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
}

const cnn_layer_kind cnn_layer_flatten = {
    .name = "flatten",
    .summary = "reshape (c, h, w) to (c*h*w, 1, 1)",
    .settings_size = 0,
    .min_inputs = 1, .max_inputs = 1,
    .parse = cnn_layer_parse_none,
    .infer = flatten_infer,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .assigns_dx = 1,
    .describe = NULL,
};
