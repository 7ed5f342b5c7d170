/*
 * The first stage of loading a configuration: the YAML text parsed with libyaml's event API into a
 * tree of nodes that knows where each value was written, and the errors of every stage collected
 * as "file:line:column: message" lines. Anchors, aliases, tags and more than one document are
 * refused here, before any key is looked at.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/config_int.h"
#include "lib/xalloc.h"

/* Our keys nest four deep at most (listeners, item, key, value): deeper input is refused before it
 * can cost stack or memory. */
#define MAX_DEPTH 16
/* Messages after this many are dropped: one mistake repeated down a long file says enough. */
#define MAX_ERRORS 20

/* ---- Errors: "file:line:column: message" lines ---- */

void config_verror_at(struct errors *e, unsigned line, unsigned column, const char *fmt, va_list ap)
{
    e->count++;
    if (e->count > MAX_ERRORS + 1)
        return;
    buf_printf(e->out, "%s:%u:%u: ", e->file, line, column);
    if (e->count == MAX_ERRORS + 1) {
        buf_append_str(e->out, "too many errors; the rest are not reported\n");
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    buf_printf(e->out, "%s\n", msg);
}

static void __attribute__((format(printf, 4, 5)))
error_at(struct errors *e, unsigned line, unsigned column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_verror_at(e, line, column, fmt, ap);
    va_end(ap);
}

const char *config_shown(const char *text, size_t len, char out[SHOWN_BUF])
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < SHOWN_MAX; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
    }
    if (len > SHOWN_MAX)
        o += (size_t)snprintf(out + o, 4, "...");
    out[o] = '\0';
    return out;
}

/* ---- The YAML tree ---- */

void config_node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nitems; i++)
        config_node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

int config_node_is(const struct node *n, const char *word)
{
    return n->len == strlen(word) && memcmp(n->text, word, n->len) == 0;
}

int config_node_is_null(const struct node *n)
{
    return n == NULL || (n->kind == NODE_SCALAR && n->plain &&
                         (n->len == 0 || config_node_is(n, "~") || config_node_is(n, "null") ||
                          config_node_is(n, "Null") || config_node_is(n, "NULL")));
}

const char *config_node_kind_name(enum node_kind kind)
{
    return kind == NODE_SCALAR ? "a single value" : kind == NODE_SEQUENCE ? "a list" : "a mapping";
}

struct builder {
    struct errors *e;
    struct node *root;
    struct node *open[MAX_DEPTH]; /* containers not yet closed, innermost last */
    int depth;
    int documents;
    int done;
};

/* Adds the node that event ev starts. Anchors and aliases are refused outright: a tree of aliases
 * expands exponentially ("billion laughs"), and a configuration has no need to share values. Tags
 * would change a value's type. */
static int builder_add(struct builder *b, const yaml_event_t *ev, enum node_kind kind,
                       const yaml_char_t *anchor_text, const yaml_char_t *tag_text)
{
    const char *anchor = (const char *)anchor_text, *tag = (const char *)tag_text;
    char tmp[SHOWN_BUF];
    unsigned line = (unsigned)ev->start_mark.line + 1, column = (unsigned)ev->start_mark.column + 1;
    if (anchor != NULL) {
        error_at(b->e, line, column, "YAML anchors (&%s) are not allowed: write each value out",
                 config_shown(anchor, strlen(anchor), tmp));
        return -EINVAL;
    }
    if (tag != NULL) {
        error_at(b->e, line, column, "YAML tags (%s) are not allowed",
                 config_shown(tag, strlen(tag), tmp));
        return -EINVAL;
    }
    if (kind != NODE_SCALAR && b->depth == MAX_DEPTH) {
        error_at(b->e, line, column, "nested too deeply (more than %d levels)", MAX_DEPTH);
        return -EINVAL;
    }
    struct node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = line;
    n->column = column;
    if (kind == NODE_SCALAR) {
        n->len = ev->data.scalar.length;
        n->text = xmalloc(n->len + 1);
        memcpy(n->text, ev->data.scalar.value, n->len);
        n->text[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    }
    if (b->depth == 0) {
        b->root = n;
    } else {
        struct node *parent = b->open[b->depth - 1];
        if (parent->nitems == parent->cap) {
            parent->cap = parent->cap ? parent->cap * 2 : 8;
            parent->items = xrealloc(parent->items, parent->cap * sizeof *parent->items);
        }
        parent->items[parent->nitems++] = n;
    }
    if (kind != NODE_SCALAR)
        b->open[b->depth++] = n;
    return 0;
}

static int builder_event(struct builder *b, const yaml_event_t *ev)
{
    char tmp[SHOWN_BUF];
    unsigned line = (unsigned)ev->start_mark.line + 1, column = (unsigned)ev->start_mark.column + 1;
    const char *alias;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        b->done = 1;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            error_at(b->e, line, column, "only one YAML document is allowed");
            return -EINVAL;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        alias = (const char *)ev->data.alias.anchor;
        error_at(b->e, line, column, "YAML aliases (*%s) are not allowed: write each value out",
                 config_shown(alias, strlen(alias), tmp));
        return -EINVAL;
    case YAML_SCALAR_EVENT:
        return builder_add(b, ev, NODE_SCALAR, ev->data.scalar.anchor, ev->data.scalar.tag);
    case YAML_SEQUENCE_START_EVENT:
        return builder_add(b, ev, NODE_SEQUENCE, ev->data.sequence_start.anchor,
                           ev->data.sequence_start.tag);
    case YAML_MAPPING_START_EVENT:
        return builder_add(b, ev, NODE_MAPPING, ev->data.mapping_start.anchor,
                           ev->data.mapping_start.tag);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        b->depth--;
        return 0;
    default:
        return 0;
    }
}

