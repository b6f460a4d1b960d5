/*
 * The graph layer kinds: add, concat and layernorm. Finite-difference
 * checks of whole multi-input graphs (residual branches, a three-input add,
 * concatenated branches feeding a convolution, layernorm alone and in a
 * small net); golden values computed by hand (a sum, the channel order of a
 * concatenation, a tiny layernorm); the shape errors with their exact
 * messages; and that each kind's backward adds into its gradients.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "net.h"
#include "rng.h"

#define MAXL 16
#define MAXO 4

/* A model spec written compactly, with storage for its strings. */
typedef struct graph {
    cnn_layer_spec specs[MAXL];
    cnn_opt opts[MAXL][MAXO];
    char text[MAXL][128];                   /* inputs and options, split in place */
    const char *inputs[MAXL][CNN_MAX_INPUTS];
    size_t n;
} graph;

/* Add a layer. inputs: "a,b,input" or NULL for the previous layer; opts:
 * "key=value key=value" or NULL. */
static void layer(graph *g, const char *name, const char *kind,
                  const char *inputs, const char *opts)
{
    size_t i = g->n++;
    cnn_layer_spec *s = &g->specs[i];
    *s = (cnn_layer_spec){.name = name, .kind = kind, .line = (int)i + 3, .col = 5};
    snprintf(g->text[i], sizeof g->text[i], "%s|%s", inputs ? inputs : "",
             opts ? opts : "");
    char *bar = strchr(g->text[i], '|');
    *bar = '\0';
    for (char *save, *t = strtok_r(g->text[i], ",", &save); t;
         t = strtok_r(NULL, ",", &save))
        g->inputs[i][s->ninputs++] = t;
    if (s->ninputs) s->inputs = g->inputs[i];
    s->opts.items = g->opts[i];
    for (char *save, *t = strtok_r(bar + 1, " ", &save); t && s->opts.n < MAXO;
         t = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        *eq = '\0';
        g->opts[i][s->opts.n++] = (cnn_opt){.key = t, .text = eq + 1};
    }
}

static cnn_model_spec model(const graph *g, cnn_shape in)
{
    return (cnn_model_spec){in, g->specs, g->n, 0};
}

/* kinks: the graph has relus inside it. A step that moves a pre-activation
 * across 0 (a bias step moves all of them at once) spoils the central
 * difference there, and with ~100 pre-activations one often lies within
 * the default step of 1e-2. Steps of 1e-3 rarely cross one but add float
 * noise to the differences (up to ~3e-3), hence the looser tolerance; with
 * seed 1 no pre-activation here lies within 5e-3 of its kink (other seeds
 * put some within 1e-3, where the check fails for that reason alone). */
static void grad_model(const char *what, const graph *g, cnn_shape in, int kinks)
{
    gradcheck_opts o = {0};
    o.batch = 2;
    o.training = 1;
    o.h = kinks ? 1e-3 : 1e-2;
    o.tol = kinks ? 1e-2 : 5e-3;
    o.seed = 1;
    cnn_model_spec m = model(g, in);
    int failed = gradcheck_model(&m, &o);
    CHECK_MSG(failed == 0, "gradcheck of %s: %d tensors failed", what, failed);
}

static void grad_layer(const char *kind, const char *const *kv, cnn_shape in,
                       int training)
{
    gradcheck_opts o = {0};
    o.batch = 3;
    o.training = training;
    o.tol = 5e-3;
    int failed = gradcheck_layer(kind, kv, in, &o);
    CHECK_MSG(failed == 0, "gradcheck %s on %zux%zux%zu: %d tensors failed",
              kind, in.c, in.h, in.w, failed);
}

