/*
 * DSN assembly. Everything that came from outside (remote replies, addresses, the original's
 * header section) passes through one of two doors: fields_append_folded() for text that lands in
 * a header-like field or the human-readable part (controls become '?', so no CR/LF injection),
 * or headers_append() for the original's header section (line ends normalised to CRLF).
 */
#include "mta/delivery/dsn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/smtp_reply.h"

/* RFC 5322 §2.1.1: lines SHOULD stay within 78 characters and MUST stay within 998. */
#define DSN_LINE_SOFT 78
#define DSN_LINE_MAX 998
/* The original's header section is cut (at a line end) beyond this: a bounce is not a way to
 * mirror megabytes of hostile header fields back. */
#define DSN_HEADERS_MAX (64 * 1024)

static int has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* Copies text into one safe line: controls and DEL become '?', runs of blanks one space, 8-bit
 * bytes stay only when keep_8bit (UTF-8 addresses), otherwise become '?' too. out ends with a NUL
 * that len does not count. */
static void line_sanitize(struct buf *out, const char *text, int keep_8bit)
{
    int blank = 0, started = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t') {
            blank = 1;
            continue;
        }
        if (blank && started)
            buf_append(out, " ", 1);
        blank = 0;
        started = 1;
        char c = (char)*p;
        if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !keep_8bit))
            c = '?';
        buf_append(out, &c, 1);
    }
    *buf_reserve(out, 1) = '\0';
}

/* Appends `lead` followed by `text` (sanitised) as one logical line ending in CRLF, folded at
 * blanks to DSN_LINE_SOFT where possible and split hard at DSN_LINE_MAX otherwise; continuation
 * lines start with `cont` (a blank, so header fields unfold correctly). */
static void fields_append_folded(struct buf *out, const char *lead, const char *text, int keep_8bit,
                                 const char *cont)
{
    struct buf line = BUF_INIT;
    buf_append_str(&line, lead);
    line_sanitize(&line, text != NULL ? text : "", keep_8bit);
    size_t pos = 0, col = 0;
    while (line.len - pos + col > DSN_LINE_SOFT) {
        size_t room = DSN_LINE_SOFT - col, brk = 0;
        for (size_t i = pos + room; i > pos; i--)
            if (line.data[i] == ' ') {
                brk = i;
                break;
            }
        if (brk == 0) { /* no blank in reach: the next one, or a hard split */
            size_t hard = pos + DSN_LINE_MAX - col;
            const char *sp =
                memchr(line.data + pos, ' ', (hard < line.len ? hard + 1 : line.len) - pos);
            brk = sp != NULL && (size_t)(sp - line.data) <= hard ? (size_t)(sp - line.data)
                                                                 : (hard < line.len ? hard : 0);
            if (brk == 0)
                break;
        }
        buf_append(out, line.data + pos, brk - pos);
        buf_append_str(out, "\r\n");
        buf_append_str(out, cont);
        col = strlen(cont);
        pos = line.data[brk] == ' ' ? brk + 1 : brk;
    }
    buf_append(out, line.data + pos, line.len - pos);
    buf_append_str(out, "\r\n");
    buf_free(&line);
}

static void field_append(struct buf *out, const char *name, const char *value, int keep_8bit)
{
    char lead[64];
    snprintf(lead, sizeof(lead), "%s: ", name);
    fields_append_folded(out, lead, value, keep_8bit, " ");
}

/* RFC 5322 §3.3 date-time in UTC, independent of the locale. */
static void date_format(int64_t when, char *out, size_t size)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)when;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void date_field_append(struct buf *out, const char *name, int64_t when)
{
    char date[64];
    date_format(when, date, sizeof(date));
    field_append(out, name, date, 0);
}

/* The length of the original's header section: up to the blank line that ends it (or all of it
 * when there is none), without the blank line. */
static size_t header_section_len(const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (msg[i] != '\n')
            continue;
        if (i == 0 || (i == 1 && msg[0] == '\r'))
            return 0; /* the message starts with a blank line */
        size_t next = i + 1;
        if (next < len && msg[next] == '\r')
            next++;
        if (next < len && msg[next] == '\n')
            return i + 1;
    }
    return len;
}

/* Appends the header section with CRLF line ends (bare CR or LF too), NUL as '?', lines split at
 * DSN_LINE_MAX (a continuation line, so the field stays one field), whole lines up to
 * DSN_HEADERS_MAX. */
