/*
 * Building networks from configs and checkpoints, saving checkpoints,
 * loading data splits and evaluating (see run.h).
 */
#include "run.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int finish_model(cli_model *m, size_t batch, int allocate)
{
    cnn_error e = {0};
    if (!batch) batch = m->cfg.train.batch;
    m->net = allocate ? cnn_net_create(&m->cfg.model, batch, &e)
                      : cnn_net_plan(&m->cfg.model, batch, &e);
    if (!m->net) {
        cnn_error_file(&e, m->cfg.path);
        return cli_report(&e);
    }
    m->nclasses = cnn_shape_size(cnn_net_output(m->net)->out);
    size_t c = m->cfg.data.input.c;
    for (size_t i = 0; i < c && i < 4; i++) {
        m->mean[i] = m->cfg.data.has_normalize ? m->cfg.data.mean[i] : 0.0f;
        m->std[i] = m->cfg.data.has_normalize ? m->cfg.data.std[i] : 1.0f;
    }
    return 0;
}

static int model_from_config(const char *path, const char *const *sets, size_t nsets,
                             size_t batch, int allocate, cli_model *m)
{
    cnn_error e = {0};
    memset(m, 0, sizeof *m);
    if (cnn_config_load(path, sets, nsets, &m->cfg, &e)) {
        cnn_error_file(&e, path);
        cli_report(&e);
        return CLI_EXIT_USAGE;   /* a config that cannot be read is a usage error */
    }
    int rc = finish_model(m, batch, allocate);
    if (rc) cli_model_free(m);
    return rc;
}

int cli_model_from_config(const char *path, const char *const *sets, size_t nsets,
                          size_t batch, cli_model *m)
{
    return model_from_config(path, sets, nsets, batch, 1, m);
}

int cli_model_plan(const char *path, const char *const *sets, size_t nsets,
                   size_t batch, cli_model *m)
{
    return model_from_config(path, sets, nsets, batch, 0, m);
}

int cli_is_checkpoint(const char *path)
{
    char magic[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return got == sizeof magic && !memcmp(magic, CNN_CKPT_MAGIC, sizeof magic);
}

/* Parse "a b c" into up to max floats; returns how many. */
static size_t parse_floats(const char *text, float *out, size_t max)
{
    size_t n = 0;
    char *end;
    while (n < max) {
        double v = strtod(text, &end);
        if (end == text) break;
        out[n++] = (float)v;
        text = end;
    }
    return n;
}

int cli_model_from_checkpoint(const char *path, size_t batch, cli_model *m,
                              cnn_checkpoint *out_ck)
{
    cnn_error e = {0};
    cnn_checkpoint ck = {0};
    int rc;
    memset(m, 0, sizeof *m);
    if (cnn_checkpoint_read(path, &ck, &e))
        return cli_report(&e);   /* the message names the path */
    char where[300];
    snprintf(where, sizeof where, "%s (embedded config)", path);
    if (cnn_config_parse(ck.config, strlen(ck.config), where, NULL, 0, &m->cfg, &e)) {
        cnn_error_file(&e, where);
        rc = cli_report(&e);
        goto fail;
    }
    if ((rc = finish_model(m, batch, 1))) goto fail;
    for (size_t t = 0; t < m->net->nlayers; t++) {
        cnn_layer *l = &m->net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            char name[CNN_NAME_MAX + 32];
            snprintf(name, sizeof name, "%s.%s", l->name, l->params[j].name);
            const cnn_ckpt_tensor *tt = cnn_checkpoint_find(&ck, name);
            if (!tt || tt->size != l->params[j].size) {
                fprintf(stderr, "%s: error: %s tensor '%s' (%zu values expected)\n",
                        path, tt ? "wrong size for" : "missing", name,
                        l->params[j].size);
                rc = CLI_EXIT_RUNTIME;
                goto fail;
            }
            memcpy(l->params[j].data, tt->data, tt->size * sizeof(float));
        }
    }
    char buf[256];
    if (!cnn_checkpoint_meta(&ck, "mean", buf, sizeof buf))
        parse_floats(buf, m->mean, 4);
    if (!cnn_checkpoint_meta(&ck, "std", buf, sizeof buf))
        parse_floats(buf, m->std, 4);
    if (!cnn_checkpoint_meta(&ck, "rng", buf, sizeof buf))
        m->net->rng = strtoull(buf, NULL, 10);
    if (out_ck) *out_ck = ck;
    else cnn_checkpoint_free(&ck);
    return 0;
fail:
    cnn_checkpoint_free(&ck);
    cli_model_free(m);
    return rc;
}

