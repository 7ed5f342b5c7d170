/*
 * DMARC (policy/dmarc.h) and the Public Suffix List (policy/public_suffix.h): the record parser
 * (tags, defaults, bad values, unusable records), the RFC5322.From domain (groups, comments, quoted
 * strings, several fields or domains), organizational domains under a small test list (wildcard,
 * exception and IDN rules) and Debian's list, alignment, the evaluation (sp=, pct=), and the lookup
 * against a real dnsmasq on 127.0.0.1 (the organizational domain's record, several records, no
 * record, a DNS timeout, cancelling). Every wait is bounded.
 */
#include "policy/dmarc.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"
#include "tests/support/dnsmasq.h"

#include <stdlib.h>
#include <unistd.h>

#define WAIT_MS 5000

static uv_loop_t loop;

/* ---- the record ---- */

static struct dmarc_record parsed(const char *txt, int want_rc)
{
    struct dmarc_record rec;
    const char *err = NULL;
    int rc = dmarc_record_parse(txt, strlen(txt), &rec, &err);
    if (rc != want_rc)
        fprintf(stderr, "record \"%s\": %d (%s)\n", txt, rc, err ? err : "");
    CHECK_INT_EQ(rc, want_rc);
    CHECK(rc == 0 || err != NULL);
    return rec;
}

static void test_record(void)
{
    CHECK(dmarc_record_is_dmarc("v=DMARC1; p=none", 16));
    CHECK(dmarc_record_is_dmarc("v=DMARC1", 8));
    CHECK(!dmarc_record_is_dmarc("v=DMARC10; p=none", 17));
    CHECK(!dmarc_record_is_dmarc("v=dmarc1; p=none", 16)); /* §6.4: compared exactly */
    CHECK(!dmarc_record_is_dmarc(" v=DMARC1; p=none", 17));
    CHECK(!dmarc_record_is_dmarc("v=spf1 -all", 11));

    struct dmarc_record r = parsed("v=DMARC1; p=reject", 0);
    CHECK_INT_EQ(r.p, DMARC_POLICY_REJECT);
    CHECK_INT_EQ(r.sp, DMARC_POLICY_REJECT); /* sp defaults to p */
    CHECK_INT_EQ(r.pct, 100);
    CHECK_INT_EQ(r.adkim, 'r');
    CHECK_INT_EQ(r.aspf, 'r');
    r = parsed("v=DMARC1;p=quarantine;sp=none;pct=25;adkim=s;aspf=s;rua=mailto:d@example.org", 0);
    CHECK_INT_EQ(r.p, DMARC_POLICY_QUARANTINE);
    CHECK_INT_EQ(r.sp, DMARC_POLICY_NONE);
    CHECK_INT_EQ(r.pct, 25);
    CHECK_INT_EQ(r.adkim, 's');
    CHECK_INT_EQ(r.aspf, 's');
    /* White space around tags and values, case of tag names and policy words, unknown tags. */
    r = parsed("v=DMARC1 ;  P = Reject ; SP=quarantine ; fo=1; x-new=1 ;", 0);
    CHECK_INT_EQ(r.p, DMARC_POLICY_REJECT);
    CHECK_INT_EQ(r.sp, DMARC_POLICY_QUARANTINE);
    /* Bad values of the other tags take their defaults (§6.3). */
    r = parsed("v=DMARC1; p=reject; sp=bogus; pct=101; adkim=x; aspf=; pct", 0);
    CHECK_INT_EQ(r.sp, DMARC_POLICY_REJECT);
    CHECK_INT_EQ(r.pct, 100);
    CHECK_INT_EQ(r.adkim, 'r');
    CHECK_INT_EQ(r.aspf, 'r');
    CHECK_INT_EQ(parsed("v=DMARC1; p=none; pct=0", 0).pct, 0);
    CHECK_INT_EQ(parsed("v=DMARC1; p=none; pct=-5", 0).pct, 100);
    /* No usable p: none with a rua (§6.6.3 step 6), else the record is unusable. */
    r = parsed("v=DMARC1; rua=mailto:agg@example.org", 0);
    CHECK_INT_EQ(r.p, DMARC_POLICY_NONE);
    r = parsed("v=DMARC1; p=block; rua=mailto:agg@example.org", 0);
    CHECK_INT_EQ(r.p, DMARC_POLICY_NONE);
    parsed("v=DMARC1; p=block", -1);
    parsed("v=DMARC1", -1);
    parsed("v=DMARC1; rua=nouri", -1);
    parsed("p=reject; v=DMARC1", -1); /* the version comes first */
}

