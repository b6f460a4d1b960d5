/*
 * Image files and where they come from: data/image.c and data/source.c.
 * The fixtures are written by tests/make_image_fixtures (its path comes in
 * $MAKE_FIXTURES) into a fresh folder under /tmp, then read back:
 *   - channel conversions give the exact values stb_image defines (grey
 *     replicated, alpha dropped or opaque, luma (77 R + 150 G + 29 B) >> 8,
 *     16-bit PNG samples keep their high byte);
 *   - each resize mode on images small enough to check by hand;
 *   - folder, flat and list-file listings: order, classes, labels, ignored
 *     files, relative paths;
 *   - the stratified split: deterministic, disjoint, complete, per class;
 *   - every bad input fails with its status, message and file (and line);
 *   - decoding a folder with bad files: skipped and reported in order, or
 *     the first one failing; the same pixels with 1 and 3 threads and
 *     through a cache file.
 */
#include "harness.h"
#include "dataset.h"
#include "image.h"
#include "source.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

/* dir/rel, in one of a few rotating buffers. */
static const char *fx(const char *rel)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

static int make_fixtures(void)
{
    const char *prog = getenv("MAKE_FIXTURES");
    if (!prog) {
        fprintf(stderr, "MAKE_FIXTURES is not set (run through meson test)\n");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execl(prog, prog, dir, (char *)NULL);
        perror(prog);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Remove path and everything under it (the fixtures nest folders). */
static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *ent;
        char p[1024];
        while (d && (ent = readdir(d))) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
            snprintf(p, sizeof p, "%s/%s", path, ent->d_name);
            remove_tree(p);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(1 << 16);
    *n = 0;
    if (f && buf) *n = fread(buf, 1, 1 << 16, f);
    if (f) fclose(f);
    return buf;
}

static int write_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int bytes_equal(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "%s: byte %zu is %u, expected %u\n", what, i, got[i], want[i]);
            return 0;
        }
    return 1;
}

/* Load fixture rel at c channels and h x w, and compare with want. */
static void check_load(const char *rel, size_t c, size_t h, size_t w,
                       cnn_resize_mode mode, const uint8_t *want)
{
    uint8_t out[4 * 16 * 16];
    cnn_image_opts o = {c, h, w, mode, 0};
    cnn_error e;
    cnn_error_clear(&e);
    cnn_status st = cnn_image_load(fx(rel), &o, out, &e);
    CHECK_MSG(st == CNN_OK, "%s: %s", rel, e.msg);
    if (st != CNN_OK) return;
    char what[128];
    snprintf(what, sizeof what, "%s as %zux%zux%zu %s", rel, c, h, w,
             cnn_resize_names[mode]);
    CHECK_MSG(bytes_equal(out, want, c * h * w, what), "%s differs", what);
}

static void test_channels(void)
{
    static const uint8_t grey3[12] = {0, 64, 128, 255, 0, 64, 128, 255, 0, 64, 128, 255};
    static const uint8_t grey1[4] = {0, 64, 128, 255};
    static const uint8_t grey2[8] = {0, 64, 128, 255, 255, 255, 255, 255};
    static const uint8_t grey4[16] = {0, 64, 128, 255, 0, 64, 128, 255,
                                      0, 64, 128, 255, 255, 255, 255, 255};
    check_load("chan/grey.png", 3, 2, 2, CNN_RESIZE_STRETCH, grey3);
    check_load("chan/grey.png", 1, 2, 2, CNN_RESIZE_STRETCH, grey1);
    check_load("chan/grey.png", 2, 2, 2, CNN_RESIZE_STRETCH, grey2);
    check_load("chan/grey.png", 4, 2, 2, CNN_RESIZE_STRETCH, grey4);

    static const uint8_t ga1[4] = {10, 20, 30, 40};
    static const uint8_t ga3[12] = {10, 20, 30, 40, 10, 20, 30, 40, 10, 20, 30, 40};
    static const uint8_t ga4[16] = {10, 20, 30, 40, 10, 20, 30, 40,
                                    10, 20, 30, 40, 255, 128, 0, 50};
    check_load("chan/ga.png", 1, 2, 2, CNN_RESIZE_STRETCH, ga1);
    check_load("chan/ga.png", 3, 2, 2, CNN_RESIZE_STRETCH, ga3);
    check_load("chan/ga.png", 4, 2, 2, CNN_RESIZE_STRETCH, ga4);

    static const uint8_t rgb3[12] = {255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30};
    /* (77 r + 150 g + 29 b) >> 8 */
    static const uint8_t rgb1[4] = {76, 149, 28, 18};
    static const uint8_t rgb4[16] = {255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30,
                                     255, 255, 255, 255};
    check_load("chan/rgb.png", 3, 2, 2, CNN_RESIZE_STRETCH, rgb3);
    check_load("chan/rgb.png", 1, 2, 2, CNN_RESIZE_STRETCH, rgb1);
    check_load("chan/rgb.png", 4, 2, 2, CNN_RESIZE_STRETCH, rgb4);

    static const uint8_t rgba4[16] = {255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30,
                                      255, 128, 0, 40};
    check_load("chan/rgba.png", 3, 2, 2, CNN_RESIZE_STRETCH, rgb3);
    check_load("chan/rgba.png", 4, 2, 2, CNN_RESIZE_STRETCH, rgba4);
    check_load("chan/rgba.png", 1, 2, 2, CNN_RESIZE_STRETCH, rgb1);

    /* 16-bit (0x0000, 0x8000, 0xFFFF), (0x1234, 0xABCD, 0x00FF) */
    static const uint8_t png16[6] = {0x00, 0x12, 0x80, 0xAB, 0xFF, 0x00};
    check_load("chan/rgb16.png", 3, 1, 2, CNN_RESIZE_STRETCH, png16);

    /* The GIF: one white pixel, any size. */
    uint8_t white[3 * 6 * 8];
    memset(white, 255, sizeof white);
    check_load("folders/bird/w.gif", 3, 6, 8, CNN_RESIZE_CROP, white);

    size_t w = 0, h = 0, c = 0;
    cnn_error e;
    cnn_error_clear(&e);
    CHECK(cnn_image_info(fx("chan/ga.png"), &w, &h, &c, &e) == CNN_OK);
    CHECK(w == 2 && h == 2 && c == 2);
    CHECK(cnn_image_info(fx("bad/big.png"), &w, &h, &c, &e) == CNN_OK);
    CHECK(w == 300 && h == 300 && c == 1);
}

