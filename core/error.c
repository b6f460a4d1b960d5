/*
 * Error records, checked allocation, and the edit distance behind the
 * "did you mean" hints (see error.h).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cnn_error_clear(cnn_error *e)
{
    if (e) memset(e, 0, sizeof *e);
}

static void error_vset(cnn_error *e, cnn_status s, const char *fmt, va_list ap)
{
    e->status = s;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

cnn_status cnn_error_set(cnn_error *e, cnn_status s, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        error_vset(e, s, fmt, ap);
        va_end(ap);
    }
    return s;
}

cnn_status cnn_error_at(cnn_error *e, cnn_status s, int line, int col,
                        const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        error_vset(e, s, fmt, ap);
        va_end(ap);
        e->line = line;
        e->col = col;
    }
    return s;
}

void cnn_error_file(cnn_error *e, const char *file)
{
    if (e && file && !e->file[0])
        snprintf(e->file, sizeof e->file, "%s", file);
}

void *cnn_alloc(size_t count, size_t size, const char *what, cnn_error *e)
{
    if (size && count > (size_t)-1 / size) {
        cnn_error_set(e, CNN_ERR_NOMEM, "%s: size overflow (%zu x %zu bytes)",
                      what, count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        cnn_error_set(e, CNN_ERR_NOMEM, "out of memory allocating %s (%zu bytes)",
                      what, count * size);
    return p;
}

void *cnn_realloc(void *p, size_t count, size_t size, const char *what, cnn_error *e)
{
    if (size && count > (size_t)-1 / size) {
        cnn_error_set(e, CNN_ERR_NOMEM, "%s: size overflow (%zu x %zu bytes)",
                      what, count, size);
        return NULL;
    }
    size_t bytes = count * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        cnn_error_set(e, CNN_ERR_NOMEM, "out of memory allocating %s (%zu bytes)",
                      what, count * size);
    return q;
}

char *cnn_strdup(const char *s, cnn_error *e)
{
    size_t n = strlen(s) + 1;
    char *d = cnn_alloc(n, 1, "string", e);
    if (d) memcpy(d, s, n);
    return d;
}

size_t cnn_edit_distance(const char *a, const char *b)
{
    /* Optimal string alignment distance: insertions, deletions,
     * substitutions and swaps of neighbours ("trian" -> "train") cost 1.
     * Names are short (< 64 chars); three rows suffice. */
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return la > lb ? la : lb;
    size_t rows[3][64], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *cnn_closest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = cnn_edit_distance(word, candidates[i]);
        if (d < best_d) { best_d = d; best = candidates[i]; }
    }
    if (!best) return NULL;
    size_t lw = strlen(word), lb = strlen(best);
    size_t longer = lw > lb ? lw : lb;
    size_t limit = longer / 3 > 1 ? longer / 3 : 1;
    return best_d <= limit ? best : NULL;
}