/* ---- the From domain ---- */

static void from_case(const char *value, const char *want)
{
    char out[DMARC_DOMAIN_MAX + 1] = "";
    const char *err = NULL;
    size_t len = strlen(value);
    const char *values[1] = {value};
    int rc = dmarc_from_domain(values, &len, 1, out, sizeof out, &err);
    if (want == NULL) {
        if (rc == 0)
            fprintf(stderr, "From \"%s\": %s, want an error\n", value, out);
        CHECK_INT_EQ(rc, -1);
        CHECK(err != NULL);
    } else {
        if (rc != 0)
            fprintf(stderr, "From \"%s\": %s\n", value, err);
        CHECK_INT_EQ(rc, 0);
        CHECK_STR_EQ(out, want);
    }
}

static void test_from(void)
{
    from_case(" alice@Example.ORG", "example.org");
    from_case(" Alice <alice@example.org>", "example.org");
    from_case(" \"bob@evil.test\" <alice@example.org>", "example.org");
    from_case(" bob@evil.test <alice@example.org>", "example.org"); /* a display name is not it */
    from_case(" alice@example.org (from bob@evil.test)", "example.org");
    from_case(" (bob@evil.test) alice@example.org", "example.org");
    from_case(" \"a@b\\\"@c\"@example.org", "example.org");
    from_case(" Alice\r\n <alice@example.org.>", "example.org");
    from_case(" <@route.test:alice@example.org>", "example.org"); /* obs-route */
    from_case(" a@example.org, b@EXAMPLE.org", "example.org");    /* one domain: evaluated */
    from_case(" team: a@example.org, b@example.org;", "example.org");
    from_case(" a@b\xc3\xbc"
              "cher.example",
              "xn--bcher-kva.example");
    /* §6.6.1: no domain to evaluate, or several. */
    from_case(" a@example.org, b@example.net", NULL);
    from_case(" undisclosed-recipients:;", NULL);
    from_case("", NULL);
    from_case(" Alice", NULL);
    from_case(" alice@", NULL);
    from_case(" alice@[192.0.2.1]", NULL);
    from_case(" alice@exa mple.org", "example.org"); /* folding white space is dropped */
    from_case(" alice@exa_m!ple.org", NULL);
    from_case(" <alice@example.org> <bob@evil.test>", NULL);
    from_case(" <alice@example.org", NULL);
    from_case(" alice@example.org (unclosed", NULL);
    from_case(" alice@-example.org", NULL);

    char out[DMARC_DOMAIN_MAX + 1];
    const char *err = NULL;
    const char *values[2] = {" a@example.org", " a@example.org"};
    size_t lens[2] = {14, 14};
    CHECK_INT_EQ(dmarc_from_domain(values, lens, 2, out, sizeof out, &err), -1);
    CHECK_STR_EQ(err, "the message has several From fields");
    CHECK_INT_EQ(dmarc_from_domain(values, lens, 0, out, sizeof out, &err), -1);
    CHECK_STR_EQ(err, "the message has no From field");
}

/* ---- organizational domains and alignment ---- */

static const char test_list[] = "// a test list\n"
                                "com\norg\nuk\nco.uk\n"
                                "*.ck\n!www.ck\n"
                                "\xc3\xa4"
                                "rzte.example\n" /* an IDN rule, in UTF-8 */
                                "// ===BEGIN PRIVATE DOMAINS===\n"
                                "blogspot.com\n";

static struct public_suffixes *load_test_list(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sluice-test-dmarc-%d.dat", (int)getpid());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return NULL;
    fputs(test_list, f);
    fclose(f);
    struct buf err = BUF_INIT;
    struct public_suffixes *psl = public_suffixes_load(path, &err);
    if (psl == NULL)
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
    unlink(path);
    buf_free(&err);
    return psl;
}

static void org_case(const struct public_suffixes *psl, const char *domain, const char *want)
{
    char out[DMARC_DOMAIN_MAX + 1];
    CHECK_INT_EQ(public_suffix_org_domain(psl, domain, out, sizeof out), 0);
    CHECK_STR_EQ(out, want);
}

