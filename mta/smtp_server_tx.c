/*
 * Inbound SMTP: the transaction. MAIL opens it, RCPT asks the relay decision for each recipient,
 * DATA streams the message through the DATA decoder into the spool with a Received: header in
 * front, and the 250 goes out only from the spool's commit callback, once the message is durable.
 * For a relay-authorized sender the same bytes go to a DKIM stream too; at the final dot its
 * signatures are prepended to the spooled message before the commit.
 */
#include "mta/smtp_session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/header_filter.h"
#include "lib/log.h"
#include "lib/smtp_addr.h"
#include "lib/xalloc.h"
#include "mta/config_load.h"
#include "mta/dkim.h"
#include "mta/dkim_check.h"
#include "mta/scheduler.h"
#include "policy/clamd.h"
#include "policy/dnsbl.h"
#include "policy/mime.h"
#include "policy/rcpt_policy.h"
#include "policy/relay.h"
#include "policy/sender_domain.h"
#include "policy/spf.h"
#include "policy/verify.h"
#include "spool/spool_space.h"

static void tx_on_committed(struct spool_msg *msg, int status, void *arg);
static void tx_on_spool_writable(struct spool_msg *msg, void *arg);
static void tx_on_dkim_writable(void *arg);
static void tx_on_clamd_writable(void *arg);

/* How long clamd may keep us waiting (connect, each write, the verdict). */
#define CLAMD_TIMEOUT_MS 30000

