/*
 * Fair share within one destination (sched_fair.h). A lane is a FIFO of one tenant's jobs linked
 * both ways (job->next, job->lane_prev), each job knowing its lane, so that one can leave from
 * the middle at once (fair_queue_remove); the lanes of a class with jobs form a ring, and
 * turn[class] points at the lane to try first. A lane is freed as it empties, so only tenants with
 * waiting mail cost memory. The rates of a tenant that has its own are kept apart from its lane:
 * they must outlive it, or a tenant whose lane empties after a burst could send a second one inside
 * the same window.
 */
#include "mta/delivery/sched_fair.h"

#include <stdlib.h>

#include "lib/ratewindow.h"
#include "lib/xalloc.h"

struct fair_lane {
    char *tenant;
    int priority;
    unsigned own_rates : 1; /* its tenant has tenants[].shaping rates */
    struct job *head, *tail;
    struct fair_lane *prev, *next; /* the ring of its class */
};

/* A tenant's own rates at this destination (tenants[].shaping), ramped in when first used. */
struct tenant_rates {
    struct ratewindow rcpts, msgs;
};

void fair_queue_init(struct fair_queue *q, const struct config *cfg, unsigned margin_percent)
{
    *q = (struct fair_queue){
        .cfg = cfg,
        .lanes = STRMAP_INIT,
        .rates = STRMAP_INIT,
        .margin_percent = margin_percent,
        .rate_wake_ms = UINT64_MAX,
    };
}

static void rates_free(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    struct tenant_rates *r = value;
    ratewindow_free(&r->rcpts);
    ratewindow_free(&r->msgs);
    free(r);
}

void fair_queue_close(struct fair_queue *q)
{
    strmap_free(&q->lanes);
    strmap_each(&q->rates, rates_free, NULL);
    strmap_free(&q->rates);
}

/* The rates of the tenant of lane l, or NULL when it has none of its own. */
static struct tenant_rates *lane_rates(struct fair_queue *q, const struct fair_lane *l,
                                       uint64_t now_ms)
{
    if (!l->own_rates)
        return NULL;
    struct tenant_rates *r = strmap_get(&q->rates, l->tenant);
    if (r != NULL)
        return r;
    const struct config_tenant *t = config_tenant_find(q->cfg, l->tenant);
    r = xcalloc(1, sizeof *r);
    ratewindow_init(&r->rcpts, (struct ratelimit_rate){t->rate.count, t->rate.period_ms},
                    q->margin_percent, now_ms);
    ratewindow_init(&r->msgs,
                    (struct ratelimit_rate){t->message_rate.count, t->message_rate.period_ms},
                    q->margin_percent, now_ms);
    strmap_put(&q->rates, l->tenant, r);
    return r;
}

static struct fair_lane *lane_get(struct fair_queue *q, const char *tenant)
{
    const char *name = tenant != NULL ? tenant : "";
    struct fair_lane *l = strmap_get(&q->lanes, name);
    if (l != NULL)
        return l;
    const struct config_tenant *t = config_tenant_find(q->cfg, tenant);
    l = xcalloc(1, sizeof *l);
    l->tenant = xstrdup(name);
    l->priority = t != NULL ? t->priority : TENANT_PRIORITY_NORMAL;
    l->own_rates = t != NULL && (t->rate.count > 0 || t->message_rate.count > 0);
    strmap_put(&q->lanes, name, l);
    /* A new lane joins its ring just before the lane whose turn is next: it goes last. */
    struct fair_lane *first = q->turn[l->priority];
    if (first == NULL) {
        l->prev = l->next = l;
        q->turn[l->priority] = l;
    } else {
        l->next = first;
        l->prev = first->prev;
        first->prev->next = l;
        first->prev = l;
    }
    return l;
}

static void lane_free(struct fair_queue *q, struct fair_lane *l)
{
    if (l->next == l) {
        q->turn[l->priority] = NULL;
    } else {
        l->prev->next = l->next;
        l->next->prev = l->prev;
        if (q->turn[l->priority] == l)
            q->turn[l->priority] = l->next;
    }
    strmap_del(&q->lanes, l->tenant);
    free(l->tenant);
    free(l);
}

