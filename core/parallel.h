/*
 * Threading. cnn parallelises itself with OpenMP (over images, channels or
 * GEMM blocks) and calls OpenBLAS single-threaded, so the two never fight
 * over the cores. cnn_set_threads sets both; layers read the count through
 * cnn_threads() when they plan per-thread scratch at build time.
 */
#ifndef CNN_PARALLEL_H
#define CNN_PARALLEL_H

#include <stddef.h>

/* Loops over fewer elements than this run on one thread: below it, waking
 * the other threads costs more than it saves. */
#define CNN_PARALLEL_MIN 32768

/* Use n compute threads (0: one per core). Call before building networks:
 * per-thread scratch is planned for the count in force at build time. */
void cnn_set_threads(int n);

/* The thread count in force. */
int cnn_threads(void);

/* Row-major C = alpha * op(A) op(B) + beta * C, op(A) M x K, op(B) K x N,
 * as cblas_sgemm, split into column (or row) blocks over the threads when
 * the product is large enough to pay for it. Each block is one
 * single-threaded OpenBLAS call, so the result is the same for a given
 * thread count. */
void cnn_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
              const float *a, size_t lda, const float *b, size_t ldb, float beta,
              float *c, size_t ldc);

#endif
