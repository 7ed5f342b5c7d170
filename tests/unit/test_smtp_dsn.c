/*
 * The DSN parameters (RFC 3461): NOTIFY's word lists (NEVER alone, no repeats, any case), RET,
 * xtext decoding (§4: "+XX" upper-case hex, no '=' or controls) and encoding, and the ENVID and
 * ORCPT limits and shapes; every encoded value decodes back to the text it came from.
 */
#include <errno.h>
#include <string.h>

#include "lib/smtp_dsn.h"
#include "tests/unit/check.h"

static struct smtp_slice sl(const char *s)
{
    return (struct smtp_slice){s, strlen(s)};
}

static void test_notify(void)
{
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"NEVER", SMTP_DSN_NOTIFY_NEVER},
        {"never", SMTP_DSN_NOTIFY_NEVER},
        {"SUCCESS", SMTP_DSN_NOTIFY_SUCCESS},
        {"FAILURE,DELAY", SMTP_DSN_NOTIFY_FAILURE | SMTP_DSN_NOTIFY_DELAY},
        {"delay,Success,FAILURE",
         SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_FAILURE | SMTP_DSN_NOTIFY_DELAY},
        {"", -EINVAL},
        {"NEVER,SUCCESS", -EINVAL},
        {"FAILURE,NEVER", -EINVAL},
        {"FAILURE,FAILURE", -EINVAL},
        {"FAILURE,", -EINVAL},
        {",FAILURE", -EINVAL},
        {"FAILURE DELAY", -EINVAL},
        {"SOMETIMES", -EINVAL},
        {"FAIL", -EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_INT_EQ(smtp_dsn_notify_parse(sl(cases[i].in)), cases[i].want);
    struct buf out = BUF_INIT;
    smtp_dsn_notify_format(SMTP_DSN_NOTIFY_DELAY | SMTP_DSN_NOTIFY_SUCCESS, &out);
    CHECK_MEM_EQ(out.data, out.len, "SUCCESS,DELAY");
    buf_reset(&out);
    smtp_dsn_notify_format(SMTP_DSN_NOTIFY_NEVER, &out);
    CHECK_MEM_EQ(out.data, out.len, "NEVER");
    buf_free(&out);
}

static void test_ret(void)
{
    CHECK_INT_EQ(smtp_dsn_ret_parse(sl("FULL")), SMTP_DSN_RET_FULL);
    CHECK_INT_EQ(smtp_dsn_ret_parse(sl("hdrs")), SMTP_DSN_RET_HDRS);
    CHECK_INT_EQ(smtp_dsn_ret_parse(sl("")), -EINVAL);
    CHECK_INT_EQ(smtp_dsn_ret_parse(sl("HEADERS")), -EINVAL);
    CHECK_INT_EQ(smtp_dsn_ret_parse(sl("FUL")), -EINVAL);
}

static void test_xtext(void)
{
    static const struct {
        const char *in, *want; /* want NULL: -EINVAL */
    } cases[] = {
        {"abc", "abc"},
        {"a+2Bb", "a+b"},
        {"a+3Db", "a=b"},
        {"+20x+7E", " x~"},
        {"", ""},
        {"a=b", NULL},  /* '=' must be encoded */
        {"a+2b", NULL}, /* lower-case hex */
        {"a+2", NULL},  /* cut short */
        {"a+", NULL},
        {"a+0D+0A", NULL}, /* CR LF: never decoded into a field */
        {"a+C3+A9", NULL}, /* 8-bit */
        {"a b", NULL},
        {"a\x01"
         "b",
         NULL},
        {"a\xc3\xa9", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf out = BUF_INIT;
        buf_append_str(&out, "keep");
        int rc = smtp_xtext_decode(sl(cases[i].in), &out);
        if (cases[i].want == NULL) {
            CHECK_INT_EQ(rc, -EINVAL);
            CHECK_MEM_EQ(out.data, out.len, "keep");
        } else {
            CHECK_INT_EQ(rc, 0);
            CHECK_MEM_EQ(out.data + 4, out.len - 4, cases[i].want);
            CHECK_INT_EQ(out.data[out.len], '\0');
        }
        buf_free(&out);
    }
    /* Every printable text survives a round trip, and its encoding is plain xtext. */
    char all[96];
    for (int c = ' '; c <= '~'; c++)
        all[c - ' '] = (char)c;
    all[sizeof all - 1] = '\0';
    struct buf enc = BUF_INIT, dec = BUF_INIT;
    smtp_xtext_encode(all, sizeof all - 1, &enc);
    CHECK(memchr(enc.data, '=', enc.len) == NULL && memchr(enc.data, ' ', enc.len) == NULL);
    CHECK_INT_EQ(smtp_xtext_decode((struct smtp_slice){enc.data, enc.len}, &dec), 0);
    CHECK_MEM_EQ(dec.data, dec.len, all);
    buf_free(&enc);
    buf_free(&dec);
}

static void test_envid_orcpt(void)
{
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(smtp_dsn_envid_parse(sl("QQ314159+2Bx"), &out), 0);
    CHECK_MEM_EQ(out.data, out.len, "QQ314159+x");
    char longest[SMTP_DSN_ENVID_MAX + 2];
    memset(longest, 'e', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    CHECK_INT_EQ(smtp_dsn_envid_parse(sl(longest), &out), -EINVAL);
    longest[SMTP_DSN_ENVID_MAX] = '\0';
    buf_reset(&out);
    CHECK_INT_EQ(smtp_dsn_envid_parse(sl(longest), &out), 0);
    CHECK_INT_EQ(smtp_dsn_envid_parse(sl(""), &out), -EINVAL);

    buf_reset(&out);
    CHECK_INT_EQ(smtp_dsn_orcpt_parse(sl("rfc822;Bob+2Bx@example.com"), &out), 0);
    CHECK_MEM_EQ(out.data, out.len, "rfc822;Bob+x@example.com");
    static const char *const bad[] = {"rfc822",       ";bob@example.com", "rfc822;",  "rfc 822;bob",
                                      "rfc822;bob=x", "rfc822;a+0Ab",     "rf\"c;bob"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&out);
        CHECK_INT_EQ(smtp_dsn_orcpt_parse(sl(bad[i]), &out), -EINVAL);
        CHECK_INT_EQ(out.len, 0);
    }
    char orcpt[SMTP_DSN_ORCPT_MAX + 2] = "rfc822;";
    memset(orcpt + 7, 'a', sizeof orcpt - 8);
    orcpt[sizeof orcpt - 1] = '\0';
    CHECK_INT_EQ(smtp_dsn_orcpt_parse(sl(orcpt), &out), -EINVAL);
    buf_free(&out);
}

int main(void)
{
    test_notify();
    test_ret();
    test_xtext();
    test_envid_orcpt();
    return check_report("test_smtp_dsn");
}
