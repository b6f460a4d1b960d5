/*
 * Reading one image file (see image.h). The file is read whole and checked
 * before it is decoded: an empty file, a format stb_image does not know, an
 * image over the pixel limit (from the header alone), a JPEG whose marker
 * segments run off the end before the end-of-image marker and a PNG whose
 * chunks do before IEND are refused with a message that says which.
 * stb_image pads a cut-short JPEG with grey and reports success, and says
 * "unknown PNG chunk type" of a cut-short PNG, so those checks are ours. So
 * is refusing a JPEG with a Huffman table of more than 256 codes, which
 * stb_image 2.27 would write past its table, or with a scan that uses a
 * table never defined, which it would read uninitialised (both found by
 * tests/fuzz).
 *
 * stb_image and stb_image_resize are compiled here, static to this file
 * (the system's libstb also exports them; ours are configured: only the
 * formats we take, no stdio, a per-thread failure reason). Decoding runs in
 * several threads at once (source.c): stb_image's mutable globals are the
 * failure reason, which is thread-local (checked below), the flip and
 * unpremultiply flags, which we never set, and one buffer in its PNG reader
 * that it fills with an unknown chunk's name for the failure reason. With
 * STBI_FAILURE_USERMSG that buffer is never read (the reasons are constant
 * strings such as "Corrupt PNG"), so concurrent writes to it, from corrupt
 * PNGs only, change nothing we see.
 */
#include "image.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBIR_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wshift-negative-value"
#include <stb_image.h>
#include <stb_image_resize.h>
/* stb_image 2.27 declares this but defines it under a misspelt name; with
 * STB_IMAGE_STATIC the missing definition is an error. */
static void stbi_set_unpremultiply_on_load_thread(int flag)
{
    stbi__unpremultiply_on_load_thread(flag);
}
#pragma GCC diagnostic pop

/* stb_image keeps the last failure reason in a global; decoding from
 * several threads needs it per thread. */
#ifndef STBI_THREAD_LOCAL
#error "stb_image has no thread-local failure reason with this compiler"
#endif

const char *const cnn_resize_names[CNN_RESIZE_COUNT] = {
    [CNN_RESIZE_STRETCH] = "stretch",
    [CNN_RESIZE_CROP] = "crop",
    [CNN_RESIZE_LETTERBOX] = "letterbox",
};

/* Fill e with a message belonging to the file `name` (replacing any file
 * already recorded: the error is this file's). */
