/*
 * concat: 2 to CNN_MAX_INPUTS inputs joined along channels, per sample, in
 * the order the inputs are listed (as torch.cat(xs, dim=1) on NCHW). The
 * inputs must share height and width; the output has the sum of their
 * channels. Backward adds each input's slice of dy into its gradient.
 */
#include <string.h>
#include "layer.h"
#include "parallel.h"

static cnn_status concat_infer(cnn_layer *l, cnn_error *e)
{
    const cnn_shape a = l->in[0];
    size_t c = 0;
    for (size_t k = 0; k < l->ninputs; k++) {
        const cnn_shape b = l->in[k];
        if (b.h != a.h || b.w != a.w)
            return cnn_error_set(e, CNN_ERR_SHAPE,
                "layer '%s' (%s): input '%s' is %zux%zux%zu but input '%s' is "
                "%zux%zux%zu; heights and widths must match to concatenate "
                "along channels", l->name, l->kind->name,
                l->input_names[0] ? l->input_names[0] : "?", a.c, a.h, a.w,
                l->input_names[k] ? l->input_names[k] : "?", b.c, b.h, b.w);
        c += b.c;
    }
    l->out = (cnn_shape){c, a.h, a.w};
    l->macs = 0;
    return CNN_OK;
}

static void concat_forward(cnn_layer *l)
{
    const size_t N = l->batch, S = cnn_shape_size(l->out);
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        float *y = l->y + n * S;                      /* [S] */
        for (size_t k = 0; k < l->ninputs; k++) {
            const size_t Sk = cnn_shape_size(l->in[k]);
            memcpy(y, l->x[k] + n * Sk, Sk * sizeof *y);   /* [Sk] */
            y += Sk;
        }
    }
}

static void concat_backward(cnn_layer *l)
{
    const size_t N = l->batch, S = cnn_shape_size(l->out);
    #pragma omp parallel for schedule(static) if (N * S >= CNN_PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *dy = l->dy + n * S;              /* [S] */
        for (size_t k = 0; k < l->ninputs; k++) {
            const size_t Sk = cnn_shape_size(l->in[k]);
            float *dx = l->dx[k];                     /* [batch][Sk] */
            if (dx) {
                dx += n * Sk;
                for (size_t i = 0; i < Sk; i++)
                    dx[i] += dy[i];
            }
            dy += Sk;
        }
    }
}

const cnn_layer_kind cnn_layer_concat = {
    .name = "concat",
    .summary = "join 2 or more inputs along channels (same height and width)",
    .settings_size = 0,
    .min_inputs = 2, .max_inputs = CNN_MAX_INPUTS,
    .parse = cnn_layer_parse_none,
    .infer = concat_infer,
    .forward = concat_forward,
    .backward = concat_backward,
    .describe = NULL,
};
