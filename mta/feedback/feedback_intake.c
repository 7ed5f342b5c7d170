/*
 * The intake of complaint reports and late bounces (feedback_intake.h): reading on the thread
 * pool, then the log, the suppression list and the alarm on the loop.
 */
#include "mta/feedback/feedback_intake.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/bounce_category.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/scheduler.h"
#include "policy/suppression.h"

int feedback_is_address(const struct config *cfg, const char *addr)
{
    const char *token;
    if (cfg->feedback.verp_domain != NULL &&
        trace_verp_token(addr, cfg->feedback.verp_domain, &token) > 0)
        return 1;
    for (size_t i = 0; i < cfg->feedback.naddresses; i++)
        if (strcasecmp(cfg->feedback.addresses[i], addr) == 0)
            return 1;
    return 0;
}

/* ---- reading, on the thread pool ---- */

struct feedback_read {
    uv_work_t work;
    struct buf msg;                /* the report's first FEEDBACK_REPORT_MAX octets */
    struct config_trace_key *keys; /* copies of feedback.trace_keys */
    size_t nkeys;
    uint64_t max_age_us;             /* feedback.trace_max_age */
    char verp[TRACE_TOKEN_MAX + 1];  /* the VERP token the report was sent to, "" if none */
    struct feedback_outcome outcome; /* filled on the pool */
    feedback_read_cb cb;
    void *arg;
    unsigned working : 1; /* on the thread pool */
    unsigned freed : 1;   /* freed by its owner while working: no callback */
};

struct feedback_read *feedback_read_new(uv_loop_t *loop, const struct config *cfg, const char *verp)
{
    const char *token;
    size_t len = verp != NULL ? trace_verp_token(verp, cfg->feedback.verp_domain, &token) : 0;
    struct feedback_read *fr = xcalloc(1, sizeof *fr);
    fr->work.loop = loop; /* kept for uv_queue_work */
    fr->nkeys = cfg->feedback.ntrace_keys;
    fr->keys = xcalloc(fr->nkeys + 1, sizeof *fr->keys);
    for (size_t i = 0; i < fr->nkeys; i++) {
        fr->keys[i].id = xstrdup(cfg->feedback.trace_keys[i].id);
        fr->keys[i].secret = xstrdup(cfg->feedback.trace_keys[i].secret);
    }
    fr->max_age_us = cfg->feedback.trace_max_age_ms * 1000;
    if (len > 0 && len <= TRACE_TOKEN_MAX)
        memcpy(fr->verp, token, len);
    return fr;
}

static void read_release(struct feedback_read *fr)
{
    for (size_t i = 0; i < fr->nkeys; i++) {
        free(fr->keys[i].id);
        free(fr->keys[i].secret);
    }
    free(fr->keys);
    buf_free(&fr->msg);
    free(fr);
}

void feedback_read_write(struct feedback_read *fr, const char *data, size_t len)
{
    size_t room = FEEDBACK_REPORT_MAX - fr->msg.len;
    buf_append(&fr->msg, data, len < room ? len : room);
}

static void read_on_pool(uv_work_t *work)
{
    struct feedback_read *fr = container_of(work, struct feedback_read, work);
    struct feedback_outcome *out = &fr->outcome;
    report_parse(fr->msg.data != NULL ? fr->msg.data : "", fr->msg.len, &out->report);
    out->verdict = TRACE_MALFORMED;
    if (out->report.trace[0] != '\0')
        out->verdict = trace_verify(fr->keys, fr->nkeys, out->report.trace,
                                    strlen(out->report.trace), &out->trace);
    /* The quoted trace says more (tenant, campaign); the VERP return path stands in for it. */
    struct trace_fields by_verp;
    enum trace_verdict verp_verdict = TRACE_MALFORMED;
    if (fr->verp[0] != '\0')
        verp_verdict = trace_verify(fr->keys, fr->nkeys, fr->verp, strlen(fr->verp), &by_verp);
    if (fr->verp[0] != '\0' && out->verdict != TRACE_VALID &&
        (verp_verdict == TRACE_VALID || out->report.trace[0] == '\0')) {
        out->verdict = verp_verdict;
        out->trace = by_verp;
        out->by_verp = 1;
    }
    if (out->verdict == TRACE_VALID) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t now_us = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
        out->issued = trace_queue_id_plausible(out->trace.queue_id, now_us, fr->max_age_us);
    }
}

static void read_on_done(uv_work_t *work, int status)
{
    struct feedback_read *fr = container_of(work, struct feedback_read, work);
    fr->working = 0;
    if (!fr->freed)
        fr->cb(fr->arg, &fr->outcome);
    read_release(fr);
}

void feedback_read_finish(struct feedback_read *fr, feedback_read_cb cb, void *arg)
{
    fr->cb = cb;
    fr->arg = arg;
    fr->working = 1;
    uv_queue_work(fr->work.loop, &fr->work, read_on_pool, read_on_done);
}

