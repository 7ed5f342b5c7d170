/*
 * The scheduler's active window, like a queue manager's active queue: msgs holds at most
 * delivery.active_limit messages, and only those due within delivery.active_window; every other
 * queued message waits on disk, known by one entry of the index (queue_index.h: queue id and due
 * time). A message whose next attempt is beyond the window leaves memory once nothing is in flight
 * for it (its state, with that time, is in the spool already); one of the index is read back
 * (spool_load_queued, envelope and states only) when it is due within the window and there is room.
 * After a start the index is filled by the spool's listing on the thread pool, a slice at a time,
 * while the daemon already serves. The index may name a message twice or one removed since: a
 * read-back checks msgs and what is being read, and a message gone is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

/* Read-backs in flight at once, so they do not crowd the thread pool out of commits. */
#define ACTIVE_LOADS_MAX 32
/* Index entries taken per call, so one call holds the loop only briefly. */
#define ACTIVE_FILL_BATCH 256

#define ACTIVE_DELETE 0x100u      /* an admin deleted it while it was read back */
#define ACTIVE_BOUNCE_WORK 0x200u /* read back for an admin bounce: a unit of its work */

struct active_load {
    struct scheduler *s;
    unsigned flags; /* QUEUE_INDEX_RETRY, ACTIVE_DELETE, QUEUE_INDEX_BOUNCE, ACTIVE_BOUNCE_WORK */
    char id[SPOOL_ID_MAX + 1];
};

static void active_on_loaded(int status, const struct spool_entry *entry, struct buf *body,
                             const char *why, void *arg);

static int64_t window_ms(const struct scheduler *s)
{
    return (int64_t)s->cfg->delivery.active_window_ms;
}

int sched_active_room(const struct scheduler *s)
{
    return s->msgs.count + s->loading.count < s->cfg->delivery.active_limit;
}

/* 1 when m waits only for a time: nothing in flight, no DSN or notice owed. */
static int msg_only_waits(const struct qmsg *m)
{
    if (m->holds > 0 || m->bouncing || m->deleted || m->due.index == MINHEAP_NONE)
        return 0;
    for (size_t i = 0; i < m->nrcpts; i++) {
        const struct rcpt *r = &m->rcpts[i];
        if (r->busy || r->relay_notice || r->status == SPOOL_RCPT_FAILED ||
            r->delay_owed > r->delay_warned)
            return 0;
    }
    return 1;
}

int sched_active_evict(struct qmsg *m)
{
    struct scheduler *s = m->s;
    if (!s->started || s->stopping || !msg_only_waits(m) ||
        (int64_t)m->due.key <= wall_ms() + window_ms(s))
        return 0;
    queue_index_push(&s->waiting, m->id, (int64_t)m->due.key, 0);
    minheap_remove(&s->due, &m->due);
    strmap_del(&s->msgs, m->id);
    msg_free(m);
    s->evicted++;
    sched_active_fill(s);
    scheduler_arm(s);
    return 1;
}

int64_t sched_active_fill_at(const struct scheduler *s)
{
    const struct queue_index_entry *top = queue_index_top(&s->waiting);
    if (top == NULL || !sched_active_room(s) || s->loading.count >= ACTIVE_LOADS_MAX ||
        ((top->flags & QUEUE_INDEX_BOUNCE) && !sched_bounce_room(s)))
        return INT64_MAX; /* a removal, an eviction, a read-back or a bounce done arms again */
    return (int64_t)top->due_s * 1000 - window_ms(s);
}

