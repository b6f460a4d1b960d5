/*
 * Per-sample augmentation and the evaluation centre crop (see augment.h).
 *
 * The image lives in scratch as planar floats [c][H][W] in [0, 1] pixel
 * units (p / 255, as the loader's table computes it); each op works on it in
 * place or writes the other half of scratch, and may change H x W. At the
 * end it is centre-cropped to h x w and normalised, (v - mean) / std.
 * Semantics follow torchvision where it has the op; the choices:
 *
 * crop         RandomCrop(size=(h, w), padding=p, padding_mode='constant' or
 *              'reflect'): the window's top then left offset are uniform
 *              integers over the padded image. The padding is virtual (read
 *              through an index map), so it needs no room in scratch.
 *              Reflect is PyTorch's 'reflect' (the edge pixel is not
 *              repeated), applied periodically when p >= the image side,
 *              where PyTorch would refuse. A padded image still smaller
 *              than h x w is centred in the window, padding around it.
 * resized_crop RandomResizedCrop: up to 10 tries of area uniform in scale
 *              times H*W and aspect log-uniform in ratio, w' and h' rounded
 *              half to even as Python's round(); first fit gets a uniform
 *              top then left; otherwise the centre crop with the aspect
 *              clamped to ratio. The window is resized to h x w bilinearly
 *              with align_corners=False (src = (dst + 0.5) * in/out - 0.5,
 *              negatives clamped to 0) and, unlike torchvision's default,
 *              no antialiasing when shrinking.
 * flip         one uniform draw per enabled axis, horizontal then vertical;
 *              the axis flips when it is < 0.5.
 * jitter       ColorJitter's operations, but always in the order brightness,
 *              contrast, saturation, hue (torchvision shuffles the order per
 *              sample). Factors are uniform in [max(0, 1 - x), 1 + x], the
 *              hue shift uniform in [-x, x] turns; a part with x = 0 draws
 *              nothing and is skipped. A part drawn but not applicable
 *              (saturation, hue on fewer than 3 channels) is still drawn,
 *              so the number of draws depends on the config only.
 *              brightness v*f; contrast f*v + (1-f)*mean grey of the image;
 *              saturation f*v + (1-f)*grey of the pixel; all clamped to
 *              [0, 1]. grey = 0.299 R + 0.587 G + 0.114 B (torchvision uses
 *              0.2989 R). hue: RGB -> HSV, h = (h + shift) mod 1, HSV -> RGB
 *              as torchvision's tensor code does. Colour channels are the
 *              first 3 when c >= 3, else channel 0; the rest (alpha) is
 *              left alone.
 * rotate       angle uniform in [-deg, deg] degrees, positive counter-
 *              clockwise, about the image centre ((W-1)/2, (H-1)/2), same
 *              size, bilinear; each of the 4 neighbours outside the image
 *              reads 0 (torchvision's fill=0), or with reflect its
 *              PyTorch-'reflect' mirror (torchvision has no such mode).
 * noise        v += std * N(0, 1) on every value, alpha included, not
 *              clamped, so the network sees the noise as drawn.
 * cutout       DeVries & Taylor 2017: per square a uniform centre row then
 *              column over the image, the square [cy - size/2, +size) x
 *              [cx - size/2, +size) clipped to the image, all channels set
 *              to mean[ch] so they are exactly 0 once normalised. (Their
 *              code covers size - 1 pixels for odd sizes; this covers size.)
 *
 * Nothing here allocates. Op settings that would make an index undefined
 * (a non-finite rotation) are asserted; the config check should have
 * refused them first.
 */
#include "augment.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../core/rng.h"

const char *const cnn_aug_names[CNN_AUG_COUNT] = {
    [CNN_AUG_CROP] = "crop",
    [CNN_AUG_RESIZED_CROP] = "resized_crop",
    [CNN_AUG_FLIP] = "flip",
    [CNN_AUG_JITTER] = "jitter",
    [CNN_AUG_ROTATE] = "rotate",
    [CNN_AUG_NOISE] = "noise",
    [CNN_AUG_CUTOUT] = "cutout",
};
_Static_assert(CNN_AUG_COUNT == 7, "a new cnn_aug_kind needs its name in cnn_aug_names");

