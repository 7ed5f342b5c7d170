/*
 * Inbound SMTP: the transaction. MAIL opens it, RCPT asks the relay decision for each recipient,
 * DATA streams the message through the DATA decoder to the transaction's body sinks (smtp_sinks.h:
 * the checks, DKIM signing and, last, the spool) with a Received: header in front, and at the
 * final dot finishes them in turn (BDAT's chunks, smtp_chunking.c, take the same way from the
 * body's start). The 250 goes out only once the spool's sink reports the commit, when the message
 * is durable.
 */
#include "mta/server/smtp_session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/header_filter.h"
#include "lib/log.h"
#include "lib/smtp_addr.h"
#include "lib/xalloc.h"
#include "mta/delivery/postmaster.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/scheduler.h"
#include "mta/feedback/feedback_intake.h"
#include "mta/feedback/trace.h"
#include "mta/feedback/trace_header.h"
#include "mta/server/smtp_rcpt_ahead.h"
#include "mta/server/smtp_sinks.h"
#include "mta/server/smtp_tx_suppress.h"
#include "mta/server/submit.h"
#include "policy/dnsbl.h"
#include "policy/rcpt_policy.h"
#include "policy/relay.h"
#include "policy/sender_domain.h"
#include "policy/spf.h"
#include "policy/verify.h"
#include "spool/spool_space.h"

static void tx_on_sinks_writable(void *arg);
static void tx_on_sinks_done(void *arg, const struct body_outcome *out);
static void rcpt_lookup_cancel(struct rcpt_lookup *l);

void smtp_tx_free(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx == NULL)
        return;
    /* The reference taken for the sinks' finish: none of them reports any more. */
    int unref = body_sinks_waiting(&tx->sinks);
    body_sinks_free(&tx->sinks); /* rolls back an uncommitted message */
    spf_check_free(tx->spf);     /* cancels a check in flight */
    sender_domain_check_free(tx->sender_check);
    verify_cancel(tx->verify);
    rcpt_lookup_cancel(tx->suppression_lookup);
    rcpt_ahead_free(tx->suppression_ahead);
    free(tx->auth_results);
    header_filter_free(tx->ar_filter);
    trace_header_free(tx->trace);
    buf_free(&tx->front);
    smtp_tx_suppress_free(tx->suppress);
    buf_free(&tx->held);
    free(tx->sender);
    for (size_t i = 0; i < tx->nrcpts; i++)
        free(tx->rcpts[i]);
    free(tx->rcpts);
    smtp_tx_dsn_free(&tx->dsn);
    free(tx);
    s->tx = NULL;
    s->sinks_paused = 0;
    if (unref)
        smtp_session_unref(s);
}

void smtp_log_rejected(struct smtp_session *s, const char *stage, int code, const char *text,
                       const char *rule, const char *addr)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.rejected");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "stage", stage);
    log_int(&r, "code", code);
    log_str(&r, "text", text);
    if (rule != NULL)
        log_str(&r, "rule", rule);
    if (addr != NULL)
        log_str(&r, "address", addr);
    log_end(&r);
}

/* ---- MAIL ---- */

/* Applies MAIL's ESMTP parameters to tx; replies and returns -1 on a bad one. */
static int mail_params(struct smtp_session *s, const struct smtp_path_args *args,
                       struct smtp_tx *tx)
{
    for (size_t i = 0; i < args->nparams; i++) {
        const struct smtp_param *p = &args->params[i];
        const char *why;
        int rc;
        for (size_t j = 0; j < i; j++) {
            if (p->key.len == args->params[j].key.len &&
                strncasecmp(p->key.ptr, args->params[j].key.ptr, p->key.len) == 0) {
                smtp_reply(s, 501, "5.5.4", "Error: duplicate parameter %.*s", (int)p->key.len,
                           p->key.ptr);
                return -1;
            }
        }
        if (p->key.len == 4 && strncasecmp(p->key.ptr, "SIZE", 4) == 0) {
            char *end;
            char digits[24];
            if (p->value.len == 0 || p->value.len >= sizeof digits) {
                smtp_reply(s, 501, "5.5.4", "Error: bad SIZE parameter");
                return -1;
            }
            memcpy(digits, p->value.ptr, p->value.len);
            digits[p->value.len] = '\0';
            errno = 0;
            unsigned long long size = strtoull(digits, &end, 10);
            if (*end != '\0' || digits[0] < '0' || digits[0] > '9') {
                smtp_reply(s, 501, "5.5.4", "Error: bad SIZE parameter");
                return -1;
            }
            /* RFC 1870 allows 20 digits: a value past 2^64 is simply too big. */
            if (errno == ERANGE || size > s->cfg->limits.max_message_size) {
                smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
                return -1;
            }
            tx->declared_size = size;
        } else if (p->key.len == 4 && strncasecmp(p->key.ptr, "BODY", 4) == 0) {
            if (p->value.len == 8 && strncasecmp(p->value.ptr, "8BITMIME", 8) == 0)
                tx->env_flags |= SPOOL_ENV_8BITMIME;
            else if (p->value.len == 10 && strncasecmp(p->value.ptr, "BINARYMIME", 10) == 0)
                tx->env_flags |= SPOOL_ENV_BINARYMIME;
            else if (!(p->value.len == 4 && strncasecmp(p->value.ptr, "7BIT", 4) == 0)) {
                smtp_reply(s, 501, "5.5.4", "Error: unsupported BODY type");
                return -1;
            }
        } else if (p->key.len == 8 && strncasecmp(p->key.ptr, "SMTPUTF8", 8) == 0 &&
                   p->value.ptr == NULL) {
            tx->env_flags |= SPOOL_ENV_SMTPUTF8;
        } else if ((rc = smtp_tx_dsn_mail_param(&tx->dsn, p, &why)) != 0) {
            if (rc < 0) {
                smtp_reply(s, 501, "5.5.4", "%s", why);
                return -1;
            }
        } else if (p->key.len == 4 && strncasecmp(p->key.ptr, "AUTH", 4) == 0 &&
                   p->value.ptr != NULL) {
            /* RFC 4954 §5: the submitter's identity claimed by a relaying client. We trust only
             * our own AUTH, so the value is accepted and dropped, never stored or passed on. */
        } else {
            smtp_reply(s, 555, "5.5.4", "Error: unsupported parameter %.*s", (int)p->key.len,
                       p->key.ptr);
            return -1;
        }
    }
    return 0;
}