void sched_active_fill(struct scheduler *s)
{
    if (!s->started || s->stopping)
        return;
    int64_t horizon = wall_ms() + window_ms(s);
    for (int n = 0;
         n < ACTIVE_FILL_BATCH && sched_active_room(s) && s->loading.count < ACTIVE_LOADS_MAX;
         n++) {
        const struct queue_index_entry *top = queue_index_top(&s->waiting);
        if (top == NULL || (int64_t)top->due_s * 1000 > horizon)
            break;
        if ((top->flags & QUEUE_INDEX_BOUNCE) && !sched_bounce_room(s))
            break; /* an admin bounce's work is at its cap */
        struct queue_index_entry e;
        queue_index_pop(&s->waiting, &e);
        struct qmsg *m = strmap_get(&s->msgs, e.id);
        struct active_load *ld = strmap_get(&s->loading, e.id);
        if (m != NULL && (e.flags & QUEUE_INDEX_RETRY))
            msg_retry_now(m);
        if (m != NULL && (e.flags & QUEUE_INDEX_BOUNCE))
            sched_bounce_read_back(s, e.id, m); /* read back by an earlier entry meanwhile */
        if (ld != NULL)
            ld->flags |= e.flags;
        if (m != NULL || ld != NULL)
            continue; /* a second entry for a message in memory or on its way */
        ld = xcalloc(1, sizeof *ld);
        ld->s = s;
        ld->flags = e.flags;
        if (e.flags & QUEUE_INDEX_BOUNCE) {
            ld->flags |= ACTIVE_BOUNCE_WORK;
            sched_bounce_work_begin(s);
        }
        memcpy(ld->id, e.id, sizeof ld->id);
        strmap_put(&s->loading, ld->id, ld);
        s->loads++;
        spool_load_queued(s->spool, ld->id, active_on_loaded, ld);
    }
}

static void active_on_loaded(int status, const struct spool_entry *entry, struct buf *body,
                             const char *why, void *arg)
{
    (void)body;
    struct active_load *ld = arg;
    struct scheduler *s = ld->s;
    s->loads--;
    strmap_del(&s->loading, ld->id);
    struct qmsg *m = NULL;
    if (status == -ENOENT) {
        /* delivered and removed since it was indexed: nothing to do */
    } else if (status < 0) {
        log_msg(LOG_ERROR, "delivery.load_failed", "queue id %s cannot be read: %s", ld->id,
                why != NULL ? why : strerror(-status));
    } else if (ld->flags & ACTIVE_DELETE) {
        spool_msg_remove(s->spool, ld->id, NULL, NULL);
    } else if (!s->stopping && strmap_get(&s->msgs, ld->id) == NULL) {
        m = msg_admit(s, entry);
        s->admitted++;
        if (ld->flags & QUEUE_INDEX_RETRY)
            msg_retry_now(m);
    }
    if (ld->flags & ACTIVE_BOUNCE_WORK) /* the bounce counts the message from here on */
        sched_bounce_work_end(s);
    if (ld->flags & QUEUE_INDEX_BOUNCE) /* in memory already, or gone: NULL forgets it */
        sched_bounce_read_back(s, ld->id,
                               m != NULL || s->stopping ? m : strmap_get(&s->msgs, ld->id));
    if (m != NULL)
        msg_settle(m);
    free(ld);
    sched_active_fill(s);
    scheduler_arm(s);
    scheduler_check_stopped(s);
}

/* ---- the listing after a start ---- */

static int active_on_listed(const struct spool_listed *items, size_t n, int done, void *arg)
{
    struct scheduler *s = arg;
    if (s->stopping) {
        s->listing = 0;
        scheduler_check_stopped(s);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "spool.recovered");
        log_str(&r, "queue_id", items[i].id);
        if (items[i].due > 0)
            log_int(&r, "due", (long long)items[i].due);
        log_end(&r);
        if (strmap_get(&s->msgs, items[i].id) == NULL)
            queue_index_push(&s->waiting, items[i].id, items[i].due * 1000, 0);
    }
    s->listed += n;
    if (done) {
        s->listing = 0;
        log_msg(LOG_INFO, "spool.recovery_done", "%zu committed messages in %s", s->listed,
                s->cfg->server.spool);
    }
    sched_active_fill(s);
    scheduler_arm(s);
    return 0;
}

void sched_active_recover(struct scheduler *s)
{
    s->listing = 1;
    spool_list(s->spool, active_on_listed, s);
}

