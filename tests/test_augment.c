/*
 * Augmentation and the evaluation centre crop, against values worked out by
 * hand: the centre crop and its normalisation exactly; random crops that
 * must land on one of the windows of the padded image (zero and PyTorch
 * 'reflect' padding written out), every window reached; flips that are the
 * identity or the mirror about half the time each; colour jitter that keeps
 * its invariants (one brightness factor, grey stays grey, hue shifts keep
 * value and saturation); rotation and resizing that keep constant images;
 * noise with the asked standard deviation; cutout squares that become
 * exact zeros; and the same seed giving the same bits. Every scratch buffer
 * is allocated to exactly cnn_augment_scratch floats so ASan sees overruns.
 */
#include "harness.h"
#include "augment.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "rng.h"

/* Run ops on src [c][sh][sw] into dst [c][h][w] with a fresh scratch of
 * exactly the advertised size and the RNG stream of seed. */
static void run(const cnn_aug *ops, size_t nops, const uint8_t *src, size_t c, size_t sh,
                size_t sw, float *dst, size_t h, size_t w, const float *mean,
                const float *std, uint64_t seed)
{
    size_t n = cnn_augment_scratch(ops, nops, c, sh, sw, h, w);
    float *scratch = malloc(n * sizeof(float));
    uint64_t rng = cnn_rng_seed(seed, 7);
    cnn_augment(ops, nops, src, c, sh, sw, dst, h, w, mean, std, &rng, scratch);
    free(scratch);
}

static float px(uint8_t p)
{
    return (float)p / 255.0f;
}

static void test_names(void)
{
    const char *want[] = {"crop", "resized_crop", "flip", "jitter", "rotate", "noise", "cutout"};
    for (size_t k = 0; k < CNN_AUG_COUNT; k++)
        CHECK_MSG(cnn_aug_names[k] && !strcmp(cnn_aug_names[k], want[k]),
                  "cnn_aug_names[%zu] = %s, want %s", k,
                  cnn_aug_names[k] ? cnn_aug_names[k] : "NULL", want[k]);
}

/* 2 channels of 4x4 counting up by 10 (channel 1 adds 100): the 2x2 centre
 * is rows 1-2, columns 1-2. An odd 5x5 source crops from (1, 1). */
static void test_center(void)
{
    uint8_t src[2 * 5 * 5];
    for (size_t i = 0; i < 16; i++) {
        src[i] = (uint8_t)(10 * i);
        src[16 + i] = (uint8_t)(100 + 10 * i);
    }
    const float mean[2] = {0.5f, 0.25f}, std[2] = {0.25f, 2.0f};
    float dst[8];
    cnn_center(src, 2, 4, 4, dst, 2, 2, mean, std);
    const uint8_t centre[8] = {50, 60, 90, 100, 150, 160, 190, 200};
    for (size_t i = 0; i < 8; i++) {
        size_t ch = i / 4;
        float want = (px(centre[i]) - mean[ch]) / std[ch];
        CHECK_MSG(dst[i] == want, "centre value %zu: %.9g, want %.9g", i, dst[i], want);
    }
    /* Hand values: (50/255 - 0.5) / 0.25 = -1.2156863; (200/255 - 0.25) / 2. */
    CHECK_NEAR(dst[0], -1.2156863, 1e-6);
    CHECK_NEAR(dst[7], 0.26715686, 1e-6);

    for (size_t i = 0; i < 25; i++) src[i] = (uint8_t)i;   /* 5x5, 1 channel */
    cnn_center(src, 1, 5, 5, dst, 2, 2, NULL, NULL);
    const uint8_t odd[4] = {6, 7, 11, 12};
    for (size_t i = 0; i < 4; i++) CHECK(dst[i] == px(odd[i]));

    /* No ops: cnn_augment's final centre crop is cnn_center, bit for bit. */
    float aug[8];
    for (size_t i = 0; i < 32; i++) src[i] = (uint8_t)(7 * i);
    cnn_center(src, 2, 4, 4, dst, 2, 2, mean, std);
    run(NULL, 0, src, 2, 4, 4, aug, 2, 2, mean, std, 1);
    CHECK(!memcmp(aug, dst, sizeof dst));

    /* A source smaller than the output is centred in pixel-value-0 padding:
     * a 2x2 source in a 4x3 output sits at rows 1-2, column 0-1 (offset
     * -(3-2)/2 = 0). */
    const uint8_t small[4] = {255, 255, 255, 255};
    float big[12], big2[12];
    const float m1[1] = {0.5f}, s1[1] = {0.5f};
    cnn_center(small, 1, 2, 2, big, 4, 3, m1, s1);
    run(NULL, 0, small, 1, 2, 2, big2, 4, 3, m1, s1, 1);
    const float want_big[12] = {-1, -1, -1, 1, 1, -1, 1, 1, -1, -1, -1, -1};
    check_floats("small source padded", big, want_big, 12, 0.0);
    check_floats("small source padded (augment)", big2, want_big, 12, 0.0);
}

