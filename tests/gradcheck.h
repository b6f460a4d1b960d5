/*
 * Finite-difference gradient checks for any layer kind, or for a whole
 * model (several layers, multi-input graphs). The network is built through
 * the normal graph code; every trainable parameter is randomised on top of
 * its initialisation; the scalar L = sum_i out_i * r_i with fixed random r_i
 * is accumulated in double, and each analytic gradient (input and every
 * trainable parameter of every layer) is compared with the central
 * difference (L(v+h) - L(v-h)) / 2h.
 */
#ifndef CNN_TEST_GRADCHECK_H
#define CNN_TEST_GRADCHECK_H

#include <stddef.h>
#include "layer.h"
#include "net.h"

typedef struct gradcheck_opts {
    size_t batch;          /* default 2 */
    double h;              /* step, default 1e-2 */
    double tol;            /* max |analytic - numeric| / max(1, |numeric|); default 2e-2 */
    int training;          /* forward in training mode (default 1) */
    double min_abs_input;  /* push inputs away from 0 (kinks of relu); 0: off */
    int distinct_inputs;   /* make inputs pairwise distinct (maxpool ties) */
    unsigned long seed;    /* default 1 */
} gradcheck_opts;

/* kv: "key", "value", ... pairs terminated by NULL; a value starting with
 * '[' is a list "[a, b]". Returns the number of failed comparisons (0 on
 * success); prints one line per tensor with the largest error. */
int gradcheck_layer(const char *kind, const char *const *kv, cnn_shape in,
                    const gradcheck_opts *opts);

/* The same check over a whole model spec (any graph), built for
 * opts->batch samples: d/d input and every trainable tensor of every layer,
 * reported as "layer.param". Returns the number of failed comparisons (0 on
 * success); a model that cannot be built counts as one. */
int gradcheck_model(const cnn_model_spec *spec, const gradcheck_opts *opts);

#endif
