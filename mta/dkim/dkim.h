/*
 * DKIM signing (RFC 6376; Ed25519 per RFC 8463) with libopendkim. A signer set holds the configured
 * entries with their loaded keys; it is built at start and reload and then only read. For a message
 * from a relay-authorized sender the SMTP server opens a dkim_stream, writes it exactly the bytes
 * it spools, and at end of data receives the DKIM-Signature fields to prepend. Hashing and signing
 * run on libuv's thread pool; on the loop the stream only copies bytes. A dkim_job is the
 * synchronous core beneath it: one message, up to DKIM_MAX_SIGNATURES signatures.
 */
#ifndef SLUICE_DKIM_H
#define SLUICE_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "mta/dkim/dkim_key.h"

/* Signatures one message may carry (e.g. RSA beside Ed25519, or an ESP's domain beside the
 * customer's); further matching entries are ignored. */
#define DKIM_MAX_SIGNATURES 4

/* One configured entry, as the config layer hands it over (strings are copied). */
struct dkim_entry_conf {
    const char *domain;           /* From: domain it covers, with its subdomains */
    const char *signing_domain;   /* d=; NULL: `domain` */
    const char *selector;         /* s= */
    const char *key_file;         /* PEM private key, mode 0600 or stricter */
    const char *algorithm;        /* "rsa-sha256" (NULL) or "ed25519-sha256" */
    const char *canonicalization; /* header/body: "relaxed/relaxed" (NULL), "simple/simple", ...;
                                     one word means that for headers and simple for the body */
    uint64_t expire;              /* x= this many seconds after t=; 0: no x= */
    const char *identity;         /* i= (e.g. "@example.com"); NULL: none */
};

/* A loaded entry; read-only once in a set. */
struct dkim_entry {
    char *domain;         /* lower case */
    char *signing_domain; /* d=, lower case */
    char *selector;
    char *identity; /* NULL: no i= */
    struct dkim_key *key;
    int header_canon, body_canon; /* DKIM_CANON_* */
    uint64_t expire;
    struct dkim_lib *lib; /* libopendkim handle with this entry's header lists and x= */
};

struct dkim_signer_set;

/* An empty set with one reference. */
struct dkim_signer_set *dkim_signer_set_new(void);
/* Checks `conf`, loads its key and appends the entry. Returns 0, or a negative errno with a message
 * (naming the key file when the key is at fault) appended to `err`; the set is unchanged then.
 * Blocking (reads the key): call at start or reload. */
int dkim_signer_set_add(struct dkim_signer_set *set, const struct dkim_entry_conf *conf,
                        struct buf *err);
size_t dkim_signer_set_count(const struct dkim_signer_set *set);
/* The i-th entry (i < count), in configuration order. */
const struct dkim_entry *dkim_signer_set_entry(const struct dkim_signer_set *set, size_t i);
/* Reference counting for sets shared by sessions across a reload; loop thread only. */
void dkim_signer_set_ref(struct dkim_signer_set *set);
void dkim_signer_set_unref(struct dkim_signer_set *set);

/* Stores in out[] (at most `max`) the entries whose domain equals `from_domain` or is a parent of
 * it, case-insensitively, in configuration order; returns how many. Thread-safe (reads only). */
size_t dkim_match(const struct dkim_signer_set *set, const char *from_domain,
                  const struct dkim_entry **out, size_t max);

/* Extracts the domain of the (first) mailbox of a From: header field ("From: A <a@Example.com>",
 * folding allowed, no trailing CRLF needed) into `out` in lower case. Returns its length, or
 * -EINVAL when there is no usable domain (or it does not fit in `size`). */
int dkim_from_domain(const char *field, size_t len, char *out, size_t size);

/*
 * The synchronous signer for one message. Feed it the header fields in order, the end of headers,
 * the body in chunks of any size, then call dkim_job_eom. The bytes must be exactly those stored
 * and delivered, with CRLF line ends. All calls run on whatever thread holds the job (one at a
 * time); they cost CPU (hashing, and RSA at eom), so the server runs them on the thread pool
 * through dkim_stream.
 */
struct dkim_job;

/* A job signing with each of entries[0..n) (1 <= n <= DKIM_MAX_SIGNATURES). `id` names the message
 * in libopendkim's errors. Returns NULL with a message in `err` on failure. */
struct dkim_job *dkim_job_new(const struct dkim_entry *const *entries, size_t n, const char *id,
                              struct buf *err);
/* One header field, unfolding CRLFs included; its final CRLF may be present or not. Returns 0 or
 * -EINVAL (text in dkim_job_error). */
int dkim_job_header(struct dkim_job *job, const char *field, size_t len);
int dkim_job_eoh(struct dkim_job *job);
int dkim_job_body(struct dkim_job *job, const char *data, size_t len);
/* Signs, and appends to `out` one folded, CRLF-terminated DKIM-Signature field per entry, in entry
 * order, to be prepended to the message. Returns 0 or -EINVAL (text in dkim_job_error). */
int dkim_job_eom(struct dkim_job *job, struct buf *out);
/* What the last failing call reported; "" when nothing failed. Valid until the job is freed. */
const char *dkim_job_error(const struct dkim_job *job);
void dkim_job_free(struct dkim_job *job);

/*
 * The streaming signer the SMTP server uses. Loop thread only; the work runs on the pool. Write the
 * message bytes as they are spooled; they are hashed on the pool in batches. At the end of the
 * header section the stream takes the From: domain, matches the set and signs with every matching
 * entry (none: the result says 0 signatures and later bytes are dropped at once).
 */
struct dkim_stream;

struct dkim_result {
    int status;              /* 0, or a negative errno when signing failed */
    int signatures;          /* DKIM-Signature fields in `headers`; 0 when no entry matched */
    const char *headers;     /* the fields to prepend: folded, CRLF-terminated */
    size_t headers_len;      /* bytes at `headers` */
    const char *error;       /* status < 0: what failed, for the log */
    const char *from_domain; /* the From: domain ("" when none was found), for the log */
};

typedef void (*dkim_stream_writable_cb)(void *arg);
typedef void (*dkim_stream_done_cb)(struct dkim_stream *s, const struct dkim_result *res,
                                    void *arg);

/* A stream signing with `set` (referenced until the stream is freed); `id` names the message. */
struct dkim_stream *dkim_stream_new(uv_loop_t *loop, struct dkim_signer_set *set, const char *id);
/* Copies message bytes. Returns 1 when the caller should stop writing until writable_cb runs (the
 * pool is 1 MiB behind), 0 otherwise. writable_cb never runs after
 * dkim_stream_finish or dkim_stream_abort. */
int dkim_stream_write(struct dkim_stream *s, const char *data, size_t len,
                      dkim_stream_writable_cb writable_cb, void *arg);
/* Ends the message: hashes what is left and signs on the pool. cb runs once, on the loop, and the
 * stream is freed after it returns (res and its strings with it). */
void dkim_stream_finish(struct dkim_stream *s, dkim_stream_done_cb cb, void *arg);
/* Drops the stream (client gone, transaction reset): no callback runs afterwards. Work in flight
 * cannot be cancelled; the memory goes when it returns. */
void dkim_stream_abort(struct dkim_stream *s);

#endif
