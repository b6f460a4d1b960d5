/*
 * Optimiser steps against values computed by hand (the working is in the
 * comments), on a dense layer with two weights and a bias: weight decay
 * must reach the weights only.
 */
#include "harness.h"
#include "net.h"
#include "optim.h"

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
    cnn_optim_config c = {CNN_OPTIM_SGD, 0.1f, 0, 0, 0.01f, 0.9f, 0.999f, 1e-8f};
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
    cnn_optim_config c = {CNN_OPTIM_ADAM, 0.1f, 0, 0, 0, 0.9f, 0.999f, 1e-8f};
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

int main(void)
{
    test_sgd();
    test_adam();
    return test_done();
}