static int has_smtputf8(const struct smtp_path_args *args)
{
    return smtp_param_find(args, "SMTPUTF8") != NULL;
}

static void mail_refuse(struct smtp_session *s, const struct policy_decision *d, const char *check);

/* SPF decides MAIL of an inbound session. Under reject_fail a temporary error is a 451 too: the
 * sender retries, and a fail seen later is still refused. */
static void mail_on_spf(void *arg, const struct spf_result *res)
{
    struct smtp_session *s = arg;
    struct smtp_tx *tx = s->tx;
    char frag[SMTP_PATH_MAX + 64];
    spf_result_format(res, frag, sizeof frag);
    tx->auth_results = xstrdup(frag);
    tx->spf_result = res; /* for DMARC at end of data */

    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.spf");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "result", spf_status_name(res->status));
    log_str(&r, "identity", res->identity);
    log_str(&r, "domain", res->domain);
    log_str(&r, "reason", res->reason);
    log_end(&r);

    struct policy_decision d = spf_verdict(res, s->cfg->inbound.spf);
    if (s->cfg->inbound.spf == SPF_REJECT_FAIL && res->status == SPF_TEMPERROR) {
        d.verdict = POLICY_TEMPFAIL, d.code = 451, d.enhanced = "4.4.3";
        d.text = "SPF temporary error: DNS lookup failed, try again later";
    }
    if (d.verdict == POLICY_ACCEPT) {
        smtp_set_state(s, SMTP_PHASE_MAIL, SMTP_WAIT_NONE);
        smtp_reply(s, 250, "2.1.0", "Ok");
    } else {
        mail_refuse(s, &d, "spf");
    }
    smtp_resume_input(s); /* also writes the reply */
}

/* MAIL is refused by `check`: the reply, the log, and the session reads commands again. */
static void mail_refuse(struct smtp_session *s, const struct policy_decision *d, const char *check)
{
    smtp_reply(s, d->code, d->enhanced, "%s", d->text);
    smtp_log_rejected(s, "mail", d->code, d->text, check, s->tx->sender);
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
}

/* A check of the sender could not start: 451, as for a DNS failure. */
static void mail_check_unavailable(struct smtp_session *s, const char *check)
{
    struct policy_decision d = {.verdict = POLICY_TEMPFAIL,
                                .code = 451,
                                .enhanced = "4.4.3",
                                .text = "Temporary failure: DNS unavailable, try again later"};
    mail_refuse(s, &d, check);
}

/* The inbound checks of the sender, in turn: its domain (when asked for), then SPF. Each that
 * runs holds input until its verdict (SMTP_WAIT_MAIL_CHECK); the last one accepting answers 250.
 * Returns 1 when a check is running, else 0 after replying. */
static int mail_check_spf(struct smtp_session *s)
{
    if (s->cfg->inbound.spf == SPF_IGNORE) {
        smtp_set_state(s, SMTP_PHASE_MAIL, SMTP_WAIT_NONE);
        smtp_reply(s, 250, "2.1.0", "Ok");
        return 0;
    }
    if (s->srv->dns == NULL ||
        spf_check_start(s->srv->dns, (const struct sockaddr *)&s->peer, s->helo, s->tx->sender,
                        s->cfg->server.hostname, mail_on_spf, s, &s->tx->spf) < 0) {
        mail_check_unavailable(s, "spf");
        return 0;
    }
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_MAIL_CHECK);
    return 1;
}

static void mail_on_sender_domain(void *arg, enum dns_status status)
{
    struct smtp_session *s = arg;
    struct smtp_tx *tx = s->tx;
    sender_domain_check_free(tx->sender_check);
    tx->sender_check = NULL;
    const char *domain = strrchr(tx->sender, '@') + 1;

    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.sender_domain");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "domain", domain);
    log_str(&r, "result", dns_status_name(status));
    log_end(&r);

    struct policy_decision d = sender_domain_verdict(status);
    if (d.verdict != POLICY_ACCEPT)
        mail_refuse(s, &d, "sender_domain");
    else if (mail_check_spf(s))
        return;           /* input stays paused for SPF */
    smtp_resume_input(s); /* also writes the reply */
}

/* Starts the checks of the sender of the MAIL just accepted (s->tx) on an inbound listener. */
static void mail_checks_start(struct smtp_session *s)
{
    const char *at = strrchr(s->tx->sender, '@');
    if (!s->cfg->inbound.reject_unknown_sender_domain || at == NULL || at[1] == '[') {
        if (mail_check_spf(s)) /* the null sender and address literals have no domain to ask */
            smtp_pause_input(s);
        return;
    }
    if (s->srv->dns == NULL || sender_domain_check_start(s->srv->dns, at + 1, mail_on_sender_domain,
                                                         s, &s->tx->sender_check) < 0) {
        mail_check_unavailable(s, "sender_domain");
        return;
    }
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_MAIL_CHECK);
    smtp_pause_input(s);
}

/* spool.low_space is logged at most this often while MAIL is refused for space. */
#define LOW_SPACE_LOG_INTERVAL_MS 60000

/* What MAIL must find free: limits.spool_min_free, capped at spool_min_free_percent of the file
 * system (so the default does not refuse all mail on a small disk), plus the declared SIZE=. */
static uint64_t storage_required(const struct config *cfg, const struct spool_space_figure *fig,
                                 uint64_t declared)
{
    uint64_t keep = cfg->limits.spool_min_free;
    uint64_t cap = fig->total / 100 * cfg->limits.spool_min_free_percent;
    return (cap < keep ? cap : keep) + declared;
}

