/*
 * SPF against a real dnsmasq on 127.0.0.1 serving a test zone: pass through ip4, a (with dual CIDR
 * lengths), mx, ptr, include and redirect; fail and softfail; macros; the RFC 7208 §4.6.4 limits
 * (an include loop, 11 DNS mechanisms, 3 void lookups); two records, no record, a DNS timeout, an
 * IPv6 client, the null sender; cancelling. The parser and macro expander are tested without DNS,
 * the macros against the examples of RFC 7208 §7.4. Every wait is bounded.
 */
#include "policy/spf.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"
#include "tests/support/dnsmasq.h"

#include <stdlib.h>

#define WAIT_MS 5000 /* longest wait for one check */

static uv_loop_t loop;

static const char *const zone[] = {
    "--local=/2.0.192.in-addr.arpa/", "--txt-record=ip4.test,v=spf1 ip4:192.0.2.0/24 -all",
    "--txt-record=a.test,v=spf1 a -all", "--host-record=a.test,192.0.2.20",
    "--txt-record=cidr.test,v=spf1 a:host.cidr.test/24//64 -all",
    "--host-record=host.cidr.test,192.0.2.1,2001:db8::1", "--txt-record=mx.test,v=spf1 mx -all",
    "--mx-host=mx.test,mail.mx.test,10", "--host-record=mail.mx.test,192.0.2.30",
    "--txt-record=incl.test,v=spf1 include:ip4.test ~all",
    "--txt-record=redir.test,v=spf1 redirect=ip4.test", "--txt-record=ptr.test,v=spf1 ptr -all",
    "--host-record=host.ptr.test,192.0.2.40",
    "--txt-record=v6.test,v=spf1 ip6:2001:db8:1::/48 -all",
    /* macros */
    "--txt-record=rev.test,v=spf1 exists:%{ir}.%{v}._spf.%{d} -all",
    "--host-record=10.2.0.192.in-addr._spf.rev.test,127.0.0.2",
    "--txt-record=ip.test,v=spf1 exists:%{i}.ip.test -all",
    "--host-record=192.0.2.11.ip.test,127.0.0.2",
    "--txt-record=local.test,v=spf1 exists:%{l}.user.local.test -all",
    "--host-record=alice.user.local.test,127.0.0.2",
    "--txt-record=ex6.test,v=spf1 exists:a.ex6.test -all", "--host-record=a.ex6.test,127.0.0.2",
    "--txt-record=o.test,v=spf1 -exists:%{o}.deny.test +all",
    "--host-record=o.test.deny.test,127.0.0.2",
    /* limits and errors */
    "--txt-record=loop.test,v=spf1 include:loop2.test -all",
    "--txt-record=loop2.test,v=spf1 include:loop.test -all",
    "--txt-record=ten.test,v=spf1 a:n1.test a:n2.test a:n3.test a:n4.test a:n5.test a:n6.test "
    "a:n7.test a:n8.test a:n9.test a:n10.test -all",
    "--txt-record=eleven.test,v=spf1 a:n1.test a:n2.test a:n3.test a:n4.test a:n5.test a:n6.test "
    "a:n7.test a:n8.test a:n9.test a:n10.test a:n11.test -all",
    "--host-record=n1.test,198.51.100.1", "--host-record=n2.test,198.51.100.2",
    "--host-record=n3.test,198.51.100.3", "--host-record=n4.test,198.51.100.4",
    "--host-record=n5.test,198.51.100.5", "--host-record=n6.test,198.51.100.6",
    "--host-record=n7.test,198.51.100.7", "--host-record=n8.test,198.51.100.8",
    "--host-record=n9.test,198.51.100.9", "--host-record=n10.test,198.51.100.10",
    "--host-record=n11.test,198.51.100.11",
    "--txt-record=void2.test,v=spf1 a:x1.void2.test mx:x2.void2.test -all",
    "--txt-record=void3.test,v=spf1 a:x1.void3.test a:x2.void3.test exists:x3.void3.test -all",
    "--txt-record=manymx.test,v=spf1 mx -all", "--mx-host=manymx.test,m1.manymx.test,1",
    "--mx-host=manymx.test,m2.manymx.test,2", "--mx-host=manymx.test,m3.manymx.test,3",
    "--mx-host=manymx.test,m4.manymx.test,4", "--mx-host=manymx.test,m5.manymx.test,5",
    "--mx-host=manymx.test,m6.manymx.test,6", "--mx-host=manymx.test,m7.manymx.test,7",
    "--mx-host=manymx.test,m8.manymx.test,8", "--mx-host=manymx.test,m9.manymx.test,9",
    "--mx-host=manymx.test,m10.manymx.test,10", "--mx-host=manymx.test,m11.manymx.test,11",
    "--txt-record=two.test,v=spf1 -all", "--txt-record=two.test,v=spf1 +all",
    "--txt-record=nospf.test,hello world", "--txt-record=syntax.test,v=spf1 frobnicate -all",
    "--txt-record=badmacro.test,v=spf1 exists:%{x}.badmacro.test -all",
    "--txt-record=inclnone.test,v=spf1 include:nospf.test -all", NULL};

