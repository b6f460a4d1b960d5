/*
 * The batch loader: hands out a dataset's samples as normalised float32
 * NCHW batches, augmented for training, in an order that is a pure function
 * of (seed, epoch): the identity, or shuffled with the RNG stream
 * cnn_rng_seed(seed, epoch). Sample i of an epoch draws its augmentation
 * from its own stream, cnn_rng_seed(aug_seed, epoch * n + i), so a batch is
 * the same whichever thread builds it and whenever. With several views per
 * sample (contrastive learning), view v draws from
 * cnn_rng_seed(view_seed(v), epoch * n + i) instead, where view 0's seed is
 * aug_seed itself: the views are independent of each other, and the first
 * is the row a one-view loader gives.
 *
 * With threads > 0, worker threads build batches ahead of the caller into a
 * ring of threads + 1 slots: batch b of the epoch goes to slot b % nslots,
 * and a worker claims the next unclaimed batch once its slot is free. The
 * caller copies a ready batch out and frees its slot. Changing epochs waits
 * for batches being built to finish, since they read the order.
 */
#include "dataset.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/rng.h"
#include "augment.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    int state;
    size_t batch;          /* which batch of the epoch it holds */
    size_t count;          /* samples in it */
    float *x;              /* [part_max * views][chw] */
    int *y;                /* [part_max * views] */
} slot;

struct cnn_loader_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t *threads;    /* [nthreads] */
    size_t nthreads, started;
    int stop;
    size_t nslots;
    slot *slots;           /* [nslots] */
    size_t next_claim;     /* the next batch a worker takes */
    size_t filling;        /* batches being built right now */
    cnn_loader *ld;
    float *scratch;        /* [nthreads + 1][scratch_size] */
    size_t scratch_size;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Samples in batch b of the epoch, all parts together. */
static size_t batch_total(const cnn_loader *ld, size_t b)
{
    size_t first = b * ld->o.batch, n = ld->ds->n;
    return n - first < ld->o.batch ? n - first : ld->o.batch;
}

/* Positions [*lo, *hi) of part `part` of `parts` in a batch of b samples. */
static void part_range(size_t b, size_t part, size_t parts, size_t *lo, size_t *hi)
{
    if (parts < 2) {
        *lo = 0;
        *hi = b;
        return;
    }
    *lo = part * b / parts;
    *hi = (part + 1) * b / parts;
}

size_t cnn_loader_part_max(const cnn_loader_opts *o)
{
    size_t parts = o->parts < 2 ? 1 : o->parts;
    return (o->batch + parts - 1) / parts;
}

size_t cnn_loader_part_min(const cnn_loader_opts *o, size_t n)
{
    size_t parts = o->parts < 2 ? 1 : o->parts, lo, hi, least = SIZE_MAX;
    size_t sizes[2] = {n < o->batch ? n : o->batch, o->batch ? n % o->batch : 0};
    for (size_t k = 0; k < 2; k++) {
        if (!sizes[k]) continue;
        for (size_t r = 0; r < parts; r++) {
            part_range(sizes[k], r, parts, &lo, &hi);
            if (hi - lo < least) least = hi - lo;
        }
    }
    return least == SIZE_MAX ? 0 : least;
}

/* The seed of view v's augmentation streams. The streams count down from
 * the top so that they never meet the shuffle's, cnn_rng_seed(seed, epoch);
 * view 0's is the one a one-view loader uses, so its batches (and runs
 * resumed from checkpoints) are unchanged by views. */
static uint64_t view_seed(uint64_t seed, size_t v)
{
    return cnn_rng_seed(seed, UINT64_MAX - v);
}

/* Make the o.views rows dst [views][chw] of the sample at position pos of
 * the epoch, dataset image i. Without augmentations the views are the same
 * centre crop, made once and copied. */
