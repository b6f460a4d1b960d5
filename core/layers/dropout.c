/*
 * dropout (inverted, as PyTorch's Dropout): in training each element is
 * kept with probability 1 - rate and scaled by 1/(1 - rate), otherwise set
 * to zero, so the expectation of the output equals the input; in eval the
 * layer is the identity. Option `rate` in [0, 1), default 0.5.
 *
 * The mask comes from the net's training RNG (l->rng), one uniform draw per
 * element in order, and is kept in l->saved as the factor applied to each
 * element (0 or 1/(1 - rate)) for backward.
 */
#include <stdio.h>
#include <string.h>
#include "layer.h"
#include "rng.h"

typedef struct dropout_settings {
    float rate;
} dropout_settings;

static cnn_status dropout_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    dropout_settings *s = l->settings;
    double rate;
    cnn_status st = cnn_opts_float(o, "rate", 0.5, 0.0, 1.0, &rate, e);
    if (st != CNN_OK)
        return st;
    if (rate >= 1.0) {
        const cnn_opt *v = cnn_opts_find(o, "rate");
        return cnn_error_at(e, CNN_ERR_CONFIG, v ? v->line : 0, v ? v->col : 0,
                            "%s: rate must be a number from 0 to below 1, got \"%s\"",
                            o->context ? o->context : "options",
                            v && v->text ? v->text : "?");
    }
    s->rate = (float)rate;
    return CNN_OK;
}

static cnn_status dropout_infer(cnn_layer *l, cnn_error *e)
{
    (void)e;
    l->out = l->in[0];
    l->saved_per_sample = cnn_shape_size(l->in[0]);   /* the mask */
    l->macs = 0;
    return CNN_OK;
}

static void dropout_forward(cnn_layer *l)
{
    const dropout_settings *s = l->settings;
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][h][w] */
    float *mask = l->saved;     /* [batch][c][h][w]: 0 or 1/(1-rate) */
    if (!l->training) {
        memcpy(y, x, n * sizeof *y);
        return;
    }
    const float scale = 1.0f / (1.0f - s->rate);
    for (size_t i = 0; i < n; i++)
        mask[i] = cnn_rng_uniform(l->rng) >= s->rate ? scale : 0.0f;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * mask[i];
}

static void dropout_backward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *dy = l->dy;    /* [batch][c][h][w] */
    const float *mask = l->saved;
    float *dx = l->dx[0];       /* [batch][c][h][w] */
    if (!dx)
        return;
    const int assign = l->dx_assign & 1;   /* dx holds no gradient yet */
    if (assign)
        for (size_t i = 0; i < n; i++)
            dx[i] = l->training ? dy[i] * mask[i] : dy[i];
    else if (!l->training)
        for (size_t i = 0; i < n; i++)
            dx[i] += dy[i];
    else
        for (size_t i = 0; i < n; i++)
            dx[i] += dy[i] * mask[i];
}

static void dropout_describe(const cnn_layer *l, char *buf, size_t n)
{
    const dropout_settings *s = l->settings;
    snprintf(buf, n, "rate %g", (double)s->rate);
}

const cnn_layer_kind cnn_layer_dropout = {
    .name = "dropout",
    .summary = "inverted dropout: zero a fraction `rate` (0.5) in training, identity in eval",
    .settings_size = sizeof(dropout_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = dropout_parse,
    .infer = dropout_infer,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .assigns_dx = 1,
    .describe = dropout_describe,
};