void smtp_tx_free(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx == NULL)
        return;
    if (tx->msg != NULL)
        spool_msg_abort(tx->msg);
    if (tx->dkim != NULL)
        dkim_stream_abort(tx->dkim);
    if (tx->dkim_check != NULL)
        dkim_check_abort(tx->dkim_check);
    spf_check_free(tx->spf); /* cancels a check in flight */
    sender_domain_check_free(tx->sender_check);
    verify_cancel(tx->verify);
    free(tx->auth_results);
    buf_free(&tx->ar_field);
    mime_parser_free(tx->mime);
    clamd_scan_free(tx->clamd);
    header_filter_free(tx->ar_filter);
    free(tx->sender);
    for (size_t i = 0; i < tx->nrcpts; i++)
        free(tx->rcpts[i]);
    free(tx->rcpts);
    free(tx);
    s->tx = NULL;
    s->spool_paused = 0;
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
            else if (!(p->value.len == 4 && strncasecmp(p->value.ptr, "7BIT", 4) == 0)) {
                smtp_reply(s, 501, "5.5.4", "Error: unsupported BODY type");
                return -1;
            }
        } else if (p->key.len == 8 && strncasecmp(p->key.ptr, "SMTPUTF8", 8) == 0 &&
                   p->value.ptr == NULL) {
            tx->env_flags |= SPOOL_ENV_SMTPUTF8;
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
        smtp_set_state(s, SMTP_STATE_MAIL);
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
    smtp_set_state(s, SMTP_STATE_READY);
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
 * runs holds input until its verdict (state MAIL_CHECK); the last one accepting answers 250.
 * Returns 1 when a check is running, else 0 after replying. */
static int mail_check_spf(struct smtp_session *s)
{
    if (s->cfg->inbound.spf == SPF_IGNORE) {
        smtp_set_state(s, SMTP_STATE_MAIL);
        smtp_reply(s, 250, "2.1.0", "Ok");
        return 0;
    }
    if (s->srv->dns == NULL ||
        spf_check_start(s->srv->dns, (const struct sockaddr *)&s->peer, s->helo, s->tx->sender,
                        s->cfg->server.hostname, mail_on_spf, s, &s->tx->spf) < 0) {
        mail_check_unavailable(s, "spf");
        return 0;
    }
    smtp_set_state(s, SMTP_STATE_MAIL_CHECK);
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
    smtp_set_state(s, SMTP_STATE_MAIL_CHECK);
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
    if (s->tx != NULL) {
        smtp_reply(s, 503, "5.5.1", "Error: nested MAIL command");
        smtp_client_error(s);
        return;
    }
    struct smtp_path_args args;
    if (smtp_cmd_parse_path_args(arg, "FROM:", &args) < 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
        smtp_client_error(s);
        return;
    }
    struct smtp_addr from;
    const char *why = "bad address";
    unsigned options = SMTP_ADDR_ALLOW_NULL | (has_smtputf8(&args) ? SMTP_ADDR_ALLOW_UTF8 : 0);
    if (smtp_addr_parse(args.path.ptr, args.path.len, options, &from, &why) < 0) {
        smtp_reply(s, 501, "5.1.7", "Bad sender address syntax: %s", why);
        smtp_log_rejected(s, "mail", 501, why, "builtin.address_syntax", NULL);
        smtp_client_error(s);
        return;
    }
    struct smtp_tx *tx = xcalloc(1, sizeof *tx);
    if (mail_params(s, &args, tx) < 0) {
        free(tx);
        smtp_client_error(s);
        return;
    }
    char text[SMTP_PATH_MAX + 8];
    smtp_addr_format(&from, text, sizeof text);
    if (mail_storage_refused(s, tx->declared_size, text)) {
        free(tx);
        return;
    }
    tx->sender = xstrdup(text);
    s->tx = tx;
    if (s->inbound) {
        mail_checks_start(s);
        return;
    }
    smtp_set_state(s, SMTP_STATE_MAIL);
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
    smtp_client_error(s);
}

static void rcpt_accept(struct smtp_session *s, const char *addr)
{
    struct smtp_tx *tx = s->tx;
    tx->rcpts = xrealloc(tx->rcpts, (tx->nrcpts + 1) * sizeof *tx->rcpts);
    tx->rcpts[tx->nrcpts++] = xstrdup(addr);
    smtp_set_state(s, SMTP_STATE_RCPT);
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
        smtp_client_error(s);
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

void smtp_cmd_rcpt(struct smtp_session *s, struct smtp_slice arg)
{
    struct smtp_tx *tx = s->tx;
    if (tx == NULL) {
        smtp_reply(s, 503, "5.5.1", "Error: need MAIL command");
        smtp_client_error(s);
        return;
    }
    struct policy_decision dnsbl;
    struct rcpt_facts facts;
    rcpt_facts_gather(s, &dnsbl, &facts);
    struct rcpt_decision r;
    rcpt_policy_decide(&facts, arg, &r);
    if (r.listed_by != NULL) {
        struct logrec rec;
        log_begin(&rec, LOG_INFO, "smtp.rcpt_checked");
        log_int(&rec, "session", (long long)s->id);
        log_str(&rec, "address", r.addr);
        log_str(&rec, "rule", r.listed_by);
        log_end(&rec);
    }
    if (r.outcome == RCPT_REFUSE) {
        rcpt_refused(s, &r);
        return;
    }
    int verdict = r.outcome == RCPT_NEED_VERIFY ? rcpt_verify(s, r.verify_domain, r.addr) : 0;
    if (verdict == 1)
        return; /* answered once the probe is */
    if (verdict < 0) {
        tx->nrcpts_rejected++;
        smtp_client_error(s);
        return;
    }
    rcpt_accept(s, r.addr);
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

/* Issue 5: only mail we relay for its sender (AUTH, or a trusted client of a submission listener)
 * is ours to sign; inbound mail, even for our own domains, never is. */
static int tx_relay_authorized(const struct smtp_session *s)
{
    return policy_relay_authorized(s->cfg, s->listener, (const struct sockaddr *)&s->peer,
                                   s->auth_user)
               .verdict == POLICY_ACCEPT;
}

/* The spool, the DKIM streams and clamd may ask the writer to wait; input resumes once none
 * does. s->spool_paused is what the connection side looks at. */
static void tx_backpressure_update(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    int full =
        tx != NULL && (tx->spool_full || tx->dkim_full || tx->clamd_full || tx->dkim_check_full);
    if (full && !s->spool_paused) {
        s->spool_paused = 1;
        smtp_pause_input(s);
        s->reading = 1; /* still wanted: resumed when both have room */
    } else if (!full && s->spool_paused) {
        s->spool_paused = 0;
        smtp_resume_input(s);
    }
}

/* Stores message bytes: into the spool, and into the DKIM stream when signing. */
static void tx_store(struct smtp_session *s, const char *data, size_t len)
{
    struct smtp_tx *tx = s->tx;
    if (s->srv->space != NULL)
        spool_space_written(s->srv->space, len);
    if (spool_msg_append(tx->msg, data, len, tx_on_spool_writable, s) == 1)
        tx->spool_full = 1;
    if (tx->dkim != NULL && dkim_stream_write(tx->dkim, data, len, tx_on_dkim_writable, s) == 1)
        tx->dkim_full = 1;
}

void smtp_cmd_data(struct smtp_session *s, struct smtp_slice arg)
{
    struct smtp_tx *tx = s->tx;
    if (arg.len != 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: DATA");
        smtp_client_error(s);
        return;
    }
    if (tx == NULL) {
        smtp_reply(s, 503, "5.5.1", "Error: need MAIL command");
        smtp_client_error(s);
        return;
    }
    if (tx->nrcpts == 0) {
        /* RFC 2920 §3.1: with pipelining, DATA after only rejected recipients is 554. */
        if (tx->nrcpts_rejected > 0)
            smtp_reply(s, 554, "5.5.1", "Error: no valid recipients");
        else
            smtp_reply(s, 503, "5.5.1", "Error: need RCPT command");
        smtp_client_error(s);
        return;
    }

    struct spool_envelope env = {
        .sender = tx->sender,
        .rcpts = (const char *const *)tx->rcpts,
        .nrcpts = tx->nrcpts,
        .client_addr = s->client_addr,
        .helo = s->helo,
        .auth_user = s->auth_user,
        .listener = s->listener->name,
        .received_at = tx->received_at = (int64_t)time(NULL),
        .flags = tx->env_flags,
    };
    tx->msg = spool_msg_new(s->srv->spool, &env);
    if (tx->msg == NULL) {
        smtp_reply(s, 451, "4.3.0", "Error: queue file write error");
        return;
    }
    if (s->srv->dkim != NULL && dkim_signer_set_count(s->srv->dkim) > 0 && tx_relay_authorized(s))
        tx->dkim = dkim_stream_new(s->srv->loop, s->srv->dkim, spool_msg_id(tx->msg));
    if (s->inbound && s->cfg->inbound.nblocked_attachments > 0)
        tx->mime = mime_parser_new((const char *const *)s->cfg->inbound.blocked_attachments,
                                   s->cfg->inbound.nblocked_attachments, NULL, NULL);
    if (s->inbound) /* RFC 8601 §5: only our own checks may speak in our name */
        tx->ar_filter = header_filter_new(s->cfg->server.hostname);
    if (s->inbound && s->cfg->inbound.clamd != NULL)
        tx->clamd = clamd_scan_new(s->srv->loop, s->cfg->inbound.clamd, CLAMD_TIMEOUT_MS,
                                   tx_on_clamd_writable, s);
    if (s->inbound && s->cfg->inbound.dkim_verify && s->srv->dkim_checker != NULL &&
        tx->dkim == NULL)
        tx->dkim_check =
            dkim_check_new(s->srv->loop, s->srv->dkim_checker, &s->srv->dns, spool_msg_id(tx->msg));
    struct buf header = BUF_INIT;
    received_header(s, spool_msg_id(tx->msg), &header);
    tx_store(s, header.data, header.len);
    buf_free(&header);

    smtp_data_init(&tx->decoder);
    smtp_set_state(s, SMTP_STATE_DATA);
    tx->data_deadline = uv_now(s->srv->loop) + s->cfg->limits.data_deadline_ms;
    smtp_arm_timer(s);
    smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static void tx_on_spool_writable(struct spool_msg *msg, void *arg)
{
    struct smtp_session *s = arg;
    if (s->tx == NULL)
        return;
    s->tx->spool_full = 0;
    tx_backpressure_update(s);
}

static void tx_on_clamd_writable(void *arg)
{
    struct smtp_session *s = arg;
    s->tx->clamd_full = 0;
    tx_backpressure_update(s);
}

static void tx_on_dkim_writable(void *arg)
{
    struct smtp_session *s = arg;
    if (s->tx == NULL)
        return;
    s->tx->dkim_full = 0;
    tx_backpressure_update(s);
}

static void tx_on_dkim_check_writable(void *arg)
{
    struct smtp_session *s = arg;
    if (s->tx == NULL)
        return;
    s->tx->dkim_check_full = 0;
    tx_backpressure_update(s);
}

/* Hands the message to the spool's commit; the 250 (or 451) comes from tx_on_committed. */
static void tx_commit(struct smtp_session *s)
{
    smtp_session_ref(s); /* the session outlives its connection until the commit reports */
    struct spool_msg *msg = s->tx->msg;
    s->tx->msg = NULL; /* the spool owns it now */
    spool_msg_commit(msg, tx_on_committed, s);
}

/* Signing failed: the log says what failed and what we did about it (dkim_on_failure). Returns 1
 * when the message is to be refused with 451. */
static int tx_dkim_failed(struct smtp_session *s, const struct dkim_result *res)
{
    int tempfail = s->cfg->dkim_on_error == DKIM_ON_ERROR_TEMPFAIL;
    struct logrec r;
    log_begin(&r, LOG_ERROR, "dkim.sign_failed");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "queue_id", spool_msg_id(s->tx->msg));
    log_str(&r, "from_domain", res->from_domain);
    log_str(&r, "error", res->error);
    log_str(&r, "action", tempfail ? "tempfail" : "accepted_unsigned");
    log_end(&r);
    return tempfail;
}

/* A message refused after the final dot: rolled back, and the session reads commands again. */
static void tx_refuse_after_data(struct smtp_session *s, int code, const char *enhanced,
                                 const char *text, const char *rule)
{
    smtp_reply(s, code, enhanced, "%s", text);
    smtp_log_rejected(s, "data", code, text, rule, NULL);
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_STATE_READY);
    smtp_resume_input(s);
}

/* Puts the fields made after the data in front of the message: our DKIM signatures, then the
 * Authentication-Results field. Returns 0 or -EINVAL (the spool refused them). */
static int tx_prepend_fields(struct smtp_tx *tx, const char *sigs, size_t sigs_len)
{
    if (sigs_len == 0 && tx->ar_field.len == 0)
        return 0;
    struct buf fields = BUF_INIT;
    buf_append(&fields, sigs, sigs_len);
    buf_append(&fields, tx->ar_field.data, tx->ar_field.len);
    int rc = spool_msg_prepend(tx->msg, fields.data, fields.len);
    buf_free(&fields);
    return rc;
}

/* The signatures are ready (on the loop): prepend them, then commit. */
static void tx_on_signed(struct dkim_stream *ds, const struct dkim_result *res, void *arg)
{
    struct smtp_session *s = arg;
    struct smtp_tx *tx = s->tx;
    struct dkim_result failed;

    if (s->closed || tx == NULL || tx->msg == NULL) {
        smtp_session_unref(s); /* the client left: smtp_tx_free rolled the message back */
        return;
    }
    if (res->status == 0 && tx_prepend_fields(tx, res->headers, res->headers_len) < 0) {
        failed = *res;
        failed.status = -EINVAL;
        failed.error = "the spool refused the DKIM-Signature fields";
        res = &failed;
    }
    if (res->status < 0 && tx_dkim_failed(s, res)) {
        tx_refuse_after_data(s, 451, "4.7.0", "Error: DKIM signing failed, try again later",
                             "dkim_on_failure");
        smtp_session_unref(s);
        return;
    }
    if (res->status < 0)
        (void)tx_prepend_fields(tx, NULL, 0); /* accepted unsigned */
    if (res->status == 0 && res->signatures > 0) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "dkim.signed");
        log_int(&r, "session", (long long)s->id);
        log_str(&r, "queue_id", spool_msg_id(tx->msg));
        log_str(&r, "from_domain", res->from_domain);
        log_int(&r, "signatures", res->signatures);
        log_end(&r);
    }
    tx_commit(s);
    smtp_session_unref(s);
}

