#include "lib/log_events.h"

#include <string.h>

#include "lib/log_event_table.h"

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

void log_events_describe(struct buf *out)
{
    buf_append_str(out, "| Event | Level | Fields | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < log_event_count; i++)
        describe_markdown(&log_event_table[i], out);
}
