#include "policy/ip_space.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uvutil.h"
#include "lib/xalloc.h"

struct special {
    const char *net;
    unsigned prefix;
};

/* The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and later) without its globally
 * reachable entries (AS112, AMT), plus multicast and the reserved 240/4. */
static const struct special special_v4[] = {
    {"0.0.0.0", 8},       /* "this network" */
    {"10.0.0.0", 8},      /* private (RFC 1918) */
    {"100.64.0.0", 10},   /* shared address space, carrier-grade NAT (RFC 6598) */
    {"127.0.0.0", 8},     /* loopback */
    {"169.254.0.0", 16},  /* link-local */
    {"172.16.0.0", 12},   /* private (RFC 1918) */
    {"192.0.0.0", 24},    /* IETF protocol assignments */
    {"192.0.2.0", 24},    /* documentation (TEST-NET-1) */
    {"192.88.99.0", 24},  /* 6to4 relay anycast, deprecated (RFC 7526) */
    {"192.168.0.0", 16},  /* private (RFC 1918) */
    {"198.18.0.0", 15},   /* benchmarking */
    {"198.51.100.0", 24}, /* documentation (TEST-NET-2) */
    {"203.0.113.0", 24},  /* documentation (TEST-NET-3) */
    {"224.0.0.0", 4},     /* multicast */
    {"240.0.0.0", 4},     /* reserved, and the limited broadcast address */
};

/* The IANA IPv6 Special-Purpose Address Registry without its globally reachable entries, plus
 * unique-local, link-local, the deprecated site-local and multicast. The ranges that embed IPv4
 * are here too: what they carry is judged as IPv4 (ip_embeddings). The rest of the space, even
 * outside today's 2000::/3, counts as public: it can be allocated. */
static const struct special special_v6[] = {
    {"::", 96},          /* IPv4-compatible, deprecated; holds :: and ::1 */
    {"::ffff:0:0", 96},  /* IPv4-mapped */
    {"64:ff9b::", 96},   /* NAT64 well-known prefix */
    {"64:ff9b:1::", 48}, /* NAT64 local use (RFC 8215) */
    {"100::", 64},       /* discard-only */
    {"2001::", 23},      /* IETF protocol assignments, Teredo among them */
    {"2001:db8::", 32},  /* documentation */
    {"2002::", 16},      /* 6to4 */
    {"3fff::", 20},      /* documentation (RFC 9637) */
    {"5f00::", 16},      /* SRv6 SIDs (RFC 9602) */
    {"fc00::", 7},       /* unique-local */
    {"fe80::", 10},      /* link-local */
    {"fec0::", 10},      /* site-local, deprecated */
    {"ff00::", 8},       /* multicast */
};

