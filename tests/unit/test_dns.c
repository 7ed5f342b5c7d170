/*
 * dns against a real dnsmasq on 127.0.0.1 (started here on a free port, killed at the end): MX
 * order and shuffling, host addresses, implicit and null MX, NXDOMAIN/NODATA, CNAME chains, long
 * TXT, PTR, the cache (hits, TTL expiry, answers with the server gone), timeouts against a server
 * that never answers, and freeing the resolver with lookups in flight. Every wait is bounded.
 */
#include "lib/dns.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"

#include "tests/support/dnsmasq.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "lib/buf.h"

#define WAIT_MS 5000 /* longest wait for one batch of lookups */

static uv_loop_t loop;
static struct dnsmasq dnsmasq;
static int in_call;        /* set around dns_resolve_*: a callback seeing it is synchronous */
static char long_txt[301]; /* 300 octets: served as two character-strings */

/* ---- the test zone ---- */

static char long_txt_arg[400];
static const char *const zone[] = {
    "--local-ttl=300",
    /* MX with three preferences, two hosts sharing one */
    "--mx-host=multi.test,m10a.test,10", "--mx-host=multi.test,m10b.test,10",
    "--mx-host=multi.test,m5.test,5", "--mx-host=multi.test,m20.test,20",
    "--host-record=m10a.test,192.0.2.10", "--host-record=m10b.test,192.0.2.11,2001:db8::11",
    "--host-record=m5.test,192.0.2.5,2001:db8::5", "--host-record=m20.test,2001:db8::20",
    /* a name with addresses and no MX; one with only TXT; a null MX; a CNAME chain */
    "--host-record=a.test,192.0.2.1,2001:db8::1", "--host-record=v4only.test,192.0.2.2",
    long_txt_arg, "--mx-host=null.test,.,0", "--cname=c1.test,c2.test", "--cname=c2.test,a.test",
    "--mx-host=cmx.test,c1.test,10", "--txt-record=spf.test,v=spf1 -all",
    "--txt-record=spf.test,second", "--host-record=short.test,192.0.2.9,1",
    /* NS: two name servers (ns1.zone.test, ns2.zone.test in wire form) */
    "--dns-rr=zone.test,2,036e7331047a6f6e65047465737400",
    "--dns-rr=zone.test,2,036e7332047a6f6e65047465737400", NULL};

/* ---- running the loop ---- */

static int run_until(const int *done, unsigned ms)
{
    return dnsmasq_run_until(&loop, done, ms);
}

static void sleep_ms(unsigned ms)
{
    int never = 0;
    run_until(&never, ms);
}

/* ---- capturing results ---- */

struct result {
    int calls;
    int done; /* the number of calls the test waits for */
    enum dns_status status;
    int implicit;
    struct buf text; /* the result, formatted */
};

static void result_reset(struct result *res)
{
    buf_free(&res->text);
    memset(res, 0, sizeof(*res));
}

static const char *result_text(struct result *res)
{
    return res->text.data != NULL ? res->text.data : "";
}

static void format_addrs(struct buf *b, const struct dns_addr *addrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(addrs[i].family, &addrs[i].u, text, sizeof(text));
        buf_printf(b, "%s%s", i > 0 ? " " : "", text);
    }
}

/* What every callback does first: checks it was not called from inside the dns_resolve_* call,
 * counts the call and keeps the status. */
static struct result *result_called(void *arg, enum dns_status status)
{
    struct result *res = arg;
    CHECK(!in_call);
    res->calls++;
    res->done = 1;
    res->status = status;
    return res;
}

static void on_mx(void *arg, const struct dns_mx_result *mx)
{
    struct result *res = result_called(arg, mx->status);
    res->implicit = mx->implicit;
    for (size_t i = 0; i < mx->nhosts; i++) {
        const struct dns_mx_host *h = &mx->hosts[i];
        buf_printf(&res->text, "%s%s", i > 0 ? " " : "", h->name);
        if (h->canonical != NULL) /* an alias: where its chain ended */
            buf_printf(&res->text, "=>%s", h->canonical);
        buf_printf(&res->text, "/%u/%s[", h->pref, dns_status_name(h->status));
        format_addrs(&res->text, h->addrs, h->naddrs);
        buf_printf(&res->text, "]");
    }
}

