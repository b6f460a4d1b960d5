/*
 * Thread settings and the block-parallel GEMM (see parallel.h).
 */
#include "parallel.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

/* Below this many multiply-adds a GEMM runs on one thread. */
#define GEMM_PARALLEL_MACS (1u << 18)

void cnn_set_threads(int n)
{
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
}

int cnn_threads(void)
{
    return omp_get_max_threads();
}

static void gemm1(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                  const float *a, size_t lda, const float *b, size_t ldb, float beta,
                  float *c, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
                (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void cnn_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
              const float *a, size_t lda, const float *b, size_t ldb, float beta,
              float *c, size_t ldc)
{
    int threads = omp_get_max_threads();
    if (threads < 2 || m * n * k < GEMM_PARALLEL_MACS || omp_in_parallel()) {
        gemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int split_n = n >= m;            /* split the longer side of C */
    size_t len = split_n ? n : m;
    size_t parts = (size_t)threads < len ? (size_t)threads : len;
    #pragma omp parallel for num_threads((int)parts) schedule(static)
    for (size_t p = 0; p < parts; p++) {
        size_t lo = len * p / parts, hi = len * (p + 1) / parts;
        /* align block starts to 16 floats where the block is wide enough */
        if (p && len >= 16 * parts) lo = lo / 16 * 16;
        if (p + 1 < parts && len >= 16 * parts) hi = hi / 16 * 16;
        if (hi <= lo) continue;
        if (split_n)
            gemm1(ta, tb, m, hi - lo, k, alpha, a, lda,
                  tb ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc);
        else
            gemm1(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + lo * lda, lda,
                  b, ldb, beta, c + lo * ldc, ldc);
    }
}
