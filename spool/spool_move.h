/*
 * Moving a finished message from tmp/ into queue/ without ever replacing a file already there:
 * a plain rename(2) would silently overwrite a committed message whose queue id happens to be
 * the same (a clock set back between runs plus equal random bits), losing it. Synchronous: call
 * on the thread pool.
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

#endif
