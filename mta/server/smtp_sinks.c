/*
 * The body sinks of an inbound SMTP transaction (smtp_sinks.h). Each sink embeds struct tx_sink
 * (the body_sink and what it logs with); the finishes that end on the thread pool (signing,
 * verification, the commit) cannot be cancelled, so a sink freed while one runs is marked orphaned
 * and frees itself when the work reports.
 */
#include "mta/server/smtp_sinks.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/dkim/dkim.h"
#include "mta/dkim/dkim_check.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/scheduler.h"
#include "mta/server/smtp_dmarc.h"
#include "mta/feedback/feedback_intake.h"
#include "mta/server/smtp_server.h"
#include "policy/clamd.h"
#include "policy/mime.h"
#include "spool/envelope.h"
#include "spool/spool_space.h"

/* How long clamd may keep us waiting (connect, each write, the verdict). */
#define CLAMD_TIMEOUT_MS 30000

static const struct config_pos builtin = {NULL, 0, 0};
/* builtin, spelled out: ISO C (and clang) takes no object as a static initializer. */
static const struct policy_decision accepted = {POLICY_ACCEPT, 250, "2.0.0", "Ok", NULL, {0}};

/* What every sink of a transaction keeps of it. */
struct tx_sink {
    struct body_sink sink;
    struct smtp_server *srv;
    const struct config *cfg;
    uint64_t session;
    char queue_id[SPOOL_ID_MAX + 1];
    unsigned orphaned : 1; /* freed while finishing: the work in flight reports to nobody */
};

/* The writable callback of the spool's neighbours: arg is the sink. */
static void sink_on_writable(void *arg)
{
    body_sink_writable(arg);
}

static void *tx_sink_new(size_t size, const struct body_sink_ops *ops,
                         const struct smtp_sink_context *ctx)
{
    struct tx_sink *t = xcalloc(1, size);
    t->sink.ops = ops;
    t->srv = ctx->srv;
    t->cfg = ctx->cfg;
    t->session = ctx->session;
    snprintf(t->queue_id, sizeof t->queue_id, "%s", ctx->queue_id);
    return t;
}

/* ops->free of a sink whose finish cannot be cancelled: returns 1 when the caller is to drop its
 * work and free it now, 0 when it was finishing (orphaned: freed when the work reports) or has
 * finished (freed here). */
static int tx_sink_release(struct tx_sink *t)
{
    if (t->sink.finishing) {
        t->orphaned = 1;
        return 0;
    }
    if (t->sink.finished) {
        free(t);
        return 0;
    }
    return 1;
}

static struct policy_decision refusal(int code, const char *enhanced, const char *text,
                                      const char *rule)
{
    struct policy_decision d = {
        code >= 500 ? POLICY_REJECT : POLICY_TEMPFAIL, code, enhanced, text, rule, builtin};
    return d;
}

/* ---- the attachment check (inbound.blocked_attachments) ---- */

struct mime_sink {
    struct tx_sink t;
    struct mime_parser *parser;
};

static int mime_sink_write(struct body_sink *sink, const char *data, size_t len)
{
    mime_parser_feed(container_of(sink, struct mime_sink, t.sink)->parser, data, len);
    return 0;
}

static void mime_sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct mime_sink *m = container_of(sink, struct mime_sink, t.sink);
    mime_parser_finish(m->parser);
    struct policy_decision d = mime_parser_verdict(m->parser);
    d.rule = "attachment";
    body_sink_done(sink, &d);
}

static void mime_sink_free(struct body_sink *sink)
{
    struct mime_sink *m = container_of(sink, struct mime_sink, t.sink);
    mime_parser_free(m->parser);
    free(m);
}

static const struct body_sink_ops mime_sink_ops = {
    .name = "mime", .write = mime_sink_write, .finish = mime_sink_finish, .free = mime_sink_free};

static struct body_sink *mime_sink_new(const struct smtp_sink_context *ctx)
{
    const struct config *cfg = ctx->cfg;
    if (!ctx->inbound || cfg->inbound.nblocked_attachments == 0)
        return NULL;
    struct mime_sink *m = tx_sink_new(sizeof *m, &mime_sink_ops, ctx);
    m->parser = mime_parser_new((const char *const *)cfg->inbound.blocked_attachments,
                                cfg->inbound.nblocked_attachments, NULL, NULL);
    return &m->t.sink;
}

