/*
 * The YAML front end (see config.h). libyaml's event parser reads the text
 * into a small tree of our own (scalars, lists, mappings, each with the line
 * and column where it starts), because libyaml's document tree neither
 * reports duplicate keys nor can be edited. --set overrides edit that tree;
 * the schema is then checked section by section and turned into the specs of
 * config.h; last, the tree (overrides applied, name and seed made explicit)
 * is written back out through libyaml's emitter as cfg->resolved. All memory
 * lives in one arena that cnn_config_free releases.
 *
 * The model section's blocks, repeat and defaults are expanded here too
 * (see "model" below): the engine only ever sees a flat list of layers.
 *
 * Rules shared by every key: a key whose value is empty, ~ or null counts as
 * absent; anchors and aliases are refused; tags are ignored. Nodes written
 * by a --set argument remember it, so that an error in them names the
 * argument instead of a line of the file.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../core/layer.h"
#include "../core/opts.h"

#define CONFIG_MAX_BYTES ((size_t)16 << 20)
#define CONFIG_MAX_DEPTH 64
#define ARENA_BLOCK ((size_t)64 << 10)
#define SIZE_MAX_HW 65536L

/* ---- arena ------------------------------------------------------------ */

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t mem[];
} block;

typedef struct arena {
    block *head;
} arena;

static void arena_free(arena *a)
{
    if (!a) return;
    while (a->head) {
        block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    free(a);
}

/* Zeroed memory that lives as long as the arena. */
static void *arena_alloc(arena *a, size_t n, cnn_error *e)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX / 2) {
        cnn_error_set(e, CNN_ERR_NOMEM, "config: allocation of %zu bytes is too large", n);
        return NULL;
    }
    n = (n + align - 1) / align * align;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        block *b = cnn_alloc(1, sizeof *b + cap, "config", e);
        if (!b) return NULL;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)a->head->mem + a->head->used;
    a->head->used += n;
    return p;
}

static char *arena_strndup(arena *a, const char *s, size_t n, cnn_error *e)
{
    char *d = arena_alloc(a, n + 1, e);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- the tree ---------------------------------------------------------- */

typedef enum node_kind { NODE_NULL, NODE_SCALAR, NODE_SEQ, NODE_MAP } node_kind;

typedef struct node node;
typedef struct pair {
    node *key, *val;
} pair;

struct node {
    node_kind kind;
    int line, col;              /* 1-based start in the file */
    const char *src;            /* the --set argument that wrote it; NULL: the file */
    char *text;                 /* scalars (and nulls): the text as written */
    yaml_scalar_style_t style;  /* scalars: how it was written */
    int flow;                   /* lists and mappings: written in flow style */
    node **items;               /* NODE_SEQ: [n] */
    pair *pairs;                /* NODE_MAP: [n] */
    size_t n;
    node *next;                 /* while building: the next sibling */
};

typedef struct parse {
    arena *mem;
    cnn_error *e;
    const char *path;           /* the file name for messages */
    const char *lossonly;       /* the task's name when it scores no accuracy
                                   (monitors must watch a loss), else NULL */
} parse;

/* One libyaml parser over a text: the config, or one --set value. */
typedef struct reader {
    yaml_parser_t y;
    const char *text;
    size_t len;
    const char *src;            /* the --set argument, NULL for the file */
} reader;

static node *node_new(parse *p, node_kind kind, int line, int col, const char *src)
{
    node *n = arena_alloc(p->mem, sizeof *n, p->e);
    if (!n) return NULL;
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->src = src;
    n->style = YAML_ANY_SCALAR_STYLE;
    return n;
}

static int is_null_word(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null")
        || !strcmp(s, "NULL");
}

static const char *kind_word(const node *n)
{
    return n->kind == NODE_SEQ ? "a list" : n->kind == NODE_MAP ? "a mapping" : "nothing";
}

/* ---- errors ------------------------------------------------------------ */

/* Record a config error at a position; src names a --set argument instead. */
static cnn_status fail_vat(parse *p, const char *src, int line, int col,
                           const char *fmt, va_list ap)
{
    char msg[640];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (src) {
        cnn_error_at(p->e, CNN_ERR_CONFIG, 0, 0, "%s (--set %s)", msg, src);
        cnn_error_file(p->e, "--set");
    } else {
        cnn_error_at(p->e, CNN_ERR_CONFIG, line, col, "%s", msg);
        cnn_error_file(p->e, p->path);
    }
    return CNN_ERR_CONFIG;
}

static cnn_status fail_at(parse *p, const char *src, int line, int col,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static cnn_status fail_at(parse *p, const char *src, int line, int col,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnn_status s = fail_vat(p, src, line, col, fmt, ap);
    va_end(ap);
    return s;
}

/* An error at node n (the file position, or the --set that wrote n). */
static cnn_status fail(parse *p, const node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cnn_status fail(parse *p, const node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnn_status s = fail_vat(p, n ? n->src : NULL, n ? n->line : 0, n ? n->col : 0,
                            fmt, ap);
    va_end(ap);
    return s;
}

/* libyaml's complaint as "<problem> <context> that starts at line L, column C". */
static cnn_status syntax_error(parse *p, reader *r)
{
    yaml_parser_t *y = &r->y;
    if (y->error == YAML_MEMORY_ERROR)
        return cnn_error_set(p->e, CNN_ERR_NOMEM, "out of memory reading YAML");
    const char *problem = y->problem ? y->problem : "invalid YAML";
    if (y->error == YAML_READER_ERROR) {
        int line = 1, col = 1;
        for (size_t i = 0; i < y->problem_offset && i < r->len; i++) {
            unsigned char c = (unsigned char)r->text[i];
            if (c == '\n') { line++; col = 1; }
            else if ((c & 0xC0) != 0x80) col++;
        }
        if (y->problem_value >= 0)
            return fail_at(p, r->src, line, col, "%s (byte 0x%02X)", problem,
                           (unsigned)y->problem_value);
        return fail_at(p, r->src, line, col, "%s", problem);
    }
    int line = (int)y->problem_mark.line + 1, col = (int)y->problem_mark.column + 1;
    if (!y->context)
        return fail_at(p, r->src, line, col, "%s", problem);
    if (y->context_mark.line == y->problem_mark.line
        && y->context_mark.column == y->problem_mark.column)
        return fail_at(p, r->src, line, col, "%s %s", problem, y->context);
    return fail_at(p, r->src, line, col, "%s %s that starts at line %d, column %d",
                   problem, y->context, (int)y->context_mark.line + 1,
                   (int)y->context_mark.column + 1);
}

/* ---- reading YAML into the tree ---------------------------------------- */

static cnn_status next_event(parse *p, reader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->y, ev)) return CNN_OK;
    return syntax_error(p, r);
}

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    int c = strcmp(x->key->text, y->key->text);
    if (c) return c;
    if (x->key->line != y->key->line) return x->key->line < y->key->line ? -1 : 1;
    return x->key->col < y->key->col ? -1 : x->key->col > y->key->col;
}

/* A key given twice is an error naming both places. Sorting a copy keeps
 * this fast for big mappings; the file order stays as written. */
static cnn_status check_duplicates(parse *p, const node *map)
{
    if (map->n < 2) return CNN_OK;
    pair *sorted = arena_alloc(p->mem, map->n * sizeof *sorted, p->e);
    if (!sorted) return CNN_ERR_NOMEM;
    memcpy(sorted, map->pairs, map->n * sizeof *sorted);
    qsort(sorted, map->n, sizeof *sorted, pair_cmp);
    const node *second = NULL, *first = NULL;
    for (size_t i = 1; i < map->n; i++) {
        const node *a = sorted[i - 1].key, *b = sorted[i].key;
        if (strcmp(a->text, b->text)) continue;
        if (i >= 2 && !strcmp(sorted[i - 2].key->text, a->text)) continue;
        if (!second || b->line < second->line
            || (b->line == second->line && b->col < second->col)) {
            second = b;
            first = a;
        }
    }
    if (!second) return CNN_OK;
    return fail(p, second, "duplicate key '%s' (first at line %d, column %d)",
                second->text, first->line, first->col);
}

static cnn_status build(parse *p, reader *r, yaml_event_t *ev, int depth, node **out);

/* Read the children of a list or mapping up to its end event. */
static cnn_status build_children(parse *p, reader *r, node *n, int depth)
{
    node head = {0}, *tail = &head;
    size_t count = 0;
    for (;;) {
        yaml_event_t ev;
        cnn_status st = next_event(p, r, &ev);
        if (st) return st;
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        node *child = NULL;
        if ((st = build(p, r, &ev, depth + 1, &child))) return st;
        if (n->kind == NODE_MAP && count % 2 == 0) {
            if (child->kind == NODE_SEQ || child->kind == NODE_MAP)
                return fail(p, child, "a mapping key must be a plain value, not %s",
                            kind_word(child));
            child->kind = NODE_SCALAR;
        }
        tail->next = child;
        tail = child;
        count++;
    }
    if (n->kind == NODE_SEQ) {
        n->n = count;
        n->items = arena_alloc(p->mem, (count ? count : 1) * sizeof *n->items, p->e);
        if (!n->items) return CNN_ERR_NOMEM;
        size_t i = 0;
        for (node *c = head.next; c; c = c->next) n->items[i++] = c;
        return CNN_OK;
    }
    n->n = count / 2;
    n->pairs = arena_alloc(p->mem, (n->n ? n->n : 1) * sizeof *n->pairs, p->e);
    if (!n->pairs) return CNN_ERR_NOMEM;
    size_t i = 0;
    for (node *c = head.next; c; c = c->next->next, i++) {
        n->pairs[i].key = c;
        n->pairs[i].val = c->next;
    }
    return check_duplicates(p, n);
}

static cnn_status refuse_anchor(parse *p, reader *r, const yaml_event_t *ev,
                                const yaml_char_t *anchor)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT)
        return fail_at(p, r->src, line, col,
                       "aliases (*%s) are not supported; write the value out",
                       (const char *)anchor);
    return fail_at(p, r->src, line, col,
                   "anchors (&%s) are not supported; write the value out",
                   (const char *)anchor);
}

/* Build the node that starts with event ev (consumed here) and its children. */
static cnn_status build(parse *p, reader *r, yaml_event_t *ev, int depth, node **out)
{
    cnn_status st = CNN_OK;
    const yaml_char_t *anchor = NULL;
    node *n = node_new(p, NODE_NULL, (int)ev->start_mark.line + 1,
                       (int)ev->start_mark.column + 1, r->src);
    if (!n) { st = CNN_ERR_NOMEM; goto done; }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        anchor = ev->data.alias.anchor;
        break;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        n->text = arena_strndup(p->mem, (const char *)ev->data.scalar.value,
                                ev->data.scalar.length, p->e);
        if (!n->text) { st = CNN_ERR_NOMEM; goto done; }
        n->style = ev->data.scalar.style;
        n->kind = n->style == YAML_PLAIN_SCALAR_STYLE && is_null_word(n->text)
            ? NODE_NULL : NODE_SCALAR;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        n->kind = NODE_SEQ;
        n->flow = ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        n->kind = NODE_MAP;
        n->flow = ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
        break;
    default:
        st = fail(p, n, "unexpected YAML event");
        goto done;
    }
    if (anchor || ev->type == YAML_ALIAS_EVENT) {
        st = refuse_anchor(p, r, ev, anchor);
        goto done;
    }
    if ((n->kind == NODE_SEQ || n->kind == NODE_MAP) && depth >= CONFIG_MAX_DEPTH) {
        st = fail(p, n, "nesting is deeper than %d levels", CONFIG_MAX_DEPTH);
        goto done;
    }
done:
    yaml_event_delete(ev);
    if (st) return st;
    if (n->kind == NODE_SEQ || n->kind == NODE_MAP)
        st = build_children(p, r, n, depth);
    *out = n;
    return st;
}

/* Parse one YAML document into *root (an empty mapping when there is none). */
static cnn_status read_document(parse *p, const char *text, size_t len,
                                const char *src, node **root)
{
    reader r = {.text = text, .len = len, .src = src};
    cnn_status st = CNN_OK;
    int docs = 0;
    *root = NULL;
    if (!yaml_parser_initialize(&r.y))
        return cnn_error_set(p->e, CNN_ERR_NOMEM, "out of memory starting the YAML parser");
    yaml_parser_set_input_string(&r.y, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t ev;
        if ((st = next_event(p, &r, &ev))) goto done;
        yaml_event_type_t type = ev.type;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        if (type == YAML_STREAM_START_EVENT || type == YAML_DOCUMENT_END_EVENT
            || type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            if (type == YAML_STREAM_END_EVENT) break;
            continue;
        }
        if (type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            if (docs++) {
                st = fail_at(p, src, line, col,
                             "a config is one YAML document; a second one starts here");
                goto done;
            }
            continue;
        }
        if ((st = build(p, &r, &ev, 0, root))) goto done;
    }
    if (!*root || (*root)->kind == NODE_NULL) {
        int line = *root ? (*root)->line : 1, col = *root ? (*root)->col : 1;
        if (!(*root = node_new(p, NODE_MAP, line, col, src))) st = CNN_ERR_NOMEM;
    }
done:
    yaml_parser_delete(&r.y);
    return st;
}

/* ---- --set overrides --------------------------------------------------- */

static void mark_src(node *n, const char *src)
{
    n->src = src;
    for (size_t i = 0; n->kind == NODE_SEQ && i < n->n; i++) mark_src(n->items[i], src);
}

/* The value of a --set: a list when it starts with '[', a quoted scalar when
 * it starts with a quote, else the text as it is (~, null or nothing: null). */
static cnn_status set_value(parse *p, const char *arg, const char *text, node **out)
{
    node *n = NULL;
    cnn_status st;
    if (text[0] == '[' || text[0] == '"' || text[0] == '\'') {
        if ((st = read_document(p, text, strlen(text), arg, &n))) return st;
        if (text[0] == '[' && n->kind != NODE_SEQ)
            return fail_at(p, arg, 0, 0, "the value must be a list like [1, 2]");
        if (text[0] != '[' && n->kind != NODE_SCALAR)
            return fail_at(p, arg, 0, 0, "the value must be one quoted string");
        for (size_t i = 0; n->kind == NODE_SEQ && i < n->n; i++)
            if (n->items[i]->kind == NODE_SEQ || n->items[i]->kind == NODE_MAP)
                return fail_at(p, arg, 0, 0, "list items must be plain values, not %s",
                               kind_word(n->items[i]));
    } else {
        if (!(n = node_new(p, NODE_SCALAR, 0, 0, arg))) return CNN_ERR_NOMEM;
        if (!(n->text = arena_strndup(p->mem, text, strlen(text), p->e)))
            return CNN_ERR_NOMEM;
        n->style = YAML_PLAIN_SCALAR_STYLE;
        if (is_null_word(n->text)) n->kind = NODE_NULL;
    }
    mark_src(n, arg);
    *out = n;
    return CNN_OK;
}

static cnn_status map_add(parse *p, node *map, node *key, node *val)
{
    pair *pairs = arena_alloc(p->mem, (map->n + 1) * sizeof *pairs, p->e);
    if (!pairs) return CNN_ERR_NOMEM;
    if (map->n) memcpy(pairs, map->pairs, map->n * sizeof *pairs);
    pairs[map->n].key = key;
    pairs[map->n].val = val;
    map->pairs = pairs;
    map->n++;
    return CNN_OK;
}

static pair *map_find(const node *map, const char *key)
{
    for (size_t i = 0; map && map->kind == NODE_MAP && i < map->n; i++)
        if (!strcmp(map->pairs[i].key->text, key)) return &map->pairs[i];
    return NULL;
}

/* One step of a --set path: the child of cur named seg, created (as an empty
 * mapping, or as val when last) if cur is a mapping without it. */
