#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/smtp_cmd.h"
#include "tests/unit/check.h"

struct line_case {
    const char *line;
    int rc;
    enum smtp_verb verb;
    const char *verb_text;
    const char *arg;
};

static const struct line_case lines[] = {
    {"EHLO client.example", 0, SMTP_VERB_EHLO, "EHLO", "client.example"},
    {"ehlo client.example", 0, SMTP_VERB_EHLO, "ehlo", "client.example"},
    {"HeLo client.example", 0, SMTP_VERB_HELO, "HeLo", "client.example"},
    {"MAIL FROM:<a@b.example> SIZE=10", 0, SMTP_VERB_MAIL, "MAIL", "FROM:<a@b.example> SIZE=10"},
    {"mail FROM:<a@b.example>  \t ", 0, SMTP_VERB_MAIL, "mail", "FROM:<a@b.example>"},
    {"RCPT   TO:<a@b.example>", 0, SMTP_VERB_RCPT, "RCPT", "TO:<a@b.example>"},
    {"DATA", 0, SMTP_VERB_DATA, "DATA", ""},
    {"BDAT 1000 LAST", 0, SMTP_VERB_BDAT, "BDAT", "1000 LAST"},
    {"RSET", 0, SMTP_VERB_RSET, "RSET", ""},
    {"NOOP", 0, SMTP_VERB_NOOP, "NOOP", ""},
    {"NOOP   ", 0, SMTP_VERB_NOOP, "NOOP", ""},
    {"NOOP \t ", 0, SMTP_VERB_NOOP, "NOOP", ""},
    {"noop anything at all", 0, SMTP_VERB_NOOP, "noop", "anything at all"},
    {"QUIT", 0, SMTP_VERB_QUIT, "QUIT", ""},
    {"VRFY user", 0, SMTP_VERB_VRFY, "VRFY", "user"},
    {"EXPN list", 0, SMTP_VERB_EXPN, "EXPN", "list"},
    {"HELP a\tb", 0, SMTP_VERB_HELP, "HELP", "a\tb"}, /* inner TAB kept */
    {"STARTTLS", 0, SMTP_VERB_STARTTLS, "STARTTLS", ""},
    {"StartTls", 0, SMTP_VERB_STARTTLS, "StartTls", ""},
    {"AUTH PLAIN dGVzdAB0ZXN0AHB3", 0, SMTP_VERB_AUTH, "AUTH", "PLAIN dGVzdAB0ZXN0AHB3"},
    {"RCPT TO:<j\xc3\xb6rg@x.example>", 0, SMTP_VERB_RCPT, "RCPT", "TO:<j\xc3\xb6rg@x.example>"},

    /* Unknown verbs are not errors: the session answers 500. */
    {"XFOO bar", 0, SMTP_VERB_UNKNOWN, "XFOO", "bar"},
    {"MAILX FROM:<a@b>", 0, SMTP_VERB_UNKNOWN, "MAILX", "FROM:<a@b>"},
    {"MAI", 0, SMTP_VERB_UNKNOWN, "MAI", ""},
    {"START", 0, SMTP_VERB_UNKNOWN, "START", ""},
    {"MAIL:FROM:<a@b>", 0, SMTP_VERB_UNKNOWN, "MAIL:FROM:<a@b>", ""},
    {"HELO\tclient", 0, SMTP_VERB_UNKNOWN, "HELO\tclient", ""}, /* only a space ends the verb */
    {"\tNOOP", 0, SMTP_VERB_UNKNOWN, "\tNOOP", ""},
    {"\xc3\xa9HLO x", 0, SMTP_VERB_UNKNOWN, "\xc3\xa9HLO", "x"},

    /* No verb, or control bytes anywhere. */
    {"", -EINVAL, 0, "", ""},
    {" ", -EINVAL, 0, "", ""},
    {" NOOP", -EINVAL, 0, "", ""},
    {"NOOP\r", -EINVAL, 0, "", ""},
    {"NOOP\n", -EINVAL, 0, "", ""},
    {"MAIL FROM:<a\x01@b>", -EINVAL, 0, "", ""},
    {"QUIT\x7f", -EINVAL, 0, "", ""},
    {"\x1b[2J", -EINVAL, 0, "", ""},
    {"HELO x\x0b", -EINVAL, 0, "", ""},
};

static void test_parse(void)
{
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const struct line_case *c = &lines[i];
        struct smtp_cmd cmd;
        int rc = smtp_cmd_parse(c->line, strlen(c->line), &cmd);
        if (rc != c->rc)
            fprintf(stderr, "case \"%s\"\n", c->line);
        CHECK_INT_EQ(rc, c->rc);
        if (rc != 0)
            continue;
        CHECK_INT_EQ(cmd.verb, c->verb);
        CHECK_MEM_EQ(cmd.verb_text.ptr, cmd.verb_text.len, c->verb_text);
        CHECK_MEM_EQ(cmd.arg.ptr, cmd.arg.len, c->arg);
        /* Slices are borrowed from the line. */
        CHECK(cmd.verb_text.ptr == c->line);
        CHECK(cmd.arg.ptr >= c->line && cmd.arg.ptr + cmd.arg.len <= c->line + strlen(c->line));
    }

    /* NUL is refused even inside the given length. */
    struct smtp_cmd cmd;
    CHECK_INT_EQ(smtp_cmd_parse("NO\0OP", 5, &cmd), -EINVAL);
    CHECK_INT_EQ(smtp_cmd_parse("NOOP \0", 6, &cmd), -EINVAL);
    /* Only len octets are read. */
    CHECK_INT_EQ(smtp_cmd_parse("QUITxyz", 4, &cmd), 0);
    CHECK_INT_EQ(cmd.verb, SMTP_VERB_QUIT);
    CHECK_INT_EQ(cmd.arg.len, 0);
}

