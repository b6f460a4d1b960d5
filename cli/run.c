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
#include <sys/stat.h>

#include "cli.h"
#include "progress.h"
#include "../core/parallel.h"
#include "../data/source.h"

/* allocate: 0 plan only, 1 a network to train, 2 one for inference only */
static int finish_model(cli_model *m, size_t batch, int allocate)
{
    cnn_error e = {0};
    if (!batch) batch = m->cfg.train.batch;
    batch *= cnn_task_rows(&m->cfg.task);   /* batch counts samples, the net rows */
    m->net = allocate == 2 ? cnn_net_create_inference(&m->cfg.model, batch, &e)
             : allocate ? cnn_net_create(&m->cfg.model, batch, &e)
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

static int reallocate(cli_model *m, int inference)
{
    cnn_error e = {0};
    cnn_net *net = inference ? cnn_net_create_inference(&m->cfg.model, m->net->max_batch, &e)
                             : cnn_net_create(&m->cfg.model, m->net->max_batch, &e);
    if (!net) {
        cnn_error_file(&e, m->cfg.path);
        return cli_report(&e);
    }
    cnn_net_free(m->net);
    m->net = net;
    return 0;
}

int cli_model_allocate(cli_model *m)
{
    return reallocate(m, 0);
}

int cli_model_allocate_inference(cli_model *m)
{
    return reallocate(m, 1);
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

int cli_model_load_state(cli_model *m, const cnn_checkpoint *ck, const char *path)
{
    for (size_t t = 0; t < m->net->nlayers; t++) {
        cnn_layer *l = &m->net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            char name[CNN_NAME_MAX + 32];
            snprintf(name, sizeof name, "%s.%s", l->name, l->params[j].name);
            const cnn_ckpt_tensor *tt = cnn_checkpoint_find(ck, name);
            if (!tt || tt->size != l->params[j].size) {
                fprintf(stderr, "%s: error: %s tensor '%s' (%zu values expected)\n",
                        path, tt ? "wrong size for" : "missing", name,
                        l->params[j].size);
                return CLI_EXIT_RUNTIME;
            }
            memcpy(l->params[j].data, tt->data, tt->size * sizeof(float));
        }
    }
    char buf[256];
    if (!cnn_checkpoint_meta(ck, "mean", buf, sizeof buf))
        parse_floats(buf, m->mean, 4);
    if (!cnn_checkpoint_meta(ck, "std", buf, sizeof buf))
        parse_floats(buf, m->std, 4);
    if (!cnn_checkpoint_meta(ck, "rng", buf, sizeof buf))
        m->net->rng = strtoull(buf, NULL, 10);
    if (!cnn_checkpoint_meta(ck, "class.0", buf, sizeof buf)) {
        for (size_t c = 0; m->classes && c < m->nclasses; c++) free(m->classes[c]);
        free(m->classes);
        m->classes = calloc(m->nclasses, sizeof *m->classes);
        for (size_t c = 0; m->classes && c < m->nclasses; c++) {
            char key[48];
            snprintf(key, sizeof key, "class.%zu", c);
            if (cnn_checkpoint_meta(ck, key, buf, sizeof buf)) snprintf(buf, sizeof buf, "%zu", c);
            m->classes[c] = strdup(buf);
        }
    }
    return 0;
}

static int model_from_checkpoint(const char *path, size_t batch, int allocate,
                                 cli_model *m, cnn_checkpoint *out_ck)
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
    if ((rc = finish_model(m, batch, allocate))) goto fail;
    if ((rc = cli_model_load_state(m, &ck, path))) goto fail;
    if (out_ck) *out_ck = ck;
    else cnn_checkpoint_free(&ck);
    return 0;
fail:
    cnn_checkpoint_free(&ck);
    cli_model_free(m);
    return rc;
}