static void test_resize(void)
{
    CHECK(strcmp(cnn_resize_names[CNN_RESIZE_STRETCH], "stretch") == 0);
    CHECK(strcmp(cnn_resize_names[CNN_RESIZE_CROP], "crop") == 0);
    CHECK(strcmp(cnn_resize_names[CNN_RESIZE_LETTERBOX], "letterbox") == 0);

    /* wide.png: 4x2, columns 0 0 255 255. */
    static const uint8_t wide[8] = {0, 0, 255, 255, 0, 0, 255, 255};
    static const uint8_t wide_crop[4] = {0, 255, 0, 255};          /* centre */
    static const uint8_t wide_box[16] = {0, 0, 0, 0, 0, 0, 255, 255,
                                         0, 0, 255, 255, 0, 0, 0, 0};
    check_load("resize/wide.png", 1, 2, 4, CNN_RESIZE_STRETCH, wide);
    check_load("resize/wide.png", 1, 2, 2, CNN_RESIZE_CROP, wide_crop);
    check_load("resize/wide.png", 1, 4, 4, CNN_RESIZE_LETTERBOX, wide_box);

    /* tall.png: 2x4, rows 0 0 255 255. */
    static const uint8_t tall_crop[4] = {0, 0, 255, 255};          /* rows 1, 2 */
    static const uint8_t tall_box[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 255, 255, 0, 0, 255, 255, 0};
    check_load("resize/tall.png", 1, 2, 2, CNN_RESIZE_CROP, tall_crop);
    check_load("resize/tall.png", 1, 4, 4, CNN_RESIZE_LETTERBOX, tall_box);

    /* Halving the wide image's width: left dark, right bright. */
    uint8_t out[3 * 16 * 16];
    cnn_image_opts o = {1, 1, 2, CNN_RESIZE_STRETCH, 0};
    cnn_error e;
    cnn_error_clear(&e);
    CHECK(cnn_image_load(fx("resize/wide.png"), &o, out, &e) == CNN_OK);
    CHECK_MSG(out[0] < 40 && out[1] > 215, "4x2 -> 2x1 gave %u %u", out[0], out[1]);

    /* flat.png: 8x6 of 100. Resampling keeps a flat image flat; letterbox
     * 8x6 into 4x4 is 4x3 at the top (offset (4-3)/2 = 0) and one black
     * row; into 16x16, 16x12 with two black rows above and below. */
    static const struct { size_t h, w; cnn_resize_mode mode; size_t y0, y1; } cases[] = {
        {3, 4, CNN_RESIZE_STRETCH, 0, 3}, {5, 5, CNN_RESIZE_STRETCH, 0, 5},
        {3, 3, CNN_RESIZE_CROP, 0, 3}, {16, 9, CNN_RESIZE_CROP, 0, 16},
        {4, 4, CNN_RESIZE_LETTERBOX, 0, 3}, {16, 16, CNN_RESIZE_LETTERBOX, 2, 14},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cnn_image_opts ok = {3, cases[k].h, cases[k].w, cases[k].mode, 0};
        memset(out, 7, sizeof out);
        CHECK(cnn_image_load(fx("resize/flat.png"), &ok, out, &e) == CNN_OK);
        int good = 1;
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < ok.h; y++)
                for (size_t x = 0; x < ok.w; x++) {
                    uint8_t v = out[(c * ok.h + y) * ok.w + x];
                    int inside = y >= cases[k].y0 && y < cases[k].y1;
                    if (inside ? (v < 99 || v > 101) : v != 0) good = 0;
                }
        CHECK_MSG(good, "flat 8x6 -> %zux%zu %s is wrong", ok.w, ok.h,
                  cnn_resize_names[ok.mode]);
    }
}

/* Expect path to fail with status s, a message holding sub, e.file == path. */
static void check_bad(cnn_status got, const cnn_error *e, cnn_status s,
                      const char *path, const char *sub)
{
    CHECK_MSG(got == s, "%s: status %d, expected %d (%s)", path, got, s, e->msg);
    CHECK_CONTAINS(e->msg, sub);
    CHECK_MSG(strcmp(e->file, path) == 0, "e.file is '%s', expected '%s'", e->file, path);
}

static void make_bmp_2x2(unsigned char bmp[54 + 16], int height);