/* Expected parameters as "KEY" or "KEY=VALUE", at most 4 per case. */
struct path_case {
    const char *arg;
    const char *prefix;
    int rc;
    const char *path;
    const char *params[4];
};

static const struct path_case paths[] = {
    {"FROM:<a@b.example>", "FROM:", 0, "<a@b.example>", {0}},
    {"FROM:<a@b> SIZE=100 BODY=8BITMIME", "FROM:", 0, "<a@b>", {"SIZE=100", "BODY=8BITMIME"}},
    {"from:<a@b.example> size=100", "FROM:", 0, "<a@b.example>", {"size=100"}},
    {"TO: <a@b.example>", "TO:", 0, "<a@b.example>", {0}},
    {"To:   <a@b>  NOTIFY=SUCCESS,DELAY   ORCPT=rfc822;a@b  ",
     "TO:",
     0,
     "<a@b>",
     {"NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;a@b"}},
    {"FROM:<>", "FROM:", 0, "<>", {0}},
    {"FROM:<> SMTPUTF8", "FROM:", 0, "<>", {"SMTPUTF8"}},
    {"FROM:<a@b> SMTPUTF8 BODY=8BITMIME", "FROM:", 0, "<a@b>", {"SMTPUTF8", "BODY=8BITMIME"}},
    {"FROM:<a@b> X-Y-Z=1 9X=a+b/c", "FROM:", 0, "<a@b>", {"X-Y-Z=1", "9X=a+b/c"}},
    {"FROM:<a@b> SIZE=1 SIZE=2", "FROM:", 0, "<a@b>", {"SIZE=1", "SIZE=2"}}, /* session's job */
    {"FROM:<a@b> ENVID=caf\xc3\xa9", "FROM:", 0, "<a@b>", {"ENVID=caf\xc3\xa9"}},
    {"FROM:<a@b> AUTH=<>", "FROM:", 0, "<a@b>", {"AUTH=<>"}},
    {"TO:<@a.example,@b.example:u@c>", "TO:", 0, "<@a.example,@b.example:u@c>", {0}},
    /* Quoted strings: a '>' inside does not end the path. */
    {"FROM:<\"a>b\"@c> SIZE=1", "FROM:", 0, "<\"a>b\"@c>", {"SIZE=1"}},
    {"FROM:<\"a\\\">b\"@c>", "FROM:", 0, "<\"a\\\">b\"@c>", {0}},
    {"FROM:<\"a\\\\\">", "FROM:", 0, "<\"a\\\\\">", {0}}, /* escaped backslash, then the end */
    {"FROM:<\"a b\"@c>", "FROM:", 0, "<\"a b\"@c>", {0}},
    /* The path's contents are smtp_addr's business; only its end is found here. */
    {"TO:<not an address>", "TO:", 0, "<not an address>", {0}},

    {"FROM:a@b.example", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:   ", "FROM:", -EINVAL, NULL, {0}},
    {"FROM", "FROM:", -EINVAL, NULL, {0}},
    {"", "FROM:", -EINVAL, NULL, {0}},
    {"FROM :<a@b>", "FROM:", -EINVAL, NULL, {0}},
    {"FROM<a@b>", "FROM:", -EINVAL, NULL, {0}},
    {"TO:<a@b>", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:\t<a@b>", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<\"a@b> SIZE=1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<\"a\\\">", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b>SIZE=1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b>\tSIZE=1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b>>", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<\"a\\\\\">b@c>", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> SIZE=", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> =1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> -X=1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> S_Z=1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> SIZE=1=2", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> X=a\tb", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> X=a\x01", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> X=a\x7f", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> K\xc3\xa9=1", "FROM:", -EINVAL, NULL, {0}},
    {"FROM:<a@b> SIZE=1 BAD_KEY", "FROM:", -EINVAL, NULL, {0}},
};

static void test_path_args(void)
{
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const struct path_case *c = &paths[i];
        struct smtp_path_args args;
        int rc =
            smtp_cmd_parse_path_args((struct smtp_slice){c->arg, strlen(c->arg)}, c->prefix, &args);
        if (rc != c->rc)
            fprintf(stderr, "case \"%s\"\n", c->arg);
        CHECK_INT_EQ(rc, c->rc);
        if (rc != 0)
            continue;
        CHECK_MEM_EQ(args.path.ptr, args.path.len, c->path);
        size_t want = 0;
        while (want < 4 && c->params[want] != NULL)
            want++;
        CHECK_INT_EQ(args.nparams, want);
        for (size_t p = 0; p < want && p < args.nparams; p++) {
            const char *eq = strchr(c->params[p], '=');
            size_t klen = eq ? (size_t)(eq - c->params[p]) : strlen(c->params[p]);
            CHECK(args.params[p].key.len == klen &&
                  memcmp(args.params[p].key.ptr, c->params[p], klen) == 0);
            if (eq) {
                CHECK_MEM_EQ(args.params[p].value.ptr, args.params[p].value.len, eq + 1);
            } else {
                CHECK(args.params[p].value.ptr == NULL);
                CHECK_INT_EQ(args.params[p].value.len, 0);
            }
        }
    }
}

