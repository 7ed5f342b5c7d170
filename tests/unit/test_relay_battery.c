/*
 * The relay battery: over safe configurations no attempt relays and local recipients and
 * postmaster are accepted, from a spread of outside clients over the whole public space (one per
 * public /8, IPv6 and IPv4 carried in IPv6); trusted networks that leave a /8 or an embedding
 * without outsiders are found; a legitimately trusted public block is stepped around; the run
 * stays fast enough for every configuration load.
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/relay_battery.h"
#include "tests/unit/check.h"

/* An inbound MX and a submission listener trusting only loopback and a private network. */
static const char SAFE[] = "listeners:\n"
                           "  - {name: mx, address: \"0.0.0.0:25\", role: inbound}\n"
                           "  - {name: sub, address: \"127.0.0.1:587\", role: submission}\n"
                           "relay:\n"
                           "  trusted_networks: [\"127.0.0.0/8\", \"10.0.0.0/8\", \"::1/128\"]\n"
                           "domains:\n"
                           "  example.com: {}\n";

/* Outside clients per run: IPv4 one per /8 from 1 to 223 but 10 and 127 (no public address);
 * IPv6 one per /8 of 2000::/3, and the IPv4 spread in each of the 9 embeddings. */
#define CLIENTS_V4 221
#define CLIENTS_V6 (32 + 9 * CLIENTS_V4)

struct tally {
    int attempts, relays, local_accepted, local_refused, refused;
    int bad_rule;             /* relays whose rule is not a trust rule */
    size_t nclients[2];       /* IPv4, IPv6: clients asked per attempt */
    size_t relayed_for[2];    /* the most clients one attempt relayed for */
    char clients[2][64];      /* the client shown by the last attempt */
    char relay_client[2][64]; /* the client shown by the first relay */
};

static void tally_on_result(const struct relay_result *res, void *arg)
{
    struct tally *t = arg;
    int v6 = strchr(res->client, ':') != NULL;
    t->attempts++;
    t->nclients[v6] = res->nclients;
    CHECK_INT_EQ(res->relayed, res->accepted && !res->rcase->must_accept);
    CHECK(res->naccepted <= res->nclients);
    if (res->relayed) {
        t->relays++;
        if (strcmp(res->decision.rule, "relay.trusted_networks") != 0)
            t->bad_rule++;
        if (res->naccepted > t->relayed_for[v6])
            t->relayed_for[v6] = res->naccepted;
        if (t->relay_client[v6][0] == '\0')
            snprintf(t->relay_client[v6], sizeof t->relay_client[v6], "%s", res->client);
    } else if (res->rcase->must_accept) {
        if (res->accepted)
            t->local_accepted++;
        else
            t->local_refused++;
    } else {
        t->refused++;
        CHECK_INT_EQ(res->naccepted, 0);
        CHECK(res->decision.code >= 500 && res->decision.code < 600);
    }
    snprintf(t->clients[v6], sizeof t->clients[v6], "%s", res->client);
}

static struct config *load(const char *yaml)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    if (config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err) < 0)
        fprintf(stderr, "load: %.*s\n", (int)err.len, err.data);
    buf_free(&err);
    return cfg;
}

/* The battery over a configuration with one submission listener trusting `networks` (a YAML flow
 * list's items), not gated by the lint. */
static int run_trusting(const char *networks, struct tally *t)
{
    struct buf yaml = BUF_INIT;
    buf_printf(&yaml,
               "listeners:\n  - {name: sub, address: \"127.0.0.1:587\", role: submission}\n"
               "relay:\n  trusted_networks: [%s]\n",
               networks);
    struct config *cfg = load(yaml.data);
    buf_free(&yaml);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return -1;
    memset(t, 0, sizeof *t);
    int relays = relay_battery_run(cfg, tally_on_result, t);
    CHECK_INT_EQ(relays, t->relays);
    CHECK_INT_EQ(t->bad_rule, 0);
    config_unref(cfg);
    return relays;
}

static size_t count_must_accept(void)
{
    size_t n = 0;
    for (size_t i = 0; i < relay_battery_ncases; i++)
        n += relay_battery_cases[i].must_accept;
    return n;
}

static void test_expand(void)
{
    char out[64];
    relay_battery_expand("TO:<\"u%{F}\"@{L}>", "example.com", "f.example", out, sizeof out);
    CHECK_STR_EQ(out, "TO:<\"u%f.example\"@example.com>");
    relay_battery_expand("{L}{L}", "abcdef", "x", out, 8);
    CHECK_STR_EQ(out, "abcdefa");
}

static void test_safe_config(void)
{
    struct config *cfg = load(SAFE);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    struct tally t = {0};
    int relays = relay_battery_run(cfg, tally_on_result, &t);
    CHECK_INT_EQ(relays, 0);
    CHECK_INT_EQ(t.relays, 0);
    /* Two families times two listeners, each attempt asked for every outside client. */
    CHECK_INT_EQ(t.attempts, 4 * (int)relay_battery_ncases);
    CHECK_INT_EQ(t.local_accepted, 4 * (int)count_must_accept());
    CHECK_INT_EQ(t.local_refused, 0);
    CHECK_INT_EQ(t.nclients[0], CLIENTS_V4);
    CHECK_INT_EQ(t.nclients[1], CLIENTS_V6);
    CHECK_STR_EQ(t.clients[0], "1.123.45.67");
    CHECK_STR_EQ(t.clients[1], "2023:4567:89ab:cdef::1");
    config_unref(cfg);
}