static void on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs, size_t n)
{
    struct result *res = result_called(arg, status);
    format_addrs(&res->text, addrs, n);
}

static void on_txt(void *arg, enum dns_status status, const struct dns_txt *txts, size_t n)
{
    struct result *res = result_called(arg, status);
    for (size_t i = 0; i < n; i++) {
        CHECK_INT_EQ(strlen(txts[i].data), txts[i].len);
        buf_printf(&res->text, "%s<%s>", i > 0 ? " " : "", txts[i].data);
    }
}

static void on_ptr(void *arg, enum dns_status status, const char *const *names, size_t n)
{
    struct result *res = result_called(arg, status);
    for (size_t i = 0; i < n; i++)
        buf_printf(&res->text, "%s%s", i > 0 ? " " : "", names[i]);
}

enum lookup { LOOKUP_MX, LOOKUP_ADDRS, LOOKUP_TXT, LOOKUP_PTR, LOOKUP_NS };

/* Starts one lookup of `name` (for LOOKUP_PTR an address), waits for its callback and checks it
 * came exactly once. */
static void lookup(struct dns_resolver *r, enum lookup kind, const char *name, struct result *res)
{
    struct sockaddr_storage ss = client_addr(name);
    int rc = -EINVAL;
    result_reset(res);
    in_call = 1;
    switch (kind) {
    case LOOKUP_MX:
        rc = dns_resolve_mx(r, name, on_mx, res);
        break;
    case LOOKUP_ADDRS:
        rc = dns_resolve_addrs(r, name, on_addrs, res);
        break;
    case LOOKUP_TXT:
        rc = dns_resolve_txt(r, name, on_txt, res);
        break;
    case LOOKUP_PTR:
        rc = dns_resolve_ptr(r, (struct sockaddr *)&ss, on_ptr, res);
        break;
    case LOOKUP_NS:
        rc = dns_resolve_ns(r, name, on_ptr, res);
        break;
    }
    in_call = 0;
    CHECK_INT_EQ(rc, 0);
    CHECK(run_until(&res->done, WAIT_MS));
    CHECK_INT_EQ(res->calls, 1);
}

/* One lookup and what it comes to: the status, whether an MX result is implicit, and the result
 * as text unless NULL (MX hosts as "name/pref/status[addresses]", addresses, "<TXT>"s, PTR names,
 * each separated by a space). */
struct lookup_case {
    enum lookup kind;
    const char *name;
    enum dns_status status;
    const char *text;
    int implicit;
};

static void check_lookups(struct dns_resolver *r, const struct lookup_case *cases, size_t n)
{
    struct result res = {0};
    for (size_t i = 0; i < n; i++) {
        const struct lookup_case *c = &cases[i];
        int failures = check_failures;
        lookup(r, c->kind, c->name, &res);
        CHECK_INT_EQ(res.status, c->status);
        CHECK_INT_EQ(res.implicit, c->implicit);
        if (c->text != NULL)
            CHECK_STR_EQ(result_text(&res), c->text);
        if (check_failures != failures)
            fprintf(stderr, "  in lookup %zu: %s\n", i, c->name);
    }
    result_reset(&res);
}

#define CHECK_LOOKUPS(r, cases) check_lookups(r, cases, sizeof(cases) / sizeof(cases[0]))

static struct dns_resolver *resolver_for(const char *server, unsigned timeout_ms)
{
    int err = 0;
    struct dns_resolver *r = dns_resolver_new(&loop, &server, 1, timeout_ms, &err);
    CHECK(r != NULL);
    CHECK_INT_EQ(err, 0);
    return r;
}

static uint64_t queries(struct dns_resolver *r)
{
    struct dns_stats st;
    dns_resolver_stats(r, &st);
    return st.queries;
}

/* ---- tests ---- */