static void build_sample(const cnn_loader *ld, size_t pos, size_t i, float *dst,
                         float *scratch)
{
    const cnn_dataset *ds = ld->ds;
    const cnn_loader_opts *o = &ld->o;
    const uint8_t *src = ds->pixels + i * ds->c * ds->h * ds->w;   /* [c][h][w] */
    for (size_t v = 0; v < o->views; v++) {
        float *row = dst + v * ld->chw;                             /* [c][o.h][o.w] */
        if (o->naugs) {
            uint64_t rng = cnn_rng_seed(view_seed(o->seed, v), ld->epoch * ds->n + pos);
            cnn_augment(o->augs, o->naugs, src, ds->c, ds->h, ds->w, row, o->h, o->w,
                        o->mean, o->std, &rng, scratch);
        } else if (v == 0) {
            cnn_center(src, ds->c, ds->h, ds->w, row, o->h, o->w, o->mean, o->std);
        } else {
            memcpy(row, dst, ld->chw * sizeof *row);
        }
    }
}

/* Build this loader's part of batch b of the current epoch into
 * x [count * views][chw] and y [count * views]; returns count, in samples. */
static size_t build_batch(const cnn_loader *ld, size_t b, float *x, int *y, float *scratch)
{
    const cnn_loader_opts *o = &ld->o;
    size_t lo, hi;
    part_range(batch_total(ld, b), o->part, o->parts, &lo, &hi);
    size_t first = b * o->batch + lo, count = hi - lo;
    for (size_t k = 0; k < count; k++) {
        size_t pos = first + k, i = ld->order[pos];
        build_sample(ld, pos, i, x + k * o->views * ld->chw, scratch);
        for (size_t v = 0; y && v < o->views; v++) y[k * o->views + v] = ld->ds->labels[i];
    }
    return count;
}

