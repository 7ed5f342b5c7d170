#include "policy/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/hex.h"
#include "lib/xalloc.h"

#define LINE_KEEP 4096  /* octets of a line kept: any boundary, and RFC 5322 header lines (998) */
#define SEGMENTS_MAX 64 /* RFC 2231 continuations of one parameter */
#define SHOWN_NAME_MAX 100 /* octets of the blocked name put in the reply */

enum mime_state {
    STATE_HEADERS, /* a header block: the message's, a part's or a message/rfc822's */
    STATE_BODY,    /* a body, preamble or epilogue: only boundary lines matter */
    STATE_DONE,    /* verdict known: the rest is skipped */
};

/* The structure the current header block declares. */
struct part_info {
    int content_types; /* Content-Type fields seen */
    int multipart;     /* multipart/ *: boundary holds its boundary */
    int digest;        /* multipart/digest: parts are message/rfc822 by default */
    int message;       /* message/rfc822 or message/global: its body is a header block */
    int encoded;       /* Content-Transfer-Encoding base64 or quoted-printable */
    char boundary[MIME_BOUNDARY_MAX + 1];
};

struct mime_parser {
    const char *const *blocked;
    size_t nblocked;
    mime_filename_cb on_filename;
    void *arg;

    enum mime_state state;
    char line[LINE_KEEP];       /* the start of the current line */
    size_t line_len;            /* octets of the line so far (may exceed LINE_KEEP) */
    char field[MIME_FIELD_MAX]; /* the header field being unfolded */
    size_t field_len;
    int field_over; /* the field went over MIME_FIELD_MAX */
    size_t header_bytes;
    struct part_info part;

    char boundaries[MIME_DEPTH_MAX][MIME_BOUNDARY_MAX + 1]; /* open multiparts, outermost first */
    int digest[MIME_DEPTH_MAX]; /* that multipart is a multipart/digest */
    size_t depth;

    struct mime_result result;
    char shown[SHOWN_NAME_MAX + 4];
    char reply[SHOWN_NAME_MAX + 64];
    char scratch[MIME_FIELD_MAX]; /* parameter values, unquoted */
    char name[MIME_NAME_MAX + 1];
    char decoded[MIME_NAME_MAX + 1];
};

static void set_malformed(struct mime_parser *p, const char *problem)
{
    if (p->state == STATE_DONE)
        return;
    p->result.status = MIME_MALFORMED;
    p->result.problem = problem;
    p->state = STATE_DONE;
}

/* ---- filenames ---- */

int mime_name_blocked(const char *name, size_t len, const char *const *blocked, size_t nblocked)
{
    const char *nul = memchr(name, '\0', len);
    if (nul != NULL)
        len = (size_t)(nul - name);
    /* Windows drops trailing dots and spaces: "x.exe." and "x.exe " run as x.exe. */
    while (len > 0 && (name[len - 1] == '.' || name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    const char *dot = NULL;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '.')
            dot = name + i;
    if (dot == NULL)
        return 0;
    const char *ext = dot + 1;
    size_t ext_len = len - (size_t)(ext - name);
    for (size_t i = 0; i < nblocked; i++)
        if (strlen(blocked[i]) == ext_len && strncasecmp(blocked[i], ext, ext_len) == 0)
            return 1;
    return 0;
}

/* An output cursor that refuses to go past its end. */
struct out {
    char *data;
    size_t len, cap;
    int over;
};

static void out_put(struct out *o, char c)
{
    if (o->len < o->cap)
        o->data[o->len++] = c;
    else
        o->over = 1;
}

/* Decodes the text of one RFC 2047 encoded-word ('B' or 'Q'); the charset is not converted: the
 * extension is ASCII in every charset a mail client uses. */
static void word_decode(struct out *o, char enc, const char *s, size_t len)
{
    if (enc == 'B' || enc == 'b') {
        unsigned acc = 0, bits = 0;
        for (size_t i = 0; i < len && s[i] != '='; i++) {
            int v = base64_value((unsigned char)s[i]);
            if (v < 0)
                continue;
            acc = (acc << 6) | (unsigned)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out_put(o, (char)((acc >> bits) & 0xff));
            }
        }
        return;
    }
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '_')
            out_put(o, ' ');
        else if (s[i] == '=' && i + 2 < len &&
                 (hi = hex_digit_value((unsigned char)s[i + 1])) >= 0 &&
                 (lo = hex_digit_value((unsigned char)s[i + 2])) >= 0) {
            out_put(o, (char)(hi << 4 | lo));
            i += 2;
        } else
            out_put(o, s[i]);
    }
}