/* Which n x n window of the P x P padded image pad the output o [n][n]
 * is, as top * (P - n + 1) + left, or -1 when none. o is normalised with
 * mean m and std s and compared exactly. */
static int which_window(const float *o, const float *pad, int P, int n, float m, float s)
{
    for (int i = 0; i <= P - n; i++)
        for (int j = 0; j <= P - n; j++) {
            int ok = 1;
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++)
                    ok &= o[y * n + x] == (pad[(i + y) * P + j + x] - m) / s;
            if (ok) return i * (P - n + 1) + j;
        }
    return -1;
}

/* Draw 400 crops of src [n][n] padded by 1 back to n x n; each must be one
 * of the 9 windows of the padded image want [n+2][n+2], each window drawn
 * more than 10 times. */
static void check_crops(const char *what, int reflect, const uint8_t *src, int n,
                        const float *want, float m, float s)
{
    cnn_aug op = {.kind = CNN_AUG_CROP, .padding = 1, .reflect = reflect};
    int seen[9] = {0}, bad = 0;
    for (uint64_t seed = 0; seed < 400; seed++) {
        float o[9];
        run(&op, 1, src, 1, (size_t)n, (size_t)n, o, (size_t)n, (size_t)n, &m, &s, seed);
        int k = which_window(o, want, n + 2, n, m, s);
        if (k < 0) bad++;
        else seen[k]++;
    }
    CHECK_MSG(bad == 0, "%s crop: %d outputs are no window of the padded image", what, bad);
    for (int k = 0; k < 9; k++)
        CHECK_MSG(seen[k] > 10, "%s crop: window %d drawn %d times of 400", what, k, seen[k]);
}