static void test_bad_images(void)
{
    uint8_t out[3 * 8 * 8];
    cnn_image_opts o = {3, 8, 8, CNN_RESIZE_CROP, 10000};
    cnn_error e;
    const char *p;

    cnn_error_clear(&e);
    p = fx("bad/truncated.jpg");
    check_bad(cnn_image_load(p, &o, out, &e), &e, CNN_ERR_FORMAT, p,
              "truncated JPEG (no end-of-image marker)");
    cnn_error_clear(&e);
    p = fx("bad/empty.jpg");
    check_bad(cnn_image_load(p, &o, out, &e), &e, CNN_ERR_FORMAT, p, "empty file (0 bytes)");
    cnn_error_clear(&e);
    p = fx("bad/text.jpg");
    check_bad(cnn_image_load(p, &o, out, &e), &e, CNN_ERR_FORMAT, p,
              "not an image (unknown or unsupported format)");
    cnn_error_clear(&e);
    p = fx("bad/big.png");
    check_bad(cnn_image_load(p, &o, out, &e), &e, CNN_ERR_FORMAT, p,
              "image is 300x300 = 90000 pixels, more than the limit of 10000 "
              "(data.max_pixels)");
    CHECK(strstr(e.msg, p) == NULL);              /* the CLI prints the file */
    cnn_error_clear(&e);
    p = fx("bad/nonexistent.png");
    check_bad(cnn_image_load(p, &o, out, &e), &e, CNN_ERR_IO, p, "cannot open");
    cnn_error_clear(&e);
    p = fx("chan");
    check_bad(cnn_image_load(p, &o, out, &e), &e, CNN_ERR_IO, p, "not a regular file");

    cnn_image_opts unlimited = o;
    unlimited.max_pixels = 0;
    cnn_error_clear(&e);
    CHECK(cnn_image_load(fx("bad/big.png"), &unlimited, out, &e) == CNN_OK);
    CHECK(cnn_image_load(fx("bad/good.jpg"), &o, out, &e) == CNN_OK);

    /* A PNG cut short anywhere; a PNG with a corrupt zlib stream (the
     * byte after IHDR and the IDAT header): stb_image's reason. */
    size_t n;
    unsigned char *png = read_file(fx("chan/rgb.png"), &n);
    for (size_t cut = 1; cut < n - 8; cut += 3) {
        cnn_error_clear(&e);
        check_bad(cnn_image_decode(png, n - cut, "cut.png", &o, out, &e), &e,
                  CNN_ERR_FORMAT, "cut.png", "truncated PNG (no IEND chunk)");
    }
    CHECK(memcmp(png + 37, "IDAT", 4) == 0);
    png[41] ^= 0xFF;
    cnn_error_clear(&e);
    check_bad(cnn_image_decode(png, n, "bad.png", &o, out, &e), &e,
              CNN_ERR_FORMAT, "bad.png", "cannot decode: Corrupt PNG");
    free(png);

    /* A JPEG with an APP1 segment holding an end-of-image marker (as an
     * EXIF thumbnail does): whole, it decodes; without its own final
     * marker, the one inside APP1 must not count. */
    unsigned char *jpg = read_file(fx("bad/good.jpg"), &n);
    static const unsigned char app1[] = {0xFF, 0xE1, 0x00, 0x0C, 'E', 'x', 'i', 'f',
                                         0, 0, 0xFF, 0xD8, 0xFF, 0xD9};
    unsigned char *exif = malloc(n + sizeof app1);
    memcpy(exif, jpg, 2);
    memcpy(exif + 2, app1, sizeof app1);
    memcpy(exif + 2 + sizeof app1, jpg + 2, n - 2);
    cnn_error_clear(&e);
    CHECK_MSG(cnn_image_decode(exif, n + sizeof app1, "exif.jpg", &o, out, &e) == CNN_OK,
              "exif.jpg: %s", e.msg);
    cnn_error_clear(&e);
    check_bad(cnn_image_decode(exif, n + sizeof app1 - 2, "exif.jpg", &o, out, &e), &e,
              CNN_ERR_FORMAT, "exif.jpg", "truncated JPEG");
    free(exif);
    free(jpg);

    /* Zero bytes in memory. */
    cnn_error_clear(&e);
    check_bad(cnn_image_decode((const unsigned char *)"", 0, "mem.png", &o, out, &e), &e,
              CNN_ERR_FORMAT, "mem.png", "empty file (0 bytes)");

    /* Found by fuzzing (tests/fuzz/corpus/image/crash-*): a JPEG whose
     * Huffman table claims more than 256 codes (stb_image 2.27 would write
     * past its table) and a BMP of height 0 (decoded to nothing, then
     * resized from 0 rows) are refused. */
    jpg = read_file(fx("bad/good.jpg"), &n);
    unsigned char dht[2 + 19] = {0xFF, 0xC4, 0x00, 19, 0x00};
    memset(dht + 5, 0xFF, 16);                    /* 16 x 255 codes */
    unsigned char *bad = malloc(n + sizeof dht);
    memcpy(bad, jpg, 2);
    memcpy(bad + 2, dht, sizeof dht);
    memcpy(bad + 2 + sizeof dht, jpg + 2, n - 2);
    cnn_error_clear(&e);
    check_bad(cnn_image_decode(bad, n + sizeof dht, "dht.jpg", &o, out, &e), &e,
              CNN_ERR_FORMAT, "dht.jpg",
              "corrupt JPEG (a Huffman table with more than 256 codes)");
    free(bad);
    free(jpg);
    unsigned char bmp[54 + 16];
    make_bmp_2x2(bmp, 0);
    cnn_error_clear(&e);
    check_bad(cnn_image_decode(bmp, sizeof bmp, "flat.bmp", &o, out, &e), &e,
              CNN_ERR_FORMAT, "flat.bmp", "image is 2x0: no pixels");
}

/* The offset of the n-th (from 0) segment with marker m in the JPEG b[0..len)
 * (at its FF), walking segments by their lengths and stepping over each
 * scan's entropy-coded data; len when there is none. */
