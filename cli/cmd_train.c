/*
 * `cnn train`: train the network a config describes on its data, writing a
 * run directory with the resolved config, per-epoch logs (JSON lines and
 * CSV) and checkpoints: last.cnn after every epoch, best.cnn when the
 * watched metric improves (early stopping's monitor, else the validation
 * accuracy).
 *
 * The loop: learning rate from the schedule, weight noise on, forward,
 * loss, backward, weight noise off, optimizer step (L1, clipping, update).
 * After an epoch: validation, the log line, reduce-on-plateau, early
 * stopping, checkpoints. SIGINT or SIGTERM ends the current step, writes
 * last.cnn with the position inside the epoch and exits 130; --resume
 * continues from there exactly (the loader's batches are a pure function
 * of seed, epoch and position; every other piece of state is in the
 * checkpoint's meta).
 *
 * Before anything big is allocated, the run's memory is estimated (the
 * network's plan, the optimizer's state, the decoded data) and checked
 * against --max-memory or the memory available. A loss that is not finite
 * stops the run at its step, naming the first layer whose output (or, for
 * gradients, the layer where backward) went non-finite.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/checkpoint.h"
#include "../core/parallel.h"
#include "../core/rng.h"
#include "../data/source.h"
#include "cli.h"
#include "dist.h"
#include "finetune.h"
#include "progress.h"
#include "run.h"
#include "task.h"

#define MAX_SETS 64

static const char usage[] =
    "usage: cnn train CONFIG [--out DIR] [--resume CKPT] [--overwrite]\n"
    "                        [--set KEY=VALUE]... [--seed N] [--threads N]\n"
    "                        [--max-memory SIZE]\n"
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
    "  --overwrite      start afresh in a run directory that already holds an\n"
    "                   earlier run's last.cnn or best.cnn (without it, such a\n"
    "                   directory is refused, exit 2, and nothing in it changes)\n"
    "  --set KEY=VALUE  override a config key, e.g. --set train.epochs=2 or\n"
    "                   --set model.layers.0.conv.filters=8 (repeatable)\n"
    "  --seed N         same as --set seed=N\n"
    "  --threads N      compute threads (default: all cores)\n"
    "  --max-memory SIZE\n"
    "                   refuse to start (exit 1) when the run's estimated memory\n"
    "                   (network, optimizer, decoded data) exceeds SIZE, e.g. 512M\n"
    "                   or 2G (default: the memory available on this machine)\n"
    "\n"
    "Progress goes to stderr (a bar on a terminal, one line per epoch otherwise);\n"
    "the final scores go to stdout.\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes last.cnn (with\n"
    "the position inside the epoch, so --resume continues exactly) and exits 130;\n"
    "a second Ctrl-C exits at once.\n"
    "\n"
    "mpirun -np N cnn train CONFIG (cnn built with meson -Dmpi=true) trains one\n"
    "model on N processes, each taking its share of every batch of train.batch\n"
    "(train.distributed sets batch norm per_rank or sync); rank 0 writes the run\n"
    "directory, and --resume works with any number of processes.\n";

static const char finetune_usage[] =
    "usage: cnn finetune CONFIG [--from CKPT] [--out DIR] [--resume CKPT]\n"
    "                           [--overwrite] [--set KEY=VALUE]... [--seed N]\n"
    "                           [--threads N] [--max-memory SIZE]\n"
    "\n"
    "Train the network described by CONFIG starting from a pretrained checkpoint:\n"
    "every layer whose name (after finetune.rename) is in CKPT and not listed in\n"
    "finetune.drop takes CKPT's weights and batch-norm statistics; the others\n"
    "(the new head) start from their initialiser. A table on stderr shows each\n"
    "layer as loaded, new, reinit, dropped or unused. What trains comes from\n"
    "train.trainable (all, head, batchnorm), train.freeze, train.lr_mult and\n"
    "train.stages. A frozen batch-norm layer normalises with its running\n"
    "statistics and leaves them unchanged.\n"
    "\n"
    "  --from CKPT      the pretrained checkpoint (default: finetune.from)\n"
    "\n"
    "The other options are those of cnn train.\n";

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

#define EXIT_INTERRUPTED 130     /* 128 + SIGINT, as shells report Ctrl-C */
#define TASK_STREAM 0x7461736bu  /* cnn_rng_seed stream of the tasks' draws */

/* ---- interruptions ------------------------------------------------------ */

/* The first SIGINT or SIGTERM (0: none yet): the loop stops after the step
 * it is in. A second one exits at once; checkpoints are written to a
 * temporary file and renamed, so none is left half-written. */
static volatile sig_atomic_t stop_signal;
static int stderr_tty;

static void on_signal(int sig)
{
    static const char clear[] = "\r\033[K";
    static const char msg[] = "cnn train: interrupted: finishing the current step, then "
                              "writing last.cnn (interrupt again to quit at once)\n";
    if (stop_signal) _exit(EXIT_INTERRUPTED);
    stop_signal = sig;
    ssize_t r = stderr_tty ? write(STDERR_FILENO, clear, sizeof clear - 1) : 0;
    r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
}

/* Catch SIGINT and SIGTERM (on), or give them back their default (off). */
static void catch_signals(int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    stderr_tty = isatty(STDERR_FILENO);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- memory ------------------------------------------------------------- */

/* "2G", "512M", "1.5GiB", "4096": bytes (suffixes K, M, G, T are powers of
 * 1024; an optional "iB" or "B" follows). Returns -1 unless 1 byte to 2^60. */
static int parse_size(const char *text, uint64_t *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || !(v >= 1)) return -1;
    const char *units = "KMGT";
    const char *u = *end ? strchr(units, *end & ~0x20) : NULL;
    if (*end && (!u || !*u)) return -1;
    if (u) {
        for (const char *k = units; k <= u; k++) v *= 1024;
        end++;
        if ((*end & ~0x20) == 'I') end++;
        if ((*end & ~0x20) == 'B') end++;
    } else if ((*end & ~0x20) == 'B') {
        end++;
    }
    if (*end || v > 1152921504606846976.0) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* A "Key: N kB" line of /proc/meminfo, in bytes (0: not there). */
static uint64_t meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, 10) * 1024;
            break;
        }
    if (f) fclose(f);
    return v;
}

/* One number from a file (a cgroup limit); 0 when absent or "max". */
static uint64_t read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[64] = "";
    if (!f) return 0;
    if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
    fclose(f);
    return buf[0] >= '0' && buf[0] <= '9' ? strtoull(buf, NULL, 10) : 0;
}

/* The memory this run may count on: MemAvailable (free memory plus what
 * the kernel can reclaim), else the free pages; no more than the memory
 * limit of the cgroup (container) when there is one. *what says which. */
static uint64_t available_memory(const char **what)
{
    uint64_t avail = meminfo("MemAvailable");
    *what = "available on this machine (MemAvailable)";
    if (!avail) {
        long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        avail = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
        *what = "free on this machine";
    }
    uint64_t cg = read_number("/sys/fs/cgroup/memory.max");   /* cgroup v2 */
    if (!cg) cg = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");   /* v1 */
    if (cg && cg < ((uint64_t)1 << 60) && (!avail || cg < avail)) {
        avail = cg;
        *what = "allowed by this container's memory limit (cgroup)";
    }
    return avail;
}

/* Decoded bytes a data source will take in memory, from IDX headers or a
 * listing (no pixels read); 0 when that cannot be told (the load reports
 * the error). *n gets the number of images. */
