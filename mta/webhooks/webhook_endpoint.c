/*
 * One webhook endpoint. Events taken wait in `pending` until a job (one at a time, on the thread
 * pool) appends and syncs them; the same job records the batch the endpoint took and reads the
 * next one once it is due (batch_max events waiting, or the oldest has waited batch_wait). A batch
 * is POSTed until the endpoint takes it (2xx) or refuses it for good (another 4xx); a failure
 * waits 1s, 2s, 4s ... up to retry_max before the same batch is tried again, so events keep their
 * order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/log_events.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/webhooks/webhook_int.h"

#define RETRY_FIRST_MS 1000
/* A batch's body stays below this even when batch_max records are long. */
#define BATCH_BYTES_MAX (4 * 1024 * 1024)

static void endpoint_kick(struct webhook_endpoint *ep);
static void job_on_work(uv_work_t *req);
static void job_on_done(uv_work_t *req, int status);
static void endpoint_post(struct webhook_endpoint *ep);
static void post_on_done(void *arg, const struct http_result *res);
static uint64_t retry_later(struct webhook_endpoint *ep);
static void timer_on_expire(uv_timer_t *t);
static void timer_on_closed(uv_handle_t *h);

struct webhook_endpoint *webhook_endpoint_new(const struct webhook_env *env, const char *spool,
                                              const struct config_webhook *conf)
{
    struct webhook_endpoint *ep = xcalloc(1, sizeof *ep);
    ep->env = env;
    ep->url = xstrdup(conf->url);
    ep->backlog.fd = -1;
    ep->path = webhook_backlog_path(spool, conf->url);
    ep->selected = xcalloc(log_event_count, 1);
    uv_timer_init(env->loop, &ep->timer);
    ep->timer.data = ep;
    webhook_endpoint_configure(ep, conf);
    endpoint_kick(ep); /* opens the backlog: what an earlier run left goes first */
    return ep;
}

void webhook_endpoint_configure(struct webhook_endpoint *ep, const struct config_webhook *conf)
{
    ep->conf = conf;
    memset(ep->selected, 0, log_event_count);
    for (size_t i = 0; i < conf->nevents; i++) {
        const struct log_event *ev = log_event_find(conf->events[i]);
        if (ev != NULL) /* the loader checked the names */
            ep->selected[ev - log_events] = 1;
    }
    if (ep->stopping) {
        ep->stopping = 0;
        endpoint_kick(ep);
    }
}

static void endpoint_log(struct webhook_endpoint *ep, enum log_level level, const char *event,
                         struct logrec *r)
{
    log_begin(r, level, event);
    log_str(r, "url", ep->url);
}

int webhook_endpoint_take(struct webhook_endpoint *ep, const char *record, size_t len)
{
    uint64_t held = ep->disk_bytes + ep->job.append.len + ep->pending.len;
    if (ep->stopping) {
        webhooks_count_dropped(1);
        return -ENOSPC;
    }
    if (ep->broken || held + len + 1 > ep->conf->backlog_max) {
        if (!ep->dropping && !ep->broken) {
            struct logrec r;
            endpoint_log(ep, LOG_WARN, "webhook.backlog_full", &r);
            log_int(&r, "backlog_max", (long long)ep->conf->backlog_max);
            log_str(&r, "msg",
                    "the endpoint's backlog is full: new events are dropped until "
                    "it takes some");
            log_end(&r);
        }
        ep->dropping = 1;
        webhooks_count_dropped(1);
        return -ENOSPC;
    }
    ep->dropping = 0;
    buf_append(&ep->pending, record, len);
    buf_append(&ep->pending, "\n", 1);
    ep->pending_events++;
    endpoint_kick(ep);
    return 0;
}

/* batch_wait runs from the first event that finds nothing waiting. */
static void wait_start(struct webhook_endpoint *ep)
{
    if (ep->wait_over || ep->timer_running || ep->stopping)
        return;
    if (ep->conf->batch_wait_ms == 0) {
        ep->wait_over = 1;
        return;
    }
    ep->timer_running = 1;
    uv_timer_start(&ep->timer, timer_on_expire, ep->conf->batch_wait_ms, 0);
}

