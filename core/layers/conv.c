/*
 * conv: 2-D convolution as PyTorch's Conv2d computes it (cross-correlation,
 * no kernel flip), by im2col and cblas_sgemm or, for inputs of few channels,
 * directly; the batch is shared out between OpenMP threads.
 *
 * Options: filters (required), kernel (required; n or [h, w]), stride
 * (default 1), pad (default 0; n, [h, w] or `same` = dilation*(kernel-1)/2
 * per axis, odd kernels only), dilation (default 1; n or [h, w]: the taps
 * are that far apart, a kernel spans dilation*(kernel-1)+1 inputs), groups
 * (default 1; must divide in_c and filters: filter f sees only the in_c/groups
 * input channels of its group, f / (filters/groups)), padding_mode (zero |
 * reflect, default zero; reflect mirrors without repeating the edge, as
 * PyTorch's 'reflect', and needs pad < input size), bias (default true), init
 * (he | glorot, default he).
 *
 * Parameters: weight [filters][in_c/groups][kh][kw], bias [filters].
 *
 * An image's column matrix has K = in_c*kh*kw rows and P = OH*OW columns,
 * one per output position. Its rows go channel by channel, so group g's
 * rows are the contiguous block [g*Kg, (g+1)*Kg), Kg = K/groups, and every
 * GEMM below runs once per group on that block, the group's Fg =
 * filters/groups rows of the weights and of the output. A padded layer first copies each image into
 * padded scratch planes (zero or reflect), so im2col is a plain strided copy
 * with no bounds checks; backward adds the columns' gradient into padded
 * planes and folds them back. Infer picks one of five plans:
 *  - POINTWISE: a 1x1, stride 1, unpadded conv on images of at least
 *    CONV_IMAGE_MIN_P pixels (or a batch of one): the image is its own
 *    column matrix, one GEMM per image (per group), no columns.
 *  - DIRECT: a stride-1 conv of an input of at most CONV_DIRECT_MAX_C
 *    channels with at most CONV_DIRECT_MAX_K taps, one group and no
 *    dilation (a first layer: LeNet's, a CIFAR net's): forward and the weight gradient are register-tiled
 *    loops over the padded image, no columns, where OpenBLAS does badly on
 *    GEMMs this thin (6 x 784 x 25). The input gradient, when wanted, takes
 *    the IMAGE route.
 *  - TILED: a stride-1, zero-padded, ungrouped, undilated conv of more
 *    channels, on rows of whole vectors of 8: register tiles of filters x
 *    output vectors over the padded planes (tiled_pass), no columns; its
 *    input gradient is a conv of the same kind, and the weight gradient
 *    goes by tiled_dw. Those that are 3x3 with pad 1, on rows a multiple of
 *    16 wide (or 8) and with at least WINO_MIN_C channels each way, go by
 *    Winograd F(2x2, 3x3) instead, all three passes (see wino_image).
 *  - IMAGE: images of at least CONV_IMAGE_MIN_P outputs, or a batch of one:
 *    one GEMM per image (per chunk of ~1k-4k columns for large images)
 *    writing straight into the NCHW output with ldc = P.
 *  - GROUPED: small images: a GEMM covers a group of whole images (up to
 *    ~4k columns); its [F][group*P] result is copied into NCHW, and backward
 *    gathers dy the same way for the weight gradient (the input gradient
 *    goes image by image, straight from dy).
 * The chunk size keeps the column matrix near 4 MiB. When an image's column
 * matrix is small (K*P <= CONV_CACHE_FLOATS) a training forward writes it
 * into l->saved and backward reuses it instead of building it again.
 *
 * Threads: OpenBLAS runs single-threaded; a pass cuts the batch into up to
 * s->threads contiguous pieces of images (GROUPED: of groups), one OpenMP
 * thread each (the IMAGE forward cuts (image, chunk) pairs, so a batch of
 * one is shared too). Each piece has its own scratch; pieces after the
 * first accumulate their weight and bias gradients into partials that are
 * added in piece order at the end, so for a given thread count the results
 * do not depend on the scheduling. Passes under CONV_PAR_MIN_MACS
 * multiply-adds run on one thread.
 */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"
#include "norm.h"
#include "parallel.h"

enum { CONV_POINTWISE, CONV_DIRECT, CONV_TILED, CONV_IMAGE, CONV_GROUPED };

#define CONV_MAX_SIZE (1L << 20)   /* bound for filters, kernel, stride, pad */
#define CONV_COL_FLOATS ((size_t)1 << 20)   /* aim for a column matrix this size */
#define CONV_MIN_COLS 512
#define CONV_MAX_COLS 4096
#define CONV_IMAGE_MIN_P 256       /* outputs per image from which GEMMs go per image */
#define CONV_CACHE_FLOATS ((size_t)1 << 15) /* keep columns up to this per image */
#define CONV_PAR_MIN_MACS ((size_t)1 << 20) /* smaller passes run on one thread */
#define CONV_DIRECT_MAX_K 32       /* taps of the DIRECT plan */
#define CONV_DIRECT_MAX_C 3
#define CONV_SLACK 16              /* floats after a DIRECT padded image */
#define CONV_ALIGN 16              /* floats: 64-byte scratch buffers */
#define TILE_F 4                   /* TILED: filters x vectors of 8 outputs */
#define TILE_V 3                   /*   per register tile of tiled_pass */
#define WINO_MIN_C 16              /* TILED 3x3 pad 1 convs of at least this many
                                      channels in and out go by Winograd */
#define WINO_BUDGET 6144           /* (in + out channels) x tiles per Winograd
                                      chunk: its transforms stay near 384 KiB */
#define WINO_SKEW 16               /* floats between the 16 matrices of a
                                      Winograd chunk past their size, so that
                                      the same row of each falls in another
                                      cache set */
#define WINO_DW_TILES 384          /* tiles (of 2x2 outputs) per chunk of the
                                      Winograd weight gradient, at least */
#define TILE_DF 3                  /* TILED: filters x taps per register */
#define TILE_DT 4                  /*   tile of tiled_dw */

/* The DIRECT kernels use GCC's vector extension (GCC and Clang) on AVX:
 * 8 floats, one register. Elsewhere the plan is not used (and vectors this
 * wide would change the ABI). */
#if defined(__GNUC__) && defined(__AVX__)
#define CONV_VECTORS 1
#include <immintrin.h>
typedef float conv_vec __attribute__((vector_size(32)));
/* The same for loads and stores at any float's address (as immintrin.h's
 * __m256_u). */
typedef float conv_vec_u __attribute__((vector_size(32), aligned(4), may_alias));

static inline conv_vec vload(const float *p)
{
    return *(const conv_vec_u *)p;
}

static inline void vstore(float *p, conv_vec v)
{
    *(conv_vec_u *)p = v;
}

static inline conv_vec vsplat(float x)
{
    return (conv_vec){x, x, x, x, x, x, x, x};
}

/* a * b + c, fused where the machine can (ISO C mode does not contract). */
static inline conv_vec vfma(conv_vec a, conv_vec b, conv_vec c)
{
#ifdef __FMA__
    return _mm256_fmadd_ps(a, b, c);
#else
    return a * b + c;
#endif
}

/* ReLU lane by lane as the relu layer computes it, x < 0 ? 0 : x: maxps
 * returns its second operand when either is a NaN, so a NaN passes. */
static inline conv_vec vmax0(conv_vec v)
{
    return _mm256_max_ps(_mm256_setzero_ps(), v);
}

/* Keep v in a register: without this GCC folds a vector load into every
 * FMA that uses it, loading it again for each. */
static inline void in_register(conv_vec *v)
{
    __asm__("" : "+x"(*v));
}

static inline float vsum(conv_vec v)
{
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}
#endif

typedef struct conv_settings {
    /* from the options */
    size_t filters;
    size_t kh, kw, sh, sw, ph, pw;
    size_t dh, dw;   /* dilation: the distance between taps */
    size_t groups;
    int pad_same, reflect, bias, init;
    /* from infer */
    size_t c, h, w, oh, ow;
    size_t hp, wp;   /* the planes im2col reads: padded (h+2ph, w+2pw) or h, w */
    int padded;      /* ph or pw > 0: images are copied into padded planes */
    size_t k;        /* c*kh*kw: rows of the column matrix */
    size_t kg, fg;   /* k/groups, filters/groups: one group's rows and filters;
                        the weights are [filters][kg] */
    size_t p;        /* oh*ow: output positions per image */
    int plan;        /* CONV_POINTWISE, CONV_DIRECT, CONV_TILED, CONV_IMAGE or
                        CONV_GROUPED */
    size_t cols;     /* IMAGE, DIRECT: columns per chunk; GROUPED: group * p */
    size_t group;    /* GROUPED: most images per GEMM */
    size_t owv;      /* DIRECT: ow rounded up to 8, the row length of dy's copy */
    int cache;       /* a training forward keeps the columns in l->saved */
    size_t threads;  /* most pieces a pass is cut into */
    /* one piece's scratch: its floats, and where each buffer starts */
    size_t scratch;
    size_t off_col, off_tmp, off_xp, off_dxp, off_dw, off_db;
    size_t off_pack; /* TILED: packed weights, one copy after the pieces' scratch */
    int wino;        /* TILED by Winograd F(2x2, 3x3) (see wino_image) */
    size_t wino_rows;/* tile rows (of 2 output rows each) per Winograd chunk */
    size_t wino_group; /* images per chunk of the Winograd weight gradient */
    size_t off_wv;   /* a Winograd chunk's transformed input and products */
    size_t off_wg;   /* the weight gradient's 16 products [16][F][C] */
    size_t off_fold; /* the weights and bias with a batch norm folded in */
    const float *w_run, *b_run;   /* what forward uses: the parameters, or the
                                     folded copies */
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
    long filters, kernel[2], stride[2], pad[2] = {0, 0}, dilation[2], groups;
    int mode, init, idx;
    cnn_status st;

    if ((st = cnn_opts_int(o, "filters", 0, 1, CONV_MAX_SIZE, &filters, e)))
        return st;
    if ((st = cnn_opts_pair(o, "kernel", 0, 1, CONV_MAX_SIZE, kernel, e)))
        return st;
    if ((st = cnn_opts_pair(o, "stride", 1, 1, CONV_MAX_SIZE, stride, e)))
        return st;
    if ((st = cnn_opts_pair(o, "dilation", 1, 1, CONV_MAX_SIZE, dilation, e)))
        return st;
    if ((st = cnn_opts_int(o, "groups", 1, 1, CONV_MAX_SIZE, &groups, e)))
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
        pad[0] = dilation[0] * (kernel[0] - 1) / 2;
        pad[1] = dilation[1] * (kernel[1] - 1) / 2;
    }
    if (filters % groups) {
        const cnn_opt *g = cnn_opts_find(o, "groups");
        return cnn_error_at(e, CNN_ERR_CONFIG, g->line, g->col, "%s: filters %ld is "
                            "not divisible by groups %ld", context(l, o), filters, groups);
    }
    s->filters = (size_t)filters;
    s->kh = (size_t)kernel[0];
    s->kw = (size_t)kernel[1];
    s->sh = (size_t)stride[0];
    s->sw = (size_t)stride[1];
    s->ph = (size_t)pad[0];
    s->pw = (size_t)pad[1];
    s->dh = (size_t)dilation[0];
    s->dw = (size_t)dilation[1];
    s->groups = (size_t)groups;
    s->reflect = mode == 1;
    s->init = init;
    return CNN_OK;
}

