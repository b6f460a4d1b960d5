/*
 * Loading pretrained weights by layer name and choosing what trains (see
 * finetune.h).
 *
 * A checkpoint stores tensors as "<layer>.<param>"; its layers are found by
 * matching those names against its embedded config's layers, so no layer
 * list is needed beyond the tensors themselves: a tensor belongs to the
 * layer whose name is the longest prefix of it followed by a dot.
 */
#include "finetune.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int matches_any(const char *name, const char *const *patterns, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(patterns[i], name, 0) == 0) return 1;
    return 0;
}

/* The name a pretrained layer gets in the new network: the first rename
 * rule whose `from` is the name or a dotted prefix of it. */
static void renamed(const cnn_tune_spec *t, const char *name, char *out, size_t n)
{
    for (size_t i = 0; i < t->nrename; i++) {
        size_t k = strlen(t->rename_from[i]);
        if (!strncmp(name, t->rename_from[i], k) && (name[k] == '\0' || name[k] == '.')) {
            snprintf(out, n, "%s%s", t->rename_to[i], name + k);
            return;
        }
    }
    snprintf(out, n, "%s", name);
}

/* The checkpoint's layer names: each tensor's name up to its last dot
 * (parameter names have no dots), optimizer moments excluded. */
static size_t ckpt_layers(const cnn_checkpoint *ck, char (*names)[CNN_NAME_MAX + 32],
                          size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ck->ntensors && n < max; i++) {
        const char *tn = ck->tensors[i].name, *dot = strrchr(tn, '.');
        if (!dot || !strncmp(tn, "optimizer.", 10)) continue;
        size_t len = (size_t)(dot - tn);
        if (len >= sizeof names[0]) continue;
        size_t j = 0;
        while (j < n && (strlen(names[j]) != len || strncmp(names[j], tn, len))) j++;
        if (j < n) continue;
        memcpy(names[n], tn, len);
        names[n][len] = '\0';
        n++;
    }
    return n;
}

static void dims_text(char *buf, size_t n, size_t ndim, const uint64_t *d64,
                      const size_t *dsz)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "[%llu]",
                                (unsigned long long)(d64 ? d64[i] : dsz[i]));
}

int cli_finetune_load(cli_model *m, const cnn_checkpoint *ck, const char *ckpt_path,
                      const cnn_tune_spec *tune, unsigned char *origin)
{
    cnn_net *net = m->net;
    size_t cap = ck->ntensors + 1;
    char (*pre)[CNN_NAME_MAX + 32] = calloc(cap, sizeof *pre);
    unsigned char *used = calloc(cap, 1);
    int rc = 0;
    if (!pre || !used) {
        free(pre);
        free(used);
        fprintf(stderr, "%s: error: out of memory\n", ckpt_path);
        return CLI_EXIT_RUNTIME;
    }
    size_t npre = ckpt_layers(ck, pre, cap);
    for (size_t t = 0; t < net->nlayers; t++) origin[t] = CLI_LAYER_NEW;
    fprintf(stderr, "%-28s %-10s %s\n", "layer", "weights", "from");
    for (size_t t = 0; t < net->nlayers && !rc; t++) {
        cnn_layer *l = &net->layers[t];
        if (!l->nparams) continue;
        /* the pretrained layer that becomes this one */
        size_t src = npre;
        for (size_t j = 0; j < npre && src == npre; j++) {
            char name[CNN_NAME_MAX + 64];
            renamed(tune, pre[j], name, sizeof name);
            if (!strcmp(name, l->name) && !matches_any(pre[j], tune->drop, tune->ndrop))
                src = j;
        }
        int reinit = matches_any(l->name, tune->reinit, tune->nreinit);
        if (src == npre) {
            fprintf(stderr, "%-28s %-10s %s\n", l->name, reinit ? "reinit" : "new",
                    "(initialised)");
            if (reinit) origin[t] = CLI_LAYER_REINIT;
            continue;
        }
        used[src] = 1;
        if (reinit) {
            origin[t] = CLI_LAYER_REINIT;
            fprintf(stderr, "%-28s %-10s %s (not taken: reinit)\n", l->name, "reinit",
                    pre[src]);
            continue;
        }
        /* every tensor must be there with the same shape */
        for (size_t j = 0; j < l->nparams && !rc; j++) {
            cnn_param *p = &l->params[j];
            char name[2 * CNN_NAME_MAX + 64], want[96], got[96];
            snprintf(name, sizeof name, "%s.%s", pre[src], p->name);
            const cnn_ckpt_tensor *tt = cnn_checkpoint_find(ck, name);
            dims_text(want, sizeof want, p->ndim, NULL, p->dims);
            if (!tt) {
                fprintf(stderr, "%s: error: layer '%s' takes '%s' but the checkpoint has "
                        "no tensor '%s'; list the layer under finetune.reinit to start it "
                        "afresh\n", ckpt_path, l->name, pre[src], name);
                rc = CLI_EXIT_USAGE;
                break;
            }
            dims_text(got, sizeof got, tt->ndim, tt->dims, NULL);
            if (tt->size != p->size || strcmp(want, got)) {
                fprintf(stderr, "%s: error: layer '%s': %s is %s in the new network but "
                        "%s in the checkpoint (layer '%s'); list '%s' under finetune.reinit "
                        "(or finetune.drop the old one) to start it afresh\n", ckpt_path,
                        l->name, p->name, want, got, pre[src], l->name);
                rc = CLI_EXIT_USAGE;
            }
        }
        if (rc) break;
        for (size_t j = 0; j < l->nparams; j++) {
            char name[2 * CNN_NAME_MAX + 64];
            snprintf(name, sizeof name, "%s.%s", pre[src], l->params[j].name);
            const cnn_ckpt_tensor *tt = cnn_checkpoint_find(ck, name);
            memcpy(l->params[j].data, tt->data, tt->size * sizeof(float));
        }
        origin[t] = CLI_LAYER_LOADED;
        fprintf(stderr, "%-28s %-10s %s\n", l->name, "loaded", pre[src]);
    }
    for (size_t j = 0; j < npre && !rc; j++) {
        if (used[j]) continue;
        int dropped = matches_any(pre[j], tune->drop, tune->ndrop);
        fprintf(stderr, "%-28s %-10s %s\n", pre[j], dropped ? "dropped" : "unused",
                dropped ? "(finetune.drop)" : "(no layer of that name here)");
    }
    free(pre);
    free(used);
    return rc;
}

