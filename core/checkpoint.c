/*
 * Reading and writing `.cnn` checkpoint files (see checkpoint.h; the byte
 * layout is in docs/checkpoint.md).
 *
 * A file is a 48-byte little-endian header followed by one zlib stream
 * holding the payload: config text, metadata text and named float32
 * tensors. The writer streams the payload through deflate straight into a
 * temporary file (so saving never needs a second copy of the weights),
 * patches the header with the lengths and CRCs at the end, fsyncs and
 * renames the file over the target. The reader checks every header field
 * against the file before allocating anything, inflates while computing the
 * CRC of the compressed bytes, checks both CRCs, and only then parses the
 * payload; it hands over a checkpoint only when everything has passed.
 * Integers are packed byte by byte, so the files are the same on any host.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_HEADER_SIZE 48
#define CKPT_CHUNK ((size_t)256 * 1024)
/* The largest payload a reader accepts, so that a corrupted header can never
 * ask for an absurd allocation. */
#define CKPT_MAX_PAYLOAD ((uint64_t)16 << 30)
/* Deflate never compresses better than about 1032:1; a header that claims
 * more than this is corrupted. */
#define CKPT_MAX_RATIO 1032u
#define CKPT_LEVEL 6

/* ---- little-endian packing ---------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, size_t nbytes)
{
    for (size_t i = 0; i < nbytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, size_t nbytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < nbytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- writing ------------------------------------------------------------- */

/* Payload bytes are gathered in `in`; each full chunk is deflated into `out`
 * and written to the file. Both CRCs and lengths are kept as we go. A failed
 * write or deflate is sticky: `failed` is set, `err` holds errno (0 when
 * zlib failed), and every later put is a no-op. */
typedef struct ckpt_writer {
    FILE *f;
    z_stream z;
    uint32_t crc_raw, crc_z;
    uint64_t len_raw, len_z;
    size_t nin;
    int failed, err;
    unsigned char in[CKPT_CHUNK];
    unsigned char out[CKPT_CHUNK];
} ckpt_writer;

/* Deflate the gathered bytes with `flush` (Z_NO_FLUSH or Z_FINISH) and write
 * what comes out. Returns 0, or -1 with w->failed set. */
static int writer_deflate(ckpt_writer *w, int flush)
{
    if (w->failed) return -1;
    w->crc_raw = (uint32_t)crc32(w->crc_raw, w->in, (uInt)w->nin);
    w->len_raw += w->nin;
    w->z.next_in = w->in;
    w->z.avail_in = (uInt)w->nin;
    w->nin = 0;
    int rc;
    do {
        w->z.next_out = w->out;
        w->z.avail_out = (uInt)CKPT_CHUNK;
        rc = deflate(&w->z, flush);
        if (rc == Z_STREAM_ERROR) {
            w->failed = 1;
            w->err = 0;
            return -1;
        }
        size_t have = CKPT_CHUNK - w->z.avail_out;
        errno = 0;
        if (have && fwrite(w->out, 1, have, w->f) != have) {
            w->failed = 1;
            w->err = errno ? errno : EIO;
            return -1;
        }
        w->crc_z = (uint32_t)crc32(w->crc_z, w->out, (uInt)have);
        w->len_z += have;
    } while (flush == Z_FINISH ? rc != Z_STREAM_END : w->z.avail_out == 0);
    return 0;
}

static void writer_put(ckpt_writer *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0 && !w->failed) {
        size_t k = CKPT_CHUNK - w->nin;
        if (k > n) k = n;
        memcpy(w->in + w->nin, b, k);
        w->nin += k;
        b += k;
        n -= k;
        if (w->nin == CKPT_CHUNK) writer_deflate(w, Z_NO_FLUSH);
    }
}

static void writer_int(ckpt_writer *w, uint64_t v, size_t nbytes)
{
    unsigned char b[8];
    put_le(b, v, nbytes);
    writer_put(w, b, nbytes);
}