static void test_gradients(void)
{
    graph g = {0};
    /* A residual-style pair of branches from the input, summed. */
    layer(&g, "a", "conv", "input", "filters=3 kernel=3 pad=1");
    layer(&g, "ra", "relu", "a", NULL);
    layer(&g, "b", "conv", "input", "filters=3 kernel=1");
    layer(&g, "rb", "relu", "b", NULL);
    layer(&g, "sum", "add", "ra,rb", NULL);
    grad_model("add of two conv/relu branches", &g, (cnn_shape){2, 5, 5}, 1);

    /* Three inputs, one of them the network input itself. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=3 kernel=3 pad=1");
    layer(&g, "b", "conv", "input", "filters=3 kernel=1");
    layer(&g, "sum", "add", "a,b,input", NULL);
    layer(&g, "c", "conv", NULL, "filters=2 kernel=3");
    grad_model("add of three inputs", &g, (cnn_shape){3, 4, 4}, 0);

    /* The same input twice: its gradient arrives once per appearance. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=2 kernel=3 pad=1");
    layer(&g, "sum", "add", "a,input,a", "project=false");
    grad_model("add with a repeated input", &g, (cnn_shape){2, 3, 3}, 0);

    /* Branches with different channel counts, joined, then a convolution
     * that mixes the joined channels. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=2 kernel=3 pad=1");
    layer(&g, "ra", "relu", "a", NULL);
    layer(&g, "b", "conv", "input", "filters=3 kernel=1");
    layer(&g, "cat", "concat", "ra,b", NULL);
    layer(&g, "c", "conv", "cat", "filters=2 kernel=3");
    grad_model("concat of two branches, then conv", &g, (cnn_shape){2, 4, 4}, 1);

    /* Three inputs, the network input among them, in a scrambled order. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=1 kernel=3 pad=1");
    layer(&g, "b", "conv", "input", "filters=3 kernel=1");
    layer(&g, "cat", "concat", "b,input,a", NULL);
    layer(&g, "c", "conv", "cat", "filters=2 kernel=1");
    grad_model("concat of three inputs", &g, (cnn_shape){2, 3, 3}, 0);

    /* layernorm alone, in both modes, and on a (C,1,1) input. */
    grad_layer("layernorm", NULL, (cnn_shape){3, 4, 5}, 1);
    grad_layer("layernorm", NULL, (cnn_shape){3, 4, 5}, 0);
    grad_layer("layernorm", (const char *const[]){"eps", "0.1", NULL},
               (cnn_shape){5, 1, 1}, 1);

    /* layernorm in a small net, on a residual branch. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=3 kernel=3 pad=1");
    layer(&g, "ln", "layernorm", "a", NULL);
    layer(&g, "r", "relu", "ln", NULL);
    layer(&g, "b", "conv", "r", "filters=2 kernel=1");
    layer(&g, "sum", "add", "b,input", NULL);
    grad_model("conv, layernorm, relu, conv, add", &g, (cnn_shape){2, 4, 4}, 1);
}

/* A layer built by hand, outside a graph, so a kernel can be fed known
 * tensors. Settings are zeroed (all options at their zero values). */
static cnn_layer hand_layer(const char *kind, size_t ninputs, const cnn_shape *in,
                            size_t batch)
{
    cnn_layer l = {0};
    l.kind = cnn_layer_kind_find(kind);
    snprintf(l.name, sizeof l.name, "%s", kind);
    l.settings = calloc(1, l.kind->settings_size ? l.kind->settings_size : 1);
    l.ninputs = ninputs;
    for (size_t k = 0; k < ninputs; k++) {
        l.in[k] = in[k];
        l.input_names[k] = k ? "second" : "first";   /* "second" for all after 0 */
    }
    l.max_batch = l.batch = batch;
    return l;
}

static void test_add_golden(void)
{
    const cnn_shape in[2] = {{2, 1, 2}, {2, 1, 2}};
    cnn_layer l = hand_layer("add", 2, in, 2);
    cnn_error e = {0};
    CHECK(l.kind->infer(&l, &e) == CNN_OK);
    CHECK(l.out.c == 2 && l.out.h == 1 && l.out.w == 2);
    const float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};           /* [2][2][1][2] */
    const float b[8] = {10, -20, 30, -40, 0.5f, 0, -7, 1}; /* [2][2][1][2] */
    const float want[8] = {11, -18, 33, -36, 5.5f, 6, 0, 9};
    float y[8], dy[8], da[8];
    l.x[0] = a;
    l.x[1] = b;
    l.y = y;
    l.kind->forward(&l);
    check_floats("add: a + b", y, want, 8, 0);
    /* dy goes to each input unchanged; a NULL dx is skipped. */
    for (size_t i = 0; i < 8; i++) {
        dy[i] = (float)i - 3.5f;
        da[i] = 0;
    }
    l.dy = dy;
    l.dx[0] = da;
    l.dx[1] = NULL;
    l.kind->backward(&l);
    check_floats("add: da = dy", da, dy, 8, 0);
    free(l.settings);
}

