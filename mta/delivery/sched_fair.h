/*
 * Fair share within one destination: the queue of jobs waiting there for a connection, kept as one
 * lane per tenant. The next job comes from the highest priority class that has one (tenants[].
 * priority: transactional, normal, bulk), and within a class from the tenants in turn, one job
 * each, so one tenant's large campaign does not hold back another's mail. Within a lane jobs keep
 * their order. A tenant with rates of its own (tenants[].shaping) sends no faster than them here,
 * its lane skipped until they allow its next job. Owned by its destination (destination.c); the
 * jobs it holds are the scheduler's.
 */
#ifndef SLUICE_SCHED_FAIR_H
#define SLUICE_SCHED_FAIR_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/strmap.h"
#include "mta/delivery/destination.h"

struct fair_lane;

struct fair_queue {
    const struct config *cfg; /* where tenants' priorities are read; outlives the queue */
    struct strmap lanes;      /* tenant ("" for none) -> struct fair_lane, only while it has jobs */
    struct fair_lane *turn[TENANT_PRIORITIES]; /* per class: the lane whose turn is next, in a
                                                  ring of the class's lanes; NULL: none */
    size_t count;                              /* jobs */
    /* Tenants with rates of their own -> struct tenant_rates: what they sent here lately, kept
     * while the queue lives (a lane comes and goes with its jobs). */
    struct strmap rates;
    unsigned margin_percent; /* the destination's rate_margin_percent, for those rates too */
    /* After fair_queue_take_due: when a job that fit but waited for its tenant's rates may go
     * (uv_now ms); UINT64_MAX: none waited for them. */
    uint64_t rate_wake_ms;
};

void fair_queue_init(struct fair_queue *q, const struct config *cfg, unsigned margin_percent);
/* Frees the lanes; the queue must be empty (its jobs taken first). */
void fair_queue_close(struct fair_queue *q);
/* Adds job (its tenant's lane, at the end; with front at the start, as a job that goes next). */
void fair_queue_push(struct fair_queue *q, struct job *job, int front);
/* Takes queued job out of the queue wherever it waits (it expired, say), in constant time: no
 * lane's turn changes, and the other jobs keep their places. */
void fair_queue_remove(struct fair_queue *q, struct job *job);
/* Takes the next job by priority and turn among those fits(job, arg) accepts (fits NULL: any);
 * NULL when none fits. The lane it came from has its turn after the other lanes of its class. */
struct job *fair_queue_take(struct fair_queue *q, int (*fits)(const struct job *, const void *),
                            const void *arg);
/* The same, for sending at now_ms: a tenant's own rates must allow the job (then it is counted
 * against them); rate_wake_ms says when a job that fit but waited for them may go. */
struct job *fair_queue_take_due(struct fair_queue *q, int (*fits)(const struct job *, const void *),
                                const void *arg, uint64_t now_ms);
static inline int fair_queue_empty(const struct fair_queue *q)
{
    return q->count == 0;
}

#endif