static void tx_authenticate(struct smtp_session *s);
static void tx_sign_and_commit(struct smtp_session *s);

/* clamd's verdict on the message (inbound.clamd); clamd_down decides when there is none. */
static void tx_on_scanned(void *arg, const struct clamd_result *res)
{
    struct smtp_session *s = arg;
    struct smtp_tx *tx = s->tx;
    if (res->status == CLAMD_FOUND) {
        char text[CLAMD_REPLY_MAX + 64];
        snprintf(text, sizeof text, "message rejected: virus found: %s", res->virus);
        tx_refuse_after_data(s, 554, "5.7.1", text, "clamd");
        return;
    }
    if (res->status == CLAMD_ERROR) {
        int tempfail = s->cfg->inbound.clamd_down == CLAMD_DOWN_TEMPFAIL;
        struct logrec r;
        log_begin(&r, LOG_WARN, "smtp.clamd_down");
        log_int(&r, "session", (long long)s->id);
        log_str(&r, "queue_id", spool_msg_id(tx->msg));
        log_str(&r, "error", res->error);
        log_str(&r, "action", tempfail ? "tempfail" : "accepted_unscanned");
        log_end(&r);
        if (tempfail) {
            tx_refuse_after_data(s, 451, "4.7.1", "virus scanner unavailable, try again later",
                                 "clamd");
            return;
        }
    }
    tx_authenticate(s);
}

