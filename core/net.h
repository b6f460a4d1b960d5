/*
 * The layer graph. A model spec (a list of named layers, each naming its
 * inputs) becomes a cnn_net: names resolved, layers put in topological
 * order, every shape inferred and checked, and all memory planned once:
 * parameters and gradients in flat arenas, buffers (running statistics) in
 * another, activations and their gradients in a third. Nothing allocates
 * after cnn_net_create.
 */
#ifndef CNN_NET_H
#define CNN_NET_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "layer.h"
#include "opts.h"

typedef struct cnn_layer_spec {
    const char *name;            /* NULL: generated as kind + count, "conv2" */
    const char *kind;            /* registry name */
    const char *const *inputs;   /* layer names or "input"; NULL: the previous layer */
    size_t ninputs;
    cnn_opts opts;
    int line, col;               /* where the layer is written, for messages */
} cnn_layer_spec;

typedef struct cnn_model_spec {
    cnn_shape input;             /* per sample */
    const cnn_layer_spec *layers;
    size_t nlayers;
    float label_smoothing;       /* for the softmax cross-entropy loss */
} cnn_model_spec;

typedef struct cnn_net {
    cnn_shape input;
    size_t max_batch;
    size_t nlayers;
    cnn_layer *layers;           /* topological order; the last is the output */

    size_t batch;                /* input samples of the last forward pass */
    float *x;                    /* network input [max_batch][input] */
    float *dx;                   /* gradient wrt the input [max_batch][input] */
    int want_input_grad;         /* fill dx in backward (gradient checks, saliency) */
    int zero_dx;                 /* 1: zero every input gradient before backward
                                    and let every layer add into it, never
                                    write (the plain path, for tests) */

    size_t nparam_floats;        /* trainable parameters, flat */
    float *params;               /* [nparam_floats] */
    float *grads;                /* [nparam_floats] */
    size_t nbuffer_floats;       /* non-trainable buffers, flat */
    float *buffers;              /* [nbuffer_floats] */

    size_t nact_floats;
    float *acts;                 /* all outputs, gradients and saved state */
    float *work;                 /* shared scratch */
    size_t work_floats;

    float label_smoothing;
    int inference;               /* built by cnn_net_create_inference */
    uint64_t rng;                /* training randomness (dropout); checkpointed */
    double *layer_seconds;       /* [2 * nlayers] or NULL: when set, forward and
                                    backward add each layer's wall time into
                                    [2t] and [2t + 1] (for `cnn bench`) */
    /* Called by backward after layer t's turn, whether it ran or had
     * nothing to do, for t from the last layer down: from then on the
     * parameter gradients of layers t.. are final (each layer's are written
     * by its own backward only), so a data-parallel trainer can start
     * summing them while backward goes on. NULL: none. */
    void (*after_backward)(void *ctx, size_t t);
    void *after_backward_ctx;
} cnn_net;

/* Build and plan a network for batches of up to max_batch samples. On
 * error returns NULL; e names the layer and, where known, its line:column. */
cnn_net *cnn_net_create(const cnn_model_spec *spec, size_t max_batch, cnn_error *e);

/* A network for evaluation only: no gradients, no input gradient, no
 * state saved for backward, and the outputs share buffers: a layer's
 * output lives from its forward until the last layer that reads it has
 * run, so after cnn_net_forward only the output layer's (and the input's)
 * values are sure to be there. Forward always runs in evaluation mode;
 * backward does nothing. */
cnn_net *cnn_net_create_inference(const cnn_model_spec *spec, size_t max_batch,
                                  cnn_error *e);

/* The same without allocating the arenas: names, shapes, parameter
 * declarations and the memory plan's sizes only (for `cnn check` and
 * `cnn summary`). Such a net must not be run or initialised. */
cnn_net *cnn_net_plan(const cnn_model_spec *spec, size_t max_batch, cnn_error *e);
void cnn_net_free(cnn_net *net);

/* Initialise every parameter by its declared rule from *rng; buffers get
 * their defaults (running mean 0, running variance 1). */
void cnn_net_init(cnn_net *net, uint64_t *rng);

/* Forward pass over the first n samples of net->x (n above max_batch is
 * cut to max_batch). Each layer runs on n / l->batch_div samples, so n must
 * be a multiple of the output's batch_div (2 after a pair layer: pairs are
 * never split); anything else is the caller's bug and fails an assert. */
