/*
 * The report reader (report.h): a small MIME walk over the message that looks at the parts a
 * report is made of, and for a bounce without them, at the quoted header fields in its text.
 */
#include "mta/feedback/report.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"

/* Reports nest two or three levels; deeper is not a report. */
#define MAX_DEPTH 6
#define TOKEN_MAX 128

struct slice {
    const char *p;
    size_t len;
};

/* The entity at s: its header section and body, split at the first empty line. */
static void entity_split(struct slice s, struct slice *hdr, struct slice *body)
{
    size_t at = 0;
    while (at < s.len) {
        const char *nl = memchr(s.p + at, '\n', s.len - at);
        size_t line_len = nl != NULL ? (size_t)(nl - (s.p + at)) : s.len - at;
        if (line_len == 0 || (line_len == 1 && s.p[at] == '\r')) {
            *hdr = (struct slice){s.p, at};
            size_t b = at + line_len + (nl != NULL);
            *body = (struct slice){s.p + b, s.len - b};
            return;
        }
        at += line_len + (nl != NULL);
    }
    *hdr = s;
    *body = (struct slice){s.p + s.len, 0};
}

/* The unfolded value of the first field `name` in hdr into out (size REPORT_FIELD_MAX + 1),
 * white space collapsed. Returns 1 when found. */
static int field_get(struct slice hdr, const char *name, char *out)
{
    size_t n = strlen(name);
    for (size_t at = 0; at < hdr.len;) {
        const char *line = hdr.p + at;
        const char *nl = memchr(line, '\n', hdr.len - at);
        size_t next = nl != NULL ? (size_t)(nl - hdr.p) + 1 : hdr.len;
        if (next - at > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            size_t o = 0;
            size_t i = at + n + 1;
            for (;;) {
                for (; i < next; i++) {
                    char c = hdr.p[i];
                    if (c == '\r' || c == '\n' || c == '\t')
                        c = ' ';
                    if ((c == ' ' && (o == 0 || out[o - 1] == ' ')) || o == REPORT_FIELD_MAX ||
                        c == '\0')
                        continue;
                    out[o++] = c;
                }
                if (next >= hdr.len || (hdr.p[next] != ' ' && hdr.p[next] != '\t'))
                    break;
                const char *nl2 = memchr(hdr.p + next, '\n', hdr.len - next);
                i = next;
                next = nl2 != NULL ? (size_t)(nl2 - hdr.p) + 1 : hdr.len;
            }
            while (o > 0 && out[o - 1] == ' ')
                o--;
            out[o] = '\0';
            return 1;
        }
        at = next;
    }
    return 0;
}

/* Copies s (not past REPORT_FIELD_MAX) into out unless out holds something already. */
static void keep_first(char *out, const char *s)
{
    if (out[0] == '\0')
        snprintf(out, REPORT_FIELD_MAX + 1, "%s", s);
}

/* A field's value if out is still empty. */
static void field_keep(struct slice hdr, const char *name, char *out)
{
    char v[REPORT_FIELD_MAX + 1];
    if (out[0] == '\0' && field_get(hdr, name, v))
        keep_first(out, v);
}

/* The type/subtype of a Content-Type value, lower case, and its boundary parameter. */
static void content_type(struct slice hdr, char *type, size_t tsize, char *boundary, size_t bsize)
{
    char v[REPORT_FIELD_MAX + 1];
    type[0] = boundary[0] = '\0';
    if (!field_get(hdr, "Content-Type", v))
        return;
    size_t n = 0;
    for (const char *p = v; *p && *p != ';' && *p != ' ' && n + 1 < tsize; p++)
        type[n++] = (char)tolower((unsigned char)*p);
    type[n] = '\0';
    const char *b = strcasestr(v, "boundary=");
    if (b == NULL)
        return;
    b += strlen("boundary=");
    int quoted = *b == '"';
    b += quoted;
    n = 0;
    for (; *b && n + 1 < bsize && (quoted ? *b != '"' : (*b != ';' && *b != ' ')); b++)
        boundary[n++] = *b;
    boundary[n] = '\0';
}

/* The body as its Content-Transfer-Encoding says; base64 into a copy the caller frees (*copy),
 * anything else as it is. */
