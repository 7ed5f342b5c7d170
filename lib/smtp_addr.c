#include "lib/smtp_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/idna.h"

/* Label length limit (RFC 1035 §2.3.4), on the A-label form (RFC 5890 §2.3.2.1). */
#define LABEL_MAX 63

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -EINVAL;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* atext (RFC 5322 §3.2.3), which RFC 5321's Atom uses. */
static int is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4), or 0. Overlong forms, surrogates,
 * code points past U+10FFFF and truncated sequences are refused, and so are the C1 controls
 * (U+0080..U+009F): control characters are refused in every form. */
static size_t utf8_length(const unsigned char *s, size_t avail)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (s[0] == 0xc2)
        lo = 0xa0; /* C1 controls */
    else if (s[0] == 0xe0)
        lo = 0xa0; /* overlong */
    else if (s[0] == 0xed)
        hi = 0x9f; /* surrogates */
    else if (s[0] == 0xf0)
        lo = 0x90; /* overlong */
    else if (s[0] == 0xf4)
        hi = 0x8f; /* past U+10FFFF */
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Accepts the non-ASCII character at s when the options allow UTF-8; returns its length or 0 with
 * *why set. */
static size_t utf8_accept(const unsigned char *s, size_t avail, unsigned options, unsigned *flags,
                          const char **why)
{
    if (!(options & SMTP_ADDR_ALLOW_UTF8)) {
        *why = "UTF-8 not allowed";
        return 0;
    }
    size_t n = utf8_length(s, avail);
    if (n == 0)
        *why = "bad UTF-8";
    else
        *flags |= SMTP_ADDR_UTF8;
    return n;
}

/* Dot-string (RFC 5321 §4.1.2) over already validated octets: atoms of atext or UTF-8, joined by
 * single dots. */
static int is_dot_string(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' ? s[i + 1] == '.' : !is_atext(c) && c < 0x80)
            return 0;
    }
    return 1;
}

/* A host name in ASCII: LDH labels, an optional trailing dot. Writes the lowercased name without
 * the dot to out (SMTP_DOMAIN_MAX + 1 octets). */
static int parse_domain_name(const unsigned char *s, size_t len, char *out, unsigned *flags,
                             const char **why)
{
    if (len > 0 && s[len - 1] == '.') {
        len--;
        *flags |= SMTP_ADDR_TRAILING_DOT;
    }
    if (len == 0)
        return fail(why, "bad domain");
    if (len > SMTP_DOMAIN_MAX)
        return fail(why, "domain too long");

    size_t label_start = 0;
    int all_digits = 1; /* of the current label */
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            size_t label_len = i - label_start;
            if (label_len == 0 || label_len > LABEL_MAX || s[label_start] == '-' || s[i - 1] == '-')
                return fail(why, "bad domain");
            if (i < len)
                all_digits = 1;
            label_start = i + 1;
        } else if (is_alpha(s[i]) || s[i] == '-') {
            all_digits = 0;
        } else if (!is_digit(s[i])) {
            return fail(why, "bad domain");
        }
    }
    /* An all-numeric top label would let "1.2.3.4" pose as a host name (RFC 3696 §2). */
    if (all_digits)
        return fail(why, "bad domain");

    for (size_t i = 0; i < len; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
    out[len] = '\0';
    return 0;
}

/* A domain name, internationalized ones included (RFC 6531 §3.3): U-labels and what UTS #46 maps
 * to them (full-width letters, ideographic full stops, capitals) must be well-formed UTF-8 and
 * allowed, then become their A-label form, which is the canonical name (lib/idna.h). A-labels are
 * checked too. The result must be a host name like any other. */
static int parse_domain(const unsigned char *s, size_t len, unsigned options, char *out,
                        unsigned *flags, const char **why)
{
    unsigned domain_flags = 0; /* UTF-8 in the domain does not survive canonicalization */
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80)
            continue;
        size_t n = utf8_accept(s + i, len - i, options, &domain_flags, why);
        if (n == 0)
            return -EINVAL;
        i += n - 1;
    }
    if (!idna_needed((const char *)s, len))
        return parse_domain_name(s, len, out, flags, why);
    char ascii[SMTP_DOMAIN_MAX + 2]; /* room for a trailing dot */
    int rc = idna_to_ascii((const char *)s, len, ascii, sizeof ascii, why);
    if (rc == -ENAMETOOLONG)
        return fail(why, "domain too long");
    if (rc < 0)
        return -EINVAL;
    return parse_domain_name((const unsigned char *)ascii, strlen(ascii), out, flags, why);
}

/* A strict dotted quad: four decimal numbers 0-255 without leading zeros. */
static int is_dotted_quad(const unsigned char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && (i == len || s[i++] != '.'))
            return 0;
        size_t start = i;
        unsigned value = 0;
        while (i < len && is_digit(s[i]) && i - start < 3)
            value = value * 10 + (s[i++] - '0');
        size_t digits = i - start;
        if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0'))
            return 0;
    }
    return i == len;
}