/* data [n] as little-endian IEEE 754 binary32. */
static void writer_floats(ckpt_writer *w, const float *data, size_t n)
{
    unsigned char b[4096];
    while (n > 0 && !w->failed) {
        size_t k = n < sizeof b / 4 ? n : sizeof b / 4;
        for (size_t i = 0; i < k; i++) put_le(b + 4 * i, float_bits(data[i]), 4);
        writer_put(w, b, 4 * k);
        data += k;
        n -= k;
    }
}

/* Check that ck can be written as described (lengths fit their fields,
 * shapes agree with sizes, names are unique). */
static cnn_status check_for_write(const char *path, const cnn_checkpoint *ck,
                                  cnn_error *e)
{
    if (ck->config && strlen(ck->config) > UINT32_MAX)
        return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                             "config text longer than 4 GiB", path);
    if (ck->meta && strlen(ck->meta) > UINT32_MAX)
        return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                             "metadata longer than 4 GiB", path);
    if (ck->ntensors > UINT32_MAX || (ck->ntensors && !ck->tensors))
        return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                             "bad tensor list (%zu tensors)", path, ck->ntensors);
    for (size_t i = 0; i < ck->ntensors; i++) {
        const cnn_ckpt_tensor *t = &ck->tensors[i];
        size_t len = t->name ? strlen(t->name) : 0;
        if (len == 0)
            return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                                 "tensor %zu has no name", path, i);
        if (len > UINT16_MAX)
            return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                                 "tensor %zu has a name of %zu bytes (at most "
                                 "65535)", path, i, len);
        if (t->ndim > CNN_CKPT_MAX_DIMS)
            return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                                 "tensor %s has %zu dimensions (at most %d)",
                                 path, t->name, t->ndim, CNN_CKPT_MAX_DIMS);
        uint64_t size = 1;
        for (size_t d = 0; d < t->ndim; d++) {
            if (t->dims[d] && size > UINT64_MAX / t->dims[d])
                return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                                     "tensor %s: shape overflows", path, t->name);
            size *= t->dims[d];
        }
        if (size != t->size || (size && !t->data))
            return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                                 "tensor %s: size %zu, but its shape holds %llu "
                                 "values%s", path, t->name, t->size,
                                 (unsigned long long)size,
                                 size && !t->data ? " (and data is NULL)" : "");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ck->tensors[j].name, t->name) == 0)
                return cnn_error_set(e, CNN_ERR_ARG, "cannot write checkpoint %s: "
                                     "two tensors are named %s", path, t->name);
    }
    return CNN_OK;
}

/* Make a rename in path's folder durable. Best effort: some file systems
 * refuse fsync on a folder, and the data itself is already safe. */
static void sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash && slash != path ? (size_t)(slash - path) : 1;
    char *dir = cnn_alloc(len + 1, 1, "folder name", NULL);
    if (!dir) return;
    if (!slash) dir[0] = '.';
    else if (slash == path) dir[0] = '/';
    else memcpy(dir, path, len);
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

