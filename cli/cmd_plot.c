/*
 * `cnn plot`: the training curves of a run directory as a PNG. Reads the
 * per-epoch records of RUNDIR/log.jsonl (written by `cnn train`) and draws
 * two panels side by side, loss and accuracy against epoch, with training in
 * blue and validation in orange, using the rasteriser in plot.c.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "cli.h"
#include "plot.h"

static const char usage[] =
    "usage: cnn plot RUNDIR [--out FILE]\n"
    "\n"
    "Draw the training curves of a run directory written by 'cnn train': read\n"
    "RUNDIR/log.jsonl (one JSON object per epoch) and write a 960x420 PNG with\n"
    "two panels, loss and accuracy (%) against epoch. Training is drawn in blue\n"
    "with round markers, validation (when the log has it) in orange with square\n"
    "markers. A missing or malformed log is an error naming file:line (exit 1).\n"
    "\n"
    "  --out FILE   where to write the PNG (default RUNDIR/curves.png)\n";

enum { IMG_W = 960, IMG_H = 420, PANEL_W = IMG_W / 2, SCALE = 2 };

#define COLOUR_TRAIN 0x1f77b4u
#define COLOUR_VAL 0xff7f0eu
#define COLOUR_GRID 0xe6e6e6u
#define COLOUR_AXIS 0x333333u
#define COLOUR_TEXT 0x111111u
#define COLOUR_FRAME 0xb0b0b0u

/* One line of log.jsonl; absent values are NaN. */
typedef struct record {
    double epoch, train_loss, train_acc, val_loss, val_acc;
} record;

/* ---- reading log.jsonl ------------------------------------------------- */

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return s;
}

/* Skip a JSON string starting at its opening quote; copies up to n-1
 * characters of its raw contents into buf when buf is not NULL. Returns
 * the character after the closing quote, or NULL when unterminated. */
static const char *skip_string(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1]) s++;
        if (buf && k + 1 < n) buf[k++] = *s;
    }
    if (buf) buf[k] = 0;
    return *s == '"' ? s + 1 : NULL;
}

/* Skip any JSON value that is not a number (string, literal, array or
 * object); returns NULL when it is malformed. */
static const char *skip_value(const char *s)
{
    if (*s == '"') return skip_string(s, NULL, 0);
    static const char *const literals[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++)
        if (!strncmp(s, literals[i], strlen(literals[i]))) return s + strlen(literals[i]);
    if (*s != '[' && *s != '{') return NULL;
    int depth = 0;
    do {
        if (*s == '"') {
            if (!(s = skip_string(s, NULL, 0))) return NULL;
            continue;
        }
        if (*s == '[' || *s == '{') depth++;
        else if (*s == ']' || *s == '}') depth--;
        else if (!*s) return NULL;
        s++;
    } while (depth > 0);
    return s;
}

/* Parse one line holding a flat JSON object into r. Returns 0, or -1 with
 * a message in msg. */
static int parse_record(const char *s, record *r, char *msg, size_t msgsz)
{
    static const char *const keys[] = {"epoch", "train_loss", "train_accuracy", "val_loss",
                                       "val_accuracy"};
    double *slots[] = {&r->epoch, &r->train_loss, &r->train_acc, &r->val_loss, &r->val_acc};
    for (size_t i = 0; i < 5; i++) *slots[i] = NAN;
    s = skip_ws(s);
    if (*s != '{') {
        snprintf(msg, msgsz, "expected a JSON object ('{')");
        return -1;
    }
    s = skip_ws(s + 1);
    if (*s == '}') s++;
    else for (;;) {
        char key[64];
        if (*s != '"' || !(s = skip_string(s, key, sizeof key))) {
            snprintf(msg, msgsz, "expected a quoted key");
            return -1;
        }
        s = skip_ws(s);
        if (*s != ':') {
            snprintf(msg, msgsz, "expected ':' after \"%s\"", key);
            return -1;
        }
        s = skip_ws(s + 1);
        size_t slot = 5;
        for (size_t i = 0; i < 5; i++)
            if (!strcmp(key, keys[i])) slot = i;
        if (*s == '-' || (*s >= '0' && *s <= '9')) {
            char *end;
            double v = strtod(s, &end);
            if (end == s || !isfinite(v)) {
                snprintf(msg, msgsz, "bad number for \"%s\"", key);
                return -1;
            }
            if (slot < 5) *slots[slot] = v;
            s = end;
        } else {
            const char *next = skip_value(s);
            if (!next) {
                snprintf(msg, msgsz, "bad value for \"%s\"", key);
                return -1;
            }
            if (slot < 5 && strncmp(s, "null", 4)) {
                snprintf(msg, msgsz, "\"%s\" must be a number", key);
                return -1;
            }
            s = next;
        }
        s = skip_ws(s);
        if (*s == ',') {
            s = skip_ws(s + 1);
            continue;
        }
        if (*s == '}') {
            s++;
            break;
        }
        snprintf(msg, msgsz, "expected ',' or '}' after the value of \"%s\"", key);
        return -1;
    }
    if (*skip_ws(s)) {
        snprintf(msg, msgsz, "unexpected text after the object");
        return -1;
    }
    for (size_t i = 0; i < 3; i++)
        if (isnan(*slots[i])) {
            snprintf(msg, msgsz, "missing \"%s\"", keys[i]);
            return -1;
        }
    return 0;
}

