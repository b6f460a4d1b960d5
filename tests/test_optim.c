/*
 * Optimiser steps against values computed by hand (the working is in the
 * comments), on a dense layer with two weights and a bias: weight decay
 * must reach the weights only, unless decay_all, and never a frozen layer.
 * The regularisers that act on gradients and weights: the exact gradient
 * the L1 penalty adds, clipping by global norm (scaled to exactly the norm,
 * small gradients left alone), weight noise (the right spread, weights put
 * back, the update applied to the unperturbed weights with the perturbed
 * gradient). The learning-rate schedules against PyTorch's formulas (step,
 * MultiStepLR, ExponentialLR, OneCycleLR, ReduceLROnPlateau).
 */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "net.h"
#include "optim.h"
#include "rng.h"

static cnn_net *tiny_net(void)
{
    cnn_opt items[1] = {{.key = "units", .text = "1"}};
    cnn_layer_spec spec = {.kind = "dense", .opts = {items, 1, {0}, 0, NULL}};
    cnn_model_spec model = {{2, 1, 1}, &spec, 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    return net;
}

/* Set weights and bias to 1 and every gradient to g. */
static void set_all(cnn_net *net, float w, float g)
{
    for (size_t i = 0; i < net->nparam_floats; i++) {
        net->params[i] = w;
        net->grads[i] = g;
    }
}

static float weight(cnn_net *net) { return net->layers[0].params[0].data[0]; }
static float bias(cnn_net *net) { return net->layers[0].params[1].data[0]; }

static void test_sgd(void)
{
    cnn_net *net = tiny_net();
    cnn_error e = {0};
    /* Plain SGD, lr 0.1, weight decay 0.01, g = 0.5:
     * weight: 1 - 0.1 * (0.5 + 0.01 * 1) = 0.949; bias: 1 - 0.05 = 0.95. */
    cnn_optim_config c = {.type = CNN_OPTIM_SGD, .lr = 0.1f, .weight_decay = 0.01f,
                          .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    cnn_optim *o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.949, 1e-6);
    CHECK_NEAR(bias(net), 0.95, 1e-6);
    cnn_optim_free(o);

    /* Momentum 0.9: step 1 buffer = g = 0.5, w = 1 - 0.05 = 0.95;
     * step 2 with g = 0.5: buffer = 0.45 + 0.5 = 0.95, w = 0.95 - 0.095 = 0.855. */
    c.weight_decay = 0;
    c.momentum = 0.9f;
    o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.95, 1e-6);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.855, 1e-6);
    cnn_optim_free(o);

    /* Nesterov: step 1 buffer 0.5, w = 1 - 0.1 * (0.5 + 0.9 * 0.5) = 0.905;
     * step 2: buffer 0.95, w = 0.905 - 0.1 * (0.5 + 0.855) = 0.7695. */
    c.nesterov = 1;
    o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.905, 1e-6);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.7695, 1e-6);
    cnn_optim_free(o);
    cnn_net_free(net);
}

static void test_adam(void)
{
    cnn_net *net = tiny_net();
    cnn_error e = {0};
    /* Adam lr 0.1, betas (0.9, 0.999), eps 1e-8.
     * step 1, g = 0.5: m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25;
     *   w = 1 - 0.1 * 0.5 / 0.5 = 0.9.
     * step 2, g = -1: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001;
     *   m^ = -0.055 / 0.19 = -0.2894737, v^ = 0.00124975 / 0.001999 = 0.6251876;
     *   w = 0.9 + 0.1 * 0.2894737 / 0.7906881 = 0.9366104. */
    cnn_optim_config c = {.type = CNN_OPTIM_ADAM, .lr = 0.1f, .beta1 = 0.9f,
                          .beta2 = 0.999f, .eps = 1e-8f};
    cnn_optim *o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.9, 1e-6);
    for (size_t i = 0; i < net->nparam_floats; i++) net->grads[i] = -1;
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.9366104, 2e-6);
    cnn_optim_free(o);

    /* AdamW, weight decay 0.1: decoupled shrink first, 1 - 0.1 * 0.1 = 0.99,
     * then the Adam step of 0.1: 0.89. The bias is not decayed: 0.9. */
    c.type = CNN_OPTIM_ADAMW;
    c.weight_decay = 0.1f;
    o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.89, 1e-6);
    CHECK_NEAR(bias(net), 0.9, 1e-6);
    cnn_optim_free(o);

    /* Adam with L2 weight decay 0.1 adds 0.1 * w to g: g = 0.6 for the
     * weight; the first step is still lr * sign = 0.1: w = 0.9. */
    c.type = CNN_OPTIM_ADAM;
    o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    cnn_optim_step(o, 0.1f);
    CHECK_NEAR(weight(net), 0.9, 1e-6);
    cnn_optim_free(o);
    cnn_net_free(net);
}