/* Parses an encoded-word "=?charset?E?text?=" at s; returns its length, or 0 when there is none. */
static size_t word_parse(const char *s, size_t len, char *enc, const char **text, size_t *text_len)
{
    if (len < 8 || s[0] != '=' || s[1] != '?')
        return 0;
    const char *q1 = memchr(s + 2, '?', len - 2);
    if (q1 == NULL || q1 + 3 >= s + len || q1[2] != '?')
        return 0;
    *enc = q1[1];
    if (strchr("BbQq", *enc) == NULL)
        return 0;
    const char *t = q1 + 3;
    for (const char *e = t; e + 1 < s + len; e++) {
        if (e[0] == '?' && e[1] == '=') {
            *text = t;
            *text_len = (size_t)(e - t);
            return (size_t)(e + 2 - s);
        }
    }
    return 0;
}

/* RFC 2047: decodes the encoded-words in s into o; blanks between two encoded-words go. */
static void words_decode(struct out *o, const char *s, size_t len)
{
    int after_word = 0;
    for (size_t i = 0; i < len;) {
        char enc;
        const char *text;
        size_t text_len, n = word_parse(s + i, len - i, &enc, &text, &text_len);
        if (n > 0) {
            word_decode(o, enc, text, text_len);
            i += n;
            after_word = 1;
            continue;
        }
        if (after_word && (s[i] == ' ' || s[i] == '\t')) {
            size_t j = i;
            while (j < len && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (word_parse(s + j, len - j, &enc, &text, &text_len) > 0) {
                i = j;
                continue;
            }
        }
        after_word = 0;
        out_put(o, s[i++]);
    }
}

/* Checks one filename, as written and decoded; a blocked one ends the parse. */
static void filename_found(struct mime_parser *p, const char *raw, size_t raw_len)
{
    if (raw_len > MIME_NAME_MAX) {
        set_malformed(p, "filename too long");
        return;
    }
    struct out o = {p->decoded, 0, MIME_NAME_MAX, 0};
    words_decode(&o, raw, raw_len);
    if (o.over) {
        set_malformed(p, "filename too long");
        return;
    }
    p->decoded[o.len] = '\0';
    p->result.filenames++;
    if (p->on_filename != NULL) {
        char raw_copy[MIME_NAME_MAX + 1];
        memcpy(raw_copy, raw, raw_len);
        raw_copy[raw_len] = '\0';
        p->on_filename(p->arg, raw_copy, p->decoded);
    }
    const char *hit = NULL;
    size_t hit_len = 0;
    if (mime_name_blocked(p->decoded, o.len, p->blocked, p->nblocked)) {
        hit = p->decoded;
        hit_len = o.len;
    } else if (mime_name_blocked(raw, raw_len, p->blocked, p->nblocked)) {
        hit = raw;
        hit_len = raw_len;
    }
    if (hit == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i < hit_len && n < SHOWN_NAME_MAX; i++) {
        unsigned char c = (unsigned char)hit[i];
        p->shown[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (hit_len > SHOWN_NAME_MAX)
        memcpy(p->shown + n, "...", 3), n += 3;
    p->shown[n] = '\0';
    p->result.status = MIME_BLOCKED;
    p->result.name = p->shown;
    p->state = STATE_DONE;
}

/* ---- Content-Type and Content-Disposition parameters ---- */

/* One parameter value (unquoted, in p->scratch). */
struct param_value {
    size_t off, len;
    int set;
    int extended; /* RFC 2231 "*": charset'lang'%XX */
};

/* The values of one filename parameter ("filename" or "name") in one field. */
struct name_param {
    struct param_value plain;                  /* filename="..." */
    struct param_value whole;                  /* filename*=utf-8''... */
    struct param_value segments[SEGMENTS_MAX]; /* filename*0=, filename*1*=, ... */
};

/* RFC 2231 §4: percent-decodes an extended value; the first one starts with charset'lang'. */
static void ext_decode(struct out *o, const char *s, size_t len, int first)
{
    if (first) {
        const char *q1 = memchr(s, '\'', len);
        const char *q2 = q1 ? memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - s)) : NULL;
        if (q2 != NULL) {
            len -= (size_t)(q2 + 1 - s);
            s = q2 + 1;
        }
    }
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hex_digit_value((unsigned char)s[i + 1])) >= 0 &&
            (lo = hex_digit_value((unsigned char)s[i + 2])) >= 0) {
            out_put(o, (char)(hi << 4 | lo));
            i += 2;
        } else
            out_put(o, s[i]);
    }
}

