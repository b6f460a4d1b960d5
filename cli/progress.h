/*
 * Progress display on stderr. On a terminal: one bar per epoch, redrawn in
 * place at most ten times a second, with ETA, loss, accuracy and images/s.
 * Otherwise nothing until the caller prints its plain per-epoch line.
 */
#ifndef CNN_PROGRESS_H
#define CNN_PROGRESS_H

#include <stddef.h>

typedef struct cli_progress {
    int tty;                 /* stderr is a terminal */
    size_t epoch, epochs;
    size_t total, done;      /* samples this epoch */
    double start, last_draw; /* seconds */
} cli_progress;

/* Wall-clock seconds (monotonic). */
double cli_now(void);

void cli_progress_begin(cli_progress *p, size_t epoch, size_t epochs, size_t total);
/* After each batch: samples done so far, running mean loss and accuracy. */
void cli_progress_update(cli_progress *p, size_t done, double loss, double acc);
/* Clear the bar (the caller then prints its epoch line). */
void cli_progress_end(cli_progress *p);

#endif
