/*
 * Turn times (loop_watch.h): a prepare handle runs just before each wait for events, so the
 * thread's CPU time between two of its calls is one turn's work, the wait itself costing none.
 */
#include "lib/loop_watch.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "lib/log.h"
#include "lib/xalloc.h"

struct loop_watch {
    uv_prepare_t prepare;
    uint64_t last_cpu_ns;  /* the thread's CPU time at the last wait; 0: none yet */
    uint64_t logged_ms;    /* uv_now of the last loop.slow_turn line */
    unsigned long unlogged; /* slow turns since that line */
    uint64_t unlogged_max_ns;
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void watch_on_prepare(uv_prepare_t *h)
{
    struct loop_watch *w = h->data;
    uint64_t now = thread_cpu_ns(), turn = now - w->last_cpu_ns;
    int measured = w->last_cpu_ns != 0;
    w->last_cpu_ns = now;
    if (!measured || turn < (uint64_t)LOOP_SLOW_TURN_MS * 1000000u)
        return;
    w->unlogged++;
    if (turn > w->unlogged_max_ns)
        w->unlogged_max_ns = turn;
    uint64_t ms = uv_now(h->loop);
    if (w->logged_ms != 0 && ms - w->logged_ms < 1000)
        return;
    struct logrec r;
    log_begin(&r, LOG_WARN, "loop.slow_turn");
    log_int(&r, "cpu_ms", (long long)(w->unlogged_max_ns / 1000000u));
    log_int(&r, "count", (long long)w->unlogged);
    log_end(&r);
    w->logged_ms = ms;
    w->unlogged = 0;
    w->unlogged_max_ns = 0;
}

struct loop_watch *loop_watch_start(uv_loop_t *loop)
{
    struct loop_watch *w = xcalloc(1, sizeof *w);
    uv_prepare_init(loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, watch_on_prepare);
    uv_unref((uv_handle_t *)&w->prepare);
    return w;
}

static void watch_on_closed(uv_handle_t *h)
{
    free(h->data);
}

void loop_watch_close(struct loop_watch *w)
{
    if (w != NULL)
        uv_close((uv_handle_t *)&w->prepare, watch_on_closed);
}
