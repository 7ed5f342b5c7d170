/*
 * The log event table (rows in log_event_table.h) as the program uses it: the lookup log_begin()
 * makes for every record, and the reference `sluice log-events` prints for docs/events.md and
 * sluice(8) shows.
 */
#ifndef SLUICE_LOG_EVENTS_H
#define SLUICE_LOG_EVENTS_H

#include <stddef.h>

#include "lib/buf.h"

struct log_event {
    const char *name;   /* as in the "event" field */
    const char *levels; /* the levels it is logged at, e.g. "info, warn" */
    const char *fields; /* the fields callers add, comma-separated ("ts", "level", "event" aside) */
    const char *doc;    /* what it means, one or two sentences of Markdown */
};

extern const struct log_event *const log_events;
extern const size_t log_event_count;

/* The row for name, or NULL when the table has none. A binary search: cheap enough for every
 * record. */
const struct log_event *log_event_find(const char *name);

enum log_events_format {
    LOG_EVENTS_MARKDOWN, /* the table docs/events.md carries */
    LOG_EVENTS_ROFF,     /* .TP paragraphs, for the EVENTS section of sluice(8) */
    LOG_EVENTS_TEXT,     /* the same as `sluice help sluice` prints it */
};
void log_events_describe_as(enum log_events_format format, struct buf *out);
/* The Markdown table (`sluice log-events`). */
void log_events_describe(struct buf *out);

#endif