static void test_org_domain(void)
{
    struct public_suffixes *psl = load_test_list();
    CHECK(psl != NULL);
    if (psl == NULL)
        return;
    org_case(psl, "example.com", "example.com");
    org_case(psl, "mail.eu.example.com", "example.com");
    org_case(psl, "a.b.example.co.uk", "example.co.uk");
    org_case(psl, "co.uk", "co.uk");     /* a public suffix is its own */
    org_case(psl, "x.y.z.ck", "y.z.ck"); /* *.ck */
    org_case(psl, "a.www.ck", "www.ck"); /* !www.ck */
    org_case(psl, "me.blogspot.com", "me.blogspot.com");
    org_case(psl, "mail.example.test", "example.test"); /* no rule: the default "*" */
    org_case(psl, "a.b.xn--rzte-koa.example", "b.xn--rzte-koa.example"); /* the A-label form */
    char small[8];
    CHECK_INT_EQ(public_suffix_org_domain(psl, "mail.example.com", small, sizeof small), -1);

    CHECK(dmarc_aligned(psl, "example.com", "example.com", 's'));
    CHECK(dmarc_aligned(psl, "example.com", "EXAMPLE.com", 's'));
    CHECK(!dmarc_aligned(psl, "example.com", "mail.example.com", 's'));
    CHECK(dmarc_aligned(psl, "example.com", "mail.example.com", 'r'));
    CHECK(dmarc_aligned(psl, "news.example.com", "bounce.example.com", 'r'));
    CHECK(!dmarc_aligned(psl, "example.com", "example.net", 'r'));
    CHECK(!dmarc_aligned(psl, "a.co.uk", "b.co.uk", 'r'));
    CHECK(!dmarc_aligned(psl, "me.blogspot.com", "you.blogspot.com", 'r'));
    CHECK(!dmarc_aligned(psl, "example.com", "", 'r'));
    public_suffixes_unref(psl);

    /* Debian's list, the default of inbound.public_suffix_list. */
    struct buf err = BUF_INIT;
    psl = public_suffixes_load("/usr/share/publicsuffix/public_suffix_list.dat", &err);
    CHECK(psl != NULL);
    if (psl != NULL) {
        org_case(psl, "mail.example.co.uk", "example.co.uk");
        org_case(psl, "a.b.example.org", "example.org");
        public_suffixes_unref(psl);
    }
    /* A missing file, and one with no rule, are refused with the reason. */
    buf_reset(&err);
    CHECK(public_suffixes_load("/nonexistent/list.dat", &err) == NULL);
    CHECK(err.len > 0 && strstr(err.data, "cannot open /nonexistent/list.dat") != NULL);
    buf_reset(&err);
    CHECK(public_suffixes_load("/dev/null", &err) == NULL);
    CHECK(err.len > 0 && strstr(err.data, "no public suffix rules") != NULL);
    buf_free(&err);
}

/* ---- the evaluation ---- */

static struct dmarc_policy_record found_record(const char *txt, int organizational)
{
    struct dmarc_policy_record f = {.status = DMARC_PASS, .organizational = organizational};
    const char *err;
    CHECK_INT_EQ(dmarc_record_parse(txt, strlen(txt), &f.rec, &err), 0);
    return f;
}

