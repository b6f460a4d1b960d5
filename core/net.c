/*
 * The layer graph (see net.h): name resolution, topological order, shape
 * inference, the one-time memory plan, and the forward and backward passes.
 *
 * Node ids: 0 is the network input, 1..n are the layers in the order the
 * spec lists them. net->layers holds them in topological order.
 */
#include "net.h"

#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loss.h"
#include "rng.h"

#define ALIGN_FLOATS 16   /* 64-byte alignment for every buffer in an arena */

static size_t round_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* The most floats a memory plan may add up to (all arenas), so that byte
 * counts (x sizeof(float)) and the sums of arenas cannot wrap around. */
#define PLAN_MAX_FLOATS (SIZE_MAX / 16)

/* *total += count * round_up(n * per), in floats. Returns 1 (leaving
 * *total as it was) when that overflows a plan's limit. */
static int plan_add(size_t *total, size_t count, size_t n, size_t per)
{
    if (per && n > PLAN_MAX_FLOATS / per) return 1;
    size_t floats = round_up(n * per);
    if (count && floats > PLAN_MAX_FLOATS / count) return 1;
    if (count * floats > PLAN_MAX_FLOATS - *total) return 1;
    *total += count * floats;
    return 0;
}

/* Two parameter arenas (values and gradients), buffers, activations,
 * scratch and the input batch and its gradient; saturates at SIZE_MAX. */
static size_t plan_total(size_t nparam, size_t nbuf, size_t nact, size_t nwork,
                         size_t nin)
{
    size_t parts[7] = {nparam, nparam, nbuf, nact, nwork, nin, nin}, total = 0;
    for (size_t i = 0; i < 7; i++) {
        if (parts[i] > SIZE_MAX - total) return SIZE_MAX;
        total += parts[i];
    }
    return total;
}

static float *arena_alloc(size_t nfloats, const char *what, cnn_error *e)
{
    size_t bytes = round_up(nfloats ? nfloats : 1) * sizeof(float);
    void *p = NULL;
    if (nfloats > ((size_t)1 << 40) || posix_memalign(&p, 64, bytes)) {
        char size[32];
        cnn_format_bytes(bytes, size, sizeof size);
        cnn_error_set(e, CNN_ERR_NOMEM, "out of memory allocating %s (%s)", what, size);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void cnn_format_bytes(size_t bytes, char *buf, size_t n)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (!u) snprintf(buf, n, "%zu bytes", bytes);
    else snprintf(buf, n, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
}

/* Bytes of memory this machine has (0: unknown). */
static size_t physical_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return 0;
    return (size_t)pages > SIZE_MAX / (size_t)size ? SIZE_MAX : (size_t)pages * (size_t)size;
}

/* The last number generate_name gave each kind (up to NAME_COUNTERS
 * kinds; more only search from 1 again). */
#define NAME_COUNTERS 64
typedef struct name_counter {
    const char *kind;
    unsigned last;
} name_counter;

/* Generated name for an unnamed layer: kind plus the first free number.
 * Names are taken in order and never given back, so the search for a kind
 * goes on from the last number it gave: from 1 each time, n unnamed layers
 * of one kind took O(n^3) comparisons (half an hour for 10,000 layers). */
static void generate_name(char *out, const char *kind, const cnn_layer_spec *specs,
                          size_t n, char names[][CNN_NAME_MAX], size_t named,
                          name_counter *counters)
{
    name_counter *c = NULL;
    for (size_t i = 0; i < NAME_COUNTERS && !c; i++)
        if (!counters[i].kind || !strcmp(counters[i].kind, kind)) c = &counters[i];
    for (unsigned k = c && c->kind ? c->last + 1 : 1;; k++) {
        snprintf(out, CNN_NAME_MAX, "%s%u", kind, k);
        int taken = !strcmp(out, "input");
        for (size_t i = 0; i < n && !taken; i++)
            if (specs[i].name && !strcmp(specs[i].name, out)) taken = 1;
        for (size_t i = 0; i < named && !taken; i++)
            if (!strcmp(names[i], out)) taken = 1;
        if (!taken) {
            if (c) *c = (name_counter){kind, k};
            return;
        }
    }
}

static cnn_status spec_error(cnn_error *e, cnn_status s, const cnn_layer_spec *sp)
{
    if (e && !e->line && sp->line) { e->line = sp->line; e->col = sp->col; }
    return s;
}

/* Resolve names to node ids, put layers in topological order, check that
 * every layer's output is used. ids[i][k]: node id of input k of spec i. */
static cnn_status resolve(const cnn_model_spec *spec, char names[][CNN_NAME_MAX],
                          size_t (*ids)[CNN_MAX_INPUTS], size_t *nin,
                          size_t *order, cnn_error *e)
{
    size_t n = spec->nlayers;
    name_counter counters[NAME_COUNTERS] = {{0}};
    for (size_t i = 0; i < n; i++) {
        const cnn_layer_spec *sp = &spec->layers[i];
        if (sp->name) {
            if (strlen(sp->name) >= CNN_NAME_MAX || !sp->name[0])
                return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                    "layer name '%s' must have 1 to %d characters", sp->name,
                    CNN_NAME_MAX - 1), sp);
            if (!strcmp(sp->name, "input"))
                return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                    "layer name 'input' is reserved for the network input"), sp);
            snprintf(names[i], CNN_NAME_MAX, "%s", sp->name);
        } else {
            generate_name(names[i], sp->kind, spec->layers, n, names, i, counters);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                    "two layers are named '%s' (layers %zu and %zu)", names[i],
                    j + 1, i + 1), sp);
    }
    for (size_t i = 0; i < n; i++) {
        const cnn_layer_spec *sp = &spec->layers[i];
        if (!sp->inputs || !sp->ninputs) {
            nin[i] = 1;
            ids[i][0] = i;   /* the previous node: input for the first layer */
            continue;
        }
        if (sp->ninputs > CNN_MAX_INPUTS)
            return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                "layer '%s' has %zu inputs; at most %d are allowed", names[i],
                sp->ninputs, CNN_MAX_INPUTS), sp);
        nin[i] = sp->ninputs;
        for (size_t k = 0; k < sp->ninputs; k++) {
            const char *want = sp->inputs[k];
            size_t id = (size_t)-1;
            if (!strcmp(want, "input")) id = 0;
            for (size_t j = 0; j < n && id == (size_t)-1; j++)
                if (!strcmp(names[j], want)) id = j + 1;
            if (id == (size_t)-1) {
                const char *cands[512];
                size_t nc = 0;
                cands[nc++] = "input";
                for (size_t j = 0; j < n && nc < 512; j++) cands[nc++] = names[j];
                const char *near = cnn_closest(want, cands, nc);
                return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                    "layer '%s' names an input '%s' that does not exist%s%s%s",
                    names[i], want, near ? "; did you mean '" : "",
                    near ? near : "", near ? "'?" : ""), sp);
            }
            if (id == i + 1)
                return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                    "layer '%s' names itself as its input", names[i]), sp);
            ids[i][k] = id;
        }
    }
    /* Kahn's algorithm over spec order, so a chain keeps its order. */
    unsigned char *used = calloc(n + 1, 1);
    unsigned char *done = calloc(n + 1, 1);
    cnn_status st = CNN_OK;
    if (!used || !done) {
        st = cnn_error_set(e, CNN_ERR_NOMEM, "out of memory ordering the graph");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nin[i]; k++) used[ids[i][k]] = 1;
    done[0] = 1;
    for (size_t placed = 0; placed < n;) {
        size_t pick = 0;
        for (size_t i = 0; i < n && !pick; i++) {
            if (done[i + 1]) continue;
            int ready = 1;
            for (size_t k = 0; k < nin[i]; k++)
                if (!done[ids[i][k]]) ready = 0;
            if (ready) pick = i + 1;
        }
        if (!pick) {
            for (size_t i = 0; i < n; i++)
                if (!done[i + 1]) {
                    st = spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                        "the layers form a cycle through layer '%s'", names[i]),
                        &spec->layers[i]);
                    goto out;
                }
        }
        done[pick] = 1;
        order[placed++] = pick - 1;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (!used[i + 1]) {
            st = spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG,
                "the output of layer '%s' is not used by any later layer (only "
                "the last layer may be the network output)", names[i]),
                &spec->layers[i]);
            goto out;
        }
