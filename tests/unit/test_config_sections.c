/*
 * Configuration sections beyond the core keys: trusted networks and their matching, domain lookup,
 * egress pools and their warm-up, shaping rules (and the shipped ones), DKIM keys and inbound
 * settings. Loading, error positions, defaults and value parsing are in test_config.c.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"
#include "tests/unit/config_load.h"

static void test_trusted_networks(void)
{
    struct config *cfg = load_good("relay:\n  trusted_networks:\n"
                                   "    - 192.0.2.128/25\n"
                                   "    - 2001:db8:1::/48\n"
                                   "    - 198.51.100.7\n"
                                   "    - 10.0.0.0/7\n"
                                   "    - \"::ffff:203.0.113.0/124\"\n");
    if (cfg == NULL)
        return;
    static const struct {
        const char *client;
        int want; /* index of the network, or -1 */
    } cases[] = {
        {"192.0.2.128", 0},        {"192.0.2.255", 0},       {"192.0.2.127", -1},
        {"::ffff:192.0.2.200", 0}, {"::ffff:192.0.2.1", -1}, {"2001:db8:1::1", 1},
        {"2001:db8:1:ffff::1", 1}, {"2001:db8:2::1", -1},    {"198.51.100.7", 2},
        {"198.51.100.8", -1},      {"10.0.0.1", 3},          {"11.255.255.255", 3},
        {"12.0.0.0", -1},          {"203.0.113.15", 4},      {"::ffff:203.0.113.3", 4},
        {"203.0.113.16", -1},      {"::192.0.2.200", -1},    {"unix", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage ss = client_addr(cases[i].client);
        const struct config_cidr *net = config_trusted_network_match(cfg, (struct sockaddr *)&ss);
        long got = net ? (long)(net - cfg->relay.trusted_networks) : -1;
        if (got != cases[i].want)
            fprintf(stderr, "client %s\n", cases[i].client);
        CHECK_INT_EQ(got, cases[i].want);
    }
    config_unref(cfg);

    /* The default trusts loopback only, in both families. */
    cfg = load_good("");
    if (cfg == NULL)
        return;
    static const char *const local[] = {"127.0.0.1", "127.255.0.3", "::1", "::ffff:127.0.0.1"};
    static const char *const remote[] = {"128.0.0.1", "::2", "192.0.2.1", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        struct sockaddr_storage a = client_addr(local[i]), b = client_addr(remote[i]);
        CHECK(config_trusted_network_match(cfg, (struct sockaddr *)&a) != NULL);
        CHECK(config_trusted_network_match(cfg, (struct sockaddr *)&b) == NULL);
    }
    config_unref(cfg);

    cfg = load_good("relay:\n  trusted_networks: []\n");
    if (cfg != NULL) {
        struct sockaddr_storage a = client_addr("127.0.0.1");
        CHECK_INT_EQ(cfg->relay.ntrusted_networks, 0);
        CHECK(config_trusted_network_match(cfg, (struct sockaddr *)&a) == NULL);
        config_unref(cfg);
    }
}

