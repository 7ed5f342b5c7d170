#include <string.h>

#include "lib/linereader.h"
#include "tests/unit/check.h"

/* Feeds `input` in one piece and returns the first result. */
static enum line_result first(struct linereader *lr, const char *input, const char **line,
                              size_t *line_len, size_t *consumed)
{
    return linereader_next(lr, input, strlen(input), line, line_len, consumed);
}

static void test_lines(void)
{
    struct linereader lr;
    const char *line;
    size_t len, used;
    linereader_init(&lr, 512);

    CHECK_INT_EQ(first(&lr, "NOOP\r\nQUIT\r\n", &line, &len, &used), LINE_OK);
    CHECK_MEM_EQ(line, len, "NOOP");
    CHECK_INT_EQ(used, 6);

    CHECK_INT_EQ(first(&lr, "NOO", &line, &len, &used), LINE_NEED_MORE);
    CHECK_INT_EQ(used, 0);
    CHECK_INT_EQ(first(&lr, "NOOP\r", &line, &len, &used), LINE_NEED_MORE);

    CHECK_INT_EQ(first(&lr, "\r\n", &line, &len, &used), LINE_OK);
    CHECK_INT_EQ(len, 0);
}

static void test_bad_line_endings(void)
{
    struct linereader lr;
    const char *line;
    size_t len, used;
    linereader_init(&lr, 512);

    /* A bare LF does not end a line: everything up to the next CRLF goes, reported once. */
    CHECK_INT_EQ(first(&lr, "NOOP\nMAIL FROM:<x@y>\r\nQUIT\r\n", &line, &len, &used), LINE_BAD_EOL);
    CHECK_INT_EQ(used, 22);
    CHECK_INT_EQ(first(&lr, "QUIT\r\n", &line, &len, &used), LINE_OK);
    CHECK_INT_EQ(first(&lr, "NO\rOP\r\n", &line, &len, &used), LINE_BAD_EOL);
    CHECK_INT_EQ(used, 7);

    /* The bare LF arrives first, the CRLF in a later read. */
    CHECK_INT_EQ(first(&lr, "\nHELP", &line, &len, &used), LINE_NEED_MORE);
    CHECK_INT_EQ(used, 5);
    CHECK_INT_EQ(first(&lr, "\r\nNOOP\r\n", &line, &len, &used), LINE_BAD_EOL);
    CHECK_INT_EQ(used, 2);
    CHECK_INT_EQ(first(&lr, "NOOP\r\n", &line, &len, &used), LINE_OK);
    CHECK_MEM_EQ(line, len, "NOOP");
}

static void test_too_long(void)
{
    struct linereader lr;
    const char *line;
    size_t len, used;
    char big[600];
    linereader_init(&lr, 512);

    /* 510 octets + CRLF = 512: allowed. */
    memset(big, 'a', 510);
    memcpy(big + 510, "\r\n", 3);
    CHECK_INT_EQ(first(&lr, big, &line, &len, &used), LINE_OK);
    CHECK_INT_EQ(len, 510);

    /* 511 + CRLF: too long, reported when it ends. */
    memset(big, 'a', 511);
    memcpy(big + 511, "\r\n", 3);
    CHECK_INT_EQ(first(&lr, big, &line, &len, &used), LINE_TOO_LONG);
    CHECK_INT_EQ(used, 513);

    /* A long line arriving in pieces is dropped as it comes and reported once at its end; its tail
     * is never taken for a command. */
    memset(big, 'b', 599);
    big[599] = '\0';
    CHECK_INT_EQ(first(&lr, big, &line, &len, &used), LINE_NEED_MORE);
    CHECK_INT_EQ(used, 599);
    CHECK_INT_EQ(first(&lr, "QUIT", &line, &len, &used), LINE_NEED_MORE);
    CHECK_INT_EQ(used, 4);
    CHECK_INT_EQ(first(&lr, "tail\r", &line, &len, &used), LINE_NEED_MORE);
    CHECK_INT_EQ(used, 4); /* the CR stays for the LF that may follow */
    CHECK_INT_EQ(first(&lr, "\r\nNOOP\r\n", &line, &len, &used), LINE_TOO_LONG);
    CHECK_INT_EQ(used, 2);
    CHECK_INT_EQ(first(&lr, "NOOP\r\n", &line, &len, &used), LINE_OK);
}

int main(void)
{
    test_lines();
    test_bad_line_endings();
    test_too_long();
    return check_report("test_linereader");
}