out:
    free(used);
    free(done);
    return st;
}

/* After a failed parse: is some unused key a near miss of a known one?
 * Then fill e with the finish error for it and return 1. */
static int misspelt_key(cnn_opts *o, cnn_error *e)
{
    for (size_t i = 0; i < o->n; i++)
        if (!o->items[i].used && cnn_closest(o->items[i].key, o->known, o->nknown))
            return cnn_opts_finish(o, e) != CNN_OK;
    return 0;
}

static const cnn_layer_kind *find_kind(const cnn_layer_spec *sp, cnn_error *e)
{
    const cnn_layer_kind *kind = cnn_layer_kind_find(sp->kind);
    if (kind) return kind;
    const char *cands[64];
    size_t nc = 0;
    for (size_t k = 0; k < cnn_layer_kind_count && nc < 64; k++)
        cands[nc++] = cnn_layer_kinds[k]->name;
    const char *near = cnn_closest(sp->kind, cands, nc);
    cnn_error_set(e, CNN_ERR_CONFIG, "unknown layer kind '%s'%s%s%s", sp->kind,
                  near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    spec_error(e, CNN_ERR_CONFIG, sp);
    return NULL;
}

/* A batch of n samples divided by div, as messages write it: "N", "N/2". */
static void batch_text(size_t div, char *buf, size_t n)
{
    if (div == 1) snprintf(buf, n, "N");
    else snprintf(buf, n, "N/%zu", div);
}

/* Set l->batch_div to its inputs' (the network input's is 1), which must
 * agree: a layer cannot combine sample i of one input with sample i of
 * another that holds half as many samples (after a pair layer). */
static cnn_status check_batch_div(const cnn_net *net, cnn_layer *l, cnn_error *e)
{
    size_t div[CNN_MAX_INPUTS];
    for (size_t k = 0; k < l->ninputs; k++) {
        size_t id = l->input_ids[k];
        div[k] = id ? net->layers[id - 1].batch_div : 1;
        if (div[k] == div[0]) continue;
        char a[32], b[32];
        batch_text(div[0], a, sizeof a);
        batch_text(div[k], b, sizeof b);
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (%s): input '%s' has "
            "batch %s but input '%s' has batch %s (each pair layer halves the "
            "batch); the inputs of a layer must have the same number of samples",
            l->name, l->kind->name, l->input_names[0], a, l->input_names[k], b);
    }
    l->batch_div = l->ninputs ? div[0] : 1;
    return CNN_OK;
}

