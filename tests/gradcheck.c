/*
 * Finite-difference gradient checks for any layer kind (see gradcheck.h).
 */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "rng.h"

#define MAX_OPTS 16

/* Split "[a, b, c]" into items; returns the count. */
static size_t split_list(char *text, const char **items, size_t max)
{
    size_t n = 0;
    char *s = text + 1;
    char *end = strchr(s, ']');
    if (end) *end = '\0';
    for (char *tok = strtok(s, ", "); tok && n < max; tok = strtok(NULL, ", "))
        items[n++] = tok;
    return n;
}

/* L = sum(out * r), in double, after a forward pass with a fixed RNG. */
static double objective(cnn_net *net, const float *r, size_t nout, size_t batch,
                        int training, uint64_t rng)
{
    net->rng = rng;
    cnn_net_forward(net, batch, training);
    const float *y = cnn_net_output(net)->y;
    double s = 0;
    for (size_t i = 0; i < nout; i++) s += (double)y[i] * (double)r[i];
    return s;
}

/* Compare analytic gradient g of values v[0..n) with central differences. */
static int compare(const char *what, cnn_net *net, float *v, const float *g,
                   size_t n, const float *r, size_t nout, size_t batch,
                   const gradcheck_opts *o, uint64_t rng)
{
    double worst = 0;
    size_t at = 0;
    double at_num = 0, at_ana = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = v[i];
        float up = keep + (float)o->h, down = keep - (float)o->h;
        v[i] = up;
        double lp = objective(net, r, nout, batch, o->training, rng);
        v[i] = down;
        double lm = objective(net, r, nout, batch, o->training, rng);
        v[i] = keep;
        double num = (lp - lm) / ((double)up - (double)down);
        double err = fabs((double)g[i] - num) / fmax(1.0, fabs(num));
        if (err > worst || isnan(err)) {
            worst = isnan(err) ? INFINITY : err;
            at = i;
            at_num = num;
            at_ana = g[i];
        }
    }
    int bad = !(worst <= o->tol);
    printf("  %-28s %6zu values, max rel error %.2e%s\n", what, n, worst,
           bad ? "  <-- FAIL" : "");
    if (bad)
        printf("    at %zu: analytic %.8g, numeric %.8g\n", at, at_ana, at_num);
    return bad;
}

/* Fill in the defaults of gradcheck_opts. */
static gradcheck_opts defaults(const gradcheck_opts *opts)
{
    gradcheck_opts o = {2, 1e-2, 2e-2, 1, 0, 0, 1};
    if (opts) {
        o = *opts;
        if (!o.batch) o.batch = 2;
        if (o.h <= 0) o.h = 1e-2;
        if (o.tol <= 0) o.tol = 2e-2;
        if (!o.seed) o.seed = 1;
    }
    return o;
}

/* The check proper on a built network: randomise every trainable parameter
 * (on top of its initialisation), the input and r; compare d/d input and
 * each trainable tensor of every layer. qualify: name tensors "layer.param"
 * rather than "param". Returns the number of failed tensors. */