static void test_evaluate(void)
{
    struct public_suffixes *psl = load_test_list();
    if (psl == NULL)
        return;
    struct dmarc_identifiers ids = {.spf = SPF_PASS, .spf_domain = "bounce.example.com"};
    struct dmarc_policy_record f = found_record("v=DMARC1; p=reject; sp=quarantine", 0);
    struct dmarc_result res;

    dmarc_evaluate(psl, "example.com", &ids, &f, 0, &res); /* relaxed SPF alignment */
    CHECK_INT_EQ(res.status, DMARC_PASS);
    CHECK_INT_EQ(res.policy, DMARC_POLICY_REJECT);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_NONE);
    CHECK_STR_EQ(res.reason, "aligned SPF pass");

    f = found_record("v=DMARC1; p=reject; aspf=s", 0); /* strict: the subdomain does not count */
    dmarc_evaluate(psl, "example.com", &ids, &f, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_FAIL);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_REJECT);

    ids.dkim.n = 2; /* a failed aligned signature does not count, a passing aligned one does */
    snprintf(ids.dkim.sigs[0].domain, sizeof ids.dkim.sigs[0].domain, "example.com");
    ids.dkim.sigs[0].pass = 0;
    snprintf(ids.dkim.sigs[1].domain, sizeof ids.dkim.sigs[1].domain, "mail.example.com");
    ids.dkim.sigs[1].pass = 1;
    dmarc_evaluate(psl, "example.com", &ids, &f, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_PASS);
    CHECK_STR_EQ(res.reason, "aligned DKIM pass");
    f = found_record("v=DMARC1; p=reject; aspf=s; adkim=s", 0);
    dmarc_evaluate(psl, "example.com", &ids, &f, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_FAIL);

    /* An SPF fail aligned or not, DKIM of another domain: fail. */
    struct dmarc_identifiers other = {.spf = SPF_FAIL, .spf_domain = "example.com"};
    other.dkim.n = 1;
    snprintf(other.dkim.sigs[0].domain, sizeof other.dkim.sigs[0].domain, "example.net");
    other.dkim.sigs[0].pass = 1;
    f = found_record("v=DMARC1; p=quarantine", 0);
    dmarc_evaluate(psl, "example.com", &other, &f, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_FAIL);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_QUARANTINE);

    /* sp= when the record is the organizational domain's. */
    f = found_record("v=DMARC1; p=reject; sp=quarantine", 1);
    dmarc_evaluate(psl, "sub.example.com", &other, &f, 0, &res);
    CHECK_INT_EQ(res.policy, DMARC_POLICY_QUARANTINE);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_QUARANTINE);

    /* pct: a sample at or above it gets the next milder policy (§6.6.4). */
    f = found_record("v=DMARC1; p=reject; pct=50", 0);
    dmarc_evaluate(psl, "example.com", &other, &f, 49, &res);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_REJECT);
    dmarc_evaluate(psl, "example.com", &other, &f, 50, &res);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_QUARANTINE);
    f = found_record("v=DMARC1; p=quarantine; pct=0", 0);
    dmarc_evaluate(psl, "example.com", &other, &f, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_FAIL);
    CHECK_INT_EQ(res.disposition, DMARC_POLICY_NONE);

    struct dmarc_policy_record none = {.status = DMARC_NONE}, temp = {.status = DMARC_TEMPERROR};
    dmarc_evaluate(psl, "example.com", &other, &none, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_NONE);
    dmarc_evaluate(psl, "example.com", &other, &temp, 0, &res);
    CHECK_INT_EQ(res.status, DMARC_TEMPERROR);

    /* The sample: FNV-1a of the text, modulo 100. */
    CHECK_INT_EQ(dmarc_sample("", 0), 2166136261u % 100);
    CHECK_INT_EQ(dmarc_sample("<a@b>", 5), dmarc_sample("<a@b>", 5));
    CHECK_INT_EQ(dmarc_sample("a", 1), 0xe40c292cu % 100);
    CHECK_STR_EQ(dmarc_status_name(DMARC_PERMERROR), "permerror");
    CHECK_STR_EQ(dmarc_policy_name(DMARC_POLICY_QUARANTINE), "quarantine");
    public_suffixes_unref(psl);
}

/* ---- the override list ---- */

static void test_override(void)
{
    static const char yaml[] = "inbound:\n"
                               "  dmarc: enforce\n"
                               "  dmarc_override:\n"
                               "    networks: [\"198.51.100.0/24\", \"2001:db8::/32\"]\n"
                               "    senders: [lists.example.net]\n";
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(config_load_string(yaml, strlen(yaml), "test", &cfg, &err), 0);
    buf_free(&err);
    if (cfg == NULL)
        return;
    struct sockaddr_storage in = client_addr("198.51.100.7"), out = client_addr("192.0.2.1");
    struct sockaddr_storage mapped = client_addr("::ffff:198.51.100.9");
    struct sockaddr_storage six = client_addr("2001:db8::5");
    const struct sockaddr *stranger = (const struct sockaddr *)&out;
    CHECK_STR_EQ(dmarc_override_match(cfg, (const struct sockaddr *)&in, ""), "network");
    CHECK_STR_EQ(dmarc_override_match(cfg, (const struct sockaddr *)&mapped, ""), "network");
    CHECK_STR_EQ(dmarc_override_match(cfg, (const struct sockaddr *)&six, ""), "network");
    CHECK_STR_EQ(dmarc_override_match(cfg, stranger, "lists.example.net"), "sender");
    CHECK_STR_EQ(dmarc_override_match(cfg, stranger, "News.Lists.Example.NET"), "sender");
    CHECK(dmarc_override_match(cfg, stranger, "xlists.example.net") == NULL);
    CHECK(dmarc_override_match(cfg, stranger, "lists.example.network") == NULL);
    CHECK(dmarc_override_match(cfg, stranger, "example.net") == NULL);
    CHECK(dmarc_override_match(cfg, stranger, "") == NULL);
    config_unref(cfg);
}

