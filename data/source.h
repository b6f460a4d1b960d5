/*
 * Where labelled images come from: a folder per class, the Kaggle flat
 * layout, or a list file. A source is first listed (paths and labels, no
 * pixels), optionally split into train and validation, then decoded once,
 * in parallel, into an in-memory cnn_dataset at a working size (or into a
 * cache file mapped into memory when it would exceed a memory budget).
 */
#ifndef CNN_SOURCE_H
#define CNN_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "../core/error.h"
#include "dataset.h"
#include "image.h"

typedef struct cnn_file_list {
    size_t n;
    char **paths;              /* [n] file paths as opened */
    int *labels;               /* [n] index into classes */
    size_t nclasses;
    char **classes;            /* [nclasses] class names, sorted */
} cnn_file_list;

/* The image extensions a folder listing takes (case ignored): jpg, jpeg,
 * png, bmp, tga, gif. */
int cnn_is_image_name(const char *name);

/* root/<class>/<image>: classes are the subfolders, sorted by name (byte
 * order); files inside each sorted by name; files that are not images by
 * extension are ignored; hidden entries (leading '.') are ignored. A class
 * folder with no images and a root with no class folders are errors naming
 * the folder. */
cnn_status cnn_list_folders(const char *root, cnn_file_list *l, cnn_error *e);

/* root/<label>.<anything>.jpg (Kaggle "dogs vs cats": cat.123.jpg): the
 * label is the file name up to its first dot; classes sorted by name. */
cnn_status cnn_list_flat(const char *root, cnn_file_list *l, cnn_error *e);

/* A directory: cnn_list_folders when it has subfolders, else cnn_list_flat. */
cnn_status cnn_list_dir(const char *root, cnn_file_list *l, cnn_error *e);

/* A text file with one "path label" per line (the label is the last
 * whitespace-separated word, the path is the rest; relative paths are taken
 * relative to the list file's folder; blank lines and lines starting with
 * '#' are skipped). Labels that are all non-negative integers are class
 * indices (classes named "0", "1", ...); otherwise they are class names,
 * sorted. A listed file that does not exist is an error naming the list file
 * and the line. */
cnn_status cnn_list_file(const char *list_path, cnn_file_list *l, cnn_error *e);

void cnn_file_list_free(cnn_file_list *l);

/* Re-express l's labels in the classes of `ref` (matched by name), so that a
 * validation or test source agrees with the training source. A class of l
 * missing from ref is an error naming `what` (e.g. the folder). */
cnn_status cnn_file_list_match_classes(cnn_file_list *l, const cnn_file_list *ref,
                                       const char *what, cnn_error *e);

/* Keep only the samples of the named classes, which become l's classes in
 * the order given (labels re-numbered). A name that is not a class of l is
 * an error naming `what`. */
cnn_status cnn_file_list_keep_classes(cnn_file_list *l, const char *const *names,
                                      size_t n, const char *what, cnn_error *e);

/* Deterministic stratified split: from each class of `all`, a fraction
 * `frac` (0 < frac < 1; rounded, but at least one and at most all but one
 * when the class has two or more samples, none when it has one) goes to
 * `val`, chosen by a shuffle seeded with `seed`, the rest to `train`; both
 * keep the class list and the order of `all`. all is left untouched. */
cnn_status cnn_file_list_split(const cnn_file_list *all, double frac, uint64_t seed,
                               cnn_file_list *train, cnn_file_list *val, cnn_error *e);

/* The same split for an in-memory dataset (IDX): copies the samples. */
cnn_status cnn_dataset_split(const cnn_dataset *all, double frac, uint64_t seed,
                             cnn_dataset *train, cnn_dataset *val, cnn_error *e);

typedef struct cnn_decode_opts {
    cnn_image_opts image;      /* channel count, working size, resize mode */
    int skip_bad;              /* 1: leave bad images out; 0: the first one fails */
    size_t threads;            /* decoding threads (0: 1) */
    uint64_t memory_budget;    /* bytes of pixels kept in memory; above, in a
                                  cache file (0: no limit) */
    const char *cache_dir;     /* where the cache file goes (NULL: $TMPDIR or /tmp) */
} cnn_decode_opts;

#define CNN_DECODE_REPORT_PATHS 5

typedef struct cnn_decode_report {
    size_t decoded, skipped;
    char first_bad[CNN_DECODE_REPORT_PATHS][512];   /* "path: reason" of the
                                                        first skipped files */
    double seconds;
    int cached;                /* 1: the pixels live in a cache file */
} cnn_decode_report;

/* Decode every file of l into ds (pixels [n][c][h][w] at o->image's size,
 * labels, classes copied from l). With skip_bad, bad files are left out and
 * counted in r; without, the first bad file fails with its error. Decoding
 * no file at all is an error. The result does not depend on o->threads. */
cnn_status cnn_dataset_decode(const cnn_file_list *l, const cnn_decode_opts *o,
                              cnn_dataset *ds, cnn_decode_report *r, cnn_error *e);

#endif
