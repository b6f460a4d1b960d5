/*
 * The decoder layers, upsample and conv_transpose:
 *  - hand-computed values: nearest and bilinear (align_corners=False) on
 *    2-cell rows and 2x2 planes; transposed convolutions of 2x2 inputs
 *    (stride 1 and 2, pad, output_padding, bias) and the weight layout
 *    [in_c][filters][kh][kw];
 *  - PyTorch's nn.Upsample and nn.ConvTranspose2d on small random cases:
 *    output, input gradient and parameter gradients against
 *    fixtures/upsample/reference.txt (scripts/make-upsample-fixture.py);
 *  - finite-difference gradient checks (tests/gradcheck.h);
 *  - backward accumulates; conv_transpose on 1 and 2 threads;
 *  - output shapes, and bad options in YAML with their messages and
 *    line:column.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gradcheck.h"
#include "harness.h"
#include "net.h"
#include "parallel.h"
#include "rng.h"

#define MAX_OPTS 8

/* A net of one layer of `kind` with options kv ("key", "value", ...,
 * NULL; a value "[a,b]" is a list) for batches of `batch`. */
typedef struct one_net {
    cnn_opt items[MAX_OPTS];
    char texts[MAX_OPTS][32];
    const char *lists[MAX_OPTS][2];
    char list_texts[MAX_OPTS][2][16];
    cnn_net *net;
} one_net;

static cnn_net *build(one_net *o, const char *kind, const char *const *kv, cnn_shape in,
                      size_t batch, cnn_error *e)
{
    size_t n = 0;
    memset(o, 0, sizeof *o);
    for (size_t i = 0; kv && kv[i] && n < MAX_OPTS; i += 2, n++) {
        o->items[n].key = kv[i];
        snprintf(o->texts[n], sizeof o->texts[n], "%s", kv[i + 1]);
        int a, b;
        if (sscanf(o->texts[n], "[%d,%d]", &a, &b) == 2) {
            snprintf(o->list_texts[n][0], 16, "%d", a);
            snprintf(o->list_texts[n][1], 16, "%d", b);
            o->lists[n][0] = o->list_texts[n][0];
            o->lists[n][1] = o->list_texts[n][1];
            o->items[n].items = o->lists[n];
            o->items[n].nitems = 2;
        } else {
            o->items[n].text = o->texts[n];
        }
    }
    cnn_layer_spec spec = {.kind = kind, .opts = {.items = o->items, .n = n}};
    cnn_model_spec model = {in, &spec, 1, 0};
    cnn_error_clear(e);
    o->net = cnn_net_create(&model, batch, e);
    return o->net;
}

/* Run one layer forward on x (and, when dy is given, backward) and compare
 * y (and dx, dw, db where not NULL) with the expected values. */