/* What to do next, from the state: post a batch read, start a job, or (stopping) close. */
static void endpoint_kick(struct webhook_endpoint *ep)
{
    if (ep->stopping) {
        if (ep->job_running)
            return;
        if (ep->pending.len == 0 && ep->ack_len == 0) {
            ep->closing = 1;
            uv_close((uv_handle_t *)&ep->timer, timer_on_closed);
            return;
        }
    }
    if (ep->batch.len > 0 && ep->req == NULL && !ep->backing_off && !ep->stopping)
        endpoint_post(ep);
    if (ep->job_running)
        return;
    uint64_t waiting = ep->disk_events + ep->pending_events;
    if (waiting > 0 && ep->opened)
        wait_start(ep);
    int want_batch = ep->opened && ep->batch.len == 0 && ep->req == NULL && !ep->backing_off &&
                     !ep->stopping && waiting > 0 &&
                     (ep->wait_over || waiting >= ep->conf->batch_max);
    if (ep->opened && ep->pending.len == 0 && ep->ack_len == 0 && !want_batch)
        return;
    if (ep->broken)
        return;
    struct webhook_job *j = &ep->job;
    j->ack_len = ep->ack_len;
    j->ack_events = ep->ack_events;
    ep->ack_len = ep->ack_events = 0;
    j->append = ep->pending;
    j->append_events = ep->pending_events;
    ep->pending = (struct buf)BUF_INIT;
    ep->pending_events = 0;
    j->read_max = want_batch || !ep->opened ? ep->conf->batch_max : 0;
    j->read_bytes = BATCH_BYTES_MAX;
    ep->job_running = 1;
    (void)uv_queue_work(ep->env->loop, &ep->work, job_on_work, job_on_done);
}

/* Pool thread: open at the first job, then record, append, read, in that order. */
static void job_on_work(uv_work_t *req)
{
    struct webhook_endpoint *ep = container_of(req, struct webhook_endpoint, work);
    struct webhook_job *j = &ep->job;
    struct webhook_backlog *b = &ep->backlog;
    j->rc = 0;
    if (b->fd < 0 && (j->rc = webhook_backlog_open(b, ep->path, &j->err)) < 0)
        return;
    if (j->ack_len > 0 && (j->rc = webhook_backlog_ack(b, j->ack_len, j->ack_events)) < 0)
        buf_printf(&j->err, "%s: recording the events sent: %s", b->path, strerror(-j->rc));
    if (j->append.len > 0) {
        int rc = webhook_backlog_append(b, j->append.data, j->append.len, j->append_events);
        if (rc < 0) {
            buf_printf(&j->err, "%s: %s: %llu events lost", b->path, strerror(-rc),
                       (unsigned long long)j->append_events);
            j->rc = rc;
        } else {
            j->append_events = 0; /* written: none lost */
        }
    }
    if (j->read_max > 0 && b->unsent > 0) {
        int rc = webhook_backlog_read(b, j->read_max, j->read_bytes, &j->batch, &j->batch_events);
        if (rc < 0) {
            buf_printf(&j->err, "%s: reading: %s", b->path, strerror(-rc));
            j->rc = rc;
            j->read_failed = 1;
            j->batch.len = 0;
            j->batch_events = 0;
        }
    }
    j->disk_bytes = b->size - b->read_off;
    j->disk_events = b->unsent;
}

static void job_on_done(uv_work_t *req, int status)
{
    struct webhook_endpoint *ep = container_of(req, struct webhook_endpoint, work);
    struct webhook_job *j = &ep->job;
    (void)status; /* never cancelled */
    ep->job_running = 0;
    if (j->rc < 0) {
        struct logrec r;
        endpoint_log(ep, LOG_ERROR, "webhook.backlog_error", &r);
        log_strn(&r, "msg", j->err.data, j->err.len);
        log_end(&r);
        webhooks_count_dropped(j->append_events);
    }
    if (!ep->opened) {
        ep->broken = ep->backlog.fd < 0;    /* not opened: nothing can be kept */
        ep->wait_over = j->disk_events > 0; /* left by an earlier run: sent at once */
    }
    ep->opened = 1;
    ep->disk_bytes = j->disk_bytes;
    ep->disk_events = j->disk_events;
    if (j->read_failed && !ep->stopping)
        (void)retry_later(ep); /* not at once again: the disk may be failing */
    if (j->batch.len > 0) {
        ep->batch = j->batch;
        ep->batch_events = j->batch_events;
        j->batch = (struct buf)BUF_INIT;
    }
    buf_free(&j->append);
    buf_free(&j->err);
    *j = (struct webhook_job){0};
    endpoint_kick(ep);
}

/* Backs off before the next try (of a POST, or of reading the backlog): 1s, doubled after each
 * failure in a row, up to retry_max. Returns the wait. */
static uint64_t retry_later(struct webhook_endpoint *ep)
{
    uint64_t wait = RETRY_FIRST_MS;
    for (unsigned i = 0; i < ep->failures && wait < ep->conf->retry_max_ms; i++)
        wait *= 2;
    if (wait > ep->conf->retry_max_ms)
        wait = ep->conf->retry_max_ms;
    ep->failures++;
    ep->backing_off = ep->timer_running = 1;
    uv_timer_start(&ep->timer, timer_on_expire, wait, 0);
    return wait;
}

