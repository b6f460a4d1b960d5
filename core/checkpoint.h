/*
 * `.cnn` checkpoint files: the resolved config as YAML text, key=value
 * metadata (trainer state), and named float32 tensors, zlib-compressed with
 * a CRC32 of the uncompressed payload. Writes go to a temporary file in the
 * same folder, flushed and fsynced, then renamed over the target, so an
 * existing file is never damaged. docs/checkpoint.md gives the byte layout.
 */
#ifndef CNN_CHECKPOINT_H
#define CNN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define CNN_CKPT_MAGIC "CNNCKPT\0"
#define CNN_CKPT_VERSION 1u
#define CNN_CKPT_MAX_DIMS 8

typedef struct cnn_ckpt_tensor {
    char *name;                   /* "conv1.weight", "optimizer.m", ... */
    size_t ndim;
    uint64_t dims[CNN_CKPT_MAX_DIMS];
    size_t size;                  /* product of dims */
    float *data;                  /* owned by the checkpoint when read */
} cnn_ckpt_tensor;

typedef struct cnn_checkpoint {
    char *config;                 /* YAML text, NUL-terminated */
    char *meta;                   /* "key=value\n" lines, NUL-terminated */
    cnn_ckpt_tensor *tensors;
    size_t ntensors;
} cnn_checkpoint;

/* Write atomically (temp file, fsync, rename). The checkpoint's strings and
 * tensors are only read. On failure the old file at path is untouched. */
cnn_status cnn_checkpoint_write(const char *path, const cnn_checkpoint *ck,
                                cnn_error *e);

/* Read and verify (magic, version, sizes, CRC32) a whole file into *ck,
 * which then owns everything; free with cnn_checkpoint_free. A truncated or
 * corrupted file fails with CNN_ERR_FORMAT and a message naming the path;
 * nothing is half-loaded. */
cnn_status cnn_checkpoint_read(const char *path, cnn_checkpoint *ck, cnn_error *e);
void cnn_checkpoint_free(cnn_checkpoint *ck);

/* Find a tensor by name; NULL if absent. */
const cnn_ckpt_tensor *cnn_checkpoint_find(const cnn_checkpoint *ck, const char *name);

/* Value of a metadata key as text (pointer into a static-free copy made in
 * buf of size n); returns 0 if found. */
int cnn_checkpoint_meta(const cnn_checkpoint *ck, const char *key, char *buf, size_t n);

#endif