static size_t align_up(size_t n)
{
    return (n + CONV_ALIGN - 1) / CONV_ALIGN * CONV_ALIGN;
}

static cnn_status conv_infer(cnn_layer *l, cnn_error *e)
{
    conv_settings *s = l->settings;
    cnn_shape in = l->in[0];
    /* The extent of a dilated kernel: d*(k-1)+1 inputs. */
    const size_t eh = s->dh * (s->kh - 1) + 1, ew = s->dw * (s->kw - 1) + 1;
    if (in.c % s->groups)
        return cnn_error_set(e, CNN_ERR_CONFIG, "layer '%s' (conv): in_channels %zu "
                             "is not divisible by groups %zu", l->name, in.c, s->groups);
    if ((eh != s->kh || ew != s->kw) && (in.h + 2 * s->ph < eh || in.w + 2 * s->pw < ew))
        return cnn_error_set(e, CNN_ERR_SHAPE,
                             "layer '%s' (conv): a %zux%zu kernel with dilation %zux%zu "
                             "spans %zux%zu, which with pad %zux%zu does not fit its "
                             "input %zux%zux%zu (c x h x w)", l->name, s->kh, s->kw,
                             s->dh, s->dw, eh, ew, s->ph, s->pw, in.c, in.h, in.w);
    if (in.h + 2 * s->ph < eh || in.w + 2 * s->pw < ew)
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
    s->hp = in.h + 2 * s->ph;
    s->wp = in.w + 2 * s->pw;
    s->padded = s->ph > 0 || s->pw > 0;
    s->oh = (in.h + 2 * s->ph - eh) / s->sh + 1;
    s->ow = (in.w + 2 * s->pw - ew) / s->sw + 1;
    s->k = in.c * s->kh * s->kw;
    s->kg = s->k / s->groups;
    s->fg = s->filters / s->groups;
    s->p = s->oh * s->ow;
    if (s->k > INT_MAX || s->p > INT_MAX || s->hp * s->wp > INT_MAX)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (conv): input %zux%zux%zu "
                             "is too large for BLAS", l->name, in.c, in.h, in.w);

    /* The thread count is read here, once: the caller (the CLI) sets it with
     * cnn_set_threads before building the network, and every pass uses at
     * most this many threads, since the scratch is planned for them. */
    s->threads = (size_t)cnn_threads();
    if (s->threads < 1) s->threads = 1;

    size_t target = CONV_COL_FLOATS / s->k;
    if (target < CONV_MIN_COLS) target = CONV_MIN_COLS;
    if (target > CONV_MAX_COLS) target = CONV_MAX_COLS;
    int pointwise = s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 &&
                    s->ph == 0 && s->pw == 0;
    int direct = 0;
#ifdef CONV_VECTORS
    direct = s->c <= CONV_DIRECT_MAX_C && s->k <= CONV_DIRECT_MAX_K && s->sh == 1 &&
             s->sw == 1 && s->groups == 1 && eh == s->kh && ew == s->kw;
#endif
    /* TILED: a stride-1, zero-padded, undilated, ungrouped conv of more
     * channels than DIRECT takes, whose output and input rows are whole
     * vectors of 8; its input gradient is a conv of the same kind. */
    int tiled = 0;
#ifdef CONV_VECTORS
    tiled = !direct && s->sh == 1 && s->sw == 1 && s->groups == 1 && eh == s->kh &&
            ew == s->kw && !s->reflect && s->kh * s->kw > 1 && s->ph < s->kh &&
            s->pw < s->kw && s->ow % 8 == 0 && in.w % 8 == 0;
#endif
    /* Images per group: as many as fit the target, but no more than a
     * thread's share of a full batch, so that every thread gets work. */
    size_t share = (l->max_batch + s->threads - 1) / s->threads;
    size_t g = target / s->p;
    if (g > share) g = share;
    s->group = 1;
    s->wino = 0;
    if (tiled) {
        /* Images per chunk of the weight gradient: the padded inputs and
         * dy of a chunk fit in about 512 KiB (half of a core's L2). */
        size_t per = s->c * s->hp * s->wp + s->filters * s->p;
        s->plan = CONV_TILED;
        s->cols = s->p;
        s->group = ((size_t)1 << 17) / per;
        if (s->group > share) s->group = share;
        if (s->group < 1) s->group = 1;
        /* Winograd: 3x3, pad 1 (so the input gradient's conv is the same
         * shape), whole tiles of 2x2 outputs, rows of whole vectors of 8
         * tiles or 8 wide (two rows of 4 tiles make a vector), and enough
         * channels to pay for the transforms. */
        s->wino = s->kh == 3 && s->kw == 3 && s->ph == 1 && s->pw == 1 &&
                  ((in.w % 16 == 0 && in.h % 2 == 0) || (in.w == 8 && in.h % 4 == 0)) &&
                  in.c >= WINO_MIN_C && s->filters >= WINO_MIN_C;
        if (s->wino) {
            /* tile rows per chunk: even on rows of 4 tiles */
            const size_t even = in.w == 8 ? 2 : 1;
            s->wino_rows = WINO_BUDGET / ((s->c + s->filters) * (s->w / 2)) / even * even;
            if (s->wino_rows > s->h / 2) s->wino_rows = s->h / 2;
            if (s->wino_rows < even) s->wino_rows = even;
            const size_t tiles = s->h / 2 * (s->w / 2);
            s->wino_group = (WINO_DW_TILES + tiles - 1) / tiles;
            if (s->wino_group > share) s->wino_group = share;
            if (s->wino_group < 1) s->wino_group = 1;
        }
    } else if (direct || s->p >= CONV_IMAGE_MIN_P || g <= 1) {
        size_t nchunks = (s->p + target - 1) / target;
        s->plan = direct ? CONV_DIRECT : pointwise ? CONV_POINTWISE : CONV_IMAGE;
        s->cols = (s->p + nchunks - 1) / nchunks;
    } else {
        s->plan = CONV_GROUPED;
        s->group = g;
        s->cols = g * s->p;
    }
    s->owv = (s->ow + 7) / 8 * 8;
    s->cache = (s->plan == CONV_IMAGE || s->plan == CONV_GROUPED) &&
               s->k * s->p <= CONV_CACHE_FLOATS;

    /* One piece's scratch: columns (also the columns' gradient); the
     * grouped result or gathered dy (DIRECT: dy with padded rows); padded
     * planes for the input and its gradient (TILED: for dy, padded for the
     * input gradient's conv); the gradient partials of the pieces after
     * the first. */
    size_t plane = align_up(s->c * s->hp * s->wp + CONV_SLACK), at = 0;
    int planes = s->padded || s->plan == CONV_DIRECT;
    if (s->plan == CONV_TILED) {
        size_t dyp = s->filters * (s->oh + 2 * (s->kh - 1 - s->ph)) *
                     (s->ow + 2 * (s->kw - 1 - s->pw));
        if (dyp > plane) plane = align_up(dyp);
        planes = 1;
    }
    s->off_col = at;
    at += s->plan == CONV_POINTWISE || s->plan == CONV_TILED ? 0 : align_up(s->k * s->cols);
    s->off_tmp = at;
    if (s->plan == CONV_GROUPED) at += align_up(s->filters * s->cols);
    if (s->plan == CONV_DIRECT) at += align_up(s->filters * s->oh * s->owv);
    s->off_xp = at;
    at += !planes ? 0 : s->plan == CONV_TILED ? s->group * plane : plane;
    s->off_dxp = at;
    at += planes ? plane : 0;
    s->off_dw = at;
    at += s->threads > 1 ? align_up(s->filters * s->kg) : 0;
    s->off_db = at;
    at += s->threads > 1 && s->bias ? align_up(s->filters) : 0;
    s->off_wv = at;
    if (s->wino) {
        size_t tf = s->wino_rows * (s->w / 2), tb = s->wino_group * (s->h / 2) * (s->w / 2);
        at += align_up(16 * ((s->c + s->filters) * (tf > tb ? tf : tb) + 2 * WINO_SKEW));
    }
    s->off_wg = at;
    at += s->wino ? align_up(16 * s->filters * s->c) : 0;
    s->scratch = at;
    s->off_pack = s->threads * s->scratch;
    l->work_size = s->off_pack;
    if (s->plan == CONV_TILED) {
        /* forward's filters in blocks of TILE_F, or the input gradient's */
        size_t fw = (s->filters + TILE_F - 1) / TILE_F * TILE_F * s->k;
        size_t bw = (s->c + TILE_F - 1) / TILE_F * TILE_F * s->filters * s->kh * s->kw;
        if (s->wino) {
            /* 16 matrices of transformed filters, for forward or backward */
            fw = fw / 9 * 16;
            bw = bw / 9 * 16;
        }
        l->work_size += align_up(fw > bw ? fw : bw);
    }
    /* an inference net may fold a batch norm in: weights, bias, scale */
    s->off_fold = l->work_size;
    l->work_size += align_up(s->filters * s->kg) + 2 * align_up(s->filters);

    l->out = (cnn_shape){s->filters, s->oh, s->ow};
    size_t wdims[4] = {s->filters, in.c / s->groups, s->kh, s->kw};
    size_t fan_in = s->kg, fan_out = s->filters * s->kh * s->kw;
    cnn_init init = s->init ? CNN_INIT_GLOROT : CNN_INIT_HE;
    l->nparams = 0;
    cnn_layer_param(l, "weight", 4, wdims, init, fan_in, fan_out, 1, 1);
    if (s->bias)
        cnn_layer_param(l, "bias", 1, &s->filters, CNN_INIT_ZERO, fan_in, fan_out, 1, 0);
    l->saved_per_sample = s->cache ? s->k * s->p : 0;   /* [K][P] columns */
    l->macs = s->filters * s->p * s->kg;
    l->rf_kernel[0] = eh;
    l->rf_kernel[1] = ew;
    l->rf_stride[0] = s->sh;
    l->rf_stride[1] = s->sw;
    return CNN_OK;
}