static void name_param_report(struct mime_parser *p, const struct name_param *np)
{
    if (np->plain.set)
        filename_found(p, p->scratch + np->plain.off, np->plain.len);
    for (int which = 0; which < 2 && p->state != STATE_DONE; which++) {
        struct out o = {p->name, 0, MIME_NAME_MAX, 0};
        if (which == 0 && np->whole.set) {
            ext_decode(&o, p->scratch + np->whole.off, np->whole.len, 1);
        } else if (which == 1 && np->segments[0].set) {
            for (size_t i = 0; i < SEGMENTS_MAX && np->segments[i].set; i++) {
                const struct param_value *v = &np->segments[i];
                if (v->extended)
                    ext_decode(&o, p->scratch + v->off, v->len, i == 0);
                else
                    for (size_t j = 0; j < v->len; j++)
                        out_put(&o, p->scratch[v->off + j]);
            }
        } else
            continue;
        if (o.over) {
            set_malformed(p, "filename too long");
            return;
        }
        p->name[o.len] = '\0';
        filename_found(p, p->name, o.len);
    }
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips blanks and RFC 5322 comments. */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
    while (i < len) {
        if (is_blank(s[i])) {
            i++;
        } else if (s[i] == '(') {
            int level = 0;
            for (; i < len; i++) {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                else if (s[i] == '(')
                    level++;
                else if (s[i] == ')' && --level == 0) {
                    i++;
                    break;
                }
            }
        } else
            break;
    }
    return i;
}

/* Reads a value (quoted string or token, which is read up to ';' so that unquoted names with
 * spaces are taken whole) at s[i] into p->scratch at *used; returns the index after it. */
static size_t value_read(struct mime_parser *p, const char *s, size_t len, size_t i,
                         struct param_value *v, size_t *used)
{
    v->off = *used;
    if (i < len && s[i] == '"') {
        for (i++; i < len && s[i] != '"'; i++) {
            if (s[i] == '\\' && i + 1 < len)
                i++;
            if (s[i] != '\r' && s[i] != '\n')
                p->scratch[(*used)++] = s[i];
        }
        if (i < len)
            i++;
    } else {
        size_t end = i;
        while (end < len && s[end] != ';')
            end++;
        size_t last = end;
        while (last > i && is_blank(s[last - 1]))
            last--;
        for (; i < last; i++)
            if (s[i] != '\r' && s[i] != '\n')
                p->scratch[(*used)++] = s[i];
        i = end;
    }
    v->len = *used - v->off;
    v->set = 1;
    return i;
}