static size_t jpeg_segment(const unsigned char *b, size_t len, unsigned m, int n)
{
    size_t pos = 2;                                   /* after SOI */
    while (pos + 4 <= len && b[pos] == 0xFF) {
        unsigned mk = b[pos + 1];
        if (mk == 0xD9) break;
        if (mk == m && n-- == 0) return pos;
        pos += 2 + ((size_t)b[pos + 2] << 8 | b[pos + 3]);
        if (mk != 0xDA) continue;
        while (pos + 1 < len && !(b[pos] == 0xFF && b[pos + 1] != 0x00
                                  && (b[pos + 1] < 0xD0 || b[pos + 1] > 0xD7)))
            pos++;
    }
    return len;
}

/* A scan that uses a Huffman table no DHT segment defined is refused
 * before stb_image 2.27 decodes it with its uninitialised table (found by
 * fuzzing: tests/fuzz/corpus/image/crash-jpeg-undefined-huffman-table).
 * The check must know which tables a scan uses: a progressive JPEG from
 * libjpeg (tests/fixtures/jpeg, by scripts/make-jpeg-fixture.py) names AC
 * table 0 in its first, DC-only scan before defining it, and decodes. */
static void test_undefined_huffman_table(void)
{
    cnn_image_opts o = {.c = 3, .h = 16, .w = 24, .mode = CNN_RESIZE_STRETCH};
    uint8_t out[3 * 16 * 24];
    cnn_error e = {0};
    size_t n;
    char path[512];
    const char *fixtures = getenv("FIXTURES");
    snprintf(path, sizeof path, "%s/jpeg/progressive.jpg", fixtures ? fixtures : "");
    unsigned char *prog = read_file(path, &n);
    CHECK_MSG(n > 0, "cannot read %s (FIXTURES is set by meson test)", path);
    if (n == 0) {
        free(prog);
        return;
    }
    CHECK(n > 4 && prog[0] == 0xFF && prog[1] == 0xD8);
    CHECK(jpeg_segment(prog, n, 0xC2, 0) < n);        /* progressive */
    CHECK_MSG(cnn_image_decode(prog, n, "progressive.jpg", &o, out, &e) == CNN_OK,
              "progressive.jpg: %s", e.msg);
    /* The gradient: red rises left to right, green top to bottom, blue 128
     * (JPEG quality 90 keeps it within a few levels). */
    int near = abs(out[0] - 0) < 12 && abs(out[16 * 24 - 1] - 255) < 12
            && abs(out[16 * 24] - 0) < 12 && abs(out[2 * 16 * 24 - 1] - 255) < 12
            && abs(out[2 * 16 * 24 + 5 * 24 + 7] - 128) < 12;
    CHECK_MSG(near, "progressive.jpg decoded to the wrong pixels (R %d..%d, G %d..%d, "
              "B %d)", out[0], out[16 * 24 - 1], out[16 * 24], out[2 * 16 * 24 - 1],
              out[2 * 16 * 24 + 5 * 24 + 7]);

    /* Its first DHT for AC table 0 removed: the AC scan after it uses an
     * undefined table. */
    size_t at = n;
    for (int k = 0; (at = jpeg_segment(prog, n, 0xC4, k)) < n; k++)
        if (prog[at + 4] == 0x10) break;
    CHECK_MSG(at < n, "progressive.jpg has no DHT for AC table 0");
    if (at < n) {
        size_t seg = 2 + ((size_t)prog[at + 2] << 8 | prog[at + 3]);
        unsigned char *cut = malloc(n);
        memcpy(cut, prog, at);
        memcpy(cut + at, prog + at + seg, n - at - seg);
        cnn_error_clear(&e);
        check_bad(cnn_image_decode(cut, n - seg, "noac.jpg", &o, out, &e), &e,
                  CNN_ERR_FORMAT, "noac.jpg", "corrupt JPEG (a scan uses a Huffman "
                  "table that no DHT segment before it defines)");
        free(cut);
    }
    free(prog);

    /* A baseline JPEG whose scan names DC table 3, or AC table 3, for its
     * first component; only tables 0 and 1 are defined. */
    unsigned char *jpg = read_file(fx("bad/good.jpg"), &n);
    size_t sos = jpeg_segment(jpg, n, 0xDA, 0);
    CHECK(sos < n && jpg[sos + 4] == 3);               /* 3 components */
    if (sos < n) {
        static const unsigned char sel[] = {0x30, 0x03};
        for (int k = 0; k < 2; k++) {
            unsigned char keep = jpg[sos + 6];
            jpg[sos + 6] = sel[k];
            cnn_error_clear(&e);
            check_bad(cnn_image_decode(jpg, n, "table3.jpg", &o, out, &e), &e,
                      CNN_ERR_FORMAT, "table3.jpg", "corrupt JPEG (a scan uses a "
                      "Huffman table that no DHT segment before it defines)");
            size_t w, h, c;
            CHECK(write_file(fx("table3.jpg"), jpg, n) == 0);
            cnn_error_clear(&e);
            check_bad(cnn_image_info(fx("table3.jpg"), &w, &h, &c, &e), &e,
                      CNN_ERR_FORMAT, fx("table3.jpg"), "corrupt JPEG (a scan uses");
            jpg[sos + 6] = keep;
        }
        cnn_error_clear(&e);
        CHECK_MSG(cnn_image_decode(jpg, n, "good.jpg", &o, out, &e) == CNN_OK,
                  "good.jpg: %s", e.msg);
    }
    free(jpg);
}

