/*
 * Base64 (RFC 4648 section 4) for the parsers that meet it: SMTP AUTH's strict form and MIME's
 * lenient one (which walks the alphabet itself with base64_value).
 */
#ifndef SLUICE_BASE64_H
#define SLUICE_BASE64_H

#include <stddef.h>

/* The 6-bit value of an alphabet character, or -1 for any other byte ('=' included). */
int base64_value(unsigned char c);

/* Strict base64 (padded, no spaces, nothing after the padding) into out, which has room for
 * len / 4 * 3 octets. Returns the decoded length, or -1. */
long base64_decode_strict(const char *in, size_t len, unsigned char *out);

#endif
