/*
 * The layer contract. Each layer kind lives in its own file under
 * core/layers/ and exports one const cnn_layer_kind: how to read its options,
 * how to infer its output shape and declare its parameters, and its forward
 * and backward kernels. The graph (net.c) owns all memory: it calls infer,
 * then binds the layer's pointers into its arenas, then runs the kernels.
 *
 * Layout: float32, NCHW. A shape here is per sample; the batch size is
 * l->batch for the current pass (at most l->max_batch, fixed at build time).
 * l->batch counts the layer's output samples: a layer that halves the batch
 * (pair) reads 2 * l->batch input samples, and every layer after it runs
 * with the halved count (l->batch_div says by how much the network's input
 * batch has been divided).
 */
#ifndef CNN_LAYER_H
#define CNN_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "opts.h"

#define CNN_MAX_INPUTS 8
#define CNN_MAX_PARAMS 4
#define CNN_NAME_MAX 64

typedef struct cnn_shape {
    size_t c, h, w;
} cnn_shape;

static inline size_t cnn_shape_size(cnn_shape s) { return s.c * s.h * s.w; }

typedef enum cnn_init {
    CNN_INIT_ZERO,
    CNN_INIT_ONE,
    CNN_INIT_HE,       /* normal, std sqrt(2 / fan_in) (He et al. 2015) */
    CNN_INIT_GLOROT    /* uniform, limit sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010) */
} cnn_init;

/* A named tensor a layer owns: trainable parameters (weights, biases, batch
 * norm's gamma and beta) and non-trainable buffers (running statistics).
 * The layer's infer fills everything above `data`; the graph binds data and
 * grad into its flat arenas. */
typedef struct cnn_param {
    char name[24];       /* "weight", "bias", "gamma", "running_mean", ... */
    size_t ndim;
    size_t dims[4];      /* e.g. conv weight: [filters][channels/groups][kh][kw] */
    size_t size;         /* product of dims */
    cnn_init init;
    size_t fan_in, fan_out;
    int trainable;       /* 0: a buffer, updated by the layer itself */
    int decay;           /* weight decay applies (weights yes; biases, norms no) */
    float *data;         /* [size] */
    float *grad;         /* [size]; NULL for buffers */
} cnn_param;

typedef struct cnn_layer cnn_layer;

/* Sums over every process of a data-parallel job, for layers whose forward
 * or backward needs statistics of the whole batch (synchronised batch
 * norm). sum adds v[n] over the processes in place, every process getting
 * the same result, and must be called by all of them in the same order.
 * scratch holds scratch_size doubles the layer may use for those sums. */
typedef struct cnn_sync {
    void (*sum)(struct cnn_sync *s, double *v, size_t n);
    void *ctx;                 /* the caller's */
    double *scratch;           /* [scratch_size] */
    size_t scratch_size;
} cnn_sync;

typedef struct cnn_layer_kind {
    const char *name;          /* as written in YAML: "conv" */
    const char *summary;       /* one line for `cnn help layers` */
    size_t settings_size;      /* size of the kind's private settings struct */
    size_t min_inputs, max_inputs;
    /* Read options into l->settings (zeroed, settings_size bytes). Must call
     * the cnn_opts getters for every key it accepts; the graph then calls
     * cnn_opts_finish. */
    cnn_status (*parse)(cnn_layer *l, cnn_opts *o, cnn_error *e);
    /* From l->in[] (and l->max_batch): set l->out, declare l->params,
     * l->saved_per_sample, l->work_size and l->macs (and l->halves_batch
     * for a layer that joins pairs of samples). Shape errors name the
     * layer (l->name) and the offending shapes. */
    cnn_status (*infer)(cnn_layer *l, cnn_error *e);
    /* y = f(x). l->training says train or eval mode. */
    void (*forward)(cnn_layer *l);
    /* Given dy, ADD input gradients into dx[i] (skip where dx[i] is NULL)
     * and ADD parameter gradients into params[j].grad. Runs after forward
     * of the same batch in training mode. A kind with assigns_dx set must
     * instead WRITE dx[i] where bit i of l->dx_assign is set. */
    void (*backward)(cnn_layer *l);
    /* 1: backward honours l->dx_assign, so the graph need not zero those
     * input gradients first (a pass over every activation-sized buffer). */
    int assigns_dx;
    /* Optional: a short description of the settings for `cnn summary`,
     * e.g. "5x5 s1 p2". */
    void (*describe)(const cnn_layer *l, char *buf, size_t n);
} cnn_layer_kind;

struct cnn_layer {
    const cnn_layer_kind *kind;
    char name[CNN_NAME_MAX];
    void *settings;                 /* kind's private struct */

