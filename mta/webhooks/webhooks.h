/*
 * Event webhooks: the log records of the events each `webhooks:` entry names are POSTed to its URL
 * as JSON arrays, in the order they were logged, one batch at a time per endpoint. A record is
 * taken from the log's tap (lib/log.h) on whatever thread logged it, handed to the loop, appended
 * to the endpoint's backlog in the spool (webhook_backlog.h) and sent from there, so an endpoint
 * that is down or slow loses nothing up to webhooks[].backlog_max, across restarts too. Owned by
 * the daemon (mta/daemon.c): made at start, given each reloaded configuration, stopped last.
 */
#ifndef SLUICE_WEBHOOKS_H
#define SLUICE_WEBHOOKS_H

#include <uv.h>

#include "lib/config.h"

struct webhooks;

/* Starts the endpoints of cfg->webhooks (none: nothing is tapped). Backlogs go under spool. */
struct webhooks *webhooks_new(uv_loop_t *loop, const char *spool, const struct config *cfg);
/* A reloaded configuration: endpoints are matched by URL and keep their backlog and batch in
 * flight; a removed one writes what it holds to its backlog and stops. */
void webhooks_set_config(struct webhooks *w, const struct config *cfg);

typedef void webhooks_stopped_cb(void *arg);
/* Stops tapping, writes the events taken so far to the backlogs, drops the requests in flight
 * (their batches are sent again at the next start), then calls cb and frees w. */
void webhooks_stop(struct webhooks *w, webhooks_stopped_cb *cb, void *arg);

/* Events dropped since the start, because a backlog was full or could not be written: a counter
 * for metrics. Any thread. */
unsigned long long webhooks_dropped_total(void);

#endif
