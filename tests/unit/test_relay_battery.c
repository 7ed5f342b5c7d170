/*
 * The relay battery: over safe configurations no attempt relays, local recipients and postmaster
 * are accepted; over an acknowledged open relay the relays are found; a configuration the lint
 * passes but the battery catches does not load.
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/config_load.h"
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

struct tally {
    int attempts, relays, local_accepted, local_refused, refused;
    int bad_rule; /* relays whose rule is not a trust rule */
    char clients[2][64];
};

static void tally_on_result(const struct relay_result *res, void *arg)
{
    struct tally *t = arg;
    t->attempts++;
    CHECK_INT_EQ(res->relayed, res->accepted && !res->rcase->must_accept);
    if (res->relayed) {
        t->relays++;
        if (strcmp(res->decision.rule, "relay.trusted_networks") != 0)
            t->bad_rule++;
    } else if (res->rcase->must_accept) {
        if (res->accepted)
            t->local_accepted++;
        else
            t->local_refused++;
    } else {
        t->refused++;
        CHECK(res->decision.code >= 500 && res->decision.code < 600);
    }
    int v6 = strchr(res->client, ':') != NULL;
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
    /* Two clients (IPv4, IPv6) times two listeners. */
    CHECK_INT_EQ(t.attempts, 4 * (int)relay_battery_ncases);
    CHECK_INT_EQ(t.local_accepted, 4 * (int)count_must_accept());
    CHECK_INT_EQ(t.local_refused, 0);
    CHECK_STR_EQ(t.clients[0], "192.0.2.1");
    CHECK_STR_EQ(t.clients[1], "2001:db8::1");
    config_unref(cfg);
}

/* When the documentation addresses are trusted the battery finds another outsider. */
static void test_outsider_search(void)
{
    struct config *cfg = load("listeners:\n"
                              "  - {name: sub, address: \"127.0.0.1:587\", role: submission}\n"
                              "relay:\n"
                              "  trusted_networks: [\"192.0.0.0/8\", \"1.0.0.0/8\", "
                              "\"2001:db8::/32\", \"2000::/8\"]\n");
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    struct tally t = {0};
    CHECK_INT_EQ(relay_battery_run(cfg, tally_on_result, &t), 0);
    CHECK_STR_EQ(t.clients[0], "2.123.45.67");
    CHECK_STR_EQ(t.clients[1], "2100::1");
    config_unref(cfg);
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
    CHECK_INT_EQ(relays % 2, 0); /* the same for the IPv4 and the IPv6 client */
    CHECK(relays <= 2 * (int)(relay_battery_ncases - count_must_accept()));
    CHECK(t.refused > relays); /* inbound: every foreign case refused */
    config_unref(cfg);
}

/* Every unicast /8 trusted one by one: the lint passes each entry, the battery finds no outsider,
 * so the configuration is refused naming the cases, and loads only when acknowledged. */
static void test_battery_refuses_what_the_lint_passes(void)
{
    static const char head[] = "listeners:\n"
                               "  - {name: sub, address: \"127.0.0.1:587\", role: submission}\n"
                               "relay:\n"
                               "  trusted_networks:\n";
    struct buf yaml = BUF_INIT;
    buf_append_str(&yaml, head);
    for (int first = 1; first < 224; first++)
        buf_printf(&yaml, "    - \"%d.0.0.0/8\"\n", first);
    const char *path = "relay_battery_test.yaml";
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fwrite(yaml.data, 1, yaml.len, f);
    fclose(f);

    struct buf err = BUF_INIT;
    struct config *cfg = config_load_for_command(path, &err);
    CHECK(cfg == NULL);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, "relay_battery_test.yaml:196:7: relay battery: listener 'sub' accepted "
                           "RCPT TO:<user@foreign.example> (foreign-domain) from outside client "
                           "192.0.2.1 without AUTH, by rule relay.trusted_networks\n") != NULL);
    CHECK(strstr(err.data, "refusing a configuration that relays for strangers") != NULL);
    CHECK(strstr(err.data, "client 2001:db8::1") == NULL); /* IPv6 has outsiders */
    config_unref(cfg);
    buf_free(&err);

    buf_append_str(&yaml, "  i_understand_this_is_an_open_relay: true\n");
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(yaml.data, 1, yaml.len, f);
        fclose(f);
        cfg = config_load_for_command(path, &err);
        CHECK(cfg != NULL);
        if (cfg == NULL)
            fprintf(stderr, "%.*s\n", (int)err.len, err.data);
        config_unref(cfg);
    }
    remove(path);
    buf_free(&err);
    buf_free(&yaml);
}

int main(void)
{
    test_expand();
    test_safe_config();
    test_outsider_search();
    test_acknowledged_open_relay();
    test_battery_refuses_what_the_lint_passes();
    return check_report("test_relay_battery");
}
