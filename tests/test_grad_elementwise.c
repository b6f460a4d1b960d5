/*
 * Gradient checks for the elementwise layer kinds (relu, leaky_relu,
 * sigmoid, tanh, softmax, dropout, noise, batchnorm) through the graph, and a
 * finite-difference check of the softmax cross-entropy loss wrt its logits.
 */
#include <math.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "harness.h"
#include "loss.h"
#include "net.h"
#include "rng.h"

static void grad(const char *kind, const char *const *kv, cnn_shape in,
                 size_t batch, double min_abs_input, int training)
{
    gradcheck_opts o = {0};
    o.batch = batch;
    o.training = training;
    o.min_abs_input = min_abs_input;
    o.tol = 5e-3;
    int failed = gradcheck_layer(kind, kv, in, &o);
    CHECK_MSG(failed == 0, "gradcheck %s on %zux%zux%zu: %d tensors failed",
              kind, in.c, in.h, in.w, failed);
}

/* Backward must add into dx and the parameter gradients, not overwrite
 * them: a second backward over the same forward doubles the parameter
 * gradients and adds the input gradient onto what dx held. */
static void accumulates(const char *kind, cnn_shape in, size_t batch)
{
    cnn_layer_spec spec = {0};
    spec.kind = kind;
    cnn_model_spec model = {in, &spec, 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, batch, &e);
    CHECK_MSG(net, "cannot build %s: %s", kind, e.msg);
    if (!net) return;
    uint64_t rng = cnn_rng_seed(4, 0);
    cnn_net_init(net, &rng);
    cnn_layer *l = cnn_net_output(net);
    const size_t nin = batch * cnn_shape_size(in);
    const size_t nout = batch * cnn_shape_size(l->out);
    for (size_t i = 0; i < nin; i++) net->x[i] = cnn_rng_normal(&rng);
    net->want_input_grad = 1;
    cnn_net_forward(net, batch, 1);
    for (size_t i = 0; i < nout; i++) l->dy[i] = cnn_rng_normal(&rng);
    cnn_net_backward(net);
    float *gx = malloc(nin * sizeof *gx), *gp = malloc(net->nparam_floats * sizeof *gp + 1);
    for (size_t i = 0; i < nin; i++) {
        gx[i] = net->dx[i] + 1.0f;
        net->dx[i] = 1.0f;
    }
    for (size_t i = 0; i < net->nparam_floats; i++) gp[i] = 2.0f * net->grads[i];
    l->kind->backward(l);
    char what[64];
    snprintf(what, sizeof what, "%s accumulates into dx", kind);
    check_floats(what, net->dx, gx, nin, 1e-6);
    if (net->nparam_floats) {
        snprintf(what, sizeof what, "%s accumulates into grads", kind);
        check_floats(what, net->grads, gp, net->nparam_floats, 1e-6);
    }
    free(gx);
    free(gp);
    cnn_net_free(net);
}

/* L(logits) in double, central differences against dlogits. */
static void loss_grad(size_t n, size_t k, float smoothing, uint64_t seed)
{
    uint64_t rng = cnn_rng_seed(seed, 3);
    float *x = malloc(n * k * sizeof *x);    /* [n][k] */
    float *g = malloc(n * k * sizeof *g);    /* [n][k] */
    float *num = malloc(n * k * sizeof *num);/* [n][k] */
    int *labels = malloc(n * sizeof *labels);
    for (size_t i = 0; i < n * k; i++)
        x[i] = 3.0f * cnn_rng_normal(&rng);
    for (size_t i = 0; i < n; i++)
        labels[i] = (int)cnn_rng_below(&rng, k);
    cnn_loss_softmax_xent(x, labels, n, k, smoothing, g, NULL);
    const float h = 1.0f / 512;
    for (size_t i = 0; i < n * k; i++) {
        float keep = x[i], up = keep + h, down = keep - h;
        x[i] = up;
        double lp = cnn_loss_softmax_xent(x, labels, n, k, smoothing, NULL, NULL);
        x[i] = down;
        double lm = cnn_loss_softmax_xent(x, labels, n, k, smoothing, NULL, NULL);
        x[i] = keep;
        num[i] = (float)((lp - lm) / ((double)up - (double)down));
    }
    char what[64];
    snprintf(what, sizeof what, "xent dlogits %zux%zu smoothing %g", n, k,
             (double)smoothing);
    check_floats(what, g, num, n * k, 2e-5);
    free(x);
    free(g);
    free(num);
    free(labels);
}

int main(void)
{
    const cnn_shape img = {3, 4, 5}, vec = {6, 1, 1};

    grad("relu", NULL, img, 2, 0.1, 1);
    grad("leaky_relu", NULL, img, 2, 0.1, 1);
    grad("leaky_relu", (const char *const[]){"slope", "0.2", NULL}, img, 2, 0.1, 1);
    grad("sigmoid", NULL, img, 2, 0, 1);
    grad("tanh", NULL, img, 2, 0, 1);
    grad("softmax", NULL, vec, 3, 0, 1);
    grad("softmax", NULL, img, 2, 0, 1);
    grad("dropout", (const char *const[]){"rate", "0.3", NULL}, img, 2, 0, 1);
    grad("dropout", NULL, vec, 3, 0, 0);
    grad("noise", (const char *const[]){"std", "0.3", NULL}, img, 2, 0, 1);
    grad("noise", NULL, vec, 3, 0, 0);
    grad("batchnorm", NULL, img, 4, 0, 1);
    grad("batchnorm", NULL, vec, 4, 0, 1);
    grad("batchnorm", (const char *const[]){"momentum", "0.5", "eps", "1e-3", NULL},
         img, 3, 0, 1);
    grad("batchnorm", NULL, img, 2, 0, 0);

    const char *const kinds[] = {"relu", "leaky_relu", "sigmoid", "tanh",
                                 "softmax", "dropout", "noise", "batchnorm"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        accumulates(kinds[i], img, 3);

    loss_grad(4, 5, 0.0f, 1);
    loss_grad(4, 5, 0.1f, 2);
    loss_grad(3, 10, 0.3f, 3);
    return test_done();
}
