/*
 * `queue list --json` a page at a time (scheduler.h: scheduler_list_stream). The queue (messages
 * in memory, those in the disk index, those being read back) is walked in slices across loop turns
 * (sched_slice.c) for the `limit` smallest queue ids after the cursor, kept in a bounded max-heap;
 * then the page's messages in memory are written out, a slice per loop turn, and those on disk
 * read on the thread pool, a few at a time. The messages are written into the answer itself while
 * every one before them in the round was in memory (the others each into a part of their own,
 * joined in order once read, a slice per turn) rather than copied in at the end. Nothing the size
 * of the whole queue is built; a message that moves between memory and disk during the walk may be
 * missed by that page. With a filter, messages in memory that do not match are passed over by the
 * walk; those on disk are checked once read, and while the page has room and the queue has more,
 * the walk goes on from the last id it took (a round).
 *
 * The answer is streamed: each slice written goes to the sink (struct scheduler_list_sink) at the
 * end of its turn, and while the sink holds more than it wants (its reader is slow) the page waits
 * out of the loop's way until the sink wakes it. A sink whose reader has gone stops the page at its
 * next step (reads on the thread pool in flight are awaited first).
 */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

/* Messages of the page read from disk at once. */
#define LIST_READS 16
/* Messages of the page written out per loop turn: a 1,000-message page costs ~15 ms in one. */
#define LIST_RENDER_SLICE 64

typedef char queue_id[SPOOL_ID_MAX + 1];

enum page_phase { PAGE_MEMORY, PAGE_INDEX, PAGE_LOADING, PAGE_RENDER, PAGE_JOIN };

struct scheduler_listing {
    struct sched_task task;
    struct scheduler *s;
    queue_id after; /* "": from the first; then the last id of the round before */
    int first;      /* the first page: it carries the destinations */
    size_t limit;
    struct scheduler_list_filter filter;
    /* The answer not yet given to the sink: first "{\"messages\":[", then the JSON objects of the
     * messages listed since. */
    struct buf found;
    size_t nfound; /* messages listed so far */
    struct scheduler_list_sink sink;
    size_t direct; /* ids of the round written into found: those before the first on disk */
    size_t room;   /* ids a round takes: limit - nfound */
    queue_id *ids; /* a max-heap while walking, then sorted */
    size_t n;
    int more; /* an id beyond the round was seen */
    enum page_phase phase;
    size_t pos;        /* where the walk of the phase goes on */
    struct buf *parts; /* per id: its JSON object, empty when gone */
    size_t *todo;      /* the ids to read from disk */
    size_t ntodo, next, reading;
    int gone; /* the sink's reader has gone: the page ends at once */
};

struct page_read {
    struct scheduler_listing *p;
    size_t i; /* in ids */
};

static void page_read_step(struct scheduler_listing *p);
static void page_round_end(struct scheduler_listing *p);
static int page_render_step(struct scheduler_listing *p);
static int page_join_step(struct scheduler_listing *p);
static void page_round_next(struct scheduler_listing *p);

/* ---- the walk: the smallest ids after the cursor ---- */

static void heap_swap(queue_id *a, queue_id *b)
{
    queue_id t;
    memcpy(t, *a, sizeof t);
    memcpy(*a, *b, sizeof t);
    memcpy(*b, t, sizeof t);
}

static void heap_down(queue_id *v, size_t n, size_t i)
{
    for (;;) {
        size_t big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && strcmp(v[l], v[big]) > 0)
            big = l;
        if (r < n && strcmp(v[r], v[big]) > 0)
            big = r;
        if (big == i)
            return;
        heap_swap(&v[i], &v[big]);
        i = big;
    }
}

static void page_offer(struct scheduler_listing *p, const char *id)
{
    if (strcmp(id, p->after) <= 0)
        return;
    if (p->n < p->room) {
        size_t i = p->n++;
        snprintf(p->ids[i], sizeof p->ids[i], "%s", id);
        while (i > 0 && strcmp(p->ids[(i - 1) / 2], p->ids[i]) < 0) {
            heap_swap(&p->ids[(i - 1) / 2], &p->ids[i]);
            i = (i - 1) / 2;
        }
        return;
    }
    p->more = 1;
    if (strcmp(id, p->ids[0]) < 0) {
        snprintf(p->ids[0], sizeof p->ids[0], "%s", id);
        heap_down(p->ids, p->n, 0);
    }
}

static void offer_key(const char *key, void *value, void *arg)
{
    (void)value;
    page_offer(arg, key);
}

/* A tenant or campaign the filter asks for ("": any). */
static int name_matches(const char *name, const char *wanted)
{
    return wanted[0] == '\0' || (name != NULL && strcmp(name, wanted) == 0);
}

int sched_list_matches(const struct qmsg *m, const struct scheduler_list_filter *f)
{
    if (!name_matches(m->tenant, f->tenant) || !name_matches(m->campaign, f->campaign))
        return 0;
    for (size_t i = 0; i < m->nrcpts; i++) {
        const char *at = strrchr(m->rcpts[i].addr, '@');
        if (f->destination[0] && (at == NULL || strcasecmp(at + 1, f->destination) != 0))
            continue;
        if (f->state[0] && strcmp(status_names[m->rcpts[i].status], f->state) != 0)
            continue;
        return 1;
    }
    return 0;
}