void feedback_read_free(struct feedback_read *fr)
{
    if (fr == NULL)
        return;
    if (fr->working)
        fr->freed = 1;
    else
        read_release(fr);
}

/* ---- what the report says, on the loop ---- */

/* Why a report is not about a message of ours, or NULL when it is. */
static const char *unrecognized_reason(const struct feedback_outcome *out)
{
    if (out->report.trace[0] == '\0' && !out->by_verp)
        return "no_trace";
    switch (out->verdict) {
    case TRACE_VALID:
        return out->issued ? NULL : "never_issued";
    case TRACE_MALFORMED:
        return "malformed_trace";
    case TRACE_UNKNOWN_KEY:
        return "unknown_key";
    case TRACE_BAD_MAC:
        return "bad_mac";
    }
    return "no_trace";
}

/* The recipient a matched report is about: the trace's (it survives redaction), else the
 * report's. */
static const char *matched_rcpt(const struct feedback_outcome *out)
{
    return out->trace.rcpt[0] != '\0' ? out->trace.rcpt : out->report.recipient;
}

/* A hard late bounce suppresses as one at delivery does: only a mailbox or domain that is gone. */
static int late_bounce_source(const struct feedback_report *rep, enum suppression_source *source)
{
    if (!report_bounce_is_hard(rep))
        return 0;
    enum bounce_category cat = bounce_category_of(550, rep->status, "");
    *source = cat == BOUNCE_CAT_BAD_DOMAIN ? SUPPRESSION_BAD_DOMAIN : SUPPRESSION_BAD_MAILBOX;
    return cat == BOUNCE_CAT_BAD_MAILBOX || cat == BOUNCE_CAT_BAD_DOMAIN;
}

int feedback_report_matched(const struct config *cfg, const struct feedback_outcome *out,
                            struct suppression *store)
{
    enum suppression_source source = SUPPRESSION_COMPLAINT;
    int complaint = out->report.kind == REPORT_COMPLAINT;
    if (!complaint && !late_bounce_source(&out->report, &source))
        return 0;
    if (store == NULL)
        return 1;
    char reason[SUPPRESSION_NOTE_MAX + 1];
    snprintf(reason, sizeof reason, "%s from %.64s about %.40s",
             complaint ? "complaint" : "late bounce", out->report.provider, out->trace.queue_id);
    uint64_t keep_s = complaint ? 0 : cfg->suppression.hard_bounce_expiry_ms / 1000;
    /* A complaint is about one tenant's mail; a mailbox that is gone is gone for every tenant. */
    suppression_add(store, complaint ? out->trace.tenant : NULL, matched_rcpt(out), source, reason,
                    keep_s > 0 ? (int64_t)time(NULL) + (int64_t)keep_s : 0);
    return 1;
}

static void log_report_fields(struct logrec *r, const struct feedback_outcome *out,
                              const char *client)
{
    const struct feedback_report *rep = &out->report;
    log_str(r, "client", client);
    log_str(r, "format", rep->format);
    log_str(r, "provider", rep->provider);
    if (rep->source_ip[0] != '\0')
        log_str(r, "source_ip", rep->source_ip);
    if (rep->feedback_type[0] != '\0')
        log_str(r, "type", rep->feedback_type);
}

static void log_matched(const struct config *cfg, const struct feedback_outcome *out,
                        const struct feedback_site *site)
{
    const char *client = site->client;
    int complaint = out->report.kind == REPORT_COMPLAINT;
    int suppress = feedback_report_matched(cfg, out, site->suppression);
    mail_metrics_feedback(complaint ? "complaint" : "late_bounce");
    struct logrec r;
    log_begin(&r, complaint ? LOG_WARN : LOG_INFO,
              complaint ? "feedback.complaint" : "bounce.late");
    log_str(&r, "queue_id", out->trace.queue_id);
    log_str(&r, "tenant", out->trace.tenant);
    log_str(&r, "campaign", out->trace.campaign);
    log_str(&r, "recipient", matched_rcpt(out));
    log_str(&r, "matched_by", out->by_verp ? "verp" : "trace");
    if (!complaint)
        log_str(&r, "status", out->report.status);
    log_bool(&r, "suppress", suppress);
    log_report_fields(&r, out, client);
    log_end(&r);
}

/* ---- the alarm ---- */

struct notify_commit {
    struct scheduler *const *scheduler;
    char *to;
    int64_t received_at;
};

static void notify_envelope(const struct notify_commit *nc, const char *hostname,
                            struct spool_envelope *env)
{
    *env = (struct spool_envelope){.sender = "",
                                   .rcpts = (const char *const *)&nc->to,
                                   .nrcpts = 1,
                                   .client_addr = "127.0.0.1",
                                   .helo = hostname,
                                   .listener = "feedback",
                                   .received_at = nc->received_at};
}

