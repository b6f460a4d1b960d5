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
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#include "layer.h"
#include "pool.h"
#include "parallel.h"

typedef cnn_pool_window maxpool_settings;

static cnn_status maxpool_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    return cnn_pool_parse(l->settings, o, e);
}

static cnn_status maxpool_infer(cnn_layer *l, cnn_error *e)
{
    cnn_status st = cnn_pool_infer(l->settings, l, "maxpool", e);
    if (st) return st;
    if (l->in[0].h * l->in[0].w > ((size_t)1 << 24))
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (maxpool): input planes "
                             "of %zux%zu are too large (at most 2^24 cells)", l->name,
                             l->in[0].h, l->in[0].w);
    l->saved_per_sample = cnn_shape_size(l->out);   /* argmax per output */
    return CNN_OK;
}

/* v beats the best m so far if larger, or if it is NaN and m is not: ties
 * keep the first, and the first NaN of a window wins so that it propagates. */
static inline uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline int is_nan(float f)
{
    return (bits(f) & 0x7fffffffu) > 0x7f800000u;   /* on the bits: no branches */
}

static inline int wins(float v, float m)
{
    return (v > m) | (is_nan(v) & !is_nan(m));
}

/* Take v at position i when it beats the best so far. */
static inline void consider(float v, long i, float *best, long *at)
{
    /* branch-free: on real data the comparisons are unpredictable */
    int take = wins(v, *best);
    *best = take ? v : *best;
    *at = take ? i : *at;
}

#if defined(__GNUC__) && defined(__AVX__)
/* 8 windows at a time with GCC's vector extension (GCC and Clang). */
#define POOL_VECTORS 1
typedef float pool_vec __attribute__((vector_size(32)));
typedef int pool_ivec __attribute__((vector_size(32)));
typedef float pool_vec_u __attribute__((vector_size(32), aligned(4), may_alias));

static inline pool_vec pload(const float *p)
{
    return *(const pool_vec_u *)p;
}

static inline void pstore(float *p, pool_vec v)
{
    *(pool_vec_u *)p = v;
}

/* wins() lane by lane: all ones where v beats m */
static inline pool_ivec vwins(pool_vec v, pool_vec m)
{
    return (v > m) | ((v != v) & (m == m));
}

/* t ? a : b, lane by lane */
static inline pool_vec pick(pool_ivec t, pool_vec a, pool_vec b)
{
    return (pool_vec)(((pool_ivec)a & t) | ((pool_ivec)b & ~t));
}
#endif

#ifdef POOL_VECTORS
/* 8 neighbouring 3x3 stride-2 windows inside the plane (the stem pool of
 * ResNet and GoogLeNet), the first at x (plane index base) in rows W
 * apart; the taps in the plain loop's order, so ties and NaNs resolve the
 * same way. Reads x[0 .. 2W + 16]: columns 0 to 16 of three rows. */
static void max3x3s2(const float *x, long W, float base, float *y, float *arg)
{
    const pool_vec lanes = {0, 2, 4, 6, 8, 10, 12, 14};
    pool_vec m = {0}, at = {0};
    for (long dy = 0; dy < 3; dy++)
        for (long dx = 0; dx < 3; dx++) {
            const float *r = x + dy * W + dx;
            /* columns 0, 2, .. 14 of r: 0-6 from lo, 8-14 from hi */
            pool_vec lo = pload(r), hi = pload(r + 7);
            pool_vec v = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 9, 11, 13, 15);
            pool_vec i = lanes + (base + (float)(dy * W + dx));
            if (dy == 0 && dx == 0) {
                m = v;
                at = i;
                continue;
            }
            pool_ivec t = vwins(v, m);
            m = pick(t, v, m);
            at = pick(t, i, at);
        }
    pstore(y, m);
    if (arg) pstore(arg, at);
}
#endif

/* The common 2x2 stride-2 window without padding. Which of the four cells
 * wins is data, so it is selected without branches (they would mispredict
 * half the time): with AVX, 8 windows at a time from two rows split into
 * their even and odd columns. The winner's index goes out as a float
 * (exact below 2^24). */
static void max2x2(const float *restrict xp, float *restrict yp, float *restrict ap,
                   size_t oh, size_t ow, size_t w)
{
    for (size_t oy = 0; oy < oh; oy++) {
        const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
        float *yr = yp + oy * ow;
        float *ar = ap ? ap + oy * ow : NULL;
        size_t ox = 0;
#ifdef POOL_VECTORS
        const float right = 1.0f, below = (float)w, diag = (float)w + 1.0f;
        const float row = (float)(2 * oy * w);
        const pool_vec cols = {0, 2, 4, 6, 8, 10, 12, 14};
        for (; ox + 8 <= ow; ox += 8) {
            pool_vec u0 = pload(r0 + 2 * ox), u1 = pload(r0 + 2 * ox + 8);
            pool_vec l0 = pload(r1 + 2 * ox), l1 = pload(r1 + 2 * ox + 8);
            pool_vec m = __builtin_shufflevector(u0, u1, 0, 2, 4, 6, 8, 10, 12, 14);
            pool_vec b = __builtin_shufflevector(u0, u1, 1, 3, 5, 7, 9, 11, 13, 15);
            pool_vec c = __builtin_shufflevector(l0, l1, 0, 2, 4, 6, 8, 10, 12, 14);
            pool_vec d = __builtin_shufflevector(l0, l1, 1, 3, 5, 7, 9, 11, 13, 15);
            pool_vec at = {0};
            pool_ivec t = vwins(b, m);
            m = pick(t, b, m);
            at = pick(t, (pool_vec){0} + right, at);
            t = vwins(c, m);
            m = pick(t, c, m);
            at = pick(t, (pool_vec){0} + below, at);
            t = vwins(d, m);
            m = pick(t, d, m);
            at = pick(t, (pool_vec){0} + diag, at);
            pstore(yr + ox, m);
            if (ar) pstore(ar + ox, at + cols + (row + (float)(2 * ox)));
        }
#endif
        /* the rest one at a time, selecting on the bits through masks (the
         * compiler keeps those free of branches) */
        const uint32_t off[4] = {0, 1, (uint32_t)w, (uint32_t)w + 1};
        for (; ox < ow; ox++) {
            const float v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
            float m = v[0];
            uint32_t at = 0;
            for (int k = 1; k < 4; k++) {
                uint32_t mask = 0u - (uint32_t)wins(v[k], m);
                uint32_t mb = (bits(v[k]) & mask) | (bits(m) & ~mask);
                memcpy(&m, &mb, sizeof m);
                at = (off[k] & mask) | (at & ~mask);
            }
            yr[ox] = m;
            if (ar) ar[ox] = (float)(2 * oy * w + 2 * ox + at);
        }
    }
}