static struct slice body_decode(struct slice hdr, struct slice body, char **copy)
{
    char cte[REPORT_FIELD_MAX + 1];
    *copy = NULL;
    if (!field_get(hdr, "Content-Transfer-Encoding", cte) || strcasecmp(cte, "base64") != 0)
        return body;
    char *out = malloc(body.len / 4 * 3 + 3);
    size_t n = 0;
    unsigned v = 0, bits = 0;
    for (size_t i = 0; i < body.len && body.p[i] != '='; i++) {
        int d = base64_value((unsigned char)body.p[i]);
        if (d < 0)
            continue;
        v = (v << 6 | (unsigned)d) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)(v >> bits);
        }
    }
    *copy = out;
    return (struct slice){out, n};
}

/* The address inside "rfc822; a@b", "<a@b>" or "a@b", into out. */
static void address_of(const char *v, char *out)
{
    const char *semi = strchr(v, ';');
    const char *p = semi != NULL ? semi + 1 : v;
    const char *lt = strchr(p, '<');
    if (lt != NULL)
        p = lt + 1;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "> ");
    snprintf(out, REPORT_FIELD_MAX + 1, "%.*s", (int)n, p);
}

static void keep_address(char *out, const char *v)
{
    char a[REPORT_FIELD_MAX + 1];
    address_of(v, a);
    if (a[0] != '\0')
        keep_first(out, a);
}

/* The first token of an X-Sluice-Trace value. */
static void keep_trace(struct feedback_report *r, const char *v)
{
    size_t n = strcspn(v, " ;");
    if (r->trace[0] == '\0' && n > 0 && n <= TRACE_TOKEN_MAX)
        snprintf(r->trace, sizeof r->trace, "%.*s", (int)n, v);
}

/* The original message's header fields (a message/rfc822 or text/rfc822-headers part). */
static void read_original(struct feedback_report *r, struct slice hdr)
{
    char v[REPORT_FIELD_MAX + 1];
    if (field_get(hdr, "X-Sluice-Trace", v))
        keep_trace(r, v);
    if (field_get(hdr, "From", v))
        keep_address(r->sender, v);
    if (field_get(hdr, "Return-Path", v))
        keep_address(r->sender, v);
    field_keep(hdr, "Subject", r->subject);
    if (field_get(hdr, "To", v))
        keep_address(r->recipient, v);
}

/* ARF's machine-readable part (RFC 5965 §3.1). */
static void read_feedback_part(struct feedback_report *r, struct slice fields)
{
    char v[REPORT_FIELD_MAX + 1];
    r->kind = REPORT_COMPLAINT;
    r->format = "arf";
    field_keep(fields, "Feedback-Type", r->feedback_type);
    field_keep(fields, "Source-IP", r->source_ip);
    if (field_get(fields, "Original-Rcpt-To", v))
        keep_address(r->recipient, v);
    if (field_get(fields, "Original-Mail-From", v))
        keep_address(r->sender, v);
    if (r->provider[0] == '\0' && field_get(fields, "Reporting-MTA", v))
        address_of(v, r->provider);
}

/* RFC 3464 §2.2, §2.3: the per-message fields, then one block per recipient; the first failed
 * recipient is the one reported (else the first). */
static void read_delivery_status(struct feedback_report *r, struct slice body)
{
    struct slice block = body;
    char v[REPORT_FIELD_MAX + 1];
    r->kind = REPORT_BOUNCE;
    r->format = "dsn";
    int chosen = 0;
    for (int blocks = 0; blocks < 64 && block.len > 0; blocks++) {
        struct slice fields, rest;
        entity_split(block, &fields, &rest);
        if (blocks == 0 && r->provider[0] == '\0' && field_get(fields, "Reporting-MTA", v))
            address_of(v, r->provider);
        if (!chosen && field_get(fields, "Final-Recipient", v)) {
            char action[REPORT_FIELD_MAX + 1] = "";
            field_get(fields, "Action", action);
            int failed = strcasecmp(action, "failed") == 0;
            if (failed || r->recipient[0] == '\0') {
                address_of(v, r->recipient);
                snprintf(r->feedback_type, sizeof r->feedback_type, "%s", action);
                r->status[0] = '\0';
                field_get(fields, "Status", r->status);
            }
            chosen = failed;
        }
        if (rest.len == block.len)
            break;
        block = rest;
    }
}

/* 1 when s begins a line that looks like a header field name followed by ':'. */
static int field_line(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && s[n] == ':' && strncasecmp(s, name, n) == 0;
}

