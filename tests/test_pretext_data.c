/*
 * Pretext-task data: the sRGB <-> L*a*b* conversion against published
 * values (Lindbloom's and EasyRGB's D65 tables) and round trips over a grid
 * of colours; colorization's split and join; context prediction's patch
 * pairs cut from an image whose pixels hold their own coordinates, so each
 * patch says where it came from and the label can be checked against that;
 * and the loader's several views per sample (contrastive learning): views
 * that differ under augmentation and agree without it, repeated labels, the
 * same bytes with and without threads, when resumed mid-epoch and when
 * split into data-parallel parts. Buffers are malloc'd to their exact
 * sizes so the ASan build sees any overrun.
 */
#include "harness.h"
#include "augment.h"
#include "dataset.h"
#include "pretext.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "rng.h"

static void check_lab(float r, float g, float b, double l, double a, double bb, double tol)
{
    float rgb[3] = {r, g, b}, lab[3];
    cnn_rgb_to_lab(rgb, lab);
    CHECK_MSG(fabs(lab[0] - l) <= tol && fabs(lab[1] - a) <= tol && fabs(lab[2] - bb) <= tol,
              "RGB (%g, %g, %g): Lab (%.4f, %.4f, %.4f), expected (%.4f, %.4f, %.4f) "
              "within %g", (double)r, (double)g, (double)b, (double)lab[0], (double)lab[1],
              (double)lab[2], l, a, bb, tol);
}

/* Published sRGB (D65) values; ours differ from them in the third decimal
 * at most, because they round the sRGB matrix to 7 digits. */
static void test_lab_known(void)
{
    check_lab(1, 1, 1, 100, 0, 0, 1e-4);
    check_lab(0, 0, 0, 0, 0, 0, 1e-4);
    check_lab(1, 0, 0, 53.2408, 80.0925, 67.2032, 0.05);
    check_lab(0, 1, 0, 87.7347, -86.1827, 83.1793, 0.05);
    check_lab(0, 0, 1, 32.3026, 79.1967, -107.8637, 0.05);
    /* 128/255 grey: neutral, L from the same tables */
    check_lab(128.0f / 255.0f, 128.0f / 255.0f, 128.0f / 255.0f, 53.5850, 0, 0, 0.05);
    /* an L*a*b* colour outside sRGB comes back clamped, not NaN */
    float lab[3] = {50, 127, -127}, rgb[3];
    cnn_lab_to_rgb(lab, rgb);
    for (int i = 0; i < 3; i++) CHECK(rgb[i] >= 0.0f && rgb[i] <= 1.0f);
    float black[3] = {0, 0, 0};
    cnn_lab_to_rgb(black, rgb);
    CHECK(rgb[0] == 0.0f && rgb[1] == 0.0f && rgb[2] == 0.0f);
}

/* rgb -> lab -> rgb over an 11^3 grid of colours; every L*a*b* value in
 * range, and a and b within colorization's [-110, 110]. */
static void test_lab_round_trip(void)
{
    enum { STEPS = 11, N = STEPS * STEPS * STEPS };
    float *want = malloc(3 * N * sizeof *want), *got = malloc(3 * N * sizeof *got);
    size_t out_of_range = 0;
    for (size_t i = 0; i < N; i++) {
        float *rgb = want + 3 * i, lab[3];
        rgb[0] = (float)(i / (STEPS * STEPS)) / (STEPS - 1);
        rgb[1] = (float)(i / STEPS % STEPS) / (STEPS - 1);
        rgb[2] = (float)(i % STEPS) / (STEPS - 1);
        cnn_rgb_to_lab(rgb, lab);
        if (!(lab[0] >= -1e-4f && lab[0] <= 100.0001f && fabsf(lab[1]) <= 110
              && fabsf(lab[2]) <= 110))
            out_of_range++;
        cnn_lab_to_rgb(lab, got + 3 * i);
    }
    CHECK_MSG(out_of_range == 0, "%zu colours with L*a*b* out of range", out_of_range);
    check_floats("rgb -> lab -> rgb, 11^3 colours", got, want, 3 * N, 1e-4);
    free(want);
    free(got);
}

