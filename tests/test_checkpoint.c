/*
 * Checkpoint files: a round trip that must be bitwise exact (including NaN
 * payloads, -0 and denormals), metadata lookup, and every way a file can be
 * bad: cut short anywhere, any single byte flipped, a newer version, trailing
 * bytes, a payload whose inner lengths lie, a file that is not a checkpoint.
 * Writes must be atomic: a failed write (missing folder, file size limit hit
 * halfway) leaves the old file readable and no temporary file behind.
 * Everything happens in a fresh mkdtemp folder under /tmp.
 */
#include "harness.h"
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* The whole file into a new buffer (NULL if unreadable); *n its size. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    *n = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)size + 1);
            if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) *n = (size_t)size;
            else { free(buf); buf = NULL; }
        }
    }
    fclose(f);
    return buf;
}

static int spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Number of leftover "*.tmp.*" files in the test folder. */
static int count_temp_files(void)
{
    DIR *d = opendir(dir);
    int count = 0;
    struct dirent *ent;
    if (!d) return -1;
    while ((ent = readdir(d)))
        if (strstr(ent->d_name, ".tmp.")) count++;
    closedir(d);
    return count;
}

static int is_empty(const cnn_checkpoint *ck)
{
    return !ck->config && !ck->meta && !ck->tensors && ck->ntensors == 0;
}

/* ---- a sample checkpoint -------------------------------------------------- */

static float w_conv[4 * 3 * 3 * 3], b_conv[4], w_dense[10 * 12], scalar[1], t8[256];

static const char *sample_config = "name: tiny\nseed: 42\nmodel:\n  layers:\n"
                                   "    - conv: {filters: 4, kernel: 3}\n";
static const char *sample_meta = "epoch=3\nstep=120\nrng=18446744073709551615\n"
                                 "best_metric=0.875\nclasses=10\n";

static void fill_sample(cnn_checkpoint *ck, cnn_ckpt_tensor *t)
{
    uint64_t s = 7;
    for (size_t i = 0; i < sizeof w_conv / sizeof *w_conv; i++)
        w_conv[i] = (float)((double)((s = s * 6364136223846793005ull + 1) >> 40) / 1e6 - 5);
    for (size_t i = 0; i < sizeof w_dense / sizeof *w_dense; i++) w_dense[i] = (float)i * 0.25f;
    for (size_t i = 0; i < 256; i++) t8[i] = -(float)i;
    uint32_t nan_bits = 0x7fc12345u, denormal_bits = 0x00000003u;
    memcpy(&b_conv[0], &nan_bits, 4);
    memcpy(&b_conv[1], &denormal_bits, 4);
    b_conv[2] = -0.0f;
    b_conv[3] = 1.0f / 0.0f;
    scalar[0] = 3.25f;

    memset(t, 0, 6 * sizeof *t);
    t[0] = (cnn_ckpt_tensor){"conv1.weight", 4, {4, 3, 3, 3}, 108, w_conv};
    t[1] = (cnn_ckpt_tensor){"conv1.bias", 1, {4}, 4, b_conv};
    t[2] = (cnn_ckpt_tensor){"head.weight", 2, {10, 12}, 120, w_dense};
    t[3] = (cnn_ckpt_tensor){"optimizer.step_scale", 0, {0}, 1, scalar};
    t[4] = (cnn_ckpt_tensor){"empty", 2, {0, 5}, 0, NULL};
    t[5] = (cnn_ckpt_tensor){"eight.dims", 8, {2, 2, 2, 2, 2, 2, 2, 2}, 256, t8};
    *ck = (cnn_checkpoint){(char *)sample_config, (char *)sample_meta, t, 6};
}

/* Same names, shapes and bits (both checkpoints fully valid). */
static int same_checkpoint(const cnn_checkpoint *a, const cnn_checkpoint *b)
{
    if (strcmp(a->config ? a->config : "", b->config ? b->config : "") != 0) return 0;
    if (strcmp(a->meta ? a->meta : "", b->meta ? b->meta : "") != 0) return 0;
    if (a->ntensors != b->ntensors) return 0;
    for (size_t i = 0; i < a->ntensors; i++) {
        const cnn_ckpt_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) != 0 || x->ndim != y->ndim || x->size != y->size)
            return 0;
        if (memcmp(x->dims, y->dims, x->ndim * sizeof *x->dims) != 0) return 0;
        if (x->size && memcmp(x->data, y->data, x->size * sizeof(float)) != 0) return 0;
    }
    return 1;
}