static cnn_status set_step(parse *p, const char *arg, const char *path, size_t at,
                           node *cur, const char *seg, node *val, node **next)
{
    if (cur->kind == NODE_NULL) {
        cur->kind = NODE_MAP;
        cur->src = arg;
    }
    if (cur->kind == NODE_MAP) {
        pair *pr = map_find(cur, seg);
        if (pr && val) { pr->val = val; *next = val; return CNN_OK; }
        if (pr) { *next = pr->val; return CNN_OK; }
        node *key = node_new(p, NODE_SCALAR, 0, 0, arg);
        node *child = val ? val : node_new(p, NODE_MAP, 0, 0, arg);
        if (!key || !child || !(key->text = arena_strndup(p->mem, seg, strlen(seg), p->e)))
            return CNN_ERR_NOMEM;
        *next = child;
        return map_add(p, cur, key, child);
    }
    if (cur->kind == NODE_SEQ) {
        char *end;
        errno = 0;
        unsigned long long i = strtoull(seg, &end, 10);
        if (seg[0] < '0' || seg[0] > '9' || *end || errno)
            return fail_at(p, arg, 0, 0, "%.*s is a list; '%s' is not an index (0, 1, ...)",
                           (int)at, path, seg);
        if (i >= cur->n)
            return fail_at(p, arg, 0, 0, "%.*s has %zu items, so there is no index %s "
                           "(indices start at 0)", (int)at, path, cur->n, seg);
        if (val) cur->items[i] = val;
        *next = cur->items[i];
        return CNN_OK;
    }
    return fail_at(p, arg, 0, 0, "%.*s is a single value, so it has no '%s'",
                   (int)at, path, seg);
}

/* Apply "dotted.key=value" to the tree. */
static cnn_status apply_set(parse *p, node *root, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return fail_at(p, arg, 0, 0, "expected KEY=VALUE, e.g. train.epochs=5");
    size_t plen = (size_t)(eq - arg);
    char *path = arena_strndup(p->mem, arg, plen, p->e);
    node *val = NULL, *cur = root;
    cnn_status st;
    if (!path) return CNN_ERR_NOMEM;
    if ((st = set_value(p, arg, eq + 1, &val))) return st;
    for (size_t start = 0; start <= plen;) {
        size_t stop = start;
        while (stop < plen && path[stop] != '.') stop++;
        if (stop == start)
            return fail_at(p, arg, 0, 0, "the key '%s' has an empty part", path);
        char *seg = arena_strndup(p->mem, path + start, stop - start, p->e);
        if (!seg) return CNN_ERR_NOMEM;
        int last = stop == plen;
        if ((st = set_step(p, arg, path, start ? start - 1 : 0, cur, seg,
                           last ? val : NULL, &cur)))
            return st;
        start = stop + 1;
    }
    return CNN_OK;
}

/* ---- schema helpers ---------------------------------------------------- */

/* A mapping section being read: its key (NULL at the top), the mapping
 * (NULL when absent), and its dotted name. */
typedef struct sect {
    const node *key, *map;
    char name[64];
} sect;

static void full_name(char *buf, size_t n, const sect *s, const char *key)
{
    int w = s->name[0] ? snprintf(buf, n, "%s.%s", s->name, key)
                       : snprintf(buf, n, "%s", key);
    assert(w >= 0 && (size_t)w < n && "schema key names are short");
    (void)w;
}

/* The value under key, or NULL if absent or null. */
static const node *value_of(const sect *s, const char *key)
{
    const pair *pr = map_find(s->map, key);
    return pr && pr->val->kind != NODE_NULL ? pr->val : NULL;
}

static void join_names(char *buf, size_t n, const char *const *names, size_t count)
{
    buf[0] = 0;
    for (size_t i = 0; i < count; i++) {
        strncat(buf, i ? ", " : "", n - strlen(buf) - 1);
        strncat(buf, names[i], n - strlen(buf) - 1);
    }
}

/* Every key of s must be one of allowed[n]. */
static cnn_status check_keys(parse *p, const sect *s, const char *const *allowed, size_t n)
{
    for (size_t i = 0; s->map && i < s->map->n; i++) {
        const node *k = s->map->pairs[i].key;
        size_t j = 0;
        while (j < n && strcmp(k->text, allowed[j])) j++;
        if (j < n) continue;
        char where[80] = "";
        if (s->name[0]) snprintf(where, sizeof where, " in %s", s->name);
        const char *near = cnn_closest(k->text, allowed, n);
        if (near)
            return fail(p, k, "unknown %skey '%s'%s; did you mean '%s'?",
                        s->name[0] ? "" : "top-level ", k->text, where, near);
        char list[256];
        join_names(list, sizeof list, allowed, n);
        return fail(p, k, "unknown %skey '%s'%s (allowed: %s)",
                    s->name[0] ? "" : "top-level ", k->text, where, list);
    }
    return CNN_OK;
}

/* Open the mapping under key of parent as a section with the given keys. */
static cnn_status open_sect(parse *p, const sect *parent, const char *key,
                            const char *const *allowed, size_t n, sect *s)
{
    const pair *pr = map_find(parent->map, key);
    memset(s, 0, sizeof *s);
    full_name(s->name, sizeof s->name, parent, key);
    if (!pr) return CNN_OK;
    s->key = pr->key;
    if (pr->val->kind == NODE_NULL) return CNN_OK;
    if (pr->val->kind != NODE_MAP)
        return pr->val->kind == NODE_SCALAR
            ? fail(p, pr->val, "%s must be a mapping, got \"%s\"", s->name, pr->val->text)
            : fail(p, pr->val, "%s must be a mapping, got a list", s->name);
    s->map = pr->val;
    return check_keys(p, s, allowed, n);
}

static cnn_status required(parse *p, const sect *s, const char *key, const char *hint)
{
    char name[128];
    full_name(name, sizeof name, s, key);
    if (s->key) return fail(p, s->key, "%s is required%s", name, hint);
    return fail_at(p, NULL, 0, 0, "%s is required%s", name, hint);
}

/* A type mismatch: "NAME must be WANT, got ...". */
static cnn_status bad_value(parse *p, const node *v, const char *name, const char *want)
{
    if (v->kind == NODE_SCALAR)
        return fail(p, v, "%s must be %s, got \"%s\"", name, want, v->text);
    return fail(p, v, "%s must be %s, got %s", name, want, kind_word(v));
}

static cnn_status int_value(parse *p, const node *v, const char *name, long min,
                            long max, long *out)
{
    char want[96];
    long x;
    if (max == LONG_MAX) snprintf(want, sizeof want, "an integer >= %ld", min);
    else snprintf(want, sizeof want, "an integer from %ld to %ld", min, max);
    if (v->kind != NODE_SCALAR || cnn_parse_long(v->text, &x))
        return bad_value(p, v, name, want);
    if (x < min || x > max) return fail(p, v, "%s must be %s, got %s", name, want, v->text);
    *out = x;
    return CNN_OK;
}

static cnn_status get_int(parse *p, const sect *s, const char *key, long def,
                          long min, long max, long *out)
{
    char name[128];
    const node *v = value_of(s, key);
    *out = def;
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, key);
    return int_value(p, v, name, min, max, out);
}

static cnn_status get_size(parse *p, const sect *s, const char *key, long def,
                           long min, long max, size_t *out)
{
    long x;
    cnn_status st = get_int(p, s, key, def, min, max, &x);
    if (!st) *out = (size_t)x;
    return st;
}

/* A closed or open interval; hi = INFINITY for none. */
typedef struct range {
    double lo, hi;
    int lo_open, hi_open;
} range;

static cnn_status float_value(parse *p, const node *v, const char *name, range r,
                              float *out)
{
    char span[64], want[96];
    double x;
    if (isinf(r.hi)) snprintf(span, sizeof span, "%s %g", r.lo_open ? ">" : ">=", r.lo);
    else snprintf(span, sizeof span, "in %c%g, %g%c", r.lo_open ? '(' : '[', r.lo, r.hi,
                  r.hi_open ? ')' : ']');
    snprintf(want, sizeof want, "a number %s", span);
    if (v->kind != NODE_SCALAR || cnn_parse_double(v->text, &x))
        return bad_value(p, v, name, want);
    if (x < r.lo || (r.lo_open && x == r.lo) || x > r.hi || (r.hi_open && x == r.hi))
        return fail(p, v, "%s must be %s, got %s", name, span, v->text);
    if (fabs(x) > FLT_MAX)
        return fail(p, v, "%s is too large for a 32-bit float, got %s", name, v->text);
    *out = (float)x;
    return CNN_OK;
}

static cnn_status get_float(parse *p, const sect *s, const char *key, float def,
                            range r, float *out)
{
    char name[128];
    const node *v = value_of(s, key);
    *out = def;
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, key);
    return float_value(p, v, name, r, out);
}

static cnn_status get_bool(parse *p, const sect *s, const char *key, int def, int *out)
{
    char name[128];
    const node *v = value_of(s, key);
    *out = def;
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, key);
    if (v->kind != NODE_SCALAR || cnn_parse_bool(v->text, out))
        return bad_value(p, v, name, "true or false");
    return CNN_OK;
}

static cnn_status get_string(parse *p, const sect *s, const char *key, const char **out)
{
    char name[128];
    const node *v = value_of(s, key);
    *out = NULL;
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, key);
    if (v->kind != NODE_SCALAR) return bad_value(p, v, name, "a string");
    *out = v->text;
    return CNN_OK;
}

static cnn_status enum_value(parse *p, const node *v, const char *name,
                             const char *const *choices, size_t n, int *out)
{
    char list[256];
    join_names(list, sizeof list, choices, n);
    for (size_t i = 0; v->kind == NODE_SCALAR && i < n; i++)
        if (!strcmp(v->text, choices[i])) { *out = (int)i; return CNN_OK; }
    if (v->kind != NODE_SCALAR)
        return fail(p, v, "%s must be one of %s, got %s", name, list, kind_word(v));
    const char *near = cnn_closest(v->text, choices, n);
    if (near)
        return fail(p, v, "%s must be one of %s, got \"%s\"; did you mean '%s'?", name,
                    list, v->text, near);
    return fail(p, v, "%s must be one of %s, got \"%s\"", name, list, v->text);
}

/* A key that the chosen type does not take. */
static cnn_status not_for(parse *p, const sect *s, const char *key, const char *valid,
                          const char *type)
{
    const pair *pr = map_find(s->map, key);
    if (!pr || pr->val->kind == NODE_NULL) return CNN_OK;
    return fail(p, pr->key, "%s.%s is only valid for %s, not %s", s->name, key, valid, type);
}

/* A section that may also be written as just its type: `schedule: cosine`.
 * *type_node is the node holding the type (NULL: default). */
static cnn_status open_typed(parse *p, const sect *train, const char *key,
                             const char *const *keys, size_t n, sect *s,
                             const node **type_node)
{
    const pair *pr = map_find(train->map, key);
    *type_node = NULL;
    if (pr && pr->val->kind == NODE_SCALAR) {
        memset(s, 0, sizeof *s);
        full_name(s->name, sizeof s->name, train, key);
        s->key = pr->key;
        *type_node = pr->val;
        return CNN_OK;
    }
    cnn_status st = open_sect(p, train, key, keys, n, s);
    if (!st) *type_node = value_of(s, "type");
    return st;
}

/* ---- data -------------------------------------------------------------- */

/* data.train / data.val: exactly one of path (a folder), list (a list
 * file) or images + labels (IDX). */
static cnn_status parse_source(parse *p, const sect *data, const char *key,
                               cnn_data_source *src)
{
    static const char *const keys[] = {"path", "list", "images", "labels", "limit",
                                       "classes"};
    static const char *const hint =
        " (one of path: FOLDER, list: FILE, or images: + labels: for IDX files)";
    sect s;
    const char *images, *labels, *path, *list;
    cnn_status st;
    if ((st = open_sect(p, data, key, keys, 6, &s))) return st;
    if (!s.map) return CNN_OK;
    if ((st = get_string(p, &s, "path", &path))
        || (st = get_string(p, &s, "list", &list))
        || (st = get_string(p, &s, "images", &images))
        || (st = get_string(p, &s, "labels", &labels))
        || (st = get_size(p, &s, "limit", 0, 0, LONG_MAX, &src->limit)))
        return st;
    int given = (path != NULL) + (list != NULL) + (images != NULL || labels != NULL);
    if (given == 0) return fail(p, s.key, "%s needs a source%s", s.name, hint);
    if (given > 1)
        return fail(p, s.key, "%s has more than one source%s", s.name, hint);
    const node *cv = value_of(&s, "classes");
    if (cv) {
        char name[128];
        full_name(name, sizeof name, &s, "classes");
        if (cv->kind != NODE_SEQ || cv->n == 0)
            return bad_value(p, cv, name, "a list of class names");
        if (images || labels)
            return fail(p, cv, "%s selects folder or list classes by name; IDX data has "
                        "none", name);
        src->classes = arena_alloc(p->mem, cv->n * sizeof *src->classes, p->e);
        if (!src->classes) return CNN_ERR_NOMEM;
        for (size_t i = 0; i < cv->n; i++) {
            if (cv->items[i]->kind != NODE_SCALAR)
                return bad_value(p, cv->items[i], name, "a list of class names");
            for (size_t j = 0; j < i; j++)
                if (!strcmp(src->classes[j], cv->items[i]->text))
                    return fail(p, cv->items[i], "%s names '%s' twice", name,
                                cv->items[i]->text);
            src->classes[i] = cv->items[i]->text;
        }
        src->nclasses = cv->n;
    }
    if (path) {
        src->kind = CNN_SOURCE_DIR;
        src->path = (char *)path;
    } else if (list) {
        src->kind = CNN_SOURCE_LIST;
        src->path = (char *)list;
    } else {
        if (!images) return required(p, &s, "images", " (an IDX image file)");
        if (!labels) return required(p, &s, "labels", " (an IDX label file)");
        src->kind = CNN_SOURCE_IDX;
        src->images = (char *)images;
        src->labels = (char *)labels;
    }
    return CNN_OK;
}

static cnn_status parse_input(parse *p, const sect *data, cnn_shape *shape)
{
    static const char *const keys[] = {"channels", "height", "width"};
    static const char *const hint = " (the model's input shape, e.g. "
                                    "input: {channels: 1, height: 28, width: 28})";
    sect s;
    cnn_status st;
    if ((st = open_sect(p, data, "input", keys, 3, &s))) return st;
    if (!s.map) return required(p, data, "input", hint);
    for (size_t i = 0; i < 3; i++)
        if (!value_of(&s, keys[i])) return required(p, &s, keys[i], "");
    if ((st = get_size(p, &s, "channels", 1, 1, 4, &shape->c))
        || (st = get_size(p, &s, "height", 1, 1, SIZE_MAX_HW, &shape->h))
        || (st = get_size(p, &s, "width", 1, 1, SIZE_MAX_HW, &shape->w)))
        return st;
    return CNN_OK;
}

/* mean or std: a list of one number per channel, or one number (alone or
 * in a list, as torchvision's Normalize takes [0.5]) for all. */
static cnn_status channel_values(parse *p, const sect *s, const char *key, size_t c,
                                 range r, float *out)
{
    char name[128];
    const node *v = value_of(s, key);
    cnn_status st;
    if (!v) return required(p, s, key, "");
    full_name(name, sizeof name, s, key);
    if (v->kind == NODE_SCALAR) {
        if ((st = float_value(p, v, name, r, &out[0]))) return st;
        for (size_t i = 1; i < c; i++) out[i] = out[0];
        return CNN_OK;
    }
    if (v->kind != NODE_SEQ) return bad_value(p, v, name, "a list of numbers");
    if (v->n != c && v->n != 1)
        return fail(p, v, "%s must have %zu value%s, one per channel "
                    "(data.input.channels is %zu), or one for all; got %zu", name, c,
                    c == 1 ? "" : "s", c, v->n);
    for (size_t i = 0; i < c; i++)
        if ((st = float_value(p, v->items[v->n == 1 ? 0 : i], name, r, &out[i]))) return st;
    return CNN_OK;
}

/* data.resize: {mode, height, width}; the decoded (working) size defaults
 * to the input size and may not be smaller. */
