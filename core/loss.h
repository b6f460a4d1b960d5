/*
 * Losses over a network's output. A loss reads the output [n][k] and writes
 * the gradient of the mean loss over the batch into dout (overwriting it):
 * softmax cross-entropy for classes, mean squared error for outputs that
 * are images or values (autoencoders, colorization), and NT-Xent for
 * contrastive embeddings.
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

/* Mean squared error over n samples of k values each: the mean over all
 * n*k of (y - t)^2 (PyTorch's MSELoss, reduction 'mean'), summed in double.
 * Writes dy [n][k] = 2 (y - t) / (n k) if dy is not NULL (overwriting).
 * Returns 0 when n*k is 0. */
double cnn_loss_mse(const float *y, const float *target, size_t n, size_t k, float *dy);

/* Floats of scratch cnn_loss_nt_xent needs for `rows` rows of d values. */
size_t cnn_loss_nt_xent_work(size_t rows, size_t d);

/* NT-Xent / InfoNCE (Chen, Kornblith, Norouzi and Hinton, "A simple
 * framework for contrastive learning of visual representations", 2020):
 * z [rows][d], rows even (at least 2), rows 2i and 2i+1 are two views of
 * one image. Each row is L2-normalised (z / max(|z|, 1e-12) like
 * F.normalize), s_ij = u_i . u_j / temperature (temperature > 0), and the
 * loss of row i is -log(exp(s_ip) / sum_{k != i} exp(s_ik)) with p = i ^ 1
 * its partner; returns the mean over the rows. dz [rows][d] (overwritten)
 * gets the gradient of that mean wrt z if not NULL; *correct (if not NULL)
 * counts the rows whose most similar other row is their partner (the first
 * of equals wins). work: cnn_loss_nt_xent_work floats. */
double cnn_loss_nt_xent(const float *z, size_t rows, size_t d, float temperature,
                        float *dz, size_t *correct, float *work);

#endif