/* The free space check at MAIL, like Postfix's queue_minfree, on the cached figure. Returns 1
 * after replying 452 4.3.1 (RFC 1870 §6.2 for a SIZE= that does not fit). While the figure is
 * unknown MAIL passes: a write that fails at the end of data is answered 452 all the same. */
static int mail_storage_refused(struct smtp_session *s, uint64_t declared, const char *sender)
{
    struct smtp_server *srv = s->srv;
    struct spool_space_figure fig;
    if (srv->space == NULL || spool_space_get(srv->space, &fig) < 0)
        return 0;
    uint64_t required = storage_required(s->cfg, &fig, declared);
    struct logrec r;
    if (fig.available >= required) {
        if (srv->low_space) {
            log_begin(&r, LOG_INFO, "spool.space_ok");
            log_int(&r, "available", (long long)fig.available);
            log_end(&r);
            srv->low_space = 0;
        }
        return 0;
    }
    srv->low_space = 1;
    srv->low_space_refused++;
    uint64_t now = uv_now(srv->loop);
    if (srv->low_space_logged == 0 || now - srv->low_space_logged >= LOW_SPACE_LOG_INTERVAL_MS) {
        log_begin(&r, LOG_WARN, "spool.low_space");
        log_int(&r, "available", (long long)fig.available);
        log_int(&r, "required", (long long)required);
        log_int(&r, "refused", srv->low_space_refused); /* since the last spool.low_space */
        log_end(&r);
        srv->low_space_logged = now;
        srv->low_space_refused = 0;
    }
    smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
    smtp_log_rejected(s, "mail", 452, "insufficient system storage", "limits.spool_min_free",
                      sender);
    return 1;
}

void smtp_cmd_mail(struct smtp_session *s, struct smtp_slice arg)
{
    struct smtp_path_args args;
    if (smtp_cmd_parse_path_args(arg, "FROM:", &args) < 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
        smtp_peer_error(s);
        return;
    }
    struct smtp_addr from;
    const char *why = "bad address";
    unsigned options = SMTP_ADDR_ALLOW_NULL | (has_smtputf8(&args) ? SMTP_ADDR_ALLOW_UTF8 : 0);
    if (smtp_addr_parse(args.path.ptr, args.path.len, options, &from, &why) < 0) {
        smtp_reply(s, 501, "5.1.7", "Bad sender address syntax: %s", why);
        smtp_log_rejected(s, "mail", 501, why, "builtin.address_syntax", NULL);
        smtp_peer_error(s);
        return;
    }
    struct smtp_tx *tx = xcalloc(1, sizeof *tx);
    if (mail_params(s, &args, tx) < 0) {
        smtp_tx_dsn_free(&tx->dsn);
        free(tx);
        smtp_peer_error(s);
        return;
    }
    char text[SMTP_PATH_MAX + 8];
    smtp_addr_format(&from, text, sizeof text);
    if (mail_storage_refused(s, tx->declared_size, text)) {
        smtp_tx_dsn_free(&tx->dsn);
        free(tx);
        return;
    }
    tx->sender = xstrdup(text);
    s->tx = tx;
    if (s->inbound) {
        mail_checks_start(s);
        return;
    }
    smtp_set_state(s, SMTP_PHASE_MAIL, SMTP_WAIT_NONE);
    smtp_reply(s, 250, "2.1.0", "Ok");
}

/* ---- RCPT ---- */

/* What rcpt_policy_decide reads, as the session knows it; the DNSBL's verdict goes to *dnsbl. */
static void rcpt_facts_gather(struct smtp_session *s, struct policy_decision *dnsbl,
                              struct rcpt_facts *f)
{
    *f = (struct rcpt_facts){
        .cfg = s->cfg,
        .listener = s->listener,
        .client = (const struct sockaddr *)&s->peer,
        .auth_user = s->auth_user,
        .smtputf8 = (s->tx->env_flags & SPOOL_ENV_SMTPUTF8) != 0,
        .nrcpts = s->tx->nrcpts,
        .suppression = s->srv->suppression,
        .tenant = s->auth_user, /* a tenancy field comes only with the message, after RCPT */
        .now = time(NULL),
        .no_resolver = s->no_resolver,
        .rdns = s->rdns_done      ? RCPT_RDNS_ANSWERED
                : s->rdns != NULL ? RCPT_RDNS_PENDING
                                  : RCPT_RDNS_NOT_ASKED,
        .rdns_verdict = s->rdns_verdict,
        .recipients = s->srv->recipients,
        .no_verifier = s->srv->verifier == NULL,
    };
    if (s->dnsbl != NULL && s->dnsbl_done) {
        *dnsbl = dnsbl_check_verdict(s->dnsbl);
        f->dnsbl = dnsbl;
    }
}

/* A refusal by the policy: the reply; the log, except for a malformed command; and the client's
 * error count, except at the recipient cap. */
static void rcpt_refused(struct smtp_session *s, const struct rcpt_decision *r)
{
    smtp_reply(s, r->d.code, r->d.enhanced, "%s", r->d.text);
    if (r->stage >= RCPT_STAGE_ADDRESS)
        smtp_log_rejected(s, "rcpt", r->d.code, r->reason, r->check,
                          r->addr[0] != '\0' ? r->addr : NULL);
    if (r->stage == RCPT_STAGE_LIMIT)
        return;
    if (r->stage >= RCPT_STAGE_ADDRESS)
        s->tx->nrcpts_rejected++;
    smtp_peer_error(s);
}