size_t cnn_augment_scratch(const cnn_aug *ops, size_t nops, size_t c, size_t sh,
                           size_t sw, size_t h, size_t w)
{
    /* No op makes an image larger than both the source and the output
     * (crop pads virtually), so two buffers of the larger size suffice
     * whatever the ops; they are passed for ops that may need more. */
    (void)ops;
    (void)nops;
    size_t src = sh * sw, out = h * w;
    return 2 * c * (src > out ? src : out);
}

static float clamp01(float v)
{
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* Uniform in [a, b), as torch's uniform_(a, b). */
static double uniform_in(uint64_t *rng, double a, double b)
{
    return a + (b - a) * (double)cnn_rng_uniform(rng);
}

/* Where position i of a padded axis reads in an axis of n pixels: i itself
 * inside, -1 (a zero pixel) outside, or with reflect PyTorch's 'reflect'
 * mirror, repeated periodically so every i has one. */
static ptrdiff_t pad_index(ptrdiff_t i, size_t n, int reflect)
{
    if (i >= 0 && (size_t)i < n) return i;
    if (!reflect) return -1;
    if (n == 1) return 0;
    ptrdiff_t period = 2 * ((ptrdiff_t)n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < (ptrdiff_t)n ? i : period - i;
}

/* Centre-crop offset of a window of m in an axis of n: (n - m) / 2, or
 * minus half the shortfall when the axis is smaller. */
static ptrdiff_t centre_offset(size_t n, size_t m)
{
    return n >= m ? (ptrdiff_t)((n - m) / 2) : -(ptrdiff_t)((m - n) / 2);
}

/* The part [lo, hi) of a window row of w pixels starting at ox that lies
 * inside a source row of W pixels. */
static void inside_span(ptrdiff_t ox, size_t W, size_t w, size_t *lo, size_t *hi)
{
    ptrdiff_t a = ox < 0 ? -ox : 0, b = (ptrdiff_t)W - ox;
    if (a > (ptrdiff_t)w) a = (ptrdiff_t)w;
    if (b > (ptrdiff_t)w) b = (ptrdiff_t)w;
    if (b < a) b = a;
    *lo = (size_t)a;
    *hi = (size_t)b;
}

/* out [c][h][w] = the window of in [c][H][W] whose top-left corner is at
 * (oy, ox), reading outside through pad_index. */
static void window(const float *in, size_t c, size_t H, size_t W, float *out,
                   size_t h, size_t w, ptrdiff_t oy, ptrdiff_t ox, int reflect)
{
    size_t lo, hi;
    inside_span(ox, W, w, &lo, &hi);
    for (size_t ch = 0; ch < c; ch++) {
        for (size_t y = 0; y < h; y++) {
            float *o = out + (ch * h + y) * w;                 /* [w] */
            ptrdiff_t sy = pad_index(oy + (ptrdiff_t)y, H, reflect);
            if (sy < 0) {
                for (size_t x = 0; x < w; x++) o[x] = 0.0f;
                continue;
            }
            const float *row = in + (ch * H + (size_t)sy) * W;  /* [W] */
            for (size_t x = 0; x < lo; x++) {
                ptrdiff_t sx = pad_index(ox + (ptrdiff_t)x, W, reflect);
                o[x] = sx < 0 ? 0.0f : row[sx];
            }
            if (hi > lo) memcpy(o + lo, row + ox + (ptrdiff_t)lo, (hi - lo) * sizeof(float));
            for (size_t x = hi; x < w; x++) {
                ptrdiff_t sx = pad_index(ox + (ptrdiff_t)x, W, reflect);
                o[x] = sx < 0 ? 0.0f : row[sx];
            }
        }
    }
}

/* Start of a window of m in a padded axis of n: uniform over the fits, or
 * centred when it does not fit (one draw either way). */
static ptrdiff_t window_start(uint64_t *rng, size_t n, size_t m)
{
    if (n >= m) return (ptrdiff_t)cnn_rng_below(rng, n - m + 1);
    cnn_rng_below(rng, 1);
    return centre_offset(n, m);
}

static void op_crop(const cnn_aug *op, const float *in, size_t c, size_t H, size_t W,
                    float *out, size_t h, size_t w, uint64_t *rng)
{
    ptrdiff_t p = (ptrdiff_t)op->padding;
    ptrdiff_t oy = window_start(rng, H + 2 * op->padding, h) - p;
    ptrdiff_t ox = window_start(rng, W + 2 * op->padding, w) - p;
    window(in, c, H, W, out, h, w, oy, ox, op->reflect);
}

/* A crop side from a double: rounded already, clamped to [1, n], NaN -> n. */
static size_t side(double v, size_t n)
{
    if (!(v >= 1.0)) return v < 1.0 ? 1 : n;
    return v >= (double)n ? n : (size_t)v;
}

/* Bilinear source position of output index d for a resize from n to m
 * pixels (align_corners=False): the lower neighbour, the upper one (the
 * same at the edge) and the weight of the upper. */
static void source_pos(size_t d, size_t n, size_t m, size_t *i0, size_t *i1, float *t)
{
    float s = ((float)d + 0.5f) * ((float)n / (float)m) - 0.5f;
    if (s < 0.0f) s = 0.0f;
    size_t i = (size_t)s;
    if (i > n - 1) i = n - 1;
    *i0 = i;
    *i1 = i + (i < n - 1);
    *t = s - (float)i;
}

static void op_resized_crop(const cnn_aug *op, const float *in, size_t c, size_t H,
                            size_t W, float *out, size_t h, size_t w, uint64_t *rng)
{
    double area = (double)H * (double)W;
    double lr0 = log((double)op->ratio[0]), lr1 = log((double)op->ratio[1]);
    size_t ch_ = 0, cw = 0, top = 0, left = 0;
    for (int attempt = 0; attempt < 10 && !ch_; attempt++) {
        double target = area * uniform_in(rng, op->scale[0], op->scale[1]);
        double ar = exp(uniform_in(rng, lr0, lr1));
        double fw = nearbyint(sqrt(target * ar)), fh = nearbyint(sqrt(target / ar));
        if (fw >= 1.0 && fw <= (double)W && fh >= 1.0 && fh <= (double)H) {
            ch_ = (size_t)fh;
            cw = (size_t)fw;
            top = (size_t)cnn_rng_below(rng, H - ch_ + 1);
            left = (size_t)cnn_rng_below(rng, W - cw + 1);
        }
    }
    if (!ch_) {   /* the centre crop, aspect clamped to the range */
        double in_ratio = (double)W / (double)H;
        double rmin = fmin(op->ratio[0], op->ratio[1]), rmax = fmax(op->ratio[0], op->ratio[1]);
        ch_ = H;
        cw = W;
        if (in_ratio < rmin) ch_ = side(nearbyint((double)W / rmin), H);
        else if (in_ratio > rmax) cw = side(nearbyint((double)H * rmax), W);
        top = (H - ch_) / 2;
        left = (W - cw) / 2;
    }
    /* Resize the window [ch_][cw] at (top, left) of in to out [c][h][w]. */
    for (size_t y = 0; y < h; y++) {
        size_t y0, y1;
        float ty;
        source_pos(y, ch_, h, &y0, &y1, &ty);
        for (size_t x = 0; x < w; x++) {
            size_t x0, x1;
            float tx;
            source_pos(x, cw, w, &x0, &x1, &tx);
            for (size_t ch = 0; ch < c; ch++) {
                const float *r0 = in + (ch * H + top + y0) * W + left;  /* [cw] */
                const float *r1 = in + (ch * H + top + y1) * W + left;
                float a = r0[x0] + tx * (r0[x1] - r0[x0]);
                float b = r1[x0] + tx * (r1[x1] - r1[x0]);
                out[(ch * h + y) * w + x] = a + ty * (b - a);
            }
        }
    }
}

/* Mirror img [c][H][W] in place along the enabled axes that win a coin. */
static void op_flip(const cnn_aug *op, float *img, size_t c, size_t H, size_t W,
                    uint64_t *rng)
{
    int hflip = op->horizontal && cnn_rng_uniform(rng) < 0.5f;
    int vflip = op->vertical && cnn_rng_uniform(rng) < 0.5f;
    if (hflip) {
        for (size_t r = 0; r < c * H; r++) {
            float *row = img + r * W;   /* [W] */
            for (size_t a = 0, b = W - 1; a < b; a++, b--) {
                float t = row[a];
                row[a] = row[b];
                row[b] = t;
            }
        }
    }
    if (vflip) {
        for (size_t ch = 0; ch < c; ch++) {
            float *plane = img + ch * H * W;   /* [H][W] */
            for (size_t a = 0, b = H - 1; a < b; a++, b--)
                for (size_t x = 0; x < W; x++) {
                    float t = plane[a * W + x];
                    plane[a * W + x] = plane[b * W + x];
                    plane[b * W + x] = t;
                }
        }
    }
}

static float jitter_factor(uint64_t *rng, float x)
{
    float lo = 1.0f - x < 0.0f ? 0.0f : 1.0f - x;
    return (float)uniform_in(rng, lo, 1.0 + x);
}

/* Shift the hue of one RGB pixel by d turns, as torchvision's _rgb2hsv,
 * (h + d) % 1, _hsv2rgb. */
static void shift_hue(float *r, float *g, float *b, float d)
{
    float maxc = fmaxf(*r, fmaxf(*g, *b)), minc = fminf(*r, fminf(*g, *b));
    float cr = maxc - minc;
    if (cr == 0.0f) return;   /* grey: no hue to shift */
    float s = maxc > 0.0f ? cr / maxc : 0.0f, v = maxc;
    float rc = (maxc - *r) / cr, gc = (maxc - *g) / cr, bc = (maxc - *b) / cr;
    float hh;
    if (maxc == *r) hh = bc - gc;
    else if (maxc == *g) hh = 2.0f + rc - bc;
    else hh = 4.0f + gc - rc;
    hh = hh / 6.0f + 1.0f + d;
    hh -= floorf(hh);
    float i = floorf(hh * 6.0f), f = hh * 6.0f - i;
    float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * f));
    float t = clamp01(v * (1.0f - s * (1.0f - f)));
    switch ((int)i % 6) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
    }
}

