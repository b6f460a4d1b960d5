/*
 * Golden values for the spatial layers, computed by hand: each layer runs
 * as a one-layer network through the normal graph code, with its weights
 * and input set by hand, and its output is compared with values worked out
 * on paper (the working is in the comments), dilated and grouped convs
 * included. Also the shape and option
 * errors, which must name the layer.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "net.h"
#include "rng.h"

#define MAX_OPTS 16

/* A one-layer network named "L" of the given kind. kv: "key", "value", ...
 * NULL-terminated; a value "[a, b]" is a list. NULL on error (e filled). */
static cnn_net *build(const char *kind, const char *const *kv, cnn_shape in,
                      size_t batch, cnn_error *e)
{
    cnn_opt items[MAX_OPTS];
    char texts[MAX_OPTS][64];
    const char *lists[MAX_OPTS][2];
    size_t n = 0;
    memset(items, 0, sizeof items);
    for (size_t i = 0; kv && kv[i] && n < MAX_OPTS; i += 2, n++) {
        snprintf(texts[n], sizeof texts[n], "%s", kv[i + 1]);
        items[n].key = kv[i];
        items[n].line = (int)n + 1;
        items[n].col = 5;
        if (texts[n][0] == '[') {
            char *comma = strchr(texts[n], ',');
            char *end = strchr(texts[n], ']');
            if (comma && end) {
                *comma = *end = '\0';
                lists[n][0] = texts[n] + 1;
                lists[n][1] = comma + 1 + strspn(comma + 1, " ");
                items[n].items = lists[n];
                items[n].nitems = 2;
            }
        } else {
            items[n].text = texts[n];
        }
    }
    cnn_layer_spec spec = {0};
    spec.name = "L";
    spec.kind = kind;
    spec.opts.items = items;
    spec.opts.n = n;
    cnn_model_spec model = {in, &spec, 1, 0};
    cnn_error_clear(e);
    return cnn_net_create(&model, batch, e);
}

static void set(float *dst, const float *src, size_t n)
{
    memcpy(dst, src, n * sizeof *dst);
}

/* Build, set weight (and bias if b), set x, forward in eval mode, compare. */
static void run_case(const char *what, const char *kind, const char *const *kv,
                     cnn_shape in, size_t batch, const float *x, const float *w,
                     const float *b, cnn_shape want_shape, const float *want)
{
    cnn_error e;
    cnn_net *net = build(kind, kv, in, batch, &e);
    CHECK_MSG(net != NULL, "%s: cannot build: %s", what, e.msg);
    if (!net)
        return;
    cnn_layer *l = cnn_net_output(net);
    CHECK_MSG(l->out.c == want_shape.c && l->out.h == want_shape.h &&
              l->out.w == want_shape.w, "%s: output %zux%zux%zu, expected %zux%zux%zu",
              what, l->out.c, l->out.h, l->out.w, want_shape.c, want_shape.h,
              want_shape.w);
    if (w)
        set(l->params[0].data, w, l->params[0].size);
    if (b) {
        CHECK_MSG(l->nparams == 2, "%s: no bias", what);
        if (l->nparams == 2) set(l->params[1].data, b, l->params[1].size);
    }
    set(net->x, x, batch * cnn_shape_size(in));
    cnn_net_forward(net, batch, 0);
    if (cnn_shape_size(l->out) == cnn_shape_size(want_shape))
        check_floats(what, l->y, want, batch * cnn_shape_size(want_shape), 1e-5);
    cnn_net_free(net);
}

/* The classic example: a 7x7 binary image and the X-shaped kernel. */
static void test_conv_x_kernel(void)
{
    static const char *img[7] = {"0111000", "0011100", "0001110", "0001100",
                                 "0011000", "0110000", "1100000"};
    static const char *out[5] = {"14341", "12433", "12341", "13311", "33110"};
    float x[2 * 49], want[2 * 25];
    for (size_t i = 0; i < 49; i++)
        x[i] = x[49 + i] = (float)(img[i / 7][i % 7] - '0');
    for (size_t i = 0; i < 25; i++)
        want[i] = want[25 + i] = (float)(out[i / 5][i % 5] - '0');
    const float k[9] = {1, 0, 1, 0, 1, 0, 1, 0, 1};
    const char *kv[] = {"filters", "1", "kernel", "3", "bias", "false", NULL};
    /* Batch 2: both images must give the same map. */
    run_case("conv 7x7 * X kernel", "conv", kv, (cnn_shape){1, 7, 7}, 2, x, k, NULL,
             (cnn_shape){1, 5, 5}, want);
}

/* Sobel-x on a step edge. Input (4x4):
 *   0 0 1 1      kernel  -1 0 1
 *   0 0 1 1              -2 0 2
 *   0 1 1 1              -1 0 1
 *   0 1 1 1
 * (0,0): rows 0-2, cols 0-2: (1-0) + 2(1-0) + (1-0) = 4
 * (0,1): cols 1-3: (1-0) + 2(1-0) + (1-1) = 3
 * (1,0): rows 1-3: (1-0) + 2(1-0) + (1-0) = 4
 * (1,1): rows 1-3, cols 1-3: (1-0) + 2(1-1) + (1-1) = 1 */