static void test_concat_golden(void)
{
    const cnn_shape in[2] = {{1, 1, 2}, {2, 1, 2}};
    cnn_layer l = hand_layer("concat", 2, in, 2);
    cnn_error e = {0};
    CHECK(l.kind->infer(&l, &e) == CNN_OK);
    CHECK(l.out.c == 3 && l.out.h == 1 && l.out.w == 2);
    const float a[4] = {1, 2, 3, 4};                     /* [2][1][1][2] */
    const float b[8] = {10, 11, 12, 13, 14, 15, 16, 17}; /* [2][2][1][2] */
    /* Per sample: a's channel, then b's two channels. */
    const float want[12] = {1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17};
    float y[12], dy[12], da[4], db[8];
    l.x[0] = a;
    l.x[1] = b;
    l.y = y;
    l.kind->forward(&l);
    check_floats("concat: channel order", y, want, 12, 0);
    for (size_t i = 0; i < 12; i++) dy[i] = (float)i;
    for (size_t i = 0; i < 4; i++) da[i] = 100;
    for (size_t i = 0; i < 8; i++) db[i] = 0;
    l.dy = dy;
    l.dx[0] = da;
    l.dx[1] = db;
    l.kind->backward(&l);
    const float want_da[4] = {100, 101, 106, 107};
    const float want_db[8] = {2, 3, 4, 5, 8, 9, 10, 11};
    check_floats("concat: dy scattered to a (added)", da, want_da, 4, 0);
    check_floats("concat: dy scattered to b", db, want_db, 8, 0);
    free(l.settings);
}

static void test_layernorm_golden(void)
{
    graph g = {0};
    layer(&g, "ln", "layernorm", NULL, NULL);
    cnn_model_spec m = model(&g, (cnn_shape){2, 1, 2});
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&m, 2, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    CHECK(l->nparams == 2 && l->params[0].size == 2 && l->params[1].size == 2);
    CHECK(!strcmp(l->params[0].name, "gamma") && !strcmp(l->params[1].name, "beta"));
    CHECK(l->params[0].trainable && !l->params[0].decay);
    CHECK(l->params[1].trainable && !l->params[1].decay);
    uint64_t rng = 1;
    cnn_net_init(net, &rng);
    CHECK(l->params[0].data[0] == 1 && l->params[0].data[1] == 1);
    CHECK(l->params[1].data[0] == 0 && l->params[1].data[1] == 0);
    l->params[0].data[0] = 2;      /* gamma */
    l->params[0].data[1] = -1;
    l->params[1].data[0] = 0.5f;   /* beta */
    l->params[1].data[1] = 1;
    /* Sample 0: 1 2 | 3 6, mean 3, variance (4+1+0+9)/4 = 3.5,
     *   inv = 1/sqrt(3.5 + 1e-5) = 0.5345217;
     *   y = -2*inv*2 + 0.5, -1*inv*2 + 0.5 | 0*inv*-1 + 1, 3*inv*-1 + 1.
     * Sample 1: 0 0 | 0 4, mean 1, variance (1+1+1+9)/4 = 3,
     *   inv = 1/sqrt(3 + 1e-5) = 0.5773493;
     *   y = -1*inv*2 + 0.5 (twice) | -1*inv*-1 + 1, 3*inv*-1 + 1. */
    const float x[8] = {1, 2, 3, 6, 0, 0, 0, 4};
    const float want[8] = {-1.638087f, -0.569043f, 1.0f, -0.603565f,
                           -0.654699f, -0.654699f, 1.577349f, -0.732048f};
    const float want_saved[4] = {3, 0.5345217f, 1, 0.5773493f};
    for (int training = 1; training >= 0; training--) {
        memcpy(net->x, x, sizeof x);
        memset(l->saved, 0, 4 * sizeof(float));
        cnn_net_forward(net, 2, training);
        check_floats(training ? "layernorm 2x1x2 by hand (train)"
                              : "layernorm 2x1x2 by hand (eval)", l->y, want, 8, 2e-6);
        check_floats("layernorm saved mean, inv-std", l->saved, want_saved, 4, 2e-6);
    }
    cnn_net_free(net);
}

static cnn_net *build(const graph *g, cnn_shape in, cnn_error *e)
{
    cnn_model_spec m = model(g, in);
    cnn_error_clear(e);
    return cnn_net_create(&m, 2, e);
}

