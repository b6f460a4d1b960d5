/*
 * The graph: building, generated names, parameter counts, the errors of
 * a malformed graph (each with its message), and a finite-difference check
 * of a whole network with its loss, so that layers compose correctly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "harness.h"
#include "net.h"
#include "rng.h"

static cnn_net *build(test_graph *b, cnn_shape in, size_t batch, cnn_error *e)
{
    cnn_model_spec m = test_graph_model(b, in);
    cnn_error_clear(e);
    return cnn_net_create(&m, batch, e);
}

static void test_lenet(void)
{
    test_graph b = {0};
    test_graph_add(&b, "c1", "conv", NULL, NULL, "filters", "6", "kernel", "5");
    b.opts[0][2] = (cnn_opt){.key = "pad", .text = "2"};
    b.specs[0].opts.n = 3;
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "maxpool", NULL, NULL, "size", "2", 0, 0);
    test_graph_add(&b, "c3", "conv", NULL, NULL, "filters", "16", "kernel", "5");
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "maxpool", NULL, NULL, "size", "2", 0, 0);
    test_graph_add(&b, NULL, "flatten", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "dense", NULL, NULL, "units", "120", 0, 0);
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "dense", NULL, NULL, "units", "84", 0, 0);
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "out", "dense", NULL, NULL, "units", "10", 0, 0);
    cnn_error e;
    cnn_net *net = build(&b, (cnn_shape){1, 28, 28}, 4, &e);
    CHECK_MSG(net != NULL, "LeNet-5 does not build: %s", e.msg);
    if (!net) return;
    /* 156 + 2416 + 48120 + 10164 + 850, as torch's LeNet-5 with padding 2 */
    CHECK(cnn_net_param_count(net) == 61706);
    CHECK(!strcmp(net->layers[1].name, "relu1"));
    CHECK(!strcmp(net->layers[4].name, "relu2"));
    CHECK(!strcmp(net->layers[7].name, "dense1"));
    CHECK(net->layers[5].out.c == 16 && net->layers[5].out.h == 5 && net->layers[5].out.w == 5);
    CHECK(cnn_net_output(net)->out.c == 10);
    CHECK(cnn_net_layer(net, "c3") == &net->layers[3]);
    cnn_net_free(net);
}

