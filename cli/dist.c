/*
 * Data-parallel training over MPI (see dist.h). Everything that calls MPI
 * is inside #ifdef CNN_MPI; without it the job is one process and the
 * collectives are identities. The bucket plan is computed either way.
 *
 * MPI is initialised with MPI_THREAD_FUNNELED: only the main thread calls
 * it (OpenMP and loader threads never do). Open MPI progresses a
 * non-blocking all-reduce only inside MPI calls, so the backward hook also
 * tests the buckets in flight after every layer.
 */
#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/layer.h"
#include "cli.h"
#include "progress.h"

#ifdef CNN_MPI
#include <mpi.h>
#endif

/* The job, as this process sees it. */
static struct {
    int on;                /* MPI initialised */
    size_t rank, size, local_size;
    int held_fd;           /* rank > 0: the real stderr while fd 2 goes to held */
    FILE *held;            /* rank > 0: what this process wrote to stderr */
    double seconds;        /* inside MPI calls */
} job = {0, 0, 1, 1, -1, NULL, 0};

/* An environment variable as a count (0 when absent or not a number). */
static size_t env_count(const char *name)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) return 0;
    unsigned long n = strtoul(v, &end, 10);
    return *end ? 0 : (size_t)n;
}

/* Processes in the job, as the launcher announced it (0: no launcher). */
static size_t launched_size(void)
{
    size_t n = env_count("OMPI_COMM_WORLD_SIZE");
    return n ? n : env_count("PMI_SIZE");
}

#ifdef CNN_MPI
/* Send fd 2 into a temporary file; cli_dist_finish shows it on failure. */
static void hold_stderr(void)
{
    fflush(stderr);
    job.held = tmpfile();
    job.held_fd = job.held ? dup(STDERR_FILENO) : -1;
    if (job.held_fd < 0 || dup2(fileno(job.held), STDERR_FILENO) < 0) {
        if (job.held) fclose(job.held);
        if (job.held_fd >= 0) close(job.held_fd);
        job.held = NULL;
        job.held_fd = -1;
    }
}
#endif

/* Put fd 2 back; when show, copy what was held to it, "cnn rank R: " first
 * on every line. */
static void release_stderr(int show)
{
    if (!job.held) return;
    fflush(stderr);
    dup2(job.held_fd, STDERR_FILENO);
    close(job.held_fd);
    if (show) {
        char line[4096];
        int start = 1;
        rewind(job.held);
        while (fgets(line, sizeof line, job.held)) {
            if (start) fprintf(stderr, "cnn rank %zu: ", job.rank);
            fputs(line, stderr);
            start = strchr(line, '\n') != NULL;
        }
        if (!start) fputc('\n', stderr);
        fflush(stderr);
    }
    fclose(job.held);
    job.held = NULL;
}

/* 128 + SIGINT: every process stopped after the same step; rank 0 said so */
#define EXIT_INTERRUPTED 130

#ifdef CNN_MPI
/* Time the MPI call `call` into job.seconds. */
#define TIMED(call) do { double t0_ = cli_now(); call; job.seconds += cli_now() - t0_; } while (0)
#endif

int cli_dist_init(const char *command)
{
    size_t launched = launched_size();
#ifdef CNN_MPI
    if (!launched) return 0;
    int provided = 0, rank = 0, size = 1, local = 1;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "cnn %s: error: MPI could not be initialised\n", command);
        return CLI_EXIT_RUNTIME;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm host;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host);
    MPI_Comm_size(host, &local);
    MPI_Comm_free(&host);
    job.on = 1;
    job.rank = (size_t)rank;
    job.size = (size_t)size;
    job.local_size = (size_t)local;
    if (provided < MPI_THREAD_FUNNELED) {
        fprintf(stderr, "cnn %s: error: this MPI library gives no thread support "
                "(MPI_THREAD_FUNNELED is needed)\n", command);
        MPI_Abort(MPI_COMM_WORLD, CLI_EXIT_RUNTIME);
    }
    if (job.rank > 0) hold_stderr();
    return 0;
#else
    if (launched > 1) {
        fprintf(stderr, "cnn %s: error: started as one of %zu processes (by mpirun?), but "
                "this cnn was built without MPI, so each would train alone; build with "
                "'meson setup BUILD -Dmpi=true'\n", command, launched);
        return CLI_EXIT_USAGE;
    }
    return 0;
