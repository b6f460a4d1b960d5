/*
 * Typed access to layer options (see opts.h). Every getter records the key
 * as known, so that cnn_opts_finish can tell an unknown key from a valid one
 * that was simply not given, and suggest the nearest valid key.
 */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *ctx(const cnn_opts *o)
{
    return o->context ? o->context : "options";
}

static void remember(cnn_opts *o, const char *key)
{
    for (size_t i = 0; i < o->nknown; i++)
        if (!strcmp(o->known[i], key)) return;
    if (o->nknown < CNN_OPTS_MAX_KNOWN) o->known[o->nknown++] = key;
}

cnn_opt *cnn_opts_find(cnn_opts *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->items[i].key, key)) return &o->items[i];
    return NULL;
}

/* Look a key up for a getter: remember it, mark it used. */
static cnn_opt *take(cnn_opts *o, const char *key)
{
    remember(o, key);
    cnn_opt *v = cnn_opts_find(o, key);
    if (v) v->used = 1;
    return v;
}

int cnn_parse_long(const char *text, long *out)
{
    char *end;
    if (!text || !*text) return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cnn_parse_double(const char *text, double *out)
{
    char *end;
    if (!text || !*text) return -1;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cnn_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    if (!text) return -1;
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(text, yes[i])) { *out = 1; return 0; }
        if (!strcasecmp(text, no[i])) { *out = 0; return 0; }
    }
    return -1;
}

static cnn_status need_scalar(cnn_opts *o, const cnn_opt *v, const char *what,
                              cnn_error *e)
{
    if (v->text) return CNN_OK;
    return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col,
                        "%s: %s must be %s, got a list", ctx(o), v->key, what);
}

cnn_status cnn_opts_int(cnn_opts *o, const char *key, long def, long min,
                        long max, long *out, cnn_error *e)
{
    cnn_opt *v = take(o, key);
    long x = def;
    if (v) {
        if (need_scalar(o, v, "an integer", e)) return CNN_ERR_CONFIG;
        if (cnn_parse_long(v->text, &x) || x < min || x > max)
            return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col,
                                "%s: %s must be an integer from %ld to %ld, got \"%s\"",
                                ctx(o), key, min, max, v->text);
    }
    *out = x;
    return CNN_OK;
}

cnn_status cnn_opts_float(cnn_opts *o, const char *key, double def,
                          double min, double max, double *out, cnn_error *e)
{
    cnn_opt *v = take(o, key);
    double x = def;
    if (v) {
        if (need_scalar(o, v, "a number", e)) return CNN_ERR_CONFIG;
        if (cnn_parse_double(v->text, &x) || x < min || x > max)
            return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col,
                                "%s: %s must be a number from %g to %g, got \"%s\"",
                                ctx(o), key, min, max, v->text);
    }
    *out = x;
    return CNN_OK;
}

cnn_status cnn_opts_bool(cnn_opts *o, const char *key, int def, int *out,
                         cnn_error *e)
{
    cnn_opt *v = take(o, key);
    int x = def;
    if (v) {
        if (need_scalar(o, v, "true or false", e)) return CNN_ERR_CONFIG;
        if (cnn_parse_bool(v->text, &x))
            return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col,
                                "%s: %s must be true or false, got \"%s\"",
                                ctx(o), key, v->text);
    }
    *out = x;
    return CNN_OK;
}

cnn_status cnn_opts_enum(cnn_opts *o, const char *key, const char *const *choices,
                         size_t n, int def, int *out, cnn_error *e)
{
    cnn_opt *v = take(o, key);
    if (!v) { *out = def; return CNN_OK; }
    if (v->text)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(v->text, choices[i])) { *out = (int)i; return CNN_OK; }
    char list[256] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    const char *near = v->text ? cnn_closest(v->text, choices, n) : NULL;
    return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col,
                        "%s: %s must be one of %s, got \"%s\"%s%s%s", ctx(o), key,
                        list, v->text ? v->text : "a list",
                        near ? "; did you mean '" : "", near ? near : "",
                        near ? "'?" : "");
}

cnn_status cnn_opts_pair(cnn_opts *o, const char *key, long def, long min,
                         long max, long out[2], cnn_error *e)
{
    cnn_opt *v = take(o, key);
    if (!v) { out[0] = out[1] = def; return CNN_OK; }
    if (v->text) {
        long x;
        if (cnn_parse_long(v->text, &x) || x < min || x > max)
            goto bad;
        out[0] = out[1] = x;
        return CNN_OK;
    }
    if (v->nitems != 2) goto bad;
    for (size_t i = 0; i < 2; i++)
        if (cnn_parse_long(v->items[i], &out[i]) || out[i] < min || out[i] > max)
            goto bad;
    return CNN_OK;
bad:
    return cnn_error_at(e, CNN_ERR_CONFIG, v->line, v->col,
                        "%s: %s must be an integer from %ld to %ld or a list "
                        "[height, width] of them, got %s%s%s", ctx(o), key, min, max,
                        v->text ? "\"" : "a list", v->text ? v->text : "",
                        v->text ? "\"" : "");
}

cnn_status cnn_opts_finish(cnn_opts *o, cnn_error *e)
{
    for (size_t i = 0; i < o->n; i++) {
        cnn_opt *v = &o->items[i];
        if (v->used) continue;
        const char *near = cnn_closest(v->key, o->known, o->nknown);
        char known[384] = "";
        for (size_t k = 0; k < o->nknown; k++) {
            strncat(known, k ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, o->known[k], sizeof known - strlen(known) - 1);
        }
        if (near)
            return cnn_error_at(e, CNN_ERR_CONFIG, v->key_line, v->key_col,
                                "%s: unknown option '%s'; did you mean '%s'?",
                                ctx(o), v->key, near);
        return cnn_error_at(e, CNN_ERR_CONFIG, v->key_line, v->key_col,
                            "%s: unknown option '%s' (%s%s)", ctx(o), v->key,
                            o->nknown ? "valid: " : "this kind takes no options",
                            known);
    }
    return CNN_OK;
}
