/* MTA-STS parsing (RFC 8461): TXT records, policy files good and bad, and MX pattern matching. */
#include <string.h>

#include "mta/delivery/mta_sts_policy.h"
#include "tests/unit/check.h"

static void test_records(void)
{
    static const struct {
        const char *txt;
        int rc;
        const char *id; /* when rc == 1 */
    } cases[] = {
        {"v=STSv1; id=20261204T1600", 1, "20261204T1600"},
        {"v=STSv1;id=abc123", 1, "abc123"},
        {"v=STSv1; id=abc ; ext=foo", 1, "abc"},
        {"v=STSv1; other=1; id=Z9", 1, "Z9"},
        {"v=STSv1 ; id=x;", 1, "x"},
        {"v=spf1 -all", 0, NULL},
        {"v=STSv10; id=1", 0, NULL},
        {"id=1; v=STSv1", 0, NULL},
        {"", 0, NULL},
        {"v=STSv1", -1, NULL},
        {"v=STSv1; id=", -1, NULL},
        {"v=STSv1; id=a-b", -1, NULL},
        {"v=STSv1; id=123456789012345678901234567890123", -1, NULL},
        {"v=STSv1; id=1; id=2", -1, NULL},
        {"v=STSv1; id", -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[MTA_STS_ID_MAX + 1] = "";
        struct buf err = BUF_INIT;
        int rc = mta_sts_record_parse(cases[i].txt, strlen(cases[i].txt), id, &err);
        CHECK_INT_EQ(rc, cases[i].rc);
        if (rc != cases[i].rc)
            fprintf(stderr, "record %zu: %s\n", i, cases[i].txt);
        if (cases[i].rc == 1 && rc == 1)
            CHECK_STR_EQ(id, cases[i].id);
        CHECK_INT_EQ(rc == -1, err.len > 0);
        buf_free(&err);
    }
}

static void test_good_policies(void)
{
    struct mta_sts_policy p;
    struct buf err = BUF_INIT;
    const char *t = "version: STSv1\r\nmode: enforce\r\nmx: Mail.Example.COM.\r\n"
                    "mx: *.backup.example.net\r\nmax_age: 604800\r\nfuture_key: whatever\r\n";
    CHECK_INT_EQ(mta_sts_policy_parse(t, strlen(t), &p, &err), 0);
    CHECK_INT_EQ(p.mode, MTA_STS_MODE_ENFORCE);
    CHECK_INT_EQ(p.max_age, 604800);
    CHECK_INT_EQ(p.nmx, 2);
    if (p.nmx == 2) {
        CHECK_STR_EQ(p.mx[0], "mail.example.com");
        CHECK_STR_EQ(p.mx[1], "*.backup.example.net");
    }
    CHECK_INT_EQ(mta_sts_mx_match(&p, "mail.example.com"), 1);
    CHECK_INT_EQ(mta_sts_mx_match(&p, "MAIL.example.com."), 1);
    CHECK_INT_EQ(mta_sts_mx_match(&p, "mx1.backup.example.net"), 1);
    CHECK_INT_EQ(mta_sts_mx_match(&p, "a.mx1.backup.example.net"), 0); /* one label only */
    CHECK_INT_EQ(mta_sts_mx_match(&p, "backup.example.net"), 0);
    CHECK_INT_EQ(mta_sts_mx_match(&p, ".backup.example.net"), 0);
    CHECK_INT_EQ(mta_sts_mx_match(&p, "mail.example.com.evil.test"), 0);
    CHECK_INT_EQ(mta_sts_mx_match(&p, "xmail.example.com"), 0);
    CHECK_STR_EQ(mta_sts_mode_name(p.mode), "enforce");
    mta_sts_policy_free(&p);

    /* LF only, blanks around values, no trailing newline; max_age above a year is capped. */
    t = "version:STSv1\nmode:  testing \nmx:\tmx.example.org\nmax_age: 9999999999";
    CHECK_INT_EQ(mta_sts_policy_parse(t, strlen(t), &p, &err), 0);
    CHECK_INT_EQ(p.mode, MTA_STS_MODE_TESTING);
    CHECK_INT_EQ(p.max_age, MTA_STS_MAX_AGE);
    CHECK_INT_EQ(p.nmx, 1);
    mta_sts_policy_free(&p);

    /* mode none needs no mx. */
    t = "version: STSv1\nmode: none\nmax_age: 86400\n";
    CHECK_INT_EQ(mta_sts_policy_parse(t, strlen(t), &p, &err), 0);
    CHECK_INT_EQ(p.mode, MTA_STS_MODE_NONE);
    CHECK_INT_EQ(mta_sts_mx_match(&p, "mx.example.org"), 0);
    mta_sts_policy_free(&p);
    CHECK_INT_EQ(err.len, 0);
    buf_free(&err);
}

static void test_bad_policies(void)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"mode: enforce\nmx: a.example\nmax_age: 1\n", "no version"},
        {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "version is not STSv1"},
        {"version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode"},
        {"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", "mode is not"},
        {"version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age"},
        {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", "max_age is not"},
        {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n", "max_age is not"},
        {"version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"},
        {"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n", "mx is not"},
        {"version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n", "mx is not"},
        {"version: STSv1\nmode: enforce\nmx: a.example/x\nmax_age: 1\n", "mx is not"},
        {"version: STSv1\nmode: enforce\nmx: \nmax_age: 1\n", "mx is not"},
        {"<html>not a policy</html>\n", "not a \"key: value\" line"},
        {"version STSv1\n", "not a \"key: value\" line"},
        {"version: STSv1\nmode: enforce\x01\n", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mta_sts_policy p;
        struct buf err = BUF_INIT;
        CHECK_INT_EQ(mta_sts_policy_parse(cases[i].text, strlen(cases[i].text), &p, &err), -1);
        buf_append(&err, "", 1);
        CHECK(strstr(err.data, cases[i].why) != NULL);
        if (strstr(err.data, cases[i].why) == NULL)
            fprintf(stderr, "policy %zu: got \"%s\", want \"%s\"\n", i, err.data, cases[i].why);
        CHECK(p.mx == NULL && p.nmx == 0);
        buf_free(&err);
    }
}

/* The caps: 64 patterns, 64 KB. */
static void test_caps(void)
{
    struct buf t = BUF_INIT, err = BUF_INIT;
    struct mta_sts_policy p;
    buf_printf(&t, "version: STSv1\nmode: enforce\nmax_age: 60\n");
    for (int i = 0; i < MTA_STS_MX_MAX; i++)
        buf_printf(&t, "mx: mx%d.example\n", i);
    CHECK_INT_EQ(mta_sts_policy_parse(t.data, t.len, &p, &err), 0);
    CHECK_INT_EQ(p.nmx, MTA_STS_MX_MAX);
    mta_sts_policy_free(&p);
    buf_printf(&t, "mx: one-more.example\n");
    CHECK_INT_EQ(mta_sts_policy_parse(t.data, t.len, &p, &err), -1);
    buf_reset(&err);
    while (t.len <= MTA_STS_POLICY_MAX)
        buf_printf(&t, "comment: padding padding padding padding\n");
    CHECK_INT_EQ(mta_sts_policy_parse(t.data, t.len, &p, &err), -1);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, "bytes (at most 65536)") != NULL);
    buf_free(&t);
    buf_free(&err);
}

int main(void)
{
    test_records();
    test_good_policies();
    test_bad_policies();
    test_caps();
    return check_report("test_mta_sts_policy");
}