static void run_layer(const char *what, const char *kind, const char *const *kv,
                      cnn_shape in, size_t batch, const float *x, const float *w,
                      const float *b, const float *y, const float *dy, const float *dx,
                      const float *dw, const float *db, double tol)
{
    one_net o;
    cnn_error e;
    cnn_net *net = build(&o, kind, kv, in, batch, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", what, e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    size_t nx = batch * cnn_shape_size(in), ny = batch * cnn_shape_size(l->out);
    memcpy(net->x, x, nx * sizeof *x);
    if (w) memcpy(l->params[0].data, w, l->params[0].size * sizeof *w);
    if (b && l->nparams > 1) memcpy(l->params[1].data, b, l->params[1].size * sizeof *b);
    cnn_net_forward(net, batch, 1);
    char name[160];
    snprintf(name, sizeof name, "%s: y", what);
    check_floats(name, l->y, y, ny, tol);
    if (dy) {
        memcpy(l->dy, dy, ny * sizeof *dy);
        net->want_input_grad = 1;
        cnn_net_backward_from(net, net->nlayers - 1);
        snprintf(name, sizeof name, "%s: dx", what);
        if (dx) check_floats(name, net->dx, dx, nx, tol);
        snprintf(name, sizeof name, "%s: dweight", what);
        if (dw) check_floats(name, l->params[0].grad, dw, l->params[0].size, tol);
        snprintf(name, sizeof name, "%s: dbias", what);
        if (db && l->nparams > 1) check_floats(name, l->params[1].grad, db, l->params[1].size, tol);
    }
    cnn_net_free(net);
}

static void test_upsample_by_hand(void)
{
    /* A row [1, 2] doubled: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25
     * (clamped to the last cell): 1, 1.25, 1.75, 2. */
    const float row[] = {1, 2}, row_nearest[] = {1, 1, 2, 2},
                row_bilinear[] = {1, 1.25f, 1.75f, 2};
    run_layer("nearest row", "upsample", (const char *[]){"scale", "[1,2]", NULL},
              (cnn_shape){1, 1, 2}, 1, row, NULL, NULL, row_nearest, NULL, NULL, NULL,
              NULL, 0);
    run_layer("bilinear row", "upsample",
              (const char *[]){"scale", "[1,2]", "mode", "bilinear", NULL},
              (cnn_shape){1, 1, 2}, 1, row, NULL, NULL, row_bilinear, NULL, NULL, NULL,
              NULL, 1e-6);
    /* A 2x2 plane: rows interpolate as the row above, then columns. The
     * gradient of a dy of ones gives each input cell the sum of its weights:
     * 4 each (by symmetry, as every output's weights sum to 1). */
    const float plane[] = {0, 4, 8, 12};
    const float nearest[] = {0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 12, 12, 8, 8, 12, 12};
    const float bilinear[] = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};
    float ones[16];
    const float fours[4] = {4, 4, 4, 4};
    for (size_t i = 0; i < 16; i++) ones[i] = 1;
    run_layer("nearest 2x2", "upsample", NULL, (cnn_shape){1, 2, 2}, 1, plane, NULL, NULL,
              nearest, ones, fours, NULL, NULL, 0);
    run_layer("bilinear 2x2", "upsample", (const char *[]){"mode", "bilinear", NULL},
              (cnn_shape){1, 2, 2}, 1, plane, NULL, NULL, bilinear, ones, fours, NULL,
              NULL, 1e-6);
    /* One-hot dy at output (1, 2) of the bilinear 2x2: row source 0.25, column
     * source 0.75, so cells (0,0) (0,1) (1,0) (1,1) get .75*.25, .75*.75,
     * .25*.25, .25*.75. */
    float hot[16] = {0};
    hot[1 * 4 + 2] = 1;
    const float dhot[4] = {0.1875f, 0.5625f, 0.0625f, 0.1875f};
    run_layer("bilinear 2x2 one-hot dy", "upsample", (const char *[]){"mode", "bilinear",
              NULL}, (cnn_shape){1, 2, 2}, 1, plane, NULL, NULL, bilinear, hot, dhot,
              NULL, NULL, 1e-6);
}

