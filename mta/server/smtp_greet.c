/*
 * Inbound SMTP: a session before its banner. A session of an inbound listener starts its DNSBL and
 * reverse DNS lookups at connect and holds the banner for inbound.pregreet_wait (and for the
 * answers, at most dns.timeout), so the verdicts are ready at the first RCPT, where
 * policy/rcpt_policy.c weighs them. Others get the banner at once.
 */
#include "mta/server/smtp_greet.h"

#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "mta/server/smtp_session.h"
#include "policy/dnsbl.h"
#include "policy/reverse_dns.h"

static void send_banner(struct smtp_session *s)
{
    smtp_set_state(s, SMTP_PHASE_CONNECTED, SMTP_WAIT_NONE);
    smtp_reply(s, 220, NULL, "%s ESMTP Sluice", s->cfg->server.hostname);
    smtp_flush(s);
    smtp_arm_timer(s);
    s->reading = 1;
    stream_read_start(&s->stream);
}

static int connect_checks_pending(const struct smtp_session *s)
{
    return (s->dnsbl != NULL && !s->dnsbl_done) || (s->rdns != NULL && !s->rdns_done);
}

/* The banner waits for inbound.pregreet_wait, and for the DNSBL and reverse DNS answers (at most
 * dns.timeout), so their verdicts are ready at the first RCPT. */
static void greet_wait_on_timer(uv_timer_t *t);

static void greet_maybe(struct smtp_session *s)
{
    if (s->closed || s->wait != SMTP_WAIT_BANNER)
        return;
    uint64_t wait = s->cfg->inbound.pregreet_wait_ms;
    if (connect_checks_pending(s) && s->cfg->dns.timeout_ms > wait)
        wait = s->cfg->dns.timeout_ms;
    uint64_t elapsed = uv_now(s->srv->loop) - s->connected_at;
    if (elapsed >= wait) {
        send_banner(s);
        return;
    }
    uv_timer_start(&s->timer, greet_wait_on_timer, wait - elapsed, 0);
}

static void greet_wait_on_timer(uv_timer_t *t)
{
    greet_maybe(container_of(t, struct smtp_session, timer));
}

static void dnsbl_on_result(void *arg, const struct dnsbl_result *res)
{
    struct smtp_session *s = arg;
    s->dnsbl_done = 1;
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.dnsbl");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_int(&r, "listed", res->listed);
    log_int(&r, "score", res->score);
    for (size_t i = 0; i < res->nhits; i++)
        log_str(&r, "zone", res->hits[i].zone);
    log_end(&r);
    greet_maybe(s);
}

static void rdns_on_result(void *arg, const struct reverse_dns_result *res)
{
    struct smtp_session *s = arg;
    s->rdns_done = 1;
    s->rdns_verdict = reverse_dns_verdict(res, s->cfg->inbound.reverse_dns);
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.reverse_dns");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "status", reverse_dns_status_name(res->status));
    if (res->name != NULL)
        log_str(&r, "name", res->name);
    log_end(&r);
    greet_maybe(s);
}

static void connect_check_failed(struct smtp_session *s, const char *check, int rc)
{
    struct logrec r;
    log_begin(&r, LOG_WARN, "smtp.check_failed");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "check", check);
    log_str(&r, "error", strerror(-rc));
    log_end(&r);
}

/* Starts the connect-time lookups of an inbound session. Without a resolver (the daemon is
 * stopping) RCPT answers 451 4.4.3. A check that cannot start is settled here: a DNSBL as not
 * listing (a list outage must not stop mail), reverse DNS as a temporary failure (450 at RCPT). */
static void connect_checks_start(struct smtp_session *s)
{
    const struct config *cfg = s->cfg;
    const struct sockaddr *peer = (const struct sockaddr *)&s->peer;
    int rc = 0;
    if (s->srv->dns == NULL) {
        s->no_resolver = cfg->inbound.ndnsbl > 0 || cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE;
        return;
    }
    if (cfg->inbound.ndnsbl > 0) {
        if ((rc = dnsbl_check_start(s->srv->dns, cfg->inbound.dnsbl, cfg->inbound.ndnsbl,
                                    cfg->inbound.dnsbl_threshold, peer, dnsbl_on_result, s,
                                    &s->dnsbl)) < 0) {
            connect_check_failed(s, "dnsbl", rc);
            s->dnsbl_done = 1;
        }
    }
    rc = 0;
    if (cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE) {
        if ((rc = reverse_dns_check_start(s->srv->dns, peer, rdns_on_result, s, &s->rdns)) < 0) {
            connect_check_failed(s, "reverse_dns", rc);
            struct reverse_dns_result failed = {.status = REVERSE_DNS_TEMPFAIL};
            s->rdns_verdict = reverse_dns_verdict(&failed, cfg->inbound.reverse_dns);
            s->rdns_done = 1;
        }
    }
}

void smtp_greet_start(struct smtp_session *s)
{
    if (!s->inbound) {
        send_banner(s);
        return;
    }
    s->connected_at = uv_now(s->srv->loop);
    connect_checks_start(s);
    smtp_set_state(s, SMTP_PHASE_CONNECTED, SMTP_WAIT_BANNER);
    if (s->cfg->inbound.pregreet_wait_ms > 0) {
        s->reading = 1; /* anything the client sends now fails the pregreet test */
        stream_read_start(&s->stream);
    }
    greet_maybe(s);
}

void smtp_greet_close(struct smtp_session *s)
{
    dnsbl_check_free(s->dnsbl); /* cancels lookups in flight */
    s->dnsbl = NULL;
    reverse_dns_check_free(s->rdns);
    s->rdns = NULL;
}
