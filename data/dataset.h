/*
 * In-memory labelled image datasets and the batch loader.
 *
 * A dataset keeps its images as uint8 [n][c][h][w] and labels as int [n].
 * The loader hands out batches as normalised float32 NCHW tensors, in an
 * order shuffled per epoch from an explicit seed, so the same seed gives the
 * same batches.
 */
#ifndef CNN_DATASET_H
#define CNN_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "../core/error.h"

typedef struct cnn_dataset {
    size_t n, c, h, w;
    uint8_t *pixels;       /* [n][c][h][w] */
    int *labels;           /* [n] */
    size_t nclasses;       /* 1 + largest label */
} cnn_dataset;

/* Read an IDX image file (magic 0x00000803, uint8, n x rows x cols) and its
 * label file (0x00000801, uint8, n), gzipped or not (zlib reads both). Sizes
 * and counts are checked: a short file, a wrong magic or image and label
 * counts that disagree fail with CNN_ERR_FORMAT naming the file. limit > 0
 * keeps only the first `limit` samples. */
cnn_status cnn_idx_load(const char *images_path, const char *labels_path,
                        size_t limit, cnn_dataset *ds, cnn_error *e);

void cnn_dataset_free(cnn_dataset *ds);

/* Per-channel mean and standard deviation of the pixels scaled to [0,1]. */
void cnn_dataset_stats(const cnn_dataset *ds, float *mean, float *std);

typedef struct cnn_loader {
    const cnn_dataset *ds;
    size_t batch;
    float mean[4], std[4]; /* per channel, on pixels scaled to [0,1] */
    int shuffle;
    uint64_t seed;
    uint32_t *order;       /* [ds->n] */
    size_t pos;            /* next sample in order */
} cnn_loader;

/* mean/std have ds->c entries (NULL: 0 and 1). */
cnn_status cnn_loader_init(cnn_loader *ld, const cnn_dataset *ds, size_t batch,
                           const float *mean, const float *std, int shuffle,
                           uint64_t seed, cnn_error *e);
void cnn_loader_free(cnn_loader *ld);

/* Start epoch `epoch` (0-based): the order is a pure function of seed and
 * epoch, so resuming at any epoch gives the same order. */
void cnn_loader_epoch(cnn_loader *ld, uint64_t epoch);

/* Fill x [batch][c][h][w] and y [batch] with the next samples of this
 * epoch; returns how many (the last batch may be short, 0 at the end). */
size_t cnn_loader_next(cnn_loader *ld, float *x, int *y);

#endif
