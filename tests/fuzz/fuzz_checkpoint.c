/*
 * Fuzz target: the checkpoint reader (cnn_checkpoint_read), then what a
 * loader asks of a checkpoint that passed (tensor lookup, metadata).
 *
 * Byte 0 picks how the rest is used:
 *   even: the rest is a .cnn file as it is (header checks, lengths, CRCs,
 *         the zlib stream);
 *   odd:  the rest is the uncompressed payload (config, metadata, tensor
 *         records); this target deflates it and writes a valid header with
 *         both CRCs, so mutations get past the CRCs to the payload parser.
 * A checkpoint that loads must be self-consistent: unique names, each
 * tensor's size the product of its dims, data readable to the end.
 */
#include "fuzz.h"

#include <string.h>
#include <zlib.h>

#include "checkpoint.h"

#define HEADER 48

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid .cnn file around payload [n]; NULL if zlib fails. */
static uint8_t *wrap_payload(const uint8_t *payload, size_t n, size_t *out_len)
{
    uLong bound = compressBound((uLong)n);
    uint8_t *f = malloc(HEADER + bound);
    if (!f) return NULL;
    uLongf zn = bound;
    if (compress2(f + HEADER, &zn, payload, (uLong)n, 6) != Z_OK) {
        free(f);
        return NULL;
    }
    memset(f, 0, HEADER);
    memcpy(f, CNN_CKPT_MAGIC, 8);
    put_le(f + 8, CNN_CKPT_VERSION, 4);
    put_le(f + 16, n, 8);
    put_le(f + 24, zn, 8);
    put_le(f + 32, crc32(crc32(0, Z_NULL, 0), payload, (uInt)n), 4);
    put_le(f + 36, crc32(crc32(0, Z_NULL, 0), f + HEADER, (uInt)zn), 4);
    *out_len = HEADER + zn;
    return f;
}

static volatile float sink;

static void check_loaded(const cnn_checkpoint *ck)
{
    if (!ck->config || !ck->meta || (ck->ntensors && !ck->tensors)) abort();
    for (size_t i = 0; i < ck->ntensors; i++) {
        const cnn_ckpt_tensor *t = &ck->tensors[i];
        if (!t->name || !t->name[0] || t->ndim > CNN_CKPT_MAX_DIMS) abort();
        uint64_t size = 1;
        for (size_t d = 0; d < t->ndim; d++) size *= t->dims[d];
        if (size != t->size || (t->size && !t->data)) abort();
        for (size_t k = 0; k < t->size; k++) sink += t->data[k];   /* all readable */
        if (cnn_checkpoint_find(ck, t->name) != t) abort();   /* names unique */
    }
    static const char *const keys[] = {"mean", "std", "rng", "class.0", "epoch", ""};
    char buf[64];
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        cnn_checkpoint_meta(ck, keys[k], buf, sizeof buf);
        cnn_checkpoint_meta(ck, keys[k], buf, 1);
        cnn_checkpoint_meta(ck, keys[k], NULL, 0);
    }
    (void)strlen(ck->config);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int wrap = data[0] & 1;
    data++;
    size--;
    const char *path;
    if (wrap) {
        size_t n;
        uint8_t *file = wrap_payload(data, size, &n);
        if (!file) return 0;
        path = fuzz_file(0, file, n);
        free(file);
    } else {
        path = fuzz_file(0, data, size);
    }
    cnn_checkpoint ck;
    cnn_error e = {0};
    if (cnn_checkpoint_read(path, &ck, &e) == CNN_OK) {
        check_loaded(&ck);
        cnn_checkpoint_free(&ck);
    } else {
        if (!e.msg[0] || ck.config || ck.meta || ck.tensors || ck.ntensors) {
            fprintf(stderr, "fuzz_checkpoint: a failed read left %s\n",
                    e.msg[0] ? "a half-loaded checkpoint" : "no message");
            abort();
        }
    }
    return 0;
}
