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

static const struct lint_case cases[] = {
    /* The embedded default and common private networks are fine. */
    {"", 0, NULL},
    {"relay:\n  trusted_networks: [\"10.0.0.0/8\", \"2001:db8::/32\"]\n", 0, NULL},
    /* World-wide or nearly so. */
    {"relay:\n  trusted_networks: [\"0.0.0.0/0\"]\n", 1, "t.yaml:2:22: relay.trusted_networks: 0.0.0.0/0"},
    {"relay:\n  trusted_networks:\n    - \"::/0\"\n", 1, "t.yaml:3:7: relay.trusted_networks: ::/0"},
    {"relay:\n  trusted_networks: [\"0.0.0.0/1\", \"128.0.0.0/1\"]\n", 2, "t.yaml:2:22:"},
    {"relay:\n  trusted_networks: [\"2000::/3\"]\n", 1, "t.yaml:2:22:"},
    {"relay:\n  trusted_networks: [\"2.0.0.0/7\"]\n", 1,
     "t.yaml:2:22: relay.trusted_networks: 2.0.0.0/7 trusts more than a /8"},
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
    {"listeners:\n  - {name: sub, address: \"0.0.0.0:587\", role: submission}\n"
     "relay:\n  users: /etc/sluice/users\n",
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
        "relay:\n  trusted_networks: [\"2.0.0.0/7\"]\n",
        "listeners:\n  - {name: sub, address: \"0.0.0.0:587\", role: submission}\nrelay:\n",
    };
    static const char *const where[] = {"lint_gate.yaml:2:22: ", "lint_gate.yaml:2:22: ",
                                        "lint_gate.yaml:2:22: ", "lint_gate.yaml:2:5: "};
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

int main(void)
{
    test_load_gate();
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
