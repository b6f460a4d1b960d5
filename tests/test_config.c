/*
 * The YAML front end: a LeNet config parses to the right specs and defaults,
 * the resolved text reads back to the same config, --set overrides edit it,
 * and every kind of mistake gives its exact message at the right line and
 * column (or names the --set argument). Blocks, repeat and defaults expand
 * to the flat list of named layers the engine takes: names, inputs and
 * substituted values are checked layer by layer, for a small ResNet, branches
 * and nesting, and torchvision's ResNet-18/50 and GoogLeNet written as blocks.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"

/* A valid config small enough to count columns in; errors append to it. */
#define MINIMAL "data:\n" \
                "  input: {channels: 1, height: 8, width: 8}\n" \
                "model:\n" \
                "  layers:\n" \
                "    - dense: {units: 2}\n"

static cnn_status parse_text(const char *text, const char *const *sets, size_t nsets,
                             cnn_config *cfg, cnn_error *e)
{
    return cnn_config_parse(text, strlen(text), "t.yaml", sets, nsets, cfg, e);
}

static const char *fixture(const char *name)
{
    static char path[1024];
    const char *dir = getenv("FIXTURES");
    snprintf(path, sizeof path, "%s/config/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

static const cnn_opt *opt(const cnn_layer_spec *l, const char *key)
{
    for (size_t i = 0; i < l->opts.n; i++)
        if (!strcmp(l->opts.items[i].key, key)) return &l->opts.items[i];
    return NULL;
}

static int opt_is(const cnn_layer_spec *l, const char *key, const char *text)
{
    const cnn_opt *o = opt(l, key);
    return o && o->text && !strcmp(o->text, text);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Everything a config means, compared field by field. */
static int same_config(const cnn_config *a, const cnn_config *b)
{
    const cnn_data_spec *x = &a->data, *y = &b->data;
    if (!str_eq(a->name, b->name) || a->seed != b->seed) return 0;
    if (!str_eq(x->train.images, y->train.images) || !str_eq(x->train.labels, y->train.labels)
        || x->train.limit != y->train.limit || !str_eq(x->val.images, y->val.images)
        || !str_eq(x->val.labels, y->val.labels) || x->val.limit != y->val.limit)
        return 0;
    if (memcmp(&x->input, &y->input, sizeof x->input) || x->has_normalize != y->has_normalize
        || memcmp(x->mean, y->mean, sizeof x->mean) || memcmp(x->std, y->std, sizeof x->std))
        return 0;
    if (a->model.nlayers != b->model.nlayers
        || a->model.label_smoothing != b->model.label_smoothing
        || memcmp(&a->model.input, &b->model.input, sizeof a->model.input))
        return 0;
    for (size_t i = 0; i < a->model.nlayers; i++) {
        const cnn_layer_spec *l = &a->model.layers[i], *m = &b->model.layers[i];
        if (!str_eq(l->name, m->name) || !str_eq(l->kind, m->kind)
            || l->ninputs != m->ninputs || l->opts.n != m->opts.n
            || !str_eq(l->opts.context, m->opts.context))
            return 0;
        for (size_t j = 0; j < l->ninputs; j++)
            if (!str_eq(l->inputs[j], m->inputs[j])) return 0;
        for (size_t j = 0; j < l->opts.n; j++) {
            const cnn_opt *o = &l->opts.items[j], *p = &m->opts.items[j];
            if (!str_eq(o->key, p->key) || !str_eq(o->text, p->text) || o->nitems != p->nitems)
                return 0;
            for (size_t k = 0; k < o->nitems; k++)
                if (!str_eq(o->items[k], p->items[k])) return 0;
        }
    }
    const cnn_train_spec *s = &a->train, *t = &b->train;
    const cnn_schedule *u = &s->sched, *v = &t->sched;
    const cnn_early_stopping *x1 = &s->early, *y1 = &t->early;
    return s->epochs == t->epochs && s->batch == t->batch
        && !memcmp(&s->optim, &t->optim, sizeof s->optim) && u->type == v->type
        && u->step_epochs == v->step_epochs && u->gamma == v->gamma
        && u->nmilestones == v->nmilestones
        && !memcmp(u->milestones, v->milestones, sizeof u->milestones)
        && u->warmup_epochs == v->warmup_epochs && u->min_lr == v->min_lr
        && u->pct_start == v->pct_start && u->div_factor == v->div_factor
        && u->final_div_factor == v->final_div_factor && u->factor == v->factor
        && u->patience == v->patience && u->threshold == v->threshold
        && u->cooldown == v->cooldown && u->maximize == v->maximize
        && s->plateau_monitor == t->plateau_monitor && x1->enabled == y1->enabled
        && x1->monitor == y1->monitor && x1->maximize == y1->maximize
        && x1->patience == y1->patience && x1->min_delta == y1->min_delta
        && x1->restore_best == y1->restore_best;
}

static void test_lenet(void)
{
    cnn_config cfg;
    cnn_error e;
    CHECK(cnn_config_load(fixture("lenet.yaml"), NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s:%d:%d: %s\n", e.file, e.line, e.col, e.msg); return; }
    CHECK(!strcmp(cfg.name, "lenet"));
    CHECK(!strcmp(cfg.path, fixture("lenet.yaml")));
    CHECK(cfg.seed == 7);
    CHECK(!strcmp(cfg.data.train.images, "mnist/train-images.idx"));
    CHECK(!strcmp(cfg.data.train.labels, "mnist/train-labels.idx"));
    CHECK(cfg.data.train.limit == 1000);
    CHECK(!strcmp(cfg.data.val.images, "mnist/t10k-images.idx"));
    CHECK(!strcmp(cfg.data.val.labels, "mnist/t10k-labels.idx"));
    CHECK(cfg.data.val.limit == 0);
    CHECK(cfg.data.input.c == 1 && cfg.data.input.h == 28 && cfg.data.input.w == 28);
    CHECK(cfg.model.input.c == 1 && cfg.model.input.h == 28 && cfg.model.input.w == 28);
    CHECK(cfg.data.has_normalize);
    CHECK_NEAR(cfg.data.mean[0], 0.1307, 1e-7);
    CHECK_NEAR(cfg.data.std[0], 0.3081, 1e-7);

    static const char *const kinds[] = {"conv", "relu", "maxpool", "conv", "relu",
                                        "maxpool", "flatten", "dense", "relu", "dense"};
    CHECK(cfg.model.nlayers == 10);
    for (size_t i = 0; i < 10 && i < cfg.model.nlayers; i++) {
        CHECK_MSG(!strcmp(cfg.model.layers[i].kind, kinds[i]), "layer %zu is %s", i,
                  cfg.model.layers[i].kind);
        CHECK(cfg.model.layers[i].line == (int)(12 + i) && cfg.model.layers[i].col == 7);
    }
    if (cfg.model.nlayers == 10) {
        const cnn_layer_spec *l = cfg.model.layers;
        CHECK(!strcmp(l[0].name, "c1") && l[0].inputs == NULL && l[0].ninputs == 0);
        CHECK(!strcmp(l[0].opts.context, "layer 'c1' (conv)"));
        CHECK(l[0].opts.n == 3);   /* name is taken out */
        CHECK(opt_is(&l[0], "filters", "6") && opt_is(&l[0], "kernel", "5")
              && opt_is(&l[0], "pad", "2"));
        const cnn_opt *f = opt(&l[0], "filters");
        CHECK(f && f->key_line == 12 && f->key_col == 24 && f->line == 12 && f->col == 33);
        CHECK(l[1].name == NULL && l[1].opts.n == 0);
        CHECK(!strcmp(l[1].opts.context, "layer 2 (relu)"));
        const cnn_opt *k = opt(&l[3], "kernel");
        CHECK(k && k->text == NULL && k->nitems == 2 && !strcmp(k->items[0], "5")
              && !strcmp(k->items[1], "5"));
        CHECK(l[4].opts.n == 0 && l[6].opts.n == 0);
        CHECK(opt_is(&l[5], "stride", "2"));
        CHECK(!strcmp(l[8].name, "r3") && l[8].ninputs == 1 && !strcmp(l[8].inputs[0], "fc1"));
        CHECK(l[8].opts.n == 0);
        CHECK(!strcmp(l[9].name, "head") && l[9].ninputs == 1
              && !strcmp(l[9].inputs[0], "r3"));
        CHECK(opt_is(&l[9], "units", "10") && l[9].opts.n == 1);
    }
    CHECK_NEAR(cfg.model.label_smoothing, 0.1, 1e-7);
    CHECK(cfg.train.epochs == 3 && cfg.train.batch == 32);
    CHECK(cfg.train.optim.type == CNN_OPTIM_ADAM);
    CHECK_NEAR(cfg.train.optim.lr, 1e-3, 1e-10);
    CHECK_NEAR(cfg.train.optim.beta1, 0.8, 1e-7);
    CHECK_NEAR(cfg.train.optim.beta2, 0.99, 1e-7);
    CHECK_NEAR(cfg.train.optim.eps, 1e-8, 1e-15);
    CHECK_NEAR(cfg.train.optim.weight_decay, 0.5e-4, 1e-10);
    CHECK(cfg.train.sched.type == CNN_SCHED_COSINE);
    CHECK(cfg.train.sched.warmup_epochs == 0 && cfg.train.sched.min_lr == 0.0f);

    /* The specs build a network: the front end and the engine agree. */
    cnn_error ne;
    cnn_net *net = cnn_net_create(&cfg.model, 4, &ne);
    CHECK_MSG(net != NULL, "cnn_net_create: %d:%d: %s", ne.line, ne.col, ne.msg);
    if (net) CHECK(net->nlayers == 10 && cnn_net_output(net)->out.c == 10);
    cnn_net_free(net);
    cnn_config_free(&cfg);
    CHECK(cfg.priv == NULL && cfg.name == NULL);
}

static void test_defaults(void)
{
    cnn_config cfg;
    cnn_error e;
    CHECK(cnn_config_parse(MINIMAL, strlen(MINIMAL), "configs/tiny.yml", NULL, 0, &cfg, &e)
          == CNN_OK);
    if (e.status) return;
    CHECK(!strcmp(cfg.name, "tiny"));
    CHECK(cfg.seed == 42);
    CHECK(cfg.data.train.images == NULL && cfg.data.val.images == NULL);
    CHECK(!cfg.data.has_normalize);
    CHECK(cfg.model.nlayers == 1 && !strcmp(cfg.model.layers[0].kind, "dense"));
    CHECK(!strcmp(cfg.model.layers[0].opts.context, "layer 1 (dense)"));
    CHECK(cfg.model.label_smoothing == 0.0f);
    CHECK(cfg.train.epochs == 10 && cfg.train.batch == 64);
    CHECK(cfg.train.optim.type == CNN_OPTIM_SGD);
    CHECK_NEAR(cfg.train.optim.lr, 0.01, 1e-9);
    CHECK_NEAR(cfg.train.optim.momentum, 0.9, 1e-7);
    CHECK(cfg.train.optim.nesterov == 0 && cfg.train.optim.weight_decay == 0.0f);
    CHECK(cfg.train.sched.type == CNN_SCHED_CONSTANT);
    CHECK(cfg.train.sched.step_epochs == 10);
    CHECK_NEAR(cfg.train.sched.gamma, 0.1, 1e-7);
    /* name and seed are made explicit in the resolved text */
    CHECK_CONTAINS(cfg.resolved, "name: tiny\nseed: 42\n");
    cnn_config_free(&cfg);

    const char *adamw = MINIMAL
        "train: {optimizer: adamw, schedule: {type: step, gamma: 0.5}}\n";
    CHECK(parse_text(adamw, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(cfg.train.optim.type == CNN_OPTIM_ADAMW);
    CHECK_NEAR(cfg.train.optim.lr, 0.001, 1e-9);
    CHECK_NEAR(cfg.train.optim.weight_decay, 0.01, 1e-9);
    CHECK_NEAR(cfg.train.optim.beta1, 0.9, 1e-7);
    CHECK_NEAR(cfg.train.optim.beta2, 0.999, 1e-7);
    CHECK(cfg.train.sched.type == CNN_SCHED_STEP && cfg.train.sched.step_epochs == 10);
    CHECK_NEAR(cfg.train.sched.gamma, 0.5, 1e-7);
    cnn_config_free(&cfg);

    const char *sgd = MINIMAL "train:\n  optimizer: {lr: .5, momentum: 0, nesterov: no}\n"
                      "  schedule: {type: cosine, warmup_epochs: 2, min_lr: 1e-4}\n";
    CHECK(parse_text(sgd, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK_NEAR(cfg.train.optim.lr, 0.5, 1e-9);
    CHECK(cfg.train.optim.momentum == 0.0f && cfg.train.optim.nesterov == 0);
    CHECK(cfg.train.sched.warmup_epochs == 2);
    CHECK_NEAR(cfg.train.sched.min_lr, 1e-4, 1e-10);
    cnn_config_free(&cfg);

    /* normalize takes one number for every channel */
    const char *rgb = "data:\n  input: {channels: 3, height: 4, width: 4}\n"
                      "  normalize: {mean: 0.5, std: [0.1, 0.2, 0.3]}\n"
                      "model: {layers: [flatten]}\n";
    CHECK(parse_text(rgb, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(cfg.data.mean[0] == 0.5f && cfg.data.mean[2] == 0.5f);
    CHECK_NEAR(cfg.data.std[2], 0.3, 1e-7);
    cnn_config_free(&cfg);
    /* and so does a list of one, as torchvision's Normalize([0.5], [0.25]) */
    const char *one = "data:\n  input: {channels: 3, height: 4, width: 4}\n"
                      "  normalize: {mean: [0.25], std: [0.5]}\n"
                      "model: {layers: [flatten]}\n";
    CHECK(parse_text(one, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(cfg.data.mean[0] == 0.25f && cfg.data.mean[1] == 0.25f && cfg.data.mean[2] == 0.25f);
    CHECK(cfg.data.std[0] == 0.5f && cfg.data.std[2] == 0.5f);
    cnn_config_free(&cfg);
}

/* The resolved text parses again to the same config, and to the same text. */
static void check_roundtrip(const cnn_config *cfg)
{
    cnn_config again;
    cnn_error e;
    CHECK(cnn_config_parse(cfg->resolved, strlen(cfg->resolved), "ckpt (embedded config)",
                           NULL, 0, &again, &e) == CNN_OK);
    if (e.status) {
        fprintf(stderr, "%d:%d: %s\n%s", e.line, e.col, e.msg, cfg->resolved);
        return;
    }
    CHECK(same_config(cfg, &again));
    CHECK(!strcmp(cfg->resolved, again.resolved));
    cnn_config_free(&again);
}

static void test_roundtrip(void)
{
    cnn_config cfg;
    cnn_error e;
    CHECK(cnn_config_load(fixture("lenet.yaml"), NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) return;
    check_roundtrip(&cfg);
    CHECK_CONTAINS(cfg.resolved, "name: lenet\nseed: 7\n");
    CHECK_CONTAINS(cfg.resolved, "- conv: {name: c1, filters: 6, kernel: 5, pad: 2}");
    cnn_config_free(&cfg);

    /* values that need quoting survive: strings that look like null,
     * numbers or YAML syntax */
    const char *odd = "name: \"~\"\n" MINIMAL
                      "    - dense: {units: 3, name: 'a.b-c', inputs: ['#x']}\n"
                      "  label_smoothing: ~\n"
                      "train: {epochs: '5', schedule: {type: \"step\"}}\n";
    CHECK(parse_text(odd, NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%d:%d: %s\n", e.line, e.col, e.msg); return; }
    CHECK(!strcmp(cfg.name, "~") && cfg.train.epochs == 5);
    CHECK(!strcmp(cfg.model.layers[1].inputs[0], "#x"));
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);

    const char *sets[] = {"name=run: 2", "train.schedule.type=cosine",
                          "model.layers.0.dense.units=[3, \"4\"]"};
    CHECK(parse_text(MINIMAL, sets, 3, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s: %s\n", e.file, e.msg); return; }
    CHECK(!strcmp(cfg.name, "run: 2"));
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);
}

static void test_sets(void)
{
    cnn_config cfg;
    cnn_error e;
    const char *sets[] = {
        "train.batch=16",                    /* scalar, existing key */
        "data.normalize.mean=[0.5]",         /* list */
        "train.optimizer.type=sgd",          /* replaces adam */
        "model.layers.0.conv.filters=8",     /* sequence index */
        "model.layers.4.relu.name=r4",       /* null options become a mapping */
        "name='my run'",                     /* quoted */
        "train.batch=17",                    /* the last one wins */
        "train.optimizer.betas=~",           /* null: as if absent */
        "train.optimizer.nesterov=true",     /* new key */
    };
    /* betas still set in the file, so sgd refuses them until the null */
    CHECK(cnn_config_load(fixture("lenet.yaml"), sets, 3, &cfg, &e) == CNN_ERR_CONFIG);
    CHECK_CONTAINS(e.msg, "train.optimizer.betas is only valid for adam and adamw, not sgd");
    CHECK(!strcmp(e.file, fixture("lenet.yaml")) && e.line == 27 && e.col == 37);

    CHECK(cnn_config_load(fixture("lenet.yaml"), sets, 9, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s:%d:%d: %s\n", e.file, e.line, e.col, e.msg); return; }
    CHECK(cfg.train.optim.nesterov == 1);
    CHECK(cfg.train.batch == 17);
    CHECK(cfg.data.mean[0] == 0.5f);
    CHECK(cfg.train.optim.type == CNN_OPTIM_SGD);
    CHECK_NEAR(cfg.train.optim.lr, 1e-3, 1e-10);   /* lr stays as written */
    CHECK(opt_is(&cfg.model.layers[0], "filters", "8"));
    const cnn_opt *f = opt(&cfg.model.layers[0], "filters");
    CHECK(f && f->line == 0 && f->col == 0 && f->key_line == 12);
    CHECK(cfg.model.layers[4].name && !strcmp(cfg.model.layers[4].name, "r4"));
    CHECK(!strcmp(cfg.name, "my run"));
    CHECK_CONTAINS(cfg.resolved, "batch: 17");
    CHECK_CONTAINS(cfg.resolved, "mean: [0.5]");
    CHECK_CONTAINS(cfg.resolved, "name: 'my run'");
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);

    /* a key that is absent, with its section absent too */
    const char *add[] = {"train.schedule.type=cosine", "train.schedule.min_lr=0.001"};
    CHECK(parse_text(MINIMAL, add, 2, &cfg, &e) == CNN_OK);
    CHECK(cfg.train.sched.type == CNN_SCHED_COSINE);
    CHECK_NEAR(cfg.train.sched.min_lr, 0.001, 1e-9);
    CHECK_CONTAINS(cfg.resolved, "train:\n  schedule:\n    type: cosine\n    min_lr: 0.001\n");
    cnn_config_free(&cfg);
}

/* The call must fail with status st, file, position and message. */
static void expect(const char *text, const char *const *sets, size_t nsets, cnn_status st,
                   const char *file, int line, int col, const char *msg, int at)
{
    cnn_config cfg;
    cnn_error e;
    cnn_status got = parse_text(text, sets, nsets, &cfg, &e);
    test_checks++;
    if (got != st || strcmp(e.file, file) || e.line != line || e.col != col
        || !strstr(e.msg, msg))
        test_fail(__FILE__, at, "got %d %s:%d:%d: %s\n    expected %d %s:%d:%d: %s",
                  (int)got, e.file, e.line, e.col, e.msg, (int)st, file, line, col, msg);
    CHECK(cfg.priv == NULL && cfg.resolved == NULL && cfg.model.layers == NULL);
    if (got == CNN_OK) cnn_config_free(&cfg);
}

#define EXPECT(text, line, col, msg) \
    expect((text), NULL, 0, CNN_ERR_CONFIG, "t.yaml", (line), (col), (msg), __LINE__)
#define EXPECT_SET(text, set, msg) do { const char *s_[] = {set}; \
    expect((text), s_, 1, CNN_ERR_CONFIG, "--set", 0, 0, (msg), __LINE__); } while (0)

/* The training workflow's keys: schedules, early stopping, regularisers. */
#define WITH_VAL "data:\n" \
                 "  val: {images: v.idx, labels: l.idx}\n" \
                 "  input: {channels: 1, height: 8, width: 8}\n" \
                 "model:\n" \
                 "  layers:\n" \
                 "    - dense: {units: 2}\n"

static void test_train_keys(void)
{
    cnn_config cfg;
    cnn_error e;
    /* defaults: no early stopping, no regularisers */
    CHECK(parse_text(MINIMAL, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(!cfg.train.early.enabled && cfg.train.optim.l1 == 0.0f);
    CHECK(!cfg.train.optim.decay_all && cfg.train.optim.weight_noise == 0.0f);
    CHECK(cfg.train.optim.clip_grad_norm == 0.0f);
    cnn_config_free(&cfg);

    const char *text = WITH_VAL
        "train:\n"
        "  optimizer: {type: sgd, lr: 0.1, l1: 1e-5, weight_decay: 5e-4, decay_all: yes}\n"
        "  schedule: {type: multistep, milestones: [30, 60], gamma: 0.2}\n"
        "  early_stopping: {monitor: val_accuracy, patience: 3, min_delta: 0.01,"
        " restore_best: true}\n"
        "  weight_noise: 0.01\n"
        "  clip_grad_norm: 1.5\n";
    CHECK(parse_text(text, NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) {
        fprintf(stderr, "%d:%d: %s\n", e.line, e.col, e.msg);
        return;
    }
    const cnn_train_spec *t = &cfg.train;
    CHECK_NEAR(t->optim.l1, 1e-5, 1e-12);
    CHECK(t->optim.decay_all == 1);
    CHECK_NEAR(t->optim.weight_noise, 0.01, 1e-9);
    CHECK_NEAR(t->optim.clip_grad_norm, 1.5, 1e-9);
    CHECK(t->sched.type == CNN_SCHED_MULTISTEP && t->sched.nmilestones == 2);
    CHECK(t->sched.milestones[0] == 30 && t->sched.milestones[1] == 60);
    CHECK_NEAR(t->sched.gamma, 0.2, 1e-7);
    CHECK(t->early.enabled && t->early.monitor == CNN_MONITOR_VAL_ACCURACY);
    CHECK(t->early.maximize == 1 && t->early.patience == 3 && t->early.restore_best);
    CHECK_NEAR(t->early.min_delta, 0.01, 1e-9);
    /* the resolved text reads back to the same config */
    cnn_config back;
    CHECK(parse_text(cfg.resolved, NULL, 0, &back, &e) == CNN_OK);
    CHECK(same_config(&cfg, &back));
    cnn_config_free(&back);
    cnn_config_free(&cfg);

    /* one_cycle and plateau defaults; early_stopping: {} is on with defaults */
    CHECK(parse_text(WITH_VAL "train: {schedule: one_cycle, early_stopping: {}}\n", NULL, 0,
                     &cfg, &e) == CNN_OK);
    CHECK(cfg.train.sched.type == CNN_SCHED_ONE_CYCLE);
    CHECK_NEAR(cfg.train.sched.pct_start, 0.3, 1e-7);
    CHECK(cfg.train.sched.div_factor == 25.0f && cfg.train.sched.final_div_factor == 1e4f);
    CHECK(cfg.train.early.enabled && cfg.train.early.monitor == CNN_MONITOR_VAL_LOSS);
    CHECK(!cfg.train.early.maximize && cfg.train.early.patience == 10);
    CHECK(!cfg.train.early.restore_best && cfg.train.early.min_delta == 0.0f);
    cnn_config_free(&cfg);
    CHECK(parse_text(WITH_VAL "train: {schedule: plateau}\n", NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(cfg.train.sched.type == CNN_SCHED_PLATEAU
          && cfg.train.plateau_monitor == CNN_MONITOR_VAL_LOSS && !cfg.train.sched.maximize);
    CHECK(cfg.train.sched.patience == 10 && cfg.train.sched.cooldown == 0);
    CHECK_NEAR(cfg.train.sched.factor, 0.1, 1e-7);
    CHECK_NEAR(cfg.train.sched.threshold, 1e-4, 1e-10);
    cnn_config_free(&cfg);
    /* train_* monitors need no validation set; mode overrides auto */
    CHECK(parse_text(MINIMAL "train:\n  schedule: {type: plateau, monitor: train_accuracy, "
                     "mode: min, factor: 0.5, min_lr: 1e-4}\n", NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(cfg.train.plateau_monitor == CNN_MONITOR_TRAIN_ACCURACY && !cfg.train.sched.maximize);
    cnn_config_free(&cfg);
    CHECK(parse_text(MINIMAL "train:\n  schedule: {type: exponential, gamma: 0.95}\n", NULL, 0,
                     &cfg, &e) == CNN_OK);
    CHECK(cfg.train.sched.type == CNN_SCHED_EXPONENTIAL);
    CHECK_NEAR(cfg.train.sched.gamma, 0.95, 1e-7);
    cnn_config_free(&cfg);

    /* bad values, each at its line:column */
    EXPECT(MINIMAL "train:\n  early_stopping: {patience: 3}\n", 7, 3,
           "train.early_stopping.monitor is val_loss (the default), but the config has no "
           "validation set: add data.val or data.val_split, or monitor train_loss");
    EXPECT(MINIMAL "train:\n  early_stopping: {monitor: val_accuracy}\n", 7, 29,
           "train.early_stopping.monitor is val_accuracy, but the config has no validation "
           "set: add data.val or data.val_split, or monitor train_accuracy");
    EXPECT(WITH_VAL "train:\n  early_stopping: {monitor: val_acc}\n", 8, 29,
           "train.early_stopping.monitor must be one of val_loss, val_accuracy, train_loss, "
           "train_accuracy, got \"val_acc\"");
    EXPECT(WITH_VAL "train:\n  early_stopping: {mode: maximum}\n", 8, 26,
           "train.early_stopping.mode must be one of auto, min, max, got \"maximum\"");
    EXPECT(WITH_VAL "train:\n  early_stopping: {patience: 0}\n", 8, 30,
           "train.early_stopping.patience must be an integer >= 1, got 0");
    EXPECT(WITH_VAL "train:\n  early_stopping: {min_delta: -1}\n", 8, 31,
           "train.early_stopping.min_delta must be >= 0, got -1");
    EXPECT(WITH_VAL "train:\n  early_stopping: {restore: true}\n", 8, 20,
           "unknown key 'restore' in train.early_stopping (allowed: monitor, mode, "
           "patience, min_delta, restore_best)");
    EXPECT(WITH_VAL "train:\n  early_stopping: yes\n", 8, 19,
           "train.early_stopping must be a mapping, got \"yes\"");
    EXPECT(MINIMAL "train:\n  schedule: multistep\n", 7, 3,
           "train.schedule.milestones is required for type multistep (the epochs after "
           "which the rate is multiplied by gamma, e.g. [30, 60])");
    EXPECT(MINIMAL "train:\n  schedule: {type: multistep, milestones: [30, 20]}\n", 7, 48,
           "train.schedule.milestones must be increasing, got 20 after 30");
    EXPECT(MINIMAL "train:\n  schedule: {type: multistep, milestones: [0]}\n", 7, 44,
           "train.schedule.milestones must be an integer >= 1, got 0");
    EXPECT(MINIMAL "train:\n  schedule: {type: multistep, milestones: 30}\n", 7, 43,
           "train.schedule.milestones must be a non-empty list of epochs, e.g. [30, 60], "
           "got \"30\"");
    EXPECT(MINIMAL "train:\n  schedule: {type: exponential}\n", 7, 3,
           "train.schedule.gamma is required for type exponential (the factor per epoch, "
           "e.g. 0.95)");
    EXPECT(MINIMAL "train:\n  schedule: {type: one_cycle, pct_start: 1}\n", 7, 42,
           "train.schedule.pct_start must be in (0, 1), got 1");
    EXPECT(MINIMAL "train:\n  schedule: {type: cosine, patience: 3}\n", 7, 28,
           "train.schedule.patience is only valid for type plateau, not cosine");
    EXPECT(MINIMAL "train:\n  schedule: {type: plateau, factor: 1}\n", 7, 37,
           "train.schedule.factor must be in (0, 1), got 1");
    EXPECT(MINIMAL "train:\n  schedule: plateau\n", 7, 13,
           "train.schedule.monitor is val_loss (the default), but the config has no "
           "validation set: add data.val or data.val_split, or monitor train_loss");
    EXPECT(MINIMAL "train:\n  schedule: onecycle\n", 7, 13,
           "train.schedule.type must be one of constant, step, multistep, exponential, "
           "cosine, one_cycle, plateau, got \"onecycle\"; did you mean 'one_cycle'?");
    EXPECT(MINIMAL "train:\n  optimizer: {l1: -1e-5}\n", 7, 19,
           "train.optimizer.l1 must be >= 0, got -1e-5");
    EXPECT(MINIMAL "train:\n  optimizer: {decay_all: 2}\n", 7, 26,
           "train.optimizer.decay_all must be true or false, got \"2\"");
    EXPECT(MINIMAL "train:\n  clip_grad_norm: 0\n", 7, 19,
           "train.clip_grad_norm must be > 0, got 0");
    EXPECT(MINIMAL "train:\n  weight_noise: [0.1]\n", 7, 17,
           "train.weight_noise must be a number >= 0, got a list");
    EXPECT_SET(MINIMAL, "train.clip_grad_norm=big",
               "train.clip_grad_norm must be a number > 0, got \"big\" "
               "(--set train.clip_grad_norm=big)");
}

static void test_errors(void)
{
    /* YAML syntax */
    EXPECT("train:\n  epochs: 3\n batch: 2\n", 3, 2,
           "did not find expected key while parsing a block mapping that starts at "
           "line 1, column 1");
    EXPECT("data: {input: [1, 2}\n", 1, 20,
           "did not find expected ',' or ']' while parsing a flow sequence that starts "
           "at line 1, column 15");
    EXPECT("name: \"abc\n", 2, 1,
           "found unexpected end of stream while scanning a quoted scalar that starts "
           "at line 1, column 7");
    EXPECT("name: a\xff\n", 1, 8, "invalid leading UTF-8 octet (byte 0xFF)");
    EXPECT("a: &x 1\nb: *x\n", 1, 4, "anchors (&x) are not supported; write the value out");
    EXPECT("name: a\n---\nname: b\n", 2, 1,
           "a config is one YAML document; a second one starts here");
    EXPECT("- data\n", 1, 1, "a config must be a mapping of sections (name, seed, data, "
           "task, model, train, finetune), got a list");

    /* unknown keys */
    EXPECT(MINIMAL "traim:\n  epochs: 3\n", 6, 1,
           "unknown top-level key 'traim'; did you mean 'train'?");
    EXPECT(MINIMAL "trian:\n  epochs: 3\n", 6, 1,   /* a swap counts as one edit */
           "unknown top-level key 'trian'; did you mean 'train'?");
    EXPECT(MINIMAL "train: {optimizer: {tpye: adam}}\n", 6, 21,
           "unknown key 'tpye' in train.optimizer; did you mean 'type'?");
    EXPECT(MINIMAL "optimizer: {lr: 1}\n", 6, 1, "unknown top-level key 'optimizer' "
           "(allowed: name, seed, data, task, model, train, finetune)");
    EXPECT(MINIMAL "train:\n  epoch: 3\n", 7, 3,
           "unknown key 'epoch' in train; did you mean 'epochs'?");
    EXPECT(MINIMAL "train:\n  speed: 3\n", 7, 3,
           "unknown key 'speed' in train (allowed: epochs, batch, optimizer, schedule, "
           "early_stopping, weight_noise, clip_grad_norm, trainable, head, freeze, "
           "lr_mult, stages, distributed)");
    EXPECT(MINIMAL "train: {optimizer: {typ: adam}}\n", 6, 21,
           "unknown key 'typ' in train.optimizer; did you mean 'type'?");

    /* wrong types */
    EXPECT(MINIMAL "train:\n  batch: sixty\n", 7, 10,
           "train.batch must be an integer from 1 to 65536, got \"sixty\"");
    EXPECT(MINIMAL "train:\n  epochs: 3.5\n", 7, 11,
           "train.epochs must be an integer >= 1, got \"3.5\"");
    EXPECT(MINIMAL "train:\n  epochs: [3]\n", 7, 11,
           "train.epochs must be an integer >= 1, got a list");
    EXPECT(MINIMAL "train:\n  optimizer: {lr: fast}\n", 7, 19,
           "train.optimizer.lr must be a number > 0, got \"fast\"");
    EXPECT(MINIMAL "train:\n  optimizer: {nesterov: maybe}\n", 7, 25,
           "train.optimizer.nesterov must be true or false, got \"maybe\"");
    EXPECT(MINIMAL "train: 5\n", 6, 8, "train must be a mapping, got \"5\"");
    EXPECT("name: [a]\n" MINIMAL, 1, 7, "name must be a string, got a list");
    EXPECT("name: ../x\n" MINIMAL, 1, 7, "name must be usable as a directory name "
           "(no '/' or control characters, not '.' or '..'), got \"../x\"");

    /* out of range */
    EXPECT(MINIMAL "train:\n  optimizer: {lr: -1}\n", 7, 19,
           "train.optimizer.lr must be > 0, got -1");
    EXPECT(MINIMAL "train:\n  batch: 0\n", 7, 10,
           "train.batch must be an integer from 1 to 65536, got 0");
    EXPECT(MINIMAL "train:\n  optimizer: {momentum: 1}\n", 7, 25,
           "train.optimizer.momentum must be in [0, 1), got 1");
    EXPECT(MINIMAL "train:\n  optimizer: {type: adam, betas: [0.9, 1.5]}\n", 7, 40,
           "train.optimizer.betas must be in [0, 1), got 1.5");
    EXPECT(MINIMAL "train:\n  schedule: {type: step, gamma: 0}\n", 7, 33,
           "train.schedule.gamma must be in (0, 1], got 0");
    EXPECT(MINIMAL "  label_smoothing: 1\n", 6, 20,
           "model.label_smoothing must be in [0, 1), got 1");
    EXPECT("seed: -1\n" MINIMAL, 1, 7, "seed must be an integer >= 0, got -1");
    EXPECT("data:\n  input: {channels: 5, height: 8, width: 8}\nmodel: {layers: [relu]}\n",
           2, 21, "data.input.channels must be an integer from 1 to 4, got 5");
    EXPECT(MINIMAL "train:\n  optimizer: {lr: 0.1}\n  schedule: {type: cosine, min_lr: 0.5}\n",
           8, 36, "train.schedule.min_lr (0.5) must not exceed the learning rate "
           "train.optimizer.lr (0.1)");

    /* duplicates */
    EXPECT(MINIMAL "train:\n  batch: 3\n  epochs: 2\n  batch: 4\n", 9, 3,
           "duplicate key 'batch' (first at line 7, column 3)");
    EXPECT(MINIMAL "    - dense: {units: 2, units: 3}\n", 6, 25,
           "duplicate key 'units' (first at line 6, column 15)");
    EXPECT(MINIMAL "    - relu: {name: a}\n    - relu: {name: a}\n", 7, 20,
           "two layers are named 'a' (layers 2 and 3; the first at line 6, column 20)");

    /* layers */
    EXPECT("data: {input: {channels: 1, height: 8, width: 8}}\nmodel:\n  layers:\n"
           "    - cnv: {filters: 2}\n", 4, 7,
           "unknown layer kind 'cnv'; did you mean 'conv'?");
    EXPECT("data: {input: {channels: 1, height: 8, width: 8}}\nmodel:\n  layers:\n"
           "    - transformer\n", 4, 7,
           "unknown layer kind 'transformer' (known kinds: conv,");
    EXPECT(MINIMAL "    - conv: {filters: 2, kernel: {h: 3, w: 3}}\n", 6, 34,
           "layer 2 (conv): option 'kernel' is a mapping; layer options are values or "
           "lists of values");
    EXPECT(MINIMAL "    - conv:\n      filters: 2\n", 7, 7,
           "layer 2 has 2 keys (conv, filters); a layer is one 'kind: {options}' pair");
    EXPECT(MINIMAL "    - dropout: 0.5\n", 6, 16,
           "the options of layer 2 (dropout) must be a mapping, e.g. '- dropout: {...}', "
           "got \"0.5\"");
    EXPECT(MINIMAL "    - relu: {name: 'a b'}\n", 6, 20,
           "layer 2 (relu): a layer name has 1 to 63 letters, digits, '_', '.' or '-', "
           "got \"a b\"");
    EXPECT(MINIMAL "    - relu: {name: input}\n", 6, 20,
           "layer 2 (relu): the name 'input' is reserved for the network input");
    EXPECT("data: {input: {channels: 1, height: 8, width: 8}}\nmodel: {layers: []}\n", 2, 17,
           "model.layers must list at least one layer");
    EXPECT("data: {input: {channels: 1, height: 8, width: 8}}\nmodel: {loss: mse}\n", 2, 1,
           "model.layers is required");
    EXPECT(MINIMAL "  loss: mse\n", 6, 9,
           "model.loss is mse, but task classify trains with softmax_cross_entropy (leave model.loss out)");

    /* data */
    EXPECT("data:\n  input: {channels: 3, height: 8, width: 8}\n"
           "  normalize: {mean: [0.5, 0.5], std: [1, 1, 1]}\nmodel: {layers: [relu]}\n",
           3, 21, "data.normalize.mean must have 3 values, one per channel "
           "(data.input.channels is 3), or one for all; got 2");
    EXPECT("data:\n  input: {channels: 1, height: 8, width: 8}\n"
           "  normalize: {mean: [0.5], std: [0]}\nmodel: {layers: [relu]}\n",
           3, 34, "data.normalize.std must be > 0, got 0");
    EXPECT("model: {layers: [relu]}\n", 0, 0, "data.input is required");
    EXPECT("data:\n  train: {images: a.idx}\n  input: {channels: 1, height: 8, width: 8}\n"
           "model: {layers: [relu]}\n", 2, 3,
           "data.train.labels is required (an IDX label file)");
    EXPECT("data:\n  input: {channels: 1, width: 8}\nmodel: {layers: [relu]}\n", 2, 3,
           "data.input.height is required");

    /* options of the wrong optimizer or schedule */
    EXPECT(MINIMAL "train:\n  optimizer: {type: sgd, betas: [0.9, 0.99]}\n", 7, 26,
           "train.optimizer.betas is only valid for adam and adamw, not sgd");
    EXPECT(MINIMAL "train:\n  optimizer: {type: adamw, momentum: 0.9}\n", 7, 28,
           "train.optimizer.momentum is only valid for sgd, not adamw");
    EXPECT(MINIMAL "train:\n  schedule: {type: cosine, gamma: 0.5}\n", 7, 28,
           "train.schedule.gamma is only valid for types step, multistep and exponential, "
           "not cosine");
    EXPECT(MINIMAL "train:\n  optimizer: {type: adm}\n", 7, 21,
           "train.optimizer.type must be one of sgd, adam, adamw, got \"adm\"; "
           "did you mean 'adam'?");
    EXPECT(MINIMAL "train:\n  schedule: linear\n", 7, 13,
           "train.schedule.type must be one of constant, step, multistep, exponential, "
           "cosine, one_cycle, plateau, got \"linear\"");
    EXPECT(MINIMAL "train:\n  optimizer: {momentum: 0, nesterov: true}\n", 7, 38,
           "train.optimizer.nesterov needs momentum > 0");

    /* --set */
    EXPECT_SET(MINIMAL, "model.layers.9.dense.units=3",
               "model.layers has 1 items, so there is no index 9 (indices start at 0) "
               "(--set model.layers.9.dense.units=3)");
    EXPECT_SET(MINIMAL, "model.layers.first.dense.units=3",
               "model.layers is a list; 'first' is not an index (0, 1, ...)");
    EXPECT_SET(MINIMAL "train: {epochs: 3}\n", "train.epochs.max=3",
               "train.epochs is a single value, so it has no 'max' "
               "(--set train.epochs.max=3)");
    EXPECT_SET(MINIMAL, "train.batch", "expected KEY=VALUE, e.g. train.epochs=5 "
               "(--set train.batch)");
    EXPECT_SET(MINIMAL, "train..batch=3", "the key 'train..batch' has an empty part");
    EXPECT_SET(MINIMAL, "train.batch=sixty",
               "train.batch must be an integer from 1 to 65536, got \"sixty\" "
               "(--set train.batch=sixty)");
    EXPECT_SET(MINIMAL, "train.epoch=3",
               "unknown key 'epoch' in train; did you mean 'epochs'? (--set train.epoch=3)");
    EXPECT_SET(MINIMAL, "data.normalize.mean=[0.5, [1]]",
               "list items must be plain values, not a list");
    EXPECT_SET(MINIMAL, "data.normalize.mean=[0.5",
               "did not find expected ',' or ']' while parsing a flow sequence");
}

static void test_files(void)
{
    cnn_config cfg;
    cnn_error e;
    const char *missing = fixture("no-such-config.yaml");
    CHECK(cnn_config_load(missing, NULL, 0, &cfg, &e) == CNN_ERR_IO);
    /* the path is in e.file, so the message does not repeat it */
    CHECK_CONTAINS(e.msg, "cannot open the config: No such file or directory");
    CHECK(!strcmp(e.file, missing) && e.line == 0);
    CHECK(cfg.priv == NULL);

    /* the file name is in every parse error */
    CHECK(cnn_config_load(fixture("bad-batch.yaml"), NULL, 0, &cfg, &e) == CNN_ERR_CONFIG);
    CHECK(!strcmp(e.file, fixture("bad-batch.yaml")));
    CHECK(e.line == 9 && e.col == 10);
    CHECK_CONTAINS(e.msg, "train.batch must be an integer from 1 to 65536, got 0");

    CHECK(cnn_config_load(fixture("."), NULL, 0, &cfg, &e) == CNN_ERR_IO);
    CHECK_CONTAINS(e.msg, "Is a directory");

    /* an empty file is a config with nothing in it */
    CHECK(cnn_config_parse("", 0, "empty.yaml", NULL, 0, &cfg, &e) == CNN_ERR_CONFIG);
    CHECK_CONTAINS(e.msg, "data.input is required");
    CHECK(!strcmp(e.file, "empty.yaml"));
}

/* ---- blocks, repeat and defaults ---------------------------------------- */

static const cnn_layer_spec *spec_named(const cnn_config *cfg, const char *name, size_t *at)
{
    for (size_t i = 0; i < cfg->model.nlayers; i++)
        if (cfg->model.layers[i].name && !strcmp(cfg->model.layers[i].name, name)) {
            if (at) *at = i;
            return &cfg->model.layers[i];
        }
    return NULL;
}

/* The layer reads exactly these inputs (NULL names: the layer before it). */
static int reads(const cnn_config *cfg, const char *name, const char *in0, const char *in1)
{
    size_t i;
    const cnn_layer_spec *l = spec_named(cfg, name, &i);
    if (!l) return 0;
    if (!in0) {   /* by default: the previous layer, which must be named in1 */
        const cnn_layer_spec *prev = i ? &cfg->model.layers[i - 1] : NULL;
        return l->inputs == NULL && l->ninputs == 0
            && (in1 ? prev && str_eq(prev->name, in1) : i == 0);
    }
    size_t n = in1 ? 2 : 1;
    return l->ninputs == n && !strcmp(l->inputs[0], in0)
        && (!in1 || !strcmp(l->inputs[1], in1));
}

/* A small ResNet: a block used at the top level and inside another block,
 * repeat, first, $arg arithmetic, defaults. Line numbers are in comments. */
static const char blocks_text[] =
    "data:\n"                                                              /* 1 */
    "  input: {channels: 3, height: 16, width: 16}\n"
    "model:\n"
    "  defaults:\n"
    "    conv: {bias: false, pad: 1}\n"                                    /* 5 */
    "    batchnorm: {eps: 0.001}\n"
    "  blocks:\n"
    "    basic:\n"
    "      args: {filters: 8, stride: 1}\n"
    "      layers:\n"                                                      /* 10 */
    "        - conv: {name: conv1, filters: $filters, kernel: 3, stride: $stride}\n"
    "        - batchnorm: {name: bn1}\n"
    "        - relu\n"
    "        - conv: {name: conv2, filters: $filters*2, kernel: [1, $stride], pad: 0}\n"
    "        - batchnorm\n"                                                /* 15 */
    "        - add: {inputs: [batchnorm1, $input], project: true}\n"
    "        - relu\n"
    "    stage:\n"
    "      args: {filters: ~, n: 2}\n"
    "      layers:\n"                                                      /* 20 */
    "        - basic: {name: b, repeat: $n, filters: $filters, first: {stride: 2}}\n"
    "        - dropout: {rate: 0.5, inputs: b}\n"
    "  layers:\n"
    "    - conv: {name: stem, filters: 8, kernel: 3}\n"
    "    - relu\n"                                                         /* 25 */
    "    - basic: {name: layer1, repeat: 2}\n"
    "    - basic: {name: layer2, repeat: 2, filters: 16, first: {stride: 2}}\n"
    "    - basic\n"
    "    - stage: {name: s, filters: 32, n: 1}\n"
    "    - globalavgpool: {inputs: s}\n"                                   /* 30 */
    "    - dense: {units: 10, name: fc}\n";

static void test_blocks(void)
{
    cnn_config cfg;
    cnn_error e;
    const cnn_layer_spec *l;
    const cnn_opt *o;
    CHECK(parse_text(blocks_text, NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%d:%d: %s\n", e.line, e.col, e.msg); return; }
    /* stem, relu, 4 x basic in layer1 and layer2, basic1, s.b.0, s.dropout1,
     * globalavgpool, fc */
    CHECK_MSG(cfg.model.nlayers == 2 + 5 * 7 + 7 + 3, "%zu layers", cfg.model.nlayers);
    static const char *const order[] = {
        "stem", "relu1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1",
        "layer1.0.conv2", "layer1.0.batchnorm1", "layer1.0.add1", "layer1.0.relu2",
        "layer1.1.conv1"};
    for (size_t i = 0; i < 10 && i < cfg.model.nlayers; i++)
        CHECK_MSG(str_eq(cfg.model.layers[i].name, order[i]), "layer %zu is %s, not %s", i,
                  cfg.model.layers[i].name ? cfg.model.layers[i].name : "(unnamed)",
                  order[i]);
    for (size_t i = 2; i < 9 && i < cfg.model.nlayers; i++) {
        static const char *const kinds[] = {"conv", "batchnorm", "relu", "conv",
                                            "batchnorm", "add", "relu"};
        CHECK(!strcmp(cfg.model.layers[i].kind, kinds[i - 2]));
        CHECK(cfg.model.layers[i].line == (int)(11 + i - 2) && cfg.model.layers[i].col == 11);
    }

    /* the first layer of a block reads the block's input; the rest, the
     * layer before them; $input is the block's input */
    CHECK(reads(&cfg, "stem", NULL, NULL));
    CHECK(reads(&cfg, "layer1.0.conv1", NULL, "relu1"));
    CHECK(reads(&cfg, "layer1.0.add1", "layer1.0.batchnorm1", "relu1"));
    CHECK(reads(&cfg, "layer1.1.conv1", NULL, "layer1.0.relu2"));
    CHECK(reads(&cfg, "layer1.1.add1", "layer1.1.batchnorm1", "layer1.0.relu2"));
    CHECK(reads(&cfg, "layer2.0.conv1", NULL, "layer1.1.relu2"));
    CHECK(reads(&cfg, "layer2.0.add1", "layer2.0.batchnorm1", "layer1.1.relu2"));
    CHECK(reads(&cfg, "basic1.add1", "basic1.batchnorm1", "layer2.1.relu2"));
    CHECK(reads(&cfg, "s.b.0.conv1", NULL, "basic1.relu2"));
    CHECK(reads(&cfg, "s.b.0.add1", "s.b.0.batchnorm1", "basic1.relu2"));
    CHECK(reads(&cfg, "s.dropout1", "s.b.0.relu2", NULL));
    CHECK(cfg.model.nlayers == 47 && reads(&cfg, "fc", NULL, NULL) == 0);
    /* a use's name stands for its output; unnamed top-level layers keep no
     * name unless something inside a block reads them */
    l = &cfg.model.layers[45];
    CHECK(l->name == NULL && !strcmp(l->kind, "globalavgpool") && l->ninputs == 1
          && !strcmp(l->inputs[0], "s.dropout1"));
    CHECK(!strcmp(l->opts.context, "layer 7 (globalavgpool)"));
    CHECK(reads(&cfg, "fc", NULL, NULL) == 0 && cfg.model.layers[46].inputs == NULL);
    CHECK(spec_named(&cfg, "s.b.0.conv1", NULL) && !spec_named(&cfg, "s.b.1.conv1", NULL));

    /* substituted values and defaults; the defaults come after the layer's own */
    l = spec_named(&cfg, "layer1.0.conv1", NULL);
    CHECK(l && !strcmp(l->opts.context, "layer 'layer1.0.conv1' (conv)"));
    if (l) {
        CHECK(l->opts.n == 5 && opt_is(l, "filters", "8") && opt_is(l, "kernel", "3")
              && opt_is(l, "stride", "1") && opt_is(l, "bias", "false")
              && opt_is(l, "pad", "1"));
        CHECK(!strcmp(l->opts.items[3].key, "bias") && !strcmp(l->opts.items[4].key, "pad"));
        o = opt(l, "filters");   /* where $filters is written */
        CHECK(o && o->key_line == 11 && o->key_col == 31 && o->line == 11 && o->col == 40);
        o = opt(l, "bias");      /* where the default is written */
        CHECK(o && o->key_line == 5 && o->key_col == 12 && o->line == 5 && o->col == 18);
    }
    l = spec_named(&cfg, "layer1.0.conv2", NULL);
    CHECK(l != NULL);
    if (l) {
        CHECK(l->opts.n == 4 && opt_is(l, "filters", "16") && opt_is(l, "pad", "0")
              && opt_is(l, "bias", "false"));
        o = opt(l, "kernel");
        CHECK(o && o->nitems == 2 && !strcmp(o->items[0], "1") && !strcmp(o->items[1], "1"));
        o = opt(l, "filters");
        CHECK(o && o->line == 14 && o->col == 40);
    }
    l = spec_named(&cfg, "layer1.0.batchnorm1", NULL);
    CHECK(l && l->opts.n == 1 && opt_is(l, "eps", "0.001"));
    l = spec_named(&cfg, "layer1.0.add1", NULL);
    CHECK(l && l->opts.n == 1 && opt_is(l, "project", "true"));
    /* repeat + first: only the first repetition gets the override */
    l = spec_named(&cfg, "layer2.0.conv1", NULL);
    CHECK(l && opt_is(l, "filters", "16") && opt_is(l, "stride", "2"));
    l = spec_named(&cfg, "layer2.1.conv1", NULL);
    CHECK(l && opt_is(l, "filters", "16") && opt_is(l, "stride", "1"));
    l = spec_named(&cfg, "layer2.0.conv2", NULL);
    CHECK(l && opt_is(l, "filters", "32"));
    o = l ? opt(l, "kernel") : NULL;
    CHECK(o && o->nitems == 2 && !strcmp(o->items[1], "2"));
    l = spec_named(&cfg, "basic1.conv1", NULL);
    CHECK(l && opt_is(l, "filters", "8") && opt_is(l, "stride", "1"));
    /* nested: stage passes $filters on; first applies inside it */
    l = spec_named(&cfg, "s.b.0.conv1", NULL);
    CHECK(l && opt_is(l, "filters", "32") && opt_is(l, "stride", "2"));
    CHECK(l && l->line == 11 && l->col == 11);
    l = spec_named(&cfg, "s.b.0.conv2", NULL);
    CHECK(l && opt_is(l, "filters", "64"));
    l = spec_named(&cfg, "s.dropout1", NULL);
    CHECK(l && l->opts.n == 1 && opt_is(l, "rate", "0.5") && l->line == 22);

    /* the resolved config keeps the blocks as written, and reads back */
    CHECK_CONTAINS(cfg.resolved, "      - conv: {name: conv2, filters: $filters*2, "
                   "kernel: [1, $stride], pad: 0}\n");
    CHECK_CONTAINS(cfg.resolved, "  - basic: {name: layer2, repeat: 2, filters: 16, "
                   "first: {stride: 2}}\n");
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);

    /* --set reaches into uses and block definitions */
    const char *sets[] = {"model.layers.2.basic.filters=4",
                          "model.blocks.basic.args.stride=3",
                          "model.defaults.conv.bias=true"};
    CHECK(parse_text(blocks_text, sets, 3, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s: %s\n", e.file, e.msg); return; }
    l = spec_named(&cfg, "layer1.1.conv2", NULL);
    CHECK(l && opt_is(l, "filters", "8") && opt_is(l, "bias", "true"));
    o = l ? opt(l, "kernel") : NULL;
    CHECK(o && o->nitems == 2 && !strcmp(o->items[1], "3"));
    l = spec_named(&cfg, "layer2.1.conv1", NULL);
    CHECK(l && opt_is(l, "stride", "3"));
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);
}

/* Branches: uses that read the block's input by name, a block inside a
 * block, $arg/N, concat over the branches' outputs, forward references. */
static void test_block_branches(void)
{
    const char *text =
        "data: {input: {channels: 3, height: 8, width: 8}}\n"
        "model:\n"
        "  blocks:\n"
        "    branch:\n"
        "      args: {f: ~, k: 1}\n"
        "      layers:\n"
        "        - conv: {filters: $f, kernel: 1}\n"
        "        - conv: {filters: $f, kernel: $k, pad: $k/2}\n"
        "    inception:\n"
        "      args: {f: 8}\n"
        "      layers:\n"
        "        - concat: {inputs: [b1, b2, b3]}\n"
        "        - conv: {name: b1, filters: $f, kernel: 1, inputs: $input}\n"
        "        - branch: {name: b2, inputs: $input, f: $f, k: 3}\n"
        "        - branch: {name: b3, inputs: [$input], f: $f/2, k: 5}\n"
        "        - relu: {inputs: concat1}\n"
        "  layers:\n"
        "    - maxpool: {size: 2}\n"
        "    - inception: {name: i3a}\n"
        "    - inception: {f: 6}\n"
        "    - dense: {units: 2, inputs: i3a.b3}\n";
    cnn_config cfg;
    cnn_error e;
    const cnn_layer_spec *l;
    CHECK(parse_text(text, NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%d:%d: %s\n", e.line, e.col, e.msg); return; }
    CHECK_MSG(cfg.model.nlayers == 1 + 2 * 7 + 1, "%zu layers", cfg.model.nlayers);
    /* the maxpool is read by name from inside the block, so it gets the
     * name the engine would give it */
    CHECK(str_eq(cfg.model.layers[0].name, "maxpool1"));
    CHECK(!strcmp(cfg.model.layers[0].opts.context, "layer 1 (maxpool)"));
    l = spec_named(&cfg, "i3a.concat1", NULL);
    CHECK(l && l->ninputs == 3 && !strcmp(l->inputs[0], "i3a.b1")
          && !strcmp(l->inputs[1], "i3a.b2.conv2") && !strcmp(l->inputs[2], "i3a.b3.conv2"));
    CHECK(reads(&cfg, "i3a.b1", "maxpool1", NULL));
    CHECK(reads(&cfg, "i3a.b2.conv1", "maxpool1", NULL));
    CHECK(reads(&cfg, "i3a.b2.conv2", NULL, "i3a.b2.conv1"));
    CHECK(reads(&cfg, "i3a.b3.conv1", "maxpool1", NULL));
    CHECK(reads(&cfg, "i3a.relu1", "i3a.concat1", NULL));
    CHECK(reads(&cfg, "inception1.b1", "i3a.relu1", NULL));
    l = spec_named(&cfg, "i3a.b3.conv2", NULL);
    CHECK(l && opt_is(l, "filters", "4") && opt_is(l, "kernel", "5") && opt_is(l, "pad", "2"));
    l = spec_named(&cfg, "inception1.b3.conv2", NULL);
    CHECK(l && opt_is(l, "filters", "3"));
    l = spec_named(&cfg, "i3a.b2.conv2", NULL);
    CHECK(l && opt_is(l, "kernel", "3") && opt_is(l, "pad", "1"));
    /* a top-level layer may read a use (its output) at any depth */
    l = &cfg.model.layers[cfg.model.nlayers - 1];
    CHECK(l->ninputs == 1 && !strcmp(l->inputs[0], "i3a.b3.conv2"));
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);
}

/* Expanded configs build: the engine takes the names, inputs and options,
 * and its errors about a block's layer point into the block. */
static void test_blocks_build(void)
{
    const char *text =
        "data: {input: {channels: 1, height: 8, width: 8}}\n"
        "model:\n"
        "  defaults: {conv: {kernel: 3, pad: 1}}\n"
        "  blocks:\n"
        "    stage:\n"
        "      args: {filters: ~, convs: 2}\n"
        "      layers:\n"
        "        - convrelu: {repeat: $convs, filters: $filters}\n"
        "        - maxpool: {size: 2}\n"
        "    convrelu:\n"
        "      args: {filters: ~}\n"
        "      layers:\n"
        "        - conv: {filters: $filters}\n"
        "        - relu\n"
        "  layers:\n"
        "    - stage: {filters: 4, convs: 1}\n"
        "    - stage: {filters: 8}\n"
        "    - dense: {units: 3}\n";
    cnn_config cfg;
    cnn_error e;
    CHECK(parse_text(text, NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%d:%d: %s\n", e.line, e.col, e.msg); return; }
    CHECK(cfg.model.nlayers == 9);
    static const char *const names[] = {
        "stage1.convrelu1.0.conv1", "stage1.convrelu1.0.relu1", "stage1.maxpool1",
        "stage2.convrelu1.0.conv1", "stage2.convrelu1.0.relu1", "stage2.convrelu1.1.conv1",
        "stage2.convrelu1.1.relu1", "stage2.maxpool1", NULL};
    for (size_t i = 0; i < 9 && i < cfg.model.nlayers; i++) {
        CHECK(str_eq(cfg.model.layers[i].name, names[i]));
        CHECK(cfg.model.layers[i].inputs == NULL);   /* a chain */
    }
    cnn_net *net = cnn_net_create(&cfg.model, 2, &e);
    CHECK_MSG(net != NULL, "cnn_net_create: %d:%d: %s", e.line, e.col, e.msg);
    if (net) {
        CHECK(net->nlayers == 9 && cnn_net_output(net)->out.c == 3);
        cnn_layer *c = cnn_net_layer(net, "stage2.convrelu1.1.conv1");
        CHECK(c && c->in[0].c == 8 && c->out.c == 8 && c->out.h == 4);
        /* 1->4, 4->8, 8->8 3x3 convs with bias, then 8*2*2 -> 3 */
        CHECK(cnn_net_param_count(net) == 40 + 296 + 584 + 99);
    }
    cnn_net_free(net);
    cnn_config_free(&cfg);

    /* a bad value passed to a block: the engine's message names the
     * expanded layer, at the $arg that carried the value */
    const char *bad[] = {"model.layers.1.stage.filters=0"};
    CHECK(parse_text(text, bad, 1, &cfg, &e) == CNN_OK);
    net = e.status ? NULL : cnn_net_create(&cfg.model, 2, &e);
    CHECK(net == NULL && e.line == 13 && e.col == 27);
    CHECK_CONTAINS(e.msg, "layer 'stage2.convrelu1.0.conv1' (conv): filters");
    cnn_net_free(net);
    cnn_config_free(&cfg);
}

static void test_resnet18(void)
{
    cnn_config cfg;
    cnn_error e;
    CHECK(cnn_config_load(fixture("resnet18-blocks.yaml"), NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s:%d:%d: %s\n", e.file, e.line, e.col, e.msg); return; }
    /* stem (4), 8 basic blocks of 7 layers, avgpool, fc */
    CHECK_MSG(cfg.model.nlayers == 4 + 8 * 7 + 2, "%zu layers", cfg.model.nlayers);
    size_t convs = 0, adds = 0;
    for (size_t i = 0; i < cfg.model.nlayers; i++) {
        const cnn_layer_spec *l = &cfg.model.layers[i];
        CHECK_MSG(l->name != NULL, "layer %zu has no name", i);
        if (!strcmp(l->kind, "conv")) {
            convs++;
            CHECK(opt_is(l, "bias", "false"));
        }
        adds += !strcmp(l->kind, "add");
    }
    CHECK(convs == 1 + 16 && adds == 8);
    CHECK(reads(&cfg, "layer1.0.conv1", NULL, "maxpool"));
    CHECK(reads(&cfg, "layer1.0.add1", "layer1.0.bn2", "maxpool"));
    CHECK(reads(&cfg, "layer2.0.conv1", NULL, "layer1.1.relu2"));
    CHECK(reads(&cfg, "layer2.0.add1", "layer2.0.bn2", "layer1.1.relu2"));
    CHECK(reads(&cfg, "layer4.1.add1", "layer4.1.bn2", "layer4.0.relu2"));
    CHECK(reads(&cfg, "avgpool", NULL, "layer4.1.relu2"));
    const cnn_layer_spec *l = spec_named(&cfg, "layer3.0.conv1", NULL);
    CHECK(l && opt_is(l, "filters", "256") && opt_is(l, "stride", "2")
          && opt_is(l, "kernel", "3") && opt_is(l, "pad", "1"));
    l = spec_named(&cfg, "layer3.1.conv1", NULL);
    CHECK(l && opt_is(l, "filters", "256") && opt_is(l, "stride", "1"));
    l = spec_named(&cfg, "layer4.1.bn2", NULL);
    CHECK(l && !strcmp(l->kind, "batchnorm") && l->line == 17 && l->col == 11);
    CHECK(spec_named(&cfg, "fc", NULL) == &cfg.model.layers[cfg.model.nlayers - 1]);
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);
}

/* ResNet-50 and GoogLeNet as blocks: short files, the papers' tables. */
static void test_zoo_blocks(void)
{
    cnn_config cfg;
    cnn_error e;
    const cnn_layer_spec *l;
    CHECK(cnn_config_load(fixture("resnet50-blocks.yaml"), NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s:%d:%d: %s\n", e.file, e.line, e.col, e.msg); return; }
    CHECK_MSG(cfg.model.nlayers == 4 + 16 * 10 + 2, "%zu layers", cfg.model.nlayers);
    CHECK(reads(&cfg, "layer1.0.add1", "layer1.0.bn3", "maxpool"));
    CHECK(reads(&cfg, "layer3.0.conv1", NULL, "layer2.3.relu3"));
    l = spec_named(&cfg, "layer3.0.conv2", NULL);
    CHECK(l && opt_is(l, "stride", "2") && opt_is(l, "filters", "256"));
    l = spec_named(&cfg, "layer3.5.conv3", NULL);
    CHECK(l && opt_is(l, "filters", "1024") && opt_is(l, "bias", "false"));
    CHECK(spec_named(&cfg, "layer4.2.relu3", NULL) && !spec_named(&cfg, "layer4.3.relu3", NULL));
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);

    CHECK(cnn_config_load(fixture("googlenet-blocks.yaml"), NULL, 0, &cfg, &e) == CNN_OK);
    if (e.status) { fprintf(stderr, "%s:%d:%d: %s\n", e.file, e.line, e.col, e.msg); return; }
    CHECK_MSG(cfg.model.nlayers == 8 + 9 * 14 + 2 + 3, "%zu layers", cfg.model.nlayers);
    l = spec_named(&cfg, "inception4e.concat1", NULL);
    CHECK(l && l->ninputs == 4 && !strcmp(l->inputs[0], "inception4e.b1.relu")
          && !strcmp(l->inputs[3], "inception4e.b4.relu"));
    CHECK(reads(&cfg, "inception4e.b3a.conv", "inception4d.concat1", NULL));
    CHECK(reads(&cfg, "inception4e.b4a", "inception4d.concat1", NULL));
    CHECK(reads(&cfg, "inception5a.b1.conv", NULL, "pool4"));
    CHECK(reads(&cfg, "inception5a.b2a.conv", "pool4", NULL));
    l = spec_named(&cfg, "inception5b.b3.conv", NULL);
    CHECK(l && opt_is(l, "filters", "128") && opt_is(l, "kernel", "5") && opt_is(l, "pad", "2")
          && opt_is(l, "stride", "1"));
    check_roundtrip(&cfg);
    cnn_config_free(&cfg);
}

/* Blocks b0 .. b{n-1}, each using the next; the last holds a relu. */
static void chain_text(char *buf, size_t size, int n)
{
    size_t w = (size_t)snprintf(buf, size, "data: {input: {channels: 1, height: 8, "
                                "width: 8}}\nmodel:\n  blocks:\n");
    for (int i = 0; i < n && w < size; i++)
        w += (size_t)(i < n - 1
            ? snprintf(buf + w, size - w, "    b%d:\n      layers: [{b%d: {name: a}}]\n",
                       i, i + 1)
            : snprintf(buf + w, size - w, "    b%d:\n      layers: [relu]\n", i));
    if (w < size) snprintf(buf + w, size - w, "  layers: [b0]\n");
}

/* A block definition followed by uses; errors append layers. */
#define BLOCK_HEAD "data:\n" \
                   "  input: {channels: 1, height: 8, width: 8}\n" \
                   "model:\n" \
                   "  blocks:\n" \
                   "    cbr:\n" \
                   "      args: {filters: 8, stride: 1}\n" \
                   "      layers:\n" \
                   "        - conv: {name: conv, filters: $filters*2, kernel: 3, stride: $stride}\n" \
                   "        - batchnorm\n" \
                   "        - add: {inputs: [batchnorm1, $input], project: true}\n"

static void test_block_errors(void)
{
    const char *use = "  layers:\n    - relu\n";   /* lines 11, 12 */

    /* uses */
    char t[2048];
#define WITH(layers) (snprintf(t, sizeof t, "%s%s%s", BLOCK_HEAD, use, layers), t)
    EXPECT(WITH("    - cbr: {filtres: 4}\n"), 13, 13,
           "block 'cbr' has no argument 'filtres'; did you mean 'filters'?");
    EXPECT(WITH("    - cbr: {repaet: 2}\n"), 13, 13,
           "block 'cbr' has no argument 'repaet'; did you mean 'repeat'?");
    EXPECT(WITH("    - cbr: {width: 2}\n"), 13, 13,
           "block 'cbr' has no argument 'width' (its arguments: filters, stride)");
    EXPECT(WITH("    - cbr: {repeat: 2, first: {strid: 2}}\n"), 13, 32,
           "block 'cbr' has no argument 'strid'; did you mean 'stride'?");
    EXPECT(WITH("    - cbr: {first: 2}\n"), 13, 20,
           "layer 2 (cbr): first must be a mapping of block arguments, e.g. "
           "first: {stride: 2}, got \"2\"");
    EXPECT(WITH("    - cbr: {name: b, repeat: 0}\n"), 13, 30,
           "layer 'b' (cbr): repeat must be an integer >= 1, got 0");
    EXPECT(WITH("    - cbr: {repeat: two}\n"), 13, 21,
           "layer 2 (cbr): repeat must be an integer >= 1, got \"two\"");
    EXPECT(WITH("    - cbr: {inputs: [relu1, relu1]}\n"), 13, 21,
           "layer 2 (cbr): the input of a block is one layer name, got a list of 2");
    EXPECT(WITH("    - cbr: {filters: {a: 1}}\n"), 13, 22,
           "layer 2 (cbr): argument 'filters' must be a value or a list of values");
    EXPECT(WITH("    - cbr: {filters: $f}\n"), 13, 22,
           "layer 2 (cbr): $f can only be used inside a block (model.blocks)");
    EXPECT(WITH("    - conv: {filters: $filters, kernel: 1}\n"), 13, 23,
           "layer 2 (conv): $filters can only be used inside a block (model.blocks)");
    EXPECT(WITH("    - relu: {inputs: $input}\n"), 13, 22,
           "layer 2 (relu): $input can only be used inside a block; the network input "
           "is 'input'");
    EXPECT(WITH("    - cbr: {filters: abc}\n"), 13, 22,
           "argument 'filters' of block 'cbr' must be an integer for $filters*2, got \"abc\"");
    EXPECT(WITH("    - cbr: {filters: [1, 2]}\n"), 13, 22,
           "argument 'filters' of block 'cbr' is a list, so $filters*2 cannot be computed");
    EXPECT(WITH("    - cbr: {filters: 9223372036854775807}\n"), 8, 39,
           "$filters*2 is too large (filters is 9223372036854775807)");
    EXPECT_SET(WITH("    - cbr: {}\n"), "model.layers.1.cbr.filters=x",
               "argument 'filters' of block 'cbr' must be an integer for $filters*2, got \"x\" "
               "(--set model.layers.1.cbr.filters=x)");
    EXPECT(WITH("    - cbr: {name: c}\n    - relu: {name: c}\n"), 14, 20,
           "two layers are named 'c' (layers 2 and 3; the first at line 13, column 19)");
    EXPECT(WITH("    - cbrr\n"), 13, 7, "unknown layer kind 'cbrr'; did you mean 'cbr'?");
    EXPECT(WITH("    - transformer\n"), 13, 7,
           "unknown layer kind 'transformer' (known kinds: conv,");
    EXPECT(WITH("    - transformer\n"), 13, 7, "; blocks: cbr)");
    EXPECT(WITH("    - dense: {units: 2, name: cbr1.conv}\n    - cbr\n"), 14, 7,
           "two layers are named 'cbr1.conv' after expanding blocks (the first from "
           "line 13, column 31)");
    EXPECT(WITH("    - cbr: {repeat: 5000}\n"), 13, 7,
           "the model has more than 10000 layers after expanding blocks");
    EXPECT(WITH("    - cbr: {name: a_very_long_name_for_a_block_use_that_goes_on_and_on_x}\n"),
           9, 11, "the layer name 'a_very_long_name_for_a_block_use_that_goes_on_and_on_x."
           "batchnorm1' (from block 'cbr') is longer than 63 characters; use shorter "
           "names");
#undef WITH

    /* block definitions */
#define DEF(body) "data: {input: {channels: 1, height: 8, width: 8}}\nmodel:\n  blocks:\n" \
    body "  layers:\n    - x\n"
    EXPECT(DEF("    conv:\n      layers: [relu]\n"), 4, 5,
           "block name 'conv' is a layer kind; give the block another name");
    EXPECT(DEF("    a.b:\n      layers: [relu]\n"), 4, 5,
           "a block name has 1 to 40 letters, digits, '_' or '-', got \"a.b\"");
    EXPECT(DEF("    x: [relu]\n"), 4, 8,
           "model.blocks.x must be a mapping with args and layers, got a list");
    EXPECT(DEF("    x:\n      layer: [relu]\n"), 5, 7,
           "unknown key 'layer' in model.blocks.x; did you mean 'layers'?");
    EXPECT(DEF("    x:\n      args: {f: 1}\n"), 4, 5,
           "model.blocks.x.layers is required (the block's layers, e.g. "
           "'- conv: {filters: $filters, kernel: 3}')");
    EXPECT(DEF("    x:\n      layers: []\n"), 5, 15,
           "model.blocks.x.layers must list at least one layer");
    EXPECT(DEF("    x:\n      args: [f]\n      layers: [relu]\n"), 5, 13,
           "model.blocks.x.args must be a mapping of argument names to defaults, got a list");
    EXPECT(DEF("    x:\n      args: {repeat: 1}\n      layers: [relu]\n"), 5, 14,
           "model.blocks.x.args: 'repeat' is reserved (name, repeat, inputs, first and input "
           "cannot be block arguments)");
    EXPECT(DEF("    x:\n      args: {2f: 1}\n      layers: [relu]\n"), 5, 14,
           "model.blocks.x.args: an argument name has letters, digits and '_' and does not "
           "start with a digit, got \"2f\"");
    EXPECT(DEF("    x:\n      args: {f: {a: 1}}\n      layers: [relu]\n"), 5, 17,
           "model.blocks.x.args.f must be a value or a list of values");
    EXPECT(DEF("    x:\n      args: {f: 1, g: $f}\n      layers: [relu]\n"), 5, 23,
           "model.blocks.x.args.g: a default cannot refer to an argument ($f)");
    EXPECT(DEF("    x:\n      layers:\n        - relu\n        -\n"), 7, 10,
           "layer 2 of block 'x' is empty; write a kind");
    EXPECT(DEF("    x:\n      layers: [cnv]\n"), 5, 16,
           "unknown layer kind 'cnv'; did you mean 'conv'?");
    EXPECT(DEF("    x:\n      args: {filters: 1}\n      layers:\n"
               "        - conv: {filters: $filtres, kernel: 1}\n"), 7, 27,
           "block 'x' has no argument '$filtres'; did you mean '$filters'?");
    EXPECT(DEF("    x:\n      args: {filters: 1}\n      layers:\n"
               "        - conv: {filters: 1, kernel: [1, $k]}\n"), 7, 42,
           "block 'x' has no argument '$k' (its arguments: $filters)");
    EXPECT(DEF("    x:\n      layers:\n        - conv: {filters: $filters+1, kernel: 1}\n"),
           6, 27, "block 'x', layer 1 (conv): '$filters+1' is not a block argument "
           "reference; write $name, $name*N or $name/N (N a positive integer)");
    EXPECT(DEF("    x:\n      args: {f: 2}\n      layers:\n        - conv: {filters: $f/0}\n"),
           7, 27, "'$f/0' is not a block argument reference");
    EXPECT(DEF("    x:\n      layers:\n        - dropout: {rate: $input}\n"), 6, 27,
           "block 'x', layer 1 (dropout): $input names the block's input; it can only be "
           "used in inputs");
    EXPECT(DEF("    x:\n      args: {f: 1}\n      layers:\n        - relu: {inputs: $f}\n"),
           7, 26, "block 'x', layer 1 (relu): inputs name layers; '$f' is not one (the "
           "block's input is $input)");
    EXPECT(DEF("    x:\n      layers:\n        - relu: {name: r}\n"
               "        - add: {inputs: [rr, $input]}\n"), 7, 26,
           "block 'x', layer 2 (add): 'rr' is not a layer of block 'x'; did you mean 'r'?");
    EXPECT(DEF("    x:\n      layers:\n        - relu: {inputs: input}\n"), 6, 26,
           "block 'x', layer 1 (relu): 'input' is not a layer of block 'x'; did you mean "
           "'$input'?");
    EXPECT(DEF("    x:\n      layers:\n        - relu: {inputs: zzzzzz}\n"), 6, 26,
           "block 'x', layer 1 (relu): 'zzzzzz' is not a layer of block 'x' (its layers "
           "read each other by their names in the block, and the block's input as $input)");
    EXPECT(DEF("    x:\n      layers:\n        - relu: {name: a}\n        - relu: {name: a}\n"),
           7, 24, "block 'x': two layers are named 'a' (layers 1 and 2; the first at line 6, "
           "column 24)");
    EXPECT(DEF("    x:\n      layers:\n        - relu: {name: relu1}\n        - relu\n"
               "        - relu: {name: relu1}\n"), 8, 24,
           "block 'x': two layers are named 'relu1' (layers 1 and 3;");

    /* nesting */
    EXPECT(DEF("    x:\n      layers: [relu, x]\n"), 5, 22, "block 'x' uses itself (x -> x)");
    EXPECT(DEF("    x:\n      layers: [y]\n    y:\n      layers: [relu, z]\n"
               "    z:\n      layers: [{x: {}}]\n"), 9, 17,
           "block 'x' uses itself (x -> y -> z -> x)");
    {
        char deep[4096];
        chain_text(deep, sizeof deep, 17);
        EXPECT(deep, 35, 17, "blocks nest more than 16 levels deep (b0 -> b1 -> b2 -> b3 -> "
               "b4 -> b5 -> b6 -> b7 -> b8 -> b9 -> b10 -> b11 -> b12 -> b13 -> b14 -> b15 -> "
               "b16)");
        chain_text(deep, sizeof deep, 16);   /* 16 levels are fine */
        cnn_config cfg;
        cnn_error e;
        CHECK(parse_text(deep, NULL, 0, &cfg, &e) == CNN_OK);
        CHECK(cfg.model.nlayers == 1
              && str_eq(cfg.model.layers[0].name, "b01.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.relu1"));
        if (!e.status) cnn_config_free(&cfg);
    }

    /* arguments at the use */
    EXPECT(DEF("    x:\n      args: {f: ~}\n      layers:\n        - dense: {units: $f}\n"),
           9, 7, "layer 1 (x): block 'x' needs argument 'f' (it has no default)");
    EXPECT("data: {input: {channels: 1, height: 8, width: 8}}\nmodel:\n  blocks:\n"
           "    x:\n      args: {f: ~}\n      layers:\n        - dense: {units: $f}\n"
           "  layers:\n    - x: {repeat: 2, first: {f: 2}}\n", 9, 7,
           "layer 1 (x): block 'x' needs argument 'f' (it has no default) for every "
           "repetition, not only in first:");
    EXPECT(DEF("    x:\n      args: {k: [1, 3]}\n      layers:\n"
               "        - conv: {filters: 1, kernel: [$k]}\n"), 5, 17,
           "argument 'k' of block 'x' is a list, so $k cannot be an item of a list");

    /* defaults */
#define DEFAULTS(body) "data: {input: {channels: 1, height: 8, width: 8}}\nmodel:\n" \
    "  blocks:\n    blk:\n      layers: [relu]\n" body "  layers: [relu]\n"
    EXPECT(DEFAULTS("  defaults: [conv]\n"), 6, 13,
           "model.defaults must be a mapping of layer kinds to options, e.g. defaults: "
           "{conv: {bias: false}}, got a list");
    EXPECT(DEFAULTS("  defaults:\n    cnv: {bias: false}\n"), 7, 5,
           "model.defaults: unknown layer kind 'cnv'; did you mean 'conv'?");
    EXPECT(DEFAULTS("  defaults:\n    blk: {x: 1}\n"), 7, 5,
           "model.defaults: 'blk' is a block, not a layer kind (a block's defaults are its "
           "args)");
    EXPECT(DEFAULTS("  defaults:\n    conv: false\n"), 7, 11,
           "model.defaults.conv must be a mapping of options, got \"false\"");
    EXPECT(DEFAULTS("  defaults:\n    conv: {name: c}\n"), 7, 12,
           "model.defaults.conv: 'name' cannot have a default (defaults are for layer "
           "options)");
    EXPECT(DEFAULTS("  defaults:\n    conv: {kernel: {h: 1}}\n"), 7, 20,
           "model.defaults.conv: option 'kernel' is a mapping; layer options are values or "
           "lists of values");
    EXPECT(DEFAULTS("  defaults:\n    conv: {filters: $f}\n"), 7, 21,
           "model.defaults.conv: $f can only be used inside a block (model.blocks)");
#undef DEFAULTS
#undef DEF
}

int main(void)
{
    test_lenet();
    test_defaults();
    test_roundtrip();
    test_sets();
    test_errors();
    test_train_keys();
    test_files();
    test_blocks();
    test_block_branches();
    test_blocks_build();
    test_resnet18();
    test_zoo_blocks();
    test_block_errors();
    return test_done();
}