static void headers_append(struct buf *out, const char *hdr, size_t len)
{
    size_t start = out->len, last_line_end = out->len, col = 0;
    for (size_t i = 0; i < len; i++) {
        if (out->len - start >= DSN_HEADERS_MAX) {
            if (last_line_end > start) { /* cut at the last whole line */
                out->len = last_line_end;
                col = 0;
            }
            break;
        }
        char c = hdr[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && hdr[i + 1] == '\n')
                i++;
            buf_append_str(out, "\r\n");
            col = 0;
            last_line_end = out->len;
            continue;
        }
        if (col == DSN_LINE_MAX) {
            buf_append_str(out, "\r\n ");
            col = 1;
        }
        if (c == '\0')
            c = '?';
        buf_append(out, &c, 1);
        col++;
    }
    if (col > 0)
        buf_append_str(out, "\r\n");
}

/* The RFC 3463 status for a recipient: its own when valid, else the class of the reply or of
 * the action. */
static void status_format(const struct dsn_rcpt *r, char *out, size_t size)
{
    struct smtp_enhanced e;
    if (r->status != NULL && smtp_enhanced_parse(r->status, strlen(r->status), &e) > 0) {
        snprintf(out, size, "%u.%u.%u", e.cls, e.subject, e.detail);
        return;
    }
    int cls = r->remote_code >= 400 && r->remote_code < 600 ? r->remote_code / 100
              : r->action == DSN_ACTION_DELAYED             ? 4
                                                            : 5;
    snprintf(out, size, "%d.0.0", cls);
}

/* A boundary that does not occur in the included header section or message (the other parts hold
 * only our own lines or text indented by the folding). It carries a hash of that text, so a sender
 * cannot plant it in advance, and a collision costs one more round instead of many. */
static void boundary_make(const struct dsn_params *p, const struct buf *hdrs, char *out,
                          size_t size)
{
    for (uint64_t n = 0;; n++) {
        uint64_t h = 14695981039346656037ULL ^ n; /* FNV-1a */
        for (size_t i = 0; i < hdrs->len; i++)
            h = (h ^ (unsigned char)hdrs->data[i]) * 1099511628211ULL;
        /* RFC 2046 §5.1.1: at most 70 characters. */
        snprintf(out, size, "%lld.%.30s.%016llx/sluice", (long long)p->now,
                 p->boundary_seed != NULL ? p->boundary_seed : "dsn", (unsigned long long)h);
        if (memmem(hdrs->data != NULL ? hdrs->data : "", hdrs->len, out, strlen(out)) == NULL)
            return;
    }
}

/* What the report is about: the one action its recipients share, or a failure report. */
static enum dsn_action report_kind(const struct dsn_params *p)
{
    for (size_t i = 1; i < p->nrcpts; i++)
        if (p->rcpts[i].action != p->rcpts[0].action)
            return DSN_ACTION_FAILED;
    return p->rcpts[0].action;
}

static const char *const action_names[] = {
    [DSN_ACTION_FAILED] = "failed",
    [DSN_ACTION_DELAYED] = "delayed",
    [DSN_ACTION_RELAYED] = "relayed",
};

/* Whether the whole message can travel inside the DSN as it is: no NUL and no line over
 * DSN_LINE_MAX octets (RFC 5322 §2.1.1). */
static int message_fits(const char *msg, size_t len)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        col = msg[i] == '\r' || msg[i] == '\n' ? 0 : col + 1;
        if (msg[i] == '\0' || col > DSN_LINE_MAX)
            return 0;
    }
    return 1;
}

/* Appends the whole message with CRLF line ends (bare CR or LF too). */
static void message_append(struct buf *out, const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (msg[i] != '\r' && msg[i] != '\n') {
            size_t run = i;
            while (run < len && msg[run] != '\r' && msg[run] != '\n')
                run++;
            buf_append(out, msg + i, run - i);
            i = run - 1;
            continue;
        }
        if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
            i++;
        buf_append_str(out, "\r\n");
    }
}