static cnn_status parse_resize(parse *p, const sect *data, cnn_data_spec *d)
{
    static const char *const keys[] = {"mode", "height", "width"};
    sect s;
    cnn_status st;
    const node *mode;
    d->resize = CNN_RESIZE_CROP;
    d->work_h = d->input.h;
    d->work_w = d->input.w;
    if ((st = open_typed(p, data, "resize", keys, 3, &s, &mode))) return st;
    if (s.map) mode = value_of(&s, "mode");   /* resize: {mode: ...} or resize: MODE */
    if (mode && (st = enum_value(p, mode, "data.resize.mode", cnn_resize_names,
                                 CNN_RESIZE_COUNT, &d->resize)))
        return st;
    if ((st = get_size(p, &s, "height", (long)d->input.h, 1, SIZE_MAX_HW, &d->work_h))
        || (st = get_size(p, &s, "width", (long)d->input.w, 1, SIZE_MAX_HW, &d->work_w)))
        return st;
    const char *const axis[2] = {"height", "width"};
    size_t work[2] = {d->work_h, d->work_w}, in[2] = {d->input.h, d->input.w};
    for (int i = 0; i < 2; i++)
        if (work[i] < in[i])
            return fail(p, value_of(&s, axis[i]), "data.resize.%s (%zu) must be at least "
                        "data.input.%s (%zu): images are decoded at this size, then "
                        "cropped to the input", axis[i], work[i], axis[i], in[i]);
    return CNN_OK;
}

/* A [lo, hi] pair of numbers within r, lo <= hi. */
static cnn_status get_pair(parse *p, const sect *s, const char *key, const float *def,
                           range r, float *out)
{
    char name[128];
    const node *v = value_of(s, key);
    cnn_status st;
    out[0] = def[0];
    out[1] = def[1];
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, key);
    if (v->kind != NODE_SEQ || v->n != 2)
        return bad_value(p, v, name, "a list of two numbers [low, high]");
    if ((st = float_value(p, v->items[0], name, r, &out[0]))
        || (st = float_value(p, v->items[1], name, r, &out[1])))
        return st;
    if (out[0] > out[1])
        return fail(p, v, "%s must be [low, high] with low <= high, got [%g, %g]", name,
                    (double)out[0], (double)out[1]);
    return CNN_OK;
}

static const char *const pad_names[] = {"zero", "reflect"};

/* One entry of data.augment: `- kind: {options}`, `- kind` for the
 * defaults, or for flip `- flip: horizontal|vertical|both`. */
static cnn_status parse_aug(parse *p, const node *item, size_t index, cnn_aug *a)
{
    static const char *const keys[CNN_AUG_COUNT][4] = {
        [CNN_AUG_CROP] = {"padding", "mode"},
        [CNN_AUG_RESIZED_CROP] = {"scale", "ratio"},
        [CNN_AUG_FLIP] = {"horizontal", "vertical"},
        [CNN_AUG_JITTER] = {"brightness", "contrast", "saturation", "hue"},
        [CNN_AUG_ROTATE] = {"degrees", "mode"},
        [CNN_AUG_NOISE] = {"std"},
        [CNN_AUG_CUTOUT] = {"size", "count"},
    };
    static const char *const flip_names[] = {"horizontal", "vertical", "both"};
    const range unit = {0, 1, 0, 0}, positive = {0, INFINITY, 1, 0};
    const range half = {0, 0.5, 0, 0}, fraction = {0, 1, 1, 0};
    const node *kind, *val = NULL;
    char ctx[32];
    int k = 0;
    cnn_status st;
    snprintf(ctx, sizeof ctx, "data.augment.%zu", index % 100);
    if (item->kind == NODE_SCALAR) {
        kind = item;
    } else if (item->kind == NODE_MAP && item->n == 1) {
        kind = item->pairs[0].key;
        val = item->pairs[0].val;
    } else {
        return fail(p, item, "%s must be one augmentation, e.g. `- flip: horizontal` or "
                    "`- crop: {padding: 4}`", ctx);
    }
    if ((st = enum_value(p, kind, ctx, cnn_aug_names, CNN_AUG_COUNT, &k))) return st;
    memset(a, 0, sizeof *a);
    a->kind = (cnn_aug_kind)k;
    size_t nkeys = 0;
    while (nkeys < 4 && keys[k][nkeys]) nkeys++;
    sect s = {0};
    snprintf(s.name, sizeof s.name, "%s.%s", ctx, cnn_aug_names[k]);
    s.key = kind;
    if (val && val->kind == NODE_SCALAR && !is_null_word(val->text)) {
        if (a->kind != CNN_AUG_FLIP)
            return fail(p, val, "%s takes a mapping of options (%s...), got \"%s\"",
                        s.name, keys[k][0], val->text);
        int axes;
        if ((st = enum_value(p, val, s.name, flip_names, 3, &axes))) return st;
        a->horizontal = axes != 1;
        a->vertical = axes != 0;
        return CNN_OK;
    }
    if (val && val->kind == NODE_MAP) {
        s.map = val;
        if ((st = check_keys(p, &s, keys[k], nkeys))) return st;
    } else if (val && val->kind == NODE_SEQ) {
        return fail(p, val, "%s takes a mapping of options, got a list", s.name);
    }
    int mode = 0;
    switch (a->kind) {
    case CNN_AUG_CROP:
        if ((st = get_size(p, &s, "padding", 0, 0, 4096, &a->padding))) return st;
        if (value_of(&s, "mode")
            && (st = enum_value(p, value_of(&s, "mode"), "mode", pad_names, 2, &mode)))
            return st;
        a->reflect = mode;
        break;
    case CNN_AUG_RESIZED_CROP: {
        const float scale[2] = {0.08f, 1.0f}, ratio[2] = {0.75f, 4.0f / 3.0f};
        if ((st = get_pair(p, &s, "scale", scale, fraction, a->scale))
            || (st = get_pair(p, &s, "ratio", ratio, positive, a->ratio)))
            return st;
        break;
    }
    case CNN_AUG_FLIP: {
        int h, v;
        if ((st = get_bool(p, &s, "horizontal", 1, &h))
            || (st = get_bool(p, &s, "vertical", 0, &v)))
            return st;
        a->horizontal = h;
        a->vertical = v;
        break;
    }
    case CNN_AUG_JITTER:
        if ((st = get_float(p, &s, "brightness", 0, unit, &a->brightness))
            || (st = get_float(p, &s, "contrast", 0, unit, &a->contrast))
            || (st = get_float(p, &s, "saturation", 0, unit, &a->saturation))
            || (st = get_float(p, &s, "hue", 0, half, &a->hue)))
            return st;
        break;
    case CNN_AUG_ROTATE: {
        const range deg = {0, 180, 1, 0};
        if ((st = get_float(p, &s, "degrees", 10, deg, &a->degrees))) return st;
        if (value_of(&s, "mode")
            && (st = enum_value(p, value_of(&s, "mode"), "mode", pad_names, 2, &mode)))
            return st;
        a->reflect = mode;
        break;
    }
    case CNN_AUG_NOISE:
        if ((st = get_float(p, &s, "std", 0.05f, positive, &a->std))) return st;
        break;
    case CNN_AUG_CUTOUT:
        if ((st = get_size(p, &s, "size", 8, 1, SIZE_MAX_HW, &a->size))
            || (st = get_size(p, &s, "count", 1, 1, 1000, &a->count)))
            return st;
        break;
    default:
        break;
    }
    return CNN_OK;
}

static cnn_status parse_augment(parse *p, const sect *data, cnn_data_spec *d)
{
    const node *v = value_of(data, "augment");
    cnn_status st;
    if (!v) return CNN_OK;
    if (v->kind != NODE_SEQ)
        return bad_value(p, v, "data.augment", "a list of augmentations");
    if (v->n > CNN_MAX_AUGS)
        return fail(p, v, "data.augment has %zu entries, at most %d are allowed", v->n,
                    CNN_MAX_AUGS);
    for (size_t i = 0; i < v->n; i++)
        if ((st = parse_aug(p, v->items[i], i, &d->augs[i]))) return st;
    d->naugs = v->n;
    return CNN_OK;
}

/* data.loader: {threads, memory_mb, cache_dir} */
static cnn_status parse_loader(parse *p, const sect *data, cnn_data_spec *d)
{
    static const char *const keys[] = {"threads", "memory_mb", "cache_dir"};
    sect s;
    const char *dir;
    long mb;
    cnn_status st;
    if ((st = open_sect(p, data, "loader", keys, 3, &s))
        || (st = get_size(p, &s, "threads", 1, 0, 64, &d->loader_threads))
        || (st = get_int(p, &s, "memory_mb", 4096, 0, LONG_MAX, &mb))
        || (st = get_string(p, &s, "cache_dir", &dir)))
        return st;
    d->memory_mb = (uint64_t)mb;
    d->cache_dir = (char *)dir;
    return CNN_OK;
}

static cnn_status parse_data(parse *p, const sect *top, cnn_data_spec *d)
{
    static const char *const keys[] = {"train", "val", "val_split", "input", "resize",
                                       "normalize", "augment", "on_bad_image",
                                       "max_pixels", "loader"};
    static const char *const norm_keys[] = {"mean", "std"};
    static const char *const bad_names[] = {"fail", "skip"};
    const range any = {-FLT_MAX, FLT_MAX, 0, 0}, positive = {0, INFINITY, 1, 0};
    const range split = {0, 1, 0, 1};
    sect s, norm;
    long max_pixels;
    cnn_status st;
    if ((st = open_sect(p, top, "data", keys, 10, &s))) return st;
    if (!s.map)
        return required(p, s.key ? &s : top, s.key ? "input" : "data.input",
                        " (the model's input shape, e.g. "
                        "input: {channels: 1, height: 28, width: 28})");
    if ((st = parse_source(p, &s, "train", &d->train))
        || (st = parse_source(p, &s, "val", &d->val))
        || (st = get_float(p, &s, "val_split", 0, split, &d->val_split))
        || (st = parse_input(p, &s, &d->input))
        || (st = parse_resize(p, &s, d))
        || (st = parse_augment(p, &s, d))
        || (st = parse_loader(p, &s, d))
        || (st = get_int(p, &s, "max_pixels", 40000000L, 1, LONG_MAX, &max_pixels)))
        return st;
    d->max_pixels = (uint64_t)max_pixels;
    if (value_of(&s, "on_bad_image")
        && (st = enum_value(p, value_of(&s, "on_bad_image"), "data.on_bad_image",
                            bad_names, 2, &d->skip_bad)))
        return st;
    if (d->val_split > 0 && d->val.kind != CNN_SOURCE_NONE)
        return fail(p, value_of(&s, "val_split"), "data.val_split carves the validation "
                    "set out of data.train, but data.val is given too; keep one");
    if (d->val_split > 0 && d->train.kind == CNN_SOURCE_NONE)
        return fail(p, value_of(&s, "val_split"), "data.val_split needs data.train");
    const node *nv = value_of(&s, "normalize");
    if (nv && nv->kind == NODE_SCALAR) {
        if (strcmp(nv->text, "auto"))
            return fail(p, nv, "data.normalize must be auto or {mean: ..., std: ...}, "
                        "got \"%s\"", nv->text);
        return CNN_OK;
    }
    if ((st = open_sect(p, &s, "normalize", norm_keys, 2, &norm))) return st;
    if (!norm.map) return CNN_OK;
    d->has_normalize = 1;
    if ((st = channel_values(p, &norm, "mean", d->input.c, any, d->mean))
        || (st = channel_values(p, &norm, "std", d->input.c, positive, d->std)))
        return st;
    return CNN_OK;
}

/* ---- model ------------------------------------------------------------- */

/*
 * model.layers is a list of layers and uses of blocks. A block (model.blocks)
 * is a named list of layers with arguments; a use expands it in place into
 * layers named <instance>.<local name>, so that the engine only ever sees a
 * flat list of named layers that read each other by name. model.defaults
 * gives per-kind option values to every layer of a kind that leaves them out.
 *
 * Expansion happens in three steps. First every list (model.layers and each
 * block's layers) is checked on its own: entries, kinds, local names, what
 * `inputs:` and `$arg` refer to, and that blocks do not use themselves.
 * Then the top-level list is expanded recursively into the flat list; an
 * input is a `slot` that is filled in once the layer it names exists, so a
 * layer may read one written after it. Last, slots become names: layers the
 * engine would name itself (top-level layers without a name) get the name it
 * would give them, where something refers to them.
 */

#define MODEL_MAX_LAYERS 10000   /* after expansion; the engine's checks are quadratic */
#define BLOCK_MAX_DEPTH 16       /* blocks used inside blocks */
#define BLOCK_NAME_MAX 40

/* The option keys of a block use besides the block's arguments. */
static const char *const use_keys[] = {"name", "repeat", "inputs", "first"};
#define NUSE_KEYS 4

/* A set of strings with a value each, sized once for its most entries. */
typedef struct strset {
    const char **keys;
    size_t *vals;
    size_t mask, n;
} strset;

static cnn_status set_init(parse *p, strset *s, size_t most)
{
    size_t cap = 16;
    while (cap < 2 * most) cap *= 2;
    s->keys = arena_alloc(p->mem, cap * sizeof *s->keys, p->e);
    s->vals = arena_alloc(p->mem, cap * sizeof *s->vals, p->e);
    s->mask = cap - 1;
    s->n = 0;
    return s->keys && s->vals ? CNN_OK : CNN_ERR_NOMEM;
}

