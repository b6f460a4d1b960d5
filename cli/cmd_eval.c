/*
 * `cnn eval`: score a checkpoint on a labelled dataset. Needs no config
 * file: the checkpoint embeds the one it was trained with. --json prints one
 * JSON object on stdout for scripts; --min-accuracy turns it into a gate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run.h"

static const char usage[] =
    "usage: cnn eval CKPT [--data IMAGES[,LABELS]] [--json] [--top K]\n"
    "                     [--min-accuracy X] [--batch N] [--threads N]\n"
    "\n"
    "Score the checkpoint CKPT on a labelled dataset: by default the data.val\n"
    "split of the config embedded in CKPT.\n"
    "\n"
    "  --data IMAGES[,LABELS]  IDX files to score instead; when LABELS is left out\n"
    "                          it is IMAGES with 'images-idx3' replaced by 'labels-idx1'\n"
    "  --json                  print one JSON object on stdout: accuracy, top-K\n"
    "                          accuracy, loss, per-class precision/recall/F1 and\n"
    "                          the confusion matrix (schema in README.md)\n"
    "  --top K                 also report top-K accuracy (default 5)\n"
    "  --min-accuracy X        exit with status 3 when the accuracy (0..1) is below X\n"
    "  --batch N               images per forward pass (default 256)\n"
    "  --threads N             compute threads (default: all cores)\n";

static void json_string(FILE *f, const char *s)
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

/* Precision, recall and F1 of class c from the confusion matrix. */
static void class_scores(const size_t *cm, size_t K, size_t c, double *precision,
                         double *recall, double *f1, size_t *support)
{
    size_t tp = cm[c * K + c], predicted = 0, actual = 0;
    for (size_t i = 0; i < K; i++) {
        predicted += cm[i * K + c];
        actual += cm[c * K + i];
    }
    *precision = predicted ? (double)tp / (double)predicted : 0;
    *recall = actual ? (double)tp / (double)actual : 0;
    *f1 = *precision + *recall > 0 ? 2 * *precision * *recall / (*precision + *recall) : 0;
    *support = actual;
}