/* split gives L / 50 - 1 and a, b / 110 per pixel of a planar image, and
 * join undoes it. */
static void test_colorize(void)
{
    enum { HW = 5 };
    static const float rgb[3 * HW] = {
        1, 0, 0, 0.2f, 0.9f,      /* R plane */
        1, 0, 1, 0.4f, 0.1f,      /* G plane */
        1, 0, 0, 0.6f, 0.5f,      /* B plane */
    };
    float *grey = malloc(HW * sizeof *grey), *ab = malloc(2 * HW * sizeof *ab);
    float *back = malloc(3 * HW * sizeof *back);
    cnn_colorize_split(rgb, HW, grey, ab);
    CHECK_NEAR(grey[0], 1.0, 1e-5);    /* white: L 100 */
    CHECK_NEAR(ab[0], 0.0, 1e-5);
    CHECK_NEAR(ab[HW], 0.0, 1e-5);
    CHECK_NEAR(grey[1], -1.0, 1e-5);   /* black: L 0 */
    CHECK_NEAR(grey[2], 87.7347 / 50 - 1, 1e-3);       /* green */
    CHECK_NEAR(ab[2], -86.1827 / 110, 1e-3);
    CHECK_NEAR(ab[HW + 2], 83.1793 / 110, 1e-3);
    for (size_t i = 0; i < HW; i++) {
        float px[3] = {rgb[i], rgb[HW + i], rgb[2 * HW + i]}, lab[3];
        cnn_rgb_to_lab(px, lab);
        CHECK_NEAR(grey[i], lab[0] / 50 - 1, 1e-6);
        CHECK_NEAR(ab[i], lab[1] / 110, 1e-6);
        CHECK_NEAR(ab[HW + i], lab[2] / 110, 1e-6);
    }
    cnn_colorize_join(grey, ab, HW, back);
    check_floats("colorize split -> join", back, rgb, 3 * HW, 1e-4);
    free(grey);
    free(ab);
    free(back);
}

/* An image [2][h][w] whose channel 0 holds each pixel's row and channel 1
 * its column, so a patch tells where it was cut. */
static float *coordinate_image(size_t h, size_t w)
{
    float *img = malloc(2 * h * w * sizeof *img);
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            img[y * w + x] = (float)y;
            img[(h + y) * w + x] = (float)x;
        }
    return img;
}

/* Where patch p [2][n][n] of a coordinate image came from; 0 if it is not
 * one contiguous window (every pixel one more than its neighbour). */
static int patch_origin(const float *p, size_t n, long *y, long *x)
{
    *y = (long)p[0];
    *x = (long)p[n * n];
    for (size_t r = 0; r < n; r++)
        for (size_t q = 0; q < n; q++)
            if (p[r * n + q] != (float)(*y + (long)r)
                || p[(n + r) * n + q] != (float)(*x + (long)q))
                return 0;
    return 1;
}

/* The neighbour's cell offset (-1, 0, 1) along rows and columns of label. */
static void label_direction(int label, long *dr, long *dc)
{
    int cell = label < 4 ? label : label + 1;
    *dr = cell / 3 - 1;
    *dc = cell % 3 - 1;
}

/* Many draws from a grid placed anywhere in a larger image: each label's
 * patch lies in its direction, (patch + gap) away give or take 2 jitter;
 * the patches never overlap; every label comes up about 1/8 of the time;
 * the jitter and the grid's placement reach their extremes. */
