/*
 * conv: 2-D convolution as PyTorch's Conv2d computes it (cross-correlation,
 * no kernel flip), by im2col and one cblas_sgemm per chunk of columns.
 *
 * Options: filters (required), kernel (required; n or [h, w]), stride
 * (default 1), pad (default 0; n, [h, w] or `same` = kernel/2 per axis, odd
 * kernels only), padding_mode (zero | reflect, default zero; reflect mirrors
 * without repeating the edge, as PyTorch's 'reflect', and needs pad < input
 * size), bias (default true), init (he | glorot, default he).
 *
 * Parameters: weight [filters][in_c][kh][kw], bias [filters].
 *
 * The column matrix has K = in_c*kh*kw rows and one column per output
 * position; columns are numbered over the whole batch, image-major, so a
 * chunk of columns can span several images. Infer picks one of three plans:
 *  - DIRECT: a 1x1, stride 1, unpadded conv where SPLIT would apply: the image
 *    is its own column matrix, one GEMM per image, no scratch.
 *  - SPLIT: large images (more than half a chunk), or a batch of one: each
 *    image's columns in chunks of ~1k-4k, the GEMM writing straight into
 *    the output with ldc = OH*OW.
 *  - GROUPED: small images: whole images per chunk, so that one GEMM covers
 *    ~1k-4k columns; its [F][cols] result is scattered into NCHW (and dy is
 *    gathered the same way in backward).
 * The chunk size keeps the column matrix near 4 MiB so it stays in cache.
 */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"

enum { CONV_DIRECT, CONV_SPLIT, CONV_GROUPED };

#define CONV_MAX_SIZE (1L << 20)   /* bound for filters, kernel, stride, pad */
#define CONV_COL_FLOATS ((size_t)1 << 20)
#define CONV_MIN_COLS 512
#define CONV_MAX_COLS 4096

typedef struct conv_settings {
    /* from the options */
    size_t filters;
    size_t kh, kw, sh, sw, ph, pw;
    int pad_same, reflect, bias, init;
    /* from infer */
    size_t c, h, w, oh, ow;
    size_t k;        /* c*kh*kw: rows of the column matrix */
    size_t p;        /* oh*ow: output positions per image */
    int plan;        /* CONV_DIRECT, CONV_SPLIT or CONV_GROUPED */
    size_t cols;     /* columns per chunk (SPLIT, GROUPED) */
} conv_settings;

static const char *context(const cnn_layer *l, const cnn_opts *o)
{
    return o->context ? o->context : l->name;
}

