/*
 * The DATA phase in both directions (RFC 5321 §4.5.2). The decoder (server side) finds the end of
 * data and undoes dot-stuffing as bytes stream through, without buffering lines. Only CRLF "." CRLF
 * ends the data; a bare CR or bare LF is ordinary content, never a line ending, so no sequence of
 * them can end a message early and smuggle a second one (CVE-2023-51764 class). Such bytes and
 * over-long lines are flagged for the caller. The encoder (client side) turns a stored message into
 * what goes on the wire.
 */
#ifndef SLUICE_SMTP_DATA_H
#define SLUICE_SMTP_DATA_H

#include <stddef.h>

#include "lib/buf.h"

/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF. */
#define SMTP_TEXT_LINE_MAX 1000

#define SMTP_DATA_BARE_LF 0x01
#define SMTP_DATA_BARE_CR 0x02
#define SMTP_DATA_LONG_LINE 0x04

struct smtp_data {
    int state;       /* internal */
    size_t line_len; /* octets in the current line so far, CRLF excluded */
    unsigned flags;  /* SMTP_DATA_* seen so far */
};

void smtp_data_init(struct smtp_data *d);

/* Decodes in[0..len) and appends the message bytes to out. Returns how many input bytes were used:
 * all of them, unless the end of data was reached, in which case *done is set and the bytes after
 * the final CRLF belong to the next command. The final ".CRLF" is not part of the message; the CRLF
 * before it is. */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out, int *done);

/* The encoder: bare CR and bare LF become CRLF (a CR followed by LF stays one CRLF), a "." at
 * the start of a line is doubled, and the end adds a CRLF when the message does not end with one,
 * then ".CRLF". Chunked (for BDAT, RFC 3030), the same without the doubled dots and the ".CRLF".
 * Binary (BDAT with BODY=BINARYMIME, RFC 3030 §3): the octets as they are, nothing added.
 * Streaming: the message may be fed in pieces of any size. */
struct smtp_data_enc {
    int state;        /* internal */
    unsigned chunked; /* BDAT: no dot-stuffing, no final dot */
    unsigned binary;  /* BINARYMIME: no line endings touched either */
};

void smtp_data_enc_init(struct smtp_data_enc *e);
void smtp_data_enc_init_chunked(struct smtp_data_enc *e);
void smtp_data_enc_init_binary(struct smtp_data_enc *e);
/* The size of a stored message as RFC 1870 §4 counts it for SIZE=: its octets with every line
 * ending as CRLF, the last one included, without dot-stuffing or the final dot (what the chunked
 * encoder sends). */
size_t smtp_data_wire_size(const char *msg, size_t len);
/* Encodes in[0..len) and appends the wire bytes (at most 2 * len) to out. */
void smtp_data_enc_feed(struct smtp_data_enc *e, const char *in, size_t len, struct buf *out);
/* Appends the final CRLF when missing and the end-of-data ".CRLF". */
void smtp_data_enc_finish(struct smtp_data_enc *e, struct buf *out);

#endif
