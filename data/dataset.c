/*
 * The in-memory dataset's own functions (see dataset.h): freeing one, with
 * its pixels either malloc'd or mapped from a cache file (source.c), and
 * its per-channel pixel statistics.
 */
#include "dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void cnn_dataset_free(cnn_dataset *ds)
{
    if (!ds) return;
    if (ds->mapped) {
        if (ds->pixels) munmap(ds->pixels, ds->mapped);
    } else {
        free(ds->pixels);
    }
    free(ds->labels);
    if (ds->classes)
        for (size_t k = 0; k < ds->nclasses; k++) free(ds->classes[k]);
    free(ds->classes);
    memset(ds, 0, sizeof *ds);
}

void cnn_dataset_stats(const cnn_dataset *ds, float *mean, float *std)
{
    /* Sums of p and p^2 over uint8 pixels are exact in 64 bits for any
     * dataset that fits in memory, so only the last step rounds. */
    size_t hw = ds->h * ds->w;
    for (size_t ch = 0; ch < ds->c; ch++) {
        uint64_t s1 = 0, s2 = 0;
        for (size_t i = 0; i < ds->n; i++) {
            const uint8_t *p = ds->pixels + (i * ds->c + ch) * hw;   /* [h][w] */
            for (size_t j = 0; j < hw; j++) {
                s1 += p[j];
                s2 += (uint64_t)p[j] * p[j];
            }
        }
        double count = (double)ds->n * (double)hw;
        if (count == 0) {
            mean[ch] = 0;
            std[ch] = 1;
            continue;
        }
        double m = (double)s1 / count;
        double var = (double)s2 / count - m * m;
        mean[ch] = (float)(m / 255.0);
        /* every pixel is v exactly when the sum of (p - v)^2 = s2 - 2 v s1
         * + v^2 n is 0, i.e. s1 = v n and s2 = v^2 n */
        uint64_t n = (uint64_t)ds->n * hw, v = s1 / n;
        int constant = s1 == v * n && s2 == v * v * n;
        std[ch] = constant ? 1.0f : (float)(sqrt(var > 0 ? var : 0) / 255.0);
    }
}
