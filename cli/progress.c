/*
 * The progress bar (see progress.h).
 */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_begin(cli_progress *p, size_t epoch, size_t epochs, size_t total)
{
    p->tty = isatty(fileno(stderr));
    p->epoch = epoch;
    p->epochs = epochs;
    p->total = total;
    p->done = 0;
    p->start = cli_now();
    p->last_draw = 0;
}

static void format_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void cli_progress_update(cli_progress *p, size_t done, double loss, double acc)
{
    p->done = done;
    if (!p->tty) return;
    double now = cli_now();
    if (now - p->last_draw < 0.1 && done < p->total) return;
    p->last_draw = now;
    double elapsed = now - p->start;
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[48];
    format_time(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : 0);
    char bar[31];
    size_t fill = (size_t)(frac * 30);
    for (size_t i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r\033[Kepoch %zu/%zu [%s] %3.0f%% ETA %s  loss %.4f", p->epoch,
            p->epochs, bar, 100 * frac, eta, loss);
    if (!isnan(acc)) fprintf(stderr, "  acc %.2f%%", 100 * acc);   /* NaN: none */
    fprintf(stderr, "  %.0f img/s", rate);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->tty) fprintf(stderr, "\r\033[K");
}
