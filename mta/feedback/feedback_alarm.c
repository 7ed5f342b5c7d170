/*
 * The alarm's sliding window (feedback_alarm.h).
 */
#include "mta/feedback/feedback_alarm.h"

int feedback_alarm_count(struct feedback_alarm *a, unsigned threshold, uint64_t window_ms,
                         uint64_t now_ms, size_t *in_window)
{
    size_t cap = (threshold < FEEDBACK_ALARM_MAX ? threshold : FEEDBACK_ALARM_MAX) + 1;
    if (a->last_ms != 0 && now_ms - a->last_ms >= window_ms) {
        a->raised = 0; /* a quiet window: armed again, and the old reports are out of it */
        a->n = 0;
    }
    if (a->n > cap) /* the threshold was lowered by a reload: keep the newest */
        a->n = cap;
    a->last_ms = now_ms;
    a->times[a->head] = now_ms;
    a->head = (a->head + 1) % (FEEDBACK_ALARM_MAX + 1);
    if (a->n < cap)
        a->n++;
    size_t count = 0;
    for (size_t i = 0; i < a->n; i++) {
        size_t slot = (a->head + FEEDBACK_ALARM_MAX + 1 - 1 - i) % (FEEDBACK_ALARM_MAX + 1);
        if (now_ms - a->times[slot] >= window_ms)
            break;
        count++;
    }
    *in_window = count;
    if (a->raised || count <= threshold)
        return 0;
    a->raised = 1;
    return 1;
}