static void test_errors(void)
{
    cnn_error e;
    graph g = {0};
    layer(&g, "stem", "conv", "input", "filters=4 kernel=3 pad=1");
    layer(&g, "bn2", "conv", "input", "filters=6 kernel=3 pad=1 stride=2");
    layer(&g, "block.add", "add", "stem,bn2", NULL);
    CHECK(build(&g, (cnn_shape){3, 8, 8}, &e) == NULL);
    CHECK(e.status == CNN_ERR_SHAPE);
    CHECK_CONTAINS(e.msg, "layer 'block.add' (add): input 'stem' is 4x8x8 but "
                   "input 'bn2' is 6x4x4; shapes must match (use project: true "
                   "for a projection shortcut)");
    CHECK(e.line == 5 && e.col == 5);

    /* The offending input is named wherever it is in the list. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=3 kernel=3 pad=1");
    layer(&g, "b", "conv", "input", "filters=3 kernel=1");
    layer(&g, "c", "conv", "input", "filters=3 kernel=3");
    layer(&g, "sum", "add", "a,input,b,c", NULL);
    CHECK(build(&g, (cnn_shape){3, 8, 8}, &e) == NULL);
    CHECK_CONTAINS(e.msg, "layer 'sum' (add): input 'a' is 3x8x8 but input 'c' "
                   "is 3x6x6; shapes must match (use project: true for a "
                   "projection shortcut)");

    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=4 kernel=3 pad=1");
    layer(&g, "b", "conv", "input", "filters=6 kernel=3 pad=1 stride=2");
    layer(&g, "cat", "concat", "a,b", NULL);
    CHECK(build(&g, (cnn_shape){3, 8, 8}, &e) == NULL);
    CHECK(e.status == CNN_ERR_SHAPE);
    CHECK_CONTAINS(e.msg, "layer 'cat' (concat): input 'a' is 4x8x8 but input "
                   "'b' is 6x4x4; heights and widths must match to concatenate "
                   "along channels");
    CHECK(e.line == 5 && e.col == 5);

    /* Channel counts may differ; only the spatial size must agree. */
    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=4 kernel=3 pad=1");
    layer(&g, "cat", "concat", "a,input", NULL);
    cnn_net *net = build(&g, (cnn_shape){3, 8, 8}, &e);
    CHECK_MSG(net && net->layers[1].out.c == 7, "concat 4 + 3 channels: %s", e.msg);
    cnn_net_free(net);

    g = (graph){0};
    layer(&g, "sum", "add", "input", NULL);
    CHECK(build(&g, (cnn_shape){3, 8, 8}, &e) == NULL);
    CHECK_CONTAINS(e.msg, "layer 'sum' (add) takes 2 to 8 inputs, got 1");

    g = (graph){0};
    layer(&g, "a", "relu", "input", NULL);
    layer(&g, "sum", "add", "a,input", "project=maybe");
    CHECK(build(&g, (cnn_shape){3, 8, 8}, &e) == NULL);
    CHECK_CONTAINS(e.msg, "layer 'sum' (add): project must be true or false, got \"maybe\"");

    g = (graph){0};
    layer(&g, "ln", "layernorm", "input", "eps=0");
    CHECK(build(&g, (cnn_shape){3, 8, 8}, &e) == NULL);
    CHECK(e.status == CNN_ERR_CONFIG);
    CHECK_CONTAINS(e.msg, "layer 'ln' (layernorm): eps must be a number above 0 "
                   "and at most 1, got \"0\"");

    /* Each dimension alone makes a mismatch (or, for concat, each spatial
     * one); the message names input 0 and the first input unlike it. */
    const cnn_shape base = {3, 8, 8};
    const cnn_shape other[3] = {{4, 8, 8}, {3, 6, 8}, {3, 8, 6}};
    for (size_t d = 0; d < 3; d++) {
        const cnn_shape two[3] = {base, base, other[d]};
        char want[160];
        cnn_layer h = hand_layer("add", 3, two, 1);
        cnn_error_clear(&e);
        CHECK(h.kind->infer(&h, &e) == CNN_ERR_SHAPE);
        snprintf(want, sizeof want, "input 'first' is 3x8x8 but input 'second' "
                 "is %zux%zux%zu", other[d].c, other[d].h, other[d].w);
        CHECK_CONTAINS(e.msg, want);
        free(h.settings);
        h = hand_layer("concat", 3, two, 1);
        cnn_error_clear(&e);
        CHECK(h.kind->infer(&h, &e) == (d ? CNN_ERR_SHAPE : CNN_OK));
        if (d) CHECK_CONTAINS(e.msg, want);
        else CHECK(h.out.c == 10 && h.out.h == 8 && h.out.w == 8);
        free(h.settings);
    }

    /* With project set, the graph was to have made the shapes match; if they
     * still differ, the hint to set it would be wrong and is left out. */
    const cnn_shape in[2] = {{4, 8, 8}, {6, 4, 4}};
    cnn_layer l = hand_layer("add", 2, in, 1);
    cnn_opt proj = {.key = "project", .text = "true"};
    cnn_opts o = {.items = &proj, .n = 1, .context = "layer 'add' (add)"};
    cnn_error_clear(&e);
    CHECK(l.kind->parse(&l, &o, &e) == CNN_OK);
    CHECK(l.kind->infer(&l, &e) == CNN_ERR_SHAPE);
    CHECK(!strcmp(e.msg, "layer 'add' (add): input 'first' is 4x8x8 but input "
                  "'second' is 6x4x4; shapes must match"));
    free(l.settings);
}

