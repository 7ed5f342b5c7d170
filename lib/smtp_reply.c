#include "lib/smtp_reply.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static enum smtp_reply_status parser_fail(struct smtp_reply_parser *p, const char *why)
{
    p->status = REPLY_ERROR;
    p->error = why;
    return REPLY_ERROR;
}

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
    memset(p, 0, sizeof *p);
    p->status = REPLY_NEED_MORE;
}

void smtp_reply_parser_close(struct smtp_reply_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->reply.text);
}

size_t smtp_enhanced_parse(const char *text, size_t len, struct smtp_enhanced *out)
{
    if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
        return 0;
    unsigned part[2] = {0, 0};
    size_t i = 2;
    for (int k = 0; k < 2; k++) {
        size_t digits = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9' && digits < 4) {
            part[k] = part[k] * 10 + (unsigned)(text[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3)
            return 0;
        if (k == 0) {
            if (i >= len || text[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && text[i] != ' ')
        return 0;
    out->cls = (unsigned)(text[0] - '0');
    out->subject = part[0];
    out->detail = part[1];
    return i;
}

/* Checks the finished line in p->line (its LF already dropped) and adds its text to the reply.
 * Sets *last when it was the reply's final line. Returns 0, or -1 after parser_fail(). */
static int parser_end_line(struct smtp_reply_parser *p, int *last)
{
    const char *s = p->line.data;
    size_t len = p->line.len;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    /* RFC 5321 §4.2: first digit 2-5, second 0-5, third 0-9. */
    if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' ||
        s[2] > '9') {
        parser_fail(p, "malformed reply code");
        return -1;
    }
    /* "ddd" alone is a valid last line; otherwise '-' continues and ' ' ends the reply. */
    if (len > 3 && s[3] != '-' && s[3] != ' ') {
        parser_fail(p, "malformed reply code");
        return -1;
    }
    int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    struct smtp_reply *r = &p->reply;
    if (r->nlines > 0 && code != r->code) {
        parser_fail(p, "reply lines with different codes");
        return -1;
    }
    if (r->nlines == SMTP_REPLY_LINES_MAX) {
        parser_fail(p, "too many reply lines");
        return -1;
    }
    const char *text = s + (len > 3 ? 4 : 3);
    size_t text_len = len > 3 ? len - 4 : 0;
    if (r->nlines == 0) {
        r->code = code;
        /* An enhanced code whose class disagrees with the reply code is not trusted (RFC 3463 §2:
         * the class must match the reply's first digit). */
        if (smtp_enhanced_parse(text, text_len, &r->enhanced) == 0 ||
            r->enhanced.cls != (unsigned)(code / 100))
            memset(&r->enhanced, 0, sizeof r->enhanced);
    }
    buf_append(&r->text, text, text_len);
    buf_append(&r->text, "\n", 1);
    r->nlines++;
    *last = len <= 3 || s[3] == ' ';
    buf_reset(&p->line);
    return 0;
}

enum smtp_reply_status smtp_reply_parser_feed(struct smtp_reply_parser *p, const void *data,
                                              size_t len, size_t *consumed)
{
    const char *in = data;
    *consumed = 0;
    if (p->status == REPLY_ERROR)
        return REPLY_ERROR;
    if (p->status == REPLY_DONE) {
        /* The previous reply was handed out; start the next one, reusing its memory. */
        buf_reset(&p->reply.text);
        p->reply.code = 0;
        p->reply.nlines = 0;
        memset(&p->reply.enhanced, 0, sizeof p->reply.enhanced);
        p->total = 0;
        p->status = REPLY_NEED_MORE;
    }
    size_t off = 0;
    while (off < len) {
        const char *lf = memchr(in + off, '\n', len - off);
        size_t seg = lf ? (size_t)(lf - (in + off)) : len - off;
        /* Caps are checked before appending, counting the LF still to come. */
        if (p->line.len + seg + 1 > SMTP_REPLY_LINE_MAX)
            return parser_fail(p, "reply line too long");
        if (p->total + p->line.len + seg + 1 > SMTP_REPLY_TOTAL_MAX)
            return parser_fail(p, "reply too long");
        if (memchr(in + off, '\0', seg) != NULL)
            return parser_fail(p, "NUL in reply");
        buf_append(&p->line, in + off, seg);
        off += seg;
        if (lf == NULL)
            break;
        off++;
        p->total += p->line.len + 1;
        int last;
        if (parser_end_line(p, &last) != 0)
            return REPLY_ERROR;
        if (last) {
            buf_free(&p->line);
            *consumed = off;
            p->status = REPLY_DONE;
            return REPLY_DONE;
        }
    }
    *consumed = off;
    return REPLY_NEED_MORE;
}

int smtp_reply_line_next(const struct smtp_reply *r, size_t *pos, const char **text, size_t *len)
{
    if (*pos >= r->text.len)
        return 0;
    const char *start = r->text.data + *pos;
    const char *nl = memchr(start, '\n', r->text.len - *pos);
    *text = start;
    *len = (size_t)(nl - start); /* every line is stored with its '\n' */
    *pos += *len + 1;
    return 1;
}

void smtp_reply_text_join(const struct smtp_reply *r, const char *sep, struct buf *out)
{
    size_t pos = 0, index = 0;
    const char *text;
    size_t len;
    while (smtp_reply_line_next(r, &pos, &text, &len)) {
        if (index++ > 0) {
            buf_append_str(out, sep);
            struct smtp_enhanced e;
            size_t span = smtp_enhanced_parse(text, len, &e);
            if (span > 0 && r->enhanced.cls != 0 && e.cls == r->enhanced.cls &&
                e.subject == r->enhanced.subject && e.detail == r->enhanced.detail) {
                while (span < len && text[span] == ' ')
                    span++;
                text += span;
                len -= span;
            }
        }
        char *dst = buf_reserve(out, len);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        out->len += len;
    }
    *buf_reserve(out, 1) = '\0';
}

/* Next run of bytes other than space and tab in s[0..len) from *pos; 0 when none is left. */
static int next_token(const char *s, size_t len, size_t *pos, const char **tok, size_t *tok_len)
{
    size_t i = *pos;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t start = i;
    while (i < len && s[i] != ' ' && s[i] != '\t')
        i++;
    *pos = i;
    *tok = s + start;
    *tok_len = i - start;
    return *tok_len > 0;
}

static int token_is(const char *tok, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(tok, word, len) == 0;
}

/* SIZE's argument: decimal digits only, without overflow; 0 otherwise (RFC 1870 §4: 0 or no
 * argument means no fixed limit, which is also the safe reading of junk). */
static uint64_t size_parse(const char *tok, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(tok[i] - '0');
    }
    return v;
}

static const struct {
    const char *name;
    unsigned bit;
} ehlo_keywords[] =
    {
        {"PIPELINING", SMTP_EXT_PIPELINING},
        {"SIZE", SMTP_EXT_SIZE},
        {"8BITMIME", SMTP_EXT_8BITMIME},
        {"STARTTLS", SMTP_EXT_STARTTLS},
        {"SMTPUTF8", SMTP_EXT_SMTPUTF8},
        {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
        {"CHUNKING", SMTP_EXT_CHUNKING},
        {"DSN", SMTP_EXT_DSN},
        {"AUTH", SMTP_EXT_AUTH},
        {"BINARYMIME", SMTP_EXT_BINARYMIME},
},
  auth_mechs[] = {
      {"PLAIN", SMTP_AUTH_PLAIN},       {"LOGIN", SMTP_AUTH_LOGIN},
      {"CRAM-MD5", SMTP_AUTH_CRAM_MD5}, {"SCRAM-SHA-256", SMTP_AUTH_SCRAM_SHA_256},
      {"XOAUTH2", SMTP_AUTH_XOAUTH2},
};

static void ehlo_auth_add(struct smtp_ehlo *out, const char *tok, size_t len)
{
    for (size_t i = 0; i < sizeof auth_mechs / sizeof auth_mechs[0]; i++)
        if (token_is(tok, len, auth_mechs[i].name))
            out->auth |= auth_mechs[i].bit;
}

int smtp_reply_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out)
{
    memset(out, 0, sizeof *out);
    if (r->code != 250)
        return -EINVAL;
    size_t pos = 0, index = 0;
    const char *line;
    size_t len;
    while (smtp_reply_line_next(r, &pos, &line, &len)) {
        if (index++ == 0)
            continue; /* "domain greeting" */
        size_t at = 0, kw_len;
        const char *kw;
        if (!next_token(line, len, &at, &kw, &kw_len))
            continue;
        /* Old servers announce "AUTH=LOGIN PLAIN": the '=' stands for the first space. */
        const char *eq = memchr(kw, '=', kw_len);
        if (eq != NULL) {
            at = (size_t)(eq + 1 - line);
            kw_len = (size_t)(eq - kw);
        }
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof ehlo_keywords / sizeof ehlo_keywords[0]; i++)
            if (token_is(kw, kw_len, ehlo_keywords[i].name))
                bit = ehlo_keywords[i].bit;
        out->ext |= bit;
        const char *tok;
        size_t tok_len;
        if (bit == SMTP_EXT_SIZE && next_token(line, len, &at, &tok, &tok_len))
            out->size_max = size_parse(tok, tok_len);
        while (bit == SMTP_EXT_AUTH && next_token(line, len, &at, &tok, &tok_len))
            ehlo_auth_add(out, tok, tok_len);
    }
    return 0;
}