/* Set up layer l: name, inputs (node ids: 0 the input, t+1 layer t), options
 * and shapes. Errors carry the spec's position. */
static cnn_status setup_layer(cnn_net *net, cnn_layer *l, const cnn_layer_kind *kind,
                              const char *name, cnn_opts opts, size_t nin,
                              const size_t *inputs, const cnn_layer_spec *sp,
                              cnn_error *e)
{
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->max_batch = net->max_batch;
    l->ninputs = nin;
    if (nin < kind->min_inputs || nin > kind->max_inputs) {
        cnn_error_set(e, CNN_ERR_CONFIG, "layer '%s' (%s) takes %zu to %zu inputs, "
                      "got %zu", l->name, kind->name, kind->min_inputs,
                      kind->max_inputs, nin);
        return spec_error(e, CNN_ERR_CONFIG, sp);
    }
    for (size_t k = 0; k < nin; k++) {
        size_t id = inputs[k];
        l->input_ids[k] = id;
        l->in[k] = id ? net->layers[id - 1].out : net->input;
        l->input_names[k] = id ? net->layers[id - 1].name : "input";
    }
    net->nlayers = (size_t)(l - net->layers) + 1;   /* owned from here on */
    if (check_batch_div(net, l, e)) return spec_error(e, CNN_ERR_SHAPE, sp);
    l->settings = cnn_alloc(1, kind->settings_size, "layer settings", e);
    if (!l->settings) return CNN_ERR_NOMEM;
    char context[CNN_NAME_MAX + 48];
    snprintf(context, sizeof context, "layer '%s' (%s)", l->name, kind->name);
    opts.context = context;
    if (kind->parse(l, &opts, e)) {
        /* A misspelt key ("kernal") is the likelier cause of a missing or
         * wrong option: report it first when there is one. */
        cnn_error typo = {0};
        if (e && misspelt_key(&opts, &typo)) *e = typo;
        return spec_error(e, e ? e->status : CNN_ERR_CONFIG, sp);
    }
    if (cnn_opts_finish(&opts, e) || kind->infer(l, e))
        return spec_error(e, e ? e->status : CNN_ERR_CONFIG, sp);
    if (!cnn_shape_size(l->out)) {
        cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (%s) has an empty output",
                      l->name, kind->name);
        return spec_error(e, CNN_ERR_SHAPE, sp);
    }
    if (l->halves_batch) l->batch_div *= 2;
    return CNN_OK;
}

/* Does this spec ask for a projection shortcut (`project: true`)? */
static int wants_projection(const cnn_layer_spec *sp)
{
    int on = 0;
    for (size_t k = 0; k < sp->opts.n; k++)
        if (!strcmp(sp->opts.items[k].key, "project") && sp->opts.items[k].text &&
            !cnn_parse_bool(sp->opts.items[k].text, &on))
            return on;
    return 0;
}

/* For a layer with `project: true`: every input whose shape differs from
 * the first input's passes through a new 1x1 convolution (no bias, the
 * stride that maps its size onto the first input's) and a batch norm,
 * named <layer>.proj and <layer>.proj_bn (ResNet's option B shortcut, He
 * et al. 2016). inputs[] is redirected to the projections. */
static cnn_status project_inputs(cnn_net *net, size_t *t, const char *name,
                                 size_t nin, size_t *inputs,
                                 const cnn_layer_spec *sp, cnn_error *e)
{
    cnn_shape to = inputs[0] ? net->layers[inputs[0] - 1].out : net->input;
    for (size_t k = 1; k < nin; k++) {
        cnn_shape from = inputs[k] ? net->layers[inputs[k] - 1].out : net->input;
        if (from.c == to.c && from.h == to.h && from.w == to.w) continue;
        size_t sh = (from.h + to.h - 1) / to.h, sw = (from.w + to.w - 1) / to.w;
        if (!sh || !sw || (from.h - 1) / sh + 1 != to.h || (from.w - 1) / sw + 1 != to.w)
            return spec_error(e, cnn_error_set(e, CNN_ERR_SHAPE,
                "layer '%s' (add): cannot project input '%s' (%zux%zux%zu) onto "
                "%zux%zux%zu with a strided 1x1 convolution", name,
                inputs[k] ? net->layers[inputs[k] - 1].name : "input",
                from.c, from.h, from.w, to.c, to.h, to.w), sp);
        char filters[24], strides[2][24], pname[CNN_NAME_MAX + 16];
        const char *stride_items[2] = {strides[0], strides[1]};
        snprintf(filters, sizeof filters, "%zu", to.c);
        snprintf(strides[0], sizeof strides[0], "%zu", sh);
        snprintf(strides[1], sizeof strides[1], "%zu", sw);
        cnn_opt conv_opts[4] = {
            {.key = "filters", .text = filters},
            {.key = "kernel", .text = "1"},
            {.key = "stride", .items = stride_items, .nitems = 2},
            {.key = "bias", .text = "false"},
        };
        cnn_opts copts = {conv_opts, 4, {0}, 0, NULL}, bopts = {NULL, 0, {0}, 0, NULL};
        snprintf(pname, sizeof pname, nin > 2 ? "%s.proj%zu" : "%s.proj", name, k);
        if (strlen(pname) >= CNN_NAME_MAX)
            return spec_error(e, cnn_error_set(e, CNN_ERR_CONFIG, "layer name "
                              "'%s' is too long for its projection", name), sp);
        size_t conv_in[1] = {inputs[k]};
        if (setup_layer(net, &net->layers[*t], cnn_layer_kind_find("conv"), pname,
                        copts, 1, conv_in, sp, e))
            return e ? e->status : CNN_ERR_CONFIG;
        size_t bn_in[1] = {++*t};
        strcat(pname, "_bn");
        if (setup_layer(net, &net->layers[*t], cnn_layer_kind_find("batchnorm"),
                        pname, bopts, 1, bn_in, sp, e))
            return e ? e->status : CNN_ERR_CONFIG;
        inputs[k] = ++*t;
    }
    return CNN_OK;
}

