/*
 * One queued message and why it waits (scheduler.h: scheduler_show): the message as the listing
 * shows it, from memory or read from disk on the thread pool, and for each destination a
 * recipient still waits for, its state as the destinations listing and `sluice queue
 * destinations NAME` report it (suspension, throttling, backoff and their reasons).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

/* A destination's name: a domain. */
#define DEST_NAME_MAX 256

struct show {
    struct scheduler *s;
    char id[SPOOL_ID_MAX + 1];
    scheduler_show_cb cb;
    void *arg;
};

static int rcpt_waits(const struct rcpt *r)
{
    return r->status == SPOOL_RCPT_PENDING || r->status == SPOOL_RCPT_DEFERRED ||
           r->status == SPOOL_RCPT_FAILED;
}

/* The destination a recipient goes to, by name: its domain in lower case. */
static void rcpt_destination(const struct rcpt *r, char *out, size_t size)
{
    const char *at = strrchr(r->addr, '@');
    snprintf(out, size, "%s", at != NULL ? at + 1 : "");
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* Has a recipient before the i-th one that waits the same destination? */
static int named_before(const struct qmsg *m, size_t i, const char *name)
{
    char other[DEST_NAME_MAX];
    for (size_t j = 0; j < i; j++) {
        if (!rcpt_waits(&m->rcpts[j]))
            continue;
        rcpt_destination(&m->rcpts[j], other, sizeof other);
        if (strcmp(other, name) == 0)
            return 1;
    }
    return 0;
}

/* ,"destinations":[{"destination":NAME,"state":{...} or null,"why":TEXT or null},...] */
static void show_destinations(struct scheduler *s, const struct qmsg *m, struct buf *out)
{
    char name[DEST_NAME_MAX];
    size_t listed = 0;
    buf_printf(out, ",\"destinations\":[");
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (!rcpt_waits(&m->rcpts[i]))
            continue;
        rcpt_destination(&m->rcpts[i], name, sizeof name);
        if (named_before(m, i, name))
            continue;
        const struct dest *d = strmap_get(&s->dests, name);
        if (d == NULL)
            d = strmap_get(&s->retired, name);
        buf_printf(out, "%s{\"destination\":", listed++ ? "," : "");
        sched_json_string(out, name);
        if (d == NULL) {
            buf_printf(out, ",\"state\":null,\"why\":null}"); /* no state kept: nothing holds it */
            continue;
        }
        struct buf why = BUF_INIT;
        dest_explain(d, &why);
        buf_printf(out, ",\"state\":");
        dest_describe(d, out);
        buf_printf(out, ",\"why\":");
        sched_json_string(out, why.data);
        buf_append(out, "}", 1);
        buf_free(&why);
    }
    buf_append(out, "]", 1);
}

static void show_answer(struct show *sh, const struct qmsg *m, int in_memory)
{
    struct buf doc = BUF_INIT;
    buf_printf(&doc, "{\"message\":");
    msg_json(m, in_memory, &doc);
    show_destinations(sh->s, m, &doc);
    buf_printf(&doc, "}\n");
    sh->cb(sh->arg, 0, &doc);
    buf_free(&doc);
}

static void show_refuse(struct show *sh, int status, const char *why)
{
    struct buf doc = BUF_INIT;
    if (status == -ENOENT)
        buf_printf(&doc, "no message %s in the queue\n", sh->id);
    else
        buf_printf(&doc, "%s\n", why);
    sh->cb(sh->arg, status, &doc);
    buf_free(&doc);
}

/* From memory when it is there; 0, or -ENOENT when not queued in memory. */
static int show_from_memory(struct show *sh)
{
    struct qmsg *m = strmap_get(&sh->s->msgs, sh->id);
    if (m == NULL || m->deleted)
        return -ENOENT;
    show_answer(sh, m, 1);
    return 0;
}

static void show_on_read(int status, const struct spool_entry *entry, struct buf *body,
                         const char *why, void *arg)
{
    (void)body;
    struct show *sh = arg;
    struct scheduler *s = sh->s;
    if (status == 0) {
        struct qmsg *m = msg_new(s, entry);
        show_answer(sh, m, 0);
        msg_free(m);
    } else if (status != -ENOENT) {
        show_refuse(sh, status, why != NULL ? why : "the message could not be read");
    } else if (show_from_memory(sh) < 0) { /* read back, or gone meanwhile */
        show_refuse(sh, -ENOENT, NULL);
    }
    free(sh);
    s->loads--;
    scheduler_check_stopped(s);
}

void scheduler_show(struct scheduler *s, const char *id, scheduler_show_cb cb, void *arg)
{
    struct show *sh = xcalloc(1, sizeof *sh);
    *sh = (struct show){.s = s, .cb = cb, .arg = arg};
    snprintf(sh->id, sizeof sh->id, "%s", id);
    if (s->stopping) {
        show_refuse(sh, -ECANCELED, "the daemon is stopping");
    } else if (show_from_memory(sh) < 0) {
        s->loads++; /* a stop waits for the answer */
        spool_peek(s->spool, sh->id, show_on_read, sh);
        return;
    }
    free(sh);
}