/* ---- the lookup ---- */

static const char *const zone[] = {
    "--txt-record=_dmarc.example.test,v=DMARC1; p=reject; sp=quarantine",
    "--txt-record=_dmarc.example.test,some other text",
    "--txt-record=_dmarc.own.sub.example.test,v=DMARC1; p=none",
    "--txt-record=_dmarc.two.test,v=DMARC1; p=reject",
    "--txt-record=_dmarc.two.test,v=DMARC1; p=none",
    "--txt-record=_dmarc.bad.test,v=DMARC1; p=nonsense",
    "--txt-record=_dmarc.other.bad.test,v=DMARC1; p=reject",
    NULL};

struct outcome {
    int calls;
    struct dmarc_lookup *lookup;
    struct dmarc_policy_record found;
};

static void on_found(void *arg, const struct dmarc_policy_record *found)
{
    struct outcome *o = arg;
    o->calls++;
    o->found = *found;
    dmarc_lookup_free(o->lookup);
}

static struct dmarc_policy_record lookup(struct dns_resolver *r, const struct public_suffixes *psl,
                                         const char *from)
{
    struct outcome o = {0};
    CHECK_INT_EQ(dmarc_lookup_start(r, psl, from, on_found, &o, &o.lookup), 0);
    CHECK_INT_EQ(o.calls, 0);
    CHECK(dnsmasq_run_until(&loop, &o.calls, WAIT_MS));
    CHECK_INT_EQ(o.calls, 1);
    return o.found;
}

static void test_lookup(struct dns_resolver *r, const struct public_suffixes *psl)
{
    struct dmarc_policy_record f = lookup(r, psl, "example.test");
    CHECK_INT_EQ(f.status, DMARC_PASS);
    CHECK_INT_EQ(f.rec.p, DMARC_POLICY_REJECT);
    CHECK_INT_EQ(f.organizational, 0);
    f = lookup(r, psl, "mail.sub.example.test"); /* none there: the organizational domain's */
    CHECK_INT_EQ(f.status, DMARC_PASS);
    CHECK_INT_EQ(f.organizational, 1);
    CHECK_INT_EQ(f.rec.sp, DMARC_POLICY_QUARANTINE);
    f = lookup(r, psl, "own.sub.example.test"); /* its own record wins */
    CHECK_INT_EQ(f.status, DMARC_PASS);
    CHECK_INT_EQ(f.organizational, 0);
    CHECK_INT_EQ(f.rec.p, DMARC_POLICY_NONE);
    CHECK_INT_EQ(lookup(r, psl, "two.test").status, DMARC_NONE); /* §6.6.3 step 5 */
    CHECK_INT_EQ(lookup(r, psl, "bad.test").status, DMARC_NONE);
    /* No record of its own, the organizational domain's unusable: none. */
    CHECK_INT_EQ(lookup(r, psl, "x.bad.test").status, DMARC_NONE);
    CHECK_INT_EQ(lookup(r, psl, "other.bad.test").rec.p, DMARC_POLICY_REJECT);
    CHECK_INT_EQ(lookup(r, psl, "nothing.test").status, DMARC_NONE);

    /* Cancelled before the answer: no callback. */
    struct outcome o = {0};
    CHECK_INT_EQ(dmarc_lookup_start(r, psl, "example.test", on_found, &o, &o.lookup), 0);
    dmarc_lookup_free(o.lookup);
    int never = 0;
    dnsmasq_run_until(&loop, &never, 300);
    CHECK_INT_EQ(o.calls, 0);
}

static void test_timeout(const struct public_suffixes *psl)
{
    int s;
    struct dns_resolver *r = dnsmasq_silent_resolver(&loop, 300, &s);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK_INT_EQ(lookup(r, psl, "example.test").status, DMARC_TEMPERROR); /* never none */
    dns_resolver_free(r);
    int never = 0;
    dnsmasq_run_until(&loop, &never, 50);
    close(s);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    test_record();
    test_from();
    test_org_domain();
    test_evaluate();
    test_override();
    struct public_suffixes *psl = load_test_list();
    struct dnsmasq dm;
    struct dns_resolver *r = dnsmasq_start_resolver(&dm, &loop, zone, 3000);
    if (r == NULL || psl == NULL)
        return 1;
    test_lookup(r, psl);
    test_timeout(psl);
    CHECK_INT_EQ(dnsmasq_end(&dm, &loop, r), 0);
    public_suffixes_unref(psl);
    return check_report("test_dmarc");
}