/* ---- clamd (inbound.clamd) ---- */

struct clamd_sink {
    struct tx_sink t;
    struct clamd_scan *scan;
    char text[CLAMD_REPLY_MAX + 64]; /* the refusal naming the virus */
};

static int clamd_sink_write(struct body_sink *sink, const char *data, size_t len)
{
    return clamd_scan_write(container_of(sink, struct clamd_sink, t.sink)->scan, data, len);
}

/* clamd's verdict; clamd_down decides when there is none. */
static void clamd_sink_on_scanned(void *arg, const struct clamd_result *res)
{
    struct clamd_sink *c = arg;
    struct policy_decision d = accepted;
    if (res->status == CLAMD_FOUND) {
        snprintf(c->text, sizeof c->text, "message rejected: virus found: %s", res->virus);
        d = refusal(554, "5.7.1", c->text, "clamd");
    } else if (res->status == CLAMD_ERROR) {
        int tempfail = c->t.cfg->inbound.clamd_down == CLAMD_DOWN_TEMPFAIL;
        struct logrec r;
        log_begin(&r, LOG_WARN, "smtp.clamd_down");
        log_int(&r, "session", (long long)c->t.session);
        log_str(&r, "queue_id", c->t.queue_id);
        log_str(&r, "error", res->error);
        log_str(&r, "action", tempfail ? "tempfail" : "accepted_unscanned");
        log_end(&r);
        if (tempfail)
            d = refusal(451, "4.7.1", "virus scanner unavailable, try again later", "clamd");
    }
    body_sink_done(&c->t.sink, &d);
}

static void clamd_sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct clamd_sink *c = container_of(sink, struct clamd_sink, t.sink);
    clamd_scan_finish(c->scan, clamd_sink_on_scanned, c);
}

static void clamd_sink_free(struct body_sink *sink)
{
    struct clamd_sink *c = container_of(sink, struct clamd_sink, t.sink);
    clamd_scan_free(c->scan); /* no callback afterwards, finishing or not */
    free(c);
}

static const struct body_sink_ops clamd_sink_ops = {.name = "clamd",
                                                    .write = clamd_sink_write,
                                                    .finish = clamd_sink_finish,
                                                    .free = clamd_sink_free};

static struct body_sink *clamd_sink_new(const struct smtp_sink_context *ctx)
{
    if (!ctx->inbound || ctx->cfg->inbound.clamd == NULL)
        return NULL;
    struct clamd_sink *c = tx_sink_new(sizeof *c, &clamd_sink_ops, ctx);
    c->scan = clamd_scan_new(ctx->srv->loop, ctx->cfg->inbound.clamd, CLAMD_TIMEOUT_MS,
                             sink_on_writable, &c->t.sink);
    return &c->t.sink;
}

/* ---- DKIM signing ---- */

/* Issue 5: only mail we relay for its sender is ours to sign; inbound mail, even for our own
 * domains, never is. */
static int signs(const struct smtp_sink_context *ctx)
{
    return ctx->relay_authorized && ctx->srv->dkim != NULL &&
           dkim_signer_set_count(ctx->srv->dkim) > 0;
}

struct sign_sink {
    struct tx_sink t;
    struct dkim_stream *stream;
    struct body_end *end;
};

static int sign_sink_write(struct body_sink *sink, const char *data, size_t len)
{
    return dkim_stream_write(container_of(sink, struct sign_sink, t.sink)->stream, data, len,
                             sink_on_writable, sink);
}

/* Signing failed: the log says what failed and what we did about it (dkim_on_failure). Returns 1
 * when the message is to be refused with 451. */
static int sign_sink_failed(struct sign_sink *g, const struct dkim_result *res)
{
    int tempfail = g->t.cfg->dkim_on_error == DKIM_ON_ERROR_TEMPFAIL;
    struct logrec r;
    log_begin(&r, LOG_ERROR, "dkim.sign_failed");
    log_int(&r, "session", (long long)g->t.session);
    log_str(&r, "queue_id", g->t.queue_id);
    log_str(&r, "from_domain", res->from_domain);
    log_str(&r, "error", res->error);
    log_str(&r, "action", tempfail ? "tempfail" : "accepted_unsigned");
    log_end(&r);
    return tempfail;
}

/* 1 when the spool would refuse the signatures with the fields already gathered in front
 * (spool_msg_prepend takes at most ENVELOPE_PREFIX_MAX). */
