/*
 * Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without
 * libFuzzer, so the committed corpora run as ordinary regression tests
 * (meson test fuzz_replay_<name>) with any compiler. Each argument is a
 * file or a folder of files (not recursive); each file is read into a
 * buffer of exactly its size and handed over once. A crash or an abort in
 * the target fails the test; otherwise it prints how many inputs ran.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read the whole file; returns 0 and a malloc'd buffer [*len]. */
static int read_all(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return -1;
    }
    *len = (size_t)sb.st_size;
    *buf = malloc(*len ? *len : 1);
    int ok = *buf && fread(*buf, 1, *len, f) == *len;
    fclose(f);
    if (!ok) {
        free(*buf);
        return -1;
    }
    return 0;
}

static int run_file(const char *path)
{
    uint8_t *buf;
    size_t len;
    if (read_all(path, &buf, &len)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order; returns how many ran or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) break;
            names = grown;
        }
        size_t len = strlen(dir) + strlen(ent->d_name) + 2;
        if (!(names[n] = malloc(len))) break;
        snprintf(names[n], len, "%s/%s", dir, ent->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    long ran = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (run_file(names[i])) ran = -1;
            else if (ran >= 0) ran++;
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        long ran;
        if (stat(argv[i], &sb) != 0) ran = -1;
        else if (S_ISDIR(sb.st_mode)) ran = run_dir(argv[i]);
        else ran = run_file(argv[i]) ? -1 : 1;
        if (ran < 0) {
            fprintf(stderr, "replay: cannot replay %s\n", argv[i]);
            return 1;
        }
        if (ran == 0) {
            fprintf(stderr, "replay: %s holds no inputs\n", argv[i]);
            return 1;
        }
        total += ran;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