static void offer_msg(const char *key, void *value, void *arg)
{
    struct scheduler_listing *p = arg;
    if (sched_list_matches(value, &p->filter))
        page_offer(p, key);
}

/* Gives the sink what the turn wrote. */
static void page_put(struct scheduler_listing *p)
{
    if (p->found.len > 0)
        p->sink.put(p->sink.arg, p->found.data, p->found.len);
    buf_reset(&p->found);
}

static int page_step(struct sched_task *t)
{
    struct scheduler_listing *p = container_of(t, struct scheduler_listing, task);
    struct scheduler *s = p->s;
    int full = p->sink.full(p->sink.arg, p);
    if (full < 0) {
        p->gone = 1;
        return 1;
    }
    if (full)
        return SCHED_TASK_PARKED; /* the sink wakes it (scheduler_list_wake) */
    switch (p->phase) {
    case PAGE_MEMORY:
        if (strmap_each_from(&s->msgs, &p->pos, SCHED_SLICE_ITEMS, offer_msg, p)) {
            p->phase = PAGE_INDEX;
            p->pos = 0;
        }
        return 0;
    case PAGE_INDEX: {
        size_t end = p->pos + SCHED_SLICE_ITEMS;
        for (; p->pos < s->waiting.n && p->pos < end; p->pos++)
            page_offer(p, s->waiting.v[p->pos].id);
        if (p->pos >= s->waiting.n)
            p->phase = PAGE_LOADING;
        return 0;
    }
    case PAGE_LOADING:
        strmap_each(&s->loading, offer_key, p); /* a few at most (ACTIVE_LOADS_MAX) */
        return 1;
    case PAGE_RENDER:
        return page_render_step(p);
    case PAGE_JOIN:
        return page_join_step(p);
    }
    return 1;
}

void scheduler_list_wake(struct scheduler_listing *p)
{
    sched_task_start(p->s, &p->task);
}

/* ---- the answer ---- */

static int id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void list_dest(const char *key, void *value, void *arg)
{
    (void)key;
    struct buf *out = arg;
    if (out->data[out->len - 1] != '[')
        buf_append(out, ",", 1);
    dest_describe(value, out);
}

void scheduler_destinations_json(struct scheduler *s, struct buf *out)
{
    buf_append(out, "[", 1);
    strmap_each(&s->dests, list_dest, out);
    strmap_each(&s->retired, list_dest, out); /* from before a reload, not taken over */
    buf_append(out, "]", 1);
}

static void page_round_free(struct scheduler_listing *p)
{
    for (size_t i = 0; p->parts != NULL && i < p->n; i++)
        buf_free(&p->parts[i]);
    free(p->parts);
    free(p->todo);
    p->parts = NULL;
    p->todo = NULL;
}

static void page_answer(struct scheduler_listing *p, int status, const char *why)
{
    struct scheduler *s = p->s;
    struct buf *doc = &p->found;
    if (status == 0) {
        if (p->more)
            buf_printf(doc, "],\"next\":\"%s\",", p->ids[p->n - 1]);
        else
            buf_printf(doc, "],\"next\":null,");
        sched_active_counters(s, doc);
        if (p->first) {
            buf_printf(doc, ",\"destinations\":");
            scheduler_destinations_json(s, doc);
        }
        buf_printf(doc, "}\n");
        page_put(p);
    }
    p->sink.done(p->sink.arg, status, why);
    page_round_free(p);
    buf_free(&p->found);
    free(p->ids);
    free(p);
    s->loads--;
    scheduler_check_stopped(s);
}

/* A message on disk that could not be read: listed by its id unless a filter asks what it holds. */
static void page_unread(struct scheduler_listing *p, size_t i)
{
    const struct scheduler_list_filter *f = &p->filter;
    if (!f->destination[0] && !f->state[0] && !f->tenant[0] && !f->campaign[0])
        buf_printf(&p->parts[i], "{\"id\":\"%s\",\"in_memory\":false}", p->ids[i]);
}

/* The round's messages not written yet join the page, a slice per loop turn. */
static void page_round_end(struct scheduler_listing *p)
{
    p->phase = PAGE_JOIN;
    p->pos = p->direct;
    sched_task_start(p->s, &p->task);
}

static int page_join_step(struct scheduler_listing *p)
{
    size_t end = p->pos + LIST_RENDER_SLICE;
    for (; p->pos < p->n && p->pos < end; p->pos++) {
        struct buf *part = &p->parts[p->pos];
        if (part->len > 0) {
            if (p->nfound++)
                buf_append(&p->found, ",", 1);
            buf_append(&p->found, part->data, part->len);
        }
        buf_free(part);
    }
    page_put(p);
    return p->pos >= p->n;
}