cnn_status cnn_checkpoint_write(const char *path, const cnn_checkpoint *ck,
                                cnn_error *e)
{
    cnn_status st = CNN_OK;
    char *tmp = NULL;
    ckpt_writer *w = NULL;
    int created = 0, z_ready = 0;

    if (!path || !ck)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_checkpoint_write: %s is NULL",
                             path ? "checkpoint" : "path");
    st = check_for_write(path, ck, e);
    if (st != CNN_OK) return st;

    size_t tmp_len = strlen(path) + 32;
    tmp = cnn_alloc(tmp_len, 1, "checkpoint file name", e);
    w = tmp ? cnn_alloc(1, sizeof *w, "checkpoint writer", e) : NULL;
    if (!w) {
        st = CNN_ERR_NOMEM;
        goto cleanup;
    }
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());

    w->f = fopen(tmp, "wb");
    if (!w->f) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot write checkpoint %s: cannot "
                           "create %s: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    created = 1;

    unsigned char header[CKPT_HEADER_SIZE] = {0};
    errno = 0;
    if (fwrite(header, 1, sizeof header, w->f) != sizeof header) {
        w->failed = 1;
        w->err = errno ? errno : EIO;
    }
    if (deflateInit(&w->z, CKPT_LEVEL) != Z_OK) {
        st = cnn_error_set(e, CNN_ERR_NOMEM, "cannot write checkpoint %s: "
                           "zlib could not start compressing", path);
        goto cleanup;
    }
    z_ready = 1;

    const char *config = ck->config ? ck->config : "";
    const char *meta = ck->meta ? ck->meta : "";
    writer_int(w, strlen(config), 4);
    writer_put(w, config, strlen(config));
    writer_int(w, strlen(meta), 4);
    writer_put(w, meta, strlen(meta));
    writer_int(w, ck->ntensors, 4);
    for (size_t i = 0; i < ck->ntensors; i++) {
        const cnn_ckpt_tensor *t = &ck->tensors[i];
        writer_int(w, strlen(t->name), 2);
        writer_put(w, t->name, strlen(t->name));
        writer_int(w, 0, 1);                     /* dtype: float32 */
        writer_int(w, t->ndim, 1);
        for (size_t d = 0; d < t->ndim; d++) writer_int(w, t->dims[d], 8);
        writer_floats(w, t->data, t->size);
    }
    writer_deflate(w, Z_FINISH);

    if (!w->failed) {
        memcpy(header, CNN_CKPT_MAGIC, 8);
        put_le(header + 8, CNN_CKPT_VERSION, 4);
        put_le(header + 12, 0, 4);               /* flags */
        put_le(header + 16, w->len_raw, 8);
        put_le(header + 24, w->len_z, 8);
        put_le(header + 32, w->crc_raw, 4);
        put_le(header + 36, w->crc_z, 4);
        put_le(header + 40, 0, 8);               /* reserved */
        errno = 0;
        if (fseek(w->f, 0, SEEK_SET) != 0
            || fwrite(header, 1, sizeof header, w->f) != sizeof header
            || fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) {
            w->failed = 1;
            w->err = errno ? errno : EIO;
        }
    }
    if (w->failed) {
        st = w->err ? cnn_error_set(e, CNN_ERR_IO, "cannot write checkpoint %s: "
                                    "writing %s: %s", path, tmp, strerror(w->err))
                    : cnn_error_set(e, CNN_ERR_IO, "cannot write checkpoint %s: "
                                    "zlib failed while compressing", path);
        goto cleanup;
    }
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot write checkpoint %s: closing "
                           "%s: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot write checkpoint %s: renaming "
                           "%s over it: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    created = 0;
    sync_folder(path);

cleanup:
    if (w) {
        if (z_ready) deflateEnd(&w->z);
        if (w->f) fclose(w->f);
    }
    if (created) remove(tmp);
    free(w);
    free(tmp);
    return st;
}

/* ---- reading ------------------------------------------------------------- */

/* A bounds-checked view of the payload being parsed. */
typedef struct ckpt_cursor {
    const unsigned char *p;
    size_t left;
} ckpt_cursor;

/* Take n bytes; NULL if fewer are left. */
static const unsigned char *cursor_take(ckpt_cursor *c, size_t n)
{
    if (n > c->left) return NULL;
    const unsigned char *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

/* Read a little-endian integer of nbytes into *v; -1 if too few bytes. */
static int cursor_int(ckpt_cursor *c, size_t nbytes, uint64_t *v)
{
    const unsigned char *p = cursor_take(c, nbytes);
    if (!p) return -1;
    *v = get_le(p, nbytes);
    return 0;
}

/* A u32-length-prefixed text field into a new NUL-terminated string. */
static cnn_status parse_text(const char *path, ckpt_cursor *c, const char *what,
                             char **out, cnn_error *e)
{
    uint64_t len;
    const unsigned char *p;
    if (cursor_int(c, 4, &len) != 0 || !(p = cursor_take(c, (size_t)len)))
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: the %s "
                             "runs past the end of the payload", path, what);
    if (memchr(p, 0, (size_t)len))
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: the %s "
                             "contains a NUL byte", path, what);
    *out = cnn_alloc((size_t)len + 1, 1, what, e);
    if (!*out) return CNN_ERR_NOMEM;
    memcpy(*out, p, (size_t)len);
    return CNN_OK;
}

