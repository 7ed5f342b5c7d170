#include <string.h>

#include "lib/linereader.h"
#include "tests/unit/check.h"

/* A line reader with a 512-octet limit (RFC 5321's for a command line) and what its last read
 * gave: the line, its length and the octets consumed. */
struct reader {
    struct linereader lr;
    const char *line;
    size_t len, used;
};

static void reader_init(struct reader *r)
{
    linereader_init(&r->lr, 512);
}

/* Feeds `input` in one piece and returns the first result. */
static enum line_result first(struct reader *r, const char *input)
{
    return linereader_next(&r->lr, input, strlen(input), &r->line, &r->len, &r->used);
}

static void test_lines(void)
{
    struct reader r;
    reader_init(&r);

    CHECK_INT_EQ(first(&r, "NOOP\r\nQUIT\r\n"), LINE_OK);
    CHECK_MEM_EQ(r.line, r.len, "NOOP");
    CHECK_INT_EQ(r.used, 6);

    CHECK_INT_EQ(first(&r, "NOO"), LINE_NEED_MORE);
    CHECK_INT_EQ(r.used, 0);
    CHECK_INT_EQ(first(&r, "NOOP\r"), LINE_NEED_MORE);

    CHECK_INT_EQ(first(&r, "\r\n"), LINE_OK);
    CHECK_INT_EQ(r.len, 0);
}

static void test_bad_line_endings(void)
{
    struct reader r;
    reader_init(&r);

    /* A bare LF does not end a line: everything up to the next CRLF goes, reported once. */
    CHECK_INT_EQ(first(&r, "NOOP\nMAIL FROM:<x@y>\r\nQUIT\r\n"), LINE_BAD_EOL);
    CHECK_INT_EQ(r.used, 22);
    CHECK_INT_EQ(first(&r, "QUIT\r\n"), LINE_OK);
    CHECK_INT_EQ(first(&r, "NO\rOP\r\n"), LINE_BAD_EOL);
    CHECK_INT_EQ(r.used, 7);

    /* The bare LF arrives first, the CRLF in a later read. */
    CHECK_INT_EQ(first(&r, "\nHELP"), LINE_NEED_MORE);
    CHECK_INT_EQ(r.used, 5);
    CHECK_INT_EQ(first(&r, "\r\nNOOP\r\n"), LINE_BAD_EOL);
    CHECK_INT_EQ(r.used, 2);
    CHECK_INT_EQ(first(&r, "NOOP\r\n"), LINE_OK);
    CHECK_MEM_EQ(r.line, r.len, "NOOP");
}

static void test_too_long(void)
{
    struct reader r;
    char big[600];
    reader_init(&r);

    /* 510 octets + CRLF = 512: allowed. */
    memset(big, 'a', 510);
    memcpy(big + 510, "\r\n", 3);
    CHECK_INT_EQ(first(&r, big), LINE_OK);
    CHECK_INT_EQ(r.len, 510);

    /* 511 + CRLF: too long, reported when it ends. */
    memset(big, 'a', 511);
    memcpy(big + 511, "\r\n", 3);
    CHECK_INT_EQ(first(&r, big), LINE_TOO_LONG);
    CHECK_INT_EQ(r.used, 513);

    /* A long line arriving in pieces is dropped as it comes and reported once at its end; its tail
     * is never taken for a command. */
    memset(big, 'b', 599);
    big[599] = '\0';
    CHECK_INT_EQ(first(&r, big), LINE_NEED_MORE);
    CHECK_INT_EQ(r.used, 599);
    CHECK_INT_EQ(first(&r, "QUIT"), LINE_NEED_MORE);
    CHECK_INT_EQ(r.used, 4);
    CHECK_INT_EQ(first(&r, "tail\r"), LINE_NEED_MORE);
    CHECK_INT_EQ(r.used, 4); /* the CR stays for the LF that may follow */
    CHECK_INT_EQ(first(&r, "\r\nNOOP\r\n"), LINE_TOO_LONG);
    CHECK_INT_EQ(r.used, 2);
    CHECK_INT_EQ(first(&r, "NOOP\r\n"), LINE_OK);
}

int main(void)
{
    test_lines();
    test_bad_line_endings();
    test_too_long();
    return check_report("test_linereader");
}
