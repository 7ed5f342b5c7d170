/*
 * TLS-RPT reports as text (see tls_rpt_report.h): the TXT record, the JSON report built with
 * jansson, and the report mail.
 */
#include "mta/delivery/tls_rpt_report.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/xalloc.h"

#define RUA_URI_MAX 320

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* A mailto: URI's address (RFC 6068; "?headers" dropped, %XX decoded) into out; 0, or -1 when it
 * is not local@domain made of printable ASCII without spaces or angle brackets. */
static int mailto_address(const char *uri, size_t len, char *out, size_t size)
{
    size_t n = 0, at = 0;
    for (size_t i = 0; i < len && uri[i] != '?'; i++) {
        unsigned c = (unsigned char)uri[i];
        unsigned hi, lo;
        if (c == '%' && i + 2 < len && sscanf(uri + i + 1, "%1x%1x", &hi, &lo) == 2) {
            c = hi * 16 + lo;
            i += 2;
        }
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',' || n + 1 >= size)
            return -1;
        at += c == '@';
        out[n++] = (char)c;
    }
    out[n] = '\0';
    const char *sign = strchr(out, '@');
    return at == 1 && sign != out && sign[1] != '\0' ? 0 : -1;
}

/* The comma-separated URIs of rua= (text, len) into rua; -1 when there are none. */
static int rua_parse(const char *text, size_t len, struct tls_rpt_rua *rua)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && text[end] != ',')
            end++;
        size_t a = i, b = end;
        while (a < b && is_space(text[a]))
            a++;
        while (b > a && is_space(text[b - 1]))
            b--;
        char addr[RUA_URI_MAX];
        if (b - a > 7 && strncasecmp(text + a, "mailto:", 7) == 0 &&
            mailto_address(text + a + 7, b - a - 7, addr, sizeof addr) == 0) {
            if (rua->nmailto < TLS_RPT_RUA_MAX)
                rua->mailto[rua->nmailto++] = xstrdup(addr);
        } else if (b > a) {
            rua->nother++;
        }
        i = end + 1;
    }
    return rua->nmailto + rua->nother > 0 ? 0 : -1;
}

int tls_rpt_record_parse(const char *txt, size_t len, struct tls_rpt_rua *rua)
{
    *rua = (struct tls_rpt_rua){0};
    /* RFC 8460 §3: "v=TLSRPTv1" first, then ";"-separated fields, rua required. */
    static const char version[] = "v=TLSRPTv1";
    size_t vl = sizeof version - 1;
    if (len < vl || memcmp(txt, version, vl) != 0)
        return 0;
    size_t i = vl;
    while (i < len && is_space(txt[i]))
        i++;
    if (i < len && txt[i] != ';')
        return 0; /* "v=TLSRPTv10" */
    int found = 0;
    while (i < len) {
        i++; /* the ';' */
        while (i < len && is_space(txt[i]))
            i++;
        size_t end = i;
        while (end < len && txt[end] != ';')
            end++;
        if (end - i > 4 && strncmp(txt + i, "rua=", 4) == 0) {
            if (found++ || rua_parse(txt + i + 4, end - i - 4, rua) < 0) {
                tls_rpt_rua_free(rua);
                return -1;
            }
        }
        i = end;
    }
    return found ? 1 : -1;
}

void tls_rpt_rua_free(struct tls_rpt_rua *rua)
{
    for (size_t i = 0; i < rua->nmailto; i++)
        free(rua->mailto[i]);
    *rua = (struct tls_rpt_rua){0};
}

/* ---- the JSON report (§4.4) ---- */

static json_t *iso_time(int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;
    char text[32];
    gmtime_r(&t, &tm);
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

/* The policy strings: one per line of text; for sts, the mx: patterns as mx-host too. */
static void policy_strings(const char *text, enum tls_rpt_policy_type type, json_t *policy)
{
    json_t *strings = json_array(), *mx = json_array();
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        json_array_append_new(strings, json_stringn(p, n));
        if (type == TLS_RPT_POLICY_STS && n > 4 && strncmp(p, "mx: ", 4) == 0)
            json_array_append_new(mx, json_stringn(p + 4, n - 4));
        p = nl != NULL ? nl + 1 : NULL;
    }
    if (json_array_size(strings) > 0)
        json_object_set(policy, "policy-string", strings);
    if (json_array_size(mx) > 0)
        json_object_set(policy, "mx-host", mx);
    json_decref(strings);
    json_decref(mx);
}