    /* set by the graph before infer */
    size_t ninputs;
    size_t input_ids[CNN_MAX_INPUTS]; /* graph node ids; 0 is the network input */
    const char *input_names[CNN_MAX_INPUTS]; /* their names, for messages */
    cnn_shape in[CNN_MAX_INPUTS];
    size_t max_batch;

    /* set by infer */
    cnn_shape out;
    cnn_param params[CNN_MAX_PARAMS];
    size_t nparams;
    size_t saved_per_sample;  /* floats kept from forward to backward, per sample */
    size_t work_size;         /* scratch floats, for a whole batch of max_batch */
    size_t macs;              /* multiply-accumulates per sample, forward */
    size_t rf_kernel[2];      /* window extent [h, w] one output sees (dilated
                                 kernels: their full extent); 0: 1, or the
                                 whole input when the output has no spatial size */
    size_t rf_stride[2];      /* the window's stride [h, w]; 0: 1 */
    int halves_batch;         /* the output has half the samples of the input
                                 (pair: samples 2i and 2i+1 become one) */

    /* bound by the graph */
    size_t batch_div;                /* the network's input batch / this layer's
                                        batch: 1, or 2 per halves_batch layer on
                                        the way from the input (all inputs of a
                                        layer must agree) */
    size_t batch;                    /* output samples in this pass: the pass's
                                        input batch / batch_div, <= max_batch */
    int training;                    /* 1 in a training pass */
    int frozen;                      /* set by the caller: the trainable
                                        parameters are not trained, so backward
                                        computes no parameter gradients (they
                                        stay 0), and batch norm normalises with
                                        its running statistics and leaves them
                                        unchanged, in training too */
    int held;                        /* set by the caller: the trainable
                                        parameters stay as they are (lr_mult
                                        0) while the layer otherwise trains
                                        (batch norm on batch statistics), so
                                        backward computes no parameter
                                        gradients (they stay 0) */
    int needs_backward;              /* set by backward: this layer or one
                                        before it has parameters to train (or
                                        the net wants the input gradient) */
    uint64_t *rng;                   /* the net's training RNG (dropout, noise) */
    cnn_sync *sync;                  /* set by the caller: statistics over all the
                                        processes of a data-parallel job (batchnorm
                                        reads it); NULL: this process's batch */
    const float *x[CNN_MAX_INPUTS];  /* [batch][in[i]] ([2 batch] if halves_batch) */
    float *dx[CNN_MAX_INPUTS];       /* as x, accumulate; NULL = not needed */
    unsigned dx_assign;              /* set by the net's backward, for this
                                        layer's backward call (and its
                                        after_backward hook) only, in kinds
                                        with assigns_dx: bit i, dx[i] holds
                                        no gradient yet (not even zeros) and
                                        is to be written, not added to */
    float *y;                        /* [batch][out] */
    float *dy;                       /* [batch][out] */
    float *saved;                    /* [max_batch][saved_per_sample] */
    float *work;                     /* [work_size], shared between layers */

    /* Fusion, in inference nets only (cnn_net_create_inference): */
    const cnn_layer *fold_bn;        /* conv: the batch norm that alone reads
                                        its output, applied by the conv (its
                                        scale and shift folded into the
                                        weights and bias) */
    int fold_relu;                   /* conv: apply the ReLU that reads its
                                        output (or its fold_bn's) too */
    int folded;                      /* the conv before did this layer's work:
                                        forward is skipped, y is the conv's */
};

/* Whether backward computes l's parameter gradients: not when the layer is
 * frozen or held. */
static inline int cnn_layer_param_grads(const cnn_layer *l)
{
    return !l->frozen && !l->held;
}

/* Declare parameter j of layer l (used by infer). dims has ndim entries. */
cnn_param *cnn_layer_param(cnn_layer *l, const char *name, size_t ndim,
                           const size_t *dims, cnn_init init, size_t fan_in,
                           size_t fan_out, int trainable, int decay);

/* For kinds without options: accepts none (cnn_opts_finish rejects any). */
cnn_status cnn_layer_parse_none(cnn_layer *l, cnn_opts *o, cnn_error *e);

/* For elementwise kinds: the output shape is the input shape, no MACs. */
cnn_status cnn_layer_infer_same(cnn_layer *l, cnn_error *e);

/* The registry: every layer kind, keyed by its YAML name. */
const cnn_layer_kind *cnn_layer_kind_find(const char *name);
extern const cnn_layer_kind *const cnn_layer_kinds[];
extern const size_t cnn_layer_kind_count;

#endif
