/*
 * JSON-lines event log: one object per line, written with a single write(2) so lines from one
 * process never interleave. Every record carries "ts", "level" and "event"; callers add fields.
 *
 *   struct logrec r;
 *   log_begin(&r, LOG_INFO, "smtp.accept");
 *   log_str(&r, "queue_id", id);
 *   log_int(&r, "size", size);
 *   log_end(&r);
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

#include "lib/buf.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct logrec {
    struct buf line;
    int enabled; /* 0 when the level is filtered out: the field calls then do nothing */
};

/* Sends records to `path` ("-" or NULL: stderr). Returns 0 or -errno; the old target stays on
 * error. */
int log_open(const char *path);
void log_set_level(enum log_level min);

void log_begin(struct logrec *r, enum log_level level, const char *event);
void log_str(struct logrec *r, const char *key, const char *value);
/* Any bytes: escaped as JSON, invalid UTF-8 replaced, so peer-supplied text cannot forge fields. */
void log_strn(struct logrec *r, const char *key, const char *value, size_t len);
void log_int(struct logrec *r, const char *key, long long value);
void log_bool(struct logrec *r, const char *key, int value);
void log_end(struct logrec *r);

/* One-line events with a printf-formatted "msg" field. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Start-up and configuration failures: logs and exits with status 1. */
void log_fatal(const char *event, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* A broken invariant: logs and aborts. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
