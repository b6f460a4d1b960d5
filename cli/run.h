/*
 * Pieces the subcommands share: building a network from a config, saving
 * and loading checkpoints with their embedded config, loading a dataset
 * split, and scoring a network on a dataset.
 */
#ifndef CNN_RUN_H
#define CNN_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "../core/checkpoint.h"
#include "../core/net.h"
#include "../core/optim.h"
#include "../data/dataset.h"
#include "config.h"

/* A network with the config it came from and its input normalisation. */
typedef struct cli_model {
    cnn_config cfg;
    cnn_net *net;
    float mean[4], std[4];   /* per input channel */
    size_t nclasses;         /* the output size */
    char **classes;          /* [nclasses] class names, or NULL (numbered) */
} cli_model;

/* The name of class c ("3" when the model has no names); buf has room for
 * a number. */
const char *cli_class_name(const cli_model *m, size_t c, char *buf, size_t n);

/* Give m the class names of ds (copies; NULL names leave m numbered).
 * Returns an exit code. */
int cli_model_set_classes(cli_model *m, const cnn_dataset *ds);

/* Load a YAML config (with --set overrides) and build its network for
 * batches of `batch` (0: the config's train.batch). Prints errors and
 * returns an exit code. */
int cli_model_from_config(const char *path, const char *const *sets, size_t nsets,
                          size_t batch, cli_model *m);

/* The same, but only planned (cnn_net_plan): for check and summary, and
 * for train's memory estimate before cli_model_allocate. */
int cli_model_plan(const char *path, const char *const *sets, size_t nsets,
                   size_t batch, cli_model *m);

/* Give a planned model (cli_model_plan) its allocated network. Prints the
 * error and returns an exit code. */
int cli_model_allocate(cli_model *m);

/* The same for a network that only infers (cnn_net_create_inference). */
int cli_model_allocate_inference(cli_model *m);

/* Load a checkpoint: parse its embedded config, build the network and load
 * every parameter and buffer. If ck is not NULL, the checkpoint stays open
 * in it (for optimizer state and metadata). Returns an exit code. */
int cli_model_from_checkpoint(const char *path, size_t batch, cli_model *m,
                              cnn_checkpoint *ck);

/* cli_model_from_checkpoint for evaluation only: the network is built by
 * cnn_net_create_inference (no gradients, outputs sharing buffers). */
int cli_model_for_inference(const char *path, size_t batch, cli_model *m);

/* Copy a read checkpoint's parameters and buffers into m's network (every
 * tensor must be there with the right size), and its normalisation, RNG
 * state and class names into m. `path` names the checkpoint in messages.
 * Returns an exit code. */
int cli_model_load_state(cli_model *m, const cnn_checkpoint *ck, const char *path);

/* Is `path` a checkpoint (by its magic)? */
int cli_is_checkpoint(const char *path);

/* The layer of m's network named `name`; when there is none, prints
 * "PATH: error: no layer named ..." with the nearest name as a hint and
 * returns NULL (the caller exits 2). */
cnn_layer *cli_model_layer(cli_model *m, const char *path, const char *name);

void cli_model_free(cli_model *m);

/* Trainer state saved alongside the weights. */
typedef struct cli_train_state {
    uint64_t epoch;          /* epochs completed */
    uint64_t step;           /* optimizer steps taken */
    double best_metric;      /* best validation accuracy so far (-1: none) */
    double val_accuracy;     /* of this checkpoint's epoch (-1: none) */
    const char *extra_meta;  /* more "key=value\n" lines for the meta, or NULL */
} cli_train_state;

/* Write m's parameters and buffers, the optimizer's moments (if o) and the
 * state to path, atomically. Returns 0 or prints the error and returns an
 * exit code. */
int cli_model_save(const char *path, const cli_model *m, const cnn_optim *o,
                   const cli_train_state *st);

/* Load one data source as the config's data section says: IDX files, or
 * images decoded at the working size (data.resize), bad images handled per
 * data.on_bad_image. `split` names it in messages ("train", "val",
 * "--data"). When classes is not NULL, the labels are re-expressed in those
 * class names (nclasses of them), so that a validation or test folder agrees
 * with the training classes. A report line goes to stderr. Returns an exit
 * code. */
int cli_load_source(const cnn_config *cfg, const cnn_data_source *src,
                    const char *split, char *const *classes, size_t nclasses,
                    cnn_dataset *ds);

/* data.train and data.val (given, or carved out of data.train by
 * data.val_split); want_val 0 skips the validation set. val->n == 0 when
 * there is none. Returns an exit code. */
int cli_load_train_val(const cnn_config *cfg, int want_val, cnn_dataset *train,
                       cnn_dataset *val);

/* The source a --data argument names: a folder, a list file, or IDX images
 * (with ",LABELS", or the labels file derived from the images file name). */
int cli_data_arg(const char *arg, cnn_data_source *src, char *buf1, char *buf2, size_t n);

/* Score the network on a whole dataset in eval mode: mean loss, top-1 and
 * top-k accuracy, and (when confusion is not NULL) the confusion matrix
 * confusion[true][predicted], nclasses x nclasses, counted into. */
typedef struct cli_score {
    size_t n, correct, topk_correct, k;
    double loss, accuracy, topk_accuracy;
} cli_score;
void cli_evaluate(cli_model *m, const cnn_dataset *ds, size_t k, size_t *confusion,
                  cli_score *s);

#endif
