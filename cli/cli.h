/*
 * What the subcommands of `cnn` share: the command table, exit codes,
 * printing of error records, and the option scanner.
 */
#ifndef CNN_CLI_H
#define CNN_CLI_H

#include <stddef.h>
#include <stdio.h>
#include "../core/error.h"

/* Exit codes (DESIGN.md): */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_RUNTIME = 1,   /* I/O, non-finite loss, corrupted files */
    CLI_EXIT_USAGE = 2,     /* bad command line or config */
    CLI_EXIT_GATE = 3       /* a gate such as --min-accuracy not met */
};

typedef struct cli_command {
    const char *name;
    const char *synopsis;   /* one line for `cnn --help` */
    const char *usage;      /* full text for `cnn help NAME` */
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
} cli_command;

extern const cli_command cli_cmd_train, cli_cmd_eval, cli_cmd_summary, cli_cmd_check,
    cli_cmd_receptive_field, cli_cmd_bench;
extern const cli_command cli_cmd_plot, cli_cmd_predict, cli_cmd_data, cli_cmd_finetune,
    cli_cmd_visualize, cli_cmd_restore;

/* Print "file:line:col: error: message" (the parts that are known) to
 * stderr and return the exit code for its status. */
int cli_report(const cnn_error *e);

/* Exit code for a status: config and argument errors 2, others 1. */
int cli_exit_code(cnn_status s);

/* Print "cnn COMMAND: message" and a hint to see the usage; returns 2. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Option scanning: is argv[*i] the option `name`? If it takes a value,
 * *value gets it (from "--name=value" or the next argument) and *i
 * advances. Returns 1 when matched, 0 when not, -1 when the value is
 * missing (after printing the error). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* The one positional argument of a command: argv[i] (not an option) goes
 * into *slot if it is still empty. Returns 0, or prints the error (an
 * unknown option, or an unexpected extra argument) and returns 2. */
int cli_positional(char **argv, int i, const char **slot);

/* Record a --set KEY=VALUE override in sets[*n] (at most max). Returns 0,
 * or prints the error and returns 2. */
int cli_add_set(const char *command, const char *value, const char **sets,
                size_t *n, size_t max);

/* Parse a positive integer option value; prints an error and returns -1
 * when invalid. */
long cli_positive(const char *command, const char *name, const char *value);

/* Write s as a JSON string literal (quotes, escapes) to f. */
void cli_json_string(FILE *f, const char *s);

/* Set the number of compute threads (OpenBLAS); 0 = all cores. */
void cli_set_threads(long n);

#endif
