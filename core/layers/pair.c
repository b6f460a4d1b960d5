/*
 * pair: joins the features of consecutive samples, for heads that judge two
 * images together (context prediction, Doersch, Gupta and Efros 2015: one
 * encoder sees 2m patches, and a classifier on each joined pair names the
 * second patch's position relative to the first). The input [2m][c][h][w]
 * becomes [m][2c][h][w]: sample 2i's channels, then sample 2i+1's.
 *
 * In NCHW memory sample 2i+1 follows sample 2i, so the two layouts are the
 * same bytes: forward is a copy and backward adds dy into dx unchanged. The
 * layer sets halves_batch, and the graph runs it and every layer after it
 * with half the samples (l->batch is the output's m). No options.
 */
#include <string.h>

#include "layer.h"
#include "parallel.h"

static cnn_status pair_infer(cnn_layer *l, cnn_error *e)
{
    (void)e;
    const cnn_shape in = l->in[0];
    l->out = (cnn_shape){2 * in.c, in.h, in.w};
    l->halves_batch = 1;
    l->macs = 0;
    /* each output cell sees the same cell of two images: a 1x1 window */
    l->rf_kernel[0] = l->rf_kernel[1] = 1;
    l->rf_stride[0] = l->rf_stride[1] = 1;
    return CNN_OK;
}

static void pair_forward(cnn_layer *l)
{
    /* [batch][2c][h][w] out is [2 batch][c][h][w] in, byte for byte */
    const size_t n = l->batch * cnn_shape_size(l->out);
    memcpy(l->y, l->x[0], n * sizeof *l->y);
}

static void pair_backward(cnn_layer *l)
{
    const size_t n = l->batch * cnn_shape_size(l->out);
    const float *dy = l->dy;   /* [batch][2c][h][w] */
    float *dx = l->dx[0];      /* [2 batch][c][h][w] */
    if (!dx)
        return;
    #pragma omp parallel for simd schedule(static) if (n >= CNN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i];
}

const cnn_layer_kind cnn_layer_pair = {
    .name = "pair",
    .summary = "join samples 2i and 2i+1 along channels: [2m][c] -> [m][2c] (context prediction)",
    .settings_size = 0,
    .min_inputs = 1, .max_inputs = 1,
    .parse = cnn_layer_parse_none,
    .infer = pair_infer,
    .forward = pair_forward,
    .backward = pair_backward,
    .describe = NULL,
};
