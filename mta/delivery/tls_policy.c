/*
 * Outbound TLS policy: the mode of a shaping rule as a level, and the certificate checks done on
 * the client's SSL before and after the handshake (see tls_policy.h).
 */
#include "mta/delivery/tls_policy.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "mta/delivery/mta_sts_policy.h"

struct tls_policy tls_policy_for_mode(enum shaping_tls mode)
{
    struct tls_policy p = {.level = TLS_POLICY_MAY, .source = "shaping"};
    if (mode == SHAPING_TLS_NONE)
        p.level = TLS_POLICY_NONE;
    else if (mode == SHAPING_TLS_REQUIRED)
        p.level = TLS_POLICY_VERIFY;
    return p;
}

struct tls_policy tls_policy_for_mx(enum shaping_tls mode, const struct mta_sts_policy *sts,
                                    const char *mx)
{
    if (sts == NULL || (mode != SHAPING_TLS_MTA_STS && mode != SHAPING_TLS_DANE))
        return tls_policy_for_mode(mode);
    struct tls_policy p = {.level = TLS_POLICY_MAY, .source = "mta-sts"};
    if (sts->mode == MTA_STS_MODE_NONE)
        return p;
    p.level = TLS_POLICY_VERIFY;
    p.testing = sts->mode == MTA_STS_MODE_TESTING;
    p.mx_mismatch = !mta_sts_mx_match(sts, mx);
    return p;
}

int tls_policy_enforced(const struct tls_policy *p)
{
    return p->level == TLS_POLICY_VERIFY && !p->testing;
}

int tls_policy_covers(const struct tls_policy *have, const struct tls_policy *want)
{
    return !tls_policy_enforced(want) || (!want->mx_mismatch && tls_policy_enforced(have));
}

void tls_policy_log_failure(const struct tls_policy *p, uint64_t session, const char *mx,
                            const char *reason)
{
    struct logrec r;
    log_begin(&r, LOG_WARN, "tls_policy.failure");
    log_int(&r, "session", (long long)session);
    log_str(&r, "mx", mx);
    log_str(&r, "source", p->source);
    log_bool(&r, "testing", p->testing);
    log_str(&r, "reason", reason);
    log_end(&r);
}

void tls_policy_log_unlisted_mx(const struct tls_policy *p, uint64_t session, const char *mx,
                                char *why, size_t size)
{
    snprintf(why, size, "MX host %s is not in the domain's MTA-STS policy", mx);
    tls_policy_log_failure(p, session, mx, why);
}

int tls_policy_ssl_prepare(const struct tls_policy *p, SSL *ssl, const char *host, struct buf *err)
{
    if (p->level != TLS_POLICY_VERIFY)
        return 0;
    /* The MX name as DNS gave it; a trailing dot would never match a certificate. */
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    char name[256];
    if (len == 0 || len >= sizeof name) {
        buf_printf(err, "no host name to check the certificate against");
        return -1;
    }
    memcpy(name, host, len);
    name[len] = '\0';
    if (SSL_set1_host(ssl, name) != 1) {
        buf_printf(err, "cannot check the certificate against %s", name);
        return -1;
    }
    /* RFC 8461 §4.2 / RFC 6125: a wildcard covers the leftmost label only. */
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return 0;
}

int tls_policy_ssl_check(const struct tls_policy *p, SSL *ssl, struct buf *why)
{
    if (p->level != TLS_POLICY_VERIFY)
        return 0;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL) {
        buf_printf(why, "the server sent no certificate");
        return -1;
    }
    long rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK) {
        buf_printf(why, "certificate not valid: %s", X509_verify_cert_error_string(rc));
        return -1;
    }
    return 0;
}

int tls_policy_ctx_trust(SSL_CTX *ctx, const char *ca_file, struct buf *err)
{
    int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                             : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        unsigned long e = ERR_get_error();
        buf_printf(err, "%s: cannot load CA certificates: %s",
                   ca_file != NULL ? ca_file : "system store",
                   e != 0 ? ERR_reason_error_string(e) : "unknown error");
        ERR_clear_error();
        return -1;
    }
    return 0;
}
