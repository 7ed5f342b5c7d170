/* lib/header_filter: which Authentication-Results fields go, with the input split everywhere. */
#include <stdlib.h>

#include "lib/header_filter.h"
#include "check.h"

#define ID "mx.example.test"

/* Runs `in` through a filter in pieces of `step` bytes; returns the output (caller frees). */
static char *filter(const char *in, size_t step, unsigned *removed)
{
    struct header_filter *f = header_filter_new(ID);
    struct buf out = BUF_INIT;
    size_t len = strlen(in);
    for (size_t off = 0; off < len; off += step)
        header_filter_feed(f, in + off, len - off < step ? len - off : step, &out);
    header_filter_finish(f, &out);
    *removed = header_filter_removed(f);
    header_filter_free(f);
    buf_append(&out, "", 1);
    return out.data;
}

/* The same result whole and in pieces of every size. */
static void check_filter(const char *in, const char *want, unsigned want_removed)
{
    size_t len = strlen(in);
    for (size_t step = 1; step <= len; step++) {
        unsigned removed;
        char *got = filter(in, step, &removed);
        CHECK_STR_EQ(got, want);
        CHECK_INT_EQ(removed, want_removed);
        free(got);
    }
}

static void test_ours_removed_others_kept(void)
{
    check_filter("Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=a.test\r\n"
                 "Authentication-Results: other.test; dkim=pass\r\n"
                 "Subject: hi\r\n"
                 "\r\n"
                 "Authentication-Results: mx.example.test; in the body stays\r\n",
                 "Authentication-Results: other.test; dkim=pass\r\n"
                 "Subject: hi\r\n"
                 "\r\n"
                 "Authentication-Results: mx.example.test; in the body stays\r\n",
                 1);
}

static void test_forms_of_our_id(void)
{
    /* folded, comments, quoted, case, obsolete space before the colon, no version/space */
    check_filter("From: a@b.test\r\n"
                 "authentication-results:\r\n\t(forged) (nested (comment))\r\n MX.Example.Test;\r\n"
                 "  spf=pass\r\n"
                 "Authentication-Results : \"mx.example.test\" 1; none\r\n"
                 "AUTHENTICATION-RESULTS:mx.example.test;dkim=pass\r\n"
                 "To: c@d.test\r\n\r\nbody\r\n",
                 "From: a@b.test\r\nTo: c@d.test\r\n\r\nbody\r\n", 3);
}

static void test_look_alikes_kept(void)
{
    const char *in = "Authentication-Results: mx.example.test.evil; spf=pass\r\n"
                     "Authentication-Results: x.mx.example.test; spf=pass\r\n"
                     "Authentication-Results-Extra: mx.example.test; spf=pass\r\n"
                     "X-Authentication-Results: mx.example.test; spf=pass\r\n"
                     "Authentication-Results: (mx.example.test) other.test; spf=pass\r\n"
                     "\r\n";
    check_filter(in, in, 0);
}

static void test_line_endings_and_end(void)
{
    /* LF-only lines; a header section without a body or even a final line break */
    check_filter("Subject: x\nAuthentication-Results: mx.example.test; spf=fail\n\nbody\n",
                 "Subject: x\n\nbody\n", 1);
    check_filter("Subject: x\r\nAuthentication-Results: mx.example.test; spf=fail",
                 "Subject: x\r\n", 1);
    check_filter("Subject: x\r\nAuthentication-Res", "Subject: x\r\nAuthentication-Res", 0);
    /* a bare CR at a line start does not end the header section */
    check_filter("A: 1\r\n\rB: 2\r\nAuthentication-Results: mx.example.test;\r\n\r\nbody",
                 "A: 1\r\n\rB: 2\r\n\r\nbody", 1);
    check_filter("\r\nAuthentication-Results: mx.example.test;\r\n",
                 "\r\nAuthentication-Results: mx.example.test;\r\n", 0);
    check_filter("", "", 0);
}

static void test_oversized(void)
{
    /* an Authentication-Results field past the cap goes unread; a long other field stays */
    size_t n = HEADER_FILTER_FIELD_MAX + 100;
    char *in = malloc(2 * n + 200);
    char *want = malloc(2 * n + 200);
    strcpy(in, "Authentication-Results: (");
    memset(in + strlen(in), 'x', n);
    in[25 + n] = '\0';
    strcat(in, ") other.test;\r\nX-Long: ");
    size_t keep_from = strlen(in) - strlen("X-Long: ");
    size_t len = strlen(in);
    memset(in + len, 'y', n);
    in[len + n] = '\0';
    strcat(in, "\r\n\r\nbody");
    strcpy(want, in + keep_from);
    unsigned removed;
    char *got = filter(in, 4096, &removed);
    CHECK_STR_EQ(got, want);
    CHECK_INT_EQ(removed, 1);
    free(got);
    free(in);
    free(want);
}

int main(void)
{
    test_ours_removed_others_kept();
    test_forms_of_our_id();
    test_look_alikes_kept();
    test_line_endings_and_end();
    test_oversized();
    return check_report("test_header_filter");
}
