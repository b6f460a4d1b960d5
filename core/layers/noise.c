/*
 * noise: additive Gaussian noise on activations, a regulariser (as Keras'
 * GaussianNoise): in training y = x + std * n with n ~ N(0, 1) drawn anew
 * for every element and every pass; in eval the layer is the identity.
 * The noise does not depend on x, so the gradient passes through
 * unchanged: dx = dy. Option `std` from 0 to 1000, default 0.1.
 *
 * The draws come from the net's training RNG (l->rng), one standard normal
 * per element in order, so a run is reproducible and a resumed run draws
 * what the unbroken run would have.
 */
#include <stdio.h>
#include <string.h>
#include "layer.h"
#include "rng.h"

typedef struct noise_settings {
    float std;
} noise_settings;

static cnn_status noise_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    noise_settings *s = l->settings;
    double std;
    cnn_status st = cnn_opts_float(o, "std", 0.1, 0.0, 1000.0, &std, e);
    if (st == CNN_OK) s->std = (float)std;
    return st;
}

static void noise_forward(cnn_layer *l)
{
    const noise_settings *s = l->settings;
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][h][w] */
    if (!l->training || s->std == 0.0f) {
        memcpy(y, x, n * sizeof *y);
        return;
    }
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] + s->std * cnn_rng_normal(l->rng);
}

static void noise_backward(cnn_layer *l)
{
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *dy = l->dy;    /* [batch][c][h][w] */
    float *dx = l->dx[0];       /* [batch][c][h][w] */
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i];
}

static void noise_describe(const cnn_layer *l, char *buf, size_t n)
{
    const noise_settings *s = l->settings;
    snprintf(buf, n, "std %g", (double)s->std);
}

const cnn_layer_kind cnn_layer_noise = {
    .name = "noise",
    .summary = "Gaussian noise: add N(0, std^2) (std 0.1) in training, identity in eval",
    .settings_size = sizeof(noise_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = noise_parse,
    .infer = cnn_layer_infer_same,
    .forward = noise_forward,
    .backward = noise_backward,
    .describe = noise_describe,
};