/* Where padded position i of an axis of n inputs reads from: -1 for a zero. */
static long pad_source(long i, long n, int reflect)
{
    if (i >= 0 && i < n) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (n - 1) - i;
}

/* Copy one image x [C][H][W] into padded planes xp [C][Hp][Wp]. */
static void pad_image(const conv_settings *s, const float *x, float *xp)
{
    const size_t H = s->h, W = s->w, Wp = s->wp, pw = s->pw;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t py = 0; py < s->hp; py++) {
            float *dst = xp + (ci * s->hp + py) * Wp;
            long iy = pad_source((long)py - (long)s->ph, (long)H, s->reflect);
            if (iy < 0) {
                memset(dst, 0, Wp * sizeof *dst);
                continue;
            }
            const float *row = x + (ci * H + (size_t)iy) * W;
            for (size_t px = 0; px < pw; px++)
                dst[px] = s->reflect ? row[pw - px] : 0.0f;
            memcpy(dst + pw, row, W * sizeof *dst);
            for (size_t px = 0; px < pw; px++)
                dst[pw + W + px] = s->reflect ? row[W - 2 - px] : 0.0f;
        }
}

/* The adjoint of pad_image: add dxp [C][Hp][Wp] into dx [C][H][W]. */
static void fold_image(const conv_settings *s, const float *dxp, float *dx)
{
    const size_t H = s->h, W = s->w, Wp = s->wp, pw = s->pw;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t py = 0; py < s->hp; py++) {
            const float *src = dxp + (ci * s->hp + py) * Wp;
            long iy = pad_source((long)py - (long)s->ph, (long)H, s->reflect);
            if (iy < 0)
                continue;
            float *row = dx + (ci * H + (size_t)iy) * W;
            for (size_t ix = 0; ix < W; ix++)
                row[ix] += src[pw + ix];
            if (!s->reflect)
                continue;
            for (size_t px = 0; px < pw; px++) {
                row[pw - px] += src[px];
                row[W - 2 - px] += src[pw + W + px];
            }
        }
}

/* d[0..n) = s[0..n) for short rows: blocks of 8 that compile to vector
 * moves, the last one overlapping, instead of a libc call per row. */
static inline void copy_span(float *restrict d, const float *restrict s, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) memcpy(d + i, s + i, 8 * sizeof *d);
        memcpy(d + n - 8, s + n - 8, 8 * sizeof *d);
        return;
    }
    for (size_t i = 0; i < n; i++) d[i] = s[i];
}

/* d[0..n) += s[0..n) for short rows. */
static inline void add_span(float *restrict d, const float *restrict s, size_t n)
{
    size_t i = 0;
#ifdef CONV_VECTORS
    for (; i + 8 <= n; i += 8) vstore(d + i, vload(d + i) + vload(s + i));
#endif
    for (; i < n; i++) d[i] += s[i];
}

/* Columns p0..p0+n-1 of one image's column matrix into col [K][ld] (the
 * first n of each row). src: the image's planes [C][Hp][Wp], padded (or the
 * image itself when the conv has no padding). */
static void im2col(const conv_settings *s, const float *src, size_t p0, size_t n,
                   float *col, size_t ld)
{
    const size_t OW = s->ow, sh = s->sh, sw = s->sw, Wp = s->wp;
    const size_t oy0 = p0 / OW, ox0 = p0 % OW;
    float *dst = col;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++, dst += ld) {
                const float *base = src + (ci * s->hp + ki * s->dh) * Wp + kj * s->dw;
                size_t oy = oy0, ox = ox0;
                for (size_t j = 0; j < n; oy++, ox = 0) {
                    size_t seg = OW - ox < n - j ? OW - ox : n - j;
                    const float *row = base + oy * sh * Wp + ox * sw;
                    float *d = dst + j;
                    if (sw == 1)
                        copy_span(d, row, seg);
                    else
                        for (size_t t = 0; t < seg; t++) d[t] = row[t * sw];
                    j += seg;
                }
            }
}

/* The adjoint of im2col: add col [K][ld] (n columns from p0) into the
 * image's planes dst [C][Hp][Wp]. */
static void col2im(const conv_settings *s, const float *col, size_t p0, size_t n,
                   size_t ld, float *dst)
{
    const size_t OW = s->ow, sh = s->sh, sw = s->sw, Wp = s->wp;
    const size_t oy0 = p0 / OW, ox0 = p0 % OW;
    const float *src = col;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++, src += ld) {
                float *base = dst + (ci * s->hp + ki * s->dh) * Wp + kj * s->dw;
                size_t oy = oy0, ox = ox0;
                for (size_t j = 0; j < n; oy++, ox = 0) {
                    size_t seg = OW - ox < n - j ? OW - ox : n - j;
                    float *row = base + oy * sh * Wp + ox * sw;
                    const float *c = src + j;
                    if (sw == 1)
                        add_span(row, c, seg);
                    else
                        for (size_t t = 0; t < seg; t++) row[t * sw] += c[t];
                    j += seg;
                }
            }
}

/* Sum of d[0..n), in a fixed order that vectorises. */
static double row_sum(const float *d, size_t n)
{
    float acc[32] = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (size_t j = 0; j < 32; j++) acc[j] += d[i + j];
    double sum = 0.0;
    for (; i < n; i++) sum += d[i];
    for (size_t j = 0; j < 32; j++) sum += acc[j];
    return sum;
}

/* Rows r of m [rows][ld] (the first n of each) set to b[r], or 0 when b is
 * NULL: a GEMM then adds into them with beta = 1, which is faster than
 * OpenBLAS's beta = 0 pass and puts the bias in for free. */
static void fill_rows(float *m, size_t rows, size_t n, size_t ld, const float *b)
{
    for (size_t r = 0; r < rows; r++) {
        float v = b ? b[r] : 0.0f, *row = m + r * ld;
        for (size_t i = 0; i < n; i++) row[i] = v;
    }
}

static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, size_t m, size_t n, size_t k,
                 const float *a, size_t lda, const float *b, size_t ldb, float beta,
                 float *c, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

/* The three products of a conv, group by group (see the top of the file):
 * out [F][n] (stride ldo) += w [F][Kg] * col [K][n] (stride ldc). */
static void gemm_forward(const conv_settings *s, const float *w, const float *col,
                         size_t ldc, size_t n, float *out, size_t ldo)
{
    const size_t fg = s->fg, kg = s->kg;
    for (size_t g = 0; g < s->groups; g++)
        gemm(CblasNoTrans, CblasNoTrans, fg, n, kg, w + g * fg * kg, kg,
             col + g * kg * ldc, ldc, 1.0f, out + g * fg * ldo, ldo);
}

/* dw [F][Kg] += dy [F][n] (stride ldd) * col [K][n]^T (stride ldc). */
static void gemm_dw(const conv_settings *s, const float *dy, size_t ldd,
                    const float *col, size_t ldc, size_t n, float *dw)
{
    const size_t fg = s->fg, kg = s->kg;
    for (size_t g = 0; g < s->groups; g++)
        gemm(CblasNoTrans, CblasTrans, fg, kg, n, dy + g * fg * ldd, ldd,
             col + g * kg * ldc, ldc, 1.0f, dw + g * fg * kg, kg);
}

/* dcol [K][n] (stride ldc) += w [F][Kg]^T * dy [F][n] (stride ldd). */
static void gemm_dcol(const conv_settings *s, const float *w, const float *dy,
                      size_t ldd, size_t n, float *dcol, size_t ldc)
{
    const size_t fg = s->fg, kg = s->kg;
    for (size_t g = 0; g < s->groups; g++)
        gemm(CblasTrans, CblasNoTrans, kg, n, fg, w + g * fg * kg, kg,
             dy + g * fg * ldd, ldd, 1.0f, dcol + g * kg * ldc, ldc);
}

#ifdef CONV_VECTORS
/* Offsets of the K taps (c, ki, kj) in padded planes [C][Hp][Wp]. */
static void tap_offsets(const conv_settings *s, size_t *off)
{
    size_t t = 0;
    for (size_t ci = 0; ci < s->c; ci++)
        for (size_t ki = 0; ki < s->kh; ki++)
            for (size_t kj = 0; kj < s->kw; kj++)
                off[t++] = (ci * s->hp + ki) * s->wp + kj;
}

/* y [F][OH][OW] = b + w * xp for one image of a stride-1 conv, without
 * columns: tiles of 6 filters x 16 outputs of a row stay in registers over
 * all K taps. xp: the padded image [C][Hp][Wp] followed by CONV_SLACK
 * readable floats (on rows under 16 outputs a tile reads up to 15 past the
 * row's end). */