/* At the final dot: either the message is refused (and rolled back) or the commit starts. */
static void tx_end_of_data(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    unsigned flags = tx->decoder.flags;
    const char *reason = NULL;
    int code = 0;
    const char *enhanced = NULL;

    if (tx->too_big) {
        code = 552, enhanced = "5.3.4", reason = "Message size exceeds fixed limit";
    } else if (flags & SMTP_DATA_LONG_LINE) {
        code = 500, enhanced = "5.5.2",
        reason = "Error: message line longer than 1000 octets (RFC 5321 4.5.3.1.6)";
    }
    const char *rule = NULL;
    if (reason == NULL && tx->mime != NULL) {
        mime_parser_finish(tx->mime);
        struct policy_decision d = mime_parser_verdict(tx->mime);
        if (d.verdict != POLICY_ACCEPT)
            code = d.code, enhanced = d.enhanced, reason = d.text, rule = "attachment";
    }
    if (reason != NULL) {
        smtp_reply(s, code, enhanced, "%s", reason);
        smtp_log_rejected(s, "data", code, reason, rule, NULL);
        smtp_tx_free(s);
        smtp_set_state(s, SMTP_STATE_READY);
        return;
    }

    uv_timer_stop(&s->timer);
    smtp_pause_input(s);
    smtp_flush(s);
    if (tx->clamd != NULL) {
        smtp_set_state(s, SMTP_STATE_SCAN);
        clamd_scan_finish(tx->clamd, tx_on_scanned, s); /* freed with tx: no callback after */
        return;
    }
    tx_authenticate(s);
}