/* Colour jitter of img [c][n] (n = H*W) in place. */
static void op_jitter(const cnn_aug *op, float *img, size_t c, size_t n, uint64_t *rng)
{
    size_t nc = c >= 3 ? 3 : 1;           /* colour channels; the rest is alpha */
    float *R = img, *G = img + n, *B = img + 2 * n;   /* [n] each when nc == 3 */
    if (op->brightness > 0.0f) {
        float f = jitter_factor(rng, op->brightness);
        for (size_t i = 0; i < nc * n; i++) img[i] = clamp01(f * img[i]);
    }
    if (op->contrast > 0.0f) {
        float f = jitter_factor(rng, op->contrast);
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += nc == 3 ? 0.299f * R[i] + 0.587f * G[i] + 0.114f * B[i] : img[i];
        float m = (float)(sum / (double)n);
        for (size_t i = 0; i < nc * n; i++) img[i] = clamp01(f * img[i] + (1.0f - f) * m);
    }
    if (op->saturation > 0.0f) {
        float f = jitter_factor(rng, op->saturation);
        if (nc == 3)
            for (size_t i = 0; i < n; i++) {
                float grey = 0.299f * R[i] + 0.587f * G[i] + 0.114f * B[i];
                R[i] = clamp01(f * R[i] + (1.0f - f) * grey);
                G[i] = clamp01(f * G[i] + (1.0f - f) * grey);
                B[i] = clamp01(f * B[i] + (1.0f - f) * grey);
            }
    }
    if (op->hue > 0.0f) {
        float d = (float)uniform_in(rng, -op->hue, op->hue);
        if (nc == 3)
            for (size_t i = 0; i < n; i++) shift_hue(&R[i], &G[i], &B[i], d);
    }
}

