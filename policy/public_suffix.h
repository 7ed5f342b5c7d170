/*
 * The Public Suffix List (publicsuffix.org), for the organizational domain of DMARC (RFC 7489
 * §3.2): the registrable domain, one label below the longest public suffix that matches. Loaded
 * from the file inbound.public_suffix_list names (Debian's publicsuffix package) when the
 * configuration loads, off the loop; lookups are in memory and safe on the loop. Through libpsl,
 * which implements the list's wildcard and exception rules and matches IDN rules in their A-label
 * form. The daemon holds one list per configuration and swaps it on reload; a message being checked
 * holds a reference to the list it started with.
 */
#ifndef SLUICE_PUBLIC_SUFFIX_H
#define SLUICE_PUBLIC_SUFFIX_H

#include <stddef.h>

#include "lib/buf.h"

struct public_suffixes;

/* Loads the list at `path` (the text .dat format, or libpsl's DAFSA). Returns it with one
 * reference, or NULL after writing a one-line reason into err. Blocking. */
struct public_suffixes *public_suffixes_load(const char *path, struct buf *err);
/* Takes one more reference; returns psl. */
struct public_suffixes *public_suffixes_ref(struct public_suffixes *psl);
/* Drops one; the last frees the list. NULL is a no-op. */
void public_suffixes_unref(struct public_suffixes *psl);

/* The organizational domain of `domain` (lower case, A-labels, no trailing dot) into out: its
 * registrable domain, or the domain itself when it is a public suffix (or has no label above
 * one). Returns 0, or -1 when out is too small. */
int public_suffix_org_domain(const struct public_suffixes *psl, const char *domain, char *out,
                             size_t size);

#endif