static void human_part_append(const struct dsn_params *p, enum dsn_action kind, int utf8, int full,
                              struct buf *out)
{
    buf_printf(out, "Content-Description: Notification\r\nContent-Type: text/plain; charset=%s\r\n",
               utf8 ? "utf-8\r\nContent-Transfer-Encoding: 8bit" : "us-ascii");
    buf_append_str(out, "\r\n");
    struct buf host = BUF_INIT;
    line_sanitize(&host, p->reporting_mta, 0);
    buf_printf(&host, ".");
    fields_append_folded(out, "This is the mail system at host ", host.data, 0, "");
    buf_free(&host);
    buf_append_str(out, "\r\n");
    if (kind == DSN_ACTION_RELAYED)
        buf_append_str(out, "Your message was passed on to the recipients below. The next mail\r\n"
                            "system does not send delivery notices, so this is the last one you\r\n"
                            "will get for them from here.\r\n");
    else if (kind == DSN_ACTION_DELAYED)
        buf_append_str(out,
                       "####################################################################\r\n"
                       "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
                       "####################################################################\r\n"
                       "\r\n"
                       "Your message could not be delivered yet to the recipients below.\r\n"
                       "The mail system will keep trying and tell you if it gives up.\r\n");
    else
        buf_printf(out,
                   "I'm sorry to have to inform you that your message could not\r\n"
                   "be delivered to one or more recipients. %s\r\n"
                   "below.\r\n",
                   full ? "The message is attached" : "Its header is attached");
    buf_append_str(out, "\r\n                   The mail system\r\n");
    for (size_t i = 0; i < p->nrcpts; i++) {
        const struct dsn_rcpt *r = &p->rcpts[i];
        struct buf lead = BUF_INIT;
        line_sanitize(&lead, r->rcpt, 1);
        struct buf text = BUF_INIT;
        buf_printf(&text, "<%s>: ", lead.data != NULL ? lead.data : "");
        if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
            buf_append_str(&text, "host ");
            line_sanitize(&text, r->remote_mta, 0);
            buf_printf(&text, " said: ");
        }
        buf_append_str(out, "\r\n");
        fields_append_folded(out, text.data, r->diagnostic, 0, "    ");
        buf_free(&lead);
        buf_free(&text);
    }
}

static void status_part_append(const struct dsn_params *p, int utf8, struct buf *out)
{
    buf_printf(out, "Content-Description: Delivery report\r\nContent-Type: %s\r\n%s\r\n",
               utf8 ? "message/global-delivery-status" : "message/delivery-status",
               utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
    struct buf v = BUF_INIT;
    buf_printf(&v, "dns; %s", p->reporting_mta);
    field_append(out, "Reporting-MTA", v.data, 0);
    if (p->envid != NULL && p->envid[0] != '\0')
        field_append(out, "Original-Envelope-Id", p->envid, 0);
    if (p->queue_id != NULL && p->queue_id[0] != '\0')
        field_append(out, "X-Sluice-Queue-ID", p->queue_id, 0);
    if (p->arrival != 0)
        date_field_append(out, "Arrival-Date", p->arrival);
    for (size_t i = 0; i < p->nrcpts; i++) {
        const struct dsn_rcpt *r = &p->rcpts[i];
        /* RFC 6533 §3.2: an address with 8-bit octets is of type utf-8. */
        const char *type = has_8bit(r->rcpt, strlen(r->rcpt)) ? "utf-8" : "rfc822";
        buf_append_str(out, "\r\n");
        if (r->orcpt != NULL && r->orcpt[0] != '\0')
            field_append(out, "Original-Recipient", r->orcpt, utf8);
        buf_reset(&v);
        buf_printf(&v, "%s; %s", type, r->rcpt);
        field_append(out, "Final-Recipient", v.data, utf8);
        field_append(out, "Action", action_names[r->action], 0);
        char status[32];
        status_format(r, status, sizeof(status));
        field_append(out, "Status", status, 0);
        if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
            buf_reset(&v);
            buf_printf(&v, "dns; %s", r->remote_mta);
            field_append(out, "Remote-MTA", v.data, 0);
        }
        if (r->diagnostic != NULL && r->diagnostic[0] != '\0') {
            buf_reset(&v);
            buf_printf(&v, "%s; %s", r->remote_code != 0 ? "smtp" : "X-Sluice", r->diagnostic);
            field_append(out, "Diagnostic-Code", v.data, 0);
        }
        if (r->last_attempt != 0)
            date_field_append(out, "Last-Attempt-Date", r->last_attempt);
        /* An extension field (RFC 3464 §2.4: X- names are free to use). */
        if (r->category != NULL && r->category[0] != '\0')
            field_append(out, "X-Sluice-Category", r->category, 0);
    }
    buf_free(&v);
}