/* Inference nets fold a batch norm that alone reads a conv's output into
 * the conv, and a ReLU that alone reads either of them: the conv applies
 * them, their forward is skipped and they share its output. root[t] gets
 * the layer whose output t's y is (t itself when not folded). */
static void fold_layers(cnn_net *net, size_t *root)
{
    const size_t n = net->nlayers;
    size_t *readers = calloc(n, sizeof *readers);
    for (size_t t = 0; t < n; t++) root[t] = t;
    if (!readers) return;   /* no folding: the plain plan */
    for (size_t t = 0; t < n; t++)
        for (size_t k = 0; k < net->layers[t].ninputs; k++)
            if (net->layers[t].input_ids[k]) readers[net->layers[t].input_ids[k] - 1]++;
    for (size_t t = 0; t < n; t++) {
        cnn_layer *l = &net->layers[t];
        int bn = !strcmp(l->kind->name, "batchnorm"), relu = !strcmp(l->kind->name, "relu");
        if ((!bn && !relu) || l->ninputs != 1 || !l->input_ids[0]) continue;
        size_t u = l->input_ids[0] - 1, c = root[u];
        cnn_layer *conv = &net->layers[c];
        if (readers[u] != 1 || strcmp(conv->kind->name, "conv") || conv->fold_relu) continue;
        if (bn && (u != c || conv->fold_bn)) continue;
        if (bn) conv->fold_bn = l;
        else conv->fold_relu = 1;
        l->folded = 1;
        root[t] = c;
    }
    free(readers);
}

/* The inference plan: layer t's output takes a slot that it holds from its
 * own forward until its last reader's; the slots are reused, best fit
 * first (a slot too small for every free one grows the largest). The
 * output layer keeps its slot. Fills slot[t] and the slots' offsets into
 * the activations arena (off[slot], floats); returns the arena's size, or
 * SIZE_MAX when a size overflows. */
static size_t plan_slots(const cnn_net *net, size_t max_batch, const size_t *root,
                         size_t *slot, size_t *off)
{
    const size_t n = net->nlayers;
    size_t *last = off;                 /* off doubles as last[] until the end */
    size_t *size = calloc(n, sizeof *size);
    char *busy = calloc(n, 1);
    size_t nslots = 0, total = 0;
    if (!size || !busy) {
        free(size);
        free(busy);
        return SIZE_MAX;
    }
    /* a folded layer's output is its root's: readers of either keep it */
    for (size_t t = 0; t < n; t++) last[t] = t;
    last[root[n - 1]] = n;
    for (size_t t = 0; t < n; t++)
        for (size_t k = 0; k < net->layers[t].ninputs; k++) {
            size_t id = net->layers[t].input_ids[k];
            if (id && last[root[id - 1]] < t) last[root[id - 1]] = t;
        }
    for (size_t t = 0; t < n; t++) {
        size_t need = 0, pick = SIZE_MAX;
        if (root[t] != t) {
            slot[t] = slot[root[t]];
            continue;
        }
        if (plan_add(&need, 1, max_batch, cnn_shape_size(net->layers[t].out))) {
            total = SIZE_MAX;
            break;
        }
        need = round_up(need);
        for (size_t j = 0; j < nslots; j++) {   /* the smallest free slot that fits */
            if (busy[j] || size[j] < need) continue;
            if (pick == SIZE_MAX || size[j] < size[pick]) pick = j;
        }
        for (size_t j = 0; pick == SIZE_MAX && j < nslots; j++)   /* or the largest */
            if (!busy[j] && (pick == SIZE_MAX || size[j] > size[pick])) pick = j;
        if (pick == SIZE_MAX) pick = nslots++;
        if (size[pick] < need) size[pick] = need;
        busy[pick] = 1;
        slot[t] = pick;
        /* free what is read for the last time here (and an unread output) */
        for (size_t u = 0; u <= t; u++)
            if (root[u] == u && last[u] == t) busy[slot[u]] = 0;
    }
    for (size_t j = 0; j < nslots && total != SIZE_MAX; j++) {
        off[j] = total;
        if (size[j] > SIZE_MAX - total) total = SIZE_MAX;
        else total += size[j];
    }
    free(size);
    free(busy);
    return total;
}