static void op_rotate(const cnn_aug *op, const float *in, size_t c, size_t H, size_t W,
                      float *out, uint64_t *rng)
{
    assert(isfinite(op->degrees) && "rotate degrees must be finite (the config check's job)");
    double deg = uniform_in(rng, -op->degrees, op->degrees);
    double rad = deg * (3.14159265358979323846 / 180.0);
    float ca = (float)cos(rad), sa = (float)sin(rad);
    float cx = 0.5f * (float)(W - 1), cy = 0.5f * (float)(H - 1);
    for (size_t y = 0; y < H; y++) {
        for (size_t x = 0; x < W; x++) {
            /* The output pixel's source: the inverse rotation (y points down,
             * so a counter-clockwise turn of the image maps source (dx, dy)
             * to (dx cos + dy sin, -dx sin + dy cos)). */
            float dx = (float)x - cx, dy = (float)y - cy;
            float sx = cx + dx * ca - dy * sa, sy = cy + dx * sa + dy * ca;
            float fx = floorf(sx), fy = floorf(sy);
            float tx = sx - fx, ty = sy - fy;
            ptrdiff_t x0 = pad_index((ptrdiff_t)fx, W, op->reflect);
            ptrdiff_t x1 = pad_index((ptrdiff_t)fx + 1, W, op->reflect);
            ptrdiff_t y0 = pad_index((ptrdiff_t)fy, H, op->reflect);
            ptrdiff_t y1 = pad_index((ptrdiff_t)fy + 1, H, op->reflect);
            for (size_t ch = 0; ch < c; ch++) {
                const float *plane = in + ch * H * W;   /* [H][W] */
                float v00 = y0 >= 0 && x0 >= 0 ? plane[y0 * (ptrdiff_t)W + x0] : 0.0f;
                float v01 = y0 >= 0 && x1 >= 0 ? plane[y0 * (ptrdiff_t)W + x1] : 0.0f;
                float v10 = y1 >= 0 && x0 >= 0 ? plane[y1 * (ptrdiff_t)W + x0] : 0.0f;
                float v11 = y1 >= 0 && x1 >= 0 ? plane[y1 * (ptrdiff_t)W + x1] : 0.0f;
                float a = v00 + tx * (v01 - v00), b = v10 + tx * (v11 - v10);
                out[(ch * H + y) * W + x] = a + ty * (b - a);
            }
        }
    }
}