/* Inbound mail gets an Authentication-Results field (RFC 8601): SPF's verdict from MAIL and the
 * DKIM signatures' (res NULL: not verified). */
static void tx_auth_results(struct smtp_session *s, const struct dkim_check_result *res)
{
    struct smtp_tx *tx = s->tx;
    if (tx->auth_results == NULL && res == NULL)
        return;
    buf_printf(&tx->ar_field, "Authentication-Results: %s", s->cfg->server.hostname);
    if (tx->auth_results != NULL)
        buf_printf(&tx->ar_field, ";\r\n\t%s", tx->auth_results);
    if (res != NULL) {
        buf_append_str(&tx->ar_field, ";\r\n\t");
        dkim_check_result_format(res, &tx->ar_field);
    }
    buf_append_str(&tx->ar_field, "\r\n");
}

static void tx_log_dkim_verified(struct smtp_session *s, const struct dkim_check_result *res)
{
    struct buf results = BUF_INIT;
    for (size_t i = 0; i < res->nsigs; i++)
        buf_printf(&results, "%s%s d=%s s=%s%s%s", i > 0 ? "; " : "",
                   dkim_check_verdict_name(res->sigs[i].verdict), res->sigs[i].domain,
                   res->sigs[i].selector, res->sigs[i].reason[0] != '\0' ? ": " : "",
                   res->sigs[i].reason);
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.dkim_verified");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "queue_id", spool_msg_id(s->tx->msg));
    log_int(&r, "signatures", (long long)res->nsigs);
    log_strn(&r, "results", results.data != NULL ? results.data : "", results.len);
    log_end(&r);
    buf_free(&results);
}

