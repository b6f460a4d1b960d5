/*
 * leaky_relu: y = x for x > 0, slope * x otherwise, elementwise (PyTorch's
 * LeakyReLU). Option `slope` in [0, 1), default 0.01. Because the slope is
 * non-negative, y > 0 exactly where x > 0, so backward reads only y.
 */
#include <stdio.h>
#include "layer.h"
#include "parallel.h"

typedef struct leaky_settings {
    float slope;
} leaky_settings;

static cnn_status leaky_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    leaky_settings *s = l->settings;
    double slope;
    cnn_status st = cnn_opts_float(o, "slope", 0.01, 0.0, 1.0, &slope, e);
    if (st != CNN_OK)
        return st;
    if (slope >= 1.0) {
        const cnn_opt *v = cnn_opts_find(o, "slope");
        return cnn_error_at(e, CNN_ERR_CONFIG, v ? v->line : 0, v ? v->col : 0,
                            "%s: slope must be a number from 0 to below 1, got \"%s\"",
                            o->context ? o->context : "options",
                            v && v->text ? v->text : "?");
    }
    s->slope = (float)slope;
    return CNN_OK;
}

static void leaky_forward(cnn_layer *l)
{
    const leaky_settings *s = l->settings;
    const float a = s->slope;
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *x = l->x[0];   /* [batch][c][h][w] */
    float *y = l->y;            /* [batch][c][h][w] */
    /* Selects rather than a conditional multiply, so the loop vectorises;
     * NaN passes through. */
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = (x[i] < 0.0f ? 0.0f : x[i]) + a * (x[i] < 0.0f ? x[i] : 0.0f);
}

static void leaky_backward(cnn_layer *l)
{
    const leaky_settings *s = l->settings;
    const float a = s->slope;
    size_t n = l->batch * cnn_shape_size(l->out);
    const float *y = l->y, *dy = l->dy;   /* [batch][c][h][w] */
    float *dx = l->dx[0];                 /* [batch][c][h][w] */
    if (!dx)
        return;
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += (y[i] > 0.0f ? dy[i] : 0.0f) + a * (y[i] > 0.0f ? 0.0f : dy[i]);
}

static void leaky_describe(const cnn_layer *l, char *buf, size_t n)
{
    const leaky_settings *s = l->settings;
    snprintf(buf, n, "slope %g", (double)s->slope);
}

const cnn_layer_kind cnn_layer_leaky_relu = {
    .name = "leaky_relu",
    .summary = "leaky rectifier, y = x if x > 0 else slope*x (slope 0.01)",
    .settings_size = sizeof(leaky_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = leaky_parse,
    .infer = cnn_layer_infer_same,
    .forward = leaky_forward,
    .backward = leaky_backward,
    .describe = leaky_describe,
};
