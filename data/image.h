/*
 * Reading one image file: decoding with stb_image, checking it first (an
 * empty file, a file that is no image, a truncated JPEG, more pixels than
 * allowed), converting to the configured channel count, and resizing with
 * stb_image_resize to a fixed size. The result is planar uint8 [c][h][w].
 */
#ifndef CNN_IMAGE_H
#define CNN_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "../core/error.h"

typedef enum cnn_resize_mode {
    CNN_RESIZE_STRETCH,    /* scale each axis independently to h x w */
    CNN_RESIZE_CROP,       /* scale the shorter side to fit, centre crop */
    CNN_RESIZE_LETTERBOX,  /* scale the longer side to fit, pad with black */
    CNN_RESIZE_COUNT
} cnn_resize_mode;

/* Names as the config spells them ("stretch", "crop", "letterbox"). */
extern const char *const cnn_resize_names[CNN_RESIZE_COUNT];

typedef struct cnn_image_opts {
    size_t c, h, w;            /* output channels (1 grey, 2 grey+alpha, 3 RGB,
                                  4 RGBA) and size */
    cnn_resize_mode mode;
    uint64_t max_pixels;       /* width * height above this is refused before
                                  decoding (0: no limit) */
} cnn_image_opts;

/* Decode an encoded image (JPEG, PNG including 16-bit, BMP, TGA, GIF's first
 * frame) held in memory, convert it to o->c channels (grey from colour by
 * stb_image's luma weights; alpha dropped or set opaque as needed) and resize
 * it per o->mode into out [o->c][o->h][o->w]. `name` is the file name used in
 * messages (set as e->file). Fails with CNN_ERR_FORMAT for an empty buffer,
 * an unknown format, a truncated or corrupt file and an image over
 * o->max_pixels, with a message that says which. */
cnn_status cnn_image_decode(const unsigned char *bytes, size_t len, const char *name,
                            const cnn_image_opts *o, uint8_t *out, cnn_error *e);

/* Read the file at path and decode it as above (CNN_ERR_IO when the file
 * cannot be read). */
cnn_status cnn_image_load(const char *path, const cnn_image_opts *o, uint8_t *out,
                          cnn_error *e);

/* Width, height and channel count of the file's image without decoding it
 * (what the header says). */
cnn_status cnn_image_info(const char *path, size_t *w, size_t *h, size_t *c,
                          cnn_error *e);

#endif
