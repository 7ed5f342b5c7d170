#include "policy/dnsbl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"

/* 32 nibbles and dots, then the zone (a domain name: 253 octets). */
#define QUERY_NAME_MAX (64 + 254)

struct dnsbl_zone {
    struct dnsbl_check *check;
    char *zone;
    unsigned weight;
    char qname[QUERY_NAME_MAX + 1];
    int listed;
    struct dns_addr answer;
    char reason[DNSBL_REASON_MAX + 1];
};

struct dnsbl_check {
    struct dns_resolver *resolver;
    struct dnsbl_zone *zones;
    size_t nzones;
    unsigned threshold;
    size_t pending; /* lookups in flight */
    int done;       /* the callback ran (or was due and cancelled) */
    int cancelled;  /* dnsbl_check_free came before the callback */
    dnsbl_cb cb;
    void *arg;
    struct sockaddr_storage client;
    struct dnsbl_hit *hits;
    struct dnsbl_result result;
    char reply[DNSBL_REPLY_MAX];
};

/* Lookup callbacks, in firing order. */
static void zone_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                          size_t naddrs);
static void zone_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts,
                        size_t ntxts);
static void check_on_lookup_done(struct dnsbl_check *c);

int dnsbl_answer_lists(const struct dns_addr *a)
{
    if (a->family != AF_INET)
        return 0;
    uint32_t v = ntohl(a->u.v4.s_addr);
    return (v >> 24) == 127 && (v >> 8) != 0x7fffff;
}

/* The client as IPv4 when it is AF_INET or IPv4-mapped IPv6; returns 4, 6 or 0 (other family). */
static int client_bytes(const struct sockaddr *client, unsigned char out[16])
{
    if (client->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)client)->sin_addr, 4);
        return 4;
    }
    if (client->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)client)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        memcpy(out, a6->s6_addr + 12, 4);
        return 4;
    }
    memcpy(out, a6->s6_addr, 16);
    return 6;
}

int dnsbl_query_name(const struct sockaddr *client, const char *zone, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int family = client_bytes(client, b);
    char rev[65];
    size_t n = 0;
    if (family == 4) {
        n = (size_t)snprintf(rev, sizeof(rev), "%u.%u.%u.%u.", b[3], b[2], b[1], b[0]);
    } else if (family == 6) {
        for (int i = 15; i >= 0; i--) {
            rev[n++] = hex[b[i] & 0xf];
            rev[n++] = '.';
            rev[n++] = hex[b[i] >> 4];
            rev[n++] = '.';
        }
        rev[n] = '\0';
    } else {
        return -EINVAL;
    }
    int len = snprintf(out, size, "%s%s", rev, zone);
    return len < 0 || (size_t)len >= size ? -EINVAL : 0;
}

static void check_release(struct dnsbl_check *c)
{
    for (size_t i = 0; i < c->nzones; i++)
        free(c->zones[i].zone);
    free(c->zones);
    free(c->hits);
    free(c);
}