static void test_server_strings(void)
{
    CHECK_INT_EQ(dns_server_check("192.0.2.1"), 0);
    CHECK_INT_EQ(dns_server_check("192.0.2.1:5353"), 0);
    CHECK_INT_EQ(dns_server_check("2001:db8::1"), 0);
    CHECK_INT_EQ(dns_server_check("[2001:db8::1]:53"), 0);
    CHECK_INT_EQ(dns_server_check("[2001:db8::1]"), 0);
    CHECK_INT_EQ(dns_server_check("192.0.2.1:0"), -EINVAL);
    CHECK_INT_EQ(dns_server_check("192.0.2.1:65536"), -EINVAL);
    CHECK_INT_EQ(dns_server_check("192.0.2.1:"), -EINVAL);
    CHECK_INT_EQ(dns_server_check("192.0.2.1:5x"), -EINVAL);
    CHECK_INT_EQ(dns_server_check("[2001:db8::1]x"), -EINVAL);
    CHECK_INT_EQ(dns_server_check("ns.example.com"), -EINVAL);
    CHECK_INT_EQ(dns_server_check(""), -EINVAL);

    const char *bad[] = {"192.0.2.1", "nonsense"};
    int err = 0;
    CHECK(dns_resolver_new(&loop, bad, 2, 1000, &err) == NULL);
    CHECK_INT_EQ(err, -EINVAL);
    err = 0;
    CHECK(dns_resolver_new(&loop, bad, 1, 0, &err) == NULL);
    CHECK_INT_EQ(err, -EINVAL);
    /* No list: /etc/resolv.conf (or c-ares' default server when it has none). */
    struct dns_resolver *r = dns_resolver_new(&loop, NULL, 0, 1000, &err);
    CHECK(r != NULL);
    dns_resolver_free(r);
}