/* 1-based line and column of byte `offset` in text, for errors libyaml reports only by offset. */
static void offset_position(const char *text, size_t len, size_t offset, unsigned *line,
                            unsigned *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

/* The byte offset where 0-based line `line` of text starts (len when there are fewer lines). */
static size_t line_start(const char *text, size_t len, size_t line)
{
    size_t at = 0;
    for (; line > 0 && at < len; at++)
        if (text[at] == '\n')
            line--;
    return at;
}

/* Reports libyaml's parse error, in plain words for the two mistakes people make most: a tab in
 * the indentation (YAML indents with spaces only; libyaml says "found character that cannot start
 * any token") and a quoted string that is never closed (libyaml notices only at the end). */
static void syntax_error(struct errors *e, const char *text, size_t len, const yaml_parser_t *p)
{
    unsigned line = (unsigned)p->problem_mark.line + 1;
    unsigned column = (unsigned)p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_READER_ERROR) {
        offset_position(text, len, p->problem_offset, &line, &column);
    } else if (p->error == YAML_SCANNER_ERROR) {
        size_t start = line_start(text, len, p->problem_mark.line), at = start;
        while (at < len && text[at] == ' ')
            at++;
        if (at < len && text[at] == '\t') {
            error_at(e, line, (unsigned)(at - start) + 1,
                     "tab character used for indentation: YAML allows only spaces");
            return;
        }
        int ends = strcmp(problem, "found unexpected end of stream") == 0;
        if (p->context != NULL && strcmp(p->context, "while scanning a quoted scalar") == 0 &&
            (ends || strcmp(problem, "found unexpected document indicator") == 0)) {
            unsigned from_line = (unsigned)p->context_mark.line + 1;
            unsigned from_column = (unsigned)p->context_mark.column + 1;
            size_t quote = line_start(text, len, p->context_mark.line) + p->context_mark.column;
            char q = quote < len && text[quote] == '\'' ? '\'' : '"';
            if (ends)
                error_at(e, from_line, from_column,
                         "unclosed quoted string starting at %u:%u: no closing %c before the end "
                         "of the file",
                         from_line, from_column, q);
            else
                error_at(e, from_line, from_column,
                         "unclosed quoted string starting at %u:%u: no closing %c before the "
                         "'---' at %u:%u",
                         from_line, from_column, q, line, column);
            return;
        }
    }
    error_at(e, line, column, "YAML syntax error: %s%s%s%s", problem, p->context ? " (" : "",
             p->context ? p->context : "", p->context ? ")" : "");
}

int config_tree_build(const char *text, size_t len, struct errors *e, struct node **root)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "sluice: out of memory initializing the YAML parser\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    struct builder b = {.e = e};
    int rc = 0;
    while (rc == 0 && !b.done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(e, text, len, &parser);
            rc = -EINVAL;
            break;
        }
        rc = builder_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc < 0) {
        config_node_free(b.root);
        return rc;
    }
    *root = b.root;
    return 0;
}
