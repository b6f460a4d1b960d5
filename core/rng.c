/*
 * SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014) and the draws built on it (see rng.h).
 */
#include "rng.h"

#include <math.h>

uint64_t cnn_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t cnn_rng_seed(uint64_t seed, uint64_t stream)
{
    uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
    cnn_rng_next(&s);
    return cnn_rng_next(&s);
}

float cnn_rng_uniform(uint64_t *state)
{
    /* 24 random bits: every value is exactly representable, and < 1. */
    return (float)(cnn_rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

float cnn_rng_normal(uint64_t *state)
{
    double u1 = ((double)(cnn_rng_next(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(cnn_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t cnn_rng_below(uint64_t *state, uint64_t n)
{
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = cnn_rng_next(state); while (r >= limit);
    return r % n;
}

void cnn_rng_shuffle(uint64_t *state, uint32_t *idx, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)cnn_rng_below(state, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