#endif
}

size_t cli_dist_rank(void) { return job.rank; }
size_t cli_dist_size(void) { return job.size; }
size_t cli_dist_local_size(void) { return job.local_size; }
double cli_dist_seconds(void) { return job.seconds; }

int cli_dist_finish(int rc, int agreed)
{
#ifdef CNN_MPI
    if (!job.on) return rc;
    if (agreed) TIMED(MPI_Barrier(MPI_COMM_WORLD));
    release_stderr(rc != 0 && rc != EXIT_INTERRUPTED);
    if (agreed || rc == 0) MPI_Finalize();
    job.on = 0;
#else
    (void)agreed;
    release_stderr(rc != 0 && rc != EXIT_INTERRUPTED);
#endif
    return rc;
}

void cli_dist_sum(double *v, size_t n)
{
#ifdef CNN_MPI
    if (job.size < 2) return;
    for (size_t at = 0; at < n; at += INT_MAX) {
        int count = n - at < INT_MAX ? (int)(n - at) : INT_MAX;
        TIMED(MPI_Allreduce(MPI_IN_PLACE, v + at, count, MPI_DOUBLE, MPI_SUM,
                            MPI_COMM_WORLD));
    }
#else
    (void)v;
    (void)n;
#endif
}

int cli_dist_any(int flag)
{
    double v = flag != 0;
    cli_dist_sum(&v, 1);
    return v > 0;
}

void cli_dist_broadcast(float *v, size_t n)
{
#ifdef CNN_MPI
    if (job.size < 2) return;
    for (size_t at = 0; at < n; at += INT_MAX) {
        int count = n - at < INT_MAX ? (int)(n - at) : INT_MAX;
        TIMED(MPI_Bcast(v + at, count, MPI_FLOAT, 0, MPI_COMM_WORLD));
    }
#else
    (void)v;
    (void)n;
#endif
}

int cli_dist_same(const float *v, size_t n)
{
    /* a CRC-32 per process, each compared with rank 0's (exact in a double) */
    uLong crc = crc32(0L, Z_NULL, 0);
    const unsigned char *bytes = (const unsigned char *)v;
    size_t left = n * sizeof *v;
    while (left) {
        uInt chunk = left < (1u << 30) ? (uInt)left : (1u << 30);
        crc = crc32(crc, bytes, chunk);
        bytes += chunk;
        left -= chunk;
    }
    double ref = job.rank == 0 ? (double)crc : 0;
    cli_dist_sum(&ref, 1);
    return !cli_dist_any((double)crc != ref);
}

/* ---- gradients in buckets ------------------------------------------------ */

typedef struct bucket {
    size_t lo, hi;          /* [lo, hi) of net->grads */
    size_t first_layer;     /* ready once backward has passed this layer */
#ifdef CNN_MPI
    MPI_Request req;
#endif
} bucket;

struct cli_grad_sync {
    cnn_net *net;
    bucket *b;              /* [n]: b[0] ends the arena (the last layers) */
    size_t n;
    size_t started;         /* b[0..started) are in flight or done this step */
};

#ifdef CNN_MPI
static void start_bucket(cli_grad_sync *g, bucket *b)
{
    TIMED(MPI_Iallreduce(MPI_IN_PLACE, g->net->grads + b->lo, (int)(b->hi - b->lo),
                         MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &b->req));
}
#endif

/* net->after_backward: start the buckets whose layers are all done, and
 * let those in flight progress. */
static void on_layer_done(void *ctx, size_t t)
{
    cli_grad_sync *g = ctx;
#ifdef CNN_MPI
    while (g->started < g->n && g->b[g->started].first_layer >= t)
        start_bucket(g, &g->b[g->started++]);
    for (size_t k = 0; k < g->started; k++) {
        int done;
        if (g->b[k].req != MPI_REQUEST_NULL)
            TIMED(MPI_Test(&g->b[k].req, &done, MPI_STATUS_IGNORE));
    }
#else
    while (g->started < g->n && g->b[g->started].first_layer >= t) g->started++;
#endif
}

