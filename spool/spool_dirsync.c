#include "spool/spool_dirsync.h"

#include "lib/uvutil.h"
#include "spool/spool_fs.h"

static void dirsync_on_done(uv_fs_t *req);

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
    spool_fs_started(uv_fs_fsync(ds->loop, &ds->req, ds->fd, dirsync_on_done), "fsync");
}

void spool_dirsync_add(struct spool_dirsync *ds, struct spool_dirsync_waiter *w)
{
    w->next = NULL;
    *ds->tail = w;
    ds->tail = &w->next;
    if (!ds->busy)
        dirsync_start(ds);
}

static void dirsync_on_done(uv_fs_t *req)
{
    struct spool_dirsync *ds = container_of(req, struct spool_dirsync, req);
    int status = (int)req->result;
    uv_fs_req_cleanup(req);
    struct spool_dirsync_waiter *batch = ds->batch;
    ds->batch = NULL;
    ds->busy = 0;
    if (ds->waiting != NULL)
        dirsync_start(ds); /* added while this sync ran: not covered by it */
    while (batch != NULL) {
        struct spool_dirsync_waiter *next = batch->next;
        batch->done(batch, status);
        batch = next;
    }
}