int dnsbl_check_start(struct dns_resolver *r, const struct config_dnsbl *zones, size_t nzones,
                      unsigned threshold, const struct sockaddr *client, dnsbl_cb cb, void *arg,
                      struct dnsbl_check **out)
{
    unsigned char b[16];
    int family = client_bytes(client, b);
    if (nzones == 0 || family == 0)
        return -EINVAL;
    struct dnsbl_check *c = xcalloc(1, sizeof *c);
    c->zones = xcalloc(nzones, sizeof *c->zones);
    c->nzones = nzones;
    c->resolver = r;
    c->threshold = threshold > 0 ? threshold : 1;
    c->cb = cb;
    c->arg = arg;
    memcpy(&c->client, client,
           client->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    for (size_t i = 0; i < nzones; i++) {
        struct dnsbl_zone *z = &c->zones[i];
        z->check = c;
        z->zone = xstrdup(zones[i].zone);
        z->weight = zones[i].weight;
        if (dnsbl_query_name(client, z->zone, z->qname, sizeof(z->qname)) < 0) {
            check_release(c);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < nzones; i++) {
        int rc = dns_resolve_addrs(r, c->zones[i].qname, zone_on_addrs, &c->zones[i]);
        if (rc < 0) {
            if (c->pending == 0) {
                check_release(c);
                return rc;
            }
            /* The lookups already started will call back: let them finish unseen. */
            c->cancelled = 1;
            return rc;
        }
        c->pending++;
    }
    *out = c;
    return 0;
}

static void zone_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                          size_t naddrs)
{
    struct dnsbl_zone *z = arg;
    struct dnsbl_check *c = z->check;
    if (status != DNS_OK && status != DNS_NXDOMAIN && status != DNS_NODATA) {
        if (status != DNS_CANCELLED)
            log_msg(LOG_WARN, "dnsbl_error", "%s: %s: counted as not listed", z->qname,
                    dns_status_name(status));
        c->result.errors++;
    }
    for (size_t i = 0; status == DNS_OK && i < naddrs && !z->listed; i++) {
        if (dnsbl_answer_lists(&addrs[i])) {
            z->listed = 1;
            z->answer = addrs[i];
        }
    }
    /* The reason is worth one more question only when the client is listed. */
    if (z->listed && !c->cancelled && dns_resolve_txt(c->resolver, z->qname, zone_on_txt, z) == 0)
        return; /* the TXT lookup takes over this one's place in pending */
    check_on_lookup_done(c);
}

static void zone_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts, size_t ntxts)
{
    struct dnsbl_zone *z = arg;
    if (status == DNS_OK && ntxts > 0) {
        size_t n = 0;
        for (size_t i = 0; i < txts[0].len && n < DNSBL_REASON_MAX; i++) {
            unsigned char ch = (unsigned char)txts[0].data[i];
            z->reason[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        z->reason[n] = '\0';
    }
    check_on_lookup_done(z->check);
}

static void check_on_lookup_done(struct dnsbl_check *c)
{
    if (--c->pending > 0)
        return;
    if (c->cancelled) {
        check_release(c);
        return;
    }
    c->hits = xcalloc(c->nzones, sizeof *c->hits);
    for (size_t i = 0; i < c->nzones; i++) {
        const struct dnsbl_zone *z = &c->zones[i];
        if (!z->listed)
            continue;
        struct dnsbl_hit *h = &c->hits[c->result.nhits++];
        h->zone = z->zone;
        h->weight = z->weight;
        h->answer = z->answer;
        memcpy(h->reason, z->reason, sizeof(h->reason));
        c->result.score += z->weight;
    }
    c->result.hits = c->hits;
    c->result.listed = c->result.score >= c->threshold;
    c->done = 1;
    c->cb(c->arg, &c->result); /* last: the callback may free the check */
}

void dnsbl_check_free(struct dnsbl_check *c)
{
    if (c == NULL)
        return;
    if (!c->done) {
        c->cancelled = 1; /* released when the last lookup returns */
        return;
    }
    check_release(c);
}

struct policy_decision dnsbl_verdict(const struct dnsbl_result *res, const struct sockaddr *client,
                                     char reply[DNSBL_REPLY_MAX])
{
    static const struct config_pos builtin = {NULL, 0, 0};
    struct policy_decision d = {POLICY_ACCEPT, 250, "2.0.0", "Ok", "inbound.dnsbl", builtin};
    unsigned char b[16];
    int family = client_bytes(client, b);
    if (!res->listed || res->nhits == 0 || family == 0)
        return d;
    const struct dnsbl_hit *top = &res->hits[0];
    for (size_t i = 1; i < res->nhits; i++)
        if (res->hits[i].weight > top->weight)
            top = &res->hits[i];
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(family == 4 ? AF_INET : AF_INET6, b, ip, sizeof(ip));
    snprintf(reply, DNSBL_REPLY_MAX, "Service unavailable; client [%s] blocked using %s", ip,
             top->zone);
    d.verdict = POLICY_REJECT;
    d.code = 554;
    d.enhanced = "5.7.1";
    d.text = reply;
    return d;
}

struct policy_decision dnsbl_check_verdict(struct dnsbl_check *c)
{
    static const struct dnsbl_result unanswered = {0};
    return dnsbl_verdict(c->done ? &c->result : &unanswered, (const struct sockaddr *)&c->client,
                         c->reply);
}