/* dense(units) on a flat input of `in` values, then optionally batchnorm,
 * for batches of up to `batch`; parameters initialised from seed 3. */
static cnn_net *dense_net(size_t in, const char *units, int with_bn, size_t batch)
{
    cnn_opt items[1] = {{.key = "units", .text = units}};
    cnn_layer_spec spec[2] = {{.kind = "dense", .opts = {items, 1, {0}, 0, NULL}},
                              {.kind = "batchnorm"}};
    cnn_model_spec model = {{in, 1, 1}, spec, with_bn ? 2 : 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, batch, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net) exit(1);
    uint64_t rng = cnn_rng_seed(3, 1);
    cnn_net_init(net, &rng);
    net->rng = cnn_rng_seed(3, 2);
    return net;
}

static void test_l1(void)
{
    cnn_net *net = tiny_net();
    cnn_error e = {0};
    float *w = net->layers[0].params[0].data, *b = net->layers[0].params[1].data;
    float *gw = net->layers[0].params[0].grad, *gb = net->layers[0].params[1].grad;
    /* Plain SGD, lr 0.1, l1 0.01, g = 0.5 everywhere; weights 2 and -3, bias 1.
     * The penalty adds 0.01 * sign(w): g = 0.51 and 0.49 for the weights, 0.5
     * for the bias (exempt): w = 2 - 0.051 = 1.949, -3 - 0.049 = -3.049,
     * bias 1 - 0.05 = 0.95. */
    cnn_optim_config c = {.type = CNN_OPTIM_SGD, .lr = 0.1f, .l1 = 0.01f};
    cnn_optim *o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    w[0] = 2;
    w[1] = -3;
    cnn_optim_step(o, 0.1f);
    CHECK(gw[0] == 0.5f + 0.01f && gw[1] == 0.5f - 0.01f && gb[0] == 0.5f);
    CHECK_NEAR(w[0], 1.949, 1e-6);
    CHECK_NEAR(w[1], -3.049, 1e-6);
    CHECK_NEAR(b[0], 0.95, 1e-6);
    /* sign(0) = 0: a zero weight gets no push. */
    set_all(net, 1, 0.5f);
    w[0] = 0;
    cnn_optim_step(o, 0.1f);
    CHECK(gw[0] == 0.5f && gw[1] == 0.51f);
    cnn_optim_free(o);

    /* decay_all: the bias is penalised too: g = 0.5 - 0.01 for a bias of -1. */
    c.decay_all = 1;
    o = cnn_optim_create(net, &c, &e);
    set_all(net, 1, 0.5f);
    b[0] = -1;
    cnn_optim_step(o, 0.1f);
    CHECK(gb[0] == 0.5f - 0.01f);
    CHECK_NEAR(b[0], -1 - 0.049, 1e-6);
    cnn_optim_free(o);
    cnn_net_free(net);
}

static void test_decay_all(void)
{
    /* SGD lr 0.1, weight decay 0.01, g = 0.5, every parameter 1: decayed
     * parameters go to 1 - 0.1 * (0.5 + 0.01) = 0.949, the others to 0.95.
     * Dense weight, dense bias, batch norm gamma and beta. */
    cnn_error e = {0};
    for (int all = 0; all < 2; all++) {
        cnn_net *net = dense_net(2, "2", 1, 2);
        cnn_optim_config c = {.type = CNN_OPTIM_SGD, .lr = 0.1f, .weight_decay = 0.01f,
                              .decay_all = all};
        cnn_optim *o = cnn_optim_create(net, &c, &e);
        set_all(net, 1, 0.5f);
        cnn_optim_step(o, 0.1f);
        const cnn_layer *d = &net->layers[0], *bn = &net->layers[1];
        double other = all ? 0.949 : 0.95;
        CHECK_NEAR(d->params[0].data[0], 0.949, 1e-6);
        CHECK_NEAR(d->params[1].data[0], other, 1e-6);
        CHECK_NEAR(bn->params[0].data[1], other, 1e-6);   /* gamma */
        CHECK_NEAR(bn->params[1].data[1], other, 1e-6);   /* beta */
        cnn_optim_free(o);
        cnn_net_free(net);
    }
}