/* ---- checks ---- */

struct outcome {
    int calls;
    int free_inside; /* free the check from inside the callback */
    struct spf_check *check;
    enum spf_status status;
    char reason[256];
    char header[512]; /* spf_result_format */
    struct policy_decision reject_fail, mark;
};

static void on_result(void *arg, const struct spf_result *res)
{
    struct outcome *o = arg;
    o->calls++;
    o->status = res->status;
    snprintf(o->reason, sizeof(o->reason), "%s", res->reason);
    spf_result_format(res, o->header, sizeof(o->header));
    o->reject_fail = spf_verdict(res, SPF_REJECT_FAIL);
    o->mark = spf_verdict(res, SPF_MARK);
    if (o->free_inside)
        spf_check_free(o->check);
}

/* Runs one check to its callback; returns the status ("reason" and "header" in *o). */
static enum spf_status spf(struct dns_resolver *r, const char *ip, const char *helo,
                           const char *sender, struct outcome *o)
{
    struct sockaddr_storage ss = client_addr(ip);
    memset(o, 0, sizeof *o);
    o->free_inside = 1;
    CHECK_INT_EQ(spf_check_start(r, (struct sockaddr *)&ss, helo, sender, "mx.ours.test", on_result,
                                 o, &o->check),
                 0);
    CHECK_INT_EQ(o->calls, 0); /* never from inside the start */
    CHECK(dnsmasq_run_until(&loop, &o->calls, WAIT_MS));
    CHECK_INT_EQ(o->calls, 1);
    return o->status;
}

/* A check of `sender` from `ip` (HELO helo.test): what it comes to and, when given, the reason
 * (the mechanism that matched, or what went wrong). */
struct spf_case {
    const char *ip, *sender;
    enum spf_status want;
    const char *reason; /* NULL: not checked */
};

static void check_cases(struct dns_resolver *r, const struct spf_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct spf_case *c = &cases[i];
        struct outcome o;
        enum spf_status got = spf(r, c->ip, "helo.test", c->sender, &o);
        if (got != c->want)
            fprintf(stderr, "%s from %s: %s (%s), want %s\n", c->sender, c->ip,
                    spf_status_name(got), o.reason, spf_status_name(c->want));
        CHECK_INT_EQ(got, c->want);
        if (c->reason != NULL)
            CHECK_STR_EQ(o.reason, c->reason);
    }
}

#define CHECK_CASES(r, cases) check_cases(r, cases, sizeof(cases) / sizeof(cases[0]))

/* The results as the session uses them: the header field, and the decision per inbound.spf. */
static void test_verdicts(struct dns_resolver *r)
{
    struct outcome o;
    CHECK_INT_EQ(spf(r, "192.0.2.10", "helo.test", "alice@ip4.test", &o), SPF_PASS);
    CHECK_STR_EQ(o.reason, "+ip4:192.0.2.0/24");
    CHECK_STR_EQ(o.header, "spf=pass smtp.mailfrom=ip4.test");
    CHECK_INT_EQ(o.reject_fail.verdict, POLICY_ACCEPT);
    CHECK_INT_EQ(spf(r, "198.51.100.1", "helo.test", "alice@IP4.test", &o), SPF_FAIL);
    CHECK_STR_EQ(o.reason, "-all");
    CHECK_STR_EQ(o.header, "spf=fail smtp.mailfrom=IP4.test");
    CHECK_DECISION(o.reject_fail, POLICY_REJECT, 550, "5.7.23");
    CHECK_INT_EQ(o.mark.verdict, POLICY_ACCEPT);
    CHECK_INT_EQ(spf(r, "198.51.100.1", "helo.test", "i@incl.test", &o), SPF_SOFTFAIL);
    CHECK_STR_EQ(o.reason, "~all");
    CHECK_INT_EQ(o.reject_fail.verdict, POLICY_ACCEPT);
    CHECK_STR_EQ(o.header, "spf=softfail smtp.mailfrom=incl.test");
}

