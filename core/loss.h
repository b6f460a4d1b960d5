/*
 * Losses over a network's output. A loss reads the output [n][k] and writes
 * the gradient of the mean loss over the batch into dout (overwriting it).
 */
#ifndef CNN_LOSS_H
#define CNN_LOSS_H

#include <stddef.h>

/* Softmax cross-entropy on logits [n][k] with integer labels [n] in [0,k).
 * With smoothing s, the target is (1-s) on the label plus s/k on every class
 * (as PyTorch's label_smoothing). Returns the mean loss; writes
 * dlogits [n][k] if not NULL; counts top-1 hits into *correct if not NULL. */
double cnn_loss_softmax_xent(const float *logits, const int *labels, size_t n,
                             size_t k, float smoothing, float *dlogits,
                             size_t *correct);

/* The same for a part of a batch of `batch` samples (data-parallel
 * training: this process's share): dlogits is the gradient of the loss
 * summed over these n samples and divided by batch, so that the parts'
 * gradients add up to the gradient of the whole batch's mean loss. Returns
 * the mean loss of the n samples (0 when n is 0). batch >= n. */
double cnn_loss_softmax_xent_part(const float *logits, const int *labels, size_t n,
                                  size_t batch, size_t k, float smoothing, float *dlogits,
                                  size_t *correct);

#endif
