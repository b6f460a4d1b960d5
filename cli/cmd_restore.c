/*
 * `cnn restore`: the deep image prior (Ulyanov, Vedaldi and Lempitsky,
 * "Deep Image Prior", CVPR 2018). No training data: a randomly initialised
 * encoder-decoder maps a fixed random code z to an image, and Adam fits its
 * weights so that the output reproduces the corrupted image (the pixels
 * under the mask only, for inpainting). The network fits natural structure
 * long before it fits noise, so stopping after a fixed budget of iterations
 * (the paper's early stopping) leaves a restored image.
 *
 * The network is the paper's "skip" encoder-decoder, built here in code:
 * for each of `depth` levels, a skip branch (1x1 conv to 4 channels, batch
 * norm, leaky ReLU 0.2) and a down path (3x3 conv stride 2, BN, leaky ReLU,
 * 3x3 conv, BN, leaky ReLU, `width` channels); back up, the deeper output
 * is upsampled x2 (bilinear), concatenated with the skip, and goes through
 * BN, a 3x3 conv, BN, leaky ReLU, a 1x1 conv, BN, leaky ReLU; a last 1x1
 * conv and a sigmoid give the image. Convolutions pad by reflection. The
 * code z has 32 channels of uniform noise in [0, 0.1); for denoising it is
 * jittered every iteration by N(0, (1/30)^2) noise (the paper's
 * regularisation by input noise). Batch norm always uses the statistics of
 * the one image (the network is never put in evaluation mode).
 *
 * Loss: the mean squared error over all pixel values, with the holes of the
 * mask contributing nothing. The output written is the network's output,
 * or, with --ema A, the exponential moving average of the outputs
 * (avg = A avg + (1 - A) out), which smooths the last iterations' jitter.
 */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "../core/optim.h"
#include "../core/rng.h"
#include "../data/image.h"
#include "cli.h"

#define DIP_CODE_CHANNELS 32
#define DIP_SKIP_CHANNELS 4
#define DIP_MAX_DEPTH 8
#define DIP_MAX_LAYERS (18 * DIP_MAX_DEPTH + 2)
#define DIP_MAX_OPTS 5

static const char usage[] =
    "usage: cnn restore IMAGE --task denoise|inpaint [--mask MASK.png] --out OUT.png\n"
    "                   [--iterations N] [--save-every N] [--seed S] [--lr X]\n"
    "                   [--width N] [--depth N] [--ema A] [--input-noise X]\n"
    "                   [--reference CLEAN.png] [--threads N]\n"
    "\n"
    "Restore a corrupted image with the deep image prior (Ulyanov, Vedaldi and\n"
    "Lempitsky 2018): an encoder-decoder with skip connections, fed fixed random\n"
    "noise, is fitted to the image with Adam and stopped after a fixed budget of\n"
    "iterations, before it learns to reproduce the corruption. No training data\n"
    "or checkpoint is used. The image is cropped (centred) to a multiple of\n"
    "2^depth pixels each way.\n"
    "\n"
    "  --task T           denoise: fit the whole image; inpaint: fit only the\n"
    "                     pixels MASK keeps and let the network fill the rest\n"
    "  --mask MASK        inpaint only: an image of IMAGE's size, white (>= 128)\n"
    "                     where pixels are known, black where they are missing\n"
    "  --out OUT.png      the restored image (PNG)\n"
    "  --iterations N     the budget (default: denoise 1800, inpaint 5000)\n"
    "  --save-every N     also write the output every N iterations, as\n"
    "                     OUT.NNNNN.png (OUT without .png)\n"
    "  --seed S           the random code and the initial weights (default 1)\n"
    "  --lr X             Adam's learning rate (default 0.01)\n"
    "  --width N          channels of every level (default 128)\n"
    "  --depth N          levels, 1 to 8 (default 5)\n"
    "  --ema A            write the moving average of the outputs, weight A in\n"
    "                     [0, 1) (default: denoise 0.99, inpaint 0 = off)\n"
    "  --input-noise X    std of the noise added to the code every iteration\n"
    "                     (default: denoise 1/30, inpaint 0)\n"
    "  --reference CLEAN  the clean image: print the PSNR of the corrupted\n"
    "                     image (holes black) and of the output against it\n"
    "  --threads N        compute threads (default: all cores)\n";

