/*
 * spool_owner_hand_over: the spool goes to the daemon's user, and nothing the walk finds in it
 * (a symbolic link, a hard link, a FIFO, a directory nested too deep) hands a file outside the
 * spool to that user. The handing over itself needs root; as anyone else the test checks what is
 * left alone and that the walk changes nothing it should not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lib/buf.h"
#include "spool/spool_owner.h"

static char top[64];

static const char *at(const char *rel)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 256, "%s/%s", top, rel);
    return p;
}

static void make_file(const char *rel)
{
    int fd = open(at(rel), O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    close(fd);
}

static uid_t owner_of(const char *rel)
{
    struct stat st;
    CHECK(lstat(at(rel), &st) == 0);
    return st.st_uid;
}

static void remove_tree(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    snprintf(top, sizeof top, "/tmp/test_spool_owner.XXXXXX");
    if (mkdtemp(top) == NULL)
        return 1;
    int root = geteuid() == 0;
    uid_t uid = root ? 4242 : geteuid();
    gid_t gid = root ? 4243 : getegid();
    uid_t before = geteuid();

    /* Outside the spool: files no walk may hand over. */
    CHECK(mkdir(at("outside"), 0755) == 0);
    make_file("outside/secret");
    make_file("outside/linked");
    /* The spool as a hostile user could leave it. */
    CHECK(mkdir(at("spool"), 0700) == 0);
    CHECK(mkdir(at("spool/queue"), 0700) == 0);
    make_file("spool/queue/A");
    CHECK(symlink(at("outside/secret"), at("spool/queue/B")) == 0);
    CHECK(symlink(at("outside"), at("spool/state")) == 0); /* a directory swapped for a link */
    CHECK(link(at("outside/linked"), at("spool/queue/C")) == 0);
    CHECK(mkfifo(at("spool/queue/fifo"), 0600) == 0);
    CHECK(mkdir(at("spool/corrupt"), 0700) == 0);
    CHECK(mkdir(at("spool/corrupt/1"), 0700) == 0);
    CHECK(mkdir(at("spool/corrupt/1/2"), 0700) == 0);
    CHECK(mkdir(at("spool/corrupt/1/2/3"), 0700) == 0);
    CHECK(mkdir(at("spool/corrupt/1/2/3/4"), 0700) == 0);
    make_file("spool/corrupt/1/2/3/4/deep");

    struct buf err = BUF_INIT;
    int left = spool_owner_hand_over(at("spool"), uid, gid, &err);
    buf_printf(&err, "%s", "");
    if (left < 0)
        fprintf(stderr, "hand over: %s\n", err.data);
    /* The symbolic links B and state, the hard link C, the FIFO, corrupt/1/2/3 (too deep). */
    CHECK_INT_EQ(left, 5);

    /* What is the spool's is the user's, tmp/ included (created as spool_open would). */
    const char *given[] = {"spool",     "spool/queue",   "spool/queue/A",
                           "spool/tmp", "spool/corrupt", "spool/corrupt/1/2"};
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        struct stat st;
        CHECK(lstat(at(given[i]), &st) == 0);
        CHECK_INT_EQ(st.st_uid, uid);
        CHECK_INT_EQ(st.st_gid, gid);
    }
    /* Nothing the links lead to, and nothing left alone, changed hands. */
    const char *kept[] = {
        "outside",     "outside/secret",   "outside/linked",      "spool/queue/B",
        "spool/state", "spool/queue/fifo", "spool/corrupt/1/2/3", "spool/corrupt/1/2/3/4/deep"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        CHECK_INT_EQ(owner_of(kept[i]), before);
    if (!root)
        printf("test_spool_owner: not root, so every owner was already the user's\n");

    /* A second hand-over leaves the same entries alone. */
    buf_reset(&err);
    CHECK_INT_EQ(spool_owner_hand_over(at("spool"), uid, gid, &err), 5);

    /* A spool that cannot be made is an error naming it. */
    buf_reset(&err);
    make_file("file");
    CHECK(spool_owner_hand_over(at("file/spool"), uid, gid, &err) < 0);
    buf_printf(&err, "%s", "");
    CHECK(strstr(err.data, "file/spool") != NULL);

    buf_free(&err);
    remove_tree(top);
    return check_report("test_spool_owner");
}
