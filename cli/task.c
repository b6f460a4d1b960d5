/*
 * Pretext tasks (see task.h): their data pairing, losses and scores.
 */
#include "task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../core/loss.h"
#include "../core/rng.h"
#include "../data/pretext.h"

struct cli_task {
    cli_model *m;
    const cnn_task_spec *spec;
    size_t batch;              /* samples per batch */
    size_t data_chw;           /* floats per loaded image */
    size_t out;                /* floats per output row */
    float *in;                 /* [batch][data_chw]: colorization, context; else NULL */
    float *target;             /* [batch][out]: colorization's a/b */
    int *labels;               /* [batch]: context's positions */
    float *work;               /* contrastive: the loss's scratch */
};

/* Stream of cnn_rng_seed for the patches of scoring runs (training passes
 * the trainer's own per step). */
#define EVAL_STREAM 0x65766131u

static const char *task_name(const cnn_task_spec *t)
{
    return cnn_task_names[t->type];
}

int cli_task_check(const cli_model *m)
{
    const cnn_task_spec *t = &m->cfg.task;
    const cnn_layer *o = cnn_net_output(m->net);
    const cnn_shape in = m->cfg.model.input;
    const char *path = m->cfg.path;
    size_t pairs = o->batch_div;
    if (t->type == CNN_TASK_CONTEXT && pairs != 2) {
        fprintf(stderr, "%s: error: task context needs one 'pair' layer between the "
                "patch encoder and the head, so the head sees both patches' features "
                "(e.g. '- pair: {name: pair}' after the encoder's pooling)%s\n", path,
                pairs > 2 ? "; this network has more than one" : "");
        return CLI_EXIT_USAGE;
    }
    if (t->type != CNN_TASK_CONTEXT && pairs != 1) {
        fprintf(stderr, "%s: error: a 'pair' layer joins context's patch pairs; task %s "
                "has no pairs\n", path, task_name(t));
        return CLI_EXIT_USAGE;
    }
    cnn_shape want = in;
    const char *what = NULL;
    if (t->type == CNN_TASK_AUTOENCODER) what = "the input's shape";
    if (t->type == CNN_TASK_COLORIZATION) {
        want.c = 2;
        what = "2 channels (a and b of Lab) at the input's size";
    }
    if (what && (o->out.c != want.c || o->out.h != want.h || o->out.w != want.w)) {
        fprintf(stderr, "%s: error: task %s needs an output of %s, %zux%zux%zu, but the "
                "output layer '%s' gives %zux%zux%zu\n", path, task_name(t), what, want.c,
                want.h, want.w, o->name, o->out.c, o->out.h, o->out.w);
        return CLI_EXIT_USAGE;
    }
    if (t->type == CNN_TASK_CONTEXT && cnn_shape_size(o->out) != 8) {
        fprintf(stderr, "%s: error: task context classifies 8 relative positions, but the "
                "output layer '%s' has %zu units\n", path, o->name, cnn_shape_size(o->out));
        return CLI_EXIT_USAGE;
    }
    return 0;
}

size_t cli_task_views(const cnn_task_spec *t)
{
    return t->type == CNN_TASK_CONTRASTIVE ? 2 : 1;
}

cli_task *cli_task_create(cli_model *m, size_t batch)
{
    const cnn_task_spec *spec = &m->cfg.task;
    cli_task *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->m = m;
    t->spec = spec;
    t->batch = batch;
    t->data_chw = cnn_shape_size(m->cfg.data.input);
    t->out = cnn_shape_size(cnn_net_output(m->net)->out);
    int own_input = spec->type == CNN_TASK_COLORIZATION || spec->type == CNN_TASK_CONTEXT;
    if (own_input && !(t->in = malloc(batch * t->data_chw * sizeof *t->in))) goto nomem;
    if (spec->type == CNN_TASK_COLORIZATION
        && !(t->target = malloc(batch * t->out * sizeof *t->target)))
        goto nomem;
    if (spec->type == CNN_TASK_CONTEXT && !(t->labels = malloc(batch * sizeof *t->labels)))
        goto nomem;
    if (spec->type == CNN_TASK_CONTRASTIVE
        && !(t->work = malloc(cnn_loss_nt_xent_work(2 * batch, t->out) * sizeof *t->work)))
        goto nomem;
    return t;
nomem:
    cli_task_free(t);
    fprintf(stderr, "%s: error: out of memory for the buffers of task %s\n", m->cfg.path,
            cnn_task_names[spec->type]);
    return NULL;
}

void cli_task_free(cli_task *t)
{
    if (!t) return;
    free(t->in);
    free(t->target);
    free(t->labels);
    free(t->work);
    free(t);
}

float *cli_task_loader_buffer(cli_task *t)
{
    return t->in ? t->in : t->m->net->x;
}