/* ---- the network ------------------------------------------------------ */

typedef struct dip_layer {
    char name[32];
    char inputs[2][32];
    const char *input_ptrs[2];
    size_t ninputs;
    cnn_opt opts[DIP_MAX_OPTS];
    char texts[DIP_MAX_OPTS][16];
    size_t nopts;
} dip_layer;

typedef struct dip_spec {
    dip_layer layers[DIP_MAX_LAYERS];
    cnn_layer_spec specs[DIP_MAX_LAYERS];
    size_t n;
    size_t width;
} dip_spec;

/* Append a layer of `kind` named `name` reading `in0` (and `in1` if not
 * NULL), with options "key", "value", ..., NULL. Returns its name. */
static const char *add(dip_spec *d, const char *kind, const char *name, const char *in0,
                       const char *in1, ...)
{
    dip_layer *l = &d->layers[d->n];
    cnn_layer_spec *sp = &d->specs[d->n];
    d->n++;
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->inputs[0], sizeof l->inputs[0], "%s", in0);
    l->ninputs = 1;
    if (in1) snprintf(l->inputs[l->ninputs++], sizeof l->inputs[1], "%s", in1);
    for (size_t k = 0; k < l->ninputs; k++) l->input_ptrs[k] = l->inputs[k];
    va_list ap;
    va_start(ap, in1);
    for (const char *key; (key = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        snprintf(l->texts[l->nopts], sizeof l->texts[0], "%s", value);
        l->opts[l->nopts] = (cnn_opt){.key = key, .text = l->texts[l->nopts]};
        l->nopts++;
    }
    va_end(ap);
    *sp = (cnn_layer_spec){.name = l->name, .kind = kind, .inputs = l->input_ptrs,
                           .ninputs = l->ninputs, .opts = {.items = l->opts, .n = l->nopts}};
    return l->name;
}

/* conv (k x k, stride s, reflect-padded to keep the size / s), batch norm,
 * leaky ReLU 0.2, named PREFIX.conv/bn/act; returns the activation's name. */
static const char *conv_bn_act(dip_spec *d, const char *prefix, const char *in,
                               size_t filters, size_t k, size_t s)
{
    char n[3][32], f[16], ks[16], st[16], pad[16];
    snprintf(f, sizeof f, "%zu", filters);
    snprintf(ks, sizeof ks, "%zu", k);
    snprintf(st, sizeof st, "%zu", s);
    snprintf(pad, sizeof pad, "%zu", k / 2);
    snprintf(n[0], sizeof n[0], "%s.conv", prefix);
    snprintf(n[1], sizeof n[1], "%s.bn", prefix);
    snprintf(n[2], sizeof n[2], "%s.act", prefix);
    if (k > 1)
        add(d, "conv", n[0], in, NULL, "filters", f, "kernel", ks, "stride", st, "pad", pad,
            "padding_mode", "reflect", NULL);
    else
        add(d, "conv", n[0], in, NULL, "filters", f, "kernel", ks, "stride", st, NULL);
    add(d, "batchnorm", n[1], n[0], NULL, NULL);
    return add(d, "leaky_relu", n[2], n[1], NULL, "slope", "0.2", NULL);
}

/* Level i (1-based) of depth, reading `in`; returns its output's name. */
static const char *level(dip_spec *d, size_t i, size_t depth, const char *in)
{
    char p[32], q[32], skip[32], deep[32], up[32], cat[32], bn[32];
    snprintf(p, sizeof p, "skip%zu", i);
    snprintf(skip, sizeof skip, "%s", conv_bn_act(d, p, in, DIP_SKIP_CHANNELS, 1, 1));
    snprintf(p, sizeof p, "down%zu.a", i);
    snprintf(q, sizeof q, "down%zu.b", i);
    snprintf(deep, sizeof deep, "%s",
             conv_bn_act(d, q, conv_bn_act(d, p, in, d->width, 3, 2), d->width, 3, 1));
    if (i < depth) snprintf(deep, sizeof deep, "%s", level(d, i + 1, depth, deep));
    snprintf(up, sizeof up, "up%zu.upsample", i);
    snprintf(cat, sizeof cat, "up%zu.concat", i);
    snprintf(bn, sizeof bn, "up%zu.bn", i);
    add(d, "upsample", up, deep, NULL, "scale", "2", "mode", "bilinear", NULL);
    add(d, "concat", cat, skip, up, NULL);
    add(d, "batchnorm", bn, cat, NULL, NULL);
    snprintf(p, sizeof p, "up%zu.a", i);
    snprintf(q, sizeof q, "up%zu.b", i);
    return conv_bn_act(d, q, conv_bn_act(d, p, bn, d->width, 3, 1), d->width, 1, 1);
}