/* One tensor record into *t (which owns what it gets, even on failure). */
static cnn_status parse_tensor(const char *path, ckpt_cursor *c, size_t i,
                               cnn_ckpt_tensor *t, cnn_error *e)
{
    uint64_t len, dtype, ndim;
    const unsigned char *p;
    if (cursor_int(c, 2, &len) != 0 || !(p = cursor_take(c, (size_t)len)))
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: the name "
                             "of tensor %zu runs past the end", path, i);
    if (len == 0 || memchr(p, 0, (size_t)len))
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: tensor %zu "
                             "has %s name", path, i, len ? "a NUL byte in its" : "no");
    t->name = cnn_alloc((size_t)len + 1, 1, "tensor name", e);
    if (!t->name) return CNN_ERR_NOMEM;
    memcpy(t->name, p, (size_t)len);

    if (cursor_int(c, 1, &dtype) != 0 || cursor_int(c, 1, &ndim) != 0)
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: tensor %s "
                             "is cut short", path, t->name);
    if (dtype != 0)
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: tensor %s has data type %u; "
                             "this build reads only 0 (float32)", path, t->name,
                             (unsigned)dtype);
    if (ndim > CNN_CKPT_MAX_DIMS)
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: tensor %s "
                             "has %u dimensions (at most %d)", path, t->name,
                             (unsigned)ndim, CNN_CKPT_MAX_DIMS);
    t->ndim = (size_t)ndim;
    uint64_t size = 1;
    for (size_t d = 0; d < t->ndim; d++) {
        if (cursor_int(c, 8, &t->dims[d]) != 0)
            return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: "
                                 "tensor %s is cut short", path, t->name);
        /* The product can never exceed the bytes left, so it cannot overflow. */
        if (t->dims[d] && size > c->left / 4 / t->dims[d])
            return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: the "
                                 "data of tensor %s runs past the end", path,
                                 t->name);
        size *= t->dims[d];
    }
    if (size > c->left / 4)
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: the data "
                             "of tensor %s runs past the end", path, t->name);
    t->size = (size_t)size;
    t->data = cnn_alloc(t->size, sizeof(float), "tensor data", e);
    if (!t->data) return CNN_ERR_NOMEM;
    p = cursor_take(c, 4 * t->size);
    for (size_t k = 0; k < t->size; k++)
        t->data[k] = bits_float((uint32_t)get_le(p + 4 * k, 4));
    return CNN_OK;
}

/* The whole payload into *ck (which owns what it gets, even on failure). */
static cnn_status parse_payload(const char *path, const unsigned char *payload,
                                size_t len, cnn_checkpoint *ck, cnn_error *e)
{
    ckpt_cursor c = {payload, len};
    uint64_t count;
    cnn_status st = parse_text(path, &c, "config", &ck->config, e);
    if (st == CNN_OK) st = parse_text(path, &c, "metadata", &ck->meta, e);
    if (st != CNN_OK) return st;
    /* A tensor record takes at least 4 bytes, which bounds the count. */
    if (cursor_int(&c, 4, &count) != 0 || count > c.left / 4)
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: bad "
                             "tensor count", path);
    ck->tensors = cnn_alloc((size_t)count, sizeof *ck->tensors, "tensor list", e);
    if (!ck->tensors) return CNN_ERR_NOMEM;
    ck->ntensors = (size_t)count;
    for (size_t i = 0; i < ck->ntensors; i++) {
        st = parse_tensor(path, &c, i, &ck->tensors[i], e);
        if (st != CNN_OK) return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ck->tensors[j].name, ck->tensors[i].name) == 0)
                return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: "
                                     "two tensors are named %s", path,
                                     ck->tensors[i].name);
    }
    if (c.left)
        return cnn_error_set(e, CNN_ERR_FORMAT, "%s: malformed payload: %zu "
                             "unexpected bytes after the last tensor", path, c.left);
    return CNN_OK;
}

