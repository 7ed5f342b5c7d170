/*
 * Hexadecimal digits, for the parsers that read them (percent-escapes, quoted-printable, hashes in
 * files). Header only.
 */
#ifndef SLUICE_HEX_H
#define SLUICE_HEX_H

/* The value of one hex digit (either case), or -1. */
static inline int hex_digit_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