static cnn_net *build(const cnn_model_spec *spec, size_t max_batch, int allocate,
                      int inference, cnn_error *e)
{
    size_t n = spec->nlayers;
    char (*names)[CNN_NAME_MAX] = NULL;
    size_t (*ids)[CNN_MAX_INPUTS] = NULL;
    size_t *nin = NULL, *order = NULL, *pos = NULL, *slot = NULL, *slot_off = NULL;
    cnn_net *net = NULL;

    if (!n) {
        cnn_error_set(e, CNN_ERR_CONFIG, "the model has no layers");
        return NULL;
    }
    if (!max_batch || !cnn_shape_size(spec->input)) {
        cnn_error_set(e, CNN_ERR_ARG, "a network needs a batch size and an input "
                      "shape of at least 1x1x1");
        return NULL;
    }
    names = cnn_alloc(n, sizeof *names, "layer names", e);
    ids = cnn_alloc(n, sizeof *ids, "layer inputs", e);
    nin = cnn_alloc(n, sizeof *nin, "layer inputs", e);
    order = cnn_alloc(n, sizeof *order, "layer order", e);
    pos = cnn_alloc(n + 1, sizeof *pos, "layer order", e);
    net = cnn_alloc(1, sizeof *net, "network", e);
    if (!names || !ids || !nin || !order || !pos || !net) goto fail;
    size_t capacity = n;
    for (size_t i = 0; i < n; i++)
        if (wants_projection(&spec->layers[i]) && spec->layers[i].ninputs > 1)
            capacity += 2 * (spec->layers[i].ninputs - 1);
    net->layers = cnn_alloc(capacity, sizeof *net->layers, "layers", e);
    if (!net->layers) goto fail;
    net->nlayers = 0;
    net->input = spec->input;
    net->max_batch = max_batch;
    net->label_smoothing = spec->label_smoothing;

    if (resolve(spec, names, ids, nin, order, e)) goto fail;

    /* Parse options and infer shapes in topological order; t counts the
     * layers placed, projections included. */
    size_t t = 0;
    for (size_t o = 0; o < n; o++) {
        size_t i = order[o];
        const cnn_layer_spec *sp = &spec->layers[i];
        const cnn_layer_kind *kind = find_kind(sp, e);
        if (!kind) goto fail;
        size_t inputs[CNN_MAX_INPUTS];
        for (size_t k = 0; k < nin[i]; k++)
            inputs[k] = ids[i][k] ? pos[ids[i][k]] + 1 : 0;
        if (wants_projection(sp) &&
            project_inputs(net, &t, names[i], nin[i], inputs, sp, e))
            goto fail;
        pos[i + 1] = t;
        if (setup_layer(net, &net->layers[t], kind, names[i], sp->opts, nin[i],
                        inputs, sp, e))
            goto fail;
        t++;
    }
    n = net->nlayers;

    /* The memory plan: sizes first, then one allocation per arena. The
     * sums are checked: absurd sizes must fail here, not wrap around to a
     * small arena that the kernels then overrun. */
    size_t nparam = 0, nbuf = 0, nact = 0, nwork = 0, nin_floats = 0;
    for (size_t t = 0; t < n; t++) {
        cnn_layer *l = &net->layers[t];
        int over = 0;
        for (size_t j = 0; j < l->nparams; j++)
            over |= plan_add(l->params[j].trainable ? &nparam : &nbuf, 1, 1,
                             l->params[j].size);
        over |= plan_add(&nact, 2, max_batch, cnn_shape_size(l->out));
        over |= plan_add(&nact, 1, max_batch, l->saved_per_sample);
        if (l->work_size > nwork) nwork = l->work_size;
        if (over) {
            cnn_error_set(e, CNN_ERR_CONFIG, "layer '%s' (%s): the memory plan "
                          "overflows at batch %zu (output %zux%zux%zu); the network "
                          "is far too large", l->name, l->kind->name, max_batch,
                          l->out.c, l->out.h, l->out.w);
            goto fail;
        }
    }
    if (inference) {
        /* outputs only, sharing slots; no gradients, no saved state */
        net->inference = 1;
        slot = malloc(n * sizeof *slot);
        slot_off = malloc(n * sizeof *slot_off);
        if (!slot || !slot_off) {
            cnn_error_set(e, CNN_ERR_NOMEM, "out of memory planning the network");
            goto fail;
        }
        size_t *root = malloc(n * sizeof *root);
        if (!root) {
            cnn_error_set(e, CNN_ERR_NOMEM, "out of memory planning the network");
            goto fail;
        }
        fold_layers(net, root);
        nact = plan_slots(net, max_batch, root, slot, slot_off);
        free(root);
        if (nact == SIZE_MAX) nact = PLAN_MAX_FLOATS + 1;
    }
    if (plan_add(&nin_floats, 1, max_batch, cnn_shape_size(spec->input))
        || plan_total(nparam, nbuf, nact, nwork, nin_floats) > PLAN_MAX_FLOATS) {
        cnn_error_set(e, CNN_ERR_CONFIG, "the network's memory plan overflows at "
                      "batch %zu; the network is far too large", max_batch);
        goto fail;
    }
    net->nparam_floats = nparam;
    net->nbuffer_floats = nbuf;
    net->nact_floats = nact;
    net->work_floats = nwork;
    if (!allocate) goto done;
    /* Never try to allocate more than the machine has: an input of
     * 65536x65536 or a huge batch is an error with the plan's sizes, not a
     * swap storm or an out-of-memory kill halfway through. */
    cnn_net_mem mem;
    cnn_net_memory(net, &mem);
    size_t phys = physical_bytes();
    if (phys && mem.total > phys) {
        char size[6][32];
        cnn_format_bytes(mem.total, size[0], 32);
        cnn_format_bytes(mem.params + mem.grads + mem.buffers, size[1], 32);
        cnn_format_bytes(mem.acts, size[2], 32);
        cnn_format_bytes(mem.work, size[3], 32);
        cnn_format_bytes(mem.input, size[4], 32);
        cnn_format_bytes(phys, size[5], 32);
        cnn_error_set(e, CNN_ERR_NOMEM, "the network needs %s for batches of %zu "
                      "(parameters, gradients and buffers %s, activations %s, scratch "
                      "%s, input batch and its gradient %s): more than the %s of memory "
                      "this machine has", size[0], max_batch, size[1], size[2], size[3],
                      size[4], size[5]);
        goto fail;
    }
    /* one at a time, so that the message names the arena that failed */
    if (!(net->params = arena_alloc(nparam, "parameters", e))
        || !(net->grads = arena_alloc(inference ? 0 : nparam, "gradients", e))
        || !(net->buffers = arena_alloc(nbuf, "buffers", e))
        || !(net->acts = arena_alloc(nact, "activations", e))
        || !(net->work = arena_alloc(nwork, "scratch", e))
        || !(net->x = arena_alloc(nin_floats, "input batch", e))
        || !(net->dx = arena_alloc(inference ? 0 : nin_floats, "input gradient", e)))
        goto fail;

    float *pp = net->params, *gp = net->grads, *bp = net->buffers, *ap = net->acts;
    for (size_t t = 0; t < n; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            if (p->trainable) {
                p->data = pp;
                p->grad = inference ? NULL : gp;
                pp += round_up(p->size);
                gp += inference ? 0 : round_up(p->size);
            } else {
                p->data = bp;
                p->grad = NULL;
                bp += round_up(p->size);
            }
        }
        size_t out = round_up(max_batch * cnn_shape_size(l->out));
        if (inference) {
            l->y = net->acts + slot_off[slot[t]];
            l->dy = l->saved = NULL;
        } else {
            l->y = ap;
            ap += out;
            l->dy = ap;
            ap += out;
            l->saved = l->saved_per_sample ? ap : NULL;
            ap += round_up(max_batch * l->saved_per_sample);
        }
        l->work = net->work;
        l->rng = &net->rng;
        for (size_t k = 0; k < l->ninputs; k++) {
            size_t id = l->input_ids[k];
            l->x[k] = id ? net->layers[id - 1].y : net->x;
            l->dx[k] = id ? net->layers[id - 1].dy : NULL;
        }
    }