static void tx_on_dkim_checked(void *arg, const struct dkim_check_result *res)
{
    struct smtp_session *s = arg;
    if (s->closed || s->tx == NULL || s->tx->msg == NULL) {
        smtp_session_unref(s); /* the client left: smtp_tx_free rolled the message back */
        return;
    }
    tx_log_dkim_verified(s, res);
    tx_auth_results(s, res);
    tx_sign_and_commit(s);
    smtp_session_unref(s);
}

/* The message passed the checks: its authentication results are recorded (after the DKIM
 * signatures are verified, on the pool), then it is signed and committed. */
static void tx_authenticate(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx->dkim_check == NULL) {
        tx_auth_results(s, NULL);
        tx_sign_and_commit(s);
        return;
    }
    struct dkim_check *check = tx->dkim_check;
    tx->dkim_check = NULL; /* freed after its callback */
    smtp_set_state(s, SMTP_STATE_SCAN);
    smtp_session_ref(s);
    dkim_check_finish(check, tx_on_dkim_checked, s);
}

/* The message is complete and checked: sign it if it is ours to sign, then commit. */
static void tx_sign_and_commit(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    smtp_set_state(s, SMTP_STATE_COMMIT);
    if (tx->dkim == NULL) {
        (void)tx_prepend_fields(tx, NULL, 0); /* at most once, and far below the spool's cap */
        tx_commit(s);
        return;
    }
    /* Wait for the signatures (computed on the pool); the stream frees itself after the call. */
    struct dkim_stream *ds = tx->dkim;
    tx->dkim = NULL;
    smtp_session_ref(s);
    dkim_stream_finish(ds, tx_on_signed, s);
}

size_t smtp_tx_data_feed(struct smtp_session *s, const char *data, size_t len)
{
    struct smtp_tx *tx = s->tx;
    /* scratch, reused: the loop runs one callback at a time */
    static struct buf decoded, filtered;
    int done = 0;

    buf_reset(&decoded);
    size_t used = smtp_data_feed(&tx->decoder, data, len, &decoded, &done);
    tx->body_size += decoded.len;
    if (tx->body_size > s->cfg->limits.max_message_size)
        tx->too_big = 1; /* keep reading to the final dot, store nothing more */
    struct buf *message = &decoded;
    if (tx->ar_filter != NULL && !header_filter_passing(tx->ar_filter)) {
        buf_reset(&filtered);
        header_filter_feed(tx->ar_filter, decoded.data, decoded.len, &filtered);
        if (done)
            header_filter_finish(tx->ar_filter, &filtered);
        message = &filtered;
    }
    if (!tx->too_big && message->len > 0) {
        if (tx->mime != NULL)
            mime_parser_feed(tx->mime, message->data, message->len);
        if (tx->clamd != NULL && clamd_scan_write(tx->clamd, message->data, message->len))
            tx->clamd_full = 1;
        if (tx->dkim_check != NULL && dkim_check_write(tx->dkim_check, message->data, message->len,
                                                       tx_on_dkim_check_writable, s) == 1)
            tx->dkim_check_full = 1;
        tx_store(s, message->data, message->len);
        tx_backpressure_update(s);
    }
    if (decoded.cap > 256 * 1024)
        buf_free(&decoded);
    if (filtered.cap > 256 * 1024)
        buf_free(&filtered);
    if (done && tx->ar_filter != NULL && header_filter_removed(tx->ar_filter) > 0) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "smtp.header_removed");
        log_int(&r, "session", (long long)s->id);
        log_str(&r, "field", "Authentication-Results");
        log_int(&r, "count", header_filter_removed(tx->ar_filter));
        log_end(&r);
    }
    if (done)
        tx_end_of_data(s);
    return used;
}