static cnn_status image_fail(cnn_error *e, cnn_status s, const char *name,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cnn_status image_fail(cnn_error *e, cnn_status s, const char *name,
                             const char *fmt, ...)
{
    if (!e) return s;
    va_list ap;
    e->status = s;
    e->line = e->col = 0;
    snprintf(e->file, sizeof e->file, "%s", name ? name : "");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return s;
}

/* 1 when b[0..n) is a JPEG to stb_image: FF, any fill bytes FF, then the
 * start-of-image marker D8. *start is set just past it. */
static int is_jpeg(const unsigned char *b, size_t n, size_t *start)
{
    size_t pos = 0;
    if (n < 2 || b[0] != 0xFF) return 0;
    while (pos < n && b[pos] == 0xFF) pos++;
    if (pos >= n || b[pos] != 0xD8) return 0;
    *start = pos + 1;
    return 1;
}

/* Read the DHT segment whose length field is at b[pos] as stb_image reads
 * it: tables one after another until the length is used up, bytes past the
 * end of the file as 0. Returns 1 when a table holds more than 256 codes:
 * stb_image 2.27 builds each table from its 16 code counts without checking
 * their sum against the 256 entries it has room for (2.28 added the check),
 * so such a table writes past it. Otherwise sets, in *defined, bit
 * 4 * class + id of each table the segment defines (class 0 DC, 1 AC). */
static int dht_read(const unsigned char *b, size_t n, size_t pos, unsigned *defined)
{
    long left = (long)((size_t)b[pos] << 8 | b[pos + 1]) - 2;
    size_t p = pos + 2;
    while (left > 0) {
        unsigned q = p < n ? b[p] : 0;
        p++;
        if (q >> 4 > 1 || (q & 15) > 3) return 0;   /* stb_image refuses it */
        size_t codes = 0;
        for (int i = 0; i < 16; i++, p++) codes += p < n ? b[p] : 0;
        if (codes > 256) return 1;
        *defined |= 1u << ((q >> 4) * 4 + (q & 15));
        p += codes;
        left -= 17 + (long)codes;
    }
    return 0;
}

/* 1 when the scan whose SOS segment (its length field at b[pos]) starts
 * would decode with a Huffman table that no DHT before it defined.
 * stb_image 2.27 allocates its tables uninitialised and does not track
 * which were defined; decoding with such a table reads garbage as code
 * lengths and indexes past the table with them (found by tests/fuzz).
 * The tables a scan uses, as stb_image decodes: a sequential frame uses
 * each component's DC and AC tables; a progressive one, the DC table in a
 * first DC scan (spectral start 0, Ah 0), none in a DC refinement, the AC
 * table in an AC scan. Bytes past the end of the file read as 0. */
static int sos_undefined(const unsigned char *b, size_t n, size_t pos,
                         int progressive, unsigned defined)
{
#define AT(i) (pos + (i) < n ? b[pos + (i)] : 0u)
    unsigned ns = AT(2);
    if (ns < 1 || ns > 4) return 0;                    /* stb_image refuses it */
    unsigned ss = AT(3 + 2 * ns), ah = AT(5 + 2 * ns) >> 4;
    for (unsigned k = 0; k < ns; k++) {
        unsigned t = AT(4 + 2 * k), dc = t >> 4, ac = t & 15;
        if (dc > 3 || ac > 3) return 0;                /* stb_image refuses it */
        int use_dc = !progressive || (ss == 0 && ah == 0);
        int use_ac = !progressive || ss > 0;
        if ((use_dc && !(defined >> dc & 1)) || (use_ac && !(defined >> (4 + ac) & 1)))
            return 1;
    }
    return 0;
#undef AT
}

enum { JPEG_OK, JPEG_TRUNCATED, JPEG_BAD_TABLE, JPEG_NO_TABLE };

/* Check the JPEG in b[0..n), from `pos` just past its start-of-image
 * marker: JPEG_TRUNCATED when it ends before its end-of-image marker (FF
 * D9), JPEG_BAD_TABLE when a Huffman table would overflow stb_image's (see
 * dht_read), JPEG_NO_TABLE when a scan uses a table never defined (see
 * sos_undefined). Walks the marker segments by their length fields (so an
 * EXIF thumbnail inside APP1, with its own FF D9, is skipped); after each
 * SOS header, steps over the entropy-coded data, where FF is followed by
 * 00 (a stuffed byte), D0-D7 (a restart marker) or FF (fill). Running out
 * of bytes anywhere before EOI means truncation. The walk visits every
 * segment stb_image reads, at the same place (it skips junk between
 * segments as stb_image does; where the two part ways stb_image stops with
 * an error). A malformed length field is left for stb_image to judge. */
static int jpeg_check(const unsigned char *b, size_t n, size_t pos)
{
    unsigned defined = 0;     /* bit 4 * class + id: the Huffman tables so far */
    int progressive = -1;     /* the first SOF is SOF2 (stb_image reads only it) */
    for (;;) {
        while (pos < n && b[pos] != 0xFF) pos++;          /* junk */
        while (pos < n && b[pos] == 0xFF) pos++;          /* fill bytes */
        if (pos >= n) return JPEG_TRUNCATED;
        unsigned m = b[pos++];
        if (m == 0xD9) return JPEG_OK;                    /* EOI */
        if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7))
            continue;                         /* markers without a length */
        if (n - pos < 2) return JPEG_TRUNCATED;
        if (m == 0xC4 && dht_read(b, n, pos, &defined)) return JPEG_BAD_TABLE;
        if (m >= 0xC0 && m <= 0xC2 && progressive < 0) progressive = m == 0xC2;
        if (m == 0xDA && sos_undefined(b, n, pos, progressive == 1, defined))
            return JPEG_NO_TABLE;
        size_t len = (size_t)b[pos] << 8 | b[pos + 1];
        if (len < 2) return JPEG_OK;
        if (n - pos < len) return JPEG_TRUNCATED;
        pos += len;
        if (m != 0xDA) continue;                          /* not SOS */
        while (pos < n) {                     /* entropy-coded data */
            if (b[pos] != 0xFF) { pos++; continue; }
            if (pos + 1 >= n) return JPEG_TRUNCATED;
            unsigned x = b[pos + 1];
            if (x == 0x00 || (x >= 0xD0 && x <= 0xD7)) pos += 2;
            else if (x == 0xFF) pos++;
            else break;                       /* a marker: the scan ended */
        }
        if (pos >= n) return JPEG_TRUNCATED;
    }
}