/* What the old battery missed: it asked one outside address (192.0.2.1), so trusting every /8
 * but 192/8 looked safe. Each trusted /8 now shows, IPv4-mapped clients too. */
static void test_every_slash8_but_one(void)
{
    struct buf nets = BUF_INIT;
    for (int first = 1; first < 224; first++)
        if (first != 192)
            buf_printf(&nets, "%s\"%d.0.0.0/8\"", nets.len ? ", " : "", first);
    struct tally t;
    CHECK(run_trusting(nets.data, &t) > 0);
    CHECK_STR_EQ(t.relay_client[0], "1.123.45.67");
    CHECK_INT_EQ(t.relayed_for[0], CLIENTS_V4 - 1); /* all but 192's */
    CHECK_STR_EQ(t.relay_client[1], "::ffff:1.123.45.67");
    buf_free(&nets);

    /* One public /8 is enough. */
    CHECK(run_trusting("\"8.0.0.0/8\"", &t) > 0);
    CHECK_STR_EQ(t.relay_client[0], "8.123.45.67");
    CHECK_INT_EQ(t.relayed_for[0], 1);
    CHECK_STR_EQ(t.relay_client[1], "::ffff:8.123.45.67");
    CHECK_INT_EQ(t.relayed_for[1], 1);
}

/* Ranges that carry IPv4 in IPv6 are probed in that form. */
static void test_embedded_forms(void)
{
    static const struct {
        const char *trusted, *first_relay;
        size_t relayed_for;
    } cases[] = {
        {"\"64:ff9b::/96\"", "64:ff9b::17b:2d43", CLIENTS_V4},
        {"\"64:ff9b:1::/48\"", "64:ff9b:1:17b:2d:4300::", 4 * CLIENTS_V4},
        {"\"2002::/16\"", "2002:17b:2d43::", CLIENTS_V4},
        {"\"2001::/32\"", "2001::fe84:d2bc", CLIENTS_V4}, /* Teredo: the address inverted */
        {"\"::/96\"", "::1.123.45.67", CLIENTS_V4},
        {"\"2a00::/8\"", "2a23:4567:89ab:cdef::1", 1},
        {"\"64:ff9b::800:0/104\"", "64:ff9b::87b:2d43", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tally t;
        CHECK(run_trusting(cases[i].trusted, &t) > 0);
        CHECK_STR_EQ(t.relay_client[0], "");
        CHECK_STR_EQ(t.relay_client[1], cases[i].first_relay);
        CHECK_INT_EQ(t.relayed_for[1], cases[i].relayed_for);
    }
}

/* A trusted public block that holds the preferred address of its /8 is stepped around: the
 * clients asked are outside it, so nothing relays. */
static void test_trusted_block_is_avoided(void)
{
    struct tally t;
    CHECK_INT_EQ(run_trusting("\"8.123.0.0/16\", \"2a23:4567::/32\", \"64:ff9b::87b:0/112\", "
                              "\"2002:87b::/32\"",
                              &t),
                 0);
    CHECK_INT_EQ(t.nclients[0], CLIENTS_V4);
    CHECK_INT_EQ(t.nclients[1], CLIENTS_V6);
}

static void test_acknowledged_open_relay(void)
{
    struct config *cfg = load("listeners:\n"
                              "  - {name: mx, address: \"0.0.0.0:25\", role: inbound}\n"
                              "  - {name: sub, address: \"0.0.0.0:587\", role: submission}\n"
                              "relay:\n"
                              "  trusted_networks: [\"0.0.0.0/0\", \"::/0\"]\n"
                              "  i_understand_this_is_an_open_relay: true\n"
                              "domains:\n"
                              "  example.com: {}\n");
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    struct tally t = {0};
    int relays = relay_battery_run(cfg, tally_on_result, &t);
    /* The submission listener relays for every client; the syntax and routing-character cases
     * are still refused, and the inbound listener never relays. */
    CHECK(relays > 0);
    CHECK_INT_EQ(relays, t.relays);
    CHECK_INT_EQ(t.bad_rule, 0);
    CHECK_INT_EQ(relays % 2, 0); /* the same for IPv4 and IPv6 */
    CHECK(relays <= 2 * (int)(relay_battery_ncases - count_must_accept()));
    CHECK(t.refused > relays); /* inbound: every foreign case refused */
    CHECK_INT_EQ(t.relayed_for[0], CLIENTS_V4);
    CHECK_INT_EQ(t.relayed_for[1], CLIENTS_V6);
    config_unref(cfg);
}

int main(void)
{
    test_expand();
    test_safe_config();
    test_every_slash8_but_one();
    test_embedded_forms();
    test_trusted_block_is_avoided();
    test_acknowledged_open_relay();
    return check_report("test_relay_battery");
}
