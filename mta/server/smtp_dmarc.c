/*
 * The DMARC sink (smtp_dmarc.h). Its own DNS lookup is the only work it waits for, and that can be
 * cancelled, so freeing the sink at any point frees it at once.
 */
#include "mta/server/smtp_dmarc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/header_section.h"
#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/server/smtp_server.h"
#include "policy/dmarc.h"

static const struct config_pos builtin = {NULL, 0, 0};

struct dmarc_sink {
    struct body_sink sink;
    const struct config *cfg;
    struct smtp_server *srv;
    struct public_suffixes *psl; /* our reference to the server's list when the message began */
    uint64_t session;
    char queue_id[SPOOL_ID_MAX + 1];
    struct sockaddr_storage client;
    char client_text[INET6_ADDRSTRLEN];
    char sender_domain[DMARC_DOMAIN_MAX + 1]; /* MAIL FROM's, for the override list; "" for <> */
    struct dmarc_identifiers ids;             /* SPF's now, DKIM's at finish */

    struct header_section header;
    unsigned header_read : 1; /* the From field has been looked at */
    char from[DMARC_DOMAIN_MAX + 1];
    const char *from_error; /* static: why the message has no From domain; NULL when it has one */
    unsigned sample;        /* pct's sample, from the Message-ID */

    struct dmarc_lookup *lookup; /* in flight, else NULL */
    struct dmarc_policy_record found;
    struct body_end *end; /* set at finish: waiting for the lookup when lookup != NULL */
    char text[DMARC_DOMAIN_MAX + 96]; /* the refusal's text */
};

/* The values of the fields named `name` in the header section, at most `max` of them; returns how
 * many there are in all. */
static size_t header_values(const struct header_section *hs, const char *name, const char **values,
                            size_t *lens, size_t max)
{
    size_t n = 0, name_len = strlen(name);
    const char *h = hs->data.data;
    for (size_t at = 0; at < hs->fields;) {
        size_t end = header_field_end(h, at, hs->fields);
        size_t i = at + name_len;
        if (end - at > name_len && strncasecmp(h + at, name, name_len) == 0) {
            while (i < end && (h[i] == ' ' || h[i] == '\t')) /* obs-optional WSP before ':' */
                i++;
            if (i < end && h[i] == ':') {
                if (n < max)
                    values[n] = h + i + 1, lens[n] = end - i - 1;
                n++;
            }
        }
        at = end;
    }
    return n;
}

static void sink_on_found(void *arg, const struct dmarc_policy_record *found);
static void sink_decide(struct dmarc_sink *d);

/* The header section is complete: the From domain, pct's sample, and the lookup. */
static void sink_on_header(struct dmarc_sink *d, enum header_section_state st)
{
    d->header_read = 1;
    if (st == HEADER_SECTION_TOO_BIG) {
        d->from_error = "the header section is too big to read the From field";
        return;
    }
    const char *values[2];
    size_t lens[2];
    size_t n = header_values(&d->header, "From", values, lens, 2);
    if (dmarc_from_domain(values, lens, n, d->from, sizeof d->from, &d->from_error) < 0)
        return;
    d->from_error = NULL;
    if (header_values(&d->header, "Message-ID", values, lens, 1) > 0) {
        while (lens[0] > 0 && strchr(" \t\r\n", values[0][0]) != NULL)
            values[0]++, lens[0]--;
        while (lens[0] > 0 && strchr(" \t\r\n", values[0][lens[0] - 1]) != NULL)
            lens[0]--;
        d->sample = dmarc_sample(values[0], lens[0]);
    }
    if (d->srv->dns == NULL ||
        dmarc_lookup_start(d->srv->dns, d->psl, d->from, sink_on_found, d, &d->lookup) < 0)
        d->found.status = DMARC_TEMPERROR; /* the resolver is stopping */
    header_section_free(&d->header);       /* nothing else of it is needed */
}