/* The batch as a JSON array: its lines joined with commas. */
static void endpoint_post(struct webhook_endpoint *ep)
{
    const struct config_webhook *c = ep->conf;
    struct buf body = BUF_INIT;
    buf_append(&body, "[", 1);
    buf_append(&body, ep->batch.data, ep->batch.len);
    for (size_t i = 1; i < body.len - 1; i++)
        if (body.data[i] == '\n')
            body.data[i] = ',';
    body.data[body.len - 1] = ']';
    const char **headers = xcalloc(c->nheaders + 1, sizeof *headers);
    struct buf auth = BUF_INIT;
    for (size_t i = 0; i < c->nheaders; i++)
        headers[i] = c->headers[i];
    if (c->bearer_token != NULL) {
        buf_printf(&auth, "Authorization: Bearer %s", c->bearer_token);
        headers[c->nheaders] = auth.data;
    }
    struct http_post p = {.url = ep->url,
                          .content_type = "application/json",
                          .body = body.data,
                          .len = body.len,
                          .headers = headers,
                          .nheaders = c->nheaders + (c->bearer_token != NULL),
                          .ca_file = c->ca_file,
                          .timeout_ms = c->timeout_ms};
    ep->req = http_client_post(ep->env->http, &p, post_on_done, ep);
    buf_free(&body);
    buf_free(&auth);
    free(headers);
    if (ep->req == NULL) {
        struct http_result res = {.error = "the request could not be started", .body = ""};
        post_on_done(ep, &res);
    }
}

/* 2xx: taken. 408, 429, 5xx and no answer: tried again later. Any other answer (a 4xx, or a
 * redirect, which is not followed) is for good: the batch is dropped, or it would block every
 * event behind it. */
static void post_on_done(void *arg, const struct http_result *res)
{
    struct webhook_endpoint *ep = arg;
    int st = res->status;
    ep->req = NULL;
    int retry = st == 0 || st == 408 || st == 429 || st >= 500;
    struct logrec r;
    if (retry) {
        uint64_t wait = retry_later(ep);
        endpoint_log(ep, LOG_WARN, "webhook.retry", &r);
        log_int(&r, "status", st);
        log_str(&r, "error", res->error);
        log_int(&r, "events", (long long)ep->batch_events);
        log_int(&r, "attempts", ep->failures);
        log_int(&r, "retry_in_ms", (long long)wait);
        log_end(&r);
        return;
    }
    if (st >= 200 && st < 300) {
        endpoint_log(ep, LOG_DEBUG, "webhook.sent", &r);
    } else {
        endpoint_log(ep, LOG_ERROR, "webhook.rejected", &r);
        log_strn(&r, "reply", res->body, res->body_len);
        log_str(&r, "msg", "the endpoint refused the batch for good: its events are dropped");
    }
    log_int(&r, "status", st);
    log_int(&r, "events", (long long)ep->batch_events);
    log_end(&r);
    ep->failures = 0;
    ep->ack_len = ep->batch.len;
    ep->ack_events = ep->batch_events;
    ep->disk_bytes -= ep->batch.len;
    ep->disk_events -= ep->batch_events;
    buf_free(&ep->batch);
    ep->batch_events = 0;
    if (ep->disk_events + ep->pending_events == 0)
        ep->wait_over = 0; /* the next event starts a new wait */
    endpoint_kick(ep);
}

static void timer_on_expire(uv_timer_t *t)
{
    struct webhook_endpoint *ep = t->data;
    ep->timer_running = 0;
    if (ep->backing_off)
        ep->backing_off = 0;
    else
        ep->wait_over = 1;
    endpoint_kick(ep);
}

static void timer_on_closed(uv_handle_t *h)
{
    struct webhook_endpoint *ep = h->data;
    ep->env->on_closed(ep);
}

void webhook_endpoint_stop(struct webhook_endpoint *ep)
{
    ep->stopping = 1;
    ep->conf = NULL;
    if (ep->req != NULL) /* its batch stays in the backlog: sent at the next start */
        http_request_cancel(ep->req);
    ep->req = NULL;
    uv_timer_stop(&ep->timer);
    ep->timer_running = ep->backing_off = 0;
    ep->wait_over = 1; /* should it go on (see configure), what waits goes at once */
    if (ep->broken) {
        webhooks_count_dropped(ep->pending_events);
        buf_free(&ep->pending);
        ep->pending_events = 0;
    }
    endpoint_kick(ep);
}

void webhook_endpoint_free(struct webhook_endpoint *ep)
{
    webhook_backlog_close(&ep->backlog);
    free(ep->path);
    buf_free(&ep->pending);
    buf_free(&ep->batch);
    free(ep->selected);
    free(ep->url);
    free(ep);
}
