#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ratelimit.h"
#include "tests/unit/check.h"

#define MIN_MS (60ull * 1000)
#define HOUR_MS (60 * MIN_MS)

static void test_parse(void)
{
    const struct {
        const char *text;
        int rc;
        uint64_t count, period_ms;
    } cases[] = {
        {"6/s", 0, 6, 1000},
        {"100/m", 0, 100, MIN_MS},
        {"1000/h", 0, 1000, HOUR_MS},
        {"500/10m", 0, 500, 10 * MIN_MS},
        {"1/d", 0, 1, 24 * HOUR_MS},
        {"1/7d", 0, 1, 7 * 24 * HOUR_MS},
        {"1000000000/s", 0, 1000000000, 1000},
        {"none", 0, 0, 0},
        {"NONE", 0, 0, 0},
        {"", -EINVAL, 0, 0},
        {"6", -EINVAL, 0, 0},
        {"6/", -EINVAL, 0, 0},
        {"/s", -EINVAL, 0, 0},
        {"0/s", -EINVAL, 0, 0},
        {"-1/s", -EINVAL, 0, 0},
        {"6/x", -EINVAL, 0, 0},
        {"6/ss", -EINVAL, 0, 0},
        {"6/S", -EINVAL, 0, 0},
        {"6/s ", -EINVAL, 0, 0},
        {" 6/s", -EINVAL, 0, 0},
        {"6/0s", -EINVAL, 0, 0},
        {"6/1.5s", -EINVAL, 0, 0},
        {"1/8d", -EINVAL, 0, 0},
        {"1/99999999999d", -EINVAL, 0, 0},
        {"1000000001/s", -EINVAL, 0, 0},
        {"99999999999999999999/s", -EINVAL, 0, 0},
        {"nonesuch", -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ratelimit_rate r = {12345, 12345};
        const char *why = NULL;
        int rc = ratelimit_parse(cases[i].text, &r, &why);
        CHECK_INT_EQ(rc, cases[i].rc);
        if (rc != cases[i].rc)
            fprintf(stderr, "  for \"%s\"\n", cases[i].text);
        if (cases[i].rc == 0) {
            CHECK_INT_EQ(r.count, cases[i].count);
            CHECK_INT_EQ(r.period_ms, cases[i].period_ms);
        } else {
            CHECK(why != NULL && why[0] != '\0');
        }
    }
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A greedy sender: polls the bucket every 1..max_step ms (1 when max_step is 1) for `duration_ms`
 * and takes as many tokens as it can at each poll. Every `restart_every` ms (0: never) the bucket
 * is made anew, as after a daemon restart. Returns the number of takes; their times go to
 * times[], at most `cap` of them. */
static size_t simulate(struct ratelimit_rate rate, uint64_t burst, unsigned flags,
                       uint64_t max_step, uint64_t duration_ms, uint64_t restart_every,
                       uint64_t *times, size_t cap)
{
    struct ratelimit_bucket b;
    uint64_t t = 1000000; /* not zero: nothing may depend on the clock's origin */
    ratelimit_bucket_init(&b, rate, burst, t, flags);
    uint64_t next_restart = restart_every ? t + restart_every : UINT64_MAX;
    size_t n = 0;
    for (uint64_t end = t + duration_ms; t < end; t += 1 + rng_next() % max_step) {
        if (t >= next_restart) {
            ratelimit_bucket_init(&b, rate, burst, t, flags);
            next_restart += restart_every;
        }
        while (n < cap && ratelimit_bucket_take(&b, 1, t))
            times[n++] = t;
    }
    return n;
}

/* Most takes within any half-open window [x, x + window_ms); times are sorted. */
static size_t max_in_window(const uint64_t *times, size_t n, uint64_t window_ms)
{
    size_t best = 0, lo = 0;
    for (size_t hi = 0; hi < n; hi++) {
        while (times[hi] - times[lo] >= window_ms)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

#define TIMES_CAP 200000
static uint64_t times[TIMES_CAP];

static void test_window(void)
{
    struct ratelimit_rate six = {6, 1000};

    /* The brief's property: "6/s" with burst 1 never exceeds 6 in any 1-s window, polled every
     * millisecond or at random gaps, and still delivers close to the full rate. */
    for (uint64_t step = 1; step <= 40; step += 39) {
        size_t n = simulate(six, 1, 0, step, 60000, 0, times, TIMES_CAP);
        CHECK_INT_EQ(max_in_window(times, n, 1000), 6);
        CHECK(n >= (step == 1 ? 355 : 290) && n <= 360);
    }
    /* The same across restarts: a new bucket starts empty, so usage lost with the old one cannot
     * add to the new one's. */
    size_t n = simulate(six, 1, 0, 1, 60000, 7321, times, TIMES_CAP);
    CHECK_INT_EQ(max_in_window(times, n, 1000), 6);
    n = simulate(six, 1, 0, 25, 60000, 1234, times, TIMES_CAP);
    CHECK(max_in_window(times, n, 1000) <= 6);

    /* Why not start full: a restart just after a take lets the full new bucket add one more. */
    struct ratelimit_bucket b;
    uint64_t t = 5000, last = 0;
    size_t takes = 0;
    ratelimit_bucket_init(&b, six, 1, t, 0);
    for (; takes < 10; t++)
        if (ratelimit_bucket_take(&b, 1, t)) {
            times[takes++] = t;
            last = t;
        }
    ratelimit_bucket_init(&b, six, 1, last + 1, RATELIMIT_START_FULL);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, last + 1), 1);
    times[takes++] = last + 1;
    CHECK_INT_EQ(max_in_window(times, takes, 1000), 7);

    /* burst = count: a full bucket drained, then refilled within the same second, reaches the
     * documented bound burst + count - 1 = 11 (and never more). */
    n = simulate(six, 6, RATELIMIT_START_FULL, 1, 10000, 0, times, TIMES_CAP);
    CHECK_INT_EQ(max_in_window(times, n, 1000), 11);

    /* The bound for assorted rates and bursts, with random polling. */
    const struct {
        struct ratelimit_rate rate;
        uint64_t burst, max_step, duration_ms;
    } cases[] = {
        {{1, 1000}, 1, 300, 120000},
        {{100, MIN_MS}, 1, 1000, 20 * MIN_MS},
        {{100, MIN_MS}, 30, 1000, 20 * MIN_MS},
        {{1000, HOUR_MS}, 1, 5000, 5 * HOUR_MS},
        {{1000, HOUR_MS}, 1000, 5000, 5 * HOUR_MS},
        {{5000, 1000}, 1, 1, 20000},
        {{5000, 1000}, 200, 3, 20000},
        {{7, 3000}, 4, 50, 60000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct ratelimit_rate r = cases[i].rate;
        n = simulate(r, cases[i].burst, 0, cases[i].max_step, cases[i].duration_ms, 0, times,
                     TIMES_CAP);
        size_t most = max_in_window(times, n, r.period_ms);
        size_t bound = cases[i].burst == 1 ? r.count : cases[i].burst + r.count - 1;
        CHECK(most <= bound);
        /* Nor more than the rate over the whole run, nor much less: each take waits at most
         * period/count plus one polling gap. */
        uint64_t periods = cases[i].duration_ms / r.period_ms;
        uint64_t floor_takes =
            cases[i].duration_ms * r.count / (r.period_ms + cases[i].max_step * r.count);
        CHECK(n <= (periods + 1) * r.count + cases[i].burst);
        CHECK(n + 2 >= floor_takes);
        if (most > bound || n + 2 < floor_takes)
            fprintf(stderr, "  case %zu: %zu takes (floor %llu), %zu in one window (bound %zu)\n",
                    i, n, (unsigned long long)floor_takes, most, bound);
    }
}

static void test_bucket(void)
{
    struct ratelimit_rate ten = {10, 1000};
    struct ratelimit_bucket b;

    /* Starts empty: nothing at once, the first token after 100 ms. */
    ratelimit_bucket_init(&b, ten, 10, 0, 0);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 0), 0);
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 1, 0), 100);
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 1, 40), 60);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 99), 0);
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 1, 99), 1); /* 0.99 tokens there */
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 100), 1);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 100), 0);

    /* Several tokens at once; never more than the burst. */
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 5, 100), 500);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 5, 599), 0);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 5, 600), 1);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 11, 100000), 0);
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 11, 100000), UINT64_MAX);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 10, 100000), 1); /* refilled up to the burst only */
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 100000), 0);

    /* A clock going backwards adds nothing, and waiting counts from the last time seen. */
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 50000), 0);
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 1, 99950), 150);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 100099), 0);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 100100), 1);

    /* Burst clamps to 1..count; START_FULL holds the burst. */
    ratelimit_bucket_init(&b, ten, 0, 0, RATELIMIT_START_FULL);
    CHECK_INT_EQ(b.burst, 1);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 0), 1);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 1, 0), 0);
    ratelimit_bucket_init(&b, ten, 50, 0, RATELIMIT_START_FULL);
    CHECK_INT_EQ(b.burst, 10);
    CHECK_INT_EQ(ratelimit_bucket_take(&b, 10, 0), 1);

    /* Unlimited. */
    struct ratelimit_rate none = {0, 0};
    ratelimit_bucket_init(&b, none, 5, 0, 0);
    for (int i = 0; i < 1000; i++)
        CHECK_INT_EQ(ratelimit_bucket_take(&b, 1000000, 7), 1);
    CHECK_INT_EQ(ratelimit_bucket_wait_ms(&b, 1000000, 7), 0);

    /* wait_ms is exact: taking after the wait succeeds, a millisecond earlier fails. */
    struct ratelimit_rate rates[] = {{6, 1000}, {1000, HOUR_MS}, {7, 3000}, {5000, 1000}};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        uint64_t burst = 1 + rng_next() % rates[r].count, now = rng_next() % 100000;
        ratelimit_bucket_init(&b, rates[r], burst, now, 0);
        for (int i = 0; i < 500; i++) {
            now += rng_next() % 2000;
            uint64_t want = 1 + rng_next() % burst;
            uint64_t wait = ratelimit_bucket_wait_ms(&b, want, now);
            if (wait > 0) {
                struct ratelimit_bucket early = b;
                CHECK_INT_EQ(ratelimit_bucket_take(&early, want, now + wait - 1), 0);
            }
            CHECK_INT_EQ(ratelimit_bucket_take(&b, want, now + wait), 1);
            now += wait;
        }
    }
}