done:
    free(slot);
    free(slot_off);
    free(names);
    free(ids);
    free(nin);
    free(order);
    free(pos);
    return net;

fail:
    free(slot);
    free(slot_off);
    free(names);
    free(ids);
    free(nin);
    free(order);
    free(pos);
    cnn_net_free(net);
    return NULL;
}

cnn_net *cnn_net_create(const cnn_model_spec *spec, size_t max_batch, cnn_error *e)
{
    return build(spec, max_batch, 1, 0, e);
}

cnn_net *cnn_net_create_inference(const cnn_model_spec *spec, size_t max_batch,
                                  cnn_error *e)
{
    return build(spec, max_batch, 1, 1, e);
}

cnn_net *cnn_net_plan(const cnn_model_spec *spec, size_t max_batch, cnn_error *e)
{
    return build(spec, max_batch, 0, 0, e);
}

void cnn_net_free(cnn_net *net)
{
    if (!net) return;
    if (net->layers)
        for (size_t t = 0; t < net->nlayers; t++) free(net->layers[t].settings);
    free(net->layers);
    free(net->params);
    free(net->grads);
    free(net->buffers);
    free(net->acts);
    free(net->work);
    free(net->x);
    free(net->dx);
    free(net);
}

void cnn_net_init(cnn_net *net, uint64_t *rng)
{
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            switch (p->init) {
            case CNN_INIT_ZERO:
                memset(p->data, 0, p->size * sizeof(float));
                break;
            case CNN_INIT_ONE:
                for (size_t i = 0; i < p->size; i++) p->data[i] = 1.0f;
                break;
            case CNN_INIT_HE: {
                float std = sqrtf(2.0f / (float)(p->fan_in ? p->fan_in : 1));
                for (size_t i = 0; i < p->size; i++)
                    p->data[i] = std * cnn_rng_normal(rng);
                break;
            }
            case CNN_INIT_GLOROT: {
                float lim = sqrtf(6.0f / (float)(p->fan_in + p->fan_out ? p->fan_in + p->fan_out : 1));
                for (size_t i = 0; i < p->size; i++)
                    p->data[i] = lim * (2.0f * cnn_rng_uniform(rng) - 1.0f);
                break;
            }
            }
        }
    }
}