/* Where a parameter named attr (lower case) goes; NULL for one we do not need. */
static struct param_value *param_slot(struct name_param *np, const char *base, const char *attr,
                                      size_t attr_len, int *extended)
{
    size_t base_len = strlen(base);
    if (attr_len < base_len || memcmp(attr, base, base_len) != 0)
        return NULL;
    const char *rest = attr + base_len;
    size_t rest_len = attr_len - base_len;
    *extended = rest_len > 0 && rest[rest_len - 1] == '*';
    if (rest_len == 0)
        return &np->plain;
    if (rest[0] != '*')
        return NULL;
    if (rest_len == 1)
        return &np->whole;
    size_t digits_end = rest_len - (*extended ? 1 : 0);
    unsigned index = 0;
    for (size_t i = 1; i < digits_end; i++) {
        if (rest[i] < '0' || rest[i] > '9' || index >= SEGMENTS_MAX)
            return NULL;
        index = index * 10 + (unsigned)(rest[i] - '0');
    }
    if (digits_end == 1 || index >= SEGMENTS_MAX)
        return NULL;
    return &np->segments[index];
}

/* Parses the parameters of a Content-Type (is_type) or Content-Disposition value. */
static void params_parse(struct mime_parser *p, const char *s, size_t len, int is_type)
{
    struct name_param *np = xcalloc(1, sizeof *np);
    const char *base = is_type ? "name" : "filename";
    size_t used = 0;
    size_t i = skip_cfws(s, len, 0);
    size_t start = i;
    while (i < len && s[i] != ';' && !is_blank(s[i]) && s[i] != '(')
        i++;
    if (is_type) {
        size_t tlen = i - start;
        p->part.content_types++;
        p->part.multipart = tlen >= 10 && strncasecmp(s + start, "multipart/", 10) == 0;
        p->part.message = (tlen == 14 && strncasecmp(s + start, "message/rfc822", 14) == 0) ||
                          (tlen == 14 && strncasecmp(s + start, "message/global", 14) == 0);
        p->part.digest = tlen == 16 && strncasecmp(s + start, "multipart/digest", 16) == 0;
        p->part.boundary[0] = '\0';
    }
    while (i < len) {
        while (i < len && s[i] != ';')
            i++;
        if (i >= len)
            break;
        i = skip_cfws(s, len, i + 1);
        size_t a = i;
        while (i < len && s[i] != '=' && s[i] != ';' && !is_blank(s[i]))
            i++;
        char attr[64];
        size_t attr_len = i - a < sizeof(attr) - 1 ? i - a : sizeof(attr) - 1;
        for (size_t k = 0; k < attr_len; k++)
            attr[k] = (char)(s[a + k] >= 'A' && s[a + k] <= 'Z' ? s[a + k] - 'A' + 'a' : s[a + k]);
        attr[attr_len] = '\0';
        i = skip_cfws(s, len, i);
        if (i >= len || s[i] != '=')
            continue;
        i = skip_cfws(s, len, i + 1);
        struct param_value v = {0};
        i = value_read(p, s, len, i, &v, &used);
        int extended = 0;
        struct param_value *slot = param_slot(np, base, attr, attr_len, &extended);
        if (slot != NULL) {
            *slot = v;
            slot->extended = extended;
        } else if (is_type && strcmp(attr, "boundary") == 0) {
            if (v.len == 0 || v.len > MIME_BOUNDARY_MAX) {
                set_malformed(p, "multipart boundary empty or too long");
                break;
            }
            memcpy(p->part.boundary, p->scratch + v.off, v.len);
            p->part.boundary[v.len] = '\0';
        }
    }
    if (p->state != STATE_DONE)
        name_param_report(p, np);
    free(np);
}

/* ---- header blocks ---- */

static int field_is(const char *field, size_t len, const char *name, size_t *value_off)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(field, name, n) != 0)
        return 0;
    size_t i = n;
    while (i < len && (field[i] == ' ' || field[i] == '\t'))
        i++;
    if (i >= len || field[i] != ':')
        return 0;
    *value_off = i + 1;
    return 1;
}

