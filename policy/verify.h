/*
 * Recipient verification (Postfix's reject_unverified_recipient): before RCPT is accepted for a
 * domain we forward to an internal server (deliver_to), ask that server whether it would take the
 * address: EHLO, MAIL FROM:<>, RCPT TO:<rcpt>, QUIT, never DATA. Answers are cached per lower-cased
 * address (valid for the positive TTL, refused with 5xx for the negative TTL; temporary failures
 * are not cached), the cache is bounded (least recently used entries go first), and concurrent
 * checks of one address share a single probe.
 *
 * deliver_to's addresses are tried in order (refused or timed-out connections and failures before
 * the RCPT reply move on to the next one) within one overall bound. STARTTLS is used when the
 * server offers it and the verifier has a client TLS context: opportunistic like delivery, so
 * certificates are not verified and a failed handshake is retried once in clear (RFC 7435).
 *
 * A minimal probe on lib/stream + lib/smtp_reply rather than mta/smtp_client: the client always
 * sends DATA once a recipient is accepted, has no notion of a transaction without a body, and
 * brings rate buckets and RFC timeouts that a probe does not need.
 * Everything runs in the libuv loop; nothing blocks.
 */
#ifndef SLUICE_VERIFY_H
#define SLUICE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

struct dns_resolver;
struct verifier;
struct verify_check;

#define VERIFY_CACHE_MAX 100000       /* addresses kept; the least recently used go first */
#define VERIFY_TIMEOUT_MS 10000       /* connect, TLS handshake and each reply of a probe */
#define VERIFY_PROBE_TIMEOUT_MS 30000 /* a whole probe, every address and retry included */
#define VERIFY_ADDRS_MAX 5    /* addresses of a deliver_to host name tried (Postfix's MX limit) */
#define VERIFY_REASON_MAX 200 /* octets of the server's reply quoted in ours (and cached) */

enum verify_status {
    VERIFY_VALID,    /* the server accepted RCPT (2xx) */
    VERIFY_INVALID,  /* the server refused RCPT (5xx): 550 5.1.1 */
    VERIFY_TEMPFAIL, /* 4xx, timeout, connection or DNS failure: 450 4.1.1, not cached */
    VERIFY_SKIPPED,  /* no deliver_to: verification does not apply, accept */
};

struct verify_result {
    enum verify_status status;
    int cached;           /* answered from the cache */
    int code;             /* 250, 550 or 450 */
    const char *enhanced; /* "2.1.5", "5.1.1", "4.1.1" */
    const char *text;     /* the reply text for RCPT; valid during the callback (or until the next
                             verify_check call for an answer given at once) */
    const char *reason;   /* the server's reply or what went wrong, for logs */
    const char *rcpt;     /* the address as this check spelled it */
};

typedef void (*verify_cb)(void *arg, const struct verify_result *res);

struct verify_query {
    const char *deliver_to;   /* "[addr]:port", "host:port" or "host"; NULL: VERIFY_SKIPPED */
    const char *rcpt;         /* canonical address, without angle brackets */
    const char *ehlo;         /* our host name */
    uint16_t default_port;    /* when deliver_to names none (delivery.port) */
    struct dns_resolver *dns; /* resolves a host name in deliver_to; NULL: such a check fails */
    uint64_t positive_ttl_ms;
    uint64_t negative_ttl_ms;
};

struct verifier_params {
    size_t cache_max;          /* 0: VERIFY_CACHE_MAX */
    uint64_t timeout_ms;       /* 0: VERIFY_TIMEOUT_MS */
    uint64_t probe_timeout_ms; /* 0: VERIFY_PROBE_TIMEOUT_MS */
    SSL_CTX *tls_ctx; /* client context for STARTTLS (the daemon's delivery one); NULL: probes stay
                         in clear. Borrowed: it must outlive the verifier. */
};

/* params may be NULL: every default. */
struct verifier *verifier_new(uv_loop_t *loop, const struct verifier_params *params);
/* Probes in flight are abandoned: their checks get VERIFY_TEMPFAIL from inside this call. */
void verifier_free(struct verifier *v);

/* Returns 0 with *now filled when the answer is known at once (cached, or skipped): no callback
 * follows. Otherwise returns 1, sets *handle, and cb(arg, ...) runs later from the loop exactly
 * once unless verify_cancel(*handle) is called first. */
int verify_check(struct verifier *v, const struct verify_query *q, verify_cb cb, void *arg,
                 struct verify_check **handle, struct verify_result *now);
/* Forgets a pending check (its probe goes on for the others and the cache). NULL is a no-op. */
void verify_cancel(struct verify_check *c);

/* Number of probes started since verifier_new (for tests and stats). */
uint64_t verifier_probes(const struct verifier *v);

#endif
