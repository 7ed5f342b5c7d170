/*
 * The trace token (trace.h): "q<queue id>.t<tenant>.c<campaign>.r<recipient>.k<key id>.m<mac>",
 * tenant, campaign and recipient base64url-encoded, each field tagged by its first letter so that
 * none is ever empty (an empty one would make ".." and the token no dot-atom). The MAC covers the
 * fields themselves, NUL-separated behind a version tag, not their encoding.
 */
#include "mta/feedback/trace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* 128 bits: RFC 2104 §5 asks a truncated MAC to keep at least half the hash; 22 characters. */
#define TRACE_MAC_LEN 16

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *trace_verdict_name(enum trace_verdict v)
{
    switch (v) {
    case TRACE_VALID:
        return "valid";
    case TRACE_MALFORMED:
        return "malformed";
    case TRACE_UNKNOWN_KEY:
        return "unknown_key";
    case TRACE_BAD_MAC:
        return "bad_mac";
    }
    return "?";
}

/* Unpadded base64url of in[0..len) appended at out; returns the characters written. */
static size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t j = 0; j < chars; j++)
            out[n++] = b64url[(v >> (18 - 6 * j)) & 63];
    }
    return n;
}

/* Unpadded base64url in[0..len) into out (room for max octets); returns the length or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char *out, size_t max)
{
    if (len % 4 == 1)
        return -1;
    size_t n = 0;
    unsigned v = 0, bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = memchr(b64url, in[i], 64);
        if (p == NULL)
            return -1;
        v = (v << 6 | (unsigned)(p - b64url)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == max)
                return -1;
            out[n++] = (unsigned char)(v >> bits);
        }
    }
    return (long)n;
}

static void trace_mac(const struct config_trace_key *key, const struct trace_fields *f,
                      unsigned char mac[TRACE_MAC_LEN])
{
    unsigned char
        input[8 + sizeof f->queue_id + sizeof f->tenant + sizeof f->campaign + TRACE_KEY_ID_MAX];
    size_t n = 0;
    const char *parts[] = {"sluice1", f->queue_id, f->tenant, f->campaign, f->rcpt, key->id};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t len = strlen(parts[i]);
        memcpy(input + n, parts[i], len);
        n += len;
        input[n++] = '\0';
    }
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;
    HMAC(EVP_sha256(), key->secret, (int)strlen(key->secret), input, n, full, &full_len);
    memcpy(mac, full, TRACE_MAC_LEN);
}

int trace_format(const struct config_trace_key *keys, size_t nkeys, const struct trace_fields *f,
                 char *out)
{
    size_t qlen = strlen(f->queue_id);
    if (nkeys == 0 || qlen == 0 || strlen(f->tenant) > TRACE_NAME_MAX ||
        strlen(f->campaign) > TRACE_NAME_MAX || strlen(f->rcpt) > TRACE_RCPT_MAX ||
        strspn(f->queue_id, b64url) != qlen)
        return -EINVAL;
    const struct config_trace_key *key = &keys[nkeys - 1];
    unsigned char mac[TRACE_MAC_LEN];
    struct trace_fields signed_fields = *f;
    snprintf(signed_fields.key_id, sizeof signed_fields.key_id, "%s", key->id);
    trace_mac(key, &signed_fields, mac);
    size_t n = 0;
    out[n++] = 'q';
    memcpy(out + n, f->queue_id, qlen);
    n += qlen;
    memcpy(out + n, ".t", 2);
    n += 2 + b64url_encode((const unsigned char *)f->tenant, strlen(f->tenant), out + n + 2);
    memcpy(out + n, ".c", 2);
    n += 2 + b64url_encode((const unsigned char *)f->campaign, strlen(f->campaign), out + n + 2);
    memcpy(out + n, ".r", 2);
    n += 2 + b64url_encode((const unsigned char *)f->rcpt, strlen(f->rcpt), out + n + 2);
    n += (size_t)snprintf(out + n, TRACE_TOKEN_MAX + 1 - n, ".k%s.m", key->id);
    n += b64url_encode(mac, sizeof mac, out + n);
    out[n] = '\0';
    return (int)n;
}

#define VERP_PREFIX "bounce+"

int trace_verp_format(const struct config_trace_key *keys, size_t nkeys, const char *queue_id,
                      const char *domain, char *out, size_t size)
{
    struct trace_fields f;
    char token[TRACE_TOKEN_MAX + 1];
    memset(&f, 0, sizeof f);
    snprintf(f.queue_id, sizeof f.queue_id, "%s", queue_id);
    int n = trace_format(keys, nkeys, &f, token);
    if (n < 0 || sizeof VERP_PREFIX - 1 + (size_t)n > 64)
        return -EINVAL;
    int len = snprintf(out, size, VERP_PREFIX "%s@%s", token, domain);
    return len > 0 && (size_t)len < size ? len : -EINVAL;
}

size_t trace_verp_token(const char *addr, const char *domain, const char **token)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL || strncasecmp(addr, VERP_PREFIX, sizeof VERP_PREFIX - 1) != 0 ||
        strcasecmp(at + 1, domain) != 0)
        return 0;
    *token = addr + sizeof VERP_PREFIX - 1;
    return (size_t)(at - *token);
}

/* The field tagged `tag` at in[*at], up to the next '.' or end; advances *at past the dot. */
static int next_field(const char *in, size_t len, size_t *at, char tag, const char **val,
                      size_t *vlen)
{
    if (*at >= len || in[*at] != tag)
        return -1;
    const char *start = in + *at + 1;
    const char *dot = memchr(start, '.', len - *at - 1);
    *val = start;
    *vlen = dot != NULL ? (size_t)(dot - start) : len - *at - 1;
    *at += 1 + *vlen + (dot != NULL ? 1 : 0);
    return 0;
}

