/*
 * dane (mta/delivery/dane.h) against a real dnsmasq on loopback, which serves TLSA records but does
 * not validate them: records without the AD bit are not used, no records mean no DANE, a lookup
 * that times out defers, a resolver off loopback turns DANE off (logged once), address literals
 * never get a lookup, and a peer freed while its lookup is in flight never calls back. The
 * verifying paths (AD bit set, certificates) are in tests/integration/test_dane.py.
 */
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/log_events.h"
#include "lib/tls.h"
#include "mta/delivery/dane.h"
#include "tests/support/dnsmasq.h"
#include "tests/unit/check.h"

static uv_loop_t loop;
static int dane_off_logged;

static void on_log(void *arg, const struct log_event *event, const char *record, size_t len)
{
    (void)arg, (void)record, (void)len;
    if (strcmp(event->name, "dane.off") == 0)
        dane_off_logged++;
}

struct outcome {
    int called;
    enum dane_mode mode;
    char why[300];
};

static void on_peer(void *arg, enum dane_mode mode, const char *why)
{
    struct outcome *o = arg;
    o->called++;
    o->mode = mode;
    snprintf(o->why, sizeof o->why, "%s", why);
}

/* Looks host up and waits for the answer; returns the peer (the caller frees it). */
static struct dane_peer *lookup_expanded(struct dane *d, const char *host, const char *expanded,
                                         struct outcome *o)
{
    memset(o, 0, sizeof *o);
    struct dane_peer *p = dane_peer_new(d, host, expanded, on_peer, o);
    CHECK(p != NULL);
    CHECK_INT_EQ(o->called, 0); /* never from inside the call */
    if (p != NULL)
        CHECK_INT_EQ(dnsmasq_run_until(&loop, &o->called, 5000), 1);
    return p;
}

static struct dane_peer *lookup(struct dane *d, const char *host, struct outcome *o)
{
    return lookup_expanded(d, host, NULL, o);
}

static void test_modes(struct dane *d, SSL_CTX *ctx)
{
    struct outcome o;
    struct dane_peer *p = lookup(d, "mx.dane.test", &o);
    CHECK_INT_EQ(o.mode, DANE_NONE);
    CHECK(strstr(o.why, "not DNSSEC-validated") != NULL);
    /* Without usable records OpenSSL gets nothing to verify against. */
    SSL *ssl = SSL_new(ctx);
    CHECK_INT_EQ(dane_peer_ssl_prepare(ssl, p), -1);
    SSL_free(ssl);
    dane_peer_free(p);

    p = lookup(d, "none.test", &o);
    CHECK_INT_EQ(o.mode, DANE_NONE);
    CHECK(strstr(o.why, "no TLSA records for none.test") != NULL);
    dane_peer_free(p);

    /* An alias (RFC 7672 §2.2.2): nothing at the expanded name, so the host's own name decides;
     * an expansion that is the host itself, in other case, is one lookup of the host. */
    p = lookup_expanded(d, "mx.dane.test", "gone.dane.test", &o);
    CHECK_INT_EQ(o.called, 1);
    CHECK(strstr(o.why, "TLSA records of mx.dane.test are not DNSSEC-validated") != NULL);
    CHECK_STR_EQ(dane_peer_base(p), "mx.dane.test");
    dane_peer_free(p);
    p = lookup_expanded(d, "none.test", "mx.dane.test", &o);
    CHECK(strstr(o.why, "TLSA records of mx.dane.test are not DNSSEC-validated") == NULL);
    CHECK(strstr(o.why, "no TLSA records for none.test") != NULL); /* unvalidated: fell back */
    dane_peer_free(p);
    p = lookup_expanded(d, "none.test", "NONE.test", &o);
    CHECK_STR_EQ(dane_peer_base(p), "none.test");
    dane_peer_free(p);

    /* Address literals have no TLSA records to look for. */
    CHECK(dane_peer_new(d, "192.0.2.1", NULL, on_peer, &o) == NULL);
    CHECK(dane_peer_new(d, "[IPv6:2001:db8::1]", NULL, on_peer, &o) == NULL);
    CHECK(dane_peer_new(NULL, "mx.dane.test", NULL, on_peer, &o) == NULL);

    /* Freed in flight: no callback, and nothing leaks (ASan). */
    memset(&o, 0, sizeof o);
    p = dane_peer_new(d, "mx.dane.test", NULL, on_peer, &o);
    CHECK(p != NULL);
    dane_peer_free(p);
    int never = 0;
    dnsmasq_run_until(&loop, &never, 300);
    CHECK_INT_EQ(o.called, 0);
}

static void test_timeout_defers(SSL_CTX *ctx)
{
    int sock;
    struct dns_resolver *r = dnsmasq_silent_resolver(&loop, 300, &sock);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    struct dane *d = dane_new(r, ctx);
    struct outcome o;
    struct dane_peer *p = lookup(d, "mx.dane.test", &o);
    CHECK_INT_EQ(o.mode, DANE_DEFER);
    CHECK(strstr(o.why, "tempfail") != NULL);
    dane_peer_free(p);
    dane_free(d);
    dns_resolver_free(r);
    close(sock);
}

static void test_off_loopback(SSL_CTX *ctx)
{
    static const char *const servers[] = {"127.0.0.1", "192.0.2.53"};
    int err = 0;
    struct dns_resolver *r = dns_resolver_new(&loop, servers, 2, 1000, &err);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    struct dane *d = dane_new(r, ctx);
    struct outcome o = {0};
    CHECK(dane_peer_new(d, "mx.dane.test", NULL, on_peer, &o) == NULL);
    CHECK(dane_peer_new(d, "mx2.dane.test", NULL, on_peer, &o) == NULL);
    CHECK_INT_EQ(dane_off_logged, 1);
    dane_free(d);
    dns_resolver_free(r);
}

static void test_names(void)
{
    CHECK_STR_EQ(dane_mode_name(DANE_NONE), "none");
    CHECK_STR_EQ(dane_mode_name(DANE_VERIFY), "verify");
    CHECK_STR_EQ(dane_mode_name(DANE_ENCRYPT), "encrypt");
    CHECK_STR_EQ(dane_mode_name(DANE_DEFER), "defer");
    CHECK_INT_EQ(dane_mode_requires_tls(DANE_VERIFY), 1);
    CHECK_INT_EQ(dane_mode_requires_tls(DANE_ENCRYPT), 1);
    CHECK_INT_EQ(dane_mode_requires_tls(DANE_NONE), 0);
    CHECK_INT_EQ(dane_mode_requires_tls(DANE_DEFER), 0);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    log_tap_set(on_log, NULL);
    log_tap_select("dane.off", 1);
    struct buf err = BUF_INIT;
    SSL_CTX *ctx = tls_client_ctx_new(&err);
    CHECK(ctx != NULL);
    test_names();

    static const char *const zone[] = {"--dns-rr=_25._tcp.mx.dane.test,52,030101deadbeef", NULL};
    struct dnsmasq dnsmasq;
    struct dns_resolver *r = dnsmasq_start_resolver(&dnsmasq, &loop, zone, 3000);
    CHECK(r != NULL);
    if (r != NULL && ctx != NULL) {
        struct dane *d = dane_new(r, ctx);
        CHECK(d != NULL);
        test_modes(d, ctx);
        dane_free(d);
        test_timeout_defers(ctx);
        test_off_loopback(ctx);
    }
    CHECK_INT_EQ(dnsmasq_end(&dnsmasq, &loop, r), 0);
    SSL_CTX_free(ctx);
    buf_free(&err);
    log_tap_set(NULL, NULL);
    return check_report("test_dane");
}