static void maxpool_forward(cnn_layer *l)
{
    const maxpool_settings *s = l->settings;
    const size_t planes = l->batch * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
    const size_t oh = s->oh, ow = s->ow, sh = s->sh, sw = s->sw;
    const long H = (long)s->h, W = (long)s->w, ph = (long)s->ph, pw = (long)s->pw;
    const long kh = (long)s->kh, kw = (long)s->kw;
    const int two_by_two = kh == 2 && kw == 2 && sh == 2 && sw == 2 && !ph && !pw;
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][oh][ow] */
    float *arg = l->saved;      /* [batch][c][oh][ow]: iy*w + ix of the max;
                                   NULL in an inference net */
    #pragma omp parallel for schedule(static) if (planes * hw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * ohw, *ap = arg ? arg + p * ohw : NULL;
        if (two_by_two) {   /* the common case */
            max2x2(xp, yp, ap, oh, ow, (size_t)W);
            continue;
        }
        for (size_t oy = 0; oy < oh; oy++) {
            long y0 = (long)(oy * sh) - ph, y1 = y0 + kh;
            if (y0 < 0) y0 = 0;
            if (y1 > H) y1 = H;
            size_t ox = 0;
            if (kh == 3 && kw == 3 && y1 - y0 == 3) {
                /* 3x3 windows inside the row band: the taps unrolled */
#ifdef POOL_VECTORS
                /* stride 2: 8 windows at a time up to the last inside the
                 * plane, the final 8 ending there (overlapping some done) */
                long last = (W + pw - 3) / 2;
                if (last > (long)ow - 1) last = (long)ow - 1;
                int vectored = 0;
#endif
                for (; ox < ow; ox++) {
                    long x0 = (long)(ox * sw) - pw;
                    if (x0 < 0) continue;
                    if (x0 + 3 > W) break;
                    const long base = y0 * W + x0;
#ifdef POOL_VECTORS
                    if (sw == 2 && (long)ox + 7 <= last) {
                        max3x3s2(xp + base, W, (float)base, yp + oy * ow + ox,
                                 ap ? ap + oy * ow + ox : NULL);
                        ox += 7;
                        vectored = 1;
                        continue;
                    }
                    if (sw == 2 && vectored) {
                        size_t v = (size_t)last - 7;
                        long b = y0 * W + (long)(v * sw) - pw;
                        max3x3s2(xp + b, W, (float)b, yp + oy * ow + v,
                                 ap ? ap + oy * ow + v : NULL);
                        ox = (size_t)last;
                        continue;
                    }
#endif
                    long at = base;
                    float best = xp[base];
                    for (long dy = 0; dy < 3; dy++)
                        for (long dx = 0; dx < 3; dx++)
                            consider(xp[base + dy * W + dx], base + dy * W + dx, &best, &at);
                    yp[oy * ow + ox] = best;
                    if (ap) ap[oy * ow + ox] = (float)at;
                }
            }
            for (ox = 0; ox < ow; ox++) {
                long x0 = (long)(ox * sw) - pw, x1 = x0 + kw;
                if (kh == 3 && kw == 3 && y1 - y0 == 3 && x0 >= 0 && x0 + 3 <= W)
                    continue;   /* done above */
                float best = -FLT_MAX;
                if (x0 < 0) x0 = 0;
                if (x1 > W) x1 = W;
                long at = y0 * W + x0;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++)
                        consider(xp[iy * W + ix], iy * W + ix, &best, &at);
                yp[oy * ow + ox] = xp[at];
                if (ap) ap[oy * ow + ox] = (float)at;
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
    const int assign = l->dx_assign & 1;   /* dx holds no gradient yet */
    #pragma omp parallel for schedule(static) if (planes * hw >= CNN_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        if (assign) memset(dx + p * hw, 0, hw * sizeof *dx);
        for (size_t i = 0; i < ohw; i++)
            dx[p * hw + (size_t)arg[p * ohw + i]] += dy[p * ohw + i];
    }
}

static void maxpool_describe(const cnn_layer *l, char *buf, size_t n)
{
    cnn_pool_describe(l->settings, buf, n);
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
    .assigns_dx = 1,
    .describe = maxpool_describe,
};