static void print_json(FILE *f, const char *ckpt, const char *data, const cli_score *s,
                       const size_t *cm, size_t K)
{
    fprintf(f, "{\"checkpoint\": ");
    json_string(f, ckpt);
    fprintf(f, ", \"data\": ");
    json_string(f, data);
    fprintf(f, ", \"samples\": %zu, \"correct\": %zu, \"accuracy\": %.6f, "
            "\"top_k\": %zu, \"top_k_accuracy\": %.6f, \"loss\": %.6f, \"classes\": [",
            s->n, s->correct, s->accuracy, s->k, s->topk_accuracy, s->loss);
    for (size_t c = 0; c < K; c++) {
        double p, r, f1;
        size_t support;
        class_scores(cm, K, c, &p, &r, &f1, &support);
        fprintf(f, "%s{\"class\": %zu, \"precision\": %.6f, \"recall\": %.6f, "
                "\"f1\": %.6f, \"support\": %zu}", c ? ", " : "", c, p, r, f1, support);
    }
    fprintf(f, "], \"confusion\": [");
    for (size_t i = 0; i < K; i++) {
        fprintf(f, "%s[", i ? ", " : "");
        for (size_t j = 0; j < K; j++) fprintf(f, "%s%zu", j ? ", " : "", cm[i * K + j]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
}

static void print_text(FILE *f, const char *ckpt, const char *data, const cli_score *s,
                       const size_t *cm, size_t K)
{
    fprintf(f, "%s on %s: accuracy %.2f%% (%zu/%zu), top-%zu %.2f%%, loss %.4f\n", ckpt,
            data, 100 * s->accuracy, s->correct, s->n, s->k, 100 * s->topk_accuracy,
            s->loss);
    fprintf(f, "%6s %10s %10s %10s %8s\n", "class", "precision", "recall", "f1", "support");
    for (size_t c = 0; c < K; c++) {
        double p, r, f1;
        size_t support;
        class_scores(cm, K, c, &p, &r, &f1, &support);
        fprintf(f, "%6zu %10.4f %10.4f %10.4f %8zu\n", c, p, r, f1, support);
    }
    fprintf(f, "confusion matrix (rows: true class, columns: predicted):\n");
    for (size_t i = 0; i < K; i++) {
        for (size_t j = 0; j < K; j++) fprintf(f, "%6zu", cm[i * K + j]);
        fputc('\n', f);
    }
}

/* Labels file for an images file: ...images-idx3... -> ...labels-idx1... */
static int derive_labels(const char *images, char *out, size_t n)
{
    const char *at = strstr(images, "images-idx3");
    if (!at) return -1;
    snprintf(out, n, "%.*slabels-idx1%s", (int)(at - images), images,
             at + strlen("images-idx3"));
    return 0;
}

static int run(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL;
    int json = 0;
    double min_acc = -1;
    long batch = 256, threads = 0, top = 5;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--data", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            data = v;
        } else if (cli_opt(argc, argv, &i, "--json", NULL)) {
            json = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--min-accuracy", &v))) {
            char *end;
            if (r < 0) return CLI_EXIT_USAGE;
            min_acc = strtod(v, &end);
            if (!*v || *end || min_acc < 0 || min_acc > 1)
                return cli_usage_error(argv[0], "--min-accuracy must be a number from 0 "
                                       "to 1, got '%s'", v);
        } else if ((r = cli_opt(argc, argv, &i, "--top", &v))) {
            if (r < 0 || (top = cli_positive(argv[0], "--top", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--batch", &v))) {
            if (r < 0 || (batch = cli_positive(argv[0], "--batch", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || (threads = cli_positive(argv[0], "--threads", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_positional(argv, i, &ckpt)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!ckpt) return cli_usage_error(argv[0], "missing CKPT");
    cli_set_threads(threads);

    cli_model m;
    int rc = cli_model_from_checkpoint(ckpt, (size_t)batch, &m, NULL);
    if (rc) return rc;
    cnn_data_source src = m.cfg.data.val;
    char images[4096], labels[4096];
    if (data) {
        const char *comma = strchr(data, ',');
        if (comma) {
            snprintf(images, sizeof images, "%.*s", (int)(comma - data), data);
            snprintf(labels, sizeof labels, "%s", comma + 1);
        } else {
            snprintf(images, sizeof images, "%s", data);
            if (derive_labels(images, labels, sizeof labels)) {
                cli_model_free(&m);
                return cli_usage_error(argv[0], "cannot tell the labels file for '%s'; "
                                       "use --data IMAGES,LABELS", data);
            }
        }
        src.images = images;
        src.labels = labels;
        src.limit = 0;
    }
    cnn_dataset ds = {0};
    if ((rc = cli_load_split(&m.cfg, &src, data ? "--data" : "val", &ds))) {
        cli_model_free(&m);
        return rc;
    }
    if (ds.nclasses > m.nclasses) {
        fprintf(stderr, "%s: error: the data has %zu classes but the network outputs %zu\n",
                src.images, ds.nclasses, m.nclasses);
        cnn_dataset_free(&ds);
        cli_model_free(&m);
        return CLI_EXIT_USAGE;
    }
    size_t K = m.nclasses, k = (size_t)top < K ? (size_t)top : K;
    size_t *confusion = calloc(K * K, sizeof *confusion);
    if (!confusion) {
        fprintf(stderr, "cnn eval: out of memory\n");
        cnn_dataset_free(&ds);
        cli_model_free(&m);
        return CLI_EXIT_RUNTIME;
    }
    cli_score s;
    cli_evaluate(&m, &ds, k, confusion, &s);
    if (json) print_json(stdout, ckpt, src.images, &s, confusion, K);
    else print_text(stdout, ckpt, src.images, &s, confusion, K);
    free(confusion);
    rc = CLI_EXIT_OK;
    if (min_acc >= 0 && !(s.accuracy >= min_acc)) {
        fprintf(stderr, "cnn eval: accuracy %.4f is below --min-accuracy %.4f\n",
                s.accuracy, min_acc);
        rc = CLI_EXIT_GATE;
    }
    cnn_dataset_free(&ds);
    cli_model_free(&m);
    return rc;
}

const cli_command cli_cmd_eval = {
    "eval", "score a checkpoint on labelled data (text or --json)", usage, run,
};
