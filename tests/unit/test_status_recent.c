/*
 * The recent parts of the status (mta/http/status_recent.h): the last minutes' counts, oldest
 * first with the minute under way last, from the mail counters; and the log's recent error records
 * as JSON objects, newest first, other levels left out.
 */
#include <time.h>

#include "lib/log.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/http/status_recent.h"
#include "tests/unit/check.h"

static void test_minutes(void)
{
    mail_metrics_received("submission");
    mail_metrics_received("submission");
    int64_t minute = (int64_t)time(NULL) / 60 * 60;
    json_t *a = status_minutes_json();
    CHECK_INT_EQ((int)json_array_size(a), MAIL_METRICS_RATE_MINUTES + 1);
    json_t *last = json_array_get(a, MAIL_METRICS_RATE_MINUTES);
    /* The minute may turn between the two calls: then the counts are in the one before. */
    int64_t start = json_integer_value(json_object_get(last, "start"));
    CHECK(start == minute || start == minute + 60);
    json_int_t received = json_integer_value(json_object_get(last, "received"));
    if (start == minute)
        CHECK_INT_EQ((int)received, 2);
    for (size_t i = 1; i < json_array_size(a); i++)
        CHECK_INT_EQ((int)(json_integer_value(json_object_get(json_array_get(a, i), "start")) -
                           json_integer_value(json_object_get(json_array_get(a, i - 1), "start"))),
                     60);
    json_decref(a);
    mail_metrics_free();
}

static void test_alarms(void)
{
    json_t *none = status_alarms_json();
    CHECK_INT_EQ((int)json_array_size(none), 0);
    json_decref(none);
    log_msg(LOG_ERROR, "spool.commit_failed", "first");
    log_msg(LOG_WARN, "smtp.accepted", "not an alarm");
    log_msg(LOG_ERROR, "dkim.sign_failed", "second <b>");
    json_t *a = status_alarms_json();
    CHECK_INT_EQ((int)json_array_size(a), 2);
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(a, 0), "event")),
                 "dkim.sign_failed");
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(a, 0), "msg")), "second <b>");
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(a, 1), "event")),
                 "spool.commit_failed");
    json_decref(a);
}

int main(void)
{
    test_minutes();
    test_alarms();
    return check_report("test_status_recent");
}