/* A base64url field into out (size max + 1), NUL-terminated, with no NUL inside. */
static int decode_name(const char *val, size_t vlen, char *out, size_t max)
{
    long n = b64url_decode(val, vlen, (unsigned char *)out, max);
    if (n < 0 || memchr(out, '\0', (size_t)n) != NULL)
        return -1;
    out[n] = '\0';
    return 0;
}

enum trace_verdict trace_verify(const struct config_trace_key *keys, size_t nkeys, const char *in,
                                size_t len, struct trace_fields *f)
{
    memset(f, 0, sizeof *f);
    while (len > 0 && (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n'))
        in++, len--;
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t' || in[len - 1] == '\r' ||
                       in[len - 1] == '\n'))
        len--;
    const char *q, *t, *c, *r, *k, *m;
    size_t qlen, tlen, clen, rlen, klen, mlen, at = 0;
    unsigned char mac[TRACE_MAC_LEN + 2];
    if (next_field(in, len, &at, 'q', &q, &qlen) < 0 || next_field(in, len, &at, 't', &t, &tlen) ||
        next_field(in, len, &at, 'c', &c, &clen) < 0 || next_field(in, len, &at, 'r', &r, &rlen) ||
        next_field(in, len, &at, 'k', &k, &klen) < 0 ||
        next_field(in, len, &at, 'm', &m, &mlen) < 0 || at != len || qlen == 0 ||
        qlen > SPOOL_ID_MAX || klen == 0 || klen > TRACE_KEY_ID_MAX ||
        decode_name(t, tlen, f->tenant, TRACE_NAME_MAX) < 0 ||
        decode_name(c, clen, f->campaign, TRACE_NAME_MAX) < 0 ||
        decode_name(r, rlen, f->rcpt, TRACE_RCPT_MAX) < 0 ||
        b64url_decode(m, mlen, mac, sizeof mac) != TRACE_MAC_LEN)
        return TRACE_MALFORMED;
    memcpy(f->queue_id, q, qlen);
    memcpy(f->key_id, k, klen);
    if (strspn(f->queue_id, b64url) != qlen)
        return TRACE_MALFORMED;
    for (size_t i = 0; i < nkeys; i++) {
        if (strcmp(keys[i].id, f->key_id) != 0)
            continue;
        unsigned char want[TRACE_MAC_LEN];
        trace_mac(&keys[i], f, want);
        return CRYPTO_memcmp(want, mac, TRACE_MAC_LEN) == 0 ? TRACE_VALID : TRACE_BAD_MAC;
    }
    return TRACE_UNKNOWN_KEY;
}

/* Clocks of the machines that share the keys may differ a little. */
#define CLOCK_SLACK_US (10ull * 60 * 1000000)

int trace_queue_id_plausible(const char *queue_id, uint64_t now_us, uint64_t max_age_us)
{
    uint64_t issued;
    if (spool_id_issued_at(queue_id, &issued) < 0)
        return 0;
    return issued <= now_us + CLOCK_SLACK_US &&
           (now_us < max_age_us || issued >= now_us - max_age_us);
}
