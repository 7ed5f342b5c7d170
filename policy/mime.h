/*
 * Attachment blocking: a streaming MIME parser (RFC 2045/2046, RFC 2047 encoded-words, RFC 2231
 * parameter continuations) fed the message while DATA arrives, in chunks of any size, that finds
 * the filename of every part (Content-Disposition filename=, Content-Type name=), nested multiparts
 * and message/rfc822 parts included, and checks each against inbound.blocked_attachments. Only
 * headers are parsed and bodies are skipped line by line: the state is a few fixed buffers,
 * whatever the input. The session asks for the verdict at end of data.
 */
#ifndef SLUICE_MIME_H
#define SLUICE_MIME_H

#include <stddef.h>

#include "policy/policy.h"

/* Caps (state stays bounded whatever the input). Going over one makes the message "malformed". */
#define MIME_DEPTH_MAX 20           /* nested multiparts */
#define MIME_PARTS_MAX 1000         /* header blocks: parts and message/rfc822 messages */
#define MIME_HEADER_MAX (256 << 10) /* octets of one header block */
#define MIME_FIELD_MAX (16 << 10)   /* one unfolded Content-Type/-Disposition field */
#define MIME_BOUNDARY_MAX 200       /* RFC 2046 allows 70 */
#define MIME_NAME_MAX 1024          /* one filename, decoded */

enum mime_status {
    MIME_CLEAN,     /* no blocked filename found */
    MIME_BLOCKED,   /* a filename has a blocked extension: see mime_result.name */
    MIME_MALFORMED, /* over a cap, or a structure a mail client could read differently */
};

struct mime_result {
    enum mime_status status;
    const char *name; /* MIME_BLOCKED: the filename, printable ASCII (others as '?'), shortened */
    const char *problem; /* MIME_MALFORMED: what is wrong, static text */
    unsigned parts;      /* header blocks seen, the message's own included */
    unsigned filenames;  /* filenames seen */
    int unterminated;    /* a multipart had no closing boundary (not rejected: truncated mail) */
};

/* Called for each filename found, raw (as written, quoted-string escapes removed) and decoded
 * (RFC 2231 / RFC 2047 applied); both are NUL-terminated and live until the callback returns. */
typedef void (*mime_filename_cb)(void *arg, const char *raw, const char *decoded);

struct mime_parser;

/* A parser for one message. `blocked` holds lower-case extensions without the dot (as in
 * cfg->inbound.blocked_attachments) and must outlive the parser; on_filename may be NULL. */
struct mime_parser *mime_parser_new(const char *const *blocked, size_t nblocked,
                                    mime_filename_cb on_filename, void *arg);
void mime_parser_free(struct mime_parser *p);

/* Feeds the next `len` octets of the message as it is stored (headers and body, dot-unstuffed,
 * CRLF or LF line ends). Once the verdict is known (blocked or malformed) the rest is skipped. */
void mime_parser_feed(struct mime_parser *p, const char *data, size_t len);

/* Ends the message (a last line without a line end is parsed) and returns the result, which lives
 * as long as the parser. */
const struct mime_result *mime_parser_finish(struct mime_parser *p);

/* The decision for a finished parse: accept; 554 5.7.1 "Message rejected: attachment type not
 * allowed: <name>"; or, for a malformed message, 554 5.6.0 "Message rejected: malformed MIME
 * structure". The text lives as long as the parser. */
struct policy_decision mime_parser_verdict(struct mime_parser *p);

/* 1 when the extension of `name` (after the last dot, ASCII case-insensitive, after removing
 * trailing dots and blanks and anything from a NUL on: "x.EXE.", "x.exe ") is in `blocked`. */
int mime_name_blocked(const char *name, size_t len, const char *const *blocked, size_t nblocked);

#endif
