/*
 * IDX reading and the batch loader. Small IDX files, plain and gzipped, are
 * written into a fresh mkdtemp folder under /tmp and read back; bad files
 * (wrong magic, cut short, corrupted gzip, counts that disagree, trailing
 * data, missing) must fail with the file named in the message. The loader
 * must visit every sample once per epoch, with a short last batch, in an
 * order fixed by seed and epoch, and normalise exactly. If Fashion-MNIST is
 * installed, its test split is checked too (else a SKIP line is printed).
 */
#include "harness.h"
#include "dataset.h"
#include "augment.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char dir[64];

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Write an IDX file: magic, big-endian dims, then the first `nbytes` bytes
 * of data (fewer than the dims announce makes a truncated file). gz: write
 * it gzipped. Returns 0 on success. */
static int write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims,
                     size_t ndim, const uint8_t *data, size_t nbytes)
{
    unsigned char head[16];
    uint32_t words[4] = {magic, 0, 0, 0};
    for (size_t d = 0; d < ndim; d++) words[d + 1] = dims[d];
    for (size_t w = 0; w <= ndim; w++)
        for (int b = 0; b < 4; b++) head[4 * w + (size_t)b] = (unsigned char)(words[w] >> (24 - 8 * b));
    size_t hlen = 4 * (ndim + 1);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (!g) return -1;
        int ok = gzwrite(g, head, (unsigned)hlen) == (int)hlen
              && (nbytes == 0 || gzwrite(g, data, (unsigned)nbytes) == (int)nbytes);
        return (gzclose(g) == Z_OK && ok) ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(head, 1, hlen, f) == hlen
          && (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    *n = 0;
    if (!f) return NULL;
    buf = malloc(1 << 16);
    if (buf) *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Five 3x4 images whose pixels count up, and labels with 5 classes. */
#define N_IMG 5
#define ROWS 3
#define COLS 4
static uint8_t pixels[N_IMG * ROWS * COLS];
static const uint8_t labels[N_IMG] = {2, 0, 1, 2, 4};
static const uint32_t img_dims[3] = {N_IMG, ROWS, COLS}, lab_dims[1] = {N_IMG};

static int is_empty(const cnn_dataset *ds)
{
    return !ds->pixels && !ds->labels && ds->n == 0 && ds->nclasses == 0;
}

static void check_loaded(const char *img, const char *lab, size_t limit, const char *what)
{
    cnn_dataset ds;
    cnn_error e;
    cnn_error_clear(&e);
    size_t keep = limit && limit < N_IMG ? limit : N_IMG;
    cnn_status st = cnn_idx_load(img, lab, limit, &ds, &e);
    CHECK_MSG(st == CNN_OK, "%s: %s", what, e.msg);
    if (st != CNN_OK) return;
    CHECK(ds.n == keep && ds.c == 1 && ds.h == ROWS && ds.w == COLS);
    CHECK_MSG(memcmp(ds.pixels, pixels, keep * ROWS * COLS) == 0, "%s: pixels differ", what);
    int labels_ok = 1, top = 0;
    for (size_t i = 0; i < keep; i++) {
        labels_ok &= ds.labels[i] == labels[i];
        if (labels[i] > top) top = labels[i];
    }
    CHECK_MSG(labels_ok, "%s: labels differ", what);
    CHECK_MSG(ds.nclasses == (size_t)top + 1, "%s: nclasses %zu", what, ds.nclasses);
    cnn_dataset_free(&ds);
    CHECK(is_empty(&ds));
}

/* Loading must fail with `status`, a message containing `want` and the file
 * name `file`, and leave the dataset empty. */
static void expect_refused(const char *img, const char *lab, cnn_status status,
                           const char *want, const char *file, const char *what)
{
    cnn_dataset ds;
    cnn_error e;
    cnn_error_clear(&e);
    memset(&ds, 0xAB, sizeof ds);
    cnn_status st = cnn_idx_load(img, lab, 0, &ds, &e);
    CHECK_MSG(st == status, "%s: status %d, expected %d (%s)", what, (int)st,
              (int)status, e.msg);
    CHECK_CONTAINS(e.msg, want);
    CHECK_CONTAINS(e.msg, file);
    CHECK_MSG(is_empty(&ds), "%s: dataset not left empty", what);
    if (st == CNN_OK) cnn_dataset_free(&ds);
}

static void test_read(void)
{
    char img[128], lab[128], img_gz[128], lab_gz[128];
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 37 % 256);
    pixels[0] = 0;
    pixels[1] = 255;
    path_in(img, sizeof img, "images-idx3-ubyte");
    path_in(lab, sizeof lab, "labels-idx1-ubyte");
    path_in(img_gz, sizeof img_gz, "images-idx3-ubyte.gz");
    path_in(lab_gz, sizeof lab_gz, "labels-idx1-ubyte.gz");
    CHECK(write_idx(img, 0, 0x803, img_dims, 3, pixels, sizeof pixels) == 0);
    CHECK(write_idx(lab, 0, 0x801, lab_dims, 1, labels, sizeof labels) == 0);
    CHECK(write_idx(img_gz, 1, 0x803, img_dims, 3, pixels, sizeof pixels) == 0);
    CHECK(write_idx(lab_gz, 1, 0x801, lab_dims, 1, labels, sizeof labels) == 0);

    check_loaded(img, lab, 0, "plain");
    check_loaded(img_gz, lab_gz, 0, "gzipped");
    check_loaded(img_gz, lab, 0, "gzipped images, plain labels");
    check_loaded(img, lab_gz, 3, "limit 3");
    check_loaded(img_gz, lab_gz, 1, "limit 1");
    check_loaded(img, lab, 5, "limit = n");
    check_loaded(img, lab, 100, "limit > n");

    cnn_dataset ds;
    cnn_error e;
    CHECK(cnn_idx_load(img, lab, 3, &ds, &e) == CNN_OK);
    CHECK(ds.n == 3 && ds.nclasses == 3);     /* labels 2, 0, 1 */
    cnn_dataset_free(&ds);
}

static void test_bad_files(void)
{
    char img[128], lab[128], bad[128], bad_gz[128];
    path_in(img, sizeof img, "images-idx3-ubyte");
    path_in(lab, sizeof lab, "labels-idx1-ubyte");
    path_in(bad, sizeof bad, "bad-idx");
    path_in(bad_gz, sizeof bad_gz, "bad-idx.gz");

    /* Wrong magic: the files swapped, or not IDX at all. */
    expect_refused(lab, img, CNN_ERR_FORMAT, "not an IDX image file", lab, "swapped");
    expect_refused(lab, img, CNN_ERR_FORMAT, "it is an IDX label file", lab, "swapped");
    expect_refused(img, img, CNN_ERR_FORMAT, "not an IDX label file", img, "images as labels");
    const char *text = "P5\n28 28\n255\n this is a PGM, not IDX at all";
    CHECK(write_bytes(bad, text, strlen(text)) == 0);
    expect_refused(bad, lab, CNN_ERR_FORMAT, "not an IDX image file", bad, "text");
    uint32_t f32_dims[3] = {N_IMG, ROWS, COLS};
    CHECK(write_idx(bad, 0, 0x0d03, f32_dims, 3, pixels, sizeof pixels) == 0);
    expect_refused(bad, lab, CNN_ERR_FORMAT, "magic 0x00000d03", bad, "float IDX");

    /* Cut short: in the header, in the pixels, in the labels, gzipped. */
    CHECK(write_bytes(bad, "\0\0\x08\x03\0\0", 6) == 0);
    expect_refused(bad, lab, CNN_ERR_FORMAT, "truncated", bad, "short header");
    CHECK(write_bytes(bad, "", 0) == 0);
    expect_refused(bad, lab, CNN_ERR_FORMAT, "truncated", bad, "empty file");
    CHECK(write_idx(bad, 0, 0x803, img_dims, 3, pixels, sizeof pixels - 5) == 0);
    expect_refused(bad, lab, CNN_ERR_FORMAT, "truncated: expected 60 bytes of pixels, "
                   "found 55", bad, "short pixels");
    CHECK(write_idx(bad_gz, 1, 0x803, img_dims, 3, pixels, sizeof pixels - 1) == 0);
    expect_refused(bad_gz, lab, CNN_ERR_FORMAT, "truncated", bad_gz, "short pixels, gzipped");
    CHECK(write_idx(bad, 0, 0x801, lab_dims, 1, labels, 2) == 0);
    expect_refused(img, bad, CNN_ERR_FORMAT, "truncated", bad, "short labels");

    /* A gzip file cut in half, and one with a damaged byte. */
    size_t n;
    char good_gz[128];
    path_in(good_gz, sizeof good_gz, "images-idx3-ubyte.gz");
    unsigned char *gzbytes = read_bytes(good_gz, &n);
    CHECK(gzbytes && n > 30);
    if (gzbytes) {
        CHECK(write_bytes(bad_gz, gzbytes, n / 2) == 0);
        expect_refused(bad_gz, lab, CNN_ERR_FORMAT, "truncated", bad_gz, "gzip cut in half");
        gzbytes[n - 6] ^= 0x55;              /* in the gzip trailer's CRC */
        CHECK(write_bytes(bad_gz, gzbytes, n) == 0);
        expect_refused(bad_gz, lab, CNN_ERR_FORMAT, "corrupted", bad_gz, "gzip CRC");
        free(gzbytes);
    }

    /* Counts that disagree name both files and both counts. */
    uint32_t four[1] = {4};
    CHECK(write_idx(bad, 0, 0x801, four, 1, labels, 4) == 0);
    expect_refused(img, bad, CNN_ERR_FORMAT, "5 images", img, "count mismatch");
    expect_refused(img, bad, CNN_ERR_FORMAT, "4 labels", bad, "count mismatch");

    /* Trailing data after what the header announces. */
    uint8_t longer[N_IMG + 3] = {0};
    memcpy(longer, labels, N_IMG);
    CHECK(write_idx(bad, 0, 0x801, lab_dims, 1, longer, sizeof longer) == 0);
    expect_refused(img, bad, CNN_ERR_FORMAT, "unexpected data", bad, "trailing bytes");

    /* No images at all. */
    uint32_t zero_img[3] = {0, ROWS, COLS}, zero_lab[1] = {0};
    char zi[128], zl[128];
    path_in(zi, sizeof zi, "zero-images");
    path_in(zl, sizeof zl, "zero-labels");
    CHECK(write_idx(zi, 0, 0x803, zero_img, 3, NULL, 0) == 0);
    CHECK(write_idx(zl, 0, 0x801, zero_lab, 1, NULL, 0) == 0);
    expect_refused(zi, zl, CNN_ERR_FORMAT, "no pixels", zi, "zero images");

    /* Found by fuzzing (tests/fuzz/corpus/idx/crash-*): a header that
     * announces 4 billion images of 65535x65535 pixels in a file of a few
     * bytes is truncated, not a request for 2^64 bytes of memory first
     * (the reader's memory follows the data that arrives). */
    uint32_t huge_img[3] = {0xFFFFFFFFu, 0xFFFF, 0xFFFF}, huge_lab[1] = {0xFFFFFFFFu};
    char hi[128], hl[128];
    path_in(hi, sizeof hi, "huge-images");
    path_in(hl, sizeof hl, "huge-labels");
    CHECK(write_idx(hi, 0, 0x803, huge_img, 3, pixels, sizeof pixels) == 0);
    CHECK(write_idx(hl, 0, 0x801, huge_lab, 1, labels, sizeof labels) == 0);
    expect_refused(hi, hl, CNN_ERR_FORMAT, "truncated", hi, "huge header");
    huge_img[1] = huge_img[2] = 0xFF;        /* 4 GiB announced, 60 bytes there */
    CHECK(write_idx(hi, 1, 0x803, huge_img, 3, pixels, sizeof pixels) == 0);
    expect_refused(hi, hl, CNN_ERR_FORMAT, "truncated", hi, "huge header, gzipped");

    /* Missing files. */
    char missing[128];
    path_in(missing, sizeof missing, "no-such-file.gz");
    expect_refused(missing, lab, CNN_ERR_IO, strerror(ENOENT), missing, "missing images");
    expect_refused(img, missing, CNN_ERR_IO, strerror(ENOENT), missing, "missing labels");
}

static void test_stats(void)
{
    /* Two channels: channel 0 is 0 and 255 alternating (mean 0.5, std 0.5),
     * channel 1 is constant 51 (mean 0.2, std 0). */
    uint8_t px[2 * 2 * 2 * 2];             /* [n=2][c=2][h=2][w=2] */
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 4; j++) {
            px[i * 8 + j] = (j % 2) ? 255 : 0;
            px[i * 8 + 4 + j] = 51;
        }
    int lab[2] = {0, 1};
    cnn_dataset ds = {2, 2, 2, 2, px, lab, 2, NULL, 0};
    float mean[2], std[2];
    cnn_dataset_stats(&ds, mean, std);
    CHECK_NEAR(mean[0], 0.5, 1e-7);
    CHECK_NEAR(std[0], 0.5, 1e-7);
    CHECK_NEAR(mean[1], 0.2, 1e-7);
    CHECK_NEAR(std[1], 1.0, 1e-7);   /* one value throughout: 1, not 0 */

    /* Against a direct two-pass computation on the small IDX images. */
    double m = 0, v = 0;
    size_t n = sizeof pixels;
    for (size_t i = 0; i < n; i++) m += pixels[i] / 255.0;
    m /= (double)n;
    for (size_t i = 0; i < n; i++) v += (pixels[i] / 255.0 - m) * (pixels[i] / 255.0 - m);
    cnn_dataset one = {N_IMG, 1, ROWS, COLS, pixels, NULL, 0, NULL, 0};
    cnn_dataset_stats(&one, mean, std);
    CHECK_NEAR(mean[0], m, 1e-6);
    CHECK_NEAR(std[0], sqrt(v / (double)n), 1e-6);
}