static void rcpt_accept(struct smtp_session *s, const char *addr)
{
    struct smtp_tx *tx = s->tx;
    /* A report is read, not delivered: its transaction holds feedback addresses only. The others
     * come again in a transaction of their own (RFC 5321 §4.5.3.1.10). */
    int report = s->inbound && feedback_is_address(s->cfg, addr);
    if (tx->nrcpts > 0 && report != tx->report) {
        smtp_reply(s, 452, "4.5.3", "Error: feedback addresses take a transaction of their own");
        smtp_set_state(s, SMTP_PHASE_RCPT, SMTP_WAIT_NONE);
        return;
    }
    tx->report = report;
    tx->rcpts = xrealloc(tx->rcpts, (tx->nrcpts + 1) * sizeof *tx->rcpts);
    /* Our postmaster addresses reach a person: server.postmaster, when set. */
    const char *spooled = postmaster_redirect(s->cfg, addr);
    tx->rcpts[tx->nrcpts++] = xstrdup(spooled);
    smtp_tx_dsn_accept(&tx->dsn, spooled != addr ? addr : NULL);
    smtp_set_state(s, SMTP_PHASE_RCPT, SMTP_WAIT_NONE);
    smtp_reply(s, 250, "2.1.5", "Ok");
}

/* Logs the verification's answer; refuses (replies, returns -1) unless the address is valid. */
static int rcpt_verified(struct smtp_session *s, const struct verify_result *res)
{
    static const char *const names[] = {[VERIFY_VALID] = "valid",
                                        [VERIFY_INVALID] = "invalid",
                                        [VERIFY_TEMPFAIL] = "tempfail",
                                        [VERIFY_SKIPPED] = "skipped"};
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.verify");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "address", res->rcpt);
    log_str(&r, "result", names[res->status]);
    log_bool(&r, "cached", res->cached);
    log_str(&r, "reason", res->reason);
    log_end(&r);
    if (res->status == VERIFY_VALID || res->status == VERIFY_SKIPPED)
        return 0;
    smtp_reply(s, res->code, res->enhanced, "%s", res->text);
    smtp_log_rejected(s, "rcpt", res->code, res->text, "verify", res->rcpt);
    return -1;
}

static void rcpt_on_verify(void *arg, const struct verify_result *res)
{
    struct smtp_session *s = arg;
    s->tx->verify = NULL;
    if (rcpt_verified(s, res) == 0) {
        rcpt_accept(s, res->rcpt);
    } else {
        s->tx->nrcpts_rejected++;
        smtp_peer_error(s);
    }
    smtp_resume_input(s); /* also writes the reply */
}

/* The policy's last stage: asks dom's deliver_to about addr. 0 valid at once (cached), -1 refused
 * (replied), 1 waiting for a probe with input paused, like SPF at MAIL, so pipelined commands keep
 * their order. */
static int rcpt_verify(struct smtp_session *s, const struct config_domain *dom, const char *addr)
{
    struct verify_query q = {
        .deliver_to = dom->deliver_to,
        .rcpt = addr,
        .ehlo = s->cfg->server.hostname,
        .default_port = (uint16_t)s->cfg->delivery.port,
        .dns = s->srv->dns,
        .positive_ttl_ms = s->cfg->inbound.verify_positive_ttl_ms,
        .negative_ttl_ms = s->cfg->inbound.verify_negative_ttl_ms,
    };
    struct verify_result now;
    if (verify_check(s->srv->verifier, &q, rcpt_on_verify, s, &s->tx->verify, &now) == 0)
        return rcpt_verified(s, &now);
    smtp_pause_input(s);
    return 1;
}

/* RCPT's DSN parameters (RFC 3461) are the session's: they are kept for the recipient, and the
 * policy sees the path alone. Returns -1 after replying to a bad one. */
static int rcpt_dsn_params(struct smtp_session *s, struct smtp_slice *arg)
{
    const char *why;
    if (smtp_tx_dsn_rcpt_arg(&s->tx->dsn, arg, &why) == 0)
        return 0;
    smtp_reply(s, 501, "5.5.4", "%s", why);
    smtp_peer_error(s);
    return -1;
}

/* Answers RCPT once the policy has decided r; 1 when the answer waits for a verification probe
 * (input paused), else 0. */
static int rcpt_decided(struct smtp_session *s, const struct rcpt_decision *r)
{
    struct smtp_tx *tx = s->tx;
    if (r->listed_by != NULL) {
        struct logrec rec;
        log_begin(&rec, LOG_INFO, "smtp.rcpt_checked");
        log_int(&rec, "session", (long long)s->id);
        log_str(&rec, "address", r->addr);
        log_str(&rec, "rule", r->listed_by);
        log_end(&rec);
    }
    if (r->stage == RCPT_STAGE_SUPPRESSED && r->suppressed_by != NULL)
        smtp_log_suppressed(s, s->auth_user != NULL ? s->auth_user : "", r, "rcpt");
    if (r->outcome == RCPT_REFUSE) {
        rcpt_refused(s, r);
        return 0;
    }
    if (r->outcome == RCPT_DROP) { /* the client is told nothing; the message goes to the rest */
        tx->nrcpts_dropped++;
        smtp_set_state(s, SMTP_PHASE_RCPT, SMTP_WAIT_NONE);
        smtp_reply(s, 250, "2.1.5", "Ok");
        return 0;
    }
    int verdict = r->outcome == RCPT_NEED_VERIFY ? rcpt_verify(s, r->verify_domain, r->addr) : 0;
    if (verdict == 1)
        return 1; /* answered once the probe is */
    if (verdict < 0) {
        tx->nrcpts_rejected++;
        smtp_peer_error(s);
        return 0;
    }
    rcpt_accept(s, r->addr);
    return 0;
}

/* A RCPT waiting for the suppression list, read on the thread pool (a page of the map not in
 * memory would hold the loop up): input is paused meanwhile, so pipelined commands keep their
 * order, as for verification. The RCPTs pipelined behind it are read in the same batch
 * (smtp_rcpt_ahead.h). */
struct rcpt_lookup {
    struct smtp_session *s;
    struct suppression_batch *batch; /* its address, then tx->suppression_ahead's */
    struct rcpt_decision r;
};

static void rcpt_lookup_cancel(struct rcpt_lookup *l)
{
    if (l == NULL)
        return;
    suppression_batch_cancel(l->batch);
    free(l);
}