static size_t set_pos(const strset *s, const char *k)
{
    uint64_t h = 1469598103934665603u;   /* FNV-1a */
    for (const char *c = k; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211u;
    size_t i = (size_t)h & s->mask;
    while (s->keys[i] && strcmp(s->keys[i], k)) i = (i + 1) & s->mask;
    return i;
}

/* 1 and *v = its value if k is in the set. */
static int set_get(const strset *s, const char *k, size_t *v)
{
    size_t i = set_pos(s, k);
    if (!s->keys[i]) return 0;
    if (v) *v = s->vals[i];
    return 1;
}

/* Add k -> v. If k is there already, leave it, put its value in *old and
 * return 1. */
static int set_add(strset *s, const char *k, size_t v, size_t *old)
{
    size_t i = set_pos(s, k);
    if (s->keys[i]) { *old = s->vals[i]; return 1; }
    assert(s->n < s->mask && "strset sized for its most entries");
    s->keys[i] = k;
    s->vals[i] = v;
    s->n++;
    return 0;
}

/* Where an input comes from; filled in when that layer is written out. */
typedef struct slot {
    size_t idx;             /* index in the flat list, or one of: */
    const char *name;       /* SLOT_NAME: a top-level name, resolved last */
} slot;
#define SLOT_UNSET ((size_t)-1)
#define SLOT_INPUT ((size_t)-2)   /* the network input */
#define SLOT_NAME ((size_t)-3)

typedef struct blockdef blockdef;

/* One entry of a layer list. */
typedef struct item {
    const node *entry, *kind, *opts;  /* opts: the mapping, or NULL */
    blockdef *use;                    /* a use of this block; NULL: a layer */
    const pair *name, *inputs;        /* in opts; NULL when absent or null */
    const char *local;                /* its name in the list; NULL: an unnamed
                                         top-level layer (the engine names it) */
    const char *ctx;                  /* "layer 2 (relu)", for messages */
} item;

struct blockdef {
    const char *name;                 /* NULL: model.layers itself */
    const node *key;                  /* the name in model.blocks */
    const node *args;                 /* mapping argument -> default, or NULL */
    const node *list;                 /* its layers */
    item *items;                      /* [n] */
    size_t n;
    strset locals;                    /* local name -> item index */
    int state;                        /* nesting check: 0 new, 1 open, 2 done */
    size_t height;                    /* levels of blocks, itself included */
};

/* What the flat list keeps about a layer besides its spec. */
typedef struct flat {
    slot **in;                        /* [nin] */
    size_t nin;
    int by_default;                   /* no inputs: written; in[0] is its default */
    const node *at;                   /* its name, or the top-level use that made it */
} flat;

/* An expanded use: "layer2.0", or "layer2" for all its repetitions. */
typedef struct instance {
    const char *name;
    slot *out;
    const node *at;
} instance;

typedef struct model {
    blockdef *blocks;
    size_t nblocks;
    const node *defaults;             /* model.defaults, or NULL */
    cnn_layer_spec *specs;            /* the flat list, [n] of cap */
    flat *info;                       /* [n] */
    size_t n, cap;
    instance *insts;
    size_t ninsts, icap;
} model;

/* A list being expanded: model.layers, or one instance of a block. */
typedef struct scope {
    const blockdef *def;
    const char *prefix;               /* instance name; NULL at the top level */
    const node **argv;                /* argument values, in def->args order */
    slot *input;                      /* the block's input */
    slot *outs;                       /* [def->n]: each item's output */
    size_t depth;                     /* 0 at the top level */
    const node *use;                  /* the top-level use being expanded */
} scope;

static int valid_layer_name(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static int valid_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_'))
            return 0;
    return 1;
}

static char *arena_printf(parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *arena_printf(parse *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(p->mem, (size_t)n + 1, p->e);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static blockdef *find_block(const model *m, const char *name)
{
    for (size_t i = 0; i < m->nblocks; i++)
        if (!strcmp(m->blocks[i].name, name)) return &m->blocks[i];
    return NULL;
}

static long find_arg(const blockdef *b, const char *name)
{
    for (size_t i = 0; b->args && i < b->args->n; i++)
        if (!strcmp(b->args->pairs[i].key->text, name)) return (long)i;
    return -1;
}

/* Split a layer entry into its kind (a scalar) and its options (or NULL).
 * `what` names it: "layer 3", "layer 3 of block 'basic'". */
static cnn_status layer_entry(parse *p, const node *item, const char *what,
                              const node **kind, const node **opts)
{
    *opts = NULL;
    if (item->kind == NODE_SCALAR) { *kind = item; return CNN_OK; }
    if (item->kind == NODE_NULL || (item->kind == NODE_MAP && item->n == 0))
        return fail(p, item, "%s is empty; write a kind, e.g. '- relu' or "
                    "'- conv: {filters: 8, kernel: 3}'", what);
    if (item->kind == NODE_SEQ)
        return fail(p, item, "%s must be a kind ('- relu') or 'kind: {options}' "
                    "('- conv: {filters: 8}'), got a list", what);
    if (item->n != 1)
        return fail(p, item->pairs[1].key, "%s has %zu keys (%s, %s%s); a layer is "
                    "one 'kind: {options}' pair, e.g. '- conv: {filters: 8}' (indent the "
                    "options under the kind, or put them in braces)", what, item->n,
                    item->pairs[0].key->text, item->pairs[1].key->text,
                    item->n > 2 ? ", ..." : "");
    *kind = item->pairs[0].key;
    const node *v = item->pairs[0].val;
    if (v->kind == NODE_MAP) *opts = v;
    else if (v->kind != NODE_NULL)
        return v->kind == NODE_SCALAR
            ? fail(p, v, "the options of %s (%s) must be a mapping, e.g. "
                   "'- %s: {...}', got \"%s\"", what, (*kind)->text, (*kind)->text, v->text)
            : fail(p, v, "the options of %s (%s) must be a mapping, e.g. "
                   "'- %s: {...}', got a list", what, (*kind)->text, (*kind)->text);
    return CNN_OK;
}

/* The kind must be a registered layer kind (or, with blocks, a block).
 * `pre` starts the message ("" or "model.defaults: "). */
static cnn_status check_kind(parse *p, const model *m, const node *kind, const char *pre)
{
    size_t nk = cnn_layer_kind_count, nb = m ? m->nblocks : 0;
    char list[512], blist[256] = "";
    if (cnn_layer_kind_find(kind->text)) return CNN_OK;
    const char **names = arena_alloc(p->mem, (nk + nb + 1) * sizeof *names, p->e);
    if (!names) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < nk; i++) names[i] = cnn_layer_kinds[i]->name;
    for (size_t i = 0; i < nb; i++) names[nk + i] = m->blocks[i].name;
    const char *near = cnn_closest(kind->text, names, nk + nb);
    if (near)
        return fail(p, kind, "%sunknown layer kind '%s'; did you mean '%s'?", pre,
                    kind->text, near);
    join_names(list, sizeof list, names, nk);
    if (nb) {
        strcpy(blist, "; blocks: ");
        join_names(blist + strlen(blist), sizeof blist - strlen(blist), names + nk, nb);
    }
    return fail(p, kind, "%sunknown layer kind '%s' (known kinds: %s%s)", pre, kind->text,
                list, blist);
}

static cnn_status layer_name(parse *p, const node *v, const char *ctx, const char **out)
{
    if (v->kind != NODE_SCALAR) return fail(p, v, "%s: name must be a string, got %s",
                                            ctx, kind_word(v));
    if (!v->text[0] || strlen(v->text) >= CNN_NAME_MAX || !valid_layer_name(v->text))
        return fail(p, v, "%s: a layer name has 1 to %d letters, digits, '_', '.' or "
                    "'-', got \"%s\"", ctx, CNN_NAME_MAX - 1, v->text);
    if (!strcmp(v->text, "input"))
        return fail(p, v, "%s: the name 'input' is reserved for the network input", ctx);
    *out = v->text;
    return CNN_OK;
}

/* One option: a scalar's text, or a list of scalars' texts. */
static cnn_status layer_opt(parse *p, const pair *pr, const char *ctx, cnn_opt *o)
{
    const node *v = pr->val;
    o->key = pr->key->text;
    o->key_line = pr->key->src ? 0 : pr->key->line;
    o->key_col = pr->key->src ? 0 : pr->key->col;
    o->line = v->src ? 0 : v->line;
    o->col = v->src ? 0 : v->col;
    if (v->kind == NODE_SCALAR) { o->text = v->text; return CNN_OK; }
    if (v->kind == NODE_MAP)
        return fail(p, v, "%s: option '%s' is a mapping; layer options are values or "
                    "lists of values", ctx, o->key);
    const char **items = arena_alloc(p->mem, (v->n ? v->n : 1) * sizeof *items, p->e);
    if (!items) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind == NODE_SEQ || v->items[i]->kind == NODE_MAP)
            return fail(p, v->items[i], "%s: the items of option '%s' must be plain "
                        "values, not %s", ctx, o->key, kind_word(v->items[i]));
        items[i] = v->items[i]->text;
    }
    o->items = items;
    o->nitems = v->n;
    return CNN_OK;
}

/* ---- $arg references ---- */

typedef struct argref {
    char name[CNN_NAME_MAX];
    char op;                 /* 0, '*' or '/' */
    long n;
} argref;

/* "$name", "$name*N" or "$name/N" (N > 0; spaces around the operator are
 * fine). Returns 0 when the text is one of them. */
static int parse_argref(const char *s, argref *r)
{
    size_t i = 1, k = 0;
    if (s[0] != '$') return -1;
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_'))
        return -1;
    while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
           || (s[i] >= '0' && s[i] <= '9') || s[i] == '_') {
        if (k + 1 >= sizeof r->name) return -1;
        r->name[k++] = s[i++];
    }
    r->name[k] = 0;
    r->op = 0;
    while (s[i] == ' ') i++;
    if (!s[i]) return 0;
    if (s[i] != '*' && s[i] != '/') return -1;
    r->op = s[i++];
    while (s[i] == ' ') i++;
    if (s[i] < '1' || s[i] > '9') return -1;
    errno = 0;
    char *end;
    r->n = strtol(s + i, &end, 10);
    return errno || *end ? -1 : 0;
}

/* "filters, stride" (or "none"), for messages. */
static const char *arg_list(parse *p, const blockdef *b, int dollar)
{
    size_t n = b->args ? b->args->n : 0, len = 8;
    for (size_t i = 0; i < n; i++) len += strlen(b->args->pairs[i].key->text) + 3;
    char *s = arena_alloc(p->mem, len, p->e);
    if (!s) return "";
    if (!n) strcpy(s, "none");
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(s, ", ");
        if (dollar) strcat(s, "$");
        strcat(s, b->args->pairs[i].key->text);
    }
    return s;
}

/* A `$...` value in a layer option or a use's argument (v a scalar that
 * starts with '$'): it must be a well-formed reference to an argument of b. */
static cnn_status check_argref(parse *p, const blockdef *b, const node *v, const char *ctx)
{
    argref r;
    if (parse_argref(v->text, &r))
        return fail(p, v, "%s: '%s' is not a block argument reference; write $name, "
                    "$name*N or $name/N (N a positive integer)", ctx, v->text);
    if (!b->name)
        return fail(p, v, "%s: %s can only be used inside a block (model.blocks)", ctx,
                    v->text);
    if (!strcmp(r.name, "input"))
        return fail(p, v, "%s: $input names the block's input; it can only be used in "
                    "inputs", ctx);
    if (find_arg(b, r.name) >= 0) return CNN_OK;
    size_t n = b->args ? b->args->n : 0;
    const char **cands = arena_alloc(p->mem, (n + 1) * sizeof *cands, p->e);
    if (!cands) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) cands[i] = b->args->pairs[i].key->text;
    cands[n] = "input";
    const char *near = cnn_closest(r.name, cands, n + 1);
    if (near)
        return fail(p, v, "block '%s' has no argument '$%s'; did you mean '$%s'?", b->name,
                    r.name, near);
    return fail(p, v, "block '%s' has no argument '$%s' (its arguments: %s)", b->name,
                r.name, arg_list(p, b, 1));
}

/* Every `$...` in an option value (a scalar or a list of them). */
static cnn_status check_value_refs(parse *p, const blockdef *b, const node *v,
                                   const char *ctx)
{
    cnn_status st;
    if (v->kind == NODE_SCALAR && v->text[0] == '$') return check_argref(p, b, v, ctx);
    for (size_t i = 0; v->kind == NODE_SEQ && i < v->n; i++)
        if ((st = check_value_refs(p, b, v->items[i], ctx))) return st;
    return CNN_OK;
}

/* One name in `inputs:`: in a block, a local name or $input; at the top
 * level, any name (the engine checks it) but no $. */
static cnn_status check_input_ref(parse *p, const blockdef *b, const node *v, const char *ctx)
{
    if (v->text[0] == '$') {
        if (!b->name)
            return !strcmp(v->text, "$input")
                ? fail(p, v, "%s: $input can only be used inside a block; the network "
                       "input is 'input'", ctx)
                : fail(p, v, "%s: %s can only be used inside a block (model.blocks)", ctx,
                       v->text);
        if (strcmp(v->text, "$input"))
            return fail(p, v, "%s: inputs name layers; '%s' is not one (the block's "
                        "input is $input)", ctx, v->text);
        return CNN_OK;
    }
    if (!b->name || set_get(&b->locals, v->text, NULL)) return CNN_OK;
    const char **cands = arena_alloc(p->mem, (b->n + 1) * sizeof *cands, p->e);
    if (!cands) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < b->n; i++) cands[i] = b->items[i].local;
    cands[b->n] = "$input";
    const char *near = cnn_closest(v->text, cands, b->n + 1);
    if (near)
        return fail(p, v, "%s: '%s' is not a layer of block '%s'; did you mean '%s'?", ctx,
                    v->text, b->name, near);
    return fail(p, v, "%s: '%s' is not a layer of block '%s' (its layers read each other "
                "by their names in the block, and the block's input as $input)", ctx,
                v->text, b->name);
}

/* `inputs:` of a layer: one name or a list of 1 to CNN_MAX_INPUTS. */
static cnn_status check_inputs(parse *p, const blockdef *b, const node *v, const char *ctx)
{
    size_t n = v->kind == NODE_SEQ ? v->n : 1;
    cnn_status st;
    if (v->kind == NODE_MAP || n < 1 || n > CNN_MAX_INPUTS)
        return fail(p, v, "%s: inputs must be a layer name or a list of 1 to %d of them",
                    ctx, CNN_MAX_INPUTS);
    for (size_t i = 0; i < n; i++) {
        const node *it = v->kind == NODE_SEQ ? v->items[i] : v;
        if (it->kind != NODE_SCALAR)
            return fail(p, it, "%s: inputs must name layers, got %s", ctx, kind_word(it));
        if ((st = check_input_ref(p, b, it, ctx))) return st;
    }
    return CNN_OK;
}

static cnn_status unknown_arg(parse *p, const blockdef *u, const node *key, int in_first)
{
    size_t n = u->args ? u->args->n : 0;
    const char **cands = arena_alloc(p->mem, (n + NUSE_KEYS) * sizeof *cands, p->e);
    if (!cands) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) cands[i] = u->args->pairs[i].key->text;
    for (size_t i = 0; !in_first && i < NUSE_KEYS; i++) cands[n + i] = use_keys[i];
    const char *near = cnn_closest(key->text, cands, n + (in_first ? 0 : NUSE_KEYS));
    if (near)
        return fail(p, key, "block '%s' has no argument '%s'; did you mean '%s'?", u->name,
                    key->text, near);
    return fail(p, key, "block '%s' has no argument '%s' (its arguments: %s)", u->name,
                key->text, arg_list(p, u, 0));
}

/* The options of a use of a block, written in list b. */
static cnn_status check_use(parse *p, const blockdef *b, const item *it)
{
    const blockdef *u = it->use;
    cnn_status st;
    for (size_t i = 0; it->opts && i < it->opts->n; i++) {
        const pair *pr = &it->opts->pairs[i];
        const char *key = pr->key->text;
        const node *v = pr->val;
        if (!strcmp(key, "name")) continue;
        if (find_arg(u, key) < 0 && strcmp(key, "repeat") && strcmp(key, "inputs")
            && strcmp(key, "first"))
            return unknown_arg(p, u, pr->key, 0);
        if (v->kind == NODE_NULL) continue;
        if (!strcmp(key, "inputs")) {
            const node *one = v->kind == NODE_SEQ && v->n == 1 ? v->items[0] : v;
            if (one->kind != NODE_SCALAR)
                return v->kind == NODE_SEQ && v->n != 1
                    ? fail(p, v, "%s: the input of a block is one layer name, got a list "
                           "of %zu", it->ctx, v->n)
                    : fail(p, one, "%s: the input of a block is one layer name, got %s",
                           it->ctx, kind_word(one));
            if ((st = check_input_ref(p, b, one, it->ctx))) return st;
        } else if (!strcmp(key, "first")) {
            if (v->kind != NODE_MAP)
                return v->kind == NODE_SCALAR
                    ? fail(p, v, "%s: first must be a mapping of block arguments, e.g. "
                           "first: {stride: 2}, got \"%s\"", it->ctx, v->text)
                    : fail(p, v, "%s: first must be a mapping of block arguments, e.g. "
                           "first: {stride: 2}, got a list", it->ctx);
            for (size_t j = 0; j < v->n; j++) {
                if (find_arg(u, v->pairs[j].key->text) < 0)
                    return unknown_arg(p, u, v->pairs[j].key, 1);
                if ((st = check_value_refs(p, b, v->pairs[j].val, it->ctx))) return st;
            }
        } else if ((st = check_value_refs(p, b, v, it->ctx))) {
            return st;
        }
    }
    return CNN_OK;
}

/* Check list b->list: entries, kinds, names (given and generated), and what
 * inputs and $arg refer to. */
static cnn_status analyze_list(parse *p, const model *m, blockdef *b)
{
    const node *list = b->list;
    char what[BLOCK_NAME_MAX + 64], ctx[CNN_NAME_MAX + BLOCK_NAME_MAX + 64];
    cnn_status st;
    b->n = list->n;
    b->items = arena_alloc(p->mem, (b->n ? b->n : 1) * sizeof *b->items, p->e);
    if (!b->items || (st = set_init(p, &b->locals, b->n))) return CNN_ERR_NOMEM;
    for (size_t j = 0; j < b->n; j++) {
        item *it = &b->items[j];
        const char *in = b->name ? "block '" : "", *end = b->name ? "', " : "";
        const char *bn = b->name ? b->name : "";
        if (b->name) snprintf(what, sizeof what, "layer %zu of block '%s'", j + 1, b->name);
        else snprintf(what, sizeof what, "layer %zu", j + 1);
        it->entry = list->items[j];
        if ((st = layer_entry(p, it->entry, what, &it->kind, &it->opts))) return st;
        if (!(it->use = find_block(m, it->kind->text)) && (st = check_kind(p, m, it->kind, "")))
            return st;
        snprintf(ctx, sizeof ctx, "%s%s%slayer %zu (%s)", in, bn, end, j + 1, it->kind->text);
        const pair *pr = map_find(it->opts, "name");
        if (pr && pr->val->kind != NODE_NULL) {
            it->name = pr;
            if ((st = layer_name(p, pr->val, ctx, &it->local))) return st;
            snprintf(ctx, sizeof ctx, "%s%s%slayer '%s' (%s)", in, bn, end, it->local,
                     it->kind->text);
            size_t first;
            if (set_add(&b->locals, it->local, j, &first)) {
                const node *a = b->items[first].name->val;
                return fail(p, pr->val, "%s%s%stwo layers are named '%s' (layers %zu and "
                            "%zu; the first at line %d, column %d)", b->name ? "block '" : "",
                            bn, b->name ? "': " : "", it->local, first + 1, j + 1,
                            a->line, a->col);
            }
        }
        if ((pr = map_find(it->opts, "inputs")) && pr->val->kind != NODE_NULL) it->inputs = pr;
        if (!(it->ctx = arena_strndup(p->mem, ctx, strlen(ctx), p->e))) return CNN_ERR_NOMEM;
    }
    /* Unnamed layers in a block, and unnamed uses, are named like the engine
     * names top-level layers: the kind (or block) and the first free number. */
    for (size_t j = 0; j < b->n; j++) {
        item *it = &b->items[j];
        if (it->local || (!b->name && !it->use)) continue;
        for (unsigned k = 1;; k++) {
            char *s = arena_printf(p, "%s%u", it->kind->text, k);
            size_t old;
            if (!s) return CNN_ERR_NOMEM;
            if (!set_add(&b->locals, s, j, &old)) { it->local = s; break; }
        }
    }
    for (size_t j = 0; j < b->n; j++) {
        const item *it = &b->items[j];
        if (it->use) {
            if ((st = check_use(p, b, it))) return st;
            continue;
        }
        if (it->inputs && (st = check_inputs(p, b, it->inputs->val, it->ctx))) return st;
        for (size_t i = 0; it->opts && i < it->opts->n; i++) {
            const pair *pr = &it->opts->pairs[i];
            if (pr == it->name || pr == it->inputs) continue;
            if ((st = check_value_refs(p, b, pr->val, it->ctx))) return st;
        }
    }
    return CNN_OK;
}