/* A layer frozen before the optimiser is made: its gradients stay 0, and
 * neither decay, L1 nor weight noise may move or perturb its weights. */
static void test_frozen(void)
{
    cnn_error e = {0};
    cnn_net *net = dense_net(3, "2", 0, 1);
    net->layers[0].frozen = 1;
    cnn_optim_config c = {.type = CNN_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f,
                          .weight_decay = 0.1f, .l1 = 0.1f, .decay_all = 1,
                          .weight_noise = 0.5f};
    cnn_optim *o = cnn_optim_create(net, &c, &e);
    size_t n = net->nparam_floats;
    float *w = malloc(n * sizeof *w);
    memcpy(w, net->params, n * sizeof *w);
    cnn_optim_perturb(o);
    CHECK(!memcmp(net->params, w, n * sizeof *w));
    cnn_optim_unperturb(o);
    for (int k = 0; k < 3; k++) {
        memset(net->grads, 0, n * sizeof *net->grads);
        cnn_optim_step(o, 0.1f);
    }
    CHECK(!memcmp(net->params, w, n * sizeof *w));
    free(w);
    cnn_optim_free(o);
    cnn_net_free(net);
}

static void test_clip(void)
{
    /* g = (3, 4, 0): norm 5; clipped to 1 it is (0.6, 0.8, 0). */
    float g[3] = {3, 4, 0};
    double norm = cnn_optim_clip_grad_norm(g, 3, 1.0f);
    CHECK_NEAR(norm, 5.0, 1e-12);
    CHECK_NEAR(g[0], 0.6, 1e-6);
    CHECK_NEAR(g[1], 0.8, 1e-6);
    CHECK(g[2] == 0.0f);
    CHECK_NEAR(cnn_optim_grad_norm(g, 3), 1.0, 1e-6);
    /* Below the limit nothing changes, to the bit. */
    float small[3] = {0.3f, 0.4f, 0.1f}, keep[3];
    memcpy(keep, small, sizeof keep);
    norm = cnn_optim_clip_grad_norm(small, 3, 1.0f);
    CHECK_NEAR(norm, sqrt(0.26), 1e-7);
    CHECK(!memcmp(small, keep, sizeof keep));

    /* Many gradients, across chunks: the norm agrees with a plain double sum,
     * and after clipping it is the limit. */
    size_t n = 300001;
    float *big = malloc(n * sizeof *big);
    uint64_t rng = cnn_rng_seed(5, 0);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        big[i] = cnn_rng_normal(&rng);
        sum += (double)big[i] * big[i];
    }
    CHECK_NEAR(cnn_optim_grad_norm(big, n), sqrt(sum), 1e-9 * sqrt(sum));
    cnn_optim_clip_grad_norm(big, n, 2.5f);
    CHECK_NEAR(cnn_optim_grad_norm(big, n), 2.5, 1e-5);
    free(big);

    /* Through the optimizer: SGD lr 1 from w = 0 moves by the clipped gradient. */
    cnn_net *net = tiny_net();
    cnn_error e = {0};
    cnn_optim_config c = {.type = CNN_OPTIM_SGD, .lr = 1, .clip_grad_norm = 1};
    cnn_optim *o = cnn_optim_create(net, &c, &e);
    set_all(net, 0, 0);
    net->grads[0] = 3;
    net->grads[1] = 4;
    cnn_optim_step(o, 1);
    CHECK_NEAR(o->grad_norm, 5.0, 1e-12);
    CHECK_NEAR(net->params[0], -0.6, 1e-6);
    CHECK_NEAR(net->params[1], -0.8, 1e-6);
    CHECK(net->params[2] == 0.0f);
    cnn_optim_free(o);
    cnn_net_free(net);
}

