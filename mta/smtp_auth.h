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
/* The AUTH command: replies (334, or an error) and may leave the session in SMTP_STATE_AUTH
 * (waiting for a response line) or SMTP_STATE_AUTH_CHECK (input paused until the answer). */
void smtp_cmd_auth(struct smtp_session *s, struct smtp_slice arg);
/* One line read in SMTP_STATE_AUTH: the client's response to a 334 (res as the line reader gave
 * it; LINE_NEED_MORE is never passed). */
void smtp_auth_line(struct smtp_session *s, enum line_result res, const char *line, size_t len);
/* The session is closing: drops the exchange in progress. A password check already running
 * finishes on its own and releases the session reference it holds. */
void smtp_auth_close(struct smtp_session *s);

#endif