static int sink_write(struct body_sink *sink, const char *data, size_t len)
{
    struct dmarc_sink *d = container_of(sink, struct dmarc_sink, sink);
    if (!d->header_read) {
        enum header_section_state st = header_section_feed(&d->header, data, len);
        if (st != HEADER_SECTION_MORE)
            sink_on_header(d, st);
    }
    return 0;
}

static void sink_on_found(void *arg, const struct dmarc_policy_record *found)
{
    struct dmarc_sink *d = arg;
    d->found = *found;
    dmarc_lookup_free(d->lookup);
    d->lookup = NULL;
    if (d->end != NULL)
        sink_decide(d);
}

static void sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct dmarc_sink *d = container_of(sink, struct dmarc_sink, sink);
    if (!d->header_read) { /* the message ended inside its header section (RFC 5322 §3.5) */
        header_section_end(&d->header);
        sink_on_header(d, HEADER_SECTION_COMPLETE);
    }
    d->end = end;
    d->ids.dkim = end->dkim;
    if (d->lookup == NULL)
        sink_decide(d);
}

static void sink_log(const struct dmarc_sink *d, const struct dmarc_result *res,
                     enum dmarc_policy applied, const char *override)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.dmarc");
    log_int(&r, "session", (long long)d->session);
    log_str(&r, "queue_id", d->queue_id);
    log_str(&r, "client", d->client_text);
    log_str(&r, "from_domain", d->from);
    log_str(&r, "result", dmarc_status_name(res->status));
    if (res->status == DMARC_PASS || res->status == DMARC_FAIL)
        log_str(&r, "policy", dmarc_policy_name(res->policy));
    log_str(&r, "disposition", dmarc_policy_name(applied));
    log_str(&r, "reason", res->reason);
    if (override != NULL)
        log_str(&r, "override", override);
    /* What an aggregate report (RFC 7489 §7.2) says of each message: the identifiers checked. */
    log_str(&r, "spf", spf_status_name(d->ids.spf));
    if (d->ids.spf_domain[0] != '\0')
        log_str(&r, "spf_domain", d->ids.spf_domain);
    struct buf dkim = BUF_INIT;
    for (size_t i = 0; i < d->ids.dkim.n; i++)
        buf_printf(&dkim, "%s%s %s", i > 0 ? ", " : "", d->ids.dkim.sigs[i].pass ? "pass" : "fail",
                   d->ids.dkim.sigs[i].domain);
    log_strn(&r, "dkim", dkim.data != NULL ? dkim.data : "", dkim.len);
    buf_free(&dkim);
    log_end(&r);
}

/* The result for Authentication-Results (RFC 7489 §11.2): the policy and what we did with it. */
static void sink_format(const struct dmarc_sink *d, const struct dmarc_result *res,
                        enum dmarc_policy applied, struct buf *out)
{
    buf_printf(out, "dmarc=%s", dmarc_status_name(res->status));
    if (res->status == DMARC_PASS || res->status == DMARC_FAIL)
        buf_printf(out, " (p=%s dis=%s)", dmarc_policy_name(res->policy),
                   dmarc_policy_name(applied));
    else if (res->status == DMARC_PERMERROR)
        buf_printf(out, " (%s)", d->from_error);
    if (d->from[0] != '\0')
        buf_printf(out, " header.from=%s", d->from);
}

