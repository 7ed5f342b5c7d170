/*
 * Reading DNS answers (RFC 1035 §4.1) for the resolver: the records of one type at the end of the
 * question's CNAME chain, and how long the answer may be cached (the smallest TTL involved, or for
 * a negative answer the SOA rule of RFC 2308 §5). Names are expanded by c-ares' ares_expand_name.
 * The message comes from the network: every offset is checked against its length.
 */
#include "lib/dns_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <ares_nameser.h>

#include "lib/xalloc.h"

#define DNS_HEADER_LEN 12
#define DNS_MSG_MAX 65535 /* a TCP message's length field is 16 bits (RFC 1035 §4.2.2) */
#define CNAME_HOPS_MAX 8

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int dns_name_normalize(const char *in, char out[DNS_NAME_BUF])
{
    size_t len = strlen(in);
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_BUF - 1)
        return -EINVAL;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return -EINVAL;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return -EINVAL;
        } else {
            return -EINVAL;
        }
        out[i] = (char)ascii_lower(c);
    }
    if (label == 0)
        return -EINVAL;
    out[len] = '\0';
    return 0;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Expands the name at `off` into a malloc'ed lower-case string; *used gets its encoded length. */
static char *msg_name(const unsigned char *msg, size_t len, size_t off, size_t *used)
{
    char *s;
    long enc;
    if (off >= len || ares_expand_name(msg + off, msg, (int)len, &s, &enc) != ARES_SUCCESS)
        return NULL;
    char *copy = xstrdup(s);
    ares_free_string(s);
    for (char *p = copy; *p; p++)
        *p = (char)ascii_lower((unsigned char)*p);
    *used = (size_t)enc;
    return copy;
}

struct rr {
    char *owner; /* owned */
    int type;    /* 0 for a class other than IN */
    uint32_t ttl;
    size_t rdoff, rdlen;
};

/* Reads the resource record at *off and moves *off past it. Returns 0, or -1 when malformed. */
static int rr_read(const unsigned char *msg, size_t len, size_t *off, struct rr *rr)
{
    size_t used;
    rr->owner = msg_name(msg, len, *off, &used);
    if (rr->owner == NULL)
        return -1;
    size_t p = *off + used;
    if (len - p < 10 || len - p - 10 < get16(msg + p + 8)) {
        free(rr->owner);
        return -1;
    }
    rr->type = get16(msg + p + 2) == ns_c_in ? get16(msg + p) : 0;
    rr->ttl = get32(msg + p + 4);
    if (rr->ttl > INT32_MAX) /* RFC 2181 §8: a TTL with the top bit set means zero */
        rr->ttl = 0;
    rr->rdlen = get16(msg + p + 8);
    rr->rdoff = p + 10;
    *off = rr->rdoff + rr->rdlen;
    return 0;
}

/* Decodes the rdata of an `rr` of the asked type into `out`. Returns 0 or -1 when malformed. */
static int rdata_decode(const unsigned char *msg, size_t len, const struct rr *rr,
                        struct dns_rdata *out)
{
    const unsigned char *rd = msg + rr->rdoff;
    memset(out, 0, sizeof(*out));
    if (rr->type == ns_t_a || rr->type == ns_t_aaaa || rr->type == DNS_TYPE_TLSA) {
        /* Kept as they are: 4 or 16 address octets; a TLSA record's usage, selector, matching
         * type and at least one octet of data. */
        int ok = rr->type == DNS_TYPE_TLSA ? rr->rdlen >= 4
                                           : rr->rdlen == (rr->type == ns_t_a ? 4u : 16u);
        if (!ok)
            return -1;
        out->data = xmalloc(rr->rdlen + 1);
        memcpy(out->data, rd, rr->rdlen);
        out->data[rr->rdlen] = '\0';
        out->len = rr->rdlen;
        return 0;
    }
    if (rr->type == ns_t_txt) {
        /* <character-string>s: a length octet and that many octets, to the end of the rdata. */
        out->data = xmalloc(rr->rdlen + 1);
        for (size_t i = 0; i < rr->rdlen;) {
            size_t n = rd[i++];
            if (n > rr->rdlen - i) {
                free(out->data);
                out->data = NULL;
                return -1;
            }
            memcpy(out->data + out->len, rd + i, n);
            out->len += n;
            i += n;
        }
        out->data[out->len] = '\0';
        return 0;
    }
    /* MX (a preference, then a name), PTR or NS (a name): the name must fill the rest of the
     * rdata. */
    size_t skip = rr->type == ns_t_mx ? 2 : 0, used;
    if (rr->rdlen <= skip)
        return -1;
    out->pref = rr->type == ns_t_mx ? get16(rd) : 0;
    out->data = msg_name(msg, len, rr->rdoff + skip, &used);
    if (out->data == NULL)
        return -1;
    if (used != rr->rdlen - skip) {
        free(out->data);
        out->data = NULL;
        return -1;
    }
    out->len = strlen(out->data);
    return 0;
}

static uint32_t ttl_min(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* RFC 2308 §5: a negative answer lives for the smaller of the SOA's TTL and its MINIMUM field (the
 * last 4 octets of its rdata); without an SOA in the authority section, a short default. */