static uint64_t source_bytes(const cnn_config *cfg, const cnn_data_source *src, size_t *n)
{
    const cnn_data_spec *d = &cfg->data;
    *n = 0;
    if (src->kind == CNN_SOURCE_IDX) {
        unsigned char h[16];
        gzFile g = gzopen(src->images, "rb");
        int got = g ? gzread(g, h, sizeof h) : 0;
        if (g) gzclose(g);
        if (got != (int)sizeof h || h[2] != 8 || h[3] != 3) return 0;
        uint64_t be[3];
        for (size_t k = 0; k < 3; k++)
            be[k] = (uint64_t)h[4 + 4 * k] << 24 | (uint64_t)h[5 + 4 * k] << 16
                    | (uint64_t)h[6 + 4 * k] << 8 | h[7 + 4 * k];
        if (src->limit && src->limit < be[0]) be[0] = src->limit;
        *n = (size_t)be[0];
        return be[0] * (be[1] * be[2] + sizeof(int));
    }
    if (src->kind != CNN_SOURCE_DIR && src->kind != CNN_SOURCE_LIST) return 0;
    cnn_file_list l = {0};
    cnn_error e = {0};
    cnn_status st = src->kind == CNN_SOURCE_DIR ? cnn_list_dir(src->path, &l, &e)
                                                : cnn_list_file(src->path, &l, &e);
    if (!st && src->nclasses)
        st = cnn_file_list_keep_classes(&l, src->classes, src->nclasses, src->path, &e);
    *n = st ? 0 : src->limit && src->limit < l.n ? src->limit : l.n;
    cnn_file_list_free(&l);
    uint64_t pixels = (uint64_t)*n * d->input.c * d->work_h * d->work_w;
    uint64_t budget = d->memory_mb << 20;   /* above it: a mapped cache file */
    return (budget && pixels > budget ? budget : pixels) + *n * sizeof(int);
}

/* Estimate what the run will hold in memory, before allocating any of it,
 * and refuse to start, with the estimate broken down, when it exceeds
 * max_memory bytes (--max-memory; 0: the memory available). m->net is
 * only planned. Returns an exit code. */
static int check_memory(uint64_t max_memory, const cli_model *m)
{
    const cnn_config *cfg = &m->cfg;
    const cnn_train_spec *ts = &cfg->train;
    const cnn_net *net = m->net;
    cnn_net_mem mem;
    cnn_net_memory(net, &mem);
    uint64_t nparam = net->nparam_floats, f = sizeof(float);
    uint64_t moments = ts->optim.type == CNN_OPTIM_SGD ? 1 : 2;
    uint64_t optim = nparam * f * (moments + 2 + (ts->optim.weight_noise > 0));
    uint64_t best = ts->early.enabled && ts->early.restore_best
                        ? (nparam + net->nbuffer_floats) * f : 0;
    size_t ntrain, nval = 0;
    uint64_t train = source_bytes(cfg, &cfg->data.train, &ntrain);
    uint64_t val = source_bytes(cfg, &cfg->data.val, &nval);
    uint64_t chw = cnn_shape_size(cfg->data.input);
    uint64_t loader = cfg->data.loader_threads
                          ? (cfg->data.loader_threads + 1) * ts->batch * chw * f : 0;
    struct { const char *what; uint64_t bytes; } part[] = {
        {"parameters, gradients, buffers", mem.params + mem.grads + mem.buffers},
        {"activations (outputs, gradients, saved)", mem.acts},
        {"layer scratch", mem.work},
        {"input batch and its gradient", mem.input},
        {"optimizer state", optim},
        {"best weights (restore_best)", best},
        {"training data, decoded", train},
        {"validation data, decoded", val},
        {"loader batches", loader},
    };
    uint64_t total = 0;
    for (size_t k = 0; k < sizeof part / sizeof *part; k++) total += part[k].bytes;
    const char *what = "given by --max-memory";
    uint64_t limit = max_memory ? max_memory : available_memory(&what);
    if (!limit || total <= limit) return 0;
    char size[2][32];
    cnn_format_bytes((size_t)total, size[0], 32);
    cnn_format_bytes((size_t)limit, size[1], 32);
    fprintf(stderr, "%s: error: this run needs an estimated %s of memory, more than the "
            "%s %s; nothing was allocated:\n", cfg->path, size[0], size[1], what);
    for (size_t k = 0; k < sizeof part / sizeof *part; k++) {
        if (!part[k].bytes) continue;
        cnn_format_bytes((size_t)part[k].bytes, size[0], 32);
        fprintf(stderr, "  %-42s %12s", part[k].what, size[0]);
        if (k == 1) fprintf(stderr, "   (batch %zu, %zu layers)", ts->batch, net->nlayers);
        if (k == 6 || k == 7) fprintf(stderr, "   (%zu images)", k == 6 ? ntrain : nval);
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "lower train.batch, data.input or the layer sizes%s\n",
            max_memory ? ", or raise --max-memory" : ", or give --max-memory to "
            "allow more");
    return CLI_EXIT_RUNTIME;
}

/* ---- non-finite values -------------------------------------------------- */

/* v as %g prints it, but "nan" for every NaN (printf may say "-nan"). */
static const char *show(double v, char *buf, size_t n)
{
    if (isnan(v)) snprintf(buf, n, "nan");
    else snprintf(buf, n, "%g", v);
    return buf;
}

/* The loss (grads = 0) or the gradients (grads = 1) of a step are not
 * finite: say so, with where the first non-finite value is. */
static void report_nonfinite(const cli_model *m, int grads, double loss, size_t epoch,
                             uint64_t step, const char *dir)
{
    cnn_nonfinite r;
    char v[32];
    if (!grads)
        fprintf(stderr, "%s: error: the loss is not finite (%s) at epoch %zu, step %"
                PRIu64, m->cfg.path, show(loss, v, sizeof v), epoch, step);
    else
        fprintf(stderr, "%s: error: the gradients are not finite at epoch %zu, step %"
                PRIu64 " (the loss is %g)", m->cfg.path, epoch, step, loss);
    if (!cnn_net_find_nonfinite(m->net, grads, &r))
        fprintf(stderr, "; every layer's %s finite", grads ? "gradient is"
                : "output and weights are");
    else if (!grads && !strcmp(r.what, "output"))
        fprintf(stderr, "; the first layer whose output is not finite is '%s' (%s): "
                "sample %zu has %s", r.layer->name, r.layer->kind->name, r.index,
                show(r.value, v, sizeof v));
    else if (!grads)
        fprintf(stderr, "; the first layer with a value that is not finite is '%s' "
                "(%s): its %s holds %s at element %zu (put there by an earlier update, or "
                "by the checkpoint it started from)",
                r.layer->name, r.layer->kind->name, r.what, show(r.value, v, sizeof v),
                r.index);
    else if (!strcmp(r.what, "output"))
        fprintf(stderr, "; going backward, the gradient first stops being finite at the "
                "output of layer '%s' (%s): sample %zu has %s", r.layer->name,
                r.layer->kind->name, r.index, show(r.value, v, sizeof v));
    else
        fprintf(stderr, "; going backward, the gradient first stops being finite at the "
                "%s of layer '%s' (%s): element %zu has %s", r.what, r.layer->name,
                r.layer->kind->name, r.index, show(r.value, v, sizeof v));
    fprintf(stderr, "\nlower train.optimizer.lr, or set train.clip_grad_norm? The last "
            "checkpoint, if any, is kept in %s\n", dir);
}

