/*
 * The scheduler's queue at a glance (scheduler.h: scheduler_summarize), for `sluice status`, the
 * status API and the metrics. The messages in memory are counted as they change (admitted to msgs,
 * a recipient's status recorded, freed), their oldest arrival is the top of a heap: a request costs
 * nothing per message. The destinations, a few per domain mail goes to, are walked for their
 * counts and top lists at most every SUMMARY_WALK_MS (tens of thousands take milliseconds, and a
 * dashboard may ask many times a second), or at once after an admin operation changed them.
 */
#include <string.h>

#include "mta/delivery/sched_int.h"

/* How old the destinations' part of a summary may be. */
#define SUMMARY_WALK_MS 1000

void sched_count_admit(struct qmsg *m)
{
    struct scheduler *s = m->s;
    for (size_t i = 0; i < m->nrcpts; i++)
        s->rcpts_by_status[m->rcpts[i].status]++;
    minheap_set(&s->arrivals, &m->arrival, (uint64_t)(m->received_ms > 0 ? m->received_ms : 0));
}

void sched_count_drop(struct qmsg *m)
{
    struct scheduler *s = m->s;
    if (m->arrival.index == MINHEAP_NONE)
        return;
    for (size_t i = 0; i < m->nrcpts; i++)
        s->rcpts_by_status[m->rcpts[i].status]--;
    minheap_remove(&s->arrivals, &m->arrival);
}

void sched_count_status(struct qmsg *m, struct rcpt *r, enum spool_rcpt_status st)
{
    if (m->arrival.index != MINHEAP_NONE) {
        m->s->rcpts_by_status[r->status]--;
        m->s->rcpts_by_status[st]++;
    }
    r->status = st;
}

/* Keeps list sorted by queued jobs, most first, at most SCHEDULER_SUMMARY_TOP long. */
static void keep_top(struct dest_summary *list, size_t *n, const struct dest_summary *d)
{
    size_t at = *n;
    while (at > 0 && list[at - 1].queued < d->queued)
        at--;
    if (at == SCHEDULER_SUMMARY_TOP)
        return;
    size_t last = *n < SCHEDULER_SUMMARY_TOP ? *n : SCHEDULER_SUMMARY_TOP - 1;
    memmove(&list[at + 1], &list[at], (last - at) * sizeof *list);
    list[at] = *d;
    if (*n < SCHEDULER_SUMMARY_TOP)
        (*n)++;
}

static void count_dest(const char *key, void *value, void *arg)
{
    (void)key;
    struct scheduler_summary *out = arg;
    struct dest_summary d;
    dest_summarize(value, &d);
    out->destinations++;
    out->conns_out += d.conns;
    out->suspended += d.suspended;
    out->throttled += d.paused > 0;
    out->backing_off += d.backoff > 0;
    if (d.queued > 0 || d.conns > 0)
        keep_top(out->top, &out->ntop, &d);
    if (d.suspended || d.paused > 0 || d.backoff > 0)
        keep_top(out->held, &out->nheld, &d);
}

void sched_summary_stale(struct scheduler *s)
{
    s->dests_walked = 0;
}

void scheduler_summarize(struct scheduler *s, struct scheduler_summary *out)
{
    uint64_t now = uv_now(s->loop);
    if (!s->dests_walked || now - s->dests_walked_ms >= SUMMARY_WALK_MS) {
        memset(&s->dests_summary, 0, sizeof s->dests_summary);
        strmap_each(&s->dests, count_dest, &s->dests_summary);
        s->dests_walked = 1;
        s->dests_walked_ms = now;
    }
    *out = s->dests_summary;
    const struct minheap_node *oldest = minheap_top(&s->arrivals);
    out->oldest_ms = oldest != NULL ? (int64_t)oldest->key : 0;
    out->rcpts_pending = s->rcpts_by_status[SPOOL_RCPT_PENDING];
    out->rcpts_deferred = s->rcpts_by_status[SPOOL_RCPT_DEFERRED];
    out->rcpts_failed = s->rcpts_by_status[SPOOL_RCPT_FAILED];
    out->on_disk = s->waiting.n + s->loading.count;
    out->messages = s->msgs.count + out->on_disk;
}