int cli_model_from_checkpoint(const char *path, size_t batch, cli_model *m,
                              cnn_checkpoint *out_ck)
{
    return model_from_checkpoint(path, batch, 1, m, out_ck);
}

int cli_model_for_inference(const char *path, size_t batch, cli_model *m)
{
    return model_from_checkpoint(path, batch, 2, m, NULL);
}

cnn_layer *cli_model_layer(cli_model *m, const char *path, const char *name)
{
    cnn_net *net = m->net;
    cnn_layer *l = cnn_net_layer(net, name);
    if (l) return l;
    const char **names = malloc(net->nlayers * sizeof *names);
    const char *near = NULL;
    if (names) {
        for (size_t t = 0; t < net->nlayers; t++) names[t] = net->layers[t].name;
        near = cnn_closest(name, names, net->nlayers);
    }
    fprintf(stderr, "%s: error: no layer named '%s'%s%s%s (see 'cnn summary %s')\n", path,
            name, near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "", path);
    free(names);
    return NULL;
}

void cli_model_free(cli_model *m)
{
    for (size_t c = 0; m->classes && c < m->nclasses; c++) free(m->classes[c]);
    free(m->classes);
    cnn_net_free(m->net);
    cnn_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

const char *cli_class_name(const cli_model *m, size_t c, char *buf, size_t n)
{
    if (m->classes && c < m->nclasses && m->classes[c]) return m->classes[c];
    snprintf(buf, n, "%zu", c);
    return buf;
}

int cli_model_set_classes(cli_model *m, const cnn_dataset *ds)
{
    if (!ds->classes) return 0;
    if (ds->nclasses > m->nclasses) {
        fprintf(stderr, "%s: error: the data has %zu classes but the output layer '%s' "
                "has %zu units\n", m->cfg.path, ds->nclasses, cnn_net_output(m->net)->name,
                m->nclasses);
        return CLI_EXIT_USAGE;
    }
    m->classes = calloc(m->nclasses, sizeof *m->classes);
    for (size_t c = 0; m->classes && c < m->nclasses; c++) {
        char num[32];
        snprintf(num, sizeof num, "%zu", c);
        m->classes[c] = strdup(c < ds->nclasses ? ds->classes[c] : num);
        if (!m->classes[c]) break;
    }
    if (!m->classes || !m->classes[m->nclasses - 1]) {
        fprintf(stderr, "%s: error: out of memory\n", m->cfg.path);
        return CLI_EXIT_RUNTIME;
    }
    return 0;
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
    size_t cap = 2048 + (m->classes ? m->nclasses * 64 : 0);
    if (st && st->extra_meta) cap += strlen(st->extra_meta);
    for (size_t c = 0; m->classes && c < m->nclasses; c++) cap += strlen(m->classes[c]);
    char *meta = malloc(cap);
    if (!meta) {
        free(ts);
        free(names);
        fprintf(stderr, "%s: error: out of memory\n", path);
        return CLI_EXIT_RUNTIME;
    }
    snprintf(meta, cap,
             "format=cnn-checkpoint\nepoch=%" PRIu64 "\nstep=%" PRIu64 "\n"
             "optimizer_step=%" PRIu64 "\nrng=%" PRIu64 "\nbest_metric=%.9g\n"
             "val_accuracy=%.9g\nnclasses=%zu\nseed=%" PRIu64 "\n",
             st ? st->epoch : 0, st ? st->step : 0, o ? o->step : 0, net->rng,
             st ? st->best_metric : -1.0, st ? st->val_accuracy : -1.0,
             m->nclasses, m->cfg.seed);
    append_floats(meta, cap, "mean", m->mean, m->cfg.data.input.c);
    append_floats(meta, cap, "std", m->std, m->cfg.data.input.c);
    for (size_t c = 0; m->classes && c < m->nclasses; c++) {
        size_t len = strlen(meta);
        snprintf(meta + len, cap - len, "class.%zu=%s\n", c, m->classes[c]);
    }
    if (st && st->extra_meta) {
        size_t len = strlen(meta);
        snprintf(meta + len, cap - len, "%s", st->extra_meta);
    }
    cnn_checkpoint ck = {m->cfg.resolved, meta, ts, n};
    cnn_status s = cnn_checkpoint_write(path, &ck, &e);
    free(ts);
    free(names);
    free(meta);
    if (s) return cli_report(&e);   /* the message names the path */
    return 0;
}

/* Keep `limit` samples of a file list, evenly spaced through it, so that
 * every class of a sorted folder listing keeps its share. */
static void thin_list(cnn_file_list *l, size_t limit)
{
    if (!limit || limit >= l->n) return;
    for (size_t i = 0; i < limit; i++) {
        size_t from = (size_t)((double)i * (double)l->n / (double)limit);
        char *path = l->paths[from];
        l->paths[from] = l->paths[i];
        l->paths[i] = path;
        int label = l->labels[from];
        l->labels[from] = l->labels[i];
        l->labels[i] = label;
    }
    for (size_t i = limit; i < l->n; i++) free(l->paths[i]);
    l->n = limit;
}

static int list_source(const cnn_data_source *src, cnn_file_list *l)
{
    cnn_error e = {0};
    cnn_status st = src->kind == CNN_SOURCE_DIR ? cnn_list_dir(src->path, l, &e)
                                                : cnn_list_file(src->path, l, &e);
    if (!st && src->nclasses)
        st = cnn_file_list_keep_classes(l, src->classes, src->nclasses, src->path, &e);
    if (st) {
        cnn_file_list_free(l);
        return cli_report(&e);
    }
    thin_list(l, src->limit);
    return 0;
}

static int decode_list(const cnn_config *cfg, const cnn_file_list *l, const char *what,
                       const char *split, cnn_dataset *ds)
{
    const cnn_data_spec *d = &cfg->data;
    cnn_decode_opts o = {
        .image = {d->input.c, d->work_h, d->work_w, (cnn_resize_mode)d->resize,
                  d->max_pixels},
        .skip_bad = d->skip_bad,
        .threads = (size_t)cnn_threads(),
        .memory_budget = d->memory_mb << 20,
        .cache_dir = d->cache_dir,
    };
    cnn_decode_report r;
    cnn_error e = {0};
    if (cnn_dataset_decode(l, &o, ds, &r, &e)) {
        if (!d->skip_bad && e.file[0] && strcmp(e.file, what)) {
            /* a bad image: say how to go past it */
            size_t len = strlen(e.msg);
            snprintf(e.msg + len, sizeof e.msg - len, " (data.%s; data.on_bad_image: "
                     "skip leaves bad images out)", split);
        }
        return cli_report(&e);
    }
    const char *pre = split[0] == '-' ? "" : "data.";   /* "data.train", "--data" */
    fprintf(stderr, "%s%s: %zu images of %zu classes from %s, decoded to %zux%zu in "
            "%.1f s%s\n", pre, split, ds->n, ds->nclasses, what, d->work_h, d->work_w,
            r.seconds, r.cached ? " (kept in a cache file: over data.loader.memory_mb)" : "");
    if (r.skipped) {
        fprintf(stderr, "%s%s: warning: skipped %zu bad image%s (on_bad_image: skip):\n",
                pre, split, r.skipped, r.skipped == 1 ? "" : "s");
        for (size_t k = 0; k < r.skipped && k < CNN_DECODE_REPORT_PATHS; k++)
            fprintf(stderr, "  %s\n", r.first_bad[k]);
        if (r.skipped > CNN_DECODE_REPORT_PATHS)
            fprintf(stderr, "  ... and %zu more\n", r.skipped - CNN_DECODE_REPORT_PATHS);
    }
    return 0;
}

/* Re-express ds's labels in the given class names. */
static int match_classes(cnn_dataset *ds, char *const *classes, size_t nclasses,
                         const char *what)
{
    if (!classes || !ds->classes) {
        if (ds->nclasses > nclasses) {
            fprintf(stderr, "%s: error: the data has %zu classes but the network "
                    "outputs %zu\n", what, ds->nclasses, nclasses);
            return CLI_EXIT_USAGE;
        }
        return 0;
    }
    int *map = calloc(ds->nclasses, sizeof *map);
    if (!map) {
        fprintf(stderr, "%s: error: out of memory\n", what);
        return CLI_EXIT_RUNTIME;
    }
    for (size_t c = 0; c < ds->nclasses; c++) {
        size_t k = 0;
        while (k < nclasses && strcmp(ds->classes[c], classes[k])) k++;
        if (k == nclasses) {
            fprintf(stderr, "%s: error: class '%s' is not one of the %zu classes the "
                    "network was trained on (", what, ds->classes[c], nclasses);
            for (size_t j = 0; j < nclasses && j < 12; j++)
                fprintf(stderr, "%s%s", j ? ", " : "", classes[j]);
            fprintf(stderr, "%s)\n", nclasses > 12 ? ", ..." : "");
            free(map);
            return CLI_EXIT_USAGE;
        }
        map[c] = (int)k;
    }
    for (size_t i = 0; i < ds->n; i++) ds->labels[i] = map[ds->labels[i]];
    free(map);
    /* the dataset now speaks the reference's classes */
    for (size_t c = 0; c < ds->nclasses; c++) free(ds->classes[c]);
    free(ds->classes);
    ds->classes = NULL;
    ds->nclasses = nclasses;
    char **copy = calloc(nclasses, sizeof *copy);
    for (size_t c = 0; copy && c < nclasses; c++) copy[c] = strdup(classes[c]);
    ds->classes = copy;
    return 0;
}

static int check_shape(const cnn_config *cfg, const char *what, const char *split,
                       const cnn_dataset *ds)
{
    cnn_shape in = cfg->data.input;
    if (ds->c != in.c || ds->h < in.h || ds->w < in.w) {
        fprintf(stderr, "%s: error: data.%s holds %zux%zux%zu images (channels x "
                "height x width) but data.input says %zux%zux%zu\n", what, split, ds->c,
                ds->h, ds->w, in.c, in.h, in.w);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_load_source(const cnn_config *cfg, const cnn_data_source *src,
                    const char *split, char *const *classes, size_t nclasses,
                    cnn_dataset *ds)
{
    cnn_error e = {0};
    int rc;
    memset(ds, 0, sizeof *ds);
    switch (src->kind) {
    case CNN_SOURCE_IDX: {
        double start = cli_now();
        if (cnn_idx_load(src->images, src->labels, src->limit, ds, &e))
            return cli_report(&e);
        fprintf(stderr, "%s%s: %zu images from %s in %.1f s\n",
                split[0] == '-' ? "" : "data.", split, ds->n,
                src->images, cli_now() - start);
        break;
    }
    case CNN_SOURCE_DIR:
    case CNN_SOURCE_LIST: {
        cnn_file_list l = {0};
        if ((rc = list_source(src, &l))) return rc;
        rc = decode_list(cfg, &l, src->path, split, ds);
        cnn_file_list_free(&l);
        if (rc) return rc;
        break;
    }
    default:
        fprintf(stderr, "%s: error: the config has no data.%s\n", cfg->path, split);
        return CLI_EXIT_USAGE;
    }
    const char *what = src->kind == CNN_SOURCE_IDX ? src->images : src->path;
    if ((rc = check_shape(cfg, what, split, ds))
        || (rc = match_classes(ds, classes, nclasses, what))) {
        cnn_dataset_free(ds);
        return rc;
    }
    return 0;
}

int cli_load_train_val(const cnn_config *cfg, int want_val, cnn_dataset *train,
                       cnn_dataset *val)
{
    const cnn_data_spec *d = &cfg->data;
    uint64_t split_seed = 0x5eed5eed;   /* fixed: the same held-out set for every seed */
    int rc;
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!(d->val_split > 0) || d->train.kind == CNN_SOURCE_IDX) {
        if ((rc = cli_load_source(cfg, &d->train, "train", NULL, SIZE_MAX, train))) return rc;
        if (d->val_split > 0) {
            cnn_dataset all = *train;
            cnn_error e = {0};
            memset(train, 0, sizeof *train);
            cnn_status st = cnn_dataset_split(&all, d->val_split, split_seed, train, val, &e);
            cnn_dataset_free(&all);
            if (st) return cli_report(&e);
            fprintf(stderr, "data.val_split: %zu training and %zu validation images\n",
                    train->n, val->n);
            if (!want_val) cnn_dataset_free(val);
            return 0;
        }
        if (want_val && d->val.kind != CNN_SOURCE_NONE
            && (rc = cli_load_source(cfg, &d->val, "val", train->classes,
                                     train->classes ? train->nclasses : SIZE_MAX, val))) {
            cnn_dataset_free(train);
            return rc;
        }
        return 0;
    }
    /* val_split over a folder or list: split the file list, decode each part */
    cnn_file_list all = {0}, tl = {0}, vl = {0};
    cnn_error e = {0};
    if ((rc = list_source(&d->train, &all))) return rc;
    if (cnn_file_list_split(&all, d->val_split, split_seed, &tl, &vl, &e)) {
        cnn_file_list_free(&all);
        return cli_report(&e);
    }
    cnn_file_list_free(&all);
    fprintf(stderr, "data.val_split: %zu training and %zu validation images\n", tl.n, vl.n);
    rc = decode_list(cfg, &tl, d->train.path, "train", train);
    if (!rc) rc = check_shape(cfg, d->train.path, "train", train);
    if (!rc && want_val) {
        rc = decode_list(cfg, &vl, d->train.path, "val", val);
        if (!rc) rc = check_shape(cfg, d->train.path, "val", val);
    }
    cnn_file_list_free(&tl);
    cnn_file_list_free(&vl);
    if (rc) {
        cnn_dataset_free(train);
        cnn_dataset_free(val);
    }
    return rc;
}

/* Labels file for an images file: ...images-idx3... -> ...labels-idx1... */
static int derive_labels(const char *images, char *out, size_t n)
{
    const char *at = strstr(images, "images-idx3");
    if (!at) return -1;
    snprintf(out, n, "%.*slabels-idx1%s", (int)(at - images), images,
             at + strlen("images-idx3"));
    return 0;
}

int cli_data_arg(const char *arg, cnn_data_source *src, char *buf1, char *buf2, size_t n)
{
    struct stat sb;
    memset(src, 0, sizeof *src);
    const char *comma = strchr(arg, ',');
    if (!comma && stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(buf1, n, "%s", arg);
        src->kind = CNN_SOURCE_DIR;
        src->path = buf1;
        return 0;
    }
    if (comma) {
        snprintf(buf1, n, "%.*s", (int)(comma - arg), arg);
        snprintf(buf2, n, "%s", comma + 1);
    } else if (derive_labels(arg, buf2, n) == 0) {
        snprintf(buf1, n, "%s", arg);
    } else {
        snprintf(buf1, n, "%s", arg);
        src->kind = CNN_SOURCE_LIST;
        src->path = buf1;
        return 0;
    }
    src->kind = CNN_SOURCE_IDX;
    src->images = buf1;
    src->labels = buf2;
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
    cnn_loader_opts lo = {.batch = m->net->max_batch, .h = m->cfg.data.input.h,
                          .w = m->cfg.data.input.w, .mean = m->mean, .std = m->std};
    if (cnn_loader_init(&ld, ds, &lo, &e))
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