static int sign_sink_front_too_long(const struct body_end *end, size_t sigs_len)
{
    struct buf front = BUF_INIT;
    body_end_front(end, &front);
    int too_long = front.len + sigs_len > ENVELOPE_PREFIX_MAX;
    buf_free(&front);
    return too_long;
}

/* The signatures are ready (on the loop); the stream frees itself after this returns. */
static void sign_sink_on_signed(struct dkim_stream *ds, const struct dkim_result *res, void *arg)
{
    struct sign_sink *g = arg;
    struct dkim_result failed;
    if (g->t.orphaned) {
        free(g);
        return;
    }
    if (res->status == 0 && sign_sink_front_too_long(g->end, res->headers_len)) {
        failed = *res;
        failed.status = -EINVAL;
        failed.error = "the spool refused the DKIM-Signature fields";
        res = &failed;
    }
    if (res->status < 0 && sign_sink_failed(g, res)) {
        struct policy_decision d =
            refusal(451, "4.7.0", "Error: DKIM signing failed, try again later", "dkim_on_failure");
        body_sink_done(&g->t.sink, &d);
        return;
    }
    if (res->status == 0) /* else accepted unsigned */
        buf_append(&g->end->fields, res->headers, res->headers_len);
    if (res->status == 0 && res->signatures > 0) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "dkim.signed");
        log_int(&r, "session", (long long)g->t.session);
        log_str(&r, "queue_id", g->t.queue_id);
        log_str(&r, "from_domain", res->from_domain);
        log_int(&r, "signatures", res->signatures);
        log_end(&r);
    }
    body_sink_done(&g->t.sink, &accepted);
}

static void sign_sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct sign_sink *g = container_of(sink, struct sign_sink, t.sink);
    g->end = end;
    dkim_stream_finish(g->stream, sign_sink_on_signed, g);
}

static void sign_sink_free(struct body_sink *sink)
{
    struct sign_sink *g = container_of(sink, struct sign_sink, t.sink);
    if (!tx_sink_release(&g->t))
        return;
    dkim_stream_abort(g->stream);
    free(g);
}

static const struct body_sink_ops sign_sink_ops = {.name = "dkim-sign",
                                                   .stored = 1,
                                                   .write = sign_sink_write,
                                                   .finish = sign_sink_finish,
                                                   .free = sign_sink_free};

static struct body_sink *sign_sink_new(const struct smtp_sink_context *ctx)
{
    if (!signs(ctx))
        return NULL;
    struct dkim_stream *stream = dkim_stream_new(ctx->srv->loop, ctx->srv->dkim, ctx->queue_id);
    if (stream == NULL)
        return NULL;
    struct sign_sink *g = tx_sink_new(sizeof *g, &sign_sink_ops, ctx);
    g->stream = stream;
    return &g->t.sink;
}

/* ---- DKIM verification (inbound.dkim_verify) ---- */

struct verify_sink {
    struct tx_sink t;
    struct dkim_check *check;
    struct body_end *end;
};

static int verify_sink_write(struct body_sink *sink, const char *data, size_t len)
{
    return dkim_check_write(container_of(sink, struct verify_sink, t.sink)->check, data, len,
                            sink_on_writable, sink);
}

static void verify_sink_log(const struct verify_sink *v, const struct dkim_check_result *res)
{
    struct buf results = BUF_INIT;
    for (size_t i = 0; i < res->nsigs; i++)
        buf_printf(&results, "%s%s d=%s s=%s%s%s", i > 0 ? "; " : "",
                   dkim_check_verdict_name(res->sigs[i].verdict), res->sigs[i].domain,
                   res->sigs[i].selector, res->sigs[i].reason[0] != '\0' ? ": " : "",
                   res->sigs[i].reason);
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.dkim_verified");
    log_int(&r, "session", (long long)v->t.session);
    log_str(&r, "queue_id", v->t.queue_id);
    log_int(&r, "signatures", (long long)res->nsigs);
    log_strn(&r, "results", results.data != NULL ? results.data : "", results.len);
    log_end(&r);
    buf_free(&results);
}