static void test_conv_sobel(void)
{
    const float x[16] = {0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1};
    const float k[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
    const float want[4] = {4, 3, 4, 1};
    const char *kv[] = {"filters", "1", "kernel", "3", "bias", "false", NULL};
    run_case("conv sobel-x", "conv", kv, (cnn_shape){1, 4, 4}, 1, x, k, NULL,
             (cnn_shape){1, 2, 2}, want);
}

/* A 5x5 input holding 1..25 row by row, a 3x3 kernel of ones, stride 2,
 * zero pad 1: output floor((5 + 2 - 3)/2) + 1 = 3 per axis. Each output is
 * the sum of the real cells its window covers, e.g.
 *   (0,0): rows 0-1, cols 0-1: 1+2+6+7 = 16
 *   (0,1): rows 0-1, cols 1-3: 2+3+4+7+8+9 = 33
 *   (1,1): rows 1-3, cols 1-3: 7+8+9+12+13+14+17+18+19 = 117
 *   (2,2): rows 3-4, cols 3-4: 19+20+24+25 = 88 */
static void test_conv_stride_pad(void)
{
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)(i + 1);
    const float k[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const float want[9] = {16, 33, 28, 69, 117, 87, 76, 123, 88};
    const char *kv[] = {"filters", "1", "kernel", "3", "stride", "2", "pad", "1",
                        "bias", "false", NULL};
    run_case("conv stride 2 pad 1 zero", "conv", kv, (cnn_shape){1, 5, 5}, 1, x, k,
             NULL, (cnn_shape){1, 3, 3}, want);
    /* pad: same gives pad 1 for a 3x3 kernel: the same map with stride 2. */
    const char *kv_same[] = {"filters", "1", "kernel", "3", "stride", "2", "pad",
                             "same", "bias", "false", NULL};
    run_case("conv stride 2 pad same", "conv", kv_same, (cnn_shape){1, 5, 5}, 1, x, k,
             NULL, (cnn_shape){1, 3, 3}, want);
    /* Stride 2 without padding: floor((5 - 3)/2) + 1 = 2; (0,0) = 1+2+3+6+7+8
     * +11+12+13 = 63, each step of 2 columns adds 2*9, of 2 rows 10*9. */
    const float want2[4] = {63, 81, 153, 171};
    const char *kv2[] = {"filters", "1", "kernel", "3", "stride", "2", "bias", "false",
                         NULL};
    run_case("conv stride 2 valid", "conv", kv2, (cnn_shape){1, 5, 5}, 1, x, k, NULL,
             (cnn_shape){1, 2, 2}, want2);
}

/* Reflect padding of 1 2 3 / 4 5 6 / 7 8 9 by 1 (PyTorch 'reflect', the
 * edge is not repeated):
 *   5 4 5 6 5
 *   2 1 2 3 2
 *   5 4 5 6 5
 *   8 7 8 9 8
 *   5 4 5 6 5
 * A 3x3 kernel with a single 1 at tap (ky, kx) reads the padded map shifted
 * by (ky, kx): tap (0,0) gives its top-left 3x3, tap (2,2) its bottom-right. */
static void test_conv_reflect(void)
{
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float k00[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    const float k22[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    const float k11[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    const float want00[9] = {5, 4, 5, 2, 1, 2, 5, 4, 5};
    const float want22[9] = {5, 6, 5, 8, 9, 8, 5, 6, 5};
    const char *kv[] = {"filters", "1", "kernel", "3", "pad", "1", "padding_mode",
                        "reflect", "bias", "false", NULL};
    run_case("conv reflect tap (0,0)", "conv", kv, (cnn_shape){1, 3, 3}, 1, x, k00,
             NULL, (cnn_shape){1, 3, 3}, want00);
    run_case("conv reflect tap (2,2)", "conv", kv, (cnn_shape){1, 3, 3}, 1, x, k22,
             NULL, (cnn_shape){1, 3, 3}, want22);
    run_case("conv reflect tap (1,1) = identity", "conv", kv, (cnn_shape){1, 3, 3}, 1,
             x, k11, NULL, (cnn_shape){1, 3, 3}, x);
    /* The same taps with zero padding: the shifted input with zeros. */
    const float zero00[9] = {0, 0, 0, 0, 1, 2, 0, 4, 5};
    const char *kvz[] = {"filters", "1", "kernel", "3", "pad", "1", "bias", "false",
                         NULL};
    run_case("conv zero pad tap (0,0)", "conv", kvz, (cnn_shape){1, 3, 3}, 1, x, k00,
             NULL, (cnn_shape){1, 3, 3}, zero00);
    /* Stride 2 over the reflected 5x5 reads padded rows and columns -1 and
     * 1: tap (0,1) gives columns 0 and 2 of rows -1 and 1 = 4 6 / 4 6, tap
     * (1,0) columns -1 and 1 of rows 0 and 2 = 2 2 / 8 8. */
    const float k01[9] = {0, 1, 0, 0, 0, 0, 0, 0, 0};
    const float k10[9] = {0, 0, 0, 1, 0, 0, 0, 0, 0};
    const float want01[4] = {4, 6, 4, 6};
    const float want10[4] = {2, 2, 8, 8};
    const char *kv2[] = {"filters", "1", "kernel", "3", "pad", "1", "stride", "2",
                         "padding_mode", "reflect", "bias", "false", NULL};
    run_case("conv reflect stride 2 tap (0,1)", "conv", kv2, (cnn_shape){1, 3, 3}, 1,
             x, k01, NULL, (cnn_shape){1, 2, 2}, want01);
    run_case("conv reflect stride 2 tap (1,0)", "conv", kv2, (cnn_shape){1, 3, 3}, 1,
             x, k10, NULL, (cnn_shape){1, 2, 2}, want10);
}

/* Non-square kernels.
 * 1x3 kernel [1 2 3] over 1 2 3 4 / 5 6 7 8:
 *   1+4+9 = 14, 2+6+12 = 20 / 5+12+21 = 38, 6+14+24 = 44
 * 3x1 kernel [1 2 3]^T over 1 2 / 3 4 / 5 6 / 7 8:
 *   1+6+15 = 22, 2+8+18 = 28 / 3+10+21 = 34, 4+12+24 = 40 */
static void test_conv_nonsquare(void)
{
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float k[3] = {1, 2, 3};
    const float want13[4] = {14, 20, 38, 44};
    const float want31[4] = {22, 28, 34, 40};
    const char *kv13[] = {"filters", "1", "kernel", "[1, 3]", "bias", "false", NULL};
    const char *kv31[] = {"filters", "1", "kernel", "[3, 1]", "bias", "false", NULL};
    run_case("conv 1x3", "conv", kv13, (cnn_shape){1, 2, 4}, 1, x, k, NULL,
             (cnn_shape){1, 2, 2}, want13);
    run_case("conv 3x1", "conv", kv31, (cnn_shape){1, 4, 2}, 1, x, k, NULL,
             (cnn_shape){1, 2, 2}, want31);
    /* 1x3 with pad [0, 1]: keeps the width 4; ends see a zero:
     * row 0: 0+2+6 = 8, 14, 20, 3+8+0 = 11 */
    const float want_pad[8] = {8, 14, 20, 11, 5 * 2 + 6 * 3, 38, 44, 7 + 16};
    const char *kvp[] = {"filters", "1", "kernel", "[1, 3]", "pad", "[0, 1]", "bias",
                         "false", NULL};
    run_case("conv 1x3 pad [0, 1]", "conv", kvp, (cnn_shape){1, 2, 4}, 1, x, k, NULL,
             (cnn_shape){1, 2, 4}, want_pad);
}

/* Two input channels, two filters, 1x1, with bias: at each pixel
 * y0 = 1*a + 2*b + 0.5, y1 = -a + b - 1, for channels a = 1 2 3 4 and
 * b = 10 20 30 40. */
static void test_conv_channels_bias(void)
{
    const float x[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    const float w[4] = {1, 2, -1, 1};
    const float b[2] = {0.5f, -1};
    const float want[8] = {21.5f, 42.5f, 63.5f, 84.5f, 8, 17, 26, 35};
    const char *kv[] = {"filters", "2", "kernel", "1", NULL};
    run_case("conv 1x1 2->2 with bias", "conv", kv, (cnn_shape){2, 2, 2}, 1, x, w, b,
             (cnn_shape){2, 2, 2}, want);
}

/* Dilation 2: a 3x3 kernel with weights 1..9 reads a 5x5 input holding
 * 1..25 row by row at rows and columns 0, 2, 4 (extent 2*(3-1)+1 = 5), so
 * the output is floor((5 - 5)/1) + 1 = 1 per axis:
 *   1*1 + 2*3 + 3*5 + 4*11 + 5*13 + 6*15 + 7*21 + 8*23 + 9*25 = 777 */
static void test_conv_dilation(void)
{
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)(i + 1);
    const float k[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float want[1] = {777};
    const char *kv[] = {"filters", "1", "kernel", "3", "dilation", "2", "bias", "false",
                        NULL};
    run_case("conv 3x3 dilation 2", "conv", kv, (cnn_shape){1, 5, 5}, 1, x, k, NULL,
             (cnn_shape){1, 1, 1}, want);
    /* pad same = 2*(3-1)/2 = 2 keeps 5x5; a single 1 at tap (0,0) reads
     * x[oy-2][ox-2] (0 outside), at tap (2,2) x[oy+2][ox+2]. */
    const float k00[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    const float k22[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    float want00[25], want22[25];
    for (int oy = 0; oy < 5; oy++)
        for (int ox = 0; ox < 5; ox++) {
            want00[oy * 5 + ox] = oy >= 2 && ox >= 2 ? x[(oy - 2) * 5 + ox - 2] : 0;
            want22[oy * 5 + ox] = oy < 3 && ox < 3 ? x[(oy + 2) * 5 + ox + 2] : 0;
        }
    const char *kvs[] = {"filters", "1", "kernel", "3", "dilation", "2", "pad", "same",
                         "bias", "false", NULL};
    run_case("conv dilation 2 pad same tap (0,0)", "conv", kvs, (cnn_shape){1, 5, 5}, 1,
             x, k00, NULL, (cnn_shape){1, 5, 5}, want00);
    run_case("conv dilation 2 pad same tap (2,2)", "conv", kvs, (cnn_shape){1, 5, 5}, 1,
             x, k22, NULL, (cnn_shape){1, 5, 5}, want22);
    /* Dilation [1, 2], a 1x2 kernel [1 10] over 1 2 3 4 / 5 6 7 8: taps at
     * columns j and j+2, width 4 - 2 = 2: 1+30 = 31, 2+40 = 42 / 5+70 = 75,
     * 6+80 = 86. */
    const float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float k12[2] = {1, 10};
    const float want12[4] = {31, 42, 75, 86};
    const char *kv12[] = {"filters", "1", "kernel", "[1, 2]", "dilation", "[1, 2]",
                          "bias", "false", NULL};
    run_case("conv 1x2 dilation [1, 2]", "conv", kv12, (cnn_shape){1, 2, 4}, 1, x8, k12,
             NULL, (cnn_shape){1, 2, 2}, want12);
}

/* groups 2 on channels a = 1..9 and b = the squares 1 4 9 / 16 25 36 / 49
 * 64 81, two 2x2 filters with bias: filter 0 sees only a, filter 1 only b.
 *   filter 0 = [1 0; 0 1] + 0.5: a[i][j] + a[i+1][j+1] + .5: 6.5 8.5 / 12.5 14.5
 *   filter 1 = [0 1; -1 0] - 1: b[i][j+1] - b[i+1][j] - 1: 4-16-1 = -13,
 *     9-25-1 = -17 / 25-49-1 = -25, 36-64-1 = -29
 * and each half is what a 1-channel conv of its own channel gives. */
static void test_conv_groups(void)
{
    const float x[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 4, 9, 16, 25, 36, 49, 64, 81};
    const float w[8] = {1, 0, 0, 1, 0, 1, -1, 0};
    const float b[2] = {0.5f, -1};
    const float want[8] = {6.5f, 8.5f, 12.5f, 14.5f, -13, -17, -25, -29};
    const char *kv[] = {"filters", "2", "kernel", "2", "groups", "2", NULL};
    run_case("conv groups 2", "conv", kv, (cnn_shape){2, 3, 3}, 1, x, w, b,
             (cnn_shape){2, 2, 2}, want);
    const char *kv1[] = {"filters", "1", "kernel", "2", NULL};
    run_case("conv group 0 alone", "conv", kv1, (cnn_shape){1, 3, 3}, 1, x, w, b,
             (cnn_shape){1, 2, 2}, want);
    run_case("conv group 1 alone", "conv", kv1, (cnn_shape){1, 3, 3}, 1, x + 9, w + 4,
             b + 1, (cnn_shape){1, 2, 2}, want + 4);
    /* Depthwise 1x1 (groups = channels = filters): each channel scaled by
     * its own weight, 2 and -3. */
    const float wd[2] = {2, -3};
    float wantd[18];
    for (int i = 0; i < 18; i++) wantd[i] = x[i] * wd[i / 9];
    const char *kvd[] = {"filters", "2", "kernel", "1", "groups", "2", "bias", "false",
                         NULL};
    run_case("conv depthwise 1x1", "conv", kvd, (cnn_shape){2, 3, 3}, 1, x, wd, NULL,
             (cnn_shape){2, 3, 3}, wantd);
}

/* Pools over
 *   1 3 2 4
 *   5 0 8 6
 *   7 2 1 0
 *   3 9 4 5 */
static const float pool_x[16] = {1, 3, 2, 4, 5, 0, 8, 6, 7, 2, 1, 0, 3, 9, 4, 5};

static void test_maxpool(void)
{
    /* 2x2 s2: max of each quadrant. */
    const float want[4] = {5, 8, 9, 5};
    run_case("maxpool 2x2 s2", "maxpool", NULL, (cnn_shape){1, 4, 4}, 1, pool_x, NULL,
             NULL, (cnn_shape){1, 2, 2}, want);
    /* 3x3 s2 p1: windows rows/cols {-1..1, 1..3}: (0,0) max(1,3,5,0) = 5,
     * (0,1) max(3,2,4,0,8,6) = 8, (1,0) max(5,0,7,2,3,9) = 9, (1,1) = 9. */
    const char *kv[] = {"size", "3", "stride", "2", "pad", "1", NULL};
    const float want_p[4] = {5, 8, 9, 9};
    run_case("maxpool 3x3 s2 p1", "maxpool", kv, (cnn_shape){1, 4, 4}, 1, pool_x, NULL,
             NULL, (cnn_shape){1, 2, 2}, want_p);
    /* The same on x - 10 (all negative): padding is -inf, never 0. */
    float neg[16];
    for (int i = 0; i < 16; i++) neg[i] = pool_x[i] - 10;
    const float want_neg[4] = {-5, -2, -1, -1};
    run_case("maxpool 3x3 s2 p1 negative", "maxpool", kv, (cnn_shape){1, 4, 4}, 1, neg,
             NULL, NULL, (cnn_shape){1, 2, 2}, want_neg);
    /* 2x2 stride 1: 3x3 output. */
    const char *kv1[] = {"size", "2", "stride", "1", NULL};
    const float want1[9] = {5, 8, 8, 7, 8, 8, 9, 9, 5};
    run_case("maxpool 2x2 s1", "maxpool", kv1, (cnn_shape){1, 4, 4}, 1, pool_x, NULL,
             NULL, (cnn_shape){1, 3, 3}, want1);
    /* [1, 2] windows: row pairs max: 3 4 / 5 8 / 7 1 / 9 5 */
    const char *kv12[] = {"size", "[1, 2]", NULL};
    const float want12[8] = {3, 4, 5, 8, 7, 1, 9, 5};
    run_case("maxpool 1x2", "maxpool", kv12, (cnn_shape){1, 4, 4}, 1, pool_x, NULL,
             NULL, (cnn_shape){1, 4, 2}, want12);
    /* A NaN wins its window (it propagates, as in PyTorch); others are
     * untouched. */
    cnn_error e;
    cnn_net *net = build("maxpool", NULL, (cnn_shape){1, 4, 4}, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        set(net->x, pool_x, 16);
        net->x[5] = NAN;
        cnn_net_forward(net, 1, 0);
        const float *y = cnn_net_output(net)->y;
        CHECK(isnan(y[0]) && y[1] == 8 && y[2] == 9 && y[3] == 5);
        cnn_net_free(net);
    }
}

/* A maxpool fast path (8 windows at a time, then a scalar tail) against a
 * plain loop over the clipped windows in row-major order, on 3 planes of
 * HxW with ties and NaNs: the values, and through backward which cell each
 * window's gradient goes to (summed where windows overlap). K x K windows,
 * stride S, pad P. */
static void check_maxpool_path(const char *name, const char *const *kv, size_t K,
                               size_t S, size_t P, size_t H, size_t W)
{
    enum { C = 3, N = 2 };
    const size_t OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    cnn_error e;
    cnn_net *net = build("maxpool", kv, (cnn_shape){C, H, W}, N, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net) return;
    uint64_t rng = 21;
    for (size_t i = 0; i < N * C * H * W; i++) {
        /* few distinct values: many ties; a NaN in about one cell of 40 */
        float v = (float)cnn_rng_below(&rng, 7) - 3.0f;
        net->x[i] = cnn_rng_below(&rng, 40) == 0 ? NAN : v;
    }
    net->want_input_grad = 1;
    cnn_net_forward(net, N, 1);
    cnn_layer *l = cnn_net_output(net);
    CHECK(l->out.h == OH && l->out.w == OW);
    for (size_t i = 0; i < N * C * OH * OW; i++) l->dy[i] = (float)(i + 1);
    cnn_net_backward(net);
    size_t bad_y = 0, bad_dx = 0;
    float *dx = calloc(N * C * H * W, sizeof *dx);   /* windows overlap: sums */
    for (size_t p = 0; p < N * C; p++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                const float *x = net->x + p * H * W;
                long y0 = (long)(oy * S) - (long)P, x0 = (long)(ox * S) - (long)P;
                long at = -1;
                for (long iy = y0 < 0 ? 0 : y0; iy < y0 + (long)K && iy < (long)H; iy++)
                    for (long ix = x0 < 0 ? 0 : x0; ix < x0 + (long)K && ix < (long)W; ix++) {
                        float v = x[iy * (long)W + ix], m = at < 0 ? 0 : x[at];
                        if (at < 0 || v > m || (isnan(v) && !isnan(m))) at = iy * (long)W + ix;
                    }
                size_t o = (p * OH + oy) * OW + ox;
                float y = l->y[o];
                if (!(y == x[at] || (isnan(y) && isnan(x[at])))) bad_y++;
                dx[p * H * W + (size_t)at] += l->dy[o];
            }
    for (size_t i = 0; i < N * C * H * W; i++) bad_dx += net->dx[i] != dx[i];
    free(dx);
    CHECK_MSG(bad_y == 0, "%s: %zu values differ from the plain loop", name, bad_y);
    CHECK_MSG(bad_dx == 0, "%s: %zu input gradients differ", name, bad_dx);
    printf("%-42s %zu windows: %zu values, %zu input gradients differ\n", name,
           N * C * OH * OW, bad_y, bad_dx);
    cnn_net_free(net);
}

/* The fast paths: 2x2 stride 2 on planes 37 wide (18 windows a row: two
 * vectors and a tail; the last column and row dropped), and 3x3 stride 2
 * pad 1 on 41 wide (21 windows: the clipped first and last, vectors
 * between). */
static void test_maxpool_fast_paths(void)
{
    check_maxpool_path("maxpool 2x2 s2 fast path vs plain loop", NULL, 2, 2, 0, 11, 37);
    const char *kv3[] = {"size", "3", "stride", "2", "pad", "1", NULL};
    check_maxpool_path("maxpool 3x3 s2 p1 fast path vs plain loop", kv3, 3, 2, 1, 9, 41);
    check_maxpool_path("maxpool 3x3 s2 p1, 64 wide", kv3, 3, 2, 1, 6, 64);
}

static void test_avgpool(void)
{
    /* 2x2 s2: (1+3+5+0)/4, (2+4+8+6)/4, (7+2+3+9)/4, (1+0+4+5)/4 */
    const float want[4] = {2.25f, 5, 5.25f, 2.5f};
    run_case("avgpool 2x2 s2", "avgpool", NULL, (cnn_shape){1, 4, 4}, 1, pool_x, NULL,
             NULL, (cnn_shape){1, 2, 2}, want);
    /* 3x3 s2 p1, padding counts as zero and the divisor is always 9:
     * (1+3+5+0)/9, (3+2+4+0+8+6)/9, (5+0+7+2+3+9)/9, (0+8+6+2+1+0+9+4+5)/9 */
    const char *kv[] = {"size", "3", "stride", "2", "pad", "1", NULL};
    const float want_p[4] = {1, 23.0f / 9, 26.0f / 9, 35.0f / 9};
    run_case("avgpool 3x3 s2 p1 (/9)", "avgpool", kv, (cnn_shape){1, 4, 4}, 1, pool_x,
             NULL, NULL, (cnn_shape){1, 2, 2}, want_p);
    /* 2 channels, batch 2: each plane on its own. */
    float x2[64];
    for (int i = 0; i < 64; i++) x2[i] = pool_x[i % 16] * (float)(1 + i / 16);
    float want2[16];
    for (int i = 0; i < 16; i++) want2[i] = want[i % 4] * (float)(1 + i / 4);
    run_case("avgpool 2x2 s2 2 planes batch 2", "avgpool", NULL, (cnn_shape){2, 4, 4},
             2, x2, NULL, NULL, (cnn_shape){2, 2, 2}, want2);
}

/* Channel means: (1+2+3+4)/4 = 2.5 and (-1+5+0+0)/4 = 1; the second sample
 * doubled. */
static void test_globalavgpool(void)
{
    const float x[16] = {1, 2, 3, 4, -1, 5, 0, 0, 2, 4, 6, 8, -2, 10, 0, 0};
    const float want[4] = {2.5f, 1, 5, 2};
    run_case("globalavgpool", "globalavgpool", NULL, (cnn_shape){2, 2, 2}, 2, x, NULL,
             NULL, (cnn_shape){2, 1, 1}, want);
}

/* Dense over a (2, 1, 2) input read as 4 features [1 2 3 4]:
 * W = [1 0 -1 2; .5 .5 .5 .5], b = [1 -1]:
 * y0 = 1 - 3 + 8 + 1 = 7, y1 = 5 - 1 = 4. Second sample [0 0 0 1]: 3, -0.5. */
static void test_dense(void)
{
    const float x[8] = {1, 2, 3, 4, 0, 0, 0, 1};
    const float w[8] = {1, 0, -1, 2, 0.5f, 0.5f, 0.5f, 0.5f};
    const float b[2] = {1, -1};
    const float want[4] = {7, 4, 3, -0.5f};
    const char *kv[] = {"units", "2", NULL};
    run_case("dense 4 -> 2", "dense", kv, (cnn_shape){2, 1, 2}, 2, x, w, b,
             (cnn_shape){2, 1, 1}, want);
    const float want_nb[4] = {6, 5, 2, 0.5f};
    const char *kvnb[] = {"units", "2", "bias", "false", "init", "glorot", NULL};
    run_case("dense 4 -> 2 no bias", "dense", kvnb, (cnn_shape){2, 1, 2}, 2, x, w,
             NULL, (cnn_shape){2, 1, 1}, want_nb);
}

static void test_flatten(void)
{
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i - 7;
    run_case("flatten", "flatten", NULL, (cnn_shape){3, 2, 2}, 2, x, NULL, NULL,
             (cnn_shape){12, 1, 1}, x);
}

/* Parameters, MACs and the summary text. */
static void test_declarations(void)
{
    cnn_error e;
    const char *kv[] = {"filters", "8", "kernel", "[5, 3]", "stride", "[1, 2]", "pad",
                        "[2, 1]", "padding_mode", "reflect", NULL};
    cnn_net *net = build("conv", kv, (cnn_shape){3, 10, 10}, 4, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        cnn_layer *l = cnn_net_output(net);
        CHECK(l->out.c == 8 && l->out.h == 10 && l->out.w == 5);
        CHECK(l->nparams == 2);
        CHECK(!strcmp(l->params[0].name, "weight") && l->params[0].ndim == 4);
        CHECK(l->params[0].dims[0] == 8 && l->params[0].dims[1] == 3 &&
              l->params[0].dims[2] == 5 && l->params[0].dims[3] == 3);
        CHECK(l->params[0].fan_in == 45 && l->params[0].fan_out == 120);
        CHECK(l->params[0].decay == 1 && l->params[1].decay == 0);
        CHECK(l->params[0].init == CNN_INIT_HE && l->params[1].init == CNN_INIT_ZERO);
        CHECK(!strcmp(l->params[1].name, "bias") && l->params[1].size == 8);
        CHECK(l->macs == (size_t)8 * 10 * 5 * 3 * 5 * 3);
        char buf[64];
        l->kind->describe(l, buf, sizeof buf);
        CHECK_MSG(!strcmp(buf, "5x3 s1x2 p2x1 reflect"), "describe: \"%s\"", buf);
        cnn_net_free(net);
    }
    const char *kv2[] = {"filters", "4", "kernel", "5", "pad", "same", "bias", "false",
                         "init", "glorot", NULL};
    net = build("conv", kv2, (cnn_shape){1, 6, 6}, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        cnn_layer *l = cnn_net_output(net);
        CHECK(l->out.c == 4 && l->out.h == 6 && l->out.w == 6);
        CHECK(l->nparams == 1 && l->params[0].init == CNN_INIT_GLOROT);
        char buf[64];
        l->kind->describe(l, buf, sizeof buf);
        CHECK_MSG(!strcmp(buf, "5x5 s1 p2 zero nobias"), "describe: \"%s\"", buf);
        cnn_net_free(net);
    }
    /* groups 4 and dilation 2: weight [8][4/4][3][3], fan_in 1*3*3, MACs
     * divided by the groups, pad same = 2, the window spans 5x5. */
    const char *kv5[] = {"filters", "8", "kernel", "3", "dilation", "2", "groups", "4",
                         "pad", "same", NULL};
    net = build("conv", kv5, (cnn_shape){4, 10, 10}, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        cnn_layer *l = cnn_net_output(net);
        CHECK(l->out.c == 8 && l->out.h == 10 && l->out.w == 10);
        CHECK(l->params[0].dims[0] == 8 && l->params[0].dims[1] == 1 &&
              l->params[0].dims[2] == 3 && l->params[0].dims[3] == 3);
        CHECK(l->params[0].size == 72);
        CHECK(l->params[0].fan_in == 9 && l->params[0].fan_out == 72);
        CHECK(l->macs == (size_t)8 * 10 * 10 * 9);
        CHECK(l->rf_kernel[0] == 5 && l->rf_kernel[1] == 5);
        char buf[64];
        l->kind->describe(l, buf, sizeof buf);
        CHECK_MSG(!strcmp(buf, "3x3 s1 p2 d2 g4 zero"), "describe: \"%s\"", buf);
        cnn_net_free(net);
    }
    /* Dilation [2, 3] on a 3x2 kernel: (15 + 0 - 5)/1 + 1 = 11 rows,
     * (12 + 2 - 4)/2 + 1 = 6 columns. */
    const char *kv6[] = {"filters", "2", "kernel", "[3, 2]", "dilation", "[2, 3]",
                         "stride", "[1, 2]", "pad", "[0, 1]", NULL};
    net = build("conv", kv6, (cnn_shape){1, 15, 12}, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        cnn_layer *l = cnn_net_output(net);
        CHECK(l->out.c == 2 && l->out.h == 11 && l->out.w == 6);
        CHECK(l->rf_kernel[0] == 5 && l->rf_kernel[1] == 4);
        char buf[64];
        l->kind->describe(l, buf, sizeof buf);
        CHECK_MSG(!strcmp(buf, "3x2 s1x2 p0x1 d2x3 zero"), "describe: \"%s\"", buf);
        cnn_net_free(net);
    }
    const char *kv3[] = {"units", "10", NULL};
    net = build("dense", kv3, (cnn_shape){4, 3, 2}, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        cnn_layer *l = cnn_net_output(net);
        CHECK(l->out.c == 10 && l->out.h == 1 && l->out.w == 1);
        CHECK(l->params[0].dims[0] == 10 && l->params[0].dims[1] == 24);
        CHECK(l->params[0].fan_in == 24 && l->params[0].fan_out == 10);
        CHECK(l->macs == 240);
        cnn_net_free(net);
    }
    const char *kv4[] = {"size", "3", "pad", "1", NULL};
    net = build("maxpool", kv4, (cnn_shape){2, 7, 7}, 1, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (net) {
        cnn_layer *l = cnn_net_output(net);
        /* stride defaults to the size: floor((7 + 2 - 3)/3) + 1 = 3 */
        CHECK(l->out.c == 2 && l->out.h == 3 && l->out.w == 3);
        char buf[64];
        l->kind->describe(l, buf, sizeof buf);
        CHECK_MSG(!strcmp(buf, "3x3 s3 p1"), "describe: \"%s\"", buf);
        cnn_net_free(net);
    }
}

/* The build must fail and the message contain `want`. */
static void expect_error(const char *kind, const char *const *kv, cnn_shape in,
                         cnn_status status, const char *want)
{
    cnn_error e;
    cnn_net *net = build(kind, kv, in, 2, &e);
    CHECK_MSG(net == NULL, "%s: built, expected an error with \"%s\"", kind, want);
    if (net) {
        cnn_net_free(net);
        return;
    }
    CHECK_MSG(e.status == status, "status %d, expected %d (%s)", (int)e.status,
              (int)status, e.msg);
    CHECK_CONTAINS(e.msg, want);
    printf("expected error: %s\n", e.msg);
}

static void test_errors(void)
{
    const cnn_shape in = {3, 4, 4};
    const char *big[] = {"filters", "2", "kernel", "5", NULL};
    expect_error("conv", big, in, CNN_ERR_SHAPE, "'L'");
    expect_error("conv", big, in, CNN_ERR_SHAPE, "3x4x4");
    const char *big_s[] = {"filters", "2", "kernel", "[1, 7]", "pad", "[0, 1]", NULL};
    expect_error("conv", big_s, in, CNN_ERR_SHAPE, "'L'");
    const char *refl[] = {"filters", "2", "kernel", "5", "pad", "4", "padding_mode",
                          "reflect", NULL};
    expect_error("conv", refl, in, CNN_ERR_SHAPE, "'L'");
    const char *even[] = {"filters", "2", "kernel", "4", "pad", "same", NULL};
    expect_error("conv", even, in, CNN_ERR_CONFIG, "odd");
    const char *word[] = {"filters", "2", "kernel", "3", "pad", "valid", NULL};
    expect_error("conv", word, in, CNN_ERR_CONFIG, "same");
    const char *nofilters[] = {"kernel", "3", NULL};
    expect_error("conv", nofilters, in, CNN_ERR_CONFIG, "filters");
    const char *nokernel[] = {"filters", "3", NULL};
    expect_error("conv", nokernel, in, CNN_ERR_CONFIG, "kernel");
    const char *typo[] = {"filters", "3", "kernel", "3", "strides", "2", NULL};
    expect_error("conv", typo, in, CNN_ERR_CONFIG, "did you mean 'stride'");
    const char *mode[] = {"filters", "3", "kernel", "3", "padding_mode", "circular",
                          NULL};
    expect_error("conv", mode, in, CNN_ERR_CONFIG, "zero, reflect");
    const char *zero[] = {"filters", "0", "kernel", "3", NULL};
    expect_error("conv", zero, in, CNN_ERR_CONFIG, "filters");
    const char *grp_c[] = {"filters", "4", "kernel", "3", "groups", "2", NULL};
    expect_error("conv", grp_c, in, CNN_ERR_CONFIG,
                 "layer 'L' (conv): in_channels 3 is not divisible by groups 2");
    const char *grp_f[] = {"filters", "4", "kernel", "1", "groups", "3", NULL};
    expect_error("conv", grp_f, (cnn_shape){6, 4, 4}, CNN_ERR_CONFIG, "'L'");
    expect_error("conv", grp_f, (cnn_shape){6, 4, 4}, CNN_ERR_CONFIG,
                 "filters 4 is not divisible by groups 3");
    const char *grp0[] = {"filters", "3", "kernel", "3", "groups", "0", NULL};
    expect_error("conv", grp0, in, CNN_ERR_CONFIG, "groups");
    const char *dil0[] = {"filters", "3", "kernel", "3", "dilation", "0", NULL};
    expect_error("conv", dil0, in, CNN_ERR_CONFIG, "dilation");
    /* A 3x3 kernel with dilation 2 spans 5x5: too large for 4x4 unpadded,
     * and with pad [1, 0] for the width. */
    const char *dil_big[] = {"filters", "2", "kernel", "3", "dilation", "2", NULL};
    expect_error("conv", dil_big, in, CNN_ERR_SHAPE, "'L'");
    expect_error("conv", dil_big, in, CNN_ERR_SHAPE,
                 "a 3x3 kernel with dilation 2x2 spans 5x5, which with pad 0x0 does "
                 "not fit its input 3x4x4");
    const char *dil_w[] = {"filters", "2", "kernel", "3", "dilation", "2", "pad",
                           "[1, 0]", NULL};
    expect_error("conv", dil_w, in, CNN_ERR_SHAPE, "with pad 1x0 does not fit");
    /* Reflect padding keeps its limit: pad 4 on 4 rows. */
    const char *dil_refl[] = {"filters", "2", "kernel", "3", "dilation", "4", "pad",
                              "same", "padding_mode", "reflect", NULL};
    expect_error("conv", dil_refl, in, CNN_ERR_SHAPE, "reflect padding 4x4");
    const char *nounits[] = {"bias", "false", NULL};
    expect_error("dense", nounits, in, CNN_ERR_CONFIG, "units");
    const char *pool_big[] = {"size", "5", NULL};
    expect_error("maxpool", pool_big, in, CNN_ERR_SHAPE, "'L'");
    expect_error("avgpool", pool_big, in, CNN_ERR_SHAPE, "3x4x4");
    const char *pool_pad[] = {"size", "2", "pad", "2", NULL};
    expect_error("avgpool", pool_pad, in, CNN_ERR_CONFIG, "half");
    const char *flat_opt[] = {"units", "2", NULL};
    expect_error("flatten", flat_opt, in, CNN_ERR_CONFIG, "units");
}

int main(void)
{
    test_conv_x_kernel();
    test_conv_sobel();
    test_conv_stride_pad();
    test_conv_reflect();
    test_conv_nonsquare();
    test_conv_channels_bias();
    test_conv_dilation();
    test_conv_groups();
    test_maxpool();
    test_maxpool_fast_paths();
    test_avgpool();
    test_globalavgpool();
    test_dense();
    test_flatten();
    test_declarations();
    test_errors();
    return test_done();
}
