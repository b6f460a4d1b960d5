/*
 * `cnn visualize`: pictures of what a network has learnt. --filters draws a
 * layer's weights as a grid of small images; --activations draws the
 * feature maps a layer computes for one image. Both write a PNG with
 * stb_image_write and print one line saying what was drawn.
 *
 * Filters: a conv's weight [filters][channels/groups][kh][kw] gives one
 * tile per filter (a conv_transpose's [channels][filters][kh][kw] one per
 * input channel: its stamp in every output channel). Three channels (a first
 * layer on RGB images) are drawn in colour, one tile per filter; one channel
 * as one grey tile per filter; otherwise each filter is a row of grey tiles,
 * one per channel, or with --mean one grey tile of the mean over its
 * channels. Each filter is scaled on its
 * own, from its smallest weight (black) to its largest (white), over all
 * its channels, so tiles compare within a filter but not between filters.
 *
 * Activations: the image goes through the evaluation path of the model
 * (decode, resize, centre crop, normalise), the network runs forward in
 * evaluation mode, and each channel of the layer's output is one grey
 * tile, scaled from its own minimum (black) to its maximum (white); a
 * constant map is drawn black.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "../core/rng.h"
#include "../data/augment.h"
#include "../data/image.h"
#include "cli.h"
#include "plot.h"
#include "run.h"
#include "task.h"

#define GAP 2                       /* pixels between tiles */
#define MAX_CANVAS (16384 * 16384)  /* pixels */

static const char usage[] =
    "usage: cnn visualize CKPT|CONFIG --filters LAYER [--out FILE.png] [--mean]\n"
    "                     [--scale N] [--cols N]\n"
    "       cnn visualize CKPT|CONFIG --activations LAYER --image IMAGE\n"
    "                     [--out FILE.png] [--scale N] [--cols N]\n"
    "\n"
    "Draw a layer's filters, or its feature maps for one image, as a grid of\n"
    "tiles in a PNG. A CONFIG's network is freshly initialised from its seed.\n"
    "\n"
    "  --filters LAYER      the weights of a conv (a tile per filter) or\n"
    "                       conv_transpose (a tile per input channel) layer:\n"
    "                       in colour when they have 3 channels, one grey tile\n"
    "                       when they have 1, else a row of grey tiles per\n"
    "                       filter, one per channel; each filter scaled from\n"
    "                       its smallest weight (black) to its largest (white)\n"
    "  --mean               grey filters: one tile of the mean over channels\n"
    "  --activations LAYER  the feature maps of any layer for --image, one\n"
    "                       grey tile per channel, each scaled from its own\n"
    "                       minimum to its maximum\n"
    "  --image IMAGE        the image (JPEG, PNG, BMP, TGA, GIF), prepared as\n"
    "                       cnn predict prepares it\n"
    "  --out FILE           the PNG (default filters.png or activations.png)\n"
    "  --scale N            pixels per weight or activation (default: tiles of\n"
    "                       about 48 pixels for filters, 96 for maps)\n"
    "  --cols N             tiles per row (default: a square grid; with a\n"
    "                       row per filter, the channels)\n";

/* Pixels per cell so that a tile of n cells is about `target` pixels wide. */
static size_t auto_scale(size_t n, size_t target)
{
    size_t s = target / (n ? n : 1);
    return s < 1 ? 1 : s;
}

/* Draw one tile at (x0, y0): cells v[ch][h][w] (planes `plane` floats
 * apart), grey when nch is 1, RGB when 3, mapped from [lo, hi] to 0..255,
 * each cell a scale x scale block. */
static void draw_tile(plot_canvas *c, int x0, int y0, const float *v, size_t nch,
                      size_t plane, size_t h, size_t w, double lo, double hi, size_t scale)
{
    double range = hi - lo;
    for (size_t y = 0; y < h * scale; y++)
        for (size_t x = 0; x < w * scale; x++) {
            unsigned char *p = c->rgb + 3 * ((size_t)(y0 + (int)y) * (size_t)c->w +
                                             (size_t)(x0 + (int)x));
            size_t cell = (y / scale) * w + x / scale;
            for (size_t k = 0; k < 3; k++) {
                double t = range > 0 ? ((double)v[(nch == 3 ? k : 0) * plane + cell] - lo) /
                                       range : 0.0;
                p[k] = (unsigned char)(255.0 * (t < 0 ? 0 : t > 1 ? 1 : t) + 0.5);
            }
        }
}