static void test_retry(void)
{
    const uint64_t steps[] = {5 * MIN_MS, 10 * MIN_MS, 30 * MIN_MS, HOUR_MS};
    const struct {
        unsigned attempt;
        uint64_t want;
    } cases[] = {
        {0, 5 * MIN_MS}, {1, 5 * MIN_MS}, {2, 10 * MIN_MS}, {3, 30 * MIN_MS},
        {4, HOUR_MS},    {5, HOUR_MS},    {1000, HOUR_MS},  {4294967295u, HOUR_MS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_INT_EQ(ratelimit_retry_delay(steps, 4, cases[i].attempt), cases[i].want);
    CHECK_INT_EQ(ratelimit_retry_delay(steps, 1, 3), 5 * MIN_MS);
    CHECK_INT_EQ(ratelimit_retry_delay(steps, 0, 3), 0);
}

static void test_backoff(void)
{
    /* Without jitter (random 0) the delay doubles up to the cap. */
    const struct {
        uint64_t base, cap;
        unsigned attempt;
        uint64_t want;
    } cases[] = {
        {1000, 60000, 0, 1000},
        {1000, 60000, 1, 1000},
        {1000, 60000, 2, 2000},
        {1000, 60000, 3, 4000},
        {1000, 60000, 6, 32000},
        {1000, 60000, 7, 60000},
        {1000, 60000, 4294967295u, 60000},
        {90000, 60000, 1, 60000},
        {0, 60000, 4294967295u, 0},
        {1, UINT64_MAX, 100, UINT64_MAX},
        {3, UINT64_MAX, 64, UINT64_MAX},
        {3, UINT64_MAX, 63, 3ull << 62},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_INT_EQ(ratelimit_backoff_ms(cases[i].base, cases[i].cap, cases[i].attempt, 0),
                     cases[i].want);

    /* Jitter takes off at most half, and spreads: both ends of the range are reachable. */
    CHECK_INT_EQ(ratelimit_backoff_ms(1000, 60000, 3, 2000), 2000);
    CHECK_INT_EQ(ratelimit_backoff_ms(1001, 60000, 1, 500), 501);
    int saw_low = 0, saw_high = 0, out = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t d = ratelimit_backoff_ms(100, 1000000, 4, (uint32_t)rng_next());
        out += d < 400 || d > 800;
        saw_low += d == 400;
        saw_high += d == 800;
    }
    CHECK_INT_EQ(out, 0);
    CHECK(saw_low > 0 && saw_high > 0);
}

int main(void)
{
    test_parse();
    test_window();
    test_bucket();
    test_retry();
    test_backoff();
    return check_report("test_ratelimit");
}
