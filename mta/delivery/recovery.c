/* Slowed limits and their stepwise way back (see recovery.h). */
#include "mta/delivery/recovery.h"

#include <string.h>

/* A rate the shaping leaves unlimited climbs to this many times the floor's before it is lifted. */
#define RECOVERY_UNLIMITED_FACTOR 10u

void recovery_init(struct recovery *r)
{
    memset(r, 0, sizeof *r);
    r->level = RECOVERY_FULL;
}

void recovery_backoff(struct recovery *r, const struct config_backoff *set, uint64_t until)
{
    r->floor = *set;
    r->floor.name = NULL;
    r->level = 0;
    if (until > r->hold_until)
        r->hold_until = until;
    r->next_step_at = r->hold_until;
}

void recovery_throttle(struct recovery *r, const struct config_shaping *sh, uint64_t now)
{
    if (r->level == RECOVERY_FULL) {
        memset(&r->floor, 0, sizeof r->floor);
        r->floor.connections = 1;
        if (sh->rate.count > 0)
            r->floor.rate = (struct config_rate){1, sh->rate.period_ms};
    }
    r->level /= 2;
    if (now + sh->recovery_interval_ms > r->next_step_at)
        r->next_step_at = now + sh->recovery_interval_ms;
}

int recovery_clean(struct recovery *r, const struct config_shaping *sh, uint64_t now)
{
    if (r->level >= RECOVERY_FULL || now < r->hold_until || now < r->next_step_at)
        return 0;
    unsigned step = sh->recovery_step_percent * RECOVERY_FULL / 100;
    r->level = r->level + step >= RECOVERY_FULL ? RECOVERY_FULL : r->level + step;
    r->next_step_at = now + sh->recovery_interval_ms;
    return 1;
}

int recovery_slowed(const struct recovery *r, uint64_t now)
{
    return r->level < RECOVERY_FULL || now < r->hold_until;
}

/* From lo to hi at level; never above hi (a floor above the full value is the full value). */
static uint64_t between(uint64_t lo, uint64_t hi, unsigned level)
{
    if (lo >= hi)
        return hi;
    return lo + (hi - lo) * level / RECOVERY_FULL;
}

/* The floor's value, 0 meaning the full one. */
static unsigned floor_or(unsigned floor, unsigned full)
{
    return floor > 0 ? floor : full;
}

static struct config_rate rate_between(struct config_rate lo, struct config_rate hi, unsigned level)
{
    if (level >= RECOVERY_FULL || lo.count == 0)
        return hi;
    if (hi.count == 0) /* unlimited: climb to ten times the floor, in the floor's period */
        return (struct config_rate){between(lo.count, lo.count * RECOVERY_UNLIMITED_FACTOR, level),
                                    lo.period_ms};
    /* The floor counted in the full rate's period (at least one event). */
    uint64_t lo_count = (lo.count * hi.period_ms + lo.period_ms - 1) / lo.period_ms;
    uint64_t count = between(lo_count > 0 ? lo_count : 1, hi.count, level);
    return (struct config_rate){count > 0 ? count : 1, hi.period_ms};
}

void recovery_limits(const struct recovery *r, const struct config_shaping *sh,
                     struct recovery_limits *out)
{
    unsigned level = r->level;
    out->connections =
        (unsigned)between(floor_or(r->floor.connections, sh->connections), sh->connections, level);
    out->messages_per_connection =
        (unsigned)between(floor_or(r->floor.messages_per_connection, sh->messages_per_connection),
                          sh->messages_per_connection, level);
    out->recipients_per_connection = (unsigned)between(
        floor_or(r->floor.recipients_per_connection, sh->recipients_per_connection),
        sh->recipients_per_connection, level);
    out->rate = rate_between(r->floor.rate, sh->rate, level);
}
