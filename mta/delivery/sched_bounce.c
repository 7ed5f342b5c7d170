/*
 * An administrator bounces queued mail (scheduler.h): one message (`sluice queue bounce ID`, POST
 * /api/v1/queue/bounce?id=ID), or a selection as `queue list` filters it: a destination's, a
 * tenant's, a campaign's (`queue bounce --destination D`, `--tenant T [--campaign C]`). Its jobs
 * waiting at destinations come back and its waiting recipients fail (msg_fail_waiting_at), so each
 * sender gets a DSN. A message waiting on disk beyond the active window is bounced when it is read
 * back, which it is at once (sched_active.c).
 *
 * A selection is a task in slices (sched_slice.c): the ids queued when it starts are noted (the
 * matching messages in memory, marked so none is dispatched meanwhile, and every id of the index,
 * whose entries do not say whose mail they are); then each turn fails a few of those in memory,
 * and those on disk are read on the thread pool, a few at a time, and marked for a bounce at
 * read-back when they match. Mail queued after the start is not touched; recipients on a
 * connection finish. The work in flight is capped (SCHED_BOUNCE_WORK_MAX): a message failed stays
 * one unit until its spool write and its DSN are done, and so does a read that leads to one; at
 * the cap a selection waits, and goes on as units end.
 */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

/* Messages of a selection read from disk at once. */
#define BOUNCE_READS 16
/* Recipients failed per loop turn (a message counts at least one): each message is a spool write
 * on the thread pool, then a DSN built on the loop, so this paces what comes back per turn. */
#define BOUNCE_RCPTS_PER_TURN 512

static int job_of_msg(const struct job *job, const void *arg)
{
    return job->msg == arg;
}

static void dest_return_msg(const char *key, void *value, void *arg)
{
    (void)key;
    dest_return_jobs(value, job_of_msg, arg);
}

/* m's jobs queued at destinations come back (a walk of every queue: for one message). */
static void msg_return_jobs(struct scheduler *s, struct qmsg *m)
{
    size_t busy = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        busy += m->rcpts[i].busy;
    if (busy == 0)
        return;
    strmap_each(&s->dests, dest_return_msg, m);
    strmap_each(&s->retired, dest_return_msg, m);
}

typedef char queue_id[SPOOL_ID_MAX + 1];

struct bounce_sel {
    struct sched_task task;
    struct scheduler *s;
    struct scheduler_list_filter f;
    queue_id *ids; /* the selected messages in memory first, then the index's and those loading */
    size_t n, next;
    size_t reading;              /* reads from disk in flight */
    size_t bounced;              /* messages whose waiting recipients failed in memory */
    size_t marked;               /* messages on disk marked for a bounce at read-back */
    size_t unread;               /* messages on disk that could not be read */
    unsigned running : 1;        /* among the scheduler's tasks */
    unsigned parked : 1;         /* waits for the work in flight to fall below the cap */
    unsigned cancelled : 1;      /* the scheduler stops: freed once no read is in flight */
    struct bounce_sel *next_sel; /* in s->bounce_sels */
};

/* ---- the work in flight ---- */

static void sel_wake(struct scheduler *s);

int sched_bounce_room(const struct scheduler *s)
{
    return s->bounce_work < SCHED_BOUNCE_WORK_MAX;
}

void sched_bounce_work_begin(struct scheduler *s)
{
    if (++s->bounce_work > s->bounce_work_max)
        s->bounce_work_max = s->bounce_work;
}

void sched_bounce_work_end(struct scheduler *s)
{
    s->bounce_work--;
    if (!s->stopping)
        sel_wake(s);
}

/* m's waiting recipients (at domain, NULL: all) fail for an administrator; m counts as work in
 * flight until their writes are done. Returns how many failed. */
static size_t bounce_fail(struct qmsg *m, const char *domain)
{
    size_t n = msg_fail_waiting_at(m, domain, SCHED_ADMIN_BOUNCE);
    if (n > 0 && !m->admin_inflight) {
        m->admin_inflight = 1;
        sched_bounce_work_begin(m->s);
    }
    return n;
}

void sched_bounce_settled(struct qmsg *m)
{
    if (m->admin_inflight && !m->admin_writing && (!m->bouncing || m->bounce_retry_ms != 0))
        sched_bounce_forget(m);
}

void sched_bounce_forget(struct qmsg *m)
{
    if (!m->admin_inflight)
        return;
    m->admin_inflight = 0;
    sched_bounce_work_end(m->s);
}

int scheduler_bounce_message(struct scheduler *s, const char *id, struct buf *out)
{
    struct qmsg *m = strmap_get(&s->msgs, id);
    free(strmap_del(&s->bounce_at, id)); /* all of it now, not one destination's */
    if (m == NULL || m->deleted) {
        int rc = sched_active_bounce(s, id, out);
        if (rc < 0)
            return rc;
    } else {
        msg_return_jobs(s, m);
        bounce_fail(m, NULL);
    }
    struct logrec r;
    log_begin(&r, LOG_WARN, "queue.bounced");
    log_str(&r, "queue_id", id);
    log_end(&r);
    buf_printf(out, "%s bounced\n", id);
    return 0;
}

