/*
 * The relay lint: configurations that would relay for strangers are found, with the position of the
 * key to fix; safe ones pass.
 */
#include <string.h>

#include "lib/config.h"
#include "mta/config_load.h"
#include "policy/relay_lint.h"
#include "tests/unit/check.h"

struct lint_case {
    const char *yaml;
    int want_problems;
    const char *want_prefix; /* start of the first problem line, or NULL */
};

/* A configuration trusting the networks given as a YAML flow list's items. */
#define TRUSTING(list) "relay:\n  trusted_networks: [" list "]\n"

static const struct lint_case cases[] = {
    /* The embedded default, private and special-purpose space: no public address is trusted. */
    {"", 0, NULL},
    {TRUSTING("\"10.0.0.0/8\", \"2001:db8::/32\""), 0, NULL},
    {TRUSTING("\"100.64.0.0/10\""), 0, NULL},
    {TRUSTING("\"172.16.0.0/12\", \"192.168.0.0/16\", \"127.0.0.0/8\", \"169.254.0.0/16\""), 0,
     NULL},
    {TRUSTING("\"198.18.0.0/15\", \"fc00::/7\", \"fe80::/10\", \"::1/128\""), 0, NULL},
    {TRUSTING("\"::ffff:127.0.0.0/104\""), 0, NULL}, /* IPv4-mapped: loaded as 127.0.0.0/8 */
    /* Public space up to a /16 of IPv4 and a /32 of IPv6, also once overlaps are merged. */
    {TRUSTING("\"1.2.0.0/16\""), 0, NULL},
    {TRUSTING("\"1.2.0.0/16\", \"1.2.3.0/24\", \"1.2.0.0/16\""), 0, NULL},
    {TRUSTING("\"1.2.0.0/17\", \"1.3.128.0/17\""), 0, NULL},
    {TRUSTING("\"169.254.0.0/15\""), 0, NULL}, /* half link-local: 169.255/16 is public */
    {TRUSTING("\"2a01:4f8::/32\", \"8.8.0.0/16\", \"2001:db8::/32\""), 0, NULL},
    /* IPv4 carried in IPv6, judged as IPv4. */
    {TRUSTING("\"64:ff9b::a00:0/104\""), 0, NULL},   /* NAT64 of 10/8 */
    {TRUSTING("\"64:ff9b::808:808/128\""), 0, NULL}, /* NAT64 of one address */
    {TRUSTING("\"64:ff9b:1::a00:0/104\""), 0, NULL}, /* local NAT64 of 10/8 */
    {TRUSTING("\"2002:a00::/24\""), 0, NULL},        /* 6to4 of 10/8 */
    {TRUSTING("\"2002:808::/32\""), 0, NULL},        /* 6to4 of 8.8/16 */

    /* World-wide or nearly so. */
    {TRUSTING("\"0.0.0.0/0\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 0.0.0.0/0 trusts 3702258432 public IPv4 addresses (more "
     "than a /1), more than a /16: anyone there may relay through this server (an open relay); "
     "narrow it\n"},
    {"relay:\n  trusted_networks:\n    - \"::/0\"\n", 1,
     "t.yaml:3:7: relay.trusted_networks: ::/0 trusts more than a /1 of public IPv6 space, more "
     "than a /32, and 3702258432 public IPv4 addresses (more than a /1) through IPv4-mapped, more "
     "than a /16: "},
    {TRUSTING("\"0.0.0.0/1\", \"128.0.0.0/1\""), 2, "t.yaml:2:22:"},
    /* 2000::/3 holds Teredo and 6to4 too. */
    {TRUSTING("\"2000::/3\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 2000::/3 trusts more than a /4 of public IPv6 space, "
     "more than a /32, and 3702258432 public IPv4 addresses (more than a /1) through 6to4, more "
     "than a /16: "},
    /* A public /8, /12 or /17 is too much; so is a /8 only partly special. */
    {TRUSTING("\"8.0.0.0/8\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 8.0.0.0/8 trusts 16777216 public IPv4 addresses (a /8), "
     "more than a /16: "},
    {TRUSTING("\"100.0.0.0/8\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 100.0.0.0/8 trusts 12582912 public IPv4 addresses (more "
     "than a /9)"},
    {TRUSTING("\"1.2.0.0/15\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 1.2.0.0/15 trusts 131072 public IPv4 addresses (a /15), "
     "more than a /16: "},
    {TRUSTING("\"2a00::/12\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 2a00::/12 trusts a /12 of public IPv6 space, more than "
     "a /32: "},
    {TRUSTING("\"2a01:4f8::/31\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 2a01:4f8::/31 trusts a /31 of public IPv6 space"},
    /* Together too much: refused at the network that takes the total over the bound. */
    {TRUSTING("\"1.2.0.0/16\", \"10.0.0.0/8\", \"1.3.0.0/16\", \"1.4.0.0/16\""), 1,
     "t.yaml:2:50: relay.trusted_networks: with 1.3.0.0/16 the trusted networks cover 196608 "
     "public IPv4 addresses (more than a /15) in all, more than a /16: "},
    {TRUSTING("\"2a01:4f8::/32\", \"2a01:4f9::/32\""), 1,
     "t.yaml:2:39: relay.trusted_networks: with 2a01:4f9::/32 the trusted networks cover a /31 of "
     "public IPv6 space in all, more than a /32: "},
    {TRUSTING("\"2002:808::/32\", \"8.9.0.0/16\""), 1, /* 6to4 and plain IPv4 add up */
     "t.yaml:2:39: relay.trusted_networks: with 8.9.0.0/16 the trusted networks cover 131072 "},
    /* Ranges that carry every IPv4 address, or a public /8 of them. */
    {TRUSTING("\"64:ff9b::/96\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 64:ff9b::/96 trusts 3702258432 public IPv4 addresses "
     "(more than a /1) through NAT64, more than a /16: "},
    {TRUSTING("\"64:ff9b::800:0/104\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 64:ff9b::800:0/104 trusts 16777216 public IPv4 "
     "addresses (a /8) through NAT64"},
    {TRUSTING("\"64:ff9b:1::/48\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 64:ff9b:1::/48 trusts 3702258432 public IPv4 addresses "
     "(more than a /1) through local NAT64"},
    /* A local NAT64 prefix may have any RFC 6052 length: this /56 holds /64 and /96 prefixes that
     * carry every IPv4 address; this /104 carries 8.0.0.0/8 in the /96 layout. */
    {TRUSTING("\"64:ff9b:1:800::/56\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 64:ff9b:1:800::/56 trusts 3702258432 public IPv4"},
    {TRUSTING("\"64:ff9b:1::800:0/104\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 64:ff9b:1::800:0/104 trusts 16777216 public IPv4"},
    {TRUSTING("\"2002::/16\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 2002::/16 trusts 3702258432 public IPv4 addresses (more "
     "than a /1) through 6to4"},
    {TRUSTING("\"2002:800::/24\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 2002:800::/24 trusts 16777216 public IPv4 addresses (a "
     "/8) through 6to4"},
    {TRUSTING("\"2001::/32\""), 1,
     "t.yaml:2:22: relay.trusted_networks: 2001::/32 trusts 3702258432 public IPv4 addresses (more "
     "than a /1) through Teredo"},
    /* A Teredo server's prefix still carries every client. */
    {TRUSTING("\"2001:0:4136:e378::/64\""), 1, "t.yaml:2:22:"},
    {TRUSTING("\"2001::/23\""), 1, "t.yaml:2:22:"},
    {TRUSTING("\"::ffff:0:0/96\""), 1,
     "t.yaml:2:22: relay.trusted_networks: ::ffff:0:0/96 trusts 3702258432 public IPv4 addresses"},
    {TRUSTING("\"::/96\""), 1,
     "t.yaml:2:22: relay.trusted_networks: ::/96 trusts 3702258432 public IPv4 addresses (more "
     "than a /1) through IPv4-compatible"},
    {TRUSTING("\"::/80\""), 1, "t.yaml:2:22:"},
    /* A submission listener reachable from the Internet without AUTH. */
    {"listeners:\n  - {name: sub, address: \"0.0.0.0:587\", role: submission}\n", 1,
     "t.yaml:2:5: listeners: submission listener 'sub' on 0.0.0.0:587"},
    {"listeners:\n  - {name: sub, address: \"[::]:587\", role: submission}\n", 1, "t.yaml:2:5:"},
    {"listeners:\n  - {name: sub, address: \"198.51.100.7:587\", role: submission}\n", 1, NULL},
    /* ... but inbound, loopback, private or with AUTH is fine. */
    {"listeners:\n  - {name: mx, address: \"0.0.0.0:25\", role: inbound}\n", 0, NULL},
    {"listeners:\n  - {name: sub, address: \"[::1]:587\", role: submission}\n", 0, NULL},
    {"listeners:\n  - {name: sub, address: \"127.0.0.1:587\", role: submission}\n", 0, NULL},
    {"listeners:\n  - {name: sub, address: \"192.168.1.5:587\", role: submission}\n", 0, NULL},
    {"listeners:\n  - {name: sub, address: \"0.0.0.0:587\", role: submission}\nrelay:\n  users: "
     "/etc/sluice/users\n",
     0, NULL},
};

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* The loader every command uses refuses each problem with its position; the acknowledgement key
 * lets the same file load. */
static void test_load_gate(void)
{
    static const char *const open_relays[] = {
        "relay:\n  trusted_networks: [\"0.0.0.0/0\"]\n",
        "relay:\n  trusted_networks: [\"::/0\"]\n",
        "relay:\n  trusted_networks: [\"8.0.0.0/8\"]\n",
        "relay:\n  trusted_networks: [\"64:ff9b::/96\"]\n",
        "relay:\n  trusted_networks: [\"1.2.0.0/16\", \"1.3.0.0/16\"]\n",
        "listeners:\n  - {name: sub, address: \"0.0.0.0:587\", role: submission}\nrelay:\n",
    };
    static const char *const where[] = {
        "lint_gate.yaml:2:22: ", "lint_gate.yaml:2:22: ", "lint_gate.yaml:2:22: ",
        "lint_gate.yaml:2:22: ", "lint_gate.yaml:2:36: ", "lint_gate.yaml:2:5: "};
    const char *path = "lint_gate.yaml";
    for (size_t i = 0; i < sizeof open_relays / sizeof open_relays[0]; i++) {
        struct buf err = BUF_INIT;
        CHECK_INT_EQ(write_file(path, open_relays[i]), 0);
        struct config *cfg = config_load_for_command(path, &err);
        CHECK(cfg == NULL);
        config_unref(cfg);
        buf_append(&err, "", 1);
        CHECK(strncmp(err.data, where[i], strlen(where[i])) == 0);
        CHECK(strstr(err.data, "refusing a configuration that relays for strangers") != NULL);
        if (cfg != NULL || strncmp(err.data, where[i], strlen(where[i])) != 0)
            fprintf(stderr, "gate case %zu: %s\n", i, err.data);

        /* Every case ends inside the relay section, so the key can simply be appended. */
        char acknowledged[256];
        snprintf(acknowledged, sizeof acknowledged,
                 "%s  i_understand_this_is_an_open_relay: true\n", open_relays[i]);
        CHECK_INT_EQ(write_file(path, acknowledged), 0);
        buf_reset(&err);
        cfg = config_load_for_command(path, &err);
        CHECK(cfg != NULL);
        if (cfg == NULL)
            fprintf(stderr, "acknowledged case %zu: %.*s\n", i, (int)err.len, err.data);
        config_unref(cfg);
        buf_free(&err);
    }

    /* 1.0.0.0/7 is not even a network (host bits set): refused before the lint, also in place. */
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(write_file(path, "relay:\n  trusted_networks: [\"1.0.0.0/7\"]\n"), 0);
    struct config *cfg = config_load_for_command(path, &err);
    CHECK(cfg == NULL);
    config_unref(cfg);
    CHECK(err.len > 20 && memcmp(err.data, "lint_gate.yaml:2:22: ", 21) == 0);
    buf_free(&err);
    remove(path);
}

/* Every /8 but 192/8 (the documentation network the old lint sampled): each with public space is
 * refused on its own line; 10/8 and 127/8 are not. */
static void test_every_slash8_but_one(void)
{
    struct buf yaml = BUF_INIT, err = BUF_INIT, problems = BUF_INIT;
    buf_append_str(&yaml, "relay:\n  trusted_networks:\n");
    for (int first = 1; first < 224; first++)
        if (first != 192)
            buf_printf(&yaml, "    - \"%d.0.0.0/8\"\n", first);
    struct config *cfg = NULL;
    CHECK_INT_EQ(config_load_string(yaml.data, yaml.len, "t.yaml", &cfg, &err), 0);
    if (cfg == NULL)
        goto out;
    CHECK_INT_EQ(policy_relay_lint(cfg, &problems), 222 - 2);
    buf_append(&problems, "", 1);
    CHECK(strstr(problems.data, "t.yaml:10:7: relay.trusted_networks: 8.0.0.0/8 trusts ") != NULL);
    CHECK(strstr(problems.data, " 10.0.0.0/8 ") == NULL);
    CHECK(strstr(problems.data, " 127.0.0.0/8 ") == NULL);
    CHECK(strstr(problems.data, " in all, ") == NULL); /* no total on top of the networks */
out:
    config_unref(cfg);
    buf_free(&yaml);
    buf_free(&err);
    buf_free(&problems);
}

int main(void)
{
    test_load_gate();
    test_every_slash8_but_one();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct lint_case *c = &cases[i];
        struct config *cfg = NULL;
        struct buf err = BUF_INIT, problems = BUF_INIT;
        int rc = config_load_string(c->yaml, strlen(c->yaml), "t.yaml", &cfg, &err);
        CHECK_INT_EQ(rc, 0);
        if (rc < 0) {
            fprintf(stderr, "case %zu: %.*s\n", i, (int)err.len, err.data);
            buf_free(&err);
            continue;
        }
        int n = policy_relay_lint(cfg, &problems);
        if (n != c->want_problems)
            fprintf(stderr, "case %zu: %.*s\n", i, (int)problems.len, problems.data);
        CHECK_INT_EQ(n, c->want_problems);
        if (c->want_prefix != NULL) {
            size_t len = strlen(c->want_prefix);
            CHECK(problems.len >= len);
            if (problems.len >= len)
                CHECK_MEM_EQ(problems.data, len, c->want_prefix);
        }
        config_unref(cfg);
        buf_free(&err);
        buf_free(&problems);
    }
    return check_report("test_relay_lint");
}
