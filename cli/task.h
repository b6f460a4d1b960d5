/*
 * What a config's `task:` adds to training and scoring: where the loader's
 * batch goes, how it becomes the network's input and targets, and the loss.
 *
 *   classify      the loader fills net->x; labels; softmax cross-entropy
 *   autoencoder   the loader fills net->x; the target is net->x; MSE
 *   colorization  colour images in; the network sees the L channel of Lab
 *                 (L / 50 - 1), the target is a / 110 and b / 110; MSE
 *   context       a patch pair per image (data/pretext.h), rows 2i and 2i+1
 *                 of net->x; the label is the second's position; softmax
 *                 cross-entropy over 8 classes after a `pair` layer
 *   contrastive   the loader fills net->x with two augmented views per
 *                 image (rows 2i, 2i+1); NT-Xent over the output rows
 *
 * Scores: top-1 accuracy for classify and context; for contrastive the
 * share of views whose most similar other view of the batch is the other
 * view of their image; none for the reconstruction tasks (NaN).
 */
#ifndef CNN_CLI_TASK_H
#define CNN_CLI_TASK_H

#include <stddef.h>
#include <stdint.h>
#include "run.h"

typedef struct cli_task cli_task;

/* Does m's network fit its task (output shape, the pair layer of context)?
 * Prints "CONFIG: error: ..." and returns an exit code, or 0. */
int cli_task_check(const cli_model *m);

/* Loader views per sample: 2 for contrastive, else 1. */
size_t cli_task_views(const cnn_task_spec *t);

/* Buffers for batches of up to `batch` samples of m's data. Prints the
 * error and returns NULL when memory runs out. */
cli_task *cli_task_create(cli_model *m, size_t batch);
void cli_task_free(cli_task *t);

/* Where the loader writes a batch ([batch * views][data channels][h][w]). */
float *cli_task_loader_buffer(cli_task *t);

/* Turn a loaded batch of `got` samples (labels as the loader gave them)
 * into the network's input and the task's targets. Context cuts sample i's
 * patches with a generator seeded by (seed, first + i), so a scoring pass
 * cuts the same patches whatever its batch size. Returns the rows to
 * forward. */
size_t cli_task_prepare(cli_task *t, size_t got, const int *labels, uint64_t seed,
                        size_t first);

/* After a forward pass of the prepared batch: its mean loss. Writes the
 * output gradient when `grad`; *hits gets what was scored right: samples,
 * or for contrastive views (cli_task_views per sample); 0 for the
 * reconstruction tasks. */
double cli_task_loss(cli_task *t, size_t got, int grad, size_t *hits);

/* For `cnn bench`: random targets of the task's kind for `got` samples
 * (context's positions, colorization's a/b), the input being random too. */
void cli_task_synthetic(cli_task *t, size_t got, uint64_t *rng);

/* Score the network on a whole dataset in eval mode: mean loss and
 * accuracy (NaN for the reconstruction tasks). Deterministic: the same
 * patches and views every call. Contrastive's score depends on the batch
 * (the other images are its negatives): the trainer scores with
 * train.batch, and so does `cnn eval`. */
void cli_task_evaluate(cli_task *t, const cnn_dataset *ds, cli_score *s);

#endif