void sched_bounce_read_back(struct scheduler *s, const char *id, struct qmsg *m)
{
    char *domain = strmap_del(&s->bounce_at, id);
    if (m != NULL && !m->deleted)
        bounce_fail(m, domain);
    free(domain);
}

void sched_bounce_free(struct scheduler *s)
{
    strmap_free_values(&s->bounce_at);
}

/* ---- a selection ---- */

struct sel_read {
    struct bounce_sel *sel;
    queue_id id;
};

static void sel_settle(struct bounce_sel *sel);

/* The domain whose recipients fail, NULL: every waiting one. */
static const char *sel_domain(const struct bounce_sel *sel)
{
    return sel->f.destination[0] ? sel->f.destination : NULL;
}

/* "for D of T, campaign C": the selection in words. */
static void sel_describe(const struct scheduler_list_filter *f, struct buf *out)
{
    if (f->destination[0])
        buf_printf(out, "for %s", f->destination);
    if (f->tenant[0])
        buf_printf(out, "%sof %s", f->destination[0] ? " " : "", f->tenant);
    if (f->campaign[0])
        buf_printf(out, ", campaign %s", f->campaign);
}

/* Its waiting recipients (at the destination) fail; with none, it is scheduled again. Returns how
 * many failed, at least 1. */
static size_t sel_fail(struct bounce_sel *sel, struct qmsg *m)
{
    m->bounce_selected = 0;
    size_t n = bounce_fail(m, sel_domain(sel));
    if (n > 0)
        sel->bounced++;
    else
        msg_settle(m);
    return n > 0 ? n : 1;
}

/* A message of the selection found on disk, which may have been read back meanwhile. */
static void sel_take(struct bounce_sel *sel, const char *id)
{
    struct scheduler *s = sel->s;
    struct qmsg *m = strmap_get(&s->msgs, id);
    if (m != NULL) {
        if (!m->deleted) {
            msg_return_jobs(s, m);
            sel_fail(sel, m);
        }
        return;
    }
    free(strmap_del(&s->bounce_at, id));
    if (sel_domain(sel) != NULL)
        strmap_put(&s->bounce_at, id, xstrdup(sel_domain(sel)));
    sched_active_bounce_mark(s, id);
    sel->marked++;
    sched_active_fill(s);
    scheduler_arm(s);
}

static void sel_on_read(int status, const struct spool_entry *entry, struct buf *body,
                        const char *why, void *arg)
{
    (void)body, (void)why;
    struct sel_read *r = arg;
    struct bounce_sel *sel = r->sel;
    sel->reading--;
    sched_bounce_work_end(sel->s); /* sel_take counts the message itself */
    if (sel->cancelled || sel->s->stopping) {
        sel->cancelled = 1;
    } else if (status == 0) {
        struct qmsg *m = msg_new(sel->s, entry);
        int match = sched_list_matches(m, &sel->f);
        msg_free(m);
        if (match)
            sel_take(sel, r->id);
    } else if (status != -ENOENT) { /* -ENOENT: delivered and removed meanwhile */
        sel->unread++;
    }
    free(r);
    sel_settle(sel);
}

static int sel_step(struct sched_task *t)
{
    struct bounce_sel *sel = container_of(t, struct bounce_sel, task);
    struct scheduler *s = sel->s;
    size_t seen = 0, failed = 0;
    uint64_t start = uv_hrtime();
    while (sel->next < sel->n && seen < SCHED_SLICE_ITEMS && failed < BOUNCE_RCPTS_PER_TURN &&
           sel->reading < BOUNCE_READS && sched_bounce_room(s) &&
           uv_hrtime() - start < SCHED_SLICE_BUDGET_NS) {
        const char *id = sel->ids[sel->next++];
        struct qmsg *m = strmap_get(&s->msgs, id);
        seen++;
        if (m != NULL && m->bounce_selected) {
            failed += sel_fail(sel, m);
        } else if (m != NULL) { /* read back since the start, or in the index too */
            if (!m->deleted && sched_list_matches(m, &sel->f)) {
                msg_return_jobs(s, m);
                failed += sel_fail(sel, m);
            }
        } else {
            struct sel_read *r = xmalloc(sizeof *r);
            r->sel = sel;
            memcpy(r->id, id, sizeof r->id);
            sel->reading++;
            sched_bounce_work_begin(s);
            spool_peek(s->spool, r->id, sel_on_read, r);
        }
    }
    /* Done with this walk once every id is taken, or while reads are at their bound (the last
     * read to come back starts it again), or the work in flight at its cap (work done wakes it). */
    return sel->next >= sel->n || sel->reading >= BOUNCE_READS || !sched_bounce_room(s);
}