/* "a -> b -> c" for blocks path[from..n-1], then last. */
static const char *block_chain(parse *p, const blockdef *const *path, size_t from,
                               size_t n, const blockdef *last)
{
    size_t len = strlen(last->name) + 1;
    for (size_t i = from; i < n; i++) len += strlen(path[i]->name) + 4;
    char *s = arena_alloc(p->mem, len, p->e);
    if (!s) return "";
    for (size_t i = from; i < n; i++) {
        strcat(s, path[i]->name);
        strcat(s, " -> ");
    }
    strcat(s, last->name);
    return s;
}

/* No block may use itself, directly or not, and blocks nest at most
 * BLOCK_MAX_DEPTH levels. path[0..depth-1] use b. */
static cnn_status check_nesting(parse *p, blockdef *b, const blockdef **path, size_t depth)
{
    cnn_status st;
    path[depth] = b;
    b->state = 1;
    b->height = 1;
    for (size_t j = 0; j < b->n; j++) {
        blockdef *u = b->items[j].use;
        if (!u) continue;
        if (u->state == 1) {
            size_t from = 0;
            while (path[from] != u) from++;
            return fail(p, b->items[j].kind, "block '%s' uses itself (%s)", u->name,
                        block_chain(p, path, from, depth + 1, u));
        }
        if (u->state == 0 && depth + 2 <= BLOCK_MAX_DEPTH
            && (st = check_nesting(p, u, path, depth + 1)))
            return st;
        if (u->state == 0 || depth + 1 + u->height > BLOCK_MAX_DEPTH) {
            int more = 0;
            for (size_t k = 0; k < u->n; k++) more |= u->items[k].use != NULL;
            return fail(p, b->items[j].kind, "blocks nest more than %d levels deep "
                        "(%s%s)", BLOCK_MAX_DEPTH, block_chain(p, path, 0, depth + 1, u),
                        more ? " -> ..." : "");
        }
        if (1 + u->height > b->height) b->height = 1 + u->height;
    }
    b->state = 2;
    return CNN_OK;
}

/* model.blocks: names, args and layers of each block, then their lists. */
static cnn_status parse_blocks(parse *p, const sect *ms, model *m)
{
    static const char *const keys[] = {"args", "layers"};
    static const char *const reserved[] = {"name", "repeat", "inputs", "first", "input"};
    const node *v = value_of(ms, "blocks");
    cnn_status st;
    if (!v) return CNN_OK;
    if (v->kind != NODE_MAP)
        return bad_value(p, v, "model.blocks", "a mapping of block names to blocks");
    m->nblocks = v->n;
    m->blocks = arena_alloc(p->mem, (v->n ? v->n : 1) * sizeof *m->blocks, p->e);
    if (!m->blocks) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->pairs[i].key;
        if (!k->text[0] || strlen(k->text) > BLOCK_NAME_MAX || !valid_layer_name(k->text)
            || strchr(k->text, '.'))
            return fail(p, k, "a block name has 1 to %d letters, digits, '_' or '-', got "
                        "\"%s\"", BLOCK_NAME_MAX, k->text);
        if (cnn_layer_kind_find(k->text))
            return fail(p, k, "block name '%s' is a layer kind; give the block another name",
                        k->text);
        m->blocks[i].name = k->text;
        m->blocks[i].key = k;
    }
    for (size_t i = 0; i < v->n; i++) {
        blockdef *b = &m->blocks[i];
        const node *bv = v->pairs[i].val;
        sect s = {.key = b->key, .map = bv};
        char name[128];
        snprintf(s.name, sizeof s.name, "model.blocks.%s", b->name);
        if (bv->kind != NODE_MAP)
            return bad_value(p, bv, s.name, "a mapping with args and layers");
        if ((st = check_keys(p, &s, keys, 2))) return st;
        const node *args = value_of(&s, "args");
        full_name(name, sizeof name, &s, "args");
        if (args && args->kind != NODE_MAP)
            return bad_value(p, args, name, "a mapping of argument names to defaults");
        for (size_t j = 0; args && j < args->n; j++) {
            const node *ak = args->pairs[j].key, *av = args->pairs[j].val;
            for (size_t r = 0; r < 5; r++)
                if (!strcmp(ak->text, reserved[r]))
                    return fail(p, ak, "%s: '%s' is reserved (name, repeat, inputs, first "
                                "and input cannot be block arguments)", name, ak->text);
            if (!valid_identifier(ak->text) || strlen(ak->text) >= CNN_NAME_MAX)
                return fail(p, ak, "%s: an argument name has letters, digits and '_' and "
                            "does not start with a digit, got \"%s\"", name, ak->text);
            int bad = av->kind == NODE_MAP;
            for (size_t r = 0; av->kind == NODE_SEQ && r < av->n; r++)
                bad |= av->items[r]->kind == NODE_SEQ || av->items[r]->kind == NODE_MAP;
            if (bad)
                return fail(p, av, "%s.%s must be a value or a list of values", name,
                            ak->text);
            for (size_t r = 0; r < (av->kind == NODE_SEQ ? av->n : 1); r++) {
                const node *x = av->kind == NODE_SEQ ? av->items[r] : av;
                if (x->kind == NODE_SCALAR && x->text[0] == '$')
                    return fail(p, x, "%s.%s: a default cannot refer to an argument (%s)",
                                name, ak->text, x->text);
            }
        }
        b->args = args;
        const node *layers = value_of(&s, "layers");
        full_name(name, sizeof name, &s, "layers");
        if (!layers)
            return required(p, &s, "layers", " (the block's layers, e.g. "
                            "'- conv: {filters: $filters, kernel: 3}')");
        if (layers->kind != NODE_SEQ || layers->n == 0)
            return layers->kind == NODE_SEQ
                ? fail(p, layers, "%s must list at least one layer", name)
                : bad_value(p, layers, name, "a list of layers");
        b->list = layers;
    }
    return CNN_OK;
}

/* model.defaults: kind -> options every layer of that kind gets unless it
 * sets them itself. */
static cnn_status parse_defaults(parse *p, const sect *ms, model *m)
{
    const node *v = value_of(ms, "defaults");
    cnn_status st;
    if (!v) return CNN_OK;
    if (v->kind != NODE_MAP)
        return bad_value(p, v, "model.defaults", "a mapping of layer kinds to options, "
                         "e.g. defaults: {conv: {bias: false}}");
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->pairs[i].key, *o = v->pairs[i].val;
        char ctx[96];
        if (find_block(m, k->text))
            return fail(p, k, "model.defaults: '%s' is a block, not a layer kind (a block's "
                        "defaults are its args)", k->text);
        if ((st = check_kind(p, NULL, k, "model.defaults: "))) return st;
        snprintf(ctx, sizeof ctx, "model.defaults.%s", k->text);
        if (o->kind == NODE_NULL) continue;
        if (o->kind != NODE_MAP) return bad_value(p, o, ctx, "a mapping of options");
        for (size_t j = 0; j < o->n; j++) {
            const pair *pr = &o->pairs[j];
            cnn_opt dummy;
            if (!strcmp(pr->key->text, "name") || !strcmp(pr->key->text, "inputs"))
                return fail(p, pr->key, "%s: '%s' cannot have a default (defaults are for "
                            "layer options)", ctx, pr->key->text);
            if (pr->val->kind == NODE_NULL) continue;
            if ((st = layer_opt(p, pr, ctx, &dummy))
                || (st = check_value_refs(p, &(blockdef){0}, pr->val, ctx)))
                return st;
        }
    }
    m->defaults = v;
    return CNN_OK;
}

/* ---- expansion ---- */

static cnn_status grow_flat(parse *p, model *m, const node *at)
{
    if (m->n == MODEL_MAX_LAYERS)
        return fail(p, at, "the model has more than %d layers after expanding blocks",
                    MODEL_MAX_LAYERS);
    if (m->n < m->cap) return CNN_OK;
    size_t cap = m->cap ? 2 * m->cap : 64;
    cnn_layer_spec *specs = arena_alloc(p->mem, cap * sizeof *specs, p->e);
    flat *info = arena_alloc(p->mem, cap * sizeof *info, p->e);
    if (!specs || !info) return CNN_ERR_NOMEM;
    if (m->n) {
        memcpy(specs, m->specs, m->n * sizeof *specs);
        memcpy(info, m->info, m->n * sizeof *info);
    }
    m->specs = specs;
    m->info = info;
    m->cap = cap;
    return CNN_OK;
}

static cnn_status add_instance(parse *p, model *m, const char *name, size_t idx,
                               const node *at)
{
    if (m->ninsts == m->icap) {
        size_t cap = m->icap ? 2 * m->icap : 16;
        instance *q = arena_alloc(p->mem, cap * sizeof *q, p->e);
        if (!q) return CNN_ERR_NOMEM;
        if (m->ninsts) memcpy(q, m->insts, m->ninsts * sizeof *q);
        m->insts = q;
        m->icap = cap;
    }
    slot *s = arena_alloc(p->mem, sizeof *s, p->e);
    if (!s) return CNN_ERR_NOMEM;
    s->idx = idx;
    m->insts[m->ninsts++] = (instance){name, s, at};
    return CNN_OK;
}

/* The value of a `$...` scalar v in scope sc; in_list: v is a list item. */
static cnn_status subst_ref(parse *p, const scope *sc, const node *v, int in_list,
                            const node **out)
{
    argref r;
    int ok = !parse_argref(v->text, &r);
    long i = ok ? find_arg(sc->def, r.name) : -1;
    assert(i >= 0 && "argument references are checked before expansion");
    (void)ok;
    const node *a = sc->argv[i];
    node *n = node_new(p, a->kind, v->line, v->col, v->src);
    if (!n) return CNN_ERR_NOMEM;
    if (a->kind == NODE_SEQ) {
        if (in_list || r.op)
            return fail(p, a, "argument '%s' of block '%s' is a list, so %s cannot be %s",
                        r.name, sc->def->name, v->text,
                        r.op ? "computed" : "an item of a list");
        n->flow = 1;
        n->n = a->n;
        n->items = arena_alloc(p->mem, (a->n ? a->n : 1) * sizeof *n->items, p->e);
        if (!n->items) return CNN_ERR_NOMEM;
        for (size_t k = 0; k < a->n; k++) {
            node *c = node_new(p, a->items[k]->kind, v->line, v->col, v->src);
            if (!c) return CNN_ERR_NOMEM;
            c->text = a->items[k]->text;
            c->style = a->items[k]->style;
            n->items[k] = c;
        }
        *out = n;
        return CNN_OK;
    }
    n->style = a->style;
    n->text = a->text;
    if (r.op) {
        long x;
        if (a->kind != NODE_SCALAR || cnn_parse_long(a->text, &x))
            return fail(p, a, "argument '%s' of block '%s' must be an integer for %s, got "
                        "\"%s\"", r.name, sc->def->name, v->text, a->text);
        if (r.op == '*' && (x > LONG_MAX / r.n || x < LONG_MIN / r.n))
            return fail(p, v, "%s is too large (%s is %ld)", v->text, r.name, x);
        x = r.op == '*' ? x * r.n : x / r.n;
        if (!(n->text = arena_printf(p, "%ld", x))) return CNN_ERR_NOMEM;
        n->style = YAML_PLAIN_SCALAR_STYLE;
    }
    *out = n;
    return CNN_OK;
}

/* v with every `$arg` replaced by its value in scope sc. */
static cnn_status subst(parse *p, const scope *sc, const node *v, const node **out)
{
    cnn_status st;
    *out = v;
    if (!sc->def->name) return CNN_OK;   /* no $ at the top level (checked) */
    if (v->kind == NODE_SCALAR && v->text[0] == '$') return subst_ref(p, sc, v, 0, out);
    if (v->kind != NODE_SEQ) return CNN_OK;
    size_t k = 0;
    while (k < v->n && !(v->items[k]->kind == NODE_SCALAR && v->items[k]->text[0] == '$'))
        k++;
    if (k == v->n) return CNN_OK;
    node *n = node_new(p, NODE_SEQ, v->line, v->col, v->src);
    if (!n || !(n->items = arena_alloc(p->mem, v->n * sizeof *n->items, p->e)))
        return CNN_ERR_NOMEM;
    n->flow = v->flow;
    n->n = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const node *c = v->items[i];
        if (c->kind == NODE_SCALAR && c->text[0] == '$'
            && (st = subst_ref(p, sc, c, 1, &c)))
            return st;
        n->items[i] = (node *)c;
    }
    *out = n;
    return CNN_OK;
}

/* The slot an `inputs:` name v refers to in scope sc. */
static cnn_status input_slot(parse *p, const scope *sc, const node *v, slot **out)
{
    size_t j;
    if (!strcmp(v->text, "$input")) { *out = sc->input; return CNN_OK; }
    if (set_get(&sc->def->locals, v->text, &j)) { *out = &sc->outs[j]; return CNN_OK; }
    assert(!sc->def->name && "block inputs are checked before expansion");
    slot *s = arena_alloc(p->mem, sizeof *s, p->e);
    if (!s) return CNN_ERR_NOMEM;
    s->idx = SLOT_NAME;
    s->name = v->text;
    *out = s;
    return CNN_OK;
}

/* The name an item gets in the flat list. */
static cnn_status full_layer_name(parse *p, const scope *sc, const item *it, const char **out)
{
    *out = it->local;
    if (!sc->prefix) return CNN_OK;
    if (!(*out = arena_printf(p, "%s.%s", sc->prefix, it->local))) return CNN_ERR_NOMEM;
    if (strlen(*out) >= CNN_NAME_MAX)
        return fail(p, it->entry, "the layer name '%s' (from block '%s') is longer than %d "
                    "characters; use shorter names", *out, sc->def->name, CNN_NAME_MAX - 1);
    return CNN_OK;
}

/* Write layer item `it` of scope sc into the flat list; `dflt` is what it
 * reads when it has no inputs:. */