/* ---- the tests ------------------------------------------------------------ */

static void test_round_trip(void)
{
    cnn_checkpoint ck, got;
    cnn_ckpt_tensor t[6];
    cnn_error e;
    char p[128];
    fill_sample(&ck, t);
    path_in(p, sizeof p, "round.cnn");
    cnn_error_clear(&e);
    CHECK(cnn_checkpoint_write(p, &ck, &e) == CNN_OK);
    CHECK_MSG(cnn_checkpoint_read(p, &got, &e) == CNN_OK, "read: %s", e.msg);
    CHECK(same_checkpoint(&ck, &got));
    CHECK(got.ntensors == 6);
    CHECK(got.config && strcmp(got.config, sample_config) == 0);

    const cnn_ckpt_tensor *w = cnn_checkpoint_find(&got, "conv1.weight");
    CHECK(w && w->ndim == 4 && w->dims[0] == 4 && w->dims[3] == 3 && w->size == 108);
    const cnn_ckpt_tensor *b = cnn_checkpoint_find(&got, "conv1.bias");
    CHECK(b && memcmp(b->data, b_conv, sizeof b_conv) == 0);
    const cnn_ckpt_tensor *s = cnn_checkpoint_find(&got, "optimizer.step_scale");
    CHECK(s && s->ndim == 0 && s->size == 1 && s->data[0] == 3.25f);
    const cnn_ckpt_tensor *z = cnn_checkpoint_find(&got, "empty");
    CHECK(z && z->ndim == 2 && z->size == 0 && z->dims[1] == 5);
    CHECK(cnn_checkpoint_find(&got, "conv1") == NULL);
    CHECK(cnn_checkpoint_find(&got, "nope") == NULL);
    cnn_checkpoint_free(&got);
    CHECK(is_empty(&got));
    CHECK(count_temp_files() == 0);

    /* Nothing at all: NULL config and metadata read back as "". */
    cnn_checkpoint none = {0};
    path_in(p, sizeof p, "none.cnn");
    CHECK(cnn_checkpoint_write(p, &none, &e) == CNN_OK);
    CHECK_MSG(cnn_checkpoint_read(p, &got, &e) == CNN_OK, "read: %s", e.msg);
    CHECK(got.config && got.config[0] == '\0' && got.meta && got.meta[0] == '\0');
    CHECK(got.ntensors == 0);
    cnn_checkpoint_free(&got);
    cnn_checkpoint_free(&got);              /* freeing twice is harmless */
}

static void test_meta(void)
{
    cnn_checkpoint ck = {0};
    char buf[32];
    ck.meta = "epoch=3\nstep=120\nrng=18446744073709551615\nname=a=b\n"
              "no equals sign\nepoch_total=9\r\nstep=121\nlast=x";
    CHECK(cnn_checkpoint_meta(&ck, "epoch", buf, sizeof buf) == 0 && strcmp(buf, "3") == 0);
    CHECK(cnn_checkpoint_meta(&ck, "rng", buf, sizeof buf) == 0
          && strcmp(buf, "18446744073709551615") == 0);
    CHECK(cnn_checkpoint_meta(&ck, "name", buf, sizeof buf) == 0 && strcmp(buf, "a=b") == 0);
    CHECK(cnn_checkpoint_meta(&ck, "epoch_total", buf, sizeof buf) == 0
          && strcmp(buf, "9") == 0);
    CHECK(cnn_checkpoint_meta(&ck, "step", buf, sizeof buf) == 0 && strcmp(buf, "121") == 0);
    CHECK(cnn_checkpoint_meta(&ck, "last", buf, sizeof buf) == 0 && strcmp(buf, "x") == 0);
    CHECK(cnn_checkpoint_meta(&ck, "epo", buf, sizeof buf) == -1);
    CHECK(cnn_checkpoint_meta(&ck, "no equals sign", buf, sizeof buf) == -1);
    CHECK(cnn_checkpoint_meta(&ck, "rng", buf, 5) == 1 && strcmp(buf, "1844") == 0);
    ck.meta = NULL;
    CHECK(cnn_checkpoint_meta(&ck, "epoch", buf, sizeof buf) == -1);

    /* Through a file. */
    cnn_checkpoint w, got;
    cnn_ckpt_tensor t[6];
    cnn_error e;
    char p[128];
    fill_sample(&w, t);
    path_in(p, sizeof p, "meta.cnn");
    CHECK(cnn_checkpoint_write(p, &w, &e) == CNN_OK);
    CHECK(cnn_checkpoint_read(p, &got, &e) == CNN_OK);
    CHECK(cnn_checkpoint_meta(&got, "best_metric", buf, sizeof buf) == 0
          && strcmp(buf, "0.875") == 0);
    CHECK(cnn_checkpoint_meta(&got, "classes", buf, sizeof buf) == 0 && strcmp(buf, "10") == 0);
    cnn_checkpoint_free(&got);
}

