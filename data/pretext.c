/*
 * Pretext-task data (see pretext.h): the sRGB <-> CIE L*a*b* conversion
 * colorization trains in, and the patch pairs of context prediction.
 *
 * The colour formulas:
 * - the sRGB transfer function of IEC 61966-2-1:1999: linear = c / 12.92
 *   up to c = 0.04045, ((c + 0.055) / 1.055)^2.4 above; and its inverse;
 * - linear sRGB to CIE XYZ: the matrix made from the standard's primaries
 *   (x, y) R 0.64 0.33, G 0.30 0.60, B 0.15 0.06 and the D65 white point
 *   0.3127 0.3290, normalised to Y = 1 for white, with more digits than the
 *   standard's rounded 4-digit table so that the inverse below is exact to
 *   float precision (the 4-digit pair round-trips only to about 1e-4);
 * - CIE 1976 L*a*b* (CIE 15:2004): L = 116 f(Y/Yn) - 16,
 *   a = 500 (f(X/Xn) - f(Y/Yn)), b = 200 (f(Y/Yn) - f(Z/Zn)), with
 *   f(t) = t^(1/3) above (6/29)^3 and t / (3 (6/29)^2) + 4/29 below, and
 *   the white (Xn, Yn, Zn) that of D65 from the same chromaticity, so sRGB
 *   white is exactly L 100, a 0, b 0.
 * Arithmetic is in double: the cube root and power lose too much in float
 * for the 1e-4 round trip.
 */
#include "pretext.h"

#include <math.h>
#include <string.h>

#include "../core/rng.h"

/* Linear sRGB -> XYZ, and its inverse, both from the primaries above. */
static const double RGB_TO_XYZ[3][3] = {
    {0.4123907993, 0.3575843394, 0.1804807884},
    {0.2126390059, 0.7151686788, 0.0721923154},
    {0.0193308187, 0.1191947798, 0.9505321522},
};
static const double XYZ_TO_RGB[3][3] = {
    {3.2409699419, -1.5373831776, -0.4986107603},
    {-0.9692436363, 1.8759675015, 0.0415550574},
    {0.0556300797, -0.2039769589, 1.0569715142},
};
/* D65 white: the row sums of RGB_TO_XYZ, so that RGB (1,1,1) maps to it. */
static const double WHITE[3] = {0.9504559271, 1.0, 1.0890577508};

/* CIE's breakpoint between the cube root and the linear toe. */
static const double DELTA = 6.0 / 29.0;

