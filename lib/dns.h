/*
 * Asynchronous DNS for delivery and policy: c-ares inside the libuv loop (a uv_poll per socket, one
 * uv_timer), answering MX (RFC 5321 §5.1 targets with addresses, implicit MX, RFC 7505 null MX),
 * A+AAAA, TXT, PTR, TLSA and NS through a TTL-honouring cache (or, for a resolver set to, without
 * it and without recursion: asking one server what it serves itself). Every lookup calls back
 * exactly once, never from inside the call that started it. What a callback receives belongs to the
 * resolver and lives until the callback returns: copy what you keep.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "lib/metrics.h"

enum dns_status {
    DNS_OK = 0,
    DNS_NXDOMAIN,  /* the name does not exist: permanent */
    DNS_NODATA,    /* the name exists but has no record of the type asked: permanent */
    DNS_NULL_MX,   /* the domain publishes a null MX (RFC 7505): it takes no mail, permanent */
    DNS_TEMPFAIL,  /* SERVFAIL, REFUSED, timeout, network error, malformed answer: retry later */
    DNS_BADNAME,   /* not a valid domain name (LDH/underscore labels of 1-63, 253 octets) */
    DNS_CANCELLED, /* the resolver was freed before the answer came */
};

/* A host address; build a sockaddr with dns_addr_to_sockaddr. */
struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
};

/* One delivery target of dns_resolve_mx. */
struct dns_mx_host {
    const char *name;             /* lower case, no trailing dot */
    unsigned pref;                /* MX preference; 0 for an implicit MX */
    enum dns_status status;       /* of its address lookups: DNS_OK when naddrs > 0 */
    const struct dns_addr *addrs; /* IPv4 addresses first, then IPv6 */
    size_t naddrs;
    int authenticated; /* naddrs > 0 and every answer with addresses had the AD bit */
    /* When name is an alias: the end of its CNAME chain, the name the addresses are owned by (the
     * same for both families, else NULL); NULL when name is not an alias. */
    const char *canonical;
};

struct dns_mx_result {
    /* DNS_OK: hosts is the target list (some hosts may still have no address: see their status).
     * DNS_NULL_MX, DNS_NXDOMAIN, DNS_NODATA (no MX and no address), DNS_TEMPFAIL, DNS_BADNAME,
     * DNS_CANCELLED: nhosts is 0. */
    enum dns_status status;
    int implicit; /* 1: the domain had no MX, hosts[0] is the domain itself (§5.1) */
    const struct dns_mx_host *hosts; /* by preference, random order among equal ones */
    size_t nhosts;                   /* at most DNS_MX_HOSTS_MAX */
};

/* One TXT record: its character-strings joined. data is NUL-terminated (the NUL is not counted in
 * len) but may contain NUL bytes itself. */
struct dns_txt {
    const char *data;
    size_t len;
};

/* One TLSA record (RFC 6698 §2.1); data is the certificate association data. */
struct dns_tlsa {
    uint8_t usage;    /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218) */
    uint8_t selector; /* 0 the whole certificate, 1 its SubjectPublicKeyInfo */
    uint8_t mtype;    /* 0 the data itself, 1 SHA2-256, 2 SHA2-512 of it */
    const unsigned char *data;
    size_t len; /* at least 1 */
};

#define DNS_MX_HOSTS_MAX 16 /* MX targets kept after sorting; each costs two address lookups */

typedef void (*dns_mx_cb)(void *arg, const struct dns_mx_result *res);
typedef void (*dns_addrs_cb)(void *arg, enum dns_status status, const struct dns_addr *addrs,
                             size_t naddrs);
typedef void (*dns_txt_cb)(void *arg, enum dns_status status, const struct dns_txt *txts,
                           size_t ntxts);
/* authenticated: the resolver set the AD bit on the answer (RFC 4035 §3.2.3), which covers the
 * whole answer, CNAMEs included; it means something only when the resolver is trusted to validate
 * (dns_resolver_servers_loopback). owner (DNS_OK, else NULL): the name the records were found at,
 * the name asked or, when that is an alias, the end of its CNAME chain (RFC 7671 §7). */
typedef void (*dns_tlsa_cb)(void *arg, enum dns_status status, int authenticated, const char *owner,
                            const struct dns_tlsa *recs, size_t nrecs);
typedef void (*dns_ptr_cb)(void *arg, enum dns_status status, const char *const *names,
                           size_t nnames);
typedef void (*dns_ns_cb)(void *arg, enum dns_status status, const char *const *names,
                          size_t nnames);

struct dns_resolver;

/* Counters since dns_resolver_new, for tests and the admin interface. */
struct dns_stats {
    uint64_t queries;                 /* questions sent to a server */
    uint64_t cache_hits;              /* questions answered from the cache, positive or negative */
    struct metrics_histogram latency; /* seconds from a question sent to its answer or failure */
};

