#include "lib/log_events.h"
#include "tests/unit/check.h"
#include "tests/unit/doc_reference.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/log.h"

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
    CHECK(log_event_find("log.unknown_event") != NULL);
    CHECK(log_event_find("smtp.connec") == NULL);
    CHECK(log_event_find("smtp.connectx") == NULL);
    CHECK(log_event_find("") == NULL);
    CHECK(log_event_find("zzz") == NULL);
    CHECK(log_event_find("a") == NULL);
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A name missing from the table is reported once, even below the level filter, and the record
 * itself is still written. */
static void test_unknown_reported_once(void)
{
    char path[] = "/tmp/sluice_test_log_events_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT_EQ(log_open(path), 0);
    log_msg(LOG_INFO, "smtp.connect", "known");
    log_msg(LOG_INFO, "test.not_in_table", "first");
    log_msg(LOG_INFO, "test.not_in_table", "second");
    log_set_level(LOG_ERROR);
    log_msg(LOG_DEBUG, "test.filtered_out", "below the level");
    log_set_level(LOG_INFO);
    log_flush();
    char text[8192];
    ssize_t n = read(fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    CHECK_INT_EQ(count(text, "\"event\":\"log.unknown_event\""), 2);
    CHECK_INT_EQ(count(text, "\"name\":\"test.not_in_table\""), 1);
    CHECK_INT_EQ(count(text, "\"name\":\"test.filtered_out\""), 1);
    CHECK_INT_EQ(count(text, "\"name\":\"smtp.connect\""), 0);
    CHECK_INT_EQ(count(text, "\"event\":\"test.not_in_table\""), 2);
    CHECK_INT_EQ(count(text, "\"event\":\"test.filtered_out\""), 0);
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
    CHECK_INT_EQ(count(out.data, "\n| `"), log_event_count);

    check_doc_carries("events.md", out.data, "sluice log-events");
    buf_free(&out);
}

/* The manual page's forms: one entry per row, without Markdown. */
static void test_manual_forms(void)
{
    struct buf roff = BUF_INIT, text = BUF_INIT;
    log_events_describe_as(LOG_EVENTS_ROFF, &roff);
    log_events_describe_as(LOG_EVENTS_TEXT, &text);
    buf_append(&roff, "", 1);
    buf_append(&text, "", 1);
    CHECK_INT_EQ(count(roff.data, ".TP\n.B "), log_event_count);
    CHECK(strstr(roff.data, ".TP\n.B smtp.connect\n.I info; session, client, listener\n.br\n") !=
          NULL);
    CHECK(strstr(text.data,
                 "\n       smtp.connect\n           info; session, client, listener\n") != NULL);
    CHECK(strchr(roff.data, '`') == NULL && strchr(text.data, '`') == NULL);
    buf_free(&roff);
    buf_free(&text);
}

int main(void)
{
    test_table_sorted();
    test_find();
    test_unknown_reported_once();
    test_reference_in_docs();
    test_manual_forms();
    return check_report("test_log_events");
}