static void field_end(struct mime_parser *p)
{
    size_t len = p->field_len, off;
    const char *f = p->field;
    int is_type = field_is(f, len, "content-type", &off);
    int is_disp = !is_type && field_is(f, len, "content-disposition", &off);
    if ((is_type || is_disp) && p->field_over)
        set_malformed(p, "Content-Type or Content-Disposition field too long");
    else if (is_type || is_disp)
        params_parse(p, f + off, len - off, is_type);
    else if (field_is(f, len, "content-transfer-encoding", &off)) {
        off = skip_cfws(f, len, off);
        p->part.encoded = (len - off >= 6 && strncasecmp(f + off, "base64", 6) == 0) ||
                          (len - off >= 16 && strncasecmp(f + off, "quoted-printable", 16) == 0);
    }
    p->field_len = 0;
    p->field_over = 0;
}

static void headers_begin(struct mime_parser *p)
{
    if (++p->result.parts > MIME_PARTS_MAX) {
        set_malformed(p, "too many MIME parts");
        return;
    }
    p->state = STATE_HEADERS;
    p->header_bytes = 0;
    p->field_len = 0;
    p->field_over = 0;
    memset(&p->part, 0, sizeof p->part);
}

/* The blank line after a header block: what follows is decided by the block's Content-Type. */
static void headers_end(struct mime_parser *p)
{
    if (p->field_len > 0)
        field_end(p);
    if (p->state == STATE_DONE)
        return;
    /* Two Content-Type fields, or an encoded container, may be read differently by the mail
     * client than by us: a hidden part could pass unchecked, so we refuse to guess. */
    if (p->part.content_types > 1) {
        set_malformed(p, "more than one Content-Type field");
        return;
    }
    if ((p->part.multipart || p->part.message) && p->part.encoded) {
        set_malformed(p, "multipart or message part with a transfer encoding");
        return;
    }
    /* RFC 2046 §5.1.5: a part of a digest without Content-Type is a message. */
    if (p->part.content_types == 0 && p->depth > 0 && p->digest[p->depth - 1])
        p->part.message = 1;
    if (p->part.message) {
        headers_begin(p);
        return;
    }
    p->state = STATE_BODY;
    if (!p->part.multipart)
        return;
    if (p->part.boundary[0] == '\0') {
        set_malformed(p, "multipart without a boundary");
        return;
    }
    if (p->depth == MIME_DEPTH_MAX) {
        set_malformed(p, "multiparts nested too deep");
        return;
    }
    p->digest[p->depth] = p->part.digest;
    strcpy(p->boundaries[p->depth++], p->part.boundary);
}

/* A line starting "--boundary" of an open multipart (the innermost that matches) opens its next
 * part, or with "--" after it closes it and every multipart inside; returns 1 if it was one. */
static int boundary_line(struct mime_parser *p, const char *line, size_t len)
{
    if (len < 3 || line[0] != '-' || line[1] != '-')
        return 0;
    for (size_t i = p->depth; i-- > 0;) {
        size_t n = strlen(p->boundaries[i]);
        if (len - 2 < n || memcmp(line + 2, p->boundaries[i], n) != 0)
            continue;
        if (len - 2 - n >= 2 && line[2 + n] == '-' && line[3 + n] == '-') {
            p->depth = i;
            p->state = STATE_BODY;
        } else {
            p->depth = i + 1;
            headers_begin(p);
        }
        return 1;
    }
    return 0;
}

static void header_line(struct mime_parser *p, const char *line, size_t len)
{
    if (len == 0) {
        headers_end(p);
        return;
    }
    if (line[0] != ' ' && line[0] != '\t' && p->field_len > 0)
        field_end(p);
    if (p->state == STATE_DONE)
        return;
    size_t room = MIME_FIELD_MAX - p->field_len;
    size_t n = len < room ? len : room;
    memcpy(p->field + p->field_len, line, n);
    p->field_len += n;
    if (n < len)
        p->field_over = 1;
}

