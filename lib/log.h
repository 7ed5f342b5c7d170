/*
 * JSON-lines event log: one object per line; lines never interleave and keep their order. Once
 * log_open() has run, a writer thread of the log's own does the writing, so a slow target never
 * stalls the loop; before that (start-up, command-line tools) each line is written at once.
 * Every record carries "ts", "level" and "event"; callers add fields. Any thread may log.
 *
 *   struct logrec r;
 *   log_begin(&r, LOG_INFO, "smtp.accepted");
 *   log_str(&r, "queue_id", id);
 *   log_int(&r, "size", size);
 *   log_end(&r);
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

#include "lib/buf.h"

struct log_event; /* lib/log_events.h */

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct logrec {
    struct buf line;
    int enabled; /* 0 when the level is filtered out and no tap wants it: field calls do nothing */
    int quiet;   /* built for the tap only: its level is filtered out of the log */
    const struct log_event *tap; /* its event's row when the tap selected it, else NULL */
    int error;                   /* an error record: kept among the recent alarms too */
    size_t head_len;             /* bytes of line up to the event name ("ts", "level", "event") */
};

/* Sends later records to `path` ("-" or NULL: stderr) and starts the writer thread. Lines logged
 * before the call still go to the old target, which is closed after them. Returns 0 or -errno;
 * the old target stays on error. */
int log_open(const char *path);
/* Waits until every queued line has been written. Runs at exit and in log_fatal/log_panic; a
 * target that never drains blocks it. */
void log_flush(void);
/* Test hook: the bytes that may wait for the writer (default 8 MiB). Lines beyond it are dropped
 * and counted; a "log.dropped" record with the count follows once the writer catches up. */
void log_set_queue_limit(size_t bytes);
/* Lines dropped that way since the start. */
unsigned long long log_dropped_count(void);
void log_set_level(enum log_level min);
/* The recent alarms: the last LOG_ALARMS_MAX error records since the start, oldest first, one JSON
 * object a line, appended to out. A record longer than LOG_ALARM_LINE_MAX keeps only "ts", "level"
 * and "event". */
#define LOG_ALARMS_MAX 16
#define LOG_ALARM_LINE_MAX 1024
void log_alarms(struct buf *out);

/* event is a name from the event table (lib/log_event_table.h); a name missing from it is
 * reported once, whatever the level, as a "log.unknown_event" record naming it. */
void log_begin(struct logrec *r, enum log_level level, const char *event);
void log_str(struct logrec *r, const char *key, const char *value);
/* Any bytes: escaped as JSON, invalid UTF-8 replaced, so peer-supplied text cannot forge fields. */
void log_strn(struct logrec *r, const char *key, const char *value, size_t len);
void log_int(struct logrec *r, const char *key, long long value);
void log_bool(struct logrec *r, const char *key, int value);
void log_end(struct logrec *r);

/* The tap: one subscriber (the event webhooks) that gets each finished record whose event it
 * selected, whatever the log level, on the thread that logged it, with the log's lock held: it
 * must be quick and must not log. With no tap set a record costs one test more. */
typedef void log_tap_cb(void *arg, const struct log_event *event, const char *record, size_t len);
/* Sets the tap (NULL: none, and every selection is cleared). Once it returns, the old tap is not
 * running and is not called again. */
void log_tap_set(log_tap_cb *cb, void *arg);
/* Selects (on: 1) or leaves out records of an event for the tap; -ENOENT when the event table has
 * no such name. */
int log_tap_select(const char *name, int on);

/* One-line events with a printf-formatted "msg" field. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Start-up and configuration failures: logs and exits with status 1. */
void log_fatal(const char *event, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* A broken invariant: logs and aborts. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
