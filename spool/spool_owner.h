/*
 * Handing the spool to the daemon's user. Started as root, before it becomes server.user, the
 * daemon creates the spool where it is missing and gives every directory and file in it to that
 * user. The user owned the spool in the last run and may have left anything in it, so the walk
 * never follows a link: each step is relative to an open directory (openat with O_NOFOLLOW), each
 * change is made on the very inode that was checked (through an O_PATH descriptor), and the depth
 * is bounded. What it will not touch (a symbolic link, a file with more than one name, anything
 * that is not a directory, regular file or socket, a directory nested too deep) stays as it is
 * and is logged (spool.not_handed_over).
 */
#ifndef SLUICE_SPOOL_OWNER_H
#define SLUICE_SPOOL_OWNER_H

#include <sys/types.h>

#include "lib/buf.h"

/* The spool's own tree is three levels deep (dir/queue/LEAF/ID); the walk stops just below. */
#define SPOOL_OWNER_MAX_DEPTH 4

/* Creates dir (as spool_open would) and hands everything in it to uid:gid. Returns the number of
 * entries left as they are, or -errno with a reason in err. Blocking: call at start-up. */
int spool_owner_hand_over(const char *dir, uid_t uid, gid_t gid, struct buf *err);

#endif
