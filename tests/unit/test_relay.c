/*
 * The relay decision on a table of (listener role, client, auth, recipient) cases. Addresses go
 * through smtp_addr_parse first, exactly as in a session.
 */
#include <arpa/inet.h>
#include <string.h>

#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "policy/relay.h"
#include "tests/unit/check.h"

static const char *config_text = "listeners:\n"
                                 "  - {name: mx, address: \"127.0.0.1:2525\", role: inbound}\n"
                                 "  - {name: sub, address: \"127.0.0.1:2587\", role: submission}\n"
                                 "relay:\n"
                                 "  trusted_networks: [\"192.0.2.0/24\", \"2001:db8::/32\"]\n"
                                 "domains:\n"
                                 "  example.com:\n"
                                 "  Example.NET.:\n";

struct relay_case {
    const char *listener;
    const char *client;
    const char *auth_user;
    const char *rcpt;
    enum policy_verdict want;
    const char *want_rule;
};

static const struct relay_case cases[] = {
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
};

static void to_sockaddr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
}

int main(void)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    int rc = config_load_string(config_text, strlen(config_text), "relay.yaml", &cfg, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
        return check_report("test_relay");
    }

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct relay_case *c = &cases[i];
        const struct config_listener *listener = NULL;
        for (size_t j = 0; j < cfg->nlisteners; j++)
            if (strcmp(cfg->listeners[j].name, c->listener) == 0)
                listener = &cfg->listeners[j];
        CHECK(listener != NULL);
        struct smtp_addr rcpt;
        const char *why;
        int parsed =
            smtp_addr_parse(c->rcpt, strlen(c->rcpt), SMTP_ADDR_ALLOW_POSTMASTER, &rcpt, &why);
        CHECK_INT_EQ(parsed, 0);
        if (listener == NULL || parsed < 0)
            continue;
        struct sockaddr_storage client;
        to_sockaddr(c->client, &client);
        struct relay_query q = {listener, (struct sockaddr *)&client, c->auth_user, &rcpt};
        struct policy_decision d = policy_relay_check(cfg, &q);
        if (d.verdict != c->want || strcmp(d.rule, c->want_rule) != 0)
            fprintf(stderr, "case %zu: %s from %s on %s\n", i, c->rcpt, c->client, c->listener);
        CHECK_INT_EQ(d.verdict, c->want);
        CHECK_STR_EQ(d.rule, c->want_rule);
        if (d.verdict == POLICY_REJECT) {
            CHECK_INT_EQ(d.code, 550);
            CHECK_STR_EQ(d.enhanced, "5.7.1");
        }
    }
    config_unref(cfg);
    buf_free(&err);
    return check_report("test_relay");
}
