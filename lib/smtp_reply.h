/*
 * SMTP reply parsing for the client side (RFC 5321 §4.2): an incremental parser that assembles a
 * possibly multi-line reply from arbitrary chunks of bytes sent by a remote (and possibly hostile)
 * server, the RFC 3463 enhanced status code, a log-safe rendering of the text, and the EHLO
 * capability list. No I/O. The parser owns the reply it builds; the caller owns the input bytes.
 */
#ifndef SLUICE_SMTP_REPLY_H
#define SLUICE_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets including CRLF, but real servers send
 * longer ones (long banners, policy URLs), so we tolerate up to 2048. A reply of more lines or
 * more bytes than below is an error: the peer is broken or hostile. */
#define SMTP_REPLY_LINE_MAX 2048
#define SMTP_REPLY_LINES_MAX 100
#define SMTP_REPLY_TOTAL_MAX 16384

/* RFC 3463 enhanced status code "class.subject.detail"; cls is 0 when the reply had none. */
struct smtp_enhanced {
    unsigned cls;     /* 2, 4 or 5 (same as the reply code's first digit); 0 when absent */
    unsigned subject; /* 0..999 */
    unsigned detail;  /* 0..999 */
};

struct smtp_reply {
    int code;                      /* 200..559, all lines agree */
    struct smtp_enhanced enhanced; /* from the first line's text, when present and consistent */
    size_t nlines;                 /* 1..SMTP_REPLY_LINES_MAX */
    struct buf text; /* owned: each line's text (after "ddd-" / "ddd "), raw, every line ended by
                        '\n' (a line's text never holds LF); iterate with smtp_reply_line_next() */
};

enum smtp_reply_status {
    REPLY_NEED_MORE, /* all input consumed; the reply is not complete yet */
    REPLY_DONE,      /* a whole reply is in the parser's reply; bytes after *consumed are next */
    REPLY_ERROR,     /* malformed or over a cap; sticky: the connection must be dropped */
};

struct smtp_reply_parser {
    struct buf line;               /* owned: the current, unfinished line (without its LF) */
    struct smtp_reply reply;       /* the reply being assembled; complete after REPLY_DONE */
    size_t total;                  /* octets of the reply so far, line ends included */
    enum smtp_reply_status status; /* of the last feed */
    const char *error;             /* static text saying why, after REPLY_ERROR */
};

/* Prepares an empty parser; it allocates nothing until bytes arrive. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);
/* Frees the parser's buffers (the reply included). */
void smtp_reply_parser_close(struct smtp_reply_parser *p);

/* Feeds data[0..len). Lines end with CRLF or a bare LF (many servers send those); a NUL byte, a
 * malformed code, codes that differ between lines, or a line/reply over a cap give REPLY_ERROR.
 * *consumed is how many bytes were used: all of them for NEED_MORE, up to the end of the reply's
 * last line for DONE (PIPELINING: the rest belongs to the next reply; feed it again). After DONE,
 * p->reply stays valid until the next feed, which starts a new reply. After ERROR every feed
 * returns ERROR and consumes nothing. */
enum smtp_reply_status smtp_reply_parser_feed(struct smtp_reply_parser *p, const void *data,
                                              size_t len, size_t *consumed);

/* Iterates the reply's text lines: start with *pos = 0; each call returns 1 and points
 * text and len at the next line (borrowed from the reply, without '\n'), or returns 0 at the end.
 */
int smtp_reply_line_next(const struct smtp_reply *r, size_t *pos, const char **text, size_t *len);

/* Appends the reply's text lines to out, joined by sep, for logs and DSN diagnostic codes: bytes
 * outside printable ASCII (controls, DEL, 8-bit) become '?', so a server cannot inject line
 * breaks or terminal escapes. A line's leading enhanced code equal to the reply's is dropped from
 * the lines after the first (it repeats on every line of multi-line replies). out ends with a NUL
 * that len does not count. */
void smtp_reply_text_join(const struct smtp_reply *r, const char *sep, struct buf *out);

/* Parses an RFC 3463 enhanced code at the start of text[0..len): "class.subject.detail" with
 * class 2, 4 or 5 and 1-3 digits each, followed by a space or the end. Returns the number of
 * bytes it spans (at least 5) and fills *out, or 0 when there is none. */
size_t smtp_enhanced_parse(const char *text, size_t len, struct smtp_enhanced *out);

/* EHLO extensions (RFC 5321 §4.1.1.1 and the RFCs of each keyword). */
enum smtp_ext {
    SMTP_EXT_PIPELINING = 1u << 0,          /* RFC 2920 */
    SMTP_EXT_SIZE = 1u << 1,                /* RFC 1870 */
    SMTP_EXT_8BITMIME = 1u << 2,            /* RFC 6152 */
    SMTP_EXT_STARTTLS = 1u << 3,            /* RFC 3207 */
    SMTP_EXT_SMTPUTF8 = 1u << 4,            /* RFC 6531 */
    SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 5, /* RFC 2034 */
    SMTP_EXT_CHUNKING = 1u << 6,            /* RFC 3030 */
    SMTP_EXT_DSN = 1u << 7,                 /* RFC 3461 */
    SMTP_EXT_AUTH = 1u << 8,                /* RFC 4954 */
    SMTP_EXT_BINARYMIME = 1u << 9,          /* RFC 3030 */
};

/* SASL mechanisms announced after AUTH; others are ignored. */
enum smtp_auth_mech {
    SMTP_AUTH_PLAIN = 1u << 0,
    SMTP_AUTH_LOGIN = 1u << 1,
    SMTP_AUTH_CRAM_MD5 = 1u << 2,
    SMTP_AUTH_SCRAM_SHA_256 = 1u << 3,
    SMTP_AUTH_XOAUTH2 = 1u << 4,
};

struct smtp_ehlo {
    unsigned ext;      /* enum smtp_ext bits */
    uint64_t size_max; /* SIZE argument; 0 when absent, unparsable or "no fixed limit" */
    unsigned auth;     /* enum smtp_auth_mech bits */
};

/* Reads the capabilities from a 250 EHLO reply: every line after the first (which greets) is a
 * keyword with optional parameters, matched case-insensitively; unknown keywords and junk are
 * ignored, and the old "AUTH=LOGIN PLAIN" form is understood. Returns 0, or -EINVAL when the
 * reply is not a 250. */
int smtp_reply_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out);

#endif
