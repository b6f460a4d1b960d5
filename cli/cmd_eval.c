/*
 * `cnn eval`: score a checkpoint on a labelled dataset. Needs no config
 * file: the checkpoint embeds the one it was trained with. --json prints one
 * JSON object on stdout for scripts; --min-accuracy turns it into a gate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run.h"
#include "task.h"

static const char usage[] =
    "usage: cnn eval CKPT [--data PATH] [--json] [--top K]\n"
    "                     [--min-accuracy X] [--batch N] [--threads N]\n"
    "\n"
    "Score the checkpoint CKPT on a labelled dataset: by default the data.val\n"
    "split of the config embedded in CKPT (or the images data.val_split held\n"
    "out of data.train).\n"
    "\n"
    "  --data PATH             data to score instead: a folder (a subfolder per\n"
    "                          class, or the Kaggle flat layout), a list file of\n"
    "                          'path label' lines, or IDX files IMAGES[,LABELS]\n"
    "                          (LABELS defaults to IMAGES with 'images-idx3'\n"
    "                          replaced by 'labels-idx1')\n"
    "  --json                  print one JSON object on stdout: accuracy, top-K\n"
    "                          accuracy, loss, per-class precision/recall/F1 and\n"
    "                          the confusion matrix (schema in README.md)\n"
    "  --top K                 also report top-K accuracy (default 5)\n"
    "  --min-accuracy X        exit with status 3 when the accuracy (0..1) is below X\n"
    "  --batch N               images per forward pass (default 256)\n"
    "  --threads N             compute threads (default: all cores)\n";

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
                       const size_t *cm, const cli_model *m)
{
    size_t K = m->nclasses;
    char num[32];
    fprintf(f, "{\"checkpoint\": ");
    cli_json_string(f, ckpt);
    fprintf(f, ", \"data\": ");
    cli_json_string(f, data);
    fprintf(f, ", \"samples\": %zu, \"correct\": %zu, \"accuracy\": %.6f, "
            "\"top_k\": %zu, \"top_k_accuracy\": %.6f, \"loss\": %.6f, \"classes\": [",
            s->n, s->correct, s->accuracy, s->k, s->topk_accuracy, s->loss);
    for (size_t c = 0; c < K; c++) {
        double p, r, f1;
        size_t support;
        class_scores(cm, K, c, &p, &r, &f1, &support);
        fprintf(f, "%s{\"class\": %zu, \"name\": ", c ? ", " : "", c);
        cli_json_string(f, cli_class_name(m, c, num, sizeof num));
        fprintf(f, ", \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, "
                "\"support\": %zu}", p, r, f1, support);
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
                       const size_t *cm, const cli_model *m)
{
    size_t K = m->nclasses;
    char num[32];
    int width = 6;
    for (size_t c = 0; c < K; c++) {
        int len = (int)strlen(cli_class_name(m, c, num, sizeof num));
        if (len > width) width = len < 24 ? len : 24;
    }
    fprintf(f, "%s on %s: accuracy %.2f%% (%zu/%zu), top-%zu %.2f%%, loss %.4f\n", ckpt,
            data, 100 * s->accuracy, s->correct, s->n, s->k, 100 * s->topk_accuracy,
            s->loss);
    fprintf(f, "%-*s %10s %10s %10s %8s\n", width, "class", "precision", "recall", "f1",
            "support");
    for (size_t c = 0; c < K; c++) {
        double p, r, f1;
        size_t support;
        class_scores(cm, K, c, &p, &r, &f1, &support);
        fprintf(f, "%-*.24s %10.4f %10.4f %10.4f %8zu\n", width,
                cli_class_name(m, c, num, sizeof num), p, r, f1, support);
    }
    fprintf(f, "confusion matrix (rows: true class, columns: predicted):\n");
    for (size_t i = 0; i < K; i++) {
        for (size_t j = 0; j < K; j++) fprintf(f, "%6zu", cm[i * K + j]);
        fputc('\n', f);
    }
}

/* A pretext task's checkpoint (task: other than classify): its loss, and
 * its accuracy where it has one. Returns an exit code. */
