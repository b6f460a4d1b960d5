/*
 * The batch loader: hands out a dataset's samples as normalised float32
 * NCHW batches, x = (p / 255 - mean[c]) / std[c], in an order that is a pure
 * function of (seed, epoch): the identity, shuffled with the RNG stream
 * cnn_rng_seed(seed, epoch) when shuffling is on. Resuming at any epoch
 * therefore reproduces the batches exactly, with no state to save beyond the
 * seed, the epoch and the position.
 */
#include "dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../core/rng.h"

cnn_status cnn_loader_init(cnn_loader *ld, const cnn_dataset *ds, size_t batch,
                           const float *mean, const float *std, int shuffle,
                           uint64_t seed, cnn_error *e)
{
    if (!ld || !ds)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_loader_init: NULL argument");
    memset(ld, 0, sizeof *ld);
    if (batch == 0)
        return cnn_error_set(e, CNN_ERR_ARG, "batch size must be at least 1");
    if (ds->c == 0 || ds->c > 4)
        return cnn_error_set(e, CNN_ERR_ARG, "the loader takes 1 to 4 channels, "
                             "the dataset has %zu", ds->c);
    if (ds->n > UINT32_MAX)
        return cnn_error_set(e, CNN_ERR_ARG, "the loader takes at most %u samples, "
                             "the dataset has %zu", UINT32_MAX, ds->n);
    for (size_t c = 0; c < ds->c; c++) {
        float m = mean ? mean[c] : 0.0f, s = std ? std[c] : 1.0f;
        if (!isfinite(m) || !isfinite(s) || !(s > 0))
            return cnn_error_set(e, CNN_ERR_ARG, "normalisation of channel %zu: "
                                 "mean %g, std %g (std must be positive and both "
                                 "finite)", c, (double)m, (double)s);
        ld->mean[c] = m;
        ld->std[c] = s;
    }
    ld->order = cnn_alloc(ds->n, sizeof *ld->order, "loader order", e);
    if (!ld->order) return CNN_ERR_NOMEM;
    ld->ds = ds;
    ld->batch = batch;
    ld->shuffle = shuffle;
    ld->seed = seed;
    cnn_loader_epoch(ld, 0);
    return CNN_OK;
}

void cnn_loader_free(cnn_loader *ld)
{
    if (!ld) return;
    free(ld->order);
    memset(ld, 0, sizeof *ld);
}

void cnn_loader_epoch(cnn_loader *ld, uint64_t epoch)
{
    uint32_t n = (uint32_t)ld->ds->n;
    for (uint32_t i = 0; i < n; i++) ld->order[i] = i;
    if (ld->shuffle) {
        uint64_t state = cnn_rng_seed(ld->seed, epoch);
        cnn_rng_shuffle(&state, ld->order, n);
    }
    ld->pos = 0;
}

size_t cnn_loader_next(cnn_loader *ld, float *x, int *y)
{
    const cnn_dataset *ds = ld->ds;
    size_t count = ds->n - ld->pos < ld->batch ? ds->n - ld->pos : ld->batch;
    size_t hw = ds->h * ds->w, chw = ds->c * hw;
    float table[4][256];             /* [channel][pixel value] -> input value */
    for (size_t c = 0; c < ds->c; c++)
        for (int p = 0; p < 256; p++)
            table[c][p] = ((float)p / 255.0f - ld->mean[c]) / ld->std[c];
    for (size_t b = 0; b < count; b++) {
        size_t i = ld->order[ld->pos + b];
        const uint8_t *src = ds->pixels + i * chw;     /* [c][h][w] */
        float *dst = x + b * chw;                      /* [c][h][w] */
        for (size_t c = 0; c < ds->c; c++)
            for (size_t j = 0; j < hw; j++)
                dst[c * hw + j] = table[c][src[c * hw + j]];
        if (y) y[b] = ds->labels[i];
    }
    ld->pos += count;
    return count;
}
