#include "lib/log_events.h"

#include <string.h>

#include "lib/log_event_table.h"
#include "lib/manpage.h"

const struct log_event *const log_events = log_event_table;
const size_t log_event_count = sizeof log_event_table / sizeof log_event_table[0];

const struct log_event *log_event_find(const char *name)
{
    size_t lo = 0, hi = log_event_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, log_event_table[mid].name);
        if (cmp == 0)
            return &log_event_table[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* "a, b" as "`a`, `b`". */
static void append_fields(struct buf *out, const char *fields)
{
    while (*fields != '\0') {
        size_t len = strcspn(fields, ",");
        buf_printf(out, "`%.*s`", (int)len, fields);
        fields += len;
        if (*fields == ',') {
            buf_append_str(out, ", ");
            fields += strspn(fields, ", ");
        }
    }
}

/* One row of the reference. */
static void describe_markdown(const struct log_event *e, struct buf *out)
{
    buf_printf(out, "| `%s` | %s | ", e->name, e->levels);
    append_fields(out, e->fields);
    buf_printf(out, " | %s |\n", e->doc);
}

/* The line under an event's name in the manual page, "levels; fields", and its meaning without
 * Markdown's backticks, as strings. */
static void describe_plain(const struct log_event *e, struct buf *summary, struct buf *doc)
{
    buf_printf(summary, "%s; %s", e->levels, e->fields);
    buf_append(summary, "", 1);
    for (const char *p = e->doc; *p != '\0'; p++)
        if (*p != '`')
            buf_append(doc, p, 1);
    buf_append(doc, "", 1);
}

/* Plain text, as `sluice help sluice` prints it: the layout of the configuration keys there. */
#define TEXT_WIDTH 78

static void describe_manual(enum log_events_format format, const struct log_event *e,
                            struct buf *out)
{
    struct buf summary = BUF_INIT, doc = BUF_INIT;
    describe_plain(e, &summary, &doc);
    if (format == LOG_EVENTS_ROFF) {
        buf_append_str(out, ".TP\n.B ");
        manpage_roff_str(out, e->name);
        buf_append_str(out, "\n.I ");
        manpage_roff_str(out, summary.data);
        buf_append_str(out, "\n.br\n");
        manpage_roff_str(out, doc.data);
        buf_append_str(out, "\n");
    } else {
        buf_printf(out, "       %s\n", e->name);
        manpage_wrap(out, summary.data, 11, TEXT_WIDTH);
        manpage_wrap(out, doc.data, 11, TEXT_WIDTH);
        buf_append_str(out, "\n");
    }
    buf_free(&summary);
    buf_free(&doc);
}

void log_events_describe_as(enum log_events_format format, struct buf *out)
{
    if (format == LOG_EVENTS_MARKDOWN)
        buf_append_str(out, "| Event | Level | Fields | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < log_event_count; i++) {
        if (format == LOG_EVENTS_MARKDOWN)
            describe_markdown(&log_event_table[i], out);
        else
            describe_manual(format, &log_event_table[i], out);
    }
}

void log_events_describe(struct buf *out)
{
    log_events_describe_as(LOG_EVENTS_MARKDOWN, out);
}