static void test_mx_order(struct dns_resolver *r)
{
    static const char *head = "m5.test/5/ok[192.0.2.5 2001:db8::5] ";
    static const char *a = "m10a.test/10/ok[192.0.2.10]";
    static const char *b = "m10b.test/10/ok[192.0.2.11 2001:db8::11]";
    static const char *tail = " m20.test/20/ok[2001:db8::20]";
    char ab[256], ba[256];
    snprintf(ab, sizeof(ab), "%s%s %s%s", head, a, b, tail);
    snprintf(ba, sizeof(ba), "%s%s %s%s", head, b, a, tail);
    struct result res = {0};
    int n_ab = 0, n_ba = 0;
    for (int i = 0; i < 50; i++) {
        dns_resolver_flush(r);
        lookup(r, LOOKUP_MX, "multi.test", &res);
        CHECK_INT_EQ(res.status, DNS_OK);
        CHECK_INT_EQ(res.implicit, 0);
        if (strcmp(result_text(&res), ab) == 0)
            n_ab++;
        else if (strcmp(result_text(&res), ba) == 0)
            n_ba++;
        else
            CHECK_STR_EQ(result_text(&res), ab);
    }
    CHECK(n_ab > 0);
    CHECK(n_ba > 0);
    CHECK_INT_EQ(n_ab + n_ba, 50);

    /* Case and a trailing dot do not matter. */
    lookup(r, LOOKUP_MX, "MULTI.Test.", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK(strncmp(result_text(&res), head, strlen(head)) == 0);
    result_reset(&res);
}

static void test_mx_kinds(struct dns_resolver *r)
{
    static const struct lookup_case cases[] = {
        {LOOKUP_MX, "v4only.test", DNS_OK, "v4only.test/0/ok[192.0.2.2]", 1}, /* implicit MX */
        {LOOKUP_MX, "null.test", DNS_NULL_MX, "", 0},
        {LOOKUP_MX, "nope.test", DNS_NXDOMAIN, "", 0},
        {LOOKUP_MX, "long.test", DNS_NODATA, NULL, 0}, /* exists (TXT), no MX, no address */
        /* the MX target is a CNAME chain */
        {LOOKUP_MX, "cmx.test", DNS_OK, "c1.test=>a.test/10/ok[192.0.2.1 2001:db8::1]", 0},
        /* dnsmasq refuses: not ours, no upstream */
        {LOOKUP_MX, "other.example", DNS_TEMPFAIL, NULL, 0},
        {LOOKUP_MX, "bad..test", DNS_BADNAME, NULL, 0},
        {LOOKUP_MX, "exa mple.test", DNS_BADNAME, NULL, 0},
        {LOOKUP_MX, ".", DNS_BADNAME, NULL, 0},
        {LOOKUP_MX, "", DNS_BADNAME, NULL, 0},
        {LOOKUP_MX, "a.test/x", DNS_BADNAME, NULL, 0},
        {LOOKUP_MX, "x.-.\\.test", DNS_BADNAME, NULL, 0},
    };
    CHECK_LOOKUPS(r, cases);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    for (size_t i = 60; i < sizeof(longname) - 1; i += 61)
        longname[i] = '.';
    /* labels fine, 299 octets in all */
    const struct lookup_case too_long = {LOOKUP_MX, longname, DNS_BADNAME, NULL, 0};
    check_lookups(r, &too_long, 1);
}

static void test_addrs_txt_ptr(struct dns_resolver *r)
{
    static const struct lookup_case cases[] = {
        {LOOKUP_ADDRS, "a.test", DNS_OK, "192.0.2.1 2001:db8::1", 0},
        {LOOKUP_ADDRS, "m20.test", DNS_OK, "2001:db8::20", 0},
        {LOOKUP_ADDRS, "c1.test", DNS_OK, "192.0.2.1 2001:db8::1", 0},
        {LOOKUP_ADDRS, "nope.test", DNS_NXDOMAIN, NULL, 0},
        {LOOKUP_ADDRS, "long.test", DNS_NODATA, NULL, 0},
        {LOOKUP_ADDRS, "no..pe", DNS_BADNAME, NULL, 0},
        {LOOKUP_TXT, "a.test", DNS_NODATA, "", 0},
        {LOOKUP_TXT, "nope.test", DNS_NXDOMAIN, NULL, 0},
        {LOOKUP_PTR, "192.0.2.1", DNS_OK, "a.test", 0},
        {LOOKUP_PTR, "2001:db8::1", DNS_OK, "a.test", 0},
        {LOOKUP_PTR, "::ffff:192.0.2.2", DNS_OK, "v4only.test", 0},
    };
    CHECK_LOOKUPS(r, cases);

    struct result res = {0};
    lookup(r, LOOKUP_TXT, "long.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    char want[320];
    snprintf(want, sizeof(want), "<%s>", long_txt);
    CHECK_STR_EQ(result_text(&res), want);
    lookup(r, LOOKUP_TXT, "spf.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK(strcmp(result_text(&res), "<v=spf1 -all> <second>") == 0 ||
          strcmp(result_text(&res), "<second> <v=spf1 -all>") == 0);
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    CHECK_INT_EQ(dns_resolve_ptr(r, &unix_sa, on_ptr, &res), -EAFNOSUPPORT);
    result_reset(&res);
}

static void test_cache(struct dns_resolver *r)
{
    struct result res = {0};
    struct dns_stats before, after;
    dns_resolver_flush(r);
    dns_resolver_stats(r, &before);
    lookup(r, LOOKUP_ADDRS, "a.test", &res);
    dns_resolver_stats(r, &after);
    CHECK_INT_EQ(after.queries - before.queries, 2);
    CHECK_INT_EQ(after.cache_hits - before.cache_hits, 0);
    /* the callback check in on_addrs proves it was not synchronous */
    lookup(r, LOOKUP_ADDRS, "A.TEST", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK_STR_EQ(result_text(&res), "192.0.2.1 2001:db8::1");
    dns_resolver_stats(r, &before);
    CHECK_INT_EQ(before.queries, after.queries);
    CHECK_INT_EQ(before.cache_hits - after.cache_hits, 2);

    /* Negative answers are cached too. */
    lookup(r, LOOKUP_TXT, "nope.test", &res);
    uint64_t q = queries(r);
    lookup(r, LOOKUP_TXT, "nope.test", &res);
    CHECK_INT_EQ(res.status, DNS_NXDOMAIN);
    CHECK_INT_EQ(queries(r), q);

    /* short.test: A with TTL 1, no AAAA (a negative answer cached for the default 60 s). */
    q = queries(r);
    lookup(r, LOOKUP_ADDRS, "short.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK_STR_EQ(result_text(&res), "192.0.2.9");
    CHECK_INT_EQ(queries(r) - q, 2);
    lookup(r, LOOKUP_ADDRS, "short.test", &res);
    CHECK_INT_EQ(queries(r) - q, 2);
    sleep_ms(1200);
    lookup(r, LOOKUP_ADDRS, "short.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK_STR_EQ(result_text(&res), "192.0.2.9");
    CHECK_INT_EQ(queries(r) - q, 3); /* only the expired A was asked again */

    /* An MX host that is an alias keeps the end of its CNAME chain through the cache. */
    lookup(r, LOOKUP_MX, "cmx.test", &res);
    q = queries(r);
    lookup(r, LOOKUP_MX, "CMX.test", &res);
    CHECK_INT_EQ(queries(r), q);
    CHECK_STR_EQ(result_text(&res), "c1.test=>a.test/10/ok[192.0.2.1 2001:db8::1]");
    result_reset(&res);
}

/* Concurrent identical questions share one query: two MX requests for multi.test (MX, then A
 * and AAAA for its four hosts) cost 9 queries, not 18; the answers are the same. */
static void test_coalesce(struct dns_resolver *r)
{
    struct result first = {0}, second = {0}, third = {0};
    dns_resolver_flush(r);
    uint64_t q = queries(r);
    in_call = 1;
    CHECK_INT_EQ(dns_resolve_mx(r, "multi.test", on_mx, &first), 0);
    CHECK_INT_EQ(dns_resolve_mx(r, "Multi.Test.", on_mx, &second), 0);
    CHECK_INT_EQ(dns_resolve_addrs(r, "m5.test", on_addrs, &third), 0);
    in_call = 0;
    int both = 0;
    for (int i = 0; i < 100 && !both; i++) { /* bounded: each round waits for one more answer */
        run_until(&second.done, WAIT_MS / 10);
        both = first.done && second.done && third.done;
    }
    CHECK(both);
    CHECK_INT_EQ(first.calls, 1);
    CHECK_INT_EQ(second.calls, 1);
    CHECK_INT_EQ(third.calls, 1);
    CHECK_INT_EQ(first.status, DNS_OK);
    CHECK_INT_EQ(second.status, DNS_OK);
    CHECK_STR_EQ(result_text(&third), "192.0.2.5 2001:db8::5");
    /* The hosts sharing preference 10 come in random order in each result. */
    static const char *head = "m5.test/5/ok[192.0.2.5 2001:db8::5] ";
    CHECK(strncmp(result_text(&first), head, strlen(head)) == 0);
    CHECK(strncmp(result_text(&second), head, strlen(head)) == 0);
    CHECK_INT_EQ(strlen(result_text(&first)), strlen(result_text(&second)));
    CHECK_INT_EQ(queries(r) - q, 9);
    result_reset(&first);
    result_reset(&second);
    result_reset(&third);
}

/* A parked (cached) answer's callback frees the resolver while an MX lookup is on the wire. */
struct free_inside {
    struct dns_resolver *r;
    struct result addrs, mx;
    int reentry; /* what a lookup started from a cancelled callback returned */
};

static void free_inside_on_addrs(void *arg, enum dns_status status, const struct dns_addr *a,
                                 size_t n)
{
    struct free_inside *fi = arg;
    on_addrs(&fi->addrs, status, a, n);
    dns_resolver_free(fi->r);
}

static void free_inside_on_mx(void *arg, const struct dns_mx_result *res)
{
    struct free_inside *fi = arg;
    on_mx(&fi->mx, res);
    fi->reentry = dns_resolve_mx(fi->r, "multi.test", on_mx, &fi->mx);
}

static void test_free_inside_callback(void)
{
    struct free_inside fi = {0};
    struct result res = {0};
    fi.r = resolver_for(dnsmasq.server, 2000);
    lookup(fi.r, LOOKUP_ADDRS, "a.test", &res); /* now cached */
    CHECK_INT_EQ(dns_resolve_addrs(fi.r, "a.test", free_inside_on_addrs, &fi), 0);
    CHECK_INT_EQ(dns_resolve_mx(fi.r, "multi.test", free_inside_on_mx, &fi), 0);
    CHECK(run_until(&fi.mx.done, WAIT_MS));
    CHECK_INT_EQ(fi.addrs.calls, 1);
    CHECK_INT_EQ(fi.addrs.status, DNS_OK);
    CHECK_INT_EQ(fi.mx.calls, 1);
    CHECK_INT_EQ(fi.mx.status, DNS_CANCELLED);
    CHECK_INT_EQ(fi.reentry, -ESHUTDOWN);
    sleep_ms(50);
    CHECK_INT_EQ(fi.mx.calls, 1);
    result_reset(&fi.addrs);
    result_reset(&fi.mx);
    result_reset(&res);
}

static void test_silent_server(void)
{
    int s;
    struct dns_resolver *r = dnsmasq_silent_resolver(&loop, 600, &s);
    CHECK(r != NULL);
    struct result res = {0};
    uint64_t t0 = uv_hrtime();
    lookup(r, LOOKUP_ADDRS, "a.test", &res);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    CHECK_INT_EQ(res.status, DNS_TEMPFAIL);
    CHECK(ms >= 500);
    CHECK(ms <= 1500);
    if (ms < 500 || ms > 1500)
        fprintf(stderr, "timeout took %llu ms, want about 600\n", (unsigned long long)ms);
    lookup(r, LOOKUP_TXT, "a.test", &res); /* TEMPFAIL is not cached: this one is asked again */
    CHECK_INT_EQ(res.status, DNS_TEMPFAIL);
    CHECK_INT_EQ(queries(r), 3);

    /* Freeing with lookups of every kind in flight, plus one parked (a bad name) and one waiting
     * for another's question: each callback runs once, with DNS_CANCELLED, before
     * dns_resolver_free returns. */
    struct result pending[6] = {{0}};
    struct sockaddr_in six = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201)};
    CHECK_INT_EQ(dns_resolve_mx(r, "multi.test", on_mx, &pending[0]), 0);
    CHECK_INT_EQ(dns_resolve_addrs(r, "a.test", on_addrs, &pending[1]), 0);
    CHECK_INT_EQ(dns_resolve_txt(r, "spf.test", on_txt, &pending[2]), 0);
    CHECK_INT_EQ(dns_resolve_ptr(r, (struct sockaddr *)&six, on_ptr, &pending[3]), 0);
    sleep_ms(50);
    CHECK_INT_EQ(dns_resolve_txt(r, "bad..name", on_txt, &pending[4]), 0);
    CHECK_INT_EQ(dns_resolve_mx(r, "MULTI.test", on_mx, &pending[5]), 0);
    CHECK_INT_EQ(queries(r), 8); /* 3 + MX, A, AAAA, TXT, PTR: the second MX was not sent */
    for (int i = 0; i < 6; i++)
        CHECK_INT_EQ(pending[i].calls, 0);
    dns_resolver_free(r);
    for (int i = 0; i < 6; i++) {
        CHECK_INT_EQ(pending[i].calls, 1);
        CHECK_INT_EQ(pending[i].status, DNS_CANCELLED);
        result_reset(&pending[i]);
    }
    sleep_ms(50);
    close(s);
    result_reset(&res);
}

/* NS records: the servers' names in answer order; none for a name without them. */
static void test_ns(struct dns_resolver *r)
{
    static const struct lookup_case cases[] = {
        {LOOKUP_NS, "zone.test", DNS_OK, "ns2.zone.test ns1.zone.test", 0}, /* as served */
        {LOOKUP_NS, "a.test", DNS_NODATA, "", 0},
        {LOOKUP_NS, "nope.test", DNS_NXDOMAIN, "", 0},
        {LOOKUP_NS, "bad..test", DNS_BADNAME, "", 0},
    };
    CHECK_LOOKUPS(r, cases);
}

/* DNS_MODE_NO_CACHE: the same question asked twice goes to the server twice, and the answer is
 * not kept for a resolver in the default mode either. */
static void test_no_cache(void)
{
    struct dns_resolver *r = resolver_for(dnsmasq.server, 3000);
    dns_resolver_set_mode(r, DNS_MODE_NO_CACHE);
    struct result res = {0};
    for (int i = 0; i < 2; i++) {
        lookup(r, LOOKUP_NS, "zone.test", &res);
        CHECK_STR_EQ(result_text(&res), "ns2.zone.test ns1.zone.test");
    }
    CHECK_INT_EQ(queries(r), 2);
    dns_resolver_set_mode(r, 0);
    lookup(r, LOOKUP_NS, "zone.test", &res);
    CHECK_INT_EQ(queries(r), 3);
    lookup(r, LOOKUP_NS, "zone.test", &res);
    CHECK_INT_EQ(queries(r), 3); /* cached now */
    result_reset(&res);
    dns_resolver_free(r);
    sleep_ms(10);
}

/* The RD bit of the question as a server on loopback receives it (RFC 1035 §4.1.1: the low bit
 * of the third octet), or -1 when none came. */
static int question_rd(unsigned mode)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, slen) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &slen) == 0);
    char server[32];
    snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(sin.sin_port));
    struct dns_resolver *r = resolver_for(server, 3000);
    dns_resolver_set_mode(r, mode);
    struct result res = {0};
    CHECK_INT_EQ(dns_resolve_ns(r, "zone.test", on_ptr, &res), 0);
    unsigned char q[512];
    ssize_t n = -1;
    for (int i = 0; i < 100 && n < 0; i++) { /* at most a second */
        sleep_ms(10);
        n = recv(fd, q, sizeof(q), MSG_DONTWAIT);
    }
    dns_resolver_free(r); /* the question is never answered: cancelled */
    CHECK_INT_EQ(res.status, DNS_CANCELLED);
    result_reset(&res);
    sleep_ms(10);
    close(fd);
    return n >= 12 ? q[2] & 0x01 : -1;
}

