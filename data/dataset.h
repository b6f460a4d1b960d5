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
    size_t nclasses;       /* 1 + largest label, or the number of classes */
    char **classes;        /* [nclasses] class names, or NULL (IDX: digits) */
    size_t mapped;         /* bytes of pixels mapped from a cache file (0:
                              pixels come from malloc) */
} cnn_dataset;

/* Read an IDX image file (magic 0x00000803, uint8, n x rows x cols) and its
 * label file (0x00000801, uint8, n), gzipped or not (zlib reads both). Sizes
 * and counts are checked: a short file, a wrong magic or image and label
 * counts that disagree fail with CNN_ERR_FORMAT naming the file. limit > 0
 * keeps only the first `limit` samples. */
cnn_status cnn_idx_load(const char *images_path, const char *labels_path,
                        size_t limit, cnn_dataset *ds, cnn_error *e);

/* Frees pixels (or unmaps them), labels and class names. */
void cnn_dataset_free(cnn_dataset *ds);

/* Per-channel mean and standard deviation of the pixels scaled to [0,1].
 * A channel with one value throughout (an opaque alpha channel) gets std 1,
 * so normalising makes it 0 instead of dividing by zero. */
void cnn_dataset_stats(const cnn_dataset *ds, float *mean, float *std);

struct cnn_aug;
struct cnn_loader_pool;

typedef struct cnn_loader_opts {
    size_t batch;
    size_t h, w;               /* input size (0: the dataset's); a larger
                                  dataset image is centre-cropped, or brought
                                  to size by the augmentations */
    const float *mean, *std;   /* [c] per channel on [0,1] pixels (NULL: 0, 1) */
    int shuffle;               /* a new order every epoch */
    uint64_t seed;             /* order and augmentation draws */
    const struct cnn_aug *augs;   /* [naugs] training augmentations (copied) */
    size_t naugs;
    size_t threads;            /* workers building batches ahead of the
                                  caller; 0: built inside cnn_loader_next */
    size_t part, parts;        /* data-parallel training: of every batch of
                                  `batch` samples (the global batch), hand out
                                  only part `part` of `parts`: the samples at
                                  positions [part*b/parts, (part+1)*b/parts)
                                  of a batch of b, so the parts together are
                                  the whole batch. parts 0 or 1: all of it */
    size_t views;              /* rows per sample, each augmented with its
                                  own draws (two for contrastive learning);
                                  0 or 1: one. `batch` still counts samples */
} cnn_loader_opts;

typedef struct cnn_loader {
    const cnn_dataset *ds;
    cnn_loader_opts o;         /* a copy of the options, with h, w and views
                                  (at least 1) filled in */
    size_t chw;                /* floats per input */
    uint32_t *order;           /* [ds->n] sample order of this epoch */
    uint64_t epoch;
    size_t nbatches;           /* batches per epoch */
    size_t next_batch;         /* the batch cnn_loader_next returns next */
    size_t batch_total;        /* samples of the last batch cnn_loader_next
                                  returned, all parts together */
    double wait_seconds;       /* time cnn_loader_next spent waiting for
                                  data since the epoch began */
    struct cnn_loader_pool *pool;
} cnn_loader;

/* Check the options and start the workers. Fails for a batch of 0, more
 * than 4 channels, so many views that a batch's size overflows, an input
 * larger than the dataset's images without a crop augmentation to make it,
 * or a non-positive std. */
cnn_status cnn_loader_init(cnn_loader *ld, const cnn_dataset *ds,
                           const cnn_loader_opts *o, cnn_error *e);
void cnn_loader_free(cnn_loader *ld);

/* Start epoch `epoch` (0-based): the order and every augmentation draw are
 * pure functions of (seed, epoch, position in the epoch, view), so resuming
 * at any epoch gives the same batches, whatever the number of threads.
 * View 0 draws exactly as a loader with one view does, so asking for more
 * views leaves the first row of every sample unchanged. */
void cnn_loader_epoch(cnn_loader *ld, uint64_t epoch);

/* The same, starting at batch first_batch of that epoch (to resume in the
 * middle of an epoch): the batches are those an uninterrupted epoch would
 * give from there on. */
void cnn_loader_epoch_at(cnn_loader *ld, uint64_t epoch, size_t first_batch);

/* Fill x [batch * V][c][h][w] and y [batch * V] (y may be NULL), V = views,
 * with the next batch of this epoch (with parts: this part of it, at most
 * ceil(batch / parts) samples): sample i's views are rows i*V .. i*V+V-1,
 * each row labelled with the sample's label. Returns how many samples, so
 * returned * V rows (the last batch may be short, 0 at the end of the
 * epoch). A part holds whole samples, all views of a sample together. */
size_t cnn_loader_next(cnn_loader *ld, float *x, int *y);

/* The most samples one part of a batch holds: ceil(batch / parts) (times
 * views for rows). */
size_t cnn_loader_part_max(const cnn_loader_opts *o);

/* The smallest part of any batch of an epoch of n samples: 0 when some
 * part would be empty (a batch, or the epoch's last and shorter batch,
 * with fewer samples than parts). */
size_t cnn_loader_part_min(const cnn_loader_opts *o, size_t n);

#endif
