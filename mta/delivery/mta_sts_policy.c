/*
 * MTA-STS record and policy parsing and MX pattern matching (see mta_sts_policy.h). Everything
 * here reads what a remote domain publishes: each field is checked against RFC 8461's grammar
 * before it is kept, and every count has a cap.
 */
#include "mta/delivery/mta_sts_policy.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define WSP(c) ((c) == ' ' || (c) == '\t')

static int ascii_caseeq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

int mta_sts_record_parse(const char *txt, size_t len, char id[MTA_STS_ID_MAX + 1], struct buf *err)
{
    /* §3.1: "v=STSv1" comes first, fields are separated by ";" with optional blanks. */
    if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0 || (len > 7 && txt[7] != ';' && !WSP(txt[7])))
        return 0;
    size_t i = 7;
    id[0] = '\0';
    while (i < len) {
        while (i < len && (WSP(txt[i]) || txt[i] == ';'))
            i++;
        size_t start = i;
        while (i < len && txt[i] != ';')
            i++;
        size_t end = i;
        while (end > start && WSP(txt[end - 1]))
            end--;
        if (end == start)
            continue;
        const char *eq = memchr(txt + start, '=', end - start);
        if (eq == NULL) {
            buf_printf(err, "TXT field without '='");
            return -1;
        }
        if (!ascii_caseeq(txt + start, (size_t)(eq - txt - start), "id"))
            continue; /* §3.1: other fields are ignored */
        size_t n = (size_t)(txt + end - eq - 1);
        if (n == 0 || n > MTA_STS_ID_MAX) {
            buf_printf(err, "id of %zu characters (1 to %d)", n, MTA_STS_ID_MAX);
            return -1;
        }
        for (size_t k = 0; k < n; k++)
            if (!isalnum((unsigned char)eq[1 + k])) {
                buf_printf(err, "id with a character other than letters and digits");
                return -1;
            }
        if (id[0] != '\0') {
            buf_printf(err, "two id fields");
            return -1;
        }
        memcpy(id, eq + 1, n);
        id[n] = '\0';
    }
    if (id[0] == '\0') {
        buf_printf(err, "STSv1 record without an id");
        return -1;
    }
    return 1;
}

/* A pattern as §3.2 allows: a host name of letters, digits, '-' and '.' labels (1..63 octets,
 * 253 in all), optionally behind "*." for one leftmost label. */
static int pattern_valid(const char *s, size_t len)
{
    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        len -= 2;
    }
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1; /* a trailing dot is tolerated */
}

static int policy_fail(struct mta_sts_policy *p, struct buf *err, const char *why, size_t line)
{
    buf_printf(err, "policy line %zu: %s", line, why);
    mta_sts_policy_free(p);
    return -1;
}

/* One "key: value" line: the key (sts-field-name) and the value without surrounding blanks. */
static int policy_field(struct mta_sts_policy *p, const char *key, size_t klen, const char *val,
                        size_t vlen, int *seen, struct buf *err, size_t line)
{
    if (ascii_caseeq(key, klen, "version")) {
        if (vlen != 5 || memcmp(val, "STSv1", 5) != 0)
            return policy_fail(p, err, "version is not STSv1", line);
        *seen |= 1;
    } else if (ascii_caseeq(key, klen, "mode")) {
        if (vlen == 7 && memcmp(val, "enforce", 7) == 0)
            p->mode = MTA_STS_MODE_ENFORCE;
        else if (vlen == 7 && memcmp(val, "testing", 7) == 0)
            p->mode = MTA_STS_MODE_TESTING;
        else if (vlen == 4 && memcmp(val, "none", 4) == 0)
            p->mode = MTA_STS_MODE_NONE;
        else
            return policy_fail(p, err, "mode is not enforce, testing or none", line);
        *seen |= 2;
    } else if (ascii_caseeq(key, klen, "max_age")) {
        /* §3.2: 1*10DIGIT, at most 31557600. */
        uint64_t v = 0;
        if (vlen == 0 || vlen > 10)
            return policy_fail(p, err, "max_age is not a number of up to 10 digits", line);
        for (size_t i = 0; i < vlen; i++) {
            if (!isdigit((unsigned char)val[i]))
                return policy_fail(p, err, "max_age is not a number of up to 10 digits", line);
            v = v * 10 + (uint64_t)(val[i] - '0');
        }
        p->max_age = v > MTA_STS_MAX_AGE ? MTA_STS_MAX_AGE : (uint32_t)v;
        *seen |= 4;
    } else if (ascii_caseeq(key, klen, "mx")) {
        if (!pattern_valid(val, vlen))
            return policy_fail(p, err, "mx is not a host name or *.pattern", line);
        if (p->nmx >= MTA_STS_MX_MAX)
            return policy_fail(p, err, "too many mx lines", line);
        p->mx = xrealloc(p->mx, (p->nmx + 1) * sizeof *p->mx);
        char *m = xmalloc(vlen + 1);
        for (size_t i = 0; i < vlen; i++)
            m[i] = (char)tolower((unsigned char)val[i]);
        m[vlen] = '\0';
        if (vlen > 1 && m[vlen - 1] == '.')
            m[vlen - 1] = '\0';
        p->mx[p->nmx++] = m;
    }
    return 0;
}

