/*
 * Layer options as the engine sees them: a flat list of key -> value pairs,
 * each value a scalar (kept as its source text) or a list of scalars, with
 * the line and column where it was written. The YAML front end in cli/
 * fills this from a mapping; a C user can fill it by hand. Layer kinds read
 * their settings through the typed getters below, which check type and range
 * and record which keys exist, so cnn_opts_finish can reject unknown keys
 * with a "did you mean" hint.
 */
#ifndef CNN_OPTS_H
#define CNN_OPTS_H

#include <stddef.h>
#include "error.h"

#define CNN_OPTS_MAX_KNOWN 32

typedef struct cnn_opt {
    const char *key;
    int key_line, key_col;   /* where the key is written (0 if unknown) */
    const char *text;        /* scalar value's text; NULL for a list */
    const char *const *items;/* list items' texts, when text is NULL */
    size_t nitems;
    int line, col;           /* where the value is written (0 if unknown) */
    int used;                /* set by the getters */
} cnn_opt;

typedef struct cnn_opts {
    cnn_opt *items;          /* not owned */
    size_t n;
    const char *known[CNN_OPTS_MAX_KNOWN]; /* keys asked for so far */
    size_t nknown;
    const char *context;     /* e.g. "layer 'conv1' (conv)", for messages */
} cnn_opts;

/* Find a key; NULL if absent. Marks nothing. */
cnn_opt *cnn_opts_find(cnn_opts *o, const char *key);

/* Typed getters. Each returns CNN_OK and writes *out (the default when the
 * key is absent), or fails with CNN_ERR_CONFIG naming the key, the allowed
 * values and the position of the offending value. */
cnn_status cnn_opts_int(cnn_opts *o, const char *key, long def, long min,
                        long max, long *out, cnn_error *e);
cnn_status cnn_opts_float(cnn_opts *o, const char *key, double def,
                          double min, double max, double *out, cnn_error *e);
cnn_status cnn_opts_bool(cnn_opts *o, const char *key, int def, int *out,
                         cnn_error *e);
/* One of `choices` (n of them); *out is its index. */
cnn_status cnn_opts_enum(cnn_opts *o, const char *key, const char *const *choices,
                         size_t n, int def, int *out, cnn_error *e);
/* A size given as one integer (used for both) or as [height, width]. */
cnn_status cnn_opts_pair(cnn_opts *o, const char *key, long def, long min,
                         long max, long out[2], cnn_error *e);

/* After all getters: any key not asked for is an error, with the nearest
 * known key as a suggestion. */
cnn_status cnn_opts_finish(cnn_opts *o, cnn_error *e);

/* Parse helpers shared with the config front end. Return 0 on success. */
int cnn_parse_long(const char *text, long *out);
int cnn_parse_double(const char *text, double *out);
int cnn_parse_bool(const char *text, int *out);

#endif