static void test_context_draws(void)
{
    const cnn_context_opts o = {.patch = 6, .gap = 4, .jitter = 2};
    enum { H = 50, W = 61, DRAWS = 8000 };
    const long step = 6 + 4, j2 = 2 * 2;
    CHECK(cnn_context_min_side(&o) == 3 * 6 + 2 * 4 + 2 * 2);
    float *img = coordinate_image(H, W);
    float *first = malloc(2 * 36 * sizeof *first), *second = malloc(2 * 36 * sizeof *second);
    uint64_t rng = cnn_rng_seed(2015, 1);
    size_t counts[8] = {0}, bad_label = 0, bad_cut = 0, bad_place = 0, overlaps = 0;
    long min_y = H, max_y = 0, min_x = W, max_x = 0, min_d = step, max_d = step;
    for (int k = 0; k < DRAWS; k++) {
        int label = cnn_context_pair(img, 2, H, W, &o, &rng, first, second);
        if (label < 0 || label > 7) {
            bad_label++;
            continue;
        }
        counts[label]++;
        long y1, x1, y2, x2, dr, dc;
        if (!patch_origin(first, 6, &y1, &x1) || !patch_origin(second, 6, &y2, &x2)) {
            bad_cut++;
            continue;
        }
        label_direction(label, &dr, &dc);
        long dy = y2 - y1, dx = x2 - x1;
        if (labs(dy - dr * step) > j2 || labs(dx - dc * step) > j2) bad_place++;
        if (labs(dy) < 6 && labs(dx) < 6) overlaps++;
        min_y = y1 < min_y ? y1 : min_y;
        max_y = y1 > max_y ? y1 : max_y;
        min_x = x1 < min_x ? x1 : min_x;
        max_x = x1 > max_x ? x1 : max_x;
        if (dr == 1 && dc == 0) {
            min_d = dy < min_d ? dy : min_d;
            max_d = dy > max_d ? dy : max_d;
        }
    }
    CHECK_MSG(bad_label == 0, "%zu labels outside 0..7", bad_label);
    CHECK_MSG(bad_cut == 0, "%zu patches that are not one window of the image", bad_cut);
    CHECK_MSG(bad_place == 0, "%zu second patches not where the label says", bad_place);
    CHECK_MSG(overlaps == 0, "%zu pairs of patches overlap", overlaps);
    for (int l = 0; l < 8; l++)
        CHECK_MSG(counts[l] > DRAWS / 8 * 85 / 100 && counts[l] < DRAWS / 8 * 115 / 100,
                  "label %d came up %zu times in %d draws", l, counts[l], DRAWS);
    /* the centre patch ranges from the grid at (0, 0) without jitter to
     * the grid at the far corner with the most jitter */
    CHECK_MSG(min_y == step && max_y == H - 2 * 6 - 4 && min_x == step
              && max_x == W - 2 * 6 - 4,
              "centre patch rows %ld..%ld, columns %ld..%ld", min_y, max_y, min_x, max_x);
    CHECK_MSG(min_d == step - j2 && max_d == step + j2,
              "bottom neighbour %ld..%ld rows below, expected %ld..%ld", min_d, max_d,
              step - j2, step + j2);
    /* the same seed draws the same pairs */
    uint64_t a = cnn_rng_seed(7, 0), b = cnn_rng_seed(7, 0);
    float *first_again = malloc(2 * 36 * sizeof *first_again);
    float *second_again = malloc(2 * 36 * sizeof *second_again);
    int la = cnn_context_pair(img, 2, H, W, &o, &a, first, second);
    int lb = cnn_context_pair(img, 2, H, W, &o, &b, first_again, second_again);
    CHECK(la == lb && a == b && memcmp(first, first_again, 2 * 36 * sizeof *first) == 0
          && memcmp(second, second_again, 2 * 36 * sizeof *second) == 0);
    free(first_again);
    free(second_again);
    free(img);
    free(first);
    free(second);
}

/* An image exactly cnn_context_min_side on each side: the grid fills it,
 * so the extremes of the jitter touch its edges (ASan watches the reads).
 * Without jitter, the label alone fixes where both patches are. One pixel
 * less is refused, with nothing drawn. */
