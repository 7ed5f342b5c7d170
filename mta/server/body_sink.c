/*
 * The set of a message's body sinks: fan-out of writes, the count of sinks that asked the writer
 * to wait, and the finishes run one after the other (body_sink.h).
 */
#include "mta/server/body_sink.h"

#include <string.h>

struct buf *body_end_result(struct body_end *end)
{
    buf_append_str(&end->results, ";\r\n\t");
    return &end->results;
}

void body_end_front(const struct body_end *end, struct buf *out)
{
    buf_append(out, end->fields.data, end->fields.len);
    if (end->results.len == 0)
        return;
    buf_printf(out, "Authentication-Results: %s", end->authserv_id);
    buf_append(out, end->results.data, end->results.len);
    buf_append_str(out, "\r\n");
}

void body_sinks_init(struct body_sinks *set, const char *authserv_id,
                     body_sinks_writable_cb on_writable, body_sinks_done_cb on_done, void *arg)
{
    memset(set, 0, sizeof *set);
    set->end.authserv_id = authserv_id;
    set->on_writable = on_writable;
    set->on_done = on_done;
    set->arg = arg;
}

void body_sinks_add(struct body_sinks *set, struct body_sink *sink)
{
    sink->set = set;
    sink->next = NULL;
    if (set->tail != NULL)
        set->tail->next = sink;
    else
        set->head = sink;
    set->tail = sink;
}

static void sinks_write(struct body_sinks *set, const char *data, size_t len, int stored_only)
{
    for (struct body_sink *sink = set->head; sink != NULL; sink = sink->next) {
        if (stored_only && !sink->ops->stored)
            continue;
        if (sink->ops->write(sink, data, len) == 1 && !sink->full) {
            sink->full = 1;
            set->nfull++;
        }
    }
}

void body_sinks_write(struct body_sinks *set, const char *data, size_t len)
{
    sinks_write(set, data, len, 0);
}

void body_sinks_write_trace(struct body_sinks *set, const char *data, size_t len)
{
    sinks_write(set, data, len, 1);
}

int body_sinks_full(const struct body_sinks *set)
{
    return set->nfull > 0;
}

void body_sink_writable(struct body_sink *sink)
{
    struct body_sinks *set = sink->set;
    if (!sink->full)
        return;
    sink->full = 0;
    if (--set->nfull == 0)
        set->on_writable(set->arg);
}

/* Finishes set->current and the sinks after it while they report at once. Returns 1 when one
 * works on, else 0 with the outcome in *out. */
static int sinks_run(struct body_sinks *set, struct body_outcome *out)
{
    while (set->current != NULL) {
        struct body_sink *sink = set->current;
        sink->finishing = 1;
        set->in_finish = 1;
        sink->ops->finish(sink, &set->end);
        set->in_finish = 0;
        if (sink->finishing)
            return 1; /* body_sink_done continues */
        if (set->outcome.decision.verdict != POLICY_ACCEPT || sink->next == NULL)
            break;
        set->current = sink->next;
    }
    set->current = NULL;
    *out = set->outcome;
    return 0;
}

int body_sinks_finish(struct body_sinks *set, struct body_outcome *out)
{
    set->outcome = (struct body_outcome){.decision = {.verdict = POLICY_ACCEPT}};
    set->current = set->head;
    return sinks_run(set, out);
}

void body_sink_done(struct body_sink *sink, const struct policy_decision *d)
{
    struct body_sinks *set = sink->set;
    sink->finishing = 0;
    sink->finished = 1;
    set->outcome = (struct body_outcome){sink, *d};
    if (set->in_finish)
        return; /* reported from inside finish: sinks_run goes on */
    struct body_outcome out;
    if (d->verdict == POLICY_ACCEPT && sink->next != NULL) {
        set->current = sink->next;
        if (sinks_run(set, &out))
            return;
    } else {
        set->current = NULL;
        out = set->outcome;
    }
    set->on_done(set->arg, &out);
}

int body_sinks_waiting(const struct body_sinks *set)
{
    return set->current != NULL;
}

void body_sinks_free(struct body_sinks *set)
{
    struct body_sink *sink = set->head;
    while (sink != NULL) {
        struct body_sink *next = sink->next;
        sink->ops->free(sink);
        sink = next;
    }
    buf_free(&set->end.fields);
    buf_free(&set->end.results);
    memset(set, 0, sizeof *set);
}
