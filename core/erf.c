/*
 * Effective receptive fields (see erf.h).
 */
#include "erf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cnn_erf_map(cnn_net *net, size_t target, size_t n, double *map)
{
    cnn_layer *l = &net->layers[target];
    cnn_shape in = net->input, out = l->out;
    size_t hw = in.h * in.w, ohw = out.h * out.w;
    size_t centre = (out.h / 2) * out.w + out.w / 2;
    memset(map, 0, hw * sizeof *map);
    cnn_net_forward(net, n, 0);
    /* the target's own batch: n / batch_div after a pair layer */
    memset(l->dy, 0, l->batch * cnn_shape_size(out) * sizeof(float));
    for (size_t s = 0; s < l->batch; s++)
        for (size_t c = 0; c < out.c; c++)
            l->dy[(s * out.c + c) * ohw + centre] = 1.0f;
    int want = net->want_input_grad;
    net->want_input_grad = 1;
    cnn_net_backward_from(net, target);
    net->want_input_grad = want;
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < in.c; c++) {
            const float *g = net->dx + (s * in.c + c) * hw;   /* [h][w] */
            for (size_t i = 0; i < hw; i++) map[i] += fabs((double)g[i]) / (double)n;
        }
}

static int by_distance(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x > y) - (x < y);
}

double cnn_erf_radius(const double *map, size_t h, size_t w, double frac)
{
    double total = 0, cy = 0, cx = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            total += map[y * w + x];
            cy += (double)y * map[y * w + x];
            cx += (double)x * map[y * w + x];
        }
    if (total <= 0) return 0;
    cy /= total;
    cx /= total;
    /* Sort the pixels by distance and take them until frac is reached. */
    size_t n = h * w;
    double (*d)[2] = malloc(n * sizeof *d);
    if (!d) return NAN;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            d[y * w + x][0] = hypot((double)y - cy, (double)x - cx);
            d[y * w + x][1] = map[y * w + x];
        }
    qsort(d, n, sizeof *d, by_distance);
    double acc = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        acc += d[i][1];
        r = d[i][0];
        if (acc >= frac * total * (1 - 1e-12)) break;
    }
    free(d);
    return r;
}
