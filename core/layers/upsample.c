/*
 * upsample: enlarge each plane by integer factors, as PyTorch's
 * nn.Upsample(scale_factor=..., mode=...). Options: scale (n or [h, w],
 * default 2), mode (nearest | bilinear, default nearest).
 *
 *  - nearest: output (oy, ox) copies input (oy / sh, ox / sw).
 *  - bilinear, with align_corners=False (PyTorch's default): output index o
 *    of an axis scaled by s reads the input at src = (o + 0.5) / s - 0.5,
 *    clamped at 0; with i0 = floor(src), i1 = min(i0 + 1, n - 1) and
 *    t = src - i0 the value is (1 - t) x[i0] + t x[i1], on both axes. The
 *    factor 1/s is taken in float, as PyTorch does on the CPU.
 *
 * No parameters. Backward adds each output gradient into the input cells it
 * read, with the same weights. Planes run in parallel; each plane is one
 * thread's, so the result does not depend on the thread count.
 *
 * `cnn summary` counts the layer's receptive field as a window of 1
 * (nearest) or 2 (bilinear) input cells with stride 1: the jump, a
 * fraction here, is not divided.
 */
#include <stdio.h>

#include "layer.h"
#include "parallel.h"

#define UPSAMPLE_MAX_SCALE 1024

enum { UPSAMPLE_NEAREST, UPSAMPLE_BILINEAR };

typedef struct upsample_settings {
    size_t sh, sw;   /* the factors */
    int mode;        /* UPSAMPLE_NEAREST or UPSAMPLE_BILINEAR */
    size_t c, h, w, oh, ow;
} upsample_settings;

static cnn_status upsample_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    upsample_settings *s = l->settings;
    static const char *const modes[] = {"nearest", "bilinear"};
    long scale[2];
    cnn_status st;
    if ((st = cnn_opts_pair(o, "scale", 2, 1, UPSAMPLE_MAX_SCALE, scale, e)) ||
        (st = cnn_opts_enum(o, "mode", modes, 2, UPSAMPLE_NEAREST, &s->mode, e)))
        return st;
    s->sh = (size_t)scale[0];
    s->sw = (size_t)scale[1];
    return CNN_OK;
}

static cnn_status upsample_infer(cnn_layer *l, cnn_error *e)
{
    upsample_settings *s = l->settings;
    cnn_shape in = l->in[0];
    if (in.h > ((size_t)1 << 24) / s->sh || in.w > ((size_t)1 << 24) / s->sw)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (upsample): input %zux%zux%zu "
                             "scaled by %zux%zu is too large (at most 2^24 rows or "
                             "columns)", l->name, in.c, in.h, in.w, s->sh, s->sw);
    s->c = in.c;
    s->h = in.h;
    s->w = in.w;
    s->oh = in.h * s->sh;
    s->ow = in.w * s->sw;
    l->out = (cnn_shape){in.c, s->oh, s->ow};
    l->macs = 0;
    l->rf_kernel[0] = l->rf_kernel[1] = s->mode == UPSAMPLE_BILINEAR ? 2 : 1;
    l->rf_stride[0] = l->rf_stride[1] = 1;
    return CNN_OK;
}

/* Where bilinear output index o of an axis of n inputs scaled by `scale`
 * (1/factor, in float) reads: cells *i0 and *i1 with weights 1 - *t and *t. */
static inline void bilinear_source(size_t o, float scale, size_t n, size_t *i0,
                                   size_t *i1, float *t)
{
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    size_t i = (size_t)src;
    *i0 = i;
    *i1 = i + 1 < n ? i + 1 : i;
    *t = src - (float)i;
}

static void upsample_forward(cnn_layer *l)
{
    const upsample_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const size_t W = s->w, OW = s->ow;
    const float rh = 1.0f / (float)s->sh, rw = 1.0f / (float)s->sw;
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][oh][ow] */
    #pragma omp parallel for schedule(static) if (planes * ohw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * ohw;
        for (size_t oy = 0; oy < s->oh; oy++) {
            float *yr = yp + oy * OW;
            if (s->mode == UPSAMPLE_NEAREST) {
                const float *xr = xp + (oy / s->sh) * W;
                for (size_t ox = 0; ox < OW; ox++) yr[ox] = xr[ox / s->sw];
                continue;
            }
            size_t y0, y1, x0, x1;
            float ty, tx;
            bilinear_source(oy, rh, s->h, &y0, &y1, &ty);
            const float *r0 = xp + y0 * W, *r1 = xp + y1 * W;
            for (size_t ox = 0; ox < OW; ox++) {
                bilinear_source(ox, rw, W, &x0, &x1, &tx);
                yr[ox] = (1.0f - ty) * ((1.0f - tx) * r0[x0] + tx * r0[x1]) +
                         ty * ((1.0f - tx) * r1[x0] + tx * r1[x1]);
            }
        }
    }
}

static void upsample_backward(cnn_layer *l)
{
    const upsample_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const size_t W = s->w, OW = s->ow;
    const float rh = 1.0f / (float)s->sh, rw = 1.0f / (float)s->sw;
    const float *dy = l->dy;   /* [batch][c][oh][ow] */
    float *dx = l->dx[0];      /* [batch][c][h][w] */
    if (!dx)
        return;
    #pragma omp parallel for schedule(static) if (planes * ohw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        float *dxp = dx + p * hw;
        const float *dyp = dy + p * ohw;
        for (size_t oy = 0; oy < s->oh; oy++) {
            const float *g = dyp + oy * OW;
            if (s->mode == UPSAMPLE_NEAREST) {
                float *dr = dxp + (oy / s->sh) * W;
                for (size_t ox = 0; ox < OW; ox++) dr[ox / s->sw] += g[ox];
                continue;
            }
            size_t y0, y1, x0, x1;
            float ty, tx;
            bilinear_source(oy, rh, s->h, &y0, &y1, &ty);
            float *r0 = dxp + y0 * W, *r1 = dxp + y1 * W;
            for (size_t ox = 0; ox < OW; ox++) {
                bilinear_source(ox, rw, W, &x0, &x1, &tx);
                const float a = (1.0f - ty) * g[ox], b = ty * g[ox];
                r0[x0] += (1.0f - tx) * a;
                r0[x1] += tx * a;
                r1[x0] += (1.0f - tx) * b;
                r1[x1] += tx * b;
            }
        }
    }
}

static void upsample_describe(const cnn_layer *l, char *buf, size_t n)
{
    const upsample_settings *s = l->settings;
    const char *mode = s->mode == UPSAMPLE_BILINEAR ? "bilinear" : "nearest";
    if (s->sh == s->sw) snprintf(buf, n, "x%zu %s", s->sh, mode);
    else snprintf(buf, n, "x%zux%zu %s", s->sh, s->sw, mode);
}

const cnn_layer_kind cnn_layer_upsample = {
    .name = "upsample",
    .summary = "enlarge each plane by integer factors (scale, mode nearest | bilinear)",
    .settings_size = sizeof(upsample_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = upsample_parse,
    .infer = upsample_infer,
    .forward = upsample_forward,
    .backward = upsample_backward,
    .describe = upsample_describe,
};
