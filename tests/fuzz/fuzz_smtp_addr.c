/*
 * Fuzzes the address parser. The first input byte picks the options, the rest is the path. An
 * accepted address must be canonical: lowercase ASCII domain (A-labels) without a trailing dot,
 * flags that match the text, nothing the options forbid, and its formatted form parses back to
 * itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_addr.h"

static void check_text(const char *s, size_t max, unsigned flags)
{
    size_t len = strnlen(s, max + 1);
    if (len > max)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127 || (c >= 0x80 && !(flags & SMTP_ADDR_UTF8)))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned options =
        data[0] & (SMTP_ADDR_ALLOW_NULL | SMTP_ADDR_ALLOW_POSTMASTER | SMTP_ADDR_ALLOW_UTF8);
    struct smtp_addr a;
    const char *why = NULL;
    if (smtp_addr_parse((const char *)data + 1, size - 1, options, &a, &why) != 0) {
        if (why == NULL || a.flags != 0 || a.local[0] != '\0' || a.domain[0] != '\0')
            abort();
        return 0;
    }
    if (size - 1 > SMTP_PATH_MAX)
        abort();
    check_text(a.local, sizeof a.local - 1, a.flags);
    check_text(a.domain, SMTP_DOMAIN_MAX, 0); /* A-labels: never UTF-8 */
    if ((a.flags & SMTP_ADDR_UTF8) && !(options & SMTP_ADDR_ALLOW_UTF8))
        abort();

    size_t dlen = strlen(a.domain);
    if (a.flags & (SMTP_ADDR_NULL | SMTP_ADDR_POSTMASTER_ONLY)) {
        if (dlen != 0 || (a.flags & SMTP_ADDR_NULL && !(options & SMTP_ADDR_ALLOW_NULL)) ||
            (a.flags & SMTP_ADDR_POSTMASTER_ONLY &&
             (!(options & SMTP_ADDR_ALLOW_POSTMASTER) || strcmp(a.local, "postmaster") != 0)))
            abort();
    } else {
        if (dlen == 0 || a.domain[dlen - 1] == '.' || a.local[0] == '\0')
            abort();
        if (!(a.flags & SMTP_ADDR_IP_LITERAL) != (a.domain[0] != '['))
            abort();
        for (size_t i = 0; i < dlen; i++)
            if (a.domain[i] >= 'A' && a.domain[i] <= 'Z' && !(a.flags & SMTP_ADDR_IP_LITERAL))
                abort();
    }
    if (!(a.flags & SMTP_ADDR_QUOTED) != (a.local[0] != '"'))
        abort();
    /* '@', '%' and '!' are never escaped, so they show in the canonical text iff in the content. */
    if (!(a.flags & SMTP_ADDR_ROUTING_CHARS) != (strpbrk(a.local, "@%!") == NULL))
        abort();

    char text[sizeof a.local + sizeof a.domain + 1], path[sizeof text + 2];
    size_t n = smtp_addr_format(&a, text, sizeof text);
    if (n != strlen(text))
        abort();
    int plen = snprintf(path, sizeof path, "<%s>", text);
    struct smtp_addr again;
    if (smtp_addr_parse(path, (size_t)plen, options, &again, &why) != 0 ||
        strcmp(again.local, a.local) != 0 || strcmp(again.domain, a.domain) != 0 ||
        again.flags != (a.flags & ~(unsigned)(SMTP_ADDR_HAD_ROUTE | SMTP_ADDR_TRAILING_DOT)))
        abort();

    /* The U-label form sent to SMTPUTF8 servers canonicalizes back to the same address. */
    char utf8[4 * sizeof text];
    if (smtp_addr_to_utf8(text, utf8, sizeof utf8) != 0)
        abort();
    plen = snprintf(path, sizeof path, "<%s>", utf8);
    if (plen <= SMTP_PATH_MAX &&
        (smtp_addr_parse(path, (size_t)plen, options | SMTP_ADDR_ALLOW_UTF8, &again, &why) != 0 ||
         strcmp(again.local, a.local) != 0 || strcmp(again.domain, a.domain) != 0))
        abort();
    return 0;
}
