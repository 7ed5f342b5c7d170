#include "lib/fdio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

/* A missing file reads as empty; a replaced one reads back whole, with nothing left beside it. */
static void test_read_and_replace(void)
{
    char dir[] = "/tmp/test_fdio-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64], tmp[64];
    snprintf(path, sizeof path, "%s/state", dir);
    snprintf(tmp, sizeof tmp, "%s/state.new", dir);
    struct buf got = BUF_INIT;
    CHECK_INT_EQ(file_read_all(path, &got), 0);
    CHECK_INT_EQ(got.len, 0);

    static char big[200000]; /* more than one read */
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\n';
    CHECK_INT_EQ(file_replace(dir, "state", big, sizeof big), 0);
    CHECK_INT_EQ(file_read_all(path, &got), 0);
    CHECK(got.len == sizeof big && memcmp(got.data, big, sizeof big) == 0);
    CHECK_INT_EQ(got.len, sizeof big);

    buf_reset(&got);
    CHECK_INT_EQ(file_replace(dir, "state", "second\n", 7), 0);
    CHECK_INT_EQ(file_read_all(path, &got), 0);
    CHECK_INT_EQ(got.len, 7);
    CHECK(access(tmp, F_OK) != 0);

    /* A directory that does not exist: an error, and nothing written. */
    char gone[80];
    snprintf(gone, sizeof gone, "%s/absent", dir);
    CHECK_INT_EQ(file_replace(gone, "state", "x", 1), -ENOENT);
    CHECK_INT_EQ(file_read_all(dir, &got), -EISDIR);

    unlink(path);
    rmdir(dir);
    buf_free(&got);
}

int main(void)
{
    test_read_and_replace();
    return check_report("test_fdio");
}
