/*
 * Reply rules: a reply matches by code, enhanced code (exact or a prefix up to a dot) and a
 * case-insensitive regular expression, for the destination or MX host the rule names (or any);
 * the first rule that fits wins; a threshold rule fires at its N-th match within its window only;
 * a bad expression fails the load naming file:line:column; and each shipped provider rule
 * matches the provider's real reply from the provider's MX host, and no other provider's.
 */
#include <stdlib.h>
#include <string.h>

#include "mta/delivery/reply_rules.h"
#include "tests/unit/check.h"

static struct config *load(const char *yaml, struct buf *err)
{
    struct config *cfg = NULL;
    if (config_load_string(yaml, strlen(yaml), "rules.yaml", &cfg, err) != 0)
        return NULL;
    return cfg;
}

static const char site_yaml[] = "shaping:\n"
                                "  provider_rules: false\n"
                                "  backoff:\n"
                                "    - { name: slow, connections: 1, rate: 1/s }\n"
                                "  reply_rules:\n"
                                "    - name: by-code\n"
                                "      match: { domain: code.example }\n"
                                "      code: 421\n"
                                "      action: suspend\n"
                                "    - name: by-enhanced-prefix\n"
                                "      match: { mx: \"*.mx.example\" }\n"
                                "      enhanced: \"4.7.\"\n"
                                "      action: backoff\n"
                                "      backoff: slow\n"
                                "    - name: by-text\n"
                                "      text: 'rate (limit|exceeded)'\n"
                                "      code: 450\n"
                                "      action: suspend_destination\n"
                                "    - name: threshold\n"
                                "      match: { domain: three.example }\n"
                                "      text: 'again'\n"
                                "      threshold: 3\n"
                                "      threshold_window: 10s\n"
                                "      action: bounce\n";

static long find(const struct config *cfg, const char *domain, const char *mx, int code,
                 const char *enhanced, const char *text)
{
    return reply_rules_find(cfg, domain, mx, code, enhanced, text);
}

static void test_matching(void)
{
    struct buf err = BUF_INIT;
    struct config *cfg = load(site_yaml, &err);
    CHECK(cfg != NULL);
    if (cfg == NULL) {
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
        buf_free(&err);
        return;
    }
    CHECK_INT_EQ(cfg->shaping.nreply_rules, 4);
    CHECK_STR_EQ(cfg->shaping.reply_rules[1].backoff_set->name, "slow");
    /* Code: only for its domain. */
    CHECK_INT_EQ(find(cfg, "code.example", "mx.other.example", 421, "4.4.2", "bye"), 0);
    CHECK_INT_EQ(find(cfg, "CODE.example.", NULL, 421, "", NULL), 0);
    CHECK_INT_EQ(find(cfg, "other.example", "mx.other.example", 421, "4.4.2", "bye"), -1);
    /* Enhanced prefix: 4.7.x from a host below mx.example, not 4.70 or 5.7.1. */
    CHECK_INT_EQ(find(cfg, "d.example", "a.mx.example", 451, "4.7.28", "slow down"), 1);
    CHECK_INT_EQ(find(cfg, "d.example", "a.mx.example", 451, "4.3.0", "slow down"), -1);
    CHECK_INT_EQ(find(cfg, "d.example", "a.mx.example", 550, "5.7.1", "no"), -1);
    CHECK_INT_EQ(find(cfg, "d.example", "mx.example", 451, "4.7.28", "no"), -1);
    /* Text, any destination, case-insensitive, a search anywhere in the text; code too. */
    CHECK_INT_EQ(find(cfg, "x.example", "mx.x.example", 450, "4.7.0", "RL000010 Rate LIMIT hit"),
                 2);
    CHECK_INT_EQ(find(cfg, "x.example", "mx.x.example", 451, "4.7.0", "rate limit"), -1);
    CHECK_INT_EQ(find(cfg, "x.example", "mx.x.example", 450, "4.7.0", "rate"), -1);
    CHECK_INT_EQ(find(cfg, "x.example", "mx.x.example", 450, "4.7.0", NULL), -1);
    /* First rule that fits wins: the code rule before the text one. */
    CHECK_INT_EQ(find(cfg, "code.example", NULL, 421, "", "rate exceeded"), 0);

    /* Threshold 3 in 10 s: the 3rd match within the window fires, then 3 more are needed. */
    struct reply_rules_state *st = reply_rules_state_new(cfg);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 1000), 0);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 2000), 0);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 3000), 1);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 3100), 0);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 3200), 0);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 3300), 1);
    /* Spread wider than the window: never 3 within 10 s. */
    CHECK_INT_EQ(reply_rules_hit(st, 3, 20000), 0);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 26000), 0);
    CHECK_INT_EQ(reply_rules_hit(st, 3, 32000), 0); /* 20 s .. 32 s: more than 10 s */
    CHECK_INT_EQ(reply_rules_hit(st, 3, 33000), 1); /* 26 s .. 33 s */
    CHECK_INT_EQ(reply_rules_hits(st, 3), 10);
    CHECK_INT_EQ(reply_rules_fired(st, 3), 3);
    /* Without a threshold, every match fires. */
    CHECK_INT_EQ(reply_rules_hit(st, 0, 1), 1);
    CHECK_INT_EQ(reply_rules_fired(st, 0), 1);

    struct buf out = BUF_INIT;
    reply_rules_describe(st, "three.example", &out);
    buf_append(&out, "", 1);
    CHECK(strstr(out.data, "{\"rule\":\"threshold\",\"action\":\"bounce\",\"hits\":10,\"fired\":3,"
                           "\"dry_run\":false,\"shipped\":false}") != NULL);
    CHECK(strstr(out.data, "\"rule\":\"by-code\"") != NULL); /* it has hits */
    CHECK(strstr(out.data, "\"rule\":\"by-text\"") == NULL); /* everywhere, never hit */
    CHECK(strstr(out.data, "\"rule\":\"by-enhanced-prefix\"") == NULL);
    /* A provider's destination, named by its MX pattern, lists the rules for its hosts. */
    buf_reset(&out);
    reply_rules_describe(st, "*.mx.example", &out);
    buf_append(&out, "", 1);
    CHECK(strstr(out.data, "\"rule\":\"by-enhanced-prefix\"") != NULL);
    buf_free(&out);
    reply_rules_state_free(st);
    config_unref(cfg);
    buf_free(&err);
}

