/*
 * The relay decision on a table of (listener role, client, auth, recipient) cases. Addresses go
 * through smtp_addr_parse first, exactly as in a session.
 */
#include <errno.h>
#include <string.h>

#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "policy/relay.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"

static const char *config_text = "listeners:\n"
                                 "  - {name: mx, address: \"127.0.0.1:2525\", role: inbound}\n"
                                 "  - {name: sub, address: \"127.0.0.1:2587\", role: submission}\n"
                                 "relay:\n"
                                 "  trusted_networks: [\"192.0.2.0/24\", \"2001:db8::/32\"]\n"
                                 "domains:\n"
                                 "  example.com:\n"
                                 "  Example.NET.:\n"
                                 "  B\xc3\x9c"
                                 "CHER.example:\n";

/* The same with address literals relayed, and delivery on the port of listener "mx" and of a
 * wildcard IPv6 listener, so literals naming those would loop. */
static const char *literals_text =
    "listeners:\n"
    "  - {name: mx, address: \"127.0.0.1:2525\", role: inbound}\n"
    "  - {name: sub, address: \"127.0.0.1:2587\", role: submission}\n"
    "  - {name: any6, address: \"[::]:2525\", role: inbound}\n"
    "relay:\n"
    "  trusted_networks: [\"192.0.2.0/24\", \"2001:db8::/32\"]\n"
    "  allow_address_literals: true\n"
    "delivery: {port: 2525}\n"
    "domains:\n"
    "  example.com:\n";

struct relay_case {
    const char *listener;
    const char *client;
    const char *auth_user;
    const char *rcpt;
    enum policy_verdict want;
    const char *want_rule;
};

/* The enhanced status of a refusal by each rule. */
static const char *refusal_enhanced(const char *rule)
{
    if (strcmp(rule, "relay.allow_address_literals") == 0)
        return "5.1.2"; /* bad destination system address */
    if (strcmp(rule, "builtin.address_literal_loop") == 0)
        return "5.4.6"; /* routing loop */
    return "5.7.1";
}