static void test_domain_find(void)
{
    struct config *cfg = load_good("domains:\n  example.com:\n  Example.NET.:\n  b.example.org:\n"
                                   "  a.example.org: {recipients: /r}\n");
    if (cfg == NULL)
        return;
    static const struct {
        const char *query;
        const char *want;
    } cases[] = {
        {"example.com", "example.com"},
        {"EXAMPLE.COM", "example.com"},
        {"example.com.", "example.com"},
        {"Example.Net", "example.net"},
        {"example.net.", "example.net"},
        {"a.example.org", "a.example.org"},
        {"B.EXAMPLE.ORG.", "b.example.org"},
        {"example.com..", NULL},
        {"sub.example.com", NULL},
        {"example.co", NULL},
        {"xample.com", NULL},
        {"example.org", NULL},
        {"", NULL},
        {".", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct config_domain *d = config_domain_find(cfg, cases[i].query);
        if ((d == NULL) != (cases[i].want == NULL))
            fprintf(stderr, "query '%s'\n", cases[i].query);
        CHECK_STR_EQ(d ? d->name : NULL, cases[i].want);
    }
    const struct config_domain *a = config_domain_find(cfg, "a.example.org");
    CHECK(a != NULL && a->recipients != NULL && strcmp(a->recipients, "/r") == 0);
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(config_domain_find(cfg, longname) == NULL);
    config_unref(cfg);

    cfg = load_good("");
    if (cfg != NULL) {
        CHECK(config_domain_find(cfg, "example.com") == NULL);
        config_unref(cfg);
    }
}

static void test_egress(void)
{
    struct config *cfg = load_good("server: {hostname: mx.example.net}\n"
                                   "egress:\n"
                                   "  pools:\n"
                                   "    default:\n"
                                   "      - {address: 192.0.2.10, ehlo: out1.example.net}\n"
                                   "      - address: \"2001:db8::11\"\n"
                                   "    bulk:\n"
                                   "      - {address: 192.0.2.12}\n"
                                   "shaping:\n"
                                   "  rules:\n"
                                   "    - {match: {domain: a.example}, pool: bulk}\n");
    if (cfg == NULL)
        return;
    CHECK_INT_EQ(cfg->negress_pools, 2);
    const struct config_egress_pool *pool = config_egress_pool_find(cfg, "default");
    CHECK(pool == &cfg->egress_pools[0]);
    if (pool != NULL && pool->naddrs == 2) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&pool->addrs[0].addr;
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&pool->addrs[1].addr;
        CHECK_STR_EQ(pool->addrs[0].address, "192.0.2.10");
        CHECK_INT_EQ(v4->sin_family, AF_INET);
        CHECK_INT_EQ(ntohl(v4->sin_addr.s_addr), 0xc000020a);
        CHECK_INT_EQ(v4->sin_port, 0);
        CHECK_STR_EQ(pool->addrs[0].ehlo, "out1.example.net");
        CHECK_INT_EQ(pool->addrs[0].pos.line, 5);
        CHECK_INT_EQ(v6->sin6_family, AF_INET6);
        CHECK_INT_EQ(v6->sin6_addr.s6_addr[15], 0x11);
        CHECK_STR_EQ(pool->addrs[1].ehlo, "mx.example.net"); /* server.hostname */
    } else {
        CHECK(0);
    }
    pool = config_egress_pool_find(cfg, "bulk");
    CHECK(pool != NULL && pool->naddrs == 1 && pool->pos.line == 7);
    CHECK(config_egress_pool_find(cfg, "Bulk") == NULL);
    CHECK_STR_EQ(cfg->shaping.rules[0].values.pool, "bulk");
    config_unref(cfg);
}

static void test_egress_warmup(void)
{
    struct config *cfg = load_good("egress:\n"
                                   "  pools:\n"
                                   "    default:\n"
                                   "      - {address: 192.0.2.10}\n"
                                   "      - address: 192.0.2.11\n"
                                   "        warmup:\n"
                                   "          start: 2026-12-01\n"
                                   "          utc_offset: \"-05:00\"\n"
                                   "          overflow: wait\n"
                                   "          schedule:\n"
                                   "            - {provider: \"*.google.com\", per_day: [5, 10]}\n"
                                   "            - per_day: [50]\n");
    if (cfg == NULL)
        return;
    const struct config_warmup *warm = &cfg->egress_pools[0].addrs[0].warmup;
    const struct config_warmup *w = &cfg->egress_pools[0].addrs[1].warmup;
    CHECK_INT_EQ(warm->nschedule, 0);
    CHECK_INT_EQ(warm->offset_minutes, 0);
    CHECK_INT_EQ(w->start_day, 20788);
    CHECK_INT_EQ(w->offset_minutes, -300);
    CHECK_INT_EQ(w->overflow, WARMUP_OVERFLOW_WAIT);
    CHECK_INT_EQ(w->nschedule, 2);
    if (w->nschedule == 2) {
        CHECK_STR_EQ(w->schedule[0].provider, "*.google.com");
        CHECK_INT_EQ(w->schedule[0].ndays, 2);
        CHECK_INT_EQ(w->schedule[0].per_day[1], 10);
        CHECK_STR_EQ(w->schedule[1].provider, "*");
        CHECK_INT_EQ(w->schedule[1].per_day[0], 50);
        CHECK_INT_EQ(w->schedule[1].pos.line, 12);
    }
    config_unref(cfg);
}

