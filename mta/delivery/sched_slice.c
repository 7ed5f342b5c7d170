/*
 * Admin work over the whole queue in bounded slices (sched_int.h: struct sched_task): a task does
 * about SCHED_SLICE_ITEMS items per loop turn, driven by one idle handle of the scheduler that runs
 * only while a task is left, so a client's banner or a delivery never waits behind an operator's
 * request on a big queue. Here too: `queue retry all`, the first such task. The scheduler owns the
 * handle; each task is its starter's and is freed by its finish.
 */
#include <stdlib.h>

#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

static void slicer_on_idle(uv_idle_t *h)
{
    struct scheduler *s = h->data;
    /* A finish may start a task: it goes on the head, before what this turn still walks. */
    for (struct sched_task **pp = &s->tasks; *pp != NULL;) {
        struct sched_task *t = *pp;
        int done = t->step(t);
        if (done == SCHED_TASK_PARKED) {
            *pp = t->next;
        } else if (done) {
            *pp = t->next;
            t->finish(t, 0);
        } else {
            pp = &t->next;
        }
    }
    if (s->tasks == NULL)
        uv_idle_stop(h);
}

void sched_slice_init(struct scheduler *s)
{
    uv_idle_init(s->loop, &s->slicer);
    s->slicer.data = s;
}

void sched_task_start(struct scheduler *s, struct sched_task *t)
{
    t->next = s->tasks;
    s->tasks = t;
    uv_idle_start(&s->slicer, slicer_on_idle);
}

void sched_slice_stop(struct scheduler *s)
{
    uv_idle_stop(&s->slicer);
    while (s->tasks != NULL) {
        struct sched_task *t = s->tasks;
        s->tasks = t->next;
        t->finish(t, 1);
    }
}

void sched_slice_close(struct scheduler *s, uv_close_cb cb)
{
    sched_slice_stop(s); /* none left after a stop; a free without one cancels them here */
    uv_close((uv_handle_t *)&s->slicer, cb);
}

/* ---- queue retry all ---- */

struct retry_all {
    struct sched_task task;
    struct scheduler *s;
    size_t pos; /* bucket of s->msgs the next slice starts at */
};

static void retry_on_msg(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    msg_retry_now(value);
}

static int retry_all_step(struct sched_task *t)
{
    struct retry_all *r = container_of(t, struct retry_all, task);
    return strmap_each_from(&r->s->msgs, &r->pos, SCHED_SLICE_ITEMS, retry_on_msg, NULL);
}

static void retry_all_finish(struct sched_task *t, int cancelled)
{
    (void)cancelled; /* a stop: what was not marked keeps its time, as in the spool */
    free(container_of(t, struct retry_all, task));
}

size_t sched_retry_all(struct scheduler *s)
{
    struct retry_all *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->task = (struct sched_task){.step = retry_all_step, .finish = retry_all_finish};
    sched_task_start(s, &r->task);
    return s->msgs.count + sched_active_retry_all(s);
}