static void dip_build(dip_spec *d, size_t depth, size_t width, size_t channels)
{
    char c[16];
    d->n = 0;
    d->width = width;
    const char *top = level(d, 1, depth, "input");
    snprintf(c, sizeof c, "%zu", channels);
    add(d, "conv", "out.conv", top, NULL, "filters", c, "kernel", "1", NULL);
    add(d, "sigmoid", "out", "out.conv", NULL, NULL);
}

/* ---- images ------------------------------------------------------------ */

/* Read an image file at its own size, with c channels (0: 3 for colour
 * files, 1 for grey ones), into *px [c][h][w] (malloc'd). Prints the error
 * and returns an exit code. */
static int read_image(const char *path, size_t c, uint8_t **px, size_t *pc, size_t *ph,
                      size_t *pw)
{
    cnn_error e = {0};
    size_t w, h, comp;
    *px = NULL;
    if (cnn_image_info(path, &w, &h, &comp, &e)) return cli_report(&e);
    if (!c) c = comp >= 3 ? 3 : 1;
    if (w > 8192 || h > 8192) {
        fprintf(stderr, "%s: error: image is %zux%zu; cnn restore takes at most 8192 "
                "pixels a side\n", path, w, h);
        return CLI_EXIT_RUNTIME;
    }
    cnn_image_opts io = {c, h, w, CNN_RESIZE_STRETCH, 0};
    uint8_t *p = malloc(c * h * w);
    if (!p) {
        fprintf(stderr, "%s: error: out of memory\n", path);
        return CLI_EXIT_RUNTIME;
    }
    if (cnn_image_load(path, &io, p, &e)) {
        free(p);
        return cli_report(&e);
    }
    *px = p;
    *pc = c;
    *ph = h;
    *pw = w;
    return 0;
}

/* The centred h x w window of src [c][H][W] into dst [c][h][w], as floats
 * in [0, 1]. */
static void crop(const uint8_t *src, size_t c, size_t H, size_t W, float *dst, size_t h,
                 size_t w)
{
    size_t y0 = (H - h) / 2, x0 = (W - w) / 2;
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                dst[(ch * h + y) * w + x] = src[(ch * H + y0 + y) * W + x0 + x] / 255.0f;
}

static uint8_t to_byte(float v)
{
    float b = v * 255.0f + 0.5f;
    return (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
}

/* PSNR in dB of a [n] against b [n], both in [0, 1], each first rounded to
 * 8 bits as a PNG holds them. */
static double psnr(const float *a, const float *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)to_byte(a[i]) - (double)to_byte(b[i])) / 255.0;
        se += d * d;
    }
    return se > 0 ? 10.0 * log10((double)n / se) : INFINITY;
}

/* Write v [c][h][w] in [0, 1] as a PNG. Returns 0 or prints the error and
 * returns an exit code. */