static void rcpt_on_suppression(void *arg, const struct suppression_answer *answers, size_t n)
{
    struct rcpt_lookup *l = arg;
    struct smtp_session *s = l->s;
    s->tx->suppression_lookup = NULL;
    if (n > 1)
        rcpt_ahead_answered(s->tx->suppression_ahead, answers + 1);
    struct policy_decision dnsbl;
    struct rcpt_facts facts;
    rcpt_facts_gather(s, &dnsbl, &facts);
    rcpt_policy_suppressed(&facts, answers[0].found, answers[0].entry, &l->r);
    int waits = rcpt_decided(s, &l->r);
    free(l);
    if (!waits)
        smtp_resume_input(s); /* also writes the reply */
}

/* Starts the read of the list for r; 0 when it runs (input paused), -1 when it could not start. */
static int rcpt_lookup_start(struct smtp_session *s, const struct rcpt_facts *f,
                             const struct rcpt_decision *r)
{
    struct rcpt_lookup *l = xcalloc(1, sizeof *l);
    l->s = s;
    l->r = *r; /* its texts so far are static: the relay decision's */
    struct smtp_tx *tx = s->tx;
    rcpt_ahead_free(tx->suppression_ahead);
    size_t room = s->cfg->limits.max_recipients_per_message;
    tx->suppression_ahead = rcpt_ahead_scan(s->ahead, f, room > f->nrcpts ? room - f->nrcpts : 0);
    size_t n = 1 + rcpt_ahead_count(tx->suppression_ahead);
    const char **addresses = xmalloc(n * sizeof *addresses);
    addresses[0] = r->addr;
    for (size_t i = 1; i < n; i++)
        addresses[i] = rcpt_ahead_address(tx->suppression_ahead, i - 1);
    l->batch = suppression_batch_start(f->suppression, f->tenant, addresses, n, f->now,
                                       rcpt_on_suppression, l);
    free(addresses);
    if (l->batch == NULL) {
        rcpt_ahead_free(tx->suppression_ahead);
        tx->suppression_ahead = NULL;
        free(l);
        return -1;
    }
    s->tx->suppression_lookup = l;
    smtp_pause_input(s);
    return 0;
}

void smtp_cmd_rcpt(struct smtp_session *s, struct smtp_slice arg)
{
    if (rcpt_dsn_params(s, &arg) < 0)
        return;
    struct policy_decision dnsbl;
    struct rcpt_facts facts;
    rcpt_facts_gather(s, &dnsbl, &facts);
    struct rcpt_decision r;
    rcpt_policy_decide(&facts, arg, &r);
    if (r.outcome == RCPT_NEED_SUPPRESSION) {
        int found;
        const struct suppression_entry *e;
        if (rcpt_ahead_take(s->tx->suppression_ahead, r.addr, &found, &e))
            rcpt_policy_suppressed(&facts, found, e, &r); /* read with a RCPT before it */
        else if (rcpt_lookup_start(s, &facts, &r) == 0)
            return; /* answered once the list is read */
        else
            rcpt_policy_suppressed(&facts, -EAGAIN, NULL, &r);
    }
    rcpt_decided(s, &r);
}

/* ---- DATA ---- */

