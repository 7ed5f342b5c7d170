/*
 * The sliding-window limiter: a table of event sequences (a burst allowed, the next one refused
 * until the first event left the widened window, a new limiter ramping in), then the guarantee
 * over long simulated runs for assorted rates and margins, logged and spaced: no window of
 * period * (1 + margin) ever holds more than count events, however the caller polls, and the long
 * run still reaches count per widened window; a margin changed on the way keeps the events counted;
 * groups of events taken at once count whole.
 */
#include <stdlib.h>

#include "lib/ratewindow.h"
#include "tests/unit/check.h"

#define TIMES_CAP 400000

/* Most events in any half-open window [t, t + window_ms) of the sorted times. */
static size_t max_in_window(const uint64_t *times, size_t n, uint64_t window_ms)
{
    size_t most = 0;
    for (size_t i = 0, j = 0; j < n; j++) {
        while (times[j] - times[i] >= window_ms)
            i++;
        if (j - i + 1 > most)
            most = j - i + 1;
    }
    return most;
}

struct step {
    uint64_t now;
    int taken;     /* what ratewindow_take returns */
    uint64_t wait; /* ratewindow_wait_ms before the take */
};

static void test_sequences(void)
{
    static const struct {
        const char *name;
        struct ratelimit_rate rate;
        unsigned margin;
        uint64_t start;
        struct step steps[12];
        size_t nsteps;
    } cases[] = {
        /* 6/s with 5 %: a window of 1050 ms; a new limiter ramps in one event per 175 ms. */
        {"ramp-in",
         {6, 1000},
         5,
         0,
         {{0, 0, 175}, {174, 0, 1}, {175, 1, 0}, {175, 0, 175}, {350, 1, 0}, {525, 1, 0}},
         6},
        /* After a quiet spell a burst of 6 goes at once; the 7th waits for the first to leave the
         * 1050 ms window, so a second burst at the window's edge (999 ms on) is refused. */
        {"burst then edge",
         {6, 1000},
         5,
         0,
         {{5000, 1, 0},
          {5000, 1, 0},
          {5000, 1, 0},
          {5000, 1, 0},
          {5000, 1, 0},
          {5000, 1, 0},
          {5000, 0, 1050},
          {5999, 0, 51},
          {6049, 0, 1},
          {6050, 1, 0},
          {6050, 1, 0}},
         11},
        /* Events spread out: each waits only for the one count events before it. */
        {"sliding",
         {3, 1000},
         10,
         0,
         {{2000, 1, 0},
          {2500, 1, 0},
          {2900, 1, 0},
          {3000, 0, 100},
          {3100, 1, 0},
          {3100, 0, 500},
          {3600, 1, 0},
          {3999, 0, 1},
          {4000, 1, 0}},
         9},
        /* Margin 0: the plain period. */
        {"no margin", {2, 1000}, 0, 0, {{3000, 1, 0}, {3000, 1, 0}, {3999, 0, 1}, {4000, 1, 0}}, 4},
        /* The margin of a short period rounds up: 5 % of 10 ms is one ms, not none. */
        {"rounded margin", {1, 10}, 5, 0, {{100, 1, 0}, {110, 0, 1}, {111, 1, 0}}, 3},
        /* Unlimited: always. */
        {"unlimited", {0, 0}, 5, 0, {{0, 1, 0}, {0, 1, 0}, {0, 1, 0}}, 3},
        /* Above the log's size: spaced evenly, 1998 per 1050 ms with a burst of 3 (2000 in any
         * window), starting empty: about two events a millisecond. */
        {"spaced",
         {2000, 1000},
         5,
         0,
         {{0, 0, 1}, {1, 1, 0}, {1, 0, 1}, {2, 1, 0}, {2, 1, 0}, {2, 0, 1}},
         6},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct ratewindow w;
        ratewindow_init(&w, cases[c].rate, cases[c].margin, cases[c].start);
        for (size_t i = 0; i < cases[c].nsteps; i++) {
            const struct step *s = &cases[c].steps[i];
            uint64_t wait = ratewindow_wait_ms(&w, s->now);
            int taken = ratewindow_take(&w, s->now);
            if (wait != s->wait || taken != s->taken)
                fprintf(stderr, "  %s, step %zu at %llu: wait %llu taken %d\n", cases[c].name, i,
                        (unsigned long long)s->now, (unsigned long long)wait, taken);
            CHECK_INT_EQ(wait, s->wait);
            CHECK_INT_EQ(taken, s->taken);
        }
        ratewindow_free(&w);
    }
}

/* Polls w from start for duration_ms, each poll max_step ms or less after the one before (random,
 * seeded) or, with max_step 0, exactly when ratewindow_wait_ms says; records what was taken.
 * At margin_at (0: never) the margin becomes new_margin. */
static size_t simulate(struct ratewindow *w, uint64_t start, uint64_t duration_ms,
                       uint64_t max_step, unsigned seed, uint64_t margin_at, unsigned new_margin,
                       uint64_t *times)
{
    size_t n = 0;
    srandom(seed);
    for (uint64_t t = start; t < start + duration_ms && n < TIMES_CAP;) {
        if (margin_at != 0 && t >= margin_at) {
            ratewindow_set_margin(w, new_margin);
            margin_at = 0;
        }
        if (ratewindow_take(w, t)) {
            times[n++] = t;
            if (random() % 4 != 0)
                continue; /* often a burst: try again at once */
        }
        uint64_t wait = ratewindow_wait_ms(w, t);
        t += max_step == 0 ? (wait > 0 ? wait : 1) : 1 + (uint64_t)random() % max_step;
    }
    return n;
}