static void *worker(void *arg)
{
    struct cnn_loader_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    size_t id = p->started++;
    float *scratch = p->scratch + (id + 1) * p->scratch_size;
    for (;;) {
        slot *s = NULL;
        while (!p->stop) {
            if (p->next_claim < p->ld->nbatches) {
                s = &p->slots[p->next_claim % p->nslots];
                if (s->state == SLOT_FREE) break;
            }
            s = NULL;
            pthread_cond_wait(&p->cv, &p->mu);
        }
        if (p->stop) break;
        size_t b = p->next_claim++;
        s->state = SLOT_FILLING;
        s->batch = b;
        p->filling++;
        pthread_mutex_unlock(&p->mu);
        size_t count = build_batch(p->ld, b, s->x, s->y, scratch);
        pthread_mutex_lock(&p->mu);
        s->count = count;
        s->state = SLOT_READY;
        p->filling--;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_free(struct cnn_loader_pool *p)
{
    if (!p) return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (size_t t = 0; t < p->nthreads; t++) pthread_join(p->threads[t], NULL);
        free(p->threads);
    }
    for (size_t k = 0; p->slots && k < p->nslots; k++) {
        free(p->slots[k].x);
        free(p->slots[k].y);
    }
    free(p->slots);
    free(p->scratch);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Scratch for every thread (slot 0: the caller's), and, with workers, the
 * ring of slots and the threads themselves. */
static cnn_status pool_create(cnn_loader *ld, cnn_error *e)
{
    const cnn_loader_opts *o = &ld->o;
    const cnn_dataset *ds = ld->ds;
    struct cnn_loader_pool *p = cnn_alloc(1, sizeof *p, "loader", e);
    if (!p) return CNN_ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->ld = ld;
    ld->pool = p;
    p->nthreads = o->threads;
    p->scratch_size = o->naugs ? cnn_augment_scratch(o->augs, o->naugs, ds->c, ds->h,
                                                     ds->w, o->h, o->w) : 0;
    p->scratch = cnn_alloc((p->nthreads + 1) * p->scratch_size + 1, sizeof(float),
                           "augmentation scratch", e);
    if (!p->scratch) return CNN_ERR_NOMEM;
    if (!p->nthreads) return CNN_OK;
    p->nslots = p->nthreads + 1;
    p->slots = cnn_alloc(p->nslots, sizeof *p->slots, "loader slots", e);
    if (!p->slots) return CNN_ERR_NOMEM;
    for (size_t k = 0; k < p->nslots; k++) {
        size_t most = cnn_loader_part_max(o) * o->views;   /* rows */
        p->slots[k].x = cnn_alloc(most * ld->chw, sizeof(float), "loader batch", e);
        p->slots[k].y = cnn_alloc(most, sizeof(int), "loader labels", e);
        if (!p->slots[k].x || !p->slots[k].y) return CNN_ERR_NOMEM;
    }
    p->threads = cnn_alloc(p->nthreads, sizeof *p->threads, "loader threads", e);
    if (!p->threads) return CNN_ERR_NOMEM;
    p->next_claim = ld->nbatches;   /* nothing to build before the first epoch */
    for (size_t t = 0; t < p->nthreads; t++) {
        if (pthread_create(&p->threads[t], NULL, worker, p)) {
            p->nthreads = t;
            return cnn_error_set(e, CNN_ERR_NOMEM, "cannot start loader thread %zu", t + 1);
        }
    }
    return CNN_OK;
}

cnn_status cnn_loader_init(cnn_loader *ld, const cnn_dataset *ds,
                           const cnn_loader_opts *o, cnn_error *e)
{
    if (!ld || !ds || !o)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_loader_init: NULL argument");
    memset(ld, 0, sizeof *ld);
    cnn_loader_opts opt = *o;
    if (opt.batch == 0)
        return cnn_error_set(e, CNN_ERR_ARG, "batch size must be at least 1");
    if (opt.parts > 1 && opt.part >= opt.parts)
        return cnn_error_set(e, CNN_ERR_ARG, "loader part %zu of %zu does not exist",
                             opt.part, opt.parts);
    if (ds->c == 0 || ds->c > 4)
        return cnn_error_set(e, CNN_ERR_ARG, "the loader takes 1 to 4 channels, "
                             "the dataset has %zu", ds->c);
    if (ds->n > UINT32_MAX)
        return cnn_error_set(e, CNN_ERR_ARG, "the loader takes at most %u samples, "
                             "the dataset has %zu", UINT32_MAX, ds->n);
    if (!opt.h) opt.h = ds->h;
    if (!opt.w) opt.w = ds->w;
    if (!opt.views) opt.views = 1;
    size_t chw = ds->c * opt.h * opt.w, rows = cnn_loader_part_max(&opt);
    if (opt.views > SIZE_MAX / sizeof(float) / rows / (chw ? chw : 1))
        return cnn_error_set(e, CNN_ERR_ARG, "%zu views of each of %zu samples of "
                             "%zux%zux%zu floats overflow the size of a batch",
                             opt.views, rows, ds->c, opt.h, opt.w);
    int resizes = 0;
    for (size_t i = 0; i < opt.naugs; i++)
        resizes |= opt.augs[i].kind == CNN_AUG_CROP || opt.augs[i].kind == CNN_AUG_RESIZED_CROP;
    if ((opt.h > ds->h || opt.w > ds->w) && !resizes)
        return cnn_error_set(e, CNN_ERR_ARG, "the input is %zux%zu but the images are "
                             "only %zux%zu", opt.h, opt.w, ds->h, ds->w);
    for (size_t c = 0; c < ds->c; c++) {
        float m = o->mean ? o->mean[c] : 0.0f, s = o->std ? o->std[c] : 1.0f;
        if (!isfinite(m) || !isfinite(s) || !(s > 0))
            return cnn_error_set(e, CNN_ERR_ARG, "normalisation of channel %zu: "
                                 "mean %g, std %g (std must be positive and both "
                                 "finite)", c, (double)m, (double)s);
    }
    ld->ds = ds;
    ld->o = opt;
    ld->chw = chw;
    ld->nbatches = (ds->n + opt.batch - 1) / opt.batch;
    cnn_status st = CNN_ERR_NOMEM;
    float *ms = cnn_alloc(8, sizeof *ms, "normalisation", e);
    struct cnn_aug *augs = opt.naugs ? cnn_alloc(opt.naugs, sizeof *augs, "augmentations", e)
                                     : NULL;
    ld->order = cnn_alloc(ds->n + 1, sizeof *ld->order, "loader order", e);
    ld->o.mean = ms;
    ld->o.std = ms ? ms + 4 : NULL;
    ld->o.augs = augs;
    if (!ms || (opt.naugs && !augs) || !ld->order) goto fail;
    for (size_t c = 0; c < 4; c++) {
        ms[c] = c < ds->c && o->mean ? o->mean[c] : 0.0f;
        ms[4 + c] = c < ds->c && o->std ? o->std[c] : 1.0f;
    }
    if (opt.naugs) memcpy(augs, o->augs, opt.naugs * sizeof *augs);
    if ((st = pool_create(ld, e))) goto fail;
    cnn_loader_epoch(ld, 0);
    return CNN_OK;
fail:
    cnn_loader_free(ld);
    return st;
}

void cnn_loader_free(cnn_loader *ld)
{
    if (!ld) return;
    pool_free(ld->pool);
    free(ld->order);
    free((float *)ld->o.mean);
    free((struct cnn_aug *)ld->o.augs);
    memset(ld, 0, sizeof *ld);
}

void cnn_loader_epoch(cnn_loader *ld, uint64_t epoch)
{
    cnn_loader_epoch_at(ld, epoch, 0);
}

void cnn_loader_epoch_at(cnn_loader *ld, uint64_t epoch, size_t first_batch)
{
    struct cnn_loader_pool *p = ld->pool;
    if (p->nthreads) {
        /* stop handing out batches and wait for those being built */
        pthread_mutex_lock(&p->mu);
        p->next_claim = ld->nbatches;
        while (p->filling) pthread_cond_wait(&p->cv, &p->mu);
    }
    uint32_t n = (uint32_t)ld->ds->n;
    for (uint32_t i = 0; i < n; i++) ld->order[i] = i;
    if (ld->o.shuffle) {
        uint64_t state = cnn_rng_seed(ld->o.seed, epoch);
        cnn_rng_shuffle(&state, ld->order, n);
    }
    if (first_batch > ld->nbatches) first_batch = ld->nbatches;
    ld->epoch = epoch;
    ld->next_batch = first_batch;
    ld->wait_seconds = 0;
    if (p->nthreads) {
        for (size_t k = 0; k < p->nslots; k++) p->slots[k].state = SLOT_FREE;
        p->next_claim = first_batch;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

size_t cnn_loader_next(cnn_loader *ld, float *x, int *y)
{
    struct cnn_loader_pool *p = ld->pool;
    if (ld->next_batch >= ld->nbatches) return 0;
    size_t b = ld->next_batch++, count;
    ld->batch_total = batch_total(ld, b);
    double start = now_seconds();
    if (!p->nthreads) {
        count = build_batch(ld, b, x, y, p->scratch);
        ld->wait_seconds += now_seconds() - start;
        return count;
    }
    slot *s = &p->slots[b % p->nslots];
    pthread_mutex_lock(&p->mu);
    while (!(s->state == SLOT_READY && s->batch == b)) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    ld->wait_seconds += now_seconds() - start;
    count = s->count;
    memcpy(x, s->x, count * ld->o.views * ld->chw * sizeof *x);
    if (y) memcpy(y, s->y, count * ld->o.views * sizeof *y);
    pthread_mutex_lock(&p->mu);
    s->state = SLOT_FREE;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return count;
}