static void test_context_tight(void)
{
    const cnn_context_opts o = {.patch = 3, .gap = 2, .jitter = 1};
    size_t side = cnn_context_min_side(&o);   /* 15 */
    float *img = coordinate_image(side, side);
    float *first = malloc(2 * 9 * sizeof *first), *second = malloc(2 * 9 * sizeof *second);
    uint64_t rng = cnn_rng_seed(1, 2);
    size_t wrong = 0;
    long lo = (long)side, hi = 0;
    for (int k = 0; k < 2000; k++) {
        int label = cnn_context_pair(img, 2, side, side, &o, &rng, first, second);
        long y1, x1, y2, x2, dr, dc;
        if (label < 0 || !patch_origin(first, 3, &y1, &x1)
            || !patch_origin(second, 3, &y2, &x2)) {
            wrong++;
            continue;
        }
        label_direction(label, &dr, &dc);
        /* cell k's corner is k (patch + gap) + 0..2 jitter */
        if (y1 < 5 || y1 > 7 || x1 < 5 || x1 > 7 || y2 < (dr + 1) * 5
            || y2 > (dr + 1) * 5 + 2 || x2 < (dc + 1) * 5 || x2 > (dc + 1) * 5 + 2)
            wrong++;
        lo = y2 < lo ? y2 : lo;
        hi = y2 + 3 > hi ? y2 + 3 : hi;
    }
    CHECK_MSG(wrong == 0, "%zu pairs out of place in a %zux%zu image", wrong, side, side);
    CHECK_MSG(lo == 0 && hi == (long)side, "patches span rows %ld..%ld of %zu", lo, hi, side);
    free(img);

    /* no gap, no jitter: nine cells that tile a 9x9 image exactly */
    const cnn_context_opts exact = {.patch = 3, .gap = 0, .jitter = 0};
    CHECK(cnn_context_min_side(&exact) == 9);
    img = coordinate_image(9, 9);
    rng = cnn_rng_seed(3, 4);
    for (int k = 0; k < 64; k++) {
        int label = cnn_context_pair(img, 2, 9, 9, &exact, &rng, first, second);
        long y1, x1, y2, x2, dr, dc;
        CHECK(label >= 0 && patch_origin(first, 3, &y1, &x1)
              && patch_origin(second, 3, &y2, &x2));
        label_direction(label, &dr, &dc);
        CHECK_MSG(y1 == 3 && x1 == 3 && y2 == 3 + 3 * dr && x2 == 3 + 3 * dc,
                  "label %d: centre at (%ld, %ld), neighbour at (%ld, %ld)", label, y1, x1,
                  y2, x2);
    }
    free(img);

    img = coordinate_image(side, side);
    rng = 42;
    first[0] = -5;
    CHECK(cnn_context_pair(img, 2, side - 1, side, &o, &rng, first, second) == -1);
    CHECK(cnn_context_pair(img, 2, side, side - 1, &o, &rng, first, second) == -1);
    const cnn_context_opts empty = {.patch = 0, .gap = 2, .jitter = 0};
    CHECK(cnn_context_pair(img, 2, side, side, &empty, &rng, first, second) == -1);
    CHECK(rng == 42 && first[0] == -5);
    free(img);
    free(first);
    free(second);
}

/* The views tests' dataset: N pseudo-random images, labels i % 5. */
enum { N = 41, C = 3, H = 8, W = 8, B = 6, V = 2, PER = C * H * W };
static uint8_t vpx[N * C * H * W];
static int vlab[N];
static const cnn_dataset vds = {N, C, H, W, vpx, vlab, 5, NULL, 0};
static const cnn_aug crop_flip[2] = {
    {.kind = CNN_AUG_CROP, .padding = 2, .reflect = 0},
    {.kind = CNN_AUG_FLIP, .horizontal = 1},
};

static cnn_loader_opts views_opts(size_t views, size_t threads, size_t naugs)
{
    return (cnn_loader_opts){.batch = B, .shuffle = 1, .seed = 11, .augs = crop_flip,
                             .naugs = naugs, .threads = threads, .views = views};
}