void cnn_net_forward(cnn_net *net, size_t n, int training)
{
    if (n > net->max_batch) n = net->max_batch;
    /* every layer feeds the output, so its batch_div is the largest */
    assert(n % cnn_net_output(net)->batch_div == 0
           && "the batch is a multiple of the output's batch_div (pairs stay whole)");
    if (net->inference) training = 0;
    net->batch = n;
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        l->batch = n / l->batch_div;
        l->training = training;
        if (l->folded) continue;   /* done by the conv before it */
        double start = net->layer_seconds ? omp_get_wtime() : 0;
        l->kind->forward(l);
        if (net->layer_seconds) net->layer_seconds[2 * t] += omp_get_wtime() - start;
    }
}

cnn_layer *cnn_net_output(cnn_net *net)
{
    return &net->layers[net->nlayers - 1];
}

double cnn_net_loss(cnn_net *net, const int *labels, size_t *correct)
{
    cnn_layer *out = cnn_net_output(net);
    return cnn_loss_softmax_xent(out->y, labels, out->batch, cnn_shape_size(out->out),
                                 net->label_smoothing, out->dy, correct);
}

/* The highest-numbered layer up to target that reads layer u's output, or
 * SIZE_MAX when none does. */
static size_t last_reader(const cnn_net *net, size_t u, size_t target)
{
    for (size_t t = target + 1; t-- > u + 1;)
        for (size_t k = 0; k < net->layers[t].ninputs; k++)
            if (net->layers[t].input_ids[k] == u + 1) return t;
    return SIZE_MAX;
}

/* Whether input k of l is also an earlier input of l (add x x). */
static int seen_before(const cnn_layer *l, size_t k)
{
    for (size_t j = 0; j < k; j++)
        if (l->input_ids[j] == l->input_ids[k]) return 1;
    return 0;
}

/* Whether l may write (not add into) the gradient of its input k, the
 * output of u, of which it is the last reader: its kind can, both take part
 * in backward, and k is l's only input from u. */
static int may_assign(const cnn_net *net, const cnn_layer *l, size_t k, const cnn_layer *u)
{
    if (net->zero_dx || !l->kind->assigns_dx || !l->needs_backward || !u->needs_backward)
        return 0;
    for (size_t j = 0; j < l->ninputs; j++)
        if (j != k && l->input_ids[j] == l->input_ids[k]) return 0;
    return 1;
}

double cnn_net_loss_part(cnn_net *net, const int *labels, size_t total, size_t *correct)
{
    cnn_layer *out = cnn_net_output(net);
    return cnn_loss_softmax_xent_part(out->y, labels, out->batch, total,
                                      cnn_shape_size(out->out), net->label_smoothing,
                                      out->dy, correct);
}

void cnn_net_backward_from(cnn_net *net, size_t target)
{
    if (net->inference) return;   /* no gradients to fill */
    memset(net->grads, 0, net->nparam_floats * sizeof(float));
    if (net->want_input_grad)
        memset(net->dx, 0, net->batch * cnn_shape_size(net->input) * sizeof(float));
    /* Layers add into their inputs' dy, so each dy is zeroed first: just
     * before its last reader (the first to run backward) runs, while the
     * buffer is about to be used and stays in cache, rather than all of them
     * up front. A last reader whose kind can write its input gradient
     * instead (may_assign) is told so and nothing is zeroed: in a chain of
     * layers that saves a pass over every activation-sized buffer. An
     * output no layer up to target reads is zeroed here. */
    for (size_t t = 0; t < target; t++)
        if (last_reader(net, t, target) == SIZE_MAX) {
            cnn_layer *l = &net->layers[t];
            memset(l->dy, 0, l->batch * cnn_shape_size(l->out) * sizeof(float));
        }
    /* A layer takes part when it has parameters to train or reads (through
     * any path) one that does; an input gradient goes only to layers that
     * take part. With nothing frozen, every layer with parameters or
     * after one takes part. */
    for (size_t t = 0; t <= target; t++) {
        cnn_layer *l = &net->layers[t];
        int needs = net->want_input_grad;
        for (size_t j = 0; j < l->nparams && !needs; j++)
            needs = l->params[j].trainable && cnn_layer_param_grads(l);
        for (size_t k = 0; k < l->ninputs && !needs; k++)
            needs = l->input_ids[k] && net->layers[l->input_ids[k] - 1].needs_backward;
        l->needs_backward = needs;
    }
    for (size_t t = target + 1; t-- > 0;) {
        cnn_layer *l = &net->layers[t];
        l->dx_assign = 0;
        for (size_t k = 0; k < l->ninputs; k++) {
            size_t id = l->input_ids[k];
            if (id && last_reader(net, id - 1, target) == t && !seen_before(l, k)) {
                cnn_layer *u = &net->layers[id - 1];
                if (may_assign(net, l, k, u))
                    l->dx_assign |= 1u << k;
                else
                    memset(u->dy, 0, u->batch * cnn_shape_size(u->out) * sizeof(float));
            }
        }
        if (!l->needs_backward) {
            if (net->after_backward) net->after_backward(net->after_backward_ctx, t);
            continue;
        }
        float *bound[CNN_MAX_INPUTS];
        for (size_t k = 0; k < l->ninputs; k++) {
            size_t id = l->input_ids[k];
            bound[k] = l->dx[k];
            if (!id) l->dx[k] = net->want_input_grad ? net->dx : NULL;
            else if (!net->layers[id - 1].needs_backward) l->dx[k] = NULL;
        }
        double start = net->layer_seconds ? omp_get_wtime() : 0;
        l->kind->backward(l);
        if (net->layer_seconds) net->layer_seconds[2 * t + 1] += omp_get_wtime() - start;
        for (size_t k = 0; k < l->ninputs; k++)
            if (l->input_ids[k]) l->dx[k] = bound[k];
        if (net->after_backward) net->after_backward(net->after_backward_ctx, t);
        l->dx_assign = 0;   /* a layer's backward called by itself adds */
    }
}

