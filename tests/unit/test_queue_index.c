#include "mta/delivery/queue_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Pops everything: (due, id) never goes down. Returns the count. */
static size_t drain_sorted(struct queue_index *q)
{
    size_t n = 0;
    struct queue_index_entry last = {0, 0, ""}, e;
    while (queue_index_pop(q, &e) == 0) {
        CHECK(e.due_s > last.due_s || (e.due_s == last.due_s && strcmp(e.id, last.id) >= 0));
        last = e;
        n++;
    }
    return n;
}

static void test_order(void)
{
    struct queue_index q = QUEUE_INDEX_INIT;
    CHECK_INT_EQ(sizeof(struct queue_index_entry), 32);
    CHECK(queue_index_top(&q) == NULL);
    srandom(11);
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof id, "ID%05d", (int)(random() % 100000));
        queue_index_push(&q, id, (int64_t)(random() % 50) * 1000, 0);
    }
    /* Same due time: the smaller id (the earlier arrival) first. */
    queue_index_push(&q, "B", -5, 0);
    queue_index_push(&q, "A", 0, 0);
    CHECK_STR_EQ(queue_index_top(&q)->id, "A");
    CHECK_INT_EQ(queue_index_top(&q)->due_s, 0);
    CHECK_INT_EQ(drain_sorted(&q), 1002);
    CHECK(q.cap <= 128); /* drained: the memory went back */
    queue_index_free(&q);
}

static void test_due_rounds_up(void)
{
    struct queue_index q = QUEUE_INDEX_INIT;
    queue_index_push(&q, "X", 1001, 0);
    CHECK_INT_EQ(queue_index_top(&q)->due_s, 2);
    queue_index_free(&q);
}

static void test_retry_and_remove(void)
{
    struct queue_index q = QUEUE_INDEX_INIT;
    char id[16];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "M%03d", i);
        queue_index_push(&q, id, 1000000 + (int64_t)(300 - i) * 1000, 0);
    }
    queue_index_push(&q, "M150", 5000000, 0); /* a second entry for one message */
    CHECK_INT_EQ(queue_index_retry(&q, "M150"), 2);
    CHECK_INT_EQ(queue_index_retry(&q, "NONE"), 0);
    CHECK_STR_EQ(queue_index_top(&q)->id, "M150");
    CHECK(queue_index_top(&q)->flags & QUEUE_INDEX_RETRY);
    CHECK_INT_EQ(queue_index_remove(&q, "M150"), 2);
    CHECK_INT_EQ(queue_index_remove(&q, "M150"), 0);
    CHECK_INT_EQ(q.n, 299);
    CHECK_STR_EQ(queue_index_top(&q)->id, "M299"); /* due first */
    CHECK_INT_EQ(queue_index_retry_all(&q), 299);
    /* All due now: by id, each flagged. */
    struct queue_index_entry e;
    CHECK(queue_index_pop(&q, &e) == 0);
    CHECK_STR_EQ(e.id, "M000");
    CHECK(e.flags & QUEUE_INDEX_RETRY);
    CHECK_INT_EQ(drain_sorted(&q), 298);
    queue_index_free(&q);
}

int main(void)
{
    test_order();
    test_due_rounds_up();
    test_retry_and_remove();
    return check_report("test_queue_index");
}
