/*
 * maxpool: the maximum over each kh x kw window, as PyTorch's MaxPool2d
 * (floor mode). Options: size (n or [h, w], default 2), stride (default =
 * size), pad (default 0; padded cells count as -inf, and as in PyTorch the
 * pad may be at most half the window, so every window holds a real cell).
 *
 * Forward keeps the position of each maximum inside its input plane
 * (iy*w + ix, as a float) in l->saved; backward adds dy there. As in
 * PyTorch, ties go to the first cell in row-major order and a NaN wins (so
 * it propagates).
 */
#include <float.h>
#include <stdio.h>

#include "layer.h"
#include "parallel.h"

typedef struct maxpool_settings {
    size_t kh, kw, sh, sw, ph, pw;
    size_t c, h, w, oh, ow;
} maxpool_settings;

static cnn_status maxpool_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    maxpool_settings *s = l->settings;
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

static cnn_status maxpool_infer(cnn_layer *l, cnn_error *e)
{
    maxpool_settings *s = l->settings;
    cnn_shape in = l->in[0];
    if (2 * s->ph > s->kh || 2 * s->pw > s->kw)
        return cnn_error_set(e, CNN_ERR_CONFIG, "layer '%s' (maxpool): pad %zux%zu must "
                             "be at most half the %zux%zu window", l->name, s->ph,
                             s->pw, s->kh, s->kw);
    if (in.h + 2 * s->ph < s->kh || in.w + 2 * s->pw < s->kw)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (maxpool): a %zux%zu window "
                             "with pad %zux%zu does not fit its input %zux%zux%zu "
                             "(c x h x w)", l->name, s->kh, s->kw, s->ph, s->pw, in.c,
                             in.h, in.w);
    if (in.h * in.w > ((size_t)1 << 24))
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (maxpool): input planes "
                             "of %zux%zu are too large (at most 2^24 cells)", l->name,
                             in.h, in.w);
    s->c = in.c;
    s->h = in.h;
    s->w = in.w;
    s->oh = (in.h + 2 * s->ph - s->kh) / s->sh + 1;
    s->ow = (in.w + 2 * s->pw - s->kw) / s->sw + 1;
    l->out = (cnn_shape){in.c, s->oh, s->ow};
    l->saved_per_sample = cnn_shape_size(l->out);   /* argmax per output */
    l->macs = 0;
    return CNN_OK;
}

static void maxpool_forward(cnn_layer *l)
{
    const maxpool_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const long H = (long)s->h, W = (long)s->w;
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][oh][ow] */
    float *arg = l->saved;      /* [batch][c][oh][ow]: iy*w + ix of the max */
    #pragma omp parallel for schedule(static) if (planes * hw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * ohw, *ap = arg + p * ohw;
        for (size_t oy = 0; oy < s->oh; oy++) {
            long y0 = (long)(oy * s->sh) - (long)s->ph, y1 = y0 + (long)s->kh;
            if (y0 < 0) y0 = 0;
            if (y1 > H) y1 = H;
            for (size_t ox = 0; ox < s->ow; ox++) {
                long x0 = (long)(ox * s->sw) - (long)s->pw, x1 = x0 + (long)s->kw;
                if (x0 < 0) x0 = 0;
                if (x1 > W) x1 = W;
                float best = -FLT_MAX;
                long at = y0 * W + x0;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++) {
                        float v = xp[iy * W + ix];
                        if (v > best || (v != v && best == best)) {
                            best = v;
                            at = iy * W + ix;
                        }
                    }
                yp[oy * s->ow + ox] = xp[at];
                ap[oy * s->ow + ox] = (float)at;
            }
        }
    }
}

static void maxpool_backward(cnn_layer *l)
{
    const maxpool_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const float *dy = l->dy;     /* [batch][c][oh][ow] */
    const float *arg = l->saved; /* [batch][c][oh][ow] */
    float *dx = l->dx[0];        /* [batch][c][h][w] */
    if (!dx)
        return;
    #pragma omp parallel for schedule(static) if (planes * hw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++)
        for (size_t i = 0; i < ohw; i++)
            dx[p * hw + (size_t)arg[p * ohw + i]] += dy[p * ohw + i];
}

static void maxpool_describe(const cnn_layer *l, char *buf, size_t n)
{
    const maxpool_settings *s = l->settings;
    char stride[48], pad[48] = "";
    if (s->sh == s->sw) snprintf(stride, sizeof stride, "%zu", s->sh);
    else snprintf(stride, sizeof stride, "%zux%zu", s->sh, s->sw);
    if (s->ph == s->pw && s->ph) snprintf(pad, sizeof pad, " p%zu", s->ph);
    else if (s->ph != s->pw) snprintf(pad, sizeof pad, " p%zux%zu", s->ph, s->pw);
    snprintf(buf, n, "%zux%zu s%s%s", s->kh, s->kw, stride, pad);
}

const cnn_layer_kind cnn_layer_maxpool = {
    .name = "maxpool",
    .summary = "maximum over each window (size, stride, pad)",
    .settings_size = sizeof(maxpool_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = maxpool_parse,
    .infer = maxpool_infer,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .describe = maxpool_describe,
};