int dsn_build(const struct dsn_params *p, struct buf *out)
{
    if (p->sender == NULL || p->sender[0] == '\0' || p->reporting_mta == NULL || p->nrcpts == 0)
        return -EINVAL;
    const char *orig = p->original != NULL ? p->original : "";
    size_t hdr_len = header_section_len(orig, p->original_len);
    int hdr_8bit = has_8bit(orig, hdr_len);
    int rcpt_8bit = has_8bit(p->sender, strlen(p->sender));
    for (size_t i = 0; i < p->nrcpts; i++)
        rcpt_8bit |=
            has_8bit(p->rcpts[i].rcpt, strlen(p->rcpts[i].rcpt)) ||
            (p->rcpts[i].orcpt != NULL && has_8bit(p->rcpts[i].orcpt, strlen(p->rcpts[i].orcpt)));
    enum dsn_action kind = report_kind(p);
    int full = p->return_full && kind == DSN_ACTION_FAILED && p->original_len <= p->full_max &&
               message_fits(orig, p->original_len);
    int full_8bit = full && has_8bit(orig, p->original_len);
    char boundary[512], date[64];
    struct buf hdrs = BUF_INIT; /* what the last part carries: the header section or it all */
    if (full)
        message_append(&hdrs, orig, p->original_len);
    else
        headers_append(&hdrs, orig, hdr_len);
    boundary_make(p, &hdrs, boundary, sizeof(boundary));
    date_format(p->now, date, sizeof(date));

    struct buf v = BUF_INIT;
    buf_printf(&v, "Mail Delivery System <MAILER-DAEMON@%s>", p->reporting_mta);
    field_append(out, "From", v.data, 0);
    buf_reset(&v);
    buf_printf(&v, "<%s>", p->sender);
    field_append(out, "To", v.data, 1);
    static const char *const subjects[] = {
        [DSN_ACTION_FAILED] = "Undelivered Mail Returned to Sender",
        [DSN_ACTION_DELAYED] = "Delayed Mail (still being retried)",
        [DSN_ACTION_RELAYED] = "Successful Mail Delivery Report",
    };
    field_append(out, "Subject", subjects[kind], 0);
    field_append(out, "Date", date, 0);
    buf_reset(&v);
    buf_printf(&v, "<%lld.%s.%s@%s>", (long long)p->now,
               p->boundary_seed != NULL ? p->boundary_seed : "dsn",
               kind == DSN_ACTION_DELAYED   ? "delay"
               : kind == DSN_ACTION_RELAYED ? "relayed"
                                            : "bounce",
               p->reporting_mta);
    field_append(out, "Message-ID", v.data, 0);
    field_append(out, "Auto-Submitted", "auto-replied", 0);
    field_append(out, "MIME-Version", "1.0", 0);
    buf_reset(&v);
    buf_printf(&v, "multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary);
    field_append(out, "Content-Type", v.data, 0);
    buf_free(&v);
    buf_append_str(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    buf_printf(out, "--%s\r\n", boundary);
    human_part_append(p, kind, rcpt_8bit, full, out);
    buf_printf(out, "\r\n--%s\r\n", boundary);
    status_part_append(p, rcpt_8bit, out);
    buf_printf(out, "\r\n--%s\r\n", boundary);
    /* RFC 6533 §3.3: 8-bit header fields (RFC 6532) travel as message/global-headers; a whole
     * message with 8-bit octets as message/rfc822 with 8bit encoding (it came with 8BITMIME). */
    if (full)
        buf_printf(out, "Content-Description: Undelivered Message\r\nContent-Type: %s\r\n\r\n",
                   full_8bit ? "message/rfc822\r\nContent-Transfer-Encoding: 8bit"
                             : "message/rfc822");
    else
        buf_printf(out, "Content-Description: %sMessage Headers\r\nContent-Type: %s\r\n\r\n",
                   kind == DSN_ACTION_FAILED ? "Undelivered " : "",
                   hdr_8bit ? "message/global-headers\r\nContent-Transfer-Encoding: 8bit"
                            : "text/rfc822-headers");
    buf_append(out, hdrs.data, hdrs.len);
    buf_free(&hdrs);
    buf_printf(out, "\r\n--%s--\r\n", boundary);
    return 0;
}