static void test_crop(void)
{
    const float m = 0.1f, s = 0.5f;
    /* Zero padding of a 2x2 image [a b; c d]: exact comparison, so the
     * padded pixels must be exactly (0 - mean) / std. */
    const uint8_t two[4] = {10, 20, 30, 40};
    const float a = px(10), b = px(20), c = px(30), d = px(40);
    const float zero[16] = {0, 0, 0, 0,  0, a, b, 0,  0, c, d, 0,  0, 0, 0, 0};
    check_crops("zero", 0, two, 2, zero, m, s);

    /* PyTorch 'reflect' padding of a 3x3 image [a b c; d e f; g h i] (a 2x2
     * one would give only 4 distinct windows): index -1 reads 1 and index 3
     * reads 1, the edge pixel not repeated. */
    const uint8_t three[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float r[9];
    for (int i = 0; i < 9; i++) r[i] = px(three[i]);
    const float refl[25] = {
        r[4], r[3], r[4], r[5], r[4],
        r[1], r[0], r[1], r[2], r[1],
        r[4], r[3], r[4], r[5], r[4],
        r[7], r[6], r[7], r[8], r[7],
        r[4], r[3], r[4], r[5], r[4],
    };
    check_crops("reflect", 1, three, 3, refl, m, s);

    /* Reflect padding wider than the image (PyTorch refuses): period 2 on a
     * side of 2, so a 1-wide source reads its only pixel everywhere. */
    const uint8_t one[1] = {200};
    cnn_aug wide = {.kind = CNN_AUG_CROP, .padding = 3, .reflect = 1};
    float o[9];
    run(&wide, 1, one, 1, 1, 1, o, 3, 3, NULL, NULL, 5);
    for (int i = 0; i < 9; i++) CHECK(o[i] == px(200));
}

/* 2 channels of 2x3 under a horizontal-only then a vertical-only flip. */
static void test_flip(void)
{
    const uint8_t src[12] = {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16};
    const uint8_t hmir[12] = {3, 2, 1, 6, 5, 4, 13, 12, 11, 16, 15, 14};
    const uint8_t vmir[12] = {4, 5, 6, 1, 2, 3, 14, 15, 16, 11, 12, 13};
    for (int axis = 0; axis < 2; axis++) {
        cnn_aug op = {.kind = CNN_AUG_FLIP, .horizontal = axis == 0, .vertical = axis == 1};
        const uint8_t *mir = axis == 0 ? hmir : vmir;
        int same = 0, flipped = 0, other = 0;
        for (uint64_t seed = 0; seed < 400; seed++) {
            float o[12];
            run(&op, 1, src, 2, 2, 3, o, 2, 3, NULL, NULL, seed);
            int is_same = 1, is_mir = 1;
            for (int i = 0; i < 12; i++) {
                is_same &= o[i] == px(src[i]);
                is_mir &= o[i] == px(mir[i]);
            }
            same += is_same;
            flipped += is_mir;
            other += !is_same && !is_mir;
        }
        CHECK_MSG(other == 0, "flip axis %d: %d outputs neither identity nor mirror", axis, other);
        CHECK_MSG(flipped >= 150 && flipped <= 250, "flip axis %d: %d of 400 flipped",
                  axis, flipped);
        CHECK(same + flipped == 400);
    }
    /* Both axes: the four outcomes all appear. */
    cnn_aug both = {.kind = CNN_AUG_FLIP, .horizontal = 1, .vertical = 1};
    int rot180 = 0;
    for (uint64_t seed = 0; seed < 100; seed++) {
        float o[12];
        run(&both, 1, src, 2, 2, 3, o, 2, 3, NULL, NULL, seed);
        rot180 += o[0] == px(6) && o[5] == px(1) && o[6] == px(16);
    }
    CHECK_MSG(rot180 > 10 && rot180 < 45, "both axes flipped in %d of 100", rot180);
}

static void test_jitter(void)
{
    /* 4x4 RGBA with varied pixels under 100, so 1.5 x stays below 1. */
    enum { N = 16 };
    uint8_t src[4 * N];
    for (size_t i = 0; i < 4 * N; i++) src[i] = (uint8_t)((i * 37) % 100 + 1);
    float o[4 * N];

    /* Brightness alone: one factor in [0.5, 1.5] for every colour value;
     * alpha as it was. */
    cnn_aug br = {.kind = CNN_AUG_JITTER, .brightness = 0.5f};
    float lo = 2, hi = 0;
    for (uint64_t seed = 0; seed < 50; seed++) {
        run(&br, 1, src, 4, 4, 4, o, 4, 4, NULL, NULL, seed);
        float f = o[0] / px(src[0]);
        int one = 1;
        for (size_t i = 0; i < 3 * N; i++) one &= fabsf(o[i] / px(src[i]) - f) < 1e-5f;
        CHECK_MSG(one, "brightness seed %llu: not one factor", (unsigned long long)seed);
        CHECK(f >= 0.5f && f <= 1.5f);
        lo = fminf(lo, f);
        hi = fmaxf(hi, f);
        for (size_t i = 3 * N; i < 4 * N; i++) CHECK(o[i] == px(src[i]));
    }
    CHECK_MSG(lo < 0.7f && hi > 1.3f, "brightness factors span [%g, %g] only", lo, hi);

    /* Contrast alone: out - m = f (in - m) with m the mean grey and one f
     * in [0.5, 1.5]; pixels 80..169 keep 1.5 (in - m) + m inside [0, 1]. */
    uint8_t mid[4 * N];
    for (size_t i = 0; i < 4 * N; i++) mid[i] = (uint8_t)((i * 37) % 90 + 80);
    cnn_aug ct = {.kind = CNN_AUG_JITTER, .contrast = 0.5f};
    double mg = 0;
    for (size_t i = 0; i < N; i++)
        mg += 0.299 * px(mid[i]) + 0.587 * px(mid[N + i]) + 0.114 * px(mid[2 * N + i]);
    mg /= N;
    for (uint64_t seed = 0; seed < 10; seed++) {
        run(&ct, 1, mid, 4, 4, 4, o, 4, 4, NULL, NULL, seed);
        double f = (o[0] - mg) / (px(mid[0]) - mg);
        CHECK(f >= 0.5 - 1e-4 && f <= 1.5 + 1e-4);
        for (size_t i = 0; i < 3 * N; i++) CHECK_NEAR(o[i] - mg, f * (px(mid[i]) - mg), 1e-5);
        for (size_t i = 3 * N; i < 4 * N; i++) CHECK(o[i] == px(mid[i]));
    }

    /* Saturation on a grey image (R = G = B) leaves it as it was. */
    uint8_t grey[3 * N];
    for (size_t i = 0; i < N; i++) grey[i] = grey[N + i] = grey[2 * N + i] = (uint8_t)(i * 15);
    cnn_aug sat = {.kind = CNN_AUG_JITTER, .saturation = 0.9f};
    for (uint64_t seed = 0; seed < 10; seed++) {
        run(&sat, 1, grey, 3, 4, 4, o, 4, 4, NULL, NULL, seed);
        for (size_t i = 0; i < 3 * N; i++) CHECK_NEAR(o[i], px(grey[i]), 1e-6);
    }

    /* Hue on red (1,0,0) and green (0,1,0), shift d with |d| < 1/6: red
     * becomes (1, 6d, 0) for d > 0 and (1, 0, -6d) for d < 0; green
     * becomes (0, 1, 6d) or (-6d, 1, 0): value and saturation stay, and
     * green's third channel is red's second. */
    const uint8_t rg[6] = {255, 0, 0, 255, 0, 0};   /* [3][1][2]: red, green */
    cnn_aug hue = {.kind = CNN_AUG_JITTER, .hue = 0.1f};
    int up = 0, down = 0;
    for (uint64_t seed = 0; seed < 100; seed++) {
        run(&hue, 1, rg, 3, 1, 2, o, 1, 2, NULL, NULL, seed);
        float r[3] = {o[0], o[2], o[4]}, g[3] = {o[1], o[3], o[5]};
        CHECK(r[0] == 1.0f && g[1] == 1.0f);
        CHECK(fminf(r[1], r[2]) == 0.0f && fmaxf(r[1], r[2]) <= 0.6f + 1e-6f);
        CHECK_NEAR(g[2], r[1], 2e-6);
        CHECK_NEAR(g[0], r[2], 2e-6);
        up += r[1] > 0.0f;
        down += r[2] > 0.0f;
    }
    CHECK_MSG(up > 20 && down > 20, "hue shifts: %d up, %d down of 100", up, down);

    /* A tiny hue shift is the HSV round trip: within 1e-5 of the input;
     * hue 0 draws nothing and is exact. */
    cnn_aug tiny = {.kind = CNN_AUG_JITTER, .hue = 1e-7f};
    run(&tiny, 1, src, 4, 4, 4, o, 4, 4, NULL, NULL, 9);
    float want[4 * N];
    for (size_t i = 0; i < 4 * N; i++) want[i] = px(src[i]);
    check_floats("HSV round trip", o, want, 4 * N, 1e-5);
    cnn_aug none = {.kind = CNN_AUG_JITTER};
    run(&none, 1, src, 4, 4, 4, o, 4, 4, NULL, NULL, 9);
    check_floats("jitter with all x = 0", o, want, 4 * N, 0.0);

    /* One channel: saturation and hue are skipped, brightness applies. */
    cnn_aug all = {.kind = CNN_AUG_JITTER, .saturation = 0.5f, .hue = 0.5f};
    run(&all, 1, src, 1, 4, 4, o, 4, 4, NULL, NULL, 2);
    check_floats("saturation and hue on 1 channel", o, want, N, 0.0);
}

static void test_rotate(void)
{
    /* Degrees 0: angle 0 exactly, the identity. */
    uint8_t src[3 * 5 * 6];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 13 % 256);
    float o[3 * 5 * 6], want[3 * 5 * 6];
    for (size_t i = 0; i < sizeof src; i++) want[i] = px(src[i]);
    cnn_aug r0 = {.kind = CNN_AUG_ROTATE, .degrees = 0};
    run(&r0, 1, src, 3, 5, 6, o, 5, 6, NULL, NULL, 4);
    check_floats("rotate by 0", o, want, sizeof src, 0.0);

    /* A constant image turned by up to 180 degrees: the centre pixel (and
     * every pixel whose four source neighbours lie inside) is the constant;
     * with reflect every pixel is. Zero fill darkens some corner. */
    uint8_t flat[7 * 7];
    memset(flat, 200, sizeof flat);
    float out[7 * 7];
    int darker = 0;
    for (int reflect = 0; reflect < 2; reflect++) {
        cnn_aug r = {.kind = CNN_AUG_ROTATE, .degrees = 180, .reflect = reflect};
        for (uint64_t seed = 0; seed < 20; seed++) {
            run(&r, 1, flat, 1, 7, 7, out, 7, 7, NULL, NULL, seed);
            CHECK(out[3 * 7 + 3] == px(200));
            for (int y = 2; y <= 4; y++)       /* within 1.5 of the centre */
                for (int x = 2; x <= 4; x++) CHECK(out[y * 7 + x] == px(200));
            for (int i = 0; i < 49; i++) {
                if (reflect) CHECK(out[i] == px(200));
                else CHECK(out[i] >= 0.0f && out[i] <= px(200) + 1e-6f);
            }
            if (!reflect) darker += out[0] < px(200) - 1e-3f || out[6] < px(200) - 1e-3f;
        }
    }
    CHECK_MSG(darker > 10, "zero-fill rotation darkened a corner in %d of 20", darker);
}

