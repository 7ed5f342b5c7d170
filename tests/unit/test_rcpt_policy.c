/*
 * The RCPT decision over a table of facts: each row is one RCPT argument with what the session
 * knows (listener, client, authentication, SMTPUTF8, recipients so far, the connect-time checks,
 * the verifier), and the stage that must decide, with its reply, rule and log names. The rows that
 * set two failing facts at once pin the order of the stages. Then the suppression list's stage
 * with a store of its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "policy/rcpt_policy.h"
#include "policy/recipients.h"
#include "policy/reverse_dns.h"
#include "policy/suppression.h"
#include "tests/support/test_dirs.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/test_rcpt_policy.XXXXXX";

/* What a row sets beyond the defaults (inbound listener "mx", a stranger, nothing known). */
struct facts_spec {
    const char *listener; /* "mx" (inbound) or "sub" (submission) */
    const char *client;   /* NULL: 203.0.113.9, a stranger */
    const char *auth_user;
    int smtputf8;
    size_t nrcpts;
    int no_resolver;
    int listed; /* the DNSBL answered: listed */
    enum rcpt_rdns rdns;
    enum reverse_dns_status rdns_status; /* when RCPT_RDNS_ANSWERED */
    int no_table;                        /* the recipients tables are not loaded */
    int no_verifier;
};

struct want {
    enum rcpt_outcome outcome;
    enum rcpt_stage stage;
    int code;
    const char *enhanced;
    const char *text;   /* the reply */
    const char *rule;   /* d.rule */
    const char *reason; /* refusals: the log's text */
    const char *check;  /* refusals: the log's rule */
    const char *addr;
    const char *listed_by;
};

struct rcpt_case {
    const char *arg;
    struct facts_spec f;
    struct want w;
};

#define MX .listener = "mx"
#define SUB .listener = "sub"
#define ACCEPTED(stage_, rule_, addr_)                                                             \
    RCPT_ACCEPT, stage_, 250, "2.1.5", "Ok", rule_, NULL, NULL, addr_, NULL
#define CAP_REFUSAL(addr_)                                                                         \
    RCPT_REFUSE, RCPT_STAGE_LIMIT, 452, "4.5.3", "Error: too many recipients",                     \
        "limits.max_recipients_per_message", "too many recipients",                                \
        "limits.max_recipients_per_message", addr_, NULL
#define SYNTAX_REFUSAL(stage_, code_, enhanced_, text_, reason_, addr_)                            \
    RCPT_REFUSE, stage_, code_, enhanced_, text_, "builtin.address_syntax", reason_,               \
        "builtin.address_syntax", addr_, NULL

#define DNSBL_TEXT "Service unavailable; client [203.0.113.9] blocked using bl.example"