/* A 2x2 24-bit BMP, rows stored top-down (a negative height) unless
 * height is 0: red, green / blue, white. */
static void make_bmp_2x2(unsigned char bmp[54 + 16], int height)
{
    static const unsigned char head[54] = {
        'B', 'M', 54 + 16, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0,
        40, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 24, 0,
    };
    static const unsigned char rows[16] = {0, 0, 255, 0, 255, 0, 0, 0,   /* BGR */
                                           255, 0, 0, 255, 255, 255, 0, 0};
    memcpy(bmp, head, sizeof head);
    int32_t h = height;
    for (int i = 0; i < 4; i++) bmp[22 + i] = (unsigned char)((uint32_t)h >> (8 * i));
    memcpy(bmp + 54, rows, sizeof rows);
}

/* Found by fuzzing: stb_image 2.27's header reader gives a top-down BMP's
 * height as negative; it must decode like any other. */
static void test_top_down_bmp(void)
{
    unsigned char bmp[54 + 16];
    uint8_t out[3 * 2 * 2];
    cnn_image_opts o = {3, 2, 2, CNN_RESIZE_STRETCH, 100};
    cnn_error e;
    make_bmp_2x2(bmp, -2);
    cnn_error_clear(&e);
    CHECK_MSG(cnn_image_decode(bmp, sizeof bmp, "down.bmp", &o, out, &e) == CNN_OK,
              "down.bmp: %s", e.msg);
    static const uint8_t want[12] = {255, 0, 0, 255,  0, 255, 0, 255,  0, 0, 255, 255};
    CHECK(memcmp(out, want, sizeof want) == 0);
}

/* l's paths must be dir/rel[i] and its labels want[i]. */
static void check_list(const cnn_file_list *l, size_t n, const char *const *rel,
                       const int *labels)
{
    CHECK_MSG(l->n == n, "%zu files listed, expected %zu", l->n, n);
    for (size_t i = 0; i < n && i < l->n; i++) {
        CHECK_MSG(strcmp(l->paths[i], fx(rel[i])) == 0, "file %zu is %s, expected %s",
                  i, l->paths[i], fx(rel[i]));
        CHECK_MSG(l->labels[i] == labels[i], "%s: label %d, expected %d", rel[i],
                  l->labels[i], labels[i]);
    }
}

static void check_classes(const cnn_file_list *l, size_t n, const char *const *names)
{
    CHECK_MSG(l->nclasses == n, "%zu classes, expected %zu", l->nclasses, n);
    for (size_t k = 0; k < n && k < l->nclasses; k++)
        CHECK_MSG(strcmp(l->classes[k], names[k]) == 0, "class %zu is '%s', expected '%s'",
                  k, l->classes[k], names[k]);
}