/* Read every record of path into *out (malloc'd, *n of them). Prints the
 * error and returns an exit code on failure. */
static int read_log(const char *path, record **out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: error: cannot open the training log: %s\n", path, strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    char *line = NULL, msg[256];
    size_t cap = 0, lineno = 0, cnt = 0, room = 0;
    record *recs = NULL;
    int rc = CLI_EXIT_OK;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        if (!*skip_ws(line)) continue;
        if (cnt == room) {
            room = room ? 2 * room : 64;
            record *grown = realloc(recs, room * sizeof *recs);
            if (!grown) {
                fprintf(stderr, "cnn plot: out of memory\n");
                rc = CLI_EXIT_RUNTIME;
                goto out;
            }
            recs = grown;
        }
        if (parse_record(line, &recs[cnt], msg, sizeof msg)) {
            fprintf(stderr, "%s:%zu: error: %s\n", path, lineno, msg);
            rc = CLI_EXIT_RUNTIME;
            goto out;
        }
        cnt++;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: error: read failed: %s\n", path, strerror(errno));
        rc = CLI_EXIT_RUNTIME;
    } else if (!cnt) {
        fprintf(stderr, "%s: error: the log has no epochs\n", path);
        rc = CLI_EXIT_RUNTIME;
    }
out:
    free(line);
    fclose(f);
    if (rc) {
        free(recs);
        return rc;
    }
    *out = recs;
    *n = cnt;
    return CLI_EXIT_OK;
}

/* ---- axes ---------------------------------------------------------------- */

/* A linear axis: values lo..hi drawn onto pixels p0..p1. */
typedef struct axis {
    double lo, hi, step;   /* data range and tick spacing */
    double tick_lo, tick_hi;   /* no ticks outside these (accuracy: 0..100) */
    int p0, p1;
    int decimals;          /* for tick labels */
} axis;

/* The smallest of 1, 2, 5 x 10^k not below x (x > 0). */
static double nice_step(double x)
{
    double p = pow(10, floor(log10(x)));
    double m = x / p;
    return (m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10) * p;
}

/* Choose the tick spacing for about `ticks` ticks over lo..hi. */
static void axis_set_step(axis *a, int ticks, double min_step)
{
    a->step = nice_step((a->hi - a->lo) / ticks);
    if (a->step < min_step) a->step = min_step;
    a->decimals = 0;
    for (double s = a->step; a->decimals < 8 && fabs(s - round(s)) > 1e-6 * s; s *= 10)
        a->decimals++;
}

/* Range [min, max] padded by 5% (a constant value gets a range around it),
 * with about `ticks` nice ticks; min_step bounds the spacing from below. */
static axis make_axis(double min, double max, int ticks, double min_step)
{
    axis a;
    double span = max - min;
    if (span <= 1e-12 * (fabs(max) > 1 ? fabs(max) : 1)) {
        double pad = fabs(max) > 1e-9 ? fabs(max) * 0.1 : 1;
        if (min_step > 0 && pad < min_step) pad = min_step;
        a.lo = min - pad;
        a.hi = max + pad;
    } else {
        a.lo = min - 0.05 * span;
        a.hi = max + 0.05 * span;
    }
    a.tick_lo = -INFINITY;
    a.tick_hi = INFINITY;
    a.p0 = a.p1 = 0;
    axis_set_step(&a, ticks, min_step);
    return a;
}