/* The message is durable and acknowledged: delivery takes it from here. */
static void tx_hand_to_scheduler(struct smtp_session *s, struct spool_msg *msg)
{
    if (s->srv->scheduler == NULL)
        return;
    struct smtp_tx *tx = s->tx;
    struct spool_envelope env = {
        .sender = tx->sender,
        .rcpts = (const char *const *)tx->rcpts,
        .nrcpts = tx->nrcpts,
        .received_at = tx->received_at,
        .flags = tx->env_flags,
    };
    struct spool_entry entry = {
        .id = spool_msg_id(msg), .env = &env, .body_size = spool_msg_size(msg)};
    scheduler_add(s->srv->scheduler, &entry);
}

static void tx_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct smtp_session *s = arg;
    struct smtp_tx *tx = s->tx;
    if (s->closed || tx == NULL) {
        /* The client left while we synced. The message is durable (or failed) all the same; it was
         * never acknowledged, so a duplicate is the worst outcome. */
        if (status == 0) {
            log_msg(LOG_WARN, "smtp.accepted_unacknowledged", "queue id %s: client gone before 250",
                    spool_msg_id(msg));
            if (s->srv->scheduler != NULL)
                scheduler_add_id(s->srv->scheduler, spool_msg_id(msg));
        }
        smtp_session_unref(s);
        return;
    }
    if (status < 0) {
        /* Nothing of it is kept (the spool removed the file), and no other message is touched. */
        int full = status == -ENOSPC || status == -EDQUOT;
        if (full)
            smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
        else
            smtp_reply(s, 451, "4.3.0", "Error: queue file write error");
        log_msg(LOG_ERROR, "spool.commit_failed", "session %llu: %s", (unsigned long long)s->id,
                strerror(-status));
        if (full && s->srv->space != NULL)
            spool_space_refresh(s->srv->space); /* so that the next MAIL knows */
    } else {
        struct buf rcpts = BUF_INIT;
        for (size_t i = 0; i < tx->nrcpts; i++) {
            if (i > 0)
                buf_append(&rcpts, ",", 1);
            buf_append_str(&rcpts, tx->rcpts[i]);
        }
        struct logrec r;
        log_begin(&r, LOG_INFO, "smtp.accepted");
        log_int(&r, "session", (long long)s->id);
        log_str(&r, "queue_id", spool_msg_id(msg));
        log_str(&r, "from", tx->sender);
        log_strn(&r, "rcpts", rcpts.data, rcpts.len);
        log_int(&r, "size", (long long)spool_msg_size(msg));
        log_str(&r, "client", s->client_addr);
        log_str(&r, "listener", s->listener->name);
        log_end(&r);
        buf_free(&rcpts);
        smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", spool_msg_id(msg));
        tx_hand_to_scheduler(s, msg);
    }
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_STATE_READY);
    if (s->srv->stopping) {
        smtp_reply(s, 421, "4.3.2", "%s Service shutting down", s->cfg->server.hostname);
        smtp_close_after_reply(s);
    } else {
        smtp_resume_input(s); /* also arms the next command's deadline */
    }
    smtp_session_unref(s);
}