static uint32_t negative_ttl(const unsigned char *msg, size_t len, size_t off, unsigned nscount)
{
    for (unsigned i = 0; i < nscount; i++) {
        struct rr rr;
        if (rr_read(msg, len, &off, &rr) < 0)
            break;
        free(rr.owner);
        if (rr.type == ns_t_soa && rr.rdlen >= 22)
            return ttl_min(ttl_min(rr.ttl, get32(msg + rr.rdoff + rr.rdlen - 4)), DNS_NEG_TTL_MAX);
    }
    return DNS_NEG_TTL_DEFAULT;
}

/* A PTR name goes into logs and Received: fields, so only a host name is kept: c-ares renders
 * odd octets as backslash escapes ("\013", "\(") but leaves spaces as they are. */
static int is_host_name(const char *name)
{
    char norm[DNS_NAME_BUF];
    return dns_name_normalize(name, norm) == 0 && strcmp(norm, name) == 0;
}

/* Walks `count` records from `off`; with `collect`, keeps those of type `qtype` owned by `name`
 * and lowers *ttl to theirs; otherwise looks for a CNAME owned by `name` and returns its target
 * (malloc'ed) after lowering *ttl. *bad is set when the section is malformed. */
static char *answers_walk(const unsigned char *msg, size_t len, size_t off, unsigned count,
                          int qtype, const char *name, struct dns_answer *collect, uint32_t *ttl,
                          int *bad)
{
    for (unsigned i = 0; i < count; i++) {
        struct rr rr;
        if (rr_read(msg, len, &off, &rr) < 0) {
            *bad = 1;
            return NULL;
        }
        int mine = strcmp(rr.owner, name) == 0;
        free(rr.owner);
        if (!mine)
            continue;
        if (collect == NULL && rr.type == ns_t_cname) {
            size_t used;
            char *target = msg_name(msg, len, rr.rdoff, &used);
            if (target == NULL || used != rr.rdlen) {
                free(target);
                *bad = 1;
                return NULL;
            }
            *ttl = ttl_min(*ttl, rr.ttl);
            return target;
        }
        if (collect != NULL && rr.type == qtype) {
            struct dns_rdata rd;
            if (rdata_decode(msg, len, &rr, &rd) < 0) {
                *bad = 1;
                return NULL;
            }
            if ((qtype == ns_t_ptr || qtype == ns_t_ns) && !is_host_name(rd.data)) {
                free(rd.data);
                continue;
            }
            collect->rr = xrealloc(collect->rr, (collect->n + 1) * sizeof(*collect->rr));
            collect->rr[collect->n++] = rd;
            *ttl = ttl_min(*ttl, rr.ttl);
        }
    }
    return NULL;
}

void dns_answer_parse(struct dns_answer *a, const unsigned char *msg, size_t len, int qtype,
                      const char *qname)
{
    memset(a, 0, sizeof(*a));
    a->status = DNS_TEMPFAIL;
    if (len < DNS_HEADER_LEN || len > DNS_MSG_MAX)
        return;
    unsigned rcode = msg[3] & 0x0f;
    a->authentic = (msg[3] & DNS_FLAG_AD) != 0;
    unsigned qdcount = get16(msg + 4), ancount = get16(msg + 6), nscount = get16(msg + 8);

    size_t off = DNS_HEADER_LEN;
    for (unsigned i = 0; i < qdcount; i++) {
        size_t used;
        char *q = msg_name(msg, len, off, &used);
        if (q == NULL || len - off - used < 4) {
            free(q);
            return;
        }
        free(q);
        off += used + 4;
    }
    size_t an_off = off;
    for (unsigned i = 0; i < ancount; i++) {
        struct rr rr;
        if (rr_read(msg, len, &off, &rr) < 0)
            return;
        free(rr.owner);
    }
    size_t ns_off = off;

    if (rcode == ns_r_nxdomain) {
        a->status = DNS_NXDOMAIN;
        a->ttl = negative_ttl(msg, len, ns_off, nscount);
        return;
    }
    if (rcode != ns_r_noerror)
        return;

    /* Follow the CNAME chain from the question name, then take the records at its end. */
    uint32_t ttl = DNS_TTL_MAX;
    int bad = 0;
    char *name = xstrdup(qname);
    for (int hop = 0; hop < CNAME_HOPS_MAX; hop++) {
        char *next = answers_walk(msg, len, an_off, ancount, qtype, name, NULL, &ttl, &bad);
        if (next == NULL)
            break;
        free(name);
        name = next;
    }
    if (!bad)
        answers_walk(msg, len, an_off, ancount, qtype, name, a, &ttl, &bad);
    if (bad) {
        free(name);
        dns_answer_free(a);
        a->status = DNS_TEMPFAIL;
        return;
    }
    a->owner = name;
    if (a->n > 0) {
        a->status = DNS_OK;
        a->ttl = ttl;
    } else {
        a->status = DNS_NODATA;
        a->ttl = ttl_min(ttl, negative_ttl(msg, len, ns_off, nscount));
    }
}

void dns_answer_free(struct dns_answer *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->rr[i].data);
    free(a->rr);
    free(a->owner);
    a->rr = NULL;
    a->n = 0;
    a->owner = NULL;
}
