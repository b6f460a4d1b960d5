/*
 * avgpool: the mean over each kh x kw window, as PyTorch's AvgPool2d with
 * its defaults (floor mode, count_include_pad=True): padded cells count as
 * zero and the divisor is always the full window kh*kw. Options: size (n or
 * [h, w], default 2), stride (default = size), pad (default 0, at most half
 * the window as in PyTorch).
 */
#include <stdio.h>

#include "layer.h"
#include "pool.h"
#include "parallel.h"

typedef cnn_pool_window avgpool_settings;

static cnn_status avgpool_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    return cnn_pool_parse(l->settings, o, e);
}

static cnn_status avgpool_infer(cnn_layer *l, cnn_error *e)
{
    return cnn_pool_infer(l->settings, l, "avgpool", e);
}

static void avgpool_forward(cnn_layer *l)
{
    const avgpool_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const long W = (long)s->w;
    const float scale = 1.0f / (float)(s->kh * s->kw);
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][oh][ow] */
    #pragma omp parallel for schedule(static) if (planes * hw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * ohw;
        for (size_t oy = 0; oy < s->oh; oy++)
            for (size_t ox = 0; ox < s->ow; ox++) {
                long y0, y1, x0, x1;
                cnn_pool_clip(s, oy, ox, &y0, &y1, &x0, &x1);
                float sum = 0.0f;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++) sum += xp[iy * W + ix];
                yp[oy * s->ow + ox] = sum * scale;
            }
    }
}

static void avgpool_backward(cnn_layer *l)
{
    const avgpool_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const long W = (long)s->w;
    const float scale = 1.0f / (float)(s->kh * s->kw);
    const float *dy = l->dy;   /* [batch][c][oh][ow] */
    float *dx = l->dx[0];      /* [batch][c][h][w] */
    if (!dx)
        return;
    #pragma omp parallel for schedule(static) if (planes * hw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        float *dxp = dx + p * hw;
        const float *dyp = dy + p * ohw;
        for (size_t oy = 0; oy < s->oh; oy++)
            for (size_t ox = 0; ox < s->ow; ox++) {
                long y0, y1, x0, x1;
                cnn_pool_clip(s, oy, ox, &y0, &y1, &x0, &x1);
                float g = dyp[oy * s->ow + ox] * scale;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++) dxp[iy * W + ix] += g;
            }
    }
}

static void avgpool_describe(const cnn_layer *l, char *buf, size_t n)
{
    cnn_pool_describe(l->settings, buf, n);
}

const cnn_layer_kind cnn_layer_avgpool = {
    .name = "avgpool",
    .summary = "mean over each window, padding counted as zeros (size, stride, pad)",
    .settings_size = sizeof(avgpool_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = avgpool_parse,
    .infer = avgpool_infer,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .describe = avgpool_describe,
};