/* Reading path must fail with CNN_ERR_FORMAT, a message naming the path and
 * containing want, and leave the checkpoint empty. */
static void expect_refused(const char *path, const char *want, const char *what)
{
    cnn_checkpoint got;
    cnn_error e;
    cnn_error_clear(&e);
    memset(&got, 0xAB, sizeof got);
    cnn_status st = cnn_checkpoint_read(path, &got, &e);
    CHECK_MSG(st == CNN_ERR_FORMAT, "%s: status %d, message \"%s\"", what, (int)st, e.msg);
    CHECK_CONTAINS(e.msg, path);
    CHECK_CONTAINS(e.msg, want);
    CHECK_MSG(is_empty(&got), "%s: checkpoint not left empty", what);
    if (st == CNN_OK) cnn_checkpoint_free(&got);
}

static void test_truncated(void)
{
    cnn_checkpoint ck;
    cnn_ckpt_tensor t[6];
    cnn_error e;
    char good[128], bad[128], what[64];
    size_t n;
    fill_sample(&ck, t);
    path_in(good, sizeof good, "good.cnn");
    path_in(bad, sizeof bad, "cut.cnn");
    CHECK(cnn_checkpoint_write(good, &ck, &e) == CNN_OK);
    unsigned char *bytes = slurp(good, &n);
    CHECK(bytes && n > 100);
    if (!bytes) return;

    size_t cuts[] = {1, 7, 8, 20, 47, 48, 49, 48 + (n - 48) / 2, n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        snprintf(what, sizeof what, "cut at %zu of %zu", cuts[i], n);
        CHECK(spit(bad, bytes, cuts[i]) == 0);
        expect_refused(bad, "truncated", what);
    }
    /* The exact numbers are in the message. */
    cnn_checkpoint got;
    CHECK(spit(bad, bytes, n - 10) == 0);
    CHECK(cnn_checkpoint_read(bad, &got, &e) == CNN_ERR_FORMAT);
    char want[96];
    snprintf(want, sizeof want, "truncated: expected %zu bytes, file has %zu", n, n - 10);
    CHECK_CONTAINS(e.msg, want);

    CHECK(spit(bad, bytes, 0) == 0);
    expect_refused(bad, "not a cnn checkpoint", "empty file");

    /* Bytes appended after the end. */
    unsigned char *longer = malloc(n + 3);
    memcpy(longer, bytes, n);
    memcpy(longer + n, "xyz", 3);
    CHECK(spit(bad, longer, n + 3) == 0);
    expect_refused(bad, "trailing", "trailing bytes");
    free(longer);
    free(bytes);
}