void cnn_net_forward(cnn_net *net, size_t n, int training);

/* The output layer's activations and gradient, [batch][cnn_shape_size(out)]
 * with batch = n / batch_div (n, the pass's input batch, without a pair
 * layer). */
cnn_layer *cnn_net_output(cnn_net *net);

/* Softmax cross-entropy of the output against labels[out->batch] (one per
 * output sample: a pair of input samples after a pair layer) after a
 * forward pass; writes the output gradient; *correct gets top-1 hits if not
 * NULL. */
double cnn_net_loss(cnn_net *net, const int *labels, size_t *correct);

/* The same when this forward pass held a part of a batch of `total`
 * output samples (data-parallel training: this process's share): the output
 * gradient is that of the whole batch's mean loss, so the parts' parameter
 * gradients add up to the whole batch's. Returns the part's mean loss. */
double cnn_net_loss_part(cnn_net *net, const int *labels, size_t total, size_t *correct);

/* Backward pass of the last forward (which must have been training): zeroes
 * all gradients except the output's, then fills parameter gradients. */
void cnn_net_backward(cnn_net *net);

/* The same from layer net->layers[target], whose dy the caller has set:
 * layers after it do not take part. */
void cnn_net_backward_from(cnn_net *net, size_t target);

/* Look up a layer by name; NULL if none. */
cnn_layer *cnn_net_layer(cnn_net *net, const char *name);

/* Theoretical receptive field of each layer's output units on the input,
 * and the jump (product of strides): rf[t] and jump[t] are [h, w] pairs for
 * net->layers[t]. For branches the largest field counts (Araujo, Norris and
 * Sim, "Computing receptive fields of convolutional neural networks",
 * Distill 2019: r_out = r_in + (k - 1) j_in, j_out = j_in s). */
void cnn_net_receptive_fields(const cnn_net *net, size_t (*rf)[2], size_t (*jump)[2]);

/* Number of parameter floats, trainable and all (with buffers). */
size_t cnn_net_param_count(const cnn_net *net);

/* Activation memory in bytes for a batch (outputs, gradients, saved state,
 * scratch, the input batch and its gradient) — what the plan allocated for
 * max_batch. */
size_t cnn_net_activation_bytes(const cnn_net *net);

/* The memory plan in bytes, arena by arena, of a created or only planned
 * network: what cnn_net_create allocates. cnn_net_create refuses a plan
 * whose total exceeds the machine's physical memory (CNN_ERR_NOMEM, the
 * message giving this breakdown) instead of trying to allocate it. */
typedef struct cnn_net_mem {
    size_t params, grads;      /* trainable parameters, and their gradients */
    size_t buffers;            /* running statistics */
    size_t acts;               /* outputs, their gradients, saved state */
    size_t work;               /* shared scratch */
    size_t input;              /* the input batch and its gradient */
    size_t total;
} cnn_net_mem;
void cnn_net_memory(const cnn_net *net, cnn_net_mem *m);

/* "1.50 GiB", "12.0 KiB", "512 bytes" into buf. */
void cnn_format_bytes(size_t bytes, char *buf, size_t n);

/* Where a NaN or an infinity is. */
typedef struct cnn_nonfinite {
    const cnn_layer *layer;    /* NULL: none found */
    const char *what;          /* "output", or a parameter's name ("weight") */
    int grad;                  /* 1: the gradient of `what` */
    size_t index;              /* output: the sample; parameter: the element */
    float value;               /* the non-finite value itself */
} cnn_nonfinite;

/* Find the first non-finite value, to say where a loss or a gradient
 * stopped being finite. grads = 0, after a forward pass: the layers in
 * topological order, each its parameters and buffers, then its output (the
 * pass's batch), so the layer found is the first whose weights or output
 * are not finite. grads = 1, after a backward pass: the layers that took
 * part, in the order backward visits them (from the output back), each the
 * gradient of its output, then its parameters' gradients, so the layer
 * found is where the gradient stopped being finite. Returns 1 and fills *r
 * when one is found, else 0. Reads only; one pass over what it checks. */
int cnn_net_find_nonfinite(const cnn_net *net, int grads, cnn_nonfinite *r);

#endif