/* An enhanced status code (RFC 3463) such as 5.1.1 starting at s, else 0. */
static size_t status_code_at(const char *s, size_t len)
{
    if (len < 5 || (s[0] != '4' && s[0] != '5') || s[1] != '.' || !isdigit((unsigned char)s[2]))
        return 0;
    size_t i = 2;
    while (i < len && i < 5 && isdigit((unsigned char)s[i]))
        i++;
    if (i >= len || s[i] != '.' || i + 1 >= len || !isdigit((unsigned char)s[i + 1]))
        return 0;
    i++;
    size_t start = i;
    while (i < len && i - start < 3 && isdigit((unsigned char)s[i]))
        i++;
    return i;
}

static int addr_char(char c)
{
    return isalnum((unsigned char)c) || strchr("._%+-=", c) != NULL;
}

/* The text of a bounce without a delivery-status part: the first address and status code before
 * the quoted original, and the original's fields where they are quoted ("> " or indented). */
static void read_bounce_text(struct feedback_report *r, struct slice text)
{
    char v[REPORT_FIELD_MAX + 1];
    int quoted = 0; /* past the first quoted header field */
    for (size_t at = 0; at < text.len;) {
        const char *line = text.p + at;
        const char *nl = memchr(line, '\n', text.len - at);
        size_t len = nl != NULL ? (size_t)(nl - line) : text.len - at;
        at += len + (nl != NULL);
        while (len > 0 && (*line == '>' || *line == ' ' || *line == '\t'))
            line++, len--;
        while (len > 0 && line[len - 1] == '\r')
            len--;
        struct slice one = {line, len};
        if (field_line(line, len, "X-Sluice-Trace") && field_get(one, "X-Sluice-Trace", v)) {
            if (v[0] == '\0' && at < text.len) { /* folded: the token is on the next line */
                size_t n = 0;
                while (at + n < text.len && text.p[at + n] != '\r' && text.p[at + n] != '\n')
                    n++;
                snprintf(v, sizeof v, "%.*s", (int)(n < REPORT_FIELD_MAX ? n : REPORT_FIELD_MAX),
                         text.p + at);
                char *p = v;
                while (*p == ' ' || *p == '\t' || *p == '>')
                    p++;
                memmove(v, p, strlen(p) + 1);
            }
            keep_trace(r, v);
            quoted = 1;
        } else if (field_line(line, len, "Subject") && field_get(one, "Subject", v)) {
            if (quoted || r->trace[0] == '\0')
                keep_first(r->subject, v);
            quoted = 1;
        } else if (field_line(line, len, "From") && field_get(one, "From", v)) {
            keep_address(r->sender, v);
            quoted = 1;
        } else if (!quoted) {
            for (size_t i = 0; i < len; i++) {
                size_t end =
                    r->status[0] == '\0' && (i == 0 || !isdigit((unsigned char)line[i - 1]))
                        ? status_code_at(line + i, len - i)
                        : 0;
                if (end > 0)
                    snprintf(r->status, sizeof r->status, "%.*s", (int)end, line + i);
                if (line[i] != '@' || r->recipient[0] != '\0' || i == 0 || !addr_char(line[i - 1]))
                    continue;
                size_t s = i, e = i + 1;
                while (s > 0 && addr_char(line[s - 1]))
                    s--;
                while (e < len && (addr_char(line[e]) && line[e] != '='))
                    e++;
                while (e > i + 1 && line[e - 1] == '.')
                    e--;
                if (e > i + 1 && e - s <= REPORT_FIELD_MAX)
                    snprintf(r->recipient, sizeof r->recipient, "%.*s", (int)(e - s), line + s);
            }
        }
    }
}

/* What the walk gathers: the report, and what plain text said (a guess, used for bounces that
 * have no delivery-status part), and how many originals were attached. */
struct walk {
    struct feedback_report *r;
    struct feedback_report text;
    int originals;
};

static void walk(struct walk *w, struct slice entity, int depth);

static void walk_multipart(struct walk *w, struct slice body, const char *boundary, int depth)
{
    size_t blen = strlen(boundary);
    const char *part = NULL;
    for (size_t at = 0; at < body.len;) {
        const char *line = body.p + at;
        const char *nl = memchr(line, '\n', body.len - at);
        size_t len = nl != NULL ? (size_t)(nl - line) : body.len - at;
        at += len + (nl != NULL);
        if (len < blen + 2 || line[0] != '-' || line[1] != '-' ||
            memcmp(line + 2, boundary, blen) != 0)
            continue;
        if (part != NULL) /* the part ends at the line break before the delimiter */
            walk(w, (struct slice){part, (size_t)(line - part)}, depth + 1);
        if (len >= blen + 4 && line[blen + 2] == '-' && line[blen + 3] == '-')
            return;
        part = body.p + at;
    }
}