cli_grad_sync *cli_grad_sync_create(cnn_net *net, double bucket_mb, cnn_error *e)
{
    cli_grad_sync *g = cnn_alloc(1, sizeof *g, "gradient buckets", e);
    if (!g) return NULL;
    g->net = net;
    g->b = cnn_alloc(net->nlayers + 1, sizeof *g->b, "gradient buckets", e);
    if (!g->b) {
        free(g);
        return NULL;
    }
    size_t cap = (size_t)(bucket_mb * 1048576.0 / sizeof(float));
    if (cap < 1) cap = 1;
    if (cap > INT_MAX) cap = INT_MAX;
    /* From the last layer down: a bucket closes once it holds cap floats;
     * each ends where the one before it began, so together they cover the
     * arena (alignment padding included, which is zero everywhere). */
    size_t hi = net->nparam_floats, lo = hi, first = 0;
    int open = 0;
    for (size_t t = net->nlayers; t-- > 0;) {
        const cnn_layer *l = &net->layers[t];
        size_t start = SIZE_MAX;
        for (size_t j = 0; j < l->nparams; j++)
            if (l->params[j].trainable && l->params[j].grad) {
                size_t at = (size_t)(l->params[j].grad - net->grads);
                if (at < start) start = at;
            }
        if (start == SIZE_MAX) continue;
        lo = start;
        first = t;
        open = 1;
        if (hi - lo >= cap) {
            g->b[g->n++] = (bucket){.lo = lo, .hi = hi, .first_layer = first};
            hi = lo;
            open = 0;
        }
    }
    if (open || hi > 0) g->b[g->n++] = (bucket){.lo = 0, .hi = hi, .first_layer = first};
    for (size_t k = 0; k < g->n; k++) {
        if (k + 1 == g->n) g->b[k].lo = 0;
#ifdef CNN_MPI
        g->b[k].req = MPI_REQUEST_NULL;
        if (g->b[k].hi - g->b[k].lo > INT_MAX) {
            cnn_error_set(e, CNN_ERR_ARG, "a layer has more than %d parameters, more than "
                          "one MPI all-reduce takes", INT_MAX);
            free(g->b);
            free(g);
            return NULL;
        }
#endif
    }
    net->after_backward = on_layer_done;
    net->after_backward_ctx = g;
    return g;
}

double cli_grad_sync_wait(cli_grad_sync *g)
{
    double t0 = cli_now();
#ifdef CNN_MPI
    while (g->started < g->n) start_bucket(g, &g->b[g->started++]);
    for (size_t k = 0; k < g->n; k++)
        TIMED(MPI_Wait(&g->b[k].req, MPI_STATUS_IGNORE));
#endif
    g->started = 0;
    return cli_now() - t0;
}

size_t cli_grad_sync_buckets(const cli_grad_sync *g)
{
    return g->n;
}

void cli_grad_sync_bucket(const cli_grad_sync *g, size_t k, size_t *lo, size_t *hi,
                          size_t *first_layer)
{
    *lo = g->b[k].lo;
    *hi = g->b[k].hi;
    *first_layer = g->b[k].first_layer;
}

void cli_grad_sync_free(cli_grad_sync *g)
{
    if (!g) return;
    if (g->net->after_backward_ctx == g) {
        g->net->after_backward = NULL;
        g->net->after_backward_ctx = NULL;
    }
    free(g->b);
    free(g);
}

/* ---- synchronised batch norm --------------------------------------------- */

static void sync_sum(cnn_sync *s, double *v, size_t n)
{
    (void)s;
    cli_dist_sum(v, n);
}

cnn_sync *cli_dist_sync_batchnorm(cnn_net *net, cnn_error *e)
{
    size_t most = 0;
    for (size_t t = 0; t < net->nlayers; t++)
        if (!strcmp(net->layers[t].kind->name, "batchnorm")
            && 2 * net->layers[t].out.c + 1 > most)
            most = 2 * net->layers[t].out.c + 1;
    cnn_sync *s = cnn_alloc(1, sizeof *s, "batch-norm sums", e);
    if (!s) return NULL;
    s->sum = sync_sum;
    s->scratch_size = most;
    s->scratch = cnn_alloc(most + 1, sizeof *s->scratch, "batch-norm sums", e);
    if (!s->scratch) {
        free(s);
        return NULL;
    }
    for (size_t t = 0; t < net->nlayers; t++)
        if (!strcmp(net->layers[t].kind->name, "batchnorm")) net->layers[t].sync = s;
    return s;
}

void cli_dist_sync_free(cnn_sync *s)
{
    if (!s) return;
    free(s->scratch);
    free(s);
}
