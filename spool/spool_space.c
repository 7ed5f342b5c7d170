/*
 * The spool's free space, taken with uv_fs_statfs (statfs(2) on the thread pool: a slow or hung
 * disk must not stall the loop). One statfs at a time; a repeating timer and the written-octets
 * count start them, and readers only ever see the cached figure.
 */
#include "spool/spool_space.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

struct spool_space {
    uv_loop_t *loop;
    char *dir;
    uv_timer_t timer;                 /* repeats every SPOOL_SPACE_INTERVAL_MS */
    uv_fs_t req;                      /* the statfs in flight, when busy */
    int status;                       /* 0 while figure holds, else the last statfs error */
    struct spool_space_figure figure; /* as statfs gave it */
    uint64_t written;                 /* octets noted since the figure's statfs started */
    uint64_t written_meanwhile;       /* ... and since the one in flight started */
    unsigned busy : 1;                /* a statfs is in flight */
    unsigned closing : 1;             /* spool_space_free was called */
    unsigned timer_closed : 1;
};

static void space_on_timer(uv_timer_t *t);
static void space_on_statfs(uv_fs_t *req);
static void space_on_timer_closed(uv_handle_t *h);

/* Takes the result of a statfs (req->result, req->ptr). The octets noted while it ran may be
 * missing from it, so they stay counted against it. */
static void space_take(struct spool_space *sp, const uv_fs_t *req)
{
    int status = req->result < 0 ? (int)req->result : 0;
    if (status < 0 && status != sp->status)
        log_msg(LOG_WARN, "spool.statfs_failed",
                "%s: %s: free space unknown, MAIL is not checked against it", sp->dir,
                uv_strerror(status));
    sp->status = status;
    if (status < 0)
        return;
    const uv_statfs_t *st = req->ptr;
    sp->figure.available = st->f_bavail * st->f_bsize;
    sp->figure.total = st->f_blocks * st->f_bsize;
    sp->written = sp->written_meanwhile;
}

struct spool_space *spool_space_new(uv_loop_t *loop, const char *dir)
{
    struct spool_space *sp = xcalloc(1, sizeof *sp);
    sp->loop = loop;
    sp->dir = xstrdup(dir);
    sp->status = -EAGAIN;
    uv_fs_statfs(loop, &sp->req, sp->dir, NULL); /* synchronous: the loop is not running yet */
    space_take(sp, &sp->req);
    uv_fs_req_cleanup(&sp->req);
    uv_timer_init(loop, &sp->timer);
    uv_timer_start(&sp->timer, space_on_timer, SPOOL_SPACE_INTERVAL_MS, SPOOL_SPACE_INTERVAL_MS);
    return sp;
}

int spool_space_get(const struct spool_space *sp, struct spool_space_figure *out)
{
    if (sp->status < 0)
        return sp->status;
    out->total = sp->figure.total;
    out->available = sp->figure.available > sp->written ? sp->figure.available - sp->written : 0;
    return 0;
}

void spool_space_written(struct spool_space *sp, uint64_t octets)
{
    sp->written += octets;
    if (sp->busy)
        sp->written_meanwhile += octets;
    else if (sp->written >= SPOOL_SPACE_REFRESH_BYTES)
        spool_space_refresh(sp);
}

void spool_space_refresh(struct spool_space *sp)
{
    if (sp->busy || sp->closing)
        return;
    int rc = uv_fs_statfs(sp->loop, &sp->req, sp->dir, space_on_statfs);
    if (rc < 0) { /* no callback follows */
        uv_fs_t failed = {.result = rc};
        space_take(sp, &failed);
        return;
    }
    sp->busy = 1;
    sp->written_meanwhile = 0;
}

static void space_on_timer(uv_timer_t *t)
{
    spool_space_refresh(container_of(t, struct spool_space, timer));
}

/* Frees sp once neither the timer nor a statfs can call back any more. */
static void space_release(struct spool_space *sp)
{
    if (!sp->timer_closed || sp->busy)
        return;
    free(sp->dir);
    free(sp);
}

static void space_on_statfs(uv_fs_t *req)
{
    struct spool_space *sp = container_of(req, struct spool_space, req);
    sp->busy = 0;
    if (!sp->closing)
        space_take(sp, req);
    uv_fs_req_cleanup(req);
    if (sp->closing)
        space_release(sp);
}

static void space_on_timer_closed(uv_handle_t *h)
{
    struct spool_space *sp = container_of((uv_timer_t *)h, struct spool_space, timer);
    sp->timer_closed = 1;
    space_release(sp);
}

void spool_space_free(struct spool_space *sp)
{
    if (sp == NULL)
        return;
    sp->closing = 1;
    uv_close((uv_handle_t *)&sp->timer, space_on_timer_closed);
}
