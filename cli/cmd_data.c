/*
 * `cnn data preview`: what the network sees. A few training samples are
 * picked with the config's seed, decoded and augmented exactly as the
 * trainer's loader would (the same code, the same per-sample draws for
 * epoch --epoch), and drawn as a grid of tiles with their class names.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb_image_write.h>

#include "../core/rng.h"
#include "../data/source.h"
#include "cli.h"
#include "plot.h"
#include "run.h"

#define MAX_SETS 64

static const char usage[] =
    "usage: cnn data preview CONFIG [--out FILE.png] [--count N] [--cols N]\n"
    "                        [--epoch N] [--set KEY=VALUE]...\n"
    "\n"
    "Draw a grid of augmented training samples, with their class names, as the\n"
    "network sees them in training (data.augment applied, before normalisation).\n"
    "\n"
    "  --out FILE     the PNG to write (default: preview.png)\n"
    "  --count N      samples to draw (default 32)\n"
    "  --cols N       tiles per row (default 8)\n"
    "  --epoch N      draw the augmentations of epoch N (default 1)\n"
    "  --set K=V      override a config key, as in cnn train\n";

/* A dataset holding samples idx[0..n) of ds (pixels, labels, class names). */
static int pick(const cnn_dataset *ds, const uint32_t *idx, size_t n, cnn_dataset *out)
{
    size_t chw = ds->c * ds->h * ds->w;
    *out = *ds;
    out->n = n;
    out->mapped = 0;
    out->classes = NULL;
    out->pixels = malloc(n * chw + 1);
    out->labels = malloc(n * sizeof *out->labels + 1);
    if (!out->pixels || !out->labels) return -1;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->pixels + i * chw, ds->pixels + (size_t)idx[i] * chw, chw);
        out->labels[i] = ds->labels[idx[i]];
    }
    return 0;
}

/* Load n training samples chosen by seed: only those are decoded. */
static int load_samples(const cnn_config *cfg, size_t n, cnn_dataset *ds)
{
    const cnn_data_source *src = &cfg->data.train;
    uint64_t rng = cnn_rng_seed(cfg->seed, 77);
    int rc;
    if (src->kind != CNN_SOURCE_DIR && src->kind != CNN_SOURCE_LIST) {
        cnn_dataset all;
        if ((rc = cli_load_source(cfg, src, "train", NULL, SIZE_MAX, &all))) return rc;
        uint32_t *idx = malloc(all.n * sizeof *idx + 1);
        if (!idx) {
            cnn_dataset_free(&all);
            return CLI_EXIT_RUNTIME;
        }
        for (uint32_t i = 0; i < all.n; i++) idx[i] = i;
        cnn_rng_shuffle(&rng, idx, (uint32_t)all.n);
        rc = pick(&all, idx, n < all.n ? n : all.n, ds) ? CLI_EXIT_RUNTIME : 0;
        free(idx);
        cnn_dataset_free(&all);
        return rc;
    }
    /* a folder or list: write a list file of the chosen samples */
    cnn_file_list l = {0};
    cnn_error e = {0};
    cnn_status st = src->kind == CNN_SOURCE_DIR ? cnn_list_dir(src->path, &l, &e)
                                                : cnn_list_file(src->path, &l, &e);
    if (st) return cli_report(&e);
    uint32_t *idx = malloc(l.n * sizeof *idx + 1);
    if (!idx) {
        cnn_file_list_free(&l);
        return CLI_EXIT_RUNTIME;
    }
    for (uint32_t i = 0; i < l.n; i++) idx[i] = i;
    cnn_rng_shuffle(&rng, idx, (uint32_t)l.n);
    cnn_file_list sub = l;
    sub.n = n < l.n ? n : l.n;
    sub.paths = malloc(sub.n * sizeof *sub.paths + 1);
    sub.labels = malloc(sub.n * sizeof *sub.labels + 1);
    rc = CLI_EXIT_RUNTIME;
    if (sub.paths && sub.labels) {
        for (size_t i = 0; i < sub.n; i++) {
            sub.paths[i] = l.paths[idx[i]];
            sub.labels[i] = l.labels[idx[i]];
        }
        const cnn_data_spec *d = &cfg->data;
        cnn_decode_opts o = {
            .image = {d->input.c, d->work_h, d->work_w, (cnn_resize_mode)d->resize,
                      d->max_pixels},
            .skip_bad = d->skip_bad, .threads = 1,
        };
        cnn_decode_report r;
        rc = cnn_dataset_decode(&sub, &o, ds, &r, &e) ? cli_report(&e) : 0;
    }
    free(sub.paths);
    free(sub.labels);
    free(idx);
    cnn_file_list_free(&l);
    return rc;
}

