/*
 * Training-time augmentation and the deterministic evaluation path, per
 * sample: a working-size uint8 image [c][sh][sw] becomes a normalised float
 * input [c][h][w]. Augmentations run in the order the config lists them,
 * on floats in [0, 1] pixel units; every random draw comes from the RNG
 * state passed in, so one state per sample gives the same sample whatever
 * thread makes it.
 */
#ifndef CNN_AUGMENT_H
#define CNN_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum cnn_aug_kind {
    CNN_AUG_CROP,          /* random crop to h x w after padding each side */
    CNN_AUG_RESIZED_CROP,  /* random area and aspect crop, resized to h x w */
    CNN_AUG_FLIP,          /* mirror with probability 1/2 per enabled axis */
    CNN_AUG_JITTER,        /* brightness, contrast, saturation, hue */
    CNN_AUG_ROTATE,        /* rotation by a uniform angle in [-deg, deg] */
    CNN_AUG_NOISE,         /* additive Gaussian noise */
    CNN_AUG_CUTOUT,        /* squares set to the channel mean (0 once normalised) */
    CNN_AUG_COUNT
} cnn_aug_kind;

/* Names as the config spells them. */
extern const char *const cnn_aug_names[CNN_AUG_COUNT];

typedef struct cnn_aug {
    cnn_aug_kind kind;
    size_t padding;            /* crop: pixels added on each side */
    int reflect;               /* crop, rotate: 1 reflect padding, 0 zeros */
    float scale[2];            /* resized_crop: area fraction range, e.g. 0.08 1 */
    float ratio[2];            /* resized_crop: aspect (w/h) range, e.g. 3/4 4/3 */
    int horizontal, vertical;  /* flip: which axes */
    float brightness, contrast, saturation, hue;   /* jitter: factor ranges
                                  1 +- x (hue: shift of +- x turns, x <= 0.5) */
    float degrees;             /* rotate: largest angle */
    float std;                 /* noise: standard deviation in [0,1] pixel units */
    size_t size, count;        /* cutout: side of each square, how many */
} cnn_aug;

/* Floats of scratch space cnn_augment needs for these ops on a [c][sh][sw]
 * source and a [c][h][w] output: room for two images of the larger size
 * (crop padding is virtual and takes no room). */
size_t cnn_augment_scratch(const cnn_aug *ops, size_t nops, size_t c, size_t sh,
                           size_t sw, size_t h, size_t w);

/* Make one training input. src [c][sh][sw] uint8 (sh >= h, sw >= w unless a
 * crop op resizes), dst [c][h][w] = (value - mean[ch]) / std[ch] where value
 * is the augmented pixel in [0,1] units. The ops run in order; a crop or
 * resized crop brings the image to h x w, and whatever size remains after
 * the last op is centre-cropped to h x w (as cnn_center does; a smaller
 * image is centred and padded with pixel value 0). mean and std hold c
 * values each, or NULL for 0 and 1. scratch has cnn_augment_scratch floats;
 * nothing is allocated. augment.c says how each op matches torchvision. */
void cnn_augment(const cnn_aug *ops, size_t nops, const uint8_t *src, size_t c,
                 size_t sh, size_t sw, float *dst, size_t h, size_t w,
                 const float *mean, const float *std, uint64_t *rng, float *scratch);

/* The evaluation path: centre crop of src [c][sh][sw] to h x w, top-left
 * at ((sh - h) / 2, (sw - w) / 2), normalised into dst [c][h][w] as
 * (p / 255 - mean[ch]) / std[ch]. A smaller source is centred and padded
 * with pixel value 0. mean, std: c values each, or NULL for 0 and 1. */
void cnn_center(const uint8_t *src, size_t c, size_t sh, size_t sw, float *dst,
                size_t h, size_t w, const float *mean, const float *std);

#endif
