/*
 * Shared by the fuzz targets (tests/fuzz/fuzz_*.c): the libFuzzer entry
 * point's declaration, and in-memory files for the readers that take a
 * path (IDX, checkpoints). A file is a memfd named by /proc/self/fd/N, so
 * nothing touches the disk and the readers see a regular file they can
 * fopen, gzopen and fstat like any other. Each slot's memfd is made once
 * and rewritten on every input.
 */
#ifndef CNN_FUZZ_H
#define CNN_FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SLOTS 2

/* Make in-memory file `slot` hold data [size]; returns its path (valid
 * until the next call for the same slot). Aborts if the kernel refuses:
 * a fuzz run without files would test nothing. */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
    static int fds[FUZZ_SLOTS] = {-1, -1};
    static char paths[FUZZ_SLOTS][32];
    if (slot < 0 || slot >= FUZZ_SLOTS) abort();
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("cnn-fuzz", MFD_CLOEXEC);
        if (fds[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) {
        perror("ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fds[slot], data + done, size - done, (off_t)done);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)w;
    }
    return paths[slot];
}

#endif