static void op_noise(const cnn_aug *op, float *img, size_t count, uint64_t *rng)
{
    for (size_t i = 0; i < count; i++) img[i] += op->std * cnn_rng_normal(rng);
}

static void op_cutout(const cnn_aug *op, float *img, size_t c, size_t H, size_t W,
                      const float *mean, uint64_t *rng)
{
    for (size_t k = 0; k < op->count; k++) {
        ptrdiff_t cy = (ptrdiff_t)cnn_rng_below(rng, H), cx = (ptrdiff_t)cnn_rng_below(rng, W);
        ptrdiff_t half = (ptrdiff_t)(op->size / 2);
        ptrdiff_t y0 = cy - half, x0 = cx - half;
        ptrdiff_t y1 = y0 + (ptrdiff_t)op->size, x1 = x0 + (ptrdiff_t)op->size;
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > (ptrdiff_t)H) y1 = (ptrdiff_t)H;
        if (x1 > (ptrdiff_t)W) x1 = (ptrdiff_t)W;
        for (size_t ch = 0; ch < c; ch++) {
            float m = mean ? mean[ch] : 0.0f;
            float *plane = img + ch * H * W;   /* [H][W] */
            for (ptrdiff_t y = y0; y < y1; y++)
                for (ptrdiff_t x = x0; x < x1; x++) plane[y * (ptrdiff_t)W + x] = m;
        }
    }
}

/* dst [c][h][w] = normalised centre window of img [c][H][W]; pixels outside
 * the image count as 0. */