static void walk(struct walk *w, struct slice entity, int depth)
{
    struct feedback_report *r = w->r;
    if (depth > MAX_DEPTH)
        return;
    struct slice hdr, body;
    entity_split(entity, &hdr, &body);
    char type[TOKEN_MAX], boundary[TOKEN_MAX];
    content_type(hdr, type, sizeof type, boundary, sizeof boundary);
    if (strncmp(type, "multipart/", 10) == 0 && boundary[0] != '\0') {
        walk_multipart(w, body, boundary, depth);
        return;
    }
    char *copy;
    struct slice data = body_decode(hdr, body, &copy);
    if (strcmp(type, "message/feedback-report") == 0) {
        read_feedback_part(r, data);
    } else if (strcmp(type, "message/delivery-status") == 0 ||
               strcmp(type, "message/global-delivery-status") == 0) {
        read_delivery_status(r, data);
    } else if (strcmp(type, "message/rfc822") == 0 || strcmp(type, "text/rfc822-headers") == 0 ||
               strcmp(type, "message/rfc822-headers") == 0 || strcmp(type, "message/global") == 0 ||
               strcmp(type, "message/global-headers") == 0) {
        struct slice ohdr, obody;
        entity_split(data, &ohdr, &obody);
        read_original(r, ohdr);
        w->originals++;
    } else if (type[0] == '\0' || strcmp(type, "text/plain") == 0) {
        read_bounce_text(&w->text, data);
    }
    free(copy);
}

/* "Mailer-Daemon", "postmaster": the senders of bounces. */
static int bounce_sender(const char *from)
{
    return strncasecmp(from, "mailer-daemon@", 14) == 0 ||
           strncasecmp(from, "postmaster@", 11) == 0 || strcasestr(from, "mailer-daemon") != NULL;
}

void report_parse(const char *msg, size_t len, struct feedback_report *r)
{
    memset(r, 0, sizeof *r);
    r->format = "none";
    struct slice whole = {msg, len}, hdr, body;
    entity_split(whole, &hdr, &body);
    char v[REPORT_FIELD_MAX + 1], from[REPORT_FIELD_MAX + 1] = "", subject[REPORT_FIELD_MAX + 1];
    if (field_get(hdr, "From", v))
        address_of(v, from);
    const char *at = strrchr(from, '@');
    if (at != NULL)
        snprintf(r->provider, sizeof r->provider, "%s", at + 1);
    /* Microsoft's JMRP names the recipient in the report's own header. */
    if (field_get(hdr, "X-HmXmrOriginalRecipient", v))
        keep_address(r->recipient, v);
    struct walk w = {.r = r};
    walk(&w, whole, 0);
    keep_trace(r, w.text.trace);
    keep_first(r->sender, w.text.sender);
    keep_first(r->subject, w.text.subject);
    if (r->kind != REPORT_NONE)
        return;
    if (!field_get(hdr, "Subject", subject))
        subject[0] = '\0';
    if (w.originals > 0 && !bounce_sender(from)) {
        r->kind = REPORT_COMPLAINT; /* the original attached, no ARF part: JMRP's form */
        r->format = "jmrp";
        if (r->feedback_type[0] == '\0')
            snprintf(r->feedback_type, sizeof r->feedback_type, "abuse");
    } else if (bounce_sender(from) || strcasestr(subject, "undeliver") != NULL ||
               strcasestr(subject, "delivery status") != NULL ||
               strcasestr(subject, "delivery failure") != NULL ||
               strcasestr(subject, "returned mail") != NULL ||
               strcasestr(subject, "failure notice") != NULL) {
        r->kind = REPORT_BOUNCE;
        r->format = "bounce";
        keep_first(r->recipient, w.text.recipient);
        keep_first(r->status, w.text.status);
    }
}

int report_bounce_is_hard(const struct feedback_report *r)
{
    if (r->kind != REPORT_BOUNCE)
        return 0;
    if (strcmp(r->format, "dsn") == 0)
        return strcasecmp(r->feedback_type, "failed") == 0 && r->status[0] == '5';
    return r->status[0] != '4';
}
