/*
 * Optimisers over the net's flat parameter arena. The optimiser owns its
 * moment arenas (same length as the parameters) and never lives inside a
 * layer. Weight decay applies to parameters declared with decay (weights,
 * not biases or normalisation parameters).
 *
 *   sgd:   v = mu*v + g (+ wd*w);  w -= lr * (nesterov ? g + mu*v : v)
 *          (PyTorch's formulation; plain SGD when mu = 0)
 *   adam:  Kingma & Ba 2015 with bias correction; weight decay added to g
 *   adamw: Loshchilov & Hutter 2019: w -= lr*wd*w, decoupled from the moments
 */
#ifndef CNN_OPTIM_H
#define CNN_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "net.h"

typedef enum cnn_optim_type {
    CNN_OPTIM_SGD,
    CNN_OPTIM_ADAM,
    CNN_OPTIM_ADAMW,
    CNN_OPTIM_COUNT
} cnn_optim_type;

extern const char *const cnn_optim_names[CNN_OPTIM_COUNT];

typedef struct cnn_optim_config {
    cnn_optim_type type;
    float lr;
    float momentum;        /* sgd */
    int nesterov;          /* sgd */
    float weight_decay;
    float beta1, beta2, eps; /* adam, adamw */
} cnn_optim_config;

typedef struct cnn_optim {
    cnn_optim_config cfg;
    cnn_net *net;
    size_t n;              /* = net->nparam_floats */
    float *m;              /* [n] momentum buffer (sgd) or first moment (adam) */
    float *v;              /* [n] second moment (adam); NULL for sgd */
    float *decay_mask;     /* [n] 1 where weight decay applies, else 0 */
    uint64_t step;         /* steps taken (adam's bias correction) */
} cnn_optim;

cnn_optim *cnn_optim_create(cnn_net *net, const cnn_optim_config *cfg, cnn_error *e);
void cnn_optim_free(cnn_optim *o);
/* One update from net->grads with learning rate lr. */
void cnn_optim_step(cnn_optim *o, float lr);

#endif
