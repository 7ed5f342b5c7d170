/*
 * Shaping: which rule applies to a domain and its MX hosts (site rules, then the shipped provider
 * rules, first match wins), and the destination key and the values mail is shaped under.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mta/shaping.h"
#include "tests/unit/check.h"

static struct config *load(const char *yaml)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(config_load_string(yaml, strlen(yaml), "shaping.yaml", &cfg, &err), 0);
    if (err.len > 0)
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
    buf_free(&err);
    return cfg;
}

/* An MX list of the given host names (no addresses: shaping looks at names only). */
static struct mx_list *mx_of(const char *const *names, size_t n)
{
    struct mx_list *mx = xcalloc(1, sizeof *mx);
    mx->refs = 1;
    mx->hosts = xcalloc(n, sizeof *mx->hosts);
    mx->nhosts = n;
    for (size_t i = 0; i < n; i++)
        mx->hosts[i].name = xstrdup(names[i]);
    return mx;
}

/* The index of the rule that matches, -1 for shaping.default. */
static int rule_index(const struct config *cfg, const char *domain, const char *const *mx,
                      size_t nmx)
{
    const struct config_shaping_rule *r = shaping_rule_match(cfg, domain, mx, nmx);
    return r == NULL ? -1 : (int)(r - cfg->shaping.rules);
}

struct match_case {
    const char *domain;
    const char *mx[2]; /* none: the route failed */
    int rule;          /* index of the rule that wins, -1: none (shaping.default) */
    const char *key;   /* of the destination */
};

static const char rules_yaml[] =
    "shaping:\n"
    "  provider_rules: false\n"
    "  rules:\n"
    "    - match: { mx: [\"*.Comcast.NET.\", \"*.comcast.example\"], domain: comcast.example }\n"
    "    - match: { domain: [isp.example, both.example] }\n"
    "    - match: { mx: mx.exact.example }\n";

static void test_rule_match(void)
{
    static const struct match_case cases[] = {
        /* By MX pattern, at any depth below it; the key is the rule's first pattern, so every
         * domain the provider hosts shares one destination. */
        {"x.example", {"mx1.comcast.net"}, 0, "*.comcast.net"},
        {"y.example", {"a.b.comcast.net"}, 0, "*.comcast.net"},
        {"x.example", {"MX1.Comcast.Net."}, 0, "*.comcast.net"},
        {"x.example", {"mx.comcast.example"}, 0, "*.comcast.net"},
        {"x.example", {"other.example", "mx1.comcast.net"}, 0, "*.comcast.net"},
        {"comcast.example", {NULL}, 0, "*.comcast.net"},
        {"comcast.example", {"mx.elsewhere.example"}, 0, "*.comcast.net"},
        {"both.example", {"mx1.comcast.net"}, 0, "*.comcast.net"},
        {"x.example", {"comcast.net"}, -1, "x.example"},
        {"x.example", {"mx1.notcomcast.net"}, -1, "x.example"},
        {"x.example", {"mx1.comcast.net.evil.example"}, -1, "x.example"},
        {"x.example", {"."}, -1, "x.example"},
        /* By domain: each domain is its own destination. */
        {"isp.example", {NULL}, 1, "isp.example"},
        {"ISP.Example.", {"mx.elsewhere.example"}, 1, "ISP.Example."},
        {"isp.example", {"mx.exact.example"}, 1, "isp.example"},
        {"isp.example..", {NULL}, -1, "isp.example.."},
        {"sub.isp.example", {NULL}, -1, "sub.isp.example"},
        {"isp.exampl", {NULL}, -1, "isp.exampl"},
        {"", {NULL}, -1, ""},
        /* An exact MX name. */
        {"y.example", {"mx.exact.example"}, 2, "mx.exact.example"},
        {"y.example", {"MX.EXACT.EXAMPLE."}, 2, "mx.exact.example"},
        {"y.example", {"a.mx.exact.example"}, -1, "y.example"},
        {"y.example", {"mx.exact.example.org"}, -1, "y.example"},
    };
    struct config *cfg = load(rules_yaml);
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct match_case *c = &cases[i];
        size_t nmx = c->mx[0] == NULL ? 0 : c->mx[1] == NULL ? 1 : 2;
        struct mx_list *mx = nmx > 0 ? mx_of(c->mx, nmx) : NULL;
        struct shaping_dest sd = shaping_dest_for(cfg, c->domain, mx);
        mx_list_unref(mx);
        int got = rule_index(cfg, c->domain, c->mx, nmx);
        const struct config_shaping *want =
            c->rule < 0 ? &cfg->shaping.defaults : &cfg->shaping.rules[c->rule].values;
        if (got != c->rule || strcmp(sd.key, c->key) != 0 || sd.values != want)
            fprintf(stderr, "match case %zu (%s, %s)\n", i, c->domain, c->mx[0]);
        CHECK_INT_EQ(got, c->rule);
        CHECK_STR_EQ(sd.key, c->key);
        CHECK(sd.values == want);
    }
    const char *comcast[] = {"mx1.comcast.net"};
    CHECK_INT_EQ(rule_index(cfg, NULL, comcast, 1), 0); /* no domain: by MX alone */
    config_unref(cfg);
}

