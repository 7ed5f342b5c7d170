/*
 * What webhooks.c (the set: tap, hand-over to the loop, configuration, stop) shares with
 * webhook_endpoint.c (one endpoint: backlog jobs on the thread pool, batches, POSTs, retries).
 * Everything here lives on the loop thread, except the job, which one pool thread uses at a time.
 */
#ifndef SLUICE_WEBHOOK_INT_H
#define SLUICE_WEBHOOK_INT_H

#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/http_client.h"
#include "mta/webhooks/webhook_backlog.h"

struct webhook_endpoint;

/* What the set gives each of its endpoints. */
struct webhook_env {
    uv_loop_t *loop;
    struct http_client *http;
    void (*on_closed)(struct webhook_endpoint *ep); /* the endpoint stopped and may be freed */
};

/* One trip to the thread pool: the offset moved on, new events appended, the next batch read. */
struct webhook_job {
    uint64_t ack_len, ack_events; /* the batch the endpoint took */
    struct buf append;            /* whole lines */
    uint64_t append_events;
    unsigned read_max; /* 0: no batch wanted */
    size_t read_bytes;
    /* out */
    int rc;
    int read_failed; /* then the endpoint backs off before reading again */
    struct buf err;
    struct buf batch;
    uint64_t batch_events;
    uint64_t disk_bytes, disk_events; /* not taken yet, after the job */
};

struct webhook_endpoint {
    const struct webhook_env *env;
    struct webhook_endpoint *next;
    const struct config_webhook *conf; /* in the set's configuration; NULL once stopping */
    char *url;                         /* owned: the key across reloads */
    char *path;                        /* owned: the backlog's file */
    unsigned char *selected;           /* by index in the log event table */
    struct webhook_backlog backlog;    /* the job's alone */
    uv_work_t work;
    struct webhook_job job;
    uv_timer_t timer; /* batch_wait, then the backoff between tries */
    struct http_request *req;

    struct buf pending; /* events taken, not handed to a job yet */
    uint64_t pending_events;
    uint64_t disk_bytes, disk_events; /* on disk and not taken, as the last job left them */
    struct buf batch;                 /* read from disk: being sent, or waiting for a retry */
    uint64_t batch_events;
    uint64_t ack_len, ack_events; /* taken by the endpoint, for the next job to record */
    unsigned failures;            /* tries of the batch that failed in a row */

    unsigned opened : 1; /* the first job opened the backlog */
    unsigned broken : 1; /* the backlog could not be opened: events are dropped */
    unsigned job_running : 1;
    unsigned timer_running : 1;
    unsigned backing_off : 1; /* the timer runs for a retry */
    unsigned wait_over : 1;   /* the oldest event waiting has waited batch_wait */
    unsigned dropping : 1;    /* the backlog is full: logged once, until events fit again */
    unsigned stopping : 1;
    unsigned closing : 1; /* its timer is closing: freed on the next loop turn, no I/O left */
};

struct webhook_endpoint *webhook_endpoint_new(const struct webhook_env *env, const char *spool,
                                              const struct config_webhook *conf);
/* A reload's settings for the same URL; an endpoint stopping (removed by an earlier reload) and
 * not closing yet goes on, so that one endpoint at a time uses the URL's backlog. */
void webhook_endpoint_configure(struct webhook_endpoint *ep, const struct config_webhook *conf);
/* One record the endpoint selected (a JSON object, no newline). Returns 0, or -ENOSPC when it was
 * dropped (the backlog is full or broken). */
int webhook_endpoint_take(struct webhook_endpoint *ep, const char *record, size_t len);
/* Writes what it holds to the backlog, drops its request, then env->on_closed. */
void webhook_endpoint_stop(struct webhook_endpoint *ep);
void webhook_endpoint_free(struct webhook_endpoint *ep);

/* Counts events dropped (webhooks.c keeps the counter). */
void webhooks_count_dropped(uint64_t n);

#endif
