/*
 * Gradient checks for the spatial layers: conv (in every plan its infer can
 * pick: direct for inputs of few channels, tiled (and by Winograd), grouped
 * small images, images one by one in column chunks, with and without the
 * columns kept from forward, and the 1x1 pointwise path), dense, flatten, maxpool, avgpool and
 * globalavgpool, each against central differences (tests/gradcheck.h).
 *
 * Conv also runs against a plain reference written with nested loops in
 * double, forward and backward, on shapes that make each plan cut its
 * chunks across rows and images and its tiles past rows and filters; that
 * compares every value tightly where the finite differences would be slow.
 * Shapes large enough for conv to share them between threads run on one
 * and on two threads: both must match the reference, each other, and a
 * second run on two threads exactly. Grouped and dilated convs go through
 * all of these too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "net.h"
#include "parallel.h"
#include "rng.h"

/* Whether the tiled conv plan keeps columns: it keeps none; builds without
 * AVX take the image plan, which keeps them. */
#if defined(__GNUC__) && defined(__AVX__)
#define CONV_TILES_KEEP 0
#else
#define CONV_TILES_KEEP 1
#endif

#define GRAD(kind, in, opts, ...) do { \
    const char *kv_[] = {__VA_ARGS__, NULL}; \
    int bad_ = gradcheck_layer(kind, kv_, in, opts); \
    CHECK_MSG(bad_ == 0, "gradcheck %s: %d tensors failed", kind, bad_); \
} while (0)

#define GRAD_NOOPT(kind, in, opts) do { \
    int bad_ = gradcheck_layer(kind, NULL, in, opts); \
    CHECK_MSG(bad_ == 0, "gradcheck %s: %d tensors failed", kind, bad_); \
} while (0)

