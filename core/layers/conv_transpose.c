/*
 * conv_transpose: the transposed 2-D convolution of PyTorch's
 * ConvTranspose2d (groups 1, dilation 1): the adjoint of a conv with the
 * same kernel, stride and pad, so each input cell scatters its kernel-
 * weighted copy into the output. Output size
 *     OH = (H - 1) * stride - 2 * pad + kernel + output_padding
 * (the same for the width): stride 2, kernel 4, pad 1 doubles a plane.
 *
 * Options: filters (required: output channels), kernel (required; n or
 * [h, w]), stride (default 1), pad (default 0; n or [h, w]: crops that many
 * cells off each side of the full output), output_padding (default 0; n or
 * [h, w], each smaller than its stride: cells added at the bottom and right
 * so that a stride-s conv's several input sizes can be told apart), bias
 * (default true), init (he | glorot, default he).
 *
 * Parameters: weight [in_c][filters][kh][kw] (PyTorch's layout, so a torch
 * state_dict's tensor maps directly), bias [filters]. Initialisation: fan_in
 * is in_c * kh * kw / (stride_h * stride_w) (at least 1), the inputs an
 * output sums on average; fan_out is filters * kh * kw.
 *
 * An image's columns are col [K][P] with K = filters*kh*kw and P = H*W, one
 * column per input cell: col = W^T x (W read as [in_c][K]). Forward fills
 * the output with the bias and scatters the columns into it (col2im, which
 * drops what lands in the pad); backward gathers dy into columns the same
 * way (im2col) and takes dW += x col^T, dx += W col, db += sum dy. Columns
 * go in chunks of whole input rows, about 1M floats each. Threads: the batch
 * is cut into up to `threads` contiguous pieces, one OpenMP thread each,
 * with its own scratch; the weight and bias gradients of the pieces after
 * the first go into partials added in piece order, so a given thread count
 * gives the same result every time.
 */
#include <limits.h>
#include <omp.h>
#include <string.h>
#include <stdio.h>

#include "layer.h"
#include "parallel.h"

#define CT_MAX_SIZE (1L << 20)              /* bound for filters, kernel, stride, pad */
#define CT_COL_FLOATS ((size_t)1 << 20)     /* aim for a column chunk this size */
#define CT_PAR_MIN_MACS ((size_t)1 << 20)   /* smaller passes run on one thread */
#define CT_ALIGN 16

typedef struct ct_settings {
    /* from the options */
    size_t filters, kh, kw, sh, sw, ph, pw, oph, opw;
    int bias, init;
    /* from infer */
    size_t c, h, w, oh, ow;
    size_t k;        /* filters*kh*kw: rows of the column matrix */
    size_t p;        /* h*w: columns, one per input cell */
    size_t rows;     /* input rows per column chunk */
    size_t threads;  /* most pieces a pass is cut into */
    size_t scratch;  /* one piece's floats: columns, then dW and db partials */
    size_t off_dw, off_db;
} ct_settings;

static const char *context(const cnn_layer *l, const cnn_opts *o)
{
    return o->context ? o->context : l->name;
}

static cnn_status ct_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    ct_settings *s = l->settings;
    static const char *const inits[] = {"he", "glorot"};
    long filters, kernel[2], stride[2], pad[2], outpad[2];
    cnn_status st;
    if ((st = cnn_opts_int(o, "filters", 0, 1, CT_MAX_SIZE, &filters, e)) ||
        (st = cnn_opts_pair(o, "kernel", 0, 1, CT_MAX_SIZE, kernel, e)) ||
        (st = cnn_opts_pair(o, "stride", 1, 1, CT_MAX_SIZE, stride, e)) ||
        (st = cnn_opts_pair(o, "pad", 0, 0, CT_MAX_SIZE, pad, e)) ||
        (st = cnn_opts_pair(o, "output_padding", 0, 0, CT_MAX_SIZE, outpad, e)) ||
        (st = cnn_opts_bool(o, "bias", 1, &s->bias, e)) ||
        (st = cnn_opts_enum(o, "init", inits, 2, 0, &s->init, e)))
        return st;
    if (!cnn_opts_find(o, "filters"))
        return cnn_error_set(e, CNN_ERR_CONFIG, "%s: the option 'filters' is required",
                             context(l, o));
    if (!cnn_opts_find(o, "kernel"))
        return cnn_error_set(e, CNN_ERR_CONFIG, "%s: the option 'kernel' is required",
                             context(l, o));
    if (outpad[0] >= stride[0] || outpad[1] >= stride[1]) {
        const cnn_opt *v = cnn_opts_find(o, "output_padding");
        return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col, "%s: output_padding "
                            "%ldx%ld must be smaller than the stride %ldx%ld",
                            context(l, o), outpad[0], outpad[1], stride[0], stride[1]);
    }
    s->filters = (size_t)filters;
    s->kh = (size_t)kernel[0];
    s->kw = (size_t)kernel[1];
    s->sh = (size_t)stride[0];
    s->sw = (size_t)stride[1];
    s->ph = (size_t)pad[0];
    s->pw = (size_t)pad[1];
    s->oph = (size_t)outpad[0];
    s->opw = (size_t)outpad[1];
    return CNN_OK;
}

