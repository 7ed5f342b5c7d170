/*
 * DKIM verification (RFC 6376) of inbound messages with libopendkim, for the Authentication-Results
 * field (RFC 8601). The SMTP server writes a check the message bytes as they arrive; libopendkim
 * hashes them on the thread pool (lib/pool_pipe). As soon as the header section has been read
 * there, the loop fetches the signatures' keys (TXT at selector._domainkey.domain) through lib/dns
 * while the body still streams in; at end of data libopendkim checks the signatures on the pool and
 * takes the fetched keys from its key-lookup callback, so it never queries DNS itself (its resolver
 * would block a pool thread and bypass dns.servers).
 */
#ifndef SLUICE_DKIM_CHECK_H
#define SLUICE_DKIM_CHECK_H

#include <stddef.h>

#include <uv.h>

#include "lib/buf.h"

struct dns_resolver;

/* Signatures checked per message, in header order; further ones are not looked at (each costs a
 * DNS query and an RSA operation, and a sender gains nothing from more). */
#define DKIM_CHECK_MAX_SIGNATURES 5

/* RFC 8601 §2.7.1 results. */
enum dkim_check_verdict {
    DKIM_CHECK_PASS,
    DKIM_CHECK_FAIL,      /* the signature or body hash did not verify, or the key is revoked */
    DKIM_CHECK_NEUTRAL,   /* the signature could not be processed (syntax, expired, ...) */
    DKIM_CHECK_TEMPERROR, /* the key could not be fetched now */
    DKIM_CHECK_PERMERROR, /* no usable key is published */
};

struct dkim_check_signature {
    enum dkim_check_verdict verdict;
    char domain[254];   /* d= */
    char selector[254]; /* s= */
    char b[64];         /* the start of b= that tells it from the others (RFC 6008) */
    char reason[96];    /* why it did not pass; "" on pass */
};

struct dkim_check_result {
    size_t nsigs; /* 0: the message carries no DKIM signature (dkim=none) */
    struct dkim_check_signature sigs[DKIM_CHECK_MAX_SIGNATURES];
};

/* libopendkim's verifying library handle; one per daemon, shared by every check. */
struct dkim_checker;
/* NULL when libopendkim cannot start. */
struct dkim_checker *dkim_checker_new(void);
/* Only once no check uses it any more. */
void dkim_checker_free(struct dkim_checker *c);

struct dkim_check;
typedef void (*dkim_check_writable_cb)(void *arg);
typedef void (*dkim_check_done_cb)(void *arg, const struct dkim_check_result *res);

/* A check of one message; `id` names it in libopendkim's errors. The checker must outlive it. The
 * resolver is read from *dns when the keys are wanted (NULL then, e.g. while stopping: the keys
 * count as temporarily unavailable). */
struct dkim_check *dkim_check_new(uv_loop_t *loop, struct dkim_checker *checker,
                                  struct dns_resolver *const *dns, const char *id);
/* Copies message bytes (decoded, CRLF line ends, without the fields we add). Returns 1 when the
 * writer should pause until writable_cb(arg) runs, 0 otherwise. */
int dkim_check_write(struct dkim_check *c, const char *data, size_t len,
                     dkim_check_writable_cb writable_cb, void *arg);
/* The message is complete: cb(arg, result) runs once on the loop when the signatures are checked,
 * after which the check is freed. */
void dkim_check_finish(struct dkim_check *c, dkim_check_done_cb cb, void *arg);
/* Drops the check: no callback runs afterwards; work and DNS in flight end on their own. */
void dkim_check_abort(struct dkim_check *c);

/* Appends the results as Authentication-Results resinfo: "dkim=pass header.d=... header.s=...
 * header.b=..." per signature, separated by ";\r\n\t", or "dkim=none". */
void dkim_check_result_format(const struct dkim_check_result *res, struct buf *out);
/* "pass", "fail", ... */
const char *dkim_check_verdict_name(enum dkim_check_verdict v);

#endif
