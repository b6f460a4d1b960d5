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
#include "../data/augment.h"
#include "../data/image.h"

typedef enum cnn_source_kind {
    CNN_SOURCE_NONE,       /* this split is absent */
    CNN_SOURCE_IDX,        /* images + labels: IDX files */
    CNN_SOURCE_DIR,        /* path: a folder per class, or the Kaggle flat layout */
    CNN_SOURCE_LIST        /* list: a file of "path label" lines */
} cnn_source_kind;

typedef struct cnn_data_source {
    cnn_source_kind kind;
    char *images;          /* IDX image file */
    char *labels;          /* IDX label file */
    char *path;            /* DIR: the folder; LIST: the list file */
    size_t limit;          /* keep only the first `limit` samples (0: all) */
    const char **classes;  /* [nclasses] keep only these classes, in this order
                              (folders and lists; NULL: all) */
    size_t nclasses;
} cnn_data_source;

#define CNN_MAX_AUGS 16

typedef struct cnn_data_spec {
    cnn_data_source train, val;
    float val_split;             /* fraction of train held out as val (0: none) */
    cnn_shape input;             /* channels, height, width */
    size_t work_h, work_w;       /* images are decoded to this size (>= input) */
    int resize;                  /* cnn_resize_mode */
    int has_normalize;           /* 0: "auto", computed from the training set */
    float mean[4], std[4];       /* per channel, on pixels scaled to [0,1] */
    cnn_aug augs[CNN_MAX_AUGS];  /* training augmentations, in order */
    size_t naugs;
    int skip_bad;                /* on_bad_image: skip (1) or fail (0) */
    uint64_t max_pixels;         /* larger images are bad images */
    size_t loader_threads;       /* workers building batches ahead */
    uint64_t memory_mb;          /* decoded pixels above this go to a cache file */
    char *cache_dir;             /* where (NULL: $TMPDIR or /tmp) */
} cnn_data_spec;

/* A metric the trainer watches after every epoch (early stopping,
 * reduce-on-plateau, best.cnn). */
typedef enum cnn_monitor {
    CNN_MONITOR_VAL_LOSS,
    CNN_MONITOR_VAL_ACCURACY,
    CNN_MONITOR_TRAIN_LOSS,
    CNN_MONITOR_TRAIN_ACCURACY,
    CNN_MONITOR_COUNT
} cnn_monitor;

extern const char *const cnn_monitor_names[CNN_MONITOR_COUNT];

typedef struct cnn_early_stopping {
    int enabled;                 /* train.early_stopping is present */
    cnn_monitor monitor;
    int maximize;                /* mode max (auto: for accuracies) */
    size_t patience;             /* stop after this many epochs without improvement */
    float min_delta;             /* an improvement must exceed this */
    int restore_best;            /* end with the best epoch's weights */
} cnn_early_stopping;

typedef struct cnn_train_spec {
    size_t epochs;
    size_t batch;
    cnn_optim_config optim;      /* also carries weight_noise and clip_grad_norm */
    cnn_schedule sched;
    cnn_monitor plateau_monitor; /* schedule plateau: the metric it watches */
    cnn_early_stopping early;
    int sync_batchnorm;          /* train.distributed.batchnorm: 1 sync, 0 per_rank */
    float bucket_mb;             /* train.distributed.bucket_mb: MiB of gradients
                                    per all-reduce */
} cnn_train_spec;

/* What trains (train.trainable, head, freeze, lr_mult, stages) and where
 * pretrained weights come from (the finetune section). Patterns are globs
 * over layer names (fnmatch: *, ?, [...]). */
typedef enum cnn_trainable {
    CNN_TRAINABLE_ALL,           /* every parameter */
    CNN_TRAINABLE_HEAD,          /* the head: the new layers of a fine-tune, or
                                    train.head, or else the output layer */
    CNN_TRAINABLE_BATCHNORM,     /* only batch norm's gamma and beta */
    CNN_TRAINABLE_COUNT
} cnn_trainable;

typedef struct cnn_pattern_value {
    const char *pattern;
    float value;
} cnn_pattern_value;

typedef struct cnn_stage_spec {
    size_t epochs;
    int trainable;               /* cnn_trainable */
    const char **freeze;         /* [nfreeze] */
    size_t nfreeze;
    float lr;                    /* the stage's base learning rate */
} cnn_stage_spec;

typedef struct cnn_tune_spec {
    int trainable;               /* cnn_trainable */
    const char **head;           /* [nhead] patterns (NULL: the default head) */
    size_t nhead;
    const char **freeze;         /* [nfreeze] patterns frozen on top */
    size_t nfreeze;
    cnn_pattern_value *lr_mult;  /* [nlr_mult]: the first matching pattern wins */
    size_t nlr_mult;
    cnn_stage_spec *stages;      /* [nstages]; none: one stage of train.epochs */
    size_t nstages;
    /* finetune: */
    const char *from;            /* the pretrained checkpoint (--from wins) */
    const char **rename_from, **rename_to;   /* [nrename] layer name prefixes */
    size_t nrename;
    const char **drop;           /* [ndrop] pretrained layers not to take */
    size_t ndrop;
    const char **reinit;         /* [nreinit] layers to initialise afresh */
    size_t nreinit;
} cnn_tune_spec;

/* What the network learns (the top-level `task:`): classification from
 * labels, or a pretext task that makes its own targets from the images. */
typedef enum cnn_task_type {
    CNN_TASK_CLASSIFY,           /* labels, softmax cross-entropy */
    CNN_TASK_AUTOENCODER,        /* reconstruct the input, MSE */
    CNN_TASK_COLORIZATION,       /* grey (L of Lab) in, the a/b channels out, MSE */
    CNN_TASK_CONTEXT,            /* two patches in, their relative position (8 classes) */
    CNN_TASK_CONTRASTIVE,        /* two augmented views per image, NT-Xent */
    CNN_TASK_COUNT
} cnn_task_type;

extern const char *const cnn_task_names[CNN_TASK_COUNT];

typedef struct cnn_task_spec {
    int type;                    /* cnn_task_type */
    size_t patch, gap, jitter;   /* context: cell side, pixels between cells,
                                    largest shift of a patch */
    float temperature;           /* contrastive */
} cnn_task_spec;

/* Network input rows per sample of a batch: 2 for the tasks that show the
 * network two images of each sample (context's patches, contrastive's
 * views), else 1. */
static inline size_t cnn_task_rows(const cnn_task_spec *t)
{
    return t->type == CNN_TASK_CONTEXT || t->type == CNN_TASK_CONTRASTIVE ? 2 : 1;
}

/* Does the task score top-1 hits (classification, context, contrastive's
 * partner retrieval)? The reconstruction tasks have only a loss. */
static inline int cnn_task_has_accuracy(const cnn_task_spec *t)
{
    return t->type != CNN_TASK_AUTOENCODER && t->type != CNN_TASK_COLORIZATION;
}

typedef struct cnn_config {
    char *path;                  /* the name used in messages */
    char *name;                  /* run name (default: file name without .yaml) */
    uint64_t seed;
    cnn_data_spec data;
    cnn_task_spec task;
    cnn_model_spec model;        /* layer specs point into memory owned here;
                                    model.input is what the task feeds the
                                    network (data.input, or its grey channel,
                                    or a context patch) */
    cnn_train_spec train;
    cnn_tune_spec tune;
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
