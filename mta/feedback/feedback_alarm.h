/*
 * The alarm on reports about mail we never sent (issue 15: someone sends as us, an open relay, a
 * stolen account): counts them in a sliding window and says when more than the threshold fall in
 * one window, once; after a whole window without such a report it is armed again. Pure: the
 * caller passes a monotonic clock in milliseconds. Embedded in the SMTP server (one per daemon),
 * loop thread only.
 */
#ifndef SLUICE_FEEDBACK_ALARM_H
#define SLUICE_FEEDBACK_ALARM_H

#include <stddef.h>
#include <stdint.h>

/* Largest feedback.alarm_threshold: the window keeps one more report than it. */
#define FEEDBACK_ALARM_MAX 1000

struct feedback_alarm {
    uint64_t times[FEEDBACK_ALARM_MAX + 1]; /* ring: when the last reports came */
    size_t head, n;                         /* next slot; reports kept */
    uint64_t last_ms;                       /* the last report, 0: none yet */
    unsigned raised : 1;                    /* raised, not re-armed yet */
};

/* Counts a report at now_ms under the given threshold and window. Returns 1 exactly when this
 * report raises the alarm, else 0; *in_window is the number of reports within the window. */
int feedback_alarm_count(struct feedback_alarm *a, unsigned threshold, uint64_t window_ms,
                         uint64_t now_ms, size_t *in_window);

#endif