/* Creates a resolver on `loop`. `servers` lists "addr", "addr:port" or "[v6addr]:port" (port 53 by
 * default); with nservers == 0 the servers come from /etc/resolv.conf. timeout_ms bounds one
 * question: c-ares tries every server twice within it before the question fails with
 * DNS_TEMPFAIL. Returns NULL and sets *err to -EINVAL (a bad server string or timeout), -ENOMEM or
 * -EIO (c-ares could not start). */
struct dns_resolver *dns_resolver_new(uv_loop_t *loop, const char *const *servers, size_t nservers,
                                      unsigned timeout_ms, int *err);

/* Cancels every pending lookup: each callback runs once with DNS_CANCELLED (an MX result with
 * status DNS_CANCELLED), before this returns, or, when called from inside one of this resolver's
 * callbacks, right after that callback returns. Those callbacks may not start lookups (they would
 * get -ESHUTDOWN). The handles close on the next loop iterations; the memory goes with the last. */
void dns_resolver_free(struct dns_resolver *r);

/* How a resolver asks, set by dns_resolver_set_mode (0, the default: recursion desired, answers
 * cached). For asking one chosen server directly, make a resolver with that server alone. */
#define DNS_MODE_NO_RECURSION 0x01 /* RD off (RFC 1035 §4.1.1): what the server serves itself */
#define DNS_MODE_NO_CACHE 0x02     /* every question goes to a server; no answer is kept */
void dns_resolver_set_mode(struct dns_resolver *r, unsigned mode);

/* Forgets every cached answer. Lookups in flight are not affected. */
void dns_resolver_flush(struct dns_resolver *r);

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out);

/* 1 when every server the resolver asks is on loopback (127.0.0.0/8 or ::1): the only servers
 * whose AD bit is believed, as the path to them cannot be tampered with; else 0. */
int dns_resolver_servers_loopback(const struct dns_resolver *r);

/* 0 if `server` is a valid entry for dns_resolver_new's list, else -EINVAL (for config checks). */
int dns_server_check(const char *server);

/* Every question is asked with the AD bit set, so that a validating resolver says whether it
 * validated the answer (RFC 6840 §5.7).
 * Each lookup returns 0 and later calls cb(arg, ...) exactly once, or returns a negative errno and
 * never calls cb: -ESHUTDOWN once dns_resolver_free was called, -EAFNOSUPPORT for a PTR of a
 * family other than AF_INET/AF_INET6. A name that is not a valid domain name is reported through
 * cb as DNS_BADNAME. The name is copied; one trailing dot is allowed. */

/* RFC 5321 §5.1 target list of `domain`, each host with its A and AAAA addresses (CNAMEs
 * followed). No MX records gives the domain itself (implicit MX) when it has an address. */
int dns_resolve_mx(struct dns_resolver *r, const char *domain, dns_mx_cb cb, void *arg);

/* A and AAAA records of `name`: DNS_OK if either gave an address; otherwise NXDOMAIN wins over
 * TEMPFAIL, which wins over NODATA. IPv4 addresses come first. */
int dns_resolve_addrs(struct dns_resolver *r, const char *name, dns_addrs_cb cb, void *arg);

/* TXT records of `name` (SPF, DKIM keys), one dns_txt per record in answer order. */
int dns_resolve_txt(struct dns_resolver *r, const char *name, dns_txt_cb cb, void *arg);

/* TLSA records of `name` (e.g. "_25._tcp.mx.example.com"), asked with the AD bit set so that a
 * validating resolver reports whether it validated them (RFC 6840 §5.7). A resolver's SERVFAIL,
 * which is also how a validating resolver answers bogus data, is DNS_TEMPFAIL. Records with
 * fewer than 4 octets make the answer malformed (DNS_TEMPFAIL). */
int dns_resolve_tlsa(struct dns_resolver *r, const char *name, dns_tlsa_cb cb, void *arg);

/* PTR names (lower case, no trailing dot) of the address in `sa` (port ignored). An IPv4-mapped
 * IPv6 address is looked up as IPv4. */
int dns_resolve_ptr(struct dns_resolver *r, const struct sockaddr *sa, dns_ptr_cb cb, void *arg);

/* NS records of `domain`: its name servers (lower case, no trailing dot) in answer order; records
 * whose target is not a host name are skipped. */
int dns_resolve_ns(struct dns_resolver *r, const char *domain, dns_ns_cb cb, void *arg);

/* Fills `out` with the address and `port`; returns the length to pass to connect/bind. */
socklen_t dns_addr_to_sockaddr(const struct dns_addr *a, uint16_t port,
                               struct sockaddr_storage *out);

/* "ok", "nxdomain", "nodata", "null-mx", "tempfail", "badname", "cancelled". */
const char *dns_status_name(enum dns_status s);

#endif
