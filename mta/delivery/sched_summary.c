/*
 * The scheduler's queue at a glance (scheduler.h: scheduler_summarize), for `sluice status`, the
 * status API and the metrics: one walk over the messages and the destinations, nothing kept.
 */
#include <string.h>

#include "mta/delivery/sched_int.h"

static void count_msg(const char *key, void *value, void *arg)
{
    (void)key;
    const struct qmsg *m = value;
    struct scheduler_summary *out = arg;
    out->messages++;
    if (out->oldest_ms == 0 || m->received_ms < out->oldest_ms)
        out->oldest_ms = m->received_ms;
    for (size_t i = 0; i < m->nrcpts; i++) {
        enum spool_rcpt_status st = m->rcpts[i].status;
        out->rcpts_pending += st == SPOOL_RCPT_PENDING;
        out->rcpts_deferred += st == SPOOL_RCPT_DEFERRED;
        out->rcpts_failed += st == SPOOL_RCPT_FAILED;
    }
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

void scheduler_summarize(struct scheduler *s, struct scheduler_summary *out)
{
    memset(out, 0, sizeof *out);
    strmap_each(&s->msgs, count_msg, out);
    strmap_each(&s->dests, count_dest, out);
    out->on_disk = s->waiting.n + s->loading.count;
    out->messages += out->on_disk;
}
