/*
 * `cnn receptive-field`: the theoretical and the effective receptive field
 * of one layer's centre unit (Luo et al. 2016), with the gradient map
 * written as a PNG heat map.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "../core/erf.h"
#include "../core/rng.h"
#include "cli.h"
#include "run.h"

static const char usage[] =
    "usage: cnn receptive-field CONFIG|CKPT --layer NAME [--out erf.png]\n"
    "                           [--samples N] [--from-data] [--seed N]\n"
    "\n"
    "Back-propagate a unit gradient from the centre unit of layer NAME's output\n"
    "(all channels) to the input, average |gradient| over N inputs (default 16;\n"
    "random normal inputs, or with --from-data the first N training images of\n"
    "the config), and print the theoretical receptive field, the radii holding\n"
    "50% and 95% of the gradient mass, and those as a fraction of the\n"
    "theoretical field. A CONFIG's network is freshly initialised from its seed\n"
    "(or --seed); a CKPT's has its trained weights.\n"
    "\n"
    "  --out FILE   write the map as a PNG heat map (the theoretical field is\n"
    "               outlined in green)\n";

/* A black-red-yellow-white ramp for t in [0, 1]. */
static void heat(double t, unsigned char *rgb)
{
    double c[3] = {3 * t, 3 * t - 1, 3 * t - 2};
    for (int i = 0; i < 3; i++)
        rgb[i] = (unsigned char)(255.0 * (c[i] < 0 ? 0 : c[i] > 1 ? 1 : c[i]) + 0.5);
}

static int write_png(const char *path, const double *map, size_t h, size_t w,
                     size_t rf_h, size_t rf_w)
{
    size_t scale = 1;
    while ((h > w ? h : w) * scale < 384 && scale < 64) scale++;
    size_t H = h * scale, W = w * scale;
    unsigned char *img = malloc(H * W * 3);
    if (!img) return -1;
    double top = 0, cy = 0, cx = 0, total = 0;
    for (size_t i = 0; i < h * w; i++) {
        if (map[i] > top) top = map[i];
        total += map[i];
        cy += (double)(i / w) * map[i];
        cx += (double)(i % w) * map[i];
    }
    if (total > 0) { cy /= total; cx /= total; }
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++)
            heat(top > 0 ? map[(y / scale) * w + x / scale] / top : 0, img + 3 * (y * W + x));
    /* outline of the theoretical field around the centre of mass */
    long y0 = (long)((cy - (double)(rf_h - 1) / 2) * (double)scale);
    long x0 = (long)((cx - (double)(rf_w - 1) / 2) * (double)scale);
    long y1 = y0 + (long)(rf_h * scale) - 1, x1 = x0 + (long)(rf_w * scale) - 1;
    for (long y = y0; y <= y1; y++)
        for (long x = x0; x <= x1; x++) {
            if (y != y0 && y != y1 && x != x0 && x != x1) continue;
            if (y < 0 || x < 0 || y >= (long)H || x >= (long)W) continue;
            unsigned char *p = img + 3 * ((size_t)y * W + (size_t)x);
            p[0] = 40; p[1] = 220; p[2] = 60;
        }
    int ok = stbi_write_png(path, (int)W, (int)H, 3, img, (int)(W * 3));
    free(img);
    return ok ? 0 : -1;
}