static int preview(const char *config, const char *const *sets, size_t nsets,
                   const char *out, size_t count, size_t cols, uint64_t epoch)
{
    cnn_config cfg;
    cnn_error e = {0};
    if (cnn_config_load(config, sets, nsets, &cfg, &e)) {
        cnn_error_file(&e, config);
        cli_report(&e);
        return CLI_EXIT_USAGE;
    }
    cnn_dataset ds = {0};
    cnn_loader ld = {0};
    plot_canvas canvas = {0};
    float *x = NULL;
    int *y = NULL;
    int rc = load_samples(&cfg, count, &ds);
    if (rc) goto out;
    size_t c = cfg.data.input.c, h = cfg.data.input.h, w = cfg.data.input.w;
    count = ds.n;
    /* the loader normalises as in training, so that cutout fills its
     * squares with the mean; the tiles undo it. With normalize: auto the
     * samples' own statistics stand in for the training set's. */
    float mean[4], std[4];
    if (cfg.data.has_normalize) {
        memcpy(mean, cfg.data.mean, sizeof mean);
        memcpy(std, cfg.data.std, sizeof std);
    } else {
        cnn_dataset_stats(&ds, mean, std);
    }
    cnn_loader_opts lo = {
        .batch = count, .h = h, .w = w, .shuffle = 0,
        .seed = cnn_rng_seed(cfg.seed, 3), .augs = cfg.data.augs, .naugs = cfg.data.naugs,
        .mean = mean, .std = std,
    };
    x = malloc(count * c * h * w * sizeof *x);
    y = malloc(count * sizeof *y);
    if (!x || !y || cnn_loader_init(&ld, &ds, &lo, &e)) {
        rc = x && y ? cli_report(&e) : CLI_EXIT_RUNTIME;
        goto out;
    }
    cnn_loader_epoch(&ld, epoch > 0 ? epoch - 1 : 0);
    cnn_loader_next(&ld, x, y);

    /* tiles at least 64 pixels wide, scaled by a whole factor */
    size_t scale = w >= 64 ? 1 : (64 + w - 1) / w;
    int font = 1, pad = 4, label_h = plot_text_height(font) + 4;
    int tw = (int)(w * scale), th = (int)(h * scale);
    size_t rows = (count + cols - 1) / cols;
    int W = (int)cols * (tw + pad) + pad, H = (int)rows * (th + label_h + pad) + pad;
    if (plot_canvas_create(&canvas, W, H)) {
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        int x0 = pad + (int)(i % cols) * (tw + pad);
        int y0 = pad + (int)(i / cols) * (th + label_h + pad);
        const float *img = x + i * c * h * w;   /* [c][h][w], normalised */
        for (int py = 0; py < th; py++)
            for (int px = 0; px < tw; px++) {
                size_t sy = (size_t)py / scale, sx = (size_t)px / scale;
                unsigned char *p = canvas.rgb + 3 * ((size_t)(y0 + py) * (size_t)W +
                                                     (size_t)(x0 + px));
                for (int k = 0; k < 3; k++) {
                    size_t ch = c >= 3 ? (size_t)k : 0;
                    float v = (img[(ch * h + sy) * w + sx] * std[ch] + mean[ch]) * 255.0f
                              + 0.5f;
                    p[k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        char num[32];
        const char *name = ds.classes && (size_t)y[i] < ds.nclasses ? ds.classes[y[i]] : num;
        snprintf(num, sizeof num, "%d", y[i]);
        char label[64];
        snprintf(label, sizeof label, "%s", name);
        while (plot_text_width(label, font) > tw && strlen(label) > 1)
            label[strlen(label) - 1] = '\0';
        plot_text(&canvas, x0, y0 + th + 2, label, font, PLOT_BLACK);
    }
    if (!stbi_write_png(out, W, H, 3, canvas.rgb, W * 3)) {
        fprintf(stderr, "%s: error: cannot write the PNG\n", out);
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    printf("preview: %s (%zu training samples, %zux%zu, epoch %llu augmentations%s)\n",
           out, count, h, w, (unsigned long long)(epoch > 0 ? epoch : 1),
           cfg.data.naugs ? "" : ": none configured");
out:
    plot_canvas_free(&canvas);
    free(x);
    free(y);
    cnn_loader_free(&ld);
    cnn_dataset_free(&ds);
    cnn_config_free(&cfg);
    return rc;
}

static int run(int argc, char **argv)
{
    const char *config = NULL, *out = "preview.png", *sets[MAX_SETS + 1];
    size_t nsets = 0;
    long count = 32, cols = 8, epoch = 1;
    if (argc < 2 || strcmp(argv[1], "preview"))
        return cli_usage_error(argv[0], "expected 'preview', got '%s'",
                               argc < 2 ? "nothing" : argv[1]);
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--count", &v))) {
            if (r < 0 || (count = cli_positive(argv[0], "--count", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--cols", &v))) {
            if (r < 0 || (cols = cli_positive(argv[0], "--cols", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--epoch", &v))) {
            if (r < 0 || (epoch = cli_positive(argv[0], "--epoch", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            if (r < 0 || cli_add_set(argv[0], v, sets, &nsets, MAX_SETS))
                return CLI_EXIT_USAGE;
        } else if (cli_positional(argv, i, &config)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!config) return cli_usage_error(argv[0], "missing CONFIG");
    if (count > 4096) return cli_usage_error(argv[0], "--count is at most 4096");
    return preview(config, sets, nsets, out, (size_t)count, (size_t)cols, (uint64_t)epoch);
}

const cli_command cli_cmd_data = {
    "data", "look at the training data: data preview draws augmented samples", usage, run,
};
