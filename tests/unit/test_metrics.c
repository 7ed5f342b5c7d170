/*
 * The counters and histograms of lib/metrics.h: series found again by their label values, the
 * bound past which every new label set counts as "other", values cut and escaped in the text
 * format, and histogram buckets cumulative with +Inf, _sum and _count.
 */
#include <stdio.h>

#include "lib/metrics.h"
#include "tests/unit/check.h"

static void test_counter_series_and_bound(void)
{
    struct metrics_counter c = {.name = "t_total", .help = "Test.", .labels = {"dest", "result"}};
    const char *a[] = {"a.example", "delivered"}, *b[] = {"b.example", "delivered"};
    metrics_counter_add(&c, a, 1);
    metrics_counter_add(&c, b, 2);
    metrics_counter_add(&c, a, 3);
    CHECK_INT_EQ(c.nseries, 2);
    CHECK_INT_EQ(metrics_counter_total(&c), 6);
    char name[32];
    for (int i = 0; i < METRICS_SERIES_MAX + 5; i++) {
        snprintf(name, sizeof name, "d%d.example", i);
        const char *v[] = {name, "bounced"};
        metrics_counter_add(&c, v, 1);
    }
    CHECK_INT_EQ(c.nseries, METRICS_SERIES_MAX);
    CHECK_INT_EQ(c.other, 7);      /* 2 taken before: 48 new sets fit, 7 do not */
    metrics_counter_add(&c, a, 1); /* a known set still counts as itself */
    CHECK_INT_EQ(c.series[0].count, 5);
    struct buf out = BUF_INIT;
    metrics_counter_render(&c, &out);
    buf_append(&out, "", 1);
    CHECK(strstr(out.data, "# HELP t_total Test.\n# TYPE t_total counter\n") == out.data);
    CHECK(strstr(out.data, "t_total{dest=\"a.example\",result=\"delivered\"} 5\n") != NULL);
    CHECK(strstr(out.data, "t_total{dest=\"other\",result=\"other\"} 7\n") != NULL);
    buf_free(&out);
    metrics_counter_free(&c);
    CHECK_INT_EQ(c.nseries, 0);
}

/* A kept label (a result) keeps its value past the bound: "other" tenants, by result. */
static void test_kept_label_in_other(void)
{
    struct metrics_counter c = {
        .name = "k_total", .help = "K.", .labels = {"tenant", "result"}, .keep_in_other = 1u << 1};
    char name[32];
    for (int i = 0; i < METRICS_SERIES_MAX + 4; i++) {
        snprintf(name, sizeof name, "t%d", i);
        const char *v[] = {name, i % 2 ? "bounced" : "delivered"};
        metrics_counter_add(&c, v, 1);
    }
    char many[METRICS_OTHERS_MAX + 2][16];
    for (int i = 0; i < METRICS_OTHERS_MAX + 2; i++) { /* more kept values than the bound */
        snprintf(many[i], sizeof many[i], "r%d", i);
        const char *v[] = {"late", many[i]};
        metrics_counter_add(&c, v, 10);
    }
    CHECK_INT_EQ(c.nseries, METRICS_SERIES_MAX);
    CHECK_INT_EQ(c.nothers, METRICS_OTHERS_MAX);
    CHECK_INT_EQ(c.other, 40); /* r6 to r9 fit no more */
    CHECK_INT_EQ(metrics_counter_total(&c), METRICS_SERIES_MAX + 4 + 10 * (METRICS_OTHERS_MAX + 2));
    struct buf out = BUF_INIT;
    metrics_counter_render(&c, &out);
    buf_append(&out, "", 1);
    CHECK(strstr(out.data, "k_total{tenant=\"t0\",result=\"delivered\"} 1\n") != NULL);
    CHECK(strstr(out.data, "k_total{tenant=\"other\",result=\"delivered\"} 2\n") != NULL);
    CHECK(strstr(out.data, "k_total{tenant=\"other\",result=\"bounced\"} 2\n") != NULL);
    CHECK(strstr(out.data, "k_total{tenant=\"other\",result=\"r0\"} 10\n") != NULL);
    CHECK(strstr(out.data, "k_total{tenant=\"other\",result=\"other\"} 40\n") != NULL);
    buf_free(&out);
    metrics_counter_free(&c);
    CHECK_INT_EQ(c.nothers, 0);
}

static void test_values_cut_and_escaped(void)
{
    struct metrics_counter c = {.name = "e_total", .help = "E.", .labels = {"v"}};
    char long_value[200];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    const char *odd = "a\"b\\c\nd", *lng = long_value, *none = NULL;
    metrics_counter_add(&c, &odd, 1);
    metrics_counter_add(&c, &lng, 1);
    metrics_counter_add(&c, &none, 1);
    struct buf out = BUF_INIT;
    metrics_counter_render(&c, &out);
    buf_append(&out, "", 1);
    CHECK(strstr(out.data, "e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL);
    CHECK_INT_EQ(strlen(c.series[1].values[0]), METRICS_VALUE_MAX - 1);
    CHECK(strstr(out.data, "e_total{v=\"\"} 1\n") != NULL);
    buf_free(&out);
    metrics_counter_free(&c);
}

static void test_histogram(void)
{
    struct metrics_histogram h = {.name = "h_seconds", .help = "H.", .bounds = {1, 10}};
    metrics_histogram_observe(&h, 0.5);
    metrics_histogram_observe(&h, 1);
    metrics_histogram_observe(&h, 5);
    metrics_histogram_observe(&h, 100);
    struct buf out = BUF_INIT;
    metrics_histogram_render(&h, &out);
    buf_append(&out, "", 1);
    CHECK_STR_EQ(out.data, "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                           "h_seconds_bucket{le=\"1\"} 2\nh_seconds_bucket{le=\"10\"} 3\n"
                           "h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 106.5\n"
                           "h_seconds_count 4\n");
    buf_free(&out);
}

int main(void)
{
    test_counter_series_and_bound();
    test_kept_label_in_other();
    test_values_cut_and_escaped();
    test_histogram();
    return check_report("test_metrics");
}