typedef struct train_args {
    const char *config, *out, *resume, *from;
    int finetune;                /* cnn finetune */
    int overwrite;               /* --overwrite: replace an earlier run in --out */
    const char *sets[MAX_SETS + 1];
    size_t nsets;
    char seed_set[64];
    long threads;
    uint64_t max_memory;         /* bytes; 0: the memory available */
    const char *max_memory_arg;  /* as given, for messages */
} train_args;

static int parse_args(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    a->finetune = !strcmp(argv[0], "finetune");
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (a->finetune && (r = cli_opt(argc, argv, &i, "--from", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            a->from = v;
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            a->out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--resume", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            a->resume = v;
        } else if (cli_opt(argc, argv, &i, "--overwrite", NULL)) {
            a->overwrite = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            if (r < 0 || cli_add_set(argv[0], v, a->sets, &a->nsets, MAX_SETS))
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            snprintf(a->seed_set, sizeof a->seed_set, "seed=%s", v);
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || (a->threads = cli_positive(argv[0], "--threads", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--max-memory", &v))) {
            if (r < 0) return CLI_EXIT_USAGE;
            if (parse_size(v, &a->max_memory))
                return cli_usage_error(argv[0], "--max-memory needs a size such as 512M, "
                                       "2G or 1.5T (bytes, or K, M, G, T: powers of "
                                       "1024), got '%s'", v);
            a->max_memory_arg = v;
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

/* Append the epoch's line to both logs; returns 0, or 1 when log.jsonl
 * and 2 when log.csv could not be written (a full disk). */
/* An accuracy for the logs: null (JSON) or empty (CSV) where the task
 * scores none (NaN). */
static void put_accuracy(FILE *f, double v, int json)
{
    if (isnan(v)) fputs(json ? "null" : "", f);
    else fprintf(f, "%.6f", v);
}

static int log_epoch(FILE *jsonl, FILE *csv, const epoch_log *g, int has_val)
{
    fprintf(jsonl, "{\"epoch\": %zu, \"lr\": %.6g, \"train_loss\": %.6f, "
            "\"train_accuracy\": ", g->epoch, g->lr, g->train_loss);
    put_accuracy(jsonl, g->train_acc, 1);
    if (has_val) {
        fprintf(jsonl, ", \"val_loss\": %.6f, \"val_accuracy\": ", g->val_loss);
        put_accuracy(jsonl, g->val_acc, 1);
    }
    fprintf(jsonl, ", \"seconds\": %.3f, \"images_per_s\": %.1f, \"data_wait_s\": %.3f}\n",
            g->seconds, g->images_per_s, g->data_wait);
    fprintf(csv, "%zu,%.6g,%.6f,", g->epoch, g->lr, g->train_loss);
    put_accuracy(csv, g->train_acc, 0);
    fputc(',', csv);
    if (has_val) {
        fprintf(csv, "%.6f,", g->val_loss);
        put_accuracy(csv, g->val_acc, 0);
        fputc(',', csv);
    } else {
        fprintf(csv, ",,");
    }
    fprintf(csv, "%.3f,%.1f,%.3f\n", g->seconds, g->images_per_s, g->data_wait);
    if (fflush(jsonl) || ferror(jsonl)) return 1;
    if (fflush(csv) || ferror(csv)) return 2;
    return 0;
}

static double metric_of(const epoch_log *g, cnn_monitor m)
{
    switch (m) {
    case CNN_MONITOR_VAL_LOSS: return g->val_loss;
    case CNN_MONITOR_VAL_ACCURACY: return g->val_acc;
    case CNN_MONITOR_TRAIN_LOSS: return g->train_loss;
    default: return g->train_acc;
    }
}

/* ---- trainer state ------------------------------------------------------ */

/* What the loop keeps between steps and epochs beyond cli_train_state, all
 * of it saved in the checkpoint's meta so that --resume continues exactly. */
typedef struct run_state {
    uint64_t position;       /* batches done of epoch st.epoch (0: at its start) */
    double loss_sum;         /* of those batches: summed loss, */
    uint64_t seen, correct;  /* samples and top-1 hits */
    /* the watched metric (early stopping's monitor, else val accuracy) */
    int watching;            /* 0: nothing to watch (no validation set) */
    cnn_monitor monitor;
    int maximize;
    double min_delta;
    double best;             /* best value so far (+-inf: none yet) */
    uint64_t best_epoch;     /* the epoch (1-based) that had it; 0: none */
    uint64_t wait;           /* epochs since then without improvement */
    epoch_log best_log;      /* that epoch's scores */
    cnn_plateau plateau;     /* schedule plateau */
} run_state;

static void format_state(char *buf, size_t n, const run_state *rs, int plateau)
{
    size_t len = 0;
#define PUT(...) (len += (size_t)snprintf(buf + (len < n ? len : n), len < n ? n - len : 0, \
                                          __VA_ARGS__))
    PUT("position=%" PRIu64 "\n", rs->position);
    if (rs->position)
        PUT("partial.loss_sum=%.17g\npartial.seen=%" PRIu64 "\npartial.correct=%" PRIu64 "\n",
            rs->loss_sum, rs->seen, rs->correct);
    if (rs->watching)
        PUT("monitor=%s\nmonitor.best=%.17g\nmonitor.best_epoch=%" PRIu64 "\n"
            "monitor.wait=%" PRIu64 "\n", cnn_monitor_names[rs->monitor], rs->best,
            rs->best_epoch, rs->wait);
    if (rs->best_epoch)
        PUT("best.train_loss=%.17g\nbest.train_accuracy=%.17g\nbest.val_loss=%.17g\n"
            "best.val_accuracy=%.17g\n", rs->best_log.train_loss, rs->best_log.train_acc,
            rs->best_log.val_loss, rs->best_log.val_acc);
    if (plateau)
        PUT("plateau.lr=%.17g\nplateau.best=%.17g\nplateau.bad_epochs=%" PRIu64 "\n"
            "plateau.cooldown=%" PRIu64 "\n", rs->plateau.lr, rs->plateau.best,
            rs->plateau.bad_epochs, rs->plateau.cooldown);
#undef PUT
    assert(len < n && "the trainer state fits its buffer");
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

static double meta_double(const cnn_checkpoint *ck, const char *key, double def)
{
    char buf[64];
    return cnn_checkpoint_meta(ck, key, buf, sizeof buf) ? def : strtod(buf, NULL);
}

/* Read CKPT into ck and take its weights, normalisation, RNG and trainer
 * state. The network of the config must be the checkpoint's. */
static int load_resume(const char *path, cli_model *m, cnn_checkpoint *ck,
                       cli_train_state *st, run_state *rs, uint64_t *opt_step)
{
    cnn_error e = {0};
    char buf[64];
    if (cnn_checkpoint_read(path, ck, &e)) return cli_report(&e);
    int rc = cli_model_load_state(m, ck, path);
    if (rc) return rc;
    st->epoch = meta_u64(ck, "epoch", 0);
    st->step = meta_u64(ck, "step", 0);
    *opt_step = meta_u64(ck, "optimizer_step", 0);
    st->best_metric = meta_double(ck, "best_metric", st->best_metric);
    st->val_accuracy = meta_double(ck, "val_accuracy", st->val_accuracy);
    rs->position = meta_u64(ck, "position", 0);
    if (rs->position) {
        rs->loss_sum = meta_double(ck, "partial.loss_sum", 0);
        rs->seen = meta_u64(ck, "partial.seen", 0);
        rs->correct = meta_u64(ck, "partial.correct", 0);
    }
    /* the watched metric's state, if it watched the same metric */
    if (rs->watching && !cnn_checkpoint_meta(ck, "monitor", buf, sizeof buf)
        && !strcmp(buf, cnn_monitor_names[rs->monitor])) {
        rs->best = meta_double(ck, "monitor.best", rs->best);
        rs->best_epoch = meta_u64(ck, "monitor.best_epoch", 0);
        rs->wait = meta_u64(ck, "monitor.wait", 0);
    } else if (rs->watching && rs->monitor == CNN_MONITOR_VAL_ACCURACY
               && st->best_metric >= 0) {
        rs->best = st->best_metric;   /* a checkpoint from before the monitor keys */
    }
    if (rs->best_epoch) {
        rs->best_log.epoch = rs->best_epoch;
        rs->best_log.train_loss = meta_double(ck, "best.train_loss", 0);
        rs->best_log.train_acc = meta_double(ck, "best.train_accuracy", 0);
        rs->best_log.val_loss = meta_double(ck, "best.val_loss", 0);
        rs->best_log.val_acc = meta_double(ck, "best.val_accuracy", 0);
    }
    rs->plateau.lr = meta_double(ck, "plateau.lr", rs->plateau.lr);
    rs->plateau.best = meta_double(ck, "plateau.best", rs->plateau.best);
    rs->plateau.bad_epochs = meta_u64(ck, "plateau.bad_epochs", 0);
    rs->plateau.cooldown = meta_u64(ck, "plateau.cooldown", 0);
    return 0;
}

/* restore_best after a resume: the best epoch's weights come from best.cnn
 * beside CKPT, into best[] (parameters, then buffers); the network then gets
 * CKPT's state back. */
static int load_best(const char *resume, const cnn_checkpoint *ck, cli_model *m,
                     const run_state *rs, float *best)
{
    char dir[4096], path[4200];
    cnn_checkpoint bk = {0};
    cnn_error e = {0};
    cnn_net *net = m->net;
    snprintf(path, sizeof path, "%s/best.cnn", dir_of(resume, dir, sizeof dir));
    if (cnn_checkpoint_read(path, &bk, &e)) {
        cli_report(&e);
        fprintf(stderr, "%s: error: cannot resume with early_stopping.restore_best: the "
                "weights of the best epoch (%" PRIu64 ") are not readable\n", resume,
                rs->best_epoch);
        return CLI_EXIT_RUNTIME;
    }
    int rc = 0;
    if (meta_u64(&bk, "epoch", 0) != rs->best_epoch) {
        fprintf(stderr, "%s: error: cannot resume with early_stopping.restore_best: it holds "
                "epoch %" PRIu64 ", not the best epoch %" PRIu64 "\n", path,
                meta_u64(&bk, "epoch", 0), rs->best_epoch);
        rc = CLI_EXIT_RUNTIME;
    }
    if (!rc && !(rc = cli_model_load_state(m, &bk, path))) {
        memcpy(best, net->params, net->nparam_floats * sizeof *best);
        memcpy(best + net->nparam_floats, net->buffers, net->nbuffer_floats * sizeof *best);
        rc = cli_model_load_state(m, ck, resume);
    }
    cnn_checkpoint_free(&bk);
    return rc;
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

/* The stage of the run that epoch (0-based) belongs to: without
 * train.stages, one stage of every epoch with train.trainable and freeze. */
typedef struct stage_pos {
    size_t index, start, epochs;
    int trainable;
    const char *const *freeze;
    size_t nfreeze;
    float lr;
} stage_pos;

static void stage_at(const cnn_config *cfg, size_t epoch, stage_pos *sp)
{
    const cnn_tune_spec *t = &cfg->tune;
    *sp = (stage_pos){0, 0, cfg->train.epochs, t->trainable, t->freeze, t->nfreeze,
                      cfg->train.optim.lr};
    for (size_t i = 0, start = 0; i < t->nstages; start += t->stages[i++].epochs) {
        const cnn_stage_spec *g = &t->stages[i];
        if (epoch >= start + g->epochs && i + 1 < t->nstages) continue;
        *sp = (stage_pos){i, start, g->epochs, g->trainable, g->freeze, g->nfreeze, g->lr};
        return;
    }
}

/* The learning rate of optimizer step `step`. */
static float learning_rate(const cnn_train_spec *t, const run_state *rs,
                           const stage_pos *sp, uint64_t step, size_t per_epoch)
{
    if (t->sched.type == CNN_SCHED_PLATEAU) return (float)rs->plateau.lr;
    return (float)cnn_schedule_lr(&t->sched, sp->lr, step - sp->start * per_epoch,
                                  per_epoch, sp->epochs);
}

/* Is v an improvement on the watched metric's best? */
static int improves(const run_state *rs, double v)
{
    if (isnan(v)) return 0;
    return rs->maximize ? v > rs->best + rs->min_delta : v < rs->best - rs->min_delta;
}

/* set when the run directory's best.cnn belongs to the run that
 * --overwrite replaces (see guard_earlier_run) */
static int stale_best;

/* Write DIR/FILE; in a data-parallel job only rank 0 writes (every process
 * holds the same weights). The first checkpoint written removes a stale
 * best.cnn, unless it is that best.cnn. */
static int save(const char *dir, const char *file, const cli_model *m, const cnn_optim *o,
                cli_train_state *st, const run_state *rs, int plateau)
{
    char path[4200], extra[1024];
    if (cli_dist_rank() > 0) return 0;
    format_state(extra, sizeof extra, rs, plateau);
    st->extra_meta = extra;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = cli_model_save(path, m, o, st);
    st->extra_meta = NULL;
    if (!rc && stale_best) {
        stale_best = 0;
        snprintf(path, sizeof path, "%s/best.cnn", dir);
        if (strcmp(file, "best.cnn") && remove(path) && errno != ENOENT) {
            fprintf(stderr, "%s: error: cannot remove the replaced run's checkpoint: %s\n",
                    path, strerror(errno));
            rc = CLI_EXIT_RUNTIME;
        }
    }
    return rc;
}

/* "LEAD cnn train CONFIG --set ... --resume DIR/last.cnn" for messages
 * (cnn finetune CONFIG --from CKPT ... for a fine-tuning run). */
static void print_resume_hint(const train_args *a, const char *lead, const char *dir)
{
    fprintf(stderr, "%s cnn %s %s", lead, a->finetune ? "finetune" : "train", a->config);
    if (a->finetune && a->from) fprintf(stderr, " --from %s", a->from);
    for (size_t i = 0; i < a->nsets; i++) fprintf(stderr, " --set '%s'", a->sets[i]);
    fprintf(stderr, " --resume %s/last.cnn\n", dir);
}

/* A fresh run (or a resume writing into another run's folder) would write
 * over the checkpoints of the run already in DIR: refuse, unless
 * --overwrite. Then *stale says that DIR's best.cnn is the earlier
 * run's: save() removes it once this run has a checkpoint of its own, so
 * that it neither sits beside a new last.cnn (a run without validation
 * writes none) nor feeds restore_best after a resume. */
static int guard_earlier_run(const train_args *a, const char *dir, int *stale)
{
    char last[4200], best[4200], rdir[4096];
    struct stat sd, sr;
    snprintf(last, sizeof last, "%s/last.cnn", dir);
    snprintf(best, sizeof best, "%s/best.cnn", dir);
    int has_last = access(last, F_OK) == 0, has_best = access(best, F_OK) == 0;
    if (!has_last && !has_best) return 0;
    if (a->resume && !stat(dir, &sd) && !stat(dir_of(a->resume, rdir, sizeof rdir), &sr)
        && sd.st_dev == sr.st_dev && sd.st_ino == sr.st_ino)
        return 0;    /* continuing the run in its own folder */
    if (a->overwrite) {
        *stale = has_best;
        return 0;
    }
    fprintf(stderr, "%s: error: the run directory already holds %s from an earlier run; "
            "to keep it, give another --out DIR; to replace it, add --overwrite\n", dir,
            has_last && has_best ? "last.cnn and best.cnn" : has_last ? "last.cnn" : "best.cnn");
    if (!a->resume && has_last) print_resume_hint(a, "  or continue that run:", dir);
    return CLI_EXIT_USAGE;
}

/* Does anything but "train every parameter" apply? */
static int tunes(const cnn_config *cfg, const char *from)
{
    const cnn_tune_spec *t = &cfg->tune;
    return from || t->trainable != CNN_TRAINABLE_ALL || t->nfreeze || t->nlr_mult
           || t->nstages;
}

/* Pretrained weights into m (initialised first, as a fresh run would be),
 * and, unless the config gives data.normalize, the checkpoint's
 * normalisation. */
static int load_pretrained(const char *from, cli_model *m, unsigned char *origin)
{
    cnn_checkpoint ck = {0};
    cnn_error e = {0};
    uint64_t init_rng = cnn_rng_seed(m->cfg.seed, 1);
    cnn_net_init(m->net, &init_rng);
    m->net->rng = cnn_rng_seed(m->cfg.seed, 2);
    if (cnn_checkpoint_read(from, &ck, &e)) return cli_report(&e);
    fprintf(stderr, "fine-tuning from %s\n", from);
    int rc = cli_finetune_load(m, &ck, from, &m->cfg.tune, origin);
    char buf[256];
    if (!rc && !m->cfg.data.has_normalize
        && !cnn_checkpoint_meta(&ck, "mean", buf, sizeof buf)) {
        char *at = buf;
        for (size_t c = 0; c < m->cfg.data.input.c && c < 4; c++) m->mean[c] = strtof(at, &at);
        if (!cnn_checkpoint_meta(&ck, "std", buf, sizeof buf)) {
            at = buf;
            for (size_t c = 0; c < m->cfg.data.input.c && c < 4; c++)
                m->std[c] = strtof(at, &at);
        }
        fprintf(stderr, "normalize: the pretrained network's (mean %.4f, std %.4f%s)\n",
                m->mean[0], m->std[0], m->cfg.data.input.c > 1 ? " for channel 0" : "");
    }
    cnn_checkpoint_free(&ck);
    return rc;
}

/* ---- data-parallel pieces ---------------------------------------------- */

/* Score the validation set in a data-parallel job: each process scores its
 * contiguous share of it, and the sums are added over the processes. */
static void evaluate_shared(cli_model *m, const cnn_dataset *ds, cli_score *vs)
{
    size_t r = cli_dist_rank(), k = cli_dist_size();
    size_t lo = r * ds->n / k, hi = (r + 1) * ds->n / k;
    cnn_dataset part = *ds;   /* a view: never freed */
    part.pixels += lo * ds->c * ds->h * ds->w;
    part.labels += lo;
    part.n = hi - lo;
    cli_score mine = {0};
    if (part.n) cli_evaluate(m, &part, 1, NULL, &mine);
    double sums[3] = {part.n ? mine.loss * (double)mine.n : 0, (double)mine.correct,
                      (double)mine.n};
    cli_dist_sum(sums, 3);
    memset(vs, 0, sizeof *vs);
    vs->n = (size_t)sums[2];
    vs->correct = (size_t)sums[1];
    vs->k = 1;
    vs->loss = vs->n ? sums[0] / sums[2] : NAN;
    vs->accuracy = vs->n ? sums[1] / sums[2] : NAN;
}

/* After an epoch of a data-parallel job: every process must hold rank 0's
 * weights. Per-rank batch norm leaves each process with running statistics
 * of its own samples: rank 0's are taken (what its checkpoint holds, as
 * PyTorch's DDP broadcasts rank 0's buffers). The parameters and optimizer
 * state agree by construction (the same summed gradients, the same
 * update); should an MPI library's sums differ in the last bit between
 * processes, a warning says so and rank 0's are taken too. */
static void agree_on_weights(cli_model *m, cnn_optim *o, size_t epoch)
{
    cnn_net *net = m->net;
    if (!m->cfg.train.sync_batchnorm) cli_dist_broadcast(net->buffers, net->nbuffer_floats);
    if (cli_dist_same(net->params, net->nparam_floats)
        && cli_dist_same(net->buffers, net->nbuffer_floats))
        return;
    if (cli_dist_rank() == 0)
        fprintf(stderr, "warning: after epoch %zu the processes' weights differ (the MPI "
                "library's sums were not the same in every process); continuing with "
                "rank 0's\n", epoch);
    cli_dist_broadcast(net->params, net->nparam_floats);
    cli_dist_broadcast(net->buffers, net->nbuffer_floats);
    cli_dist_broadcast(o->m, o->n);
    if (o->v) cli_dist_broadcast(o->v, o->n);
}

/* Data-parallel: every process needs at least one sample of every batch
 * (synchronised batch norm and the summed gradients need all of them in
 * every step). Prints the error and returns an exit code. */
static int check_parts(const cnn_config *cfg, const cnn_loader_opts *lo, size_t n)
{
    size_t k = cli_dist_size(), b = cfg->train.batch;
    if (k < 2 || cnn_loader_part_min(lo, n)) return 0;
    if (b < k)
        fprintf(stderr, "%s: error: train.batch (%zu) is smaller than the number of "
                "processes (%zu): each takes its share of every batch, so the batch must "
                "be at least %zu\n", cfg->path, b, k, k);
    else
        fprintf(stderr, "%s: error: the last batch of an epoch has %zu of the %zu training "
                "images, fewer than the %zu processes that share it; change train.batch or "
                "data.train.limit so that it has at least %zu (or none)\n", cfg->path,
                n % b, n, k, k);
    return CLI_EXIT_USAGE;
}

/* Sets *agreed when it returns at a point that every process of a
 * data-parallel job reaches together (the same step, the same decision). */
static int train(const train_args *a, int *agreed)
{
    cli_model m;
    cnn_dataset train_ds = {0}, val_ds = {0};
    cnn_loader ld = {0};
    cnn_optim *opt = NULL;
    cnn_checkpoint ck = {0};
    FILE *jsonl = NULL, *csv = NULL;
    int *labels = NULL;
    float *best_weights = NULL;   /* [params + buffers] of the best epoch (restore_best) */
    unsigned char *origin = NULL; /* [nlayers] CLI_LAYER_* of a fine-tune */
    int pretrained_norm = 0;
    int rc;
    cnn_error e = {0};
    char dir[4096], path[4200];
    const size_t rank = cli_dist_rank(), nproc = cli_dist_size();
    cli_grad_sync *gsync = NULL;
    cnn_sync *bn_sync = NULL;
    cli_task *tk = NULL;

    stop_signal = 0;
    /* Past a file size limit (ulimit -f), a write fails with EFBIG and the
     * error names the file, instead of SIGXFSZ killing the process. */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ign, NULL);
    /* several processes on one host share its cores */
    long threads = a->threads;
    if (!threads && cli_dist_local_size() > 1) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN) / (long)cli_dist_local_size();
        threads = cores > 1 ? cores : 1;
    }
    cli_set_threads(threads);
    /* plan the network, check the memory estimate, then allocate; each
     * process of a data-parallel job holds its share of a batch */
    if ((rc = cli_model_plan(a->config, a->sets, a->nsets, 0, &m))) return rc;
    if (nproc > 1) {
        size_t batch = m.cfg.train.batch;
        cli_model_free(&m);
        if ((rc = cli_model_plan(a->config, a->sets, a->nsets, (batch + nproc - 1) / nproc,
                                 &m)))
            return rc;
    }
    const cnn_train_spec *ts = &m.cfg.train;
    const cnn_early_stopping *es = &ts->early;
    const int plateau = ts->sched.type == CNN_SCHED_PLATEAU;
    const cnn_task_spec *task = &m.cfg.task;
    const int classify = task->type == CNN_TASK_CLASSIFY;
    if (!classify && nproc > 1) {
        fprintf(stderr, "%s: error: task %s trains in one process only for now; data-parallel "
                "training (mpirun) takes task classify\n", m.cfg.path, cnn_task_names[task->type]);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if ((rc = check_memory(a->max_memory, &m)) || (rc = cli_model_allocate(&m))
        || (rc = cli_task_check(&m)))
        goto out;
    /* an unusable run directory fails now, not after loading the data */
    if (a->out) snprintf(dir, sizeof dir, "%s", a->out);
    else if (a->resume) dir_of(a->resume, dir, sizeof dir);
    else snprintf(dir, sizeof dir, "runs/%s", m.cfg.name);
    stale_best = 0;
    if (rank == 0 && ((rc = guard_earlier_run(a, dir, &stale_best)) || (rc = check_out_dir(dir))))
        goto out;
    if ((rc = cli_load_train_val(&m.cfg, 1, &train_ds, &val_ds))) goto out;
    int has_val = val_ds.n > 0;
    size_t need = train_ds.nclasses > val_ds.nclasses ? train_ds.nclasses : val_ds.nclasses;
    if (classify && need > m.nclasses) {
        fprintf(stderr, "%s: error: the data has %zu classes but the output layer "
                "'%s' has %zu units\n", m.cfg.path, need, cnn_net_output(m.net)->name,
                m.nclasses);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    /* the config checks this; a validation split can still come out empty */
    cnn_monitor needs[2] = {es->enabled ? es->monitor : CNN_MONITOR_TRAIN_LOSS,
                            plateau ? ts->plateau_monitor : CNN_MONITOR_TRAIN_LOSS};
    for (size_t k = 0; k < 2; k++) {
        if (has_val || needs[k] == CNN_MONITOR_TRAIN_LOSS
            || needs[k] == CNN_MONITOR_TRAIN_ACCURACY)
            continue;
        fprintf(stderr, "%s: error: train.%s monitors %s but there are no validation "
                "images\n", m.cfg.path, k ? "schedule" : "early_stopping",
                cnn_monitor_names[needs[k]]);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    /* a pretext task ignores the labels: its outputs are no classes */
    if (classify && (rc = cli_model_set_classes(&m, &train_ds))) goto out;
    const char *from = a->from ? a->from : a->finetune ? m.cfg.tune.from : NULL;
    if (a->finetune && !from) {
        rc = cli_usage_error("finetune", "no pretrained checkpoint: give --from CKPT or "
                             "finetune.from in %s", m.cfg.path);
        goto out;
    }
    if (from) {
        origin = calloc(m.net->nlayers, 1);
        if (!origin) {
            rc = CLI_EXIT_RUNTIME;
            goto out;
        }
        float mean0 = m.mean[0];
        if ((rc = load_pretrained(from, &m, origin))) goto out;
        pretrained_norm = !m.cfg.data.has_normalize && m.mean[0] != mean0;
    }

    cli_train_state st = {0, 0, -1.0, -1.0, NULL};
    run_state rs = {0};
    rs.watching = es->enabled || has_val;
    /* best.cnn: the best validation accuracy, or loss where the task has none */
    int by_loss = !cnn_task_has_accuracy(task);
    rs.monitor = es->enabled ? es->monitor
                 : by_loss ? CNN_MONITOR_VAL_LOSS : CNN_MONITOR_VAL_ACCURACY;
    rs.maximize = es->enabled ? es->maximize : !by_loss;
    rs.min_delta = es->enabled ? es->min_delta : 0.0;
    rs.best = rs.maximize ? -INFINITY : INFINITY;
    cnn_plateau_init(&rs.plateau, &ts->sched, ts->optim.lr);
    const int restore = es->enabled && es->restore_best;
    if (restore) {
        best_weights = cnn_alloc(m.net->nparam_floats + m.net->nbuffer_floats + 1,
                                 sizeof *best_weights, "best weights", &e);
        if (!best_weights) {
            rc = cli_report(&e);
            goto out;
        }
    }
    uint64_t opt_step = 0;
    if (a->resume && (rc = load_resume(a->resume, &m, &ck, &st, &rs, &opt_step))) goto out;
    if (a->resume && restore && rs.best_epoch
        && (rc = load_best(a->resume, &ck, &m, &rs, best_weights)))
        goto out;
    if (!m.cfg.data.has_normalize && !a->resume && !pretrained_norm) {
        /* every process computes the same from the same data */
        cnn_dataset_stats(&train_ds, m.mean, m.std);
        fprintf(stderr, "normalize: auto, from the training set: mean");
        for (size_t c = 0; c < train_ds.c; c++) fprintf(stderr, " %.4f", m.mean[c]);
        fprintf(stderr, ", std");
        for (size_t c = 0; c < train_ds.c; c++) fprintf(stderr, " %.4f", m.std[c]);
        fprintf(stderr, "\n");
    }
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    if (rank == 0 && (rc = write_text(path, m.cfg.resolved))) goto out;

    if (!a->resume && !from) {
        uint64_t init_rng = cnn_rng_seed(m.cfg.seed, 1);
        cnn_net_init(m.net, &init_rng);
        m.net->rng = cnn_rng_seed(m.cfg.seed, 2);
    }
    cnn_loader_opts lo = {
        .batch = ts->batch, .h = m.cfg.data.input.h, .w = m.cfg.data.input.w,
        .mean = m.mean, .std = m.std, .shuffle = 1, .seed = cnn_rng_seed(m.cfg.seed, 3),
        .augs = m.cfg.data.augs, .naugs = m.cfg.data.naugs,
        .threads = m.cfg.data.loader_threads, .part = rank, .parts = nproc,
        .views = cli_task_views(task),
    };
    if ((rc = check_parts(&m.cfg, &lo, train_ds.n))) goto out;
    if (!(tk = cli_task_create(&m, ts->batch))) {
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    if (!(opt = cnn_optim_create(m.net, &ts->optim, &e)) ||
        cnn_loader_init(&ld, &train_ds, &lo, &e)
        || (nproc > 1 && !(gsync = cli_grad_sync_create(m.net, ts->bucket_mb, &e)))
        || (nproc > 1 && ts->sync_batchnorm && !(bn_sync = cli_dist_sync_batchnorm(m.net, &e)))) {
        rc = cli_report(&e);
        goto out;
    }
    if (a->resume && (rc = resume_optimizer(a->resume, &ck, opt, opt_step))) goto out;
    cnn_checkpoint_free(&ck);
    labels = malloc(ts->batch * lo.views * sizeof *labels);   /* a label per view */
    /* rank 0 alone writes the logs; the others log to a null stream */
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    jsonl = fopen(rank == 0 ? path : "/dev/null", a->resume ? "a" : "w");
    snprintf(path, sizeof path, "%s/log.csv", dir);
    int csv_new = !a->resume || access(path, F_OK) != 0;
    csv = fopen(rank == 0 ? path : "/dev/null", csv_new ? "w" : "a");
    if (!labels || !jsonl || !csv) {
        fprintf(stderr, "%s: error: cannot open the logs: %s\n", dir, strerror(errno));
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    if (csv_new)
        fprintf(csv, "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,seconds,"
                "images_per_s,data_wait_s\n");
    size_t per_epoch = ld.nbatches;
    if (rs.position > per_epoch) {
        fprintf(stderr, "%s: error: cannot resume: it stopped after batch %" PRIu64 " of "
                "an epoch, but an epoch now has %zu batches (was train.batch or the data "
                "changed?)\n", a->resume, rs.position, per_epoch);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    catch_signals(1);
    fprintf(stderr, "training %s: %zu layers, %zu parameters, %zu training images%s, "
            "%zu epochs of batch %zu; run directory %s\n", m.cfg.name, m.net->nlayers,
            cnn_net_param_count(m.net), train_ds.n, has_val ? " (+ validation)" : "",
            ts->epochs, ts->batch, dir);
    if (nproc > 1)
        fprintf(stderr, "data-parallel over %zu processes (%zu on this host, %d thread%s "
                "each): up to %zu images of every batch each, batch norm %s, gradients "
                "summed in %zu bucket%s\n", nproc, cli_dist_local_size(), cnn_threads(),
                cnn_threads() == 1 ? "" : "s", cnn_loader_part_max(&lo),
                ts->sync_batchnorm ? "synchronised" : "per process",
                cli_grad_sync_buckets(gsync), cli_grad_sync_buckets(gsync) == 1 ? "" : "s");
    int stopped = es->enabled && rs.wait >= es->patience;
    if (a->resume && rs.position)
        fprintf(stderr, "resuming from %s in epoch %" PRIu64 " after batch %" PRIu64
                " of %zu (step %" PRIu64 ")\n", a->resume, st.epoch + 1, rs.position,
                per_epoch, st.step);
    else if (a->resume)
        fprintf(stderr, "resuming from %s after epoch %" PRIu64 " (step %" PRIu64 ")%s\n",
                a->resume, st.epoch, st.step,
                stopped ? "; early stopping had already ended this run" : "");

    epoch_log g = {0};
    size_t epochs_run = 0, applied = SIZE_MAX;
    double run_start = cli_now();
    for (size_t epoch = (size_t)st.epoch; epoch < ts->epochs && !stopped; epoch++) {
        cli_progress bar;
        double loss_sum = rs.loss_sum;
        size_t seen = rs.seen, correct = rs.correct, seen_before = rs.seen;
        stage_pos sp;
        stage_at(&m.cfg, epoch, &sp);
        if (sp.index != applied && tunes(&m.cfg, from)) {
            if (m.cfg.tune.nstages)
                fprintf(stderr, "stage %zu of %zu: epochs %zu-%zu, lr %g\n", sp.index + 1,
                        m.cfg.tune.nstages, sp.start + 1, sp.start + sp.epochs, (double)sp.lr);
            if ((rc = cli_apply_trainable(&m, sp.trainable, sp.freeze, sp.nfreeze,
                                          &m.cfg.tune, origin, opt)))
                goto out;
            /* a new stage starts with a new optimizer, as a new fit() would */
            if (sp.index > 0 && epoch == sp.start && rs.position == 0) cnn_optim_reset(opt);
            applied = sp.index;
        }
        cnn_loader_epoch_at(&ld, epoch, rs.position);
        size_t batch0 = ld.next_batch;
        rs.position = 0;
        rs.loss_sum = 0;
        rs.seen = rs.correct = 0;
        cli_progress_begin(&bar, epoch + 1, ts->epochs, train_ds.n);
        g.lr = learning_rate(ts, &rs, &sp, (uint64_t)epoch * per_epoch, per_epoch);
        int interrupted = 0;
        double comm_before = cli_dist_seconds();
        for (size_t got; !interrupted
                         && (got = cnn_loader_next(&ld, cli_task_loader_buffer(tk), labels));) {
            size_t hit = 0, total = ld.batch_total;
            float lr = learning_rate(ts, &rs, &sp, st.step, per_epoch);
            cnn_optim_perturb(opt);
            /* data-parallel: dropout and noise draw from a stream of this
             * process's own for the step; the shared state (weight noise)
             * moves on the same in every process */
            uint64_t shared_rng = m.net->rng;
            if (nproc > 1) m.net->rng = cnn_rng_seed(shared_rng, rank);
            /* context's patches: a draw of their own per step, so a resumed
             * run cuts the same ones */
            size_t rows = cli_task_prepare(tk, got, labels,
                                           cnn_rng_seed(m.cfg.seed ^ st.step, TASK_STREAM), 0);
            cnn_net_forward(m.net, rows, 1);
            double loss;
            if (nproc > 1) {
                /* the whole batch's loss, hits and whether any process was
                 * interrupted: all of them stop after the same step */
                loss = cnn_net_loss_part(m.net, labels, total, &hit);
                double local = loss, sums[3] = {loss * (double)got, (double)hit,
                                                stop_signal != 0};
                cli_dist_sum(sums, 3);
                loss = sums[0] / (double)total;
                hit = (size_t)sums[1];
                interrupted = sums[2] > 0;
                if (!isfinite(loss) && isfinite(local))
                    fprintf(stderr, "rank %zu: this process's loss is finite (%g)\n", rank,
                            local);
            } else if (classify) {
                loss = cnn_net_loss(m.net, labels, &hit);
            } else {
                loss = cli_task_loss(tk, got, 1, &hit);
            }
            if (!isfinite(loss)) {
                cli_progress_end(&bar);
                report_nonfinite(&m, 0, loss, epoch + 1, st.step + 1, dir);
                rc = CLI_EXIT_RUNTIME;
                *agreed = 1;
                goto out;
            }
            cnn_net_backward(m.net);
            if (gsync) cli_grad_sync_wait(gsync);
            if (nproc > 1) {
                m.net->rng = shared_rng;
                cnn_rng_next(&m.net->rng);
            }
            cnn_optim_unperturb(opt);
            /* A finite loss can still give a gradient that is not: check
             * every step, before the update spreads it into the weights
             * (one read of the gradients, a few per cent of a step). */
            if (!isfinite(cnn_optim_grad_norm(m.net->grads, m.net->nparam_floats))) {
                cli_progress_end(&bar);
                report_nonfinite(&m, 1, loss, epoch + 1, st.step + 1, dir);
                rc = CLI_EXIT_RUNTIME;
                *agreed = 1;
                goto out;
            }
            cnn_optim_step(opt, lr);
            st.step++;
            loss_sum += loss * (double)total;
            correct += hit;
            seen += total;
            if (nproc == 1) interrupted = stop_signal != 0;
            if (!interrupted)
                cli_progress_update(&bar, seen, loss_sum / (double)seen,
                                    cnn_task_has_accuracy(task)
                                        ? (double)correct / (double)(seen * lo.views)
                                        : NAN);
        }
        cli_progress_end(&bar);
        if (interrupted) {
            /* st.epoch stays: the epoch is not finished */
            rs.position = ld.next_batch;
            rs.loss_sum = loss_sum;
            rs.seen = seen;
            rs.correct = correct;
            if ((rc = save(dir, "last.cnn", &m, opt, &st, &rs, plateau))) goto out;
            fprintf(stderr, "%s: stopped during epoch %zu after batch %" PRIu64 " of %zu "
                    "(step %" PRIu64 "); checkpoint: %s/last.cnn\n",
                    stop_signal == SIGTERM ? "SIGTERM" : stop_signal ? "SIGINT"
                    : "another process was interrupted", epoch + 1, rs.position,
                    per_epoch, st.step, dir);
            print_resume_hint(a, "resume with:", dir);
            rc = EXIT_INTERRUPTED;
            *agreed = 1;
            goto out;
        }
        epochs_run++;
        g.epoch = epoch + 1;
        g.seconds = cli_now() - bar.start;
        g.images_per_s = g.seconds > 0 ? (double)(seen - seen_before) / g.seconds : 0;
        g.data_wait = ld.wait_seconds;
        g.train_loss = seen ? loss_sum / (double)seen : 0;
        g.train_acc = !cnn_task_has_accuracy(task) ? NAN
                      : seen ? (double)correct / (double)(seen * lo.views) : 0;
        double comm = cli_dist_seconds() - comm_before;
        size_t steps = ld.next_batch - batch0;
        if (nproc > 1) agree_on_weights(&m, opt, epoch + 1);
        if (has_val) {
            cli_score vs;
            if (nproc > 1) evaluate_shared(&m, &val_ds, &vs);
            else if (classify) cli_evaluate(&m, &val_ds, 1, NULL, &vs);
            else cli_task_evaluate(tk, &val_ds, &vs);
            g.val_loss = vs.loss;
            g.val_acc = vs.accuracy;
        }
        st.epoch = epoch + 1;
        st.val_accuracy = has_val ? g.val_acc : -1.0;
        int lost = log_epoch(jsonl, csv, &g, has_val);
        if (lost) {
            fprintf(stderr, "%s/%s: error: cannot write the log: %s\n", dir,
                    lost == 1 ? "log.jsonl" : "log.csv", strerror(errno));
            rc = CLI_EXIT_RUNTIME;
            goto out;
        }
        fprintf(stderr, "epoch %zu/%zu  lr %.4g  loss %.4f", g.epoch, ts->epochs, g.lr,
                g.train_loss);
        if (!isnan(g.train_acc)) fprintf(stderr, "  acc %.2f%%", 100 * g.train_acc);
        if (has_val) fprintf(stderr, "  val_loss %.4f", g.val_loss);
        if (has_val && !isnan(g.val_acc)) fprintf(stderr, "  val_acc %.2f%%", 100 * g.val_acc);
        fprintf(stderr, "  %.1fs  %.0f img/s  data wait %.1fs", g.seconds, g.images_per_s,
                g.data_wait);
        if (nproc > 1 && steps)
            fprintf(stderr, "  in MPI %.1f ms/step", 1e3 * comm / (double)steps);
        fprintf(stderr, "\n");

        double lr_before = rs.plateau.lr;
        if (plateau && cnn_plateau_step(&rs.plateau, &ts->sched,
                                        metric_of(&g, ts->plateau_monitor)))
            fprintf(stderr, "plateau: %s did not improve for %zu epoch%s; learning rate "
                    "%.4g -> %.4g\n", cnn_monitor_names[ts->plateau_monitor],
                    ts->sched.patience + 1, ts->sched.patience ? "s" : "", lr_before,
                    rs.plateau.lr);
        int best = 0;
        if (rs.watching) {
            double v = metric_of(&g, rs.monitor);
            if ((best = improves(&rs, v))) {
                rs.best = v;
                rs.best_epoch = g.epoch;
                rs.best_log = g;
                rs.wait = 0;
                st.best_metric = v;
                if (restore) {
                    memcpy(best_weights, m.net->params, m.net->nparam_floats * sizeof(float));
                    memcpy(best_weights + m.net->nparam_floats, m.net->buffers,
                           m.net->nbuffer_floats * sizeof(float));
                }
            } else {
                rs.wait++;
            }
        }
        if ((rc = save(dir, "last.cnn", &m, opt, &st, &rs, plateau))
            || (best && (rc = save(dir, "best.cnn", &m, opt, &st, &rs, plateau))))
            goto out;
        if (es->enabled && rs.wait >= es->patience) {
            stopped = 1;
            fprintf(stderr, "early stopping: %s has not improved for %" PRIu64 " epochs "
                    "(best %.6g at epoch %" PRIu64 ")\n", cnn_monitor_names[rs.monitor],
                    rs.wait, rs.best, rs.best_epoch);
        }
        if (nproc > 1 ? cli_dist_any(stop_signal != 0) : stop_signal != 0) {
            fprintf(stderr, "%s: stopped after epoch %zu of %zu (step %" PRIu64 "); "
                    "checkpoint: %s/last.cnn\n", stop_signal == SIGTERM ? "SIGTERM"
                    : stop_signal ? "SIGINT" : "another process was interrupted",
                    g.epoch, ts->epochs, st.step, dir);
            if (!stopped && g.epoch < ts->epochs) print_resume_hint(a, "resume with:", dir);
            rc = EXIT_INTERRUPTED;
            *agreed = 1;
            goto out;
        }
    }
    const epoch_log *r = &g;
    if (restore && rs.best_epoch) {
        memcpy(m.net->params, best_weights, m.net->nparam_floats * sizeof(float));
        memcpy(m.net->buffers, best_weights + m.net->nparam_floats,
               m.net->nbuffer_floats * sizeof(float));
        if ((rc = save(dir, "last.cnn", &m, opt, &st, &rs, plateau))) goto out;
        fprintf(stderr, "restore_best: last.cnn holds the weights of epoch %" PRIu64 "\n",
                rs.best_epoch);
        r = &rs.best_log;
    } else if (!epochs_run) {
        if (rank == 0)
            printf("%s: nothing to train: %" PRIu64 " of %zu epochs done%s\ncheckpoint: "
                   "%s/last.cnn\n", m.cfg.name, st.epoch, ts->epochs,
                   stopped ? " (stopped early)" : "", dir);
        rc = 0;
        *agreed = 1;
        goto out;
    }
    double total = cli_now() - run_start;
    rc = 0;
    *agreed = 1;
    if (rank > 0) goto out;   /* the job's results are rank 0's to print */
    printf("%s: %zu epoch%s in %.1f s", m.cfg.name, epochs_run, epochs_run == 1 ? "" : "s",
           total);
    if (st.epoch != epochs_run) printf(" (%" PRIu64 " in all)", st.epoch);
    printf("; train loss %.4f", r->train_loss);
    if (!isnan(r->train_acc)) printf(", train accuracy %.2f%%", 100 * r->train_acc);
    if (has_val) printf("; val loss %.4f", r->val_loss);
    if (has_val && !isnan(r->val_acc)) printf(", val accuracy %.2f%%", 100 * r->val_acc);
    if (rs.watching && rs.best_epoch)
        printf("; best %s %.4f at epoch %" PRIu64 "%s", cnn_monitor_names[rs.monitor], rs.best,
               rs.best_epoch, r == &rs.best_log ? " (restored)" : "");
    if (stopped) printf("; stopped early");
    printf("\ncheckpoint: %s/last.cnn\n", dir);
    rc = 0;
out:
    catch_signals(0);
    cli_grad_sync_free(gsync);
    cli_dist_sync_free(bn_sync);
    cli_task_free(tk);
    if (jsonl) fclose(jsonl);
    if (csv) fclose(csv);
    free(labels);
    free(best_weights);
    free(origin);
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
    int agreed = 0;
    int rc = cli_dist_init(argv[0]);
    if (rc) return rc;
    rc = parse_args(argc, argv, &a);
    if (!rc) rc = train(&a, &agreed);
    return cli_dist_finish(rc, agreed);
}

const cli_command cli_cmd_train = {
    "train", "train a network from a YAML config", usage, run,
};

const cli_command cli_cmd_finetune = {
    "finetune", "train from a pretrained checkpoint (transfer learning)", finetune_usage,
    run,
};
