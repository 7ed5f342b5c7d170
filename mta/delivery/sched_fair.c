/*
 * Fair share within one destination (sched_fair.h). A lane is a FIFO of one tenant's jobs linked
 * by job->next; the lanes of a class with jobs form a ring, and turn[class] points at the lane to
 * try first. A lane is freed as it empties, so only tenants with waiting mail cost memory.
 */
#include "mta/delivery/sched_fair.h"

#include <stdlib.h>

#include "lib/xalloc.h"

struct fair_lane {
    char *tenant;
    int priority;
    struct job *head, **tail;
    struct fair_lane *prev, *next; /* the ring of its class */
};

void fair_queue_init(struct fair_queue *q, const struct config *cfg)
{
    *q = (struct fair_queue){.cfg = cfg, .lanes = STRMAP_INIT};
}

void fair_queue_close(struct fair_queue *q)
{
    strmap_free(&q->lanes);
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
    l->tail = &l->head;
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
    if (front) {
        job->next = l->head;
        l->head = job;
        if (l->tail == &l->head)
            l->tail = &job->next;
    } else {
        job->next = NULL;
        *l->tail = job;
        l->tail = &job->next;
    }
    q->count++;
}

/* The first job of lane l that fits, unlinked; NULL when none does. */
static struct job *lane_take(struct fair_lane *l, int (*fits)(const struct job *, const void *),
                             const void *arg)
{
    for (struct job **link = &l->head; *link != NULL; link = &(*link)->next) {
        struct job *job = *link;
        if (fits != NULL && !fits(job, arg))
            continue;
        *link = job->next;
        if (l->tail == &job->next)
            l->tail = link;
        job->next = NULL;
        return job;
    }
    return NULL;
}

struct job *fair_queue_take(struct fair_queue *q, int (*fits)(const struct job *, const void *),
                            const void *arg)
{
    for (int c = 0; c < TENANT_PRIORITIES; c++) {
        struct fair_lane *start = q->turn[c], *l = start;
        if (start == NULL)
            continue;
        do {
            struct job *job = lane_take(l, fits, arg);
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