static void test_mechanisms(struct dns_resolver *r)
{
    static const struct spf_case cases[] = {
        {"192.0.2.20", "a@a.test", SPF_PASS, NULL},
        {"192.0.2.21", "a@a.test", SPF_FAIL, NULL},
        {"192.0.2.77", "x@cidr.test", SPF_PASS, "+a:host.cidr.test/24//64"},
        {"192.0.3.1", "x@cidr.test", SPF_FAIL, NULL},
        {"2001:db8::ffff", "x@cidr.test", SPF_PASS, "+a:host.cidr.test/24//64"},
        {"2001:db8:0:1::1", "x@cidr.test", SPF_FAIL, NULL},
        {"192.0.2.30", "m@mx.test", SPF_PASS, "+mx"},
        {"192.0.2.31", "m@mx.test", SPF_FAIL, NULL},
        {"192.0.2.10", "i@incl.test", SPF_PASS, "+include:ip4.test"},
        {"192.0.2.10", "r@redir.test", SPF_PASS, NULL},
        {"198.51.100.1", "r@redir.test", SPF_FAIL, NULL},
        {"192.0.2.40", "p@ptr.test", SPF_PASS, NULL}, /* host.ptr.test, forward-confirmed */
        {"192.0.2.41", "p@ptr.test", SPF_FAIL, NULL}, /* no PTR */
        {"2001:db8:1::5", "six@v6.test", SPF_PASS, "+ip6:2001:db8:1::/48"},
        {"2001:db8:2::5", "six@v6.test", SPF_FAIL, NULL},
        {"::ffff:192.0.2.10", "x@ip4.test", SPF_PASS, NULL}, /* IPv4-mapped is IPv4 */
    };
    CHECK_CASES(r, cases);
}

static void test_macros_in_dns(struct dns_resolver *r)
{
    static const struct spf_case cases[] = {
        {"192.0.2.10", "x@rev.test", SPF_PASS, NULL}, /* 10.2.0.192.in-addr._spf.rev.test */
        {"192.0.2.11", "x@rev.test", SPF_FAIL, NULL},
        {"192.0.2.11", "x@ip.test", SPF_PASS, NULL}, /* 192.0.2.11.ip.test */
        {"192.0.2.10", "x@ip.test", SPF_FAIL, NULL},
        {"192.0.2.10", "alice@local.test", SPF_PASS, NULL},
        {"192.0.2.10", "bob@local.test", SPF_FAIL, NULL},
        {"192.0.2.10", "x@o.test", SPF_FAIL, NULL},    /* -exists:o.test.deny.test */
        {"2001:db8::5", "x@ex6.test", SPF_PASS, NULL}, /* exists asks for A, even for IPv6 */
    };
    CHECK_CASES(r, cases);
}