/* "begin 644 name" or "begin-base64 644 name" in a body: a uuencoded file, which several mail
 * clients still show as an attachment. */
static void uuencode_line(struct mime_parser *p, const char *line, size_t len)
{
    size_t i;
    if (len > 6 && memcmp(line, "begin ", 6) == 0)
        i = 6;
    else if (len > 13 && memcmp(line, "begin-base64 ", 13) == 0)
        i = 13;
    else
        return;
    size_t digits = i;
    while (i < len && line[i] >= '0' && line[i] <= '7')
        i++;
    if (i == digits || i - digits > 4 || i >= len || line[i] != ' ')
        return;
    filename_found(p, line + i + 1, len - i - 1);
}

/* The current line is complete (its start in p->line, its line end not counted). */
static void line_end(struct mime_parser *p)
{
    size_t len = p->line_len < LINE_KEEP ? p->line_len : LINE_KEEP;
    int truncated = p->line_len > LINE_KEEP;
    if (!truncated && len > 0 && p->line[len - 1] == '\r')
        len--;
    if (boundary_line(p, p->line, len))
        return;
    if (p->state == STATE_HEADERS) {
        header_line(p, p->line, len);
        /* A header line longer than we keep lost its end: harmless unless it is a Content-* one. */
        if (truncated)
            p->field_over = 1;
    } else if (p->state == STATE_BODY) {
        uuencode_line(p, p->line, len);
    }
}

/* ---- the public interface ---- */

struct mime_parser *mime_parser_new(const char *const *blocked, size_t nblocked,
                                    mime_filename_cb on_filename, void *arg)
{
    struct mime_parser *p = xcalloc(1, sizeof *p);
    p->blocked = blocked;
    p->nblocked = nblocked;
    p->on_filename = on_filename;
    p->arg = arg;
    headers_begin(p);
    return p;
}

void mime_parser_free(struct mime_parser *p)
{
    free(p);
}

void mime_parser_feed(struct mime_parser *p, const char *data, size_t len)
{
    while (len > 0 && p->state != STATE_DONE) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (p->state == STATE_HEADERS) {
            p->header_bytes += n + (nl != NULL);
            if (p->header_bytes > MIME_HEADER_MAX) {
                set_malformed(p, "header block too large");
                return;
            }
        }
        if (p->line_len < LINE_KEEP) {
            size_t keep = LINE_KEEP - p->line_len < n ? LINE_KEEP - p->line_len : n;
            memcpy(p->line + p->line_len, data, keep);
        }
        p->line_len += n;
        if (nl == NULL)
            return;
        line_end(p);
        p->line_len = 0;
        data += n + 1;
        len -= n + 1;
    }
}

const struct mime_result *mime_parser_finish(struct mime_parser *p)
{
    if (p->state != STATE_DONE && p->line_len > 0) {
        line_end(p);
        p->line_len = 0;
    }
    if (p->state == STATE_HEADERS)
        headers_end(p);
    if (p->state != STATE_DONE && p->depth > 0)
        p->result.unterminated = 1;
    return &p->result;
}

struct policy_decision mime_parser_verdict(struct mime_parser *p)
{
    static const struct config_pos builtin = {NULL, 0, 0};
    struct policy_decision d = {POLICY_ACCEPT, 250, "2.0.0", "Ok", "inbound.blocked_attachments",
                                builtin};
    if (p->result.status == MIME_BLOCKED) {
        snprintf(p->reply, sizeof(p->reply), "Message rejected: attachment type not allowed: %s",
                 p->result.name);
        d = (struct policy_decision){
            POLICY_REJECT, 554, "5.7.1", p->reply, "inbound.blocked_attachments", builtin};
    } else if (p->result.status == MIME_MALFORMED) {
        d = (struct policy_decision){POLICY_REJECT,
                                     554,
                                     "5.6.0",
                                     "Message rejected: malformed MIME structure",
                                     "inbound.blocked_attachments.malformed",
                                     builtin};
    }
    return d;
}
