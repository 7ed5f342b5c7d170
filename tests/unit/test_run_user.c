/*
 * run_user: what the daemon's user may open, judged from permission bits, for a user the test
 * process is not (uid 4242): the owner's bits for the owner only, the group's for a member, the
 * others' for the rest, and every directory on the way searchable. Paths are relative to a
 * private directory the test works in, as a configuration's may be relative to the daemon's.
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
#include "mta/run_user.h"

static char top[64];

static void test_parent_dir(void)
{
    const char *cases[][2] = {
        {"a", "."},   {"/a", "/"},  {"/a/b", "/a"}, {"a/b/", "a"},
        {"./a", "."}, {"//a", "/"}, {"/", "/"},     {"/var/log//x.log", "/var/log"},
    };
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_user_parent_dir(cases[i][0], &out);
        CHECK_STR_EQ(out.data, cases[i][1]);
    }
    buf_free(&out);
}

static void test_allows(void)
{
    gid_t groups[] = {4243, 50};
    struct run_user u = {.name = "u", .uid = 4242, .gid = 4243, .groups = groups, .ngroups = 2};
    struct {
        uid_t uid;
        gid_t gid;
        mode_t mode;
        unsigned bits;
        int allowed;
    } cases[] = {
        {4242, 0, 0600, S_IROTH, 1}, {4242, 4243, 0060, S_IROTH, 0}, /* the owner gets the owner's
                                                                        bits, even if none */
        {0, 4243, 0640, S_IROTH, 1}, {0, 50, 0640, S_IROTH, 1},      /* a supplementary group */
        {0, 4243, 0640, S_IWOTH, 0}, {0, 0, 0644, S_IROTH, 1},           {0, 0, 0640, S_IROTH, 0},
        {0, 0, 0711, S_IXOTH, 1},    {0, 0, 0755, S_IWOTH | S_IXOTH, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct stat st = {
            .st_uid = cases[i].uid, .st_gid = cases[i].gid, .st_mode = S_IFREG | cases[i].mode};
        CHECK_INT_EQ(run_user_allows(&u, &st, cases[i].bits), cases[i].allowed);
    }
    struct run_user root = {.name = "root"};
    struct stat nothing = {.st_mode = S_IFREG};
    CHECK(run_user_allows(&root, &nothing, S_IROTH | S_IWOTH));
}

static void check_open(const struct run_user *u, const char *rel, int mode, int want,
                       const char *text)
{
    struct buf why = BUF_INIT;
    int rc = run_user_can_open(u, rel, mode, &why);
    buf_printf(&why, "%s", "");
    CHECK_INT_EQ(rc, want);
    if (text != NULL && strstr(why.data, text) == NULL) {
        check_failures++;
        fprintf(stderr, "%s: \"%s\" lacks \"%s\"\n", rel, why.data, text);
    }
    buf_free(&why);
}

static void test_can_open_and_reach(void)
{
    /* The test process owns everything below; the user is someone else. */
    struct run_user u = {
        .name = "u", .uid = 4242, .gid = 4243, .groups = (gid_t[]){4243}, .ngroups = 1};
    CHECK(mkdir("d", 0700) == 0);
    int fd = open("d/f", O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    close(fd);

    check_open(&u, "d/f", R_OK, -EACCES, "d is not searchable by u (mode 0700");
    CHECK(chmod("d", 0711) == 0);
    check_open(&u, "d/f", R_OK, 0, NULL);
    check_open(&u, "d/f", W_OK, -EACCES, "d/f is not writable by u (mode 0644");
    CHECK(chmod("d/f", 0600) == 0);
    check_open(&u, "d/f", R_OK, -EACCES, "d/f is not readable by u");
    check_open(&u, "d/missing", R_OK, -ENOENT, "No such file");
    /* Appending to a missing file: it is created in its directory. */
    check_open(&u, "d/new.log", W_OK, -EACCES, "d is not writable by u");
    CHECK(chmod("d", 0733) == 0);
    check_open(&u, "d/new.log", W_OK, 0, NULL);
    check_open(&u, "nodir/x.log", W_OK, -ENOENT, "nodir: No such file");
    check_open(&u, "d", R_OK, -EISDIR, "is a directory");

    /* Reaching a directory: what exists must be searchable; the rest is created. */
    struct buf why = BUF_INIT;
    CHECK(chmod("d", 0700) == 0);
    CHECK_INT_EQ(run_user_can_reach(&u, "d/spool", 0, &why), -EACCES);
    CHECK(chmod("d", 0711) == 0);
    CHECK_INT_EQ(run_user_can_reach(&u, "d/a/b", 0, &why), 0);
    CHECK_INT_EQ(run_user_can_reach(&u, "d/a/b", 1, &why), -EACCES); /* u creates a/ in d */
    CHECK(chmod("d", 0733) == 0);
    CHECK_INT_EQ(run_user_can_reach(&u, "d/a/b", 1, &why), 0);
    buf_free(&why);

    unlink("d/f");
    rmdir("d");
}

int main(void)
{
    snprintf(top, sizeof top, "/tmp/test_run_user.XXXXXX");
    if (mkdtemp(top) == NULL)
        return 1;
    if (chmod(top, 0755) < 0 || chdir(top) < 0)
        return 1;
    test_parent_dir();
    test_allows();
    if (geteuid() == 4242)
        printf("test_run_user: running as uid 4242, the test's stranger: skipping the files\n");
    else
        test_can_open_and_reach();
    CHECK(chdir("/") == 0 && rmdir(top) == 0);
    return check_report("test_run_user");
}