static void test_errors(void)
{
    cnn_error e;
    test_graph b = {0};
    test_graph_add(&b, NULL, "convv", NULL, NULL, 0, 0, 0, 0);
    CHECK(build(&b, (cnn_shape){1, 8, 8}, 1, &e) == NULL);
    CHECK_CONTAINS(e.msg, "unknown layer kind 'convv'; did you mean 'conv'?");
    CHECK(e.line == 10 && e.col == 5);

    b = (test_graph){0};
    test_graph_add(&b, "a", "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "b", "relu", "aa", NULL, 0, 0, 0, 0);
    CHECK(build(&b, (cnn_shape){1, 8, 8}, 1, &e) == NULL);
    CHECK_CONTAINS(e.msg, "layer 'b' names an input 'aa' that does not exist; did you mean 'a'?");
    CHECK(e.line == 11);

    b = (test_graph){0};
    test_graph_add(&b, "a", "relu", "b", NULL, 0, 0, 0, 0);
    test_graph_add(&b, "b", "relu", "a", NULL, 0, 0, 0, 0);
    CHECK(build(&b, (cnn_shape){1, 8, 8}, 1, &e) == NULL);
    CHECK_CONTAINS(e.msg, "the layers form a cycle through layer 'a'");

    b = (test_graph){0};
    test_graph_add(&b, "a", "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "b", "relu", "input", NULL, 0, 0, 0, 0);
    CHECK(build(&b, (cnn_shape){1, 8, 8}, 1, &e) == NULL);
    CHECK_CONTAINS(e.msg, "the output of layer 'a' is not used");

    b = (test_graph){0};
    test_graph_add(&b, "a", "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "a", "relu", NULL, NULL, 0, 0, 0, 0);
    CHECK(build(&b, (cnn_shape){1, 8, 8}, 1, &e) == NULL);
    CHECK_CONTAINS(e.msg, "two layers are named 'a'");

    b = (test_graph){0};
    test_graph_add(&b, "big", "conv", NULL, NULL, "filters", "2", "kernel", "5");
    CHECK(build(&b, (cnn_shape){1, 3, 3}, 1, &e) == NULL);
    CHECK_CONTAINS(e.msg, "big");
    CHECK(e.line == 10);

    b = (test_graph){0};
    test_graph_add(&b, "c", "conv", NULL, NULL, "filters", "2", "kernl", "3");
    CHECK(build(&b, (cnn_shape){1, 8, 8}, 1, &e) == NULL);
    CHECK(e.status == CNN_ERR_CONFIG);
}

/* Loss of the whole network in double, for the finite differences. */
static double net_loss(cnn_net *net, const int *labels, size_t n)
{
    net->rng = 99;
    cnn_net_forward(net, n, 1);
    return cnn_net_loss(net, labels, NULL);
}

static void test_whole_net_gradient(void)
{
    test_graph b = {0};
    test_graph_add(&b, NULL, "conv", NULL, NULL, "filters", "3", "kernel", "3");
    test_graph_add(&b, NULL, "batchnorm", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "maxpool", NULL, NULL, "size", "2", 0, 0);
    test_graph_add(&b, NULL, "dropout", NULL, NULL, "rate", "0.2", 0, 0);
    test_graph_add(&b, NULL, "dense", NULL, NULL, "units", "4", 0, 0);
    cnn_error e;
    size_t n = 3;
    cnn_net *net = build(&b, (cnn_shape){2, 6, 6}, n, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net) return;
    uint64_t rng = 5;
    cnn_net_init(net, &rng);
    for (size_t i = 0; i < n * 72; i++) net->x[i] = cnn_rng_normal(&rng);
    int labels[3] = {0, 3, 1};
    net_loss(net, labels, n);
    cnn_net_backward(net);
    float *g = malloc(net->nparam_floats * sizeof *g);
    memcpy(g, net->grads, net->nparam_floats * sizeof *g);
    double worst = 0;
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            if (!p->trainable) continue;
            for (size_t i = 0; i < p->size; i++) {
                float keep = p->data[i];
                p->data[i] = keep + 1e-2f;
                double up = net_loss(net, labels, n);
                p->data[i] = keep - 1e-2f;
                double down = net_loss(net, labels, n);
                p->data[i] = keep;
                double num = (up - down) / 2e-2;
                double ana = g[p->data - net->params + i];
                double err = fabs(num - ana) / fmax(1e-2, fabs(num));
                if (err > worst) worst = err;
            }
        }
    }
    printf("whole network (conv, batchnorm, relu, maxpool, dropout, dense, loss): "
           "max rel error %.2e\n", worst);
    CHECK(worst < 5e-2);
    free(g);
    cnn_net_free(net);
}

/* after_backward: count the layers told to write an input gradient. */
static void count_writers(void *ctx, size_t t)
{
    const cnn_net *net = ((void **)ctx)[0];
    size_t *writers = ((void **)ctx)[1];
    *writers += net->layers[t].dx_assign != 0;
}

/* Option KEY=VALUE on the layer added last (beyond the two of test_graph_add). */
static void opt(test_graph *b, const char *key, const char *value)
{
    cnn_layer_spec *s = &b->specs[b->n - 1];
    b->opts[b->n - 1][s->opts.n++] = (cnn_opt){.key = key, .text = value};
}

/* The written input gradients: a layer that is the first to run backward
 * among the readers of a buffer writes it instead of adding to it, so the
 * graph skips zeroing it. Both ways must give the same gradients, with
 * every such buffer holding NaN before backward (nothing may read it).
 * The net covers each kind that writes (conv by its tiled, pointwise,
 * strided and grouped paths, batchnorm, relu, add, maxpool, dropout,
 * globalavgpool, flatten, dense) and a buffer read by two layers (r1: add
 * writes, c2 adds). */
static void test_written_input_gradients(void)
{
    test_graph b = {0};
    /* c1 and c2 (32 channels in and out, 16 wide) go by Winograd: c1
     * writes its input gradient, c2 adds to r1's */
    test_graph_add(&b, "c0", "conv", NULL, NULL, "filters", "32", "kernel", "3");
    opt(&b, "pad", "1");
    test_graph_add(&b, "c1", "conv", NULL, NULL, "filters", "32", "kernel", "3");
    opt(&b, "pad", "1");
    test_graph_add(&b, "bn1", "batchnorm", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "r1", "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "c2", "conv", NULL, NULL, "filters", "32", "kernel", "3");
    opt(&b, "pad", "1");
    test_graph_add(&b, "bn2", "batchnorm", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "a", "add", "bn2", "r1", 0, 0, 0, 0);
    test_graph_add(&b, "p", "maxpool", NULL, NULL, "size", "2", 0, 0);
    test_graph_add(&b, "d", "dropout", NULL, NULL, "rate", "0.3", 0, 0);
    test_graph_add(&b, "c3", "conv", NULL, NULL, "filters", "6", "kernel", "1");
    test_graph_add(&b, "c4", "conv", NULL, NULL, "filters", "6", "kernel", "3");
    opt(&b, "stride", "2");
    opt(&b, "groups", "2");
    test_graph_add(&b, "c5", "conv", NULL, NULL, "filters", "4", "kernel", "3");
    opt(&b, "stride", "2");
    opt(&b, "pad", "1");
    test_graph_add(&b, "g", "globalavgpool", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "f", "flatten", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "out", "dense", NULL, NULL, "units", "5", 0, 0);
    enum { N = 4, IN = 3 * 16 * 16 };
    cnn_error e;
    cnn_net *net = build(&b, (cnn_shape){3, 16, 16}, N, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net) return;
    uint64_t rng = 11;
    cnn_net_init(net, &rng);
    for (size_t i = 0; i < N * IN; i++) net->x[i] = cnn_rng_normal(&rng);
    int labels[N] = {0, 3, 1, 4};
    net->want_input_grad = 1;
    net_loss(net, labels, N);
    net->zero_dx = 1;
    cnn_net_backward(net);
    size_t np = net->nparam_floats;
    float *want = malloc((np + N * IN) * sizeof *want);
    memcpy(want, net->grads, np * sizeof *want);
    memcpy(want + np, net->dx, N * IN * sizeof *want);
    for (size_t t = 0; t + 1 < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t i = 0; i < l->batch * cnn_shape_size(l->out); i++) l->dy[i] = NAN;
    }
    net->zero_dx = 0;
    size_t writers = 0;
    void *ctx[2] = {net, &writers};
    net->after_backward = count_writers;
    net->after_backward_ctx = ctx;
    cnn_net_backward(net);
    /* all but c0 (the input's), c2 (r1's second reader) */
    CHECK_MSG(writers == 13, "%zu layers wrote their input gradients, expected 13", writers);
    check_floats("written input gradients: parameters", net->grads, want, np, 0);
    check_floats("written input gradients: input", net->dx, want + np, N * IN, 0);
    free(want);
    cnn_net_free(net);
}

/* add: {project: true} on a shortcut whose shape differs inserts a strided
 * 1x1 convolution and a batch norm, and the whole thing differentiates. */
static void test_projection(void)
{
    test_graph b = {0};
    test_graph_add(&b, "c", "conv", NULL, NULL, "filters", "4", "kernel", "3");
    b.opts[0][2] = (cnn_opt){.key = "stride", .text = "2"};
    b.opts[0][3] = (cnn_opt){.key = "pad", .text = "1"};
    b.specs[0].opts.n = 4;
    test_graph_add(&b, "bn", "batchnorm", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "sum", "add", NULL, NULL, "project", "true", 0, 0);
    const char *two[2] = {"bn", "input"};
    b.specs[2].inputs = two;
    b.specs[2].ninputs = 2;
    cnn_error e;
    cnn_net *net = build(&b, (cnn_shape){2, 7, 7}, 2, &e);
    CHECK_MSG(net != NULL, "projection does not build: %s", e.msg);
    if (!net) return;
    CHECK(net->nlayers == 5);
    cnn_layer *proj = cnn_net_layer(net, "sum.proj");
    CHECK(proj != NULL && !strcmp(proj->kind->name, "conv"));
    CHECK(proj && proj->out.c == 4 && proj->out.h == 4 && proj->out.w == 4);
    CHECK(proj && proj->nparams == 1);   /* no bias */
    CHECK(cnn_net_layer(net, "sum.proj_bn") != NULL);
    cnn_layer *sum = cnn_net_layer(net, "sum");
    CHECK(sum && !strcmp(sum->input_names[1], "sum.proj_bn"));
    cnn_net_free(net);

    cnn_model_spec m = test_graph_model(&b, (cnn_shape){2, 7, 7});
    gradcheck_opts o = {.batch = 2, .training = 1, .tol = 2e-2};
    CHECK(gradcheck_model(&m, &o) == 0);

    /* without project the shapes must match */
    b.opts[2][0].text = "false";
    CHECK(build(&b, (cnn_shape){2, 7, 7}, 2, &e) == NULL);
    CHECK_CONTAINS(e.msg, "shapes must match (use project: true");
    /* a shortcut that no strided 1x1 convolution can map */
    b.opts[2][0].text = "true";
    b.opts[0][1].text = "2";   /* kernel 2, stride 1, pad 0: 5x5 -> 4x4 */
    b.opts[0][2].text = "1";
    b.opts[0][3].text = "0";
    CHECK(build(&b, (cnn_shape){2, 5, 5}, 2, &e) == NULL);
    CHECK_CONTAINS(e.msg, "cannot project input 'input' (2x5x5) onto 4x4x4");
}

/* Sizes whose memory plan would wrap around size_t are refused, naming
 * the layer. Caught by the plan check of tests/fuzz/fuzz_config.c on
 * tests/fuzz/corpus/config/crash-plan-overflow.yaml: concats of concats of
 * a 4x65536x65536 input at batch 65536 summed past 2^64, and `cnn summary`
 * printed what was left after the wrap. */
static void test_plan_overflow(void)
{
    test_graph b = {0};
    cnn_error e;
    for (int i = 0; i < 12; i++) test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    cnn_model_spec m = test_graph_model(&b, (cnn_shape){1u << 10, 1u << 16, 1u << 16});
    cnn_error_clear(&e);
    cnn_net *net = cnn_net_plan(&m, 16, &e);             /* 2^46 floats each */
    CHECK_MSG(net != NULL, "%s", e.msg);
    cnn_net_free(net);
    cnn_error_clear(&e);
    net = cnn_net_plan(&m, 1u << 18, &e);  /* 12 x 2 x 2^60: wrapped to 2^63 */
    CHECK(net == NULL);
    CHECK(e.status == CNN_ERR_CONFIG);
    CHECK_CONTAINS(e.msg, "the memory plan overflows at batch 262144");
    cnn_net_free(net);
    m.nlayers = 1;                                        /* one batch of it */
    m.input = (cnn_shape){1u << 20, 1u << 20, 1u << 20};
    cnn_error_clear(&e);
    net = cnn_net_plan(&m, 1u << 10, &e);
    CHECK(net == NULL);
    CHECK_CONTAINS(e.msg, "layer 'relu1' (relu): the memory plan overflows");
    cnn_net_free(net);
}

/* Unnamed layers get kind + the first free number, around explicit names;
 * 10,000 of them plan in well under a second (the search once restarted
 * from 1 for every layer: O(n^3), half an hour). */
static void test_generated_names(void)
{
    test_graph b = {0};
    cnn_error e;
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "relu2", "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "sigmoid", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "sigmoid3", "sigmoid", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "sigmoid", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, NULL, "relu", NULL, NULL, 0, 0, 0, 0);
    cnn_model_spec m = test_graph_model(&b, (cnn_shape){1, 2, 2});
    cnn_error_clear(&e);
    cnn_net *net = cnn_net_plan(&m, 1, &e);
    static const char *const want[] = {"relu1", "relu2", "sigmoid1", "relu3",
                                       "sigmoid3", "sigmoid2", "relu4"};
    CHECK_MSG(net && net->nlayers == 7, "%s", e.msg);
    for (size_t t = 0; net && t < net->nlayers; t++)
        CHECK_MSG(!strcmp(net->layers[t].name, want[t]), "layer %zu is %s, not %s", t,
                  net->layers[t].name, want[t]);
    cnn_net_free(net);

    enum { MANY = 10000 };
    cnn_layer_spec *many = calloc(MANY, sizeof *many);
    if (!many) return;
    for (size_t i = 0; i < MANY; i++) many[i].kind = "relu";
    m = (cnn_model_spec){{1, 2, 2}, many, MANY, 0};
    cnn_error_clear(&e);
    net = cnn_net_plan(&m, 1, &e);
    CHECK_MSG(net && !strcmp(net->layers[MANY - 1].name, "relu10000"), "%s", e.msg);
    cnn_net_free(net);
    free(many);
}

/* An inference net (cnn_net_create_inference) computes what the training
 * net computes in evaluation mode, through branches, a max-pool and a layer
 * norm (whose saved state it does not keep) and a dropout, in far less
 * activation memory; its first conv applies the batch norm and ReLU after
 * it (folded: the same up to rounding), the second conv, read by two
 * layers, folds nothing (both go by Winograd: 32 channels each way, 16
 * wide); forward with training = 1 still evaluates, and
 * backward leaves everything alone. */
static void test_inference_net(void)
{
    test_graph b = {0};
    test_graph_add(&b, "c1", "conv", NULL, NULL, "filters", "32", "kernel", "3");
    b.opts[0][2] = (cnn_opt){.key = "pad", .text = "1"};
    b.specs[0].opts.n = 3;
    test_graph_add(&b, "bn1", "batchnorm", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "r1", "relu", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "c2", "conv", "r1", NULL, "filters", "32", "kernel", "3");
    b.opts[3][2] = (cnn_opt){.key = "pad", .text = "1"};
    b.specs[3].opts.n = 3;
    test_graph_add(&b, "c3", "conv", "r1", NULL, "filters", "32", "kernel", "1");
    test_graph_add(&b, "sum", "add", NULL, NULL, 0, 0, 0, 0);
    const char *two[2] = {"c2", "c3"};
    b.specs[5].inputs = two;
    b.specs[5].ninputs = 2;
    test_graph_add(&b, "ln", "layernorm", NULL, NULL, 0, 0, 0, 0);
    test_graph_add(&b, "mp", "maxpool", NULL, NULL, "size", "2", 0, 0);
    test_graph_add(&b, "dr", "dropout", NULL, NULL, "rate", "0.5", 0, 0);
    test_graph_add(&b, "fc", "dense", NULL, NULL, "units", "5", 0, 0);
    cnn_model_spec m = test_graph_model(&b, (cnn_shape){32, 8, 16});
    cnn_error e = {0};
    const size_t N = 6;
    cnn_net *train = cnn_net_create(&m, N, &e);
    CHECK_MSG(train != NULL, "cannot build: %s", e.msg);
    cnn_net *inf = cnn_net_create_inference(&m, N, &e);
    CHECK_MSG(inf != NULL, "cannot build the inference net: %s", e.msg);
    if (!train || !inf) {
        cnn_net_free(train);
        cnn_net_free(inf);
        return;
    }
    uint64_t rng = cnn_rng_seed(11, 1);
    cnn_net_init(train, &rng);
    cnn_layer *bn = cnn_net_layer(train, "bn1");
    for (size_t j = 0; j < bn->nparams; j++)   /* running statistics away from 0, 1 */
        for (size_t i = 0; i < bn->params[j].size; i++)
            bn->params[j].data[i] = 0.5f + 0.25f * (float)((i + j) % 5);
    for (size_t t = 0; t < train->nlayers; t++)
        for (size_t j = 0; j < train->layers[t].nparams; j++)
            memcpy(inf->layers[t].params[j].data, train->layers[t].params[j].data,
                   train->layers[t].params[j].size * sizeof(float));
    size_t nin = N * cnn_shape_size(m.input), nout = N * 5;
    for (size_t i = 0; i < nin; i++) train->x[i] = inf->x[i] = cnn_rng_normal(&rng);
    CHECK(cnn_net_layer(inf, "c1")->fold_bn == cnn_net_layer(inf, "bn1"));
    CHECK(cnn_net_layer(inf, "c1")->fold_relu && cnn_net_layer(inf, "r1")->folded);
    CHECK(cnn_net_layer(inf, "bn1")->folded && !cnn_net_layer(inf, "c2")->folded);
    CHECK(!cnn_net_layer(train, "bn1")->folded && !cnn_net_layer(train, "c1")->fold_bn);
    cnn_net_forward(train, N, 0);
    cnn_net_forward(inf, N, 1);    /* evaluates all the same */
    check_floats("inference net against eval", cnn_net_output(inf)->y,
                 cnn_net_output(train)->y, nout, 1e-5);
    cnn_net_forward(train, 4, 0);  /* a smaller batch */
    cnn_net_forward(inf, 4, 0);
    check_floats("inference net, batch 4", cnn_net_output(inf)->y,
                 cnn_net_output(train)->y, 4 * 5, 1e-5);
    cnn_net_backward(inf);          /* nothing to do, nothing to crash */
    cnn_net_mem tm, im;
    cnn_net_memory(train, &tm);
    cnn_net_memory(inf, &im);
    CHECK(im.grads == 0 && im.input == tm.input / 2);
    /* the largest outputs are 32x8x16; at most 3 of them are live at once
     * (r1 while c2 and c3 run), against 2 (output and gradient) per layer
     * plus saved state for training */
    CHECK_MSG(im.acts <= 3 * N * 32 * 8 * 16 * sizeof(float) + 4096 && im.acts * 4 < tm.acts,
              "inference activations %zu bytes, training %zu", im.acts, tm.acts);
    cnn_net_free(train);
    cnn_net_free(inf);
}

int main(void)
{
    test_lenet();
    test_errors();
    test_whole_net_gradient();
    test_written_input_gradients();
    test_projection();
    test_plan_overflow();
    test_generated_names();
    test_inference_net();
    return test_done();
}
