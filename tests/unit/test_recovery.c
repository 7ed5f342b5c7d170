/*
 * Recovery: a backoff holds the limits at its set for its duration; a throttle halves the way back
 * (from full: to half the connections and half the rate); each clean interval after that wins
 * back one step of recovery_step_percent, never more than one per interval, so the limits climb
 * stepwise and never snap back to full; a throttle on the way halves the level again.
 */
#include <string.h>

#include "mta/delivery/recovery.h"
#include "tests/unit/check.h"

static struct config_shaping shaping(void)
{
    struct config_shaping sh;
    memset(&sh, 0, sizeof sh);
    sh.connections = 9;
    sh.messages_per_connection = 100;
    sh.recipients_per_connection = 500;
    sh.rate = (struct config_rate){21, 1000};
    sh.recovery_interval_ms = 1000;
    sh.recovery_step_percent = 25;
    return sh;
}

static void test_backoff_then_steps(void)
{
    struct config_shaping sh = shaping();
    struct recovery r;
    struct recovery_limits lim;
    recovery_init(&r);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.connections, 9);
    CHECK_INT_EQ(lim.rate.count, 21);
    CHECK(!recovery_slowed(&r, 0));

    struct config_backoff set = {
        .connections = 1, .messages_per_connection = 10, .rate = {60, 60000}}; /* 1 a second */
    recovery_backoff(&r, &set, 5000);
    CHECK(recovery_slowed(&r, 0));
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.connections, 1);
    CHECK_INT_EQ(lim.messages_per_connection, 10);
    CHECK_INT_EQ(lim.recipients_per_connection, 500); /* 0 in the set: the shaping's own */
    CHECK_INT_EQ(lim.rate.count, 1);
    CHECK_INT_EQ(lim.rate.period_ms, 1000);
    /* Held for the whole backoff, clean or not. */
    CHECK_INT_EQ(recovery_clean(&r, &sh, 4999), 0);
    /* Then one step per interval: 25 %, 50 %, 75 %, full; never two within one interval. */
    unsigned long long rates[5] = {1}, conns[5] = {1};
    uint64_t t = 5000;
    for (int step = 1; step <= 4; step++) {
        CHECK_INT_EQ(recovery_clean(&r, &sh, t), 1);
        CHECK_INT_EQ(recovery_clean(&r, &sh, t + 999), 0);
        recovery_limits(&r, &sh, &lim);
        rates[step] = lim.rate.count;
        conns[step] = lim.connections;
        CHECK(rates[step] > rates[step - 1]);
        CHECK(conns[step] >= conns[step - 1]);
        t += 1000;
    }
    CHECK_INT_EQ(rates[1], 6); /* 1 + 20/4 */
    CHECK_INT_EQ(rates[2], 11);
    CHECK_INT_EQ(rates[3], 16);
    CHECK_INT_EQ(rates[4], 21);
    CHECK_INT_EQ(conns[1], 3); /* 1 + 8/4 */
    CHECK_INT_EQ(conns[4], 9);
    CHECK(!recovery_slowed(&r, t));
    CHECK_INT_EQ(recovery_clean(&r, &sh, t + 5000), 0); /* full: nothing to win back */
}

static void test_throttle(void)
{
    struct config_shaping sh = shaping();
    struct recovery r;
    struct recovery_limits lim;
    recovery_init(&r);
    recovery_throttle(&r, &sh, 100);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(r.level, 500);
    CHECK_INT_EQ(lim.connections, 5); /* 1 + 8/2 */
    CHECK_INT_EQ(lim.rate.count, 11); /* 1 + 20/2 */
    CHECK_INT_EQ(recovery_clean(&r, &sh, 1099), 0);
    CHECK_INT_EQ(recovery_clean(&r, &sh, 1100), 1);
    CHECK_INT_EQ(r.level, 750);
    /* A throttle on the way back halves the level again and restarts the interval. */
    recovery_throttle(&r, &sh, 1500);
    CHECK_INT_EQ(r.level, 375);
    CHECK_INT_EQ(recovery_clean(&r, &sh, 2100), 0);
    CHECK_INT_EQ(recovery_clean(&r, &sh, 2500), 1);
    CHECK_INT_EQ(r.level, 625);
    /* Throttles in a row go down to the floor: one connection, one recipient a period. */
    for (int i = 0; i < 12; i++)
        recovery_throttle(&r, &sh, 3000);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.connections, 1);
    CHECK_INT_EQ(lim.rate.count, 1);
}

static void test_unlimited_rate(void)
{
    struct config_shaping sh = shaping();
    sh.rate = (struct config_rate){0, 0}; /* none */
    struct recovery r;
    struct recovery_limits lim;
    recovery_init(&r);
    struct config_backoff set = {.connections = 2, .rate = {2, 1000}};
    recovery_backoff(&r, &set, 0);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.rate.count, 2);
    CHECK_INT_EQ(recovery_clean(&r, &sh, 0), 1);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.rate.count, 6); /* 2 + 18/4: towards ten times the floor */
    for (uint64_t t = 1000; t <= 3000; t += 1000)
        recovery_clean(&r, &sh, t);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.rate.count, 0); /* full: lifted */
    /* A throttle without a rate to halve keeps the rate unlimited, the connections halved. */
    recovery_throttle(&r, &sh, 5000);
    recovery_limits(&r, &sh, &lim);
    CHECK_INT_EQ(lim.rate.count, 0);
    CHECK_INT_EQ(lim.connections, 5);
}

int main(void)
{
    test_backoff_then_steps();
    test_throttle();
    test_unlimited_rate();
    return check_report("test_recovery");
}
