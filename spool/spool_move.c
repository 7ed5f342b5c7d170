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