static void finish(const float *img, size_t c, size_t H, size_t W, float *dst,
                   size_t h, size_t w, const float *mean, const float *std)
{
    ptrdiff_t oy = centre_offset(H, h), ox = centre_offset(W, w);
    size_t lo, hi;
    inside_span(ox, W, w, &lo, &hi);
    for (size_t ch = 0; ch < c; ch++) {
        float m = mean ? mean[ch] : 0.0f, s = std ? std[ch] : 1.0f;
        float zero = (0.0f - m) / s;
        for (size_t y = 0; y < h; y++) {
            float *o = dst + (ch * h + y) * w;   /* [w] */
            ptrdiff_t sy = oy + (ptrdiff_t)y;
            size_t a = lo, b = hi;
            if (sy < 0 || sy >= (ptrdiff_t)H) a = b = w;
            for (size_t x = 0; x < a; x++) o[x] = zero;
            if (b > a) {
                const float *row = img + (ch * H + (size_t)sy) * W;   /* [W] */
                for (size_t x = a; x < b; x++) o[x] = (row[ox + (ptrdiff_t)x] - m) / s;
            }
            for (size_t x = b; x < w; x++) o[x] = zero;
        }
    }
}

void cnn_augment(const cnn_aug *ops, size_t nops, const uint8_t *src, size_t c,
                 size_t sh, size_t sw, float *dst, size_t h, size_t w,
                 const float *mean, const float *std, uint64_t *rng, float *scratch)
{
    assert(c > 0 && sh > 0 && sw > 0 && h > 0 && w > 0 && "augment needs non-empty images");
    size_t half = cnn_augment_scratch(ops, nops, c, sh, sw, h, w) / 2;
    float *cur = scratch, *other = scratch + half;   /* [c][H][W] each, H*W <= half/c */
    size_t H = sh, W = sw;
    for (size_t i = 0; i < c * sh * sw; i++) cur[i] = (float)src[i] / 255.0f;

    for (size_t k = 0; k < nops; k++) {
        const cnn_aug *op = &ops[k];
        int swap = 0;
        switch (op->kind) {
        case CNN_AUG_CROP:
            op_crop(op, cur, c, H, W, other, h, w, rng);
            H = h, W = w, swap = 1;
            break;
        case CNN_AUG_RESIZED_CROP:
            op_resized_crop(op, cur, c, H, W, other, h, w, rng);
            H = h, W = w, swap = 1;
            break;
        case CNN_AUG_FLIP: op_flip(op, cur, c, H, W, rng); break;
        case CNN_AUG_JITTER: op_jitter(op, cur, c, H * W, rng); break;
        case CNN_AUG_ROTATE:
            op_rotate(op, cur, c, H, W, other, rng);
            swap = 1;
            break;
        case CNN_AUG_NOISE: op_noise(op, cur, c * H * W, rng); break;
        case CNN_AUG_CUTOUT: op_cutout(op, cur, c, H, W, mean, rng); break;
        default: assert(!"unknown cnn_aug_kind"); break;
        }
        if (swap) {
            float *t = cur;
            cur = other;
            other = t;
        }
    }
    finish(cur, c, H, W, dst, h, w, mean, std);
}

void cnn_center(const uint8_t *src, size_t c, size_t sh, size_t sw, float *dst,
                size_t h, size_t w, const float *mean, const float *std)
{
    ptrdiff_t oy = centre_offset(sh, h), ox = centre_offset(sw, w);
    size_t lo, hi;
    inside_span(ox, sw, w, &lo, &hi);
    for (size_t ch = 0; ch < c; ch++) {
        float m = mean ? mean[ch] : 0.0f, s = std ? std[ch] : 1.0f;
        float zero = (0.0f - m) / s;
        for (size_t y = 0; y < h; y++) {
            float *o = dst + (ch * h + y) * w;   /* [w] */
            ptrdiff_t sy = oy + (ptrdiff_t)y;
            size_t a = lo, b = hi;
            if (sy < 0 || sy >= (ptrdiff_t)sh) a = b = w;
            for (size_t x = 0; x < a; x++) o[x] = zero;
            if (b > a) {
                const uint8_t *row = src + (ch * sh + (size_t)sy) * sw;   /* [sw] */
                for (size_t x = a; x < b; x++)
                    o[x] = ((float)row[ox + (ptrdiff_t)x] / 255.0f - m) / s;
            }
            for (size_t x = b; x < w; x++) o[x] = zero;
        }
    }
}
