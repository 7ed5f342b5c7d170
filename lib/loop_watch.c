/*
 * Turn times (loop_watch.h): a prepare handle runs just before each wait for events, so what the
 * thread's clocks moved between two of its calls is one turn, the wait included: its CPU time
 * (the wait costs none) and the time it sat runnable on the run queue
 * (/proc/thread-self/schedstat), during the work or on waking from the wait. The work's wall time
 * runs from the wait's end, the loop's time that libuv updated then (uv_now, still so in the check
 * handle that runs after the I/O callbacks), to the prepare. libuv's own idle time
 * (UV_METRICS_IDLE_TIME) is not used: in libuv 1.44 it changes how the wait's timeout is
 * counted, and the connection pacing of test_pacing came out uneven with it.
 */
#include "lib/loop_watch.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"

/* The worst of the turns a line sums up, and how many they are. */
struct turn_tally {
    uint64_t logged_ms; /* uv_now of the last line */
    unsigned long count;
    uint64_t cpu_ns, work_ns, runq_ns;
};

struct loop_watch {
    uv_prepare_t prepare;
    uv_check_t check;
    int measured;         /* the fields below hold the last wait's figures */
    int closed;           /* handles closed */
    uint64_t cpu_ns;      /* the thread's CPU time */
    uint64_t runq_ns;     /* time on the run queue so far; 0 without schedstat */
    uint64_t woke_ms;     /* uv_now when the last wait ended; 0: not seen yet */
    int schedstat;        /* /proc/thread-self/schedstat, -1 without */
    struct turn_tally slow, late;
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The second figure of schedstat: ns spent runnable but not running. A read of procfs, which
 * answers from memory. */
static uint64_t thread_runq_ns(int fd)
{
    char text[96];
    ssize_t n = fd >= 0 ? pread(fd, text, sizeof text - 1, 0) : -1;
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *p = text;
    strtoull(p, &p, 10);
    return strtoull(p, NULL, 10);
}

/* Counts a turn in tally; returns 1 when a line is due (the first, then at most one a second). */
static int tally_add(struct turn_tally *t, uint64_t now_ms, uint64_t cpu, uint64_t work,
                     uint64_t runq)
{
    t->count++;
    t->cpu_ns = cpu > t->cpu_ns ? cpu : t->cpu_ns;
    t->work_ns = work > t->work_ns ? work : t->work_ns;
    t->runq_ns = runq > t->runq_ns ? runq : t->runq_ns;
    if (t->logged_ms != 0 && now_ms - t->logged_ms < 1000)
        return 0;
    t->logged_ms = now_ms;
    return 1;
}

static void tally_log(struct turn_tally *t, enum log_level level, const char *event)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_int(&r, "cpu_ms", (long long)(t->cpu_ns / 1000000u));
    log_int(&r, "work_ms", (long long)(t->work_ns / 1000000u));
    log_int(&r, "runq_ms", (long long)(t->runq_ns / 1000000u));
    log_int(&r, "count", (long long)t->count);
    log_end(&r);
    t->count = 0;
    t->cpu_ns = t->work_ns = t->runq_ns = 0;
}

static void watch_on_prepare(uv_prepare_t *h)
{
    struct loop_watch *w = h->data;
    uint64_t cpu = thread_cpu_ns(), runq = thread_runq_ns(w->schedstat);
    uint64_t now_ns = uv_hrtime(), woke_ns = w->woke_ms * 1000000u;
    uint64_t turn_cpu = cpu - w->cpu_ns, turn_runq = runq - w->runq_ns;
    uint64_t turn_work = w->woke_ms != 0 && now_ns > woke_ns ? now_ns - woke_ns : 0;
    int measured = w->measured;
    w->measured = 1;
    w->cpu_ns = cpu, w->runq_ns = runq, w->woke_ms = 0;
    if (!measured)
        return;
    const uint64_t bound = (uint64_t)LOOP_SLOW_TURN_MS * 1000000u;
    uint64_t ms = uv_now(h->loop);
    if (turn_cpu >= bound && tally_add(&w->slow, ms, turn_cpu, turn_work, turn_runq))
        tally_log(&w->slow, LOG_WARN, "loop.slow_turn");
    else if (turn_cpu < bound && (turn_work >= bound || turn_runq >= bound) &&
             tally_add(&w->late, ms, turn_cpu, turn_work, turn_runq))
        tally_log(&w->late, LOG_INFO, "loop.late_turn");
}

static void watch_on_check(uv_check_t *h)
{
    struct loop_watch *w = h->data;
    w->woke_ms = uv_now(h->loop);
}

struct loop_watch *loop_watch_start(uv_loop_t *loop)
{
    struct loop_watch *w = xcalloc(1, sizeof *w);
    w->schedstat = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    uv_prepare_init(loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, watch_on_prepare);
    uv_unref((uv_handle_t *)&w->prepare);
    uv_check_init(loop, &w->check);
    w->check.data = w;
    uv_check_start(&w->check, watch_on_check);
    uv_unref((uv_handle_t *)&w->check);
    return w;
}

static void watch_on_closed(uv_handle_t *h)
{
    struct loop_watch *w = h->data;
    if (++w->closed < 2)
        return;
    if (w->schedstat >= 0)
        close(w->schedstat);
    free(w);
}

void loop_watch_close(struct loop_watch *w)
{
    if (w == NULL)
        return;
    uv_close((uv_handle_t *)&w->prepare, watch_on_closed);
    uv_close((uv_handle_t *)&w->check, watch_on_closed);
}