/* The loader with the options the tests vary. */
static cnn_status linit(cnn_loader *ld, const cnn_dataset *ds, size_t batch,
                        const float *mean, const float *std, int shuffle, uint64_t seed,
                        cnn_error *e)
{
    cnn_loader_opts o = {.batch = batch, .mean = mean, .std = std, .shuffle = shuffle,
                         .seed = seed};
    return cnn_loader_init(ld, ds, &o, e);
}

/* A dataset of n samples whose labels are their indices. */
#define LN 23
#define LC 2
#define LH 2
#define LW 3
static uint8_t lpx[LN * LC * LH * LW];
static int llab[LN];

/* All batches of one epoch: the labels seen, in order, into seen[]; checks
 * the batch sizes. Returns how many samples came. */
static size_t run_epoch(cnn_loader *ld, uint64_t epoch, int *seen)
{
    float x[5 * LC * LH * LW];
    int y[5];
    size_t total = 0, k, batches = 0;
    cnn_loader_epoch(ld, epoch);
    while ((k = cnn_loader_next(ld, x, y)) > 0) {
        batches++;
        CHECK_MSG(k == (total + 5 <= LN ? 5u : (size_t)LN % 5), "batch of %zu", k);
        for (size_t b = 0; b < k; b++) seen[total + b] = y[b];
        total += k;
        if (total > LN) break;
    }
    CHECK(batches == (LN + 4) / 5);
    CHECK(cnn_loader_next(ld, x, y) == 0);   /* stays at the end */
    return total;
}

