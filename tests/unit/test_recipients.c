/*
 * Recipient validation: recipients files written to a temporary directory, loaded through a real
 * config, and RCPT addresses (parsed with smtp_addr_parse as in a session) checked against them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "policy/recipients.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/test_recipients.XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Loads a config whose domains name the given recipients files (NULL: none); returns rc. */
static int load(const char *com_file, const char *net_file, struct config **cfg,
                struct recipients **r, struct buf *err)
{
    struct buf text = {0};
    buf_printf(&text, "listeners:\n  - {name: mx, address: \"127.0.0.1:2525\", role: inbound}\n"
                      "domains:\n");
    buf_printf(&text, "  example.com:\n");
    if (com_file)
        buf_printf(&text, "    recipients: %s/%s\n", dir, com_file);
    buf_printf(&text, "  example.net:\n");
    if (net_file)
        buf_printf(&text, "    recipients: %s/%s\n", dir, net_file);
    buf_printf(&text, "  example.org:\n");
    struct buf cerr = {0};
    int rc = config_load_string(text.data, text.len, "test", cfg, &cerr);
    if (rc < 0)
        fprintf(stderr, "config: %.*s\n", (int)cerr.len, cerr.data);
    CHECK_INT_EQ(rc, 0);
    buf_free(&cerr);
    buf_free(&text);
    return recipients_load(*cfg, r, err);
}

struct rcpt_case {
    const char *rcpt;
    enum policy_verdict want;
    const char *want_rule;
};

static void check_cases(const struct recipients *r, const struct rcpt_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct smtp_addr addr;
        const char *why = NULL;
        int rc = smtp_addr_parse(cases[i].rcpt, strlen(cases[i].rcpt), SMTP_ADDR_ALLOW_UTF8, &addr,
                                 &why);
        CHECK_INT_EQ(rc, 0);
        char text[RECIPIENTS_TEXT_MAX];
        struct policy_decision d = recipients_check(r, &addr, text);
        if (d.verdict != cases[i].want || strcmp(d.rule, cases[i].want_rule) != 0)
            fprintf(stderr, "case %zu: %s -> %s\n", i, cases[i].rcpt, d.rule);
        CHECK_INT_EQ(d.verdict, cases[i].want);
        CHECK_STR_EQ(d.rule, cases[i].want_rule);
    }
}

