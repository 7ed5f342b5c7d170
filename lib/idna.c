#include "lib/idna.h"

#include <errno.h>
#include <idn2.h>
#include <string.h>
#include <strings.h>

/* UTS #46 non-transitional processing, as IDNA 2008 means it: ß, ς and the joiners ZWJ/ZWNJ are
 * characters of their own, so "faß.example" is xn--fa-hia.example, not fass.example (someone
 * else's domain); transitional processing is deprecated since Unicode 15.1. NFC first, since
 * some systems send decomposed text. */
#define IDNA_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

/* A domain longer than this cannot be valid in any form (255 octets of A-labels; a U-label is at
 * most 4 octets per code point of a 59-character punycode label). */
#define IDNA_INPUT_MAX 1024

static int starts_xn(const char *s, size_t len)
{
    return len >= 4 && strncasecmp(s, "xn--", 4) == 0;
}

/* Each label [start, end) of a domain in turn: calls fn, stops at its first non-zero return. */
static int for_each_label(const char *s, size_t len,
                          int (*fn)(const char *label, size_t n, void *arg), void *arg)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        int rc = fn(s + start, i - start, arg);
        if (rc != 0)
            return rc;
        start = i + 1;
    }
    return 0;
}

static int label_needs_idna(const char *label, size_t n, void *arg)
{
    if (starts_xn(label, n))
        return 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)label[i] >= 0x80)
            return 1;
    return 0;
}

int idna_needed(const char *domain, size_t len)
{
    return for_each_label(domain, len, label_needs_idna, NULL);
}

/* Why libidn2 refused a label, in words fit for an SMTP reply. */
static const char *idna_reason(int rc, int was_alabel)
{
    switch (rc) {
    case IDN2_DISALLOWED:
    case IDN2_UNASSIGNED:
        return "domain has a character IDNA 2008 disallows";
    case IDN2_CONTEXTJ:
    case IDN2_CONTEXTJ_NO_RULE:
    case IDN2_CONTEXTO:
    case IDN2_CONTEXTO_NO_RULE:
        return "domain has a joiner or context character where IDNA 2008 forbids it";
    case IDN2_2HYPHEN:
        return "domain has a label with \"--\" in its third and fourth places";
    case IDN2_HYPHEN_STARTEND:
        return "domain has a label that starts or ends with a hyphen";
    case IDN2_LEADING_COMBINING:
        return "domain has a label that starts with a combining mark";
    case IDN2_BIDI:
        return "domain breaks the IDNA right-to-left rules (RFC 5893)";
    case IDN2_TOO_BIG_DOMAIN:
        return "domain too long";
    case IDN2_TOO_BIG_LABEL:
    case IDN2_PUNYCODE_BIG_OUTPUT:
        return "domain has a label longer than 63 octets as an A-label";
    default:
        return was_alabel ? "domain has an invalid A-label (xn--)"
                          : "domain does not convert to an A-label (IDNA 2008)";
    }
}

struct to_ascii {
    char *out;
    size_t size, n;
    size_t labels; /* written so far: every one after the first is preceded by a dot */
    const char **why;
};

static int append(char *out, size_t size, size_t *n, const char *s, size_t len)
{
    if (*n + len >= size)
        return -ENAMETOOLONG;
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = '\0';
    return 0;
}

static int label_to_ascii(const char *label, size_t n, void *arg)
{
    struct to_ascii *st = arg;
    if (st->labels++ > 0 && append(st->out, st->size, &st->n, ".", 1) < 0)
        return -ENAMETOOLONG;
    if (!label_needs_idna(label, n, NULL)) {
        size_t at = st->n;
        if (append(st->out, st->size, &st->n, label, n) < 0)
            return -ENAMETOOLONG;
        for (char *p = st->out + at; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        return 0;
    }
    char input[IDNA_INPUT_MAX + 1];
    memcpy(input, label, n);
    input[n] = '\0';
    char *ascii = NULL;
    int rc = idn2_to_ascii_8z(input, &ascii, IDNA_FLAGS);
    if (rc != IDN2_OK) {
        *st->why = idna_reason(rc, starts_xn(label, n));
        return -EINVAL;
    }
    rc = append(st->out, st->size, &st->n, ascii, strlen(ascii));
    idn2_free(ascii);
    return rc;
}

int idna_to_ascii(const char *domain, size_t len, char *out, size_t size, const char **why)
{
    if (size == 0)
        return -ENAMETOOLONG;
    out[0] = '\0';
    if (len > IDNA_INPUT_MAX) {
        *why = "domain too long";
        return -EINVAL;
    }
    if (memchr(domain, '\0', len) != NULL) { /* libidn2 would stop there */
        *why = "domain has a NUL octet";
        return -EINVAL;
    }
    struct to_ascii st = {out, size, 0, 0, why};
    return for_each_label(domain, len, label_to_ascii, &st);
}

struct to_unicode {
    char *out;
    size_t size, n;
    size_t labels;
};

static int label_to_unicode(const char *label, size_t n, void *arg)
{
    struct to_unicode *st = arg;
    if (st->labels++ > 0 && append(st->out, st->size, &st->n, ".", 1) < 0)
        return -ENAMETOOLONG;
    char input[IDNA_INPUT_MAX + 1];
    char *unicode = NULL, *back = NULL;
    int same = 0;
    if (starts_xn(label, n) && n <= IDNA_INPUT_MAX) {
        memcpy(input, label, n);
        input[n] = '\0';
        same = idn2_to_unicode_8z8z(input, &unicode, 0) == IDN2_OK &&
               idn2_to_ascii_8z(unicode, &back, IDNA_FLAGS) == IDN2_OK && strcmp(back, input) == 0;
    }
    int rc = same ? append(st->out, st->size, &st->n, unicode, strlen(unicode))
                  : append(st->out, st->size, &st->n, label, n);
    idn2_free(unicode);
    idn2_free(back);
    return rc;
}

int idna_to_unicode(const char *domain, char *out, size_t size)
{
    if (size == 0)
        return -ENAMETOOLONG;
    out[0] = '\0';
    struct to_unicode st = {out, size, 0, 0};
    int rc = for_each_label(domain, strlen(domain), label_to_unicode, &st);
    if (rc < 0)
        out[0] = '\0';
    return rc;
}
