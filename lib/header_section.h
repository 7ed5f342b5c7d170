/*
 * Collects a message's header section (RFC 5322 §2.1) from a stream of decoded message bytes
 * split anywhere, up to the empty line that ends it, and walks its fields (folded lines included).
 * DKIM signing and verification need the whole section before the first body byte.
 */
#ifndef SLUICE_HEADER_SECTION_H
#define SLUICE_HEADER_SECTION_H

#include <stddef.h>

#include "lib/buf.h"

/* Larger header sections are refused (DKIM neither signs nor verifies them). */
#define HEADER_SECTION_MAX (1024 * 1024)

struct header_section {
    struct buf data; /* the bytes so far: the fields, then what followed the empty line */
    size_t scan;     /* start of the first line not yet examined */
    size_t fields;   /* once complete: the fields are data[0..fields) */
    size_t body;     /* once complete: the body bytes that came along start at data[body] */
};

enum header_section_state { HEADER_SECTION_MORE, HEADER_SECTION_COMPLETE, HEADER_SECTION_TOO_BIG };

#define HEADER_SECTION_INIT                                                                        \
    {                                                                                              \
        BUF_INIT, 0, 0, 0                                                                          \
    }

/* Appends bytes; COMPLETE once the empty line arrived (then `fields` and `body` are set; do not
 * feed more). TOO_BIG past HEADER_SECTION_MAX. */
enum header_section_state header_section_feed(struct header_section *hs, const char *data,
                                              size_t len);
/* The message ended without an empty line: all of it is header section (RFC 5322 §3.5). */
void header_section_end(struct header_section *hs);
void header_section_free(struct header_section *hs);

/* The end of the field starting at h[at]: the next line that does not start with white space
 * (RFC 5322 §2.2.3), or `end`. */
size_t header_field_end(const char *h, size_t at, size_t end);

#endif