static void direct_forward(const conv_settings *s, const float *xp, const float *w,
                           const float *b, float *y)
{
    const size_t F = s->filters, K = s->k, OH = s->oh, OW = s->ow, Wp = s->wp;
    size_t off[CONV_DIRECT_MAX_K];
    tap_offsets(s, off);
    for (size_t f0 = 0; f0 < F; f0 += 6) {
        const float *wf[6];
        float bias[6];
        for (size_t u = 0; u < 6; u++) {
            size_t f = f0 + u < F ? f0 + u : F - 1;   /* past F: a spare copy */
            wf[u] = w + f * K;
            bias[u] = b ? b[f] : 0.0f;
        }
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox0 = 0; ox0 < OW; ox0 += 16) {
                /* A row's last tile ends at the row's end where it can,
                 * overlapping the one before, to store whole vectors. */
                size_t ox = ox0 + 16 > OW && OW >= 16 ? OW - 16 : ox0;
                const float *src = xp + oy * Wp + ox;
                conv_vec acc[6][2];
                for (size_t u = 0; u < 6; u++) acc[u][0] = acc[u][1] = vsplat(bias[u]);
                for (size_t t = 0; t < K; t++) {
                    conv_vec x0 = vload(src + off[t]), x1 = vload(src + off[t] + 8);
                    for (size_t u = 0; u < 6; u++) {
                        conv_vec wv = vsplat(wf[u][t]);
                        acc[u][0] = vfma(wv, x0, acc[u][0]);
                        acc[u][1] = vfma(wv, x1, acc[u][1]);
                    }
                }
                size_t n = OW - ox < 16 ? OW - ox : 16;
                for (size_t u = 0; u < 6 && f0 + u < F; u++) {
                    float *row = y + ((f0 + u) * OH + oy) * OW + ox, part[16];
                    float *dst = n == 16 ? row : part;
                    vstore(dst, acc[u][0]);
                    vstore(dst + 8, acc[u][1]);
                    if (n < 16) copy_span(row, part, n);
                }
            }
    }
}

/* dw [F][K] += dy * xp for one image of a stride-1 conv, without columns:
 * tiles of 3 filters x 4 taps, each a dot product over the image held in
 * registers. dyw: dy [F][OH][owv] with each row padded with zeros to owv
 * floats, so that rows go in whole vectors; the zeros meet the lanes that
 * run past a row of xp (laid out as for direct_forward). */
static void direct_dw(const conv_settings *s, const float *xp, const float *dyw,
                      float *dw)
{
    const size_t F = s->filters, K = s->k, OH = s->oh, Wp = s->wp, owv = s->owv;
    size_t off[CONV_DIRECT_MAX_K];
    tap_offsets(s, off);
    for (size_t f0 = 0; f0 < F; f0 += 3) {
        const float *d[3];
        for (size_t u = 0; u < 3; u++)
            d[u] = dyw + (f0 + u < F ? f0 + u : F - 1) * OH * owv;
        for (size_t t0 = 0; t0 < K; t0 += 4) {
            const float *x[4];
            for (size_t v = 0; v < 4; v++) x[v] = xp + off[t0 + v < K ? t0 + v : K - 1];
            conv_vec acc[3][4] = {{{0}}};
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t ox = 0; ox < owv; ox += 8) {
                    size_t at = oy * owv + ox, ax = oy * Wp + ox;
                    conv_vec d0 = vload(d[0] + at), d1 = vload(d[1] + at),
                             d2 = vload(d[2] + at);
                    for (size_t v = 0; v < 4; v++) {
                        conv_vec xv = vload(x[v] + ax);
                        in_register(&xv);
                        acc[0][v] = vfma(d0, xv, acc[0][v]);
                        acc[1][v] = vfma(d1, xv, acc[1][v]);
                        acc[2][v] = vfma(d2, xv, acc[2][v]);
                    }
                }
            for (size_t u = 0; u < 3 && f0 + u < F; u++)
                for (size_t v = 0; v < 4 && t0 + v < K; v++)
                    dw[(f0 + u) * K + t0 + v] += vsum(acc[u][v]);
        }
    }
}

/* TILED. The filters w [F][C][kh][kw] in blocks of TILE_F, tap-major:
 * wp[b][t][u] = w[b*TILE_F + u][t], zeros past F. */
static void pack_filters(const float *w, size_t F, size_t K, float *wp)
{
    for (size_t f0 = 0; f0 < F; f0 += TILE_F)
        for (size_t t = 0; t < K; t++)
            for (size_t u = 0; u < TILE_F; u++)
                *wp++ = f0 + u < F ? w[(f0 + u) * K + t] : 0.0f;
}

/* The input gradient of a stride-1 conv is a stride-1 conv of dy, padded
 * by kernel - 1 - pad, from F channels to C with each kernel turned by
 * half a circle: its filter c has taps (f, i, j) = w[f][c][kh-1-i][kw-1-j].
 * Packed as pack_filters packs forward's. */
static void pack_turned(const float *w, size_t F, size_t C, size_t kh, size_t kw,
                        float *wp)
{
    const size_t khw = kh * kw;
    for (size_t c0 = 0; c0 < C; c0 += TILE_F)
        for (size_t f = 0; f < F; f++)
            for (size_t i = 0; i < kh; i++)
                for (size_t j = 0; j < kw; j++)
                    for (size_t u = 0; u < TILE_F; u++) {
                        size_t c = c0 + u, tap = (kh - 1 - i) * kw + (kw - 1 - j);
                        *wp++ = c < C ? w[(f * C + c) * khw + tap] : 0.0f;
                    }
}

/* Planes x [n][h][w] into dst [n][h+2ph][w+2pw] with zero borders. */
static void zero_pad(const float *x, size_t n, size_t h, size_t w, size_t ph, size_t pw,
                     float *dst)
{
    const size_t wp = w + 2 * pw;
    for (size_t c = 0; c < n; c++) {
        memset(dst, 0, ph * wp * sizeof *dst);
        dst += ph * wp;
        for (size_t y = 0; y < h; y++, dst += wp, x += w) {
            for (size_t i = 0; i < pw; i++) dst[i] = dst[pw + w + i] = 0.0f;
            memcpy(dst + pw, x, w * sizeof *dst);
        }
        memset(dst, 0, ph * wp * sizeof *dst);
        dst += ph * wp;
    }
}

/* How tiled_pass stores: into y (plain), adding to it, or through a ReLU. */
#define TILED_ADD 1
#define TILED_RELU 2

/* y [F][OH][OW] = b + (or, with TILED_ADD, y +) the stride-1 correlation of the
 * planes src [cin][OH+kh-1][OW+kw-1] with the packed filters wp, for one
 * image, OW a multiple of 8. A register tile is TILE_F filters x TILE_V
 * vectors of 8 outputs (anywhere in the image, row by row: a vector never
 * crosses a row), held over all cin*kh*kw taps, each tap one broadcast
 * weight per filter and one load per vector straight from the planes: no
 * columns. The last tile of an image repeats its last vector where the
 * vectors run out (it stores the same values twice). */
static void tiled_pass(const float *src, size_t cin, size_t kh, size_t kw,
                       const float *wp, size_t F, size_t OH, size_t OW, const float *b,
                       int mode, float *y)
{
    const int add = mode & TILED_ADD, relu = mode & TILED_RELU;
    const size_t ws = OW + kw - 1, hs = OH + kh - 1, K = cin * kh * kw;
    const size_t vpr = OW / 8, nvec = OH * vpr, plane = OH * OW;
    for (size_t f0 = 0; f0 < F; f0 += TILE_F) {
        const float *wb = wp + f0 * K;
        const size_t nf = F - f0 < TILE_F ? F - f0 : TILE_F;
        float *yb = y + f0 * plane;
        for (size_t i0 = 0; i0 < nvec; i0 += TILE_V) {
            size_t at[TILE_V], ax[TILE_V];
            for (size_t v = 0; v < TILE_V; v++) {
                size_t i = i0 + v < nvec ? i0 + v : nvec - 1;
                size_t oy = i / vpr, ox = i % vpr * 8;
                at[v] = oy * OW + ox;
                ax[v] = oy * ws + ox;
            }
            conv_vec acc[TILE_F][TILE_V];
            for (size_t u = 0; u < TILE_F; u++)
                for (size_t v = 0; v < TILE_V; v++)
                    acc[u][v] = u >= nf ? vsplat(0.0f)
                                : add ? vload(yb + u * plane + at[v])
                                : vsplat(b ? b[f0 + u] : 0.0f);
            const float *wt = wb;
            const float *x0 = src + ax[0], *x1 = src + ax[1], *x2 = src + ax[2];
            for (size_t ci = 0; ci < cin; ci++)
                for (size_t ki = 0; ki < kh; ki++) {
                    const size_t row = (ci * hs + ki) * ws;
                    for (size_t kj = 0; kj < kw; kj++, wt += TILE_F) {
                        conv_vec a = vload(x0 + row + kj), c = vload(x1 + row + kj),
                                 d = vload(x2 + row + kj);
                        in_register(&a);
                        in_register(&c);
                        in_register(&d);
                        for (size_t u = 0; u < TILE_F; u++) {
                            conv_vec wv = vsplat(wt[u]);
                            acc[u][0] = vfma(wv, a, acc[u][0]);
                            acc[u][1] = vfma(wv, c, acc[u][1]);
                            acc[u][2] = vfma(wv, d, acc[u][2]);
                        }
                    }
                }
            if (relu)
                for (size_t u = 0; u < nf; u++)
                    for (size_t v = 0; v < TILE_V; v++)
                        acc[u][v] = vmax0(acc[u][v]);
            for (size_t u = 0; u < nf; u++)
                for (size_t v = 0; v < TILE_V; v++)
                    vstore(yb + u * plane + at[v], acc[u][v]);
        }
    }
}

/* One step of a TILE_DF x TILE_DT tile of dot products: the filters' dy
 * vectors a, b, c times the vector at x[k] + at of each of the taps. */
static inline void dot_tile_step(conv_vec acc[TILE_DF][TILE_DT], conv_vec a, conv_vec b,
                                 conv_vec c, const float *const x[TILE_DT], size_t at)
{
    in_register(&a);
    in_register(&b);
    in_register(&c);
    for (size_t k = 0; k < TILE_DT; k++) {
        conv_vec xv = vload(x[k] + at);
        in_register(&xv);
        acc[0][k] = vfma(a, xv, acc[0][k]);
        acc[1][k] = vfma(b, xv, acc[1][k]);
        acc[2][k] = vfma(c, xv, acc[2][k]);
    }
}

/* Add the tile's dot products, summed across the lanes, to g[u * ld + k]
 * for the nf filters and nk taps that exist. */
static inline void dot_tile_flush(conv_vec acc[TILE_DF][TILE_DT], size_t nf, size_t nk,
                                  float *g, size_t ld)
{
    for (size_t u = 0; u < TILE_DF && u < nf; u++)
        for (size_t k = 0; k < TILE_DT && k < nk; k++) g[u * ld + k] += vsum(acc[u][k]);
}