static const struct rcpt_case cases[] = {
    /* The command: syntax, parameters, address. */
    {"TO:user@example.org",
     {MX},
     {SYNTAX_REFUSAL(RCPT_STAGE_SYNTAX, 501, "5.5.4", "Syntax: RCPT TO:<address>",
                     "Syntax: RCPT TO:<address>", "")}},
    {"TO:<user@example.org> NOTIFY=NEVER",
     {MX},
     {SYNTAX_REFUSAL(RCPT_STAGE_PARAMETER, 555, "5.5.4", "Error: unsupported parameter NOTIFY",
                     "Error: unsupported parameter NOTIFY", "")}},
    {"TO:<a b@example.org>",
     {MX},
     {SYNTAX_REFUSAL(RCPT_STAGE_ADDRESS, 501, "5.1.3",
                     "Bad recipient address syntax: bad local part", "bad local part", "")}},
    {"TO:<\xc3\xbcser@example.org>",
     {MX},
     {SYNTAX_REFUSAL(RCPT_STAGE_ADDRESS, 501, "5.1.3",
                     "Bad recipient address syntax: UTF-8 not allowed", "UTF-8 not allowed", "")}},
    {"TO:<\xc3\xbcser@example.org>",
     {MX, .smtputf8 = 1},
     {ACCEPTED(RCPT_STAGE_RELAY, "domains", "\xc3\xbcser@example.org")}},
    /* The recipient cap: after the address, before the relay decision; not counted as an error. */
    {"TO:<user@example.org>", {MX, .nrcpts = 2}, {CAP_REFUSAL("user@example.org")}},
    {"TO:<user@foreign.example>", {MX, .nrcpts = 2}, {CAP_REFUSAL("user@foreign.example")}},
    {"TO:<a b@example.org>",
     {MX, .nrcpts = 2},
     {SYNTAX_REFUSAL(RCPT_STAGE_ADDRESS, 501, "5.1.3",
                     "Bad recipient address syntax: bad local part", "bad local part", "")}},
    {"TO:<user@example.org>",
     {MX, .nrcpts = 1},
     {ACCEPTED(RCPT_STAGE_RELAY, "domains", "user@example.org")}},
    /* The relay decision, before every inbound check. */
    {"TO:<user@foreign.example>",
     {MX},
     {RCPT_REFUSE, RCPT_STAGE_RELAY, 550, "5.7.1", "<user@foreign.example>: Relay access denied",
      "listener.inbound", "Relay access denied", "listener.inbound", "user@foreign.example", NULL}},
    {"TO:<user@foreign.example>",
     {MX, .no_resolver = 1, .listed = 1},
     {RCPT_REFUSE, RCPT_STAGE_RELAY, 550, "5.7.1", "<user@foreign.example>: Relay access denied",
      "listener.inbound", "Relay access denied", "listener.inbound", "user@foreign.example", NULL}},
    {"TO:<carol%foreign.example@example.com>",
     {MX, .listed = 1},
     {RCPT_REFUSE, RCPT_STAGE_RELAY, 550, "5.7.1",
      "<carol%foreign.example@example.com>: Relay access denied: routing characters in local part",
      "builtin.routing_characters", "Relay access denied: routing characters in local part",
      "builtin.routing_characters", "carol%foreign.example@example.com", NULL}},
    {"TO:<user@foreign.example>",
     {SUB, .client = "192.0.2.7", .no_resolver = 1, .listed = 1},
     {ACCEPTED(RCPT_STAGE_RELAY, "relay.trusted_networks", "user@foreign.example")}},
    {"TO:<user@foreign.example>",
     {SUB, .auth_user = "alice"},
     {ACCEPTED(RCPT_STAGE_RELAY, "relay.authenticated", "user@foreign.example")}},
    {"TO:<user@foreign.example>",
     {SUB},
     {RCPT_REFUSE, RCPT_STAGE_RELAY, 550, "5.7.1", "<user@foreign.example>: Relay access denied",
      "relay.default_deny", "Relay access denied", "relay.default_deny", "user@foreign.example",
      NULL}},
    /* The connect checks: no resolver, then the DNSBL, then reverse DNS. */
    {"TO:<user@example.org>",
     {MX, .no_resolver = 1, .listed = 1},
     {RCPT_REFUSE, RCPT_STAGE_CONNECT, 451, "4.4.3",
      "Temporary failure: DNS unavailable, try again later", "inbound.dns",
      "Temporary failure: DNS unavailable, try again later", "dns", "user@example.org", NULL}},
    {"TO:<user@example.org>",
     {MX, .listed = 1, .rdns = RCPT_RDNS_ANSWERED, .rdns_status = REVERSE_DNS_NO_PTR},
     {RCPT_REFUSE, RCPT_STAGE_CONNECT, 554, "5.7.1", DNSBL_TEXT, "inbound.dnsbl", DNSBL_TEXT,
      "dnsbl", "user@example.org", NULL}},
    {"TO:<user@example.org>",
     {MX, .rdns = RCPT_RDNS_ANSWERED, .rdns_status = REVERSE_DNS_NO_PTR},
     {RCPT_REFUSE, RCPT_STAGE_CONNECT, 550, "5.7.25",
      "Reverse DNS validation failed: client address has no PTR record", "inbound.reverse_dns",
      "Reverse DNS validation failed: client address has no PTR record", "reverse_dns",
      "user@example.org", NULL}},
    {"TO:<user@example.org>",
     {MX, .rdns = RCPT_RDNS_PENDING},
     {RCPT_REFUSE, RCPT_STAGE_CONNECT, 450, "4.7.25",
      "Reverse DNS validation failed: temporary DNS error, try again later", "inbound.reverse_dns",
      "Reverse DNS validation failed: temporary DNS error, try again later", "reverse_dns",
      "user@example.org", NULL}},
    {"TO:<user@example.org>",
     {MX, .rdns = RCPT_RDNS_ANSWERED, .rdns_status = REVERSE_DNS_NOT_CONFIRMED},
     {ACCEPTED(RCPT_STAGE_RELAY, "domains", "user@example.org")}},
    /* postmaster passes the connect checks, and is never verified. */
    {"TO:<postmaster@example.com>",
     {MX, .no_resolver = 1, .listed = 1, .rdns = RCPT_RDNS_PENDING},
     {RCPT_ACCEPT, RCPT_STAGE_RECIPIENTS, 250, "2.1.5", "Ok", "builtin.postmaster", NULL, NULL,
      "postmaster@example.com", "builtin.postmaster"}},
    {"TO:<Postmaster>",
     {MX, .listed = 1},
     {ACCEPTED(RCPT_STAGE_RELAY, "builtin.postmaster", "postmaster")}},
    /* The recipients file, after the connect checks. */
    {"TO:<carol@example.com>",
     {MX, .listed = 1},
     {RCPT_REFUSE, RCPT_STAGE_CONNECT, 554, "5.7.1", DNSBL_TEXT, "inbound.dnsbl", DNSBL_TEXT,
      "dnsbl", "carol@example.com", NULL}},
    {"TO:<carol@example.com>",
     {MX},
     {RCPT_REFUSE, RCPT_STAGE_RECIPIENTS, 550, "5.1.1",
      "<carol@example.com>: Recipient address rejected: User unknown", "domains.recipients",
      "<carol@example.com>: Recipient address rejected: User unknown", "recipients",
      "carol@example.com", NULL}},
    {"TO:<carol@example.com>",
     {SUB, .client = "192.0.2.7"},
     {ACCEPTED(RCPT_STAGE_RELAY, "domains", "carol@example.com")}},
    /* Verification, last: needed, or refused while the daemon stops. */
    {"TO:<alice@example.com>",
     {MX},
     {RCPT_NEED_VERIFY, RCPT_STAGE_RECIPIENTS, 250, "2.1.5", "Ok", "domains.recipients", NULL, NULL,
      "alice@example.com", "domains.recipients"}},
    {"TO:<carol@example.com>",
     {MX, .no_table = 1},
     {RCPT_NEED_VERIFY, RCPT_STAGE_RELAY, 250, "2.1.5", "Ok", "domains", NULL, NULL,
      "carol@example.com", NULL}},
    {"TO:<alice@example.com>",
     {MX, .no_verifier = 1},
     {RCPT_REFUSE, RCPT_STAGE_VERIFY, 450, "4.1.1",
      "Recipient address rejected: unverified address: server shutting down",
      "domains.verify_recipients",
      "Recipient address rejected: unverified address: server shutting down", "verify",
      "alice@example.com", "domains.recipients"}},
    {"TO:<user@example.org>",
     {MX, .no_verifier = 1},
     {ACCEPTED(RCPT_STAGE_RELAY, "domains", "user@example.org")}},
};