static cnn_status emit_layer(parse *p, model *m, const scope *sc, const item *it,
                             slot *dflt, slot *out)
{
    cnn_status st;
    if ((st = grow_flat(p, m, sc->use ? sc->use : it->entry))) return st;
    cnn_layer_spec *spec = &m->specs[m->n];
    flat *info = &m->info[m->n];
    memset(spec, 0, sizeof *spec);
    memset(info, 0, sizeof *info);
    spec->kind = it->kind->text;
    spec->line = it->entry->src ? 0 : it->entry->line;
    spec->col = it->entry->src ? 0 : it->entry->col;
    info->at = sc->use ? sc->use : it->name ? it->name->val : it->entry;
    if ((st = full_layer_name(p, sc, it, &spec->name))) return st;
    spec->opts.context = sc->prefix
        ? arena_printf(p, "layer '%s' (%s)", spec->name, spec->kind) : it->ctx;
    if (!spec->opts.context) return CNN_ERR_NOMEM;

    const node *iv = it->inputs ? it->inputs->val : NULL;
    info->nin = iv ? (iv->kind == NODE_SEQ ? iv->n : 1) : 1;
    info->by_default = !iv;
    if (!(info->in = arena_alloc(p->mem, info->nin * sizeof *info->in, p->e)))
        return CNN_ERR_NOMEM;
    if (!iv) info->in[0] = dflt;
    for (size_t k = 0; iv && k < info->nin; k++)
        if ((st = input_slot(p, sc, iv->kind == NODE_SEQ ? iv->items[k] : iv, &info->in[k])))
            return st;

    /* its own options, then the defaults for its kind that it leaves out */
    const pair *dp = map_find(m->defaults, spec->kind);
    const node *dflts = dp && dp->val->kind == NODE_MAP ? dp->val : NULL;
    size_t nopt = 0;
    for (size_t i = 0; it->opts && i < it->opts->n; i++)
        nopt += &it->opts->pairs[i] != it->name && &it->opts->pairs[i] != it->inputs
            && it->opts->pairs[i].val->kind != NODE_NULL;
    for (size_t i = 0; dflts && i < dflts->n; i++) {
        const pair *own = map_find(it->opts, dflts->pairs[i].key->text);
        nopt += dflts->pairs[i].val->kind != NODE_NULL
            && (!own || own->val->kind == NODE_NULL);
    }
    cnn_opt *o = arena_alloc(p->mem, (nopt ? nopt : 1) * sizeof *o, p->e);
    if (!o) return CNN_ERR_NOMEM;
    spec->opts.items = o;
    for (size_t i = 0; it->opts && i < it->opts->n; i++) {
        const pair *pr = &it->opts->pairs[i];
        if (pr == it->name || pr == it->inputs || pr->val->kind == NODE_NULL) continue;
        const node *v;
        if ((st = subst(p, sc, pr->val, &v))
            || (st = layer_opt(p, &(pair){pr->key, (node *)v}, spec->opts.context,
                               &o[spec->opts.n])))
            return st;
        spec->opts.n++;
    }
    for (size_t i = 0; dflts && i < dflts->n; i++) {
        const pair *pr = &dflts->pairs[i], *own = map_find(it->opts, pr->key->text);
        if (pr->val->kind == NODE_NULL || (own && own->val->kind != NODE_NULL)) continue;
        if ((st = layer_opt(p, pr, spec->opts.context, &o[spec->opts.n]))) return st;
        spec->opts.n++;
    }
    assert(spec->opts.n == nopt);
    out->idx = m->n++;
    return CNN_OK;
}

static cnn_status expand_list(parse *p, model *m, scope *sc);

/* An argument value given at a use: a value or a list of values. */
static cnn_status arg_value(parse *p, const scope *sc, const item *it, const node *key,
                            const node *v, const node **out)
{
    cnn_status st;
    if ((st = subst(p, sc, v, out))) return st;
    int bad = (*out)->kind == NODE_MAP;
    for (size_t r = 0; (*out)->kind == NODE_SEQ && r < (*out)->n; r++)
        bad |= (*out)->items[r]->kind == NODE_SEQ || (*out)->items[r]->kind == NODE_MAP;
    if (bad)
        return fail(p, v, "%s: argument '%s' must be a value or a list of values", it->ctx,
                    key->text);
    return CNN_OK;
}

/* Expand use `it` of a block, written in scope sc, reading `dflt` unless it
 * says inputs:; its output (the last layer of its last repetition) goes to out. */
static cnn_status expand_use(parse *p, model *m, const scope *sc, const item *it,
                             slot *dflt, slot *out)
{
    const blockdef *u = it->use;
    size_t nargs = u->args ? u->args->n : 0;
    long reps = 1;
    cnn_status st;
    char what[CNN_NAME_MAX + BLOCK_NAME_MAX + 80];
    const node **argv = arena_alloc(p->mem, (nargs ? nargs : 1) * sizeof *argv, p->e);
    const node **argv0 = arena_alloc(p->mem, (nargs ? nargs : 1) * sizeof *argv0, p->e);
    if (!argv || !argv0) return CNN_ERR_NOMEM;
    assert(sc->depth < BLOCK_MAX_DEPTH && "nesting is checked before expansion");

    const pair *rp = map_find(it->opts, "repeat");
    int has_repeat = rp && rp->val->kind != NODE_NULL;
    if (has_repeat) {
        const node *v;
        snprintf(what, sizeof what, "%s: repeat", it->ctx);
        if ((st = subst(p, sc, rp->val, &v))
            || (st = int_value(p, v, what, 1, LONG_MAX, &reps)))
            return st;
    }
    slot *in = dflt;
    if (it->inputs) {
        const node *v = it->inputs->val;
        if ((st = input_slot(p, sc, v->kind == NODE_SEQ ? v->items[0] : v, &in))) return st;
    }
    for (size_t i = 0; i < nargs; i++) {
        const node *key = u->args->pairs[i].key;
        const pair *given = map_find(it->opts, key->text);
        argv[i] = u->args->pairs[i].val->kind != NODE_NULL ? u->args->pairs[i].val : NULL;
        if (given && given->val->kind != NODE_NULL
            && (st = arg_value(p, sc, it, key, given->val, &argv[i])))
            return st;
        argv0[i] = argv[i];
    }
    const pair *fp = map_find(it->opts, "first");
    for (size_t i = 0; fp && fp->val->kind == NODE_MAP && i < fp->val->n; i++) {
        const pair *pr = &fp->val->pairs[i];
        if (pr->val->kind == NODE_NULL) continue;
        if ((st = arg_value(p, sc, it, pr->key, pr->val,
                            &argv0[find_arg(u, pr->key->text)])))
            return st;
    }
    const char *base = sc->prefix ? arena_printf(p, "%s.%s", sc->prefix, it->local)
                                  : it->local;
    if (!base) return CNN_ERR_NOMEM;
    for (long r = 0; r < reps; r++) {
        const node **av = r == 0 ? argv0 : argv;
        for (size_t i = 0; i < nargs; i++)
            if (!av[i])
                return fail(p, it->entry, "%s: block '%s' needs argument '%s' (it has no "
                            "default)%s", it->ctx, u->name, u->args->pairs[i].key->text,
                            r ? " for every repetition, not only in first:" : "");
        scope child = {.def = u, .argv = av, .depth = sc->depth + 1, .input = in,
                       .use = sc->use ? sc->use : it->entry};
        child.prefix = has_repeat ? arena_printf(p, "%s.%ld", base, r) : base;
        if (!child.prefix) return CNN_ERR_NOMEM;
        if (r > 0) {
            if (!(child.input = arena_alloc(p->mem, sizeof *child.input, p->e)))
                return CNN_ERR_NOMEM;
            child.input->idx = m->n - 1;
        }
        if ((st = expand_list(p, m, &child))
            || (st = add_instance(p, m, child.prefix, m->n - 1, it->entry)))
            return st;
    }
    if (has_repeat && (st = add_instance(p, m, base, m->n - 1, it->entry))) return st;
    out->idx = m->n - 1;
    return CNN_OK;
}

static cnn_status expand_list(parse *p, model *m, scope *sc)
{
    const blockdef *b = sc->def;
    cnn_status st;
    if (!(sc->outs = arena_alloc(p->mem, b->n * sizeof *sc->outs, p->e))) return CNN_ERR_NOMEM;
    for (size_t j = 0; j < b->n; j++) sc->outs[j].idx = SLOT_UNSET;
    for (size_t j = 0; j < b->n; j++) {
        slot *dflt = j ? &sc->outs[j - 1] : sc->input;
        st = b->items[j].use ? expand_use(p, m, sc, &b->items[j], dflt, &sc->outs[j])
                             : emit_layer(p, m, sc, &b->items[j], dflt, &sc->outs[j]);
        if (st) return st;
    }
    return CNN_OK;
}

/* ---- names ---- */

/* The name of what slot s refers to, for layer specs' inputs. gen[i] is
 * the name the engine gives unnamed layer i; need[i] is set when used. */
static const char *slot_name(const model *m, const strset *insts, const slot *s,
                             const char **gen, unsigned char *need)
{
    size_t i;
    if (s->idx == SLOT_NAME) {
        if (!set_get(insts, s->name, &i)) return s->name;
        s = m->insts[i].out;
    }
    assert(s->idx != SLOT_UNSET && "every slot is filled during expansion");
    if (s->idx == SLOT_INPUT) return "input";
    if (m->specs[s->idx].name) return m->specs[s->idx].name;
    need[s->idx] = 1;
    return gen[s->idx];
}

static cnn_status twice(parse *p, const char *name, const node *first, const node *second)
{
    return fail(p, second, "two layers are named '%s' after expanding blocks (the first "
                "from line %d, column %d)", name, first->line, first->col);
}

/* Check that all names are distinct, then turn slots into input names. */
static cnn_status finish_names(parse *p, model *m)
{
    size_t n = m->n, old;
    strset all, insts;
    cnn_status st;
    const char **gen = arena_alloc(p->mem, n * sizeof *gen, p->e);
    unsigned char *need = arena_alloc(p->mem, n, p->e);
    unsigned *next = arena_alloc(p->mem, cnn_layer_kind_count * sizeof *next, p->e);
    if (!gen || !need || !next || (st = set_init(p, &all, n + m->ninsts))
        || (st = set_init(p, &insts, m->ninsts)))
        return CNN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (m->specs[i].name && set_add(&all, m->specs[i].name, i, &old))
            return twice(p, m->specs[i].name, m->info[old].at, m->info[i].at);
    /* the engine's names for unnamed layers: kind and the first free number */
    for (size_t i = 0; i < n; i++) {
        if (m->specs[i].name) continue;
        size_t k = 0;
        while (strcmp(cnn_layer_kinds[k]->name, m->specs[i].kind)) k++;
        for (;;) {
            char *s = arena_printf(p, "%s%u", m->specs[i].kind, ++next[k]);
            if (!s) return CNN_ERR_NOMEM;
            if (strcmp(s, "input") && !set_add(&all, s, i, &old)) { gen[i] = s; break; }
        }
    }
    for (size_t i = 0; i < m->ninsts; i++) {
        const instance *in = &m->insts[i];
        if (!set_add(&all, in->name, n + i, &old)) {
            set_add(&insts, in->name, i, &old);
            continue;
        }
        return twice(p, in->name, old < n ? m->info[old].at : m->insts[old - n].at, in->at);
    }
    for (size_t i = 0; i < n; i++) {
        cnn_layer_spec *spec = &m->specs[i];
        const flat *info = &m->info[i];
        const slot *s = info->in[0];
        if (info->by_default && (s->idx == (i ? i - 1 : SLOT_INPUT))) continue;
        const char **names = arena_alloc(p->mem, info->nin * sizeof *names, p->e);
        if (!names) return CNN_ERR_NOMEM;
        for (size_t k = 0; k < info->nin; k++)
            names[k] = slot_name(m, &insts, info->in[k], gen, need);
        spec->inputs = names;
        spec->ninputs = info->nin;
    }
    for (size_t i = 0; i < n; i++)
        if (need[i]) m->specs[i].name = gen[i];
    return CNN_OK;
}

/* model.loss: each task trains with one loss; naming another is an error. */
static const char *const loss_names[] = {"softmax_cross_entropy", "mse", "nt_xent"};
static const int task_loss[CNN_TASK_COUNT] = {0, 1, 1, 0, 2};

static cnn_status parse_model(parse *p, const sect *top, const cnn_task_spec *task,
                              cnn_model_spec *ms)
{
    static const char *const keys[] = {"layers", "loss", "label_smoothing", "blocks",
                                       "defaults"};
    const range smoothing = {0, 1, 0, 1};
    sect s;
    int loss = 0;
    model m = {0};
    blockdef list = {0};
    cnn_status st;
    if ((st = open_sect(p, top, "model", keys, 5, &s))) return st;
    const node *layers = value_of(&s, "layers");
    if (!layers)
        return required(p, s.key ? &s : top, s.key ? "layers" : "model.layers",
                        " (a list of layers, e.g. '- conv: {filters: 8, kernel: 3}')");
    if (layers->kind != NODE_SEQ || layers->n == 0)
        return layers->kind == NODE_SEQ
            ? fail(p, layers, "model.layers must list at least one layer")
            : bad_value(p, layers, "model.layers", "a list of layers");
    if ((st = parse_blocks(p, &s, &m)) || (st = parse_defaults(p, &s, &m))) return st;
    for (size_t i = 0; i < m.nblocks; i++)
        if ((st = analyze_list(p, &m, &m.blocks[i]))) return st;
    const blockdef *path[BLOCK_MAX_DEPTH];
    for (size_t i = 0; i < m.nblocks; i++)
        if (m.blocks[i].state == 0 && (st = check_nesting(p, &m.blocks[i], path, 0)))
            return st;
    list.list = layers;
    if ((st = analyze_list(p, &m, &list))) return st;
    slot net_input = {.idx = SLOT_INPUT};
    scope sc = {.def = &list, .input = &net_input};
    if ((st = expand_list(p, &m, &sc)) || (st = finish_names(p, &m))) return st;
    ms->layers = m.specs;
    ms->nlayers = m.n;
    const node *lv = value_of(&s, "loss");
    if (lv && (st = enum_value(p, lv, "model.loss", loss_names, 3, &loss))) return st;
    int want = task_loss[task->type];
    if (lv && loss != want)
        return fail(p, lv, "model.loss is %s, but task %s trains with %s (leave model.loss "
                    "out)", loss_names[loss], cnn_task_names[task->type], loss_names[want]);
    if ((st = get_float(p, &s, "label_smoothing", 0.0f, smoothing, &ms->label_smoothing)))
        return st;
    if (ms->label_smoothing > 0 && want != 0)
        return fail(p, value_of(&s, "label_smoothing"), "model.label_smoothing is for the "
                    "softmax cross-entropy; task %s trains with %s",
                    cnn_task_names[task->type], loss_names[want]);
    return CNN_OK;
}

/* ---- task -------------------------------------------------------------- */

const char *const cnn_task_names[CNN_TASK_COUNT] = {
    "classify", "autoencoder", "colorization", "context", "contrastive",
};

/* task: a name, or {type: NAME, ...} with the task's own keys. Sets
 * model.input to what the task feeds the network. */
static cnn_status parse_task(parse *p, const sect *top, const cnn_data_spec *d,
                             cnn_task_spec *t, cnn_shape *input)
{
    static const char *const keys[] = {"type", "patch", "gap", "jitter", "temperature"};
    static const char *const context_keys[] = {"patch", "gap", "jitter"};
    const range temperature = {0, 100, 1, 0};
    const node *tv;
    char name[128];
    sect s;
    int type = CNN_TASK_CLASSIFY;
    cnn_status st;
    *input = d->input;
    memset(t, 0, sizeof *t);
    if ((st = open_typed(p, top, "task", keys, 5, &s, &tv))) return st;
    if (s.map && !tv) return required(p, &s, "type", " (one of classify, autoencoder, "
                                      "colorization, context, contrastive)");
    full_name(name, sizeof name, &s, "type");
    if (tv && (st = enum_value(p, tv, s.map ? name : "task", cnn_task_names,
                               CNN_TASK_COUNT, &type)))
        return st;
    t->type = type;
    if (!cnn_task_has_accuracy(t)) p->lossonly = cnn_task_names[type];
    for (size_t i = 0; i < 3; i++)
        if (type != CNN_TASK_CONTEXT && (st = not_for(p, &s, context_keys[i], "type context",
                                                      cnn_task_names[type])))
            return st;
    if (type != CNN_TASK_CONTRASTIVE
        && (st = not_for(p, &s, "temperature", "type contrastive", cnn_task_names[type])))
        return st;
    if ((st = get_size(p, &s, "patch", 0, 1, 4096, &t->patch))
        || (st = get_size(p, &s, "gap", 0, 0, 4096, &t->gap))
        || (st = get_size(p, &s, "jitter", 0, 0, 4096, &t->jitter))
        || (st = get_float(p, &s, "temperature", 0.5f, temperature, &t->temperature)))
        return st;
    if (type == CNN_TASK_COLORIZATION) {
        if (d->input.c != 3)
            return fail(p, tv, "task colorization needs colour images: data.input.channels "
                        "must be 3, got %zu", d->input.c);
        input->c = 1;
    }
    if (type == CNN_TASK_CONTEXT) {
        if (!t->patch) return required(p, &s, "patch", " (the side of each patch, e.g. 9 "
                                       "for 32x32 images)");
        size_t side = 3 * t->patch + 2 * t->gap + 2 * t->jitter;
        size_t small = d->input.h < d->input.w ? d->input.h : d->input.w;
        if (side > small)
            return fail(p, value_of(&s, "patch"), "task.patch %zu with gap %zu and jitter "
                        "%zu needs images of at least %zux%zu (3 patches, 2 gaps, 2 jitters), "
                        "but data.input is %zux%zu", t->patch, t->gap, t->jitter, side, side,
                        d->input.h, d->input.w);
        input->h = input->w = t->patch;
    }
    return CNN_OK;
}