static void notify_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct notify_commit *nc = arg;
    if (status < 0) {
        log_msg(LOG_ERROR, "feedback.alarm_notify_failed", "to %s: %s", nc->to, strerror(-status));
    } else if (*nc->scheduler != NULL) {
        struct spool_envelope env;
        notify_envelope(nc, "", &env);
        struct spool_entry entry = {.id = spool_msg_id(msg), .env = &env};
        scheduler_add(*nc->scheduler, &entry);
    }
    free(nc->to);
    free(nc);
}

/* A short message to feedback.alarm_notify, written by us and queued like a DSN. */
static void alarm_notify(const struct config *cfg, const struct feedback_outcome *out,
                         const struct feedback_site *site, size_t count)
{
    if (cfg->feedback.alarm_notify == NULL || site->spool == NULL)
        return;
    struct notify_commit *nc = xcalloc(1, sizeof *nc);
    nc->scheduler = site->scheduler;
    nc->to = xstrdup(cfg->feedback.alarm_notify);
    nc->received_at = (int64_t)time(NULL);
    char date[64];
    struct tm tm;
    time_t now = time(NULL);
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    const char *host = cfg->server.hostname;
    struct buf m = BUF_INIT;
    buf_printf(&m,
               "From: Sluice <MAILER-DAEMON@%s>\r\nTo: <%s>\r\nDate: %s\r\n"
               "Subject: Sluice alarm: %zu reports about mail %s did not send\r\n"
               "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
               host, nc->to, date, count, host);
    buf_printf(&m,
               "%zu complaint reports or bounces about mail this server did not send arrived\r\n"
               "within %llu seconds (feedback.alarm_threshold is %u).\r\n\r\n"
               "Someone may be sending as you: check for an open relay (sluice relay-test),\r\n"
               "compromised accounts (relay.users), and forged mail; the log's\r\n"
               "feedback.unrecognized events name each report.\r\n\r\nThe last one:\r\n",
               count, (unsigned long long)(cfg->feedback.alarm_window_ms / 1000),
               cfg->feedback.alarm_threshold);
    const struct feedback_report *rep = &out->report;
    /* Report fields are outsiders' text: cut at any line break (report.c collapsed them). */
    buf_printf(&m,
               "  provider: %.200s\r\n  source IP: %.64s\r\n  sender: %.200s\r\n"
               "  subject: %.200s\r\n",
               rep->provider, rep->source_ip, rep->sender, rep->subject);
    struct spool_envelope env;
    notify_envelope(nc, host, &env);
    struct spool_msg *msg = spool_msg_new(site->spool, &env);
    if (msg == NULL) {
        free(nc->to);
        free(nc);
        buf_free(&m);
        return;
    }
    spool_msg_append(msg, m.data, m.len, NULL, NULL);
    buf_free(&m);
    spool_msg_commit(msg, notify_on_committed, nc);
}

static void log_unrecognized(const struct config *cfg, const struct feedback_outcome *out,
                             const struct feedback_site *site, const char *reason)
{
    size_t in_window;
    int raise = feedback_alarm_count(site->alarm, cfg->feedback.alarm_threshold,
                                     cfg->feedback.alarm_window_ms, uv_now(site->loop), &in_window);
    mail_metrics_feedback("unrecognized");
    const struct feedback_report *rep = &out->report;
    struct logrec r;
    log_begin(&r, LOG_ERROR, "feedback.unrecognized");
    log_str(&r, "reason", reason);
    log_str(&r, "kind", rep->kind == REPORT_COMPLAINT ? "complaint" : "bounce");
    log_report_fields(&r, out, site->client);
    log_str(&r, "sender", rep->sender);
    log_str(&r, "subject", rep->subject);
    log_str(&r, "recipient", rep->recipient);
    if (out->verdict == TRACE_VALID || out->verdict == TRACE_BAD_MAC)
        log_str(&r, "queue_id", out->trace.queue_id);
    log_int(&r, "in_window", (long long)in_window);
    log_end(&r);
    if (!raise)
        return;
    mail_metrics_feedback_alarm();
    log_begin(&r, LOG_ERROR, "feedback.alarm");
    log_int(&r, "count", (long long)in_window);
    log_int(&r, "window_s", (long long)(cfg->feedback.alarm_window_ms / 1000));
    log_str(&r, "provider", rep->provider);
    log_str(&r, "sender", rep->sender);
    log_str(&r, "notify", cfg->feedback.alarm_notify != NULL ? cfg->feedback.alarm_notify : "");
    log_end(&r);
    alarm_notify(cfg, out, site, in_window);
}

void feedback_report_handle(const struct config *cfg, const struct feedback_outcome *out,
                            const struct feedback_site *site)
{
    if (out->report.kind == REPORT_NONE) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "feedback.ignored");
        log_str(&r, "client", site->client);
        log_str(&r, "provider", out->report.provider);
        log_end(&r);
        return;
    }
    const char *reason = unrecognized_reason(out);
    if (reason == NULL)
        log_matched(cfg, out, site);
    else
        log_unrecognized(cfg, out, site, reason);
}