static void test_noise(void)
{
    enum { N = 3 * 64 * 64 };
    static uint8_t src[N];
    static float o[N];
    memset(src, 128, sizeof src);
    cnn_aug op = {.kind = CNN_AUG_NOISE, .std = 0.1f};
    run(&op, 1, src, 3, 64, 64, o, 64, 64, NULL, NULL, 11);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < N; i++) {
        double d = o[i] - px(128);
        sum += d;
        sq += d * d;
    }
    double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    CHECK_MSG(fabs(mean) < 0.005, "noise mean %g", mean);
    CHECK_MSG(fabs(sd - 0.1) < 0.005, "noise std %g, want 0.1", sd);
}

/* Cutout on a 2-channel 9x8 image of one value: the zeros (and only they)
 * form one rectangle, the square clipped to the image, in both channels. */
static void test_cutout(void)
{
    enum { C = 2, H = 9, W = 8 };
    uint8_t src[C * H * W];
    memset(src, 200, sizeof src);
    const float mean[C] = {0.3f, 0.6f}, std[C] = {0.2f, 0.4f};
    float o[C * H * W];
    cnn_aug op = {.kind = CNN_AUG_CUTOUT, .size = 3, .count = 1};
    int clipped = 0, whole = 0;
    for (uint64_t seed = 0; seed < 200; seed++) {
        run(&op, 1, src, C, H, W, o, H, W, mean, std, seed);
        int y0 = H, y1 = -1, x0 = W, x1 = -1, zeros = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (o[y * W + x] == 0.0f) {
                    zeros++;
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                }
        CHECK(zeros > 0 && zeros <= 9);
        int bh = y1 - y0 + 1, bw = x1 - x0 + 1;
        CHECK_MSG(zeros == bh * bw, "seed %llu: zeros not a rectangle", (unsigned long long)seed);
        /* The side is 3 unless it touches the edge it was clipped by. */
        CHECK(bh == 3 || y0 == 0 || y1 == H - 1);
        CHECK(bw == 3 || x0 == 0 || x1 == W - 1);
        clipped += bh < 3 || bw < 3;
        whole += bh == 3 && bw == 3;
        for (int i = 0; i < H * W; i++) {
            int z = o[i] == 0.0f;
            CHECK(z == (o[H * W + i] == 0.0f));
            if (!z) CHECK(o[i] == (px(200) - mean[0]) / std[0]);
        }
    }
    CHECK_MSG(clipped > 0 && whole > 0, "cutout: %d clipped, %d whole of 200", clipped, whole);

    /* Several squares: never more than count * size^2 zeros. */
    cnn_aug many = {.kind = CNN_AUG_CUTOUT, .size = 4, .count = 3};
    run(&many, 1, src, C, H, W, o, H, W, mean, std, 3);
    int zeros = 0;
    for (int i = 0; i < H * W; i++) zeros += o[i] == 0.0f;
    CHECK(zeros > 0 && zeros <= 48);
}

