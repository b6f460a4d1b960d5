/*
 * The data side of pretext tasks, self-supervised training signals made
 * from unlabelled images: colorization (predict a grey image's colour, in
 * CIE L*a*b*), and context prediction (say where a patch sits relative to
 * another). Contrastive learning's two views per image come from the
 * loader (cnn_loader_opts.views in dataset.h).
 */
#ifndef CNN_PRETEXT_H
#define CNN_PRETEXT_H

#include <stddef.h>
#include <stdint.h>

/* sRGB in [0,1] (D65) to CIE L*a*b*: L in [0,100], a and b roughly
 * [-128,127]; and back, the RGB clamped to [0,1] since not every L*a*b*
 * colour is an sRGB one. White is L 100, a 0, b 0 exactly. */
void cnn_rgb_to_lab(const float rgb[3], float lab[3]);
void cnn_lab_to_rgb(const float lab[3], float rgb[3]);

/* Colorization's pairing: from an RGB image rgb [3][hw] of [0,1] values,
 * the network input grey [hw] = L / 50 - 1 (in [-1,1]) and the target
 * ab [2][hw] = a / 110, b / 110 (about [-1,1]). */
void cnn_colorize_split(const float *rgb, size_t hw, float *grey, float *ab);

/* And back: the RGB image rgb [3][hw] of a grey input grey [hw] and a
 * predicted ab [2][hw], in the units cnn_colorize_split gives. */
void cnn_colorize_join(const float *grey, const float *ab, size_t hw, float *rgb);

/* Context prediction (Doersch, Gupta and Efros, "Unsupervised visual
 * representation learning by context prediction", ICCV 2015): a 3x3 grid
 * of patch x patch cells with `gap` pixels between cells, each patch moved
 * by up to `jitter` pixels in x and y; the grid is placed at a random
 * position inside the image. The first patch is the centre cell, the
 * second one of its 8 neighbours; the label is that neighbour's index 0..7
 * in row-major order of the 3x3 grid with the centre left out (0 top-left,
 * 1 top, 2 top-right, 3 left, 4 right, 5 bottom-left, 6 bottom,
 * 7 bottom-right). With gap >= 2 jitter the two patches never overlap, so
 * the network cannot match them by shared pixels. */
typedef struct cnn_context_opts {
    size_t patch, gap, jitter;
} cnn_context_opts;

/* The smallest image side the grid fits in: 3 patch + 2 gap + 2 jitter. */
size_t cnn_context_min_side(const cnn_context_opts *o);

/* Cut a pair from img [c][h][w] into first and second ([c][patch][patch]
 * each); the draws come from *rng (core/rng.h), which advances. Returns
 * the label 0..7, or -1 (nothing drawn or written) when patch is 0 or h or
 * w is below cnn_context_min_side. */
int cnn_context_pair(const float *img, size_t c, size_t h, size_t w,
                     const cnn_context_opts *o, uint64_t *rng, float *first, float *second);

#endif
