/* The webhook backlog file: append, read in batches, move the offset on, and what a reopen (a
 * restart) finds: the offset kept, a torn last line cut, an emptied file, a rewritten one. */
#include "mta/webhooks/webhook_backlog.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/test_dirs.h"

static char tmpdir[64];
static char path[128];

static void reopen(struct webhook_backlog *b)
{
    struct buf err = BUF_INIT;
    webhook_backlog_close(b);
    CHECK_INT_EQ(webhook_backlog_open(b, path, &err), 0);
    buf_free(&err);
}

static off_t file_size(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void read_expect(struct webhook_backlog *b, unsigned max, size_t max_bytes, const char *want,
                        uint64_t want_events)
{
    struct buf out = BUF_INIT;
    uint64_t n = 99;
    CHECK_INT_EQ(webhook_backlog_read(b, max, max_bytes, &out, &n), 0);
    CHECK_MEM_EQ(out.data, out.len, want);
    CHECK_INT_EQ(n, want_events);
    buf_free(&out);
}

static void test_batches_and_offset_across_reopen(void)
{
    struct webhook_backlog b = {.fd = -1};
    reopen(&b);
    CHECK_INT_EQ(b.unsent, 0);
    off_t empty = file_size();
    CHECK(empty > 0);
    CHECK_INT_EQ(webhook_backlog_append(&b, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", 24, 3), 0);
    CHECK_INT_EQ(b.unsent, 3);
    read_expect(&b, 2, 1 << 20, "{\"a\":1}\n{\"a\":2}\n", 2);
    read_expect(&b, 10, 1, "{\"a\":1}\n", 1); /* over max_bytes: one line all the same */
    CHECK_INT_EQ(webhook_backlog_ack(&b, 16, 2), 0);
    reopen(&b); /* a restart: the offset was kept */
    CHECK_INT_EQ(b.unsent, 1);
    read_expect(&b, 10, 1 << 20, "{\"a\":3}\n", 1);

    /* A crash in the middle of an append leaves a torn line: cut at the reopen. */
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(write(fd, "{\"a\":4}\n{\"a\"", 12) == 12);
    close(fd);
    reopen(&b);
    CHECK_INT_EQ(b.unsent, 2);
    read_expect(&b, 10, 1 << 20, "{\"a\":3}\n{\"a\":4}\n", 2);

    /* All taken: the file is emptied. */
    CHECK_INT_EQ(webhook_backlog_ack(&b, 16, 2), 0);
    CHECK_INT_EQ(file_size(), empty);
    reopen(&b);
    CHECK_INT_EQ(b.unsent, 0);
    read_expect(&b, 10, 1 << 20, "", 0);
    webhook_backlog_close(&b);
}

/* A head taken that is large and larger than the rest: rewritten without it. */
static void test_long_head_is_compacted(void)
{
    enum { LINES = 40000, LINE = 42 };
    struct webhook_backlog b = {.fd = -1};
    reopen(&b);
    struct buf lines = BUF_INIT;
    for (int i = 0; i < LINES; i++)
        buf_printf(&lines, "{\"n\":%08d,\"pad\":\"..................\"}\n", i);
    CHECK_INT_EQ(lines.len, (size_t)LINES * LINE);
    CHECK_INT_EQ(webhook_backlog_append(&b, lines.data, lines.len, LINES), 0);
    off_t full = file_size();
    CHECK_INT_EQ(webhook_backlog_ack(&b, (LINES - 10) * LINE, LINES - 10), 0);
    CHECK(file_size() < full - (LINES - 20) * LINE);
    reopen(&b);
    CHECK_INT_EQ(b.unsent, 10);
    struct buf out = BUF_INIT;
    uint64_t n = 0;
    CHECK_INT_EQ(webhook_backlog_read(&b, 100, 1 << 20, &out, &n), 0);
    CHECK_INT_EQ(n, 10);
    CHECK_MEM_EQ(out.data, out.len, lines.data + (LINES - 10) * LINE);
    buf_free(&out);
    buf_free(&lines);
    webhook_backlog_close(&b);
}

static void test_foreign_file_is_refused(void)
{
    char other[160];
    snprintf(other, sizeof other, "%s/other.backlog", tmpdir);
    int fd = open(other, O_WRONLY | O_CREAT, 0600);
    CHECK(write(fd, "not a backlog at all, but long enough to hold a header\n", 55) == 55);
    close(fd);
    struct webhook_backlog b = {.fd = -1};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(webhook_backlog_open(&b, other, &err), -EINVAL);
    CHECK(err.len > 0);
    buf_free(&err);
    webhook_backlog_close(&b);
}

static void test_path_is_stable_per_url(void)
{
    char *a = webhook_backlog_path("/spool", "https://a.example/hook");
    char *a2 = webhook_backlog_path("/spool", "https://a.example/hook");
    char *b = webhook_backlog_path("/spool", "https://b.example/hook");
    CHECK_STR_EQ(a, a2);
    CHECK(strcmp(a, b) != 0);
    CHECK(strncmp(a, "/spool/webhooks/", 16) == 0);
    free(a);
    free(a2);
    free(b);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice_test_wh_backlog_XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/webhooks/one.backlog", tmpdir);
    test_batches_and_offset_across_reopen();
    test_long_head_is_compacted();
    test_foreign_file_is_refused();
    test_path_is_stable_per_url();
    test_dir_clear(tmpdir);
    rmdir(tmpdir);
    return check_report("test_webhook_backlog");
}