static void sel_free(struct bounce_sel *sel)
{
    struct scheduler *s = sel->s;
    if (!sel->cancelled) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "queue.bounce_done");
        log_str(&r, "destination", sel->f.destination);
        log_str(&r, "tenant", sel->f.tenant);
        log_str(&r, "campaign", sel->f.campaign);
        log_int(&r, "in_memory", (long long)sel->bounced);
        log_int(&r, "on_disk", (long long)sel->marked);
        if (sel->unread > 0)
            log_int(&r, "unread", (long long)sel->unread);
        log_end(&r);
    }
    for (struct bounce_sel **pp = &s->bounce_sels; *pp != NULL; pp = &(*pp)->next_sel)
        if (*pp == sel) {
            *pp = sel->next_sel;
            break;
        }
    free(sel->ids);
    free(sel);
    s->loads--;
    scheduler_check_stopped(s);
}

/* After a walk or a read: on again, or freed once all is done. */
static void sel_settle(struct bounce_sel *sel)
{
    if (sel->running)
        return;
    if (sel->cancelled || sel->next >= sel->n) {
        if (sel->reading == 0)
            sel_free(sel);
    } else if (!sched_bounce_room(sel->s)) {
        sel->parked = 1;
    } else if (sel->reading < BOUNCE_READS) {
        sel->running = 1;
        sched_task_start(sel->s, &sel->task);
    }
}

/* Work ended: the selections waiting for room go on from the next turn (not from here: this may
 * run inside one of their callbacks), and read-backs for a bounce may start again. */
static void sel_wake(struct scheduler *s)
{
    for (struct bounce_sel *sel = s->bounce_sels; sel != NULL; sel = sel->next_sel) {
        if (sel->parked && sched_bounce_room(s) && !sel->running) {
            sel->parked = 0;
            sel->running = 1;
            sched_task_start(s, &sel->task);
        }
    }
    scheduler_arm(s);
}

void sched_bounce_stop(struct scheduler *s)
{
    for (struct bounce_sel *sel = s->bounce_sels, *next; sel != NULL; sel = next) {
        next = sel->next_sel;
        if (sel->parked) {
            sel->parked = 0;
            sel->cancelled = 1;
            sel_settle(sel);
        }
    }
}

static void sel_finish(struct sched_task *t, int cancelled)
{
    struct bounce_sel *sel = container_of(t, struct bounce_sel, task);
    sel->running = 0;
    sel->cancelled |= cancelled;
    sel_settle(sel);
}

static void sel_note_memory(const char *key, void *value, void *arg)
{
    struct bounce_sel *sel = arg;
    struct qmsg *m = value;
    if (m->deleted || !sched_list_matches(m, &sel->f))
        return;
    m->bounce_selected = 1;
    minheap_remove(&sel->s->due, &m->due);
    snprintf(sel->ids[sel->n++], sizeof *sel->ids, "%s", key);
}

static void sel_note_loading(const char *key, void *value, void *arg)
{
    (void)value;
    struct bounce_sel *sel = arg;
    snprintf(sel->ids[sel->n++], sizeof *sel->ids, "%s", key);
}

/* A job of a selected message, for the selection's destination. */
static int job_selected(const struct job *job, const void *arg)
{
    const struct bounce_sel *sel = arg;
    return job->msg->bounce_selected &&
           (sel_domain(sel) == NULL || strcasecmp(job->domain, sel_domain(sel)) == 0);
}

static void dest_return_selected(const char *key, void *value, void *arg)
{
    (void)key;
    dest_return_jobs(value, job_selected, arg);
}

int scheduler_bounce_selected(struct scheduler *s, const struct scheduler_list_filter *f,
                              struct buf *out)
{
    if (s->stopping) {
        buf_printf(out, "the daemon is stopping\n");
        return -ECANCELED;
    }
    struct bounce_sel *sel = xcalloc(1, sizeof *sel);
    sel->s = s;
    sel->f = *f;
    sel->f.state[0] = '\0';
    sel->ids = xmalloc((s->msgs.count + s->waiting.n + s->loading.count + 1) * sizeof *sel->ids);
    strmap_each(&s->msgs, sel_note_memory, sel);
    size_t in_memory = sel->n;
    strmap_each(&s->dests, dest_return_selected, sel);
    strmap_each(&s->retired, dest_return_selected, sel);
    for (size_t i = 0; i < s->waiting.n; i++)
        memcpy(sel->ids[sel->n++], s->waiting.v[i].id, sizeof *sel->ids);
    strmap_each(&s->loading, sel_note_loading, sel);
    sel->task = (struct sched_task){.step = sel_step, .finish = sel_finish};
    sel->next_sel = s->bounce_sels;
    s->bounce_sels = sel;
    s->loads++; /* a stop waits for the reads */

    struct buf what = BUF_INIT;
    sel_describe(&sel->f, &what);
    struct logrec r;
    log_begin(&r, LOG_WARN, "queue.bounce_started");
    log_str(&r, "destination", sel->f.destination);
    log_str(&r, "tenant", sel->f.tenant);
    log_str(&r, "campaign", sel->f.campaign);
    log_int(&r, "in_memory", (long long)in_memory);
    log_int(&r, "to_read", (long long)(sel->n - in_memory));
    log_end(&r);
    buf_printf(
        out,
        "bouncing the waiting mail %s: %zu messages in memory, %zu queued ids to check on disk\n",
        what.data, in_memory, sel->n - in_memory);
    buf_free(&what);
    sel_settle(sel);
    return 0;
}