static void test_resized_crop(void)
{
    /* Scale and ratio 1: the whole image, resized to its own size. */
    uint8_t src[3 * 4 * 4];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 29 % 256);
    float o[3 * 4 * 4], want[3 * 4 * 4];
    for (size_t i = 0; i < sizeof src; i++) want[i] = px(src[i]);
    cnn_aug whole = {.kind = CNN_AUG_RESIZED_CROP, .scale = {1, 1}, .ratio = {1, 1}};
    run(&whole, 1, src, 3, 4, 4, o, 4, 4, NULL, NULL, 2);
    check_floats("resized_crop identity", o, want, sizeof src, 0.0);

    /* Halving a row 0 1 2 3 4 5 6 7 (align_corners=False): output x reads
     * source 2x + 0.5, the mean of pixels 2x and 2x + 1. */
    uint8_t ramp[8 * 8];
    for (size_t i = 0; i < 64; i++) ramp[i] = (uint8_t)(i % 8 * 10);
    float half[4 * 4];
    run(&whole, 1, ramp, 1, 8, 8, half, 4, 4, NULL, NULL, 2);
    for (size_t y = 0; y < 4; y++)
        for (size_t x = 0; x < 4; x++)
            CHECK_NEAR(half[y * 4 + x], (20.0 * x + 5) / 255.0, 1e-6);

    /* A constant image stays constant. */
    uint8_t flat[8 * 8];
    memset(flat, 77, sizeof flat);
    run(&whole, 1, flat, 1, 8, 8, half, 4, 4, NULL, NULL, 2);
    for (size_t i = 0; i < 16; i++) CHECK(half[i] == px(77));

    /* Ratio 2 never fits a 4x4 square (sqrt(32) rounds to 6 > 4): the
     * fallback keeps width 4 and height round(4 / 2) = 2 from row 1. */
    cnn_aug wide = {.kind = CNN_AUG_RESIZED_CROP, .scale = {1, 1}, .ratio = {2, 2}};
    float band[2 * 4];
    run(&wide, 1, src, 1, 4, 4, band, 2, 4, NULL, NULL, 2);
    check_floats("resized_crop fallback", band, want + 4, 8, 0.0);

    /* Quarter area, square: a 4x4 window of an 8x8 image at a uniform
     * position, resized 1:1, so exactly one of the 25 windows, all drawn. */
    uint8_t grid[8 * 8];
    for (size_t i = 0; i < 64; i++) grid[i] = (uint8_t)i;
    cnn_aug quarter = {.kind = CNN_AUG_RESIZED_CROP, .scale = {0.25f, 0.25f}, .ratio = {1, 1}};
    int seen[25] = {0}, bad = 0;
    for (uint64_t seed = 0; seed < 1000; seed++) {
        run(&quarter, 1, grid, 1, 8, 8, o, 4, 4, NULL, NULL, seed);
        int found = -1;
        for (int i = 0; i < 5 && found < 0; i++)
            for (int j = 0; j < 5 && found < 0; j++) {
                int ok = 1;
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 4; x++) ok &= o[y * 4 + x] == px(grid[(i + y) * 8 + j + x]);
                if (ok) found = i * 5 + j;
            }
        if (found < 0) bad++;
        else seen[found]++;
    }
    CHECK_MSG(bad == 0, "resized_crop: %d outputs are no 4x4 window", bad);
    for (int k = 0; k < 25; k++) CHECK_MSG(seen[k] > 10, "window %d drawn %d times", k, seen[k]);

    /* Half of a tall 8x4 image, square: a 4x4 window as wide as the image
     * (a fit at the edge counts), at any of the 5 rows. */
    cnn_aug tall = {.kind = CNN_AUG_RESIZED_CROP, .scale = {0.5f, 0.5f}, .ratio = {1, 1}};
    int rows[5] = {0};
    bad = 0;
    for (uint64_t seed = 0; seed < 200; seed++) {
        run(&tall, 1, grid, 1, 8, 4, o, 4, 4, NULL, NULL, seed);
        int top = (int)lrintf(o[0] * 255.0f) / 4;   /* grid as 8x4: row r starts at 4r */
        int ok = top <= 4;
        for (int i = 0; i < 16 && ok; i++) ok &= o[i] == px(grid[top * 4 + i]);
        if (ok) rows[top]++;
        else bad++;
    }
    CHECK_MSG(bad == 0, "resized_crop: %d outputs are no full-width window", bad);
    for (int k = 0; k < 5; k++) CHECK_MSG(rows[k] > 10, "top row %d drawn %d times", k, rows[k]);
}

