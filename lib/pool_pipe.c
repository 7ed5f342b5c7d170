/*
 * A byte stream consumed on the thread pool, in order (see pool_pipe.h).
 */
#include "lib/pool_pipe.h"

#include "lib/uvutil.h"

static void pipe_on_work(uv_work_t *req);
static void pipe_on_work_done(uv_work_t *req, int status);

void pool_pipe_init(struct pool_pipe *p, uv_loop_t *loop, const struct pool_pipe_ops *ops)
{
    *p = (struct pool_pipe){.loop = loop, .ops = ops};
}

/* Loop side: hands everything pending to one work item; `last` runs after it when final. */
static void pipe_start(struct pool_pipe *p, int final)
{
    p->batch = p->pending;
    p->pending = (struct buf)BUF_INIT;
    p->final = final;
    p->busy = 1;
    /* Fails only when given no work callback. */
    (void)uv_queue_work(p->loop, &p->work_req, pipe_on_work, pipe_on_work_done);
}

static void pipe_on_work(uv_work_t *req)
{
    struct pool_pipe *p = container_of(req, struct pool_pipe, work_req);

    if (p->batch.len > 0 && !p->enough)
        p->enough = p->ops->consume(p, p->batch.data, p->batch.len);
    if (p->final && p->last != NULL)
        p->last(p);
}

static void pipe_on_work_done(uv_work_t *req, int status)
{
    struct pool_pipe *p = container_of(req, struct pool_pipe, work_req);
    (void)status; /* work is never cancelled */

    p->busy = 0;
    buf_free(&p->batch);
    if (p->closing) {
        p->ops->release(p);
        return;
    }
    if (p->enough) {
        p->discard = 1;
        buf_free(&p->pending);
    }
    if (p->ops->consumed != NULL)
        p->ops->consumed(p);
    if (p->final) {
        pool_pipe_done_cb done = p->done;
        p->final = 0;
        p->last = NULL;
        p->done = NULL;
        done(p);
        return;
    }
    if (p->finishing) {
        pipe_start(p, 1);
        return;
    }
    if (p->pending.len >= POOL_PIPE_BATCH)
        pipe_start(p, 0);
    if (p->writable_cb != NULL && p->pending.len < POOL_PIPE_HIGH_WATER) {
        pool_pipe_writable_cb cb = p->writable_cb;
        p->writable_cb = NULL;
        cb(p->writable_arg);
    }
}

int pool_pipe_write(struct pool_pipe *p, const char *data, size_t len,
                    pool_pipe_writable_cb writable_cb, void *arg)
{
    if (p->discard)
        return 0;
    buf_append(&p->pending, data, len);
    if (!p->busy && p->pending.len >= POOL_PIPE_BATCH)
        pipe_start(p, 0);
    if (p->pending.len < POOL_PIPE_HIGH_WATER)
        return 0;
    p->writable_cb = writable_cb;
    p->writable_arg = arg;
    return 1;
}

void pool_pipe_finish(struct pool_pipe *p, pool_pipe_work_fn last, pool_pipe_done_cb done)
{
    p->finishing = 1;
    p->writable_cb = NULL;
    p->last = last;
    p->done = done;
    if (!p->busy)
        pipe_start(p, 1);
}

void pool_pipe_run(struct pool_pipe *p, pool_pipe_work_fn work, pool_pipe_done_cb done)
{
    p->last = work;
    p->done = done;
    pipe_start(p, 1);
}

void pool_pipe_abort(struct pool_pipe *p)
{
    p->writable_cb = NULL;
    if (p->busy)
        p->closing = 1;
    else
        p->ops->release(p);
}

void pool_pipe_close(struct pool_pipe *p)
{
    buf_free(&p->pending);
    buf_free(&p->batch);
}
