/*
 * Destinations kept while mail for them waits: the scheduler's sweep forgets a destination with
 * nothing to do, but not one where recipients were deferred and are still to be retried, so its
 * state (an admin suspension, a backoff, pauses, reply rule hits) holds for that mail and
 * `queue list --json` and `queue destinations` show it meanwhile. The scheduler keeps, per
 * destination key, the latest next attempt of a recipient deferred there (s->retain); a message
 * deleted or bounced in between only keeps its destination a little longer.
 */
#include <stdlib.h>

#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

/* Kept this much beyond the last retry: the message may still be on its way back from disk. */
#define RETAIN_MARGIN_MS (5 * 60 * 1000)

void sched_retain_deferred(struct scheduler *s, const char *key, int64_t next_ms)
{
    int64_t *until = strmap_get(&s->retain, key);
    if (until == NULL) {
        until = xmalloc(sizeof *until);
        *until = 0;
        strmap_put(&s->retain, key, until);
    }
    if (*until < next_ms + RETAIN_MARGIN_MS)
        *until = next_ms + RETAIN_MARGIN_MS;
}

int sched_retain_holds(const struct scheduler *s, const char *key, int64_t now)
{
    const int64_t *until = strmap_get(&s->retain, key);
    return until != NULL && *until > now;
}

struct prune {
    int64_t now;
    char **keys;
    size_t n;
};

static void collect_over(const char *key, void *value, void *arg)
{
    struct prune *p = arg;
    if (*(int64_t *)value <= p->now)
        p->keys[p->n++] = xstrdup(key);
}

void sched_retain_prune(struct scheduler *s, int64_t now)
{
    struct prune p = {now, xcalloc(s->retain.count + 1, sizeof(char *)), 0};
    strmap_each(&s->retain, collect_over, &p);
    for (size_t i = 0; i < p.n; i++) {
        free(strmap_del(&s->retain, p.keys[i]));
        free(p.keys[i]);
    }
    free(p.keys);
}

void sched_retain_free(struct scheduler *s)
{
    strmap_free_values(&s->retain);
}