const struct ip_embedding ip_embeddings[] = {
    {"IPv4-mapped", {[10] = 0xff, [11] = 0xff}, 96, 96, 0},
    {"IPv4-compatible", {0}, 96, 96, 0},
    {"NAT64", {0x00, 0x64, 0xff, 0x9b}, 96, 96, 0},
    /* A local NAT64 prefix may be any RFC 6052 length inside the /48: judge every layout. */
    {"local NAT64", {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, 48, 0},
    {"local NAT64", {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, 56, 0},
    {"local NAT64", {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, 64, 0},
    {"local NAT64", {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, 96, 0},
    {"6to4", {0x20, 0x02}, 16, 16, 0},
    {"Teredo", {0x20, 0x01}, 32, 96, 1},
};
const size_t ip_nembeddings = ARRAY_LEN(ip_embeddings);

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

ip_uint ip_from_bytes(int family, const unsigned char *bytes)
{
    ip_uint a = 0;
    for (unsigned i = 0; i < family_bits(family) / 8; i++)
        a = a << 8 | bytes[i];
    return a;
}

void ip_to_bytes(int family, ip_uint addr, unsigned char *bytes)
{
    for (unsigned i = family_bits(family) / 8; i-- > 0; addr >>= 8)
        bytes[i] = (unsigned char)addr;
}

void ip_set_init(struct ip_set *s, int family)
{
    memset(s, 0, sizeof *s);
    s->family = family;
}

void ip_set_free(struct ip_set *s)
{
    free(s->ranges);
    ip_set_init(s, s->family);
}

static void add_range(struct ip_set *s, ip_uint first, ip_uint last)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->ranges = xrealloc(s->ranges, s->cap * sizeof *s->ranges);
    }
    s->ranges[s->n++] = (struct ip_range){first, last};
}

void ip_set_add(struct ip_set *s, const unsigned char *net, unsigned prefix)
{
    unsigned bits = family_bits(s->family);
    unsigned free_bits = prefix < bits ? bits - prefix : 0;
    ip_uint host = free_bits == 128 ? ~(ip_uint)0 : ((ip_uint)1 << free_bits) - 1;
    ip_uint first = ip_from_bytes(s->family, net) & ~host;
    add_range(s, first, first | host);
}

void ip_set_add_set(struct ip_set *s, const struct ip_set *from)
{
    for (size_t i = 0; i < from->n; i++)
        add_range(s, from->ranges[i].first, from->ranges[i].last);
}

void ip_set_add_special(struct ip_set *s)
{
    const struct special *table = s->family == AF_INET ? special_v4 : special_v6;
    size_t n = s->family == AF_INET ? ARRAY_LEN(special_v4) : ARRAY_LEN(special_v6);
    for (size_t i = 0; i < n; i++) {
        unsigned char net[16];
        if (inet_pton(s->family, table[i].net, net) == 1)
            ip_set_add(s, net, table[i].prefix);
    }
}

static int range_cmp(const void *a, const void *b)
{
    const struct ip_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

void ip_set_merge(struct ip_set *s)
{
    if (s->n == 0)
        return;
    qsort(s->ranges, s->n, sizeof *s->ranges, range_cmp);
    size_t out = 0;
    for (size_t i = 1; i < s->n; i++) {
        struct ip_range *last = &s->ranges[out];
        /* Adjacent ranges join too; last->last + 1 cannot wrap unless last ends the space, and
         * then it already holds everything after it. */
        if (last->last == ~(ip_uint)0 || s->ranges[i].first <= last->last + 1) {
            if (s->ranges[i].last > last->last)
                last->last = s->ranges[i].last;
        } else {
            s->ranges[++out] = s->ranges[i];
        }
    }
    s->n = out + 1;
}

/* The public addresses of r, given the merged special ranges. */
static ip_uint public_part(const struct ip_range *r, const struct ip_set *special)
{
    ip_uint count = 0, cur = r->first;
    for (size_t i = 0; i < special->n; i++) {
        const struct ip_range *sp = &special->ranges[i];
        if (sp->last < cur)
            continue;
        if (sp->first > r->last)
            break;
        if (sp->first > cur)
            count += sp->first - cur;
        if (sp->last >= r->last)
            return count;
        cur = sp->last + 1;
    }
    /* Cannot wrap: every family has special ranges, so no public stretch is the whole space. */
    return count + (r->last - cur) + 1;
}

ip_uint ip_set_public_count(const struct ip_set *s)
{
    struct ip_set special;
    ip_set_init(&special, s->family);
    ip_set_add_special(&special);
    ip_set_merge(&special);
    ip_uint count = 0;
    for (size_t i = 0; i < s->n; i++)
        count += public_part(&s->ranges[i], &special);
    ip_set_free(&special);
    return count;
}

int ip_set_find_outside(const struct ip_set *s, ip_uint from, ip_uint to, ip_uint *out)
{
    /* The first range that ends at or after `from`, by binary search. */
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ranges[mid].last < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    ip_uint cur = from;
    for (size_t i = lo; i < s->n && s->ranges[i].first <= cur; i++) {
        if (s->ranges[i].last >= to)
            return -1;
        cur = s->ranges[i].last + 1;
    }
    if (cur > to)
        return -1;
    *out = cur;
    return 0;
}

/* Bit i (0 = most significant) of the 16 bytes a. */
static int bit_at(const unsigned char *a, unsigned i)
{
    return a[i / 8] >> (7 - i % 8) & 1;
}

/* Where IPv4 bit i sits in the IPv6 address (RFC 6052 §2.2). */
static unsigned embedded_bit(const struct ip_embedding *e, unsigned i)
{
    unsigned at = e->layout + i;
    return e->layout < 96 && at >= 64 ? at + 8 : at;
}

int ip_embedded_v4(const struct ip_embedding *e, const unsigned char *net, unsigned prefix,
                   unsigned char *v4, unsigned *v4prefix)
{
    unsigned common = prefix < e->prefix ? prefix : e->prefix;
    for (unsigned i = 0; i < common; i++)
        if (bit_at(net, i) != bit_at(e->net, i))
            return -1;
    memset(v4, 0, 4);
    *v4prefix = 0;
    /* The IPv4 bits sit in increasing positions: those before the network's prefix are fixed. */
    for (unsigned i = 0; i < 32 && prefix > e->prefix && embedded_bit(e, i) < prefix; i++) {
        if (bit_at(net, embedded_bit(e, i)) != e->inverted)
            v4[i / 8] |= (unsigned char)(0x80u >> (i % 8));
        (*v4prefix)++;
    }
    return 0;
}

void ip_embed_v4(const struct ip_embedding *e, const unsigned char *v4, unsigned char *v6)
{
    memcpy(v6, e->net, 16);
    for (unsigned i = 0; i < 32; i++) {
        unsigned at = embedded_bit(e, i);
        if ((v4[i / 8] >> (7 - i % 8) & 1) != e->inverted)
            v6[at / 8] |= (unsigned char)(0x80u >> (at % 8));
    }
}
