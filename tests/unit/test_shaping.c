/*
 * Shaping: which rule applies to a domain and its MX hosts (site rules, then the shipped provider
 * rules, first match wins), the destination key and the values mail is shaped under, and the
 * message and recipient rates that pace the SMTP client.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/shaping.h"
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

enum { MAIL = SMTP_CLIENT_PACE_MAIL, RCPT = SMTP_CLIENT_PACE_RCPT };

struct pace_step {
    int what; /* MAIL or RCPT */
    uint64_t now;
    uint64_t want; /* 0: it may go; else the wait in ms */
};

static void check_steps(struct shaping_rates *r, const char *name, const struct pace_step *steps,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t got = shaping_rates_pace(r, (enum smtp_client_pace)steps[i].what, steps[i].now);
        if (got != steps[i].want)
            fprintf(stderr, "%s: step %zu\n", name, i);
        CHECK_INT_EQ(got, steps[i].want);
    }
}

struct pace_case {
    const char *name;
    struct config_rate msgs, rcpts; /* count 0: unlimited */
    unsigned margin;                /* rate_margin_percent */
    uint64_t start;
    struct pace_step steps[12];
    size_t nsteps;
};

/* Sliding windows: a new set ramps in at one command every period/count, a quiet time earns a
 * burst of count, and then the next waits until the first left the widened window. */
static void test_rates_pace(void)
{
    static const struct pace_case cases[] = {
        {"4 RCPTs a second, ramping in, then a burst of 4 after a quiet time, MAIL unlimited",
         {0, 0},
         {4, 1000},
         0,
         1000,
         {{RCPT, 1000, 250},
          {RCPT, 1100, 150},
          {RCPT, 1250, 0},
          {RCPT, 1250, 250},
          {RCPT, 9000, 0},
          {RCPT, 9000, 0},
          {RCPT, 9000, 0},
          {RCPT, 9000, 0},
          {RCPT, 9000, 1000}, /* a fifth would be the fifth within one second */
          {MAIL, 9000, 0},
          {MAIL, 9000, 0}},
         11},
        {"6/s with a 5 % margin: never a 7th within 1050 ms",
         {0, 0},
         {6, 1000},
         5,
         0,
         {{RCPT, 0, 175},
          {RCPT, 5000, 0},
          {RCPT, 5000, 0},
          {RCPT, 5000, 0},
          {RCPT, 5000, 0},
          {RCPT, 5000, 0},
          {RCPT, 5000, 0},
          {RCPT, 5000, 1050},
          {RCPT, 6000, 50},
          {RCPT, 6049, 1},
          {RCPT, 6050, 0}},
         11},
        {"the two rates are counted apart",
         {1, 60000},
         {0, 0},
         0,
         0,
         {{MAIL, 0, 60000}, {RCPT, 0, 0}, {MAIL, 60000, 0}, {MAIL, 60001, 59999}},
         4},
        {"a wait below one millisecond is still a wait",
         {0, 0},
         {3, 1000},
         0,
         0,
         {{RCPT, 333, 1}, {RCPT, 334, 0}},
         2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct pace_case *c = &cases[i];
        struct config_shaping sh = {
            .message_rate = c->msgs, .rate = c->rcpts, .rate_margin_percent = c->margin};
        struct shaping_rates *r = shaping_rates_new(&sh, c->start);
        check_steps(r, c->name, c->steps, c->nsteps);
        shaping_rates_free(r);
    }
}

/* A reload keeps the events of a rate that did not change (under a new margin, if any), and
 * starts a changed one over. */
static void test_rates_update(void)
{
    struct config_shaping sh = {.message_rate = {2, 1000}, .rate = {2, 1000}};
    struct shaping_rates *r = shaping_rates_new(&sh, 0);
    shaping_rates_update(r, &sh, 500); /* the same values: one of each may go at 500 */
    static const struct pace_step same[] = {{MAIL, 500, 0}, {RCPT, 500, 0}, {RCPT, 500, 500}};
    check_steps(r, "same values", same, ARRAY_LEN(same));
    sh.rate.count = 4;
    shaping_rates_update(r, &sh, 1000);
    /* The recipient rate starts over, ramping in; the message rate goes on with its events. */
    static const struct pace_step faster[] = {{RCPT, 1000, 250}, {MAIL, 1000, 0}};
    check_steps(r, "a faster recipient rate", faster, ARRAY_LEN(faster));
    /* A wider margin: the events counted stay, each now in a window of 1500 ms. */
    sh.rate_margin_percent = 50;
    shaping_rates_update(r, &sh, 1000);
    static const struct pace_step wider[] = {{RCPT, 1000, 750}, {MAIL, 1000, 1000}};
    check_steps(r, "a wider margin", wider, ARRAY_LEN(wider));
    shaping_rates_free(r);
}

/* Connections opened: the same windows, asked before and counted when one opens; the set is idle
 * once nothing it counted is inside a window. */
static void test_rates_connect(void)
{
    struct config_shaping sh = {.connection_rate = {2, 1000}, .rate_margin_percent = 5};
    struct shaping_rates *r = shaping_rates_new(&sh, 0);
    CHECK_INT_EQ(shaping_rates_connect_wait(r, 0), 525);
    CHECK_INT_EQ(shaping_rates_connect_wait(r, 525), 0);
    shaping_rates_connected(r, 525);
    CHECK_INT_EQ(shaping_rates_connect_wait(r, 525), 525);
    shaping_rates_connected(r, 1050);
    CHECK_INT_EQ(shaping_rates_connect_wait(r, 1050), 525);
    CHECK_INT_EQ(shaping_rates_pace(r, SMTP_CLIENT_PACE_RCPT, 1050),
                 0); /* the other rates are unlimited */
    CHECK_INT_EQ(shaping_rates_idle(r, 2099), 0);
    CHECK_INT_EQ(shaping_rates_idle(r, 2100), 1);
    shaping_rates_free(r);
}

int main(void)
{
    test_rule_match();
    test_match_bounds();
    test_shipped_rules();
    test_rates_pace();
    test_rates_update();
    test_rates_connect();
    return check_report("test_shaping");
}