static const char *protocol_name(const struct smtp_session *s)
{
    /* RFC 3848 "with" keywords (and RFC 6531's UTF8 variants); "A" when authenticated, which
     * needs EHLO and TLS here. */
    static const char *const names[2][2][2] = {
        /* [utf8][tls][auth] */
        {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
        {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
    };
    if (!s->esmtp)
        return "SMTP";
    int utf8 = (s->tx->env_flags & SPOOL_ENV_SMTPUTF8) != 0;
    return names[utf8][s->tls][s->auth_user != NULL];
}

/* RFC 5321 §4.4 trace header, folded so no line nears the text-line limit. */
static void received_header(struct smtp_session *s, const char *queue_id, struct buf *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);

    buf_printf(out, "Received: from %s (%s%s%s)\r\n", s->helo,
               s->peer.ss_family == AF_INET6 ? "[IPv6:" : "[", s->client_addr, "]");
    if (s->tls)
        buf_printf(out, "\t(using %s with cipher %s)\r\n", stream_tls_version(&s->stream),
                   stream_tls_cipher(&s->stream));
    buf_printf(out, "\tby %s (Sluice, listener %s) with %s id %s", s->cfg->server.hostname,
               s->listener->name, protocol_name(s), queue_id);
    if (s->tx->nrcpts == 1)
        buf_printf(out, "\r\n\tfor <%s>", s->tx->rcpts[0]);
    buf_printf(out, ";\r\n\t%s\r\n", date);
}

/* A tenancy name the header section gave, else NULL. */
static const char *tx_named(const char *name)
{
    return name != NULL && name[0] != '\0' ? name : NULL;
}

/* The message's envelope as the transaction knows it (strings borrowed from s and tx): its tenant
 * is the authenticated user's, or what the header section named once it has passed. */
static struct spool_envelope tx_envelope(const struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    return (struct spool_envelope){
        .sender = tx->sender,
        .rcpts = (const char *const *)tx->rcpts,
        .nrcpts = tx->nrcpts,
        .client_addr = s->client_addr,
        .helo = s->helo,
        .auth_user = s->auth_user,
        .listener = s->listener->name,
        .tenant = s->auth_user != NULL ? s->auth_user
                  : tx->trace != NULL  ? tx_named(trace_header_tenant(tx->trace))
                                       : NULL,
        .campaign = tx->trace != NULL ? tx_named(trace_header_campaign(tx->trace)) : NULL,
        .received_at = tx->received_at,
        .flags = tx->env_flags,
        .dsn = smtp_tx_dsn_view(&tx->dsn),
    };
}

/* Issue 5: only mail we relay for its sender (AUTH, or a trusted client of a submission listener)
 * is ours to sign; inbound mail, even for our own domains, never is. */
static int tx_relay_authorized(const struct smtp_session *s)
{
    return policy_relay_authorized(s->cfg, s->listener, (const struct sockaddr *)&s->peer,
                                   s->auth_user)
               .verdict == POLICY_ACCEPT;
}

/* A body sink may ask the writer to wait; input resumes once none does. s->sinks_paused is what
 * the connection side looks at. */
static void tx_backpressure_update(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    int full =
        tx != NULL && (body_sinks_full(&tx->sinks) || smtp_tx_suppress_pending(tx->suppress));
    if (full && !s->sinks_paused) {
        s->sinks_paused = 1;
        smtp_pause_input(s);
        s->reading = 1; /* still wanted: resumed when every sink has room */
    } else if (!full && s->sinks_paused) {
        s->sinks_paused = 0;
        if (s->wait == SMTP_WAIT_NONE) /* else the end of the wait resumes input */
            smtp_resume_input(s);
    }
}

static void tx_on_sinks_writable(void *arg)
{
    tx_backpressure_update(arg);
}

int smtp_data_check(struct smtp_session *s, struct smtp_slice arg)
{
    if (arg.len != 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: DATA");
        smtp_peer_error(s);
        return -1;
    }
    if (s->phase == SMTP_PHASE_RCPT &&
        (s->tx->env_flags & SPOOL_ENV_BINARYMIME)) { /* RFC 3030 §3 */
        smtp_reply(s, 503, "5.5.1", "Error: BODY=BINARYMIME is sent with BDAT, not DATA");
        return -1;
    }
    return 0;
}

/* The consumers of the message: the checks that apply to it, then the spool, which owns msg. */
static void tx_sinks_start(struct smtp_session *s, struct spool_msg *msg)
{
    struct smtp_tx *tx = s->tx;
    struct smtp_sink_context ctx = {
        .srv = s->srv,
        .cfg = s->cfg,
        .session = s->id,
        .queue_id = tx->queue_id,
        .client = (const struct sockaddr *)&s->peer,
        .client_text = s->client_addr,
        .sender = tx->sender,
        .spf = tx->spf_result,
        .inbound = s->inbound,
        .relay_authorized = tx_relay_authorized(s),
    };
    tx->trace = trace_header_new(s->cfg, tx->queue_id, s->auth_user,
                                 tx->nrcpts == 1 ? tx->rcpts[0] : NULL, ctx.relay_authorized);
    tx->msg = msg;
    body_sinks_init(&tx->sinks, s->cfg->server.hostname, tx_on_sinks_writable, tx_on_sinks_done, s);
    if (tx->auth_results != NULL) /* SPF's verdict from MAIL */
        buf_append_str(body_end_result(&tx->sinks.end), tx->auth_results);
    smtp_sinks_add_checks(&tx->sinks, &ctx);
    tx->store = smtp_store_new(&ctx, msg);
    body_sinks_add(&tx->sinks, tx->store);
}

/* Relayed mail takes the return path bounce+TRACE@feedback.verp_domain, made from its queue id,
 * so that a late bounce names the message even when it quotes nothing of it. The null sender
 * stays null. */
static void tx_verp(struct smtp_session *s, struct spool_msg *msg, struct spool_envelope *env)
{
    struct smtp_tx *tx = s->tx;
    char verp[SMTP_PATH_MAX + 1];
    if (!tx_relay_authorized(s) || !submit_verp(s->cfg, tx->queue_id, msg, env, verp, sizeof verp))
        return;
    free(tx->sender);
    tx->sender = xstrdup(verp);
}

/* The first recipient of a report that is a VERP return path of ours, else NULL. */
static const char *tx_report_verp(const struct smtp_tx *tx, const struct config *cfg)
{
    const char *token;
    for (size_t i = 0; cfg->feedback.verp_domain != NULL && i < tx->nrcpts; i++)
        if (trace_verp_token(tx->rcpts[i], cfg->feedback.verp_domain, &token) > 0)
            return tx->rcpts[i];
    return NULL;
}

/* A message that is not spooled: a report for the feedback addresses, read by the report sink
 * alone, or one whose every recipient was dropped, read to its end by no sink and discarded. */
static void tx_unspooled_start(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    body_sinks_init(&tx->sinks, s->cfg->server.hostname, tx_on_sinks_writable, tx_on_sinks_done, s);
    if (tx->report) {
        struct smtp_sink_context ctx = {.srv = s->srv,
                                        .cfg = s->cfg,
                                        .session = s->id,
                                        .queue_id = "",
                                        .client_text = s->client_addr,
                                        .verp = tx_report_verp(tx, s->cfg)};
        tx->store = smtp_report_new(&ctx);
        body_sinks_add(&tx->sinks, tx->store);
    }
    tx->received_at = (int64_t)time(NULL);
    tx->data_deadline = uv_now(s->srv->loop) + s->cfg->limits.data_deadline_ms;
}

int smtp_tx_body_start(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx->report || tx->nrcpts == 0) {
        tx_unspooled_start(s);
        return 0;
    }
    tx->received_at = (int64_t)time(NULL);
    struct spool_envelope env = tx_envelope(s);
    struct spool_msg *msg = spool_msg_new(s->srv->spool, &env);
    if (msg == NULL)
        return -1;
    snprintf(tx->queue_id, sizeof tx->queue_id, "%s", spool_msg_id(msg));
    tx_verp(s, msg, &env);
    tx_sinks_start(s, msg);
    if (s->inbound) /* RFC 8601 §5: only our own checks may speak in our name */
        tx->ar_filter = header_filter_new(s->cfg->server.hostname);
    received_header(s, tx->queue_id, &tx->front);
    tx->data_deadline = uv_now(s->srv->loop) + s->cfg->limits.data_deadline_ms;
    return 0;
}

