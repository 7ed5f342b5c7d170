/*
 * The alarm on unrecognized reports (mta/feedback/feedback_alarm.h): raised once when more than
 * the threshold fall in one window, not by reports spread over longer, and armed again only after
 * a whole window without one.
 */
#include <string.h>

#include "check.h"
#include "mta/feedback/feedback_alarm.h"

static struct feedback_alarm alarm_state;

static int count_at(uint64_t now, size_t *n)
{
    return feedback_alarm_count(&alarm_state, 3, 1000, now, n);
}

int main(void)
{
    size_t n;
    memset(&alarm_state, 0, sizeof alarm_state);
    /* Three within the window are tolerated; the fourth raises it, the fifth does not again. */
    CHECK_INT_EQ(count_at(100, &n), 0);
    CHECK_INT_EQ(count_at(200, &n), 0);
    CHECK_INT_EQ(count_at(300, &n), 0);
    CHECK_INT_EQ((int)n, 3);
    CHECK_INT_EQ(count_at(400, &n), 1);
    CHECK_INT_EQ((int)n, 4);
    CHECK_INT_EQ(count_at(500, &n), 0);
    /* Reports keep coming less than a window apart: still raised, never raised twice. */
    for (uint64_t t = 1400; t < 10000; t += 900)
        CHECK_INT_EQ(count_at(t, &n), 0);
    /* A quiet window re-arms it; the next burst raises it again. */
    uint64_t t = 20000;
    CHECK_INT_EQ(count_at(t, &n), 0);
    CHECK_INT_EQ((int)n, 1);
    CHECK_INT_EQ(count_at(t + 1, &n), 0);
    CHECK_INT_EQ(count_at(t + 2, &n), 0);
    CHECK_INT_EQ(count_at(t + 3, &n), 1);

    /* Spread out (one every 400 ms, window 1 s): never more than three in a window. */
    memset(&alarm_state, 0, sizeof alarm_state);
    for (uint64_t u = 1; u < 20000; u += 400) {
        CHECK_INT_EQ(count_at(u, &n), 0);
        CHECK((int)n <= 3);
    }
    /* Threshold 0: the first report raises it. */
    memset(&alarm_state, 0, sizeof alarm_state);
    CHECK_INT_EQ(feedback_alarm_count(&alarm_state, 0, 1000, 5, &n), 1);
    return check_report("test_feedback_alarm");
}