static int check_net(cnn_net *net, const gradcheck_opts *op, int qualify)
{
    const gradcheck_opts o = *op;
    uint64_t rng = cnn_rng_seed(o.seed, 7);
    cnn_net_init(net, &rng);
    /* Parameters that initialise to constants (biases, batch-norm gamma and
     * beta) get random values too, so every index matters. */
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++)
            if (l->params[j].trainable)
                for (size_t i = 0; i < l->params[j].size; i++)
                    l->params[j].data[i] += 0.5f * cnn_rng_normal(&rng);
    }

    size_t nin = o.batch * cnn_shape_size(net->input);
    for (size_t i = 0; i < nin; i++) {
        float v = cnn_rng_normal(&rng);
        if (o.min_abs_input > 0 && fabsf(v) < o.min_abs_input)
            v = (v < 0 ? -1.0f : 1.0f) * (float)o.min_abs_input + v;
        net->x[i] = v;
    }
    if (o.distinct_inputs) {
        /* A shuffled ramp: all values differ by at least 0.1 > 2h. */
        uint32_t *perm = malloc(nin * sizeof *perm);
        for (uint32_t i = 0; i < nin; i++) perm[i] = i;
        cnn_rng_shuffle(&rng, perm, (uint32_t)nin);
        for (size_t i = 0; i < nin; i++)
            net->x[i] = 0.1f * ((float)perm[i] - (float)nin / 2);
        free(perm);
    }
    cnn_layer *out = cnn_net_output(net);
    /* a pair layer halves the batch on the way: the output's own samples */
    size_t nout = o.batch / out->batch_div * cnn_shape_size(out->out);
    float *r = malloc(nout * sizeof *r);
    for (size_t i = 0; i < nout; i++) r[i] = cnn_rng_normal(&rng);
    uint64_t fwd_rng = cnn_rng_seed(o.seed, 11);

    /* Analytic gradients: the input's, then every trainable tensor's in the
     * flat gradient arena (whose layout matches net->params). */
    objective(net, r, nout, o.batch, o.training, fwd_rng);
    memcpy(out->dy, r, nout * sizeof *r);
    net->want_input_grad = 1;
    cnn_net_backward(net);
    float *gx = malloc(nin * sizeof *gx);
    memcpy(gx, net->dx, nin * sizeof *gx);
    float *gp = malloc((net->nparam_floats ? net->nparam_floats : 1) * sizeof *gp);
    memcpy(gp, net->grads, net->nparam_floats * sizeof *gp);

    int failed = compare("d/d input", net, net->x, gx, nin, r, nout, o.batch, &o, fwd_rng);
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            if (!p->trainable) continue;
            char what[CNN_NAME_MAX + 32];
            if (qualify)
                snprintf(what, sizeof what, "d/d %s.%s", l->name, p->name);
            else
                snprintf(what, sizeof what, "d/d %s", p->name);
            failed += compare(what, net, p->data, gp + (p->grad - net->grads),
                              p->size, r, nout, o.batch, &o, fwd_rng);
        }
    }
    free(r);
    free(gx);
    free(gp);
    return failed;
}

int gradcheck_layer(const char *kind, const char *const *kv, cnn_shape in,
                    const gradcheck_opts *opts)
{
    gradcheck_opts o = defaults(opts);
    cnn_opt items[MAX_OPTS];
    char texts[MAX_OPTS][64];
    const char *lists[MAX_OPTS][8];
    size_t nopt = 0;
    memset(items, 0, sizeof items);
    for (size_t i = 0; kv && kv[i] && kv[i + 1] && nopt < MAX_OPTS; i += 2, nopt++) {
        snprintf(texts[nopt], sizeof texts[nopt], "%s", kv[i + 1]);
        items[nopt].key = kv[i];
        if (texts[nopt][0] == '[') {
            items[nopt].nitems = split_list(texts[nopt], lists[nopt], 8);
            items[nopt].items = lists[nopt];
        } else {
            items[nopt].text = texts[nopt];
        }
    }
    cnn_layer_spec spec = {0};
    spec.kind = kind;
    spec.opts.items = items;
    spec.opts.n = nopt;
    cnn_model_spec model = {in, &spec, 1, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&model, o.batch, &e);
    printf("gradcheck %s", kind);
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) printf(" %s=%s", kv[i], kv[i + 1]);
    printf(" on %zux%zux%zux%zu (%s)\n", o.batch, in.c, in.h, in.w,
           o.training ? "train" : "eval");
    if (!net) {
        printf("  cannot build: %s\n", e.msg);
        return 1;
    }
    int failed = check_net(net, &o, 0);
    cnn_net_free(net);
    return failed;
}

int gradcheck_model(const cnn_model_spec *spec, const gradcheck_opts *opts)
{
    gradcheck_opts o = defaults(opts);
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(spec, o.batch, &e);
    printf("gradcheck model of %zu layers on %zux%zux%zux%zu (%s):", spec->nlayers,
           o.batch, spec->input.c, spec->input.h, spec->input.w,
           o.training ? "train" : "eval");
    if (!net) {
        printf("\n  cannot build: %s\n", e.msg);
        return 1;
    }
    for (size_t t = 0; t < net->nlayers; t++)
        printf(" %s (%s)%s", net->layers[t].name, net->layers[t].kind->name,
               t + 1 < net->nlayers ? "," : "\n");
    int failed = check_net(net, &o, 1);
    cnn_net_free(net);
    return failed;
}
