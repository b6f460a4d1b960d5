/*
 * `cnn predict`: classify image files with a checkpoint. Each image goes
 * through the evaluation path the checkpoint's config describes (decode,
 * resize to the working size, centre crop to the input, normalise), and
 * the top K classes are printed with their softmax probabilities, by name
 * when the checkpoint stores class names.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/augment.h"
#include "../data/image.h"
#include "cli.h"
#include "run.h"

static const char usage[] =
    "usage: cnn predict CKPT IMAGE... [--top K] [--json] [--threads N]\n"
    "\n"
    "Classify each IMAGE (JPEG, PNG, BMP, TGA, GIF) with the checkpoint CKPT and\n"
    "print its K most likely classes with their probabilities.\n"
    "\n"
    "  --top K      classes per image (default 3)\n"
    "  --json       print one JSON object on stdout:\n"
    "               {\"checkpoint\": ..., \"predictions\": [{\"image\": PATH,\n"
    "               \"top\": [{\"class\": NAME, \"index\": I, \"probability\": P}, ...]}]}\n"
    "  --threads N  compute threads (default: all cores)\n"
    "\n"
    "An image that cannot be read is reported on stderr and the exit status is 1;\n"
    "the other images are still classified.\n";

/* Softmax of z [K] into p [K]. */
static void softmax(const float *z, size_t K, double *p)
{
    float top = z[0];
    for (size_t c = 1; c < K; c++) top = z[c] > top ? z[c] : top;
    double sum = 0;
    for (size_t c = 0; c < K; c++) sum += p[c] = exp((double)(z[c] - top));
    for (size_t c = 0; c < K; c++) p[c] /= sum;
}

static int run(int argc, char **argv)
{
    const char *ckpt = NULL;
    const char **images = calloc((size_t)argc, sizeof *images);
    size_t nimages = 0;
    int json = 0;
    long top = 3, threads = 0;
    if (!images) return CLI_EXIT_RUNTIME;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (cli_opt(argc, argv, &i, "--json", NULL)) {
            json = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--top", &v))) {
            if (r < 0 || (top = cli_positive(argv[0], "--top", v)) < 0) goto usage_error;
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || (threads = cli_positive(argv[0], "--threads", v)) < 0)
                goto usage_error;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_usage_error(argv[0], "unknown option '%s'", argv[i]);
            goto usage_error;
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            images[nimages++] = argv[i];
        }
    }
    if (!ckpt || !nimages) {
        free(images);
        return cli_usage_error(argv[0], ckpt ? "missing IMAGE" : "missing CKPT");
    }
    cli_set_threads(threads);
    cli_model m;
    int rc = cli_model_for_inference(ckpt, 1, &m);
    if (rc) {
        free(images);
        return rc;
    }
    if (m.cfg.task.type != CNN_TASK_CLASSIFY) {
        fprintf(stderr, "%s: error: this checkpoint learned task %s, not classes: score it "
                "with 'cnn eval', or fine-tune a classifier from it with 'cnn finetune'\n",
                ckpt, cnn_task_names[m.cfg.task.type]);
        free(images);
        cli_model_free(&m);
        return CLI_EXIT_USAGE;
    }
    const cnn_data_spec *d = &m.cfg.data;
    cnn_image_opts io = {d->input.c, d->work_h, d->work_w, (cnn_resize_mode)d->resize,
                         d->max_pixels};
    size_t K = m.nclasses, k = (size_t)top < K ? (size_t)top : K;
    uint8_t *pixels = malloc(d->input.c * d->work_h * d->work_w);
    double *prob = malloc(K * sizeof *prob);
    size_t *order = malloc(K * sizeof *order);
    if (!pixels || !prob || !order) {
        fprintf(stderr, "cnn predict: out of memory\n");
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    if (json) {
        printf("{\"checkpoint\": ");
        cli_json_string(stdout, ckpt);
        printf(", \"predictions\": [");
    }
    size_t printed = 0;
    for (size_t i = 0; i < nimages; i++) {
        cnn_error e = {0};
        if (cnn_image_load(images[i], &io, pixels, &e)) {
            cli_report(&e);
            rc = CLI_EXIT_RUNTIME;
            continue;
        }
        cnn_center(pixels, d->input.c, d->work_h, d->work_w, m.net->x, d->input.h,
                   d->input.w, m.mean, m.std);
        cnn_net_forward(m.net, 1, 0);
        softmax(cnn_net_output(m.net)->y, K, prob);
        for (size_t c = 0; c < K; c++) order[c] = c;
        for (size_t a = 0; a < k; a++)   /* partial selection sort, ties to the lower index */
            for (size_t b = a + 1; b < K; b++)
                if (prob[order[b]] > prob[order[a]]) {
                    size_t t = order[a];
                    order[a] = order[b];
                    order[b] = t;
                }
        char num[32];
        if (json) {
            printf("%s{\"image\": ", printed ? ", " : "");
            cli_json_string(stdout, images[i]);
            printf(", \"top\": [");
            for (size_t a = 0; a < k; a++) {
                printf("%s{\"class\": ", a ? ", " : "");
                cli_json_string(stdout, cli_class_name(&m, order[a], num, sizeof num));
                printf(", \"index\": %zu, \"probability\": %.6f}", order[a], prob[order[a]]);
            }
            printf("]}");
        } else {
            printf("%s:", images[i]);
            for (size_t a = 0; a < k; a++)
                printf("%s %s %.4f", a ? "," : "",
                       cli_class_name(&m, order[a], num, sizeof num), prob[order[a]]);
            printf("\n");
        }
        printed++;
    }
    if (json) printf("]}\n");
out:
    free(pixels);
    free(prob);
    free(order);
    free(images);
    cli_model_free(&m);
    return rc;
usage_error:
    free(images);
    return CLI_EXIT_USAGE;
}

const cli_command cli_cmd_predict = {
    "predict", "classify image files with a checkpoint (top K, --json)", usage, run,
};
