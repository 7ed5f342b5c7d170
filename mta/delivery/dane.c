/*
 * DANE for outbound SMTP (see dane.h): the TLSA lookup of one MX host, the choice it makes for the
 * connection, and the OpenSSL calls that verify the peer against the records.
 *
 * What is checked (RFC 7672): the TLSA answer must carry the AD bit from a resolver on loopback;
 * an answer without it is treated as no records at all. The caller asks only for MX hosts whose
 * addresses came with the AD bit (§2.2.2: a host in an unsigned zone has no usable TLSA records,
 * and its TLSA lookups may fail for no reason); the MX records themselves may be unsigned
 * (§2.2.1 allows DANE for hosts obtained through an insecure MX RRset). The AD bit covers the
 * whole answer, so such a host's CNAME chain is validated too: when the host is an alias, the TLSA
 * records are asked at the end of the chain first, then at the host itself (§2.2.2).
 */
#include "mta/delivery/dane.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define TLSA_RECORDS_MAX 32 /* usable records kept per host: more is a misconfigured zone */

struct dane {
    struct dns_resolver *dns; /* not owned */
    unsigned off_logged : 1;  /* dane.off was logged */
};

/* One usable TLSA record, copied out of the resolver's answer. */
struct dane_record {
    uint8_t usage, selector, mtype;
    unsigned char *data; /* owned */
    size_t len;
};

struct dane_peer {
    struct dane *dane;
    char *host;        /* owned: the MX host name */
    char *expanded;    /* owned: the end of its CNAME chain, asked first (§2.2.2), or NULL */
    const char *base;  /* the TLSA base domain: host or expanded, the name being asked */
    char *tlsa_target; /* owned: host part of the TLSA records' CNAME target, or NULL */
    dane_peer_cb cb;
    void *arg;
    int orphaned; /* freed while the lookup was in flight: its callback frees the memory */
    struct dane_record records[TLSA_RECORDS_MAX];
    size_t nrecords;
};

const char *dane_mode_name(enum dane_mode m)
{
    switch (m) {
    case DANE_NONE:
        return "none";
    case DANE_VERIFY:
        return "verify";
    case DANE_ENCRYPT:
        return "encrypt";
    case DANE_DEFER:
        return "defer";
    }
    return "unknown";
}

int dane_mode_requires_tls(enum dane_mode m)
{
    return m == DANE_VERIFY || m == DANE_ENCRYPT;
}

struct dane *dane_new(struct dns_resolver *dns, SSL_CTX *client_ctx)
{
    if (client_ctx == NULL || SSL_CTX_dane_enable(client_ctx) <= 0) {
        log_msg(LOG_WARN, "dane.off", "OpenSSL cannot enable DANE on the client context");
        return NULL;
    }
    struct dane *d = xcalloc(1, sizeof *d);
    d->dns = dns;
    return d;
}

void dane_free(struct dane *d)
{
    free(d);
}

static void peer_release(struct dane_peer *p)
{
    for (size_t i = 0; i < p->nrecords; i++)
        free(p->records[i].data);
    free(p->host);
    free(p->expanded);
    free(p->tlsa_target);
    free(p);
}

void dane_peer_free(struct dane_peer *p)
{
    if (p == NULL)
        return;
    if (p->cb != NULL) /* the lookup is in flight */
        p->orphaned = 1;
    else
        peer_release(p);
}

/* RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP; selectors and matching types
 * OpenSSL does not know are unusable too (RFC 6698 §4.1). */
static int record_usable(const struct dns_tlsa *t)
{
    return (t->usage == 2 || t->usage == 3) && t->selector <= 1 && t->mtype <= 2;
}

