/*
 * Writes the image fixtures that tests/test_images.c reads into the folder
 * given as its argument (which must exist):
 *
 *   folders/{bird,cat,dog}/   folder per class: 8x6 PNG, JPG, BMP, TGA, a GIF,
 *                             upper-case extensions; hidden files, a hidden
 *                             folder, notes.txt and a root readme ignored
 *   flat/                     Kaggle layout: cat.1.jpg, dog.10.jpg, ...
 *   lists/                    list files: class names with paths relative
 *                             to the list (one with a space), class indices,
 *                             a missing path on line 3, a one-word line
 *   chan/                     2x2 grey, grey+alpha, RGB, RGBA PNGs with
 *                             known values; a 16-bit RGB PNG made by hand
 *   resize/                   4x2 and 2x4 half-black half-white, 8x6 flat grey
 *   bad/                      truncated JPEG, zero-byte .jpg, text named
 *                             .jpg, a 300x300 PNG (for max_pixels)
 *   emptyclass/{cat,dog}/     dog holds only notes.txt
 *   empty/                    no images at all
 *   mixed/{a,b,c}/            40 8x6 PNGs per class with known pixels, and
 *                             three bad files among them
 *   idx/                      IDX images (3) and labels (2) that disagree
 *
 * Run by the test itself; scripts/make-image-fixtures.sh runs it by hand.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

static const char *out_dir;
static int failures;

/* out_dir/rel in a static buffer (one path at a time). */
static const char *at(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", out_dir, rel);
    return buf;
}

static void fail(const char *what, const char *rel)
{
    fprintf(stderr, "make_image_fixtures: cannot write %s: %s\n", at(rel), what);
    failures++;
}

static void make_dir(const char *rel)
{
    if (mkdir(at(rel), 0755) != 0 && errno != EEXIST) fail(strerror(errno), rel);
}

static void write_bytes(const char *rel, const void *p, size_t n)
{
    FILE *f = fopen(at(rel), "wb");
    if (!f) {
        fail(strerror(errno), rel);
        return;
    }
    int ok = n == 0 || fwrite(p, 1, n, f) == n;
    if (fclose(f) != 0 || !ok) fail("write error", rel);
}

/* Write pixels [h][w][c] in the format of rel's extension (any case). */
static void write_image(const char *rel, int w, int h, int c, const uint8_t *px)
{
    const char *dot = strrchr(rel, '.');
    char ext[8] = "";
    for (size_t i = 0; dot && dot[i + 1] && i < sizeof ext - 1; i++)
        ext[i] = (char)(dot[i + 1] | 0x20);
    int ok;
    if (strcmp(ext, "png") == 0) ok = stbi_write_png(at(rel), w, h, c, px, w * c);
    else if (strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0)
        ok = stbi_write_jpg(at(rel), w, h, c, px, 95);
    else if (strcmp(ext, "bmp") == 0) ok = stbi_write_bmp(at(rel), w, h, c, px);
    else if (strcmp(ext, "tga") == 0) ok = stbi_write_tga(at(rel), w, h, c, px);
    else ok = 0;
    if (!ok) fail("stb_image_write failed", rel);
}

/* An 8x6 RGB image whose pixels follow from `seed`. */
static void write_8x6(const char *rel, int seed)
{
    uint8_t px[6][8][3];
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++)
            for (int c = 0; c < 3; c++)
                px[y][x][c] = (uint8_t)(seed * 7 + x * 3 + y * 11 + c * 50);
    write_image(rel, 8, 6, 3, &px[0][0][0]);
}

/* A 1x1 white GIF: one palette entry, LZW codes clear, 0, end. */
static void write_gif(const char *rel)
{
    static const uint8_t gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0,
        0xff, 0xff, 0xff, 0, 0, 0,                 /* palette: white, black */
        ',', 0, 0, 0, 0, 1, 0, 1, 0, 0,            /* image descriptor */
        2, 2, 0x44, 0x01, 0, ';'};
    write_bytes(rel, gif, sizeof gif);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Append a PNG chunk (length, type, data, CRC of type and data). */
