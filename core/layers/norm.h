/*
 * Sums shared by the normalisation layers (batchnorm, layernorm): the
 * statistics of a row of activations and the two reductions of backward,
 * accumulated in double in eight independent lanes the compiler vectorises.
 */
#ifndef CNN_NORM_H
#define CNN_NORM_H

#include <stddef.h>

#include "layer.h"

/* Add sum(x - shift) and sum((x - shift)^2) over x[0..n) to *s1 and *s2.
 * Shifting by a value of the data keeps the variance accurate. */
void cnn_norm_sums(const float *x, size_t n, double shift, double *s1, double *s2);

/* Add sum(dy) and sum(dy * (x - mean)) over [0..n) to *sdy and *sdyx. */
void cnn_norm_dots(const float *dy, const float *x, size_t n, double mean,
                   double *sdy, double *sdyx);

/* A batch-norm layer in evaluation mode as y = scale[c] * x + shift[c]
 * (from gamma, beta and the running statistics), for folding it into the
 * convolution before it. */
void cnn_batchnorm_affine(const cnn_layer *bn, float *scale, float *shift);

#endif
