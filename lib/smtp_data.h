/*
 * The DATA phase decoder (RFC 5321 §4.5.2): finds the end of data and undoes dot-stuffing as bytes
 * stream through, without buffering lines. Only CRLF "." CRLF ends the data; a bare CR or bare LF
 * is ordinary content, never a line ending, so no sequence of them can end a message early and
 * smuggle a second one (CVE-2023-51764 class). Such bytes and over-long lines are flagged for the
 * caller.
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

#endif