void cli_model_free(cli_model *m)
{
    cnn_net_free(m->net);
    cnn_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

static void append_floats(char *buf, size_t n, const char *key, const float *v, size_t c)
{
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, n - len, "%s=", key);
    for (size_t i = 0; i < c && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%.9g", i ? " " : "", v[i]);
    if (len < n) snprintf(buf + len, n - len, "\n");
}

int cli_model_save(const char *path, const cli_model *m, const cnn_optim *o,
                   const cli_train_state *st)
{
    const cnn_net *net = m->net;
    size_t count = 2;
    for (size_t t = 0; t < net->nlayers; t++) count += net->layers[t].nparams;
    cnn_error e = {0};
    cnn_ckpt_tensor *ts = cnn_alloc(count, sizeof *ts, "checkpoint index", &e);
    char (*names)[CNN_NAME_MAX + 32] = cnn_alloc(count, sizeof *names, "checkpoint names", &e);
    if (!ts || !names) {
        free(ts);
        free(names);
        return cli_report(&e);
    }
    size_t n = 0;
    for (size_t t = 0; t < net->nlayers; t++) {
        const cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++, n++) {
            const cnn_param *p = &l->params[j];
            snprintf(names[n], sizeof names[n], "%s.%s", l->name, p->name);
            ts[n].name = names[n];
            ts[n].ndim = p->ndim;
            for (size_t d = 0; d < p->ndim; d++) ts[n].dims[d] = p->dims[d];
            ts[n].size = p->size;
            ts[n].data = p->data;
        }
    }
    if (o) {
        const float *moments[2] = {o->m, o->v};
        const char *mnames[2] = {"optimizer.m", "optimizer.v"};
        for (size_t k = 0; k < 2; k++) {
            if (!moments[k]) continue;
            ts[n].name = (char *)mnames[k];
            ts[n].ndim = 1;
            ts[n].dims[0] = o->n;
            ts[n].size = o->n;
            ts[n].data = (float *)moments[k];
            n++;
        }
    }
    char meta[2048];
    snprintf(meta, sizeof meta,
             "format=cnn-checkpoint\nepoch=%" PRIu64 "\nstep=%" PRIu64 "\n"
             "optimizer_step=%" PRIu64 "\nrng=%" PRIu64 "\nbest_metric=%.9g\n"
             "val_accuracy=%.9g\nnclasses=%zu\nseed=%" PRIu64 "\n",
             st ? st->epoch : 0, st ? st->step : 0, o ? o->step : 0, net->rng,
             st ? st->best_metric : -1.0, st ? st->val_accuracy : -1.0,
             m->nclasses, m->cfg.seed);
    append_floats(meta, sizeof meta, "mean", m->mean, m->cfg.data.input.c);
    append_floats(meta, sizeof meta, "std", m->std, m->cfg.data.input.c);
    cnn_checkpoint ck = {m->cfg.resolved, meta, ts, n};
    cnn_status s = cnn_checkpoint_write(path, &ck, &e);
    free(ts);
    free(names);
    if (s) return cli_report(&e);   /* the message names the path */
    return 0;
}

int cli_load_split(const cnn_config *cfg, const cnn_data_source *src,
                   const char *split, cnn_dataset *ds)
{
    cnn_error e = {0};
    if (!src->images || !src->labels) {
        fprintf(stderr, "%s: error: the config has no data.%s (images and labels)\n",
                cfg->path, split);
        return CLI_EXIT_USAGE;
    }
    if (cnn_idx_load(src->images, src->labels, src->limit, ds, &e))
        return cli_report(&e);
    cnn_shape in = cfg->data.input;
    if (ds->c != in.c || ds->h != in.h || ds->w != in.w) {
        fprintf(stderr, "%s: error: data.%s holds %zux%zux%zu images (channels x "
                "height x width) but data.input says %zux%zux%zu\n", src->images,
                split, ds->c, ds->h, ds->w, in.c, in.h, in.w);
        cnn_dataset_free(ds);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

void cli_evaluate(cli_model *m, const cnn_dataset *ds, size_t k, size_t *confusion,
                  cli_score *s)
{
    cnn_loader ld;
    cnn_error e = {0};
    size_t K = m->nclasses;
    memset(s, 0, sizeof *s);
    s->k = k;
    if (cnn_loader_init(&ld, ds, m->net->max_batch, m->mean, m->std, 0, 0, &e))
        return;
    int *labels = malloc(m->net->max_batch * sizeof *labels);
    double loss_sum = 0;
    float smoothing = m->net->label_smoothing;
    m->net->label_smoothing = 0;   /* report the plain cross-entropy */
    cnn_loader_epoch(&ld, 0);
    for (size_t got; labels && (got = cnn_loader_next(&ld, m->net->x, labels));) {
        size_t correct = 0;
        cnn_net_forward(m->net, got, 0);
        loss_sum += cnn_net_loss(m->net, labels, &correct) * (double)got;
        s->correct += correct;
        s->n += got;
        const float *logits = cnn_net_output(m->net)->y;   /* [got][K] */
        for (size_t i = 0; i < got; i++) {
            const float *z = logits + i * K;
            size_t y = (size_t)labels[i], better = 0, pred = 0;
            for (size_t c = 0; c < K; c++) {
                /* ranks as top-1 does: ties go to the lower index */
                if (z[c] > z[y] || (z[c] == z[y] && c < y)) better++;
                if (z[c] > z[pred]) pred = c;
            }
            s->topk_correct += better < k;
            if (confusion) confusion[y * K + pred]++;
        }
    }
    m->net->label_smoothing = smoothing;
    free(labels);
    cnn_loader_free(&ld);
    s->loss = s->n ? loss_sum / (double)s->n : NAN;
    s->accuracy = s->n ? (double)s->correct / (double)s->n : NAN;
    s->topk_accuracy = s->n ? (double)s->topk_correct / (double)s->n : NAN;
}