cnn_status cnn_checkpoint_read(const char *path, cnn_checkpoint *ck, cnn_error *e)
{
    cnn_status st = CNN_OK;
    FILE *f = NULL;
    unsigned char *payload = NULL;   /* [len_raw] */
    unsigned char *chunk = NULL;     /* [CKPT_CHUNK] compressed bytes */
    int z_ready = 0;
    z_stream z;
    cnn_checkpoint got = {0};

    if (!path || !ck)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_checkpoint_read: %s is NULL",
                             path ? "checkpoint" : "path");
    memset(ck, 0, sizeof *ck);

    f = fopen(path, "rb");
    if (!f) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot open checkpoint %s: %s", path,
                           strerror(errno));
        goto cleanup;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot read checkpoint %s: %s", path,
                           strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot read checkpoint %s: not a "
                           "regular file", path);
        goto cleanup;
    }
    uint64_t file_size = (uint64_t)sb.st_size;

    unsigned char h[CKPT_HEADER_SIZE];
    size_t head = file_size < sizeof h ? (size_t)file_size : sizeof h;
    if (fread(h, 1, head, f) != head) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot read checkpoint %s: %s", path,
                           ferror(f) ? strerror(errno) : "file shrank while reading");
        goto cleanup;
    }
    if (head == 0 || memcmp(h, CNN_CKPT_MAGIC, head < 8 ? head : 8) != 0) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: not a cnn checkpoint (%s)",
                           path, head ? "wrong magic bytes" : "empty file");
        goto cleanup;
    }
    if (head < sizeof h) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: truncated: expected at least "
                           "%d bytes (the header), file has %llu", path,
                           CKPT_HEADER_SIZE, (unsigned long long)file_size);
        goto cleanup;
    }
    uint32_t version = (uint32_t)get_le(h + 8, 4);
    uint32_t flags = (uint32_t)get_le(h + 12, 4);
    uint64_t len_raw = get_le(h + 16, 8), len_z = get_le(h + 24, 8);
    uint32_t crc_raw = (uint32_t)get_le(h + 32, 4), crc_z = (uint32_t)get_le(h + 36, 4);
    uint64_t reserved = get_le(h + 40, 8);

    if (version != CNN_CKPT_VERSION) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: checkpoint format version %u "
                           "%s (this build reads version %u)", path, version,
                           version > CNN_CKPT_VERSION ? "is newer than this build "
                           "can read" : "is not supported", CNN_CKPT_VERSION);
        goto cleanup;
    }
    if (flags != 0 || reserved != 0) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted header (%s is not "
                           "zero)", path, flags ? "flags field" : "reserved field");
        goto cleanup;
    }
    if (len_z > UINT64_MAX - CKPT_HEADER_SIZE) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted header (compressed "
                           "length %llu)", path, (unsigned long long)len_z);
        goto cleanup;
    }
    uint64_t expected = CKPT_HEADER_SIZE + len_z;
    if (file_size != expected) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, file_size < expected
                           ? "%s: truncated: expected %llu bytes, file has %llu"
                           : "%s: corrupted: expected %llu bytes, file has %llu "
                             "(trailing bytes)", path,
                           (unsigned long long)expected,
                           (unsigned long long)file_size);
        goto cleanup;
    }
    if (len_raw > CKPT_MAX_PAYLOAD || len_raw > SIZE_MAX
        || len_raw > len_z * CKPT_MAX_RATIO + 64 || len_raw < 12) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted header (payload "
                           "length %llu with %llu compressed bytes%s)", path,
                           (unsigned long long)len_raw, (unsigned long long)len_z,
                           len_raw > CKPT_MAX_PAYLOAD ? "; the limit is 16 GiB" : "");
        goto cleanup;
    }

    payload = cnn_alloc((size_t)len_raw, 1, "checkpoint payload", e);
    chunk = payload ? cnn_alloc(CKPT_CHUNK, 1, "checkpoint buffer", e) : NULL;
    if (!chunk) {
        st = CNN_ERR_NOMEM;
        goto cleanup;
    }
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        st = cnn_error_set(e, CNN_ERR_NOMEM, "cannot read checkpoint %s: zlib "
                           "could not start decompressing", path);
        goto cleanup;
    }
    z_ready = 1;

    /* Inflate chunk by chunk while computing the compressed CRC. After a zlib
     * error keep reading for the CRC: a CRC mismatch is the clearer report. */
    uint32_t crc_z_got = (uint32_t)crc32(0, Z_NULL, 0);
    uint64_t left = len_z, out = 0;
    int zrc = Z_OK;
    const char *zproblem = NULL;     /* why the stream is wrong, if it is */
    while (left > 0) {
        size_t n = left < CKPT_CHUNK ? (size_t)left : CKPT_CHUNK;
        if (fread(chunk, 1, n, f) != n) {
            st = cnn_error_set(e, CNN_ERR_IO, "cannot read checkpoint %s: %s", path,
                               ferror(f) ? strerror(errno) : "file shrank while reading");
            goto cleanup;
        }
        left -= n;
        crc_z_got = (uint32_t)crc32(crc_z_got, chunk, (uInt)n);
        z.next_in = chunk;
        z.avail_in = (uInt)n;
        while (zrc == Z_OK && z.avail_in > 0) {
            uint64_t room = len_raw - out;
            z.next_out = payload + out;
            z.avail_out = room < UINT32_MAX ? (uInt)room : (uInt)UINT32_MAX;
            zrc = inflate(&z, Z_NO_FLUSH);
            out += (uint64_t)(z.next_out - (payload + out));
            if (zrc == Z_BUF_ERROR)          /* no room left for the output */
                zproblem = "payload longer than the header says";
            else if (zrc == Z_STREAM_END && (z.avail_in > 0 || left > 0))
                zproblem = "data after the end of the compressed stream";
            else if (zrc != Z_OK && zrc != Z_STREAM_END)
                zproblem = "invalid compressed data";
        }
    }
    if (!zproblem && zrc != Z_STREAM_END)
        zproblem = "compressed stream ends early";
    if (!zproblem && out != len_raw)
        zproblem = "payload shorter than the header says";
    if (crc_z_got != crc_z) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted (CRC mismatch in the "
                           "compressed data)", path);
        goto cleanup;
    }
    if (zproblem) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted (%s)", path, zproblem);
        goto cleanup;
    }
    if ((uint32_t)crc32_z(0, payload, (size_t)len_raw) != crc_raw) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "%s: corrupted (CRC mismatch in the "
                           "payload)", path);
        goto cleanup;
    }
    st = parse_payload(path, payload, (size_t)len_raw, &got, e);
    if (st != CNN_OK) goto cleanup;
    *ck = got;
    memset(&got, 0, sizeof got);