/* Keeps the usable records; returns how many there were. */
static size_t peer_keep_usable(struct dane_peer *p, const struct dns_tlsa *recs, size_t n)
{
    for (size_t i = 0; i < n && p->nrecords < TLSA_RECORDS_MAX; i++) {
        if (!record_usable(&recs[i]))
            continue;
        struct dane_record *r = &p->records[p->nrecords++];
        r->usage = recs[i].usage;
        r->selector = recs[i].selector;
        r->mtype = recs[i].mtype;
        r->len = recs[i].len;
        r->data = xmalloc(r->len);
        memcpy(r->data, recs[i].data, r->len);
    }
    return p->nrecords;
}

static void peer_log(const struct dane_peer *p, enum dane_mode mode, size_t nrecs,
                     int authenticated, const char *why)
{
    struct logrec r;
    log_begin(&r, mode == DANE_DEFER ? LOG_WARN : LOG_INFO, "dane.lookup");
    log_str(&r, "host", p->host);
    if (p->base != p->host)
        log_str(&r, "base", p->base);
    if (p->tlsa_target != NULL)
        log_str(&r, "tlsa_cname", p->tlsa_target);
    log_str(&r, "mode", dane_mode_name(mode));
    log_int(&r, "records", (long long)nrecs);
    log_int(&r, "usable", (long long)p->nrecords);
    log_bool(&r, "authenticated", authenticated);
    log_str(&r, "msg", why);
    log_end(&r);
}

static int peer_ask(struct dane_peer *p, const char *base);

/* RFC 7671 §7: TLSA records found through a CNAME, _25._tcp.<host> pointing at
 * _25._tcp.<target>, make <target> a name the certificate may carry too. */
static void peer_note_tlsa_target(struct dane_peer *p, const char *owner)
{
    static const char prefix[] = "_25._tcp.";
    if (owner == NULL || strncmp(owner, prefix, sizeof prefix - 1) != 0)
        return;
    const char *target = owner + sizeof prefix - 1;
    if (strcasecmp(target, p->base) != 0 && strcasecmp(target, p->host) != 0)
        p->tlsa_target = xstrdup(target);
}

static void peer_on_tlsa(void *arg, enum dns_status status, int authenticated, const char *owner,
                         const struct dns_tlsa *recs, size_t n)
{
    struct dane_peer *p = arg;
    if (p->orphaned) {
        p->cb = NULL;
        peer_release(p);
        return;
    }
    /* §2.2.2: no validated records at the expanded name; the original name is asked next. */
    int nothing =
        status == DNS_NXDOMAIN || status == DNS_NODATA || (status == DNS_OK && !authenticated);
    if (nothing && p->base == p->expanded && peer_ask(p, p->host) == 0)
        return;
    dane_peer_cb cb = p->cb;
    p->cb = NULL;
    if (status == DNS_OK && authenticated)
        peer_note_tlsa_target(p, owner);
    char why[300];
    enum dane_mode mode = DANE_NONE;
    if (status == DNS_OK && !authenticated) {
        snprintf(why, sizeof why, "TLSA records of %s are not DNSSEC-validated: not used", p->base);
    } else if (status == DNS_OK && peer_keep_usable(p, recs, n) > 0) {
        mode = DANE_VERIFY;
        snprintf(why, sizeof why, "%zu usable TLSA records for %s", p->nrecords, p->base);
    } else if (status == DNS_OK) {
        mode = DANE_ENCRYPT;
        snprintf(why, sizeof why, "TLSA records of %s are all unusable: TLS without authentication",
                 p->base);
    } else if (status == DNS_TEMPFAIL || status == DNS_CANCELLED) {
        mode = DANE_DEFER;
        snprintf(why, sizeof why,
                 "TLSA lookup for %s failed (%s: a server failure, a timeout or DNSSEC-bogus data)",
                 p->base, dns_status_name(status));
    } else {
        snprintf(why, sizeof why, "no TLSA records for %s (%s)", p->base, dns_status_name(status));
    }
    peer_log(p, mode, status == DNS_OK ? n : 0, authenticated, why);
    cb(p->arg, mode, why);
}

