#include "spool/spool_dirsync.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/uvutil.h"
#include "spool/spool_fs.h"
#include "spool/spool_layout.h"

static void dirsync_work(uv_work_t *work);
static void dirsync_on_done(uv_work_t *work, int status);

void spool_dirsync_init(struct spool_dirsync *ds, uv_loop_t *loop, int fd)
{
    ds->loop = loop;
    ds->fd = fd;
    ds->busy = 0;
    ds->batch = ds->waiting = NULL;
    ds->tail = &ds->waiting;
}

static void dirsync_start(struct spool_dirsync *ds)
{
    ds->batch = ds->waiting;
    ds->waiting = NULL;
    ds->tail = &ds->waiting;
    ds->busy = 1;
    spool_fs_started(uv_queue_work(ds->loop, &ds->work, dirsync_work, dirsync_on_done), "work");
}

void spool_dirsync_add(struct spool_dirsync *ds, struct spool_dirsync_waiter *w)
{
    w->next = NULL;
    *ds->tail = w;
    ds->tail = &w->next;
    if (!ds->busy)
        dirsync_start(ds);
}

/* 1 when a waiter before w in the batch has w's leaf (synced once for both). */
static int leaf_seen(const struct spool_dirsync_waiter *batch, const struct spool_dirsync_waiter *w)
{
    for (; batch != w; batch = batch->next)
        if (strncmp(batch->entry, w->entry, SPOOL_LEAF_LEN) == 0)
            return 1;
    return 0;
}

/* On the thread pool: each leaf of the batch, then the directory. */
static void dirsync_work(uv_work_t *work)
{
    struct spool_dirsync *ds = container_of(work, struct spool_dirsync, work);
    ds->status = 0;
    for (struct spool_dirsync_waiter *w = ds->batch; w != NULL && ds->status == 0; w = w->next)
        if (!leaf_seen(ds->batch, w))
            ds->status = spool_layout_leaf_sync(ds->fd, w->entry);
    if (ds->status == 0 && fsync(ds->fd) < 0)
        ds->status = -errno;
}

static void dirsync_on_done(uv_work_t *work, int status)
{
    struct spool_dirsync *ds = container_of(work, struct spool_dirsync, work);
    status = ds->status;
    struct spool_dirsync_waiter *batch = ds->batch;
    ds->batch = NULL;
    ds->busy = 0;
    if (ds->waiting != NULL)
        dirsync_start(ds); /* added while this round ran: not covered by it */
    while (batch != NULL) {
        struct spool_dirsync_waiter *next = batch->next;
        batch->done(batch, status);
        batch = next;
    }
}