/* An address literal "[...]" (RFC 5321 §4.1.3): IPv4 or IPv6; general literals are refused. */
static int parse_literal(const unsigned char *s, size_t len, char *out, const char **why)
{
    if (len < 2 || s[len - 1] != ']')
        return fail(why, "bad address literal");
    const unsigned char *in = s + 1;
    size_t in_len = len - 2;
    if (is_dotted_quad(in, in_len)) {
        memcpy(out, s, len);
        out[len] = '\0';
        return 0;
    }
    if (in_len > 5 && strncasecmp((const char *)in, "IPv6:", 5) == 0) {
        char text[INET6_ADDRSTRLEN];
        unsigned char addr[16];
        if (in_len - 5 < sizeof text) {
            memcpy(text, in + 5, in_len - 5);
            text[in_len - 5] = '\0';
            if (inet_pton(AF_INET6, text, addr) == 1 &&
                inet_ntop(AF_INET6, addr, text, sizeof text) != NULL) {
                snprintf(out, SMTP_DOMAIN_MAX + 1, "[IPv6:%s]", text);
                return 0;
            }
        }
    }
    return fail(why, "bad address literal");
}

/* A source route "@a,@b:" (A-d-l, RFC 5321 §4.1.2) starting at s[*pos] == '@'. Each domain is
 * checked, then the route is dropped. */
static int skip_route(const unsigned char *s, size_t len, size_t *pos, unsigned options,
                      const char **why)
{
    char scratch[SMTP_DOMAIN_MAX + 1];
    unsigned scratch_flags = 0;
    size_t i = *pos;
    for (;;) {
        if (i == len || s[i] != '@')
            return fail(why, "bad source route");
        size_t start = ++i;
        while (i < len && s[i] != ',' && s[i] != ':')
            i++;
        if (i == len ||
            parse_domain(s + start, i - start, options, scratch, &scratch_flags, why) < 0)
            return fail(why, "bad source route");
        if (s[i++] == ':')
            break;
    }
    *pos = i;
    return 0;
}

/* The local part starting at s[*pos], up to the '@' or '>' after it. Leaves its unquoted content in
 * content (SMTP_LOCAL_MAX octets at most) and *quoted set if it was a Quoted-string. */
static int parse_local(const unsigned char *s, size_t len, size_t *pos, unsigned options,
                       char *content, size_t *content_len, int *quoted, unsigned *flags,
                       const char **why)
{
    size_t i = *pos, n = 0;
    *quoted = i < len && s[i] == '"';
    if (*quoted)
        i++;
    for (;;) {
        if (i == len)
            return fail(why, *quoted ? "bad local part" : "missing angle brackets");
        unsigned char c = s[i];
        size_t clen = 1;
        const unsigned char *octets = s + i;
        if (*quoted && c == '"') {
            i++;
            break;
        }
        if (!*quoted && (c == '@' || c == '>'))
            break;
        if (c >= 0x80) {
            clen = utf8_accept(s + i, len - i, options, flags, why);
            if (clen == 0)
                return -EINVAL;
        } else if (*quoted && c == '\\') {
            /* quoted-pairSMTP: backslash and one printable ASCII octet */
            if (i + 1 == len || s[i + 1] < 32 || s[i + 1] > 126)
                return fail(why, "bad local part");
            octets++;
            i++;
        } else if (*quoted ? c < 32 || c > 126 : !is_atext(c) && c != '.') {
            return fail(why, "bad local part");
        }
        if (n + clen > SMTP_LOCAL_MAX)
            return fail(why, "local part too long");
        memcpy(content + n, octets, clen);
        n += clen;
        i += clen;
    }
    if (!*quoted && !is_dot_string(content, n))
        return fail(why, "bad local part");
    if (i == len || (s[i] != '@' && s[i] != '>'))
        return fail(why, "bad local part");
    *pos = i;
    *content_len = n;
    return 0;
}

/* Writes the canonical local part: the content as is when it is a Dot-string, else quoted with only
 * '"' and '\' escaped. */
static void canonical_local(struct smtp_addr *out, const char *content, size_t len)
{
    if (is_dot_string(content, len)) {
        memcpy(out->local, content, len);
        out->local[len] = '\0';
        return;
    }
    size_t n = 0;
    out->local[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (content[i] == '"' || content[i] == '\\')
            out->local[n++] = '\\';
        out->local[n++] = content[i];
    }
    out->local[n++] = '"';
    out->local[n] = '\0';
    out->flags |= SMTP_ADDR_QUOTED;
}