static void test_lookup(void)
{
    write_file("com", "# example.com users\n"
                      "alice@example.com\n"
                      "\n"
                      "  <Bob@Example.COM.>  \r\n"
                      "carol@EXAMPLE.com\n"
                      "\"john smith\"@example.com\n"
                      "d+e@example.com\n");
    write_file("net", "*@example.net\n"
                      "named@example.net\n");
    struct config *cfg = NULL;
    struct recipients *r = NULL;
    struct buf err = {0};
    CHECK_INT_EQ(load("com", "net", &cfg, &r, &err), 0);
    CHECK_INT_EQ(err.len, 0);
    if (r == NULL)
        return;
    CHECK_INT_EQ(recipients_count(r), 7);

    static const struct rcpt_case cases[] = {
        {"<alice@example.com>", POLICY_ACCEPT, "domains.recipients"},
        {"<ALICE@Example.Com>", POLICY_ACCEPT, "domains.recipients"},
        {"<bob@example.com>", POLICY_ACCEPT, "domains.recipients"},
        {"<Carol@example.com.>", POLICY_ACCEPT, "domains.recipients"},
        {"<\"john smith\"@example.com>", POLICY_ACCEPT, "domains.recipients"},
        {"<\"John Smith\"@example.com>", POLICY_ACCEPT, "domains.recipients"},
        {"<\"alice\"@example.com>", POLICY_ACCEPT, "domains.recipients"}, /* canonical: unquoted */
        /* "+tag" sub-addresses; '-' is not a delimiter. */
        {"<alice+lists@example.com>", POLICY_ACCEPT, "domains.recipients.tag"},
        {"<alice+a+b@example.com>", POLICY_ACCEPT, "domains.recipients.tag"},
        {"<d+e@example.com>", POLICY_ACCEPT, "domains.recipients"},
        {"<d+x@example.com>", POLICY_REJECT, "domains.recipients"},
        {"<alice-lists@example.com>", POLICY_REJECT, "domains.recipients"},
        {"<+alice@example.com>", POLICY_REJECT, "domains.recipients"},
        {"<mallory@example.com>", POLICY_REJECT, "domains.recipients"},
        {"<alic@example.com>", POLICY_REJECT, "domains.recipients"},
        {"<alicee@example.com>", POLICY_REJECT, "domains.recipients"},
        {"<Postmaster@example.com>", POLICY_ACCEPT, "builtin.postmaster"},
        /* Catch-all domain. */
        {"<anyone@example.net>", POLICY_ACCEPT, "domains.recipients.catch_all"},
        {"<named@example.net>", POLICY_ACCEPT, "domains.recipients"},
        /* A domain without a file, and other domains: not this check's business. */
        {"<anyone@example.org>", POLICY_ACCEPT, "domains.recipients.none"},
        {"<alice@example.com.evil>", POLICY_ACCEPT, "domains.recipients.none"},
        {"<alice@sub.example.com>", POLICY_ACCEPT, "domains.recipients.none"},
    };
    check_cases(r, cases, sizeof(cases) / sizeof(cases[0]));

    struct smtp_addr addr;
    const char *why;
    CHECK_INT_EQ(smtp_addr_parse("<Mallory@Example.COM>", 21, 0, &addr, &why), 0);
    char text[RECIPIENTS_TEXT_MAX];
    struct policy_decision d = recipients_check(r, &addr, text);
    CHECK_INT_EQ(d.code, 550);
    CHECK_STR_EQ(d.enhanced, "5.1.1");
    CHECK_STR_EQ(d.text, "<Mallory@example.com>: Recipient address rejected: User unknown");
    CHECK_INT_EQ(d.pos.line, 4); /* the example.com entry */
    recipients_free(r);
    config_unref(cfg);
    buf_free(&err);
}

static void test_errors(void)
{
    write_file("bad", "alice@example.com\n"
                      "not an address\n"
                      "bob@example.org\n"
                      "@relay.example:carol@example.com\n"
                      "dave@\n");
    struct config *cfg = NULL;
    struct recipients *r = NULL;
    struct buf err = {0};
    CHECK(load("bad", NULL, &cfg, &r, &err) < 0);
    CHECK(r == NULL);
    buf_append(&err, "", 1);
    char want[512];
    for (int line = 2; line <= 5; line++) {
        snprintf(want, sizeof(want), "%s/bad:%d: ", dir, line);
        CHECK(strstr(err.data, want) != NULL);
    }
    snprintf(want, sizeof(want), "%s/bad:1:", dir);
    CHECK(strstr(err.data, want) == NULL);
    CHECK(strstr(err.data, "not in the file's domain") != NULL);
    config_unref(cfg);
    buf_reset(&err);

    CHECK(load("missing", NULL, &cfg, &r, &err) < 0);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, "cannot open recipients file of example.com") != NULL);
    config_unref(cfg);
    buf_free(&err);
}

/* A large file: every address is found, the table is a hash, loading takes well under a second. */
static void test_large(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/large", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 100000; i++)
        fprintf(f, "user%d@example.com\n", i);
    fclose(f);
    struct config *cfg = NULL;
    struct recipients *r = NULL;
    struct buf err = {0};
    CHECK_INT_EQ(load("large", NULL, &cfg, &r, &err), 0);
    if (r != NULL) {
        CHECK_INT_EQ(recipients_count(r), 100000);
        static const struct rcpt_case cases[] = {
            {"<user0@example.com>", POLICY_ACCEPT, "domains.recipients"},
            {"<user99999@example.com>", POLICY_ACCEPT, "domains.recipients"},
            {"<user100000@example.com>", POLICY_REJECT, "domains.recipients"},
        };
        check_cases(r, cases, 3);
    }
    recipients_free(r);
    config_unref(cfg);
    buf_free(&err);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    test_lookup();
    test_errors();
    test_large();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(0);
    return check_report("test_recipients");
}
