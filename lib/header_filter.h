/*
 * Authentication-Results hygiene (RFC 8601 §5): removes, from a message's header section as it
 * streams in, every Authentication-Results field whose authserv-id is ours, so that no sender can
 * forge a verdict our own checks seem to have given. Fields naming other hosts stay. The input is
 * the decoded message (after dot-unstuffing) in chunks split anywhere; folded fields are handled,
 * and everything from the blank line ending the header section on passes untouched.
 */
#ifndef SLUICE_HEADER_FILTER_H
#define SLUICE_HEADER_FILTER_H

#include <stddef.h>

#include "lib/buf.h"

/* An Authentication-Results field is held until its end to read its authserv-id; one longer than
 * this is removed unread (no genuine one comes close), so memory stays bounded. */
#define HEADER_FILTER_FIELD_MAX (16 * 1024)

struct header_filter;

/* A filter for one message; authserv_id (borrowed, must outlive it) is compared ignoring case. */
struct header_filter *header_filter_new(const char *authserv_id);
void header_filter_free(struct header_filter *f);
/* Feeds in[0..len) and appends the bytes that are kept to out. */
void header_filter_feed(struct header_filter *f, const char *in, size_t len, struct buf *out);
/* The message ended: appends a field still held (one not ending in a line break). */
void header_filter_finish(struct header_filter *f, struct buf *out);
/* 1 once the header section is over: from then on every byte passes unchanged, so the caller may
 * stop feeding. */
int header_filter_passing(const struct header_filter *f);
/* Fields removed so far. */
unsigned header_filter_removed(const struct header_filter *f);

#endif