static size_t align_up(size_t n)
{
    return (n + CT_ALIGN - 1) / CT_ALIGN * CT_ALIGN;
}

static cnn_status ct_infer(cnn_layer *l, cnn_error *e)
{
    ct_settings *s = l->settings;
    cnn_shape in = l->in[0];
    /* The full output before the pad is cropped; sizes are bounded by the
     * option limits and the 65536 of an input, so these cannot wrap. */
    size_t fh = (in.h - 1) * s->sh + s->kh + s->oph, fw = (in.w - 1) * s->sw + s->kw + s->opw;
    if (fh <= 2 * s->ph || fw <= 2 * s->pw)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (conv_transpose): pad "
                             "%zux%zu leaves no output of its input %zux%zux%zu "
                             "(c x h x w; the uncropped output is %zux%zu)", l->name,
                             s->ph, s->pw, in.c, in.h, in.w, fh, fw);
    s->c = in.c;
    s->h = in.h;
    s->w = in.w;
    s->oh = fh - 2 * s->ph;
    s->ow = fw - 2 * s->pw;
    s->k = s->filters * s->kh * s->kw;
    s->p = in.h * in.w;
    if (s->k > INT_MAX || s->p > INT_MAX || in.c > INT_MAX || s->oh * s->ow > INT_MAX)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (conv_transpose): input "
                             "%zux%zux%zu is too large for BLAS", l->name, in.c, in.h, in.w);
    s->rows = CT_COL_FLOATS / (s->k * in.w);
    if (s->rows < 1) s->rows = 1;
    if (s->rows > in.h) s->rows = in.h;
    /* The thread count is read once, here (see conv.c). */
    s->threads = (size_t)cnn_threads();
    if (s->threads < 1) s->threads = 1;
    size_t at = align_up(s->k * s->rows * in.w);
    s->off_dw = at;
    at += s->threads > 1 ? align_up(in.c * s->k) : 0;
    s->off_db = at;
    at += s->threads > 1 && s->bias ? align_up(s->filters) : 0;
    s->scratch = at;
    l->work_size = s->threads * s->scratch;

    l->out = (cnn_shape){s->filters, s->oh, s->ow};
    size_t wdims[4] = {in.c, s->filters, s->kh, s->kw};
    size_t fan_in = in.c * s->kh * s->kw / (s->sh * s->sw);
    size_t fan_out = s->k;
    if (!fan_in) fan_in = 1;
    cnn_init init = s->init ? CNN_INIT_GLOROT : CNN_INIT_HE;
    l->nparams = 0;
    cnn_layer_param(l, "weight", 4, wdims, init, fan_in, fan_out, 1, 1);
    if (s->bias)
        cnn_layer_param(l, "bias", 1, &s->filters, CNN_INIT_ZERO, fan_in, fan_out, 1, 0);
    l->saved_per_sample = 0;
    l->macs = in.c * s->k * s->p;
    /* Each output sees about kernel/stride input cells per axis; the jump,
     * a fraction, is not divided (see upsample.c). */
    l->rf_kernel[0] = (s->kh + s->sh - 1) / s->sh;
    l->rf_kernel[1] = (s->kw + s->sw - 1) / s->sw;
    l->rf_stride[0] = l->rf_stride[1] = 1;
    return CNN_OK;
}

/* Input columns [lo, hi) whose tap kj lands inside the output: ix with
 * 0 <= ix*sw - pw + kj < ow. */
static void tap_range(size_t n, size_t stride, size_t pad, size_t k, size_t out,
                      size_t *lo, size_t *hi)
{
    /* ix*stride + k >= pad and ix*stride + k < out + pad */
    *lo = k >= pad ? 0 : (pad - k + stride - 1) / stride;
    *hi = out + pad > k ? (out + pad - k - 1) / stride + 1 : 0;
    if (*hi > n) *hi = n;
    if (*lo > *hi) *lo = *hi;
}

