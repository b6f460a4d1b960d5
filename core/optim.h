/*
 * Optimisers and learning-rate schedules over the net's flat parameter
 * arena. The optimiser owns its moment arenas (same length as the
 * parameters) and never lives inside a layer.
 *
 *   sgd:   v = mu*v + g (+ wd*w);  w -= lr * (nesterov ? g + mu*v : v)
 *          (PyTorch's formulation; plain SGD when mu = 0)
 *   adam:  Kingma & Ba 2015 with bias correction; weight decay added to g
 *   adamw: Loshchilov & Hutter 2019: w -= lr*wd*w, decoupled from the moments
 *
 * Regularisers: weight decay (L2) and the L1 penalty apply to parameters
 * declared with decay (conv and dense weights; biases and normalisation
 * parameters are exempt unless decay_all; so are the layers frozen when the
 * optimiser is created: their gradients stay 0, so nothing moves them). The
 * L1 penalty adds l1*sign(w) to the gradient, as if l1*|w| were part of the
 * loss, and so comes before clipping by global norm
 * (torch.nn.utils.clip_grad_norm_); weight decay is inside the update,
 * after clipping, as in PyTorch. Weight noise perturbs the conv and dense
 * weights for one forward/backward pass; the update is applied to the
 * unperturbed weights.
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
    float l1;              /* L1 penalty: l1 * sign(w) added to the gradient */
    int decay_all;         /* weight decay and l1 on every trainable parameter,
                              biases and normalisation parameters included */
    float clip_grad_norm;  /* > 0: gradients scaled down to this global L2 norm */
    float weight_noise;    /* > 0: std of the noise cnn_optim_perturb adds */
} cnn_optim_config;

/* A trainable parameter tensor's floats in the flat arrays, with the
 * scalars of its update. */
typedef struct cnn_optim_span {
    size_t start, size;    /* net->params + start, size floats */
    float decay;           /* 1 where weight decay and l1 apply, else 0 */
    float scale;           /* learning-rate multiplier (1 after create; 0
                              leaves the tensor exactly as it is, decay
                              included): frozen layers and lr_mult */
} cnn_optim_span;

typedef struct cnn_optim {
    cnn_optim_config cfg;
    cnn_net *net;
    size_t n;              /* = net->nparam_floats */
    float *m;              /* [n] momentum buffer (sgd) or first moment (adam) */
    float *v;              /* [n] second moment (adam); NULL for sgd */
    float *saved;          /* [n] the unperturbed weights (weight noise); else NULL */
    cnn_optim_span *spans; /* [nspans] the trainable tensors, in arena order
                              (the padding between them is left alone) */
    size_t nspans;
    uint64_t step;         /* steps taken (adam's bias correction) */
    double grad_norm;      /* global gradient norm before clipping, last step
                              (computed only when clipping) */
} cnn_optim;

cnn_optim *cnn_optim_create(cnn_net *net, const cnn_optim_config *cfg, cnn_error *e);
void cnn_optim_free(cnn_optim *o);

/* Set the learning-rate multiplier of trainable parameter p (0: frozen). */
void cnn_optim_set_scale(cnn_optim *o, const cnn_param *p, float scale);

/* Forget the moments and the step count, as a new optimizer would (between
 * fine-tuning stages). */
void cnn_optim_reset(cnn_optim *o);

/* One update from net->grads with learning rate lr: adds the L1 penalty's
 * gradient into net->grads, clips them by global norm (when configured),
 * then updates the parameters. */
void cnn_optim_step(cnn_optim *o, float lr);

/* The L2 norm of all n gradients, summed in double in fixed chunks (the same
 * result for any thread count). */
double cnn_optim_grad_norm(const float *g, size_t n);

/* torch.nn.utils.clip_grad_norm_: when the global norm of g[n] exceeds
 * max_norm, scale every gradient by max_norm / (norm + 1e-6); smaller
 * gradients are left untouched. Returns the norm before clipping. */
double cnn_optim_clip_grad_norm(float *g, size_t n, float max_norm);

/* Weight noise: save the parameters, then add N(0, weight_noise^2) to each
 * conv and dense weight (the parameters declared with decay) of the layers
 * neither frozen nor held, drawn from the net's training RNG. No-op when
 * cfg.weight_noise is 0. */
void cnn_optim_perturb(cnn_optim *o);

/* Put the saved parameters back (after backward, before cnn_optim_step):
 * the gradient stays that of the perturbed weights. */
void cnn_optim_unperturb(cnn_optim *o);

/* ---- learning-rate schedules ------------------------------------------ */

typedef enum cnn_schedule_type {
    CNN_SCHED_CONSTANT,
    CNN_SCHED_STEP,        /* lr * gamma^(epoch / step_epochs) */
    CNN_SCHED_MULTISTEP,   /* lr * gamma^(milestones passed) */
    CNN_SCHED_EXPONENTIAL, /* lr * gamma^epoch */
    CNN_SCHED_COSINE,      /* per step, optional linear warm-up */
    CNN_SCHED_ONE_CYCLE,   /* per step, PyTorch's OneCycleLR (cosine) */
    CNN_SCHED_PLATEAU,     /* per epoch, PyTorch's ReduceLROnPlateau */
    CNN_SCHED_COUNT
} cnn_schedule_type;

extern const char *const cnn_schedule_names[CNN_SCHED_COUNT];

#define CNN_MAX_MILESTONES 16

typedef struct cnn_schedule {
    cnn_schedule_type type;
    size_t step_epochs;                      /* step */
    float gamma;                             /* step, multistep, exponential */
    size_t milestones[CNN_MAX_MILESTONES];   /* multistep: epochs, increasing */
    size_t nmilestones;
    size_t warmup_epochs;                    /* cosine */
    float min_lr;                            /* cosine: final rate; plateau: floor */
    float pct_start;                         /* one_cycle: share of steps rising */
    float div_factor;                        /* one_cycle: start at lr / div_factor */
    float final_div_factor;                  /* one_cycle: end at start / this */
    float factor;                            /* plateau: multiply the rate by this */
    size_t patience;                         /* plateau: bad epochs tolerated */
    float threshold;                         /* plateau: relative improvement */
    size_t cooldown;                         /* plateau: epochs ignored after a cut */
    int maximize;                            /* plateau: the metric should rise */
} cnn_schedule;

/* The rate of optimizer step `step` (0-based) of a run of `epochs` epochs of
 * `per_epoch` steps each, from the base rate lr. Per-epoch schedules use
 * the epoch step / per_epoch. For plateau this is lr: the current rate is
 * kept in a cnn_plateau. */
double cnn_schedule_lr(const cnn_schedule *s, float lr, uint64_t step, size_t per_epoch,
                       size_t epochs);

/* The state of a reduce-on-plateau schedule (saved in checkpoints). */
typedef struct cnn_plateau {
    double lr;             /* the current rate */
    double best;           /* best metric so far (+-inf before the first) */
    uint64_t bad_epochs;   /* epochs in a row without improvement */
    uint64_t cooldown;     /* epochs of cooldown left */
} cnn_plateau;

void cnn_plateau_init(cnn_plateau *p, const cnn_schedule *s, float lr);

/* After an epoch whose monitored metric was `metric`: PyTorch's
 * ReduceLROnPlateau.step (threshold mode "rel", eps 1e-8). Returns 1 when
 * it cut the rate. */
int cnn_plateau_step(cnn_plateau *p, const cnn_schedule *s, double metric);

#endif