static struct config *load(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/example.com", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return NULL;
    fputs("alice@example.com\n", f);
    fclose(f);
    struct buf text = BUF_INIT, err = BUF_INIT;
    buf_printf(&text,
               "listeners:\n"
               "  - {name: mx, address: \"127.0.0.1:2525\", role: inbound}\n"
               "  - {name: sub, address: \"127.0.0.1:2587\", role: submission}\n"
               "relay:\n"
               "  trusted_networks: [\"192.0.2.0/24\"]\n"
               "  users: %s/users\n"
               "limits: {max_recipients_per_message: 2}\n"
               "inbound:\n"
               "  dnsbl: [{zone: bl.example}]\n"
               "  reverse_dns: require_ptr\n"
               "domains:\n"
               "  example.com:\n"
               "    recipients: %s\n"
               "    deliver_to: \"[192.0.2.25]:25\"\n"
               "    verify_recipients: true\n"
               "  example.org:\n",
               dir, path);
    struct config *cfg = NULL;
    int rc = config_load_string(text.data, text.len, "rcpt.yaml", &cfg, &err);
    if (rc < 0)
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
    CHECK_INT_EQ(rc, 0);
    buf_free(&text);
    buf_free(&err);
    return rc < 0 ? NULL : cfg;
}

static const struct config_listener *listener_named(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    return NULL;
}

