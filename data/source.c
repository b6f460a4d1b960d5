/*
 * Where labelled images come from (see source.h): listing a folder per
 * class, the Kaggle flat layout or a list file into paths and labels;
 * matching one listing's classes to another's; a deterministic stratified
 * split; and decoding a listing into a cnn_dataset with several threads.
 *
 * Listings are sorted by name (strcmp, byte order) so they do not depend on
 * the order readdir returns. Decoding splits the files into fixed chunks of
 * DECODE_CHUNK that threads take in order; each image is written straight
 * into its own slot of the final buffer, so the pixels do not depend on the
 * thread count. Bad files are left out afterwards by moving the good images
 * down, keeping their order. When the pixels would exceed the memory budget
 * they go into an unlinked cache file mapped into memory instead.
 */
#include "source.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../core/rng.h"

#define IMAGE_EXTS "jpg, jpeg, png, bmp, tga, gif"
#define DECODE_CHUNK 32        /* images a thread takes at a time */
#define MAX_INDEX_CLASSES (1u << 20)   /* largest class index in a list file */

/* Fill e with a message belonging to `file` (replacing any file already
 * recorded) and, when line > 0, a position in it. */
static cnn_status fail_in(cnn_error *e, cnn_status s, const char *file, int line,
                          int col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static cnn_status fail_in(cnn_error *e, cnn_status s, const char *file, int line,
                          int col, const char *fmt, ...)
{
    if (!e) return s;
    va_list ap;
    e->status = s;
    e->line = line;
    e->col = col;
    snprintf(e->file, sizeof e->file, "%s", file ? file : "");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- small helpers: strings, paths, folders ---------------------------- */

typedef struct strvec {
    char **v;                  /* [n] owned strings */
    size_t n, cap;
} strvec;

static void strvec_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Append str (taken over: freed on failure). */
static cnn_status strvec_take(strvec *s, char *str, cnn_error *e)
{
    if (!str) return CNN_ERR_NOMEM;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **v = cnn_realloc(s->v, cap, sizeof *v, "file names", e);
        if (!v) {
            free(str);
            return CNN_ERR_NOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return CNN_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "dir/name" (just name when dir is empty), malloc'd; NULL fills e. */
static char *path_join(const char *dir, const char *name, cnn_error *e)
{
    size_t ld = strlen(dir), ln = strlen(name);
    char *p = cnn_alloc(ld + ln + 2, 1, "a path", e);
    if (!p) return NULL;
    if (ld == 0) {
        memcpy(p, name, ln + 1);
    } else {
        memcpy(p, dir, ld);
        size_t at = ld;
        if (dir[ld - 1] != '/') p[at++] = '/';
        memcpy(p + at, name, ln + 1);
    }
    return p;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int cnn_is_image_name(const char *name)
{
    static const char *const exts[] = {"jpg", "jpeg", "png", "bmp", "tga", "gif"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        const char *a = dot + 1, *b = exts[i];
        while (*a && *b && tolower((unsigned char)*a) == *b) a++, b++;
        if (!*a && !*b) return 1;
    }
    return 0;
}

/* The names in folder `dir`, hidden ones (leading '.') left out, sorted. */
static cnn_status list_names(const char *dir, strvec *out, cnn_error *e)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return fail_in(e, CNN_ERR_IO, dir, 0, 0, "cannot open folder: %s",
                       strerror(errno));
    cnn_status st = CNN_OK;
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        st = strvec_take(out, cnn_strdup(ent->d_name, e), e);
        if (st != CNN_OK) break;
        errno = 0;
    }
    if (st == CNN_OK && errno)
        st = fail_in(e, CNN_ERR_IO, dir, 0, 0, "cannot read folder: %s",
                     strerror(errno));
    closedir(d);
    if (st != CNN_OK) {
        strvec_free(out);
        return st;
    }
    if (out->n) qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return CNN_OK;
}

/* ---- file lists -------------------------------------------------------- */

void cnn_file_list_free(cnn_file_list *l)
{
    if (!l) return;
    if (l->paths)
        for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    free(l->labels);
    if (l->classes)
        for (size_t k = 0; k < l->nclasses; k++) free(l->classes[k]);
    free(l->classes);
    memset(l, 0, sizeof *l);
}

/* A copy of classes[0..n), NULL on failure (e filled). */
static char **dup_classes(char *const *classes, size_t n, cnn_error *e)
{
    char **c = cnn_alloc(n, sizeof *c, "class names", e);
    if (!c) return NULL;
    for (size_t k = 0; k < n; k++) {
        c[k] = cnn_strdup(classes[k], e);
        if (!c[k]) {
            for (size_t j = 0; j < k; j++) free(c[j]);
            free(c);
            return NULL;
        }
    }
    return c;
}

/* Labels from names: classes become the sorted distinct names, and each
 * path's label the index of its name. Takes over paths and names. */
static cnn_status list_from_names(strvec *paths, strvec *names, cnn_file_list *l,
                                  cnn_error *e)
{
    cnn_status st = CNN_ERR_NOMEM;
    strvec classes = {0};
    int *labels = cnn_alloc(paths->n, sizeof *labels, "labels", e);
    char **sorted = cnn_alloc(names->n, sizeof *sorted, "class names", e);
    if (!labels || !sorted) goto fail;
    memcpy(sorted, names->v, names->n * sizeof *sorted);
    qsort(sorted, names->n, sizeof *sorted, cmp_str);
    for (size_t i = 0; i < names->n; i++) {
        if (classes.n && strcmp(classes.v[classes.n - 1], sorted[i]) == 0) continue;
        st = strvec_take(&classes, cnn_strdup(sorted[i], e), e);
        if (st != CNN_OK) goto fail;
    }
    for (size_t i = 0; i < names->n; i++) {
        char **hit = bsearch(&names->v[i], classes.v, classes.n, sizeof *classes.v,
                             cmp_str);
        labels[i] = (int)(hit - classes.v);
    }
    free(sorted);
    strvec_free(names);
    l->n = paths->n;
    l->paths = paths->v;
    l->labels = labels;
    l->nclasses = classes.n;
    l->classes = classes.v;
    memset(paths, 0, sizeof *paths);
    return CNN_OK;

fail:
    free(labels);
    free(sorted);
    strvec_free(&classes);
    strvec_free(paths);
    strvec_free(names);
    return st == CNN_OK ? CNN_ERR_NOMEM : st;
}

cnn_status cnn_list_folders(const char *root, cnn_file_list *l, cnn_error *e)
{
    if (!root || !l) return cnn_error_set(e, CNN_ERR_ARG, "cnn_list_folders: NULL argument");
    memset(l, 0, sizeof *l);
    strvec top, paths = {0}, names = {0}, files = {0};
    cnn_status st = list_names(root, &top, e);
    if (st != CNN_OK) return st;
    size_t nclass = 0;
    for (size_t i = 0; i < top.n && st == CNN_OK; i++) {
        char *dir = path_join(root, top.v[i], e);
        if (!dir) { st = CNN_ERR_NOMEM; break; }
        if (!is_dir(dir)) { free(dir); continue; }
        nclass++;
        st = list_names(dir, &files, e);
        size_t before = paths.n;
        for (size_t j = 0; j < files.n && st == CNN_OK; j++) {
            if (!cnn_is_image_name(files.v[j])) continue;
            char *p = path_join(dir, files.v[j], e);
            if (p && !is_file(p)) { free(p); continue; }
            st = strvec_take(&paths, p, e);
            if (st == CNN_OK) st = strvec_take(&names, cnn_strdup(top.v[i], e), e);
        }
        strvec_free(&files);
        if (st == CNN_OK && paths.n == before)
            st = fail_in(e, CNN_ERR_FORMAT, dir, 0, 0, "class folder '%s' has no "
                         "images (" IMAGE_EXTS ")", top.v[i]);
        free(dir);
    }
    if (st == CNN_OK && nclass == 0)
        st = fail_in(e, CNN_ERR_FORMAT, root, 0, 0, "no class folders (expected "
                     "one subfolder of images per class)");
    strvec_free(&top);
    if (st != CNN_OK) {
        strvec_free(&paths);
        strvec_free(&names);
        return st;
    }
    return list_from_names(&paths, &names, l, e);
}

cnn_status cnn_list_flat(const char *root, cnn_file_list *l, cnn_error *e)
{
    if (!root || !l) return cnn_error_set(e, CNN_ERR_ARG, "cnn_list_flat: NULL argument");
    memset(l, 0, sizeof *l);
    strvec top, paths = {0}, names = {0};
    cnn_status st = list_names(root, &top, e);
    if (st != CNN_OK) return st;
    for (size_t i = 0; i < top.n && st == CNN_OK; i++) {
        if (!cnn_is_image_name(top.v[i])) continue;
        char *p = path_join(root, top.v[i], e);
        if (p && !is_file(p)) { free(p); continue; }
        st = strvec_take(&paths, p, e);
        if (st != CNN_OK) break;
        char *label = cnn_strdup(top.v[i], e);
        if (label) *strchr(label, '.') = '\0';  /* an image name has a dot */
        st = strvec_take(&names, label, e);
    }
    if (st == CNN_OK && paths.n == 0)
        st = fail_in(e, CNN_ERR_FORMAT, root, 0, 0, "no images found (" IMAGE_EXTS
                     ")");
    strvec_free(&top);
    if (st != CNN_OK) {
        strvec_free(&paths);
        strvec_free(&names);
        return st;
    }
    return list_from_names(&paths, &names, l, e);
}

cnn_status cnn_list_dir(const char *root, cnn_file_list *l, cnn_error *e)
{
    if (!root || !l) return cnn_error_set(e, CNN_ERR_ARG, "cnn_list_dir: NULL argument");
    memset(l, 0, sizeof *l);
    struct stat sb;
    if (stat(root, &sb) != 0)
        return fail_in(e, CNN_ERR_IO, root, 0, 0, "cannot open folder: %s",
                       strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return fail_in(e, CNN_ERR_IO, root, 0, 0, "not a folder");
    strvec top;
    cnn_status st = list_names(root, &top, e);
    if (st != CNN_OK) return st;
    int has_sub = 0;
    for (size_t i = 0; i < top.n && !has_sub; i++) {
        char *p = path_join(root, top.v[i], e);
        if (!p) { st = CNN_ERR_NOMEM; break; }
        has_sub = is_dir(p);
        free(p);
    }
    strvec_free(&top);
    if (st != CNN_OK) return st;
    return has_sub ? cnn_list_folders(root, l, e) : cnn_list_flat(root, l, e);
}

/* 1 when s is a non-negative decimal integer of at most 9 digits. */
static int is_index(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9') return 0;
    return n > 0 && n <= 9;
}

cnn_status cnn_list_file(const char *list_path, cnn_file_list *l, cnn_error *e)
{
    if (!list_path || !l) return cnn_error_set(e, CNN_ERR_ARG, "cnn_list_file: NULL argument");
    memset(l, 0, sizeof *l);
    cnn_status st = CNN_OK;
    char *text = NULL;                 /* [size + 1] the whole list file */
    char *base = NULL;                 /* the list file's folder, "" if none */
    strvec paths = {0}, names = {0};
    int *lines = NULL;                 /* [names.n] line of each entry */
    size_t lines_cap = 0;

    FILE *f = fopen(list_path, "rb");
    if (!f)
        return fail_in(e, CNN_ERR_IO, list_path, 0, 0, "cannot open list file: %s",
                       strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return fail_in(e, CNN_ERR_IO, list_path, 0, 0, "not a readable file");
    }
    size_t size = (size_t)sb.st_size;
    text = cnn_alloc(size + 1, 1, "the list file", e);
    if (!text) {
        fclose(f);
        return CNN_ERR_NOMEM;
    }
    size_t got = fread(text, 1, size, f);
    int bad_read = got != size || ferror(f);
    fclose(f);
    if (bad_read) {
        st = fail_in(e, CNN_ERR_IO, list_path, 0, 0, "read error: got %zu of %zu "
                     "bytes", got, size);
        goto done;
    }
    text[size] = '\0';
    if (memchr(text, '\0', size)) {
        st = fail_in(e, CNN_ERR_FORMAT, list_path, 0, 0, "not a text file (it "
                     "holds a NUL byte)");
        goto done;
    }

    char *body = text;
    if ((unsigned char)body[0] == 0xEF && (unsigned char)body[1] == 0xBB
        && (unsigned char)body[2] == 0xBF)
        body += 3;                                /* a UTF-8 byte order mark */

    base = cnn_strdup(list_path, e);
    if (!base) { st = CNN_ERR_NOMEM; goto done; }
    char *slash = strrchr(base, '/');
    if (slash) slash[slash == base ? 1 : 0] = '\0';
    else base[0] = '\0';

    int lineno = 0;
    for (char *line = body; line && *line; ) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lineno++;
        size_t len = strlen(line);
        while (len && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
        char *start = line;
        while (isspace((unsigned char)*start)) start++;
        int col = (int)(start - line) + 1;
        if (*start == '\0' || *start == '#') { line = next; continue; }
        char *sep = start + strlen(start);        /* the last whitespace run */
        while (sep > start && !isspace((unsigned char)sep[-1])) sep--;
        if (sep == start) {
            st = fail_in(e, CNN_ERR_FORMAT, list_path, lineno, col, "expected "
                         "'path label', found one word '%s'", start);
            goto done;
        }
        char *label = sep;
        while (sep > start && isspace((unsigned char)sep[-1])) sep--;
        *sep = '\0';
        char *p = start[0] == '/' ? cnn_strdup(start, e) : path_join(base, start, e);
        if (!p) { st = CNN_ERR_NOMEM; goto done; }
        if (!is_file(p)) {
            int missing = access(p, F_OK) != 0;
            int relative = start[0] != '/' && base[0];
            st = fail_in(e, CNN_ERR_IO, list_path, lineno, col, "'%s' %s%s%s%s",
                         start, missing ? "does not exist" : "is not a file",
                         relative ? " (looked for " : "", relative ? p : "",
                         relative ? ")" : "");
            free(p);
            goto done;
        }
        st = strvec_take(&paths, p, e);
        if (st == CNN_OK) st = strvec_take(&names, cnn_strdup(label, e), e);
        if (st != CNN_OK) goto done;
        if (names.n > lines_cap) {
            lines_cap = paths.cap;
            int *nl = cnn_realloc(lines, lines_cap, sizeof *nl, "line numbers", e);
            if (!nl) { st = CNN_ERR_NOMEM; goto done; }
            lines = nl;
        }
        lines[names.n - 1] = lineno;
        line = next;
    }
    if (paths.n == 0) {
        st = fail_in(e, CNN_ERR_FORMAT, list_path, 0, 0, "no images listed");
        goto done;
    }

    int all_index = 1;
    for (size_t i = 0; i < names.n && all_index; i++) all_index = is_index(names.v[i]);
    if (!all_index) {
        st = list_from_names(&paths, &names, l, e);
        goto done;
    }
    /* Class indices: classes are "0" ... the largest index. */
    long top = 0;
    for (size_t i = 0; i < names.n; i++) {
        long v = strtol(names.v[i], NULL, 10);
        if (v >= (long)MAX_INDEX_CLASSES) {
            st = fail_in(e, CNN_ERR_FORMAT, list_path, lines[i], 0, "class index "
                         "%ld is too large (at most %u)", v, MAX_INDEX_CLASSES - 1);
            goto done;
        }
        if (v > top) top = v;
    }
    l->labels = cnn_alloc(paths.n, sizeof *l->labels, "labels", e);
    l->classes = l->labels ? cnn_alloc((size_t)top + 1, sizeof *l->classes,
                                       "class names", e) : NULL;
    if (!l->classes) { st = CNN_ERR_NOMEM; goto done; }
    l->nclasses = (size_t)top + 1;
    for (size_t k = 0; k < l->nclasses; k++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", k);
        l->classes[k] = cnn_strdup(num, e);
        if (!l->classes[k]) { st = CNN_ERR_NOMEM; goto done; }
    }
    for (size_t i = 0; i < names.n; i++) l->labels[i] = (int)strtol(names.v[i], NULL, 10);
    l->n = paths.n;
    l->paths = paths.v;
    memset(&paths, 0, sizeof paths);

done:
    if (st != CNN_OK) cnn_file_list_free(l);
    strvec_free(&paths);
    strvec_free(&names);
    free(lines);
    free(base);
    free(text);
    return st;
}

cnn_status cnn_file_list_match_classes(cnn_file_list *l, const cnn_file_list *ref,
                                       const char *what, cnn_error *e)
{
    if (!l || !ref)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_file_list_match_classes: NULL argument");
    int *map = cnn_alloc(l->nclasses, sizeof *map, "class map", e);   /* [l->nclasses] */
    if (!map) return CNN_ERR_NOMEM;
    for (size_t k = 0; k < l->nclasses; k++) {
        size_t j = 0;
        while (j < ref->nclasses && strcmp(ref->classes[j], l->classes[k]) != 0) j++;
        if (j == ref->nclasses) {
            /* Unused classes of l (none from a listing) do not matter. */
            int used = 0;
            for (size_t i = 0; i < l->n && !used; i++) used = l->labels[i] == (int)k;
            if (!used) { map[k] = -1; continue; }
            char known[256] = "";
            size_t at = 0;
            for (size_t r = 0; r < ref->nclasses && at < sizeof known - 8; r++) {
                int w = snprintf(known + at, sizeof known - at, "%s%s", r ? ", " : "",
                                 ref->classes[r]);
                if (w < 0 || (size_t)w >= sizeof known - at) {
                    snprintf(known + at, sizeof known - at, ", ...");
                    break;
                }
                at += (size_t)w;
            }
            free(map);
            return fail_in(e, CNN_ERR_FORMAT, what, 0, 0, "class '%s' is not one of "
                           "the %zu training classes (%s)", l->classes[k],
                           ref->nclasses, known);
        }
        map[k] = (int)j;
    }
    char **classes = dup_classes(ref->classes, ref->nclasses, e);
    if (!classes) {
        free(map);
        return CNN_ERR_NOMEM;
    }
    for (size_t i = 0; i < l->n; i++) l->labels[i] = map[l->labels[i]];
    for (size_t k = 0; k < l->nclasses; k++) free(l->classes[k]);
    free(l->classes);
    l->classes = classes;
    l->nclasses = ref->nclasses;
    free(map);
    return CNN_OK;
}

cnn_status cnn_file_list_keep_classes(cnn_file_list *l, const char *const *names,
                                      size_t n, const char *what, cnn_error *e)
{
    if (!l || (n && !names))
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_file_list_keep_classes: NULL argument");
    int *map = cnn_alloc(l->nclasses + 1, sizeof *map, "class map", e);   /* [nclasses] */
    if (!map) return CNN_ERR_NOMEM;
    for (size_t k = 0; k < l->nclasses; k++) map[k] = -1;
    for (size_t j = 0; j < n; j++) {
        size_t k = 0;
        while (k < l->nclasses && strcmp(l->classes[k], names[j]) != 0) k++;
        if (k == l->nclasses) {
            free(map);
            return fail_in(e, CNN_ERR_FORMAT, what, 0, 0, "no class '%s' here (it has "
                           "%zu classes, from '%s' to '%s')", names[j], l->nclasses,
                           l->nclasses ? l->classes[0] : "", l->nclasses ?
                           l->classes[l->nclasses - 1] : "");
        }
        map[k] = (int)j;
    }
    char **classes = dup_classes((char *const *)names, n, e);
    if (!classes) {
        free(map);
        return CNN_ERR_NOMEM;
    }
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        int to = map[l->labels[i]];
        if (to < 0) {
            free(l->paths[i]);
            continue;
        }
        l->paths[kept] = l->paths[i];
        l->labels[kept] = to;
        kept++;
    }
    l->n = kept;
    for (size_t k = 0; k < l->nclasses; k++) free(l->classes[k]);
    free(l->classes);
    l->classes = classes;
    l->nclasses = n;
    free(map);
    return CNN_OK;
}

/* ---- the stratified split ---------------------------------------------- */

/* Mark in is_val [n] the samples that go to validation: per class k, a
 * shuffle of its samples with the stream cnn_rng_seed(seed, k) and the
 * first round(frac * count) of it, at least 1 and at most count - 1 when
 * the class has two or more samples, none when it has one. */
static cnn_status split_mask(const int *labels, size_t n, size_t nclasses,
                             double frac, uint64_t seed, uint8_t *is_val, cnn_error *e)
{
    if (!(frac > 0 && frac < 1))
        return cnn_error_set(e, CNN_ERR_ARG, "the validation fraction must be "
                             "between 0 and 1, got %g", frac);
    if (n > UINT32_MAX)
        return cnn_error_set(e, CNN_ERR_ARG, "cannot split more than %u samples",
                             UINT32_MAX);
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= nclasses)
            return cnn_error_set(e, CNN_ERR_ARG, "sample %zu has label %d, outside "
                                 "0..%zu", i, labels[i], nclasses - 1);
    size_t *start = cnn_alloc(nclasses + 1, sizeof *start, "split counts", e);
    uint32_t *idx = start ? cnn_alloc(n, sizeof *idx, "split order", e) : NULL;
    if (!idx) {
        free(start);
        return CNN_ERR_NOMEM;
    }
    /* idx: the samples grouped by class, in order within each class;
     * class k is idx[start[k] .. start[k+1]). */
    for (size_t i = 0; i < n; i++) start[labels[i] + 1]++;
    for (size_t k = 0; k < nclasses; k++) start[k + 1] += start[k];
    size_t *fill = cnn_alloc(nclasses, sizeof *fill, "split counts", e);
    if (!fill) {
        free(start);
        free(idx);
        return CNN_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) idx[start[labels[i]] + fill[labels[i]]++] = (uint32_t)i;
    memset(is_val, 0, n);
    for (size_t k = 0; k < nclasses; k++) {
        size_t count = start[k + 1] - start[k];
        if (count < 2) continue;
        uint64_t rng = cnn_rng_seed(seed, k);
        cnn_rng_shuffle(&rng, idx + start[k], (uint32_t)count);
        size_t nval = (size_t)(frac * (double)count + 0.5);
        if (nval < 1) nval = 1;
        if (nval > count - 1) nval = count - 1;
        for (size_t j = 0; j < nval; j++) is_val[idx[start[k] + j]] = 1;
    }
    free(fill);
    free(start);
    free(idx);
    return CNN_OK;
}

/* dst gets the entries i of src with is_val[i] == want, in order. */
static cnn_status file_list_pick(const cnn_file_list *src, const uint8_t *is_val,
                                 int want, cnn_file_list *dst, cnn_error *e)
{
    size_t n = 0;
    for (size_t i = 0; i < src->n; i++) n += is_val[i] == want;
    dst->paths = cnn_alloc(n, sizeof *dst->paths, "file list", e);
    dst->labels = dst->paths ? cnn_alloc(n, sizeof *dst->labels, "labels", e) : NULL;
    dst->classes = dst->labels ? dup_classes(src->classes, src->nclasses, e) : NULL;
    if (!dst->classes) return CNN_ERR_NOMEM;
    dst->nclasses = src->nclasses;
    for (size_t i = 0; i < src->n; i++) {
        if (is_val[i] != want) continue;
        dst->paths[dst->n] = cnn_strdup(src->paths[i], e);
        if (!dst->paths[dst->n]) return CNN_ERR_NOMEM;
        dst->labels[dst->n++] = src->labels[i];
    }
    return CNN_OK;
}

cnn_status cnn_file_list_split(const cnn_file_list *all, double frac, uint64_t seed,
                               cnn_file_list *train, cnn_file_list *val, cnn_error *e)
{
    if (!all || !train || !val)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_file_list_split: NULL argument");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    uint8_t *is_val = cnn_alloc(all->n, 1, "split", e);    /* [all->n] */
    if (!is_val) return CNN_ERR_NOMEM;
    cnn_status st = split_mask(all->labels, all->n, all->nclasses, frac, seed, is_val, e);
    if (st == CNN_OK) st = file_list_pick(all, is_val, 0, train, e);
    if (st == CNN_OK) st = file_list_pick(all, is_val, 1, val, e);
    if (st != CNN_OK) {
        cnn_file_list_free(train);
        cnn_file_list_free(val);
    }
    free(is_val);
    return st;
}

/* dst gets the samples i of src with is_val[i] == want, in order (copied,
 * pixels malloc'd). */
static cnn_status dataset_pick(const cnn_dataset *src, const uint8_t *is_val,
                               int want, cnn_dataset *dst, cnn_error *e)
{
    size_t n = 0, per = src->c * src->h * src->w;
    for (size_t i = 0; i < src->n; i++) n += is_val[i] == want;
    dst->c = src->c;
    dst->h = src->h;
    dst->w = src->w;
    dst->nclasses = src->nclasses;
    dst->pixels = cnn_alloc(n, per, "dataset pixels", e);
    dst->labels = dst->pixels ? cnn_alloc(n, sizeof *dst->labels, "labels", e) : NULL;
    if (!dst->labels) return CNN_ERR_NOMEM;
    if (src->classes) {
        dst->classes = dup_classes(src->classes, src->nclasses, e);
        if (!dst->classes) return CNN_ERR_NOMEM;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (is_val[i] != want) continue;
        memcpy(dst->pixels + dst->n * per, src->pixels + i * per, per);
        dst->labels[dst->n++] = src->labels[i];
    }
    return CNN_OK;
}

cnn_status cnn_dataset_split(const cnn_dataset *all, double frac, uint64_t seed,
                             cnn_dataset *train, cnn_dataset *val, cnn_error *e)
{
    if (!all || !train || !val)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_dataset_split: NULL argument");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    uint8_t *is_val = cnn_alloc(all->n, 1, "split", e);    /* [all->n] */
    if (!is_val) return CNN_ERR_NOMEM;
    cnn_status st = split_mask(all->labels, all->n, all->nclasses, frac, seed, is_val, e);
    if (st == CNN_OK) st = dataset_pick(all, is_val, 0, train, e);
    if (st == CNN_OK) st = dataset_pick(all, is_val, 1, val, e);
    if (st != CNN_OK) {
        cnn_dataset_free(train);
        cnn_dataset_free(val);
    }
    free(is_val);
    return st;
}

/* ---- decoding ---------------------------------------------------------- */

/* Shared state of the decoding threads; the fields after `mu` are guarded
 * by it. */
typedef struct decode_job {
    const cnn_file_list *l;
    const cnn_decode_opts *o;
    uint8_t *pixels;           /* [l->n][c][h][w] */
    size_t per;                /* bytes per image: c * h * w */
    uint8_t *ok;               /* [l->n] 1: decoded */
    size_t nchunks;
    pthread_mutex_t mu;
    size_t next_chunk;
    int stop;                  /* a fatal error: take no more chunks */
    size_t fatal_at;           /* lowest index of a fatal error, or SIZE_MAX */
    cnn_error fatal;           /* its error */
    size_t nbad;               /* skipped files */
    size_t bad_at[CNN_DECODE_REPORT_PATHS];  /* lowest indices skipped, sorted */
    char bad_msg[CNN_DECODE_REPORT_PATHS][512];
    size_t nbad_kept;
} decode_job;

/* Note a failure of file i (called with job->mu held). */
static void decode_note_bad(decode_job *job, size_t i, const cnn_error *err, int fatal)
{
    if (fatal) {
        job->stop = 1;
        if (i < job->fatal_at) {
            job->fatal_at = i;
            job->fatal = *err;
        }
        return;
    }
    job->nbad++;
    size_t k = job->nbad_kept;                 /* insertion into bad_at */
    if (k == CNN_DECODE_REPORT_PATHS) {
        if (i > job->bad_at[k - 1]) return;
        k--;
    } else {
        job->nbad_kept++;
    }
    size_t at = k;                             /* where i goes: after the lower */
    while (at > 0 && job->bad_at[at - 1] > i) at--;
    memmove(job->bad_at + at + 1, job->bad_at + at, (k - at) * sizeof *job->bad_at);
    memmove(job->bad_msg + at + 1, job->bad_msg + at, (k - at) * sizeof *job->bad_msg);
    k = at;
    job->bad_at[k] = i;
    char *msg = job->bad_msg[k];
    /* whole buffers, not just the strings, must not depend on the order
     * in which threads report: clear what an earlier message left */
    memset(msg, 0, sizeof job->bad_msg[k]);
    int w = snprintf(msg, sizeof job->bad_msg[k], "%s: %s", job->l->paths[i],
                     err->msg);
    if (w < 0 || (size_t)w >= sizeof job->bad_msg[k])   /* cut short: say so */
        memcpy(msg + sizeof job->bad_msg[k] - 4, "...", 4);
}

static void *decode_worker(void *arg)
{
    decode_job *job = arg;
    const cnn_decode_opts *o = job->o;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        size_t chunk = job->stop ? job->nchunks : job->next_chunk;
        if (chunk < job->nchunks) job->next_chunk++;
        pthread_mutex_unlock(&job->mu);
        if (chunk >= job->nchunks) break;
        size_t end = (chunk + 1) * DECODE_CHUNK;
        if (end > job->l->n) end = job->l->n;
        for (size_t i = chunk * DECODE_CHUNK; i < end; i++) {
            cnn_error err;
            cnn_error_clear(&err);
            cnn_status st = cnn_image_load(job->l->paths[i], &o->image,
                                           job->pixels + i * job->per, &err);
            job->ok[i] = st == CNN_OK;
            if (st == CNN_OK) continue;
            int fatal = !o->skip_bad || (st != CNN_ERR_FORMAT && st != CNN_ERR_IO);
            cnn_error_file(&err, job->l->paths[i]);
            pthread_mutex_lock(&job->mu);
            decode_note_bad(job, i, &err, fatal);
            pthread_mutex_unlock(&job->mu);
            if (fatal) break;      /* later files of this chunk come after i */
        }
    }
    return NULL;
}

/* An unlinked file of `size` bytes in dir (NULL: $TMPDIR or /tmp), mapped
 * shared read/write into *map. */
static cnn_status cache_map(const char *dir, size_t size, uint8_t **map, cnn_error *e)
{
    if (!dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char *path = path_join(dir, "cnn-cache-XXXXXX", e);
    if (!path) return CNN_ERR_NOMEM;
    cnn_status st = CNN_OK;
    int fd = mkstemp(path);
    if (fd < 0) {
        st = fail_in(e, CNN_ERR_IO, path, 0, 0, "cannot create the pixel cache "
                     "file: %s", strerror(errno));
        free(path);
        return st;
    }
    unlink(path);
    int err = ftruncate(fd, (off_t)size) != 0 ? errno : 0;
    if (!err) {
        /* Reserve the blocks now: a full disk found later, while writing
         * through the mapping, would be a SIGBUS. */
        err = posix_fallocate(fd, 0, (off_t)size);
        if (err == EOPNOTSUPP || err == EINVAL) err = 0;  /* fs cannot: go on */
    }
    if (err) {
        st = fail_in(e, CNN_ERR_IO, path, 0, 0, "cannot make the pixel cache "
                     "file %zu bytes (%.1f MiB): %s", size,
                     (double)size / (1 << 20), strerror(err));
    } else {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            st = fail_in(e, CNN_ERR_IO, path, 0, 0, "cannot map the pixel cache "
                         "file (%zu bytes): %s", size, strerror(errno));
        else
            *map = p;
    }
    close(fd);
    free(path);
    return st;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

cnn_status cnn_dataset_decode(const cnn_file_list *l, const cnn_decode_opts *o,
                              cnn_dataset *ds, cnn_decode_report *r, cnn_error *e)
{
    if (!l || !o || !ds)
        return cnn_error_set(e, CNN_ERR_ARG, "cnn_dataset_decode: NULL argument");
    memset(ds, 0, sizeof *ds);
    cnn_decode_report rep;
    memset(&rep, 0, sizeof rep);
    double t0 = now_seconds();
    const cnn_image_opts *im = &o->image;
    if (im->c < 1 || im->c > 4 || im->h < 1 || im->w < 1)
        return cnn_error_set(e, CNN_ERR_ARG, "cannot decode to %zu channels of "
                             "%zux%zu", im->c, im->w, im->h);
    if (l->n == 0)
        return cnn_error_set(e, CNN_ERR_FORMAT, "no images to decode");

    cnn_status st = CNN_OK;
    size_t per = im->c * im->h * im->w;
    if (l->n > (size_t)-1 / per)
        return cnn_error_set(e, CNN_ERR_NOMEM, "%zu images of %zu bytes overflow "
                             "the address space", l->n, per);
    size_t bytes = l->n * per;
    cnn_dataset got = {0};
    decode_job job = {0};
    int mu_ready = 0;
    got.c = im->c;
    got.h = im->h;
    got.w = im->w;
    if (o->memory_budget && bytes > o->memory_budget) {
        st = cache_map(o->cache_dir, bytes, &got.pixels, e);
        if (st != CNN_OK) goto done;
        got.mapped = bytes;
        rep.cached = 1;
    } else {
        got.pixels = cnn_alloc(l->n, per, "decoded images", e);
        if (!got.pixels) { st = CNN_ERR_NOMEM; goto done; }
    }
    got.labels = cnn_alloc(l->n, sizeof *got.labels, "labels", e);
    job.ok = got.labels ? cnn_alloc(l->n, 1, "decode flags", e) : NULL;
    if (!job.ok) { st = CNN_ERR_NOMEM; goto done; }
    got.classes = dup_classes(l->classes, l->nclasses, e);
    if (!got.classes && l->nclasses) { st = CNN_ERR_NOMEM; goto done; }
    got.nclasses = l->nclasses;

    job.l = l;
    job.o = o;
    job.pixels = got.pixels;
    job.per = per;
    job.nchunks = (l->n + DECODE_CHUNK - 1) / DECODE_CHUNK;
    job.fatal_at = SIZE_MAX;
    if (pthread_mutex_init(&job.mu, NULL) != 0) {
        st = cnn_error_set(e, CNN_ERR_NOMEM, "cannot create a mutex");
        goto done;
    }
    mu_ready = 1;

    size_t nthreads = o->threads ? o->threads : 1;
    if (nthreads > job.nchunks) nthreads = job.nchunks;
    pthread_t *tids = nthreads > 1 ? cnn_alloc(nthreads - 1, sizeof *tids,
                                               "threads", e) : NULL;
    size_t started = 0;
    /* This thread works too; threads that fail to start leave more to it. */
    for (size_t t = 0; tids && t + 1 < nthreads; t++)
        if (pthread_create(&tids[started], NULL, decode_worker, &job) == 0) started++;
    decode_worker(&job);
    for (size_t t = 0; t < started; t++) pthread_join(tids[t], NULL);
    free(tids);

    if (job.fatal_at != SIZE_MAX) {
        if (e) *e = job.fatal;
        st = job.fatal.status;
        goto done;
    }
    size_t kept = 0;                  /* move the good images down, in order */
    for (size_t i = 0; i < l->n; i++) {
        if (!job.ok[i]) continue;
        if (kept != i) memmove(got.pixels + kept * per, got.pixels + i * per, per);
        got.labels[kept++] = l->labels[i];
    }
    rep.decoded = kept;
    rep.skipped = job.nbad;
    for (size_t k = 0; k < job.nbad_kept; k++)
        memcpy(rep.first_bad[k], job.bad_msg[k], sizeof rep.first_bad[k]);
    if (kept == 0) {
        st = cnn_error_set(e, CNN_ERR_FORMAT, "none of the %zu images could be "
                           "decoded (first: %s)", l->n, job.bad_msg[0]);
        goto done;
    }
    got.n = kept;
    if (!got.mapped && kept < l->n) {
        uint8_t *p = realloc(got.pixels, kept * per);   /* shrink; may keep */
        if (p) got.pixels = p;
    }
    *ds = got;
    memset(&got, 0, sizeof got);

done:
    if (mu_ready) pthread_mutex_destroy(&job.mu);
    free(job.ok);
    cnn_dataset_free(&got);
    rep.seconds = now_seconds() - t0;
    if (r) *r = rep;
    return st;
}
