/*
 * avgpool: the mean over each kh x kw window, as PyTorch's AvgPool2d with
 * its defaults (floor mode, count_include_pad=True): padded cells count as
 * zero and the divisor is always the full window kh*kw. Options: size (n or
 * [h, w], default 2), stride (default = size), pad (default 0, at most half
 * the window as in PyTorch).
 */
#include <stdio.h>

#include "layer.h"
#include "parallel.h"

typedef struct avgpool_settings {
    size_t kh, kw, sh, sw, ph, pw;
    size_t c, h, w, oh, ow;
} avgpool_settings;

static cnn_status avgpool_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    avgpool_settings *s = l->settings;
    long size[2], stride[2], pad[2];
    cnn_status st;
    int has_stride = cnn_opts_find(o, "stride") != NULL;
    if ((st = cnn_opts_pair(o, "size", 2, 1, 1L << 20, size, e)) ||
        (st = cnn_opts_pair(o, "stride", 1, 1, 1L << 20, stride, e)) ||
        (st = cnn_opts_pair(o, "pad", 0, 0, 1L << 20, pad, e)))
        return st;
    if (!has_stride) {
        stride[0] = size[0];
        stride[1] = size[1];
    }
    s->kh = (size_t)size[0];
    s->kw = (size_t)size[1];
    s->sh = (size_t)stride[0];
    s->sw = (size_t)stride[1];
    s->ph = (size_t)pad[0];
    s->pw = (size_t)pad[1];
    return CNN_OK;
}

static cnn_status avgpool_infer(cnn_layer *l, cnn_error *e)
{
    avgpool_settings *s = l->settings;
    cnn_shape in = l->in[0];
    if (2 * s->ph > s->kh || 2 * s->pw > s->kw)
        return cnn_error_set(e, CNN_ERR_CONFIG, "layer '%s' (avgpool): pad %zux%zu must "
                             "be at most half the %zux%zu window", l->name, s->ph,
                             s->pw, s->kh, s->kw);
    if (in.h + 2 * s->ph < s->kh || in.w + 2 * s->pw < s->kw)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (avgpool): a %zux%zu window "
                             "with pad %zux%zu does not fit its input %zux%zux%zu "
                             "(c x h x w)", l->name, s->kh, s->kw, s->ph, s->pw, in.c,
                             in.h, in.w);
    s->c = in.c;
    s->h = in.h;
    s->w = in.w;
    s->oh = (in.h + 2 * s->ph - s->kh) / s->sh + 1;
    s->ow = (in.w + 2 * s->pw - s->kw) / s->sw + 1;
    l->out = (cnn_shape){in.c, s->oh, s->ow};
    l->macs = 0;
    return CNN_OK;
}

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1),
 * columns [*x0, *x1). */
static void window(const avgpool_settings *s, size_t oy, size_t ox, long *y0,
                   long *y1, long *x0, long *x1)
{
    *y0 = (long)(oy * s->sh) - (long)s->ph;
    *y1 = *y0 + (long)s->kh;
    *x0 = (long)(ox * s->sw) - (long)s->pw;
    *x1 = *x0 + (long)s->kw;
    if (*y0 < 0) *y0 = 0;
    if (*y1 > (long)s->h) *y1 = (long)s->h;
    if (*x0 < 0) *x0 = 0;
    if (*x1 > (long)s->w) *x1 = (long)s->w;
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
                window(s, oy, ox, &y0, &y1, &x0, &x1);
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
                window(s, oy, ox, &y0, &y1, &x0, &x1);
                float g = dyp[oy * s->ow + ox] * scale;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++) dxp[iy * W + ix] += g;
            }
    }
}

static void avgpool_describe(const cnn_layer *l, char *buf, size_t n)
{
    const avgpool_settings *s = l->settings;
    char stride[48], pad[48] = "";
    if (s->sh == s->sw) snprintf(stride, sizeof stride, "%zu", s->sh);
    else snprintf(stride, sizeof stride, "%zux%zu", s->sh, s->sw);
    if (s->ph == s->pw && s->ph) snprintf(pad, sizeof pad, " p%zu", s->ph);
    else if (s->ph != s->pw) snprintf(pad, sizeof pad, " p%zux%zu", s->ph, s->pw);
    snprintf(buf, n, "%zux%zu s%s%s", s->kh, s->kw, stride, pad);
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
