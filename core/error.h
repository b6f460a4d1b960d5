/*
 * Error records for libcnn.
 *
 * Functions in core/ and data/ never print and never exit: they return a
 * cnn_status and, on failure, fill a cnn_error with a message and, where the
 * failure belongs to an input file, the file name and the line and column
 * (1-based) inside it. Only cli/ turns a record into text on stderr.
 */
#ifndef CNN_ERROR_H
#define CNN_ERROR_H

#include <stddef.h>

typedef enum cnn_status {
    CNN_OK = 0,
    CNN_ERR_IO,        /* a file could not be read or written */
    CNN_ERR_CONFIG,    /* a configuration value is wrong (exit code 2) */
    CNN_ERR_FORMAT,    /* a file's contents are malformed or corrupted */
    CNN_ERR_NOMEM,     /* an allocation failed */
    CNN_ERR_NUMERIC,   /* a non-finite value appeared */
    CNN_ERR_SHAPE,     /* tensor shapes do not fit together */
    CNN_ERR_ARG        /* a caller passed an invalid argument */
} cnn_status;

typedef struct cnn_error {
    cnn_status status;
    char file[256];    /* input file the error belongs to, "" if none */
    int line, col;     /* position in that file (1-based), 0 if none */
    char msg[768];
} cnn_error;

/* Reset a record to "no error". e may be NULL. */
void cnn_error_clear(cnn_error *e);

/* Fill e (may be NULL) with a printf-style message; returns s so callers can
 * write `return cnn_error_set(e, CNN_ERR_IO, "...")`. Keeps e->file, e->line
 * and e->col as they are. */
cnn_status cnn_error_set(cnn_error *e, cnn_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As cnn_error_set, and also records the line and column (1-based). */
cnn_status cnn_error_at(cnn_error *e, cnn_status s, int line, int col,
                        const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Record the file an error belongs to if none is set yet. e may be NULL. */
void cnn_error_file(cnn_error *e, const char *file);

/* Checked allocation: on failure returns NULL and fills e with CNN_ERR_NOMEM
 * naming `what` and the size. cnn_alloc zeroes the memory. */
void *cnn_alloc(size_t count, size_t size, const char *what, cnn_error *e);
void *cnn_realloc(void *p, size_t count, size_t size, const char *what, cnn_error *e);
char *cnn_strdup(const char *s, cnn_error *e);

/* Edit distance between two short strings, for "did you mean" hints. */
size_t cnn_edit_distance(const char *a, const char *b);

/* The candidate closest to `word` if it is near enough to be a likely typo
 * (distance at most a third of the longer word, at least 1), else NULL. */
const char *cnn_closest(const char *word, const char *const *candidates, size_t n);

#endif