static void test_conv_grad(void)
{
    const gradcheck_opts b1 = {.batch = 1, .training = 1};
    const gradcheck_opts b3 = {.batch = 3, .training = 1};
    GRAD("conv", ((cnn_shape){2, 5, 5}), NULL, "filters", "3", "kernel", "3", "pad", "1");
    GRAD("conv", ((cnn_shape){2, 7, 7}), NULL, "filters", "2", "kernel", "3", "stride",
         "2");
    GRAD("conv", ((cnn_shape){2, 8, 7}), NULL, "filters", "2", "kernel", "3", "stride", "2",
         "pad", "1");
    GRAD("conv", ((cnn_shape){3, 4, 5}), NULL, "filters", "4", "kernel", "1");
    GRAD("conv", ((cnn_shape){2, 6, 9}), NULL, "filters", "2", "kernel", "[1, 7]", "pad",
         "[0, 3]");
    GRAD("conv", ((cnn_shape){2, 9, 6}), NULL, "filters", "2", "kernel", "[7, 1]", "pad",
         "[3, 0]");
    GRAD("conv", ((cnn_shape){2, 5, 6}), NULL, "filters", "2", "kernel", "3", "pad", "1",
         "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){1, 6, 5}), NULL, "filters", "2", "kernel", "5", "pad", "2",
         "stride", "2", "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){2, 4, 5}), NULL, "filters", "2", "kernel", "[3, 5]", "pad",
         "[1, 3]", "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){2, 5, 5}), NULL, "filters", "3", "kernel", "3", "bias",
         "false");
    GRAD("conv", ((cnn_shape){3, 6, 6}), &b3, "filters", "4", "kernel", "3", "pad", "same",
         "stride", "[1, 2]");
    /* Plans: direct (up to 3 channels, stride 1; the input gradient of the
     * 67x65 in 2 chunks, a 1x1), grouped (4 channels x 3x3 is too many taps
     * for direct), image by image (272 outputs) and pointwise (1x1, 256
     * outputs). */
    GRAD("conv", ((cnn_shape){1, 40, 40}), &b3, "filters", "2", "kernel", "3", "pad", "1");
    GRAD("conv", ((cnn_shape){1, 67, 65}), &b1, "filters", "2", "kernel", "3", "pad", "1",
         "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){2, 64, 64}), &b1, "filters", "3", "kernel", "1");
    GRAD("conv", ((cnn_shape){4, 5, 5}), &b3, "filters", "2", "kernel", "3", "pad", "1",
         "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){4, 17, 16}), &b1, "filters", "2", "kernel", "3", "pad", "1");
    GRAD("conv", ((cnn_shape){5, 16, 16}), &b1, "filters", "3", "kernel", "1");
    /* Tiled: 5 channels, rows of 8. */
    GRAD("conv", ((cnn_shape){5, 6, 8}), &b3, "filters", "5", "kernel", "3", "pad", "1");
    /* Groups: 2, depthwise (groups = channels, 2 filters each), and a
     * pointwise 1x1 in groups. */
    GRAD("conv", ((cnn_shape){4, 5, 5}), &b3, "filters", "6", "kernel", "3", "pad", "1",
         "groups", "2");
    GRAD("conv", ((cnn_shape){3, 6, 6}), NULL, "filters", "6", "kernel", "3", "pad", "1",
         "groups", "3");
    GRAD("conv", ((cnn_shape){4, 16, 16}), &b1, "filters", "6", "kernel", "1", "groups",
         "2");
    /* Dilation 2 with padding (zero and reflect, and pad same), and a
     * non-square [1, 2]. */
    GRAD("conv", ((cnn_shape){2, 7, 7}), NULL, "filters", "2", "kernel", "3", "dilation",
         "2", "pad", "1");
    GRAD("conv", ((cnn_shape){2, 6, 7}), NULL, "filters", "2", "kernel", "3", "dilation",
         "2", "pad", "same", "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){2, 6, 9}), NULL, "filters", "3", "kernel", "3", "dilation",
         "[1, 2]", "pad", "[1, 1]");
    /* A first layer that would take the direct plan without them. */
    GRAD("conv", ((cnn_shape){1, 40, 40}), &b3, "filters", "2", "kernel", "3", "pad", "2",
         "dilation", "2");
    GRAD("conv", ((cnn_shape){2, 20, 20}), &b3, "filters", "2", "kernel", "3", "groups",
         "2");
    /* Groups, dilation and stride together. */
    GRAD("conv", ((cnn_shape){4, 9, 8}), &b3, "filters", "6", "kernel", "3", "stride", "2",
         "dilation", "2", "groups", "2", "pad", "1");
    GRAD("conv", ((cnn_shape){4, 11, 10}), &b1, "filters", "4", "kernel", "[3, 2]",
         "stride", "[2, 1]", "dilation", "[2, 3]", "groups", "4", "pad", "[1, 2]");
}

static void test_other_grads(void)
{
    const gradcheck_opts b3 = {.batch = 3, .training = 1};
    const gradcheck_opts distinct = {.distinct_inputs = 1, .training = 1};
    GRAD("dense", ((cnn_shape){3, 2, 2}), &b3, "units", "5");
    GRAD("dense", ((cnn_shape){7, 1, 1}), NULL, "units", "3", "bias", "false");
    GRAD_NOOPT("flatten", ((cnn_shape){2, 3, 3}), NULL);
    GRAD_NOOPT("maxpool", ((cnn_shape){2, 4, 4}), &distinct);
    GRAD("maxpool", ((cnn_shape){2, 5, 5}), &distinct, "size", "3", "stride", "2", "pad",
         "1");
    GRAD("maxpool", ((cnn_shape){1, 5, 6}), &distinct, "size", "[2, 3]", "stride", "1");
    GRAD_NOOPT("avgpool", ((cnn_shape){2, 4, 4}), NULL);
    GRAD("avgpool", ((cnn_shape){2, 5, 5}), NULL, "size", "3", "stride", "2", "pad", "1");
    GRAD("avgpool", ((cnn_shape){1, 5, 6}), NULL, "size", "[2, 3]", "stride", "1",
         "pad", "[1, 0]");
    GRAD_NOOPT("globalavgpool", ((cnn_shape){3, 4, 5}), &b3);
}

/* The reference: one conv with explicit loops in double. */
typedef struct ref_conv {
    size_t c, h, w, f, kh, kw, sh, sw, ph, pw, oh, ow;
    int reflect;
    size_t groups, dh, dw;   /* 0: 1 */
} ref_conv;

static size_t or_one(size_t v)
{
    return v ? v : 1;
}

/* Index into the input for padded position i of an axis of size n; -1 for
 * a zero. */
static long ref_index(long i, long n, int reflect)
{
    if (i >= 0 && i < n) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (n - 1) - i;
}

/* Forward y [n][f][oh][ow] and, given dy, dx [n][c][h][w], dw, db (all
 * overwritten), in double. */
static void ref_run(const ref_conv *r, size_t n, const float *x, const float *w,
                    const float *b, const float *dy, double *y, double *dx,
                    double *dw, double *db)
{
    size_t ysize = n * r->f * r->oh * r->ow;
    const size_t groups = or_one(r->groups), dh = or_one(r->dh), dil_w = or_one(r->dw);
    const size_t cg = r->c / groups, fg = r->f / groups;
    memset(dx, 0, n * r->c * r->h * r->w * sizeof *dx);
    memset(dw, 0, r->f * cg * r->kh * r->kw * sizeof *dw);
    memset(db, 0, r->f * sizeof *db);
    for (size_t i = 0; i < ysize; i++) y[i] = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t f = 0; f < r->f; f++)
            for (size_t oy = 0; oy < r->oh; oy++)
                for (size_t ox = 0; ox < r->ow; ox++) {
                    size_t yi = ((s * r->f + f) * r->oh + oy) * r->ow + ox;
                    double acc = b ? b[f] : 0.0;
                    db[f] += dy[yi];
                    /* Filter f sees channels c0..c0+cg-1 of its group. */
                    const size_t c0 = f / fg * cg;
                    for (size_t c = c0; c < c0 + cg; c++)
                        for (size_t ky = 0; ky < r->kh; ky++)
                            for (size_t kx = 0; kx < r->kw; kx++) {
                                long iy = ref_index((long)(oy * r->sh + ky * dh) -
                                                    (long)r->ph, (long)r->h, r->reflect);
                                long ix = ref_index((long)(ox * r->sw + kx * dil_w) -
                                                    (long)r->pw, (long)r->w, r->reflect);
                                if (iy < 0 || ix < 0) continue;
                                size_t xi = ((s * r->c + c) * r->h + (size_t)iy) * r->w
                                            + (size_t)ix;
                                size_t wi = ((f * cg + c - c0) * r->kh + ky) * r->kw
                                            + kx;
                                acc += (double)w[wi] * x[xi];
                                dw[wi] += (double)dy[yi] * x[xi];
                                dx[xi] += (double)dy[yi] * w[wi];
                            }
                    y[yi] = acc;
                }
}

/* Compare with a tolerance relative to the largest reference value. */
static void compare(const char *what, const float *got, const double *want, size_t n,
                    double rel)
{
    float *w = malloc(n * sizeof *w);
    double scale = 1;
    for (size_t i = 0; i < n; i++) {
        w[i] = (float)want[i];
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    check_floats(what, got, w, n, rel * scale);
    free(w);
}

/* One training pass of a conv layer: what went in and what came out. */
typedef struct conv_pass {
    size_t nx, ny, nw, nb;         /* floats in x and dx, y and dy, w and dw, b and db */
    size_t saved_per_sample;       /* the layer's: > 0 when it keeps its columns */
    float *x, *w, *b, *dy;         /* inputs (b: NULL without bias) */
    float *y, *dx, *dw, *db;       /* outputs (db: NULL without bias) */
} conv_pass;

static void conv_pass_free(conv_pass *p)
{
    free(p->x);
    free(p->w);
    free(p->b);
    free(p->dy);
    free(p->y);
    free(p->dx);
    free(p->dw);
    free(p->db);
}

static float *copy_of(const float *v, size_t n)
{
    float *c = malloc((n ? n : 1) * sizeof *c);
    if (n) memcpy(c, v, n * sizeof *c);
    return c;
}

/* Build conv r for batches of up to max_batch with `threads` threads in
 * force, fill its parameters, the first n inputs and dy from a fixed
 * seed, run forward and backward on those n samples and keep everything in
 * *out (r gets the output size). Returns 0 when the net cannot be built. */
static int conv_pass_run(ref_conv *r, size_t max_batch, size_t n, int bias, int threads,
                         conv_pass *out)
{
    char opt[10][32];
    const char *lst[4][2];
    cnn_opt items[10];
    memset(items, 0, sizeof items);
    memset(out, 0, sizeof *out);
    size_t no = 0;
    snprintf(opt[0], 32, "%zu", r->f);
    items[no++] = (cnn_opt){.key = "filters", .text = opt[0]};
    snprintf(opt[1], 32, "%zu", r->kh);
    snprintf(opt[2], 32, "%zu", r->kw);
    lst[0][0] = opt[1];
    lst[0][1] = opt[2];
    items[no++] = (cnn_opt){.key = "kernel", .items = lst[0], .nitems = 2};
    snprintf(opt[3], 32, "%zu", r->sh);
    snprintf(opt[4], 32, "%zu", r->sw);
    lst[1][0] = opt[3];
    lst[1][1] = opt[4];
    items[no++] = (cnn_opt){.key = "stride", .items = lst[1], .nitems = 2};
    snprintf(opt[5], 32, "%zu", r->ph);
    snprintf(opt[6], 32, "%zu", r->pw);
    lst[2][0] = opt[5];
    lst[2][1] = opt[6];
    items[no++] = (cnn_opt){.key = "pad", .items = lst[2], .nitems = 2};
    items[no++] = (cnn_opt){.key = "padding_mode", .text = r->reflect ? "reflect" : "zero"};
    items[no++] = (cnn_opt){.key = "bias", .text = bias ? "true" : "false"};
    snprintf(opt[7], 32, "%zu", or_one(r->dh));
    snprintf(opt[8], 32, "%zu", or_one(r->dw));
    lst[3][0] = opt[7];
    lst[3][1] = opt[8];
    items[no++] = (cnn_opt){.key = "dilation", .items = lst[3], .nitems = 2};
    snprintf(opt[9], 32, "%zu", or_one(r->groups));
    items[no++] = (cnn_opt){.key = "groups", .text = opt[9]};
    cnn_layer_spec spec = {0};
    spec.kind = "conv";
    spec.opts.items = items;
    spec.opts.n = no;
    cnn_model_spec model = {{r->c, r->h, r->w}, &spec, 1, 0};
    cnn_error e = {0};
    cnn_set_threads(threads);       /* before building: the plan reads it */
    cnn_net *net = cnn_net_create(&model, max_batch, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net)
        return 0;
    cnn_layer *l = cnn_net_output(net);
    r->oh = l->out.h;
    r->ow = l->out.w;
    uint64_t rng = cnn_rng_seed(3, 1);
    cnn_net_init(net, &rng);
    if (bias)
        for (size_t i = 0; i < r->f; i++) l->params[1].data[i] = cnn_rng_normal(&rng);
    out->nx = n * r->c * r->h * r->w;
    out->ny = n * cnn_shape_size(l->out);
    out->nw = l->params[0].size;
    out->nb = bias ? r->f : 0;
    out->saved_per_sample = l->saved_per_sample;
    for (size_t i = 0; i < out->nx; i++) net->x[i] = cnn_rng_normal(&rng);
    out->dy = malloc(out->ny * sizeof *out->dy);
    for (size_t i = 0; i < out->ny; i++) out->dy[i] = cnn_rng_normal(&rng);
    out->x = copy_of(net->x, out->nx);
    out->w = copy_of(l->params[0].data, out->nw);
    out->b = bias ? copy_of(l->params[1].data, out->nb) : NULL;

    cnn_net_forward(net, n, 1);
    memcpy(l->dy, out->dy, out->ny * sizeof *out->dy);
    net->want_input_grad = 1;
    cnn_net_backward(net);
    out->y = copy_of(l->y, out->ny);
    out->dx = copy_of(net->dx, out->nx);
    out->dw = copy_of(l->params[0].grad, out->nw);
    out->db = bias ? copy_of(l->params[1].grad, out->nb) : NULL;
    /* The layer's backward called by itself adds its input gradient to
     * what is there (the net's first writer wrote it instead). */
    for (size_t i = 0; i < out->nx; i++) net->dx[i] = (float)(i % 7) - 3.0f;
    l->kind->backward(l);
    float worst = 0.0f;
    for (size_t i = 0; i < out->nx; i++) {
        /* relative to what was added up */
        float d = fabsf(net->dx[i] - ((float)(i % 7) - 3.0f) - out->dx[i]) /
                  (4.0f + fabsf(out->dx[i]));
        if (!(d <= worst)) worst = d;
    }
    CHECK_MSG(worst <= 1e-5f, "backward adding to dx is off by %g (relative)",
              (double)worst);
    cnn_net_free(net);
    return 1;
}

/* Compare a pass with the double reference on the same inputs. */
static void compare_reference(const ref_conv *r, size_t n, const conv_pass *p)
{
    double *y = malloc(p->ny * sizeof *y), *dx = malloc(p->nx * sizeof *dx);
    double *dw = malloc(p->nw * sizeof *dw), *db = malloc(r->f * sizeof *db);
    ref_run(r, n, p->x, p->w, p->b, p->dy, y, dx, dw, db);
    compare("  y", p->y, y, p->ny, 1e-5);
    compare("  dx", p->dx, dx, p->nx, 1e-5);
    compare("  dw", p->dw, dw, p->nw, 1e-5);
    if (p->b)
        compare("  db", p->db, db, r->f, 1e-5);
    free(y);
    free(dx);
    free(dw);
    free(db);
}

/* Build conv with the given options on one thread, run forward and
 * backward on random values and compare everything with ref_run. */
static void reference_case(const char *what, ref_conv r, size_t batch, int bias)
{
    conv_pass p;
    if (!conv_pass_run(&r, batch, batch, bias, 1, &p))
        return;
    printf("%s: %zux%zux%zux%zu -> %zux%zux%zu%s\n", what, batch, r.c, r.h, r.w, r.f,
           r.oh, r.ow, p.saved_per_sample ? ", columns kept" : "");
    compare_reference(&r, batch, &p);
    conv_pass_free(&p);
}

static void test_conv_reference(void)
{
    int threads = cnn_threads();
    /* Grouped: 9x9 outputs, many images per GEMM, batch 5. */
    reference_case("grouped 3x3 p1", (ref_conv){.c = 4, .h = 9, .w = 9, .f = 4, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 5, 1);
    /* Grouped with padding too wide for the columns to be kept (16*5*5
     * rows x 196 outputs), reflect. */
    reference_case("grouped 5x5 reflect", (ref_conv){.c = 16, .h = 14, .w = 14, .f = 3,
                   .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 2, .pw = 2, .reflect = 1},
                   3, 1);
    /* Image by image, columns kept (36 x 324). */
    reference_case("image 3x3 p1", (ref_conv){.c = 4, .h = 18, .w = 18, .f = 5, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 3, 1);
    /* Image by image: 73x71 outputs in 2 chunks that end mid-row, reflect. */
    reference_case("chunks reflect", (ref_conv){.c = 4, .h = 73, .w = 71, .f = 3, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .reflect = 1}, 2, 1);
    /* Chunks with stride and a non-square kernel and pad. */
    reference_case("chunks strided 5x3", (ref_conv){.c = 2, .h = 150, .w = 139, .f = 2,
                   .kh = 5, .kw = 3, .sh = 2, .sw = 2, .ph = 2, .pw = 1}, 2, 0);
    /* Pointwise 1x1: 64x64 outputs. */
    reference_case("pointwise 1x1", (ref_conv){.c = 5, .h = 64, .w = 64, .f = 3, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1}, 2, 1);
    /* 1x1 on small images goes through the grouped path. */
    reference_case("grouped 1x1", (ref_conv){.c = 6, .h = 7, .w = 5, .f = 4, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1}, 3, 1);
    /* A batch of one: small images go image by image, a 1x1 pointwise. */
    reference_case("batch 1 reflect s2", (ref_conv){.c = 3, .h = 11, .w = 10, .f = 4,
                   .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .reflect = 1},
                   1, 1);
    reference_case("batch 1 1x1", (ref_conv){.c = 4, .h = 5, .w = 6, .f = 3, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1}, 1, 1);
    /* 1x1 with stride 2 is not the pointwise path. */
    reference_case("strided 1x1", (ref_conv){.c = 3, .h = 9, .w = 8, .f = 2, .kh = 1,
                   .kw = 1, .sh = 2, .sw = 2}, 2, 1);
    /* Direct (few channels, stride 1): LeNet's first layer (rows of 28
     * outputs: a second tile overlapping the first), rows under one tile
     * (9 outputs), filters and taps that do not fill the kernels' 6 x 16
     * and 3 x 4 tiles, a non-square kernel, and chunks for the input
     * gradient (73x71). */
    reference_case("direct lenet c1", (ref_conv){.c = 1, .h = 28, .w = 28, .f = 6,
                   .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 2, .pw = 2}, 3, 1);
    reference_case("direct 3x3 reflect", (ref_conv){.c = 3, .h = 9, .w = 9, .f = 7,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .reflect = 1},
                   2, 1);
    reference_case("direct 3x5", (ref_conv){.c = 1, .h = 10, .w = 40, .f = 5, .kh = 3,
                   .kw = 5, .sh = 1, .sw = 1, .ph = 1, .pw = 2}, 2, 0);
    reference_case("direct chunks reflect", (ref_conv){.c = 2, .h = 73, .w = 71, .f = 4,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .reflect = 1},
                   2, 1);
    reference_case("direct 1x1 16 wide", (ref_conv){.c = 2, .h = 5, .w = 16, .f = 8,
                   .kh = 1, .kw = 1, .sh = 1, .sw = 1}, 3, 1);
    /* Tiled (stride 1, zero padding, rows of whole vectors of 8, more than
     * direct's channels): filters past a tile of 4 and 3, taps past a
     * tile of 4, a pad of kernel - 1 (the input gradient's conv pads dy
     * by nothing), no padding at all, and outputs that do not fill the
     * last tile of 3 vectors. */
    reference_case("tiled 3x3 p1", (ref_conv){.c = 8, .h = 16, .w = 16, .f = 6, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 3, 1);
    reference_case("tiled 5x5 p2", (ref_conv){.c = 5, .h = 8, .w = 8, .f = 5, .kh = 5,
                   .kw = 5, .sh = 1, .sw = 1, .ph = 2, .pw = 2}, 2, 1);
    reference_case("tiled 3x1 unpadded", (ref_conv){.c = 4, .h = 10, .w = 8, .f = 4,
                   .kh = 3, .kw = 1, .sh = 1, .sw = 1}, 2, 0);
    reference_case("tiled 3x3 p[0,1]", (ref_conv){.c = 6, .h = 7, .w = 16, .f = 7,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 0, .pw = 1}, 2, 1);
    reference_case("tiled 3x3 p[2,1]", (ref_conv){.c = 4, .h = 8, .w = 8, .f = 8,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 2, .pw = 1}, 3, 1);
    /* Tiled by Winograd (3x3 pad 1, rows of 16 or 32 or 8, 16 channels or
     * more each way): filters and channels past a tile of 4 (34, 17),
     * images of one and three tile rows, chunks of 3 tile rows (64
     * channels each way on rows of 32: the last of 8 rows takes 2), chunks
     * of 5 tile rows and then 1 (the weight gradient: 2 images, then 1); 8 wide (rows of 4 tiles, taken two by two) in one
     * chunk, in chunks of 6 and then 2, and past tiles of 4 channels. */
    reference_case("winograd 3x3 p1", (ref_conv){.c = 32, .h = 6, .w = 16, .f = 34,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 3, 1);
    reference_case("winograd 3x3 p1 c17", (ref_conv){.c = 17, .h = 2, .w = 32, .f = 16,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 2, 0);
    reference_case("winograd 3x3 p1 chunks", (ref_conv){.c = 64, .h = 16, .w = 32, .f = 64,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 2, 1);
    reference_case("winograd 3x3 p1 remainder", (ref_conv){.c = 32, .h = 32, .w = 32,
                   .f = 36, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 3, 1);
    reference_case("winograd 8 wide", (ref_conv){.c = 32, .h = 8, .w = 8, .f = 32,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 3, 1);
    reference_case("winograd 8 wide chunks", (ref_conv){.c = 128, .h = 16, .w = 8,
                   .f = 128, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 2, 1);
    reference_case("winograd 8 wide c36", (ref_conv){.c = 36, .h = 4, .w = 8, .f = 33,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 2, 0);
    /* Groups and dilation in every plan: grouped images (columns kept, and
     * too wide to keep, reflect), image by image, chunks with stride,
     * pointwise, and shapes that would take the direct plan without them. */
    reference_case("grouped g2 d2", (ref_conv){.c = 4, .h = 9, .w = 9, .f = 6, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 2, .pw = 2, .groups = 2, .dh = 2,
                   .dw = 2}, 5, 1);
    reference_case("grouped depthwise 5x5 reflect d[2,1]", (ref_conv){.c = 16, .h = 14,
                   .w = 14, .f = 16, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 3, .pw = 2,
                   .reflect = 1, .groups = 16, .dh = 2, .dw = 1}, 3, 1);
    reference_case("image g4 d[1,2]", (ref_conv){.c = 8, .h = 18, .w = 20, .f = 4,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 2, .groups = 4,
                   .dh = 1, .dw = 2}, 3, 1);
    reference_case("chunks g2 d3 s2", (ref_conv){.c = 4, .h = 150, .w = 139, .f = 6,
                   .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 3, .groups = 2,
                   .dh = 3, .dw = 3}, 2, 0);
    reference_case("pointwise g2", (ref_conv){.c = 6, .h = 16, .w = 16, .f = 4, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1, .groups = 2}, 2, 1);
    reference_case("grouped 1x1 g3", (ref_conv){.c = 6, .h = 7, .w = 5, .f = 9, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1, .groups = 3}, 3, 1);
    reference_case("not direct: d2", (ref_conv){.c = 1, .h = 28, .w = 28, .f = 6, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 2, .pw = 2, .dh = 2, .dw = 2}, 3, 1);
    reference_case("not direct: g3", (ref_conv){.c = 3, .h = 32, .w = 32, .f = 6, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .reflect = 1,
                   .groups = 3}, 2, 1);
    cnn_set_threads(threads);
}

/* The same conv on one and two threads: both match the reference, agree
 * with each other, and two runs on two threads agree exactly (the weight
 * gradient's partials are added in a fixed order). The shapes are large
 * enough (at least 2^20 multiply-adds a pass) for conv to use the threads;
 * n < max_batch runs a batch smaller than the plan's. keeps_columns: whether
 * the plan must keep forward's columns for backward (-1: either; the direct
 * plan keeps none, but builds without AVX take the columns route). */
static void threads_case(const char *what, ref_conv r, size_t max_batch, size_t n,
                         int keeps_columns)
{
    conv_pass one, two, again;
    if (!conv_pass_run(&r, max_batch, n, 1, 1, &one))
        return;
    printf("%s: %zux%zux%zux%zu -> %zux%zux%zu, 1 thread%s\n", what, n, r.c, r.h, r.w,
           r.f, r.oh, r.ow, one.saved_per_sample ? ", columns kept" : "");
    if (keeps_columns >= 0)
        CHECK_MSG((one.saved_per_sample > 0) == keeps_columns,
                  "%s: keeps its columns: %zu floats per sample", what,
                  one.saved_per_sample);
    compare_reference(&r, n, &one);
    if (!conv_pass_run(&r, max_batch, n, 1, 2, &two)) {
        conv_pass_free(&one);
        return;
    }
    printf("%s: 2 threads\n", what);
    compare_reference(&r, n, &two);
    const float *a[4] = {one.y, one.dx, one.dw, one.db},
                *b[4] = {two.y, two.dx, two.dw, two.db};
    const size_t len[4] = {one.ny, one.nx, one.nw, one.nb};
    const char *names[4] = {"  y, 1 vs 2 threads", "  dx, 1 vs 2 threads",
                            "  dw, 1 vs 2 threads", "  db, 1 vs 2 threads"};
    for (size_t k = 0; k < 4; k++) {
        double scale = 1;
        for (size_t i = 0; i < len[k]; i++)
            if (fabs(a[k][i]) > scale) scale = fabs(a[k][i]);
        check_floats(names[k], b[k], a[k], len[k], 1e-5 * scale);
    }
    if (conv_pass_run(&r, max_batch, n, 1, 2, &again)) {
        CHECK_MSG(!memcmp(two.y, again.y, two.ny * sizeof *two.y) &&
                  !memcmp(two.dx, again.dx, two.nx * sizeof *two.dx) &&
                  !memcmp(two.dw, again.dw, two.nw * sizeof *two.dw) &&
                  !memcmp(two.db, again.db, two.nb * sizeof *two.db),
                  "%s: two runs on 2 threads differ", what);
        conv_pass_free(&again);
    }
    conv_pass_free(&one);
    conv_pass_free(&two);
}

static void test_conv_threads(void)
{
    int threads = cnn_threads();
    /* Tiled: no columns kept (the image plan would keep these: 72 x 256),
     * 9 images in chunks for the weight gradient, cut between 2 threads. */
    threads_case("threads tiled", (ref_conv){.c = 8, .h = 16, .w = 16, .f = 16, .kh = 3,
                 .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 9, 9, CONV_TILES_KEEP);
    /* Winograd: 9 images of 8x8 cut between 2 threads, each thread's
     * weight gradient summed over its images and added in piece order. */
    threads_case("threads winograd", (ref_conv){.c = 32, .h = 8, .w = 8, .f = 40, .kh = 3,
                 .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 9, 9, CONV_TILES_KEEP);
    /* Grouped, columns kept: 7 images in groups of 3 and 4 on 2 threads. */
    threads_case("threads grouped", (ref_conv){.c = 8, .h = 10, .w = 10, .f = 24, .kh = 3,
                 .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 7, 7, 1);
    /* The same planned for 9 and run on 7. */
    threads_case("threads grouped, short batch", (ref_conv){.c = 8, .h = 10, .w = 10,
                 .f = 24, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 9, 7, 1);
    /* Grouped, columns too large to keep, reflect. */
    threads_case("threads grouped 5x5", (ref_conv){.c = 16, .h = 14, .w = 14, .f = 8,
                 .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 2, .pw = 2, .reflect = 1},
                 3, 3, 0);
    /* Image by image, columns kept. */
    threads_case("threads image", (ref_conv){.c = 4, .h = 18, .w = 18, .f = 24, .kh = 3,
                 .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 5, 5, 1);
    /* Image by image in chunks, strided. */
    threads_case("threads chunks", (ref_conv){.c = 4, .h = 150, .w = 139, .f = 4,
                 .kh = 5, .kw = 3, .sh = 2, .sw = 2, .ph = 2, .pw = 1}, 2, 2, 0);
    /* A batch of one: the forward shares one image's chunks. */
    threads_case("threads batch 1", (ref_conv){.c = 4, .h = 40, .w = 40, .f = 24,
                 .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 1, 1, 0);
    /* Pointwise. */
    threads_case("threads pointwise", (ref_conv){.c = 16, .h = 20, .w = 20, .f = 24,
                 .kh = 1, .kw = 1, .sh = 1, .sw = 1}, 10, 10, 0);
    /* Direct: LeNet's first layer, and three channels with reflect. */
    threads_case("threads direct lenet c1", (ref_conv){.c = 1, .h = 28, .w = 28, .f = 6,
                 .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 2, .pw = 2}, 10, 10, -1);
    threads_case("threads direct reflect", (ref_conv){.c = 3, .h = 32, .w = 32, .f = 16,
                 .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .reflect = 1},
                 4, 4, -1);
    /* Groups and dilation: grouped images, image by image, and the chunks
     * of a batch of one. */
    threads_case("threads grouped g4 d2", (ref_conv){.c = 16, .h = 10, .w = 10, .f = 48,
                 .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 2, .pw = 2, .groups = 4,
                 .dh = 2, .dw = 2}, 7, 7, 1);
    threads_case("threads image g2 d[2,1]", (ref_conv){.c = 4, .h = 18, .w = 18, .f = 48,
                 .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 2, .pw = 1, .groups = 2,
                 .dh = 2, .dw = 1}, 5, 5, -1);
    threads_case("threads batch 1 depthwise d2", (ref_conv){.c = 16, .h = 48, .w = 48,
                 .f = 64, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 2, .pw = 2,
                 .groups = 16, .dh = 2, .dw = 2}, 1, 1, 0);
    cnn_set_threads(threads);
}

/* The first layer of a net gets dx = NULL: backward must skip it and still
 * fill the parameter gradients. */
static void test_conv_no_dx(void)
{
    cnn_opt items[2] = {{.key = "filters", .text = "2"}, {.key = "kernel", .text = "3"}};
    cnn_layer_spec spec = {.kind = "conv", .opts = {.items = items, .n = 2}};
    cnn_model_spec model = {{1, 5, 5}, &spec, 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, 2, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net)
        return;
    uint64_t rng = 5;
    cnn_net_init(net, &rng);
    for (size_t i = 0; i < 50; i++) net->x[i] = 1.0f;
    cnn_layer *l = cnn_net_output(net);
    cnn_net_forward(net, 2, 1);
    for (size_t i = 0; i < 2 * 18; i++) l->dy[i] = 1.0f;
    cnn_net_backward(net);
    CHECK(l->dx[0] == NULL);
    /* dL/dw = sum over 2 images and 9 positions of x = 1: 18 each;
     * dL/db = 18. */
    for (size_t i = 0; i < l->params[0].size; i++)
        CHECK_NEAR(l->params[0].grad[i], 18, 1e-4);
    CHECK_NEAR(l->params[1].grad[0], 18, 1e-4);
    cnn_net_free(net);
}

/* Backward must add into dx and the parameter gradients, not overwrite
 * them: a second backward call on the same dy doubles every gradient. */
static void check_accumulates(const char *kind, const cnn_opt *opts, size_t nopts,
                              cnn_shape in)
{
    cnn_opt items[8];
    if (nopts)
        memcpy(items, opts, nopts * sizeof *items);
    cnn_layer_spec spec = {.kind = kind, .opts = {.items = items, .n = nopts}};
    cnn_model_spec model = {in, &spec, 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, 2, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", kind, e.msg);
    if (!net)
        return;
    uint64_t rng = cnn_rng_seed(9, 2);
    cnn_net_init(net, &rng);
    cnn_layer *l = cnn_net_output(net);
    size_t nx = 2 * cnn_shape_size(in), ny = 2 * cnn_shape_size(l->out);
    for (size_t i = 0; i < nx; i++) net->x[i] = cnn_rng_normal(&rng);
    cnn_net_forward(net, 2, 1);
    for (size_t i = 0; i < ny; i++) l->dy[i] = cnn_rng_normal(&rng);
    net->want_input_grad = 1;
    cnn_net_backward(net);
    float *once = malloc((nx + net->nparam_floats) * sizeof *once);
    memcpy(once, net->dx, nx * sizeof *once);
    memcpy(once + nx, net->grads, net->nparam_floats * sizeof *once);
    l->kind->backward(l);
    double worst = 0;
    for (size_t i = 0; i < nx + net->nparam_floats; i++) {
        float got = i < nx ? net->dx[i] : net->grads[i - nx];
        double d = fabs((double)got - 2.0 * once[i]);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-4, "%s: a second backward does not double the gradients "
              "(off by %g): it must accumulate", kind, worst);
    free(once);
    cnn_net_free(net);
}

static void test_accumulation(void)
{
    const cnn_opt conv[] = {{.key = "filters", .text = "3"},
                            {.key = "kernel", .text = "3"}, {.key = "pad", .text = "1"}};
    const cnn_opt conv1[] = {{.key = "filters", .text = "3"},
                             {.key = "kernel", .text = "1"}};
    const cnn_opt dense[] = {{.key = "units", .text = "4"}};
    check_accumulates("conv", conv, 3, (cnn_shape){2, 5, 5});
    check_accumulates("conv", conv, 3, (cnn_shape){1, 67, 65});
    check_accumulates("conv", conv1, 2, (cnn_shape){2, 64, 64});
    const cnn_opt convgd[] = {{.key = "filters", .text = "4"},
                              {.key = "kernel", .text = "3"}, {.key = "pad", .text = "2"},
                              {.key = "dilation", .text = "2"},
                              {.key = "groups", .text = "2"}};
    check_accumulates("conv", convgd, 5, (cnn_shape){2, 6, 6});
    check_accumulates("dense", dense, 1, (cnn_shape){2, 3, 3});
    check_accumulates("flatten", NULL, 0, (cnn_shape){2, 3, 3});
    check_accumulates("maxpool", NULL, 0, (cnn_shape){2, 4, 4});
    check_accumulates("avgpool", NULL, 0, (cnn_shape){2, 4, 4});
    check_accumulates("globalavgpool", NULL, 0, (cnn_shape){2, 4, 4});
}

int main(void)
{
    test_conv_grad();
    test_other_grads();
    test_conv_reference();
    test_conv_threads();
    test_conv_no_dx();
    test_accumulation();
    return test_done();
}