static cnn_status conv_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    conv_settings *s = l->settings;
    static const char *const modes[] = {"zero", "reflect"};
    static const char *const inits[] = {"he", "glorot"};
    static const char *const same[] = {"same"};
    long filters, kernel[2], stride[2], pad[2] = {0, 0};
    int mode, init, idx;
    cnn_status st;

    if ((st = cnn_opts_int(o, "filters", 0, 1, CONV_MAX_SIZE, &filters, e)))
        return st;
    if ((st = cnn_opts_pair(o, "kernel", 0, 1, CONV_MAX_SIZE, kernel, e)))
        return st;
    if ((st = cnn_opts_pair(o, "stride", 1, 1, CONV_MAX_SIZE, stride, e)))
        return st;
    const cnn_opt *padopt = cnn_opts_find(o, "pad");
    long dummy;
    if (padopt && padopt->text && cnn_parse_long(padopt->text, &dummy)) {
        /* A word, not a number: only `same` is allowed. */
        if (strcmp(padopt->text, "same"))
            return cnn_error_at(e, CNN_ERR_CONFIG, padopt->line, padopt->col,
                                "%s: pad must be an integer from 0 to %ld, a list "
                                "[height, width] of them, or \"same\", got \"%s\"",
                                context(l, o), CONV_MAX_SIZE, padopt->text);
        if ((st = cnn_opts_enum(o, "pad", same, 1, 0, &idx, e)))
            return st;
        s->pad_same = 1;
    } else if ((st = cnn_opts_pair(o, "pad", 0, 0, CONV_MAX_SIZE, pad, e))) {
        return st;
    }
    if ((st = cnn_opts_enum(o, "padding_mode", modes, 2, 0, &mode, e)))
        return st;
    if ((st = cnn_opts_bool(o, "bias", 1, &s->bias, e)))
        return st;
    if ((st = cnn_opts_enum(o, "init", inits, 2, 0, &init, e)))
        return st;

    if (!cnn_opts_find(o, "filters"))
        return cnn_error_set(e, CNN_ERR_CONFIG, "%s: the option 'filters' is required",
                             context(l, o));
    if (!cnn_opts_find(o, "kernel"))
        return cnn_error_set(e, CNN_ERR_CONFIG, "%s: the option 'kernel' is required",
                             context(l, o));
    if (s->pad_same) {
        if (kernel[0] % 2 == 0 || kernel[1] % 2 == 0)
            return cnn_error_at(e, CNN_ERR_CONFIG, padopt->line, padopt->col,
                                "%s: pad \"same\" needs an odd kernel, got %ldx%ld",
                                context(l, o), kernel[0], kernel[1]);
        pad[0] = kernel[0] / 2;
        pad[1] = kernel[1] / 2;
    }
    s->filters = (size_t)filters;
    s->kh = (size_t)kernel[0];
    s->kw = (size_t)kernel[1];
    s->sh = (size_t)stride[0];
    s->sw = (size_t)stride[1];
    s->ph = (size_t)pad[0];
    s->pw = (size_t)pad[1];
    s->reflect = mode == 1;
    s->init = init;
    return CNN_OK;
}

static cnn_status conv_infer(cnn_layer *l, cnn_error *e)
{
    conv_settings *s = l->settings;
    cnn_shape in = l->in[0];
    if (in.h + 2 * s->ph < s->kh || in.w + 2 * s->pw < s->kw)
        return cnn_error_set(e, CNN_ERR_SHAPE,
                             "layer '%s' (conv): a %zux%zu kernel with pad %zux%zu "
                             "does not fit its input %zux%zux%zu (c x h x w)", l->name,
                             s->kh, s->kw, s->ph, s->pw, in.c, in.h, in.w);
    if (s->reflect && (s->ph >= in.h || s->pw >= in.w))
        return cnn_error_set(e, CNN_ERR_SHAPE,
                             "layer '%s' (conv): reflect padding %zux%zu must be smaller "
                             "than its input %zux%zux%zu (c x h x w)", l->name, s->ph,
                             s->pw, in.c, in.h, in.w);
    s->c = in.c;
    s->h = in.h;
    s->w = in.w;
    s->oh = (in.h + 2 * s->ph - s->kh) / s->sh + 1;
    s->ow = (in.w + 2 * s->pw - s->kw) / s->sw + 1;
    s->k = in.c * s->kh * s->kw;
    s->p = s->oh * s->ow;
    if (s->k > INT_MAX || s->p > INT_MAX || in.h * in.w > INT_MAX)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (conv): input %zux%zux%zu "
                             "is too large for BLAS", l->name, in.c, in.h, in.w);

    size_t target = CONV_COL_FLOATS / s->k;
    if (target < CONV_MIN_COLS) target = CONV_MIN_COLS;
    if (target > CONV_MAX_COLS) target = CONV_MAX_COLS;
    int pointwise = s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 &&
                    s->ph == 0 && s->pw == 0;
    size_t g = target / s->p;   /* whole images per chunk */
    if (g > l->max_batch) g = l->max_batch;
    if (g <= 1) {
        size_t nchunks = (s->p + target - 1) / target;
        s->plan = pointwise ? CONV_DIRECT : CONV_SPLIT;
        s->cols = (s->p + nchunks - 1) / nchunks;
        l->work_size = pointwise ? 0 : s->k * s->cols;
    } else {
        s->plan = CONV_GROUPED;
        s->cols = g * s->p;
        l->work_size = (s->k + s->filters) * s->cols;   /* col + [F][cols] */
    }

    l->out = (cnn_shape){s->filters, s->oh, s->ow};
    size_t wdims[4] = {s->filters, in.c, s->kh, s->kw};
    size_t fan_in = s->k, fan_out = s->filters * s->kh * s->kw;
    cnn_init init = s->init ? CNN_INIT_GLOROT : CNN_INIT_HE;
    l->nparams = 0;
    cnn_layer_param(l, "weight", 4, wdims, init, fan_in, fan_out, 1, 1);
    if (s->bias)
        cnn_layer_param(l, "bias", 1, &s->filters, CNN_INIT_ZERO, fan_in, fan_out, 1, 0);
    l->saved_per_sample = 0;
    l->macs = s->filters * s->p * s->k;
    return CNN_OK;
}