/* ---- admin commands for messages not in memory ---- */

static void flag_loading(const char *key, void *value, void *arg)
{
    (void)key;
    ((struct active_load *)value)->flags |= *(unsigned *)arg;
}

size_t sched_active_retry_all(struct scheduler *s)
{
    unsigned flag = QUEUE_INDEX_RETRY;
    strmap_each(&s->loading, flag_loading, &flag);
    size_t n = s->loading.count + queue_index_retry_all(&s->waiting);
    sched_active_fill(s);
    scheduler_arm(s);
    return n;
}

int sched_active_retry(struct scheduler *s, const char *id, struct buf *out)
{
    struct active_load *ld = strmap_get(&s->loading, id);
    if (ld != NULL)
        ld->flags |= QUEUE_INDEX_RETRY;
    else if (queue_index_retry(&s->waiting, id) == 0) {
        if (!s->listing) {
            buf_printf(out, "no message %s in the queue\n", id);
            return -ENOENT;
        }
        /* Not listed yet: the entry is checked when it is read back. */
        queue_index_push(&s->waiting, id, 0, QUEUE_INDEX_RETRY);
    }
    sched_active_fill(s);
    scheduler_arm(s);
    buf_printf(out, "%s scheduled for delivery now\n", id);
    return 0;
}

int sched_active_delete(struct scheduler *s, const char *id, struct buf *out)
{
    struct active_load *ld = strmap_get(&s->loading, id);
    if (ld != NULL) {
        ld->flags |= ACTIVE_DELETE;
    } else if (queue_index_remove(&s->waiting, id) > 0) {
        spool_msg_remove(s->spool, id, NULL, NULL);
    } else {
        buf_printf(out, "no message %s in the queue%s\n", id,
                   s->listing ? " (the queue is still being listed after the start: try again)"
                              : "");
        return -ENOENT;
    }
    log_msg(LOG_WARN, "queue.deleted", "queue id %s deleted by an administrator (no DSN)", id);
    buf_printf(out, "%s deleted\n", id);
    return 0;
}

int sched_active_bounce(struct scheduler *s, const char *id, struct buf *out)
{
    struct active_load *ld = strmap_get(&s->loading, id);
    if (ld != NULL) {
        ld->flags |= QUEUE_INDEX_BOUNCE;
    } else if (queue_index_remove(&s->waiting, id) > 0 || s->listing) {
        /* due now, so read back first; while listing, a message not seen yet is checked then */
        queue_index_push(&s->waiting, id, 0, QUEUE_INDEX_BOUNCE);
    } else {
        buf_printf(out, "no message %s in the queue\n", id);
        return -ENOENT;
    }
    sched_active_fill(s);
    scheduler_arm(s);
    return 0;
}

void sched_active_bounce_mark(struct scheduler *s, const char *id)
{
    struct active_load *ld = strmap_get(&s->loading, id);
    if (ld != NULL)
        ld->flags |= QUEUE_INDEX_BOUNCE;
    else
        queue_index_push(&s->waiting, id, 0, QUEUE_INDEX_BOUNCE);
}

void sched_active_counters(struct scheduler *s, struct buf *out)
{
    buf_printf(out,
               "\"active\":{\"in_memory\":%zu,\"in_memory_max\":%zu,\"limit\":%u,"
               "\"loading\":%zu,\"on_disk\":%zu,\"evicted\":%llu,\"read_back\":%llu,"
               "\"listing\":%s,\"bounce_work\":%zu,\"bounce_work_max\":%zu}",
               s->msgs.count, s->in_memory_max, s->cfg->delivery.active_limit, s->loading.count,
               s->waiting.n, (unsigned long long)s->evicted, (unsigned long long)s->admitted,
               s->listing ? "true" : "false", s->bounce_work, s->bounce_work_max);
}

void sched_active_free(struct scheduler *s)
{
    queue_index_free(&s->waiting);
    strmap_free(&s->loading); /* empty: every read-back called back before the stop ended */
}
