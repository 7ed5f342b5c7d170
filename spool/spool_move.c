#include "spool/spool_move.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int spool_move_noreplace(const char *from, const char *to)
{
    /* renameat2 first: one atomic step, where link + unlink leaves a moment with two names and
     * needs a file system with hard links. */
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) /* file system (or kernel < 3.15) without the flag */
        return spool_move_by_link(from, to);
    return -errno;
}

int spool_move_by_link(const char *from, const char *to)
{
    if (link(from, to) < 0)
        return -errno;
    (void)unlink(from);
    return 0;
}

int spool_move_unnamed_open(int dir_fd, const char *sub)
{
    int fd = openat(dir_fd, sub, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    return fd >= 0 ? fd : -errno;
}

int spool_move_unnamed_link(int fd, int dir_fd, const char *name)
{
    /* linkat(AT_EMPTY_PATH) would need CAP_DAC_READ_SEARCH, which the daemon's user lacks. */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dir_fd, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

int spool_move_unnamed_usable(int dir_fd, const char *probe)
{
    int fd = spool_move_unnamed_open(dir_fd, ".");
    if (fd < 0)
        return 0;
    (void)unlinkat(dir_fd, probe, 0); /* left by a crash during an earlier probe */
    int ok = spool_move_unnamed_link(fd, dir_fd, probe) == 0;
    close(fd);
    if (ok)
        (void)unlinkat(dir_fd, probe, 0);
    return ok;
}