/* What DMARC takes of the results: each signature's d= (lower case) and whether it passed. */
static void verify_sink_for_dmarc(const struct dkim_check_result *res,
                                  struct dmarc_dkim_results *out)
{
    out->n = 0;
    for (size_t i = 0; i < res->nsigs && out->n < DMARC_DKIM_MAX; i++, out->n++) {
        char *d = out->sigs[out->n].domain;
        snprintf(d, sizeof out->sigs[out->n].domain, "%s", res->sigs[i].domain);
        for (; *d != '\0'; d++)
            *d = (char)tolower((unsigned char)*d);
        out->sigs[out->n].pass = res->sigs[i].verdict == DKIM_CHECK_PASS;
    }
}

/* The signatures are checked: their results go into Authentication-Results. The check frees
 * itself after this returns. */
static void verify_sink_on_checked(void *arg, const struct dkim_check_result *res)
{
    struct verify_sink *v = arg;
    if (v->t.orphaned) {
        free(v);
        return;
    }
    verify_sink_log(v, res);
    dkim_check_result_format(res, body_end_result(v->end));
    verify_sink_for_dmarc(res, &v->end->dkim);
    body_sink_done(&v->t.sink, &accepted);
}

static void verify_sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct verify_sink *v = container_of(sink, struct verify_sink, t.sink);
    v->end = end;
    dkim_check_finish(v->check, verify_sink_on_checked, v);
}

static void verify_sink_free(struct body_sink *sink)
{
    struct verify_sink *v = container_of(sink, struct verify_sink, t.sink);
    if (!tx_sink_release(&v->t))
        return;
    dkim_check_abort(v->check);
    free(v);
}

static const struct body_sink_ops verify_sink_ops = {.name = "dkim-verify",
                                                     .write = verify_sink_write,
                                                     .finish = verify_sink_finish,
                                                     .free = verify_sink_free};

static struct body_sink *verify_sink_new(const struct smtp_sink_context *ctx)
{
    if (!ctx->inbound || !ctx->cfg->inbound.dkim_verify || ctx->srv->dkim_checker == NULL ||
        signs(ctx))
        return NULL;
    struct verify_sink *v = tx_sink_new(sizeof *v, &verify_sink_ops, ctx);
    v->check =
        dkim_check_new(ctx->srv->loop, ctx->srv->dkim_checker, &ctx->srv->dns, ctx->queue_id);
    return &v->t.sink;
}

/* ---- the table ---- */

/* Each returns NULL when its check does not apply to the message. In finishing order: the
 * attachment check answers at once, clamd before the DKIM verification, DMARC after it (it
 * needs its results), signing last. */
static struct body_sink *(*const check_sinks[])(const struct smtp_sink_context *ctx) = {
    mime_sink_new, clamd_sink_new, verify_sink_new, smtp_dmarc_sink_new, sign_sink_new,
};

void smtp_sinks_add_checks(struct body_sinks *set, const struct smtp_sink_context *ctx)
{
    for (size_t i = 0; i < ARRAY_LEN(check_sinks); i++) {
        struct body_sink *sink = check_sinks[i](ctx);
        if (sink != NULL)
            body_sinks_add(set, sink);
    }
}

/* ---- the spool ---- */

struct store_sink {
    struct tx_sink t;
    struct spool_msg *msg; /* the spool's once the commit has started */
    uint64_t size;         /* of the committed message */
    uint64_t commit_ns;    /* uv_hrtime() when the commit started, for the metrics */
};

static void store_sink_on_writable(struct spool_msg *msg, void *arg)
{
    body_sink_writable(arg);
}

static int store_sink_write(struct body_sink *sink, const char *data, size_t len)
{
    struct store_sink *st = container_of(sink, struct store_sink, t.sink);
    if (st->t.srv->space != NULL)
        spool_space_written(st->t.srv->space, len);
    return spool_msg_append(st->msg, data, len, store_sink_on_writable, sink);
}

/* The client left while we synced. The message is durable (or failed) all the same; it was never
 * acknowledged, so a duplicate is the worst outcome. */
static void store_sink_on_orphan_committed(struct store_sink *st, struct spool_msg *msg, int status)
{
    struct smtp_server *srv = st->t.srv;
    if (status == 0) {
        log_msg(LOG_WARN, "smtp.accepted_unacknowledged", "queue id %s: client gone before 250",
                spool_msg_id(msg));
        if (srv->scheduler != NULL)
            scheduler_add_id(srv->scheduler, spool_msg_id(msg));
    }
    free(st);
}