static void test_flipped(void)
{
    cnn_checkpoint ck;
    cnn_ckpt_tensor t[6];
    cnn_error e;
    char good[128], bad[128], what[64];
    size_t n;
    fill_sample(&ck, t);
    path_in(good, sizeof good, "flip-src.cnn");
    path_in(bad, sizeof bad, "flipped.cnn");
    CHECK(cnn_checkpoint_write(good, &ck, &e) == CNN_OK);
    unsigned char *bytes = slurp(good, &n);
    CHECK(bytes && n > 100);
    if (!bytes) return;

    /* The named places, with the message each must give. */
    struct { size_t at; const char *want; } cases[] = {
        {0, "not a cnn checkpoint"}, {5, "not a cnn checkpoint"},
        {8, "version"}, {12, "corrupted header"}, {16, "corrupted"},
        {24, "bytes, file has"}, {32, "CRC"}, {36, "CRC"}, {44, "corrupted header"},
        {48 + (n - 48) / 2, "CRC"}, {n - 1, "CRC"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bytes[cases[i].at] ^= 0x10;
        snprintf(what, sizeof what, "byte %zu flipped", cases[i].at);
        CHECK(spit(bad, bytes, n) == 0);
        expect_refused(bad, cases[i].want, what);
        bytes[cases[i].at] ^= 0x10;
    }

    /* Every bit of the header and one bit of every later byte (the CRC
     * catches any single-bit error there): each flip is refused. */
    int accepted = 0;
    size_t tried = 0;
    for (size_t at = 0; at < n; at++)
        for (int bit = 0; bit < 8; bit++) {
            if (at >= 48 && (size_t)bit != at % 8) continue;
            tried++;
            cnn_checkpoint got;
            bytes[at] ^= (unsigned char)(1u << bit);
            CHECK(spit(bad, bytes, n) == 0);
            if (cnn_checkpoint_read(bad, &got, &e) != CNN_ERR_FORMAT || !is_empty(&got)) {
                if (!accepted) fprintf(stderr, "flip at byte %zu bit %d accepted\n", at, bit);
                accepted++;
            }
            bytes[at] ^= (unsigned char)(1u << bit);
        }
    CHECK_MSG(accepted == 0, "%d of %zu single-bit flips were not refused", accepted, tried);
    printf("all %zu single-bit flips refused\n", tried);

    /* A newer version says which version and which this build reads. */
    bytes[8] = 2;
    CHECK(spit(bad, bytes, n) == 0);
    expect_refused(bad, "version 2 is newer", "version 2");
    expect_refused(bad, "reads version 1", "version 2");
    free(bytes);
}

/* Write a file by hand around a raw payload, with correct CRCs and lengths,
 * so that the reader's payload checks can be exercised. */
static void write_raw(const char *path, const unsigned char *payload, size_t len,
                      uint64_t claimed_len)
{
    uLongf zlen = compressBound(len);
    unsigned char *buf = malloc(48 + zlen);
    CHECK(compress2(buf + 48, &zlen, payload, len, 6) == Z_OK);
    uint64_t fields[] = {1, 0, claimed_len, zlen, crc32(0, payload, (uInt)len),
                         crc32(0, buf + 48, (uInt)zlen), 0};
    size_t widths[] = {4, 4, 8, 8, 4, 4, 8};
    unsigned char *p = buf + 8;
    memcpy(buf, "CNNCKPT", 8);
    for (size_t f = 0; f < 7; f++)
        for (size_t i = 0; i < widths[f]; i++) *p++ = (unsigned char)(fields[f] >> (8 * i));
    CHECK(spit(path, buf, 48 + zlen) == 0);
    free(buf);
}

/* A little payload builder. */
typedef struct { unsigned char b[512]; size_t n; } raw;
static void raw_int(raw *r, uint64_t v, size_t w)
{
    for (size_t i = 0; i < w; i++) r->b[r->n++] = (unsigned char)(v >> (8 * i));
}
static void raw_zeros(raw *r, size_t len)
{
    memset(r->b + r->n, 0, len);
    r->n += len;
}
static void raw_bytes(raw *r, const char *s, size_t len)
{
    memcpy(r->b + r->n, s, len);
    r->n += len;
}
/* config "c", meta "m=1", then the tensor count. */
static void raw_start(raw *r, uint32_t count)
{
    r->n = 0;
    raw_int(r, 1, 4); raw_bytes(r, "c", 1);
    raw_int(r, 3, 4); raw_bytes(r, "m=1", 3);
    raw_int(r, count, 4);
}
/* A tensor header: name, dtype, dims. */
static void raw_tensor(raw *r, const char *name, unsigned dtype, size_t ndim,
                       const uint64_t *dims)
{
    raw_int(r, strlen(name), 2); raw_bytes(r, name, strlen(name));
    raw_int(r, dtype, 1); raw_int(r, ndim, 1);
    for (size_t d = 0; d < ndim; d++) raw_int(r, dims[d], 8);
}

static void test_bad_payload(void)
{
    char p[128];
    raw r;
    uint64_t d2[] = {2, 3}, huge[] = {1ull << 62, 1ull << 62};
    uint64_t nine[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    path_in(p, sizeof p, "raw.cnn");

    /* A well-formed hand-made file is accepted. */
    raw_start(&r, 1); raw_tensor(&r, "a.b", 0, 2, d2); raw_zeros(&r, 24);
    write_raw(p, r.b, r.n, r.n);
    cnn_checkpoint got;
    cnn_error e;
    CHECK_MSG(cnn_checkpoint_read(p, &got, &e) == CNN_OK, "hand-made: %s", e.msg);
    CHECK(got.ntensors == 1 && got.tensors[0].size == 6 && strcmp(got.meta, "m=1") == 0);
    cnn_checkpoint_free(&got);

    raw_start(&r, 1); raw_tensor(&r, "a.b", 0, 2, d2); raw_zeros(&r, 20);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "runs past the end", "data cut short");

    raw_start(&r, 1); raw_tensor(&r, "a.b", 0, 2, d2); raw_zeros(&r, 28);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "unexpected bytes after the last tensor", "data too long");

    raw_start(&r, 1); raw_tensor(&r, "a.b", 0, 2, huge);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "runs past the end", "huge dims");

    raw_start(&r, 1); raw_tensor(&r, "a.b", 1, 2, d2); raw_zeros(&r, 24);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "data type 1", "dtype 1");

    raw_start(&r, 1); raw_tensor(&r, "a.b", 0, 9, nine); raw_int(&r, 0, 4);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "9 dimensions", "ndim 9");

    raw_start(&r, 2); raw_tensor(&r, "a.b", 0, 0, NULL); raw_int(&r, 0, 4);
    raw_tensor(&r, "a.b", 0, 0, NULL); raw_int(&r, 0, 4);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "two tensors are named a.b", "duplicate");

    raw_start(&r, 1); raw_tensor(&r, "", 0, 0, NULL); raw_int(&r, 0, 4);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "no name", "empty name");

    raw_start(&r, 1000); raw_tensor(&r, "a.b", 0, 0, NULL); raw_int(&r, 0, 4);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "tensor count", "count too large");

    r.n = 0; raw_int(&r, 100, 4); raw_bytes(&r, "short, not 100 bytes", 20);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "config runs past the end", "config length");

    r.n = 0; raw_int(&r, 3, 4); raw_bytes(&r, "a\0b", 3); raw_zeros(&r, 8);
    write_raw(p, r.b, r.n, r.n);
    expect_refused(p, "NUL", "NUL in config");

    /* The header's payload length disagrees with the stream. */
    raw_start(&r, 0);
    write_raw(p, r.b, r.n, r.n + 1);
    expect_refused(p, "corrupted", "length too large");
    write_raw(p, r.b, r.n, r.n - 1);
    expect_refused(p, "corrupted", "length too small");
    /* Absurd sizes are refused before anything is allocated. */
    write_raw(p, r.b, r.n, (uint64_t)1 << 40);
    expect_refused(p, "16 GiB", "1 TiB payload");
    write_raw(p, r.b, r.n, (uint64_t)1 << 30);
    expect_refused(p, "corrupted header", "ratio");
}

