/*
 * The trace fields added to a relayed message's header section (trace_header.h).
 */
#include "mta/feedback/trace_header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/header_section.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mta/feedback/trace.h"

struct trace_header {
    const struct config *cfg;
    struct header_section hs;
    struct trace_fields fields;
    unsigned passing : 1;
    unsigned relay : 1;         /* mail we relay: traced, its tenancy fields read */
    unsigned authenticated : 1; /* the tenant is its user: the tenant field does not count */
};

struct trace_header *trace_header_new(const struct config *cfg, const char *queue_id,
                                      const char *tenant, const char *rcpt, int relay)
{
    struct trace_header *th = xcalloc(1, sizeof *th);
    th->cfg = cfg;
    th->relay = relay != 0;
    th->authenticated = tenant != NULL;
    th->hs = (struct header_section)HEADER_SECTION_INIT;
    snprintf(th->fields.queue_id, sizeof th->fields.queue_id, "%s", queue_id);
    if (tenant != NULL && strlen(tenant) <= TRACE_NAME_MAX)
        snprintf(th->fields.tenant, sizeof th->fields.tenant, "%s", tenant);
    if (rcpt != NULL && strlen(rcpt) <= TRACE_RCPT_MAX)
        snprintf(th->fields.rcpt, sizeof th->fields.rcpt, "%s", rcpt);
    return th;
}

void trace_header_free(struct trace_header *th)
{
    if (th == NULL)
        return;
    header_section_free(&th->hs);
    free(th);
}

/* Where the value of the field at h[0..len) starts when it is called `name`, else 0. RFC 5322
 * §4.5.3's obsolete syntax allows blanks before the colon, and receivers read such a field by its
 * name, so "X-Sluice-Trace :" is one too. */
static size_t field_value_at(const char *h, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(h, name, n) != 0)
        return 0;
    while (n < len && (h[n] == ' ' || h[n] == '\t'))
        n++;
    return n < len && h[n] == ':' ? n + 1 : 0;
}

/* A tenancy field's value into dst: unfolded, trimmed; one too long is not taken. */
static void take_name(char dst[TRACE_NAME_MAX + 1], const char *h, size_t from, size_t len)
{
    char value[TRACE_NAME_MAX + 1];
    size_t n = 0;
    for (size_t i = from; i < len; i++) {
        char c = h[i] == '\r' || h[i] == '\n' || h[i] == '\t' ? ' ' : h[i];
        if (c == ' ' && (n == 0 || value[n - 1] == ' '))
            continue;
        if (n == TRACE_NAME_MAX)
            return;
        value[n++] = c;
    }
    while (n > 0 && value[n - 1] == ' ')
        n--;
    value[n] = '\0';
    memcpy(dst, value, n + 1);
}

/* A field of the client's that stays out of the message: the tenancy fields always, and for mail
 * we relay the trace fields we add. Reads the tenancy fields of mail we relay. */
static int field_dropped(struct trace_header *th, const char *h, size_t len)
{
    const struct config *cfg = th->cfg;
    size_t tenant = field_value_at(h, len, cfg->tenancy.tenant_header);
    size_t campaign = field_value_at(h, len, cfg->tenancy.campaign_header);
    if (th->relay && tenant > 0 && !th->authenticated)
        take_name(th->fields.tenant, h, tenant, len);
    if (th->relay && campaign > 0)
        take_name(th->fields.campaign, h, campaign, len);
    if (tenant > 0 || campaign > 0)
        return 1;
    return th->relay &&
           (field_value_at(h, len, "X-Sluice-Trace") > 0 ||
            (cfg->feedback.sender_id != NULL && field_value_at(h, len, "Feedback-ID") > 0));
}

/* Gmail's Feedback-ID takes colon-separated identifiers: anything else becomes '_'. */
static void feedback_id_part(struct buf *out, const char *s)
{
    for (; *s; s++)
        buf_append(out, strchr(":;\r\n\t \"", *s) != NULL || (unsigned char)*s >= 0x7f ? "_" : s,
                   1);
}

/* Our fields, each ending in CRLF. */
static void our_fields(struct trace_header *th, struct buf *out)
{
    const struct config *cfg = th->cfg;
    char token[TRACE_TOKEN_MAX + 1];
    if (cfg->feedback.ntrace_keys > 0 &&
        trace_format(cfg->feedback.trace_keys, cfg->feedback.ntrace_keys, &th->fields, token) > 0)
        buf_printf(out, "X-Sluice-Trace: %s\r\n", token);
    if (cfg->feedback.sender_id != NULL) {
        buf_append_str(out, "Feedback-ID: ");
        feedback_id_part(out, th->fields.tenant);
        buf_append(out, ":", 1);
        feedback_id_part(out, th->fields.campaign);
        buf_append(out, ":", 1);
        feedback_id_part(out, cfg->feedback.sender_id);
        buf_append(out, "\r\n", 2);
    }
}

/* The held header section, ours removed and added, then what came after it. */
static void release(struct trace_header *th, struct buf *out)
{
    const char *h = th->hs.data.data;
    size_t end = th->hs.fields;
    size_t start = out->len;
    for (size_t at = 0; at < end;) {
        size_t next = header_field_end(h, at, end);
        if (!field_dropped(th, h + at, next - at))
            buf_append(out, h + at, next - at);
        at = next;
    }
    /* A last field kept without its line end (a message with no body) gets one. */
    if (out->len > start && out->data[out->len - 1] != '\n')
        buf_append(out, "\r\n", 2);
    if (th->relay)
        our_fields(th, out);
    if (th->hs.data.len > end)
        buf_append(out, h + end, th->hs.data.len - end);
    header_section_free(&th->hs);
    th->passing = 1;
}

void trace_header_feed(struct trace_header *th, const char *in, size_t len, struct buf *out)
{
    if (th->passing) {
        buf_append(out, in, len);
        return;
    }
    switch (header_section_feed(&th->hs, in, len)) {
    case HEADER_SECTION_MORE:
        return;
    case HEADER_SECTION_COMPLETE:
        release(th, out);
        return;
    case HEADER_SECTION_TOO_BIG: /* DKIM refuses it too; it goes on as it came, untraced */
        buf_append(out, th->hs.data.data, th->hs.data.len);
        buf_append(out, in, len);
        header_section_free(&th->hs);
        th->passing = 1;
        if (th->relay)
            log_msg(LOG_WARN, "feedback.untraced", "queue id %s: header section too big to trace",
                    th->fields.queue_id);
        return;
    }
}

void trace_header_finish(struct trace_header *th, struct buf *out)
{
    if (th->passing)
        return;
    header_section_end(&th->hs);
    release(th, out);
}

int trace_header_passing(const struct trace_header *th)
{
    return th->passing;
}

const char *trace_header_tenant(const struct trace_header *th)
{
    return th->fields.tenant;
}

const char *trace_header_campaign(const struct trace_header *th)
{
    return th->fields.campaign;
}