static int parse_path(const unsigned char *s, size_t len, unsigned options, struct smtp_addr *out,
                      const char **why)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 32 || s[i] == 127)
            return fail(why, "control character");
    if (len > SMTP_PATH_MAX)
        return fail(why, "path too long");
    if (len < 2 || s[0] != '<')
        return fail(why, "missing angle brackets");
    if (len == 2 && s[1] == '>') {
        if (!(options & SMTP_ADDR_ALLOW_NULL))
            return fail(why, "null path not allowed");
        out->flags = SMTP_ADDR_NULL;
        return 0;
    }

    size_t i = 1;
    if (s[i] == '@') {
        if (skip_route(s, len, &i, options, why) < 0)
            return -EINVAL;
        out->flags |= SMTP_ADDR_HAD_ROUTE;
    }

    char content[SMTP_LOCAL_MAX];
    size_t content_len;
    int quoted;
    if (parse_local(s, len, &i, options, content, &content_len, &quoted, &out->flags, why) < 0)
        return -EINVAL;

    if (s[i] == '>') {
        /* No domain: only the special "<Postmaster>" (RFC 5321 §4.1.1.3), exactly as spelled. */
        if (!(options & SMTP_ADDR_ALLOW_POSTMASTER) || quoted || out->flags != 0 ||
            content_len != 10 || strncasecmp(content, "postmaster", 10) != 0)
            return fail(why, "missing domain");
        if (i + 1 != len)
            return fail(why, "text after path");
        strcpy(out->local, "postmaster");
        out->flags = SMTP_ADDR_POSTMASTER_ONLY;
        return 0;
    }

    size_t domain_start = ++i;
    while (i < len && s[i] != '>')
        i++;
    if (i == len)
        return fail(why, "missing angle brackets");
    if (i + 1 != len)
        return fail(why, "text after path");
    if (i > domain_start && s[domain_start] == '[') {
        if (parse_literal(s + domain_start, i - domain_start, out->domain, why) < 0)
            return -EINVAL;
        out->flags |= SMTP_ADDR_IP_LITERAL;
    } else if (parse_domain(s + domain_start, i - domain_start, options, out->domain, &out->flags,
                            why) < 0) {
        return -EINVAL;
    }

    canonical_local(out, content, content_len);
    /* A-labels are longer than the U-labels they stand for: the canonical path must fit too. */
    if (strlen(out->local) + 1 + strlen(out->domain) + 2 > SMTP_PATH_MAX)
        return fail(why, "path too long");
    if (memchr(content, '@', content_len) || memchr(content, '%', content_len) ||
        memchr(content, '!', content_len))
        out->flags |= SMTP_ADDR_ROUTING_CHARS;
    return 0;
}

int smtp_addr_parse(const char *path, size_t len, unsigned options, struct smtp_addr *out,
                    const char **why)
{
    const char *ignored;
    memset(out, 0, sizeof *out);
    int rc = parse_path((const unsigned char *)path, len, options, out, why ? why : &ignored);
    if (rc < 0)
        memset(out, 0, sizeof *out); /* nothing half-parsed can be mistaken for an address */
    return rc;
}

size_t smtp_addr_format(const struct smtp_addr *addr, char *out, size_t size)
{
    if (size == 0)
        return 0;
    int n;
    if (addr->flags & SMTP_ADDR_NULL)
        n = snprintf(out, size, "%s", "");
    else if (addr->flags & SMTP_ADDR_POSTMASTER_ONLY)
        n = snprintf(out, size, "%s", addr->local);
    else
        n = snprintf(out, size, "%s@%s", addr->local, addr->domain);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

int smtp_addr_to_utf8(const char *addr, char *out, size_t size)
{
    const char *at = strrchr(addr, '@'); /* a canonical domain has no '@' */
    int literal = at != NULL && at[1] == '[';
    size_t copied = at == NULL || literal ? strlen(addr) : (size_t)(at - addr) + 1;
    if (copied >= size)
        return -ENAMETOOLONG;
    memcpy(out, addr, copied);
    out[copied] = '\0';
    if (at == NULL || literal)
        return 0;
    return idna_to_unicode(at + 1, out + copied, size - copied);
}

int ip_text_sockaddr(const char *text, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return 0;
    }
    return -EINVAL;
}

int smtp_addr_literal_sockaddr(const char *domain, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(domain);
    if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len - 2 >= INET6_ADDRSTRLEN + 5)
        return -EINVAL;
    char text[INET6_ADDRSTRLEN + 5];
    memcpy(text, domain + 1, len - 2);
    text[len - 2] = '\0';
    /* An IPv6 literal carries its tag; an untagged one is IPv4 only. */
    if (strncasecmp(text, "IPv6:", 5) == 0)
        return strchr(text + 5, ':') != NULL ? ip_text_sockaddr(text + 5, port, out) : -EINVAL;
    return strchr(text, ':') == NULL ? ip_text_sockaddr(text, port, out) : -EINVAL;
}