static int axis_pixel(const axis *a, double v)
{
    return (int)lround(a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0));
}

/* Tick k of the axis is k * step; ticks run from first to last. */
static void axis_ticks(const axis *a, long *first, long *last)
{
    *first = (long)ceil(fmax(a->lo, a->tick_lo) / a->step - 1e-9);
    *last = (long)floor(fmin(a->hi, a->tick_hi) / a->step + 1e-9);
}

static void tick_label(const axis *a, long k, char *buf, size_t n)
{
    double v = (double)k * a->step;
    snprintf(buf, n, "%.*f", a->decimals, k == 0 ? 0.0 : v);
}

/* ---- panels -------------------------------------------------------------- */

typedef struct panel {
    const char *title, *ylabel;
    const record *recs;
    size_t n;
    int has_val;
    size_t field_train, field_val;   /* offsets into record */
    double yscale;                   /* 100 for accuracy in % */
} panel;

static double value(const panel *p, size_t i, int val)
{
    const double *v = (const double *)((const char *)&p->recs[i] +
                                       (val ? p->field_val : p->field_train));
    return *v * p->yscale;
}

static void marker(plot_canvas *c, int x, int y, int r, int square, uint32_t colour)
{
    if (square) plot_rect(c, x - r, y - r, x + r, y + r, colour);
    else plot_disc(c, x, y, r, colour);
}

/* How many of the panel's curve pixels fall in the box (for the legend). */
static size_t box_hits(const panel *p, const axis *ax, const axis *ay, int x0, int y0,
                       int x1, int y1)
{
    size_t hits = 0;
    for (int val = 0; val <= p->has_val; val++)
        for (size_t i = 0; i < p->n; i++) {
            double v1 = value(p, i, val);
            if (isnan(v1)) continue;
            double v0 = i ? value(p, i - 1, val) : NAN;
            double e0 = i ? p->recs[i - 1].epoch : 0;
            int steps = isnan(v0) ? 0 : 64;
            for (int s = 0; s <= steps; s++) {
                double t = steps ? (double)s / steps : 1;
                double e = isnan(v0) ? p->recs[i].epoch : e0 + t * (p->recs[i].epoch - e0);
                double v = isnan(v0) ? v1 : v0 + t * (v1 - v0);
                int x = axis_pixel(ax, e), y = axis_pixel(ay, v);
                if (x >= x0 - 6 && x <= x1 + 6 && y >= y0 - 6 && y <= y1 + 6) hits++;
            }
        }
    return hits;
}

/* Where the legend goes: the corner of the plot area (top right, bottom
 * right, top left, bottom left, in order of preference) that covers the
 * fewest curve pixels. Returns that count; *x, *y get the box's corner. */
static size_t place_legend(const panel *p, const axis *ax, const axis *ay, int w, int h,
                           int *x, int *y)
{
    int left = ax->p0, right = ax->p1, top = ay->p1, bottom = ay->p0, inset = 10;
    int xs[4] = {right - inset - w, right - inset - w, left + inset, left + inset};
    int ys[4] = {top + inset, bottom - inset - h, top + inset, bottom - inset - h};
    size_t best_hits = (size_t)-1;
    for (size_t k = 0; k < 4; k++) {
        size_t hits = box_hits(p, ax, ay, xs[k], ys[k], xs[k] + w, ys[k] + h);
        if (hits < best_hits) {
            best_hits = hits;
            *x = xs[k];
            *y = ys[k];
        }
    }
    return best_hits;
}

static void legend_size(const panel *p, int *w, int *h)
{
    *w = 10 + 28 + 10 + plot_text_width(p->has_val ? "validation" : "train", SCALE) + 10;
    *h = (p->has_val ? 2 : 1) * 24 + 8;
}