static void min_max(const float *v, size_t n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

/* A canvas of rows x cols tiles of th x tw pixels; prints the error and
 * returns an exit code when too large or out of memory. */
static int make_canvas(plot_canvas *c, size_t rows, size_t cols, size_t th, size_t tw)
{
    size_t W = cols * (tw + GAP) + GAP, H = rows * (th + GAP) + GAP;
    if (W > 16384 || H > 16384 || W * H > MAX_CANVAS) {
        fprintf(stderr, "cnn visualize: error: the picture would be %zux%zu pixels (at "
                "most 16384 a side); try --mean, --scale 1 or --cols\n", W, H);
        return CLI_EXIT_USAGE;
    }
    if (plot_canvas_create(c, (int)W, (int)H)) {
        fprintf(stderr, "cnn visualize: error: out of memory for a %zux%zu picture\n", W, H);
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

typedef struct vis_opts {
    const char *out;
    size_t scale, cols;   /* 0: automatic */
    int mean;
} vis_opts;

static int write_png(const plot_canvas *c, const char *out)
{
    if (!stbi_write_png(out, c->w, c->h, 3, c->rgb, c->w * 3)) {
        fprintf(stderr, "%s: error: cannot write the PNG\n", out);
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

static int draw_filters(const cnn_layer *l, const char *path, const vis_opts *o)
{
    const cnn_param *wp = l->nparams ? &l->params[0] : NULL;
    if (!wp || strcmp(wp->name, "weight") || wp->ndim != 4) {
        fprintf(stderr, "%s: error: layer '%s' (%s) has no filters: --filters takes a "
                "conv or conv_transpose layer\n", path, l->name, l->kind->name);
        return CLI_EXIT_USAGE;
    }
    const size_t nf = wp->dims[0], nch = wp->dims[1], kh = wp->dims[2], kw = wp->dims[3];
    const size_t plane = kh * kw, per = nch * plane;
    const size_t scale = o->scale ? o->scale : auto_scale(kh > kw ? kh : kw, 48);
    const int colour = nch == 3, row_per_filter = !colour && !o->mean && nch > 1;
    const size_t th = kh * scale, tw = kw * scale;
    size_t cols, rows;
    if (row_per_filter) {
        cols = o->cols ? o->cols : nch;
        rows = nf * ((nch + cols - 1) / cols);
    } else {
        cols = o->cols ? o->cols : (size_t)ceil(sqrt((double)nf));
        rows = (nf + cols - 1) / cols;
    }
    float *mean = malloc(plane * sizeof *mean);
    plot_canvas c = {0};
    int rc = mean ? make_canvas(&c, rows, cols, th, tw) : CLI_EXIT_RUNTIME;
    if (rc) {
        free(mean);
        return rc;
    }
    for (size_t f = 0; f < nf; f++) {
        const float *v = wp->data + f * per;   /* [nch][kh][kw] */
        double lo, hi;
        if (row_per_filter) {
            min_max(v, per, &lo, &hi);
            size_t rows_each = (nch + cols - 1) / cols;
            for (size_t ch = 0; ch < nch; ch++) {
                size_t r = f * rows_each + ch / cols, k = ch % cols;
                draw_tile(&c, GAP + (int)(k * (tw + GAP)), GAP + (int)(r * (th + GAP)),
                          v + ch * plane, 1, plane, kh, kw, lo, hi, scale);
            }
            continue;
        }
        const float *tile = v;
        if (!colour) {   /* --mean */
            for (size_t i = 0; i < plane; i++) {
                double s = 0;
                for (size_t ch = 0; ch < nch; ch++) s += v[ch * plane + i];
                mean[i] = (float)(s / (double)nch);
            }
            tile = mean;
        }
        min_max(tile, colour ? per : plane, &lo, &hi);
        draw_tile(&c, GAP + (int)((f % cols) * (tw + GAP)),
                  GAP + (int)((f / cols) * (th + GAP)), tile, colour ? 3 : 1, plane, kh,
                  kw, lo, hi, scale);
    }
    rc = write_png(&c, o->out);
    if (!rc)
        printf("filters of %s (%s, weight %zux%zux%zux%zu): %zu %s, %s -> %s (%dx%d)\n",
               l->name, l->kind->name, nf, nch, kh, kw, row_per_filter ? nf * nch : nf,
               row_per_filter ? "tiles (a row per filter, a tile per channel)" : "tiles",
               colour ? "colour" : o->mean ? "grey, the mean over channels" : "grey",
               o->out, c.w, c.h);
    plot_canvas_free(&c);
    free(mean);
    return rc;
}

static int draw_activations(cli_model *m, cnn_layer *l, const char *image,
                            const vis_opts *o)
{
    const cnn_data_spec *d = &m->cfg.data;
    cnn_image_opts io = {d->input.c, d->work_h, d->work_w, (cnn_resize_mode)d->resize,
                         d->max_pixels};
    uint8_t *pixels = malloc(d->input.c * d->work_h * d->work_w);
    if (!pixels) {
        fprintf(stderr, "cnn visualize: out of memory\n");
        return CLI_EXIT_RUNTIME;
    }
    cnn_error e = {0};
    if (cnn_image_load(image, &io, pixels, &e)) {
        free(pixels);
        return cli_report(&e);
    }
    /* through the task's pairing: colorization's network sees the L
     * channel, context's the image's centre patch (then a neighbour) */
    cli_task *tk = cli_task_create(m, 1);
    if (!tk) {
        free(pixels);
        return CLI_EXIT_RUNTIME;
    }
    cnn_center(pixels, d->input.c, d->work_h, d->work_w, cli_task_loader_buffer(tk),
               d->input.h, d->input.w, m->mean, m->std);
    free(pixels);
    cnn_net_forward(m->net, cli_task_prepare(tk, 1, NULL, m->cfg.seed, 0), 0);
    cli_task_free(tk);
    const size_t C = l->out.c, H = l->out.h, W = l->out.w, plane = H * W;
    const size_t scale = o->scale ? o->scale : auto_scale(H > W ? H : W, 96);
    const size_t cols = o->cols ? o->cols : (size_t)ceil(sqrt((double)C));
    const size_t rows = (C + cols - 1) / cols;
    plot_canvas c = {0};
    int rc = make_canvas(&c, rows, cols, H * scale, W * scale);
    if (rc) return rc;
    size_t constant = 0;
    for (size_t ch = 0; ch < C; ch++) {
        const float *v = l->y + ch * plane;   /* [H][W] of image 0 */
        double lo, hi;
        min_max(v, plane, &lo, &hi);
        constant += !(hi > lo);
        draw_tile(&c, GAP + (int)((ch % cols) * (W * scale + GAP)),
                  GAP + (int)((ch / cols) * (H * scale + GAP)), v, 1, plane, H, W, lo, hi,
                  scale);
    }
    rc = write_png(&c, o->out);
    if (!rc)
        printf("activations of %s (%s) for %s: %zu maps of %zux%zu (%zu constant) -> %s "
               "(%dx%d)\n", l->name, l->kind->name, image, C, H, W, constant, o->out, c.w,
               c.h);
    plot_canvas_free(&c);
    return rc;
}

static int run(int argc, char **argv)
{
    const char *path = NULL, *filters = NULL, *acts = NULL, *image = NULL;
    vis_opts o = {NULL, 0, 0, 0};
    long v_scale = 0, v_cols = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--filters", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            filters = v;
        } else if ((r = cli_opt(argc, argv, &i, "--activations", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            acts = v;
        } else if ((r = cli_opt(argc, argv, &i, "--image", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            image = v;
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            o.out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--scale", &v))) {
            if (r < 0 || (v_scale = cli_positive(argv[0], "--scale", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--cols", &v))) {
            if (r < 0 || (v_cols = cli_positive(argv[0], "--cols", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_opt(argc, argv, &i, "--mean", NULL)) {
            o.mean = 1;
        } else if (cli_positional(argv, i, &path)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!path) return cli_usage_error(argv[0], "missing CKPT or CONFIG");
    if (!filters == !acts)
        return cli_usage_error(argv[0], "give one of --filters LAYER and --activations LAYER");
    if (acts && !image) return cli_usage_error(argv[0], "--activations needs --image IMAGE");
    if (filters && image) return cli_usage_error(argv[0], "--image goes with --activations");
    if (acts && o.mean) return cli_usage_error(argv[0], "--mean goes with --filters");
    if (v_scale > 256) return cli_usage_error(argv[0], "--scale is at most 256");
    o.scale = (size_t)v_scale;
    o.cols = (size_t)v_cols;
    if (!o.out) o.out = filters ? "filters.png" : "activations.png";

    cli_model m;
    int ckpt = cli_is_checkpoint(path);
    int rc = ckpt ? cli_model_from_checkpoint(path, 1, &m, NULL)
                  : cli_model_from_config(path, NULL, 0, 1, &m);
    if (rc) return rc;
    if (!ckpt) {
        uint64_t rng = cnn_rng_seed(m.cfg.seed, 1);
        cnn_net_init(m.net, &rng);
    }
    cnn_layer *l = cli_model_layer(&m, path, filters ? filters : acts);
    if (!l) rc = CLI_EXIT_USAGE;
    else if (filters) rc = draw_filters(l, path, &o);
    else rc = draw_activations(&m, l, image, &o);
    cli_model_free(&m);
    return rc;
}

const cli_command cli_cmd_visualize = {
    "visualize", "draw a layer's filters, or its feature maps for an image (PNG)", usage,
    run,
};
