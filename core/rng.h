/*
 * Explicit random number state. Every random draw in cnn (initialisation,
 * shuffling, dropout, augmentation) goes through a uint64_t state owned by
 * the caller and seeded from the config's seed; there is no global state.
 * The generator is SplitMix64 (Steele, Lea, Flood 2014): one 64-bit word of
 * state, so it is trivial to save in a checkpoint and to split into streams.
 */
#ifndef CNN_RNG_H
#define CNN_RNG_H

#include <stdint.h>

/* Next 64 random bits; advances *state. */
uint64_t cnn_rng_next(uint64_t *state);

/* A new independent stream derived from seed and a stream id. */
uint64_t cnn_rng_seed(uint64_t seed, uint64_t stream);

/* Uniform float in [0, 1). */
float cnn_rng_uniform(uint64_t *state);

/* Standard normal (Box-Muller; consumes two draws). */
float cnn_rng_normal(uint64_t *state);

/* Uniform integer in [0, n); n > 0. */
uint64_t cnn_rng_below(uint64_t *state, uint64_t n);

/* Fisher-Yates shuffle of idx[0..n). */
void cnn_rng_shuffle(uint64_t *state, uint32_t *idx, uint32_t n);

#endif
