/*
 * `cnn train`: train the network a config describes on its data, writing a
 * run directory with the resolved config, per-epoch logs (JSON lines and
 * CSV) and checkpoints (last.cnn after every epoch, best.cnn when the
 * validation accuracy improves).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/checkpoint.h"
#include "../core/rng.h"
#include "cli.h"
#include "progress.h"
#include "run.h"

#define MAX_SETS 64

static const char usage[] =
    "usage: cnn train CONFIG [--out DIR] [--resume CKPT] [--set KEY=VALUE]...\n"
    "                        [--seed N] [--threads N]\n"
    "\n"
    "Train the network described by CONFIG (YAML) on its data.train split,\n"
    "scoring data.val after every epoch when the config has one.\n"
    "\n"
    "  --out DIR        run directory (default: runs/<name>/); receives config.yaml,\n"
    "                   log.jsonl, log.csv, last.cnn and best.cnn\n"
    "  --resume CKPT    continue the run that wrote CKPT (its last.cnn): weights,\n"
    "                   optimizer moments, epoch, schedule position and RNG states\n"
    "                   come from CKPT, so the result is the same as an unbroken\n"
    "                   run with the same thread count; the run directory defaults\n"
    "                   to CKPT's folder and its logs are appended to\n"
    "  --set KEY=VALUE  override a config key, e.g. --set train.epochs=2 or\n"
    "                   --set model.layers.0.conv.filters=8 (repeatable)\n"
    "  --seed N         same as --set seed=N\n"
    "  --threads N      compute threads (default: all cores)\n"
    "\n"
    "Progress goes to stderr (a bar on a terminal, one line per epoch otherwise);\n"
    "the final scores go to stdout.\n";

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    return 0;
}

/* Fail before training, not after the first epoch, when DIR is unusable. */
static int check_out_dir(const char *dir)
{
    char probe[4200];
    if (make_dirs(dir)) {
        fprintf(stderr, "%s: error: cannot create the run directory: %s\n", dir,
                strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    snprintf(probe, sizeof probe, "%s/.cnn-write-test", dir);
    FILE *f = fopen(probe, "w");
    if (!f || fclose(f)) {
        fprintf(stderr, "%s: error: cannot write in the run directory: %s\n", dir,
                strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    remove(probe);
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "%s: error: cannot write: %s\n", path, strerror(errno));
        if (f) fclose(f);
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

/* Learning rate at optimizer step `step` of `total` (schedule in config.h). */
static float learning_rate(const cnn_train_spec *t, size_t step, size_t per_epoch)
{
    float base = t->optim.lr;
    size_t total = t->epochs * per_epoch;
    switch (t->schedule) {
    case CNN_SCHED_STEP:
        return base * powf(t->gamma, (float)(step / per_epoch / t->step_epochs));
    case CNN_SCHED_COSINE: {
        size_t warm = t->warmup_epochs * per_epoch;
        if (step < warm) return base * (float)(step + 1) / (float)warm;
        double frac = total > warm ? (double)(step - warm) / (double)(total - warm) : 1.0;
        return t->min_lr + (base - t->min_lr) * (float)(0.5 * (1.0 + cos(M_PI * frac)));
    }
    default:
        return base;
    }
}

typedef struct train_args {
    const char *config, *out, *resume;
    const char *sets[MAX_SETS + 1];
    size_t nsets;
    char seed_set[64];
    long threads;
} train_args;

static int parse_args(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            a->out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--resume", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            a->resume = v;
        } else if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            if (r < 0 || cli_add_set(argv[0], v, a->sets, &a->nsets, MAX_SETS))
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            snprintf(a->seed_set, sizeof a->seed_set, "seed=%s", v);
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || (a->threads = cli_positive(argv[0], "--threads", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_positional(argv, i, &a->config)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!a->config) return cli_usage_error(argv[0], "missing CONFIG");
    if (a->seed_set[0]) a->sets[a->nsets++] = a->seed_set;
    return 0;
}

typedef struct epoch_log {
    size_t epoch;
    double lr, train_loss, train_acc, val_loss, val_acc, seconds, images_per_s;
    double data_wait;        /* seconds the trainer waited for batches */
} epoch_log;

static void log_epoch(FILE *jsonl, FILE *csv, const epoch_log *g, int has_val)
{
    fprintf(jsonl, "{\"epoch\": %zu, \"lr\": %.6g, \"train_loss\": %.6f, "
            "\"train_accuracy\": %.6f", g->epoch, g->lr, g->train_loss, g->train_acc);
    if (has_val)
        fprintf(jsonl, ", \"val_loss\": %.6f, \"val_accuracy\": %.6f", g->val_loss, g->val_acc);
    fprintf(jsonl, ", \"seconds\": %.3f, \"images_per_s\": %.1f, \"data_wait_s\": %.3f}\n",
            g->seconds, g->images_per_s, g->data_wait);
    fprintf(csv, "%zu,%.6g,%.6f,%.6f,", g->epoch, g->lr, g->train_loss, g->train_acc);
    if (has_val) fprintf(csv, "%.6f,%.6f,", g->val_loss, g->val_acc);
    else fprintf(csv, ",,");
    fprintf(csv, "%.3f,%.1f,%.3f\n", g->seconds, g->images_per_s, g->data_wait);
    fflush(jsonl);
    fflush(csv);
}

/* The folder part of path ("." when none), in buf. */
static const char *dir_of(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, n, ".");
    else snprintf(buf, n, "%.*s", (int)(slash - path), path);
    return buf;
}

static uint64_t meta_u64(const cnn_checkpoint *ck, const char *key, uint64_t def)
{
    char buf[64];
    return cnn_checkpoint_meta(ck, key, buf, sizeof buf) ? def : strtoull(buf, NULL, 10);
}

/* Read CKPT into ck and take its weights, normalisation, RNG and trainer
 * state. The network of the config must be the checkpoint's. */
static int load_resume(const char *path, cli_model *m, cnn_checkpoint *ck,
                       cli_train_state *st, uint64_t *opt_step)
{
    cnn_error e = {0};
    char buf[64];
    if (cnn_checkpoint_read(path, ck, &e)) return cli_report(&e);
    int rc = cli_model_load_state(m, ck, path);
    if (rc) return rc;
    st->epoch = meta_u64(ck, "epoch", 0);
    st->step = meta_u64(ck, "step", 0);
    *opt_step = meta_u64(ck, "optimizer_step", 0);
    if (!cnn_checkpoint_meta(ck, "best_metric", buf, sizeof buf))
        st->best_metric = strtod(buf, NULL);
    if (!cnn_checkpoint_meta(ck, "val_accuracy", buf, sizeof buf))
        st->val_accuracy = strtod(buf, NULL);
    return 0;
}

/* The optimizer's moments and step count from the checkpoint. */
static int resume_optimizer(const char *path, const cnn_checkpoint *ck, cnn_optim *o,
                            uint64_t step)
{
    float *moments[2] = {o->m, o->v};
    const char *names[2] = {"optimizer.m", "optimizer.v"};
    for (size_t k = 0; k < 2; k++) {
        if (!moments[k]) continue;
        const cnn_ckpt_tensor *t = cnn_checkpoint_find(ck, names[k]);
        if (!t || t->size != o->n) {
            fprintf(stderr, "%s: error: cannot resume: %s tensor '%s' (%zu values "
                    "expected; was it written by another optimizer?)\n", path,
                    t ? "wrong size for" : "no", names[k], o->n);
            return CLI_EXIT_USAGE;
        }
        memcpy(moments[k], t->data, o->n * sizeof(float));
    }
    o->step = step;
    return 0;
}

static int train(const train_args *a)
{
    cli_model m;
    cnn_dataset train_ds = {0}, val_ds = {0};
    cnn_loader ld = {0};
    cnn_optim *opt = NULL;
    cnn_checkpoint ck = {0};
    FILE *jsonl = NULL, *csv = NULL;
    int *labels = NULL;
    int rc;
    cnn_error e = {0};
    char dir[4096], path[4200];

    cli_set_threads(a->threads);
    if ((rc = cli_model_from_config(a->config, a->sets, a->nsets, 0, &m))) return rc;
    const cnn_train_spec *ts = &m.cfg.train;
    if ((rc = cli_load_train_val(&m.cfg, 1, &train_ds, &val_ds))) goto out;
    int has_val = val_ds.n > 0;
    size_t need = train_ds.nclasses > val_ds.nclasses ? train_ds.nclasses : val_ds.nclasses;
    if (need > m.nclasses) {
        fprintf(stderr, "%s: error: the data has %zu classes but the output layer "
                "'%s' has %zu units\n", m.cfg.path, need, cnn_net_output(m.net)->name,
                m.nclasses);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if ((rc = cli_model_set_classes(&m, &train_ds))) goto out;
    cli_train_state st = {0, 0, -1.0, -1.0};
    uint64_t opt_step = 0;
    if (a->resume && (rc = load_resume(a->resume, &m, &ck, &st, &opt_step))) goto out;
    if (!m.cfg.data.has_normalize && !a->resume) {
        cnn_dataset_stats(&train_ds, m.mean, m.std);
        fprintf(stderr, "normalize: auto, from the training set: mean");
        for (size_t c = 0; c < train_ds.c; c++) fprintf(stderr, " %.4f", m.mean[c]);
        fprintf(stderr, ", std");
        for (size_t c = 0; c < train_ds.c; c++) fprintf(stderr, " %.4f", m.std[c]);
        fprintf(stderr, "\n");
    }
    if (a->out) snprintf(dir, sizeof dir, "%s", a->out);
    else if (a->resume) dir_of(a->resume, dir, sizeof dir);
    else snprintf(dir, sizeof dir, "runs/%s", m.cfg.name);
    if ((rc = check_out_dir(dir))) goto out;
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    if ((rc = write_text(path, m.cfg.resolved))) goto out;

    if (!a->resume) {
        uint64_t init_rng = cnn_rng_seed(m.cfg.seed, 1);
        cnn_net_init(m.net, &init_rng);
        m.net->rng = cnn_rng_seed(m.cfg.seed, 2);
    }
    cnn_loader_opts lo = {
        .batch = ts->batch, .h = m.cfg.data.input.h, .w = m.cfg.data.input.w,
        .mean = m.mean, .std = m.std, .shuffle = 1, .seed = cnn_rng_seed(m.cfg.seed, 3),
        .augs = m.cfg.data.augs, .naugs = m.cfg.data.naugs,
        .threads = m.cfg.data.loader_threads,
    };
    if (!(opt = cnn_optim_create(m.net, &ts->optim, &e)) ||
        cnn_loader_init(&ld, &train_ds, &lo, &e)) {
        rc = cli_report(&e);
        goto out;
    }
    if (a->resume && (rc = resume_optimizer(a->resume, &ck, opt, opt_step))) goto out;
    cnn_checkpoint_free(&ck);
    labels = malloc(ts->batch * sizeof *labels);
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    jsonl = fopen(path, a->resume ? "a" : "w");
    snprintf(path, sizeof path, "%s/log.csv", dir);
    int csv_new = !a->resume || access(path, F_OK) != 0;
    csv = fopen(path, csv_new ? "w" : "a");
    if (!labels || !jsonl || !csv) {
        fprintf(stderr, "%s: error: cannot open the logs: %s\n", dir, strerror(errno));
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    if (csv_new)
        fprintf(csv, "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,seconds,"
                "images_per_s,data_wait_s\n");
    fprintf(stderr, "training %s: %zu layers, %zu parameters, %zu training images%s, "
            "%zu epochs of batch %zu; run directory %s\n", m.cfg.name, m.net->nlayers,
            cnn_net_param_count(m.net), train_ds.n, has_val ? " (+ validation)" : "",
            ts->epochs, ts->batch, dir);

    if (a->resume)
        fprintf(stderr, "resuming from %s after epoch %llu (step %llu)\n", a->resume,
                (unsigned long long)st.epoch, (unsigned long long)st.step);
    size_t per_epoch = (train_ds.n + ts->batch - 1) / ts->batch;
    epoch_log g = {0};
    double run_start = cli_now();
    for (size_t epoch = (size_t)st.epoch; epoch < ts->epochs; epoch++) {
        cli_progress bar;
        double loss_sum = 0;
        size_t seen = 0, correct = 0;
        cnn_loader_epoch(&ld, epoch);
        cli_progress_begin(&bar, epoch + 1, ts->epochs, train_ds.n);
        g.lr = learning_rate(ts, st.step, per_epoch);
        for (size_t got; (got = cnn_loader_next(&ld, m.net->x, labels));) {
            size_t hit = 0;
            float lr = learning_rate(ts, st.step, per_epoch);
            cnn_net_forward(m.net, got, 1);
            double loss = cnn_net_loss(m.net, labels, &hit);
            if (!isfinite(loss)) {
                cli_progress_end(&bar);
                fprintf(stderr, "%s: error: the loss is not finite (%g) at epoch %zu, "
                        "step %zu; lower train.optimizer.lr? The last checkpoint, if "
                        "any, is kept in %s\n", m.cfg.path, loss, epoch + 1,
                        (size_t)st.step + 1, dir);
                rc = CLI_EXIT_RUNTIME;
                goto out;
            }
            cnn_net_backward(m.net);
            cnn_optim_step(opt, lr);
            st.step++;
            loss_sum += loss * (double)got;
            correct += hit;
            seen += got;
            cli_progress_update(&bar, seen, loss_sum / (double)seen,
                                (double)correct / (double)seen);
        }
        cli_progress_end(&bar);
        g.epoch = epoch + 1;
        g.seconds = cli_now() - bar.start;
        g.images_per_s = g.seconds > 0 ? (double)seen / g.seconds : 0;
        g.data_wait = ld.wait_seconds;
        g.train_loss = loss_sum / (double)seen;
        g.train_acc = (double)correct / (double)seen;
        if (has_val) {
            cli_score vs;
            cli_evaluate(&m, &val_ds, 1, NULL, &vs);
            g.val_loss = vs.loss;
            g.val_acc = vs.accuracy;
        }
        st.epoch = epoch + 1;
        st.val_accuracy = has_val ? g.val_acc : -1.0;
        log_epoch(jsonl, csv, &g, has_val);
        fprintf(stderr, "epoch %zu/%zu  lr %.4g  loss %.4f  acc %.2f%%", g.epoch,
                ts->epochs, g.lr, g.train_loss, 100 * g.train_acc);
        if (has_val)
            fprintf(stderr, "  val_loss %.4f  val_acc %.2f%%", g.val_loss, 100 * g.val_acc);
        fprintf(stderr, "  %.1fs  %.0f img/s  data wait %.1fs\n", g.seconds, g.images_per_s,
                g.data_wait);

        int best = has_val && g.val_acc > st.best_metric;
        if (best) st.best_metric = g.val_acc;
        snprintf(path, sizeof path, "%s/last.cnn", dir);
        if ((rc = cli_model_save(path, &m, opt, &st))) goto out;
        if (best) {
            snprintf(path, sizeof path, "%s/best.cnn", dir);
            if ((rc = cli_model_save(path, &m, opt, &st))) goto out;
        }
    }
    double total = cli_now() - run_start;
    printf("%s: %zu epochs in %.1f s; train loss %.4f, train accuracy %.2f%%",
           m.cfg.name, ts->epochs, total, g.train_loss, 100 * g.train_acc);
    if (has_val)
        printf("; val loss %.4f, val accuracy %.2f%% (best %.2f%%)", g.val_loss,
               100 * g.val_acc, 100 * st.best_metric);
    printf("\ncheckpoint: %s/last.cnn\n", dir);
    rc = 0;
out:
    if (jsonl) fclose(jsonl);
    if (csv) fclose(csv);
    free(labels);
    cnn_loader_free(&ld);
    cnn_optim_free(opt);
    cnn_checkpoint_free(&ck);
    cnn_dataset_free(&train_ds);
    cnn_dataset_free(&val_ds);
    cli_model_free(&m);
    return rc;
}

static int run(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(argc, argv, &a);
    return rc ? rc : train(&a);
}

const cli_command cli_cmd_train = {
    "train", "train a network from a YAML config", usage, run,
};