/* dw [F][K] += dy * src summed over nimg images of a TILED conv: tiles of
 * TILE_DF filters x TILE_DT taps, each a dot product over the images'
 * output vectors held in registers (dy's rows are whole vectors) and
 * summed across the lanes once per tile. src: each image's padded input
 * planes [cin][OH+kh-1][OW+kw-1], sstride floats apart; dy [nimg][F][OH][OW]. */
static void tiled_dw(const float *src, size_t sstride, size_t nimg, size_t cin,
                     size_t kh, size_t kw, const float *dy, size_t F, size_t OH, size_t OW,
                     float *dw)
{
    const size_t ws = OW + kw - 1, hs = OH + kh - 1, khw = kh * kw, K = cin * khw;
    const size_t plane = OH * OW;
    for (size_t f0 = 0; f0 < F; f0 += TILE_DF) {
        size_t fo[TILE_DF];
        for (size_t u = 0; u < TILE_DF; u++) fo[u] = (f0 + u < F ? f0 + u : F - 1) * plane;
        for (size_t t0 = 0; t0 < K; t0 += TILE_DT) {
            size_t to[TILE_DT];
            for (size_t v = 0; v < TILE_DT; v++) {
                size_t t = t0 + v < K ? t0 + v : K - 1, r = t % khw;
                to[v] = (t / khw * hs + r / kw) * ws + r % kw;
            }
            conv_vec acc[TILE_DF][TILE_DT];
            for (size_t u = 0; u < TILE_DF; u++)
                for (size_t v = 0; v < TILE_DT; v++) acc[u][v] = vsplat(0.0f);
            for (size_t n = 0; n < nimg; n++) {
                const float *dn = dy + n * F * plane, *xn = src + n * sstride;
                const float *d0 = dn + fo[0], *d1 = dn + fo[1], *d2 = dn + fo[2];
                const float *const xs[TILE_DT] = {xn + to[0], xn + to[1], xn + to[2],
                                                  xn + to[3]};
                /* the output vectors in order: dy's are contiguous, the
                 * input's skip the padding at each row's end */
                for (size_t at = 0, ax = 0, vx = 8; at < plane; at += 8, ax += 8, vx += 8) {
                    if (vx > OW) {
                        vx = 8;
                        ax += ws - OW;
                    }
                    dot_tile_step(acc, vload(d0 + at), vload(d1 + at), vload(d2 + at), xs,
                                  ax);
                }
            }
            dot_tile_flush(acc, F - f0, K - t0, dw + f0 * K + t0, K);
        }
    }
}

/* Winograd F(2x2, 3x3) (Lavin and Gray, "Fast algorithms for convolutional
 * neural networks", CVPR 2016): each 2x2 block of outputs of a 3x3
 * correlation is Y = A^T [(G g G^T) . (B^T d B)] A over its 4x4 window d,
 * with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],  A^T = [1 1 1 0; 0 1 -1 -1],
 * so the sum over input channels becomes 16 products of a [cout][cin]
 * matrix with a [cin][tiles] one: 16 multiplies a tile per channel pair
 * where the direct way takes 36. */

/* The distance between two of the 16 [n][T] matrices of a chunk. */
static inline size_t wino_stride(size_t n, size_t T)
{
    return n * T + WINO_SKEW;
}

/* The 16 transformed filters, each packed for tiled_pass with K = cin:
 * up[xi][o / TILE_F][i][o % TILE_F] = (G g G^T)[xi / 4][xi % 4] for output
 * channel o and input channel i, zeros past cout. Forward: g = w[o][i]
 * (cout = F, cin = C). Turned (the input gradient's conv, see
 * pack_turned): g[a][b] = w[i][o][2 - a][2 - b] (cout = C, cin = F). */
static void wino_pack(const float *w, size_t F, size_t C, int turned, float *up)
{
    const size_t cout = turned ? C : F, cin = turned ? F : C;
    const size_t block = (cout + TILE_F - 1) / TILE_F * TILE_F * cin;
    memset(up, 0, 16 * block * sizeof *up);
    for (size_t o = 0; o < cout; o++)
        for (size_t i = 0; i < cin; i++) {
            float g[3][3], t[4][3];
            for (size_t a = 0; a < 3; a++)
                for (size_t b = 0; b < 3; b++)
                    g[a][b] = turned ? w[((i * C + o) * 3 + 2 - a) * 3 + 2 - b]
                                     : w[((o * C + i) * 3 + a) * 3 + b];
            for (size_t b = 0; b < 3; b++) {       /* t = G g */
                t[0][b] = g[0][b];
                t[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
                t[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
                t[3][b] = g[2][b];
            }
            float *dst = up + o / TILE_F * TILE_F * cin + i * TILE_F + o % TILE_F;
            for (size_t a = 0; a < 4; a++) {       /* t G^T */
                dst[(a * 4 + 0) * block] = t[a][0];
                dst[(a * 4 + 1) * block] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
                dst[(a * 4 + 2) * block] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
                dst[(a * 4 + 3) * block] = t[a][2];
            }
        }
}

/* m [cout][T] = u * v [cin][T] for one of the 16 products, with u packed
 * as tiled_pass's 1x1 filters: its register tile (TILE_F filters x TILE_V
 * vectors, the last tile repeating the last vector), without tiled_pass's
 * arithmetic for positions in an image, which a loop of only cin steps
 * would not pay for. T a multiple of 8. */
static void wino_gemm(const float *v, size_t cin, const float *up, size_t cout, size_t T,
                      float *m)
{
    const size_t nvec = T / 8;
    for (size_t f0 = 0; f0 < cout; f0 += TILE_F) {
        const float *wb = up + f0 * cin;
        const size_t nf = cout - f0 < TILE_F ? cout - f0 : TILE_F;
        float *mb = m + f0 * T;
        for (size_t i0 = 0; i0 < nvec; i0 += TILE_V) {
            const size_t a0 = i0 * 8, a1 = (i0 + 1 < nvec ? i0 + 1 : nvec - 1) * 8,
                         a2 = (i0 + 2 < nvec ? i0 + 2 : nvec - 1) * 8;
            conv_vec acc[TILE_F][TILE_V];
            for (size_t u = 0; u < TILE_F; u++)
                for (size_t k = 0; k < TILE_V; k++) acc[u][k] = vsplat(0.0f);
            const float *wt = wb, *x = v;
            for (size_t c = 0; c < cin; c++, wt += TILE_F, x += T) {
                conv_vec a = vload(x + a0), b = vload(x + a1), d = vload(x + a2);
                in_register(&a);
                in_register(&b);
                in_register(&d);
                for (size_t u = 0; u < TILE_F; u++) {
                    conv_vec wv = vsplat(wt[u]);
                    acc[u][0] = vfma(wv, a, acc[u][0]);
                    acc[u][1] = vfma(wv, b, acc[u][1]);
                    acc[u][2] = vfma(wv, d, acc[u][2]);
                }
            }
            for (size_t u = 0; u < nf; u++) {
                vstore(mb + u * T + a0, acc[u][0]);
                vstore(mb + u * T + a1, acc[u][1]);
                vstore(mb + u * T + a2, acc[u][2]);
            }
        }
    }
}

/* Planes x [cin][H][W] (W a multiple of 16, or 8) padded by one into xd
 * [cin][H + 2][2][W/2 + 1]: each padded row's even columns, then its odd
 * ones, so that the windows of 8 neighbouring tiles (2 columns apart) are
 * 4 plain vector loads. */
static void wino_split(const float *x, size_t cin, size_t H, size_t W, float *xd)
{
    const size_t half = W / 2 + 1, row = 2 * half;
    for (size_t c = 0; c < cin; c++) {
        memset(xd, 0, row * sizeof *xd);
        xd += row;
        for (size_t y = 0; y < H; y++, xd += row, x += W) {
            float *e = xd, *o = xd + half;
            e[0] = 0.0f;                           /* the left pad */
            o[W / 2] = 0.0f;                       /* the right pad */
            if (W == 8) {
                conv_vec a = vload(x);
                _mm_storeu_ps(o, _mm256_castps256_ps128(
                                     __builtin_shufflevector(a, a, 0, 2, 4, 6, 0, 2, 4, 6)));
                _mm_storeu_ps(e + 1, _mm256_castps256_ps128(
                                         __builtin_shufflevector(a, a, 1, 3, 5, 7, 1, 3, 5, 7)));
                continue;
            }
            for (size_t k = 0; k < W / 2; k += 8) {
                conv_vec a = vload(x + 2 * k), b = vload(x + 2 * k + 8);
                vstore(o + k, __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14));
                vstore(e + 1 + k, __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15));
            }
        }
        memset(xd, 0, row * sizeof *xd);
        xd += row;
    }
}

/* 8 floats for 8 tiles: p[0..8) or, with next > 0 (rows of 4 tiles), 4
 * from p and 4 from p + next. */
static inline conv_vec wino_load(const float *p, size_t next)
{
    if (!next) return vload(p);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)),
                                _mm_loadu_ps(p + next), 1);
}

/* v [16][cin][T] (the 16 wino_stride(cin, T) apart) = B^T d B for the
 * tiles of tile rows ty0.. of one image split by wino_split, tile (r, tx)
 * at r * W/2 + tx of each row of T floats (T >= rows * W/2). The tiles go 8 at a time: 8 of a row, or on
 * rows of 4 tiles (W = 8, rows even), 4 of a row and the 4 of the next. */
static void wino_input(const float *xd, size_t cin, size_t H, size_t W, size_t ty0,
                       size_t rows, size_t T, float *v)
{
    const size_t half = W / 2 + 1, row = 2 * half, tw = W / 2;
    const size_t next = tw == 4 ? 2 * row : 0;
    for (size_t c = 0; c < cin; c++)
        for (size_t t0 = 0; t0 < rows * tw; t0 += 8) {
            const size_t r = t0 / tw, tx = t0 % tw;
            conv_vec a[4][4];                      /* d B, row by row */
            const float *p = xd + (c * (H + 2) + 2 * (ty0 + r)) * row + tx;
            for (size_t k = 0; k < 4; k++, p += row) {
                conv_vec d0 = wino_load(p, next), d1 = wino_load(p + half, next),
                         d2 = wino_load(p + 1, next), d3 = wino_load(p + half + 1, next);
                a[k][0] = d0 - d2;
                a[k][1] = d1 + d2;
                a[k][2] = d2 - d1;
                a[k][3] = d1 - d3;
            }
            float *dst = v + c * T + t0;
            const size_t step = wino_stride(cin, T);   /* from one xi to the next */
            for (size_t j = 0; j < 4; j++) {       /* B^T (d B) */
                vstore(dst + (0 + j) * step, a[0][j] - a[2][j]);
                vstore(dst + (4 + j) * step, a[1][j] + a[2][j]);
                vstore(dst + (8 + j) * step, a[2][j] - a[1][j]);
                vstore(dst + (12 + j) * step, a[1][j] - a[3][j]);
            }
        }
}

