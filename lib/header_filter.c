/*
 * A byte-at-a-time state machine over the header section. Each field is in one of three modes:
 * held (an Authentication-Results field, or one whose name is not complete yet, kept in f->field
 * until it can be judged), kept (streamed to the output) or dropped (streamed to nowhere). A line
 * starting with a space or tab continues the field before it (RFC 5322 §2.2.3 folding); an empty
 * line ends the header section.
 */
#include "lib/header_filter.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"

enum hf_state {
    HF_LINE_START, /* at the start of a header line */
    HF_LINE_CR,    /* a CR at the start of a line: the empty line if LF follows */
    HF_IN_LINE,    /* inside a header line */
    HF_BODY,       /* the header section is over */
};

enum hf_mode {
    HF_NONE, /* no field yet */
    HF_HELD,
    HF_KEEP,
    HF_DROP,
};

struct header_filter {
    const char *authserv_id;
    enum hf_state state;
    enum hf_mode mode;
    struct buf field; /* the held field */
    unsigned removed;
};

static const char AR_NAME[] = "Authentication-Results";

struct header_filter *header_filter_new(const char *authserv_id)
{
    struct header_filter *f = xcalloc(1, sizeof *f);
    f->authserv_id = authserv_id;
    return f;
}

void header_filter_free(struct header_filter *f)
{
    if (f == NULL)
        return;
    buf_free(&f->field);
    free(f);
}

int header_filter_passing(const struct header_filter *f)
{
    return f->state == HF_BODY;
}

unsigned header_filter_removed(const struct header_filter *f)
{
    return f->removed;
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Skips CFWS (RFC 5322 §3.2.2): spaces, tabs, line breaks of folding and nested comments. */
static size_t skip_cfws(const char *p, size_t i, size_t len)
{
    int depth = 0;
    while (i < len) {
        char c = p[i];
        if (depth > 0 && c == '\\' && i + 1 < len) {
            i += 2;
            continue;
        }
        if (c == '(')
            depth++;
        else if (c == ')' && depth > 0)
            depth--;
        else if (depth == 0 && !is_wsp(c) && c != '\r' && c != '\n')
            break;
        i++;
    }
    return i;
}

/* The held field is not an Authentication-Results field (0: it is, or may still turn out to be).
 * A line without a colon is no field and is kept as well. */
static int held_is_other(const struct header_filter *f, int line_ended)
{
    const char *p = f->field.data;
    const size_t name_len = sizeof AR_NAME - 1;
    const char *colon = memchr(p, ':', f->field.len);
    size_t n = colon != NULL ? (size_t)(colon - p) : f->field.len;
    while (n > 0 && is_wsp(p[n - 1])) /* RFC 5322 §4.5.4: obsolete space before the colon */
        n--;
    if (n > name_len || strncasecmp(p, AR_NAME, n < name_len ? n : name_len) != 0)
        return 1;
    if (colon == NULL)
        return line_ended;
    return n != name_len;
}

/* The held Authentication-Results field names our authserv-id (a token or a quoted-string,
 * RFC 8601 §2.2, after optional comments). */
static int held_claims_us(const struct header_filter *f)
{
    const char *p = f->field.data;
    size_t len = f->field.len;
    const char *colon = memchr(p, ':', len);
    size_t i = skip_cfws(p, (size_t)(colon - p) + 1, len);
    char id[256];
    size_t n = 0;
    if (i < len && p[i] == '"') {
        for (i++; i < len && p[i] != '"'; i++) {
            if (p[i] == '\\' && i + 1 < len)
                i++;
            if (p[i] == '\r' || p[i] == '\n')
                continue; /* folding inside the quotes */
            if (n == sizeof id - 1)
                return 0;
            id[n++] = p[i];
        }
    } else {
        for (; i < len && !is_wsp(p[i]) && strchr(";()\r\n", p[i]) == NULL; i++) {
            if (n == sizeof id - 1)
                return 0;
            id[n++] = p[i];
        }
    }
    id[n] = '\0';
    return strcasecmp(id, f->authserv_id) == 0;
}

/* Judges the held field once enough of it is known; `complete` when it has ended. */
static void held_judge(struct header_filter *f, int line_ended, int complete, struct buf *out)
{
    if (held_is_other(f, line_ended)) {
        f->mode = HF_KEEP;
    } else if (f->field.len > HEADER_FILTER_FIELD_MAX) {
        f->mode = HF_DROP;
    } else if (complete) {
        f->mode = held_claims_us(f) ? HF_DROP : HF_KEEP;
    } else {
        return; /* an Authentication-Results field still coming */
    }
    if (f->mode == HF_KEEP)
        buf_append(out, f->field.data, f->field.len);
    else
        f->removed++;
    buf_reset(&f->field);
}

/* Takes in[0..n) as part of the current field. */
static void field_bytes(struct header_filter *f, const char *in, size_t n, struct buf *out)
{
    if (f->mode == HF_HELD)
        buf_append(&f->field, in, n);
    else if (f->mode != HF_DROP)
        buf_append(out, in, n); /* kept, or text before the first field */
}

/* The field before this line has ended. */
static void field_end(struct header_filter *f, struct buf *out)
{
    if (f->mode == HF_HELD)
        held_judge(f, 1, 1, out);
    f->mode = HF_NONE;
}

void header_filter_feed(struct header_filter *f, const char *in, size_t len, struct buf *out)
{
    size_t i = 0;
    while (i < len) {
        if (f->state == HF_BODY) {
            buf_append(out, in + i, len - i);
            return;
        }
        if (f->state == HF_LINE_CR) {
            /* CR LF is the empty line; a bare CR is not, or a forged field could hide behind it */
            f->state = in[i] == '\n' ? HF_BODY : HF_IN_LINE;
            if (f->state == HF_IN_LINE)
                f->mode = HF_HELD;
            field_bytes(f, "\r", 1, out);
            continue;
        }
        if (f->state == HF_LINE_START) {
            char c = in[i];
            if (!is_wsp(c)) {
                field_end(f, out);
                if (c == '\n') {
                    f->state = HF_BODY; /* the empty line: the rest is the body */
                    continue;
                }
                if (c == '\r') {
                    f->state = HF_LINE_CR;
                    i++;
                    continue;
                }
                f->mode = HF_HELD;
            }
            f->state = HF_IN_LINE;
        }
        const char *nl = memchr(in + i, '\n', len - i);
        size_t n = nl != NULL ? (size_t)(nl - (in + i)) + 1 : len - i;
        field_bytes(f, in + i, n, out);
        i += n;
        if (nl != NULL)
            f->state = HF_LINE_START;
        if (f->mode == HF_HELD)
            held_judge(f, nl != NULL, 0, out);
    }
}

void header_filter_finish(struct header_filter *f, struct buf *out)
{
    if (f->state == HF_LINE_CR)
        buf_append(out, "\r", 1);
    else if (f->state != HF_BODY)
        field_end(f, out);
    f->state = HF_BODY;
}