static void test_conv_transpose_by_hand(void)
{
    /* Stride 1, a 2x2 kernel of ones on [[1, 2], [3, 4]]: each input adds
     * itself to a 2x2 block of the 3x3 output. */
    const float x[] = {1, 2, 3, 4}, ones[] = {1, 1, 1, 1};
    const float full[] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    run_layer("k2 s1", "conv_transpose",
              (const char *[]){"filters", "1", "kernel", "2", "bias", "false", NULL},
              (cnn_shape){1, 2, 2}, 1, x, ones, NULL, full, NULL, NULL, NULL, NULL, 0);
    /* pad 1 crops one cell off each side: the centre, 10; with bias 0.5. */
    const float centre[] = {10.5f}, half[] = {0.5f};
    run_layer("k2 s1 p1 bias", "conv_transpose",
              (const char *[]){"filters", "1", "kernel", "2", "pad", "1", NULL},
              (cnn_shape){1, 2, 2}, 1, x, ones, half, centre, NULL, NULL, NULL, NULL, 0);
    /* Stride 2 with kernel [[1, 2], [3, 4]] on [[1, 0], [0, 2]]: the kernel
     * stamped at (0, 0) and, doubled, at (2, 2). Backward with dy = y:
     * dx = <y block, kernel> = 1+4+9+16 = 30 at (0,0), 60 at (1,1), 0 else;
     * dW[i] = sum over inputs of x * dy = 1*k[i] + 2*(2k[i]) = 5 k[i]. */
    const float diag[] = {1, 0, 0, 2}, k[] = {1, 2, 3, 4};
    const float stamp[] = {1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 2, 4, 0, 0, 6, 8};
    const float dx[] = {30, 0, 0, 60}, dw[] = {5, 10, 15, 20};
    run_layer("k2 s2", "conv_transpose",
              (const char *[]){"filters", "1", "kernel", "2", "stride", "2", "bias",
              "false", NULL}, (cnn_shape){1, 2, 2}, 1, diag, k, NULL, stamp, stamp, dx,
              dw, NULL, 1e-6);
    /* output_padding 1 on a 1x2 input, kernel 1, stride 2: (0)*2+1+1 = 2 rows,
     * (2-1)*2+1+1 = 4 columns; the added row and column get only the bias. */
    const float one_two[] = {1, 2}, unit[] = {1};
    const float padded[] = {1.5f, 0.5f, 2.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    run_layer("k1 s2 op1", "conv_transpose",
              (const char *[]){"filters", "1", "kernel", "1", "stride", "2",
              "output_padding", "1", NULL}, (cnn_shape){1, 1, 2}, 1, one_two, unit, half,
              padded, NULL, NULL, NULL, NULL, 0);
    /* The layout [in_c][filters][kh][kw]: 2 inputs, 3 filters, 1x1 kernel,
     * y[f] = sum_c w[c][f] x[c] = [1+40, 2+50, 3+60]; db = dy. */
    const float two[] = {1, 10}, w23[] = {1, 2, 3, 4, 5, 6}, y3[] = {41, 52, 63};
    const float dy3[] = {1, -1, 2}, dx2[] = {1 - 2 + 6, 4 - 5 + 12},
                dw23[] = {1, -1, 2, 10, -10, 20};
    run_layer("layout", "conv_transpose",
              (const char *[]){"filters", "3", "kernel", "1", "bias", "false", NULL},
              (cnn_shape){2, 1, 1}, 1, two, w23, NULL, y3, dy3, dx2, dw23, NULL, 0);
}

/* ---- PyTorch reference ------------------------------------------------ */

typedef struct ref_case {
    char name[64], kind[32];
    const char *kv[2 * MAX_OPTS + 1];
    char opt_text[2 * MAX_OPTS][32];
    size_t nkv;
    size_t in[4], out[4];
    float *t[8];      /* x weight bias y dy dx dweight dbias */
    size_t n[8];
} ref_case;

static const char *const tensor_names[8] = {"x", "weight", "bias", "y", "dy", "dx",
                                            "dweight", "dbias"};

static void free_case(ref_case *c)
{
    for (size_t i = 0; i < 8; i++) free(c->t[i]);
    memset(c, 0, sizeof *c);
}

static void run_case(ref_case *c)
{
    if (!c->name[0]) return;
    c->kv[c->nkv] = NULL;
    cnn_shape in = {c->in[1], c->in[2], c->in[3]};
    size_t batch = c->in[0];
    size_t want_x = batch * cnn_shape_size(in), want_y = c->out[0] * c->out[1] * c->out[2] * c->out[3];
    CHECK_MSG(c->n[0] == want_x && c->n[3] == want_y && c->n[4] == want_y &&
              c->n[5] == want_x, "fixture case %s is malformed", c->name);
    if (c->n[0] != want_x || c->n[3] != want_y) return;
    /* The output shape first. */
    one_net o;
    cnn_error e;
    cnn_net *net = build(&o, c->kind, c->kv, in, batch, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", c->name, e.msg);
    if (!net) return;
    cnn_shape out = cnn_net_output(net)->out;
    CHECK_MSG(out.c == c->out[1] && out.h == c->out[2] && out.w == c->out[3],
              "%s: output %zux%zux%zu, PyTorch's is %zux%zux%zu", c->name, out.c, out.h,
              out.w, c->out[1], c->out[2], c->out[3]);
    int same = out.c == c->out[1] && out.h == c->out[2] && out.w == c->out[3];
    cnn_net_free(net);
    if (!same) return;
    char what[128];
    snprintf(what, sizeof what, "torch %s %s", c->kind, c->name);
    run_layer(what, c->kind, c->kv, in, batch, c->t[0], c->t[1], c->t[2], c->t[3],
              c->t[4], c->t[5], c->t[6], c->t[7], 2e-5);
}

static void test_torch_reference(void)
{
    char path[1024];
    const char *dir = getenv("FIXTURES");
    snprintf(path, sizeof path, "%s/upsample/reference.txt", dir ? dir : "tests/fixtures");
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0, cases = 0;
    ref_case c;
    memset(&c, 0, sizeof c);
    while (getline(&line, &cap, f) > 0) {
        char *save = NULL, *key = strtok_r(line, " \n", &save);
        if (!key || key[0] == '#') continue;
        if (!strcmp(key, "case")) {
            run_case(&c);
            free_case(&c);
            const char *name = strtok_r(NULL, " \n", &save);
            const char *kind = strtok_r(NULL, " \n", &save);
            snprintf(c.name, sizeof c.name, "%s", name ? name : "?");
            snprintf(c.kind, sizeof c.kind, "%s", kind ? kind : "?");
            cases++;
        } else if (!strcmp(key, "opt") && c.nkv + 2 < 2 * MAX_OPTS) {
            for (int k = 0; k < 2; k++) {
                const char *v = strtok_r(NULL, " \n", &save);
                snprintf(c.opt_text[c.nkv], 32, "%s", v ? v : "");
                c.kv[c.nkv] = c.opt_text[c.nkv];
                c.nkv++;
            }
        } else if (!strcmp(key, "in") || !strcmp(key, "out")) {
            size_t *d = key[0] == 'i' ? c.in : c.out;
            for (int k = 0; k < 4; k++) {
                const char *v = strtok_r(NULL, " \n", &save);
                d[k] = v ? strtoul(v, NULL, 10) : 0;
            }
        } else {
            size_t which = 8;
            for (size_t i = 0; i < 8; i++)
                if (!strcmp(key, tensor_names[i])) which = i;
            CHECK_MSG(which < 8, "%s: unknown line '%s'", path, key);
            if (which == 8 || c.t[which]) continue;
            size_t n = 0, room = 64;
            float *v = malloc(room * sizeof *v);
            for (char *tok; v && (tok = strtok_r(NULL, " \n", &save));) {
                if (n == room) {
                    float *g = realloc(v, 2 * room * sizeof *v);
                    if (!g) break;
                    v = g;
                    room *= 2;
                }
                v[n++] = strtof(tok, NULL);
            }
            c.t[which] = v;
            c.n[which] = n;
        }
    }
    run_case(&c);
    free_case(&c);
    free(line);
    fclose(f);
    CHECK_MSG(cases == 12, "%s: %zu cases, expected 12", path, cases);
}

/* ---- gradients, accumulation, threads --------------------------------- */

#define GRAD(kind, in, opts, ...) do { \
    const char *kv_[] = {__VA_ARGS__, NULL}; \
    int bad_ = gradcheck_layer(kind, kv_, in, opts); \
    CHECK_MSG(bad_ == 0, "gradcheck %s: %d tensors failed", kind, bad_); \
} while (0)

static void test_gradients(void)
{
    const gradcheck_opts b3 = {.batch = 3, .training = 1};
    GRAD("upsample", ((cnn_shape){2, 3, 4}), NULL, "scale", "2");
    GRAD("upsample", ((cnn_shape){2, 3, 2}), &b3, "scale", "[3, 2]");
    GRAD("upsample", ((cnn_shape){2, 3, 4}), NULL, "mode", "bilinear");
    GRAD("upsample", ((cnn_shape){1, 4, 3}), &b3, "scale", "[2, 3]", "mode", "bilinear");
    GRAD("upsample", ((cnn_shape){2, 1, 1}), NULL, "scale", "3", "mode", "bilinear");
    GRAD("conv_transpose", ((cnn_shape){3, 4, 4}), NULL, "filters", "2", "kernel", "3");
    GRAD("conv_transpose", ((cnn_shape){2, 3, 4}), &b3, "filters", "3", "kernel", "4",
         "stride", "2", "pad", "1");
    GRAD("conv_transpose", ((cnn_shape){2, 3, 3}), NULL, "filters", "2", "kernel", "3",
         "stride", "2", "pad", "1", "output_padding", "1", "bias", "false");
    GRAD("conv_transpose", ((cnn_shape){2, 4, 3}), NULL, "filters", "2", "kernel",
         "[3, 2]", "stride", "[2, 3]", "pad", "[2, 0]", "output_padding", "[1, 2]",
         "init", "glorot");
    /* The decoder pattern: upsample then conv, and a transposed conv into a
     * conv, as whole models. */
    cnn_opt up[] = {{.key = "mode", .text = "bilinear"}};
    cnn_opt conv[] = {{.key = "filters", .text = "2"}, {.key = "kernel", .text = "3"},
                      {.key = "pad", .text = "1"}};
    cnn_opt ct[] = {{.key = "filters", .text = "3"}, {.key = "kernel", .text = "2"},
                    {.key = "stride", .text = "2"}};
    cnn_layer_spec specs[] = {
        {.kind = "upsample", .opts = {.items = up, .n = 1}},
        {.kind = "conv", .opts = {.items = conv, .n = 3}},
        {.kind = "conv_transpose", .opts = {.items = ct, .n = 3}},
        {.kind = "conv", .opts = {.items = conv, .n = 3}},
    };
    cnn_model_spec model = {{2, 3, 3}, specs, 4, 0};
    CHECK(gradcheck_model(&model, NULL) == 0);
}

/* A second backward on the same dy must double every gradient. */
static void check_accumulates(const char *kind, const char *const *kv, cnn_shape in)
{
    one_net o;
    cnn_error e;
    cnn_net *net = build(&o, kind, kv, in, 2, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", kind, e.msg);
    if (!net) return;
    uint64_t rng = cnn_rng_seed(4, 2);
    cnn_net_init(net, &rng);
    cnn_layer *l = cnn_net_output(net);
    size_t nx = 2 * cnn_shape_size(in), ny = 2 * cnn_shape_size(l->out);
    for (size_t i = 0; i < nx; i++) net->x[i] = cnn_rng_normal(&rng);
    cnn_net_forward(net, 2, 1);
    for (size_t i = 0; i < ny; i++) l->dy[i] = cnn_rng_normal(&rng);
    net->want_input_grad = 1;
    cnn_net_backward(net);
    size_t total = nx + net->nparam_floats;
    float *once = malloc(total * sizeof *once);
    memcpy(once, net->dx, nx * sizeof *once);
    memcpy(once + nx, net->grads, net->nparam_floats * sizeof *once);
    l->kind->backward(l);
    double worst = 0;
    for (size_t i = 0; i < total; i++) {
        double got = i < nx ? net->dx[i] : net->grads[i - nx];
        if (fabs(got - 2.0 * once[i]) > worst) worst = fabs(got - 2.0 * once[i]);
    }
    CHECK_MSG(worst < 1e-4, "%s: a second backward is off by %g: it must accumulate",
              kind, worst);
    free(once);
    cnn_net_free(net);
}

/* conv_transpose big enough to be cut between threads: 1 and 2 threads
 * agree, and two runs on 2 threads agree exactly. */
static void test_threads(void)
{
    const char *kv[] = {"filters", "8", "kernel", "4", "stride", "2", "pad", "1", NULL};
    const cnn_shape in = {8, 16, 16};
    const size_t batch = 5;
    int threads = cnn_threads();
    float *res[3] = {NULL, NULL, NULL};
    size_t n = 0;
    for (int run = 0; run < 3; run++) {
        cnn_set_threads(run ? 2 : 1);
        one_net o;
        cnn_error e;
        cnn_net *net = build(&o, "conv_transpose", kv, in, batch, &e);
        CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
        if (!net) break;
        uint64_t rng = cnn_rng_seed(3, 1);
        cnn_net_init(net, &rng);
        cnn_layer *l = cnn_net_output(net);
        size_t nx = batch * cnn_shape_size(in), ny = batch * cnn_shape_size(l->out);
        for (size_t i = 0; i < nx; i++) net->x[i] = cnn_rng_normal(&rng);
        for (size_t i = 0; i < l->params[1].size; i++) l->params[1].data[i] = cnn_rng_normal(&rng);
        cnn_net_forward(net, batch, 1);
        for (size_t i = 0; i < ny; i++) l->dy[i] = cnn_rng_normal(&rng);
        net->want_input_grad = 1;
        cnn_net_backward(net);
        n = ny + nx + net->nparam_floats;
        res[run] = malloc(n * sizeof *res[run]);
        memcpy(res[run], l->y, ny * sizeof(float));
        memcpy(res[run] + ny, net->dx, nx * sizeof(float));
        memcpy(res[run] + ny + nx, net->grads, net->nparam_floats * sizeof(float));
        cnn_net_free(net);
    }
    if (res[0] && res[1] && res[2]) {
        check_floats("conv_transpose 1 vs 2 threads", res[1], res[0], n, 1e-4);
        CHECK_MSG(!memcmp(res[1], res[2], n * sizeof(float)),
                  "conv_transpose: two runs on 2 threads differ");
    }
    for (int run = 0; run < 3; run++) free(res[run]);
    cnn_set_threads(threads);
}

/* ---- shapes and errors ------------------------------------------------- */

static void expect_shape(const char *kind, const char *const *kv, cnn_shape in,
                         cnn_shape want)
{
    one_net o;
    cnn_error e;
    cnn_net *net = build(&o, kind, kv, in, 1, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", kind, e.msg);
    if (!net) return;
    cnn_shape got = cnn_net_output(net)->out;
    CHECK_MSG(got.c == want.c && got.h == want.h && got.w == want.w,
              "%s on %zux%zux%zu: %zux%zux%zu, expected %zux%zux%zu", kind, in.c, in.h,
              in.w, got.c, got.h, got.w, want.c, want.h, want.w);
    cnn_net_free(net);
}

static void test_shapes(void)
{
    expect_shape("upsample", NULL, (cnn_shape){3, 5, 7}, (cnn_shape){3, 10, 14});
    expect_shape("upsample", (const char *[]){"scale", "[1,4]", "mode", "bilinear", NULL},
                 (cnn_shape){2, 3, 3}, (cnn_shape){2, 3, 12});
    /* (H-1)*s - 2p + k + op */
    expect_shape("conv_transpose", (const char *[]){"filters", "5", "kernel", "4",
                 "stride", "2", "pad", "1", NULL}, (cnn_shape){3, 8, 6},
                 (cnn_shape){5, 16, 12});
    expect_shape("conv_transpose", (const char *[]){"filters", "2", "kernel", "3",
                 "stride", "2", "pad", "1", "output_padding", "1", NULL},
                 (cnn_shape){1, 7, 7}, (cnn_shape){2, 14, 14});
    expect_shape("conv_transpose", (const char *[]){"filters", "1", "kernel", "[1,5]",
                 "stride", "[1,3]", NULL}, (cnn_shape){4, 2, 2}, (cnn_shape){1, 2, 8});
}

/* The config text of a net with one layer line; the layer is on line 6. */
static void expect_yaml_error(const char *layer, int line, int col, const char *msg)
{
    char text[512];
    snprintf(text, sizeof text,
             "data:\n  input: {channels: 2, height: 3, width: 3}\n"
             "model:\n  layers:\n    - conv: {filters: 2, kernel: 1}\n    - %s\n", layer);
    cnn_config cfg;
    cnn_error e = {0};
    cnn_status st = cnn_config_parse(text, strlen(text), "t.yaml", NULL, 0, &cfg, &e);
    CHECK_MSG(st == CNN_OK, "%s: config parse failed: %s", layer, e.msg);
    if (st) return;
    cnn_net *net = cnn_net_plan(&cfg.model, 1, &e);
    test_checks++;
    if (net || e.line != line || e.col != col || !strstr(e.msg, msg))
        test_fail(__FILE__, __LINE__, "%s: got %s%d:%d: %s\n    expected %d:%d: %s", layer,
                  net ? "success, " : "", e.line, e.col, e.msg, line, col, msg);
    cnn_net_free(net);
    cnn_config_free(&cfg);
}

static void test_errors(void)
{
    expect_yaml_error("upsample: {scale: 0}", 6, 25,
                      "layer 'upsample1' (upsample): scale must be an integer from 1 to "
                      "1024 or a list [height, width] of them, got \"0\"");
    expect_yaml_error("upsample: {scale: [2, 0]}", 6, 25, "scale must be an integer");
    expect_yaml_error("upsample: {scale: 1.5}", 6, 25, "got \"1.5\"");
    expect_yaml_error("upsample: {mode: bicubic}", 6, 24,
                      "layer 'upsample1' (upsample): mode must be one of nearest, "
                      "bilinear, got \"bicubic\"");
    expect_yaml_error("upsample: {mode: bilinaer}", 6, 24, "did you mean 'bilinear'?");
    expect_yaml_error("upsample: {name: up, scael: 2}", 6, 28,
                      "layer 'up' (upsample): unknown option 'scael'; did you mean "
                      "'scale'?");
    expect_yaml_error("conv_transpose: {kernel: 3}", 6, 7,
                      "layer 'conv_transpose1' (conv_transpose): the option 'filters' "
                      "is required");
    expect_yaml_error("conv_transpose: {filters: 2}", 6, 7, "the option 'kernel' is required");
    expect_yaml_error("conv_transpose: {filters: 2, kernel: 3, stride: 2, "
                      "output_padding: 2}", 6, 74,
                      "output_padding 2x2 must be smaller than the stride 2x2");
    expect_yaml_error("conv_transpose: {filters: 2, kernel: 3, output_padding: 1}", 6, 63,
                      "output_padding 1x1 must be smaller than the stride 1x1");
    expect_yaml_error("conv_transpose: {filters: 2, kernel: 1, pad: 2}", 6, 7,
                      "layer 'conv_transpose1' (conv_transpose): pad 2x2 leaves no output "
                      "of its input 2x3x3 (c x h x w; the uncropped output is 3x3)");
    expect_yaml_error("conv_transpose: {filters: 2, kernel: 3, padding_mode: reflect}",
                      6, 47, "unknown option 'padding_mode' (valid: filters, kernel, "
                      "stride, pad, output_padding, bias, init)");
    expect_yaml_error("conv_transpose: {filters: 2, kernel: 3, init: xavier}", 6, 53,
                      "init must be one of he, glorot, got \"xavier\"");
}

int main(void)
{
    test_upsample_by_hand();
    test_conv_transpose_by_hand();
    test_torch_reference();
    test_gradients();
    check_accumulates("upsample", (const char *[]){"scale", "[2,3]", NULL},
                      (cnn_shape){2, 3, 3});
    check_accumulates("upsample", (const char *[]){"mode", "bilinear", NULL},
                      (cnn_shape){2, 3, 4});
    check_accumulates("conv_transpose", (const char *[]){"filters", "3", "kernel", "3",
                      "stride", "2", "pad", "1", "output_padding", "1", NULL},
                      (cnn_shape){2, 4, 3});
    test_threads();
    test_shapes();
    test_errors();
    return test_done();
}