static void test_shaping_rules(void)
{
    struct config *cfg = load_good("shaping:\n"
                                   "  rules:\n"
                                   "    - match: { mx: \"*.Comcast.NET.\" }\n"
                                   "      recipients_per_connection: 6\n"
                                   "      rate: 6/s\n"
                                   "    - match: { domain: [example-isp.net, Other.example] }\n"
                                   "      connections: 2\n"
                                   "      retry: [1s, 2s]\n"
                                   "      tls: required\n"
                                   "  default:\n"
                                   "    connections: 4\n"
                                   "    retry: [1m]\n"
                                   "    expire: 1s\n"
                                   "    message_rate: 500/10m\n");
    if (cfg == NULL)
        return;
    const struct config_shaping_rule *rules = cfg->shaping.rules;
    CHECK(cfg->shaping.nrules > 2);
    /* The site's rules come first, in order; then the shipped ones. */
    CHECK_INT_EQ(rules[0].shipped, 0);
    CHECK_INT_EQ(rules[1].shipped, 0);
    for (size_t i = 2; i < cfg->shaping.nrules; i++)
        CHECK_INT_EQ(rules[i].shipped, 1);
    CHECK_INT_EQ(rules[0].pos.line, 3);
    CHECK_INT_EQ(rules[0].nmatch_mx, 1);
    CHECK_STR_EQ(rules[0].match_mx[0], "*.comcast.net");
    CHECK_INT_EQ(rules[1].nmatch_domain, 2);
    CHECK_STR_EQ(rules[1].match_domain[1], "other.example");

    /* Keys a rule leaves out come from shaping.default, even written after the rules. */
    const struct config_shaping *a = &rules[0].values, *b = &rules[1].values;
    CHECK_INT_EQ(a->recipients_per_connection, 6);
    CHECK_INT_EQ(a->rate.count, 6);
    CHECK_INT_EQ(a->rate.period_ms, 1000);
    CHECK_INT_EQ(a->connections, 4);
    CHECK_INT_EQ(a->nretry, 1);
    CHECK_INT_EQ(a->retry_ms[0], minute_ms);
    CHECK_INT_EQ(a->expire_ms, 1000);
    CHECK_INT_EQ(a->message_rate.count, 500);
    CHECK_INT_EQ(a->message_rate.period_ms, 10 * minute_ms);
    CHECK_INT_EQ(a->tls, SHAPING_TLS_OPPORTUNISTIC);
    CHECK_STR_EQ(a->pool, "default");
    CHECK_INT_EQ(b->connections, 2);
    CHECK_INT_EQ(b->recipients_per_connection, 500);
    CHECK_INT_EQ(b->nretry, 2);
    CHECK_INT_EQ(b->retry_ms[1], 2000);
    CHECK_INT_EQ(b->tls, SHAPING_TLS_REQUIRED);
    CHECK_INT_EQ(cfg->shaping.defaults.connections, 4);
    CHECK_INT_EQ(cfg->shaping.defaults.tls, SHAPING_TLS_OPPORTUNISTIC);
    config_unref(cfg);

    cfg = load_good("shaping:\n"
                    "  provider_rules: false\n"
                    "  rules:\n"
                    "    - match: { domain: a.example }\n");
    if (cfg != NULL) {
        CHECK_INT_EQ(cfg->shaping.nrules, 1);
        CHECK_INT_EQ(cfg->shaping.provider_rules, 0);
        config_unref(cfg);
    }
}

/* packaging/shaping.yaml is compiled in: it loads cleanly, names its own file in positions, and
 * its rules inherit the site's defaults, including a pool that exists. */
static void test_shipped_rules(void)
{
    struct config *cfg = load_good("egress:\n  pools:\n    out:\n      - {address: 192.0.2.1}\n"
                                   "shaping:\n  default: {pool: out, connections: 1}\n");
    if (cfg == NULL)
        return;
    CHECK(cfg->shaping.nrules > 5);
    for (size_t i = 0; i < cfg->shaping.nrules; i++) {
        const struct config_shaping_rule *r = &cfg->shaping.rules[i];
        CHECK_INT_EQ(r->shipped, 1);
        CHECK_STR_EQ(r->pos.file, "<shipped shaping.yaml>");
        CHECK(r->pos.line > 1);
        CHECK_STR_EQ(r->values.pool, "out");
    }
    config_unref(cfg);
}

