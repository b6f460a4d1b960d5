/*
 * Fuzz target: the YAML front end. Text goes through cnn_config_parse (keys,
 * types, ranges, blocks, overrides) and, when it is a valid config, through
 * cnn_net_plan (names, topological order, shape inference, the memory
 * plan's sizes) with the config's own batch size, as `cnn check` does.
 *
 * Lines at the very start of the input of the form "#!set KEY=VALUE" are
 * also passed as --set overrides (to YAML they are comments), so the
 * override code is explored too.
 *
 * Three oracles beyond the sanitizers:
 * - the plan's sizes must not have wrapped around: every output shape,
 *   parameter and arena total is recomputed here in 128 bits and compared;
 *   a plan that accepts sizes that overflow size_t would make cnn_net_create
 *   allocate too little and the kernels write past the end;
 * - a network whose plan is tiny (FUZZ_MAX_FLOATS, FUZZ_MAX_MACS) is really
 *   built with cnn_net_create and run forward, loss and backward on two
 *   samples, so shape inference is checked against what the kernels touch.
 *   Nothing large is ever allocated;
 * - the resolved text (cfg->resolved, which checkpoints embed and parse
 *   again on loading) must parse, and resolve to the same text.
 */
#include "fuzz.h"

#include <string.h>

#include "config.h"
#include "net.h"
#include "parallel.h"

#define FUZZ_MAX_SETS 8
#define FUZZ_MAX_FLOATS ((size_t)1 << 20)   /* 4 MiB of arenas */
#define FUZZ_MAX_MACS ((size_t)4 << 20)     /* per sample, forward */
#define FUZZ_RUN_BATCH 2

typedef unsigned __int128 u128;

static void fail(const char *what, const cnn_net *net, size_t t)
{
    fprintf(stderr, "fuzz_config: %s (layer %zu '%s')\n", what, t,
            t < net->nlayers ? net->layers[t].name : "-");
    abort();
}

static u128 round16(u128 n)
{
    return (n + 15) / 16 * 16;
}

/* Recompute the plan's sizes without overflow; abort if net.c's differ.
 * Returns the total floats the arenas would take (saturated). */
static u128 check_plan(const cnn_net *net)
{
    u128 nparam = 0, nbuf = 0, nact = 0, work = 0, macs = 0;
    u128 batch = net->max_batch;
    for (size_t t = 0; t < net->nlayers; t++) {
        const cnn_layer *l = &net->layers[t];
        u128 out = (u128)l->out.c * l->out.h * l->out.w;
        if (out != cnn_shape_size(l->out)) fail("output size overflows size_t", net, t);
        for (size_t j = 0; j < l->nparams; j++) {
            const cnn_param *p = &l->params[j];
            u128 size = 1;
            for (size_t d = 0; d < p->ndim; d++) size *= p->dims[d];
            if (p->ndim > 4 || size != p->size)
                fail("parameter size is not the product of its dims", net, t);
            if (p->trainable) nparam += round16(size);
            else nbuf += round16(size);
        }
        nact += 2 * round16(batch * out) + round16(batch * l->saved_per_sample);
        if (l->work_size > work) work = l->work_size;
        macs += l->macs;
    }
    if (nparam != net->nparam_floats || nbuf != net->nbuffer_floats ||
        nact != net->nact_floats || work != net->work_floats)
        fail("the memory plan's totals overflow size_t", net, net->nlayers);
    u128 in = round16(batch * net->input.c * net->input.h * net->input.w);
    u128 total = 2 * nparam + nbuf + nact + work + 2 * in;
    return macs > FUZZ_MAX_MACS ? (u128)-1 : total;
}

/* Build the network for real and run one training step on two samples. */
static void run_small(const cnn_config *cfg)
{
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&cfg->model, FUZZ_RUN_BATCH, &e);
    if (!net) return;   /* the plan said yes, so only NOMEM may say no */
    /* a pass takes whole groups of batch_div samples (2 per pair layer) */
    const size_t div = cnn_net_output(net)->batch_div;
    if (div > FUZZ_RUN_BATCH) {
        cnn_net_free(net);
        return;
    }
    uint64_t rng = 42;
    cnn_net_init(net, &rng);
    size_t n = FUZZ_RUN_BATCH * cnn_shape_size(net->input);
    for (size_t i = 0; i < n; i++) net->x[i] = (float)((i * 7919) % 17) / 8.0f - 1.0f;
    int labels[FUZZ_RUN_BATCH] = {0, 0};
    cnn_net_forward(net, FUZZ_RUN_BATCH, 1);
    cnn_net_loss(net, labels, NULL);
    cnn_net_backward(net);
    cnn_net_forward(net, div, 0);   /* the smallest batch: one output sample */
    cnn_net_free(net);
}

/* A checkpoint embeds cfg->resolved and parses it again when it is
 * loaded: that text must parse, to the same text. */
static void check_resolved(const cnn_config *cfg)
{
    cnn_config again;
    cnn_error e = {0};
    const char *text = cfg->resolved ? cfg->resolved : "";
    if (cnn_config_parse(text, strlen(text), "resolved.yaml", NULL, 0, &again, &e)) {
        fprintf(stderr, "fuzz_config: the resolved config does not parse: "
                "%s:%d:%d: %s\n--- resolved:\n%s\n---\n", e.file, e.line, e.col,
                e.msg, text);
        abort();
    }
    if (strcmp(text, again.resolved ? again.resolved : "")) {
        fprintf(stderr, "fuzz_config: resolving is not idempotent\n--- first:\n%s"
                "\n--- second:\n%s\n---\n", text, again.resolved);
        abort();
    }
    cnn_config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        cnn_set_threads(1);
        once = 1;
    }
    /* [size + 1]: a copy in which the override lines are cut out; the
     * parser itself gets the input as it is (not NUL-terminated, so ASan
     * sees any read past its end). */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    const char *sets[FUZZ_MAX_SETS];
    size_t nsets = 0;
    char *p = text;
    while (nsets < FUZZ_MAX_SETS && !strncmp(p, "#!set ", 6)) {
        char *nl = strchr(p, '\n');
        if (!nl) break;
        sets[nsets++] = p + 6;
        *nl = 0;
        p = nl + 1;
    }

    cnn_config cfg;
    cnn_error e = {0};
    if (cnn_config_parse((const char *)data, size, "fuzz.yaml", sets, nsets, &cfg,
                         &e) == CNN_OK) {
        cnn_net *net = cnn_net_plan(&cfg.model, cfg.train.batch, &e);
        if (net) {
            u128 total = check_plan(net);
            size_t (*rf)[2] = calloc(net->nlayers, sizeof *rf);     /* [nlayers] */
            size_t (*jump)[2] = calloc(net->nlayers, sizeof *jump); /* [nlayers] */
            if (rf && jump) cnn_net_receptive_fields(net, rf, jump);
            free(rf);
            free(jump);
            (void)cnn_net_param_count(net);
            (void)cnn_net_activation_bytes(net);
            cnn_net_free(net);
            if (total <= FUZZ_MAX_FLOATS) run_small(&cfg);
        }
        check_resolved(&cfg);
        cnn_config_free(&cfg);
    }
    free(text);
    return 0;
}
