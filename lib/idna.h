/*
 * Internationalized domain names (IDNA 2008, RFC 5890-5893, with the UTS #46 mapping) through
 * GNU libidn2. Sluice keeps every domain in its A-label form ("xn--bcher-kva.example"): that is
 * what DNS, `domains`, shaping rules and the spool compare. lib/smtp_addr.c converts what clients
 * send; config_walk.c converts `domains` keys; the SMTP client turns A-labels back into U-labels
 * for servers that announce SMTPUTF8. Pure functions, no I/O; safe on the loop (microseconds).
 */
#ifndef SLUICE_IDNA_H
#define SLUICE_IDNA_H

#include <stddef.h>

/* Non-zero when the domain text (len octets, no NUL needed) needs idna_to_ascii(): it has a
 * non-ASCII octet or a label starting with "xn--" (any case), whose punycode must be checked. */
int idna_needed(const char *domain, size_t len);

/* Converts a domain of well-formed UTF-8 (U-labels, full-width forms, ideographic full stops,
 * mixed case, A-labels) to its lowercase A-label form in out (NUL-terminated). Labels of plain
 * ASCII that do not start with "xn--" are only lowercased, so names such as "r3---sn-x.example"
 * (legal in DNS, not IDNA) pass unchanged. The result still has to pass the caller's host-name
 * rules (LDH, lengths). Returns 0, or -EINVAL with *why set to a static reason fit for a reply
 * ("domain has a character IDNA 2008 disallows", ...), or -ENAMETOOLONG when out is too small. */
int idna_to_ascii(const char *domain, size_t len, char *out, size_t size, const char **why);

/* The reverse for one canonical (lowercase A-label) domain: each "xn--" label becomes its
 * U-label, other labels are copied. A label that does not convert back to exactly itself is
 * kept as an A-label. Returns 0, or -ENAMETOOLONG when out is too small (out then holds "").
 */
int idna_to_unicode(const char *domain, char *out, size_t size);

#endif