/* Scatter the columns of input rows [r0, r0 + nr) (col [K][nr*W]) into one
 * image's output y [F][OH][OW], adding. */
static void col2out(const ct_settings *s, const float *col, size_t r0, size_t nr,
                    float *y)
{
    const size_t W = s->w, OW = s->ow, ld = nr * W;
    for (size_t f = 0; f < s->filters; f++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++) {
                const float *src = col + ((f * s->kh + ki) * s->kw + kj) * ld;
                size_t x0, x1;
                tap_range(W, s->sw, s->pw, kj, OW, &x0, &x1);
                for (size_t r = 0; r < nr; r++) {
                    long oy = (long)((r0 + r) * s->sh + ki) - (long)s->ph;
                    if (oy < 0 || oy >= (long)s->oh) continue;
                    float *row = y + (f * s->oh + (size_t)oy) * OW;
                    const float *c = src + r * W;
                    /* ix >= x0 keeps ix*sw + kj - pw from going below 0 */
                    for (size_t ix = x0; ix < x1; ix++) row[ix * s->sw + kj - s->pw] += c[ix];
                }
            }
}

/* The adjoint of col2out: gather one image's dy [F][OH][OW] into the
 * columns of input rows [r0, r0 + nr), col [K][nr*W] (overwriting). */
static void out2col(const ct_settings *s, const float *dy, size_t r0, size_t nr,
                    float *col)
{
    const size_t W = s->w, OW = s->ow, ld = nr * W;
    for (size_t f = 0; f < s->filters; f++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++) {
                float *dst = col + ((f * s->kh + ki) * s->kw + kj) * ld;
                size_t x0, x1;
                tap_range(W, s->sw, s->pw, kj, OW, &x0, &x1);
                for (size_t r = 0; r < nr; r++) {
                    long oy = (long)((r0 + r) * s->sh + ki) - (long)s->ph;
                    float *c = dst + r * W;
                    if (oy < 0 || oy >= (long)s->oh) {
                        memset(c, 0, W * sizeof *c);
                        continue;
                    }
                    const float *row = dy + (f * s->oh + (size_t)oy) * OW;
                    for (size_t ix = 0; ix < x0; ix++) c[ix] = 0.0f;
                    for (size_t ix = x0; ix < x1; ix++) c[ix] = row[ix * s->sw + kj - s->pw];
                    for (size_t ix = x1; ix < W; ix++) c[ix] = 0.0f;
                }
            }
}

/* How many pieces a pass over a batch of n is cut into. */
static size_t ct_pieces(const cnn_layer *l)
{
    const ct_settings *s = l->settings;
    size_t nt = s->threads, now = (size_t)omp_get_max_threads();
    if (now < nt) nt = now;
    if (l->batch < nt) nt = l->batch;
    if (l->batch * l->macs < CT_PAR_MIN_MACS) nt = 1;
    return nt ? nt : 1;
}

static void ct_run(void (*piece)(cnn_layer *, size_t, size_t), cnn_layer *l, size_t nt)
{
    if (nt == 1) {
        piece(l, 0, 1);
        return;
    }
    #pragma omp parallel num_threads((int)nt)
    {
        size_t got = (size_t)omp_get_num_threads();
        for (size_t t = (size_t)omp_get_thread_num(); t < nt; t += got)
            piece(l, t, nt);
    }
}

static void forward_piece(cnn_layer *l, size_t t, size_t nt)
{
    const ct_settings *s = l->settings;
    const size_t N = l->batch, C = s->c, K = s->k, P = s->p, W = s->w;
    const size_t OHW = s->oh * s->ow;
    const float *wt = l->params[0].data;                  /* [C][K] */
    const float *b = s->bias ? l->params[1].data : NULL;  /* [F] */
    const float *x = l->x[0];                             /* [N][C][H][W] */
    float *y = l->y;                                      /* [N][F][OH][OW] */
    float *col = l->work + t * s->scratch;                /* [K][rows*W] */
    size_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
    for (size_t n = n0; n < n1; n++) {
        float *yn = y + n * s->filters * OHW;
        for (size_t f = 0; f < s->filters; f++) {
            float v = b ? b[f] : 0.0f;
            for (size_t i = 0; i < OHW; i++) yn[f * OHW + i] = v;
        }
        for (size_t r0 = 0; r0 < s->h; r0 += s->rows) {
            size_t nr = s->h - r0 < s->rows ? s->h - r0 : s->rows, cn = nr * W;
            /* col [K][cn] = W^T [K][C] * x [C][cn] (row stride P) */
            cnn_gemm(1, 0, K, cn, C, 1.0f, wt, K, x + n * C * P + r0 * W, P, 0.0f,
                     col, cn);
            col2out(s, col, r0, nr, yn);
        }
    }
}

