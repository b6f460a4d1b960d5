/*
 * globalavgpool: the mean of each channel over its whole plane,
 * (c, h, w) -> (c, 1, 1), as PyTorch's AdaptiveAvgPool2d(1). No options.
 */
#include "layer.h"

static cnn_status globalavgpool_infer(cnn_layer *l, cnn_error *e)
{
    (void)e;
    l->out = (cnn_shape){l->in[0].c, 1, 1};
    l->macs = 0;
    return CNN_OK;
}

static void globalavgpool_forward(cnn_layer *l)
{
    const size_t planes = l->batch * l->in[0].c, hw = l->in[0].h * l->in[0].w;
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c] */
    for (size_t i = 0; i < planes; i++) {
        const float *p = x + i * hw;
        double sum = 0.0;
        for (size_t j = 0; j < hw; j++) sum += p[j];
        y[i] = (float)(sum / (double)hw);
    }
}

static void globalavgpool_backward(cnn_layer *l)
{
    const size_t planes = l->batch * l->in[0].c, hw = l->in[0].h * l->in[0].w;
    const float *dy = l->dy;   /* [batch][c] */
    float *dx = l->dx[0];      /* [batch][c][h][w] */
    if (!dx)
        return;
    for (size_t i = 0; i < planes; i++) {
        float *p = dx + i * hw, g = dy[i] / (float)hw;
        if (l->dx_assign & 1)
            for (size_t j = 0; j < hw; j++) p[j] = g;
        else
            for (size_t j = 0; j < hw; j++) p[j] += g;
    }
}

const cnn_layer_kind cnn_layer_globalavgpool = {
    .name = "globalavgpool",
    .summary = "mean of each channel over its plane, (c, h, w) -> (c, 1, 1)",
    .settings_size = 0,
    .min_inputs = 1, .max_inputs = 1,
    .parse = cnn_layer_parse_none,
    .infer = globalavgpool_infer,
    .forward = globalavgpool_forward,
    .backward = globalavgpool_backward,
    .assigns_dx = 1,
    .describe = NULL,
};
