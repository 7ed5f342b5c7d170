/*
 * Text for the manual pages: roff with the characters roff would take for requests or escapes
 * made literal, and plain-text paragraphs wrapped to a width. The pages themselves are composed by
 * the key table's reference (config_reference.c) and the `sluice help` pages (mta/cli/manual.c).
 */
#ifndef SLUICE_MANPAGE_H
#define SLUICE_MANPAGE_H

#include <stddef.h>

#include "lib/buf.h"

/* Appends len octets of text as roff: '\' as \e, '-' as \- (a minus, as in options and
 * paths), and a '.' or '\'' starting a line (a request) preceded by \&. */
void manpage_roff(struct buf *out, const char *text, size_t len);
void manpage_roff_str(struct buf *out, const char *text);

/* Appends text (words separated by spaces) as lines of at most width columns (a longer word gets a
 * line of its own), each preceded by indent spaces and ended by '\n'. */
void manpage_wrap(struct buf *out, const char *text, int indent, int width);

#endif