static void check_case(const struct config *cfg, const struct recipients *table, size_t i)
{
    const struct rcpt_case *c = &cases[i];
    struct sockaddr_in client = {.sin_family = AF_INET};
    inet_pton(AF_INET, c->f.client ? c->f.client : "203.0.113.9", &client.sin_addr);
    struct policy_decision listed = {POLICY_REJECT,   554,         "5.7.1", DNSBL_TEXT,
                                     "inbound.dnsbl", {NULL, 0, 0}};
    struct reverse_dns_result rdns = {.status = c->f.rdns_status};
    struct rcpt_facts f = {
        .cfg = cfg,
        .listener = listener_named(cfg, c->f.listener),
        .client = (const struct sockaddr *)&client,
        .auth_user = c->f.auth_user,
        .smtputf8 = c->f.smtputf8,
        .nrcpts = c->f.nrcpts,
        .no_resolver = c->f.no_resolver,
        .dnsbl = c->f.listed ? &listed : NULL,
        .rdns = c->f.rdns,
        .rdns_verdict = reverse_dns_verdict(&rdns, cfg->inbound.reverse_dns),
        .recipients = c->f.no_table ? NULL : table,
        .no_verifier = c->f.no_verifier,
    };
    struct rcpt_decision r;
    rcpt_policy_decide(&f, (struct smtp_slice){c->arg, strlen(c->arg)}, &r);
    int failures = check_failures;
    CHECK_INT_EQ(r.outcome, c->w.outcome);
    CHECK_INT_EQ(r.stage, c->w.stage);
    CHECK_INT_EQ(r.d.code, c->w.code);
    CHECK_STR_EQ(r.d.enhanced, c->w.enhanced);
    CHECK_STR_EQ(r.d.text, c->w.text);
    CHECK_STR_EQ(r.d.rule, c->w.rule);
    CHECK_STR_EQ(r.reason, c->w.reason);
    CHECK_STR_EQ(r.check, c->w.check);
    CHECK_STR_EQ(r.addr, c->w.addr);
    CHECK_STR_EQ(r.listed_by, c->w.listed_by);
    CHECK_INT_EQ(r.d.verdict == POLICY_ACCEPT, c->w.outcome != RCPT_REFUSE);
    if (r.outcome == RCPT_NEED_VERIFY)
        CHECK(r.verify_domain != NULL && strcmp(r.verify_domain->name, "example.com") == 0);
    if (check_failures != failures)
        fprintf(stderr, "  in case %zu: RCPT %s\n", i, c->arg);
}

/* The rule's position is where the configuration writes it. */
static void test_positions(const struct config *cfg, const struct recipients *table)
{
    struct sockaddr_in client = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.7", &client.sin_addr);
    struct rcpt_facts f = {.cfg = cfg,
                           .listener = listener_named(cfg, "sub"),
                           .client = (const struct sockaddr *)&client,
                           .recipients = table};
    struct rcpt_decision r;
    const char *arg = "TO:<user@foreign.example>";
    rcpt_policy_decide(&f, (struct smtp_slice){arg, strlen(arg)}, &r);
    CHECK_STR_EQ(r.d.rule, "relay.trusted_networks");
    CHECK_INT_EQ(r.d.pos.line, 5);
    f.listener = listener_named(cfg, "mx");
    rcpt_policy_decide(&f, (struct smtp_slice){arg, strlen(arg)}, &r);
    CHECK_STR_EQ(r.d.rule, "listener.inbound");
    CHECK_INT_EQ(r.d.pos.line, 2);
    arg = "TO:<alice@example.com>";
    f.no_verifier = 1;
    rcpt_policy_decide(&f, (struct smtp_slice){arg, strlen(arg)}, &r);
    CHECK_STR_EQ(r.d.rule, "domains.verify_recipients");
    CHECK_INT_EQ(r.d.pos.line, 12);
}

/* The decision, the suppression list read in place when it asks for it. */
static void decide_suppressed(const struct rcpt_facts *f, const char *arg, struct rcpt_decision *r)
{
    rcpt_policy_decide(f, (struct smtp_slice){arg, strlen(arg)}, r);
    if (r->outcome != RCPT_NEED_SUPPRESSION)
        return;
    struct suppression_entry e;
    rcpt_policy_suppressed(f, suppression_check(f->suppression, f->tenant, r->addr, f->now, &e), &e,
                           r);
}

/* Relayed mail only meets the suppression list, right after the relay decision: refused or
 * dropped (drop_tenants), an expired entry and a disabled list let it through, and inbound mail
 * for our domains and a stranger's relay attempt never reach it. */