static void test_weight_noise(void)
{
    cnn_error e = {0};
    /* The spread: 20000 weights get N(0, 0.1^2) noise, the 100 biases none,
     * and unperturb puts every bit back. */
    cnn_net *net = dense_net(200, "100", 0, 1);
    cnn_optim_config c = {.type = CNN_OPTIM_SGD, .lr = 0.1f, .weight_noise = 0.1f};
    cnn_optim *o = cnn_optim_create(net, &c, &e);
    size_t n = net->nparam_floats, nw = net->layers[0].params[0].size;
    float *w0 = malloc(n * sizeof *w0);
    memcpy(w0, net->params, n * sizeof *w0);
    cnn_optim_perturb(o);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < nw; i++) {
        double d = (double)net->params[i] - w0[i];
        s += d;
        s2 += d * d;
    }
    double mean = s / (double)nw, sd = sqrt(s2 / (double)nw - mean * mean);
    printf("weight noise 0.1: mean %.5f, std %.5f over %zu weights\n", mean, sd, nw);
    CHECK_NEAR(mean, 0, 5 * 0.1 / sqrt((double)nw));
    CHECK_NEAR(sd, 0.1, 0.004);
    CHECK(!memcmp(net->params + nw, w0 + nw, (n - nw) * sizeof *w0));
    cnn_optim_unperturb(o);
    CHECK(!memcmp(net->params, w0, n * sizeof *w0));
    cnn_optim_free(o);
    cnn_net_free(net);
    free(w0);

    /* The update: forward/backward see w + noise, the step starts from w.
     * Softmax cross-entropy on 3 classes makes the gradient depend on w. */
    net = dense_net(4, "3", 0, 2);
    n = net->nparam_floats;
    c.weight_noise = 0.5f;
    o = cnn_optim_create(net, &c, &e);
    int labels[2] = {0, 2};
    for (size_t i = 0; i < 8; i++) net->x[i] = (float)i / 4 - 1;
    float *w = malloc(n * sizeof *w), *wp = malloc(n * sizeof *wp);
    float *g = malloc(n * sizeof *g), *gref = malloc(n * sizeof *gref);
    memcpy(w, net->params, n * sizeof *w);
    cnn_optim_perturb(o);
    memcpy(wp, net->params, n * sizeof *wp);
    cnn_net_forward(net, 2, 1);
    cnn_net_loss(net, labels, NULL);
    cnn_net_backward(net);
    memcpy(g, net->grads, n * sizeof *g);
    cnn_optim_unperturb(o);
    cnn_optim_step(o, 0.1f);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) off += net->params[i] != w[i] - 0.1f * g[i];
    CHECK_MSG(off == 0, "%zu parameters are not w - lr * g(w + noise)", off);
    /* ... and that gradient is the perturbed weights', not the clean ones'. */
    memcpy(net->params, wp, n * sizeof *wp);
    cnn_net_forward(net, 2, 1);
    cnn_net_loss(net, labels, NULL);
    cnn_net_backward(net);
    check_floats("gradient at w + noise", g, net->grads, n, 1e-6);
    memcpy(net->params, w, n * sizeof *w);
    cnn_net_forward(net, 2, 1);
    cnn_net_loss(net, labels, NULL);
    cnn_net_backward(net);
    memcpy(gref, net->grads, n * sizeof *gref);
    double most = 0;
    for (size_t i = 0; i < n; i++) most = fmax(most, fabs((double)gref[i] - g[i]));
    CHECK_MSG(most > 1e-3, "the noise did not change the gradient (%g)", most);
    free(w);
    free(wp);
    free(g);
    free(gref);
    cnn_optim_free(o);
    cnn_net_free(net);
}

static double lr_at(const cnn_schedule *s, uint64_t step, size_t per_epoch, size_t epochs)
{
    return cnn_schedule_lr(s, 1.0f, step, per_epoch, epochs);
}

