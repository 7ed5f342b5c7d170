/*
 * Moving a finished message from tmp/ into queue/ without ever replacing a file already there:
 * a plain rename(2) would silently overwrite a committed message whose queue id happens to be
 * the same (a clock set back between runs plus equal random bits), losing it. Also a file made
 * without a name (O_TMPFILE) right in its queue/ leaf and given its name there once durable, which
 * spares the message a directory entry in tmp/ and a rename across directories. Synchronous: call
 * on the thread pool (spool_move_unnamed_usable: at start-up).
 */
#ifndef SLUICE_SPOOL_MOVE_H
#define SLUICE_SPOOL_MOVE_H

/* Moves from to to, failing with -EEXIST when to exists. Uses renameat2(RENAME_NOREPLACE) and,
 * on a file system or kernel without it, spool_move_by_link. Returns 0 or -errno. */
int spool_move_noreplace(const char *from, const char *to);

/* The fallback: link(2), which never replaces, then unlink(2) of from. Returns 0 once to exists
 * (a from left behind when the unlink fails is only a second name of the same file in tmp/, which
 * spool_recover removes), or -errno of the link. */
int spool_move_by_link(const char *from, const char *to);

/* A new file without a name in directory dir_fd/sub (sub relative to it), open for writing, mode
 * 0600: the fd, or -errno (-EOPNOTSUPP and the like where the file system cannot). */
int spool_move_unnamed_open(int dir_fd, const char *sub);
/* Gives the unnamed file fd the name name in dir_fd, failing with -EEXIST when it exists (a link
 * never replaces). Through /proc/self/fd, so no privilege is needed. Returns 0 or -errno. */
int spool_move_unnamed_link(int fd, int dir_fd, const char *name);
/* 1 when unnamed files can be made and named in dir_fd (tried with a file named probe, removed
 * again), else 0: the spool then writes its messages into tmp/ first. */
int spool_move_unnamed_usable(int dir_fd, const char *probe);

#endif