int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, struct buf *err)
{
    memset(p, 0, sizeof *p);
    if (len > MTA_STS_POLICY_MAX) {
        buf_printf(err, "policy of %zu bytes (at most %d)", len, MTA_STS_POLICY_MAX);
        return -1;
    }
    int seen = 0;
    size_t line = 0;
    for (size_t i = 0; i < len;) {
        line++;
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t next = nl != NULL ? end + 1 : len;
        if (end > i && text[end - 1] == '\r')
            end--;
        size_t k = i;
        while (k < end && (isalnum((unsigned char)text[k]) || text[k] == '_'))
            k++;
        if (k == i && end == i) { /* an empty line (the last newline) */
            i = next;
            continue;
        }
        if (k == i || k >= end || text[k] != ':' || !isalpha((unsigned char)text[i]))
            return policy_fail(p, err, "not a \"key: value\" line", line);
        size_t v = k + 1, vend = end;
        while (v < vend && WSP(text[v]))
            v++;
        while (vend > v && WSP(text[vend - 1]))
            vend--;
        for (size_t c = v; c < vend; c++)
            if ((unsigned char)text[c] < 0x20 && text[c] != '\t')
                return policy_fail(p, err, "control character in a value", line);
        if (policy_field(p, text + i, k - i, text + v, vend - v, &seen, err, line) < 0)
            return -1;
        i = next;
    }
    if (!(seen & 1))
        return policy_fail(p, err, "no version: STSv1", line);
    if (!(seen & 2))
        return policy_fail(p, err, "no mode", line);
    if (!(seen & 4))
        return policy_fail(p, err, "no max_age", line);
    if (p->mode != MTA_STS_MODE_NONE && p->nmx == 0)
        return policy_fail(p, err, "no mx", line);
    return 0;
}

void mta_sts_policy_free(struct mta_sts_policy *p)
{
    for (size_t i = 0; i < p->nmx; i++)
        free(p->mx[i]);
    free(p->mx);
    memset(p, 0, sizeof *p);
}

void mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src)
{
    *dst = *src;
    dst->mx = src->nmx > 0 ? xmalloc(src->nmx * sizeof *dst->mx) : NULL;
    for (size_t i = 0; i < src->nmx; i++)
        dst->mx[i] = xstrdup(src->mx[i]);
}

int mta_sts_mx_match(const struct mta_sts_policy *p, const char *host)
{
    size_t hlen = strlen(host);
    if (hlen > 0 && host[hlen - 1] == '.')
        hlen--;
    for (size_t i = 0; i < p->nmx; i++) {
        const char *m = p->mx[i];
        if (m[0] == '*' && m[1] == '.') {
            /* One label, then the suffix ".example.net" (m + 1). */
            const char *dot = memchr(host, '.', hlen);
            if (dot != NULL && dot > host && ascii_caseeq(dot, hlen - (size_t)(dot - host), m + 1))
                return 1;
        } else if (ascii_caseeq(host, hlen, m)) {
            return 1;
        }
    }
    return 0;
}

const char *mta_sts_mode_name(enum mta_sts_mode mode)
{
    return mode == MTA_STS_MODE_ENFORCE   ? "enforce"
           : mode == MTA_STS_MODE_TESTING ? "testing"
                                          : "none";
}