void fair_queue_push(struct fair_queue *q, struct job *job, int front)
{
    struct fair_lane *l = lane_get(q, job->tenant);
    job->lane = l;
    if (front) {
        job->lane_prev = NULL;
        job->next = l->head;
        if (l->head != NULL)
            l->head->lane_prev = job;
        else
            l->tail = job;
        l->head = job;
    } else {
        job->lane_prev = l->tail;
        job->next = NULL;
        if (l->tail != NULL)
            l->tail->next = job;
        else
            l->head = job;
        l->tail = job;
    }
    q->count++;
}

/* Unlinks job from its lane l, which keeps the order of the others. */
static void lane_unlink(struct fair_lane *l, struct job *job)
{
    if (job->lane_prev != NULL)
        job->lane_prev->next = job->next;
    else
        l->head = job->next;
    if (job->next != NULL)
        job->next->lane_prev = job->lane_prev;
    else
        l->tail = job->lane_prev;
    job->next = job->lane_prev = NULL;
    job->lane = NULL;
}

/* The first job of lane l that fits, unlinked; NULL when none does. With r (the tenant's own
 * rates), it must also be due by them at now_ms, or *wake is lowered to when it will be. */
static struct job *lane_take(struct fair_lane *l, int (*fits)(const struct job *, const void *),
                             const void *arg, struct tenant_rates *r, uint64_t now_ms,
                             uint64_t *wake)
{
    for (struct job *job = l->head; job != NULL; job = job->next) {
        if (fits != NULL && !fits(job, arg))
            continue;
        if (r != NULL) {
            uint64_t wait = ratewindow_wait_n_ms(&r->rcpts, job->nrcpts, now_ms);
            uint64_t wait_msg = ratewindow_wait_ms(&r->msgs, now_ms);
            if (wait_msg > wait)
                wait = wait_msg;
            if (wait > 0) { /* the lane keeps its order: its first fitting job goes first */
                if (now_ms + wait < *wake)
                    *wake = now_ms + wait;
                return NULL;
            }
            ratewindow_take_n(&r->rcpts, job->nrcpts, now_ms);
            ratewindow_take(&r->msgs, now_ms);
        }
        lane_unlink(l, job);
        return job;
    }
    return NULL;
}

/* fair_queue_take, with the tenants' own rates when wake is not NULL. */
static struct job *queue_take(struct fair_queue *q, int (*fits)(const struct job *, const void *),
                              const void *arg, uint64_t now_ms, uint64_t *wake)
{
    for (int c = 0; c < TENANT_PRIORITIES; c++) {
        struct fair_lane *start = q->turn[c], *l = start;
        if (start == NULL)
            continue;
        do {
            struct tenant_rates *r = wake != NULL ? lane_rates(q, l, now_ms) : NULL;
            struct job *job = lane_take(l, fits, arg, r, now_ms, wake);
            if (job != NULL) {
                q->turn[c] = l->next; /* the others' turn before this lane's next */
                if (l->head == NULL)
                    lane_free(q, l);
                q->count--;
                return job;
            }
            l = l->next;
        } while (l != start);
    }
    return NULL;
}

struct job *fair_queue_take(struct fair_queue *q, int (*fits)(const struct job *, const void *),
                            const void *arg)
{
    return queue_take(q, fits, arg, 0, NULL);
}

struct job *fair_queue_take_due(struct fair_queue *q, int (*fits)(const struct job *, const void *),
                                const void *arg, uint64_t now_ms)
{
    q->rate_wake_ms = UINT64_MAX;
    return queue_take(q, fits, arg, now_ms, &q->rate_wake_ms);
}

void fair_queue_remove(struct fair_queue *q, struct job *job)
{
    struct fair_lane *l = job->lane;
    lane_unlink(l, job);
    if (l->head == NULL)
        lane_free(q, l); /* its ring closes up; the turn stays where it was, or passes on */
    q->count--;
}