static void test_suppressed(void)
{
    char store_dir[64];
    snprintf(store_dir, sizeof store_dir, "%s/suppression", dir);
    struct buf text = BUF_INIT, err = BUF_INIT;
    buf_printf(&text,
               "listeners:\n"
               "  - {name: mx, address: \"127.0.0.1:2525\", role: inbound}\n"
               "  - {name: sub, address: \"127.0.0.1:2587\", role: submission}\n"
               "relay: {trusted_networks: [\"192.0.2.0/24\"]}\n"
               "domains: {example.org: }\n"
               "suppression: {enabled: true, drop_tenants: [bulk], path: %s}\n",
               store_dir);
    struct config *cfg = NULL;
    CHECK_INT_EQ(config_load_string(text.data, text.len, "s.yaml", &cfg, &err), 0);
    struct suppression *st = NULL;
    CHECK_INT_EQ(suppression_open(store_dir, NULL, &st, &err), 0);
    if (cfg == NULL || st == NULL) {
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
        return;
    }
    int64_t day = 1796083200; /* 2026-12-01T00:00:00Z */
    const char *why;
    struct suppression_entry e[3];
    suppression_entry_make(NULL, "gone@foreign.example", SUPPRESSION_COMPLAINT, day, 0, NULL, &e[0],
                           &why);
    suppression_entry_make(NULL, "user@example.org", SUPPRESSION_MANUAL, day, 0, NULL, &e[1], &why);
    suppression_entry_make(NULL, "old@foreign.example", SUPPRESSION_MANUAL, day, day + 60, NULL,
                           &e[2], &why);
    CHECK_INT_EQ(suppression_put(st, e, 3, 1), 0);

    struct sockaddr_in trusted = {.sin_family = AF_INET}, stranger = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.7", &trusted.sin_addr);
    inet_pton(AF_INET, "203.0.113.9", &stranger.sin_addr);
    struct rcpt_facts f = {.cfg = cfg,
                           .listener = listener_named(cfg, "sub"),
                           .client = (const struct sockaddr *)&trusted,
                           .suppression = st,
                           .now = day + 3600};
    struct rcpt_decision r;
#define DECIDE(arg_) decide_suppressed(&f, arg_, &r)
    DECIDE("TO:<Gone@Foreign.Example>");
    CHECK_INT_EQ(r.outcome, RCPT_REFUSE);
    CHECK_INT_EQ(r.stage, RCPT_STAGE_SUPPRESSED);
    CHECK_INT_EQ(r.d.code, 550);
    CHECK_STR_EQ(r.d.enhanced, "5.7.1");
    CHECK_STR_EQ(r.d.text, "recipient suppressed (complaint 2026-12-01)");
    CHECK_STR_EQ(r.check, "suppression");
    CHECK_STR_EQ(r.suppressed_by, "complaint");
    CHECK_STR_EQ(r.suppressed_tenant, "");
    f.tenant = "bulk"; /* suppression.drop_tenants */
    DECIDE("TO:<gone@foreign.example>");
    CHECK_INT_EQ(r.outcome, RCPT_DROP);
    f.tenant = NULL;
    rcpt_policy_decide(&f, (struct smtp_slice){"TO:<x@foreign.example>", 22}, &r);
    CHECK_INT_EQ(r.outcome, RCPT_NEED_SUPPRESSION); /* the list is the caller's to read */
    rcpt_policy_suppressed(&f, -EIO, NULL, &r);
    CHECK_INT_EQ(r.d.code, 451);
    CHECK_STR_EQ(r.d.enhanced, "4.3.0");
    DECIDE("TO:<old@foreign.example>"); /* expired */
    CHECK_INT_EQ(r.outcome, RCPT_ACCEPT);
    f.listener = listener_named(cfg, "mx"); /* inbound: mail for us is not relayed */
    DECIDE("TO:<user@example.org>");
    CHECK_INT_EQ(r.outcome, RCPT_ACCEPT);
    f.listener = listener_named(cfg, "sub");
    f.client = (const struct sockaddr *)&stranger; /* the relay decision refuses first */
    DECIDE("TO:<gone@foreign.example>");
    CHECK_INT_EQ(r.stage, RCPT_STAGE_RELAY);
    f.client = (const struct sockaddr *)&trusted;
    cfg->suppression.enabled = 0;
    DECIDE("TO:<gone@foreign.example>");
    CHECK_INT_EQ(r.outcome, RCPT_ACCEPT);
#undef DECIDE
    suppression_close(st);
    config_unref(cfg);
    buf_free(&text);
    buf_free(&err);
    test_dir_clear(store_dir);
    rmdir(store_dir);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    struct config *cfg = load();
    struct recipients *table = NULL;
    struct buf err = BUF_INIT;
    if (cfg != NULL) {
        CHECK_INT_EQ(recipients_load(cfg, &table, &err), 0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            check_case(cfg, table, i);
        test_positions(cfg, table);
    }
    test_suppressed();
    recipients_free(table);
    config_unref(cfg);
    buf_free(&err);
    char path[256];
    snprintf(path, sizeof path, "%s/example.com", dir);
    unlink(path);
    rmdir(dir);
    return check_report("test_rcpt_policy");
}
