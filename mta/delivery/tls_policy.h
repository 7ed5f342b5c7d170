/*
 * Outbound TLS policy: what one connection to one MX host demands of TLS, decided by the
 * destination (mta/delivery/destination.c) from the shaping rule's `tls:` mode and, later, the
 * receiver's published policy (MTA-STS, DANE), and carried into the SMTP client by value in its
 * parameters. The client asks this module to prepare the SSL object before the handshake and to
 * judge the peer once the handshake is done; it owns nothing beyond the struct itself.
 */
#ifndef SLUICE_TLS_POLICY_H
#define SLUICE_TLS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "lib/buf.h"
#include "lib/config.h"

enum tls_policy_level {
    TLS_POLICY_NONE,   /* never STARTTLS */
    TLS_POLICY_MAY,    /* STARTTLS when offered, certificate not checked (RFC 7435) */
    TLS_POLICY_VERIFY, /* STARTTLS, and a certificate that chains to a trusted CA and names the
                          MX host (RFC 8461 §4.2); else the attempt defers */
};

struct tls_policy {
    enum tls_policy_level level;
    /* VERIFY only: a failure (no STARTTLS, a bad certificate) is logged and the mail goes anyway
     * (MTA-STS `mode: testing`, RFC 8461 §5). */
    int testing;
    /* Why this level, for log lines: "shaping" or "mta-sts"; static. */
    const char *source;
    /* MTA-STS: the MX host matches none of the policy's mx: patterns. With enforce the host must
     * not be tried (RFC 8461 §5.1) unless DANE applies to it (TLSA records take precedence, §2);
     * with testing the caller logs it and goes on. */
    int mx_mismatch;
};

/* The policy for a shaping rule's `tls:` mode when the receiver publishes nothing (or its
 * policy has not been looked up): none → NONE, opportunistic → MAY, required → VERIFY; dane and
 * mta-sts fall back to MAY (RFC 8461 §5: without a policy, TLS stays opportunistic). */
struct tls_policy tls_policy_for_mode(enum shaping_tls mode);

struct mta_sts_policy;

/* The policy for MX host `mx` of a destination whose shaping mode is `mode` and whose receiver
 * publishes the MTA-STS policy sts (mta/delivery/mta_sts_policy.h; NULL: none known). sts counts
 * only with mode mta-sts or dane (until DANE finds TLSA records): enforce → VERIFY, testing →
 * VERIFY with testing set, none → MAY, each with source "mta-sts" and mx_mismatch set when mx
 * matches no pattern. Otherwise as tls_policy_for_mode. */
struct tls_policy tls_policy_for_mx(enum shaping_tls mode, const struct mta_sts_policy *sts,
                                    const char *mx);

/* 1 when a failure to meet p defers the attempt (VERIFY, not testing). */
int tls_policy_enforced(const struct tls_policy *p);

/* 1 when a session that got through under policy `have` also meets `want` (mail that wants it
 * may ride on it): want is not enforced, or it is, lists the host, and have enforced it too. */
int tls_policy_covers(const struct tls_policy *have, const struct tls_policy *want);

/* Logs tls_policy.failure: connection `session` to `mx` did not meet p (reason), and whether the
 * mail goes anyway (testing). */
void tls_policy_log_failure(const struct tls_policy *p, uint64_t session, const char *mx,
                            const char *reason);

/* RFC 8461 §5.1: logs tls_policy.failure for MX host mx that p's policy does not list, with the
 * reason ("MX host ... is not in the domain's MTA-STS policy") written to why (size bytes). */
void tls_policy_log_unlisted_mx(const struct tls_policy *p, uint64_t session, const char *mx,
                                char *why, size_t size);

/* Called once the client's SSL exists and before its handshake: asks OpenSSL to check the
 * certificate's name against host (SSL_set1_host) when the policy verifies; the chain itself is
 * checked against the context's trust store (tls_policy_ctx_trust). Returns 0, or -1 with a
 * reason in err. */
int tls_policy_ssl_prepare(const struct tls_policy *p, SSL *ssl, const char *host, struct buf *err);

/* After the handshake: 0 when the policy is met (always when it does not verify), else -1 with
 * the reason ("certificate has expired", "hostname mismatch", ...) in why. */
int tls_policy_ssl_check(const struct tls_policy *p, SSL *ssl, struct buf *why);

/* Makes ctx trust the CA certificates of ca_file (PEM), or the system store when ca_file is NULL,
 * for tls_policy_ssl_check. The context still lets every handshake finish (SSL_VERIFY_NONE): the
 * policy of each connection decides. Returns 0, or -1 with a reason naming the file in err. */
int tls_policy_ctx_trust(SSL_CTX *ctx, const char *ca_file, struct buf *err);

#endif