/* One epoch's rows x [n * views][PER] and labels y [n * views] from batch
 * `from` on (after cnn_loader_epoch_at); returns the samples. Each batch
 * goes through a buffer of exactly batch * views rows. */
static size_t epoch_rows(cnn_loader *ld, uint64_t epoch, size_t from, float *x, int *y)
{
    size_t views = ld->o.views, n = 0;
    float *bx = malloc(B * views * PER * sizeof *bx);
    int *by = malloc(B * views * sizeof *by);
    cnn_loader_epoch_at(ld, epoch, from);
    for (size_t k; (k = cnn_loader_next(ld, bx, by)) > 0; n += k) {
        memcpy(x + n * views * PER, bx, k * views * PER * sizeof *bx);
        memcpy(y + n * views, by, k * views * sizeof *by);
    }
    free(bx);
    free(by);
    return n;
}

/* Two views under crop and flip differ for most samples, and view 0 is
 * the row a one-view loader gives; without augmentations both views are
 * the centre crop; every row carries its sample's label. */
static void test_views_rows(void)
{
    static float x[N * V * PER], one[N * PER];
    static int y[N * V], y_one[N];
    cnn_error e;
    for (size_t naugs = 0; naugs <= 2; naugs += 2) {
        cnn_loader two, single;
        cnn_loader_opts o = views_opts(V, 0, naugs), o1 = views_opts(0, 0, naugs);
        CHECK(cnn_loader_init(&two, &vds, &o, &e) == CNN_OK);
        CHECK(cnn_loader_init(&single, &vds, &o1, &e) == CNN_OK);
        CHECK(two.o.views == V && single.o.views == 1);
        CHECK(epoch_rows(&two, 3, 0, x, y) == N);
        CHECK(epoch_rows(&single, 3, 0, one, y_one) == N);
        size_t differ = 0, first_differs = 0, bad_labels = 0;
        for (size_t i = 0; i < N; i++) {
            const float *v0 = x + i * V * PER, *v1 = v0 + PER;
            differ += memcmp(v0, v1, PER * sizeof *v0) != 0;
            first_differs += memcmp(v0, one + i * PER, PER * sizeof *v0) != 0;
            bad_labels += y[i * V] != y_one[i] || y[i * V + 1] != y_one[i];
        }
        if (naugs)
            CHECK_MSG(differ >= N * 9 / 10, "crop and flip: only %zu of %d samples have "
                      "two different views", differ, N);
        else
            CHECK_MSG(differ == 0, "no augmentation: %zu samples with differing views",
                      differ);
        CHECK_MSG(first_differs == 0, "%zu samples whose view 0 is not the one-view row",
                  first_differs);
        CHECK_MSG(bad_labels == 0, "%zu samples whose rows lack its label", bad_labels);
        cnn_loader_free(&two);
        cnn_loader_free(&single);
    }
    /* a view count whose batch size overflows is refused, naming views */
    cnn_loader ld;
    cnn_loader_opts o = views_opts(SIZE_MAX / 2, 0, 2);
    CHECK(cnn_loader_init(&ld, &vds, &o, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "views");
    CHECK(ld.order == NULL);
}

/* Workers give the bytes the caller builds itself, for whole epochs and
 * after an abandoned one; resuming at batch k gives the rows an unbroken
 * epoch gives from k on. */
static void test_views_threads_resume(void)
{
    static float ref[2][N * V * PER], got[N * V * PER];
    static int ref_y[2][N * V], got_y[N * V];
    cnn_error e;
    for (size_t threads = 0; threads <= 2; threads += 2) {
        cnn_loader ld;
        cnn_loader_opts o = views_opts(V, threads, 2);
        CHECK(cnn_loader_init(&ld, &vds, &o, &e) == CNN_OK);
        for (uint64_t epoch = 0; epoch < 2; epoch++) {
            float *bx = malloc(B * V * PER * sizeof *bx);
            cnn_loader_epoch(&ld, 5);   /* abandoned after one batch */
            cnn_loader_next(&ld, bx, NULL);
            free(bx);
            CHECK(epoch_rows(&ld, epoch, 0, got, got_y) == N);
            if (threads == 0) {
                memcpy(ref[epoch], got, sizeof got);
                memcpy(ref_y[epoch], got_y, sizeof got_y);
            } else {
                CHECK_MSG(memcmp(ref[epoch], got, sizeof got) == 0
                          && memcmp(ref_y[epoch], got_y, sizeof got_y) == 0,
                          "%zu threads, epoch %llu: other rows than without threads",
                          threads, (unsigned long long)epoch);
            }
            for (size_t from = 1; from <= 7; from += 3) {
                size_t skip = from * B < N ? from * B : N;
                size_t n = epoch_rows(&ld, epoch, from, got, got_y);
                const float *want = ref[epoch] + skip * V * PER;
                const int *want_y = ref_y[epoch] + skip * V;
                CHECK_MSG(n == N - skip && memcmp(got, want, n * V * PER * sizeof *got) == 0
                          && memcmp(got_y, want_y, n * V * sizeof *got_y) == 0,
                          "%zu threads, epoch %llu resumed at batch %zu: %zu samples, "
                          "not the unbroken epoch's", threads, (unsigned long long)epoch,
                          from, n);
            }
        }
        cnn_loader_free(&ld);
    }
    CHECK(memcmp(ref[0], ref[1], sizeof ref[0]) != 0);
}

/* Data-parallel parts hold whole samples with all their views: the parts
 * laid end to end are the batch one loader gives. */
static void test_views_parts(void)
{
    enum { P = 4 };
    static float whole[B * V * PER], joined[B * V * PER];
    int wy[B * V], jy[B * V];
    cnn_error e;
    for (size_t threads = 0; threads <= 1; threads++) {
        cnn_loader one, parts[P];
        cnn_loader_opts o = views_opts(V, threads, 2);
        CHECK(cnn_loader_init(&one, &vds, &o, &e) == CNN_OK);
        size_t most = 0;
        for (size_t r = 0; r < P; r++) {
            cnn_loader_opts po = o;
            po.part = r;
            po.parts = P;
            most = cnn_loader_part_max(&po);
            CHECK(cnn_loader_init(&parts[r], &vds, &po, &e) == CNN_OK);
            cnn_loader_epoch(&parts[r], 2);
        }
        cnn_loader_epoch(&one, 2);
        float *part = malloc(most * V * PER * sizeof *part);
        int *py = malloc(most * V * sizeof *py);
        size_t batches = 0, bad = 0;
        for (size_t n; (n = cnn_loader_next(&one, whole, wy)) > 0; batches++) {
            size_t at = 0;
            for (size_t r = 0; r < P; r++) {
                size_t k = cnn_loader_next(&parts[r], part, py);
                memcpy(joined + at * V * PER, part, k * V * PER * sizeof *part);
                memcpy(jy + at * V, py, k * V * sizeof *py);
                at += k;
            }
            bad += at != n || memcmp(joined, whole, n * V * PER * sizeof *whole) != 0
                   || memcmp(jy, wy, n * V * sizeof *wy) != 0;
        }
        CHECK(batches == (N + B - 1) / B);
        CHECK_MSG(bad == 0, "%zu threads: %zu batches whose parts are not the batch",
                  threads, bad);
        free(part);
        free(py);
        for (size_t r = 0; r < P; r++) cnn_loader_free(&parts[r]);
        cnn_loader_free(&one);
    }
}

int main(void)
{
    for (size_t i = 0; i < sizeof vpx; i++) vpx[i] = (uint8_t)(i * 97 % 253);
    for (int i = 0; i < N; i++) vlab[i] = i % 5;
    test_lab_known();
    test_lab_round_trip();
    test_colorize();
    test_context_draws();
    test_context_tight();
    test_views_rows();
    test_views_threads_resume();
    test_views_parts();
    return test_done();
}
