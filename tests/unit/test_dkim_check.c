/* mta/dkim_check: the Authentication-Results text of the verdicts. The values come from the
 * sender's DKIM-Signature, so they must never break out of their property: quoted when they are not
 * MIME tokens, control and 8-bit bytes dropped. (Verification itself is tested end to end against
 * python3-dkim signatures in tests/integration/test_dkim_verify.py.) */
#include <stdio.h>

#include "mta/dkim/dkim_check.h"
#include "check.h"

static void check_format(const struct dkim_check_result *res, const char *want)
{
    struct buf out = BUF_INIT;
    dkim_check_result_format(res, &out);
    buf_append(&out, "", 1);
    CHECK_STR_EQ(out.data, want);
    buf_free(&out);
}

static struct dkim_check_signature sig(enum dkim_check_verdict v, const char *d, const char *s,
                                       const char *b, const char *reason)
{
    struct dkim_check_signature out = {.verdict = v};
    snprintf(out.domain, sizeof(out.domain), "%s", d);
    snprintf(out.selector, sizeof(out.selector), "%s", s);
    snprintf(out.b, sizeof(out.b), "%s", b);
    snprintf(out.reason, sizeof(out.reason), "%s", reason);
    return out;
}

int main(void)
{
    struct dkim_check_result none = {0};
    check_format(&none, "dkim=none");

    struct dkim_check_result two = {.nsigs = 2};
    two.sigs[0] = sig(DKIM_CHECK_PASS, "example.com", "s2026", "AbCdEfGh", "");
    two.sigs[1] = sig(DKIM_CHECK_FAIL, "example.net", "sel.sub", "Ab/d+fG=", "signature mismatch");
    check_format(&two, "dkim=pass header.d=example.com header.s=s2026 header.b=AbCdEfGh;\r\n\t"
                       "dkim=fail reason=\"signature mismatch\" header.d=example.net "
                       "header.s=sel.sub header.b=\"Ab/d+fG=\"");

    struct dkim_check_result hostile = {.nsigs = 1};
    hostile.sigs[0] = sig(DKIM_CHECK_NEUTRAL, "evil.test\r\nX-Injected: yes", "a\"b\\c;d", "",
                          "bad \xc3\xa9 tag");
    check_format(&hostile, "dkim=neutral reason=\"bad  tag\" header.d=\"evil.testX-Injected: yes\" "
                           "header.s=\"a\\\"b\\\\c;d\"");

    struct dkim_check_result empty = {.nsigs = 1};
    empty.sigs[0] = sig(DKIM_CHECK_PERMERROR, "", "", "", "no key for signature");
    check_format(&empty,
                 "dkim=permerror reason=\"no key for signature\" header.d=\"\" header.s=\"\"");

    CHECK_STR_EQ(dkim_check_verdict_name(DKIM_CHECK_TEMPERROR), "temperror");
    CHECK_STR_EQ(dkim_check_verdict_name(DKIM_CHECK_PERMERROR), "permerror");
    return check_report("dkim_check");
}
