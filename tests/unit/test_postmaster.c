/*
 * The postmaster module: which accepted recipients are redirected to server.postmaster (the bare
 * <postmaster> and postmaster@ our domains or host name, any case; nothing when it is unset), and
 * the double-bounce quota (at most count per period, a new period after the last one ended, no
 * bound for "none"), and why a double bounce is not reported.
 */
#include <string.h>

#include "lib/buf.h"
#include "mta/delivery/postmaster.h"
#include "tests/unit/check.h"

static struct config *load(const char *yaml)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    int rc = config_load_string(yaml, strlen(yaml), "pm.yaml", &cfg, &err);
    if (rc < 0)
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
    CHECK_INT_EQ(rc, 0);
    buf_free(&err);
    return cfg;
}

static void test_redirect(void)
{
    static const struct {
        const char *rcpt, *want; /* want NULL: unchanged */
    } cases[] = {
        {"postmaster", "ops@mail.example.net"},
        {"Postmaster", "ops@mail.example.net"},
        {"postmaster@example.com", "ops@mail.example.net"},
        {"POSTMASTER@Example.COM", "ops@mail.example.net"},
        {"postmaster@mx.example.com", "ops@mail.example.net"}, /* server.hostname */
        {"postmaster@example.org", NULL},                      /* not ours */
        {"postmasters@example.com", NULL},
        {"postmaste@example.com", NULL},
        {"postmaster.x@example.com", NULL},
        {"user@example.com", NULL},
        {"", NULL},
    };
    struct config *cfg =
        load("server: {hostname: mx.example.com, postmaster: ops@mail.example.net}\n"
             "domains: {example.com: {}}\n");
    struct config *unset = load("server: {hostname: mx.example.com}\n"
                                "domains: {example.com: {}}\n");
    if (cfg == NULL || unset == NULL)
        return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *want = cases[i].want != NULL ? cases[i].want : cases[i].rcpt;
        CHECK_STR_EQ(postmaster_redirect(cfg, cases[i].rcpt), want);
        CHECK_STR_EQ(postmaster_redirect(unset, cases[i].rcpt), cases[i].rcpt);
    }
    config_unref(cfg);
    config_unref(unset);
}

static void test_bad_mailbox(void)
{
    static const char *const bad[] = {
        "ops",  "@example.net",     "o ps@example.net", "<ops@example.net>",
        "ops@", "ops@-bad-.example"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct buf yaml = BUF_INIT, err = BUF_INIT;
        buf_printf(&yaml, "server: {postmaster: \"%s\"}\n", bad[i]);
        struct config *cfg = NULL;
        CHECK(config_load_string(yaml.data, yaml.len, "pm.yaml", &cfg, &err) < 0);
        CHECK(err.data != NULL && strstr(err.data, "server.postmaster") != NULL);
        buf_free(&yaml);
        buf_free(&err);
    }
}

static void test_quota(void)
{
    struct config_rate two_per_hour = {2, 3600 * 1000};
    struct postmaster_quota q = {0};
    int64_t t0 = 5000000;
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0), 1);
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0 + 10), 1);
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0 + 20), 0);
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0 + 3600 * 1000 - 1), 0);
    /* The period ends an hour after its first report: a new one starts. */
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0 + 3600 * 1000), 1);
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0 + 3600 * 1000 + 1), 1);
    CHECK_INT_EQ(postmaster_quota_take(&q, two_per_hour, t0 + 3600 * 1000 + 2), 0);
    struct postmaster_quota free_q = {0};
    for (int i = 0; i < 1000; i++)
        CHECK_INT_EQ(postmaster_quota_take(&free_q, (struct config_rate){0, 0}, t0), 1);
}

/* A double bounce is reported unless no mailbox is set, it failed on the way to the mailbox itself,
 * or the rate is used up; only reports count against the rate. */
static void test_report_refusal(void)
{
    struct config *cfg = load("server: {hostname: mx.example.com, postmaster: Ops@example.net, "
                              "postmaster_rate: 1/h}\n");
    struct config *unset = load("server: {hostname: mx.example.com}\n");
    if (cfg == NULL || unset == NULL)
        return;
    CHECK_INT_EQ(postmaster_is_mailbox(cfg, "ops@EXAMPLE.net"), 1);
    CHECK_INT_EQ(postmaster_is_mailbox(cfg, "ops@example.org"), 0);
    CHECK_INT_EQ(postmaster_is_mailbox(unset, "ops@example.net"), 0);
    struct postmaster_quota q = {0};
    const char *why = postmaster_report_refusal(unset, &q, 0, 1000);
    CHECK(why != NULL && strstr(why, "dropped") != NULL);
    why = postmaster_report_refusal(cfg, &q, 1, 1000);
    CHECK(why != NULL && strstr(why, "could not be reached") != NULL);
    CHECK_INT_EQ(q.used, 0);
    CHECK(postmaster_report_refusal(cfg, &q, 0, 1000) == NULL);
    why = postmaster_report_refusal(cfg, &q, 0, 2000);
    CHECK(why != NULL && strstr(why, "server.postmaster_rate") != NULL);
    CHECK(postmaster_report_refusal(cfg, &q, 0, 1000 + 3600 * 1000) == NULL);
    config_unref(cfg);
    config_unref(unset);
}

int main(void)
{
    test_redirect();
    test_report_refusal();
    test_bad_mailbox();
    test_quota();
    return check_report("test_postmaster");
}
