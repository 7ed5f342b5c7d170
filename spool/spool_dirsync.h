/*
 * Group sync of a directory: entries created or renamed into it become durable with an fsync of
 * the directory. While one fsync runs, new waiters gather, and the next single fsync covers all
 * of them, so concurrent messages do not queue behind one sync each.
 */
#ifndef SLUICE_SPOOL_DIRSYNC_H
#define SLUICE_SPOOL_DIRSYNC_H

#include <uv.h>

struct spool_dirsync_waiter {
    struct spool_dirsync_waiter *next;
    /* Runs on the loop once an fsync started after spool_dirsync_add returned: 0 or -errno. */
    void (*done)(struct spool_dirsync_waiter *w, int status);
};

struct spool_dirsync {
    uv_loop_t *loop;
    int fd; /* the directory, opened O_RDONLY */
    uv_fs_t req;
    int busy;
    struct spool_dirsync_waiter *batch;   /* covered by the fsync in flight */
    struct spool_dirsync_waiter *waiting; /* for the next one */
    struct spool_dirsync_waiter **tail;   /* where the next waiter is linked */
};

void spool_dirsync_init(struct spool_dirsync *ds, uv_loop_t *loop, int fd);
void spool_dirsync_add(struct spool_dirsync *ds, struct spool_dirsync_waiter *w);

#endif
