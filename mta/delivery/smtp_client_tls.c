/*
 * The outbound SMTP session's TLS stage (see smtp_client_int.h): STARTTLS after EHLO or HELO, the
 * handshake with SNI, and what TLS is demanded of the host and whether the certificate meets it:
 * DANE (dane.h) when the MX host has TLSA records, otherwise the MTA-STS/TLS policy (tls_policy.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "mta/delivery/dane.h"
#include "mta/delivery/smtp_client_int.h"
#include "mta/delivery/tls_policy.h"
#include "mta/delivery/tls_rpt.h"

/* TLS is demanded of this host: DANE found TLSA records, or the policy verifies (enforced or in
 * testing). */
static int client_tls_demanded(const struct smtp_client *c)
{
    return dane_mode_requires_tls(c->dane_mode) || c->tls.level == TLS_POLICY_VERIFY;
}

/* The policy a session is judged by in the TLS report: DANE's TLSA records, an MTA-STS policy
 * that verifies, or none. */
static enum tls_rpt_policy_type client_rpt_type(const struct smtp_client *c)
{
    if (c->dane_mode == DANE_VERIFY || c->dane_mode == DANE_DEFER)
        return TLS_RPT_POLICY_TLSA;
    if (c->tls.level == TLS_POLICY_VERIFY && c->tls.source != NULL &&
        strcmp(c->tls.source, "mta-sts") == 0)
        return TLS_RPT_POLICY_STS;
    return TLS_RPT_POLICY_NONE;
}

void client_tls_report(struct smtp_client *c, enum tls_rpt_result result, const char *reason)
{
    if (c->rpt == NULL || (c->tls.level == TLS_POLICY_NONE && !client_tls_demanded(c)))
        return; /* no TLS was tried: nothing to report (a retry in clear reported before) */
    struct buf tlsa = BUF_INIT;
    enum tls_rpt_policy_type type = client_rpt_type(c);
    const char *base = NULL;
    if (type == TLS_RPT_POLICY_TLSA) {
        dane_peer_tlsa_text(c->dane, &tlsa);
        base = c->dane != NULL ? dane_peer_base(c->dane) : c->mx_name;
    }
    tls_rpt_session_result(c->rpt, type, base, tlsa.data, result, reason);
    buf_free(&tlsa);
}

/* The TLS demanded is not there (result, reason): the session ends with 451 `enhanced` when DANE
 * or an enforced policy demands it (returns 1); a policy in testing mode only logs it (returns 0).
 */
static int client_tls_unmet(struct smtp_client *c, enum tls_rpt_result result, const char *enhanced,
                            const char *reason)
{
    client_tls_report(c, result, reason);
    if (!dane_mode_requires_tls(c->dane_mode)) {
        tls_policy_log_failure(&c->tls, c->session_id, c->mx_name, reason);
        if (!tls_policy_enforced(&c->tls))
            return 0;
    }
    client_end(c, "STARTTLS", 451, enhanced, 0, 1, "%s", reason);
    return 1;
}

/* RFC 8461 §2, §5.1: DANE does not apply to the host (no TLSA records, or no lookup), so the
 * enforced MTA-STS policy does, and it does not list the host: the session ends (polite: with
 * QUIT) as if the destination had skipped the host, counted once in the TLS report. Returns 1
 * then. */
static int client_mx_unlisted(struct smtp_client *c, int polite)
{
    if (c->dane_mode != DANE_NONE || !c->tls.mx_mismatch || !tls_policy_enforced(&c->tls))
        return 0;
    char why[300];
    tls_policy_log_unlisted_mx(&c->tls, c->session_id, c->mx_name, why, sizeof why);
    tls_rpt_session_result(c->rpt, TLS_RPT_POLICY_STS, NULL, NULL, TLS_RPT_VALIDATION_FAILURE,
                           "mx-not-in-policy");
    client_end(c, "connect", 451, "4.7.5", 0, polite, "%s", why);
    return 1;
}

void client_after_hello(struct smtp_client *c)
{
    char why[300];
    c->hello_waits = c->dane_pending;
    if (c->hello_waits || client_mx_unlisted(c, 1))
        return;
    if (c->tls_version == NULL && (c->tls.level != TLS_POLICY_NONE || client_tls_demanded(c)) &&
        c->tls_ctx != NULL && (c->caps.ext & SMTP_EXT_STARTTLS)) {
        client_enter_state(c, CS_STARTTLS);
        return;
    }
    snprintf(why, sizeof why, "TLS is required but %s does not offer STARTTLS", c->mx_name);
    if (c->tls_version == NULL && c->tls_ctx != NULL)
        client_tls_report(c, TLS_RPT_STARTTLS_NOT_SUPPORTED, "STARTTLS not offered");
    if (c->tls_version != NULL || !client_tls_demanded(c) ||
        !client_tls_unmet(c, TLS_RPT_STARTTLS_NOT_SUPPORTED, "4.7.10", why))
        client_ready(c);
}

