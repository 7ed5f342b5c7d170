/*
 * The queue index: what the scheduler knows of the messages it keeps on disk only, outside its
 * active window. One packed entry per message (queue id, next-attempt time in seconds, a flag), 32
 * bytes, in a binary min-heap ordered by due time and then by id (so by arrival), so a queue of
 * millions costs tens of megabytes. Entries are hints: one may name a message already removed, or
 * one the scheduler holds in memory too; the scheduler checks when it takes an entry out. Owned by
 * the scheduler (sched_active.c); no I/O.
 */
#ifndef SLUICE_QUEUE_INDEX_H
#define SLUICE_QUEUE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "spool/spool.h"

/* Deferred recipients are to be tried at once when the message is loaded (`queue retry`). */
#define QUEUE_INDEX_RETRY 0x01u
/* Its waiting recipients are to fail when it is loaded (`queue bounce`). */
#define QUEUE_INDEX_BOUNCE 0x02u

struct queue_index_entry {
    uint32_t due_s; /* unix seconds of the earliest attempt; 0: now */
    uint8_t flags;  /* QUEUE_INDEX_* */
    char id[SPOOL_ID_MAX + 1];
};

struct queue_index {
    struct queue_index_entry *v;
    size_t n, cap;
};

#define QUEUE_INDEX_INIT                                                                           \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Adds id (at most SPOOL_ID_MAX characters) due at due_ms (unix ms, rounded up to a second). */
void queue_index_push(struct queue_index *q, const char *id, int64_t due_ms, unsigned flags);
/* The entry due first, or NULL when empty; valid until the next change. */
const struct queue_index_entry *queue_index_top(const struct queue_index *q);
/* Takes the top entry out into *out. Returns 0, or -1 when empty. */
int queue_index_pop(struct queue_index *q, struct queue_index_entry *out);
/* Makes id's entries due now with QUEUE_INDEX_RETRY. Returns how many there were. A linear
 * search: for one message at an operator's request. */
size_t queue_index_retry(struct queue_index *q, const char *id);
/* The same for every entry. Returns the count. */
size_t queue_index_retry_all(struct queue_index *q);
/* Takes id's entries out. Returns how many there were. */
size_t queue_index_remove(struct queue_index *q, const char *id);
void queue_index_free(struct queue_index *q);

#endif