static void test_schedules(void)
{
    /* 10 steps per epoch, base rate 1. */
    cnn_schedule s = {.type = CNN_SCHED_STEP, .step_epochs = 2, .gamma = 0.5f};
    CHECK_NEAR(lr_at(&s, 0, 10, 9), 1.0, 1e-12);
    CHECK_NEAR(lr_at(&s, 19, 10, 9), 1.0, 1e-12);
    CHECK_NEAR(lr_at(&s, 20, 10, 9), 0.5, 1e-12);
    CHECK_NEAR(lr_at(&s, 45, 10, 9), 0.25, 1e-12);

    /* MultiStepLR([2, 5], 0.1): epochs 0-1 at 1, 2-4 at 0.1, from 5 at 0.01. */
    s = (cnn_schedule){.type = CNN_SCHED_MULTISTEP, .gamma = 0.1f, .milestones = {2, 5},
                       .nmilestones = 2};
    CHECK_NEAR(lr_at(&s, 19, 10, 9), 1.0, 1e-12);
    CHECK_NEAR(lr_at(&s, 20, 10, 9), 0.1, 1e-7);
    CHECK_NEAR(lr_at(&s, 49, 10, 9), 0.1, 1e-7);
    CHECK_NEAR(lr_at(&s, 50, 10, 9), 0.01, 1e-8);
    CHECK_NEAR(lr_at(&s, 89, 10, 9), 0.01, 1e-8);

    /* ExponentialLR(0.9): epoch 3 at 0.729. */
    s = (cnn_schedule){.type = CNN_SCHED_EXPONENTIAL, .gamma = 0.9f};
    CHECK_NEAR(lr_at(&s, 9, 10, 9), 1.0, 1e-12);
    CHECK_NEAR(lr_at(&s, 35, 10, 9), 0.729, 1e-6);

    /* Cosine with one warm-up epoch over 3 epochs: steps 0-9 rise as
     * (k + 1) / 10; step 20 is half-way through the remaining 20 steps. */
    s = (cnn_schedule){.type = CNN_SCHED_COSINE, .warmup_epochs = 1, .min_lr = 0.1f};
    CHECK_NEAR(lr_at(&s, 0, 10, 3), 0.1, 1e-12);
    CHECK_NEAR(lr_at(&s, 9, 10, 3), 1.0, 1e-12);
    CHECK_NEAR(lr_at(&s, 10, 10, 3), 1.0, 1e-7);
    CHECK_NEAR(lr_at(&s, 20, 10, 3), 0.55, 1e-7);

    /* OneCycleLR(max_lr=1, total_steps=100), defaults pct_start 0.3,
     * div_factor 25, final_div_factor 1e4, cosine; values from PyTorch's
     * formula: start 0.04, peak 1 at step 29, 4e-6 at step 99. */
    s = (cnn_schedule){.type = CNN_SCHED_ONE_CYCLE, .pct_start = 0.3f, .div_factor = 25,
                       .final_div_factor = 1e4f};
    static const struct { uint64_t step; double lr; } oc[] = {
        {0, 0.04}, {1, 0.042813780565907456}, {15, 0.5459866761210004}, {29, 1.0},
        {30, 0.9994965352845243}, {64, 0.500002}, {98, 0.0005074647154757879}, {99, 4e-06},
    };
    for (size_t i = 0; i < sizeof oc / sizeof oc[0]; i++)
        CHECK_NEAR(lr_at(&s, oc[i].step, 10, 10), oc[i].lr, 1e-6 * oc[i].lr);
}

static void test_plateau(void)
{
    /* ReduceLROnPlateau(mode min, factor 0.5, patience 2, threshold 0.1
     * (rel), cooldown 1, min_lr 0.2), lr 1; the rates after each epoch as
     * PyTorch's step() gives them. */
    cnn_schedule s = {.type = CNN_SCHED_PLATEAU, .factor = 0.5f, .patience = 2,
                      .threshold = 0.1f, .cooldown = 1, .min_lr = 0.2f};
    static const double metric[] = {10, 9.5, 9.2, 9.1, 9.05, 8.95, 8.9, 8.8, 8.0, 8, 8, 8,
                                    8, 8, 8, 8};
    static const double lr[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25,
                                0.25, 0.25, 0.25, 0.2};
    cnn_plateau p;
    cnn_plateau_init(&p, &s, 1.0f);
    for (size_t i = 0; i < sizeof metric / sizeof metric[0]; i++) {
        int cut = cnn_plateau_step(&p, &s, metric[i]);
        CHECK_MSG(fabs(p.lr - lr[i]) < 1e-7, "plateau epoch %zu: lr %g, expected %g", i,
                  p.lr, lr[i]);
        CHECK(cut == (i > 0 && lr[i] != lr[i - 1]));
    }
    CHECK(p.best == 8.0 && p.bad_epochs == 0 && p.cooldown == 1);
    /* At min_lr nothing is cut any more. */
    for (int i = 0; i < 6; i++) CHECK(cnn_plateau_step(&p, &s, 8) == 0);
    CHECK_NEAR(p.lr, 0.2, 1e-7);

    /* mode max, patience 0: every epoch without a new maximum cuts. */
    s = (cnn_schedule){.type = CNN_SCHED_PLATEAU, .factor = 0.1f, .maximize = 1};
    cnn_plateau_init(&p, &s, 0.1f);
    static const double acc[] = {0.5, 0.6, 0.6, 0.7, 0.65};
    static const double lr2[] = {0.1, 0.1, 0.01, 0.01, 0.001};
    for (size_t i = 0; i < 5; i++) {
        cnn_plateau_step(&p, &s, acc[i]);
        CHECK_NEAR(p.lr, lr2[i], 1e-8);
    }
}

int main(void)
{
    test_sgd();
    test_adam();
    test_l1();
    test_decay_all();
    test_frozen();
    test_clip();
    test_weight_noise();
    test_schedules();
    test_plateau();
    return test_done();
}