static void set_if(json_t *obj, const char *key, const char *value)
{
    if (value != NULL)
        json_object_set_new(obj, key, json_string(value));
}

static json_t *failure_details(const struct tls_rpt_policy *p)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < p->nrows; i++) {
        const struct tls_rpt_row *r = &p->rows[i];
        json_t *row = json_pack("{s:s,s:I}", "result-type", tls_rpt_result_name(r->result),
                                "failed-session-count", (json_int_t)r->count);
        set_if(row, "sending-mta-ip", r->sending_ip);
        set_if(row, "receiving-mx-hostname", r->mx_host);
        set_if(row, "receiving-ip", r->receiving_ip);
        set_if(row, "failure-reason-code", r->reason);
        json_array_append_new(rows, row);
    }
    return rows;
}

void tls_rpt_report_json(const struct tls_rpt_domain *d, const struct tls_rpt_meta *m,
                         struct buf *out)
{
    json_t *policies = json_array();
    for (size_t i = 0; i < TLS_RPT_POLICY_TYPES; i++) {
        const struct tls_rpt_policy *p = &d->policies[i];
        if (!p->used)
            continue;
        json_t *policy = json_pack("{s:s,s:s}", "policy-type", tls_rpt_policy_type_name(i),
                                   "policy-domain", d->name);
        policy_strings(p->text, i, policy);
        json_t *entry = json_pack("{s:o,s:{s:I,s:I}}", "policy", policy, "summary",
                                  "total-successful-session-count", (json_int_t)p->successes,
                                  "total-failure-session-count", (json_int_t)p->failures);
        if (p->nrows > 0)
            json_object_set_new(entry, "failure-details", failure_details(p));
        json_array_append_new(policies, entry);
    }
    json_t *root = json_pack("{s:s,s:{s:o,s:o},s:s,s:s,s:o}", "organization-name", m->organization,
                             "date-range", "start-datetime", iso_time(m->start), "end-datetime",
                             iso_time(m->end), "contact-info", m->contact, "report-id",
                             m->report_id, "policies", policies);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    buf_printf(out, "%s\n", text);
    free(text);
    json_decref(root);
}

/* ---- the mail (§5.3) ---- */

static void base64_lines(const char *data, size_t len, struct buf *out)
{
    unsigned char line[80];
    for (size_t i = 0; i < len; i += 57) { /* 57 octets: one 76-character line */
        size_t n = len - i < 57 ? len - i : 57;
        int w = EVP_EncodeBlock(line, (const unsigned char *)data + i, (int)n);
        buf_append(out, line, (size_t)w);
        buf_append_str(out, "\r\n");
    }
}

void tls_rpt_mail_build(const struct tls_rpt_mail *m, struct buf *out)
{
    const struct tls_rpt_meta *meta = m->meta;
    time_t now = (time_t)m->now;
    struct tm tm;
    char date[64];
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char boundary[96];
    snprintf(boundary, sizeof boundary, "tlsrpt-%lld-%08x", (long long)m->now,
             (unsigned)(strlen(meta->report_id) * 2654435761u));
    buf_printf(out,
               "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
               "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
               "Message-ID: <%s>\r\nTLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n"
               "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"%s\"\r\n\r\n",
               m->from, m->to, date, m->domain->name, m->submitter, meta->report_id,
               meta->report_id, m->domain->name, m->submitter, boundary);
    buf_printf(out,
               "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
               "This is an aggregate TLS report (RFC 8460) from %s about mail sent to %s.\r\n\r\n",
               boundary, m->submitter, m->domain->name);
    /* §5.3: filename = submitter!policy-domain!begin!end!unique-id, in unix seconds. */
    buf_printf(out,
               "--%s\r\nContent-Type: application/tlsrpt+json\r\n"
               "Content-Transfer-Encoding: base64\r\n"
               "Content-Disposition: attachment;\r\n"
               " filename=\"%s!%s!%lld!%lld.json\"\r\n\r\n",
               boundary, m->submitter, m->domain->name, (long long)meta->start,
               (long long)meta->end);
    base64_lines(m->json, m->json_len, out);
    buf_printf(out, "\r\n--%s--\r\n", boundary);
}
