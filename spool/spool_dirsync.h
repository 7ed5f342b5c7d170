/*
 * Group sync of a hashed directory (queue/): entries created or renamed into one of its leaves
 * become durable with an fsync of that leaf and of the directory itself (which holds the leaves,
 * made when first needed). While one round of syncs runs, new waiters gather, and the next round
 * covers all of them, each leaf once, so concurrent messages do not queue behind one sync each.
 */
#ifndef SLUICE_SPOOL_DIRSYNC_H
#define SLUICE_SPOOL_DIRSYNC_H

#include <uv.h>

struct spool_dirsync_waiter {
    struct spool_dirsync_waiter *next;
    const char *entry; /* the entry to make durable, a spool_layout_name; kept until done runs */
    /* Runs on the loop once a round started after spool_dirsync_add returned: 0 or -errno. */
    void (*done)(struct spool_dirsync_waiter *w, int status);
};

struct spool_dirsync {
    uv_loop_t *loop;
    int fd; /* the directory, opened O_RDONLY */
    uv_work_t work;
    int busy;
    int status;                           /* of the round in flight, set on the thread pool */
    struct spool_dirsync_waiter *batch;   /* covered by the round in flight */
    struct spool_dirsync_waiter *waiting; /* for the next one */
    struct spool_dirsync_waiter **tail;   /* where the next waiter is linked */
};

void spool_dirsync_init(struct spool_dirsync *ds, uv_loop_t *loop, int fd);
void spool_dirsync_add(struct spool_dirsync *ds, struct spool_dirsync_waiter *w);

#endif