static void test_limits_and_errors(struct dns_resolver *r)
{
    static const struct spf_case cases[] = {
        {"192.0.2.10", "x@loop.test", SPF_PERMERROR, "more than 10 DNS-querying mechanisms"},
        {"192.0.2.10", "x@ten.test", SPF_FAIL, NULL},
        {"198.51.100.10", "x@ten.test", SPF_PASS, NULL},
        {"192.0.2.10", "x@eleven.test", SPF_PERMERROR, "more than 10 DNS-querying mechanisms"},
        {"192.0.2.10", "x@manymx.test", SPF_PERMERROR, "more than 10 MX names"},
        {"192.0.2.10", "x@void2.test", SPF_FAIL, NULL},
        {"192.0.2.10", "x@void3.test", SPF_PERMERROR, "more than 2 void DNS lookups"},
        {"192.0.2.10", "x@two.test", SPF_PERMERROR, "more than one SPF record"},
        {"192.0.2.10", "x@nospf.test", SPF_NONE, NULL},
        {"192.0.2.10", "x@nonexistent.test", SPF_NONE, NULL},
        {"192.0.2.10", "x@localhost", SPF_NONE, NULL}, /* not a multi-label domain */
        {"192.0.2.10", "x@syntax.test", SPF_PERMERROR, NULL},
        {"192.0.2.10", "x@badmacro.test", SPF_PERMERROR, NULL},
        {"192.0.2.10", "x@inclnone.test", SPF_PERMERROR, NULL}, /* include of no record */
        {"192.0.2.10", "x@other.example", SPF_TEMPERROR, NULL}, /* dnsmasq refuses */
    };
    CHECK_CASES(r, cases);

    char longsender[400] = "x@";
    for (int i = 0; i < 40; i++)
        strcat(longsender, "ip4.test."); /* 368 octets: no domain, and not asked about */
    strcat(longsender, "ip4.test");
    const struct spf_case too_long = {"192.0.2.10", longsender, SPF_NONE, NULL};
    struct dns_stats before, after;
    dns_resolver_stats(r, &before);
    check_cases(r, &too_long, 1);
    dns_resolver_stats(r, &after);
    CHECK_INT_EQ(after.queries, before.queries);
}

static void test_null_sender(struct dns_resolver *r)
{
    struct outcome o;
    CHECK_INT_EQ(spf(r, "192.0.2.10", "ip4.test", "", &o), SPF_PASS);
    CHECK_STR_EQ(o.header, "spf=pass smtp.helo=ip4.test");
    CHECK_INT_EQ(spf(r, "198.51.100.1", "ip4.test", "", &o), SPF_FAIL);
    /* %{l} of the null sender is "postmaster" (§4.3), checked against HELO's domain. */
    CHECK_INT_EQ(spf(r, "192.0.2.10", "local.test", "", &o), SPF_FAIL);
    CHECK_INT_EQ(spf(r, "192.0.2.10", "helo.test", "local.test", &o), SPF_FAIL);
}

static void test_timeout(void)
{
    int s;
    struct dns_resolver *r = dnsmasq_silent_resolver(&loop, 300, &s);
    CHECK(r != NULL);
    struct outcome o;
    CHECK_INT_EQ(spf(r, "192.0.2.10", "helo.test", "x@ip4.test", &o), SPF_TEMPERROR);
    CHECK_STR_EQ(o.header, "spf=temperror smtp.mailfrom=ip4.test");

    /* Freeing the resolver under a check in flight ends it with temperror, once. */
    struct sockaddr_storage ss = client_addr("192.0.2.10");
    memset(&o, 0, sizeof o);
    CHECK_INT_EQ(spf_check_start(r, (struct sockaddr *)&ss, "h.test", "x@a.test", "mx.test",
                                 on_result, &o, &o.check),
                 0);
    dns_resolver_free(r);
    CHECK_INT_EQ(o.calls, 1);
    CHECK_INT_EQ(o.status, SPF_TEMPERROR);
    spf_check_free(o.check);
    close(s);
}

static void test_cancel(struct dns_resolver *r)
{
    struct sockaddr_storage ss = client_addr("192.0.2.10");
    struct outcome o = {0};
    CHECK_INT_EQ(spf_check_start(r, (struct sockaddr *)&ss, "h.test", "x@incl.test", "mx.test",
                                 on_result, &o, &o.check),
                 0);
    spf_check_free(o.check); /* the lookup in flight finishes unseen */
    int never = 0;
    dnsmasq_run_until(&loop, &never, 300);
    CHECK_INT_EQ(o.calls, 0);
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    CHECK_INT_EQ(spf_check_start(r, &unix_sa, "h", "x@a.test", "mx", on_result, &o, &o.check),
                 -EINVAL);
}

/* ---- the parser and the expander, without DNS ---- */

/* Parses `txt` into *rec and checks the result: 0 (accepted) or -1 (refused). */
static void check_parse(const char *txt, int want, struct spf_record *rec)
{
    const char *err = NULL;
    int rc = spf_record_parse(txt, strlen(txt), rec, &err);
    if (rc != want)
        fprintf(stderr, "parse \"%s\": %s\n", txt, rc == 0 ? "accepted" : err);
    CHECK_INT_EQ(rc, want);
}

