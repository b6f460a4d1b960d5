/*
 * Fuzz target: the IDX reader (cnn_idx_load), which reads an image file and
 * a label file, each plain or gzipped.
 *
 * Input layout:
 *   byte 0      options: bits 0-1 the sample limit (0: all, else 1 to 3),
 *               bit 2 gzip the image part, bit 3 gzip the label part
 *               (done here, so mutations of the plain bytes still reach
 *               the IDX parser through zlib)
 *   bytes 1-2   length of the image part, big-endian (cut to what is there)
 *   then        the image part, then the label part (the rest)
 * Each part becomes an in-memory file. A loaded dataset is checked against
 * its header (pixels and labels readable to the end, labels in range).
 */
#include "fuzz.h"

#include <string.h>
#include <zlib.h>

#include "dataset.h"

/* gzip data [n] into a new buffer (*out, *out_len); 0 on success. */
static int gzip_bytes(const uint8_t *data, size_t n, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    *out = malloc(cap);
    if (!*out) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* Put part [n] into file slot, gzipped if asked; returns its path or NULL. */
static const char *part_file(int slot, const uint8_t *part, size_t n, int gz)
{
    if (!gz) return fuzz_file(slot, part, n);
    uint8_t *z;
    size_t zn;
    if (gzip_bytes(part, n, &z, &zn)) return NULL;
    const char *path = fuzz_file(slot, z, zn);
    free(z);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned opts = data[0];
    size_t nimg = (size_t)data[1] << 8 | data[2];
    data += 3;
    size -= 3;
    if (nimg > size) nimg = size;
    size_t limit = opts & 3;
    const char *images = part_file(0, data, nimg, opts & 4);
    const char *labels = images ? part_file(1, data + nimg, size - nimg, opts & 8) : NULL;
    if (!labels) return 0;

    cnn_dataset ds;
    cnn_error e = {0};
    if (cnn_idx_load(images, labels, limit, &ds, &e) == CNN_OK) {
        if (!ds.n || (limit && ds.n > limit) || ds.c != 1 || !ds.h || !ds.w ||
            ds.nclasses < 1 || ds.nclasses > 256 || ds.mapped) {
            fprintf(stderr, "fuzz_idx: bad dataset: n %zu c %zu h %zu w %zu, "
                    "%zu classes\n", ds.n, ds.c, ds.h, ds.w, ds.nclasses);
            abort();
        }
        for (size_t i = 0; i < ds.n; i++)
            if (ds.labels[i] < 0 || (size_t)ds.labels[i] >= ds.nclasses) {
                fprintf(stderr, "fuzz_idx: label %d of sample %zu is outside "
                        "0..%zu\n", ds.labels[i], i, ds.nclasses - 1);
                abort();
            }
        float mean[1], std[1];
        cnn_dataset_stats(&ds, mean, std);   /* reads every pixel */
        cnn_dataset_free(&ds);
    } else if (!e.msg[0]) {
        fprintf(stderr, "fuzz_idx: failed without a message\n");
        abort();
    }
    return 0;
}