static const struct relay_case relay_cases[] = {
    /* Our own domains: accepted from anyone, on any listener. */
    {"mx", "203.0.113.9", NULL, "<user@example.com>", POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL, "<USER@EXAMPLE.COM>", POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL, "<user@example.com.>", POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL, "<user@example.net>", POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL, "<@other.org:user@example.com>", POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL, "<postmaster>", POLICY_ACCEPT, "builtin.postmaster"},
    /* Strangers on the inbound listener: never relayed. */
    {"mx", "203.0.113.9", NULL, "<user@aol.com>", POLICY_REJECT, "listener.inbound"},
    {"mx", "192.0.2.7", NULL, "<user@aol.com>", POLICY_REJECT, "listener.inbound"},
    {"mx", "203.0.113.9", "alice", "<user@aol.com>", POLICY_REJECT, "listener.inbound"},
    {"mx", "203.0.113.9", NULL, "<@example.com:user@aol.com>", POLICY_REJECT, "listener.inbound"},
    {"mx", "203.0.113.9", NULL, "<user@[192.0.2.1]>", POLICY_REJECT, "listener.inbound"},
    {"mx", "203.0.113.9", NULL, "<user@sub.example.com>", POLICY_REJECT, "listener.inbound"},
    /* Routing tricks through our own domain. */
    {"mx", "203.0.113.9", NULL, "<user%aol.com@example.com>", POLICY_REJECT,
     "builtin.routing_characters"},
    {"mx", "203.0.113.9", NULL, "<aol.com!user@example.com>", POLICY_REJECT,
     "builtin.routing_characters"},
    {"mx", "203.0.113.9", NULL, "<\"user@aol.com\"@example.com>", POLICY_REJECT,
     "builtin.routing_characters"},
    {"sub", "192.0.2.7", NULL, "<user%aol.com@example.com>", POLICY_REJECT,
     "builtin.routing_characters"},
    /* Submission: trusted networks and authenticated users relay, others do not. */
    {"sub", "192.0.2.7", NULL, "<user@aol.com>", POLICY_ACCEPT, "relay.trusted_networks"},
    {"sub", "2001:db8::5", NULL, "<user@aol.com>", POLICY_ACCEPT, "relay.trusted_networks"},
    {"sub", "::ffff:192.0.2.7", NULL, "<user@aol.com>", POLICY_ACCEPT, "relay.trusted_networks"},
    {"sub", "203.0.113.9", "alice", "<user@aol.com>", POLICY_ACCEPT, "relay.authenticated"},
    {"sub", "203.0.113.9", NULL, "<user@aol.com>", POLICY_REJECT, "relay.default_deny"},
    {"sub", "192.0.3.1", NULL, "<user@aol.com>", POLICY_REJECT, "relay.default_deny"},
    {"sub", "2001:db9::1", NULL, "<user@aol.com>", POLICY_REJECT, "relay.default_deny"},
    /* Internationalized domains: ours (written as a U-label) in any form, A-labels compared. */
    {"mx", "203.0.113.9", NULL, "<user@xn--bcher-kva.example>", POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL,
     "<user@b\xc3\xbc"
     "cher.example>",
     POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL,
     "<user@BU\xcc\x88"
     "CHER.EXAMPLE.>",
     POLICY_ACCEPT, "domains"},
    {"mx", "203.0.113.9", NULL,
     "<user@\xef\xbd\x85\xef\xbd\x98\xef\xbd\x81\xef\xbd\x8d\xef\xbd\x90\xef\xbd\x8c\xef\xbd\x85"
     "\xef\xbc\x8e\xef\xbd\x83\xef\xbd\x8f\xef\xbd\x8d>",
     POLICY_ACCEPT, "domains"}, /* full-width example.com */
    {"mx", "203.0.113.9", NULL,
     "<user@b\xc3\xbc"
     "cher.example.org>",
     POLICY_REJECT, "listener.inbound"},
    {"sub", "192.0.2.7", NULL, "<user@m\xc3\xbcnchen.example>", POLICY_ACCEPT,
     "relay.trusted_networks"},
    /* Address literals (relay.allow_address_literals false): refused even to those who may relay,
     * with 5.1.2; to others as any relay attempt. */
    {"sub", "192.0.2.7", NULL, "<user@[198.51.100.1]>", POLICY_REJECT,
     "relay.allow_address_literals"},
    {"sub", "203.0.113.9", "alice", "<user@[IPv6:2001:db8::1]>", POLICY_REJECT,
     "relay.allow_address_literals"},
    {"sub", "203.0.113.9", NULL, "<user@[198.51.100.1]>", POLICY_REJECT, "relay.default_deny"},
    {"mx", "192.0.2.7", NULL, "<user@[127.0.0.1]>", POLICY_REJECT, "listener.inbound"},
};

/* With relay.allow_address_literals: relayed to the address, unless that is one of us. */
static const struct relay_case literal_cases[] = {
    {"sub", "192.0.2.7", NULL, "<user@[198.51.100.1]>", POLICY_ACCEPT, "relay.trusted_networks"},
    {"sub", "203.0.113.9", "alice", "<user@[IPv6:2001:db8::1]>", POLICY_ACCEPT,
     "relay.authenticated"},
    {"sub", "192.0.2.7", NULL, "<user@[127.0.0.2]>", POLICY_ACCEPT, "relay.trusted_networks"},
    {"sub", "192.0.2.7", NULL, "<user@[127.0.0.1]>", POLICY_REJECT, "builtin.address_literal_loop"},
    {"sub", "192.0.2.7", NULL, "<user@[IPv6:::1]>", POLICY_REJECT, "builtin.address_literal_loop"},
    {"sub", "192.0.2.7", NULL, "<user@[IPv6:::]>", POLICY_REJECT, "builtin.address_literal_loop"},
    {"sub", "203.0.113.9", NULL, "<user@[198.51.100.1]>", POLICY_REJECT, "relay.default_deny"},
    {"mx", "203.0.113.9", NULL, "<user@[198.51.100.1]>", POLICY_REJECT, "listener.inbound"},
    {"mx", "192.0.2.7", "alice", "<user@[IPv6:2001:db8::1]>", POLICY_REJECT, "listener.inbound"},
    {"sub", "192.0.2.7", NULL, "<user@example.com>", POLICY_ACCEPT, "domains"},
};