static void draw_legend(plot_canvas *c, const panel *p, int x, int y)
{
    const char *names[2] = {"train", "validation"};
    uint32_t colours[2] = {COLOUR_TRAIN, COLOUR_VAL};
    int w, h, row = 24;
    legend_size(p, &w, &h);
    plot_rect(c, x, y, x + w, y + h, COLOUR_FRAME);
    plot_rect(c, x + 1, y + 1, x + w - 1, y + h - 1, PLOT_WHITE);
    for (int k = 0; k <= p->has_val; k++) {
        int cy = y + 4 + k * row + row / 2;
        plot_line(c, x + 10, cy, x + 38, cy, 2, colours[k]);
        marker(c, x + 24, cy, 4, k == 1, colours[k]);
        plot_text(c, x + 48, cy - 7, names[k], SCALE, COLOUR_TEXT);
    }
}

/* Pixel extents of the plot area of the panel at column px; the widest y
 * tick label sets the left margin. */
static void layout(int px, axis *ax, axis *ay)
{
    long first, last;
    char buf[64];
    int label_w = 0, th = plot_text_height(SCALE), cap = 7 * SCALE;
    axis_ticks(ay, &first, &last);
    for (long k = first; k <= last; k++) {
        tick_label(ay, k, buf, sizeof buf);
        int w = plot_text_width(buf, SCALE);
        if (w > label_w) label_w = w;
    }
    ax->p0 = px + 12 + th + 10 + label_w + 12;
    ax->p1 = px + PANEL_W - 24;
    ay->p0 = IMG_H - (12 + th + 10 + cap + 14);
    ay->p1 = 12 + th + 10;
}

/* Draw one panel into the columns px .. px + PANEL_W - 1. */
static void draw_panel(plot_canvas *c, int px, const panel *p)
{
    double emin = INFINITY, emax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < p->n; i++) {
        emin = fmin(emin, p->recs[i].epoch);
        emax = fmax(emax, p->recs[i].epoch);
        for (int val = 0; val <= p->has_val; val++) {
            double v = value(p, i, val);
            if (isnan(v)) continue;
            ymin = fmin(ymin, v);
            ymax = fmax(ymax, v);
        }
    }
    axis ax = make_axis(emin, emax, 6, 1);
    axis ay = make_axis(ymin, ymax, 5, 0);
    if (ymin >= 0) ay.tick_lo = 0;            /* no negative ticks for a loss >= 0 */
    if (p->yscale == 100) ay.tick_hi = 100;   /* nor above 100 % of accuracy */
    layout(px, &ax, &ay);

    /* No corner free for the legend (a single epoch, curves everywhere):
     * raise the top of the y axis until the legend fits above the curves. */
    int lw, lh, lx, ly;
    legend_size(p, &lw, &lh);
    if (place_legend(p, &ax, &ay, lw, lh, &lx, &ly)) {
        double room = (double)(lh + 26) / (ay.p0 - ay.p1);
        double data_hi = fmax(ymax, ay.lo + 0.05 * (ay.hi - ay.lo));
        ay.hi = ay.lo + (data_hi - ay.lo) / (1 - room);
        axis_set_step(&ay, 5, 0);
        layout(px, &ax, &ay);
        place_legend(p, &ax, &ay, lw, lh, &lx, &ly);
    }
    int left = ax.p0, right = ax.p1, top = ay.p1, bottom = ay.p0;
    int th = plot_text_height(SCALE), cap = 7 * SCALE;
    long first, last;
    char buf[64];

    /* grid and ticks */
    axis_ticks(&ay, &first, &last);
    for (long k = first; k <= last; k++) {
        int y = axis_pixel(&ay, (double)k * ay.step);
        plot_rect(c, left + 1, y, right - 1, y, COLOUR_GRID);
        plot_rect(c, left - 6, y, left - 1, y, COLOUR_AXIS);
        tick_label(&ay, k, buf, sizeof buf);
        plot_text(c, left - 10 - plot_text_width(buf, SCALE), y - cap / 2, buf, SCALE,
                  COLOUR_TEXT);
    }
    axis_ticks(&ax, &first, &last);
    for (long k = first; k <= last; k++) {
        int x = axis_pixel(&ax, (double)k * ax.step);
        plot_rect(c, x, top + 1, x, bottom - 1, COLOUR_GRID);
        plot_rect(c, x, bottom + 1, x, bottom + 6, COLOUR_AXIS);
        tick_label(&ax, k, buf, sizeof buf);
        plot_text(c, x - plot_text_width(buf, SCALE) / 2, bottom + 12, buf, SCALE, COLOUR_TEXT);
    }

    /* frame, title, axis labels */
    plot_rect(c, left, top, right, top, COLOUR_AXIS);
    plot_rect(c, left, bottom, right, bottom, COLOUR_AXIS);
    plot_rect(c, left, top, left, bottom, COLOUR_AXIS);
    plot_rect(c, right, top, right, bottom, COLOUR_AXIS);
    plot_text(c, (left + right - plot_text_width(p->title, SCALE)) / 2, 12, p->title, SCALE,
              COLOUR_TEXT);
    plot_text(c, (left + right - plot_text_width("epoch", SCALE)) / 2, IMG_H - 12 - th,
              "epoch", SCALE, COLOUR_TEXT);
    plot_text_up(c, px + 12, (top + bottom + plot_text_width(p->ylabel, SCALE)) / 2,
                 p->ylabel, SCALE, COLOUR_TEXT);

    /* curves, validation first so that training stays on top; markers
     * shrink when the epochs crowd together, down to none */
    double spacing = p->n > 1 ? (double)(right - left) * 0.9 / (emax - emin) : 99;
    int r = spacing >= 16 ? 4 : (int)(spacing / 4);
    for (int val = p->has_val; val >= 0; val--) {
        uint32_t colour = val ? COLOUR_VAL : COLOUR_TRAIN;
        for (size_t i = 1; i < p->n; i++) {
            double v0 = value(p, i - 1, val), v1 = value(p, i, val);
            if (isnan(v0) || isnan(v1)) continue;
            plot_line(c, axis_pixel(&ax, p->recs[i - 1].epoch), axis_pixel(&ay, v0),
                      axis_pixel(&ax, p->recs[i].epoch), axis_pixel(&ay, v1), 2, colour);
        }
        for (size_t i = 0; i < p->n; i++) {
            double v = value(p, i, val);
            if (!isnan(v) && r > 0)
                marker(c, axis_pixel(&ax, p->recs[i].epoch), axis_pixel(&ay, v), r, val,
                       colour);
        }
    }
    draw_legend(c, p, lx, ly);
}

