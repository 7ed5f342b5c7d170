/*
 * The terminal summary of the status JSON (mta/http/status.h: status_render): each line from its
 * fields, ages written the short way, held-back destinations with what holds them and why, a
 * stopping daemon's missing queue, and JSON that is not an object refused.
 */
#include <errno.h>

#include "mta/http/status.h"
#include "tests/unit/check.h"

static const char status[] =
    "{\"version\":\"1.2.3\",\"hostname\":\"mx1.test\",\"user\":\"sluice\",\"uptime_s\":7530,"
    "\"totals\":{\"received\":10,\"delivered\":8,\"deferred\":3,\"bounced\":1},"
    "\"rates_per_minute\":{\"received\":2.0,\"delivered\":1.6,\"deferred\":0.6,\"bounced\":0.2},"
    "\"rate_minutes\":5,\"connections\":{\"smtp_in\":2,\"http\":1,\"smtp_out\":4},"
    "\"queue\":{\"messages\":3,\"on_disk\":1,\"pending\":1,\"deferred\":2,\"bouncing\":0,"
    "\"destinations\":2,"
    "\"oldest_age_s\":250},"
    "\"top_destinations\":[{\"destination\":\"gmail.com\",\"queued_jobs\":2,\"connections\":1}],"
    "\"held_destinations\":[{\"destination\":\"outlook\",\"queued_jobs\":1,\"connections\":0,"
    "\"suspended\":true,\"suspended_for_s\":665,\"reason\":\"ms-throttle\"},"
    "{\"destination\":\"b.test\",\"queued_jobs\":0,\"connections\":0,\"suspended\":true,"
    "\"suspended_for_s\":null,\"throttled_egress\":1}]}";

static void test_render(void)
{
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(status_render(status, sizeof status - 1, &out), 0);
    buf_append(&out, "", 1);
    CHECK_STR_EQ(out.data,
                 "sluice 1.2.3 on mx1.test, running as sluice, up 2h05m\n"
                 "queue: 3 messages (1 on disk); recipients 1 pending, 2 deferred, 0 bouncing; "
                 "oldest 4m10s\n"
                 "since start: 10 received, 8 delivered, 3 deferred, 1 bounced\n"
                 "per minute, last 5 min: 2.0 received, 1.6 delivered, 0.6 deferred, 0.2 bounced\n"
                 "connections: 2 SMTP in, 4 SMTP out, 1 HTTP\n"
                 "busiest destinations:\n"
                 "  gmail.com                             2 queued   1 conn\n"
                 "held back:\n"
                 "  outlook                               1 queued   0 conn  suspended 11m05s"
                 "  by ms-throttle\n"
                 "  b.test                                0 queued   0 conn  suspended until "
                 "resumed  throttled (1 egress)\n");
    buf_free(&out);
}

static void test_stopping_and_bad(void)
{
    static const char stopping[] = "{\"version\":\"1\",\"hostname\":\"h\",\"user\":\"u\","
                                   "\"uptime_s\":5,\"queue\":null,\"top_destinations\":[],"
                                   "\"held_destinations\":[]}";
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(status_render(stopping, sizeof stopping - 1, &out), 0);
    buf_append(&out, "", 1);
    CHECK(strstr(out.data, "up 5s\nqueue: the daemon is stopping\n") != NULL);
    CHECK(strstr(out.data, "busiest destinations: none\nheld back: none\n") != NULL);
    buf_reset(&out);
    CHECK_INT_EQ(status_render("[1]", 3, &out), -EINVAL);
    CHECK_INT_EQ(status_render("{", 1, &out), -EINVAL);
    buf_free(&out);
}

int main(void)
{
    test_render();
    test_stopping_and_bad();
    return check_report("test_status");
}
