/*
 * The repairs recovery makes to files it finds broken, shared by the start-up walk
 * (spool_recover.c), the listing of queue/ that follows it on the thread pool (spool_list.c) and
 * the scheduler's loads (spool_ops.c): a file that fails validation is set aside in corrupt/, and a
 * torn tail is cut off a state file. Synchronous; only for files no update is running on. Used only
 * inside spool/.
 */
#ifndef SLUICE_SPOOL_REPAIR_H
#define SLUICE_SPOOL_REPAIR_H

#include "spool/spool_fs.h"

/* Moves name of dir_fd to corrupt/ (corrupt_fd) as to, where a person can look at it, and logs
 * spool.corrupt with why. Returns 0 or -errno (then logged too). */
int spool_repair_quarantine(int dir_fd, const char *name, int corrupt_fd, const char *to,
                            const char *why);
/* Cuts the torn tail off the states of message id that l read (from its queue file in queue_fd
 * or its state file in state_fd, both at name), so the records appended from now on are read
 * again (a reader stops at the first bad record). Logs spool.state_cut. */
void spool_repair_state_cut(int queue_fd, int state_fd, const char *name, const char *id,
                            const struct spool_loaded *l);

/* A state entry Sluice never makes (a symbolic link, a directory, a FIFO) tells nothing about the
 * recipients that can be trusted, and must not cost the message: it goes to corrupt/ as ID.state,
 * and the message is delivered to all its recipients again (at least once, never lost). Returns 1
 * when an entry was moved, else 0. */
int spool_repair_state_entry(int state_fd, const char *name, const char *id, int corrupt_fd);

#endif