/* Fill dst[0..n) with padded-input row iy at the columns of outputs
 * ox0..ox0+n-1 for kernel column kj. plane: [h][w]. */
static void im2col_row(const conv_settings *s, const float *plane, long iy,
                       size_t kj, size_t ox0, size_t n, float *dst)
{
    const long H = (long)s->h, W = (long)s->w, sw = (long)s->sw;
    if (iy < 0 || iy >= H) {
        if (!s->reflect) {
            memset(dst, 0, n * sizeof *dst);
            return;
        }
        iy = iy < 0 ? -iy : 2 * (H - 1) - iy;
    }
    const float *row = plane + iy * W;
    long ix = (long)(ox0 * s->sw + kj) - (long)s->pw;
    size_t i = 0;
    for (; i < n && ix < 0; i++, ix += sw)
        dst[i] = s->reflect ? row[-ix] : 0.0f;
    size_t m = 0;
    if (i < n && ix < W) {
        m = (size_t)((W - 1 - ix) / sw) + 1;
        if (m > n - i) m = n - i;
    }
    if (sw == 1) {
        memcpy(dst + i, row + ix, m * sizeof *dst);
    } else {
        for (size_t t = 0; t < m; t++)
            dst[i + t] = row[ix + (long)t * sw];
    }
    i += m;
    ix += (long)m * sw;
    for (; i < n; i++, ix += sw)
        dst[i] = s->reflect ? row[2 * (W - 1) - ix] : 0.0f;
}

/* The adjoint of im2col_row: add src[0..n) into the padded-input positions
 * it was read from (reflected positions included). plane: [h][w]. */
static void col2im_row(const conv_settings *s, float *plane, long iy, size_t kj,
                       size_t ox0, size_t n, const float *src)
{
    const long H = (long)s->h, W = (long)s->w, sw = (long)s->sw;
    if (iy < 0 || iy >= H) {
        if (!s->reflect)
            return;
        iy = iy < 0 ? -iy : 2 * (H - 1) - iy;
    }
    float *row = plane + iy * W;
    long ix = (long)(ox0 * s->sw + kj) - (long)s->pw;
    size_t i = 0;
    for (; i < n && ix < 0; i++, ix += sw)
        if (s->reflect) row[-ix] += src[i];
    size_t m = 0;
    if (i < n && ix < W) {
        m = (size_t)((W - 1 - ix) / sw) + 1;
        if (m > n - i) m = n - i;
    }
    for (size_t t = 0; t < m; t++)
        row[ix + (long)t * sw] += src[i + t];
    i += m;
    ix += (long)m * sw;
    for (; i < n; i++, ix += sw)
        if (s->reflect) row[2 * (W - 1) - ix] += src[i];
}

/* Columns c0..c0+ncols-1 of the batch's column matrix (column = image*P +
 * oy*OW + ox) into col [K][ncols]. x: [N][C][H][W]. */