/* ---- train ------------------------------------------------------------- */

static const char *const optim_names[CNN_OPTIM_COUNT] = {"sgd", "adam", "adamw"};
const char *const cnn_monitor_names[CNN_MONITOR_COUNT] = {
    "val_loss", "val_accuracy", "train_loss", "train_accuracy",
};
static const char *const mode_names[] = {"auto", "min", "max"};

static cnn_status parse_optimizer(parse *p, const sect *train, cnn_optim_config *o)
{
    static const char *const keys[] = {"type", "lr", "momentum", "nesterov",
                                       "weight_decay", "betas", "eps", "l1", "decay_all"};
    const range lr = {0, INFINITY, 1, 0}, unit = {0, 1, 0, 1};
    const range nonneg = {0, INFINITY, 0, 0};
    const node *tv;
    sect s;
    int type = CNN_OPTIM_SGD;
    cnn_status st;
    char name[128];
    if ((st = open_typed(p, train, "optimizer", keys, 9, &s, &tv))) return st;
    full_name(name, sizeof name, &s, "type");
    if (tv && (st = enum_value(p, tv, name, optim_names, CNN_OPTIM_COUNT, &type))) return st;
    o->type = (cnn_optim_type)type;
    const int sgd = o->type == CNN_OPTIM_SGD;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    if ((st = get_float(p, &s, "lr", sgd ? 0.01f : 0.001f, lr, &o->lr))
        || (st = get_float(p, &s, "weight_decay", o->type == CNN_OPTIM_ADAMW ? 0.01f : 0.0f,
                           nonneg, &o->weight_decay))
        || (st = get_float(p, &s, "l1", 0.0f, nonneg, &o->l1))
        || (st = get_bool(p, &s, "decay_all", 0, &o->decay_all)))
        return st;
    if (sgd) {
        if ((st = not_for(p, &s, "betas", "adam and adamw", "sgd"))
            || (st = not_for(p, &s, "eps", "adam and adamw", "sgd"))
            || (st = get_float(p, &s, "momentum", 0.9f, unit, &o->momentum))
            || (st = get_bool(p, &s, "nesterov", 0, &o->nesterov)))
            return st;
        if (o->nesterov && o->momentum == 0.0f)
            return fail(p, value_of(&s, "nesterov"), "%s.nesterov needs momentum > 0",
                        s.name);
        o->eps = 1e-8f;
        return CNN_OK;
    }
    if ((st = not_for(p, &s, "momentum", "sgd", optim_names[type]))
        || (st = not_for(p, &s, "nesterov", "sgd", optim_names[type]))
        || (st = get_float(p, &s, "eps", 1e-8f, lr, &o->eps)))
        return st;
    const node *b = value_of(&s, "betas");
    if (!b) return CNN_OK;
    full_name(name, sizeof name, &s, "betas");
    if (b->kind != NODE_SEQ || b->n != 2)
        return b->kind == NODE_SEQ
            ? fail(p, b, "%s must be a list of two numbers in [0, 1), got %zu", name, b->n)
            : bad_value(p, b, name, "a list of two numbers in [0, 1)");
    if ((st = float_value(p, b->items[0], name, unit, &o->beta1))
        || (st = float_value(p, b->items[1], name, unit, &o->beta2)))
        return st;
    return CNN_OK;
}

/* Is there a validation set: data.val or data.val_split? */
static int has_val_data(const cnn_data_spec *d)
{
    return d->val.kind != CNN_SOURCE_NONE || d->val_split > 0;
}

/* `monitor` and `mode` of section s (early_stopping, or a plateau
 * schedule): a val_* metric needs a validation set; mode auto maximises
 * accuracies and minimises losses. `at` is where to point when the
 * monitor is the default. */
static cnn_status parse_monitor(parse *p, const sect *s, const node *at,
                                const cnn_data_spec *d, cnn_monitor *mon, int *maximize)
{
    char name[128];
    int m = CNN_MONITOR_VAL_LOSS, mode = 0;
    cnn_status st;
    const node *mv = value_of(s, "monitor"), *dv = value_of(s, "mode");
    full_name(name, sizeof name, s, "monitor");
    if (mv && (st = enum_value(p, mv, name, cnn_monitor_names, CNN_MONITOR_COUNT, &m)))
        return st;
    full_name(name, sizeof name, s, "mode");
    if (dv && (st = enum_value(p, dv, name, mode_names, 3, &mode))) return st;
    *mon = (cnn_monitor)m;
    int acc = m == CNN_MONITOR_VAL_ACCURACY || m == CNN_MONITOR_TRAIN_ACCURACY;
    if (acc && p->lossonly)
        return fail(p, mv, "%s.monitor is %s, but task %s scores no accuracy: monitor "
                    "val_loss or train_loss", s->name, cnn_monitor_names[m], p->lossonly);
    *maximize = mode == 0 ? acc : mode == 2;
    if ((m == CNN_MONITOR_VAL_LOSS || m == CNN_MONITOR_VAL_ACCURACY) && !has_val_data(d))
        return fail(p, mv ? mv : at, "%s.monitor is %s%s, but the config has no validation "
                    "set: add data.val or data.val_split, or monitor train_%s", s->name,
                    cnn_monitor_names[m], mv ? "" : " (the default)",
                    m == CNN_MONITOR_VAL_LOSS ? "loss" : "accuracy");
    return CNN_OK;
}

/* Schedule keys and the types that take them. */
#define SCHED_BIT(t) (1u << (t))
typedef struct sched_key {
    const char *key;
    unsigned types;
    const char *valid;
} sched_key;

static const sched_key sched_keys[] = {
    {"step_epochs", SCHED_BIT(CNN_SCHED_STEP), "type step"},
    {"gamma", SCHED_BIT(CNN_SCHED_STEP) | SCHED_BIT(CNN_SCHED_MULTISTEP)
        | SCHED_BIT(CNN_SCHED_EXPONENTIAL), "types step, multistep and exponential"},
    {"milestones", SCHED_BIT(CNN_SCHED_MULTISTEP), "type multistep"},
    {"warmup_epochs", SCHED_BIT(CNN_SCHED_COSINE), "type cosine"},
    {"min_lr", SCHED_BIT(CNN_SCHED_COSINE) | SCHED_BIT(CNN_SCHED_PLATEAU),
        "types cosine and plateau"},
    {"pct_start", SCHED_BIT(CNN_SCHED_ONE_CYCLE), "type one_cycle"},
    {"div_factor", SCHED_BIT(CNN_SCHED_ONE_CYCLE), "type one_cycle"},
    {"final_div_factor", SCHED_BIT(CNN_SCHED_ONE_CYCLE), "type one_cycle"},
    {"monitor", SCHED_BIT(CNN_SCHED_PLATEAU), "type plateau"},
    {"mode", SCHED_BIT(CNN_SCHED_PLATEAU), "type plateau"},
    {"factor", SCHED_BIT(CNN_SCHED_PLATEAU), "type plateau"},
    {"patience", SCHED_BIT(CNN_SCHED_PLATEAU), "type plateau"},
    {"threshold", SCHED_BIT(CNN_SCHED_PLATEAU), "type plateau"},
    {"cooldown", SCHED_BIT(CNN_SCHED_PLATEAU), "type plateau"},
};
#define NSCHED_KEYS (sizeof sched_keys / sizeof sched_keys[0])

/* milestones: epochs >= 1, strictly increasing. */
static cnn_status parse_milestones(parse *p, const sect *s, cnn_schedule *sc)
{
    char name[128];
    const node *v = value_of(s, "milestones");
    full_name(name, sizeof name, s, "milestones");
    if (!v)
        return required(p, s, "milestones", " for type multistep (the epochs after which "
                        "the rate is multiplied by gamma, e.g. [30, 60])");
    if (v->kind != NODE_SEQ || v->n == 0)
        return bad_value(p, v, name, "a non-empty list of epochs, e.g. [30, 60]");
    if (v->n > CNN_MAX_MILESTONES)
        return fail(p, v, "%s has %zu entries; at most %d are allowed", name, v->n,
                    CNN_MAX_MILESTONES);
    for (size_t i = 0; i < v->n; i++) {
        long x = 0;
        cnn_status st = int_value(p, v->items[i], name, 1, LONG_MAX, &x);
        if (st) return st;
        if (i && (size_t)x <= sc->milestones[i - 1])
            return fail(p, v->items[i], "%s must be increasing, got %ld after %zu", name, x,
                        sc->milestones[i - 1]);
        sc->milestones[i] = (size_t)x;
    }
    sc->nmilestones = v->n;
    return CNN_OK;
}

static cnn_status parse_schedule(parse *p, const sect *train, const cnn_data_spec *d,
                                 cnn_train_spec *t)
{
    static const char *const keys[] = {
        "type", "step_epochs", "gamma", "milestones", "warmup_epochs", "min_lr",
        "pct_start", "div_factor", "final_div_factor", "monitor", "mode", "factor",
        "patience", "threshold", "cooldown",
    };
    const range gamma = {0, 1, 1, 0}, nonneg = {0, INFINITY, 0, 0};
    const range open_unit = {0, 1, 1, 1}, positive = {0, INFINITY, 1, 0};
    const node *tv;
    sect s;
    int type = CNN_SCHED_CONSTANT;
    char name[128];
    cnn_status st;
    cnn_schedule *sc = &t->sched;
    if ((st = open_typed(p, train, "schedule", keys, sizeof keys / sizeof keys[0], &s, &tv)))
        return st;
    full_name(name, sizeof name, &s, "type");
    if (tv && (st = enum_value(p, tv, name, cnn_schedule_names, CNN_SCHED_COUNT, &type)))
        return st;
    sc->type = (cnn_schedule_type)type;
    const char *tn = cnn_schedule_names[type];
    for (size_t i = 0; i < NSCHED_KEYS; i++)
        if (!(sched_keys[i].types & SCHED_BIT(type))
            && (st = not_for(p, &s, sched_keys[i].key, sched_keys[i].valid, tn)))
            return st;
    if (type == CNN_SCHED_EXPONENTIAL && !value_of(&s, "gamma"))
        return required(p, &s, "gamma", " for type exponential (the factor per epoch, "
                        "e.g. 0.95)");
    if (type == CNN_SCHED_MULTISTEP && (st = parse_milestones(p, &s, sc))) return st;
    if ((st = get_size(p, &s, "step_epochs", 10, 1, LONG_MAX, &sc->step_epochs))
        || (st = get_float(p, &s, "gamma", 0.1f, gamma, &sc->gamma))
        || (st = get_size(p, &s, "warmup_epochs", 0, 0, LONG_MAX, &sc->warmup_epochs))
        || (st = get_float(p, &s, "min_lr", 0.0f, nonneg, &sc->min_lr))
        || (st = get_float(p, &s, "pct_start", 0.3f, open_unit, &sc->pct_start))
        || (st = get_float(p, &s, "div_factor", 25.0f, positive, &sc->div_factor))
        || (st = get_float(p, &s, "final_div_factor", 1e4f, positive, &sc->final_div_factor))
        || (st = get_float(p, &s, "factor", 0.1f, open_unit, &sc->factor))
        || (st = get_size(p, &s, "patience", 10, 0, LONG_MAX, &sc->patience))
        || (st = get_float(p, &s, "threshold", 1e-4f, nonneg, &sc->threshold))
        || (st = get_size(p, &s, "cooldown", 0, 0, LONG_MAX, &sc->cooldown)))
        return st;
    if (sc->min_lr > t->optim.lr)
        return fail(p, value_of(&s, "min_lr"), "%s.min_lr (%g) must not exceed the "
                    "learning rate train.optimizer.lr (%g)", s.name, (double)sc->min_lr,
                    (double)t->optim.lr);
    if (type == CNN_SCHED_PLATEAU)
        return parse_monitor(p, &s, tv ? tv : s.key, d, &t->plateau_monitor, &sc->maximize);
    return CNN_OK;
}

/* train.early_stopping: present (even as {}) turns it on. */
static cnn_status parse_early_stopping(parse *p, const sect *train, const cnn_data_spec *d,
                                       cnn_early_stopping *es)
{
    static const char *const keys[] = {"monitor", "mode", "patience", "min_delta",
                                       "restore_best"};
    const range nonneg = {0, INFINITY, 0, 0};
    sect s;
    cnn_status st;
    if ((st = open_sect(p, train, "early_stopping", keys, 5, &s))) return st;
    if (!s.map) return CNN_OK;
    es->enabled = 1;
    if ((st = parse_monitor(p, &s, s.key, d, &es->monitor, &es->maximize))
        || (st = get_size(p, &s, "patience", 10, 1, LONG_MAX, &es->patience))
        || (st = get_float(p, &s, "min_delta", 0.0f, nonneg, &es->min_delta))
        || (st = get_bool(p, &s, "restore_best", 0, &es->restore_best)))
        return st;
    return CNN_OK;
}

/* train.distributed: how data-parallel runs (mpirun -np N) share the work;
 * read by every run, used only by those with more than one process. */
static cnn_status parse_distributed(parse *p, const sect *train, cnn_train_spec *t)
{
    static const char *const keys[] = {"batchnorm", "bucket_mb"};
    static const char *const bn_names[] = {"per_rank", "sync"};
    const range bucket = {0, 1024, 1, 0};
    char name[128];
    sect s;
    cnn_status st;
    int bn = 0;
    if ((st = open_sect(p, train, "distributed", keys, 2, &s))) return st;
    const node *v = value_of(&s, "batchnorm");
    full_name(name, sizeof name, &s, "batchnorm");
    if (v && (st = enum_value(p, v, name, bn_names, 2, &bn))) return st;
    t->sync_batchnorm = bn;
    return get_float(p, &s, "bucket_mb", 25.0f, bucket, &t->bucket_mb);
}

static cnn_status parse_train(parse *p, const sect *top, const cnn_data_spec *d,
                              cnn_train_spec *t)
{
    static const char *const keys[] = {"epochs", "batch", "optimizer", "schedule",
                                       "early_stopping", "weight_noise", "clip_grad_norm",
                                       "trainable", "head", "freeze", "lr_mult", "stages",
                                       "distributed"};
    const range nonneg = {0, INFINITY, 0, 0}, positive = {0, INFINITY, 1, 0};
    sect s;
    cnn_status st;
    if ((st = open_sect(p, top, "train", keys, sizeof keys / sizeof *keys, &s))
        || (st = get_size(p, &s, "epochs", 10, 1, LONG_MAX, &t->epochs))
        || (st = get_size(p, &s, "batch", 64, 1, 65536, &t->batch))
        || (st = parse_optimizer(p, &s, &t->optim))
        || (st = parse_schedule(p, &s, d, t))
        || (st = parse_early_stopping(p, &s, d, &t->early))
        || (st = get_float(p, &s, "weight_noise", 0.0f, nonneg, &t->optim.weight_noise))
        || (st = get_float(p, &s, "clip_grad_norm", 0.0f, positive, &t->optim.clip_grad_norm))
        || (st = parse_distributed(p, &s, t)))
        return st;
    return CNN_OK;
}

/* ---- what trains, and fine-tuning -------------------------------------- */

static const char *const trainable_names[CNN_TRAINABLE_COUNT] = {"all", "head", "batchnorm"};