static int eval_task(cli_model *m, const cnn_dataset *ds, const char *ckpt,
                     const char *data_name, size_t batch, int json, double min_acc)
{
    const cnn_task_spec *t = &m->cfg.task;
    if (min_acc >= 0 && !cnn_task_has_accuracy(t)) {
        fprintf(stderr, "%s: error: --min-accuracy: task %s scores no accuracy, only a loss\n",
                ckpt, cnn_task_names[t->type]);
        return CLI_EXIT_USAGE;
    }
    cli_task *tk = cli_task_create(m, batch);
    if (!tk) return CLI_EXIT_RUNTIME;
    cli_score s;
    cli_task_evaluate(tk, ds, &s);
    cli_task_free(tk);
    if (json) {
        fprintf(stdout, "{\"checkpoint\": ");
        cli_json_string(stdout, ckpt);
        fprintf(stdout, ", \"data\": ");
        cli_json_string(stdout, data_name);
        fprintf(stdout, ", \"task\": \"%s\", \"samples\": %zu, \"loss\": %.6f, "
                "\"accuracy\": ", cnn_task_names[t->type], s.n, s.loss);
        if (isnan(s.accuracy)) fprintf(stdout, "null}\n");
        else fprintf(stdout, "%.6f}\n", s.accuracy);
    } else {
        printf("%s on %s (%zu images), task %s\nloss %.6f\n", ckpt, data_name, s.n,
               cnn_task_names[t->type], s.loss);
        if (!isnan(s.accuracy))
            printf("accuracy %.2f%% (%s)\n", 100 * s.accuracy,
                   t->type == CNN_TASK_CONTEXT ? "relative position of the second patch"
                   : "a view's nearest other view is its image's other view");
    }
    if (min_acc >= 0 && !(s.accuracy >= min_acc)) {
        fprintf(stderr, "cnn eval: accuracy %.4f is below --min-accuracy %.4f\n",
                s.accuracy, min_acc);
        return CLI_EXIT_GATE;
    }
    return CLI_EXIT_OK;
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
    int rc = cli_model_for_inference(ckpt, (size_t)batch, &m);
    if (rc) return rc;
    if (m.cfg.task.type == CNN_TASK_CONTRASTIVE && (size_t)batch != m.cfg.train.batch) {
        /* the other images of a batch are the negatives: score with the
         * batch the run was scored with */
        batch = (long)m.cfg.train.batch;
        cli_model_free(&m);
        if ((rc = cli_model_for_inference(ckpt, (size_t)batch, &m))) return rc;
    }
    cnn_data_source src = m.cfg.data.val;
    char buf1[4096], buf2[4096];
    if (data) cli_data_arg(data, &src, buf1, buf2, sizeof buf1);
    else if (src.kind == CNN_SOURCE_NONE && !(m.cfg.data.val_split > 0)) {
        fprintf(stderr, "%s: error: the checkpoint's config has no data.val; name the data "
                "with --data\n", ckpt);
        cli_model_free(&m);
        return CLI_EXIT_USAGE;
    }
    const char *data_name = src.kind == CNN_SOURCE_IDX ? src.images : src.path;
    cnn_dataset ds = {0};
    if (src.kind == CNN_SOURCE_NONE) {
        /* the held-out part of data.train: the split is the same in every run */
        cnn_dataset train_part;
        data_name = "data.val_split of data.train";
        rc = cli_load_train_val(&m.cfg, 1, &train_part, &ds);
        cnn_dataset_free(&train_part);
    } else {
        rc = cli_load_source(&m.cfg, &src, data ? "--data" : "val", m.classes, m.nclasses,
                             &ds);
    }
    if (rc) {
        cli_model_free(&m);
        return rc;
    }
    if (m.cfg.task.type != CNN_TASK_CLASSIFY) {
        rc = eval_task(&m, &ds, ckpt, data_name, (size_t)batch, json, min_acc);
        cnn_dataset_free(&ds);
        cli_model_free(&m);
        return rc;
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
    if (json) print_json(stdout, ckpt, data_name, &s, confusion, &m);
    else print_text(stdout, ckpt, data_name, &s, confusion, &m);
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
