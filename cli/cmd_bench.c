/*
 * `cnn bench`: time training steps of a config's network on random data,
 * per layer (forward, backward, share of the step, GFLOP/s), like `caffe
 * time`; then whole training steps and inference in images/s. The same
 * fixed batch is used every step, so the loss must fall: the first and last
 * losses are printed as a sanity check. With --inference only forward
 * passes in evaluation mode are timed (no optimizer is created), so that
 * inference can be measured at its own batch size in its own process.
 *
 * Under mpirun (a build with MPI), the batch is the global batch: each
 * process times its share of it, with the gradients summed over the
 * processes after every backward as `cnn train` does (in buckets started
 * during backward; batch norm synchronised when the config says so). Rank 0
 * prints its table, the job's images/s, the time each step spends inside
 * MPI, and the time the gradients' all-reduce takes alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../core/parallel.h"
#include "../core/rng.h"
#include "cli.h"
#include "dist.h"
#include "progress.h"
#include "run.h"
#include "task.h"

static const char usage[] =
    "usage: cnn bench CONFIG [--batch N] [--steps N] [--threads N] [--inference]\n"
    "                        [--set KEY=VALUE]...\n"
    "\n"
    "Time N training steps (default 10, after one warm-up step) of CONFIG's\n"
    "network and optimizer on one random batch (default: train.batch images):\n"
    "per layer the forward and backward milliseconds per step, their share\n"
    "of the step and GFLOP/s; then the whole step's images/s and GFLOP/s, the\n"
    "images/s and GFLOP/s of inference (forward only, evaluation mode) at the\n"
    "same batch, the peak resident memory, and the loss of the first and last\n"
    "step.\n"
    "\n"
    "--inference times only inference: N forward passes in evaluation mode\n"
    "after one warm-up pass, with the per-layer table of forward times; no\n"
    "optimizer is created and no training step is run.\n"
    "\n"
    "Under mpirun -np P (cnn built with -Dmpi=true) the batch is shared by the\n"
    "P processes, whose gradients are summed after every backward as in\n"
    "cnn train; rank 0 prints, adding the job's images/s, the milliseconds per\n"
    "step spent inside MPI and those of the gradients' all-reduce alone.\n";

static int bench(int argc, char **argv);

static int run(int argc, char **argv)
{
    int rc = cli_dist_init(argv[0]);
    if (rc) return rc;
    rc = bench(argc, argv);
    return cli_dist_finish(rc, rc == 0);
}

static int bench(int argc, char **argv)
{
    const char *config = NULL, *sets[64];
    size_t nsets = 0;
    long batch = 0, steps = 10, threads = 0;
    int inference = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--batch", &v))) {
            if (r < 0 || (batch = cli_positive(argv[0], "--batch", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--steps", &v))) {
            if (r < 0 || (steps = cli_positive(argv[0], "--steps", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || (threads = cli_positive(argv[0], "--threads", v)) < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_opt(argc, argv, &i, "--inference", NULL)) {
            inference = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            if (r < 0 || cli_add_set(argv[0], v, sets, &nsets, 64)) return CLI_EXIT_USAGE;
        } else if (cli_positional(argv, i, &config)) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!config) return cli_usage_error(argv[0], "missing CONFIG");
    cli_set_threads(threads);
    cli_model m;
    const size_t rank = cli_dist_rank(), nproc = cli_dist_size();
    size_t global = (size_t)batch;
    int rc;
    if (nproc > 1) {   /* this process's share of the global batch */
        if (!global) {
            if ((rc = cli_model_plan(config, sets, nsets, 0, &m))) return rc;
            global = m.cfg.train.batch;
            cli_model_free(&m);
        }
        if (global < nproc)
            return cli_usage_error(argv[0], "the batch (%zu) must be at least the number of "
                                   "processes (%zu)", global, nproc);
        batch = (long)((rank + 1) * global / nproc - rank * global / nproc);
    }
    /* --inference: a network that only infers, as cnn eval builds it */
    rc = inference ? cli_model_plan(config, sets, nsets, (size_t)batch, &m)
                   : cli_model_from_config(config, sets, nsets, (size_t)batch, &m);
    if (rc) return rc;
    if (inference && (rc = cli_model_allocate_inference(&m))) {
        cli_model_free(&m);
        return rc;
    }
    cnn_net *net = m.net;
    if (!global) global = net->max_batch;
    size_t n = net->max_batch, per = cnn_shape_size(net->input), L = net->nlayers;
    cnn_error e = {0};
    uint64_t rng = cnn_rng_seed(m.cfg.seed, 1);
    cnn_net_init(net, &rng);
    net->rng = cnn_rng_seed(m.cfg.seed, 2);
    cnn_optim *opt = NULL;
    cli_grad_sync *gsync = NULL;
    cnn_sync *bn_sync = NULL;
    cli_task *tk = NULL;
    int *labels = malloc(n * sizeof *labels);
    double *secs = calloc(2 * L, sizeof *secs);
    if (!inference && !(opt = cnn_optim_create(net, &m.cfg.train.optim, &e))) {
        rc = cli_report(&e);
        goto out;
    }
    if (!labels || !secs) {
        fprintf(stderr, "cnn bench: out of memory\n");
        rc = CLI_EXIT_RUNTIME;
        goto out;
    }
    if (nproc > 1 && !inference
        && (!(gsync = cli_grad_sync_create(net, m.cfg.train.bucket_mb, &e))
            || (m.cfg.train.sync_batchnorm && !(bn_sync = cli_dist_sync_batchnorm(net, &e))))) {
        rc = cli_report(&e);
        goto out;
    }
    if (nproc > 1) rng = cnn_rng_seed(rng, rank);   /* each process its own batch */
    for (size_t i = 0; i < n * per; i++) net->x[i] = cnn_rng_normal(&rng);
    for (size_t i = 0; i < n; i++) labels[i] = (int)cnn_rng_below(&rng, m.nclasses);
    /* a pretext task: its own loss on random targets of its kind */
    size_t samples = n / cnn_task_rows(&m.cfg.task);
    if (m.cfg.task.type != CNN_TASK_CLASSIFY && !inference) {
        if (nproc > 1) {
            rc = cli_usage_error(argv[0], "task %s trains in one process only",
                                 cnn_task_names[m.cfg.task.type]);
            goto out;
        }
        if (!(tk = cli_task_create(&m, samples))) {
            rc = CLI_EXIT_RUNTIME;
            goto out;
        }
        cli_task_synthetic(tk, samples, &rng);
    }

    double first = 0, last = 0, step_time = 0, mpi_time = 0, wait_time = 0;
    for (long s = 0; !inference && s <= steps; s++) {
        if (s == 1) net->layer_seconds = secs;   /* step 0 warms up */
        double start = cli_now(), in_mpi = cli_dist_seconds(), waited = 0;
        cnn_net_forward(net, n, 1);
        size_t hits;
        last = tk ? cli_task_loss(tk, samples, 1, &hits)
               : nproc > 1 ? cnn_net_loss_part(net, labels, global, NULL)
               : cnn_net_loss(net, labels, NULL);
        cnn_net_backward(net);
        if (gsync) waited = cli_grad_sync_wait(gsync);
        cnn_optim_step(opt, m.cfg.train.optim.lr);
        if (s) {
            step_time += cli_now() - start;
            mpi_time += cli_dist_seconds() - in_mpi;
            wait_time += waited;
        } else {
            first = last;
        }
    }
    net->layer_seconds = NULL;
    /* the gradients' all-reduce by itself, bucket by bucket, nothing to overlap */
    double reduce_time = 0;
    for (long s = 0; gsync && s <= steps; s++) {
        double start = cli_now();
        cli_grad_sync_wait(gsync);
        if (s) reduce_time += cli_now() - start;
    }
    double infer_time = 0;
    for (long s = 0; s <= steps; s++) {
        if (inference && s == 1) net->layer_seconds = secs;   /* pass 0 warms up */
        double start = cli_now();
        cnn_net_forward(net, n, 0);
        if (s) infer_time += cli_now() - start;
    }
    net->layer_seconds = NULL;
    double per_step = step_time / (double)steps, total_flops = 0, fwd_flops = 0, layer_sum = 0;
    for (size_t t = 0; t < 2 * L; t++) layer_sum += secs[t];
    rc = CLI_EXIT_OK;
    if (rank > 0) goto out;   /* rank 0 prints for the job */
    printf("%s: batch %zu, %ld steps, %d threads%s\n", m.cfg.name, n, steps, cnn_threads(),
           inference ? ", inference only" : "");
    printf("%-22s %-14s %-14s %9s %9s %7s %9s\n", "layer", "kind", "output", "fwd ms",
           "bwd ms", "share", "GFLOP/s");
    for (size_t t = 0; t < L; t++) {
        cnn_layer *l = &net->layers[t];
        double f = secs[2 * t] / (double)steps, b = secs[2 * t + 1] / (double)steps;
        /* forward 2 MACs' flops; backward twice that (weights and inputs) */
        int first_layer = l->ninputs == 1 && l->input_ids[0] == 0;
        /* l->macs per sample of its own: after a pair layer, n / batch_div */
        double fwd = 2.0 * (double)l->macs * (double)(n / l->batch_div);
        double flops = inference ? fwd : fwd * (first_layer ? 2 : 3);
        total_flops += flops;
        fwd_flops += fwd;
        char shape[72];
        snprintf(shape, sizeof shape, "%zux%zux%zu", l->out.c, l->out.h, l->out.w);
        printf("%-22s %-14s %-14s %9.3f ", l->name, l->kind->name, shape, 1e3 * f);
        if (inference) printf("%9s ", "-");
        else printf("%9.3f ", 1e3 * b);
        printf("%6.1f%% ", layer_sum > 0 ? 100 * (f + b) * (double)steps / layer_sum : 0);
        if (l->macs) printf("%9.1f\n", f + b > 0 ? flops / (f + b) / 1e9 : 0);
        else printf("%9s\n", "-");
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (!inference)
        printf("training step: %.2f ms, %.1f images/s, %.1f GFLOP/s (layers %.2f ms, "
               "loss, optimizer and the rest %.2f ms)\n", 1e3 * per_step,
               (double)n / per_step, total_flops / per_step / 1e9,
               1e3 * layer_sum / (double)steps, 1e3 * (per_step - layer_sum / (double)steps));
    printf("inference: %.2f ms per batch, %.1f images/s, %.1f GFLOP/s\n",
           1e3 * infer_time / (double)steps, (double)n * (double)steps / infer_time,
           fwd_flops * (double)steps / infer_time / 1e9);
    printf("peak resident memory: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    if (!inference)
        printf("loss on the fixed batch: first step %.4f, last step %.4f\n", first, last);
    if (gsync)
        printf("data-parallel: %zu processes, batch %zu (%zu here): %.1f images/s for the "
               "job; inside MPI %.2f ms per step (waiting for the gradients after backward "
               "%.2f ms); the gradients' all-reduce alone (%.1f MiB in %zu bucket%s) %.2f "
               "ms\n", nproc, global, n, (double)global / per_step,
               1e3 * mpi_time / (double)steps, 1e3 * wait_time / (double)steps,
               (double)net->nparam_floats * sizeof(float) / 1048576.0,
               cli_grad_sync_buckets(gsync), cli_grad_sync_buckets(gsync) == 1 ? "" : "s",
               1e3 * reduce_time / (double)steps);
out:
    cli_grad_sync_free(gsync);
    cli_dist_sync_free(bn_sync);
    cli_task_free(tk);
    cnn_optim_free(opt);
    free(labels);
    free(secs);
    cli_model_free(&m);
    return rc;
}

const cli_command cli_cmd_bench = {
    "bench", "time training and inference per layer on random data", usage, run,
};
