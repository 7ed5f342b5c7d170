/*
 * Where a message's files live below queue/ and state/: in one of SPOOL_LEAVES hashed directories
 * ("leaves"), so that no directory grows past a few thousand entries however long the queue is.
 * Every spool path to a message's file is made by spool_layout_name; the rest of spool/ opens
 * those names relative to the queue/ or state/ directory. Also lists a hashed directory back, and
 * moves files of the flat layout of earlier versions (queue/<id>) into their leaves. What touches
 * the disk is synchronous: call it on the thread pool or at start-up. Used only inside spool/ (and
 * by its tests).
 */
#ifndef SLUICE_SPOOL_LAYOUT_H
#define SLUICE_SPOOL_LAYOUT_H

#include <stddef.h>

#include "spool/spool.h"

#define SPOOL_LEAVES 4096 /* leaves per directory: 2,441 files each at 10 million messages */
#define SPOOL_LEAF_LEN 3  /* a leaf's name: lowercase hexadecimal digits */
#define SPOOL_NAME_MAX (SPOOL_LEAF_LEN + 1 + SPOOL_ID_MAX)

/* The path of message id's file relative to queue/ or state/: "<leaf>/<id>", where leaf is the
 * low 12 bits of the CRC-32 of the id as three lowercase hexadecimal digits. out holds
 * SPOOL_NAME_MAX + 1 bytes. */
void spool_layout_name(const char *id, char *out);
/* The id in a name made by spool_layout_name (what follows the last '/'). */
const char *spool_layout_id(const char *name);

/* Creates the leaf of name (from spool_layout_name) in dirfd when missing. Leaves are made when
 * first needed and never removed. Returns 0 or -errno. */
int spool_layout_leaf_make(int dirfd, const char *name);
int spool_layout_leaves_make(int dirfd);
/* fsync of the leaf of name in dirfd: its entries become durable. Returns 0 or -errno. */
int spool_layout_leaf_sync(int dirfd, const char *name);

/* Every entry of the hashed directory dirfd: "<leaf>/<entry>" for what the leaves hold, and the
 * bare name of anything else at the top (neither a leaf nor in one: for recovery to set aside),
 * sorted by the entry's own name (so queue ids by time). Returns the count (free with
 * spool_layout_list_free) or -errno. */
int spool_layout_list(int dirfd, char ***names);
void spool_layout_list_free(char **names, int n);

/* Moves every entry of queue/ and state/ (queue_fd, state_fd) named like a queue id that is not
 * a directory (a file of the flat layout of earlier versions) into its leaf, then syncs the
 * spool's file system (spool_fd) once and logs spool.migrated. Each move is one rename, so an
 * interrupted migration leaves every file in one place or the other and the next one goes on.
 * Returns how many moved, or -errno with a reason in err. */
int spool_layout_migrate(int spool_fd, int queue_fd, int state_fd, struct buf *err);

#endif
