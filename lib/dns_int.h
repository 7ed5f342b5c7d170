/*
 * Internals shared by the dns module's files: reading one answer message (dns_msg.c) and the
 * answer cache (dns_cache.c). Only lib/dns*.c include this; everyone else uses lib/dns.h.
 */
#ifndef SLUICE_DNS_INT_H
#define SLUICE_DNS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/dns.h"

#define DNS_NAME_BUF 254       /* 253 octets of text name + NUL */
#define DNS_TTL_MAX 86400      /* positive answers are kept at most a day */
#define DNS_NEG_TTL_DEFAULT 60 /* negative answer without an SOA */
#define DNS_NEG_TTL_MAX 3600   /* RFC 2308 §5 suggests 1-3 hours at most */
#define DNS_TYPE_TLSA 52       /* RFC 6698 (c-ares 1.18 has no name for it) */
#define DNS_FLAG_AD 0x20       /* Authentic Data, in the fourth octet of the header */

/* Lower-cases `in` into `out` without its trailing dot. Returns 0, or -EINVAL when it is not a
 * domain name we will send: labels of 1-63 letters, digits, '-' or '_', at most 253 octets. */
int dns_name_normalize(const char *in, char out[DNS_NAME_BUF]);

/* One record of the asked type. data is owned and NUL-terminated: 4 or 16 address bytes for A and
 * AAAA, a lower-case name for MX ("" for the root), PTR and NS (only host names: other PTR
 * and NS records are skipped), a TXT record's strings joined, a TLSA record's whole rdata (usage,
 * selector, matching type, then at least one octet of association data: RFC 6698 §2.1). */
struct dns_rdata {
    unsigned pref; /* MX preference */
    char *data;
    size_t len;
};

struct dns_answer {
    enum dns_status status; /* DNS_OK, DNS_NXDOMAIN, DNS_NODATA, or DNS_TEMPFAIL (malformed) */
    uint32_t ttl;           /* seconds it may be cached: the smallest TTL used, or RFC 2308 */
    int authentic;          /* the AD bit (RFC 4035 §3.2.3): the resolver validated the answer */
    struct dns_rdata *rr;   /* owned; the records at the end of qname's CNAME chain */
    size_t n;
    char *owner; /* owned; DNS_OK and DNS_NODATA: where the chain ended (qname without CNAMEs) */
};

/* Reads the records of type `qtype` for `qname` from a whole DNS message, and the name they are
 * owned by. Never fails: a message it cannot read gives DNS_TEMPFAIL. The cache keeps whole
 * messages, so a cached answer gives the same owner. Free with dns_answer_free. */
void dns_answer_parse(struct dns_answer *a, const unsigned char *msg, size_t len, int qtype,
                      const char *qname);
void dns_answer_free(struct dns_answer *a);

/* A bounded cache of answers keyed by (type, normalized name): the status and, for DNS_OK, the
 * whole message, evicted least recently used first (lib/lru.h). Times are milliseconds of uv_now.
 * A name longer than DNS_NAME_BUF - 1 octets, which normalizing never gives, is not cached. */
struct dns_cache;

struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes);
void dns_cache_free(struct dns_cache *c);
void dns_cache_clear(struct dns_cache *c);
/* Returns 1 and a copy of the message in *msg (owned by the caller, NULL for a negative entry)
 * when a live entry exists; 0 otherwise (an expired entry is dropped). */
int dns_cache_get(struct dns_cache *c, int type, const char *name, uint64_t now,
                  enum dns_status *status, unsigned char **msg, size_t *len);
/* Stores an answer until `expires`, replacing any entry for the key. */
void dns_cache_put(struct dns_cache *c, int type, const char *name, enum dns_status status,
                   const unsigned char *msg, size_t len, uint64_t expires);

#endif
