/*
 * IP warm-up: days at a UTC offset roll at that offset's midnight; the schedule's day 1 is its
 * start date (and any day before it), each later day takes the next allowance and after the last
 * one the address is warm; a provider's own entry wins over "*"; the configuration's dates and
 * offsets parse as written; counts taken are on disk once the thread pool has written them, and
 * a new set of counts over the same directory knows them (the allowance stays used).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/config_int.h"
#include "mta/delivery/warmup.h"
#include "tests/unit/check.h"

#define DAY_MS (24 * 3600 * 1000LL)
#define HOUR_MS (3600 * 1000LL)

static void test_days(void)
{
    int64_t dec4;
    CHECK(config_parse_date("2026-12-04", &dec4));
    CHECK_INT_EQ(dec4, 20791);
    int64_t epoch, leap;
    CHECK(config_parse_date("1970-01-01", &epoch));
    CHECK_INT_EQ(epoch, 0);
    CHECK(config_parse_date("2028-02-29", &leap));
    CHECK(!config_parse_date("2026-02-29", &leap));
    CHECK(!config_parse_date("2026-13-01", &leap));
    CHECK(!config_parse_date("2026-1-01", &leap));

    int64_t midnight = dec4 * DAY_MS;
    CHECK_INT_EQ(warmup_day(midnight, 0), dec4);
    CHECK_INT_EQ(warmup_day(midnight - 1, 0), dec4 - 1);
    CHECK_INT_EQ(warmup_ms_to_next_day(midnight, 0), DAY_MS);
    CHECK_INT_EQ(warmup_ms_to_next_day(midnight + 23 * HOUR_MS, 0), HOUR_MS);
    /* At +02:00 the day began two hours before UTC midnight; at -05:00 five hours after it. */
    CHECK_INT_EQ(warmup_day(midnight - 2 * HOUR_MS, 120), dec4);
    CHECK_INT_EQ(warmup_day(midnight - 2 * HOUR_MS - 1, 120), dec4 - 1);
    CHECK_INT_EQ(warmup_day(midnight + 4 * HOUR_MS, -300), dec4 - 1);
    CHECK_INT_EQ(warmup_day(midnight + 5 * HOUR_MS, -300), dec4);
    CHECK_INT_EQ(warmup_ms_to_next_day(midnight, -300), 5 * HOUR_MS);

    int minutes;
    CHECK(config_parse_utc_offset("+02:00", &minutes));
    CHECK_INT_EQ(minutes, 120);
    CHECK(config_parse_utc_offset("-05:30", &minutes));
    CHECK_INT_EQ(minutes, -330);
    CHECK(!config_parse_utc_offset("2:00", &minutes));
    CHECK(!config_parse_utc_offset("+15:00", &minutes));
}

static void test_schedule(void)
{
    uint64_t per_day[] = {50, 100, 0, 400};
    CHECK_INT_EQ(warmup_day_number(100, 90), 1); /* before the start: day 1 */
    CHECK_INT_EQ(warmup_day_number(100, 100), 1);
    CHECK_INT_EQ(warmup_day_number(100, 102), 3);
    CHECK_INT_EQ(warmup_allowance(per_day, 4, 1), 50);
    CHECK_INT_EQ(warmup_allowance(per_day, 4, 2), 100);
    CHECK_INT_EQ(warmup_allowance(per_day, 4, 3), 0);
    CHECK_INT_EQ(warmup_allowance(per_day, 4, 4), 400);
    CHECK(warmup_allowance(per_day, 4, 5) == UINT64_MAX);

    uint64_t any_days[] = {10}, gmail_days[] = {5};
    struct config_warmup_step steps[] = {
        {.provider = "*", .per_day = any_days, .ndays = 1},
        {.provider = "gmail.com", .per_day = gmail_days, .ndays = 1}};
    struct config_warmup w = {.schedule = steps, .nschedule = 2};
    CHECK(warmup_step_find(&w, "GMail.com") == &steps[1]);
    CHECK(warmup_step_find(&w, "example.org") == &steps[0]);
    w.schedule = &steps[1];
    w.nschedule = 1;
    CHECK(warmup_step_find(&w, "example.org") == NULL);
}

/* Runs the loop until the counts have been read back. */
static void wait_loaded(uv_loop_t *loop, struct warmup_count *c)
{
    for (int i = 0; i < 200 && warmup_wait_ms(c) == 100; i++)
        uv_run(loop, UV_RUN_ONCE);
}

static void test_counts_persist(void)
{
    char dir[] = "/tmp/test_warmup_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint64_t per_day[] = {3};
    struct config_warmup_step step = {.provider = "*", .per_day = per_day, .ndays = 1};
    struct config_egress_addr ea = {.address = "192.0.2.10"};
    ea.warmup.schedule = &step;
    ea.warmup.nschedule = 1;
    ea.warmup.start_day = warmup_day((int64_t)time(NULL) * 1000, 0); /* today: day 1 */

    /* A count of a day that is over, from an earlier run: read, and not written again. */
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, WARMUP_FILE);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("sluice-warmup 1\n192.0.2.99 old.test 5 7\n", f);
        fclose(f);
    }

    struct buf today = BUF_INIT;
    struct warmup *w = warmup_new(&loop, dir);
    struct warmup_count *c = warmup_for(w, &ea, "dest.test");
    wait_loaded(&loop, c);
    CHECK_INT_EQ(warmup_wait_ms(c), 0);
    warmup_take(c);
    warmup_take(c);
    CHECK_INT_EQ(warmup_wait_ms(c), 0);
    warmup_take(c);
    CHECK(warmup_wait_ms(c) > 100); /* until tomorrow */
    CHECK(!warmup_holds_pool(c));   /* overflow: next */
    warmup_describe(c, &today);
    CHECK_STR_EQ(today.data, ",\"warmup\":{\"day\":1,\"allowance\":3,\"used\":3,\"overflow\":"
                             "\"next\",\"loaded\":true}");
    CHECK(warmup_for(w, &ea, "other.test") != c); /* each provider counts apart */
    warmup_free(w);
    uv_run(&loop, UV_RUN_DEFAULT); /* the last write */
    char saved[256] = "";
    f = fopen(path, "r");
    if (f != NULL) {
        saved[fread(saved, 1, sizeof saved - 1, f)] = '\0';
        fclose(f);
    }
    CHECK(strstr(saved, "192.0.2.10 dest.test ") != NULL);
    CHECK(strstr(saved, "old.test") == NULL);

    /* Read back: the allowance stays used; with overflow wait it holds the pool. */
    ea.warmup.overflow = WARMUP_OVERFLOW_WAIT;
    w = warmup_new(&loop, dir);
    c = warmup_for(w, &ea, "dest.test");
    wait_loaded(&loop, c);
    CHECK(warmup_wait_ms(c) > 100);
    CHECK(warmup_holds_pool(c));
    /* Warm after the schedule's last day. */
    ea.warmup.start_day -= 1;
    c = warmup_for(w, &ea, "dest.test");
    CHECK_INT_EQ(warmup_wait_ms(c), 0);
    warmup_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    buf_free(&today);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_days();
    test_schedule();
    test_counts_persist();
    return check_report("test_warmup");
}
