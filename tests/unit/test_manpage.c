#include "lib/manpage.h"

#include "check.h"

static void roff(const char *in, const char *want)
{
    struct buf out = BUF_INIT;
    manpage_roff_str(&out, in);
    buf_append(&out, "", 1);
    CHECK_STR_EQ(out.data, want);
    buf_free(&out);
}

static void wrap(const char *in, int indent, int width, const char *want)
{
    struct buf out = BUF_INIT;
    manpage_wrap(&out, in, indent, width);
    buf_append(&out, "", 1);
    CHECK_STR_EQ(out.data, want);
    buf_free(&out);
}

/* What roff would read as a request, an escape or a hyphen comes out literal. */
static void test_roff(void)
{
    roff("plain words", "plain words");
    roff("-c FILE --config", "\\-c FILE \\-\\-config");
    roff("a\\b", "a\\eb");
    roff(".TH not a request", "\\&.TH not a request");
    roff("'quoted", "\\&'quoted");
    roff("line\n.next\n'third", "line\n\\&.next\n\\&'third");
    roff("not.at.start 'inside'", "not.at.start 'inside'");
}

static void test_wrap(void)
{
    wrap("", 4, 20, "");
    wrap("one two", 2, 20, "  one two\n");
    /* Each line at most width columns, indent included; spaces between words collapse. */
    wrap("aaaa bbbb  cccc dddd", 2, 12, "  aaaa bbbb\n  cccc dddd\n");
    wrap("aaaa bbbb cccc", 0, 9, "aaaa bbbb\ncccc\n");
    /* A word longer than the width has a line of its own. */
    wrap("a averyveryverylongword b", 1, 8, " a\n averyveryverylongword\n b\n");
}

int main(void)
{
    test_roff();
    test_wrap();
    return check_report("test_manpage");
}
