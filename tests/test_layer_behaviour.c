/*
 * Behaviour of the layers whose forward pass differs between training and
 * evaluation, checked against values computed by hand: batch norm's batch
 * and running statistics, dropout's mask and scaling, the noise layer's
 * spread (train) and identity (eval), softmax, and the
 * softmax cross-entropy loss with and without label smoothing. Also the
 * range checks on their options.
 */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "loss.h"
#include "net.h"
#include "rng.h"

/* A net of one layer of `kind` with options items[0..nitems) on `in`. */
static cnn_net *one_layer(const char *kind, cnn_opt *items, size_t nitems,
                          cnn_shape in, size_t batch, cnn_error *e)
{
    cnn_layer_spec spec = {0};
    spec.kind = kind;
    spec.opts.items = items;
    spec.opts.n = nitems;
    cnn_model_spec model = {in, &spec, 1, 0};
    cnn_error_clear(e);
    cnn_net *net = cnn_net_create(&model, batch, e);
    if (net) {
        uint64_t rng = cnn_rng_seed(1, 1);
        cnn_net_init(net, &rng);
        net->rng = cnn_rng_seed(1, 2);
    }
    return net;
}

static cnn_param *param(cnn_layer *l, const char *name)
{
    for (size_t j = 0; j < l->nparams; j++)
        if (!strcmp(l->params[j].name, name)) return &l->params[j];
    return NULL;
}

static void test_batchnorm_normalises(void)
{
    const cnn_shape in = {3, 4, 5};
    const size_t N = 8, P = 20, S = 60;
    cnn_error e;
    cnn_net *net = one_layer("batchnorm", NULL, 0, in, N, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    CHECK(l->nparams == 4);
    cnn_param *gamma = param(l, "gamma"), *beta = param(l, "beta");
    cnn_param *rm = param(l, "running_mean"), *rv = param(l, "running_var");
    CHECK(gamma && beta && rm && rv);
    if (!gamma || !beta || !rm || !rv) { cnn_net_free(net); return; }
    CHECK(gamma->trainable && beta->trainable && !gamma->decay && !beta->decay);
    CHECK(!rm->trainable && !rv->trainable && !rm->grad && !rv->grad);
    CHECK(gamma->data[0] == 1.0f && beta->data[0] == 0.0f);
    CHECK(rm->data[0] == 0.0f && rv->data[0] == 1.0f);

    const float g[3] = {2.0f, 0.5f, 1.0f}, b[3] = {1.0f, -1.0f, 0.0f};
    for (size_t c = 0; c < 3; c++) { gamma->data[c] = g[c]; beta->data[c] = b[c]; }
    uint64_t rng = cnn_rng_seed(5, 0);
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < 3; c++)
            for (size_t p = 0; p < P; p++)   /* channel c: mean 10c - 5, std c + 1 */
                net->x[n * S + c * P + p] = (float)(10.0 * c - 5.0) +
                                            (float)(c + 1) * cnn_rng_normal(&rng);
    cnn_net_forward(net, N, 1);
    for (size_t c = 0; c < 3; c++) {
        double s = 0, s2 = 0;
        for (size_t n = 0; n < N; n++)
            for (size_t p = 0; p < P; p++) {
                double v = l->y[n * S + c * P + p];
                s += v;
                s2 += v * v;
            }
        double mean = s / (N * P), var = s2 / (N * P) - mean * mean;
        CHECK_NEAR(mean, b[c], 1e-5);
        CHECK_NEAR(var, (double)g[c] * g[c], 1e-3 * g[c] * g[c]);
    }
    cnn_net_free(net);
}

/* Tiny input (2,1,2), batch 2, by hand:
 *   channel 0: 1 2 | 3 6   -> mean 3, biased var 3.5, unbiased 14/3
 *   channel 1: -1 -1 | -1 3 -> mean 0, biased var 3, unbiased 4 */