static size_t png_chunk(uint8_t *out, const char *type, const uint8_t *data, size_t n)
{
    put32(out, (uint32_t)n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    put32(out + 8 + n, (uint32_t)crc32(0, out + 4, (uInt)(n + 4)));
    return n + 12;
}

/* A 2x1 16-bit RGB PNG: (0x0000, 0x8000, 0xFFFF), (0x1234, 0xABCD, 0x00FF);
 * 8 bits each keeps the high byte: (0, 128, 255), (0x12, 0xAB, 0x00). */
static void write_png16(const char *rel)
{
    static const uint16_t v[2][3] = {{0x0000, 0x8000, 0xFFFF}, {0x1234, 0xABCD, 0x00FF}};
    uint8_t raw[1 + 2 * 3 * 2];                 /* filter byte + one row */
    raw[0] = 0;
    for (int x = 0; x < 2; x++)
        for (int c = 0; c < 3; c++) {
            raw[1 + (x * 3 + c) * 2] = (uint8_t)(v[x][c] >> 8);
            raw[2 + (x * 3 + c) * 2] = (uint8_t)v[x][c];
        }
    uint8_t z[128];
    uLongf zn = sizeof z;
    if (compress(z, &zn, raw, sizeof raw) != Z_OK) {
        fail("zlib compress failed", rel);
        return;
    }
    uint8_t ihdr[13] = {0};
    put32(ihdr, 2);
    put32(ihdr + 4, 1);
    ihdr[8] = 16;                               /* bit depth */
    ihdr[9] = 2;                                /* colour type: RGB */
    uint8_t png[512];
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = sizeof sig;
    memcpy(png, sig, n);
    n += png_chunk(png + n, "IHDR", ihdr, sizeof ihdr);
    n += png_chunk(png + n, "IDAT", z, zn);
    n += png_chunk(png + n, "IEND", NULL, 0);
    write_bytes(rel, png, n);
}

static void collect(void *ctx, void *data, int size)
{
    struct { uint8_t *p; size_t n, cap; } *b = ctx;
    if (b->n + (size_t)size > b->cap) return;
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

/* A 64x64 noisy JPEG cut in half: the cut falls in the entropy-coded data,
 * well after the headers, so no end-of-image marker is left. */
static void write_truncated_jpeg(const char *rel)
{
    static uint8_t px[64][64][3], buf[1 << 16];
    struct { uint8_t *p; size_t n, cap; } b = {buf, 0, sizeof buf};
    uint32_t s = 12345;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (int c = 0; c < 3; c++) {
                s = s * 1664525u + 1013904223u;
                px[y][x][c] = (uint8_t)(s >> 24);
            }
    if (!stbi_write_jpg_to_func(collect, &b, 64, 64, 3, px, 90) || b.n < 4) {
        fail("stb_image_write failed", rel);
        return;
    }
    write_bytes(rel, buf, b.n / 2);
}

static void write_idx(const char *rel, uint32_t magic, const uint32_t *dims,
                      size_t ndim, size_t nbytes)
{
    uint8_t buf[256] = {0};
    put32(buf, magic);
    for (size_t d = 0; d < ndim; d++) put32(buf + 4 + 4 * d, dims[d]);
    for (size_t i = 0; i < nbytes; i++) buf[4 + 4 * ndim + i] = (uint8_t)i;
    write_bytes(rel, buf, 4 + 4 * ndim + nbytes);
}

static void folders(void)
{
    static const char *const dirs[] = {"folders", "folders/bird", "folders/cat",
                                       "folders/dog", "folders/.hidden"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) make_dir(dirs[i]);
    write_gif("folders/bird/w.gif");
    write_8x6("folders/bird/v.png", 1);
    write_8x6("folders/cat/a.png", 2);
    write_8x6("folders/cat/B.JPG", 3);
    write_8x6("folders/cat/c.bmp", 4);
    write_8x6("folders/cat/.hidden.png", 5);
    write_8x6("folders/dog/x.TGA", 6);
    write_8x6("folders/dog/y.jpeg", 7);
    write_8x6("folders/dog/Z.PNG", 8);
    write_bytes("folders/dog/notes.txt", "not an image\n", 13);
    write_8x6("folders/.hidden/h.png", 9);
    write_bytes("folders/readme.txt", "ignored\n", 8);
}

static void flat(void)
{
    make_dir("flat");
    write_8x6("flat/cat.1.jpg", 10);
    write_8x6("flat/cat.2.png", 11);
    write_8x6("flat/dog.1.png", 12);
    write_8x6("flat/dog.10.bmp", 13);
    write_8x6("flat/dog.2.PNG", 14);
    write_8x6("flat/.dog.3.png", 15);
    write_bytes("flat/notes.txt", "not an image\n", 13);
}

static void lists(void)
{
    make_dir("lists");
    make_dir("lists/sub");
    write_8x6("lists/sub/my image.png", 16);
    static const char names[] =
        "# path label\n"
        "../folders/cat/a.png cat\n"
        "\n"
        "  ../flat/dog.1.png\tdog  \r\n"
        "sub/my image.png bird\n"
        "../folders/cat/c.bmp cat\n";
    write_bytes("lists/names.txt", names, sizeof names - 1);
    static const char index[] =
        "../folders/cat/a.png 2\n"
        "../folders/dog/x.TGA 0\n";
    write_bytes("lists/index.txt", index, sizeof index - 1);
    static const char missing[] =
        "../folders/cat/a.png cat\n"
        "# the next file is not there\n"
        "  ../folders/cat/missing.png cat\n";
    write_bytes("lists/missing.txt", missing, sizeof missing - 1);
    static const char oneword[] = "../folders/cat/a.png\n";
    write_bytes("lists/oneword.txt", oneword, sizeof oneword - 1);
}

static void channels(void)
{
    make_dir("chan");
    static const uint8_t grey[4] = {0, 64, 128, 255};
    static const uint8_t ga[8] = {10, 255, 20, 128, 30, 0, 40, 50};
    static const uint8_t rgb[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    static const uint8_t rgba[16] = {255, 0, 0, 255, 0, 255, 0, 128,
                                     0, 0, 255, 0, 10, 20, 30, 40};
    write_image("chan/grey.png", 2, 2, 1, grey);
    write_image("chan/ga.png", 2, 2, 2, ga);
    write_image("chan/rgb.png", 2, 2, 3, rgb);
    write_image("chan/rgba.png", 2, 2, 4, rgba);
    write_png16("chan/rgb16.png");
}

static void resize(void)
{
    make_dir("resize");
    static const uint8_t wide[2][4] = {{0, 0, 255, 255}, {0, 0, 255, 255}};
    static const uint8_t tall[4][2] = {{0, 0}, {0, 0}, {255, 255}, {255, 255}};
    uint8_t flat[6][8];
    memset(flat, 100, sizeof flat);
    write_image("resize/wide.png", 4, 2, 1, &wide[0][0]);
    write_image("resize/tall.png", 2, 4, 1, &tall[0][0]);
    write_image("resize/flat.png", 8, 6, 1, &flat[0][0]);
}

static void bad(void)
{
    make_dir("bad");
    write_truncated_jpeg("bad/truncated.jpg");
    write_bytes("bad/empty.jpg", "", 0);
    write_bytes("bad/text.jpg", "this is not an image\n", 21);
    static uint8_t big[300][300];
    write_image("bad/big.png", 300, 300, 1, &big[0][0]);
    write_8x6("bad/good.jpg", 17);
}

static void empty_sets(void)
{
    make_dir("emptyclass");
    make_dir("emptyclass/cat");
    make_dir("emptyclass/dog");
    write_8x6("emptyclass/cat/a.png", 18);
    write_bytes("emptyclass/dog/notes.txt", "no images here\n", 15);
    make_dir("empty");
    write_bytes("empty/notes.txt", "no images here\n", 15);
}

static void mixed(void)
{
    static const char *const cls[3] = {"a", "b", "c"};
    make_dir("mixed");
    for (int k = 0; k < 3; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "mixed/%s", cls[k]);
        make_dir(rel);
        for (int i = 0; i < 40; i++) {
            snprintf(rel, sizeof rel, "mixed/%s/%03d.png", cls[k], i);
            write_8x6(rel, 40 * k + i);
        }
    }
    static uint8_t trunc[1 << 16];
    FILE *f = fopen(at("bad/truncated.jpg"), "rb");
    size_t n = f ? fread(trunc, 1, sizeof trunc, f) : 0;
    if (f) fclose(f);
    if (n == 0) fail("cannot read bad/truncated.jpg back", "mixed/a/017-trunc.jpg");
    write_bytes("mixed/a/017-trunc.jpg", trunc, n);
    write_bytes("mixed/b/005-empty.jpg", "", 0);
    write_bytes("mixed/c/030-text.jpg", "this is not an image\n", 21);
}

static void idx(void)
{
    make_dir("idx");
    static const uint32_t idims[3] = {3, 2, 2}, ldims[1] = {2};
    write_idx("idx/images-idx3-ubyte", 0x00000803u, idims, 3, 12);
    write_idx("idx/labels-idx1-ubyte", 0x00000801u, ldims, 1, 2);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_image_fixtures OUTDIR\n");
        return 2;
    }
    out_dir = argv[1];
    folders();
    flat();
    lists();
    channels();
    resize();
    bad();
    empty_sets();
    mixed();
    idx();
    return failures ? 1 : 0;
}
