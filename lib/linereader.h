/*
 * Splits SMTP command lines out of received bytes. Only CRLF ends a line. A line holding a bare CR
 * or a bare LF, or longer than the cap, is skipped up to its CRLF and reported once, so no part of
 * it is ever read as a command of its own ("NOOP\nMAIL FROM:..." runs no MAIL).
 */
#ifndef SLUICE_LINEREADER_H
#define SLUICE_LINEREADER_H

#include <stddef.h>

enum line_result {
    LINE_NEED_MORE, /* no complete line yet; everything up to *consumed may be dropped */
    LINE_OK,        /* *line and *line_len hold the line without its CRLF */
    LINE_TOO_LONG,  /* a line over the cap ended; it was discarded */
    LINE_BAD_EOL,   /* a line holding a bare LF or a bare CR ended; it was discarded */
};

struct linereader {
    size_t max;                  /* cap in octets including CRLF */
    enum line_result discarding; /* LINE_TOO_LONG or LINE_BAD_EOL while skipping to the next
                                    CRLF; LINE_OK otherwise */
};

void linereader_init(struct linereader *lr, size_t max);

/* Looks for the next line in data[0..len). *consumed is how many bytes the caller may drop from the
 * front of its buffer afterwards (the line and its CRLF, or skipped bytes). *line borrows from
 * data. */
enum line_result linereader_next(struct linereader *lr, const char *data, size_t len,
                                 const char **line, size_t *line_len, size_t *consumed);

#endif