/* Names longer than DNS allows match nothing, even by their suffix; only the first 64 MX hosts
 * are looked at. */
static void test_match_bounds(void)
{
    struct config *cfg = load(rules_yaml);
    if (cfg == NULL)
        return;
    char long_host[300];
    memset(long_host, 'a', sizeof long_host);
    memcpy(long_host + sizeof long_host - sizeof ".comcast.net", ".comcast.net",
           sizeof ".comcast.net");
    const char *mx[] = {long_host};
    CHECK_INT_EQ(rule_index(cfg, "x.example", mx, 1), -1);
    mx[0] = long_host + sizeof long_host - 255 - 1; /* 255 octets: still a name */
    CHECK_INT_EQ(rule_index(cfg, "x.example", mx, 1), 0);

    const char *names[65];
    for (size_t i = 0; i < 64; i++)
        names[i] = "mx.nobody.example";
    names[64] = "mx1.comcast.net";
    struct mx_list *list = mx_of(names, 65);
    CHECK_STR_EQ(shaping_dest_for(cfg, "d.example", list).key, "d.example");
    mx_list_unref(list);
    names[63] = "mx1.comcast.net";
    list = mx_of(names, 64);
    CHECK_STR_EQ(shaping_dest_for(cfg, "d.example", list).key, "*.comcast.net");
    mx_list_unref(list);
    config_unref(cfg);
}

/* The shipped rules follow the site's, so a site rule for the same provider wins; without them,
 * a provider's domain falls to shaping.default. */
static void test_shipped_rules(void)
{
    const char *comcast[] = {"mx2c1.comcast.net"}, *google[] = {"gmail-smtp-in.l.google.com"};
    struct config *cfg = load("");
    if (cfg == NULL)
        return;
    const struct config_shaping_rule *r = shaping_rule_match(cfg, "example.net", comcast, 1);
    CHECK(r != NULL && r->shipped);
    if (r != NULL) {
        CHECK_INT_EQ(r->values.recipients_per_connection, 6);
        CHECK_INT_EQ(r->values.rate.count, 6);
        CHECK_INT_EQ(r->values.rate.period_ms, 1000);
        CHECK_INT_EQ(r->values.nretry, cfg->shaping.defaults.nretry); /* inherited */
    }
    r = shaping_rule_match(cfg, "gmail.com", NULL, 0);
    CHECK(r != NULL && r == shaping_rule_match(cfg, "example.org", google, 1));
    static const char *const providers[] = {"yahoo.com",  "aol.com", "outlook.com", "hotmail.com",
                                            "icloud.com", "gmx.net", "web.de",      "orange.fr"};
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
        r = shaping_rule_match(cfg, providers[i], NULL, 0);
        CHECK(r != NULL && r->shipped);
    }
    CHECK(shaping_rule_match(cfg, "example.org", NULL, 0) == NULL);
    config_unref(cfg);

    cfg = load("shaping:\n  rules:\n    - match: { mx: \"*.comcast.net\" }\n      rate: 1/s\n");
    if (cfg != NULL) {
        const char *dotted[] = {"mx2.comcast.net."};
        CHECK_INT_EQ(rule_index(cfg, "comcast.net", dotted, 1), 0);
        CHECK(cfg->shaping.nrules > 1 && cfg->shaping.rules[1].shipped);
        config_unref(cfg);
    }
    cfg = load("shaping:\n  provider_rules: false\n  rules:\n    - match: { domain: a.example }\n");
    if (cfg != NULL) {
        CHECK(shaping_rule_match(cfg, "gmail.com", google, 1) == NULL);
        config_unref(cfg);
    }
}

int main(void)
{
    test_rule_match();
    test_match_bounds();
    test_shipped_rules();
    return check_report("test_shaping");
}