static void test_listing(void)
{
    cnn_file_list l;
    cnn_error e;

    CHECK(cnn_is_image_name("a.JPEG") && cnn_is_image_name("b.Png") &&
          cnn_is_image_name("c.gif") && cnn_is_image_name("x.y.tga"));
    CHECK(!cnn_is_image_name("a.txt") && !cnn_is_image_name("jpg") &&
          !cnn_is_image_name("a.jpg.txt") && !cnn_is_image_name("a.") &&
          !cnn_is_image_name(".png") && !cnn_is_image_name("a.jpgx"));

    /* Folder per class: byte order puts upper case first; notes.txt,
     * readme.txt, .hidden.png and the .hidden folder are left out. */
    static const char *const frel[] = {
        "folders/bird/v.png", "folders/bird/w.gif", "folders/cat/B.JPG",
        "folders/cat/a.png", "folders/cat/c.bmp", "folders/dog/Z.PNG",
        "folders/dog/x.TGA", "folders/dog/y.jpeg"};
    static const int flab[] = {0, 0, 1, 1, 1, 2, 2, 2};
    static const char *const fcls[] = {"bird", "cat", "dog"};
    cnn_error_clear(&e);
    CHECK_MSG(cnn_list_dir(fx("folders"), &l, &e) == CNN_OK, "%s", e.msg);
    check_list(&l, 8, frel, flab);
    check_classes(&l, 3, fcls);
    cnn_file_list folders = l;

    /* Every listed image decodes (PNG, JPEG, BMP, TGA, GIF). */
    cnn_decode_opts d = {{3, 6, 8, CNN_RESIZE_STRETCH, 0}, 0, 2, 0, NULL};
    cnn_dataset ds;
    cnn_decode_report r;
    cnn_error_clear(&e);
    CHECK_MSG(cnn_dataset_decode(&folders, &d, &ds, &r, &e) == CNN_OK, "%s", e.msg);
    CHECK(ds.n == 8 && r.decoded == 8 && r.skipped == 0 && ds.nclasses == 3);
    CHECK(ds.classes && strcmp(ds.classes[2], "dog") == 0);
    cnn_dataset_free(&ds);

    /* Flat: the label is the name up to its first dot. */
    static const char *const krel[] = {"flat/cat.1.jpg", "flat/cat.2.png", "flat/dog.1.png",
                                       "flat/dog.10.bmp", "flat/dog.2.PNG"};
    static const int klab[] = {0, 0, 1, 1, 1};
    static const char *const kcls[] = {"cat", "dog"};
    cnn_error_clear(&e);
    CHECK_MSG(cnn_list_dir(fx("flat"), &l, &e) == CNN_OK, "%s", e.msg);
    check_list(&l, 5, krel, klab);
    check_classes(&l, 2, kcls);

    /* Matching: flat's cat and dog become folders' 1 and 2. */
    cnn_error_clear(&e);
    CHECK_MSG(cnn_file_list_match_classes(&l, &folders, "flat", &e) == CNN_OK, "%s", e.msg);
    static const int kmatched[] = {1, 1, 2, 2, 2};
    check_list(&l, 5, krel, kmatched);
    check_classes(&l, 3, fcls);
    cnn_file_list_free(&l);
    CHECK(cnn_list_dir(fx("flat"), &l, &e) == CNN_OK);
    cnn_error_clear(&e);
    CHECK(cnn_file_list_match_classes(&folders, &l, "val/", &e) == CNN_ERR_FORMAT);
    CHECK_CONTAINS(e.msg, "class 'bird' is not one of the 2 training classes (cat, dog)");
    CHECK(strcmp(e.file, "val/") == 0);
    cnn_file_list_free(&l);
    cnn_file_list_free(&folders);

    /* List file: names sorted into classes, paths relative to the list. */
    static const char *const nrel[] = {"lists/../folders/cat/a.png", "lists/../flat/dog.1.png",
                                       "lists/sub/my image.png", "lists/../folders/cat/c.bmp"};
    static const int nlab[] = {1, 2, 0, 1};
    cnn_error_clear(&e);
    CHECK_MSG(cnn_list_file(fx("lists/names.txt"), &l, &e) == CNN_OK, "%s", e.msg);
    check_list(&l, 4, nrel, nlab);
    check_classes(&l, 3, fcls);
    cnn_file_list_free(&l);

    static const char *const irel[] = {"lists/../folders/cat/a.png",
                                       "lists/../folders/dog/x.TGA"};
    static const int ilab[] = {2, 0};
    static const char *const icls[] = {"0", "1", "2"};
    cnn_error_clear(&e);
    CHECK_MSG(cnn_list_file(fx("lists/index.txt"), &l, &e) == CNN_OK, "%s", e.msg);
    check_list(&l, 2, irel, ilab);
    check_classes(&l, 3, icls);
    cnn_file_list_free(&l);

    /* Bad listings. */
    const char *p = fx("lists/missing.txt");
    cnn_error_clear(&e);
    check_bad(cnn_list_file(p, &l, &e), &e, CNN_ERR_IO, p,
              "'../folders/cat/missing.png' does not exist");
    CHECK_MSG(e.line == 3 && e.col == 3, "missing.txt: at %d:%d, expected 3:3", e.line, e.col);
    CHECK(l.n == 0 && l.paths == NULL);
    p = fx("lists/oneword.txt");
    cnn_error_clear(&e);
    check_bad(cnn_list_file(p, &l, &e), &e, CNN_ERR_FORMAT, p, "expected 'path label'");
    CHECK(e.line == 1 && e.col == 1);
    p = fx("lists/none.txt");
    cnn_error_clear(&e);
    check_bad(cnn_list_file(p, &l, &e), &e, CNN_ERR_IO, p, "cannot open list file");

    p = fx("emptyclass/dog");
    cnn_error_clear(&e);
    check_bad(cnn_list_dir(fx("emptyclass"), &l, &e), &e, CNN_ERR_FORMAT, p,
              "class folder 'dog' has no images (jpg, jpeg, png, bmp, tga, gif)");
    CHECK(l.n == 0 && l.paths == NULL);
    p = fx("empty");
    cnn_error_clear(&e);
    check_bad(cnn_list_dir(p, &l, &e), &e, CNN_ERR_FORMAT, p, "no images found");
    cnn_error_clear(&e);
    check_bad(cnn_list_folders(p, &l, &e), &e, CNN_ERR_FORMAT, p, "no class folders");
    p = fx("nowhere");
    cnn_error_clear(&e);
    check_bad(cnn_list_dir(p, &l, &e), &e, CNN_ERR_IO, p, "cannot open folder");

    /* IDX image and label counts that disagree. */
    cnn_error_clear(&e);
    CHECK(cnn_idx_load(fx("idx/images-idx3-ubyte"), fx("idx/labels-idx1-ubyte"), 0,
                       &ds, &e) == CNN_ERR_FORMAT);
    CHECK_CONTAINS(e.msg, "image and label counts differ");
    CHECK_CONTAINS(e.msg, "has 3 images");
    CHECK_CONTAINS(e.msg, "has 2 labels");
}

/* A listing of n made-up paths "p000", ... with the given labels. */
static void fake_list(cnn_file_list *l, size_t n, const int *labels, size_t nclasses)
{
    l->n = n;
    l->paths = calloc(n, sizeof *l->paths);
    l->labels = calloc(n, sizeof *l->labels);
    l->nclasses = nclasses;
    l->classes = calloc(nclasses, sizeof *l->classes);
    for (size_t i = 0; i < n; i++) {
        l->paths[i] = malloc(24);
        snprintf(l->paths[i], 24, "p%03zu", i);
        l->labels[i] = labels[i];
    }
    for (size_t k = 0; k < nclasses; k++) {
        l->classes[k] = malloc(24);
        snprintf(l->classes[k], 24, "c%zu", k);
    }
}

