/*
 * Rate limits and retry timing as pure integer arithmetic: the caller passes the clock in
 * (now_ms, monotonic, e.g. uv_now()) and random values in, so results are deterministic. Used by
 * the scheduler for per-(destination, egress IP) shaping; the caller owns every struct here.
 */
#ifndef SLUICE_RATELIMIT_H
#define SLUICE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Bounds of a parsed rate: keep count * period_ms far from overflowing 64 bits. */
#define RATELIMIT_COUNT_MAX 1000000000u
#define RATELIMIT_PERIOD_MAX_MS (7ull * 24 * 3600 * 1000)

/* "count per period"; count 0 means unlimited. */
struct ratelimit_rate {
    uint64_t count;
    uint64_t period_ms;
};

/* Parses "COUNT/PERIOD" where PERIOD is an optional number and a unit s, m, h or d ("6/s",
 * "100/m", "1000/h", "500/10m"), or "none" (unlimited). Returns 0, or -EINVAL with *why set to a
 * static explanation. */
int ratelimit_parse(const char *text, struct ratelimit_rate *rate, const char **why);

/*
 * Token bucket with continuous refill at rate.count tokens per rate.period_ms and room for `burst`
 * tokens. Counted in integer units (one token = period_ms units, refill = count units per ms), so
 * there is no rounding drift.
 *
 * What it guarantees: the takes in any window of one period number at most burst + count - 1.
 * So burst 1 (steady pacing, one take every period/count) never exceeds `count` in any window of
 * one period, which is what "6/s" means to a receiver; burst = count allows up to 2*count - 1 in
 * some window (a full bucket drained, then refilled during the same period).
 *
 * A new bucket starts EMPTY: usage before a restart is lost, and an empty start is what keeps the
 * guarantee above across a restart (the last take before it is at least period/count earlier than
 * the first take after it). RATELIMIT_START_FULL is for tests.
 */
struct ratelimit_bucket {
    struct ratelimit_rate rate;
    uint64_t burst;   /* capacity in tokens, 1..rate.count */
    uint64_t level;   /* units available (one token = rate.period_ms units) */
    uint64_t last_ms; /* time the level was computed at */
};

enum ratelimit_flag {
    RATELIMIT_START_FULL = 1u << 0, /* start with `burst` tokens instead of none */
};

/* Sets up b at time now_ms. burst is clamped to 1..rate.count; unlimited rates ignore it. */
void ratelimit_bucket_init(struct ratelimit_bucket *b, struct ratelimit_rate rate, uint64_t burst,
                           uint64_t now_ms, unsigned flags);
/* Takes n tokens at now_ms if they are available: returns 1 (taken) or 0 (nothing taken). A clock
 * that goes backwards adds nothing until it passes the last time seen again. */
int ratelimit_bucket_take(struct ratelimit_bucket *b, uint64_t n, uint64_t now_ms);
/* Milliseconds from now_ms until n tokens will be available (0: now), assuming no other take;
 * UINT64_MAX when n exceeds the burst and can never be taken at once. Changes nothing. */
uint64_t ratelimit_bucket_wait_ms(const struct ratelimit_bucket *b, uint64_t n, uint64_t now_ms);

/* Retry schedule such as {5m, 10m, 30m, 1h}: the delay before retry number `attempt` (1 for the
 * first retry; 0 counts as 1), the last step repeating forever. 0 for an empty schedule. */
uint64_t ratelimit_retry_delay(const uint64_t *steps_ms, size_t nsteps, unsigned attempt);

/* Exponential backoff: base_ms doubled for each attempt after the first (1-based, 0 counts as 1),
 * capped at cap_ms, then jittered down by up to half using the caller's random value, so the
 * result lies in [ceil(d/2), d] and retries of many peers spread out. */
uint64_t ratelimit_backoff_ms(uint64_t base_ms, uint64_t cap_ms, unsigned attempt, uint32_t random);

#endif