/* The outputs of tile rows ty0.. of one image y [cout][H][W] from the
 * products m [16][cout][T] (wino_stride(cout, T) apart): A^T m A, stored as tiled_pass stores (mode),
 * 8 tiles at a time as wino_input takes them. */
static void wino_output(const float *m, size_t cout, size_t H, size_t W, size_t ty0,
                        size_t rows, const float *bias, int mode, float *y)
{
    const int add = mode & TILED_ADD, relu = mode & TILED_RELU;
    const size_t tw = W / 2, T = rows * tw, step = wino_stride(cout, T);
    /* where the outputs of the last 4 of 8 tiles go: on along the row, or
     * two rows down (rows of 4 tiles) */
    const size_t hi_at = tw == 4 ? 2 * W : 8;
    for (size_t f = 0; f < cout; f++)
        for (size_t t0 = 0; t0 < T; t0 += 8) {
            const size_t r = t0 / tw, tx = t0 % tw;
            const float *p = m + f * T + t0;
            conv_vec b[4][2];                      /* m A, row by row */
            for (size_t i = 0; i < 4; i++) {
                conv_vec m0 = vload(p + (4 * i) * step), m1 = vload(p + (4 * i + 1) * step),
                         m2 = vload(p + (4 * i + 2) * step), m3 = vload(p + (4 * i + 3) * step);
                b[i][0] = m0 + m1 + m2;
                b[i][1] = m1 - m2 - m3;
            }
            float *out = y + (f * H + 2 * (ty0 + r)) * W + 2 * tx;
            for (size_t i = 0; i < 2; i++, out += W) {
                /* row i of A^T (m A): outputs (2r + i, 2tx + j) */
                conv_vec y0 = i ? b[1][0] - b[2][0] - b[3][0] : b[0][0] + b[1][0] + b[2][0];
                conv_vec y1 = i ? b[1][1] - b[2][1] - b[3][1] : b[0][1] + b[1][1] + b[2][1];
                conv_vec lo = __builtin_shufflevector(y0, y1, 0, 8, 1, 9, 2, 10, 3, 11);
                conv_vec hi = __builtin_shufflevector(y0, y1, 4, 12, 5, 13, 6, 14, 7, 15);
                conv_vec base_lo = add ? vload(out) : vsplat(bias ? bias[f] : 0.0f);
                conv_vec base_hi = add ? vload(out + hi_at) : base_lo;
                lo = base_lo + lo;
                hi = base_hi + hi;
                if (relu) {
                    lo = vmax0(lo);
                    hi = vmax0(hi);
                }
                vstore(out, lo);
                vstore(out + hi_at, hi);
            }
        }
}

/* The weight gradient by Winograd F(3x3, 2x2), the same algorithm turned
 * round (the transposition principle): over one tile,
 * dw[a][b] += sum dy[i][j] xp[2ty + i + a][2tx + j + b] is
 * G^T [(A dy A^T) . (B^T d B)] G, with A, B and G as above and d the
 * tile's 4x4 window of the padded input, so the sum over tiles becomes 16
 * products of a [F][tiles] matrix with a [tiles][C] one. */

/* m [16][F][T] (wino_stride(F, T) apart) = A dy A^T for the tiles of one
 * image dy [F][H][W], at row stride T, 8 tiles at a time as wino_input takes them. */
static void wino_dy(const float *dy, size_t F, size_t H, size_t W, size_t T, float *m)
{
    const size_t tw = W / 2, tiles = H / 2 * tw, step = wino_stride(F, T);
    const size_t hi = tw == 4 ? 2 * W : 8;         /* the last 4 of 8 tiles */
    for (size_t f = 0; f < F; f++)
        for (size_t t0 = 0; t0 < tiles; t0 += 8) {
            const size_t r = t0 / tw, tx = t0 % tw;
            const float *p = dy + (f * H + 2 * r) * W + 2 * tx;
            conv_vec c[2][4];                      /* dy A^T, row by row */
            for (size_t i = 0; i < 2; i++, p += W) {
                conv_vec a = vload(p), b = vload(p + hi);
                conv_vec h0 = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
                conv_vec h1 = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
                c[i][0] = h0;
                c[i][1] = h0 + h1;
                c[i][2] = h0 - h1;
                c[i][3] = -h1;
            }
            float *dst = m + f * T + t0;
            for (size_t l = 0; l < 4; l++) {       /* A (dy A^T) */
                vstore(dst + (0 + l) * step, c[0][l]);
                vstore(dst + (4 + l) * step, c[0][l] + c[1][l]);
                vstore(dst + (8 + l) * step, c[0][l] - c[1][l]);
                vstore(dst + (12 + l) * step, -c[1][l]);
            }
        }
}

/* g [F][C] += m [F][T] * v [C][T]^T for one of the 16 products: tiles of
 * TILE_DF x TILE_DT dot products over T (a multiple of 8) in registers,
 * summed across the lanes once per tile. */
static void wino_dw_gemm(const float *m, size_t F, const float *v, size_t C, size_t T,
                         float *g)
{
    for (size_t f0 = 0; f0 < F; f0 += TILE_DF) {
        const float *d[TILE_DF];
        for (size_t u = 0; u < TILE_DF; u++) d[u] = m + (f0 + u < F ? f0 + u : F - 1) * T;
        for (size_t c0 = 0; c0 < C; c0 += TILE_DT) {
            const float *x[TILE_DT];
            for (size_t k = 0; k < TILE_DT; k++) x[k] = v + (c0 + k < C ? c0 + k : C - 1) * T;
            conv_vec acc[TILE_DF][TILE_DT];
            for (size_t u = 0; u < TILE_DF; u++)
                for (size_t k = 0; k < TILE_DT; k++) acc[u][k] = vsplat(0.0f);
            for (size_t t = 0; t < T; t += 8)
                dot_tile_step(acc, vload(d[0] + t), vload(d[1] + t), vload(d[2] + t), x, t);
            dot_tile_flush(acc, F - f0, C - c0, g + f0 * C + c0, C);
        }
    }
}

/* dw [F][C][3][3] += G^T g G from the 16 products g [16][F][C]. */
static void wino_dw_out(const float *g, size_t F, size_t C, float *dw)
{
    const size_t step = F * C;
    for (size_t i = 0; i < F * C; i++) {
        float t[4][3];                             /* g G, row by row */
        for (size_t k = 0; k < 4; k++) {
            const float *p = g + 4 * k * step + i;
            float g0 = p[0], g1 = p[step], g2 = p[2 * step], g3 = p[3 * step];
            t[k][0] = g0 + 0.5f * (g1 + g2);
            t[k][1] = 0.5f * (g1 - g2);
            t[k][2] = 0.5f * (g1 + g2) + g3;
        }
        float *d = dw + i * 9;
        for (size_t b = 0; b < 3; b++) {           /* G^T (g G) */
            d[b] += t[0][b] + 0.5f * (t[1][b] + t[2][b]);
            d[3 + b] += 0.5f * (t[1][b] - t[2][b]);
            d[6 + b] += 0.5f * (t[1][b] + t[2][b]) + t[3][b];
        }
    }
}

/* y [cout][H][W] = bias + (or, with TILED_ADD, y +) the 3x3 correlation,
 * padded by one, of one image x [cin][H][W] with the filters up packed by
 * wino_pack: the image split into xd (floats as for wino_split), then
 * chunks of s->wino_rows tile rows transformed into vm (16 wino_stride(cin,
 * T) then 16 wino_stride(cout, T), T = rows * W/2), multiplied and
 * transformed back. */
static void wino_image(const conv_settings *s, const float *x, size_t cin, size_t cout,
                       size_t H, size_t W, const float *up, const float *bias, int mode,
                       float *xd, float *vm, float *y)
{
    const size_t th = H / 2, tw = W / 2;
    const size_t block = (cout + TILE_F - 1) / TILE_F * TILE_F * cin;
    wino_split(x, cin, H, W, xd);
    for (size_t ty0 = 0; ty0 < th; ty0 += s->wino_rows) {
        const size_t rows = th - ty0 < s->wino_rows ? th - ty0 : s->wino_rows;
        const size_t T = rows * tw;
        float *v = vm, *m = vm + 16 * wino_stride(cin, T);
        wino_input(xd, cin, H, W, ty0, rows, T, v);
        for (size_t xi = 0; xi < 16; xi++)
            wino_gemm(v + xi * wino_stride(cin, T), cin, up + xi * block, cout, T,
                      m + xi * wino_stride(cout, T));
        wino_output(m, cout, H, W, ty0, rows, bias, mode, y);
    }
}
#endif

/* How many pieces a pass over `units` independent units is cut into: one
 * per thread, at most the count planned at infer, at most the count in
 * force now, and one for a pass too small to pay for waking threads. */
static size_t conv_pieces(const cnn_layer *l, size_t units)
{
    const conv_settings *s = l->settings;
    size_t nt = s->threads, now = (size_t)omp_get_max_threads();
    if (now < nt) nt = now;
    if (units < nt) nt = units;
    if (l->batch * l->macs < CONV_PAR_MIN_MACS) nt = 1;
    return nt ? nt : 1;
}

/* Run piece(l, t, nt) for t = 0..nt-1, on up to nt threads. */
static void conv_run(void (*piece)(cnn_layer *, size_t, size_t), cnn_layer *l,
                     size_t nt)
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

/* Piece t of nt of n units: [*u0, *u1). */
static void piece_range(size_t n, size_t t, size_t nt, size_t *u0, size_t *u1)
{
    *u0 = n * t / nt;
    *u1 = n * (t + 1) / nt;
}

/* GROUPED: a batch of n images is cut into this many groups of at most
 * s->group, a multiple of the planned thread count where the batch allows,
 * so the threads get equal shares; group j is images [n*j/ng, n*(j+1)/ng).
 * The cut depends on n and the plan only, so backward finds each group's
 * cached columns whatever the thread count. */