/* The loader's normalised pixels back on [0,1], per channel. */
static void unnormalize(const cli_task *t, const float *x, float *rgb, size_t hw)
{
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++)
            rgb[c * hw + i] = x[c * hw + i] * t->m->std[c] + t->m->mean[c];
}

size_t cli_task_prepare(cli_task *t, size_t got, const int *labels, uint64_t seed,
                        size_t first)
{
    const cnn_shape d = t->m->cfg.data.input;
    float *x = t->m->net->x;
    size_t hw = d.h * d.w;
    (void)labels;
    switch (t->spec->type) {
    case CNN_TASK_COLORIZATION:
        for (size_t i = 0; i < got; i++) {
            float *img = t->in + i * t->data_chw;
            unnormalize(t, img, img, hw);
            cnn_colorize_split(img, hw, x + i * hw, t->target + i * 2 * hw);
        }
        return got;
    case CNN_TASK_CONTEXT: {
        const cnn_context_opts o = {t->spec->patch, t->spec->gap, t->spec->jitter};
        size_t pchw = d.c * o.patch * o.patch;
        for (size_t i = 0; i < got; i++) {
            uint64_t rng = cnn_rng_seed(seed, first + i);
            t->labels[i] = cnn_context_pair(t->in + i * t->data_chw, d.c, d.h, d.w, &o,
                                            &rng, x + 2 * i * pchw, x + (2 * i + 1) * pchw);
        }
        return 2 * got;
    }
    case CNN_TASK_CONTRASTIVE:
        return 2 * got;
    default:
        return got;
    }
}

double cli_task_loss(cli_task *t, size_t got, int grad, size_t *hits)
{
    cnn_layer *o = cnn_net_output(t->m->net);
    float *dy = grad ? o->dy : NULL;
    *hits = 0;
    switch (t->spec->type) {
    case CNN_TASK_AUTOENCODER:
        return cnn_loss_mse(o->y, t->m->net->x, got, t->out, dy);
    case CNN_TASK_COLORIZATION:
        return cnn_loss_mse(o->y, t->target, got, t->out, dy);
    case CNN_TASK_CONTEXT:
        return cnn_loss_softmax_xent(o->y, t->labels, got, 8, 0, dy, hits);
    case CNN_TASK_CONTRASTIVE:   /* hits: views, two per sample */
        return cnn_loss_nt_xent(o->y, 2 * got, t->out, t->spec->temperature, dy, hits,
                                t->work);
    default:
        return NAN;
    }
}

void cli_task_synthetic(cli_task *t, size_t got, uint64_t *rng)
{
    for (size_t i = 0; t->labels && i < got; i++) t->labels[i] = (int)cnn_rng_below(rng, 8);
    for (size_t i = 0; t->target && i < got * t->out; i++)
        t->target[i] = 0.3f * cnn_rng_normal(rng);
}

void cli_task_evaluate(cli_task *t, const cnn_dataset *ds, cli_score *s)
{
    cli_model *m = t->m;
    cnn_loader ld;
    cnn_error e = {0};
    memset(s, 0, sizeof *s);
    s->k = 1;
    /* contrastive is scored on views made as in training, from a fixed seed */
    int views = (int)cli_task_views(t->spec);
    cnn_loader_opts lo = {.batch = t->batch, .h = m->cfg.data.input.h,
                          .w = m->cfg.data.input.w, .mean = m->mean, .std = m->std,
                          .seed = cnn_rng_seed(m->cfg.seed, EVAL_STREAM),
                          .views = (size_t)views};
    if (views > 1) {
        lo.augs = m->cfg.data.augs;
        lo.naugs = m->cfg.data.naugs;
    }
    s->loss = s->accuracy = s->topk_accuracy = NAN;
    if (cnn_loader_init(&ld, ds, &lo, &e)) {
        cnn_error_file(&e, m->cfg.path);
        cli_report(&e);
        return;
    }
    double loss_sum = 0;
    cnn_loader_epoch(&ld, 0);
    uint64_t seed = cnn_rng_seed(m->cfg.seed, EVAL_STREAM);
    for (size_t got; (got = cnn_loader_next(&ld, cli_task_loader_buffer(t), NULL));) {
        size_t hits;
        size_t rows = cli_task_prepare(t, got, NULL, seed, s->n);
        cnn_net_forward(m->net, rows, 0);
        loss_sum += cli_task_loss(t, got, 0, &hits) * (double)got;
        s->correct += hits;
        s->n += got;
    }
    cnn_loader_free(&ld);
    if (!s->n) return;
    s->loss = loss_sum / (double)s->n;
    if (cnn_task_has_accuracy(t->spec))
        s->accuracy = s->topk_accuracy
            = (double)s->correct / (double)(s->n * cli_task_views(t->spec));
}