static struct config *load(const char *text)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    int rc = config_load_string(text, strlen(text), "relay.yaml", &cfg, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
    buf_free(&err);
    return rc < 0 ? NULL : cfg;
}

static void run_cases(const struct config *cfg, const struct relay_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct relay_case *c = &cases[i];
        const struct config_listener *listener = NULL;
        for (size_t j = 0; j < cfg->nlisteners; j++)
            if (strcmp(cfg->listeners[j].name, c->listener) == 0)
                listener = &cfg->listeners[j];
        CHECK(listener != NULL);
        struct smtp_addr rcpt;
        const char *why;
        int parsed =
            smtp_addr_parse(c->rcpt, strlen(c->rcpt),
                            SMTP_ADDR_ALLOW_POSTMASTER | SMTP_ADDR_ALLOW_UTF8, &rcpt, &why);
        CHECK_INT_EQ(parsed, 0);
        if (listener == NULL || parsed < 0)
            continue;
        struct sockaddr_storage client = client_addr(c->client);
        struct relay_query q = {listener, (struct sockaddr *)&client, c->auth_user, &rcpt};
        struct policy_decision d = policy_relay_check(cfg, &q);
        if (d.verdict != c->want || strcmp(d.rule, c->want_rule) != 0)
            fprintf(stderr, "case %zu: %s from %s on %s\n", i, c->rcpt, c->client, c->listener);
        CHECK_INT_EQ(d.verdict, c->want);
        CHECK_STR_EQ(d.rule, c->want_rule);
        if (d.verdict == POLICY_REJECT) {
            CHECK_INT_EQ(d.code, 550);
            CHECK_STR_EQ(d.enhanced, refusal_enhanced(c->want_rule));
        }
    }
}

/* `domains` written as U-labels are kept as A-labels; one that does not convert is an error at
 * its file:line:column, and two spellings of one domain are one domain listed twice. */
static void test_idn_domains(void)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"domains:\n  b\xe2\x98\x83.example:\n",
         "relay.yaml:2:3: domains: 'b\\xe2\\x98\\x83.example' is not a valid internationalized "
         "domain "
         "name: domain has a character IDNA 2008 disallows"},
        {"domains:\n  example.com:\n  xn--zz.example:\n",
         "relay.yaml:3:3: domains: 'xn--zz.example' is not a valid internationalized domain name: "
         "domain has an invalid A-label (xn--)"},
        {"domains:\n  b\xc3\xbc"
         "cher.example:\n  xn--bcher-kva.example:\n",
         "relay.yaml:3:3: domains: 'xn--bcher-kva.example' is listed twice (also at line 2)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config *cfg = NULL;
        struct buf err = BUF_INIT;
        CHECK_INT_EQ(
            config_load_string(cases[i].text, strlen(cases[i].text), "relay.yaml", &cfg, &err),
            -EINVAL);
        buf_append(&err, "", 1);
        if (strstr(err.data, cases[i].error) == NULL)
            fprintf(stderr, "got: %s\nwant: %s\n", err.data, cases[i].error);
        CHECK(strstr(err.data, cases[i].error) != NULL);
        buf_free(&err);
    }
    struct config *cfg = load(config_text);
    if (cfg != NULL) {
        CHECK(config_domain_find(cfg, "xn--bcher-kva.example") != NULL);
        config_unref(cfg);
    }
}

int main(void)
{
    struct config *cfg = load(config_text);
    if (cfg != NULL) {
        run_cases(cfg, relay_cases, sizeof relay_cases / sizeof relay_cases[0]);
        config_unref(cfg);
    }
    cfg = load(literals_text);
    if (cfg != NULL) {
        run_cases(cfg, literal_cases, sizeof literal_cases / sizeof literal_cases[0]);
        config_unref(cfg);
    }
    test_idn_domains();
    return check_report("test_relay");
}
