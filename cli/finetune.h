/*
 * Transfer learning: taking a pretrained checkpoint's weights into a new
 * network by layer name, and choosing which parameters train (trainable,
 * head, freeze, lr_mult). Used by `cnn finetune` and, for what trains, by
 * `cnn train`.
 */
#ifndef CNN_FINETUNE_H
#define CNN_FINETUNE_H

#include <stddef.h>
#include "../core/checkpoint.h"
#include "run.h"

/* Where each layer's parameters came from. */
enum { CLI_LAYER_NEW, CLI_LAYER_LOADED, CLI_LAYER_REINIT };

/* Copy into m's (initialised) network the parameters and buffers of every
 * layer of the checkpoint ck whose name, after tune->rename, is a layer of
 * m and not dropped (tune->drop); layers matching tune->reinit keep their
 * initialisation. A layer whose tensors differ in shape is an error that
 * names both shapes, unless it is to be re-initialised. origin[t] gets
 * CLI_LAYER_* per layer of m. Prints a table of every layer (loaded, new,
 * re-initialised, and the checkpoint's dropped and unused layers) to
 * stderr. Returns an exit code. */
int cli_finetune_load(cli_model *m, const cnn_checkpoint *ck, const char *ckpt_path,
                      const cnn_tune_spec *tune, unsigned char *origin);

/* Set l->frozen on every layer of m's network for `trainable` (a
 * cnn_trainable) plus the freeze patterns, and give opt each trainable
 * parameter's learning-rate multiplier (0 where frozen, else the first
 * matching lr_mult pattern's value, else 1).
 * origin (may be NULL) tells the new layers, which are the default head.
 * Prints one line saying what trains. Returns an exit code (2 when a
 * pattern matches no layer, or nothing is left to train). */
int cli_apply_trainable(cli_model *m, int trainable, const char *const *freeze,
                        size_t nfreeze, const cnn_tune_spec *tune,
                        const unsigned char *origin, cnn_optim *opt);

#endif
