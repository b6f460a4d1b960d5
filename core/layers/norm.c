/*
 * Row sums for the normalisation layers (see norm.h).
 */
#include "norm.h"

void cnn_norm_sums(const float *x, size_t n, double shift, double *s1, double *s2)
{
    double a[8] = {0}, b[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++) {
            double d = (double)x[i + j] - shift;
            a[j] += d;
            b[j] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)x[i] - shift;
        a[0] += d;
        b[0] += d * d;
    }
    for (size_t j = 0; j < 8; j++) {
        *s1 += a[j];
        *s2 += b[j];
    }
}

void cnn_norm_dots(const float *dy, const float *x, size_t n, double mean,
                   double *sdy, double *sdyx)
{
    double a[8] = {0}, b[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++) {
            a[j] += dy[i + j];
            b[j] += (double)dy[i + j] * ((double)x[i + j] - mean);
        }
    for (; i < n; i++) {
        a[0] += dy[i];
        b[0] += (double)dy[i] * ((double)x[i] - mean);
    }
    for (size_t j = 0; j < 8; j++) {
        *sdy += a[j];
        *sdyx += b[j];
    }
}