/* What enforce does with the result (the override list only lets it be marked). */
static struct policy_decision sink_enforce(struct dmarc_sink *d, const struct dmarc_result *res,
                                           enum dmarc_policy *applied)
{
    struct policy_decision dec = {POLICY_ACCEPT, 250, "2.0.0", "Ok", "dmarc", builtin};
    if (res->status == DMARC_TEMPERROR) {
        dec = (struct policy_decision){
            POLICY_TEMPFAIL, 451,
            "4.7.5",         "DMARC policy temporarily unavailable, try again later",
            "dmarc",         builtin};
    } else if (res->status == DMARC_PERMERROR) {
        snprintf(d->text, sizeof d->text, "Message rejected by DMARC: %s", d->from_error);
        dec = (struct policy_decision){POLICY_REJECT, 550, "5.7.1", d->text, "dmarc", builtin};
    } else if (res->status == DMARC_FAIL && res->disposition == DMARC_POLICY_REJECT) {
        snprintf(d->text, sizeof d->text, "Message rejected by the DMARC policy of %s", d->from);
        dec = (struct policy_decision){POLICY_REJECT, 550, "5.7.1", d->text, "dmarc", builtin};
        *applied = DMARC_POLICY_REJECT;
    } else if (res->status == DMARC_FAIL && res->disposition == DMARC_POLICY_QUARANTINE) {
        buf_append_str(&d->end->fields, SMTP_DMARC_QUARANTINE_FIELD);
        *applied = DMARC_POLICY_QUARANTINE;
    }
    return dec;
}

/* Everything is known: the evaluation, the result, the log, and under enforce the verdict. */
static void sink_decide(struct dmarc_sink *d)
{
    struct dmarc_result res;
    if (d->from_error != NULL)
        res = (struct dmarc_result){.status = DMARC_PERMERROR, .reason = d->from_error};
    else
        dmarc_evaluate(d->psl, d->from, &d->ids, &d->found, d->sample, &res);
    const char *override = NULL;
    if (res.status == DMARC_FAIL || res.status == DMARC_PERMERROR)
        override =
            dmarc_override_match(d->cfg, (const struct sockaddr *)&d->client, d->sender_domain);
    enum dmarc_policy applied = DMARC_POLICY_NONE;
    struct policy_decision dec = {POLICY_ACCEPT, 250, "2.0.0", "Ok", "dmarc", builtin};
    if (d->cfg->inbound.dmarc == DMARC_ENFORCE && override == NULL)
        dec = sink_enforce(d, &res, &applied);
    sink_format(d, &res, applied, body_end_result(d->end));
    sink_log(d, &res, applied, override);
    body_sink_done(&d->sink, &dec);
}

static void sink_free(struct body_sink *sink)
{
    struct dmarc_sink *d = container_of(sink, struct dmarc_sink, sink);
    dmarc_lookup_free(d->lookup); /* no callback afterwards */
    header_section_free(&d->header);
    public_suffixes_unref(d->psl);
    free(d);
}

static const struct body_sink_ops dmarc_sink_ops = {
    .name = "dmarc", .write = sink_write, .finish = sink_finish, .free = sink_free};

struct body_sink *smtp_dmarc_sink_new(const struct smtp_sink_context *ctx)
{
    const struct config *cfg = ctx->cfg;
    if (!ctx->inbound || ctx->relay_authorized || cfg->inbound.dmarc == DMARC_IGNORE ||
        ctx->srv->dns == NULL || ctx->srv->public_suffixes == NULL)
        return NULL;
    struct dmarc_sink *d = xcalloc(1, sizeof *d);
    d->sink.ops = &dmarc_sink_ops;
    d->cfg = cfg;
    d->srv = ctx->srv;
    d->psl = public_suffixes_ref(ctx->srv->public_suffixes);
    d->session = ctx->session;
    snprintf(d->queue_id, sizeof d->queue_id, "%s", ctx->queue_id);
    memcpy(&d->client, ctx->client,
           ctx->client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in));
    snprintf(d->client_text, sizeof d->client_text, "%s", ctx->client_text);
    const char *at = strrchr(ctx->sender, '@');
    if (at != NULL)
        snprintf(d->sender_domain, sizeof d->sender_domain, "%s", at + 1);
    d->ids.spf = SPF_NONE;
    if (ctx->spf != NULL) {
        d->ids.spf = ctx->spf->status;
        snprintf(d->ids.spf_domain, sizeof d->ids.spf_domain, "%s", ctx->spf->domain);
    }
    d->header = (struct header_section)HEADER_SECTION_INIT;
    return &d->sink;
}