static void test_dkim_and_inbound(void)
{
    struct config *cfg = load_good("dkim:\n"
                                   "  - domain: example.com\n"
                                   "    selector: s2026\n"
                                   "    key: /etc/sluice/dkim/example.com.pem\n"
                                   "  - domain: example.org\n"
                                   "    selector: \"2026.ed\"\n"
                                   "    key: /k.pem\n"
                                   "    algorithm: ed25519-sha256\n"
                                   "    canonicalization: simple/relaxed\n"
                                   "    signing_domain: mail.example.org\n"
                                   "    expire: 7d\n"
                                   "    identity: \"bounces@news.mail.example.org\"\n"
                                   "dkim_on_failure: tempfail\n"
                                   "inbound:\n"
                                   "  dnsbl:\n"
                                   "    - { zone: zen.spamhaus.org, weight: 2 }\n"
                                   "    - { zone: b.barracudacentral.org }\n"
                                   "  dnsbl_threshold: 2\n"
                                   "  reverse_dns: require_forward_confirmed\n"
                                   "  spf: reject_fail\n"
                                   "  blocked_attachments: [EXE, .Scr, js]\n"
                                   "  max_connections_per_client: 0\n"
                                   "  pregreet_wait: 1s\n"
                                   "  clamd: \"127.0.0.1:3310\"\n"
                                   "  clamd_down: accept\n"
                                   "delivery:\n"
                                   "  port: 2526\n");
    if (cfg == NULL)
        return;
    CHECK_INT_EQ(cfg->ndkim, 2);
    if (cfg->ndkim == 2) {
        const struct config_dkim *a = &cfg->dkim[0], *b = &cfg->dkim[1];
        CHECK_STR_EQ(a->domain, "example.com");
        CHECK_STR_EQ(a->selector, "s2026");
        CHECK_STR_EQ(a->key, "/etc/sluice/dkim/example.com.pem");
        CHECK_STR_EQ(a->algorithm, "rsa-sha256");
        CHECK_STR_EQ(a->canonicalization, "relaxed/relaxed");
        CHECK(a->signing_domain == NULL && a->identity == NULL);
        CHECK_INT_EQ(a->expire_ms, 0);
        CHECK_INT_EQ(a->pos.line, 2);
        CHECK_STR_EQ(b->selector, "2026.ed");
        CHECK_STR_EQ(b->algorithm, "ed25519-sha256");
        CHECK_STR_EQ(b->canonicalization, "simple/relaxed");
        CHECK_STR_EQ(b->signing_domain, "mail.example.org");
        CHECK_INT_EQ(b->expire_ms, 7 * 24 * hour_ms);
        CHECK_STR_EQ(b->identity, "bounces@news.mail.example.org");
    }
    CHECK_INT_EQ(cfg->dkim_on_error, DKIM_ON_ERROR_TEMPFAIL);
    CHECK_INT_EQ(cfg->inbound.ndnsbl, 2);
    if (cfg->inbound.ndnsbl == 2) {
        CHECK_STR_EQ(cfg->inbound.dnsbl[0].zone, "zen.spamhaus.org");
        CHECK_INT_EQ(cfg->inbound.dnsbl[0].weight, 2);
        CHECK_INT_EQ(cfg->inbound.dnsbl[1].weight, 1);
        CHECK_INT_EQ(cfg->inbound.dnsbl[1].pos.line, 17);
    }
    CHECK_INT_EQ(cfg->inbound.dnsbl_threshold, 2);
    CHECK_INT_EQ(cfg->inbound.reverse_dns, REVERSE_DNS_REQUIRE_FORWARD_CONFIRMED);
    CHECK_INT_EQ(cfg->inbound.spf, SPF_REJECT_FAIL);
    CHECK_INT_EQ(cfg->inbound.nblocked_attachments, 3);
    if (cfg->inbound.nblocked_attachments == 3) {
        CHECK_STR_EQ(cfg->inbound.blocked_attachments[0], "exe");
        CHECK_STR_EQ(cfg->inbound.blocked_attachments[1], "scr");
    }
    CHECK_INT_EQ(cfg->inbound.max_connections_per_client, 0);
    CHECK_INT_EQ(cfg->inbound.pregreet_wait_ms, 1000);
    CHECK_STR_EQ(cfg->inbound.clamd, "127.0.0.1:3310");
    CHECK_INT_EQ(cfg->inbound.clamd_down, CLAMD_DOWN_ACCEPT);
    CHECK_INT_EQ(cfg->delivery.port, 2526);
    config_unref(cfg);

    static const char *const clamd[] = {"/run/clamav/clamd.ctl", "localhost:3310", "[::1]:3310"};
    for (size_t i = 0; i < sizeof clamd / sizeof clamd[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "inbound:\n  clamd: \"%s\"\n", clamd[i]);
        cfg = load_good(text);
        if (cfg != NULL)
            CHECK_STR_EQ(cfg->inbound.clamd, clamd[i]);
        config_unref(cfg);
    }
}
int main(void)
{
    test_trusted_networks();
    test_domain_find();
    test_egress();
    test_egress_warmup();
    test_shaping_rules();
    test_shipped_rules();
    test_dkim_and_inbound();
    return check_report("test_config_sections");
}
