/*
 * IDX datasets (MNIST, Fashion-MNIST, EMNIST, ...): an image file and a
 * label file, each gzipped or not (zlib's gzread passes plain files through
 * unchanged). An IDX file starts with a big-endian magic word, 0x0000TTDD
 * with TT the element type (0x08: unsigned byte) and DD the number of
 * dimensions, followed by DD big-endian uint32 sizes and then the elements
 * in C order. Images are 0x00000803 (n, rows, cols); labels 0x00000801 (n).
 *
 * Both headers are read and the counts compared before any pixel is read, so
 * a mismatched pair fails at once. Memory follows the data read, not the
 * sizes a header announces (see idx_read_body). When the whole file is
 * read, one more byte is asked for: that catches trailing data and makes
 * zlib check the gzip trailer's CRC.
 */
#include "dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
/* gzread takes an unsigned int count; read big arrays in pieces. */
#define IDX_READ_PIECE ((size_t)1 << 30)
/* The first allocation for a body; it doubles from there as data arrives. */
#define IDX_FIRST_ALLOC ((size_t)16 << 20)

/* Read up to n bytes into buf; *got is how many arrived (fewer only at the
 * end of the data). A read error fails with a message naming path. */
static cnn_status gz_read_all(gzFile g, const char *path, void *buf, size_t n,
                              size_t *got, cnn_error *e)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_READ_PIECE ? n - *got : IDX_READ_PIECE;
        int r = gzread(g, p + *got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *why = gzerror(g, &zerr);
            if (zerr == Z_ERRNO)
                return cnn_error_set(e, CNN_ERR_IO, "cannot read %s: %s", path,
                                     strerror(errno));
            size_t plen = strlen(path);            /* zlib prefixes "path: " */
            if (strncmp(why, path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
                why += plen + 2;
            return cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted gzip data (%s)",
                                 path, why);
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return CNN_OK;
}

/* Open an IDX file, check its magic and read its ndim sizes into dims. The
 * `kind` ("image", "label") names it in messages. */
static cnn_status idx_open(const char *path, uint32_t magic, const char *kind,
                           uint32_t *dims, size_t ndim, gzFile *out, cnn_error *e)
{
    unsigned char head[16];              /* magic + at most 3 sizes */
    size_t want = 4 + 4 * ndim, got;
    *out = NULL;
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return cnn_error_set(e, errno ? CNN_ERR_IO : CNN_ERR_NOMEM,
                             "cannot open IDX %s file %s: %s", kind, path,
                             errno ? strerror(errno) : "out of memory");
    gzbuffer(g, 1u << 20);
    cnn_status st = gz_read_all(g, path, head, want, &got, e);
    if (st != CNN_OK) goto fail;
    if (got >= 4) {
        uint32_t m = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16
                   | (uint32_t)head[2] << 8 | head[3];
        if (m != magic) {
            const char *hint = m == IDX_IMAGES_MAGIC ? "; it is an IDX image file"
                             : m == IDX_LABELS_MAGIC ? "; it is an IDX label file" : "";
            st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: not an IDX %s file (magic "
                               "0x%08x, expected 0x%08x%s)", path, kind, m, magic,
                               hint);
            goto fail;
        }
    }
    if (got < want) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: truncated: the IDX header takes "
                           "%zu bytes, file has %zu", path, want, got);
        goto fail;
    }
    for (size_t d = 0; d < ndim; d++) {
        const unsigned char *b = head + 4 + 4 * d;
        dims[d] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16
                | (uint32_t)b[2] << 8 | b[3];
    }
    *out = g;
    return CNN_OK;

fail:
    gzclose(g);
    return st;
}

/* Read exactly n bytes of `what` into a new buffer (*out, free with
 * free()); then, if `at_end`, make sure nothing follows (this also has zlib
 * check the gzip trailer). The buffer grows as the data arrives (16 MiB,
 * then doubling) instead of being allocated at the size the header
 * announces, so a corrupted header that announces terabytes fails as
 * truncated after reading what is there, never asking for more than about
 * twice the memory of the data actually present. */