static void test_parse(void)
{
    static struct spf_record rec;
    const char *err = NULL;
    static const char *good[] = {
        "v=spf1",
        "v=spf1 -all",
        "V=SPF1 +A -MX:example.com/24 ~ptr ?ip4:10.0.0.0/8 ip6:2001:db8::/32 -all",
        "v=spf1 a//64 mx/24//48 a:%{d}.example.com include:_spf.%{d2} exists:%{ir}.%{v}._x.%{d}",
        "v=spf1 redirect=_spf.example.com exp=explain.%{d} foo=%{c}%{r}%{t} x-y.z=",
        "v=spf1  ip4:192.0.2.1   -all  ",
        "v=spf1 exists:%{l1r-}.example.com a:example.com.",
        "v=spf1 a:%{l/}.example.com a:%{l/}.example.com/24 mx:%{d}//64",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        check_parse(good[i], 0, &rec);
    CHECK_INT_EQ(spf_record_parse(good[2], strlen(good[2]), &rec, &err), 0);
    CHECK_INT_EQ(rec.nterms, 6);
    CHECK_INT_EQ(rec.terms[1].qualifier, '-');
    CHECK_INT_EQ(rec.terms[1].mech, SPF_MX);
    CHECK_STR_EQ(rec.terms[1].domain, "example.com");
    CHECK_INT_EQ(rec.terms[1].cidr4, 24);
    CHECK_INT_EQ(rec.terms[1].cidr6, 128);
    CHECK_INT_EQ(rec.terms[4].cidr6, 32);
    CHECK_INT_EQ(spf_record_parse(good[3], strlen(good[3]), &rec, &err), 0);
    CHECK_INT_EQ(rec.terms[0].cidr4, 32);
    CHECK_INT_EQ(rec.terms[0].cidr6, 64);
    CHECK_INT_EQ(rec.terms[1].cidr4, 24);
    CHECK_INT_EQ(rec.terms[1].cidr6, 48);
    CHECK_INT_EQ(spf_record_parse(good[4], strlen(good[4]), &rec, &err), 0);
    CHECK_STR_EQ(rec.redirect, "_spf.example.com");
    CHECK_STR_EQ(rec.exp, "explain.%{d}");
    CHECK_INT_EQ(spf_record_parse(good[7], strlen(good[7]), &rec, &err), 0);
    CHECK_STR_EQ(rec.terms[0].domain, "%{l/}.example.com");
    CHECK_STR_EQ(rec.terms[1].domain, "%{l/}.example.com");
    CHECK_INT_EQ(rec.terms[1].cidr4, 24);
    CHECK_STR_EQ(rec.terms[2].domain, "%{d}");
    CHECK_INT_EQ(rec.terms[2].cidr4, 32);
    CHECK_INT_EQ(rec.terms[2].cidr6, 64);

    static const char *bad[] = {
        "v=spf10 -all",
        "spf1 -all",
        "v=spf1 foo",
        "v=spf1 all:x.com",
        "v=spf1 include",
        "v=spf1 include:",
        "v=spf1 ip4:192.0.2.1/33",
        "v=spf1 ip4:192.0.2.1/024",
        "v=spf1 ip4:192.0.2",
        "v=spf1 ip6:2001:db8::/129",
        "v=spf1 ip6:192.0.2.1",
        "v=spf1 a/33",
        "v=spf1 mx//129",
        "v=spf1 a/",
        "v=spf1 a:example.com//",
        "v=spf1 ptr/24",
        "v=spf1 a:example",     /* no top label */
        "v=spf1 a:example.123", /* numeric top label */
        "v=spf1 exists:%{x}.example.com",
        "v=spf1 exists:%{d0}.example.com",
        "v=spf1 exists:%{c}.example.com", /* c only in explanations */
        "v=spf1 exists:%{d.example.com",
        "v=spf1 exists:%x.example.com",
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 exp=a.example exp=b.example",
        "v=spf1 foo=%{q}",
        "v=spf1 -all \x01",
        "v=spf1 *all",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_parse(bad[i], -1, &rec);
    char big[SPF_RECORD_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "v=spf1 ", 7);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT_EQ(spf_record_parse(big, strlen(big), &rec, &err), -1);
    CHECK_INT_EQ(spf_record_is_spf("v=spf1", 6), 1);
    CHECK_INT_EQ(spf_record_is_spf("v=spf1x", 7), 0);
    CHECK_INT_EQ(spf_record_is_spf("v=spf", 5), 0);
}

/* RFC 7208 §7.4's examples. */
static void test_macros(void)
{
    struct spf_macro_env env = {
        .sender = "strong-bad@email.example.com",
        .local = "strong-bad",
        .sender_domain = "email.example.com",
        .domain = "email.example.com",
        .ip = "192.0.2.3",
        .ip_text = "192.0.2.3",
        .helo = "mx.example.org",
        .ip_version = "in-addr",
        .receiver = "mx.ours.example",
        .now = 1234567890,
    };
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"%{s}", "strong-bad@email.example.com"},
        {"%{o}", "email.example.com"},
        {"%{d}", "email.example.com"},
        {"%{d4}", "email.example.com"},
        {"%{d3}", "email.example.com"},
        {"%{d2}", "example.com"},
        {"%{d1}", "com"},
        {"%{dr}", "com.example.email"},
        {"%{d2r}", "example.email"},
        {"%{l}", "strong-bad"},
        {"%{l-}", "strong.bad"},
        {"%{lr}", "strong-bad"},
        {"%{lr-}", "bad.strong"},
        {"%{l1r-}", "strong"},
        {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
        {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
        {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
        {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
        {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
        {"%{S}", "strong-bad%40email.example.com"},
        {"%%%_%-", "% %20"},
        {"%{h}", "mx.example.org"},
        {"%{p}", "unknown"},
    };
    char out[SPF_EXPAND_MAX + 1];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = spf_macro_expand(cases[i].spec, &env, 0, 0, out, sizeof(out));
        CHECK_INT_EQ(n, strlen(cases[i].want));
        CHECK_STR_EQ(n >= 0 ? out : "(invalid)", cases[i].want);
    }
    /* IPv6 %{ir} (§7.4's example). */
    env.ip = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1";
    env.ip_version = "ip6";
    CHECK(spf_macro_expand("%{ir}.%{v}._spf.%{d2}", &env, 0, 0, out, sizeof(out)) > 0);
    CHECK_STR_EQ(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
                      "example.com");
    /* Explanation-only letters. */
    CHECK_INT_EQ(spf_macro_expand("%{c}", &env, 0, 0, out, sizeof(out)), -1);
    CHECK(spf_macro_expand("%{c} %{r} %{t}", &env, 1, 0, out, sizeof(out)) > 0);
    CHECK_STR_EQ(out, "192.0.2.3 mx.ours.example 1234567890");
    /* Invalid ones. */
    static const char *invalid[] = {"%", "%{", "%{d", "%{d0}", "%{z}", "%{dx}", "%a", "a\x7f"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        CHECK_INT_EQ(spf_macro_expand(invalid[i], &env, 1, 0, out, sizeof(out)), -1);
    /* Too long for the buffer; a domain over 253 octets loses labels from the left (§7.3). */
    CHECK_INT_EQ(spf_macro_expand("%{s}", &env, 0, 0, out, 8), -1);
    char label[64], spec[512];
    memset(label, 'x', 63);
    label[63] = '\0';
    snprintf(spec, sizeof(spec), "a.%s.%s.%s.%s.example", label, label, label, label);
    int n = spf_macro_expand(spec, &env, 0, 1, out, sizeof(out));
    CHECK(n > 0 && n <= SPF_DOMAIN_MAX);
    CHECK_STR_EQ(out, spec + 2 + 64);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    test_parse();
    test_macros();
    struct dnsmasq dm;
    struct dns_resolver *r = dnsmasq_start_resolver(&dm, &loop, zone, 3000);
    if (r == NULL)
        return 1;
    test_verdicts(r);
    test_mechanisms(r);
    test_macros_in_dns(r);
    test_limits_and_errors(r);
    test_null_sender(r);
    test_cancel(r);
    test_timeout();
    CHECK_INT_EQ(dnsmasq_end(&dm, &loop, r), 0);
    return check_report("test_spf");
}
