/*
 * SMTP AUTH (RFC 4954) in an inbound session: PLAIN (RFC 4616) and LOGIN, offered only over TLS,
 * on a submission listener, when relay.users is set. The password check runs on the thread pool
 * while the session waits with its input paused; a client that keeps failing gets its answers
 * delayed. Success sets s->auth_user, which the relay decision, the Received: header and the
 * spool envelope use. Part of the session (smtp_server.c dispatches to it).
 */
#ifndef SLUICE_SMTP_AUTH_H
#define SLUICE_SMTP_AUTH_H

#include <stddef.h>

#include "lib/linereader.h"
#include "lib/smtp_cmd.h"

/* RFC 4954 §4: a response to a 334 challenge may be up to 12288 octets (CRLF included). The AUTH
 * command itself, with an initial response, stays within the 512-octet command line. */
#define SMTP_AUTH_LINE_MAX 12288

struct smtp_session;

/* Non-zero when AUTH is listed in this session's EHLO reply (and accepted). */
int smtp_auth_offered(const struct smtp_session *s);
/* What AUTH needs of the session before its phase is looked at (offered here, TLS, EHLO, not
 * authenticated yet). Returns 0, or -1 after replying. */
int smtp_auth_check(struct smtp_session *s, struct smtp_slice arg);
/* The AUTH command, outside a transaction: replies (334, or an error) and may leave the session
 * in SMTP_PHASE_AUTH (waiting for a response line) or waiting for SMTP_WAIT_AUTH_CHECK (input
 * paused until the answer). */
void smtp_cmd_auth(struct smtp_session *s, struct smtp_slice arg);
/* One line read in SMTP_PHASE_AUTH: the client's response to a 334 (res as the line reader gave
 * it; LINE_NEED_MORE is never passed). */
void smtp_auth_line(struct smtp_session *s, enum line_result res, const char *line, size_t len);
/* The session is closing: drops the exchange in progress. A password check already running
 * finishes on its own and releases the session reference it holds. */
void smtp_auth_close(struct smtp_session *s);

/* The parsing of a client's responses, pure (the session above and tests/fuzz/fuzz_smtp_auth.c). */
enum smtp_auth_response {
    SMTP_AUTH_RESPONSE_OK,         /* decoded: *msg holds *msg_len octets */
    SMTP_AUTH_RESPONSE_CANCEL,     /* "*": the client gives up (RFC 4954 §4) */
    SMTP_AUTH_RESPONSE_BAD_BASE64, /* not strict base64 */
};
/* Decodes one response: the AUTH command's initial response (`initial`: "=" stands for an empty
 * one) or a line answering 334. On SMTP_AUTH_RESPONSE_OK, *msg is malloc'd with a NUL after the
 * octets (which may hold NULs themselves); the caller wipes and frees it. Otherwise *msg is NULL.
 */
enum smtp_auth_response smtp_auth_response_decode(const char *text, size_t len, int initial,
                                                  unsigned char **msg, size_t *msg_len);

/* A decoded PLAIN message "authzid NUL authcid NUL passwd" (RFC 4616 §2): slices of it. */
struct smtp_auth_plain {
    struct smtp_slice authzid; /* empty: act as authcid */
    struct smtp_slice authcid;
    struct smtp_slice passwd; /* everything after the second NUL (NULs included) */
};
/* Splits msg[0..len). Returns 0, or -1 when it holds fewer than two NULs. */
int smtp_auth_plain_split(const unsigned char *msg, size_t len, struct smtp_auth_plain *out);

#endif