static cnn_status idx_read_body(gzFile g, const char *path, const char *what,
                                size_t n, int at_end, uint8_t **out, cnn_error *e)
{
    uint8_t *buf = NULL;       /* [cap], of which `have` bytes are read */
    size_t have = 0, cap = 0, got;
    unsigned char extra;
    cnn_status st = CNN_OK;
    *out = NULL;
    while (have < n) {
        size_t step = cap < IDX_FIRST_ALLOC ? IDX_FIRST_ALLOC : cap;
        size_t grown_cap = n - cap > step ? cap + step : n;
        uint8_t *grown = cnn_realloc(buf, grown_cap, 1, what, e);
        if (!grown) {
            st = CNN_ERR_NOMEM;
            goto fail;
        }
        buf = grown;
        cap = grown_cap;
        st = gz_read_all(g, path, buf + have, cap - have, &got, e);
        if (st != CNN_OK) goto fail;
        have += got;
        if (have < cap) {
            st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: truncated: expected %zu bytes "
                               "of %s, found %zu", path, n, what, have);
            goto fail;
        }
    }
    if (at_end) {
        st = gz_read_all(g, path, &extra, 1, &got, e);
        if (st == CNN_OK && got)
            st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: unexpected data after the %zu "
                               "bytes of %s that the header announces", path, n, what);
        if (st != CNN_OK) goto fail;
    }
    *out = buf;
    return CNN_OK;

fail:
    free(buf);
    return st;
}

cnn_status cnn_idx_load(const char *images_path, const char *labels_path,
                        size_t limit, cnn_dataset *ds, cnn_error *e)
{
    cnn_status st = CNN_OK;
    gzFile gi = NULL, gl = NULL;
    uint8_t *raw_labels = NULL;      /* [keep] */
    cnn_dataset got = {0};
    uint32_t idims[3] = {0}, ldims[1] = {0};

    if (!images_path || !labels_path || !ds)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_idx_load: NULL argument");
    memset(ds, 0, sizeof *ds);

    st = idx_open(images_path, IDX_IMAGES_MAGIC, "image", idims, 3, &gi, e);
    if (st == CNN_OK)
        st = idx_open(labels_path, IDX_LABELS_MAGIC, "label", ldims, 1, &gl, e);
    if (st != CNN_OK) goto cleanup;

    if (idims[0] != ldims[0]) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "image and label counts differ: %s "
                           "has %u images, %s has %u labels", images_path,
                           idims[0], labels_path, ldims[0]);
        goto cleanup;
    }
    if (idims[0] == 0 || idims[1] == 0 || idims[2] == 0) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: no pixels (%u images of "
                           "%ux%u)", images_path, idims[0], idims[1], idims[2]);
        goto cleanup;
    }
    size_t n = idims[0];
    size_t keep = limit > 0 && limit < n ? limit : n;
    got.n = keep;
    got.c = 1;
    got.h = idims[1];
    got.w = idims[2];
    if (got.h > SIZE_MAX / got.w || got.h * got.w > SIZE_MAX / keep) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: %zu images of %zux%zu pixels "
                           "cannot be held in memory", images_path, keep, got.h, got.w);
        goto cleanup;
    }
    size_t per_image = got.h * got.w;

    /* The labels' memory is taken only once the pixels are there: keep is
     * then at most the bytes read. */
    st = idx_read_body(gi, images_path, "pixels", keep * per_image, keep == n,
                       &got.pixels, e);
    if (st == CNN_OK)
        st = idx_read_body(gl, labels_path, "labels", keep, keep == n, &raw_labels, e);
    if (st != CNN_OK) goto cleanup;
    got.labels = cnn_alloc(keep, sizeof *got.labels, "IDX labels", e);
    if (!got.labels) {
        st = CNN_ERR_NOMEM;
        goto cleanup;
    }

    int top = 0;
    for (size_t i = 0; i < keep; i++) {
        got.labels[i] = raw_labels[i];
        if (got.labels[i] > top) top = got.labels[i];
    }
    got.nclasses = (size_t)top + 1;
    *ds = got;
    memset(&got, 0, sizeof got);

cleanup:
    if (gi) gzclose(gi);
    if (gl) gzclose(gl);
    free(raw_labels);
    cnn_dataset_free(&got);
    return st;
}