static int is_address_literal(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return host[0] == '[' || inet_pton(AF_INET, host, addr) == 1 ||
           inet_pton(AF_INET6, host, addr) == 1;
}

/* Asks for the TLSA records of `base` (the host or its expansion). Returns 0, or -1 when the
 * resolver is stopping. */
static int peer_ask(struct dane_peer *p, const char *base)
{
    struct buf name = BUF_INIT;
    buf_printf(&name, "_25._tcp.%s", base);
    int rc = dns_resolve_tlsa(p->dane->dns, name.data, peer_on_tlsa, p);
    buf_free(&name);
    if (rc < 0)
        return -1;
    p->base = base; /* the callback never runs from inside dns_resolve_tlsa */
    return 0;
}

struct dane_peer *dane_peer_new(struct dane *d, const char *host, const char *expanded,
                                dane_peer_cb cb, void *arg)
{
    if (d == NULL || is_address_literal(host))
        return NULL;
    if (!dns_resolver_servers_loopback(d->dns)) {
        if (!d->off_logged)
            log_msg(LOG_WARN, "dane.off",
                    "dns.dnssec is on but not every dns.servers entry is on loopback: the AD bit "
                    "cannot be trusted, so DANE is not used");
        d->off_logged = 1;
        return NULL;
    }
    struct dane_peer *p = xcalloc(1, sizeof *p);
    p->dane = d;
    p->host = xstrdup(host);
    if (expanded != NULL && strcasecmp(expanded, host) != 0)
        p->expanded = xstrdup(expanded);
    p->cb = cb;
    p->arg = arg;
    if (peer_ask(p, p->expanded != NULL ? p->expanded : p->host) < 0) {
        /* the resolver is stopping: so is delivery */
        peer_release(p);
        return NULL;
    }
    return p;
}

const char *dane_peer_base(const struct dane_peer *p)
{
    return p->base;
}

int dane_peer_ssl_prepare(SSL *ssl, void *peer)
{
    struct dane_peer *p = peer;
    /* RFC 7672 §3.2.2: DANE-TA(2) certificates must name the TLSA base domain, or the MX host
     * name when that was an alias, or the target of the TLSA records' CNAME (RFC 7671 §7); the
     * first is SSL_dane_enable's, the others are added. DANE-EE(3) records bind the key itself,
     * so their certificates need not name anything (§3.1.1). */
    if (SSL_dane_enable(ssl, p->base) <= 0)
        return -1;
    if (p->base != p->host && SSL_add1_host(ssl, p->host) != 1)
        return -1;
    if (p->tlsa_target != NULL && SSL_add1_host(ssl, p->tlsa_target) != 1)
        return -1;
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    int usable = 0;
    for (size_t i = 0; i < p->nrecords; i++) {
        const struct dane_record *r = &p->records[i];
        if (SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0)
            usable++;
    }
    return usable > 0 ? 0 : -1;
}

int dane_peer_ssl_check(const struct dane_peer *p, SSL *ssl, char *why, size_t size)
{
    long result = SSL_get_verify_result(ssl);
    if (result == X509_V_OK && SSL_get0_dane_authority(ssl, NULL, NULL) >= 0)
        return 0;
    snprintf(why, size, "no TLSA record of %s matches its certificate chain (%s)", p->base,
             result == X509_V_OK ? "no DANE authority" : X509_verify_cert_error_string(result));
    return -1;
}

void dane_peer_tlsa_text(const struct dane_peer *p, struct buf *out)
{
    for (size_t i = 0; p != NULL && i < p->nrecords; i++) {
        const struct dane_record *r = &p->records[i];
        buf_printf(out, "%s%u %u %u ", i > 0 ? "\n" : "", r->usage, r->selector, r->mtype);
        for (size_t k = 0; k < r->len; k++)
            buf_printf(out, "%02x", r->data[k]);
    }
}