void smtp_cmd_data(struct smtp_session *s, struct smtp_slice arg)
{
    if (smtp_tx_body_start(s) < 0) { /* DATA is allowed only with a recipient */
        smtp_reply(s, 451, "4.3.0", "Error: queue file write error");
        return;
    }
    smtp_data_init(&s->tx->decoder);
    smtp_set_state(s, SMTP_PHASE_DATA, SMTP_WAIT_NONE);
    smtp_arm_timer(s);
    smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* A message refused at the final dot: rolled back, and the session reads commands again. */
static void tx_refuse_after_data(struct smtp_session *s, const struct policy_decision *d)
{
    smtp_reply(s, d->code, d->enhanced, "%s", d->text);
    smtp_log_rejected(s, "data", d->code, d->text, d->rule, NULL);
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
}

/* Every recipient was dropped, at RCPT or by the tenant's list at the end of the header section
 * (suppression drop mode): the client heard 250 for each, so the message is accepted too, and goes
 * nowhere. */
static void tx_discard(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    struct logrec r;
    log_begin(&r, LOG_INFO, "suppression.discarded");
    log_int(&r, "session", (long long)s->id);
    struct spool_envelope env = tx_envelope(s);
    log_str(&r, "tenant", env.tenant != NULL ? env.tenant : "");
    log_str(&r, "from", tx->sender);
    log_int(&r, "rcpts", (long long)tx->nrcpts_dropped);
    log_int(&r, "size", (long long)tx->body_size);
    log_end(&r);
    smtp_reply(s, 250, "2.0.0", "Ok");
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
}

/* The message is complete (the final dot, or the LAST chunk): it is refused at once (and rolled
 * back), discarded, or its sinks finish; the spool's commit comes last and tx_on_committed
 * answers. */
static void tx_end_of_data(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (smtp_tx_suppress_pending(tx->suppress)) { /* answered once the tenant's list is read */
        tx->end_waits = 1;
        smtp_set_state(s, s->phase, SMTP_WAIT_END_OF_DATA);
        uv_timer_stop(&s->timer);
        smtp_pause_input(s);
        return;
    }
    static const struct config_pos builtin = {NULL, 0, 0};
    struct policy_decision refused = {POLICY_REJECT, 0, NULL, NULL, NULL, builtin};
    const struct policy_decision *owed = smtp_tx_suppress_refusal(tx->suppress);
    if (tx->too_big) {
        refused.code = 552, refused.enhanced = "5.3.4";
        refused.text = "Message size exceeds fixed limit";
    } else if (tx->decoder.flags & SMTP_DATA_LONG_LINE) {
        refused.code = 500, refused.enhanced = "5.5.2";
        refused.text = "Error: message line longer than 1000 octets (RFC 5321 4.5.3.1.6)";
    } else if (owed != NULL) {
        refused = *owed;
    }
    if (refused.text != NULL) {
        tx_refuse_after_data(s, &refused);
        return;
    }
    if (tx->nrcpts == 0) {
        tx_discard(s);
        return;
    }
    /* Set first: nothing is read while the sinks finish, even if one has room again meanwhile. */
    smtp_set_state(s, s->phase, SMTP_WAIT_END_OF_DATA);
    struct body_outcome out;
    if (body_sinks_finish(&tx->sinks, &out) == 0) {
        /* The spool's commit never reports at once: an outcome known now is a check's refusal
         * (the attachment check's), and input was never paused for it. */
        tx_refuse_after_data(s, &out.decision);
        return;
    }
    smtp_session_ref(s); /* until tx_on_sinks_done, or smtp_tx_free if the client leaves first */
    uv_timer_stop(&s->timer);
    smtp_pause_input(s);
    smtp_flush(s);
}

/* Scratch for the message on its way to the sinks, reused: the loop runs one callback at a time. */
static struct buf filtered, traced;

static void tx_on_suppress_checked(struct smtp_session *s);

/* Before the first byte of the message: the envelope with the tenant and the campaign its header
 * section named (nothing was written to the spool yet), then our Received:. A tenant named there
 * first has its suppression list read, which may leave no recipient (nothing is stored then). */
static void tx_front_send(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx->front_sent || tx->msg == NULL || smtp_tx_suppress_pending(tx->suppress))
        return; /* a report, every recipient dropped at RCPT, or waiting for the list */
    if (tx->suppress == NULL && tx->trace != NULL) {
        tx->suppress = smtp_tx_suppress_start(s, tx_named(trace_header_tenant(tx->trace)),
                                              tx_on_suppress_checked);
        if (smtp_tx_suppress_pending(tx->suppress)) {
            tx_backpressure_update(s); /* reads no more from the client meanwhile */
            return;
        }
    }
    tx->front_sent = 1;
    tx->unstored = tx->nrcpts == 0 || smtp_tx_suppress_refusal(tx->suppress) != NULL;
    if (!tx->unstored) {
        struct spool_envelope env = tx_envelope(s);
        (void)spool_msg_set_envelope(tx->msg, &env); /* over the caps: the commit fails */
        body_sinks_write_trace(&tx->sinks, tx->front.data, tx->front.len);
    }
    buf_free(&tx->front);
}

/* Message bytes past the trace go to the sinks (returns 1), or wait while the tenant's list is
 * read; none past too_big, or once the list left nothing to store. */
static int tx_sinks_write(struct smtp_session *s, const char *data, size_t len)
{
    struct smtp_tx *tx = s->tx;
    if (tx->too_big || tx->unstored || len == 0)
        return 0;
    if (smtp_tx_suppress_pending(tx->suppress)) {
        buf_append(&tx->held, data, len);
        return 0;
    }
    body_sinks_write(&tx->sinks, data, len);
    return 1;
}

/* The tenant's list has answered: the envelope is final, the bytes held go on, and a message that
 * ended meanwhile is answered. */
static void tx_on_suppress_checked(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    tx_front_send(s);
    struct buf held = tx->held;
    tx->held = (struct buf)BUF_INIT;
    (void)tx_sinks_write(s, held.data, held.len);
    buf_free(&held);
    if (!tx->end_waits) {
        tx_backpressure_update(s); /* reads from the client again */
        return;
    }
    tx->end_waits = 0;
    tx_end_of_data(s);
    if (s->tx == NULL) /* refused or discarded at once: the session goes on */
        smtp_resume_input(s);
}

