/*
 * Gradient checks for the spatial layers: conv (in every plan its infer can
 * pick: grouped small images, large images split in column chunks, and the
 * 1x1 direct path), dense, flatten, maxpool, avgpool and globalavgpool,
 * each against central differences (tests/gradcheck.h).
 *
 * Conv also runs against a plain reference written with nested loops in
 * double, forward and backward, on shapes that make each plan cut its
 * chunks across rows and images; that compares every value tightly where
 * the finite differences would be slow.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "net.h"
#include "rng.h"

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
    /* Plans: grouped with a partial last group (40x40 outputs: 2 images per
     * chunk, batch 3), split across rows (67x65 = 4355 outputs in 2 chunks),
     * and the direct 1x1 path (64x64). */
    GRAD("conv", ((cnn_shape){1, 40, 40}), &b3, "filters", "2", "kernel", "3", "pad", "1");
    GRAD("conv", ((cnn_shape){1, 67, 65}), &b1, "filters", "2", "kernel", "3", "pad", "1",
         "padding_mode", "reflect");
    GRAD("conv", ((cnn_shape){2, 64, 64}), &b1, "filters", "3", "kernel", "1");
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
} ref_conv;

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
    memset(dx, 0, n * r->c * r->h * r->w * sizeof *dx);
    memset(dw, 0, r->f * r->c * r->kh * r->kw * sizeof *dw);
    memset(db, 0, r->f * sizeof *db);
    for (size_t i = 0; i < ysize; i++) y[i] = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t f = 0; f < r->f; f++)
            for (size_t oy = 0; oy < r->oh; oy++)
                for (size_t ox = 0; ox < r->ow; ox++) {
                    size_t yi = ((s * r->f + f) * r->oh + oy) * r->ow + ox;
                    double acc = b ? b[f] : 0.0;
                    db[f] += dy[yi];
                    for (size_t c = 0; c < r->c; c++)
                        for (size_t ky = 0; ky < r->kh; ky++)
                            for (size_t kx = 0; kx < r->kw; kx++) {
                                long iy = ref_index((long)(oy * r->sh + ky) - (long)r->ph,
                                                    (long)r->h, r->reflect);
                                long ix = ref_index((long)(ox * r->sw + kx) - (long)r->pw,
                                                    (long)r->w, r->reflect);
                                if (iy < 0 || ix < 0) continue;
                                size_t xi = ((s * r->c + c) * r->h + (size_t)iy) * r->w
                                            + (size_t)ix;
                                size_t wi = ((f * r->c + c) * r->kh + ky) * r->kw + kx;
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

/* Build conv with the given options, run forward and backward on random
 * values and compare everything with ref_run. */
static void reference_case(const char *what, ref_conv r, size_t batch, int bias)
{
    char opt[8][32];
    const char *lst[4][2];
    cnn_opt items[8];
    memset(items, 0, sizeof items);
    size_t no = 0;
    snprintf(opt[0], 32, "%zu", r.f);
    items[no++] = (cnn_opt){.key = "filters", .text = opt[0]};
    snprintf(opt[1], 32, "%zu", r.kh);
    snprintf(opt[2], 32, "%zu", r.kw);
    lst[0][0] = opt[1];
    lst[0][1] = opt[2];
    items[no++] = (cnn_opt){.key = "kernel", .items = lst[0], .nitems = 2};
    snprintf(opt[3], 32, "%zu", r.sh);
    snprintf(opt[4], 32, "%zu", r.sw);
    lst[1][0] = opt[3];
    lst[1][1] = opt[4];
    items[no++] = (cnn_opt){.key = "stride", .items = lst[1], .nitems = 2};
    snprintf(opt[5], 32, "%zu", r.ph);
    snprintf(opt[6], 32, "%zu", r.pw);
    lst[2][0] = opt[5];
    lst[2][1] = opt[6];
    items[no++] = (cnn_opt){.key = "pad", .items = lst[2], .nitems = 2};
    items[no++] = (cnn_opt){.key = "padding_mode", .text = r.reflect ? "reflect" : "zero"};
    items[no++] = (cnn_opt){.key = "bias", .text = bias ? "true" : "false"};
    cnn_layer_spec spec = {0};
    spec.kind = "conv";
    spec.opts.items = items;
    spec.opts.n = no;
    cnn_model_spec model = {{r.c, r.h, r.w}, &spec, 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, batch, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", what, e.msg);
    if (!net)
        return;
    cnn_layer *l = cnn_net_output(net);
    r.oh = l->out.h;
    r.ow = l->out.w;
    uint64_t rng = cnn_rng_seed(3, 1);
    cnn_net_init(net, &rng);
    if (bias)
        for (size_t i = 0; i < r.f; i++) l->params[1].data[i] = cnn_rng_normal(&rng);
    size_t nx = batch * r.c * r.h * r.w, ny = batch * cnn_shape_size(l->out);
    size_t nw = l->params[0].size;
    for (size_t i = 0; i < nx; i++) net->x[i] = cnn_rng_normal(&rng);
    float *dy = malloc(ny * sizeof *dy);
    for (size_t i = 0; i < ny; i++) dy[i] = cnn_rng_normal(&rng);
    double *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
    double *dw = malloc(nw * sizeof *dw), *db = malloc(r.f * sizeof *db);
    ref_run(&r, batch, net->x, l->params[0].data, bias ? l->params[1].data : NULL, dy,
            y, dx, dw, db);

    cnn_net_forward(net, batch, 1);
    memcpy(l->dy, dy, ny * sizeof *dy);
    net->want_input_grad = 1;
    cnn_net_backward(net);
    char name[160];
    printf("%s: %zux%zux%zux%zu -> %zux%zux%zu\n", what, batch, r.c, r.h, r.w, r.f,
           r.oh, r.ow);
    snprintf(name, sizeof name, "  y");
    compare(name, l->y, y, ny, 1e-5);
    snprintf(name, sizeof name, "  dx");
    compare(name, net->dx, dx, nx, 1e-5);
    snprintf(name, sizeof name, "  dw");
    compare(name, l->params[0].grad, dw, nw, 1e-5);
    if (bias) {
        snprintf(name, sizeof name, "  db");
        compare(name, l->params[1].grad, db, r.f, 1e-5);
    }
    free(dy);
    free(y);
    free(dx);
    free(dw);
    free(db);
    cnn_net_free(net);
}

static void test_conv_reference(void)
{
    /* Grouped: 9x9 outputs, many images per chunk, batch 5. */
    reference_case("grouped 3x3 p1", (ref_conv){.c = 3, .h = 9, .w = 9, .f = 4, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1}, 5, 1);
    /* Grouped with a partial last group: 40x40 outputs, 2 per chunk. */
    reference_case("grouped partial", (ref_conv){.c = 1, .h = 42, .w = 42, .f = 2,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 0, .pw = 0}, 3, 1);
    /* Split: 73x71 outputs in 2 chunks that end mid-row, reflect. */
    reference_case("split reflect", (ref_conv){.c = 2, .h = 73, .w = 71, .f = 3, .kh = 3,
                   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .reflect = 1}, 2, 1);
    /* Split with stride and a non-square kernel and pad. */
    reference_case("split strided 5x3", (ref_conv){.c = 2, .h = 150, .w = 139, .f = 2,
                   .kh = 5, .kw = 3, .sh = 2, .sw = 2, .ph = 2, .pw = 1}, 2, 0);
    /* Direct 1x1: 64x64 outputs. */
    reference_case("direct 1x1", (ref_conv){.c = 5, .h = 64, .w = 64, .f = 3, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1}, 2, 1);
    /* 1x1 on small images goes through the grouped path. */
    reference_case("grouped 1x1", (ref_conv){.c = 6, .h = 7, .w = 5, .f = 4, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1}, 3, 1);
    /* A batch of one: small images take the split path (one chunk), and a
     * 1x1 the direct path. */
    reference_case("batch 1 reflect s2", (ref_conv){.c = 3, .h = 11, .w = 10, .f = 4,
                   .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .reflect = 1},
                   1, 1);
    reference_case("batch 1 1x1", (ref_conv){.c = 4, .h = 5, .w = 6, .f = 3, .kh = 1,
                   .kw = 1, .sh = 1, .sw = 1}, 1, 1);
    /* 1x1 with stride 2 is not the direct path. */
    reference_case("strided 1x1", (ref_conv){.c = 3, .h = 9, .w = 8, .f = 2, .kh = 1,
                   .kw = 1, .sh = 2, .sw = 2}, 2, 1);
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
    cnn_opt items[4];
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
    test_conv_no_dx();
    test_accumulation();
    return test_done();
}