/* Why stb_image must not be given a JPEG that jpeg_check() judged
 * status, or NULL when it may (a cut-short file is left to the caller). */
static const char *jpeg_message(int status)
{
    switch (status) {
    case JPEG_BAD_TABLE: return "corrupt JPEG (a Huffman table with more than 256 codes)";
    case JPEG_NO_TABLE:  return "corrupt JPEG (a scan uses a Huffman table that no "
                                "DHT segment before it defines)";
    default:             return NULL;
    }
}

/* jpeg_check() of b[0..n), or JPEG_OK when it is not a JPEG. */
static int jpeg_status(const unsigned char *b, size_t n)
{
    size_t start;
    return is_jpeg(b, n, &start) ? jpeg_check(b, n, start) : JPEG_OK;
}

/* 1 when the PNG in b[0..n) ends before its IEND chunk: the chunks, from
 * after the 8-byte signature, are length, type, data and CRC. */
static int png_truncated(const unsigned char *b, size_t n)
{
    size_t pos = 8;
    while (n - pos >= 12) {
        size_t len = (size_t)b[pos] << 24 | (size_t)b[pos + 1] << 16
                   | (size_t)b[pos + 2] << 8 | b[pos + 3];
        if (memcmp(b + pos + 4, "IEND", 4) == 0) return 0;
        if (len > n - pos - 12) return 1;
        pos += 12 + len;
    }
    return 1;
}

/* A width or height as stbi_info reports it. stb_image 2.27 gives a
 * top-down BMP's height as it is stored, negative (its loader takes the
 * absolute value; so do we, else such a file would seem to have 2^64
 * pixels). */
static uint64_t header_size(int v)
{
    return v < 0 ? (uint64_t)-(int64_t)v : (uint64_t)v;
}

/* Round a * b / d to nearest, clamped to [1, hi]. */
static size_t scaled(size_t a, size_t b, size_t d, size_t hi)
{
    uint64_t v = ((uint64_t)a * b * 2 + d) / (2 * (uint64_t)d);
    if (v < 1) v = 1;
    if (v > hi) v = hi;
    return (size_t)v;
}

/* Resize the interleaved image src [H][W][c] into planar out [c][h][w] per
 * o->mode. The source rectangle (sx, sy, sw, sh) goes to the output
 * rectangle (dx, dy, dw, dh); the rest of out (letterbox bands) is 0. */