static int write_png(const char *path, const float *v, size_t c, size_t h, size_t w)
{
    uint8_t *px = malloc(c * h * w);
    int ok = 0;
    if (px) {
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                for (size_t ch = 0; ch < c; ch++)
                    px[(y * w + x) * c + ch] = to_byte(v[(ch * h + y) * w + x]);
        ok = stbi_write_png(path, (int)w, (int)h, (int)c, px, (int)(w * c));
    }
    free(px);
    if (!ok) {
        fprintf(stderr, "%s: error: cannot write the PNG\n", path);
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

/* ---- the command -------------------------------------------------------- */

typedef struct restore_opts {
    const char *image, *mask, *out, *reference;
    int inpaint;
    long iterations, save_every, width, depth, threads;
    uint64_t seed;
    double lr, ema, input_noise;
} restore_opts;

/* Parse a number in [lo, hi) (hi_open) or [lo, hi]; prints the error. */
static int number(const char *cmd, const char *name, const char *v, double lo, double hi,
                  int hi_open, double *out)
{
    if (cnn_parse_double(v, out) || *out < lo || (hi_open ? *out >= hi : *out > hi)) {
        cli_usage_error(cmd, "%s must be a number in [%g, %g%s, got '%s'", name, lo, hi,
                        hi_open ? ")" : "]", v);
        return -1;
    }
    return 0;
}

/* Returns 0, or prints the error and returns an exit code. */
static int parse(int argc, char **argv, restore_opts *o)
{
    const char *task = NULL, *v;
    int have_ema = 0, have_noise = 0, have_iter = 0;
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->lr = 0.01;
    o->width = 128;
    o->depth = 5;
    for (int i = 1; i < argc; i++) {
        int r;
        long n;
        double x;
        if ((r = cli_opt(argc, argv, &i, "--task", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            task = v;
        } else if ((r = cli_opt(argc, argv, &i, "--mask", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            o->mask = v;
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            o->out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--reference", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            o->reference = v;
        } else if ((r = cli_opt(argc, argv, &i, "--iterations", &v))) {
            if (r < 0 || (o->iterations = cli_positive(argv[0], "--iterations", v)) < 0)
                return CLI_EXIT_USAGE;
            have_iter = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--save-every", &v))) {
            if (r < 0 || (o->save_every = cli_positive(argv[0], "--save-every", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--width", &v))) {
            if (r < 0 || (o->width = cli_positive(argv[0], "--width", v)) < 0) return CLI_EXIT_USAGE;
            if (o->width > 1024) {
                return cli_usage_error(argv[0], "--width is at most 1024");
            }
        } else if ((r = cli_opt(argc, argv, &i, "--depth", &v))) {
            if (r < 0 || (o->depth = cli_positive(argv[0], "--depth", v)) < 0) return CLI_EXIT_USAGE;
            if (o->depth > DIP_MAX_DEPTH) {
                return cli_usage_error(argv[0], "--depth is at most %d", DIP_MAX_DEPTH);
            }
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || (o->threads = cli_positive(argv[0], "--threads", v)) < 0) return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            if (cnn_parse_long(v, &n) || n < 0)
                return cli_usage_error(argv[0], "--seed must be an integer >= 0, got '%s'", v);
            o->seed = (uint64_t)n;
        } else if ((r = cli_opt(argc, argv, &i, "--lr", &v))) {
            if (r < 0 || number(argv[0], "--lr", v, 1e-8, 10, 0, &o->lr)) return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--ema", &v))) {
            if (r < 0 || number(argv[0], "--ema", v, 0, 1, 1, &o->ema)) return CLI_EXIT_USAGE;
            have_ema = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--input-noise", &v))) {
            if (r < 0 || number(argv[0], "--input-noise", v, 0, 10, 0, &x)) return CLI_EXIT_USAGE;
            o->input_noise = x;
            have_noise = 1;
        } else if (cli_positional(argv, i, &o->image)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!o->image) return cli_usage_error(argv[0], "missing IMAGE");
    if (!task) return cli_usage_error(argv[0], "missing --task denoise|inpaint");
    if (strcmp(task, "denoise") && strcmp(task, "inpaint"))
        return cli_usage_error(argv[0], "--task must be denoise or inpaint, got '%s'", task);
    o->inpaint = !strcmp(task, "inpaint");
    if (o->inpaint && !o->mask)
        return cli_usage_error(argv[0], "--task inpaint needs --mask MASK.png");
    if (!o->inpaint && o->mask)
        return cli_usage_error(argv[0], "--mask goes with --task inpaint");
    if (!o->out) return cli_usage_error(argv[0], "missing --out OUT.png");
    if (!have_iter) o->iterations = o->inpaint ? 5000 : 1800;
    if (!have_ema) o->ema = o->inpaint ? 0.0 : 0.99;
    if (!have_noise) o->input_noise = o->inpaint ? 0.0 : 1.0 / 30.0;
    return 0;
}

/* OUT.png -> OUT.00100.png for iteration `it`. */
static void snapshot_name(const char *out, long it, char *buf, size_t n)
{
    size_t len = strlen(out);
    if (len > 4 && !strcmp(out + len - 4, ".png")) len -= 4;
    snprintf(buf, n, "%.*s.%05ld.png", (int)len, out, it);
}

static int restore(const restore_opts *o)
{
    uint8_t *img = NULL, *maskpx = NULL, *refpx = NULL;
    size_t c, H, W, mc, mh, mw, rc_, rh, rw;
    int rc = read_image(o->image, 0, &img, &c, &H, &W);
    if (rc) return rc;
    if (o->mask && (rc = read_image(o->mask, 1, &maskpx, &mc, &mh, &mw))) goto out_px;
    if (o->reference && (rc = read_image(o->reference, c, &refpx, &rc_, &rh, &rw)))
        goto out_px;
    if (maskpx && (mh != H || mw != W)) {
        fprintf(stderr, "%s: error: the mask is %zux%zu but the image %s is %zux%zu\n",
                o->mask, mw, mh, o->image, W, H);
        rc = CLI_EXIT_USAGE;
        goto out_px;
    }
    if (refpx && (rh != H || rw != W)) {
        fprintf(stderr, "%s: error: the reference is %zux%zu but the image %s is %zux%zu\n",
                o->reference, rw, rh, o->image, W, H);
        rc = CLI_EXIT_USAGE;
        goto out_px;
    }
    const size_t unit = (size_t)1 << o->depth;
    const size_t h = H / unit * unit, w = W / unit * unit;
    if (h < 2 * unit || w < 2 * unit) {
        fprintf(stderr, "%s: error: image is %zux%zu; with --depth %ld cnn restore needs "
                "at least %zux%zu pixels\n", o->image, W, H, o->depth, 2 * unit, 2 * unit);
        rc = CLI_EXIT_USAGE;
        goto out_px;
    }
    if (h != H || w != W)
        fprintf(stderr, "cnn restore: %s is %zux%zu; using its centred %zux%zu (a multiple "
                "of %zu each way)\n", o->image, W, H, w, h, unit);

    const size_t n = c * h * w, nz = DIP_CODE_CHANNELS * h * w;
    float *target = malloc(n * sizeof *target);        /* [c][h][w] */
    float *weight = malloc(n * sizeof *weight);        /* [c][h][w]: 1 known, 0 hole */
    float *ref = refpx ? malloc(n * sizeof *ref) : NULL;
    float *avg = malloc(n * sizeof *avg);              /* the moving average */
    float *z = malloc(nz * sizeof *z);                 /* [32][h][w] the code */
    float *mtmp = maskpx ? malloc(h * w * sizeof *mtmp) : NULL;
    dip_spec *spec = calloc(1, sizeof *spec);
    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    if (!target || !weight || !avg || !z || !spec || (refpx && !ref) || (maskpx && !mtmp)) {
        fprintf(stderr, "cnn restore: error: out of memory\n");
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    crop(img, c, H, W, target, h, w);
    if (refpx) crop(refpx, c, H, W, ref, h, w);
    size_t known = n;
    for (size_t i = 0; i < n; i++) weight[i] = 1.0f;
    if (maskpx) {
        crop(maskpx, 1, H, W, mtmp, h, w);
        known = 0;
        for (size_t ch = 0; ch < c; ch++)
            for (size_t i = 0; i < h * w; i++) {
                weight[ch * h * w + i] = mtmp[i] >= 0.5f ? 1.0f : 0.0f;
                known += mtmp[i] >= 0.5f;
            }
        if (!known) {
            fprintf(stderr, "%s: error: the mask is all black: no pixel is known\n", o->mask);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
    }

    dip_build(spec, (size_t)o->depth, (size_t)o->width, c);
    cnn_model_spec model = {{DIP_CODE_CHANNELS, h, w}, spec->specs, spec->n, 0};
    cnn_error e = {0};
    if (!(net = cnn_net_create(&model, 1, &e))) {
        rc = cli_report(&e);
        goto out;
    }
    uint64_t rng = cnn_rng_seed(o->seed, 2);
    cnn_net_init(net, &rng);
    uint64_t zrng = cnn_rng_seed(o->seed, 1), jrng = cnn_rng_seed(o->seed, 3);
    for (size_t i = 0; i < nz; i++) z[i] = 0.1f * cnn_rng_uniform(&zrng);
    cnn_optim_config oc = {.type = CNN_OPTIM_ADAM, .lr = (float)o->lr, .beta1 = 0.9f,
                           .beta2 = 0.999f, .eps = 1e-8f};
    if (!(opt = cnn_optim_create(net, &oc, &e))) {
        rc = cli_report(&e);
        goto out;
    }
    fprintf(stderr, "cnn restore: %s %zux%zu (%s), %zu layers, %zu parameters, %ld "
            "iterations of Adam (lr %g)%s\n", o->inpaint ? "inpainting" : "denoising", w, h,
            c == 3 ? "colour" : "grey", net->nlayers, cnn_net_param_count(net),
            o->iterations, o->lr, o->ema > 0 ? ", averaging the outputs" : "");
    /* The corrupted image as the network sees it: holes black. */
    double corrupted_psnr = 0;
    if (refpx) {
        for (size_t i = 0; i < n; i++) avg[i] = target[i] * weight[i];
        corrupted_psnr = psnr(avg, ref, n);
        fprintf(stderr, "cnn restore: PSNR of the corrupted image: %.2f dB\n",
                corrupted_psnr);
    }

    cnn_layer *outl = cnn_net_output(net);
    double start = omp_get_wtime(), first_loss = 0, loss = 0;
    long report = o->iterations >= 20 ? o->iterations / 10 : 1;
    for (long it = 1; it <= o->iterations; it++) {
        for (size_t i = 0; i < nz; i++)
            net->x[i] = o->input_noise > 0
                            ? z[i] + (float)o->input_noise * cnn_rng_normal(&jrng) : z[i];
        cnn_net_forward(net, 1, 1);
        const float *y = outl->y;   /* [c][h][w] in (0, 1) */
        double se = 0;
        const float scale = 2.0f / (float)n;
        for (size_t i = 0; i < n; i++) {
            float d = (y[i] - target[i]) * weight[i];
            se += (double)d * d;
            outl->dy[i] = scale * d;
        }
        loss = se / (double)n;
        if (it == 1) first_loss = loss;
        if (!isfinite(loss)) {
            fprintf(stderr, "cnn restore: error: the loss is not finite at iteration %ld\n",
                    it);
            rc = CLI_EXIT_RUNTIME;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            avg[i] = it == 1 || o->ema <= 0 ? y[i]
                                            : (float)o->ema * avg[i] + (float)(1 - o->ema) * y[i];
        cnn_net_backward(net);
        cnn_optim_step(opt, (float)o->lr);
        if (it % report == 0 || it == o->iterations) {
            fprintf(stderr, "iteration %ld/%ld: loss %.6f", it, o->iterations, loss);
            if (ref && o->ema > 0)
                fprintf(stderr, ", PSNR %.2f dB (average of outputs %.2f dB)",
                        psnr(outl->y, ref, n), psnr(avg, ref, n));
            else if (ref)
                fprintf(stderr, ", PSNR %.2f dB", psnr(avg, ref, n));
            fprintf(stderr, " (%.1f s)\n", omp_get_wtime() - start);
        }
        if (o->save_every && it % o->save_every == 0) {
            char name[1024];
            snapshot_name(o->out, it, name, sizeof name);
            if ((rc = write_png(name, avg, c, h, w))) goto out;
        }
    }
    if ((rc = write_png(o->out, avg, c, h, w))) goto out;
    printf("restored: %s (%zux%zu, %s, %ld iterations, loss %.6f from %.6f, %.1f s)\n",
           o->out, w, h, o->inpaint ? "inpaint" : "denoise", o->iterations, loss,
           first_loss, omp_get_wtime() - start);
    if (ref)
        printf("psnr: corrupted %.2f dB, restored %.2f dB\n", corrupted_psnr,
               psnr(avg, ref, n));
out:
    cnn_optim_free(opt);
    cnn_net_free(net);
    free(spec);
    free(mtmp);
    free(z);
    free(avg);
    free(ref);
    free(weight);
    free(target);
out_px:
    free(img);
    free(maskpx);
    free(refpx);
    return rc;
}

static int run(int argc, char **argv)
{
    restore_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    cli_set_threads(o.threads);
    return restore(&o);
}

const cli_command cli_cmd_restore = {
    "restore", "denoise or inpaint an image with the deep image prior (no data)", usage,
    run,
};
