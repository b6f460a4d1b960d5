/*
 * `cnn`: the command-line front end. A table of subcommands, each in its own
 * cmd_*.c with its own usage text; this file only dispatches and prints help.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "cli.h"

static const cli_command *const commands[] = {
    &cli_cmd_train, &cli_cmd_finetune, &cli_cmd_eval, &cli_cmd_summary, &cli_cmd_check,
    &cli_cmd_receptive_field, &cli_cmd_bench,
    &cli_cmd_plot, &cli_cmd_predict, &cli_cmd_data, &cli_cmd_visualize,
    &cli_cmd_restore,
};
static const size_t ncommands = sizeof commands / sizeof commands[0];

static void print_help(FILE *f)
{
    fprintf(f, "cnn: train and use convolutional networks described in YAML\n\n"
               "usage: cnn COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < ncommands; i++)
        fprintf(f, "  %-16s %s\n", commands[i]->name, commands[i]->synopsis);
    fprintf(f, "  %-16s %s\n", "help", "show the usage of a command: cnn help COMMAND");
    fprintf(f, "\nexit codes: 0 success, 1 runtime failure, 2 usage or config "
               "error, 3 gate not met\n");
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < ncommands; i++)
        if (!strcmp(commands[i]->name, name)) return commands[i];
    return NULL;
}

static int unknown_command(const char *name)
{
    const char *names[16];
    for (size_t i = 0; i < ncommands; i++) names[i] = commands[i]->name;
    const char *near = cnn_closest(name, names, ncommands);
    fprintf(stderr, "cnn: unknown command '%s'%s%s%s; see 'cnn --help'\n", name,
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("cnn 0.1.0\n");
        return CLI_EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            print_help(stdout);
            return CLI_EXIT_OK;
        }
        const cli_command *c = find_command(argv[2]);
        if (!c) return unknown_command(argv[2]);
        fputs(c->usage, stdout);
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(name);
    if (!c) return unknown_command(name);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(c->usage, stdout);
            return CLI_EXIT_OK;
        }
    return c->run(argc - 1, argv + 1);
}

int cli_exit_code(cnn_status s)
{
    if (s == CNN_OK) return CLI_EXIT_OK;
    if (s == CNN_ERR_CONFIG || s == CNN_ERR_ARG || s == CNN_ERR_SHAPE) return CLI_EXIT_USAGE;
    return CLI_EXIT_RUNTIME;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int cli_report(const cnn_error *e)
{
    if (e->file[0] && e->line)
        fprintf(stderr, "%s:%d:%d: error: %s\n", e->file, e->line, e->col, e->msg);
    else if (e->file[0])
        fprintf(stderr, "%s: error: %s\n", e->file, e->msg);
    else
        fprintf(stderr, "cnn: error: %s\n", e->msg);
    return cli_exit_code(e->status);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cnn %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'cnn help %s'\n", command);
    return CLI_EXIT_USAGE;
}

int cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) || (arg[n] && arg[n] != '=')) return 0;
    if (!value) return arg[n] ? 0 : 1;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "cnn %s: option %s needs a value\n", argv[0], name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_positional(char **argv, int i, const char **slot)
{
    if (argv[i][0] == '-' && argv[i][1])
        return cli_usage_error(argv[0], "unknown option '%s'", argv[i]);
    if (*slot)
        return cli_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
    *slot = argv[i];
    return 0;
}

int cli_add_set(const char *command, const char *value, const char **sets,
                size_t *n, size_t max)
{
    if (*n == max) return cli_usage_error(command, "too many --set options");
    if (!strchr(value, '='))
        return cli_usage_error(command, "--set needs KEY=VALUE, got '%s'", value);
    sets[(*n)++] = value;
    return 0;
}

long cli_positive(const char *command, const char *name, const char *value)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < 1 || v > 1000000) {
        cli_usage_error(command, "%s must be a positive integer, got '%s'", name, value);
        return -1;
    }
    return v;
}

void cli_set_threads(long n)
{
    cnn_set_threads((int)n);
}