struct bad_case {
    const char *yaml;
    const char *message; /* the start of the first error line */
};

static void test_bad_rules(void)
{
    static const struct bad_case cases[] = {
        {"shaping:\n  provider_rules: false\n  reply_rules:\n"
         "    - { name: r, action: suspend, text: 'a(b' }\n",
         "rules.yaml:4:41: shaping.reply_rules[0].text: not a valid regular expression: "},
        {"shaping:\n  provider_rules: false\n  reply_rules:\n"
         "    - name: r\n      action: backoff\n",
         "rules.yaml:4:7: shaping.reply_rules[0].backoff is required with action backoff"},
        {"shaping:\n  provider_rules: false\n  reply_rules:\n"
         "    - { name: r, action: backoff, backoff: nope }\n",
         "rules.yaml:4:44: shaping.reply_rules[0].backoff: 'nope' is not a set of "
         "shaping.backoff"},
        {"shaping:\n  provider_rules: false\n  reply_rules:\n"
         "    - { name: r, action: suspend, enhanced: \"4.7\" }\n",
         "rules.yaml:4:45: shaping.reply_rules[0].enhanced: '4.7' is not an enhanced status"},
        {"shaping:\n  provider_rules: false\n  reply_rules:\n"
         "    - { name: r, action: pause }\n",
         "rules.yaml:4:26: shaping.reply_rules[0].action: 'pause' is not one of: suspend, "},
        {"shaping:\n  provider_rules: false\n  reply_rules:\n    - { action: suspend }\n",
         "rules.yaml:4:7: shaping.reply_rules[0].name is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf err = BUF_INIT;
        struct config *cfg = load(cases[i].yaml, &err);
        CHECK(cfg == NULL);
        buf_append(&err, "", 1);
        int ok = strncmp(err.data, cases[i].message, strlen(cases[i].message)) == 0;
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "case %zu: got: %s\n   want: %s\n", i, err.data, cases[i].message);
        if (cfg != NULL)
            config_unref(cfg);
        buf_free(&err);
    }
}

struct shipped_case {
    const char *mx; /* the provider's MX host that replies */
    int code;
    const char *enhanced;
    const char *text; /* the provider's reply text */
    const char *rule; /* the shipped rule that must fit */
    enum reply_rule_action action;
};

