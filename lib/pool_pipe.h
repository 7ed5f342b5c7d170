/*
 * A byte stream consumed on libuv's thread pool, in order. The loop only appends bytes to a buffer;
 * every POOL_PIPE_BATCH bytes one work item hands them to the consumer, and at most one work item
 * per pipe is in flight, which keeps the order without locks. Writers are asked to pause while too
 * much waits. Used by DKIM signing and verification, whose hashing would stall the loop.
 *
 * The pipe is embedded in its owner (container_of recovers it in the callbacks).
 */
#ifndef SLUICE_POOL_PIPE_H
#define SLUICE_POOL_PIPE_H

#include <stddef.h>

#include <uv.h>

#include "lib/buf.h"

#define POOL_PIPE_BATCH (64 * 1024)
#define POOL_PIPE_HIGH_WATER (1024 * 1024)

struct pool_pipe;

struct pool_pipe_ops {
    /* Pool thread: the next bytes, in order, one call at a time. Returns 1 when it wants no more
     * (later writes are then dropped on the loop), 0 otherwise. */
    int (*consume)(struct pool_pipe *p, const char *data, size_t len);
    /* Loop thread, may be NULL: a batch was consumed (what consume recorded may now be read). */
    void (*consumed)(struct pool_pipe *p);
    /* Loop thread: the pipe was aborted and no work is in flight any more: free the owner. */
    void (*release)(struct pool_pipe *p);
};

typedef void (*pool_pipe_writable_cb)(void *arg);
typedef void (*pool_pipe_work_fn)(struct pool_pipe *p); /* pool thread */
typedef void (*pool_pipe_done_cb)(struct pool_pipe *p); /* loop thread */

struct pool_pipe {
    uv_loop_t *loop;
    const struct pool_pipe_ops *ops;
    uv_work_t work_req;

    /* Loop side. */
    struct buf pending; /* written, not yet handed to the pool */
    int busy;           /* a work item is in flight */
    int finishing;      /* pool_pipe_finish was called */
    int closing;        /* aborted while busy: release when the work returns */
    int discard;        /* the consumer wants no more bytes: drop writes */
    pool_pipe_writable_cb writable_cb;
    void *writable_arg;
    pool_pipe_work_fn last; /* runs after the final batch (finish) or alone (pool_pipe_run) */
    pool_pipe_done_cb done;

    /* Pool side: the current work item. */
    struct buf batch; /* its bytes */
    int final;        /* it ends the stream: `last` runs after the bytes */
    int enough;       /* consume wants no more bytes */
};

void pool_pipe_init(struct pool_pipe *p, uv_loop_t *loop, const struct pool_pipe_ops *ops);
/* Copies bytes. Returns 1 when the writer should stop until writable_cb(arg) runs (the pool is
 * POOL_PIPE_HIGH_WATER behind), 0 otherwise. writable_cb never runs after finish or abort. */
int pool_pipe_write(struct pool_pipe *p, const char *data, size_t len,
                    pool_pipe_writable_cb writable_cb, void *arg);
/* Ends the stream: the bytes left are consumed, then last(p) runs on the pool (NULL: nothing),
 * then done(p) on the loop. Afterwards the pipe is idle: the owner may pool_pipe_run more work or
 * pool_pipe_close it. */
void pool_pipe_finish(struct pool_pipe *p, pool_pipe_work_fn last, pool_pipe_done_cb done);
/* After finish's done: one more step on the pool (e.g. once DNS answers have arrived), then done
 * on the loop. */
void pool_pipe_run(struct pool_pipe *p, pool_pipe_work_fn work, pool_pipe_done_cb done);
/* Drops the stream: no callback but ops->release runs afterwards, at once when idle, else when
 * the work in flight returns (it cannot be cancelled). */
void pool_pipe_abort(struct pool_pipe *p);
/* Frees the buffers of an idle pipe (before the owner is freed). */
void pool_pipe_close(struct pool_pipe *p);

#endif
