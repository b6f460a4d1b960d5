/*
 * dense: a fully connected layer, y = x W^T + b, as PyTorch's Linear.
 *
 * Any input shape (c, h, w) is accepted and read as c*h*w features in NCHW
 * order, like Keras' Dense after an implicit flatten: NCHW is already flat
 * per sample, so no copy is needed. The output shape is (units, 1, 1).
 *
 * Options: units (required), bias (default true), init (he | glorot,
 * default he). Parameters: weight [units][in_features], bias [units].
 * The whole batch is one GEMM each way (cnn_gemm: split over threads when large).
 */
#include <limits.h>
#include <stdio.h>

#include "layer.h"
#include "parallel.h"

typedef struct dense_settings {
    size_t units;
    size_t in;       /* input features, c*h*w */
    int bias, init;
} dense_settings;

static cnn_status dense_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    dense_settings *s = l->settings;
    static const char *const inits[] = {"he", "glorot"};
    long units;
    cnn_status st;
    if ((st = cnn_opts_int(o, "units", 0, 1, 1L << 24, &units, e)))
        return st;
    if ((st = cnn_opts_bool(o, "bias", 1, &s->bias, e)))
        return st;
    if ((st = cnn_opts_enum(o, "init", inits, 2, 0, &s->init, e)))
        return st;
    if (!cnn_opts_find(o, "units"))
        return cnn_error_set(e, CNN_ERR_CONFIG, "%s: the option 'units' is required",
                             o->context ? o->context : l->name);
    s->units = (size_t)units;
    return CNN_OK;
}

static cnn_status dense_infer(cnn_layer *l, cnn_error *e)
{
    dense_settings *s = l->settings;
    s->in = cnn_shape_size(l->in[0]);
    if (s->in > INT_MAX || l->max_batch > INT_MAX)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (dense): %zu input features are "
                             "too many for BLAS", l->name, s->in);
    l->out = (cnn_shape){s->units, 1, 1};
    size_t wdims[2] = {s->units, s->in};
    cnn_init init = s->init ? CNN_INIT_GLOROT : CNN_INIT_HE;
    l->nparams = 0;
    cnn_layer_param(l, "weight", 2, wdims, init, s->in, s->units, 1, 1);
    if (s->bias)
        cnn_layer_param(l, "bias", 1, &s->units, CNN_INIT_ZERO, s->in, s->units, 1, 0);
    l->saved_per_sample = 0;
    l->work_size = 0;
    l->macs = s->in * s->units;
    return CNN_OK;
}

static void dense_forward(cnn_layer *l)
{
    const dense_settings *s = l->settings;
    const size_t nb = l->batch, nu = s->units, ni = s->in;
    const float *x = l->x[0];                            /* [batch][in] */
    const float *w = l->params[0].data;                  /* [units][in] */
    const float *b = s->bias ? l->params[1].data : NULL; /* [units] */
    float *y = l->y;                                     /* [batch][units] */
    cnn_gemm(0, 1, nb, nu, ni, 1.0f, x, ni, w, ni, 0.0f, y, nu);
    if (b)
        for (size_t n = 0; n < l->batch; n++)
            for (size_t u = 0; u < s->units; u++) y[n * s->units + u] += b[u];
}

static void dense_backward(cnn_layer *l)
{
    const dense_settings *s = l->settings;
    const size_t nb = l->batch, nu = s->units, ni = s->in;
    const float *x = l->x[0];                            /* [batch][in] */
    const float *w = l->params[0].data;                  /* [units][in] */
    const float *dy = l->dy;                             /* [batch][units] */
    float *dw = l->params[0].grad;                       /* [units][in] */
    float *db = s->bias ? l->params[1].grad : NULL;      /* [units] */
    float *dx = l->dx[0];                                /* [batch][in] or NULL */
    if (!cnn_layer_param_grads(l)) db = NULL;   /* dx only */
    else cnn_gemm(1, 0, nu, ni, nb, 1.0f, dy, nu, x, ni, 1.0f, dw, ni);
    if (db)
        for (size_t n = 0; n < l->batch; n++)
            for (size_t u = 0; u < s->units; u++) db[u] += dy[n * s->units + u];
    if (dx)
        cnn_gemm(0, 0, nb, ni, nu, 1.0f, dy, nu, w, ni, l->dx_assign & 1 ? 0.0f : 1.0f,
                 dx, ni);
}

static void dense_describe(const cnn_layer *l, char *buf, size_t n)
{
    const dense_settings *s = l->settings;
    snprintf(buf, n, "%zu units%s", s->units, s->bias ? "" : " nobias");
}

const cnn_layer_kind cnn_layer_dense = {
    .name = "dense",
    .summary = "fully connected layer over the flattened input (units, bias, init)",
    .settings_size = sizeof(dense_settings),
    .min_inputs = 1, .max_inputs = 1,
    .parse = dense_parse,
    .infer = dense_infer,
    .forward = dense_forward,
    .backward = dense_backward,
    .assigns_dx = 1,
    .describe = dense_describe,
};
