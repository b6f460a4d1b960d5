/*
 * Frozen layers (cnn_layer.frozen), the base of fine-tuning: a frozen batch
 * norm normalises with its running statistics in training too and leaves
 * them alone; a frozen conv or dense layer makes no parameter gradient but
 * passes the same input gradient on; layers with nothing to train before
 * them skip backward altogether, and the gradients of the layers that do
 * train are bit for bit those of the unfrozen network. A held layer
 * (cnn_layer.held, lr_mult 0) makes no parameter gradient either, but it
 * trains otherwise: batch norm keeps batch statistics, so every other
 * gradient is the unfrozen network's. Checked on each conv plan (direct,
 * per image, grouped images, pointwise).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "harness.h"
#include "net.h"
#include "rng.h"

/* A net with random inputs and a fixed output gradient, after one training
 * forward and backward, the named layers frozen (or held, if held). */
static cnn_net *run(test_graph *b, cnn_shape in, size_t N, const char *const *frozen,
                    size_t nfrozen, int held)
{
    cnn_model_spec m = test_graph_model(b, in);
    cnn_error e;
    cnn_net *net = cnn_net_create(&m, N, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return NULL;
    uint64_t rng = cnn_rng_seed(3, 1);
    cnn_net_init(net, &rng);
    for (size_t i = 0; i < N * cnn_shape_size(in); i++) net->x[i] = cnn_rng_normal(&rng);
    for (size_t f = 0; f < nfrozen; f++) {
        cnn_layer *l = cnn_net_layer(net, frozen[f]);
        CHECK(l != NULL);
        if (l && held) l->held = 1;
        else if (l) l->frozen = 1;
    }
    cnn_net_forward(net, N, 1);
    cnn_layer *out = cnn_net_output(net);
    for (size_t i = 0; i < N * cnn_shape_size(out->out); i++)
        out->dy[i] = cnn_rng_normal(&rng);
    cnn_net_backward_from(net, net->nlayers - 1);
    return net;
}

/* Compare the trainable parameter gradients of every layer of a (frozen)
 * with b (none frozen): equal where the layer is not frozen or held, zero
 * where it is. */
static void compare(const char *what, cnn_net *a, cnn_net *b)
{
    for (size_t t = 0; t < a->nlayers; t++) {
        cnn_layer *la = &a->layers[t], *lb = &b->layers[t];
        for (size_t j = 0; j < la->nparams; j++) {
            cnn_param *pa = &la->params[j], *pb = &lb->params[j];
            if (!pa->trainable) continue;
            size_t differ = 0, nonzero = 0;
            for (size_t i = 0; i < pa->size; i++) {
                differ += pa->grad[i] != pb->grad[i];
                nonzero += pa->grad[i] != 0.0f;
            }
            if (!cnn_layer_param_grads(la))
                CHECK_MSG(nonzero == 0, "%s: frozen %s.%s has %zu nonzero gradients", what,
                          la->name, pa->name, nonzero);
            else
                CHECK_MSG(differ == 0, "%s: %s.%s: %zu of %zu gradients differ from the "
                          "unfrozen network's", what, la->name, pa->name, differ, pa->size);
        }
    }
}

/* conv (plan by input) -> batchnorm -> relu -> conv 1x1 -> batchnorm ->
 * globalavgpool -> dense */
static void build_net(test_graph *b)
{
    b->n = 0;
    test_graph_add(b, "c1", "conv", NULL, NULL, "filters", "4", "kernel", "3");
    test_graph_add(b, "bn1", "batchnorm", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(b, "r1", "relu", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(b, "c2", "conv", NULL, NULL, "filters", "6", "kernel", "3");
    test_graph_add(b, "c3", "conv", NULL, NULL, "filters", "5", "kernel", "1");
    test_graph_add(b, "bn2", "batchnorm", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(b, "gap", "globalavgpool", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(b, "fc", "dense", NULL, NULL, "units", "3", NULL, NULL);
}

static void test_freezing(cnn_shape in, size_t N, const char *plan)
{
    test_graph b;
    build_net(&b);
    cnn_net *ref = run(&b, in, N, NULL, 0, 0);
    if (!ref) return;
    for (size_t t = 0; t < ref->nlayers; t++)
        CHECK_MSG(ref->layers[t].needs_backward, "%s: unfrozen %s skipped backward", plan,
                  ref->layers[t].name);

    /* the middle conv frozen or held: c1 and bn1 still get their exact
     * gradients through it; a held batch norm passes its batch-statistics
     * gradient on */
    const struct { const char *name; int held; } mid[] = {
        {"c2", 0}, {"c3", 0}, {"c2", 1}, {"c3", 1}, {"bn1", 1}};
    for (size_t k = 0; k < sizeof mid / sizeof *mid; k++) {
        cnn_net *net = run(&b, in, N, &mid[k].name, 1, mid[k].held);
        if (!net) continue;
        char what[64];
        snprintf(what, sizeof what, "%s, %s %s", plan, mid[k].name,
                 mid[k].held ? "held" : "frozen");
        compare(what, net, ref);
        cnn_net_free(net);
    }

    /* everything but the head frozen: the head's gradient is unchanged and
     * nothing before it runs backward */
    const char *body[] = {"c1", "bn1", "c2", "c3", "bn2"};
    /* held instead: the head's gradient is the unfrozen network's, and
     * still nothing before it runs backward */
    cnn_net *net = run(&b, in, N, body, 5, 1);
    if (net) {
        char what[64];
        snprintf(what, sizeof what, "%s, body held", plan);
        compare(what, net, ref);
        for (size_t t = 0; t + 1 < net->nlayers; t++)
            CHECK_MSG(!net->layers[t].needs_backward, "%s: %s ran backward", what,
                      net->layers[t].name);
        cnn_net_free(net);
    }
    net = run(&b, in, N, body, 5, 0);
    if (net) {
        char what[64];
        snprintf(what, sizeof what, "%s, head only", plan);
        /* the frozen batch norms normalise with running statistics, so the
         * head sees other features than in ref: check its gradient against
         * dW[u][i] = sum_n dy[n][u] x[n][i] */
        cnn_layer *fc = cnn_net_output(net), *gap = &net->layers[net->nlayers - 2];
        size_t U = 3, I = cnn_shape_size(gap->out);
        double worst = 0;
        for (size_t u = 0; u < U; u++)
            for (size_t i = 0; i < I; i++) {
                double want = 0;
                for (size_t n = 0; n < N; n++) want += (double)fc->dy[n * U + u] * gap->y[n * I + i];
                double d = fabs(fc->params[0].grad[u * I + i] - want);
                worst = d > worst ? d : worst;
            }
        CHECK_MSG(worst < 1e-5, "%s: head gradient off by %g", what, worst);
        for (size_t t = 0; t + 1 < net->nlayers; t++)
            for (size_t j = 0; j < net->layers[t].nparams; j++)
                if (net->layers[t].params[j].grad)
                    CHECK(net->layers[t].params[j].grad[0] == 0.0f);
        for (size_t t = 0; t + 1 < net->nlayers; t++)
            CHECK_MSG(!net->layers[t].needs_backward, "%s: %s ran backward", what,
                      net->layers[t].name);
        CHECK(net->layers[net->nlayers - 1].needs_backward);
        cnn_net_free(net);
    }
    cnn_net_free(ref);
}

/* A frozen batch norm in training: the eval output, running statistics
 * untouched, and dx = gamma * dy / sqrt(running_var + eps). */
static void test_frozen_batchnorm(void)
{
    test_graph b = {0};
    test_graph_add(&b, "bn", "batchnorm", NULL, NULL, NULL, NULL, NULL, NULL);
    const cnn_shape in = {2, 3, 3};
    const size_t N = 4, S = 18, P = 9;
    cnn_model_spec m = {in, b.specs, 1, 0};
    cnn_error e;
    cnn_net *net = cnn_net_create(&m, N, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    net->want_input_grad = 1;
    cnn_layer *l = cnn_net_output(net);
    float *gamma = l->params[0].data, *beta = l->params[1].data;
    float *rm = l->params[2].data, *rv = l->params[3].data;
    const float g[2] = {1.5f, -0.5f}, bt[2] = {0.25f, 1.0f};
    const float mean[2] = {0.5f, -2.0f}, var[2] = {4.0f, 0.25f};
    for (size_t c = 0; c < 2; c++) {
        gamma[c] = g[c];
        beta[c] = bt[c];
        rm[c] = mean[c];
        rv[c] = var[c];
    }
    uint64_t rng = cnn_rng_seed(9, 9);
    for (size_t i = 0; i < N * S; i++) net->x[i] = 3.0f * cnn_rng_normal(&rng);
    cnn_net_forward(net, N, 0);
    float *eval = malloc(N * S * sizeof *eval);
    memcpy(eval, l->y, N * S * sizeof *eval);
    l->frozen = 1;
    cnn_net_forward(net, N, 1);
    CHECK(memcmp(eval, l->y, N * S * sizeof *eval) == 0);
    CHECK(rm[0] == mean[0] && rm[1] == mean[1] && rv[0] == var[0] && rv[1] == var[1]);
    for (size_t i = 0; i < N * S; i++) l->dy[i] = cnn_rng_normal(&rng);
    cnn_net_backward(net);
    double worst = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < 2; c++)
            for (size_t p = 0; p < P; p++) {
                size_t i = n * S + c * P + p;
                double want = (double)g[c] * l->dy[i] / sqrt((double)var[c] + 1e-5);
                double d = fabs(net->dx[i] - want);
                worst = d > worst ? d : worst;
            }
    CHECK_MSG(worst < 1e-5, "frozen batchnorm dx off by %g", worst);
    CHECK(l->params[0].grad[0] == 0.0f && l->params[1].grad[1] == 0.0f);
    free(eval);
    cnn_net_free(net);
}

int main(void)
{
    test_frozen_batchnorm();
    test_freezing((cnn_shape){3, 12, 12}, 3, "direct first conv, grouped images");
    test_freezing((cnn_shape){3, 20, 20}, 2, "per-image GEMMs");
    test_freezing((cnn_shape){5, 6, 6}, 4, "small images, 5 channels");
    return test_done();
}