static double srgb_to_linear(double c)
{
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double linear_to_srgb(double l)
{
    return l <= 0.0031308 ? 12.92 * l : 1.055 * pow(l, 1.0 / 2.4) - 0.055;
}

static double lab_f(double t)
{
    return t > DELTA * DELTA * DELTA ? cbrt(t) : t / (3.0 * DELTA * DELTA) + 4.0 / 29.0;
}

static double lab_f_inverse(double f)
{
    return f > DELTA ? f * f * f : 3.0 * DELTA * DELTA * (f - 4.0 / 29.0);
}

static float clamp01(double v)
{
    return v < 0.0 ? 0.0f : v > 1.0 ? 1.0f : (float)v;
}

void cnn_rgb_to_lab(const float rgb[3], float lab[3])
{
    double lin[3], f[3];
    for (int i = 0; i < 3; i++) lin[i] = srgb_to_linear(rgb[i]);
    for (int i = 0; i < 3; i++) {
        double xyz = RGB_TO_XYZ[i][0] * lin[0] + RGB_TO_XYZ[i][1] * lin[1]
                     + RGB_TO_XYZ[i][2] * lin[2];
        f[i] = lab_f(xyz / WHITE[i]);
    }
    lab[0] = (float)(116.0 * f[1] - 16.0);
    lab[1] = (float)(500.0 * (f[0] - f[1]));
    lab[2] = (float)(200.0 * (f[1] - f[2]));
}

void cnn_lab_to_rgb(const float lab[3], float rgb[3])
{
    double fy = (lab[0] + 16.0) / 116.0;
    double f[3] = {fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0}, xyz[3];
    for (int i = 0; i < 3; i++) xyz[i] = WHITE[i] * lab_f_inverse(f[i]);
    for (int i = 0; i < 3; i++) {
        double lin = XYZ_TO_RGB[i][0] * xyz[0] + XYZ_TO_RGB[i][1] * xyz[1]
                     + XYZ_TO_RGB[i][2] * xyz[2];
        /* out-of-gamut colours give negative linear values: clamp first,
         * since pow of a negative number is NaN */
        rgb[i] = clamp01(linear_to_srgb(lin < 0.0 ? 0.0 : lin));
    }
}

/* The scales that bring L and ab to about [-1,1] for the network. */
static const float L_HALF = 50.0f, AB_SCALE = 110.0f;

void cnn_colorize_split(const float *rgb, size_t hw, float *grey, float *ab)
{
    for (size_t i = 0; i < hw; i++) {
        float px[3] = {rgb[i], rgb[hw + i], rgb[2 * hw + i]}, lab[3];
        cnn_rgb_to_lab(px, lab);
        grey[i] = lab[0] / L_HALF - 1.0f;
        ab[i] = lab[1] / AB_SCALE;
        ab[hw + i] = lab[2] / AB_SCALE;
    }
}

void cnn_colorize_join(const float *grey, const float *ab, size_t hw, float *rgb)
{
    for (size_t i = 0; i < hw; i++) {
        float lab[3] = {(grey[i] + 1.0f) * L_HALF, ab[i] * AB_SCALE, ab[hw + i] * AB_SCALE};
        float px[3];
        cnn_lab_to_rgb(lab, px);
        for (size_t ch = 0; ch < 3; ch++) rgb[ch * hw + i] = px[ch];
    }
}

size_t cnn_context_min_side(const cnn_context_opts *o)
{
    return 3 * o->patch + 2 * o->gap + 2 * o->jitter;
}

/* Copy the patch x patch window at (y, x) of img [c][h][w] to dst
 * [c][patch][patch]. */
static void cut(const float *img, size_t c, size_t h, size_t w, size_t y, size_t x,
                size_t patch, float *dst)
{
    for (size_t ch = 0; ch < c; ch++)
        for (size_t r = 0; r < patch; r++)
            memcpy(dst + (ch * patch + r) * patch, img + (ch * h + y + r) * w + x,
                   patch * sizeof *dst);
}

/* A cell's jittered top-left corner along one axis: the grid starts at
 * `origin`, cell k's unjittered corner is jitter + k (patch + gap) past it,
 * and the jitter moves it by -jitter..jitter, so it stays inside the grid's
 * 3 patch + 2 gap + 2 jitter. */
static size_t cell_corner(size_t origin, size_t k, const cnn_context_opts *o, uint64_t *rng)
{
    size_t shift = (size_t)cnn_rng_below(rng, 2 * o->jitter + 1);
    return origin + k * (o->patch + o->gap) + shift;
}

int cnn_context_pair(const float *img, size_t c, size_t h, size_t w,
                     const cnn_context_opts *o, uint64_t *rng, float *first, float *second)
{
    size_t side = cnn_context_min_side(o);
    if (o->patch == 0 || h < side || w < side) return -1;
    size_t oy = (size_t)cnn_rng_below(rng, h - side + 1);
    size_t ox = (size_t)cnn_rng_below(rng, w - side + 1);
    int label = (int)cnn_rng_below(rng, 8);
    /* the label skips the centre, cell 4 of the row-major 3x3 grid */
    size_t cell = label < 4 ? (size_t)label : (size_t)label + 1;
    size_t y1 = cell_corner(oy, 1, o, rng), x1 = cell_corner(ox, 1, o, rng);
    size_t y2 = cell_corner(oy, cell / 3, o, rng), x2 = cell_corner(ox, cell % 3, o, rng);
    cut(img, c, h, w, y1, x1, o->patch, first);
    cut(img, c, h, w, y2, x2, o->patch, second);
    return label;
}