static int run(int argc, char **argv)
{
    const char *path = NULL, *layer = NULL, *out = NULL, *seed = NULL;
    long samples = 16;
    int from_data = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--layer", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            layer = v;
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            seed = v;
        } else if ((r = cli_opt(argc, argv, &i, "--samples", &v))) {
            if (r < 0 || (samples = cli_positive(argv[0], "--samples", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_opt(argc, argv, &i, "--from-data", NULL)) {
            from_data = 1;
        } else if (cli_positional(argv, i, &path)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!path) return cli_usage_error(argv[0], "missing CONFIG or CKPT");
    if (!layer) return cli_usage_error(argv[0], "missing --layer NAME");

    cli_model m;
    char seed_set[80];
    const char *sets[1] = {seed_set};
    snprintf(seed_set, sizeof seed_set, "seed=%s", seed ? seed : "");
    int ckpt = cli_is_checkpoint(path);
    int rc = ckpt ? cli_model_from_checkpoint(path, (size_t)samples, &m, NULL)
                  : cli_model_from_config(path, sets, seed ? 1 : 0, (size_t)samples, &m);
    if (rc) return rc;
    cnn_net *net = m.net;
    cnn_layer *target = cli_model_layer(&m, path, layer);
    if (!target) {
        cli_model_free(&m);
        return CLI_EXIT_USAGE;
    }
    size_t t = (size_t)(target - net->layers);
    if (!ckpt) {
        uint64_t rng = cnn_rng_seed(m.cfg.seed, 1);
        cnn_net_init(net, &rng);
    }
    /* a context network sees two patches per sample: every row is a sample
     * here; a pair layer needs them in twos */
    size_t n = net->max_batch, per = cnn_shape_size(net->input);
    size_t pairs = cnn_net_output(net)->batch_div;
    const cnn_shape d = m.cfg.data.input;
    if (n % pairs || (from_data && (d.c != net->input.c || d.h != net->input.h
                                    || d.w != net->input.w))) {
        if (n % pairs)
            fprintf(stderr, "%s: error: --samples must be a multiple of %zu for this network "
                    "(its pair layers join samples in groups of %zu)\n", path, pairs, pairs);
        else
            fprintf(stderr, "%s: error: --from-data feeds whole %zux%zux%zu images, but task "
                    "%s shows the network %zux%zux%zu inputs; leave --from-data out\n", path,
                    d.c, d.h, d.w, cnn_task_names[m.cfg.task.type], net->input.c,
                    net->input.h, net->input.w);
        cli_model_free(&m);
        return CLI_EXIT_USAGE;
    }
    if (from_data) {
        cnn_dataset ds = {0};
        cnn_loader ld;
        cnn_error e = {0};
        if ((rc = cli_load_source(&m.cfg, &m.cfg.data.train, "train", NULL, SIZE_MAX, &ds))) {
            cli_model_free(&m);
            return rc;
        }
        cnn_loader_opts lo = {.batch = n, .h = m.cfg.data.input.h, .w = m.cfg.data.input.w,
                              .mean = m.mean, .std = m.std};
        if (cnn_loader_init(&ld, &ds, &lo, &e)) {
            cnn_dataset_free(&ds);
            cli_model_free(&m);
            return cli_report(&e);
        }
        n = cnn_loader_next(&ld, net->x, NULL);
        n -= n % pairs;   /* a small dataset: whole pairs only */
        cnn_loader_free(&ld);
        cnn_dataset_free(&ds);
    } else {
        uint64_t rng = cnn_rng_seed(m.cfg.seed, 4);
        for (size_t i = 0; i < n * per; i++) net->x[i] = cnn_rng_normal(&rng);
    }
    size_t h = net->input.h, w = net->input.w;
    double *map = malloc(h * w * sizeof *map);
    size_t (*rf)[2] = malloc(net->nlayers * sizeof *rf);
    size_t (*jump)[2] = malloc(net->nlayers * sizeof *jump);
    if (!map || !rf || !jump) {
        fprintf(stderr, "cnn receptive-field: out of memory\n");
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    cnn_net_receptive_fields(net, rf, jump);
    cnn_erf_map(net, t, n, map);
    double r50 = cnn_erf_radius(map, h, w, 0.5), r95 = cnn_erf_radius(map, h, w, 0.95);
    double theo = (double)(rf[t][0] > rf[t][1] ? rf[t][0] : rf[t][1]);
    printf("layer %s: output %zux%zux%zu, centre unit (%zu, %zu)\n", target->name,
           target->out.c, target->out.h, target->out.w, target->out.h / 2, target->out.w / 2);
    printf("theoretical receptive field: %zux%zu pixels, jump %zux%zu\n", rf[t][0],
           rf[t][1], jump[t][0], jump[t][1]);
    printf("effective: 50%% of the gradient mass within radius %.1f px (diameter %.0f%% "
           "of the theoretical field), 95%% within %.1f px (%.0f%%); %zu %s inputs\n",
           r50, 100 * 2 * r50 / theo, r95, 100 * 2 * r95 / theo, n,
           from_data ? "training" : "random");
    if (out) {
        if (write_png(out, map, h, w, rf[t][0], rf[t][1])) {
            fprintf(stderr, "%s: error: cannot write the PNG\n", out);
            rc = CLI_EXIT_RUNTIME;
            goto out;
        }
        printf("map: %s\n", out);
    }
    rc = CLI_EXIT_OK;
out:
    free(map);
    free(rf);
    free(jump);
    cli_model_free(&m);
    return rc;
}

const cli_command cli_cmd_receptive_field = {
    "receptive-field", "theoretical and effective receptive field of a layer (PNG map)",
    usage, run,
};