static void im2col(const conv_settings *s, const float *x, size_t c0, size_t ncols,
                   float *col)
{
    const size_t P = s->p, OW = s->ow, OH = s->oh, HW = s->h * s->w;
    const size_t img0 = c0 / P, oy0 = c0 % P / OW, ox0 = c0 % P % OW;
    size_t r = 0;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++, r++) {
                float *dst = col + r * ncols;
                size_t img = img0, oy = oy0, ox = ox0;
                for (size_t j = 0; j < ncols;) {
                    size_t seg = OW - ox < ncols - j ? OW - ox : ncols - j;
                    const float *plane = x + (img * s->c + ci) * HW;
                    long iy = (long)(oy * s->sh + ki) - (long)s->ph;
                    im2col_row(s, plane, iy, kj, ox, seg, dst + j);
                    j += seg;
                    ox = 0;
                    if (++oy == OH) {
                        oy = 0;
                        img++;
                    }
                }
            }
}

/* The adjoint of im2col: add col [K][ncols] into dx [N][C][H][W]. */
static void col2im(const conv_settings *s, const float *col, size_t c0, size_t ncols,
                   float *dx)
{
    const size_t P = s->p, OW = s->ow, OH = s->oh, HW = s->h * s->w;
    const size_t img0 = c0 / P, oy0 = c0 % P / OW, ox0 = c0 % P % OW;
    size_t r = 0;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++, r++) {
                const float *src = col + r * ncols;
                size_t img = img0, oy = oy0, ox = ox0;
                for (size_t j = 0; j < ncols;) {
                    size_t seg = OW - ox < ncols - j ? OW - ox : ncols - j;
                    float *plane = dx + (img * s->c + ci) * HW;
                    long iy = (long)(oy * s->sh + ki) - (long)s->ph;
                    col2im_row(s, plane, iy, kj, ox, seg, src + j);
                    j += seg;
                    ox = 0;
                    if (++oy == OH) {
                        oy = 0;
                        img++;
                    }
                }
            }
}

static void conv_forward(cnn_layer *l)
{
    const conv_settings *s = l->settings;
    const size_t N = l->batch, F = s->filters, K = s->k, P = s->p;
    const float *w = l->params[0].data;                 /* [F][K] */
    const float *b = s->bias ? l->params[1].data : NULL; /* [F] */
    const float *x = l->x[0];                           /* [N][C][H][W] */
    float *y = l->y;                                    /* [N][F][OH][OW] */

    if (s->plan == CONV_DIRECT) {
        for (size_t n = 0; n < N; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)F, (int)P,
                        (int)K, 1.0f, w, (int)K, x + n * K * P, (int)P, 0.0f,
                        y + n * F * P, (int)P);
    } else if (s->plan == CONV_SPLIT) {
        float *col = l->work;   /* [K][cols] */
        for (size_t n = 0; n < N; n++)
            for (size_t p0 = 0; p0 < P; p0 += s->cols) {
                size_t cn = P - p0 < s->cols ? P - p0 : s->cols;
                im2col(s, x, n * P + p0, cn, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)F,
                            (int)cn, (int)K, 1.0f, w, (int)K, col, (int)cn, 0.0f,
                            y + n * F * P + p0, (int)P);
            }
    } else {
        const size_t g = s->cols / P;
        float *col = l->work;           /* [K][cols] */
        float *tmp = col + K * s->cols; /* [F][cols] */
        for (size_t n0 = 0; n0 < N; n0 += g) {
            size_t gn = N - n0 < g ? N - n0 : g, cn = gn * P;
            im2col(s, x, n0 * P, cn, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)F, (int)cn,
                        (int)K, 1.0f, w, (int)K, col, (int)cn, 0.0f, tmp, (int)cn);
            for (size_t i = 0; i < gn; i++)
                for (size_t f = 0; f < F; f++)
                    memcpy(y + ((n0 + i) * F + f) * P, tmp + f * cn + i * P,
                           P * sizeof *y);
        }
    }
    if (b)
        for (size_t n = 0; n < N; n++)
            for (size_t f = 0; f < F; f++) {
                float *yp = y + (n * F + f) * P, bf = b[f];
                for (size_t i = 0; i < P; i++) yp[i] += bf;
            }
}