static const struct shipped_case shipped[] = {
    {"mta5.am0.yahoodns.net", 421, "4.7.0",
     "[TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user "
     "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
     "yahoo-tss04", REPLY_RULE_SUSPEND},
    {"mta6.am0.yahoodns.net", 421, "4.7.0",
     "[TSS05] Messages from 192.0.2.10 temporarily deferred due to user complaints - 4.16.56.1; "
     "see https://postmaster.yahooinc.com/error-codes",
     "yahoo-tss05", REPLY_RULE_BACKOFF},
    {"mx-aol.mail.gm0.yahoodns.net", 421, "4.7.0",
     "[IPTS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user "
     "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
     "yahoo-ipts04", REPLY_RULE_SUSPEND},
    {"gmail-smtp-in.l.google.com", 421, "4.7.28",
     "[192.0.2.10] Gmail has detected an unusual rate of unsolicited mail originating from your "
     "IP address. To protect our users from spam, mail sent from your IP address has been "
     "temporarily rate limited. https://support.google.com/mail/?p=UnsolicitedRateLimitError",
     "gmail-4.7.28", REPLY_RULE_BACKOFF},
    {"alt1.gmail-smtp-in.l.google.com", 421, "4.7.0",
     "[192.0.2.10] Our system has detected an unusual rate of unsolicited mail originating from "
     "your IP address. To protect our users from spam, mail sent from your IP address has been "
     "temporarily blocked.",
     "gmail-4.7.0-unusual-rate", REPLY_RULE_BACKOFF},
    {"hotmail-com.olc.protection.outlook.com", 451, "4.7.650",
     "The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation. For "
     "e-mail delivery information, see https://postmaster.live.com",
     "microsoft-4.7.650", REPLY_RULE_BACKOFF},
    {"outlook-com.olc.protection.outlook.com", 451, "4.7.500",
     "Server busy. Please try again later from [192.0.2.10]. (S775) [Name=Protocol Filter "
     "Agent][AGT=PFA][MxId=11BA9B14A7E0B8E8]",
     "microsoft-s775", REPLY_RULE_BACKOFF},
    {"hotmail-com.olc.protection.outlook.com", 550, "5.7.1",
     "Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet "
     "service provider since part of their network is on our block list (S3150). You can also "
     "refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
     "microsoft-s3150", REPLY_RULE_SUSPEND},
    {"example-com.mail.protection.outlook.com", 550, "5.7.515",
     "Access denied, sending domain [SENDER.TEST] does not meet the required authentication "
     "level. The sender's domain in the 5322.From address doesn't meet the authentication "
     "requirements defined for the sender. To learn more, see https://aka.ms/EXOSmtpErrors",
     "microsoft-5.7.515", REPLY_RULE_BOUNCE},
    {"mx1.comcast.net", 421, "",
     "mx1.comcast.net comcast 192.0.2.10 Comcast block for spam. Please see "
     "http://postmaster.comcast.net/smtp-error-codes.php#RL000003",
     "comcast-rl000003", REPLY_RULE_BACKOFF},
    {"mx2.comcast.net", 452, "4.2.2",
     "Too many recipients for this connection, please retry later. RL000010 "
     "http://postmaster.comcast.net/smtp-error-codes.php#RL000010",
     "comcast-rl000010", REPLY_RULE_BACKOFF},
    {"mx01.mail.icloud.com", 421, "4.7.0",
     "Too many messages from this host, please try again later (HCM1)", "apple-hcm1",
     REPLY_RULE_BACKOFF},
    {"smtp-in.orange.fr", 421, "",
     "mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. Too many "
     "connections, slow down. OFR004_104 [104]",
     "orange-too-many", REPLY_RULE_BACKOFF},
    {"mx00.emig.gmx.net", 421, "",
     "gmx.net (mxgmx110) Nemesis ESMTP Service not available; Reject due to policy "
     "restrictions. For explanation visit https://postmaster.gmx.net/en/error-messages",
     "gmx-webde-throttle", REPLY_RULE_BACKOFF},
};

static void test_shipped_rules(void)
{
    struct buf err = BUF_INIT;
    struct config *cfg = load("server: { hostname: a.example }\n", &err);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        const struct shipped_case *c = &shipped[i];
        long index = find(cfg, "customer.example", c->mx, c->code, c->enhanced, c->text);
        CHECK(index >= 0);
        if (index < 0) {
            fprintf(stderr, "no shipped rule fits %s: %d %s\n", c->mx, c->code, c->text);
            continue;
        }
        const struct config_reply_rule *rule = &cfg->shaping.reply_rules[index];
        CHECK_STR_EQ(rule->name, c->rule);
        CHECK_INT_EQ(rule->action, c->action);
        CHECK(rule->shipped);
        CHECK(rule->reason != NULL);
        /* The same reply from another provider's host, or from an unknown one, fits none. */
        CHECK_INT_EQ(
            find(cfg, "customer.example", "mx.unknown.example", c->code, c->enhanced, c->text), -1);
    }
    config_unref(cfg);
    buf_free(&err);

    /* shaping.provider_rules: false leaves them out. */
    cfg = load("shaping: { provider_rules: false }\n", &err);
    CHECK(cfg != NULL);
    if (cfg != NULL) {
        CHECK_INT_EQ(cfg->shaping.nreply_rules, 0);
        config_unref(cfg);
    }
    buf_free(&err);
}

int main(void)
{
    test_matching();
    test_bad_rules();
    test_shipped_rules();
    return check_report("test_reply_rules");
}