void cnn_net_backward(cnn_net *net)
{
    cnn_net_backward_from(net, net->nlayers - 1);
}

cnn_layer *cnn_net_layer(cnn_net *net, const char *name)
{
    for (size_t t = 0; t < net->nlayers; t++)
        if (!strcmp(net->layers[t].name, name)) return &net->layers[t];
    return NULL;
}

void cnn_net_receptive_fields(const cnn_net *net, size_t (*rf)[2], size_t (*jump)[2])
{
    for (size_t t = 0; t < net->nlayers; t++) {
        const cnn_layer *l = &net->layers[t];
        for (size_t a = 0; a < 2; a++) {
            size_t r_in = 1, j_in = 1, extent = a ? l->in[0].w : l->in[0].h;
            for (size_t k = 0; k < l->ninputs; k++) {
                size_t id = l->input_ids[k];
                if (id && rf[id - 1][a] > r_in) r_in = rf[id - 1][a];
                if (id && jump[id - 1][a] > j_in) j_in = jump[id - 1][a];
            }
            size_t out = a ? l->out.w : l->out.h;
            size_t kern = l->rf_kernel[a], stride = l->rf_stride[a];
            if (!kern) kern = out == 1 && extent > 1 ? extent : 1;
            if (!stride) stride = 1;
            rf[t][a] = r_in + (kern - 1) * j_in;
            jump[t][a] = j_in * stride;
        }
    }
}

size_t cnn_net_param_count(const cnn_net *net)
{
    size_t total = 0;
    for (size_t t = 0; t < net->nlayers; t++)
        for (size_t j = 0; j < net->layers[t].nparams; j++)
            if (net->layers[t].params[j].trainable) total += net->layers[t].params[j].size;
    return total;
}

size_t cnn_net_activation_bytes(const cnn_net *net)
{
    cnn_net_mem m;
    cnn_net_memory(net, &m);
    return m.acts + m.work + m.input;
}

/* The plan's float counts are at most PLAN_MAX_FLOATS together (build
 * checks), so these byte counts and their sum cannot wrap. */
void cnn_net_memory(const cnn_net *net, cnn_net_mem *m)
{
    const size_t f = sizeof(float);
    m->params = round_up(net->nparam_floats) * f;
    m->grads = net->inference ? 0 : m->params;
    m->buffers = round_up(net->nbuffer_floats) * f;
    m->acts = net->nact_floats * f;
    m->work = round_up(net->work_floats) * f;
    m->input = (net->inference ? 1 : 2) * round_up(net->max_batch * cnn_shape_size(net->input)) * f;
    m->total = m->params + m->grads + m->buffers + m->acts + m->work + m->input;
}

/* The index of the first non-finite value of v[n], or n when all are finite. */
static size_t first_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return n;
}

int cnn_net_find_nonfinite(const cnn_net *net, int grads, cnn_nonfinite *r)
{
    memset(r, 0, sizeof *r);
    for (size_t k = 0; k < net->nlayers; k++) {
        /* outputs in forward order; gradients in the order backward makes them */
        const cnn_layer *l = &net->layers[grads ? net->nlayers - 1 - k : k];
        size_t per = cnn_shape_size(l->out), n = l->batch * per, i;
        const float *out = grads ? l->dy : l->y;
        if (grads && !l->needs_backward) continue;
        if (grads && (i = first_nonfinite(out, n)) < n) {
            *r = (cnn_nonfinite){l, "output", 1, i / per, out[i]};
            return 1;
        }
        for (size_t j = 0; j < l->nparams; j++) {
            const cnn_param *p = &l->params[j];
            const float *v = grads ? p->grad : p->data;
            if (!v || (i = first_nonfinite(v, p->size)) == p->size) continue;
            *r = (cnn_nonfinite){l, p->name, grads, i, v[i]};
            return 1;
        }
        if (!grads && (i = first_nonfinite(out, n)) < n) {
            *r = (cnn_nonfinite){l, "output", 0, i / per, out[i]};
            return 1;
        }
    }
    return 0;
}