/* Backward adds into dx and the parameter gradients rather than
 * overwriting them. After a full backward, layer `name` alone runs
 * backward twice on gradient buffers it reset to zero (other layers write
 * into the same buffers, the input's above all): the second run must double
 * what the first left, in every input gradient and parameter gradient. */
static void accumulates(const graph *g, cnn_shape in, const char *name)
{
    const size_t batch = 2;
    cnn_error e;
    cnn_net *net = build(g, in, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    uint64_t rng = cnn_rng_seed(4, 0);
    cnn_net_init(net, &rng);
    for (size_t i = 0; i < batch * cnn_shape_size(in); i++)
        net->x[i] = cnn_rng_normal(&rng);
    net->want_input_grad = 1;
    cnn_net_forward(net, batch, 1);
    cnn_layer *out = cnn_net_output(net);
    for (size_t i = 0; i < batch * cnn_shape_size(out->out); i++)
        out->dy[i] = cnn_rng_normal(&rng);
    cnn_net_backward(net);

    cnn_layer *l = cnn_net_layer(net, name);
    size_t nk[CNN_MAX_INPUTS] = {0};   /* 0: no buffer, or a repeat of one */
    for (size_t k = 0; k < l->ninputs; k++) {
        int seen = 0;
        for (size_t j = 0; j < k; j++) seen |= l->dx[j] == l->dx[k];
        if (!l->dx[k] || seen) continue;
        nk[k] = batch * cnn_shape_size(l->in[k]);
        memset(l->dx[k], 0, nk[k] * sizeof(float));
    }
    for (size_t j = 0; j < l->nparams; j++)
        if (l->params[j].trainable)
            memset(l->params[j].grad, 0, l->params[j].size * sizeof(float));
    l->kind->backward(l);
    float *want[CNN_MAX_INPUTS] = {0}, *gp[CNN_MAX_PARAMS] = {0};
    double mag = 0;   /* the first run must have left something to double */
    for (size_t k = 0; k < l->ninputs; k++) {
        if (!nk[k]) continue;
        want[k] = malloc(nk[k] * sizeof(float));
        for (size_t i = 0; i < nk[k]; i++) {
            want[k][i] = 2.0f * l->dx[k][i];
            mag = fmax(mag, fabs(l->dx[k][i]));
        }
    }
    for (size_t j = 0; j < l->nparams; j++) {
        cnn_param *p = &l->params[j];
        if (!p->trainable) continue;
        gp[j] = malloc(p->size * sizeof(float));
        for (size_t i = 0; i < p->size; i++) {
            gp[j][i] = 2.0f * p->grad[i];
            mag = fmax(mag, fabs(p->grad[i]));
        }
    }
    CHECK_MSG(mag > 0.1, "%s: the first backward left no gradient", name);
    l->kind->backward(l);
    char what[128];
    for (size_t k = 0; k < l->ninputs; k++) {
        if (!want[k]) continue;
        snprintf(what, sizeof what, "%s accumulates into d/d %s", name,
                 l->input_names[k]);
        check_floats(what, l->dx[k], want[k], nk[k], 1e-5);
        free(want[k]);
    }
    for (size_t j = 0; j < l->nparams; j++) {
        if (!gp[j]) continue;
        snprintf(what, sizeof what, "%s accumulates into d/d %s", name,
                 l->params[j].name);
        check_floats(what, l->params[j].grad, gp[j], l->params[j].size, 1e-5);
        free(gp[j]);
    }
    cnn_net_free(net);
}

static void test_accumulate(void)
{
    graph g = {0};
    layer(&g, "a", "conv", "input", "filters=2 kernel=3 pad=1");
    layer(&g, "b", "conv", "input", "filters=2 kernel=1");
    layer(&g, "sum", "add", "a,input,b,a", NULL);
    accumulates(&g, (cnn_shape){2, 4, 4}, "sum");

    g = (graph){0};
    layer(&g, "a", "conv", "input", "filters=2 kernel=3 pad=1");
    layer(&g, "b", "conv", "input", "filters=3 kernel=1");
    layer(&g, "cat", "concat", "b,input,a", NULL);
    accumulates(&g, (cnn_shape){2, 4, 4}, "cat");

    g = (graph){0};
    layer(&g, "ln", "layernorm", "input", NULL);
    accumulates(&g, (cnn_shape){3, 4, 5}, "ln");
}

/* Samples big enough to take the threaded paths (N*C*H*W above
 * CNN_PARALLEL_MIN) must give the same gradients as one at a time. */
static void test_batch_independence(void)
{
    graph g = {0};
    layer(&g, "ln", "layernorm", "input", NULL);
    layer(&g, "a", "conv", "input", "filters=8 kernel=1");
    layer(&g, "cat", "concat", "ln,a", NULL);
    layer(&g, "b", "conv", "cat", "filters=8 kernel=1");
    layer(&g, "sum", "add", "b,a", NULL);
    const cnn_shape in = {8, 32, 32};
    const size_t batch = 4, S = cnn_shape_size(in);
    cnn_error e;
    cnn_model_spec m = model(&g, in);
    cnn_net *big = cnn_net_create(&m, batch, &e);
    cnn_net *one = cnn_net_create(&m, 1, &e);
    CHECK_MSG(big && one, "cannot build: %s", e.msg);
    if (!big || !one) { cnn_net_free(big); cnn_net_free(one); return; }
    uint64_t rng = 3;
    cnn_net_init(big, &rng);
    for (size_t i = 0; i < big->nparam_floats; i++)
        big->params[i] += 0.3f * cnn_rng_normal(&rng);
    memcpy(one->params, big->params, big->nparam_floats * sizeof(float));
    for (size_t i = 0; i < batch * S; i++) big->x[i] = cnn_rng_normal(&rng) + 2.0f;
    cnn_layer *ob = cnn_net_output(big), *oo = cnn_net_output(one);
    const size_t nout = cnn_shape_size(ob->out);
    big->want_input_grad = one->want_input_grad = 1;
    cnn_net_forward(big, batch, 1);
    for (size_t i = 0; i < batch * nout; i++) ob->dy[i] = cnn_rng_normal(&rng);
    cnn_net_backward(big);
    float *grads = calloc(big->nparam_floats, sizeof(float));
    double worst_y = 0, worst_dx = 0;
    for (size_t n = 0; n < batch; n++) {
        memcpy(one->x, big->x + n * S, S * sizeof(float));
        cnn_net_forward(one, 1, 1);
        memcpy(oo->dy, ob->dy + n * nout, nout * sizeof(float));
        cnn_net_backward(one);
        for (size_t i = 0; i < nout; i++)
            worst_y = fmax(worst_y, fabs(oo->y[i] - ob->y[n * nout + i]));
        for (size_t i = 0; i < S; i++)
            worst_dx = fmax(worst_dx, fabs(one->dx[i] - big->dx[n * S + i]));
        for (size_t i = 0; i < big->nparam_floats; i++) grads[i] += one->grads[i];
    }
    printf("batch of %zu vs one at a time: max |dy| %.3g, max |ddx| %.3g\n",
           batch, worst_y, worst_dx);
    CHECK(worst_y <= 1e-4 && worst_dx <= 1e-4);
    check_floats("batch vs one at a time: parameter gradients", big->grads, grads,
                 big->nparam_floats, 1e-2);
    free(grads);
    cnn_net_free(big);
    cnn_net_free(one);
}

int main(void)
{
    test_gradients();
    test_add_golden();
    test_concat_golden();
    test_layernorm_golden();
    test_errors();
    test_accumulate();
    test_batch_independence();
    return test_done();
}