static void test_loader(void)
{
    for (size_t i = 0; i < sizeof lpx; i++) lpx[i] = (uint8_t)(i * 101 % 256);
    for (int i = 0; i < LN; i++) llab[i] = i;
    cnn_dataset ds = {LN, LC, LH, LW, lpx, llab, LN, NULL, 0};
    cnn_loader ld, other;
    cnn_error e;
    int a[LN], b[LN];

    /* No shuffling: the identity. */
    CHECK(linit(&ld, &ds, 5, NULL, NULL, 0, 1, &e) == CNN_OK);
    CHECK(run_epoch(&ld, 0, a) == LN);
    int identity = 1;
    for (int i = 0; i < LN; i++) identity &= a[i] == i;
    CHECK(identity);
    cnn_loader_free(&ld);

    /* Shuffled: every sample exactly once per epoch. */
    CHECK(linit(&ld, &ds, 5, NULL, NULL, 1, 42, &e) == CNN_OK);
    for (uint64_t epoch = 0; epoch < 4; epoch++) {
        int count[LN] = {0};
        CHECK(run_epoch(&ld, epoch, a) == LN);
        int once = 1;
        for (int i = 0; i < LN; i++) count[a[i]]++;
        for (int i = 0; i < LN; i++) once &= count[i] == 1;
        CHECK_MSG(once, "epoch %llu does not visit every sample once",
                  (unsigned long long)epoch);
    }
    /* Same seed and epoch: the same order, whatever happened before. */
    CHECK(linit(&other, &ds, 5, NULL, NULL, 1, 42, &e) == CNN_OK);
    run_epoch(&ld, 2, a);
    run_epoch(&other, 2, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    run_epoch(&ld, 0, a);                    /* init starts epoch 0 */
    cnn_loader_free(&other);
    CHECK(linit(&other, &ds, 5, NULL, NULL, 1, 42, &e) == CNN_OK);
    float x[5 * LC * LH * LW];
    int y[5];
    size_t k = 0;
    for (size_t got; (got = cnn_loader_next(&other, x, y)) > 0;) {
        CHECK(memcmp(y, a + k, got * sizeof *y) == 0);
        k += got;
    }
    CHECK(k == LN);
    /* Another epoch, or another seed: another order. */
    run_epoch(&ld, 1, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    cnn_loader_free(&other);
    CHECK(linit(&other, &ds, 5, NULL, NULL, 1, 43, &e) == CNN_OK);
    run_epoch(&other, 0, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    cnn_loader_free(&other);
    cnn_loader_free(&ld);

    /* Normalisation, value by value, exactly. */
    const float mean[LC] = {0.5f, 0.25f}, std[LC] = {0.2f, 0.5f};
    CHECK(linit(&ld, &ds, 5, mean, std, 1, 7, &e) == CNN_OK);
    size_t hw = LH * LW, chw = LC * hw, wrong = 0, checked = 0;
    while ((k = cnn_loader_next(&ld, x, y)) > 0)
        for (size_t s = 0; s < k; s++)
            for (size_t c = 0; c < LC; c++)
                for (size_t j = 0; j < hw; j++) {
                    uint8_t p = lpx[(size_t)y[s] * chw + c * hw + j];
                    float want = ((float)p / 255.0f - mean[c]) / std[c];
                    wrong += x[s * chw + c * hw + j] != want;
                    checked++;
                }
    CHECK_MSG(wrong == 0, "%zu of %zu normalised values differ", wrong, checked);
    CHECK(checked == LN * chw);
    cnn_loader_free(&ld);
    CHECK(ld.order == NULL);

    /* A NULL y is allowed (prediction needs no labels); a batch bigger than
     * the dataset gives one short batch. */
    CHECK(linit(&ld, &ds, 64, NULL, NULL, 0, 0, &e) == CNN_OK);
    float *xl = malloc(64 * chw * sizeof *xl);
    CHECK(cnn_loader_next(&ld, xl, NULL) == LN);
    CHECK(xl[chw] == (float)lpx[chw] / 255.0f);
    free(xl);
    cnn_loader_free(&ld);

    /* Bad settings. */
    CHECK(linit(&ld, &ds, 0, NULL, NULL, 0, 0, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "batch");
    const float zero_std[LC] = {0.3f, 0.0f};
    CHECK(linit(&ld, &ds, 4, mean, zero_std, 0, 0, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "channel 1");
    CHECK(ld.order == NULL);
}

/* Workers building batches ahead give the same batches, augmentation
 * included, as building them in the caller: for every thread count, across
 * epochs, and when an epoch is abandoned half-way. */
static void test_loader_threads(void)
{
    enum { N = 37, C = 3, H = 8, W = 8, B = 6, OH = 6, OW = 6 };
    static uint8_t px[N * C * H * W];
    static int lab[N];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 % 251);
    for (int i = 0; i < N; i++) lab[i] = i % 5;
    cnn_dataset ds = {N, C, H, W, px, lab, 5, NULL, 0};
    cnn_aug augs[3] = {
        {.kind = CNN_AUG_CROP, .padding = 2, .reflect = 1},
        {.kind = CNN_AUG_FLIP, .horizontal = 1},
        {.kind = CNN_AUG_NOISE, .std = 0.1f},
    };
    const float mean[C] = {0.5f, 0.4f, 0.3f}, std[C] = {0.2f, 0.25f, 0.3f};
    size_t per = C * OH * OW;
    static float ref[3][N * C * OH * OW], got[N * C * OH * OW], x[B * C * OH * OW];
    static int ref_y[3][N];
    int y[B];
    for (size_t threads = 0; threads <= 3; threads++) {
        cnn_loader_opts o = {.batch = B, .h = OH, .w = OW, .mean = mean, .std = std,
                             .shuffle = 1, .seed = 99, .augs = augs, .naugs = 3,
                             .threads = threads};
        cnn_loader ld;
        cnn_error e;
        CHECK(cnn_loader_init(&ld, &ds, &o, &e) == CNN_OK);
        for (uint64_t epoch = 0; epoch < 3; epoch++) {
            /* abandon epoch 1 after two batches first */
            cnn_loader_epoch(&ld, 1);
            cnn_loader_next(&ld, x, y);
            cnn_loader_next(&ld, x, y);
            cnn_loader_epoch(&ld, epoch);
            size_t n = 0;
            int labels[N];
            for (size_t k; (k = cnn_loader_next(&ld, x, y)) > 0; n += k) {
                memcpy(got + n * per, x, k * per * sizeof *x);
                memcpy(labels + n, y, k * sizeof *y);
            }
            CHECK(n == N);
            if (threads == 0) {
                memcpy(ref[epoch], got, sizeof got);
                memcpy(ref_y[epoch], labels, sizeof labels);
            } else {
                CHECK_MSG(memcmp(ref[epoch], got, sizeof got) == 0,
                          "%zu loader threads, epoch %llu: other batches than without",
                          threads, (unsigned long long)epoch);
                CHECK(memcmp(ref_y[epoch], labels, sizeof labels) == 0);
            }
        }
        CHECK(ld.wait_seconds >= 0);
        cnn_loader_free(&ld);
    }
    /* the augmentation draws differ from epoch to epoch */
    CHECK(memcmp(ref[0], ref[1], sizeof ref[0]) != 0);
    /* an input larger than the images needs a crop to make it */
    cnn_loader_opts o = {.batch = B, .h = H + 1, .w = W};
    cnn_loader ld;
    cnn_error e;
    CHECK(cnn_loader_init(&ld, &ds, &o, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "only 8x8");
}

/* Data-parallel parts: for every batch, the parts 0..P-1 laid end to end
 * are the batch one loader gives (the same samples, augmented alike), with
 * and without loader threads; each part has at most ceil(B / P) samples;
 * batch_total is the whole batch's size. */
static void test_loader_parts(void)
{
    enum { N = 24, C = 1, H = 6, W = 6, B = 7, P = 3 };
    static uint8_t px[N * C * H * W];
    static int lab[N];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 53 % 241);
    for (int i = 0; i < N; i++) lab[i] = i;
    cnn_dataset ds = {N, C, H, W, px, lab, N, NULL, 0};
    cnn_aug augs[2] = {
        {.kind = CNN_AUG_CROP, .padding = 1, .reflect = 0},
        {.kind = CNN_AUG_NOISE, .std = 0.1f},
    };
    enum { PER = C * H * W };
    static float whole[B * PER], part[B * PER], joined[B * PER];
    int wy[B], py[B], jy[B];
    cnn_error e;
    for (size_t threads = 0; threads <= 1; threads++) {
        cnn_loader_opts o = {.batch = B, .shuffle = 1, .seed = 5, .augs = augs, .naugs = 2,
                             .threads = threads};
        cnn_loader one, parts[P];
        CHECK(cnn_loader_init(&one, &ds, &o, &e) == CNN_OK);
        for (size_t r = 0; r < P; r++) {
            cnn_loader_opts po = o;
            po.part = r;
            po.parts = P;
            CHECK(cnn_loader_init(&parts[r], &ds, &po, &e) == CNN_OK);
            CHECK(cnn_loader_part_max(&po) == 3);
            cnn_loader_epoch(&parts[r], 1);
        }
        cnn_loader_epoch(&one, 1);
        size_t batches = 0;
        for (size_t n; (n = cnn_loader_next(&one, whole, wy)) > 0; batches++) {
            size_t at = 0;
            for (size_t r = 0; r < P; r++) {
                size_t k = cnn_loader_next(&parts[r], part, py);
                CHECK_MSG(k >= 1 && k <= 3, "part %zu of batch %zu has %zu samples", r,
                          batches, k);
                CHECK(parts[r].batch_total == n);
                memcpy(joined + at * PER, part, k * PER * sizeof *part);
                memcpy(jy + at, py, k * sizeof *py);
                at += k;
            }
            CHECK_MSG(at == n, "batch %zu: the parts hold %zu of %zu samples", batches, at, n);
            CHECK_MSG(memcmp(joined, whole, n * PER * sizeof *whole) == 0
                      && memcmp(jy, wy, n * sizeof *wy) == 0,
                      "%zu loader threads, batch %zu: the parts are not the batch", threads,
                      batches);
        }
        CHECK(batches == 4);   /* 7 + 7 + 7 + 3 */
        for (size_t r = 0; r < P; r++) {
            CHECK(cnn_loader_next(&parts[r], part, py) == 0);
            cnn_loader_free(&parts[r]);
        }
        cnn_loader_free(&one);
    }
    /* 23 in batches of 7: the last has 2 samples, so one of 3 parts is
     * empty (the trainer refuses such data: an empty part ends an epoch) */
    cnn_loader_opts o = {.batch = B, .parts = P};
    CHECK(cnn_loader_part_min(&o, 23) == 0);
    CHECK(cnn_loader_part_min(&o, 21) == 2);   /* 7 = 2 + 2 + 3 */
    CHECK(cnn_loader_part_min(&o, N) == 1);    /* the last batch: 3 = 1 + 1 + 1 */
    CHECK(cnn_loader_part_min(&o, 2) == 0);    /* one batch smaller than the parts */
    o.parts = 0;
    CHECK(cnn_loader_part_min(&o, 23) == 2);   /* one part: the whole last batch */
    o.part = 3;
    o.parts = 3;
    cnn_loader ld;
    CHECK(cnn_loader_init(&ld, &ds, &o, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "part 3 of 3");
}

static void test_fashion_mnist(void)
{
    const char *img = FASHION_DIR "/t10k-images-idx3-ubyte.gz";
    const char *lab = FASHION_DIR "/t10k-labels-idx1-ubyte.gz";
    if (access(img, R_OK) != 0 || access(lab, R_OK) != 0) {
        printf("SKIP Fashion-MNIST: %s not found\n", FASHION_DIR);
        return;
    }
    cnn_dataset ds;
    cnn_error e;
    cnn_status st = cnn_idx_load(img, lab, 0, &ds, &e);
    CHECK_MSG(st == CNN_OK, "Fashion-MNIST t10k: %s", e.msg);
    if (st != CNN_OK) return;
    CHECK(ds.n == 10000 && ds.c == 1 && ds.h == 28 && ds.w == 28 && ds.nclasses == 10);
    size_t per_class[10] = {0};
    for (size_t i = 0; i < ds.n; i++)
        if (ds.labels[i] >= 0 && ds.labels[i] < 10) per_class[ds.labels[i]]++;
    int balanced = 1;
    for (int c = 0; c < 10; c++) balanced &= per_class[c] == 1000;
    CHECK_MSG(balanced, "Fashion-MNIST t10k: classes are not 1000 each");
    float mean, std;
    cnn_dataset_stats(&ds, &mean, &std);
    printf("Fashion-MNIST t10k: %zu images %zux%zu, %zu classes, mean %.4f std %.4f\n",
           ds.n, ds.h, ds.w, ds.nclasses, (double)mean, (double)std);
    CHECK(mean > 0.27f && mean < 0.30f && std > 0.34f && std < 0.37f);
    cnn_dataset_free(&ds);

    CHECK(cnn_idx_load(img, lab, 100, &ds, &e) == CNN_OK && ds.n == 100);
    cnn_dataset_free(&ds);

    /* The training images with the test labels: caught from the headers. */
    const char *train = FASHION_DIR "/train-images-idx3-ubyte.gz";
    if (access(train, R_OK) == 0) {
        CHECK(cnn_idx_load(train, lab, 0, &ds, &e) == CNN_ERR_FORMAT);
        CHECK_CONTAINS(e.msg, "60000 images");
        CHECK_CONTAINS(e.msg, "10000 labels");
    }
}

int main(void)
{
    if (test_make_dir(dir, sizeof dir, "idx")) return 1;
    test_read();
    test_bad_files();
    test_stats();
    test_loader();
    test_loader_threads();
    test_loader_parts();
    test_fashion_mnist();
    test_remove_dir(dir);
    return test_done();
}
