/*
 * Data-parallel training over MPI: one model trained by N processes
 * (`mpirun -np N cnn train CONFIG`), each on its own part of every batch.
 * This is the only file of cnn that knows MPI; in a build without it
 * (meson -Dmpi=false, the default) every function here describes a job of
 * one process and does nothing, and no MPI header is needed.
 *
 * What a process does with it: cli_dist_init when the command starts;
 * parameter gradients summed over the processes in buckets, each started
 * as soon as backward has finished the layers it holds (cli_grad_sync);
 * batch norm's statistics summed over the processes when synchronised
 * (cli_dist_sync_batchnorm); small sums for losses and decisions
 * (cli_dist_sum, cli_dist_any); cli_dist_finish before exiting.
 */
#ifndef CNN_DIST_H
#define CNN_DIST_H

#include <stddef.h>

#include "../core/net.h"

/* Join the job this process was started in: when an MPI launcher started
 * it (mpirun sets OMPI_COMM_WORLD_SIZE, Hydra PMI_SIZE), MPI is
 * initialised; otherwise the job is this one process. A build without MPI
 * started as one of several processes refuses, as each would train a
 * model of its own. On processes other than rank 0, stderr is held back
 * (see cli_dist_finish) so that the job's messages appear once. Returns 0,
 * or prints the error and returns an exit code. */
int cli_dist_init(const char *command);

/* This process's rank, the number of processes in the job, and how many
 * of them run on this host (0, 1, 1 without MPI). */
size_t cli_dist_rank(void);
size_t cli_dist_size(void);
size_t cli_dist_local_size(void);

/* Leave the job with exit code rc; returns rc. agreed: every process
 * reached this point together (same step, same decision), so they wait for
 * each other (rank 0 may still be writing a checkpoint) and leave MPI
 * cleanly. Otherwise the failure is this process's alone: it leaves at
 * once, and the launcher ends the other processes. A process other than
 * rank 0 that fails (rc other than 0 and 130, an interrupt rank 0 reports)
 * prints what it held back of its stderr, each line prefixed with its
 * rank. */
int cli_dist_finish(int rc, int agreed);

/* Sum v[n] over the processes, in place (blocking; every process gets the
 * same result). */
void cli_dist_sum(double *v, size_t n);

/* 1 when flag is non-zero in any process. */
int cli_dist_any(int flag);

/* Copy rank 0's v[n] into every process. */
void cli_dist_broadcast(float *v, size_t n);

/* 1 when v[n] holds the same bits in every process. */
int cli_dist_same(const float *v, size_t n);

/* Seconds this process has spent inside MPI calls so far (collectives
 * started, tested, waited for); 0 without MPI. */
double cli_dist_seconds(void);

/* Gradients summed over the processes in buckets. Buckets cover the
 * gradient arena from its end (the last layers, whose gradients backward
 * finishes first) in runs of whole layers of about bucket_mb MiB each (a
 * layer larger than that is a bucket of its own); a bucket's all-reduce
 * starts from the net's after_backward hook as soon as backward has passed
 * its first layer, and runs while backward goes on. */
typedef struct cli_grad_sync cli_grad_sync;

/* Plan the buckets of net and install the hook. Returns NULL (e filled)
 * when out of memory. */
cli_grad_sync *cli_grad_sync_create(cnn_net *net, double bucket_mb, cnn_error *e);

/* After backward: start the buckets not yet started and wait for all;
 * net->grads then holds the sums over the processes. Returns the seconds
 * spent waiting. */
double cli_grad_sync_wait(cli_grad_sync *g);

/* Number of buckets, and bucket k's range [*lo, *hi) of net->grads and the
 * first (lowest) layer index whose backward makes it ready. */
size_t cli_grad_sync_buckets(const cli_grad_sync *g);
void cli_grad_sync_bucket(const cli_grad_sync *g, size_t k, size_t *lo, size_t *hi,
                          size_t *first_layer);

/* Remove the hook and free. */
void cli_grad_sync_free(cli_grad_sync *g);

/* Give every batchnorm layer of net statistics over all the processes
 * (layer->sync). Returns the object they share, to free with
 * cli_dist_sync_free after the net is done with it; NULL with e filled when
 * out of memory. */
cnn_sync *cli_dist_sync_batchnorm(cnn_net *net, cnn_error *e);
void cli_dist_sync_free(cnn_sync *s);

#endif