/* A list of glob patterns over layer names (one string is a list of one). */
static cnn_status get_patterns(parse *p, const sect *s, const char *key, const char ***out,
                               size_t *n)
{
    char name[128];
    const node *v = value_of(s, key);
    *out = NULL;
    *n = 0;
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, key);
    size_t count = v->kind == NODE_SEQ ? v->n : 1;
    if (v->kind == NODE_MAP) return bad_value(p, v, name, "a list of layer name patterns");
    const char **list = arena_alloc(p->mem, (count + 1) * sizeof *list, p->e);
    if (!list) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        const node *item = v->kind == NODE_SEQ ? v->items[i] : v;
        if (item->kind != NODE_SCALAR || !item->text[0])
            return bad_value(p, item, name, "a list of layer name patterns");
        list[i] = item->text;
    }
    *out = list;
    *n = count;
    return CNN_OK;
}

static cnn_status get_trainable(parse *p, const sect *s, int def, int *out)
{
    char name[128];
    const node *v = value_of(s, "trainable");
    *out = def;
    if (!v) return CNN_OK;
    full_name(name, sizeof name, s, "trainable");
    return enum_value(p, v, name, trainable_names, CNN_TRAINABLE_COUNT, out);
}

/* train.trainable, head, freeze, lr_mult and stages. */
static cnn_status parse_tune_train(parse *p, const sect *top, cnn_train_spec *t,
                                   cnn_tune_spec *tune)
{
    static const char *const stage_keys[] = {"epochs", "trainable", "freeze", "lr"};
    const range positive = {0, INFINITY, 1, 0}, nonneg = {0, INFINITY, 0, 0};
    sect s = {0};
    cnn_status st;
    const pair *pr = map_find(top->map, "train");
    snprintf(s.name, sizeof s.name, "train");
    if (!pr || pr->val->kind != NODE_MAP) return CNN_OK;   /* parse_train reported it */
    s.key = pr->key;
    s.map = pr->val;
    if ((st = get_trainable(p, &s, CNN_TRAINABLE_ALL, &tune->trainable))
        || (st = get_patterns(p, &s, "head", &tune->head, &tune->nhead))
        || (st = get_patterns(p, &s, "freeze", &tune->freeze, &tune->nfreeze)))
        return st;
    const node *lm = value_of(&s, "lr_mult");
    if (lm) {
        if (lm->kind != NODE_MAP)
            return bad_value(p, lm, "train.lr_mult", "a mapping of layer name patterns to "
                             "multipliers, e.g. {\"stage1.*\": 0.1}");
        tune->lr_mult = arena_alloc(p->mem, (lm->n + 1) * sizeof *tune->lr_mult, p->e);
        if (!tune->lr_mult) return CNN_ERR_NOMEM;
        for (size_t i = 0; i < lm->n; i++) {
            tune->lr_mult[i].pattern = lm->pairs[i].key->text;
            if ((st = float_value(p, lm->pairs[i].val, "train.lr_mult", nonneg,
                                  &tune->lr_mult[i].value)))
                return st;
        }
        tune->nlr_mult = lm->n;
    }
    const node *sv = value_of(&s, "stages");
    if (!sv) return CNN_OK;
    if (sv->kind != NODE_SEQ || sv->n == 0)
        return bad_value(p, sv, "train.stages", "a list of stages, e.g. "
                         "[{epochs: 3, trainable: head}, {epochs: 10, lr: 0.001}]");
    if (t->sched.type == CNN_SCHED_PLATEAU)
        return fail(p, sv, "train.stages cannot be combined with the plateau schedule; "
                    "each stage runs the schedule over its own epochs");
    tune->stages = arena_alloc(p->mem, sv->n * sizeof *tune->stages, p->e);
    if (!tune->stages) return CNN_ERR_NOMEM;
    size_t total = 0;
    for (size_t i = 0; i < sv->n; i++) {
        sect ss = {0};
        cnn_stage_spec *g = &tune->stages[i];
        snprintf(ss.name, sizeof ss.name, "train.stages.%zu", i % 1000);
        ss.key = sv->items[i];
        if (sv->items[i]->kind != NODE_MAP)
            return bad_value(p, sv->items[i], ss.name, "a mapping {epochs, trainable, "
                             "freeze, lr}");
        ss.map = sv->items[i];
        if ((st = check_keys(p, &ss, stage_keys, 4))) return st;
        if (!value_of(&ss, "epochs")) return required(p, &ss, "epochs", "");
        if ((st = get_size(p, &ss, "epochs", 1, 1, LONG_MAX, &g->epochs))
            || (st = get_trainable(p, &ss, tune->trainable, &g->trainable))
            || (st = get_float(p, &ss, "lr", t->optim.lr, positive, &g->lr)))
            return st;
        if (value_of(&ss, "freeze")) {
            if ((st = get_patterns(p, &ss, "freeze", &g->freeze, &g->nfreeze))) return st;
        } else {
            g->freeze = tune->freeze;
            g->nfreeze = tune->nfreeze;
        }
        total += g->epochs;
    }
    tune->nstages = sv->n;
    const node *ev = value_of(&s, "epochs");
    if (ev && t->epochs != total)
        return fail(p, ev, "train.epochs is %zu but the stages add up to %zu epochs; "
                    "leave train.epochs out with stages", t->epochs, total);
    t->epochs = total;
    return CNN_OK;
}

/* The finetune section: from, rename, drop, reinit. */
static cnn_status parse_finetune(parse *p, const sect *top, cnn_tune_spec *tune)
{
    static const char *const keys[] = {"from", "rename", "drop", "reinit"};
    sect s;
    cnn_status st;
    if ((st = open_sect(p, top, "finetune", keys, 4, &s))
        || (st = get_string(p, &s, "from", &tune->from))
        || (st = get_patterns(p, &s, "drop", &tune->drop, &tune->ndrop))
        || (st = get_patterns(p, &s, "reinit", &tune->reinit, &tune->nreinit)))
        return st;
    const node *rv = value_of(&s, "rename");
    if (!rv) return CNN_OK;
    if (rv->kind != NODE_MAP)
        return bad_value(p, rv, "finetune.rename", "a mapping {old_name: new_name}, e.g. "
                         "{backbone: \"\"} or {classifier: head}");
    tune->rename_from = arena_alloc(p->mem, (rv->n + 1) * sizeof *tune->rename_from, p->e);
    tune->rename_to = arena_alloc(p->mem, (rv->n + 1) * sizeof *tune->rename_to, p->e);
    if (!tune->rename_from || !tune->rename_to) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < rv->n; i++) {
        const node *to = rv->pairs[i].val;
        if (to->kind != NODE_SCALAR && to->kind != NODE_NULL)
            return bad_value(p, to, "finetune.rename", "a layer name (or \"\" to strip)");
        tune->rename_from[i] = rv->pairs[i].key->text;
        tune->rename_to[i] = to->kind == NODE_SCALAR ? to->text : "";
    }
    tune->nrename = rv->n;
    return CNN_OK;
}

/* ---- the whole config -------------------------------------------------- */

/* The file's base name without .yaml or .yml ("config" if nothing is left). */
static cnn_status default_name(parse *p, const char **out)
{
    const char *base = strrchr(p->path, '/');
    base = base ? base + 1 : p->path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".yaml")) n -= 5;
    else if (n > 4 && !strcmp(base + n - 4, ".yml")) n -= 4;
    if (!n) { base = "config"; n = 6; }
    *out = arena_strndup(p->mem, base, n, p->e);
    return *out ? CNN_OK : CNN_ERR_NOMEM;
}

/* The run name becomes a directory, runs/<name>/. */
static int valid_run_name(const char *s)
{
    if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

static cnn_status parse_top(parse *p, const node *root, cnn_config *cfg)
{
    static const char *const keys[] = {"name", "seed", "data", "task", "model", "train",
                                       "finetune"};
    sect top = {.map = root};
    const char *name;
    long seed;
    cnn_status st;
    if ((st = check_keys(p, &top, keys, 7))
        || (st = get_string(p, &top, "name", &name))
        || (st = get_int(p, &top, "seed", 42, 0, LONG_MAX, &seed)))
        return st;
    if (name && !valid_run_name(name))
        return fail(p, value_of(&top, "name"), "name must be usable as a directory name "
                    "(no '/' or control characters, not '.' or '..'), got \"%s\"", name);
    if (!name && (st = default_name(p, &name))) return st;
    cfg->name = (char *)name;
    cfg->seed = (uint64_t)seed;
    cnn_shape input;
    if ((st = parse_data(p, &top, &cfg->data))
        || (st = parse_task(p, &top, &cfg->data, &cfg->task, &input))
        || (st = parse_model(p, &top, &cfg->task, &cfg->model))
        || (st = parse_train(p, &top, &cfg->data, &cfg->train))
        || (st = parse_tune_train(p, &top, &cfg->train, &cfg->tune))
        || (st = parse_finetune(p, &top, &cfg->tune)))
        return st;
    cfg->model.input = input;
    return CNN_OK;
}

static cnn_status check_root(parse *p, const node *root)
{
    if (root->kind == NODE_MAP) return CNN_OK;
    return fail(p, root, "a config must be a mapping of sections (name, seed, data, "
                "task, model, train, finetune), got %s", root->kind == NODE_SEQ ? "a list" : "one value");
}

/* Put name and seed at the top of the tree if the file left them out, so that
 * the resolved text reads back the same wherever it is stored. */
static cnn_status make_explicit(parse *p, node *root, const cnn_config *cfg)
{
    char seed[32];
    const char *keys[2] = {"name", "seed"}, *vals[2] = {cfg->name, seed};
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    for (int i = 1; i >= 0; i--) {
        pair *pr = map_find(root, keys[i]);
        if (pr && pr->val->kind != NODE_NULL) continue;
        node *k = node_new(p, NODE_SCALAR, 0, 0, NULL);
        node *v = node_new(p, NODE_SCALAR, 0, 0, NULL);
        if (!k || !v || !(k->text = arena_strndup(p->mem, keys[i], 4, p->e))
            || !(v->text = arena_strndup(p->mem, vals[i], strlen(vals[i]), p->e)))
            return CNN_ERR_NOMEM;
        if (is_null_word(v->text)) v->style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (pr) { pr->val = v; continue; }
        if (map_add(p, root, k, v)) return CNN_ERR_NOMEM;
        memmove(root->pairs + 1, root->pairs, (root->n - 1) * sizeof *root->pairs);
        root->pairs[0].key = k;
        root->pairs[0].val = v;
    }
    return CNN_OK;
}

/* ---- writing the tree back out ----------------------------------------- */

typedef struct outbuf {
    char *buf;
    size_t len, cap;
    cnn_error *e;
} outbuf;

static int out_write(void *data, unsigned char *bytes, size_t size)
{
    outbuf *o = data;
    if (o->len + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + size + 1) cap *= 2;
        char *q = cnn_realloc(o->buf, cap, 1, "resolved config", o->e);
        if (!q) return 0;
        o->buf = q;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, bytes, size);
    o->len += size;
    o->buf[o->len] = 0;
    return 1;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text,
                                        (int)strlen(text), 1, 1, style)
        && yaml_emitter_emit(em, &ev);
}

static int emit_node(yaml_emitter_t *em, const node *n)
{
    yaml_event_t ev;
    switch (n->kind) {
    case NODE_NULL:
        return emit_scalar(em, "~", YAML_PLAIN_SCALAR_STYLE);
    case NODE_SCALAR:
        return emit_scalar(em, n->text, n->style);
    case NODE_SEQ:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, n->flow
                ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE)
            || !yaml_emitter_emit(em, &ev))
            return 0;
        for (size_t i = 0; i < n->n; i++)
            if (!emit_node(em, n->items[i])) return 0;
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
    case NODE_MAP:
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, n->flow
                ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE)
            || !yaml_emitter_emit(em, &ev))
            return 0;
        for (size_t i = 0; i < n->n; i++)
            if (!emit_node(em, n->pairs[i].key) || !emit_node(em, n->pairs[i].val))
                return 0;
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
    }
    return 0;
}

static int emit_document(yaml_emitter_t *em, const node *root)
{
    yaml_event_t ev;
    return yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)
        && yaml_emitter_emit(em, &ev)
        && yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)
        && yaml_emitter_emit(em, &ev)
        && emit_node(em, root)
        && yaml_document_end_event_initialize(&ev, 1)
        && yaml_emitter_emit(em, &ev)
        && yaml_stream_end_event_initialize(&ev)
        && yaml_emitter_emit(em, &ev);
}

static cnn_status resolve_text(parse *p, const node *root, char **out)
{
    yaml_emitter_t em;
    outbuf o = {.e = p->e};
    cnn_status st = CNN_OK;
    if (!yaml_emitter_initialize(&em))
        return cnn_error_set(p->e, CNN_ERR_NOMEM, "out of memory starting the YAML emitter");
    yaml_emitter_set_output(&em, out_write, &o);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    if (!emit_document(&em, root) || !yaml_emitter_flush(&em)) {
        st = p->e && p->e->status == CNN_ERR_NOMEM ? CNN_ERR_NOMEM
            : fail_at(p, NULL, 0, 0, "cannot write the resolved config: %s",
                      em.problem ? em.problem : "a value is not valid UTF-8");
        goto done;
    }
    if (!(*out = arena_strndup(p->mem, o.buf ? o.buf : "", o.len, p->e)))
        st = CNN_ERR_NOMEM;
done:
    yaml_emitter_delete(&em);
    free(o.buf);
    return st;
}

cnn_status cnn_config_parse(const char *text, size_t len, const char *path,
                            const char *const *sets, size_t nsets,
                            cnn_config *cfg, cnn_error *e)
{
    parse p = {.e = e, .path = path ? path : "<config>"};
    node *root = NULL;
    cnn_status st;
    cnn_error_clear(e);
    memset(cfg, 0, sizeof *cfg);
    if (!(p.mem = cnn_alloc(1, sizeof *p.mem, "config", e))) {
        st = CNN_ERR_NOMEM;
        goto done;
    }
    if ((st = read_document(&p, text ? text : "", text ? len : 0, NULL, &root))
        || (st = check_root(&p, root)))
        goto done;
    for (size_t i = 0; i < nsets; i++)
        if ((st = apply_set(&p, root, sets[i]))) goto done;
    if ((st = parse_top(&p, root, cfg))
        || (st = make_explicit(&p, root, cfg))
        || (st = resolve_text(&p, root, &cfg->resolved)))
        goto done;
    if (!(cfg->path = arena_strndup(p.mem, p.path, strlen(p.path), e))) st = CNN_ERR_NOMEM;
done:
    if (st) {
        arena_free(p.mem);
        memset(cfg, 0, sizeof *cfg);
        cnn_error_file(e, p.path);
        return st;
    }
    cfg->priv = p.mem;
    return CNN_OK;
}

/* Read a whole file, refusing more than CONFIG_MAX_BYTES. */
static cnn_status read_file(const char *path, char **out, size_t *len, cnn_error *e)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    cnn_status st = CNN_OK;
    if (!f) {
        st = cnn_error_set(e, CNN_ERR_IO, "cannot open the config: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *q = cnn_realloc(buf, cap + 1, 1, "config text", e);
            if (!q) { st = CNN_ERR_NOMEM; goto done; }
            buf = q;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > CONFIG_MAX_BYTES) {
            st = cnn_error_set(e, CNN_ERR_CONFIG, "'%s' is larger than %zu MiB; a config "
                               "is a small text file", path, CONFIG_MAX_BYTES >> 20);
            goto done;
        }
        if (got) continue;
        if (ferror(f)) {
            st = cnn_error_set(e, CNN_ERR_IO, "cannot read the config: %s", strerror(errno));
            goto done;
        }
        break;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
done:
    if (f) fclose(f);
    free(buf);
    return st;
}

cnn_status cnn_config_load(const char *path, const char *const *sets,
                           size_t nsets, cnn_config *cfg, cnn_error *e)
{
    char *text = NULL;
    size_t len = 0;
    cnn_error_clear(e);
    memset(cfg, 0, sizeof *cfg);
    cnn_status st = read_file(path, &text, &len, e);
    if (st) {
        cnn_error_file(e, path);
        return st;
    }
    st = cnn_config_parse(text, len, path, sets, nsets, cfg, e);
    free(text);
    return st;
}

void cnn_config_free(cnn_config *cfg)
{
    if (!cfg) return;
    arena_free(cfg->priv);
    memset(cfg, 0, sizeof *cfg);
}