/* Every op in one pipeline: the same seed gives the same bits, another
 * seed something else; the output size never overruns (ASan). */
static void test_determinism(void)
{
    enum { C = 3, SH = 12, SW = 10, H = 8, W = 8 };
    uint8_t src[C * SH * SW];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 7 % 256);
    const cnn_aug ops[] = {
        {.kind = CNN_AUG_RESIZED_CROP, .scale = {0.3f, 1}, .ratio = {0.75f, 1.3333f}},
        {.kind = CNN_AUG_CROP, .padding = 2, .reflect = 1},
        {.kind = CNN_AUG_FLIP, .horizontal = 1, .vertical = 1},
        {.kind = CNN_AUG_JITTER, .brightness = 0.4f, .contrast = 0.4f, .saturation = 0.4f,
         .hue = 0.1f},
        {.kind = CNN_AUG_ROTATE, .degrees = 15},
        {.kind = CNN_AUG_NOISE, .std = 0.05f},
        {.kind = CNN_AUG_CUTOUT, .size = 3, .count = 2},
    };
    const float mean[C] = {0.4f, 0.45f, 0.5f}, std[C] = {0.2f, 0.25f, 0.3f};
    float a[C * H * W], b[C * H * W], d[C * H * W];
    run(ops, 7, src, C, SH, SW, a, H, W, mean, std, 42);
    run(ops, 7, src, C, SH, SW, b, H, W, mean, std, 42);
    run(ops, 7, src, C, SH, SW, d, H, W, mean, std, 43);
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, d, sizeof a) != 0);
    int finite = 1;
    for (size_t i = 0; i < C * H * W; i++) finite &= isfinite(a[i]) != 0;
    CHECK(finite);

    /* Rotate by 0 (no crop) from a source bigger than the output: the
     * final centre crop brings 12x10 to 8x8 as cnn_center does. */
    cnn_aug r0 = {.kind = CNN_AUG_ROTATE, .degrees = 0};
    run(&r0, 1, src, C, SH, SW, a, H, W, mean, std, 1);
    cnn_center(src, C, SH, SW, b, H, W, mean, std);
    CHECK(!memcmp(a, b, sizeof a));
}

int main(void)
{
    test_names();
    test_center();
    test_crop();
    test_flip();
    test_jitter();
    test_rotate();
    test_noise();
    test_cutout();
    test_resized_crop();
    test_determinism();
    return test_done();
}
