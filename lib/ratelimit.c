#include "lib/ratelimit.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Reads decimal digits at *s (at most 10, so no overflow); returns how many were read. */
static size_t digits_parse(const char **s, uint64_t *out)
{
    size_t n = 0;
    *out = 0;
    while (**s >= '0' && **s <= '9' && n < 11) {
        *out = *out * 10 + (uint64_t)(**s - '0');
        (*s)++;
        n++;
    }
    return n;
}

int ratelimit_parse(const char *text, struct ratelimit_rate *rate, const char **why)
{
    if (strcasecmp(text, "none") == 0) {
        rate->count = 0;
        rate->period_ms = 0;
        return 0;
    }
    const char *s = text;
    uint64_t count, mult = 1;
    size_t n = digits_parse(&s, &count);
    if (n == 0 || *s != '/') {
        *why = "expected COUNT/PERIOD (e.g. 6/s, 1000/h) or none";
        return -EINVAL;
    }
    if (n > 10 || count == 0 || count > RATELIMIT_COUNT_MAX) {
        *why = "count must be 1 to 1000000000 (use none for no limit)";
        return -EINVAL;
    }
    s++;
    if (*s >= '0' && *s <= '9') {
        n = digits_parse(&s, &mult);
        if (n > 10 || mult == 0) {
            *why = "period multiplier must be 1 to 9999999999";
            return -EINVAL;
        }
    }
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {{'s', 1000}, {'m', 60 * 1000}, {'h', 3600 * 1000}, {'d', 24 * 3600 * 1000}};
    uint64_t unit_ms = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (s[0] == units[i].unit && s[1] == '\0')
            unit_ms = units[i].ms;
    if (unit_ms == 0) {
        *why = "period unit must be s, m, h or d";
        return -EINVAL;
    }
    if (mult > RATELIMIT_PERIOD_MAX_MS / unit_ms) {
        *why = "period must be at most 7d";
        return -EINVAL;
    }
    rate->count = count;
    rate->period_ms = mult * unit_ms;
    return 0;
}

/* The level the bucket has at time t >= b->last_ms. After a whole period it is full whatever it
 * held (burst <= count), which also bounds elapsed * count below period * count. */
static uint64_t bucket_level_at(const struct ratelimit_bucket *b, uint64_t t)
{
    uint64_t cap = b->burst * b->rate.period_ms;
    uint64_t elapsed = t - b->last_ms;
    if (elapsed >= b->rate.period_ms)
        return cap;
    uint64_t level = b->level + elapsed * b->rate.count;
    return level < cap ? level : cap;
}

void ratelimit_bucket_init(struct ratelimit_bucket *b, struct ratelimit_rate rate, uint64_t burst,
                           uint64_t now_ms, unsigned flags)
{
    b->rate = rate;
    b->burst = burst < 1 ? 1 : burst > rate.count ? rate.count : burst;
    b->last_ms = now_ms;
    b->level = flags & RATELIMIT_START_FULL ? b->burst * rate.period_ms : 0;
}

int ratelimit_bucket_take(struct ratelimit_bucket *b, uint64_t n, uint64_t now_ms)
{
    if (b->rate.count == 0)
        return 1;
    if (now_ms > b->last_ms) {
        b->level = bucket_level_at(b, now_ms);
        b->last_ms = now_ms;
    }
    if (n > b->burst || b->level < n * b->rate.period_ms)
        return 0;
    b->level -= n * b->rate.period_ms;
    return 1;
}

uint64_t ratelimit_bucket_wait_ms(const struct ratelimit_bucket *b, uint64_t n, uint64_t now_ms)
{
    if (b->rate.count == 0)
        return 0;
    if (n > b->burst)
        return UINT64_MAX;
    /* Before last_ms (clock went back) nothing refills; count from there. */
    uint64_t from = now_ms > b->last_ms ? now_ms : b->last_ms;
    uint64_t level = bucket_level_at(b, from), need = n * b->rate.period_ms;
    uint64_t wait = from - now_ms;
    if (level < need)
        wait += (need - level + b->rate.count - 1) / b->rate.count;
    return wait;
}

uint64_t ratelimit_retry_delay(const uint64_t *steps_ms, size_t nsteps, unsigned attempt)
{
    if (nsteps == 0)
        return 0;
    size_t i = attempt <= 1 ? 0 : attempt - 1;
    return steps_ms[i < nsteps ? i : nsteps - 1];
}

uint64_t ratelimit_backoff_ms(uint64_t base_ms, uint64_t cap_ms, unsigned attempt, uint32_t random)
{
    uint64_t d = base_ms < cap_ms ? base_ms : cap_ms;
    if (d == 0)
        return 0;
    /* Double until the cap; comparing with cap/2 first keeps the doubling from overflowing. */
    for (unsigned i = 1; i < attempt && d < cap_ms; i++)
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    return d - random % (d / 2 + 1);
}