static void ct_forward(cnn_layer *l)
{
    ct_run(forward_piece, l, ct_pieces(l));
}

static void backward_piece(cnn_layer *l, size_t t, size_t nt)
{
    const ct_settings *s = l->settings;
    const size_t N = l->batch, C = s->c, K = s->k, P = s->p, W = s->w, F = s->filters;
    const size_t OHW = s->oh * s->ow;
    const float *wt = l->params[0].data;                  /* [C][K] */
    const float *x = l->x[0];                             /* [N][C][H][W] */
    const float *dy = l->dy;                              /* [N][F][OH][OW] */
    float *dx = l->dx[0];                                 /* [N][C][H][W] or NULL */
    float *scratch = l->work + t * s->scratch;
    float *col = scratch;                                 /* [K][rows*W] */
    float *dw = NULL, *db = NULL;                         /* [C][K], [F] */
    if (cnn_layer_param_grads(l)) {
        dw = t ? scratch + s->off_dw : l->params[0].grad;
        db = !s->bias ? NULL : t ? scratch + s->off_db : l->params[1].grad;
        if (t) {
            memset(dw, 0, C * K * sizeof *dw);
            if (db) memset(db, 0, F * sizeof *db);
        }
    }
    size_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
    for (size_t n = n0; n < n1; n++) {
        const float *dyn = dy + n * F * OHW;
        if (db)
            for (size_t f = 0; f < F; f++) {
                double sum = 0.0;
                for (size_t i = 0; i < OHW; i++) sum += dyn[f * OHW + i];
                db[f] += (float)sum;
            }
        if (!dw && !dx) continue;
        for (size_t r0 = 0; r0 < s->h; r0 += s->rows) {
            size_t nr = s->h - r0 < s->rows ? s->h - r0 : s->rows, cn = nr * W;
            out2col(s, dyn, r0, nr, col);
            /* dW [C][K] += x [C][cn] * col^T [cn][K] */
            if (dw)
                cnn_gemm(0, 1, C, K, cn, 1.0f, x + n * C * P + r0 * W, P, col, cn, 1.0f,
                         dw, K);
            /* dx [C][cn] += W [C][K] * col [K][cn] */
            if (dx)
                cnn_gemm(0, 0, C, cn, K, 1.0f, wt, K, col, cn, 1.0f,
                         dx + n * C * P + r0 * W, P);
        }
    }
}

static void ct_backward(cnn_layer *l)
{
    const ct_settings *s = l->settings;
    size_t nt = ct_pieces(l);
    ct_run(backward_piece, l, nt);
    if (!cnn_layer_param_grads(l)) return;
    float *dw = l->params[0].grad;                     /* [C][K] */
    float *db = s->bias ? l->params[1].grad : NULL;    /* [F] */
    for (size_t t = 1; t < nt; t++) {
        const float *part = l->work + t * s->scratch;
        for (size_t i = 0; i < s->c * s->k; i++) dw[i] += part[s->off_dw + i];
        if (db)
            for (size_t f = 0; f < s->filters; f++) db[f] += part[s->off_db + f];
    }
}

static void ct_describe(const cnn_layer *l, char *buf, size_t n)
{
    const ct_settings *s = l->settings;
    char stride[48], pad[48], op[48] = "";
    if (s->sh == s->sw) snprintf(stride, sizeof stride, "%zu", s->sh);
    else snprintf(stride, sizeof stride, "%zux%zu", s->sh, s->sw);
    if (s->ph == s->pw) snprintf(pad, sizeof pad, "%zu", s->ph);
    else snprintf(pad, sizeof pad, "%zux%zu", s->ph, s->pw);
    if (s->oph != s->opw) snprintf(op, sizeof op, " op%zux%zu", s->oph, s->opw);
    else if (s->oph) snprintf(op, sizeof op, " op%zu", s->oph);
    snprintf(buf, n, "%zux%zu s%s p%s%s%s", s->kh, s->kw, stride, pad, op,
             s->bias ? "" : " nobias");
}

const cnn_layer_kind cnn_layer_conv_transpose = {
    .name = "conv_transpose",
    .summary = "transposed 2-D convolution (filters, kernel, stride, pad, "
               "output_padding, bias, init)",
    .settings_size = sizeof(ct_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = ct_parse,
    .infer = ct_infer,
    .forward = ct_forward,
    .backward = ct_backward,
    .describe = ct_describe,
};
