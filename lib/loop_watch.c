/*
 * Turn times (loop_watch.h): a prepare handle runs just before each wait for events, so what the
 * thread's clocks moved between two of its calls is one turn, the wait included: its CPU time
 * (the wait costs none) and the time it sat runnable on the run queue
 * (/proc/thread-self/schedstat), during the work or on waking from the wait. The work's wall time
 * runs from the wait's end, the loop's time that libuv updated then (uv_now, still so in the check
 * handle that runs after the I/O callbacks), to the prepare. libuv's own idle time
 * (UV_METRICS_IDLE_TIME) is not used: in libuv 1.44 it changes how the wait's timeout is
 * counted, and the connection pacing of test_pacing came out uneven with it.
 *
 * schedstat is a read of procfs (about 2 us), too dear for every turn of a busy loop, and the
 * wall time of a turn less its CPU time (its slack: the wait's sleep and the run queue) bounds
 * the run queue wait from above without it. So the file is read only once the slack since the
 * last read reaches RUNQ_READ_SLACK_NS: a loop whose turns follow each other on a CPU of its own
 * reads it almost never, a loop that slept or was kept off a CPU pays one read for a millisecond
 * it lost anyway. The turn that reads is given what schedstat moved since the read before, less
 * the slack of the turns between (what they could have waited): never more than its own wait,
 * and less by under RUNQ_READ_SLACK_NS; a turn that does not read waited under that.
 */
#include "lib/loop_watch.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"

/* The slack since the last read of schedstat that calls for the next one. */
#define RUNQ_READ_SLACK_NS 1000000u

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
    uint64_t prepared_ns; /* uv_hrtime at the last prepare */
    uint64_t runq_ns;     /* time on the run queue at the last read; 0 without schedstat */
    uint64_t slack_ns;    /* wall less CPU time of the turns since that read */
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

/* The run queue wait of a turn that took slack_ns of wall time more than of CPU time (see the
 * top of the file): 0 when the slack since the last read is too small to ask schedstat. */
static uint64_t turn_runq_ns(struct loop_watch *w, uint64_t slack_ns)
{
    if (w->schedstat < 0 || w->slack_ns + slack_ns < RUNQ_READ_SLACK_NS) {
        w->slack_ns += slack_ns;
        return 0;
    }
    uint64_t runq = thread_runq_ns(w->schedstat);
    uint64_t since = runq > w->runq_ns ? runq - w->runq_ns : 0;
    uint64_t turn = since > w->slack_ns ? since - w->slack_ns : 0;
    w->runq_ns = runq, w->slack_ns = 0;
    return turn < slack_ns ? turn : slack_ns;
}

static void watch_on_prepare(uv_prepare_t *h)
{
    struct loop_watch *w = h->data;
    uint64_t cpu = thread_cpu_ns(), now_ns = uv_hrtime(), woke_ns = w->woke_ms * 1000000u;
    uint64_t turn_cpu = cpu - w->cpu_ns, turn_wall = now_ns - w->prepared_ns;
    uint64_t turn_work = w->woke_ms != 0 && now_ns > woke_ns ? now_ns - woke_ns : 0;
    int measured = w->measured;
    w->measured = 1;
    w->cpu_ns = cpu, w->prepared_ns = now_ns, w->woke_ms = 0;
    if (!measured) {
        w->runq_ns = thread_runq_ns(w->schedstat);
        return;
    }
    uint64_t turn_runq = turn_runq_ns(w, turn_wall > turn_cpu ? turn_wall - turn_cpu : 0);
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