static size_t group_count(const conv_settings *s, size_t n)
{
    size_t ng = (n + s->group - 1) / s->group;
    ng = (ng + s->threads - 1) / s->threads * s->threads;
    return ng < n ? ng : n;
}

/* How many chunks the forward cuts each image's columns into: enough to fit
 * the scratch, and with a batch smaller than the thread count, enough to
 * give every thread a share. */
static size_t forward_chunks(const cnn_layer *l)
{
    const conv_settings *s = l->settings;
    size_t nch = (s->p + s->cols - 1) / s->cols;
    if (l->batch * nch < s->threads && l->batch * l->macs >= CONV_PAR_MIN_MACS) {
        nch = (s->threads + l->batch - 1) / l->batch;
        if (nch > s->p) nch = s->p;
    }
    return nch;
}

/* y = w * columns + b for piece t of nt. */
static void forward_piece(cnn_layer *l, size_t t, size_t nt)
{
    const conv_settings *s = l->settings;
    const size_t N = l->batch, F = s->filters, K = s->k, P = s->p;
    const size_t CHW = s->c * s->h * s->w;
    const float *w = s->w_run;                          /* [F][Kg] */
    const float *b = s->b_run;                          /* [F] or NULL */
    const float *x = l->x[0];                           /* [N][C][H][W] */
    float *y = l->y;                                    /* [N][F][OH][OW] */
    float *scratch = l->work + t * s->scratch;
    float *col = scratch + s->off_col;                  /* [K][cols] */
    float *xp = scratch + s->off_xp;                    /* [C][Hp][Wp] + slack */
    const int cache = s->cache && l->training;
    size_t u0, u1;

    if (s->plan == CONV_GROUPED) {
        float *tmp = scratch + s->off_tmp;              /* [F][group * P] */
        size_t ng = group_count(s, N);
        piece_range(ng, t, nt, &u0, &u1);
        for (size_t j = u0; j < u1; j++) {
            size_t g0 = N * j / ng, gn = N * (j + 1) / ng - g0;
            size_t ld = gn * P;
            float *gcol = cache ? l->saved + g0 * K * P : col;  /* [K][ld] */
            for (size_t i = 0; i < gn; i++) {
                const float *src = x + (g0 + i) * CHW;
                if (s->padded) {
                    pad_image(s, src, xp);
                    src = xp;
                }
                im2col(s, src, 0, P, gcol + i * P, ld);
            }
            fill_rows(tmp, F, ld, ld, b);
            gemm_forward(s, w, gcol, ld, ld, tmp, ld);
            for (size_t i = 0; i < gn; i++)
                for (size_t f = 0; f < F; f++)
                    memcpy(y + ((g0 + i) * F + f) * P, tmp + f * ld + i * P,
                           P * sizeof *y);
        }
        return;
    }

#ifdef CONV_VECTORS
    if (s->plan == CONV_TILED) {
        const float *wp = l->work + s->off_pack;        /* packed by conv_forward */
        piece_range(N, t, nt, &u0, &u1);
        for (size_t n = u0; s->wino && n < u1; n++)
            wino_image(s, x + n * CHW, s->c, F, s->h, s->w, wp, b,
                       l->fold_relu ? TILED_RELU : 0, xp, scratch + s->off_wv, y + n * F * P);
        for (size_t n = u0; !s->wino && n < u1; n++) {
            const float *src = x + n * CHW;
            if (s->padded) {
                zero_pad(src, s->c, s->h, s->w, s->ph, s->pw, xp);
                src = xp;
            }
            tiled_pass(src, s->c, s->kh, s->kw, wp, F, s->oh, s->ow, b,
                       l->fold_relu ? TILED_RELU : 0, y + n * F * P);
        }
        return;
    }
    if (s->plan == CONV_DIRECT) {
        memset(xp + s->c * s->hp * s->wp, 0, CONV_SLACK * sizeof *xp);
        piece_range(N, t, nt, &u0, &u1);
        for (size_t n = u0; n < u1; n++) {
            pad_image(s, x + n * CHW, xp);
            direct_forward(s, xp, w, b, y + n * F * P);
        }
        return;
    }
#endif

    /* POINTWISE and IMAGE: the units are (image, chunk) pairs. */
    const size_t nch = s->plan == CONV_POINTWISE ? 1 : forward_chunks(l);
    const size_t cw = (P + nch - 1) / nch;              /* columns per chunk */
    size_t padded_image = (size_t)-1;
    piece_range(N * nch, t, nt, &u0, &u1);
    for (size_t u = u0; u < u1; u++) {
        size_t n = u / nch, p0 = u % nch * cw;
        if (p0 >= P) continue;
        size_t cn = P - p0 < cw ? P - p0 : cw;
        float *yc = y + n * F * P + p0;                 /* [F][cn], stride P */
        const float *src = x + n * CHW;
        fill_rows(yc, F, cn, P, b);
        if (s->plan == CONV_POINTWISE) {
            gemm_forward(s, w, src, P, P, yc, P);
            continue;
        }
        float *ccol = col;                              /* [K][cn] */
        size_t ld = cn;
        if (cache) {
            ccol = l->saved + n * K * P + p0;           /* [K][P] from p0 */
            ld = P;
        }
        if (s->padded) {
            if (padded_image != n) pad_image(s, src, xp);
            padded_image = n;
            src = xp;
        }
        im2col(s, src, p0, cn, ccol, ld);
        gemm_forward(s, w, ccol, ld, cn, yc, P);
    }
}

/* y = max(y, 0) over a pass's outputs. */
static void relu_outputs(cnn_layer *l)
{
    const size_t n = l->batch * cnn_shape_size(l->out);
    float *y = l->y;
    #pragma omp parallel for schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = y[i] < 0.0f ? 0.0f : y[i];   /* as the relu layer: NaN passes */
}

static void conv_forward(cnn_layer *l)
{
    conv_settings *s = l->settings;
    size_t units = l->batch;
    s->w_run = l->params[0].data;
    s->b_run = s->bias ? l->params[1].data : NULL;
    if (l->fold_bn) {
        /* bn(w * x + b) = (scale w) * x + (scale b + shift), per filter */
        const size_t F = s->filters, KG = s->kg;
        float *wf = l->work + s->off_fold, *bf = wf + align_up(F * KG);
        float *scale = bf + align_up(F);
        cnn_batchnorm_affine(l->fold_bn, scale, bf);
        for (size_t f = 0; f < F; f++) {
            for (size_t k = 0; k < KG; k++) wf[f * KG + k] = s->w_run[f * KG + k] * scale[f];
            if (s->b_run) bf[f] += s->b_run[f] * scale[f];
        }
        s->w_run = wf;
        s->b_run = bf;
    }
#ifdef CONV_VECTORS
    if (s->plan == CONV_TILED && s->wino)
        wino_pack(s->w_run, s->filters, s->c, 0, l->work + s->off_pack);
    else if (s->plan == CONV_TILED)
        pack_filters(s->w_run, s->filters, s->k, l->work + s->off_pack);
#endif
    if (s->plan == CONV_IMAGE)
        units *= forward_chunks(l);
    if (s->plan == CONV_GROUPED)
        units = group_count(s, l->batch);
    conv_run(forward_piece, l, conv_pieces(l, units));
    if (l->fold_relu && s->plan != CONV_TILED)
        relu_outputs(l);
}

/* Add the gradients of piece t of nt: dx directly (pieces own disjoint
 * images); dw and db into the layer's gradients for piece 0 and into the
 * piece's partials for the others. */