void client_starttls_enter(struct smtp_client *c)
{
    client_send_line(c, "STARTTLS\r\n");
}

void client_starttls_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char why[300];
    snprintf(why, sizeof why, "TLS is required but %s refused STARTTLS (%d)", c->mx_name, r->code);
    if (r->code == 220) {
        client_enter_state(c, CS_TLS_HANDSHAKE);
        return;
    }
    client_tls_report(c, TLS_RPT_STARTTLS_NOT_SUPPORTED, why);
    if (!client_tls_demanded(c) ||
        !client_tls_unmet(c, TLS_RPT_STARTTLS_NOT_SUPPORTED, "4.7.10", why))
        client_ready(c); /* RFC 3207 §4.1: carry on in clear */
}

/* The name to send as SNI: none for an address literal (RFC 6066 §3). */
static const char *client_sni(const struct smtp_client *c)
{
    unsigned char addr[sizeof(struct in6_addr)];
    /* With TLSA records the name is their base domain (RFC 7672 §8.1). */
    const char *n = c->dane != NULL && dane_mode_requires_tls(c->dane_mode)
                        ? dane_peer_base(c->dane)
                        : c->mx_name;
    if (n[0] == '[' || inet_pton(AF_INET, n, addr) == 1 || inet_pton(AF_INET6, n, addr) == 1)
        return NULL;
    return n;
}

/* After the handshake with DANE: ends the session (4.7.5) when no TLSA record matched. */
static int client_dane_mismatch(struct smtp_client *c)
{
    char why[300];
    int bad = dane_peer_ssl_check(c->dane, c->stream.ssl, why, sizeof why) < 0;
    client_tls_report(c, bad ? TLS_RPT_TLSA_INVALID : TLS_RPT_SUCCESS, bad ? why : NULL);
    if (bad)
        client_end(c, "STARTTLS", 451, "4.7.5", 0, 1, "%s", why);
    return bad;
}

int client_tls_checked(struct smtp_client *c)
{
    if (c->dane_mode == DANE_VERIFY)
        return !client_dane_mismatch(c);
    if (c->dane_mode == DANE_ENCRYPT) {
        client_tls_report(c, TLS_RPT_SUCCESS, NULL);
        return 1; /* validated records, none usable: encryption without authentication */
    }
    struct buf why = BUF_INIT;
    int ok = tls_policy_ssl_check(&c->tls, c->stream.ssl, &why) == 0;
    if (ok) {
        client_tls_report(c, TLS_RPT_SUCCESS, NULL);
    } else {
        char reason[400];
        snprintf(reason, sizeof reason, "TLS with %s: %s", c->mx_name, why.data);
        enum tls_rpt_result result =
            SSL_get0_peer_certificate(c->stream.ssl) == NULL
                ? TLS_RPT_VALIDATION_FAILURE
                : tls_rpt_result_for_verify(SSL_get_verify_result(c->stream.ssl));
        ok = !client_tls_unmet(c, result, "4.7.5", reason);
    }
    buf_free(&why);
    return ok;
}

void client_handshake_enter(struct smtp_client *c)
{
    int rc = stream_tls_client_prepared(&c->stream, c->tls_ctx, client_sni(c),
                                        c->dane_mode == DANE_VERIFY ? dane_peer_ssl_prepare : NULL,
                                        c->dane);
    struct buf err = BUF_INIT;
    if (rc < 0)
        buf_printf(&err, "%s", uv_strerror(rc));
    else if (c->dane_mode == DANE_NONE) /* DANE takes precedence over the PKIX checks */
        rc = tls_policy_ssl_prepare(&c->tls, c->stream.ssl, c->mx_name, &err);
    if (rc < 0) {
        client_tls_report(c, TLS_RPT_VALIDATION_FAILURE, err.data);
        client_end(c, NULL, 451, "4.7.5", 0, 0, "cannot start TLS with %s: %s", c->mx_name,
                   err.data);
    }
    buf_free(&err);
}

/* The TLSA answer for the MX host: a failed lookup defers, none for a host the enforced MTA-STS
 * policy does not list ends the session (before it connected), otherwise the session connects
 * when it waited to, or EHLO goes on to STARTTLS. */
void client_on_dane(void *arg, enum dane_mode mode, const char *why)
{
    struct smtp_client *c = arg;
    c->dane_pending = 0;
    c->dane_mode = mode;
    if (mode == DANE_DEFER) {
        client_tls_report(c, TLS_RPT_DNSSEC_INVALID, why);
        client_end(c, NULL, 451, "4.7.5", 0, 0, "%s", why);
    } else if (c->state != CS_CLOSING && !client_mx_unlisted(c, 0)) {
        if (c->connect_waits)
            client_connect_waited(c);
        else if (c->hello_waits)
            client_after_hello(c);
    }
}
