/*
 * The status page (mta/http/status_page.h): the status JSON as HTML, each part where the page puts
 * it, and every text that came from the network or the configuration (host name, destination,
 * reason, an alarm's fields, keys as well as values) escaped; a stopping daemon's missing queue,
 * empty lists, and JSON that is not an object refused.
 */
#include <errno.h>

#include "mta/http/status_page.h"
#include "tests/unit/check.h"

static const char status[] =
    "{\"version\":\"1.2.3\",\"hostname\":\"mx<1>.test\",\"user\":\"sluice\",\"uptime_s\":7530,"
    "\"totals\":{\"received\":10,\"delivered\":8,\"deferred\":3,\"bounced\":1},"
    "\"minutes\":[{\"start\":1700000040,\"received\":4,\"delivered\":3,\"deferred\":1,"
    "\"bounced\":0},{\"start\":1700000100,\"received\":6,\"delivered\":5,\"deferred\":2,"
    "\"bounced\":1}],"
    "\"connections\":{\"smtp_in\":2,\"http\":1,\"smtp_out\":4},"
    "\"queue\":{\"messages\":3,\"on_disk\":1,\"pending\":1,\"deferred\":2,\"bouncing\":0,"
    "\"destinations\":2,\"oldest_age_s\":250},"
    "\"top_destinations\":[{\"destination\":\"gmail.com\",\"queued_jobs\":2,\"connections\":1}],"
    "\"held_destinations\":[{\"destination\":\"out&look\",\"queued_jobs\":1,\"connections\":0,"
    "\"suspended\":true,\"suspended_for_s\":665,\"reason\":\"reply rule <b>\\\"x\\\"</b>\"},"
    "{\"destination\":\"b.test\",\"queued_jobs\":0,\"connections\":0,\"suspended\":true,"
    "\"suspended_for_s\":null,\"throttled_egress\":1}],"
    "\"alarms\":[{\"ts\":\"2026-12-04T22:04:53.541Z\",\"level\":\"error\",\"event\":"
    "\"feedback.unrecognized\",\"subject\":\"<script>alert('x')</script>\",\"<k>\":3}]}";

static void check_has(const struct buf *page, const char *want)
{
    CHECK(strstr(page->data, want) != NULL);
    if (strstr(page->data, want) == NULL)
        fprintf(stderr, "  missing: %s\n", want);
}

static void test_render(void)
{
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(status_page_render(status, sizeof status - 1, &out), 0);
    buf_append(&out, "", 1);
    check_has(&out, "<meta http-equiv=\"refresh\" content=\"10\">");
    check_has(&out, "<title>sluice on mx&lt;1&gt;.test</title>");
    check_has(&out, "up <span id=\"uptime\">2h05m</span>");
    check_has(&out, "<td id=\"queue-messages\">3</td><td id=\"queue-on_disk\">1</td>"
                    "<td id=\"queue-pending\">1</td><td id=\"queue-deferred\">2</td>"
                    "<td id=\"queue-bouncing\">0</td><td id=\"queue-oldest\">4m10s</td>");
    check_has(&out, "<tr><td class=\"name\">22:14</td><td>4</td><td>3</td><td>1</td><td>0</td>");
    check_has(&out, "<td class=\"name\">22:15 (so far)</td><td>6</td><td>5</td><td>2</td>"
                    "<td>1</td>");
    check_has(&out, "<td class=\"name\">since start</td><td>10</td><td>8</td><td>3</td>"
                    "<td>1</td>");
    check_has(&out, "Connections: 2 SMTP in, 4 SMTP out, 1 HTTP");
    check_has(&out, "<tr class=\"suspended\"><td class=\"name\">out&amp;look</td><td>1</td>"
                    "<td>0</td><td class=\"name state\">suspended for 11m05s</td>"
                    "<td class=\"text reason\">reply rule &lt;b&gt;&quot;x&quot;&lt;/b&gt;</td>");
    check_has(&out, "<td class=\"name state\">suspended until resumed, throttled (1 egress)</td>");
    check_has(&out, "<table id=\"busiest\">");
    check_has(&out, "<td class=\"name\">gmail.com</td><td>2</td><td>1</td>"
                    "<td class=\"name state\">open</td>");
    check_has(&out, "<td class=\"name event\">feedback.unrecognized</td><td class=\"text\">"
                    "subject=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &lt;k&gt;=3</td>");
    CHECK(strstr(out.data, "<script") == NULL && strstr(out.data, "<b>") == NULL);
    buf_free(&out);
}

static void test_stopping_empty_and_bad(void)
{
    static const char stopping[] = "{\"version\":\"1\",\"hostname\":\"h\",\"user\":\"u\","
                                   "\"uptime_s\":5,\"queue\":null,\"top_destinations\":[],"
                                   "\"held_destinations\":[],\"alarms\":[]}";
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(status_page_render(stopping, sizeof stopping - 1, &out), 0);
    buf_append(&out, "", 1);
    check_has(&out, "<p class=\"none\">The daemon is stopping.</p>");
    check_has(&out, "<p class=\"none\" id=\"held\">None.</p>");
    check_has(&out, "<p class=\"none\" id=\"alarms\">None since the start.</p>");
    check_has(&out, "</body></html>\n");
    buf_reset(&out);
    CHECK_INT_EQ(status_page_render("[1]", 3, &out), -EINVAL);
    CHECK_INT_EQ(status_page_render("{", 1, &out), -EINVAL);
    CHECK_INT_EQ((int)out.len, 0);
    buf_free(&out);
}

int main(void)
{
    test_render();
    test_stopping_empty_and_bad();
    return check_report("test_status_page");
}
