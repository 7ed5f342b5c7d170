/*
 * spool_layout: a message's name is its leaf (CRC-32 of the id, low 12 bits, in hexadecimal) and
 * its id, the same as docs/spool.md and the tests' Python helper compute; leaves are made once and
 * synced; a listing gives the leaves' entries sorted by their own name and what else is at the
 * top; a migration moves flat files named like ids into their leaves, leaves everything else, and
 * moves nothing a second time.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/spool_layout.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/test_spool_layout.XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void touch(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    close(fd);
}

static int exists(const char *rel)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return lstat(path, &st) == 0;
}

static void test_name(void)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name("1K1SY7NTQNJ002MF", name);
    CHECK_STR_EQ(name, "5f0/1K1SY7NTQNJ002MF");
    CHECK_STR_EQ(spool_layout_id(name), "1K1SY7NTQNJ002MF");
    spool_layout_name("0000000000000001", name);
    CHECK_STR_EQ(name, "bf2/0000000000000001");
    spool_layout_name("A", name);
    CHECK_STR_EQ(name, "e8b/A");
    CHECK_STR_EQ(spool_layout_id("loose"), "loose");

    /* A burst of ids that differ only in their last characters spreads over many leaves. */
    static char seen[SPOOL_LEAVES];
    int leaves = 0;
    for (int i = 0; i < 1024; i++) {
        char id[32];
        snprintf(id, sizeof id, "1K1SY7NTQNJ0%04X", i);
        spool_layout_name(id, name);
        unsigned leaf = (unsigned)strtoul(name, NULL, 16);
        CHECK(leaf < SPOOL_LEAVES);
        leaves += !seen[leaf];
        seen[leaf] = 1;
    }
    CHECK(leaves > 700); /* 1024 balls into 4096 bins: ~906 expected */
}

static void test_leaves_and_listing(int fd)
{
    char a[SPOOL_NAME_MAX + 1], b[SPOOL_NAME_MAX + 1];
    spool_layout_name("1K1SY7NTQNJ002MF", a);
    spool_layout_name("0000000000000001", b);
    CHECK_INT_EQ(spool_layout_leaf_sync(fd, a), -ENOENT);
    CHECK_INT_EQ(spool_layout_leaf_make(fd, a), 0);
    CHECK_INT_EQ(spool_layout_leaf_make(fd, a), 0); /* already there */
    CHECK_INT_EQ(spool_layout_leaf_sync(fd, a), 0);
    CHECK_INT_EQ(spool_layout_leaf_make(fd, b), 0);
    char rel[64];
    snprintf(rel, sizeof rel, "queue/%s", a);
    touch(rel);
    snprintf(rel, sizeof rel, "queue/%s", b);
    touch(rel);
    touch("queue/junk");

    char **names;
    int n = spool_layout_list(fd, &names);
    CHECK_INT_EQ(n, 3);
    if (n == 3) {
        CHECK_STR_EQ(names[0], b); /* sorted by the entry's own name, not the leaf's */
        CHECK_STR_EQ(names[1], a);
        CHECK_STR_EQ(names[2], "junk");
    }
    spool_layout_list_free(names, n);
}

static void test_migrate(int spool_fd, int queue_fd, int state_fd)
{
    touch("queue/1K1SY7NTRXJ001PP");
    touch("state/1K1SY7NTRXJ001PP");
    touch("state/1K1SY7NTSAJ003QQ");
    char path[256]; /* a directory named like an id: not a file of the flat layout */
    snprintf(path, sizeof path, "%s/queue/ABC", dir);
    CHECK_INT_EQ(mkdir(path, 0700), 0);

    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_layout_migrate(spool_fd, queue_fd, state_fd, &err), 3);
    char name[SPOOL_NAME_MAX + 1], rel[64];
    static const char *const moved[] = {"queue/1K1SY7NTRXJ001PP", "state/1K1SY7NTRXJ001PP",
                                        "state/1K1SY7NTSAJ003QQ"};
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
        CHECK(!exists(moved[i]));
        spool_layout_name(moved[i] + 6, name);
        snprintf(rel, sizeof rel, "%.6s%s", moved[i], name);
        CHECK(exists(rel));
    }
    CHECK(exists("queue/junk")); /* not an id: left for recovery to set aside */
    CHECK(exists("queue/ABC"));
    /* Done: a second migration moves nothing (and says nothing). */
    CHECK_INT_EQ(spool_layout_migrate(spool_fd, queue_fd, state_fd, &err), 0);
    CHECK_INT_EQ(err.len, 0);
    buf_free(&err);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/queue", dir);
    CHECK_INT_EQ(mkdir(path, 0700), 0);
    int queue_fd = open(path, O_RDONLY | O_DIRECTORY);
    snprintf(path, sizeof path, "%s/state", dir);
    CHECK_INT_EQ(mkdir(path, 0700), 0);
    int state_fd = open(path, O_RDONLY | O_DIRECTORY);
    int spool_fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(queue_fd >= 0 && state_fd >= 0 && spool_fd >= 0);

    test_name();
    test_leaves_and_listing(queue_fd);
    test_migrate(spool_fd, queue_fd, state_fd);

    close(queue_fd);
    close(state_fd);
    close(spool_fd);
    CHECK_INT_EQ(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    return check_report("test_spool_layout");
}