static void test_guarantee(void)
{
    static uint64_t times[TIMES_CAP];
    static const struct {
        struct ratelimit_rate rate;
        unsigned margin;
        uint64_t max_step, duration_ms;
    } cases[] = {
        {{6, 1000}, 5, 0, 600000},       {{6, 1000}, 5, 37, 600000},
        {{6, 1000}, 0, 0, 60000},        {{1, 1000}, 5, 300, 120000},
        {{7, 1000}, 20, 3, 60000},       {{100, 60000}, 5, 0, 3600000},
        {{100, 60000}, 5, 900, 3600000}, {{1000, 3600000}, 5, 0, 36000000},
        {{1024, 1000}, 5, 0, 20000},     {{1025, 1000}, 5, 0, 20000},
        {{5000, 1000}, 5, 1, 20000},     {{6, 1000}, 100, 0, 60000},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct ratewindow w;
        uint64_t start = 12345;
        ratewindow_init(&w, cases[c].rate, cases[c].margin, start);
        size_t n =
            simulate(&w, start, cases[c].duration_ms, cases[c].max_step, (unsigned)c, 0, 0, times);
        uint64_t window = w.window_ms, count = cases[c].rate.count;
        size_t most = max_in_window(times, n, window);
        /* The bound, and that it is reached when logged (a burst fills a window; spacing falls
         * short of it by the bucket's burst at most). */
        if (most > count || (count <= RATEWINDOW_LOG_MAX && most != count))
            fprintf(stderr, "  case %zu: %zu in one window of %llu ms\n", c, most,
                    (unsigned long long)window);
        CHECK(most <= count);
        CHECK(count > RATEWINDOW_LOG_MAX || most == count);
        /* Polled on time, the long run is count per widened window within 1 %. */
        if (cases[c].max_step == 0) {
            double per_window = (double)n * (double)window / (double)cases[c].duration_ms;
            if (per_window < 0.99 * (double)count || per_window > 1.01 * (double)count + 1)
                fprintf(stderr, "  case %zu: %.2f per window, not %llu\n", c, per_window,
                        (unsigned long long)count);
            CHECK(per_window >= 0.99 * (double)count && per_window <= 1.01 * (double)count + 1);
        }
        ratewindow_free(&w);
    }
}

/* A margin changed mid-run (a reload) keeps the events counted: no window of the smaller of the
 * two widened windows ever holds more than count, before, across and after the change. */
static void test_margin_change(void)
{
    static uint64_t times[TIMES_CAP];
    const unsigned margins[][2] = {{5, 20}, {20, 5}, {5, 0}, {0, 50}};
    for (size_t c = 0; c < sizeof margins / sizeof margins[0]; c++) {
        struct ratewindow w;
        ratewindow_init(&w, (struct ratelimit_rate){6, 1000}, margins[c][0], 0);
        size_t n = simulate(&w, 0, 30000, 0, 7, 15000, margins[c][1], times);
        unsigned small = margins[c][0] < margins[c][1] ? margins[c][0] : margins[c][1];
        CHECK_INT_EQ(max_in_window(times, n, 1000 + 10 * small), 6);
        CHECK_INT_EQ(w.margin_percent, margins[c][1]);
        ratewindow_free(&w);
    }
    /* Spaced rates too. */
    struct ratewindow w;
    ratewindow_init(&w, (struct ratelimit_rate){2000, 1000}, 0, 0);
    size_t n = simulate(&w, 0, 4000, 0, 3, 2000, 50, times);
    CHECK(max_in_window(times, n, 1000) <= 2000);
    size_t after = 0;
    while (after < n && times[after] < 2000)
        after++;
    CHECK(after > 0 && after < n);
    CHECK(max_in_window(times + after, n - after, 1500) <= 2000);
    ratewindow_free(&w);
    /* Clamped to the largest margin. */
    ratewindow_init(&w, (struct ratelimit_rate){6, 1000}, 1000, 0);
    CHECK_INT_EQ(w.window_ms, 2000);
    ratewindow_free(&w);
}

/* Groups of n at once (a message's recipients) keep the bound: never more than count events in
 * one window, the groups counted whole; a group larger than count waits for a clear window. */
static void test_groups(void)
{
    struct ratewindow w;
    uint64_t now = 1000;
    ratewindow_init(&w, (struct ratelimit_rate){4, 1000}, 0, now);
    CHECK(ratewindow_wait_n_ms(&w, 1, now) > 0); /* ramping in */
    now += 1000;                                 /* the ramp has left the window */
    CHECK_INT_EQ(ratewindow_wait_n_ms(&w, 3, now), 0);
    CHECK_INT_EQ(ratewindow_take_n(&w, 3, now), 1);
    CHECK_INT_EQ(ratewindow_take_n(&w, 2, now + 10), 0); /* 5 in one window */
    CHECK_INT_EQ(ratewindow_wait_n_ms(&w, 2, now + 10), 990);
    CHECK_INT_EQ(ratewindow_take_n(&w, 1, now + 10), 1);
    CHECK_INT_EQ(ratewindow_take_n(&w, 9, now + 999), 0);
    CHECK_INT_EQ(ratewindow_take_n(&w, 9, now + 1010), 1); /* counted as 4: the window was clear */
    CHECK_INT_EQ(ratewindow_wait_n_ms(&w, 1, now + 1010), 1000);
    ratewindow_free(&w);

    ratewindow_init(&w, (struct ratelimit_rate){5000, 1000}, 0, now); /* spaced */
    now += 10000;
    CHECK_INT_EQ(ratewindow_take_n(&w, 100000, now), 1); /* counted as the burst */
    CHECK(ratewindow_wait_n_ms(&w, 1, now) > 0);
    ratewindow_free(&w);
}

int main(void)
{
    test_groups();
    test_sequences();
    test_guarantee();
    test_margin_change();
    return check_report("test_ratewindow");
}
