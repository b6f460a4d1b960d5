/*
 * add: the elementwise sum of 2 to CNN_MAX_INPUTS inputs of one shape, as
 * in a residual block's shortcut, y = x[0] + x[1] + ...; the output shape
 * is the inputs' shape. Backward hands dy unchanged to every input.
 *
 * Option: project (bool, default false). The graph reads it and, where the
 * inputs' shapes differ, inserts a projection (a 1x1 convolution) on the
 * shortcut before this layer's shapes are inferred; add itself only records
 * the flag and sums. Inputs whose shapes still differ are a shape error
 * naming both inputs.
 */
#include <stdio.h>
#include "layer.h"
#include "parallel.h"

typedef struct add_settings {
    int project;   /* the graph projects mismatched inputs (done before infer) */
} add_settings;

static cnn_status add_parse(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    add_settings *s = l->settings;
    return cnn_opts_bool(o, "project", 0, &s->project, e);
}

static cnn_status add_infer(cnn_layer *l, cnn_error *e)
{
    const add_settings *s = l->settings;
    const cnn_shape a = l->in[0];
    for (size_t k = 1; k < l->ninputs; k++) {
        const cnn_shape b = l->in[k];
        if (b.c == a.c && b.h == a.h && b.w == a.w)
            continue;
        return cnn_error_set(e, CNN_ERR_SHAPE,
            "layer '%s' (%s): input '%s' is %zux%zux%zu but input '%s' is "
            "%zux%zux%zu; shapes must match%s", l->name, l->kind->name,
            l->input_names[0] ? l->input_names[0] : "?", a.c, a.h, a.w,
            l->input_names[k] ? l->input_names[k] : "?", b.c, b.h, b.w,
            s->project ? "" : " (use project: true for a projection shortcut)");
    }
    l->out = a;
    l->macs = 0;
    return CNN_OK;
}

static void add_forward(cnn_layer *l)
{
    const size_t n = l->batch * cnn_shape_size(l->out);
    const float *x0 = l->x[0], *x1 = l->x[1];   /* [batch][c][h][w] each */
    float *y = l->y;                            /* [batch][c][h][w] */
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x0[i] + x1[i];
    for (size_t k = 2; k < l->ninputs; k++) {
        const float *xk = l->x[k];              /* [batch][c][h][w] */
        #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] += xk[i];
    }
}

/* Inputs may repeat (the same layer twice): each dx[k] is added to in turn,
 * so an aliased buffer receives dy once per appearance (the graph never
 * asks to write a repeated input's). */
static void add_backward(cnn_layer *l)
{
    const size_t n = l->batch * cnn_shape_size(l->out);
    const float *dy = l->dy;                    /* [batch][c][h][w] */
    for (size_t k = 0; k < l->ninputs; k++) {
        float *dx = l->dx[k];                   /* [batch][c][h][w] */
        if (!dx)
            continue;
        if (l->dx_assign >> k & 1) {
            #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
            for (size_t i = 0; i < n; i++)
                dx[i] = dy[i];
            continue;
        }
        #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] += dy[i];
    }
}

static void add_describe(const cnn_layer *l, char *buf, size_t n)
{
    const add_settings *s = l->settings;
    snprintf(buf, n, "%zu inputs%s", l->ninputs, s->project ? ", project" : "");
}

const cnn_layer_kind cnn_layer_add = {
    .name = "add",
    .summary = "elementwise sum of 2 or more inputs of one shape (residual shortcut)",
    .settings_size = sizeof(add_settings),
    .min_inputs = 2, .max_inputs = CNN_MAX_INPUTS,
    .parse = add_parse,
    .infer = add_infer,
    .forward = add_forward,
    .backward = add_backward,
    .assigns_dx = 1,
    .describe = add_describe,
};