cleanup:
    if (z_ready) inflateEnd(&z);
    if (f) fclose(f);
    free(chunk);
    free(payload);
    cnn_checkpoint_free(&got);
    return st;
}

void cnn_checkpoint_free(cnn_checkpoint *ck)
{
    if (!ck) return;
    for (size_t i = 0; i < ck->ntensors; i++) {
        free(ck->tensors[i].name);
        free(ck->tensors[i].data);
    }
    free(ck->tensors);
    free(ck->config);
    free(ck->meta);
    memset(ck, 0, sizeof *ck);
}

const cnn_ckpt_tensor *cnn_checkpoint_find(const cnn_checkpoint *ck, const char *name)
{
    if (!ck || !name) return NULL;
    for (size_t i = 0; i < ck->ntensors; i++)
        if (ck->tensors[i].name && strcmp(ck->tensors[i].name, name) == 0)
            return &ck->tensors[i];
    return NULL;
}

/* Lines are "key=value", separated by '\n' (a '\r' before it is dropped);
 * lines without '=' are skipped; if a key repeats, the last line wins.
 * Returns 0 when found and the value fits in buf, 1 when found but cut to
 * n - 1 bytes, -1 when absent. */
int cnn_checkpoint_meta(const cnn_checkpoint *ck, const char *key, char *buf, size_t n)
{
    if (!ck || !ck->meta || !key) return -1;
    size_t klen = strlen(key);
    const char *value = NULL;
    size_t vlen = 0;
    for (const char *line = ck->meta; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && memcmp(line, key, klen) == 0 && line[klen] == '=') {
            value = line + klen + 1;
            vlen = len - klen - 1;
            if (vlen > 0 && value[vlen - 1] == '\r') vlen--;
        }
        line += len + (end ? 1 : 0);
    }
    if (!value) return -1;
    if (!buf || n == 0) return 1;
    size_t k = vlen < n ? vlen : n - 1;
    memcpy(buf, value, k);
    buf[k] = '\0';
    return k == vlen ? 0 : 1;
}