static void test_batchnorm_running(void)
{
    const cnn_shape in = {2, 1, 2};
    const float x[8] = {1, 2, -1, -1, 3, 6, -1, 3};
    cnn_error e;
    cnn_net *net = one_layer("batchnorm", NULL, 0, in, 2, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    cnn_param *gamma = param(l, "gamma"), *beta = param(l, "beta");
    cnn_param *rm = param(l, "running_mean"), *rv = param(l, "running_var");
    memcpy(net->x, x, sizeof x);

    cnn_net_forward(net, 2, 1);
    const double i0 = 1 / sqrt(3.5 + 1e-5), i1 = 1 / sqrt(3.0 + 1e-5);
    const float want_train[8] = {
        (float)(-2 * i0), (float)(-1 * i0), (float)(-1 * i1), (float)(-1 * i1),
        0.0f, (float)(3 * i0), (float)(-1 * i1), (float)(3 * i1)};
    check_floats("batchnorm train output", l->y, want_train, 8, 1e-6);
    const float want_rm[2] = {0.3f, 0.0f};
    const float want_rv[2] = {0.9f + 0.1f * 14.0f / 3.0f, 0.9f + 0.1f * 4.0f};
    check_floats("batchnorm running_mean, 1 step", rm->data, want_rm, 2, 1e-6);
    check_floats("batchnorm running_var, 1 step", rv->data, want_rv, 2, 1e-6);

    /* Eval: running statistics, gamma and beta; the statistics stay put. */
    gamma->data[0] = 2.0f; gamma->data[1] = 0.5f;
    beta->data[0] = 0.5f; beta->data[1] = -1.0f;
    cnn_net_forward(net, 2, 0);
    float want_eval[8];
    for (size_t n = 0; n < 2; n++)
        for (size_t c = 0; c < 2; c++)
            for (size_t p = 0; p < 2; p++) {
                size_t i = n * 4 + c * 2 + p;
                want_eval[i] = (float)(gamma->data[c] * (x[i] - want_rm[c]) /
                                       sqrt(want_rv[c] + 1e-5) + beta->data[c]);
            }
    CHECK_NEAR(want_eval[0], 2 * (1 - 0.3) / sqrt(1.3666667 + 1e-5) + 0.5, 1e-6);
    check_floats("batchnorm eval output", l->y, want_eval, 8, 1e-6);
    check_floats("batchnorm eval keeps running_mean", rm->data, want_rm, 2, 0);
    check_floats("batchnorm eval keeps running_var", rv->data, want_rv, 2, 0);

    /* A second training step with the same batch. */
    cnn_net_forward(net, 2, 1);
    const float want_rm2[2] = {0.9f * 0.3f + 0.3f, 0.0f};
    check_floats("batchnorm running_mean, 2 steps", rm->data, want_rm2, 2, 1e-6);
    cnn_net_free(net);

    /* momentum 0.5; a (C,1,1) input is BatchNorm1d over the batch. */
    cnn_opt opt = {.key = "momentum", .text = "0.5"};
    net = one_layer("batchnorm", &opt, 1, (cnn_shape){2, 1, 1}, 4, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    l = cnn_net_output(net);
    const float x1[8] = {1, 0, 2, 0, 3, 0, 6, 4};   /* [4][2] */
    memcpy(net->x, x1, sizeof x1);
    cnn_net_forward(net, 4, 1);
    const float want_rm1[2] = {1.5f, 0.5f};
    const float want_rv1[2] = {0.5f + 0.5f * 14.0f / 3.0f, 0.5f + 0.5f * 4.0f};
    check_floats("batchnorm1d running_mean", param(l, "running_mean")->data,
                 want_rm1, 2, 1e-6);
    check_floats("batchnorm1d running_var", param(l, "running_var")->data,
                 want_rv1, 2, 1e-6);
    const float want1[8] = {(float)(-2 * i0), (float)(-1 * i1), (float)(-1 * i0),
                            (float)(-1 * i1), 0.0f, (float)(-1 * i1),
                            (float)(3 * i0), (float)(3 * i1)};
    check_floats("batchnorm1d train output", l->y, want1, 8, 1e-6);
    cnn_net_free(net);
}

static void test_dropout(void)
{
    const cnn_shape in = {16, 32, 32};
    const size_t N = 8, total = N * 16 * 32 * 32;
    const float rate = 0.3f;
    cnn_opt opt = {.key = "rate", .text = "0.3"};
    cnn_error e;
    cnn_net *net = one_layer("dropout", &opt, 1, in, N, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    uint64_t rng = cnn_rng_seed(9, 0);
    for (size_t i = 0; i < total; i++)
        net->x[i] = 0.5f + cnn_rng_uniform(&rng);   /* never zero */

    cnn_net_forward(net, N, 0);
    CHECK_MSG(!memcmp(l->y, net->x, total * sizeof(float)),
              "dropout in eval must be the identity");

    cnn_net_forward(net, N, 1);
    const float scale = 1.0f / (1.0f - rate);
    size_t zeros = 0, bad = 0;
    double sx = 0, sy = 0, sx2 = 0;
    for (size_t i = 0; i < total; i++) {
        float x = net->x[i], y = l->y[i];
        sx += x;
        sy += y;
        sx2 += (double)x * x;
        if (y == 0.0f) zeros++;
        else if (y != x * scale || fabs(y - x / (1.0 - rate)) > 1e-6 * fabs(y)) bad++;
    }
    double frac = (double)zeros / total;
    double sd_frac = sqrt(rate * (1.0 - rate) / total);
    printf("dropout rate %.2f: %.4f zeroed (sd %.4f)\n", rate, frac, sd_frac);
    CHECK_NEAR(frac, rate, 5 * sd_frac);
    CHECK_MSG(bad == 0, "%zu kept values are not x/(1-rate)", bad);
    /* Var(y_i) = x_i^2 rate/(1-rate): the standard error of the mean. */
    double se = sqrt(sx2 * rate / (1.0 - rate)) / total;
    printf("dropout mean: input %.5f output %.5f (se %.5f)\n", sx / total,
           sy / total, se);
    CHECK_NEAR(sy / total, sx / total, 5 * se);

    /* The next training pass draws a new mask. */
    float *first = malloc(total * sizeof *first);
    memcpy(first, l->y, total * sizeof *first);
    cnn_net_forward(net, N, 1);
    CHECK(memcmp(first, l->y, total * sizeof *first) != 0);
    free(first);
    cnn_net_free(net);

    /* rate 0.5 doubles kept values exactly; rate 0 keeps everything. */
    opt.text = "0.5";
    net = one_layer("dropout", &opt, 1, (cnn_shape){4, 4, 4}, 2, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    l = cnn_net_output(net);
    for (size_t i = 0; i < 128; i++) net->x[i] = (float)i - 63.5f;
    cnn_net_forward(net, 2, 1);
    bad = 0;
    for (size_t i = 0; i < 128; i++)
        if (l->y[i] != 0.0f && l->y[i] != 2.0f * net->x[i]) bad++;
    CHECK(bad == 0);
    cnn_net_free(net);
    opt.text = "0";
    net = one_layer("dropout", &opt, 1, (cnn_shape){4, 4, 4}, 2, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    l = cnn_net_output(net);
    for (size_t i = 0; i < 128; i++) net->x[i] = (float)i - 63.5f;
    cnn_net_forward(net, 2, 1);
    CHECK(!memcmp(l->y, net->x, 128 * sizeof(float)));
    cnn_net_free(net);
}

static void test_noise(void)
{
    const cnn_shape in = {8, 32, 32};
    const size_t N = 4, total = N * 8 * 32 * 32;
    cnn_opt opt = {.key = "std", .text = "0.25"};
    cnn_error e;
    cnn_net *net = one_layer("noise", &opt, 1, in, N, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    uint64_t rng = cnn_rng_seed(11, 0);
    for (size_t i = 0; i < total; i++) net->x[i] = 3.0f * cnn_rng_normal(&rng);

    cnn_net_forward(net, N, 0);
    CHECK_MSG(!memcmp(l->y, net->x, total * sizeof(float)),
              "noise in eval must be the identity");

    /* Training: y - x is N(0, 0.25^2), independent of x. */
    cnn_net_forward(net, N, 1);
    double s = 0, s2 = 0, sxd = 0;
    for (size_t i = 0; i < total; i++) {
        double d = (double)l->y[i] - net->x[i];
        s += d;
        s2 += d * d;
        sxd += d * net->x[i];
    }
    double mean = s / total, sd = sqrt(s2 / total - mean * mean);
    double corr = sxd / total / (3.0 * sd);
    printf("noise std 0.25: mean %.5f, std %.5f, correlation with x %.4f over %zu\n",
           mean, sd, corr, total);
    CHECK_NEAR(mean, 0.0, 5 * 0.25 / sqrt((double)total));
    CHECK_NEAR(sd, 0.25, 5 * 0.25 / sqrt(2.0 * total));
    CHECK_NEAR(corr, 0.0, 5 / sqrt((double)total));

    /* A new draw every pass. */
    float *first = malloc(total * sizeof *first);
    memcpy(first, l->y, total * sizeof *first);
    cnn_net_forward(net, N, 1);
    CHECK(memcmp(first, l->y, total * sizeof *first) != 0);
    free(first);

    /* The gradient passes through unchanged. */
    net->want_input_grad = 1;
    for (size_t i = 0; i < total; i++) l->dy[i] = (float)(i % 7) - 3.0f;
    cnn_net_backward_from(net, net->nlayers - 1);
    size_t off = 0;
    for (size_t i = 0; i < total; i++) off += net->dx[i] != l->dy[i];
    CHECK_MSG(off == 0, "noise backward changed %zu gradients", off);
    cnn_net_free(net);

    /* std 0: the identity in training too. */
    opt.text = "0";
    net = one_layer("noise", &opt, 1, (cnn_shape){2, 2, 2}, 2, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    for (size_t i = 0; i < 16; i++) net->x[i] = (float)i;
    cnn_net_forward(net, 2, 1);
    CHECK(!memcmp(cnn_net_output(net)->y, net->x, 16 * sizeof(float)));
    cnn_net_free(net);
}

static void test_softmax(void)
{
    cnn_error e;
    cnn_net *net = one_layer("softmax", NULL, 0, (cnn_shape){3, 1, 1}, 3, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    cnn_layer *l = cnn_net_output(net);
    const float x[9] = {1, 2, 3, 1001, 1002, 1003, -1000, -999, -998};
    memcpy(net->x, x, sizeof x);
    cnn_net_forward(net, 3, 0);
    const float p[3] = {0.09003057317f, 0.24472847105f, 0.66524095577f};
    const float want[9] = {p[0], p[1], p[2], p[0], p[1], p[2], p[0], p[1], p[2]};
    check_floats("softmax [1 2 3], shifted by +-1000", l->y, want, 9, 1e-6);
    cnn_net_free(net);

    /* Per position over channels on (4,2,3): every position sums to 1. */
    net = one_layer("softmax", NULL, 0, (cnn_shape){4, 2, 3}, 2, &e);
    CHECK_MSG(net, "cannot build: %s", e.msg);
    if (!net) return;
    l = cnn_net_output(net);
    uint64_t rng = cnn_rng_seed(3, 0);
    for (size_t i = 0; i < 48; i++) net->x[i] = 4.0f * cnn_rng_normal(&rng);
    net->x[5] = 0.0f; net->x[11] = 0.0f; net->x[17] = 0.0f; net->x[23] = 0.0f;
    cnn_net_forward(net, 2, 1);
    double worst = 0;
    for (size_t n = 0; n < 2; n++)
        for (size_t q = 0; q < 6; q++) {
            double s = 0;
            for (size_t c = 0; c < 4; c++) s += l->y[n * 24 + c * 6 + q];
            worst = fmax(worst, fabs(s - 1.0));
        }
    CHECK_NEAR(worst, 0.0, 1e-6);
    for (size_t c = 0; c < 4; c++)   /* sample 0, position 5: all logits 0 */
        CHECK_NEAR(l->y[c * 6 + 5], 0.25, 1e-7);
    cnn_net_free(net);
}

static void test_loss(void)
{
    const float x[6] = {1, 2, 3, 1, 0, -1};
    const int labels[2] = {2, 1};
    float d[6];
    size_t correct = 99;
    double loss = cnn_loss_softmax_xent(x, labels, 2, 3, 0.0f, d, &correct);
    /* lse(1,2,3) = 3.40760596, lse(1,0,-1) = 1.40760596 */
    CHECK_NEAR(loss, 0.9076059644443805, 1e-9);
    CHECK(correct == 1);
    const float want_d[6] = {0.04501528659f, 0.12236423553f, -0.16737952211f,
                             0.33262047789f, -0.37763576447f, 0.04501528659f};
    check_floats("xent dlogits", d, want_d, 6, 1e-7);

    loss = cnn_loss_softmax_xent(x, labels, 2, 3, 0.1f, d, &correct);
    /* targets (0.0333, 0.0333, 0.9333): 0.50760596 and 1.40760596 */
    CHECK_NEAR(loss, 0.9576059644443804, 1e-7);
    CHECK(correct == 1);
    CHECK_NEAR(d[0], 0.02834861992, 1e-7);
    CHECK_NEAR(d[2], -0.13404618878, 1e-7);

    /* Ties go to the lowest index. */
    const float tie[3] = {2, 2, 0};
    int l0 = 0, l1 = 1;
    cnn_loss_softmax_xent(tie, &l0, 1, 3, 0.0f, NULL, &correct);
    CHECK(correct == 1);
    cnn_loss_softmax_xent(tie, &l1, 1, 3, 0.0f, NULL, &correct);
    CHECK(correct == 0);

    /* Huge logits stay finite. */
    const float big[3] = {1e30f, -1e30f, 0};
    int l2 = 2;
    loss = cnn_loss_softmax_xent(big, &l2, 1, 3, 0.0f, d, NULL);
    CHECK_NEAR(loss, 1e30, 1e24);
    CHECK(isfinite(d[0]) && isfinite(d[1]) && isfinite(d[2]));
}

/* A NaN reaching an activation stays a NaN, so divergence is not hidden. */
static void test_nan_passes(void)
{
    const char *const kinds[] = {"relu", "leaky_relu", "sigmoid", "tanh"};
    for (size_t k = 0; k < 4; k++) {
        cnn_error e;
        cnn_net *net = one_layer(kinds[k], NULL, 0, (cnn_shape){1, 1, 2}, 1, &e);
        CHECK_MSG(net, "cannot build: %s", e.msg);
        if (!net) continue;
        net->x[0] = NAN;
        net->x[1] = -2.0f;
        cnn_net_forward(net, 1, 1);
        CHECK_MSG(isnan(cnn_net_output(net)->y[0]), "%s turns NaN into %g", kinds[k],
                  (double)cnn_net_output(net)->y[0]);
        cnn_net_free(net);
    }
}

static void bad_option(const char *kind, const char *key, const char *value,
                       const char *expect)
{
    cnn_opt opt = {.key = key, .key_line = 3, .key_col = 2, .text = value,
                   .line = 3, .col = 7};
    cnn_error e;
    cnn_net *net = one_layer(kind, &opt, 1, (cnn_shape){2, 2, 2}, 2, &e);
    CHECK_MSG(!net, "%s %s=%s was accepted", kind, key, value);
    cnn_net_free(net);
    CHECK(e.status == CNN_ERR_CONFIG);
    CHECK_CONTAINS(e.msg, expect);
    CHECK(e.line == 3);
}

static void test_options(void)
{
    bad_option("leaky_relu", "slope", "1", "slope");
    bad_option("leaky_relu", "slope", "-0.1", "slope");
    bad_option("dropout", "rate", "1", "rate");
    bad_option("dropout", "rate", "1.5", "rate");
    bad_option("batchnorm", "momentum", "1.1", "momentum");
    bad_option("batchnorm", "eps", "0", "eps");
    bad_option("batchnorm", "momentun", "0.2", "did you mean 'momentum'");
    bad_option("relu", "slope", "0.1", "unknown option 'slope'");
    bad_option("noise", "std", "-0.1", "std must be a number from 0 to 1000");
    bad_option("noise", "sdt", "0.1", "did you mean 'std'");
}

int main(void)
{
    test_batchnorm_normalises();
    test_batchnorm_running();
    test_dropout();
    test_noise();
    test_softmax();
    test_loss();
    test_nan_passes();
    test_options();
    return test_done();
}