static void conv_backward(cnn_layer *l)
{
    const conv_settings *s = l->settings;
    const size_t N = l->batch, F = s->filters, K = s->k, P = s->p;
    const float *w = l->params[0].data;                 /* [F][K] */
    float *dw = l->params[0].grad;                      /* [F][K] */
    float *db = s->bias ? l->params[1].grad : NULL;     /* [F] */
    const float *x = l->x[0];                           /* [N][C][H][W] */
    const float *dy = l->dy;                            /* [N][F][OH][OW] */
    float *dx = l->dx[0];                               /* [N][C][H][W] or NULL */

    if (db)
        for (size_t n = 0; n < N; n++)
            for (size_t f = 0; f < F; f++) {
                const float *d = dy + (n * F + f) * P;
                double sum = 0.0;
                for (size_t i = 0; i < P; i++) sum += d[i];
                db[f] += (float)sum;
            }

    if (s->plan == CONV_DIRECT) {
        for (size_t n = 0; n < N; n++) {
            const float *dyn = dy + n * F * P;   /* [F][P] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)F, (int)K,
                        (int)P, 1.0f, dyn, (int)P, x + n * K * P, (int)P, 1.0f, dw,
                        (int)K);
            if (dx)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P,
                            (int)F, 1.0f, w, (int)K, dyn, (int)P, 1.0f, dx + n * K * P,
                            (int)P);
        }
    } else if (s->plan == CONV_SPLIT) {
        float *col = l->work;   /* [K][cols] */
        for (size_t n = 0; n < N; n++)
            for (size_t p0 = 0; p0 < P; p0 += s->cols) {
                size_t cn = P - p0 < s->cols ? P - p0 : s->cols;
                const float *dyc = dy + n * F * P + p0;   /* [F][cn], stride P */
                im2col(s, x, n * P + p0, cn, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)F, (int)K,
                            (int)cn, 1.0f, dyc, (int)P, col, (int)cn, 1.0f, dw,
                            (int)K);
                if (!dx) continue;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)cn,
                            (int)F, 1.0f, w, (int)K, dyc, (int)P, 0.0f, col, (int)cn);
                col2im(s, col, n * P + p0, cn, dx);
            }
    } else {
        const size_t g = s->cols / P;
        float *col = l->work;           /* [K][cols] */
        float *tmp = col + K * s->cols; /* [F][cols]: dy gathered */
        for (size_t n0 = 0; n0 < N; n0 += g) {
            size_t gn = N - n0 < g ? N - n0 : g, cn = gn * P;
            for (size_t i = 0; i < gn; i++)
                for (size_t f = 0; f < F; f++)
                    memcpy(tmp + f * cn + i * P, dy + ((n0 + i) * F + f) * P,
                           P * sizeof *tmp);
            im2col(s, x, n0 * P, cn, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)F, (int)K,
                        (int)cn, 1.0f, tmp, (int)cn, col, (int)cn, 1.0f, dw, (int)K);
            if (!dx) continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)cn,
                        (int)F, 1.0f, w, (int)K, tmp, (int)cn, 0.0f, col, (int)cn);
            col2im(s, col, n0 * P, cn, dx);
        }
    }
}

static void conv_describe(const cnn_layer *l, char *buf, size_t n)
{
    const conv_settings *s = l->settings;
    char stride[48], pad[48];
    if (s->sh == s->sw) snprintf(stride, sizeof stride, "%zu", s->sh);
    else snprintf(stride, sizeof stride, "%zux%zu", s->sh, s->sw);
    if (s->ph == s->pw) snprintf(pad, sizeof pad, "%zu", s->ph);
    else snprintf(pad, sizeof pad, "%zux%zu", s->ph, s->pw);
    snprintf(buf, n, "%zux%zu s%s p%s %s%s", s->kh, s->kw, stride, pad,
             s->reflect ? "reflect" : "zero", s->bias ? "" : " nobias");
}

const cnn_layer_kind cnn_layer_conv = {
    .name = "conv",
    .summary = "2-D convolution (filters, kernel, stride, pad, padding_mode, bias, init)",
    .settings_size = sizeof(conv_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = conv_parse,
    .infer = conv_infer,
    .forward = conv_forward,
    .backward = conv_backward,
    .describe = conv_describe,
};
