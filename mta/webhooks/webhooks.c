/*
 * The set of endpoints. The log's tap (any thread, under the log's lock) copies each selected
 * record into the inbox and wakes the loop; on the loop the inbox is emptied in order and each
 * record goes to every endpoint that selected its event.
 */
#include "mta/webhooks/webhooks.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/log_events.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/webhooks/webhook_int.h"

/* Records waiting for the loop beyond this are dropped: the loop is stuck, not the endpoint. */
#define INBOX_MAX (16 * 1024 * 1024)

struct webhooks {
    struct webhook_env env;
    char *spool;
    struct config *cfg; /* the endpoints' settings point into it */
    struct webhook_endpoint *endpoints;
    uv_async_t wake;
    uv_mutex_t lock;  /* guards inbox */
    struct buf inbox; /* records: struct inbox_head, then the record */
    unsigned tapping : 1;
    unsigned stopping : 1;
    webhooks_stopped_cb *stopped_cb;
    void *stopped_arg;
};

struct inbox_head {
    const struct log_event *event;
    size_t len;
};

static _Atomic unsigned long long dropped_total;

static void wake_on_async(uv_async_t *h);
static void endpoint_on_closed(struct webhook_endpoint *ep);

unsigned long long webhooks_dropped_total(void)
{
    return dropped_total;
}

void webhooks_count_dropped(uint64_t n)
{
    dropped_total += n;
}

/* Any thread, with the log's lock held: no logging here. */
static void tap_on_record(void *arg, const struct log_event *event, const char *record, size_t len)
{
    struct webhooks *w = arg;
    struct inbox_head head = {event, len};
    uv_mutex_lock(&w->lock);
    if (w->inbox.len + sizeof head + len > INBOX_MAX) {
        dropped_total++;
    } else {
        buf_append(&w->inbox, &head, sizeof head);
        buf_append(&w->inbox, record, len);
    }
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->wake);
}

static void inbox_drain(struct webhooks *w)
{
    uv_mutex_lock(&w->lock);
    struct buf in = w->inbox;
    w->inbox = (struct buf)BUF_INIT;
    uv_mutex_unlock(&w->lock);
    for (size_t at = 0; at < in.len;) {
        struct inbox_head head;
        memcpy(&head, in.data + at, sizeof head);
        at += sizeof head;
        size_t index = (size_t)(head.event - log_events);
        for (struct webhook_endpoint *ep = w->endpoints; ep != NULL; ep = ep->next)
            if (!ep->stopping && ep->selected[index])
                (void)webhook_endpoint_take(ep, in.data + at, head.len);
        at += head.len;
    }
    buf_free(&in);
}

static void wake_on_async(uv_async_t *h)
{
    inbox_drain(h->data);
}

/* The tap selects the union of what the endpoints select; none: no tap at all. */
static void tap_update(struct webhooks *w)
{
    int any = 0;
    for (size_t i = 0; i < log_event_count; i++) {
        int on = 0;
        for (struct webhook_endpoint *ep = w->endpoints; ep != NULL && !on; ep = ep->next)
            on = !ep->stopping && ep->selected[i];
        if (on && !w->tapping) {
            log_tap_set(tap_on_record, w);
            w->tapping = 1;
        }
        if (w->tapping)
            (void)log_tap_select(log_events[i].name, on);
        any |= on;
    }
    if (!any && w->tapping) {
        log_tap_set(NULL, NULL);
        w->tapping = 0;
    }
}

/* The endpoint of url: a stopping one too, unless it is closing (it then does no more I/O, and a
 * new one may open the backlog). */
static struct webhook_endpoint *endpoint_find(struct webhooks *w, const char *url)
{
    for (struct webhook_endpoint *ep = w->endpoints; ep != NULL; ep = ep->next)
        if (!ep->closing && strcmp(ep->url, url) == 0)
            return ep;
    return NULL;
}

struct webhooks *webhooks_new(uv_loop_t *loop, const char *spool, const struct config *cfg)
{
    struct webhooks *w = xcalloc(1, sizeof *w);
    w->env.loop = loop;
    w->env.on_closed = endpoint_on_closed;
    w->spool = xstrdup(spool);
    if (uv_mutex_init(&w->lock) != 0)
        abort();
    uv_async_init(loop, &w->wake, wake_on_async);
    w->wake.data = w;
    webhooks_set_config(w, cfg);
    return w;
}

void webhooks_set_config(struct webhooks *w, const struct config *cfg)
{
    if (cfg->nwebhooks > 0 && w->env.http == NULL) {
        w->env.http = http_client_new(w->env.loop);
        if (w->env.http == NULL) {
            log_msg(LOG_ERROR, "webhook.backlog_error", "libcurl did not start: no webhooks");
            return;
        }
    }
    inbox_drain(w); /* what was tapped under the old selection goes by the old one */
    for (struct webhook_endpoint *ep = w->endpoints; ep != NULL; ep = ep->next) {
        int kept = 0;
        for (size_t i = 0; i < cfg->nwebhooks && !kept; i++)
            kept = strcmp(cfg->webhooks[i].url, ep->url) == 0;
        if (!kept && !ep->stopping)
            webhook_endpoint_stop(ep);
    }
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        const struct config_webhook *conf = &cfg->webhooks[i];
        struct webhook_endpoint *ep = endpoint_find(w, conf->url);
        if (ep != NULL) {
            webhook_endpoint_configure(ep, conf);
        } else {
            ep = webhook_endpoint_new(&w->env, w->spool, conf);
            ep->next = w->endpoints;
            w->endpoints = ep;
        }
    }
    struct config *old = w->cfg;
    w->cfg = config_ref((struct config *)cfg);
    config_unref(old);
    tap_update(w);
}

static void set_on_closed(uv_handle_t *h)
{
    struct webhooks *w = h->data;
    webhooks_stopped_cb *cb = w->stopped_cb;
    void *arg = w->stopped_arg;
    uv_mutex_destroy(&w->lock);
    buf_free(&w->inbox);
    config_unref(w->cfg);
    free(w->spool);
    free(w);
    cb(arg);
}

/* Once stopping and every endpoint has closed: the client, then the set. */
static void set_maybe_finish(struct webhooks *w)
{
    if (!w->stopping || w->endpoints != NULL)
        return;
    http_client_free(w->env.http);
    w->env.http = NULL;
    uv_close((uv_handle_t *)&w->wake, set_on_closed);
}

static void endpoint_on_closed(struct webhook_endpoint *ep)
{
    struct webhooks *w = container_of(ep->env, struct webhooks, env);
    for (struct webhook_endpoint **p = &w->endpoints; *p != NULL; p = &(*p)->next)
        if (*p == ep) {
            *p = ep->next;
            break;
        }
    webhook_endpoint_free(ep);
    set_maybe_finish(w);
}

void webhooks_stop(struct webhooks *w, webhooks_stopped_cb *cb, void *arg)
{
    w->stopped_cb = cb;
    w->stopped_arg = arg;
    if (w->tapping)
        log_tap_set(NULL, NULL); /* from here on no record comes in */
    w->tapping = 0;
    inbox_drain(w);
    w->stopping = 1;
    /* An endpoint may close at once (nothing to write), and unlink itself. */
    struct webhook_endpoint *ep = w->endpoints;
    while (ep != NULL) {
        struct webhook_endpoint *next = ep->next;
        if (!ep->stopping)
            webhook_endpoint_stop(ep);
        ep = next;
    }
    set_maybe_finish(w);
}
