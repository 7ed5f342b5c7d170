/* The scheduler's compact index of the messages on disk only (see queue_index.h). */
#include "mta/delivery/queue_index.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define QUEUE_INDEX_MIN_CAP 64

static int entry_less(const struct queue_index_entry *a, const struct queue_index_entry *b)
{
    if (a->due_s != b->due_s)
        return a->due_s < b->due_s;
    return strcmp(a->id, b->id) < 0;
}

static void entry_swap(struct queue_index *q, size_t i, size_t j)
{
    struct queue_index_entry t = q->v[i];
    q->v[i] = q->v[j];
    q->v[j] = t;
}

static void sift_up(struct queue_index *q, size_t i)
{
    while (i > 0 && entry_less(&q->v[i], &q->v[(i - 1) / 2])) {
        entry_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct queue_index *q, size_t i)
{
    for (;;) {
        size_t least = i, l = 2 * i + 1, r = l + 1;
        if (l < q->n && entry_less(&q->v[l], &q->v[least]))
            least = l;
        if (r < q->n && entry_less(&q->v[r], &q->v[least]))
            least = r;
        if (least == i)
            return;
        entry_swap(q, i, least);
        i = least;
    }
}

/* A drained index gives its memory back, so a queue that was long does not stay costly. */
static void maybe_shrink(struct queue_index *q)
{
    if (q->cap > QUEUE_INDEX_MIN_CAP && q->n < q->cap / 4) {
        q->cap /= 2;
        q->v = xrealloc(q->v, q->cap * sizeof *q->v);
    }
}

/* Takes entry i out, keeping the heap in order. */
static void remove_at(struct queue_index *q, size_t i)
{
    q->v[i] = q->v[--q->n];
    if (i < q->n) {
        sift_up(q, i);
        sift_down(q, i);
    }
}

void queue_index_push(struct queue_index *q, const char *id, int64_t due_ms, unsigned flags)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : QUEUE_INDEX_MIN_CAP;
        q->v = xrealloc(q->v, q->cap * sizeof *q->v);
    }
    struct queue_index_entry *e = &q->v[q->n];
    int64_t s = due_ms > 0 ? (due_ms + 999) / 1000 : 0;
    e->due_s = s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)s;
    e->flags = (uint8_t)flags;
    memset(e->id, 0, sizeof e->id);
    strncpy(e->id, id, SPOOL_ID_MAX);
    sift_up(q, q->n++);
}

const struct queue_index_entry *queue_index_top(const struct queue_index *q)
{
    return q->n > 0 ? &q->v[0] : NULL;
}

int queue_index_pop(struct queue_index *q, struct queue_index_entry *out)
{
    if (q->n == 0)
        return -1;
    *out = q->v[0];
    remove_at(q, 0);
    maybe_shrink(q);
    return 0;
}

size_t queue_index_retry(struct queue_index *q, const char *id)
{
    size_t found = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->v[i].id, id) == 0) {
            q->v[i].due_s = 0;
            q->v[i].flags |= QUEUE_INDEX_RETRY;
            sift_up(q, i);
            found++;
        }
    }
    return found;
}

size_t queue_index_retry_all(struct queue_index *q)
{
    for (size_t i = 0; i < q->n; i++) {
        q->v[i].due_s = 0;
        q->v[i].flags |= QUEUE_INDEX_RETRY;
    }
    /* Every key is now 0: order by id again (Floyd's heap construction, linear). */
    for (size_t i = q->n / 2; i-- > 0;)
        sift_down(q, i);
    return q->n;
}

size_t queue_index_remove(struct queue_index *q, const char *id)
{
    size_t found = 0;
    for (size_t i = 0; i < q->n;) {
        if (strcmp(q->v[i].id, id) == 0) {
            remove_at(q, i);
            found++;
            i = 0; /* an entry moved into an earlier place may be another match */
        } else {
            i++;
        }
    }
    maybe_shrink(q);
    return found;
}

void queue_index_free(struct queue_index *q)
{
    free(q->v);
    *q = (struct queue_index)QUEUE_INDEX_INIT;
}