static cnn_status image_resize(const uint8_t *src, size_t W, size_t H, size_t c,
                               const cnn_image_opts *o, const char *name,
                               uint8_t *out, cnn_error *e)
{
    size_t w = o->w, h = o->h;
    size_t sx = 0, sy = 0, sw = W, sh = H;
    size_t dx = 0, dy = 0, dw = w, dh = h;
    int wider = (uint64_t)W * h > (uint64_t)H * w;  /* source wider than out */

    if (o->mode == CNN_RESIZE_CROP) {
        if (wider) sw = scaled(H, w, h, W);
        else sh = scaled(W, h, w, H);
        sx = (W - sw) / 2;
        sy = (H - sh) / 2;
    } else if (o->mode == CNN_RESIZE_LETTERBOX) {
        if (wider) dh = scaled(H, w, W, h);
        else dw = scaled(W, h, H, w);
        dx = (w - dw) / 2;
        dy = (h - dh) / 2;
        memset(out, 0, c * h * w);
    }

    const uint8_t *from = src + (sy * W + sx) * c;   /* [sh][W*c] rows */
    size_t from_stride = W * c;
    uint8_t *tmp = NULL;                             /* [dh][dw][c] */
    if (sw != dw || sh != dh) {
        tmp = malloc(dw * dh * c);
        if (!tmp)
            return image_fail(e, CNN_ERR_NOMEM, name, "out of memory resizing "
                              "to %zux%zu", dw, dh);
        int alpha = c == 2 || c == 4 ? (int)c - 1 : STBIR_ALPHA_CHANNEL_NONE;
        if (!stbir_resize_uint8_generic(from, (int)sw, (int)sh, (int)from_stride,
                                        tmp, (int)dw, (int)dh, (int)(dw * c), (int)c,
                                        alpha, 0, STBIR_EDGE_CLAMP,
                                        STBIR_FILTER_DEFAULT, STBIR_COLORSPACE_LINEAR,
                                        NULL)) {
            free(tmp);
            return image_fail(e, CNN_ERR_NOMEM, name, "resizing %zux%zu to %zux%zu "
                              "failed (out of memory)", sw, sh, dw, dh);
        }
        from = tmp;
        from_stride = dw * c;
    }
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < dh; y++) {
            const uint8_t *row = from + y * from_stride + ch;
            uint8_t *dst = out + (ch * h + dy + y) * w + dx;
            for (size_t x = 0; x < dw; x++) dst[x] = row[x * c];
        }
    free(tmp);
    return CNN_OK;
}

cnn_status cnn_image_decode(const unsigned char *bytes, size_t len, const char *name,
                            const cnn_image_opts *o, uint8_t *out, cnn_error *e)
{
    if (!o || !out || (!bytes && len))
        return image_fail(e, CNN_ERR_ARG, name, "cnn_image_decode: NULL argument");
    if (o->c < 1 || o->c > 4 || o->h < 1 || o->w < 1 || o->h > INT_MAX / 4
        || o->w > INT_MAX / 4 || (unsigned)o->mode >= CNN_RESIZE_COUNT)
        return image_fail(e, CNN_ERR_ARG, name, "cnn_image_decode: bad output "
                          "(%zu channels, %zux%zu, mode %d)", o->c, o->w, o->h,
                          (int)o->mode);
    if (len == 0)
        return image_fail(e, CNN_ERR_FORMAT, name, "empty file (0 bytes)");
    if (len > INT_MAX)
        return image_fail(e, CNN_ERR_FORMAT, name, "file too large to decode "
                          "(%zu bytes; the limit is %d)", len, INT_MAX);

    /* A cut-short file is called so even when its header is cut too. */
    const char *cut = NULL;
    int jpeg = jpeg_status(bytes, len);
    if (jpeg_message(jpeg))                                /* before stb_image */
        return image_fail(e, CNN_ERR_FORMAT, name, "%s", jpeg_message(jpeg));
    if (jpeg == JPEG_TRUNCATED)
        cut = "truncated JPEG (no end-of-image marker)";
    else if (len >= 8 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0
             && png_truncated(bytes, len))
        cut = "truncated PNG (no IEND chunk)";
    int W, H, comp;
    if (!stbi_info_from_memory(bytes, (int)len, &W, &H, &comp))
        return image_fail(e, CNN_ERR_FORMAT, name, "%s",
                          cut ? cut : "not an image (unknown or unsupported format)");
    uint64_t iw = header_size(W), ih = header_size(H), pixels = iw * ih;
    if (!pixels)     /* stb_image decodes a BMP of height 0 to nothing */
        return image_fail(e, CNN_ERR_FORMAT, name, "image is %llux%llu: no pixels",
                          (unsigned long long)iw, (unsigned long long)ih);
    if (o->max_pixels && pixels > o->max_pixels)
        return image_fail(e, CNN_ERR_FORMAT, name, "image is %llux%llu = %llu pixels, "
                          "more than the limit of %llu (data.max_pixels)",
                          (unsigned long long)iw, (unsigned long long)ih,
                          (unsigned long long)pixels,
                          (unsigned long long)o->max_pixels);
    if (cut) return image_fail(e, CNN_ERR_FORMAT, name, "%s", cut);

    int dw, dh, dc;
    unsigned char *img = stbi_load_from_memory(bytes, (int)len, &dw, &dh, &dc,
                                               (int)o->c);   /* [dh][dw][o->c] */
    if (!img) {
        const char *why = stbi_failure_reason();
        return image_fail(e, CNN_ERR_FORMAT, name, "cannot decode: %s",
                          why && *why ? why : "corrupt image");
    }
    if (dw < 1 || dh < 1) {
        stbi_image_free(img);
        return image_fail(e, CNN_ERR_FORMAT, name, "image is %dx%d: no pixels", dw, dh);
    }
    cnn_status st = image_resize(img, (size_t)dw, (size_t)dh, o->c, o, name, out, e);
    stbi_image_free(img);
    return st;
}

