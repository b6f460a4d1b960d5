/*
 * `cnn check`: validate a config — every key, type and range, and the
 * network's shapes — without loading data or computing anything.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "run.h"
#include "task.h"

static const char usage[] =
    "usage: cnn check CONFIG [--set KEY=VALUE]...\n"
    "\n"
    "Validate CONFIG as `cnn train` would (keys, types, ranges, layer options,\n"
    "shape inference) without loading data. Prints 'ok' and exits 0, or prints\n"
    "each problem as FILE:LINE:COLUMN: error: ... and exits 2.\n";

static int run(int argc, char **argv)
{
    const char *config = NULL, *sets[64];
    size_t nsets = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            if (r < 0 || cli_add_set(argv[0], v, sets, &nsets, 64)) return CLI_EXIT_USAGE;
        } else if (cli_positional(argv, i, &config)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!config) return cli_usage_error(argv[0], "missing CONFIG");
    cli_model m;
    int rc = cli_model_plan(config, sets, nsets, 1, &m);
    if (rc) return rc;
    if ((rc = cli_task_check(&m))) {
        cli_model_free(&m);
        return rc;
    }
    const cnn_layer *o = cnn_net_output(m.net);
    if (m.cfg.task.type == CNN_TASK_CLASSIFY)
        printf("ok: %s: %zu layers, %zu parameters, output %zu classes\n", config,
               m.net->nlayers, cnn_net_param_count(m.net), m.nclasses);
    else
        printf("ok: %s: %zu layers, %zu parameters, task %s, output %zux%zux%zu\n", config,
               m.net->nlayers, cnn_net_param_count(m.net), cnn_task_names[m.cfg.task.type],
               o->out.c, o->out.h, o->out.w);
    cli_model_free(&m);
    return CLI_EXIT_OK;
}

const cli_command cli_cmd_check = {
    "check", "validate a config (keys, types, shapes) without computing", usage, run,
};