static void backward_piece(cnn_layer *l, size_t t, size_t nt)
{
    const conv_settings *s = l->settings;
    const size_t N = l->batch, F = s->filters, K = s->k, P = s->p;
    const size_t CHW = s->c * s->h * s->w, planes = s->c * s->hp * s->wp;
    const float *w = l->params[0].data;                 /* [F][Kg] */
    const float *x = l->x[0];                           /* [N][C][H][W] */
    const float *dy = l->dy;                            /* [N][F][OH][OW] */
    float *dx = l->dx[0];                               /* [N][C][H][W] or NULL */
    float *scratch = l->work + t * s->scratch;
    float *col = scratch + s->off_col;                  /* [K][cols] */
    float *tmp = scratch + s->off_tmp;                  /* see conv_infer */
    float *xp = scratch + s->off_xp;                    /* [C][Hp][Wp] + slack */
    float *dxp = scratch + s->off_dxp;                  /* [C][Hp][Wp] */
    float *dw = l->params[0].grad;                      /* [F][Kg] */
    float *db = s->bias ? l->params[1].grad : NULL;     /* [F] */
    const int want_dw = cnn_layer_param_grads(l);      /* else dx only */
    const int assign = l->dx_assign & 1;                /* write dx, not add */
    if (!want_dw) db = NULL;
    if (t > 0 && want_dw) {
        dw = scratch + s->off_dw;
        memset(dw, 0, F * s->kg * sizeof *dw);
        if (db) {
            db = scratch + s->off_db;
            memset(db, 0, F * sizeof *db);
        }
    }
    size_t n0, n1;

    if (s->plan == CONV_GROUPED) {
        size_t ng = group_count(s, N);
        piece_range(ng, t, nt, &n0, &n1);
        for (size_t j = n0; j < n1; j++) {
            size_t g0 = N * j / ng, gn = N * (j + 1) / ng - g0;
            size_t ld = gn * P;
            /* dy gathered to [F][ld] (tmp), adding up db on the way. */
            for (size_t f = 0; want_dw && f < F; f++) {
                double sum = 0.0;
                for (size_t i = 0; i < gn; i++) {
                    const float *src = dy + ((g0 + i) * F + f) * P;
                    memcpy(tmp + f * ld + i * P, src, P * sizeof *tmp);
                    if (db) sum += row_sum(src, P);
                }
                if (db) db[f] += (float)sum;
            }
            const float *gcol = col;                    /* [K][ld] */
            if (!want_dw) {
                /* no weight gradient to make */
            } else if (s->cache) {
                gcol = l->saved + g0 * K * P;
            } else {
                for (size_t i = 0; i < gn; i++) {
                    const float *src = x + (g0 + i) * CHW;
                    if (s->padded) {
                        pad_image(s, src, xp);
                        src = xp;
                    }
                    im2col(s, src, 0, P, col + i * P, ld);
                }
            }
            if (want_dw) gemm_dw(s, tmp, ld, gcol, ld, ld, dw);
            if (!dx) continue;
            /* The columns' gradient of the whole group in one GEMM from the
             * gathered dy (an image's alone would be a GEMM only P columns
             * wide: 4 on a 2x2 map, where OpenBLAS crawls), then col2im
             * image by image. */
            for (size_t f = 0; !want_dw && f < F; f++)
                for (size_t i = 0; i < gn; i++)
                    memcpy(tmp + f * ld + i * P, dy + ((g0 + i) * F + f) * P,
                           P * sizeof *tmp);
            memset(col, 0, K * ld * sizeof *col);
            gemm_dcol(s, w, tmp, ld, ld, col, ld);
            for (size_t i = 0; i < gn; i++) {
                float *dxn = dx + (g0 + i) * CHW;
                if (assign) memset(dxn, 0, CHW * sizeof *dxn);
                if (s->padded) {
                    memset(dxp, 0, planes * sizeof *dxp);
                    col2im(s, col + i * P, 0, P, ld, dxp);
                    fold_image(s, dxp, dxn);
                } else {
                    col2im(s, col + i * P, 0, P, ld, dxn);
                }
            }
        }
        return;
    }

#ifdef CONV_VECTORS
    if (s->plan == CONV_TILED && s->wino) {
        /* The weight gradient in chunks of s->wino_group images, its 16
         * products summed over the piece's images, then the input gradient
         * image by image. */
        const size_t C = s->c, th = s->h / 2, tiles = th * (s->w / 2);
        float *g = scratch + s->off_wg;
        piece_range(N, t, nt, &n0, &n1);
        if (want_dw) memset(g, 0, 16 * F * C * sizeof *g);
        for (size_t c0 = n0; want_dw && c0 < n1; c0 += s->wino_group) {
            const size_t cn = n1 - c0 < s->wino_group ? n1 - c0 : s->wino_group;
            const size_t T = cn * tiles;
            float *v = scratch + s->off_wv, *m = v + 16 * wino_stride(C, T);
            for (size_t i = 0; i < cn; i++) {
                wino_split(x + (c0 + i) * CHW, C, s->h, s->w, xp);
                wino_input(xp, C, s->h, s->w, 0, th, T, v + i * tiles);
                wino_dy(dy + (c0 + i) * F * P, F, s->h, s->w, T, m + i * tiles);
            }
            for (size_t xi = 0; xi < 16; xi++)
                wino_dw_gemm(m + xi * wino_stride(F, T), F, v + xi * wino_stride(C, T), C, T,
                             g + xi * F * C);
        }
        if (want_dw) wino_dw_out(g, F, C, dw);
        for (size_t n = n0; n < n1; n++) {
            for (size_t f = 0; db && f < F; f++)
                db[f] += (float)row_sum(dy + (n * F + f) * P, P);
            if (dx)
                wino_image(s, dy + n * F * P, F, C, s->h, s->w, l->work + s->off_pack, NULL,
                           assign ? 0 : TILED_ADD, dxp, scratch + s->off_wv, dx + n * CHW);
        }
        return;
    }
    if (s->plan == CONV_TILED) {
        /* Chunks of s->group images: the weight gradient sums over a
         * chunk's padded images at once (fewer sums across lanes); the
         * input gradient goes image by image. */
        const size_t xs = align_up(planes);
        piece_range(N, t, nt, &n0, &n1);
        for (size_t c0 = n0; c0 < n1; c0 += s->group) {
            const size_t cn = n1 - c0 < s->group ? n1 - c0 : s->group;
            for (size_t n = c0; db && n < c0 + cn; n++)
                for (size_t f = 0; f < F; f++)
                    db[f] += (float)row_sum(dy + (n * F + f) * P, P);
            if (want_dw) {
                const float *src = x + c0 * CHW;
                size_t stride = CHW;
                if (s->padded) {
                    for (size_t i = 0; i < cn; i++)
                        zero_pad(x + (c0 + i) * CHW, s->c, s->h, s->w, s->ph, s->pw,
                                 xp + i * xs);
                    src = xp;
                    stride = xs;
                }
                tiled_dw(src, stride, cn, s->c, s->kh, s->kw, dy + c0 * F * P, F, s->oh,
                         s->ow, dw);
            }
            for (size_t n = c0; dx && n < c0 + cn; n++) {
                /* the turned filters: packed by conv_backward */
                zero_pad(dy + n * F * P, F, s->oh, s->ow, s->kh - 1 - s->ph,
                         s->kw - 1 - s->pw, dxp);
                tiled_pass(dxp, F, s->kh, s->kw, l->work + s->off_pack, s->c, s->h, s->w,
                           NULL, assign ? 0 : TILED_ADD, dx + n * CHW);
            }
        }
        return;
    }
#endif
    if (s->plan == CONV_DIRECT)
        memset(xp + planes, 0, CONV_SLACK * sizeof *xp);
    piece_range(N, t, nt, &n0, &n1);
    for (size_t n = n0; n < n1; n++) {
        const float *dyn = dy + n * F * P;              /* [F][P] */
        const float *xn = x + n * CHW;
        float *dxn = dx ? dx + n * CHW : NULL;
        if (dxn && assign) memset(dxn, 0, CHW * sizeof *dxn);   /* the paths below add */
        if (db)
            for (size_t f = 0; f < F; f++) db[f] += (float)row_sum(dyn + f * P, P);
        if (s->plan == CONV_POINTWISE) {
            if (want_dw) gemm_dw(s, dyn, P, xn, P, P, dw);
            if (dxn)
                gemm_dcol(s, w, dyn, P, P, dxn, P);
            continue;
        }
#ifdef CONV_VECTORS
        if (s->plan == CONV_DIRECT) {
            /* dy with its rows padded to whole vectors: [F][OH][owv]. */
            for (size_t r = 0; r < F * s->oh; r++) {
                float *row = tmp + r * s->owv;
                copy_span(row, dyn + r * s->ow, s->ow);
                for (size_t i = s->ow; i < s->owv; i++) row[i] = 0.0f;
            }
            if (want_dw) {
                pad_image(s, xn, xp);
                direct_dw(s, xp, tmp, dw);
            }
            if (!dxn) continue;
        }
#endif
        if (s->padded && !s->cache && s->plan != CONV_DIRECT && want_dw) {
            pad_image(s, xn, xp);
            xn = xp;
        }
        float *grad = dxn;                              /* where col2im adds */
        if (dxn && s->padded) {
            memset(dxp, 0, planes * sizeof *dxp);
            grad = dxp;
        }
        for (size_t p0 = 0; p0 < P; p0 += s->cols) {
            size_t cn = P - p0 < s->cols ? P - p0 : s->cols;
            const float *dyc = dyn + p0;                /* [F][cn], stride P */
            if (s->plan != CONV_DIRECT && want_dw) {
                const float *ccol = col;                /* [K][cn] */
                size_t ld = cn;
                if (s->cache) {
                    ccol = l->saved + n * K * P + p0;   /* [K][P] from p0 */
                    ld = P;
                } else {
                    im2col(s, xn, p0, cn, col, cn);
                }
                gemm_dw(s, dyc, P, ccol, ld, cn, dw);
            }
            if (!dxn) continue;
            memset(col, 0, K * cn * sizeof *col);
            gemm_dcol(s, w, dyc, P, cn, col, cn);
            col2im(s, col, p0, cn, cn, grad);
        }
        if (dxn && s->padded)
            fold_image(s, dxp, dxn);
    }
}

static void conv_backward(cnn_layer *l)
{
    const conv_settings *s = l->settings;
    const size_t F = s->filters, KG = s->kg;
#ifdef CONV_VECTORS
    if (s->plan == CONV_TILED && l->dx[0] && s->wino)
        wino_pack(l->params[0].data, F, s->c, 1, l->work + s->off_pack);
    else if (s->plan == CONV_TILED && l->dx[0])
        pack_turned(l->params[0].data, F, s->c, s->kh, s->kw, l->work + s->off_pack);
#endif
    size_t units = s->plan == CONV_GROUPED ? group_count(s, l->batch) : l->batch;
    size_t nt = conv_pieces(l, units);
    conv_run(backward_piece, l, nt);
    /* The partials of pieces 1.. in piece order. */
    float *dw = l->params[0].grad;                      /* [F][Kg] */
    float *db = s->bias ? l->params[1].grad : NULL;     /* [F] */
    for (size_t t = 1; t < nt && cnn_layer_param_grads(l); t++) {
        const float *part = l->work + t * s->scratch;
        for (size_t i = 0; i < F * KG; i++) dw[i] += part[s->off_dw + i];
        if (db)
            for (size_t f = 0; f < F; f++) db[f] += part[s->off_db + f];
    }
}

static void conv_describe(const cnn_layer *l, char *buf, size_t n)
{
    const conv_settings *s = l->settings;
    char stride[48], pad[48], dil[48] = "", groups[32] = "";
    if (s->sh == s->sw) snprintf(stride, sizeof stride, "%zu", s->sh);
    else snprintf(stride, sizeof stride, "%zux%zu", s->sh, s->sw);
    if (s->ph == s->pw) snprintf(pad, sizeof pad, "%zu", s->ph);
    else snprintf(pad, sizeof pad, "%zux%zu", s->ph, s->pw);
    if (s->dh != s->dw) snprintf(dil, sizeof dil, " d%zux%zu", s->dh, s->dw);
    else if (s->dh > 1) snprintf(dil, sizeof dil, " d%zu", s->dh);
    if (s->groups > 1) snprintf(groups, sizeof groups, " g%zu", s->groups);
    snprintf(buf, n, "%zux%zu s%s p%s%s%s %s%s", s->kh, s->kw, stride, pad, dil, groups,
             s->reflect ? "reflect" : "zero", s->bias ? "" : " nobias");
}

const cnn_layer_kind cnn_layer_conv = {
    .name = "conv",
    .summary = "2-D convolution (filters, kernel, stride, pad, dilation, groups, "
               "padding_mode, bias, init)",
    .settings_size = sizeof(conv_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = conv_parse,
    .infer = conv_infer,
    .forward = conv_forward,
    .backward = conv_backward,
    .assigns_dx = 1,
    .describe = conv_describe,
};