static int is_batchnorm(const cnn_layer *l)
{
    return !strcmp(l->kind->name, "batchnorm");
}

int cli_apply_trainable(cli_model *m, int trainable, const char *const *freeze,
                        size_t nfreeze, const cnn_tune_spec *tune,
                        const unsigned char *origin, cnn_optim *opt)
{
    cnn_net *net = m->net;
    /* every pattern must name something: a typo would silently train all */
    const char *const *lists[3] = {freeze, tune->head, NULL};
    size_t counts[3] = {nfreeze, tune->nhead, 0};
    const char *what[3] = {"freeze", "train.head", ""};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < counts[k]; i++) {
            size_t t = 0;
            while (t < net->nlayers && fnmatch(lists[k][i], net->layers[t].name, 0)) t++;
            if (t == net->nlayers) {
                fprintf(stderr, "%s: error: %s pattern '%s' matches no layer\n",
                        m->cfg.path, what[k], lists[k][i]);
                return CLI_EXIT_USAGE;
            }
        }
    for (size_t i = 0; i < tune->nlr_mult; i++) {
        size_t t = 0;
        while (t < net->nlayers && fnmatch(tune->lr_mult[i].pattern, net->layers[t].name, 0))
            t++;
        if (t == net->nlayers) {
            fprintf(stderr, "%s: error: train.lr_mult pattern '%s' matches no layer\n",
                    m->cfg.path, tune->lr_mult[i].pattern);
            return CLI_EXIT_USAGE;
        }
    }
    /* the default head: the new layers of a fine-tune, else the last layer
     * with parameters */
    size_t last = net->nlayers;
    for (size_t t = net->nlayers; t-- > 0 && last == net->nlayers;)
        if (net->layers[t].nparams) last = t;
    size_t total = 0, training = 0;
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        int head = tune->nhead ? matches_any(l->name, tune->head, tune->nhead)
                 : origin ? origin[t] != CLI_LAYER_LOADED : t == last;
        int trains = trainable == CNN_TRAINABLE_ALL ? 1
                   : trainable == CNN_TRAINABLE_HEAD ? head
                   : is_batchnorm(l);
        if (matches_any(l->name, freeze, nfreeze)) trains = 0;
        l->frozen = !trains;
        float mult = 1.0f;
        for (size_t i = 0; i < tune->nlr_mult; i++)
            if (fnmatch(tune->lr_mult[i].pattern, l->name, 0) == 0) {
                mult = tune->lr_mult[i].value;
                break;
            }
        /* lr_mult 0 holds the parameters without freezing the layer (batch
         * norm keeps batch statistics): no gradient to compute for them */
        l->held = trains && mult == 0.0f;
        for (size_t j = 0; j < l->nparams; j++) {
            const cnn_param *p = &l->params[j];
            if (!p->trainable) continue;
            cnn_optim_set_scale(opt, p, trains ? mult : 0.0f);
            total += p->size;
            if (trains && mult > 0.0f) training += p->size;
        }
    }
    if (!training) {
        fprintf(stderr, "%s: error: nothing to train: every layer is frozen or has lr_mult 0\n",
                m->cfg.path);
        return CLI_EXIT_USAGE;
    }
    static const char *const names[] = {"all", "head", "batchnorm"};
    fprintf(stderr, "trainable: %s%s: %zu of %zu parameters train\n", names[trainable],
            nfreeze ? " (with freeze patterns)" : "", training, total);
    return 0;
}