static void test_split(void)
{
    /* Classes of 10, 5, 1 and 2 samples, interleaved. */
    enum { N = 18 };
    int labels[N];
    for (size_t i = 0; i < N; i++) labels[i] = i < 15 ? (int)(i % 3 == 2 ? 1 : 0) : 0;
    labels[15] = 2;
    labels[16] = 3;
    labels[17] = 3;
    size_t count[4] = {0};
    for (size_t i = 0; i < N; i++) count[labels[i]]++;
    CHECK(count[0] == 10 && count[1] == 5 && count[2] == 1 && count[3] == 2);

    cnn_file_list all = {0}, tr, va, tr2, va2;
    fake_list(&all, N, labels, 4);
    cnn_error e;
    cnn_error_clear(&e);
    CHECK(cnn_file_list_split(&all, 0.2, 7, &tr, &va, &e) == CNN_OK);
    /* round(0.2 * 10) = 2, round(0.2 * 5) = 1, none of 1, at least 1 of 2 */
    size_t vcount[4] = {0};
    for (size_t i = 0; i < va.n; i++) vcount[va.labels[i]]++;
    CHECK_MSG(vcount[0] == 2 && vcount[1] == 1 && vcount[2] == 0 && vcount[3] == 1,
              "validation per class %zu %zu %zu %zu", vcount[0], vcount[1], vcount[2],
              vcount[3]);
    CHECK(tr.n + va.n == N && tr.nclasses == 4 && va.nclasses == 4);
    CHECK(strcmp(va.classes[3], "c3") == 0);
    /* Disjoint, complete, in order, labels kept. */
    int seen[N] = {0}, ordered = 1;
    const cnn_file_list *parts[2] = {&tr, &va};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < parts[s]->n; i++) {
            size_t idx = (size_t)atoi(parts[s]->paths[i] + 1);
            seen[idx]++;
            if (parts[s]->labels[i] != labels[idx]) ordered = 0;
            if (i && strcmp(parts[s]->paths[i - 1], parts[s]->paths[i]) >= 0) ordered = 0;
        }
    int once = 1;
    for (size_t i = 0; i < N; i++) once &= seen[i] == 1;
    CHECK_MSG(once, "the split is not disjoint and complete");
    CHECK_MSG(ordered, "the split changed the order or the labels");
    /* The same seed gives the same split; another seed another one. */
    CHECK(cnn_file_list_split(&all, 0.2, 7, &tr2, &va2, &e) == CNN_OK);
    int same = va2.n == va.n;
    for (size_t i = 0; same && i < va.n; i++) same = strcmp(va.paths[i], va2.paths[i]) == 0;
    CHECK_MSG(same, "the same seed gave another split");
    cnn_file_list_free(&tr2);
    cnn_file_list_free(&va2);
    int differs = 0;
    for (uint64_t seed = 8; seed < 16 && !differs; seed++) {
        CHECK(cnn_file_list_split(&all, 0.2, seed, &tr2, &va2, &e) == CNN_OK);
        for (size_t i = 0; i < va.n && i < va2.n; i++)
            differs |= strcmp(va.paths[i], va2.paths[i]) != 0;
        cnn_file_list_free(&tr2);
        cnn_file_list_free(&va2);
    }
    CHECK_MSG(differs, "eight other seeds all gave the same split");
    /* A fraction near 1 still leaves one of each class for training. */
    CHECK(cnn_file_list_split(&all, 0.99, 1, &tr2, &va2, &e) == CNN_OK);
    CHECK(tr2.n == 4 && va2.n == N - 4);
    cnn_file_list_free(&tr2);
    cnn_file_list_free(&va2);
    cnn_error_clear(&e);
    CHECK(cnn_file_list_split(&all, 1.0, 1, &tr2, &va2, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "between 0 and 1");

    /* The in-memory split picks the same samples and carries the pixels. */
    cnn_dataset ds = {0}, dtr, dva;
    ds.n = N;
    ds.c = 1;
    ds.h = 2;
    ds.w = 3;
    ds.nclasses = 4;
    ds.pixels = malloc(N * 6);
    ds.labels = malloc(N * sizeof *ds.labels);
    for (size_t i = 0; i < N * 6; i++) ds.pixels[i] = (uint8_t)(i / 6);
    memcpy(ds.labels, labels, sizeof labels);
    cnn_error_clear(&e);
    CHECK(cnn_dataset_split(&ds, 0.2, 7, &dtr, &dva, &e) == CNN_OK);
    CHECK(dtr.n == tr.n && dva.n == va.n && dva.c == 1 && dva.h == 2 && dva.w == 3);
    int match = dva.n == va.n && dtr.n == tr.n;
    for (size_t i = 0; match && i < dva.n; i++)
        match = dva.pixels[6 * i] == atoi(va.paths[i] + 1)
             && dva.pixels[6 * i + 5] == dva.pixels[6 * i]
             && dva.labels[i] == va.labels[i];
    for (size_t i = 0; match && i < dtr.n; i++)
        match = dtr.pixels[6 * i] == atoi(tr.paths[i] + 1) && dtr.labels[i] == tr.labels[i];
    CHECK_MSG(match, "cnn_dataset_split differs from cnn_file_list_split");
    cnn_dataset_free(&dtr);
    cnn_dataset_free(&dva);
    cnn_dataset_free(&ds);
    cnn_file_list_free(&tr);
    cnn_file_list_free(&va);
    cnn_file_list_free(&all);
}

/* The pixel make_image_fixtures writes for write_8x6(seed). */
static uint8_t fixture_px(int seed, size_t c, size_t y, size_t x)
{
    return (uint8_t)(seed * 7 + (int)x * 3 + (int)y * 11 + (int)c * 50);
}

static int no_cache_files_left(void)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    int left = 0;
    while (d && (ent = readdir(d))) left += strncmp(ent->d_name, "cnn-cache-", 10) == 0;
    if (d) closedir(d);
    return !left;
}