/* Read the whole file at path into *buf (malloc'd; *len bytes). */
static cnn_status read_file(const char *path, unsigned char **buf, size_t *len,
                            cnn_error *e)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return image_fail(e, CNN_ERR_IO, path, "cannot open: %s", strerror(errno));
    cnn_status st = CNN_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = image_fail(e, CNN_ERR_IO, path, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = image_fail(e, CNN_ERR_IO, path, "not a regular file");
        goto done;
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        st = image_fail(e, CNN_ERR_NOMEM, path, "out of memory reading %zu bytes", n);
        goto done;
    }
    size_t got = fread(b, 1, n, f);
    if (got != n || ferror(f)) {
        st = image_fail(e, CNN_ERR_IO, path, "read error: got %zu of %zu bytes%s%s",
                        got, n, ferror(f) ? ": " : "", ferror(f) ? strerror(errno) : "");
        free(b);
        goto done;
    }
    *buf = b;
    *len = n;
done:
    fclose(f);
    return st;
}

cnn_status cnn_image_load(const char *path, const cnn_image_opts *o, uint8_t *out,
                          cnn_error *e)
{
    unsigned char *buf;        /* [len] the encoded file */
    size_t len;
    cnn_status st = read_file(path, &buf, &len, e);
    if (st != CNN_OK) return st;
    st = cnn_image_decode(buf, len, path, o, out, e);
    free(buf);
    return st;
}

cnn_status cnn_image_info(const char *path, size_t *w, size_t *h, size_t *c,
                          cnn_error *e)
{
    unsigned char *buf;        /* [len] the encoded file */
    size_t len;
    cnn_status st = read_file(path, &buf, &len, e);
    if (st != CNN_OK) return st;
    int W, H, comp;
    const char *unsafe = len ? jpeg_message(jpeg_status(buf, len)) : NULL;
    if (len == 0)
        st = image_fail(e, CNN_ERR_FORMAT, path, "empty file (0 bytes)");
    else if (unsafe)
        st = image_fail(e, CNN_ERR_FORMAT, path, "%s", unsafe);
    else if (len > INT_MAX || !stbi_info_from_memory(buf, (int)len, &W, &H, &comp))
        st = image_fail(e, CNN_ERR_FORMAT, path,
                        "not an image (unknown or unsupported format)");
    else {
        if (w) *w = (size_t)header_size(W);
        if (h) *h = (size_t)header_size(H);
        if (c) *c = (size_t)comp;
    }
    free(buf);
    return st;
}
