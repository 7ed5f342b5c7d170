#include "lib/log_events.h"
#include "tests/unit/check.h"
#include "tests/unit/doc_reference.h"

/* The lookup is a binary search: rows must be in strcmp order, each name once. */
static void test_table_sorted(void)
{
    for (size_t i = 1; i < log_event_count; i++) {
        int ordered = strcmp(log_events[i - 1].name, log_events[i].name) < 0;
        CHECK(ordered);
        if (!ordered)
            fprintf(stderr, "  %s before %s\n", log_events[i - 1].name, log_events[i].name);
    }
    for (size_t i = 0; i < log_event_count; i++) {
        const struct log_event *e = &log_events[i];
        CHECK(log_event_find(e->name) == e);
        CHECK(e->levels[0] != '\0' && e->fields[0] != '\0' && e->doc[0] != '\0');
        /* '|' would end the Markdown cell. */
        CHECK(strchr(e->fields, '|') == NULL && strchr(e->doc, '|') == NULL);
    }
}

static void test_find(void)
{
    CHECK(log_event_find("smtp.connect") != NULL);
    CHECK(log_event_find("log.dropped") != NULL);
    CHECK(log_event_find("smtp.connec") == NULL);
    CHECK(log_event_find("smtp.connectx") == NULL);
    CHECK(log_event_find("") == NULL);
    CHECK(log_event_find("zzz") == NULL);
    CHECK(log_event_find("a") == NULL);
}

/* The reference is generated from the table, and docs/events.md carries it as is. */
static void test_reference_in_docs(void)
{
    struct buf out = BUF_INIT;
    log_events_describe(&out);
    buf_append(&out, "", 1);
    CHECK(strncmp(out.data, "| Event | Level | Fields | Meaning |\n|---|---|---|---|\n", 52) == 0);
    CHECK(strstr(out.data, "\n| `smtp.connect` | info | `session`, `client`, `listener` | ") !=
          NULL);

    check_doc_carries("events.md", out.data, "sluice log-events");
    buf_free(&out);
}

int main(void)
{
    test_table_sorted();
    test_find();
    test_reference_in_docs();
    return check_report("test_log_events");
}