/* Another round while the page has room and the queue more, else the answer's end. */
static void page_round_next(struct scheduler_listing *p)
{
    if (!p->more || p->nfound >= p->limit || p->s->stopping) {
        page_answer(p, 0, NULL);
        return;
    }
    page_round_free(p);
    memcpy(p->after, p->ids[p->n - 1], sizeof p->after);
    p->room = p->limit - p->nfound;
    p->n = p->ntodo = p->next = p->pos = p->direct = 0;
    p->more = 0;
    p->phase = PAGE_MEMORY;
    sched_task_start(p->s, &p->task);
}

/* A message no longer where the walk saw it: in memory now, or gone (empty part). */
static void page_render_memory(struct scheduler_listing *p, size_t i)
{
    struct qmsg *m = strmap_get(&p->s->msgs, p->ids[i]);
    if (m != NULL && !m->deleted && sched_list_matches(m, &p->filter))
        msg_json(m, 1, &p->parts[i]);
}

static void page_on_read(int status, const struct spool_entry *entry, struct buf *body,
                         const char *why, void *arg)
{
    (void)body, (void)why;
    struct page_read *r = arg;
    struct scheduler_listing *p = r->p;
    p->reading--;
    if (status == 0) {
        struct qmsg *m = msg_new(p->s, entry);
        if (sched_list_matches(m, &p->filter))
            msg_json(m, 0, &p->parts[r->i]);
        msg_free(m);
    } else if (status == -ENOENT) {
        page_render_memory(p, r->i); /* read back or delivered meanwhile */
    } else {
        page_unread(p, r->i);
    }
    free(r);
    page_read_step(p);
}

/* Reads the next messages from disk, or, once all are read, answers. A stop reads no more. */
static void page_read_step(struct scheduler_listing *p)
{
    while (p->reading < LIST_READS && p->next < p->ntodo && !p->s->stopping) {
        struct page_read *r = xmalloc(sizeof *r);
        *r = (struct page_read){p, p->todo[p->next++]};
        p->reading++;
        spool_peek(p->s->spool, p->ids[r->i], page_on_read, r);
    }
    if (p->reading > 0)
        return;
    for (; p->next < p->ntodo; p->next++)
        page_unread(p, p->todo[p->next]);
    page_round_end(p);
}

/* Writes out the next slice of the round's messages in memory, noting those to read from disk.
 * Returns 1 once every message of the round is seen. */
static int page_render_step(struct scheduler_listing *p)
{
    size_t end = p->pos + LIST_RENDER_SLICE;
    for (; p->pos < p->n && p->pos < end; p->pos++) {
        size_t i = p->pos;
        struct qmsg *m = strmap_get(&p->s->msgs, p->ids[i]);
        if (m == NULL) {
            p->todo[p->ntodo++] = i;
        } else if (p->ntodo > 0) {
            page_render_memory(p, i); /* joined once those before it are read */
        } else {
            p->direct = i + 1;
            if (m->deleted || !sched_list_matches(m, &p->filter))
                continue;
            if (p->nfound++)
                buf_append(&p->found, ",", 1);
            msg_json(m, 1, &p->found);
        }
    }
    page_put(p);
    return p->pos >= p->n;
}

static void page_finish(struct sched_task *t, int cancelled)
{
    struct scheduler_listing *p = container_of(t, struct scheduler_listing, task);
    if (cancelled || p->gone) {
        page_answer(p, -ECANCELED, cancelled ? "the daemon is stopping" : "the reader has gone");
        return;
    }
    if (p->phase == PAGE_RENDER) {
        page_read_step(p);
        return;
    }
    if (p->phase == PAGE_JOIN) {
        page_round_next(p);
        return;
    }
    qsort(p->ids, p->n, sizeof *p->ids, id_cmp);
    size_t kept = 0; /* the index may name a message in memory too */
    for (size_t i = 0; i < p->n; i++)
        if (kept == 0 || strcmp(p->ids[kept - 1], p->ids[i]) != 0)
            memmove(p->ids[kept++], p->ids[i], sizeof p->ids[i]);
    p->n = kept;
    p->parts = xcalloc(p->n + 1, sizeof *p->parts);
    p->todo = xcalloc(p->n + 1, sizeof *p->todo);
    p->phase = PAGE_RENDER;
    p->pos = 0;
    sched_task_start(p->s, &p->task);
}

void scheduler_list_stream(struct scheduler *s, const char *after, size_t limit,
                           const struct scheduler_list_filter *filter,
                           const struct scheduler_list_sink *sink)
{
    struct scheduler_listing *p = xcalloc(1, sizeof *p);
    p->s = s;
    snprintf(p->after, sizeof p->after, "%s", after);
    p->first = after[0] == '\0';
    p->limit = limit == 0 ? 1 : limit > SCHEDULER_PAGE_MAX ? SCHEDULER_PAGE_MAX : limit;
    p->room = p->limit;
    p->filter = *filter;
    buf_append_str(&p->found, "{\"messages\":[");
    p->ids = xcalloc(p->limit, sizeof *p->ids);
    p->sink = *sink;
    p->task = (struct sched_task){.step = page_step, .finish = page_finish};
    s->loads++; /* a stop waits for the answer */
    if (s->stopping)
        page_finish(&p->task, 1);
    else
        sched_task_start(s, &p->task);
}
