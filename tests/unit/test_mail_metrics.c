/*
 * The mail counters (mta/delivery/mail_metrics.h): a batch of results counted once per result
 * under its destination and egress address and under its tenant, a bounce under the category it
 * was recorded with (found once, upstream, not again here), the counts of the minute under way, and the
 * reports that came back to the feedback addresses with the alarms raised.
 */
#include "mta/delivery/bounce_category.h"
#include "mta/delivery/mail_metrics.h"
#include "tests/unit/check.h"

static void check_line(const struct buf *page, const char *line)
{
    CHECK(strstr(page->data, line) != NULL);
    if (strstr(page->data, line) == NULL)
        fprintf(stderr, "  missing: %s", line);
}

static void test_job_results(void)
{
    struct mail_results job = {0}, one = {0};
    mail_results_add(&job, MAIL_DELIVERED, BOUNCE_CAT_BAD_MAILBOX); /* no category counted */
    mail_results_add(&job, MAIL_DELIVERED, 0);
    mail_results_add(&job, MAIL_DEFERRED, BOUNCE_CAT_QUOTA_ISSUES);
    mail_results_add(&job, MAIL_BOUNCED, BOUNCE_CAT_SPAM_RELATED);
    mail_results_add(&job, MAIL_BOUNCED, BOUNCE_CAT_SPAM_RELATED);
    mail_results_add(&one, MAIL_DELIVERED, 0);
    mail_metrics_results("d.test", "acme", "192.0.2.1", &job);
    mail_metrics_results("d.test", NULL, NULL, &one);
    struct buf out = BUF_INIT;
    mail_metrics_render(&out);
    buf_append(&out, "", 1);
    check_line(&out, "sluice_recipients_total{destination=\"d.test\",egress=\"192.0.2.1\","
                     "result=\"delivered\"} 2\n");
    check_line(&out, "sluice_recipients_total{destination=\"d.test\",egress=\"192.0.2.1\","
                     "result=\"deferred\"} 1\n");
    check_line(&out, "sluice_recipients_total{destination=\"d.test\",egress=\"192.0.2.1\","
                     "result=\"bounced\"} 2\n");
    check_line(&out, "sluice_recipients_total{destination=\"d.test\",egress=\"none\","
                     "result=\"delivered\"} 1\n");
    check_line(&out, "sluice_bounces_total{destination=\"d.test\",category=\"spam-related\"} 2\n");
    check_line(&out, "sluice_tenant_recipients_total{tenant=\"acme\",result=\"delivered\"} 2\n");
    check_line(&out, "sluice_tenant_recipients_total{tenant=\"acme\",result=\"deferred\"} 1\n");
    check_line(&out, "sluice_tenant_recipients_total{tenant=\"acme\",result=\"bounced\"} 2\n");
    check_line(&out, "sluice_tenant_recipients_total{tenant=\"\",result=\"delivered\"} 1\n");
    CHECK(strstr(out.data, "bad-mailbox") == NULL);
    CHECK(strstr(out.data, "quota-issues") == NULL);
    CHECK(strstr(out.data, "egress=\"none\",result=\"bounced\"") == NULL);
    struct mail_metrics_totals t, now;
    mail_metrics_totals(&t);
    CHECK_INT_EQ((int)t.delivered, 3);
    CHECK_INT_EQ((int)t.deferred, 1);
    CHECK_INT_EQ((int)t.bounced, 2);
    mail_metrics_minute(0, &now);
    /* Unless the minute turned in between, the minute under way has them all. */
    CHECK(now.delivered == 3 || now.delivered == 0);
    buf_free(&out);
}

static void test_feedback(void)
{
    mail_metrics_feedback("complaint");
    mail_metrics_feedback("unrecognized");
    mail_metrics_feedback("unrecognized");
    mail_metrics_feedback_alarm();
    struct buf out = BUF_INIT;
    mail_metrics_render(&out);
    buf_append(&out, "", 1);
    check_line(&out, "sluice_feedback_reports_total{kind=\"complaint\"} 1\n");
    check_line(&out, "sluice_feedback_reports_total{kind=\"unrecognized\"} 2\n");
    check_line(&out,
               "# TYPE sluice_feedback_alarms_total counter\nsluice_feedback_alarms_total 1\n");
    buf_free(&out);
}

int main(void)
{
    test_job_results();
    test_feedback();
    mail_metrics_free();
    return check_report("test_mail_metrics");
}