/* Hands message bytes to the sinks, through the trace of mail we relay. */
static void tx_write_traced(struct smtp_session *s, const char *data, size_t len)
{
    struct smtp_tx *tx = s->tx;
    if (tx->trace != NULL && !trace_header_passing(tx->trace)) {
        buf_reset(&traced);
        trace_header_feed(tx->trace, data, len, &traced);
        data = traced.data, len = traced.len;
    }
    if (len > 0)
        tx_front_send(s);
    if (tx_sinks_write(s, data, len))
        tx_backpressure_update(s);
}

/* Hands message bytes (decoded DATA, or BDAT chunks) to the sinks, forged Authentication-Results
 * fields removed; over limits.max_message_size nothing more is stored. */
void smtp_tx_body_write(struct smtp_session *s, const char *data, size_t len)
{
    struct smtp_tx *tx = s->tx;
    tx->body_size += len;
    if (tx->body_size > s->cfg->limits.max_message_size)
        tx->too_big = 1; /* keep reading to the end, store nothing more */
    if (tx->ar_filter != NULL && !header_filter_passing(tx->ar_filter)) {
        buf_reset(&filtered);
        header_filter_feed(tx->ar_filter, data, len, &filtered);
        data = filtered.data, len = filtered.len;
    }
    tx_write_traced(s, data, len);
    if (filtered.cap > 256 * 1024)
        buf_free(&filtered);
    if (traced.cap > 256 * 1024)
        buf_free(&traced);
}

void smtp_tx_body_end(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx->ar_filter != NULL && !header_filter_passing(tx->ar_filter)) {
        buf_reset(&filtered);
        header_filter_finish(tx->ar_filter, &filtered);
        tx_write_traced(s, filtered.data, filtered.len);
    }
    if (tx->trace != NULL && !trace_header_passing(tx->trace)) { /* a message with no body */
        buf_reset(&traced);
        trace_header_finish(tx->trace, &traced);
        tx_front_send(s);
        (void)tx_sinks_write(s, traced.data, traced.len);
    }
    tx_front_send(s); /* an empty message */
    if (tx->ar_filter != NULL && header_filter_removed(tx->ar_filter) > 0) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "smtp.header_removed");
        log_int(&r, "session", (long long)s->id);
        log_str(&r, "field", "Authentication-Results");
        log_int(&r, "count", header_filter_removed(tx->ar_filter));
        log_end(&r);
    }
    tx_end_of_data(s);
}

size_t smtp_tx_data_feed(struct smtp_session *s, const char *data, size_t len)
{
    static struct buf decoded; /* scratch, as `filtered` */
    int done = 0;
    buf_reset(&decoded);
    size_t used = smtp_data_feed(&s->tx->decoder, data, len, &decoded, &done);
    smtp_tx_body_write(s, decoded.data, decoded.len);
    if (decoded.cap > 256 * 1024)
        buf_free(&decoded);
    if (done)
        smtp_tx_body_end(s);
    return used;
}

/* The message is durable and acknowledged: delivery takes it from here. */
static void tx_hand_to_scheduler(struct smtp_session *s, uint64_t size)
{
    if (s->srv->scheduler == NULL)
        return;
    struct spool_envelope env = tx_envelope(s);
    struct spool_entry entry = {.id = s->tx->queue_id, .env = &env, .body_size = size};
    scheduler_add(s->srv->scheduler, &entry);
}

static void tx_log_accepted(struct smtp_session *s, uint64_t size)
{
    struct smtp_tx *tx = s->tx;
    struct buf rcpts = BUF_INIT;
    for (size_t i = 0; i < tx->nrcpts; i++) {
        if (i > 0)
            buf_append(&rcpts, ",", 1);
        buf_append_str(&rcpts, tx->rcpts[i]);
    }
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.accepted");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "queue_id", tx->queue_id);
    log_str(&r, "from", tx->sender);
    log_strn(&r, "rcpts", rcpts.data, rcpts.len);
    log_int(&r, "size", (long long)size);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "listener", s->listener->name);
    struct spool_envelope env = tx_envelope(s);
    log_str(&r, "tenant", env.tenant != NULL ? env.tenant : "");
    log_str(&r, "campaign", env.campaign != NULL ? env.campaign : "");
    if (tx->env_flags & (SPOOL_ENV_8BITMIME | SPOOL_ENV_BINARYMIME)) /* MAIL's BODY=, not 7BIT */
        log_str(&r, "body", tx->env_flags & SPOOL_ENV_BINARYMIME ? "BINARYMIME" : "8BITMIME");
    log_end(&r);
    buf_free(&rcpts);
}

/* The spool's sink reported the commit: 250 once the message is durable, else its 451 or 452. */
static void tx_on_committed(struct smtp_session *s, const struct policy_decision *d)
{
    if (d->verdict == POLICY_ACCEPT && s->tx->report) {
        smtp_reply(s, 250, "2.0.0", "Ok: report read");
    } else if (d->verdict == POLICY_ACCEPT) {
        uint64_t size = smtp_store_size(s->tx->store);
        tx_log_accepted(s, size);
        mail_metrics_received(s->listener->name);
        smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", s->tx->queue_id);
        tx_hand_to_scheduler(s, size);
    } else {
        smtp_reply(s, d->code, d->enhanced, "%s", d->text);
    }
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
    if (s->srv->stopping) {
        smtp_reply(s, 421, "4.3.2", "%s Service shutting down", s->cfg->server.hostname);
        smtp_close_after_reply(s);
    } else {
        smtp_resume_input(s); /* also arms the next command's deadline */
    }
}

/* The sinks' outcome, after the final dot: the commit's, or a check's refusal. */
static void tx_on_sinks_done(void *arg, const struct body_outcome *out)
{
    struct smtp_session *s = arg;
    if (out->sink == s->tx->store) {
        tx_on_committed(s, &out->decision);
    } else {
        tx_refuse_after_data(s, &out->decision);
        smtp_resume_input(s); /* also writes the reply */
    }
    smtp_session_unref(s);
}
