/*
 * `cnn summary`: the network of a config or checkpoint as a table — per
 * layer its name, kind, settings, inputs, output shape, parameters and
 * multiply-accumulates per image — with totals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run.h"

static const char usage[] =
    "usage: cnn summary CONFIG|CKPT [--batch N]\n"
    "\n"
    "Print one row per layer: name, kind, settings, inputs, output shape\n"
    "(channels x height x width), parameters and their share of the total,\n"
    "multiply-accumulates (MACs) per image, the theoretical receptive field\n"
    "(RF, in input pixels) and the jump (product of strides) of its output\n"
    "units; then totals and the activation memory of a training step at\n"
    "batch N (default: train.batch).\n";

static void print_count(char *buf, size_t n, size_t v)
{
    if (v >= 10000000) snprintf(buf, n, "%.1fM", (double)v / 1e6);
    else if (v >= 100000) snprintf(buf, n, "%.0fk", (double)v / 1e3);
    else snprintf(buf, n, "%zu", v);
}

/* "196" for a square pair, "3x7" otherwise. */
static void pair(char *buf, size_t n, const size_t v[2])
{
    if (v[0] == v[1]) snprintf(buf, n, "%zu", v[0]);
    else snprintf(buf, n, "%zux%zu", v[0], v[1]);
}

static int run(int argc, char **argv)
{
    const char *path = NULL;
    long batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--batch", &v))) {
            if (r < 0 || (batch = cli_positive(argv[0], "--batch", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_positional(argv, i, &path)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!path) return cli_usage_error(argv[0], "missing CONFIG or CKPT");
    cli_model m;
    int rc = cli_is_checkpoint(path)
        ? cli_model_from_checkpoint(path, (size_t)batch, &m, NULL)
        : cli_model_plan(path, NULL, 0, (size_t)batch, &m);
    if (rc) return rc;
    cnn_net *net = m.net;
    size_t total = cnn_net_param_count(net), macs = 0;
    printf("%s: input %zux%zux%zu\n", m.cfg.name, net->input.c, net->input.h, net->input.w);
    size_t (*rf)[2] = malloc(net->nlayers * sizeof *rf);
    size_t (*jump)[2] = malloc(net->nlayers * sizeof *jump);
    if (!rf || !jump) {
        free(rf);
        free(jump);
        cli_model_free(&m);
        fprintf(stderr, "cnn summary: out of memory\n");
        return CLI_EXIT_RUNTIME;
    }
    cnn_net_receptive_fields(net, rf, jump);
    printf("%-16s %-14s %-16s %-16s %-14s %12s %7s %10s %8s %6s\n", "layer", "kind",
           "settings", "inputs", "output", "params", "share", "MACs", "RF", "jump");
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        char desc[64] = "", inputs[CNN_MAX_INPUTS * (CNN_NAME_MAX + 1)] = "";
        char shape[72], mac[32];
        size_t params = 0;
        if (l->kind->describe) l->kind->describe(l, desc, sizeof desc);
        for (size_t k = 0; k < l->ninputs; k++) {
            size_t id = l->input_ids[k];
            if (k) strcat(inputs, ",");
            strcat(inputs, id ? net->layers[id - 1].name : "input");
        }
        for (size_t j = 0; j < l->nparams; j++)
            if (l->params[j].trainable) params += l->params[j].size;
        snprintf(shape, sizeof shape, "%zux%zux%zu", l->out.c, l->out.h, l->out.w);
        print_count(mac, sizeof mac, l->macs);
        char field[48], step[48];
        pair(field, sizeof field, rf[t]);
        pair(step, sizeof step, jump[t]);
        printf("%-16s %-14s %-16s %-16s %-14s %12zu %6.1f%% %10s %8s %6s\n", l->name,
               l->kind->name, desc, inputs, shape, params,
               total ? 100.0 * (double)params / (double)total : 0.0, mac, field, step);
        /* after a pair layer a sample is a pair: its MACs are shared by
         * batch_div network inputs */
        macs += (l->macs + l->batch_div / 2) / l->batch_div;
    }
    char mac[32];
    print_count(mac, sizeof mac, macs);
    size_t rows = cnn_task_rows(&m.cfg.task);
    printf("total: %zu parameters (%.2f MiB), %s MACs per %s, %.1f MiB of "
           "activations for a training step at batch %zu", total,
           (double)total * 4 / 1048576.0, mac, rows > 1 ? "network input" : "image",
           (double)cnn_net_activation_bytes(net) / 1048576.0, net->max_batch / rows);
    if (rows > 1) printf(" (%zu network inputs: task %s shows %zu per image)", net->max_batch,
                         cnn_task_names[m.cfg.task.type], rows);
    printf("\n");
    free(rf);
    free(jump);
    cli_model_free(&m);
    return CLI_EXIT_OK;
}

const cli_command cli_cmd_summary = {
    "summary", "per-layer table: shapes, parameters, MACs", usage, run,
};