static void test_no_recursion(void)
{
    CHECK_INT_EQ(question_rd(0), 1);
    CHECK_INT_EQ(question_rd(DNS_MODE_NO_RECURSION), 0);
    CHECK_INT_EQ(question_rd(DNS_MODE_NO_RECURSION | DNS_MODE_NO_CACHE), 0);
}

/* With dnsmasq gone, cached answers still come and new questions fail as TEMPFAIL. */
static void test_server_gone(struct dns_resolver *r)
{
    struct result res = {0};
    dns_resolver_flush(r);
    lookup(r, LOOKUP_MX, "multi.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    dnsmasq_stop(&dnsmasq);
    uint64_t q = queries(r);
    lookup(r, LOOKUP_MX, "multi.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    static const char *head = "m5.test/5/ok[192.0.2.5 2001:db8::5] ";
    CHECK(strncmp(result_text(&res), head, strlen(head)) == 0);
    CHECK_INT_EQ(queries(r), q);
    lookup(r, LOOKUP_ADDRS, "fresh.test", &res);
    CHECK_INT_EQ(res.status, DNS_TEMPFAIL);
    result_reset(&res);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    memset(long_txt, 'x', 300);
    for (int i = 0; i < 300; i += 7)
        long_txt[i] = (char)('a' + i % 26);
    uv_loop_init(&loop);
    snprintf(long_txt_arg, sizeof(long_txt_arg), "--txt-record=long.test,%s", long_txt);
    if (dnsmasq_start(&dnsmasq, zone) < 0) {
        fprintf(stderr, "test_dns: could not start %s\n", DNSMASQ);
        return 1;
    }

    test_server_strings();
    struct dns_resolver *r = resolver_for(dnsmasq.server, 3000);
    test_mx_order(r);
    test_mx_kinds(r);
    test_addrs_txt_ptr(r);
    test_cache(r);
    test_coalesce(r);
    test_ns(r);
    test_no_cache();
    test_no_recursion();
    test_free_inside_callback();
    test_silent_server();
    test_server_gone(r);
    CHECK_INT_EQ(dnsmasq_end(&dnsmasq, &loop, r), 0);
    return check_report("test_dns");
}
