/*
 * The trace Sluice puts on every message it relays (X-Sluice-Trace): queue id, tenant, campaign
 * and, for a message with one recipient, that recipient (redacted reports do not name it), with a
 * MAC (HMAC-SHA256, truncated to 128 bits, base64url) under a configured key named by its id, so
 * that a complaint or a late bounce quoting it can be told ours, and unforged, without any lookup.
 * Pure functions; the intake (feedback_intake.c) verifies on the thread pool, the session
 * (trace_fields.c) formats.
 */
#ifndef SLUICE_TRACE_H
#define SLUICE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "spool/spool.h"

/* Longest tenant and campaign a trace carries; a longer campaign header is not traced. */
#define TRACE_NAME_MAX 128
/* Longest recipient (RFC 5321 §4.5.3.1.3: a path holds at most 256 octets). */
#define TRACE_RCPT_MAX 256
/* Longest token: every field at its longest, base64url-encoded, with its tag and separator. */
#define TRACE_TOKEN_MAX 800
#define TRACE_KEY_ID_MAX 8

/* What a trace says. */
struct trace_fields {
    char queue_id[SPOOL_ID_MAX + 1];
    char tenant[TRACE_NAME_MAX + 1];   /* "" when the sender did not authenticate */
    char campaign[TRACE_NAME_MAX + 1]; /* "" when none was given */
    char rcpt[TRACE_RCPT_MAX + 1];     /* the recipient of a one-recipient message, else "" */
    char key_id[TRACE_KEY_ID_MAX + 1];
};

enum trace_verdict {
    TRACE_VALID,       /* the MAC verifies under the key it names */
    TRACE_MALFORMED,   /* not a trace of ours at all */
    TRACE_UNKNOWN_KEY, /* names a key we do not have */
    TRACE_BAD_MAC,     /* the key is ours but the MAC does not verify: forged or altered */
};

const char *trace_verdict_name(enum trace_verdict v);

/* Formats the token for `f` (key_id ignored), signed with the last of keys[0..nkeys), into out
 * (TRACE_TOKEN_MAX + 1 bytes). The token uses letters, digits, '-', '_' and '.' only, so it is a
 * dot-atom local part as well as a header value. Returns its length, or -EINVAL when there is no
 * key or a field is too long. */
int trace_format(const struct config_trace_key *keys, size_t nkeys, const struct trace_fields *f,
                 char *out);

/* Reads the token in[0..len) (surrounding white space allowed) into *f and checks its MAC
 * against the key it names among keys[0..nkeys), in constant time. */
enum trace_verdict trace_verify(const struct config_trace_key *keys, size_t nkeys, const char *in,
                                size_t len, struct trace_fields *f);

/* The VERP return path "bounce+TOKEN@domain" of queue_id into out (size bytes), TOKEN a trace of
 * the queue id alone: with tenant, campaign and recipient it would not fit the 64 octets of a local
 * part (RFC 5321 §4.5.3.1.1), which our own server enforces too. Returns its length, or -EINVAL. */
int trace_verp_format(const struct config_trace_key *keys, size_t nkeys, const char *queue_id,
                      const char *domain, char *out, size_t size);
/* When addr is "bounce+TOKEN@domain" (domain compared ignoring case), points *token at TOKEN and
 * returns its length; else returns 0. */
size_t trace_verp_token(const char *addr, const char *domain, const char **token);

/* 1 when queue_id could be one this server made: a well-formed id whose time of issue lies
 * within [now - max_age, now + clock slack]; else 0 (an id we never issued). */
int trace_queue_id_plausible(const char *queue_id, uint64_t now_us, uint64_t max_age_us);

#endif