static void test_not_checkpoint(void)
{
    char p[128];
    cnn_checkpoint got;
    cnn_error e;
    path_in(p, sizeof p, "notes.txt");
    const char *text = "name: not a checkpoint\nbut a long enough text file to have a header\n";
    CHECK(spit(p, text, strlen(text)) == 0);
    expect_refused(p, "not a cnn checkpoint", "text file");

    path_in(p, sizeof p, "missing.cnn");
    CHECK(cnn_checkpoint_read(p, &got, &e) == CNN_ERR_IO);
    CHECK_CONTAINS(e.msg, p);
    CHECK_CONTAINS(e.msg, strerror(ENOENT));
    CHECK(is_empty(&got));

    CHECK(cnn_checkpoint_read(dir, &got, &e) == CNN_ERR_IO);
    CHECK_CONTAINS(e.msg, "not a regular file");
}

static void test_atomic_write(void)
{
    cnn_checkpoint a, b, got;
    cnn_ckpt_tensor ta[6], tb[2];
    cnn_error e;
    char p[128], missing[128];
    fill_sample(&a, ta);
    path_in(p, sizeof p, "model.cnn");
    CHECK(cnn_checkpoint_write(p, &a, &e) == CNN_OK);

    /* A write into a missing folder fails, naming the path and the reason,
     * and does not touch the checkpoint elsewhere. */
    path_in(missing, sizeof missing, "no/such/folder/model.cnn");
    cnn_error_clear(&e);
    CHECK(cnn_checkpoint_write(missing, &a, &e) == CNN_ERR_IO);
    CHECK_CONTAINS(e.msg, missing);
    CHECK_CONTAINS(e.msg, strerror(ENOENT));
    CHECK(cnn_checkpoint_read(p, &got, &e) == CNN_OK && same_checkpoint(&a, &got));
    cnn_checkpoint_free(&got);

    /* Writing over an existing file replaces it. */
    b = a;
    b.config = "name: second\n";
    b.meta = "epoch=4\n";
    tb[0] = ta[1];
    tb[1] = ta[2];
    b.tensors = tb;
    b.ntensors = 2;
    CHECK(cnn_checkpoint_write(p, &b, &e) == CNN_OK);
    CHECK(cnn_checkpoint_read(p, &got, &e) == CNN_OK && same_checkpoint(&b, &got));
    cnn_checkpoint_free(&got);
    CHECK(count_temp_files() == 0);

    /* An invalid checkpoint is refused before anything is written. */
    cnn_ckpt_tensor bad = ta[0];
    bad.size = 5;
    cnn_checkpoint c = {NULL, NULL, &bad, 1};
    CHECK(cnn_checkpoint_write(p, &c, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "conv1.weight");
    bad = ta[0];
    bad.ndim = 9;
    CHECK(cnn_checkpoint_write(p, &c, &e) == CNN_ERR_ARG);
    cnn_ckpt_tensor twice[2] = {ta[1], ta[1]};
    c.tensors = twice;
    c.ntensors = 2;
    CHECK(cnn_checkpoint_write(p, &c, &e) == CNN_ERR_ARG);
    CHECK_CONTAINS(e.msg, "two tensors are named conv1.bias");

    /* A write that fails halfway (the file size limit stands in for a full
     * disk) reports the error, removes its temporary file and leaves the old
     * checkpoint as it was. */
    size_t big_n = (size_t)1 << 20;                /* 4 MiB of noise */
    float *big = malloc(big_n * sizeof *big);
    uint64_t s = 1;
    for (size_t i = 0; i < big_n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(s >> 32) & 0xbf7fffffu;  /* finite */
        memcpy(&big[i], &bits, 4);
    }
    cnn_ckpt_tensor tbig = {"big", 1, {big_n}, big_n, big};
    cnn_checkpoint huge = {"name: big\n", NULL, &tbig, 1};
    struct rlimit old_limit, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    small = old_limit;
    small.rlim_cur = 256 * 1024;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    cnn_error_clear(&e);
    cnn_status st = cnn_checkpoint_write(p, &huge, &e);
    CHECK(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    signal(SIGXFSZ, old_handler);
    CHECK_MSG(st == CNN_ERR_IO, "write past the size limit: status %d", (int)st);
    CHECK_CONTAINS(e.msg, p);
    CHECK_CONTAINS(e.msg, strerror(EFBIG));
    CHECK(count_temp_files() == 0);
    CHECK(cnn_checkpoint_read(p, &got, &e) == CNN_OK && same_checkpoint(&b, &got));
    cnn_checkpoint_free(&got);

    /* Without the limit the same big checkpoint goes through. */
    CHECK(cnn_checkpoint_write(p, &huge, &e) == CNN_OK);
    CHECK(cnn_checkpoint_read(p, &got, &e) == CNN_OK && same_checkpoint(&huge, &got));
    cnn_checkpoint_free(&got);
    CHECK(count_temp_files() == 0);
    free(big);
}

/* Remove the test folder and what is in it. */
int main(void)
{
    if (test_make_dir(dir, sizeof dir, "ckpt")) return 1;
    test_round_trip();
    test_meta();
    test_truncated();
    test_flipped();
    test_bad_payload();
    test_not_checkpoint();
    test_atomic_write();
    test_remove_dir(dir);
    return test_done();
}
