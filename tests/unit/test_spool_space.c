/*
 * spool_space: the cached free-space figure of the spool's file system. The first figure is taken
 * at once; octets noted as written come off it; a refresh (on the thread pool) puts it back in
 * line with statfs; a file system that cannot be asked has no figure; freeing with a statfs in
 * flight leaves the loop clean.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <uv.h>

#include "spool/spool_space.h"
#include "tests/unit/check.h"

static uv_loop_t loop;

static uint64_t statvfs_available(const char *dir, uint64_t *total)
{
    struct statvfs st;
    CHECK_INT_EQ(statvfs(dir, &st), 0);
    *total = (uint64_t)st.f_blocks * st.f_frsize;
    return (uint64_t)st.f_bavail * st.f_frsize;
}

static void test_figure_and_writes(void)
{
    const char *dir = "/tmp";
    struct spool_space *sp = spool_space_new(&loop, dir);
    struct spool_space_figure fig, after;
    uint64_t total;
    uint64_t free_now = statvfs_available(dir, &total);
    CHECK_INT_EQ(spool_space_get(sp, &fig), 0);
    CHECK_INT_EQ(fig.total, total);
    /* Other programs may write to /tmp meanwhile: the two figures agree within 8 MiB. */
    CHECK(fig.available + 8 * 1024 * 1024 > free_now && free_now + 8 * 1024 * 1024 > fig.available);

    spool_space_written(sp, 1000);
    CHECK_INT_EQ(spool_space_get(sp, &after), 0);
    CHECK_INT_EQ(fig.available - after.available, 1000);

    /* Enough written starts a statfs, which brings back what was only noted. */
    spool_space_written(sp, SPOOL_SPACE_REFRESH_BYTES);
    CHECK_INT_EQ(spool_space_get(sp, &after), 0);
    CHECK(after.available + SPOOL_SPACE_REFRESH_BYTES <= fig.available);
    for (int i = 0; i < 100 && after.available + SPOOL_SPACE_REFRESH_BYTES / 2 < fig.available;
         i++) {
        uv_run(&loop, UV_RUN_ONCE);
        CHECK_INT_EQ(spool_space_get(sp, &after), 0);
    }
    CHECK(after.available + SPOOL_SPACE_REFRESH_BYTES / 2 >= fig.available);

    /* Freed with a statfs in flight: the memory goes once it has returned. */
    spool_space_refresh(sp);
    spool_space_free(sp);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_no_file_system(void)
{
    struct spool_space *sp = spool_space_new(&loop, "/nonexistent/spool");
    struct spool_space_figure fig;
    CHECK_INT_EQ(spool_space_get(sp, &fig), -ENOENT);
    spool_space_written(sp, SPOOL_SPACE_REFRESH_BYTES); /* a refresh that fails again */
    uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT_EQ(spool_space_get(sp, &fig), -ENOENT);
    spool_space_free(sp);
    spool_space_free(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
    uv_loop_init(&loop);
    test_figure_and_writes();
    test_no_file_system();
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_spool_space");
}
