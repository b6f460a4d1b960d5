/*
 * Fuzz target: decoding one image through the project's wrapper
 * (cnn_image_decode: the truncation checks, the pixel limit read from the
 * header, stb_image, channel conversion and the three resize modes).
 *
 * Input layout:
 *   byte 0    bits 0-1: output channels - 1; bits 2-3: resize mode (mod 3)
 *   byte 1    output height - 1 (mod 32)
 *   byte 2    output width - 1 (mod 32)
 *   then      the encoded file (JPEG, PNG, BMP, TGA, GIF)
 * The pixel limit is FUZZ_MAX_PIXELS, as data.max_pixels would set it: an
 * image whose header claims more is refused before its pixels are decoded.
 * The output buffer is exactly [c][h][w], so ASan sees any write past it.
 */
#include "fuzz.h"

#include <string.h>

#include "image.h"

#define FUZZ_MAX_PIXELS ((uint64_t)1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    cnn_image_opts o = {
        .c = 1 + (data[0] & 3),
        .mode = (cnn_resize_mode)(((unsigned)data[0] >> 2 & 3) % CNN_RESIZE_COUNT),
        .h = 1 + data[1] % 32,
        .w = 1 + data[2] % 32,
        .max_pixels = FUZZ_MAX_PIXELS,
    };
    size_t n = o.c * o.h * o.w;
    uint8_t *out = malloc(n);   /* [c][h][w] */
    if (!out) return 0;
    cnn_error e = {0};
    if (cnn_image_decode(data + 3, size - 3, "fuzz.img", &o, out, &e) != CNN_OK
        && !e.msg[0]) {
        fprintf(stderr, "fuzz_image: failed without a message\n");
        abort();
    }
    free(out);
    return 0;
}