static void test_decode(void)
{
    cnn_file_list l;
    cnn_error e;
    cnn_error_clear(&e);
    CHECK_MSG(cnn_list_dir(fx("mixed"), &l, &e) == CNN_OK, "%s", e.msg);
    CHECK(l.n == 123 && l.nclasses == 3);

    cnn_decode_opts o = {{3, 6, 8, CNN_RESIZE_STRETCH, 0}, 1, 1, 0, NULL};
    cnn_dataset one, three, cached;
    cnn_decode_report r1, r3, rc;
    CHECK_MSG(cnn_dataset_decode(&l, &o, &one, &r1, &e) == CNN_OK, "%s", e.msg);
    printf("decoded %zu, skipped %zu in %.3f s; first skipped: %s\n", r1.decoded,
           r1.skipped, r1.seconds, r1.first_bad[0]);
    CHECK(one.n == 120 && r1.decoded == 120 && r1.skipped == 3 && !r1.cached);
    CHECK(one.mapped == 0 && one.c == 3 && one.h == 6 && one.w == 8);
    char want[3][600];
    snprintf(want[0], sizeof want[0], "%s: truncated JPEG", fx("mixed/a/017-trunc.jpg"));
    snprintf(want[1], sizeof want[1], "%s: empty file", fx("mixed/b/005-empty.jpg"));
    snprintf(want[2], sizeof want[2], "%s: not an image", fx("mixed/c/030-text.jpg"));
    for (int k = 0; k < 3; k++)
        CHECK_MSG(strncmp(r1.first_bad[k], want[k], strlen(want[k])) == 0,
                  "first_bad[%d] is '%s', expected '%s...'", k, r1.first_bad[k], want[k]);
    CHECK(r1.first_bad[3][0] == '\0');
    /* The good images in order: class k's image i has seed 40 k + i. */
    int exact = one.n == 120;
    for (size_t j = 0; exact && j < one.n; j++) {
        int k = (int)(j / 40), seed = (int)j;
        exact = one.labels[j] == k;
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < 6; y++)
                for (size_t x = 0; x < 8; x++)
                    if (one.pixels[((j * 3 + c) * 6 + y) * 8 + x] != fixture_px(seed, c, y, x))
                        exact = 0;
    }
    CHECK_MSG(exact, "decoded pixels or labels are not the fixtures', in order");

    o.threads = 3;
    CHECK_MSG(cnn_dataset_decode(&l, &o, &three, &r3, &e) == CNN_OK, "%s", e.msg);
    CHECK(three.n == one.n && r3.skipped == 3);
    CHECK(memcmp(three.pixels, one.pixels, one.n * 144) == 0);
    CHECK(memcmp(three.labels, one.labels, one.n * sizeof *one.labels) == 0);
    CHECK(memcmp(r3.first_bad, r1.first_bad, sizeof r1.first_bad) == 0);

    o.memory_budget = 1;
    o.cache_dir = dir;
    CHECK_MSG(cnn_dataset_decode(&l, &o, &cached, &rc, &e) == CNN_OK, "%s", e.msg);
    CHECK(cached.mapped >= cached.n * 144 && rc.cached == 1 && cached.n == one.n);
    CHECK(memcmp(cached.pixels, one.pixels, one.n * 144) == 0);
    CHECK_MSG(no_cache_files_left(), "the cache file was not unlinked");
    cnn_dataset_free(&cached);
    CHECK(cached.pixels == NULL && cached.mapped == 0);

    /* A cache folder that does not exist: the error names the cache file. */
    o.cache_dir = fx("nowhere");
    cnn_error_clear(&e);
    CHECK(cnn_dataset_decode(&l, &o, &cached, &rc, &e) == CNN_ERR_IO);
    CHECK_CONTAINS(e.file, "nowhere/cnn-cache-");
    CHECK_CONTAINS(e.msg, "cannot create the pixel cache file");
    o.memory_budget = 0;
    o.cache_dir = NULL;

    /* Without skip_bad the first bad file fails, whatever the threads. */
    o.skip_bad = 0;
    for (size_t t = 1; t <= 3; t += 2) {
        o.threads = t;
        cnn_error_clear(&e);
        const char *p = fx("mixed/a/017-trunc.jpg");
        check_bad(cnn_dataset_decode(&l, &o, &cached, &rc, &e), &e, CNN_ERR_FORMAT, p,
                  "truncated JPEG");
        CHECK(cached.pixels == NULL && cached.n == 0);
    }

    /* Nothing decodable at all. */
    cnn_file_list bad = {0};
    static const int zero[2] = {0, 0};
    fake_list(&bad, 2, zero, 1);
    free(bad.paths[0]);
    free(bad.paths[1]);
    bad.paths[0] = strdup(fx("bad/empty.jpg"));
    bad.paths[1] = strdup(fx("bad/text.jpg"));
    o.skip_bad = 1;
    cnn_error_clear(&e);
    CHECK(cnn_dataset_decode(&bad, &o, &cached, &rc, &e) == CNN_ERR_FORMAT);
    CHECK_CONTAINS(e.msg, "none of the 2 images could be decoded");
    CHECK(rc.skipped == 2);
    cnn_file_list_free(&bad);

    cnn_dataset_free(&one);
    cnn_dataset_free(&three);
    cnn_file_list_free(&l);
}

int main(void)
{
    if (test_make_dir(dir, sizeof dir, "images") != 0) return 1;
    if (make_fixtures() != 0) {
        fprintf(stderr, "cannot write the fixtures into %s\n", dir);
        remove_tree(dir);
        return 1;
    }
    test_channels();
    test_resize();
    test_bad_images();
    test_undefined_huffman_table();
    test_top_down_bmp();
    test_listing();
    test_split();
    test_decode();
    remove_tree(dir);
    return test_done();
}