/* ---- the command --------------------------------------------------------- */

static int run(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            out = v;
        } else if (cli_positional(argv, i, &dir)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!dir) return cli_usage_error(argv[0], "missing RUNDIR");

    char log_path[4200], png_path[4200];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", dir);
    if (out) snprintf(png_path, sizeof png_path, "%s", out);
    else snprintf(png_path, sizeof png_path, "%s/curves.png", dir);

    record *recs;
    size_t n;
    int rc = read_log(log_path, &recs, &n);
    if (rc) return rc;
    int has_val = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(recs[i].val_loss) || !isnan(recs[i].val_acc)) has_val = 1;

    plot_canvas c;
    if (plot_canvas_create(&c, IMG_W, IMG_H)) {
        fprintf(stderr, "cnn plot: out of memory\n");
        free(recs);
        return CLI_EXIT_RUNTIME;
    }
    panel loss = {"loss", "loss", recs, n, has_val, offsetof(record, train_loss),
                  offsetof(record, val_loss), 1};
    panel acc = {"accuracy", "accuracy (%)", recs, n, has_val, offsetof(record, train_acc),
                 offsetof(record, val_acc), 100};
    draw_panel(&c, 0, &loss);
    draw_panel(&c, PANEL_W, &acc);
    if (!stbi_write_png(png_path, c.w, c.h, 3, c.rgb, c.w * 3)) {
        fprintf(stderr, "%s: error: cannot write the PNG\n", png_path);
        rc = CLI_EXIT_RUNTIME;
    } else {
        printf("curves: %s (%zu epoch%s%s)\n", png_path, n, n == 1 ? "" : "s",
               has_val ? "" : ", no validation");
    }
    plot_canvas_free(&c);
    free(recs);
    return rc;
}

const cli_command cli_cmd_plot = {
    "plot", "draw the loss and accuracy curves of a run directory (PNG)", usage, run,
};