static void store_sink_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct store_sink *st = arg;
    mail_metrics_spool_commit(uv_hrtime() - st->commit_ns, status == 0);
    if (st->t.orphaned) {
        store_sink_on_orphan_committed(st, msg, status);
        return;
    }
    st->size = spool_msg_size(msg);
    if (status == 0) {
        body_sink_done(&st->t.sink, &accepted);
        return;
    }
    /* Nothing of it is kept (the spool removed the file), and no other message is touched. */
    int full = status == -ENOSPC || status == -EDQUOT;
    struct policy_decision d = full ? refusal(452, "4.3.1", "Insufficient system storage", NULL)
                                    : refusal(451, "4.3.0", "Error: queue file write error", NULL);
    log_msg(LOG_ERROR, "spool.commit_failed", "session %llu: %s", (unsigned long long)st->t.session,
            strerror(-status));
    if (full && st->t.srv->space != NULL)
        spool_space_refresh(st->t.srv->space); /* so that the next MAIL knows */
    body_sink_done(&st->t.sink, &d);
}

static void store_sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct store_sink *st = container_of(sink, struct store_sink, t.sink);
    struct buf front = BUF_INIT;
    body_end_front(end, &front);
    if (front.len > 0) /* DKIM signing checked that its fields fit; ours are far below the cap */
        (void)spool_msg_prepend(st->msg, front.data, front.len);
    buf_free(&front);
    st->commit_ns = uv_hrtime();
    spool_msg_commit(st->msg, store_sink_on_committed, st); /* never reports from inside */
}

static void store_sink_free(struct body_sink *sink)
{
    struct store_sink *st = container_of(sink, struct store_sink, t.sink);
    if (!tx_sink_release(&st->t))
        return;
    spool_msg_abort(st->msg);
    free(st);
}

static const struct body_sink_ops store_sink_ops = {.name = "spool",
                                                    .stored = 1,
                                                    .write = store_sink_write,
                                                    .finish = store_sink_finish,
                                                    .free = store_sink_free};

struct body_sink *smtp_store_new(const struct smtp_sink_context *ctx, struct spool_msg *msg)
{
    struct store_sink *st = tx_sink_new(sizeof *st, &store_sink_ops, ctx);
    st->msg = msg;
    return &st->t.sink;
}

uint64_t smtp_store_size(const struct body_sink *store)
{
    return container_of(store, const struct store_sink, t.sink)->size;
}

/* ---- a report for the feedback addresses ---- */

struct report_sink {
    struct tx_sink t;
    struct feedback_read *read; /* NULL once it reported */
    char client[INET6_ADDRSTRLEN];
};

static int report_sink_write(struct body_sink *sink, const char *data, size_t len)
{
    feedback_read_write(container_of(sink, struct report_sink, t.sink)->read, data, len);
    return 0;
}

static void report_sink_on_read(void *arg, const struct feedback_outcome *out)
{
    struct report_sink *rs = arg;
    struct smtp_server *srv = rs->t.srv;
    rs->read = NULL; /* frees itself after this returns */
    struct feedback_site site = {.loop = srv->loop,
                                 .alarm = &srv->feedback_alarm,
                                 .spool = srv->spool,
                                 .scheduler = &srv->scheduler,
                                 .client = rs->client,
                                 .suppression = srv->suppression};
    feedback_report_handle(rs->t.cfg, out, &site);
    body_sink_done(&rs->t.sink, &accepted);
}

static void report_sink_finish(struct body_sink *sink, struct body_end *end)
{
    struct report_sink *rs = container_of(sink, struct report_sink, t.sink);
    feedback_read_finish(rs->read, report_sink_on_read, rs);
}

static void report_sink_free(struct body_sink *sink)
{
    struct report_sink *rs = container_of(sink, struct report_sink, t.sink);
    feedback_read_free(rs->read); /* a read in flight reports to nobody */
    free(rs);
}

static const struct body_sink_ops report_sink_ops = {.name = "feedback",
                                                     .write = report_sink_write,
                                                     .finish = report_sink_finish,
                                                     .free = report_sink_free};

struct body_sink *smtp_report_new(const struct smtp_sink_context *ctx)
{
    struct report_sink *rs = tx_sink_new(sizeof *rs, &report_sink_ops, ctx);
    rs->read = feedback_read_new(ctx->srv->loop, ctx->cfg, ctx->verp);
    snprintf(rs->client, sizeof rs->client, "%s", ctx->client_text);
    return &rs->t.sink;
}
