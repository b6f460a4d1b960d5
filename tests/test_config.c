/*
 * The YAML front end: a LeNet config parses to the right specs and defaults,
 * the resolved text reads back to the same config, --set overrides edit it,
 * and every kind of mistake gives its exact message at the right line and
 * column (or names the --set argument).
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
    return s->epochs == t->epochs && s->batch == t->batch
        && !memcmp(&s->optim, &t->optim, sizeof s->optim) && s->schedule == t->schedule
        && s->step_epochs == t->step_epochs && s->gamma == t->gamma
        && s->warmup_epochs == t->warmup_epochs && s->min_lr == t->min_lr;
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
    CHECK(cfg.train.schedule == CNN_SCHED_COSINE);
    CHECK(cfg.train.warmup_epochs == 0 && cfg.train.min_lr == 0.0f);

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
    CHECK(cfg.train.schedule == CNN_SCHED_CONSTANT);
    CHECK(cfg.train.step_epochs == 10);
    CHECK_NEAR(cfg.train.gamma, 0.1, 1e-7);
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
    CHECK(cfg.train.schedule == CNN_SCHED_STEP && cfg.train.step_epochs == 10);
    CHECK_NEAR(cfg.train.gamma, 0.5, 1e-7);
    cnn_config_free(&cfg);

    const char *sgd = MINIMAL "train:\n  optimizer: {lr: .5, momentum: 0, nesterov: no}\n"
                      "  schedule: {type: cosine, warmup_epochs: 2, min_lr: 1e-4}\n";
    CHECK(parse_text(sgd, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK_NEAR(cfg.train.optim.lr, 0.5, 1e-9);
    CHECK(cfg.train.optim.momentum == 0.0f && cfg.train.optim.nesterov == 0);
    CHECK(cfg.train.warmup_epochs == 2);
    CHECK_NEAR(cfg.train.min_lr, 1e-4, 1e-10);
    cnn_config_free(&cfg);

    /* normalize takes one number for every channel */
    const char *rgb = "data:\n  input: {channels: 3, height: 4, width: 4}\n"
                      "  normalize: {mean: 0.5, std: [0.1, 0.2, 0.3]}\n"
                      "model: {layers: [flatten]}\n";
    CHECK(parse_text(rgb, NULL, 0, &cfg, &e) == CNN_OK);
    CHECK(cfg.data.mean[0] == 0.5f && cfg.data.mean[2] == 0.5f);
    CHECK_NEAR(cfg.data.std[2], 0.3, 1e-7);
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
    CHECK(cfg.train.schedule == CNN_SCHED_COSINE);
    CHECK_NEAR(cfg.train.min_lr, 0.001, 1e-9);
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
           "model, train), got a list");

    /* unknown keys */
    EXPECT(MINIMAL "traim:\n  epochs: 3\n", 6, 1,
           "unknown top-level key 'traim'; did you mean 'train'?");
    EXPECT(MINIMAL "trian:\n  epochs: 3\n", 6, 1,   /* a swap counts as one edit */
           "unknown top-level key 'trian'; did you mean 'train'?");
    EXPECT(MINIMAL "train: {optimizer: {tpye: adam}}\n", 6, 21,
           "unknown key 'tpye' in train.optimizer; did you mean 'type'?");
    EXPECT(MINIMAL "optimizer: {lr: 1}\n", 6, 1, "unknown top-level key 'optimizer' "
           "(allowed: name, seed, data, model, train)");
    EXPECT(MINIMAL "train:\n  epoch: 3\n", 7, 3,
           "unknown key 'epoch' in train; did you mean 'epochs'?");
    EXPECT(MINIMAL "train:\n  speed: 3\n", 7, 3,
           "unknown key 'speed' in train (allowed: epochs, batch, optimizer, schedule)");
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
           "model.loss must be one of softmax_cross_entropy, got \"mse\"");

    /* data */
    EXPECT("data:\n  input: {channels: 3, height: 8, width: 8}\n"
           "  normalize: {mean: [0.5, 0.5], std: [1, 1, 1]}\nmodel: {layers: [relu]}\n",
           3, 21, "data.normalize.mean must have 3 values, one per channel "
           "(data.input.channels is 3), got 2");
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
           "train.schedule.gamma is only valid for type step, not cosine");
    EXPECT(MINIMAL "train:\n  optimizer: {type: adm}\n", 7, 21,
           "train.optimizer.type must be one of sgd, adam, adamw, got \"adm\"; "
           "did you mean 'adam'?");
    EXPECT(MINIMAL "train:\n  schedule: linear\n", 7, 13,
           "train.schedule.type must be one of constant, step, cosine, got \"linear\"");
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
    CHECK_CONTAINS(e.msg, "cannot open '");
    CHECK_CONTAINS(e.msg, "no-such-config.yaml': No such file or directory");
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

int main(void)
{
    test_lenet();
    test_defaults();
    test_roundtrip();
    test_sets();
    test_errors();
    test_files();
    return test_done();
}