/* SMTP_PARAMS_MAX parameters are fine, one more is -E2BIG. */
static void test_param_limit(void)
{
    char arg[512] = "FROM:<a@b>";
    for (int i = 0; i < SMTP_PARAMS_MAX; i++)
        snprintf(arg + strlen(arg), sizeof arg - strlen(arg), " P%d=%d", i, i);
    struct smtp_path_args args;
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "FROM:", &args),
                 0);
    CHECK_INT_EQ(args.nparams, SMTP_PARAMS_MAX);
    CHECK_MEM_EQ(args.params[SMTP_PARAMS_MAX - 1].key.ptr, args.params[SMTP_PARAMS_MAX - 1].key.len,
                 "P15");
    strcat(arg, " EXTRA");
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "FROM:", &args),
                 -E2BIG);
    /* Trailing spaces are not a parameter. */
    arg[strlen(arg) - 6] = '\0';
    strcat(arg, "    ");
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "FROM:", &args),
                 0);
}

static void test_param_find(void)
{
    const char *arg = "FROM:<a@b> SIZE=100 smtputf8 BODY=8BITMIME";
    struct smtp_path_args args;
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "FROM:", &args),
                 0);
    const struct smtp_param *p = smtp_param_find(&args, "size");
    CHECK(p != NULL && p == &args.params[0]);
    p = smtp_param_find(&args, "SMTPUTF8");
    CHECK(p != NULL && p->value.ptr == NULL);
    p = smtp_param_find(&args, "Body");
    CHECK(p != NULL && p->value.len == 8);
    CHECK(smtp_param_find(&args, "SIZ") == NULL);
    CHECK(smtp_param_find(&args, "SIZE=") == NULL);
    CHECK(smtp_param_find(&args, "RET") == NULL);
    CHECK(smtp_param_find(&args, "") == NULL);
}

/* The two parsers chained, as the session uses them. */
static void test_chain(void)
{
    const char *line = "MAIL FROM:<\"x y\"@b.example> BODY=8BITMIME  ";
    struct smtp_cmd cmd;
    struct smtp_path_args args;
    CHECK_INT_EQ(smtp_cmd_parse(line, strlen(line), &cmd), 0);
    CHECK_INT_EQ(cmd.verb, SMTP_VERB_MAIL);
    CHECK_INT_EQ(smtp_cmd_parse_path_args(cmd.arg, "FROM:", &args), 0);
    CHECK_MEM_EQ(args.path.ptr, args.path.len, "<\"x y\"@b.example>");
    CHECK_INT_EQ(args.nparams, 1);
}

static void test_bdat(void)
{
    static const struct {
        const char *arg;
        int rc;
        uint64_t size;
        int last;
    } cases[] = {
        {"0", 0, 0, 0},
        {"0 LAST", 0, 0, 1},
        {"1000 last", 0, 1000, 1},
        {"7  LaSt", 0, 7, 1},
        {"18446744073709551615", 0, UINT64_MAX, 0},
        {"18446744073709551616", -EINVAL, 0, 0}, /* past 2^64 - 1 */
        {"99999999999999999999999", -EINVAL, 0, 0},
        {"", -EINVAL, 0, 0},
        {"LAST", -EINVAL, 0, 0},
        {"-1", -EINVAL, 0, 0},
        {"+1", -EINVAL, 0, 0},
        {"1x", -EINVAL, 0, 0},
        {"10LAST", -EINVAL, 0, 0},
        {"10 LASTS", -EINVAL, 0, 0},
        {"10 LAST x", -EINVAL, 0, 0},
        {"10 NOTLAST", -EINVAL, 0, 0},
        {"10\tLAST", -EINVAL, 0, 0},
        {"0x10", -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t size = 12345;
        int last = -1;
        struct smtp_slice arg = {cases[i].arg, strlen(cases[i].arg)};
        int rc = smtp_cmd_parse_bdat(arg, &size, &last);
        CHECK_INT_EQ(rc, cases[i].rc);
        if (rc != cases[i].rc)
            fprintf(stderr, "  BDAT \"%s\"\n", cases[i].arg);
        if (rc == 0) {
            CHECK(size == cases[i].size);
            CHECK_INT_EQ(last, cases[i].last);
        }
    }
}

int main(void)
{
    test_parse();
    test_path_args();
    test_param_limit();
    test_param_find();
    test_chain();
    test_bdat();
    return check_report("test_smtp_cmd");
}
