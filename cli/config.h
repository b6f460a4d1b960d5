/*
 * The YAML front end: a config file (plus --set overrides) becomes the specs
 * the engine and the data pipeline take. All validation a config needs
 * before any computing happens here or in cnn_net_create; every error names
 * the file and the line:column of the offending key or value.
 *
 * The accepted keys are documented in README.md ("Config reference").
 */
#ifndef CNN_CONFIG_H
#define CNN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "../core/error.h"
#include "../core/net.h"
#include "../core/optim.h"

typedef struct cnn_data_source {
    char *images;          /* IDX image file (NULL: this split is absent) */
    char *labels;          /* IDX label file */
    size_t limit;          /* keep only the first `limit` samples (0: all) */
} cnn_data_source;

typedef struct cnn_data_spec {
    cnn_data_source train, val;
    cnn_shape input;             /* channels, height, width */
    int has_normalize;
    float mean[4], std[4];       /* per channel, on pixels scaled to [0,1] */
} cnn_data_spec;

typedef enum cnn_schedule_type {
    CNN_SCHED_CONSTANT,
    CNN_SCHED_STEP,
    CNN_SCHED_COSINE,
    CNN_SCHED_COUNT
} cnn_schedule_type;

typedef struct cnn_train_spec {
    size_t epochs;
    size_t batch;
    cnn_optim_config optim;
    cnn_schedule_type schedule;
    size_t step_epochs;          /* step: multiply by gamma every step_epochs */
    float gamma;
    size_t warmup_epochs;        /* cosine: linear warmup from lr/10... see README */
    float min_lr;                /* cosine: final learning rate */
} cnn_train_spec;

typedef struct cnn_config {
    char *path;                  /* the name used in messages */
    char *name;                  /* run name (default: file name without .yaml) */
    uint64_t seed;
    cnn_data_spec data;
    cnn_model_spec model;        /* layer specs point into memory owned here */
    cnn_train_spec train;
    char *resolved;              /* the config as YAML text, overrides applied */
    void *priv;                  /* front end's own allocations */
} cnn_config;

/* Parse YAML text. `path` names it in messages (a file name, or e.g.
 * "model.cnn (embedded config)"). sets[i] are "dotted.key=value" overrides
 * applied before validation (a sequence element is addressed by its index,
 * e.g. model.layers.0.conv.filters=8). On error *cfg is left empty and e
 * holds file, line, column and message. */
cnn_status cnn_config_parse(const char *text, size_t len, const char *path,
                            const char *const *sets, size_t nsets,
                            cnn_config *cfg, cnn_error *e);

/* Read a file and parse it. */
cnn_status cnn_config_load(const char *path, const char *const *sets,
                           size_t nsets, cnn_config *cfg, cnn_error *e);

void cnn_config_free(cnn_config *cfg);

#endif
