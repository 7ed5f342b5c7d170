/*
 * The daemon's status at a glance: the queue by recipient state and its oldest message, the rates
 * of the last minutes, the destinations with the most queued work and those held back (suspended,
 * throttled, backing off, and why), connections, recent alarms (status_recent.h), uptime, version
 * and the user it runs as. One builder for the control socket's `status` (what `sluice status`
 * prints), GET /api/v1/status and the status page (status_page.h), as JSON (jansson);
 * status_render turns that JSON into the terminal summary. The daemon fills
 * the sources; nothing here is kept between calls.
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#include <stdint.h>

#include "lib/buf.h"
#include "lib/dns.h"
#include "mta/delivery/scheduler.h"

struct suppression;

struct status_sources {
    struct scheduler *scheduler;     /* NULL while the daemon stops */
    struct dns_resolver *dns;        /* NULL while the daemon stops */
    struct suppression *suppression; /* NULL: the list is not enabled */
    unsigned conns_in;               /* SMTP sessions open */
    unsigned http_conns;             /* HTTP connections open */
    const char *run_user;            /* the user the daemon runs as */
    const char *hostname;
    int64_t started_ms; /* unix ms */
};

/* Appends the status as one JSON object and a newline; caller: the authenticated user (NULL: the
 * control socket, whose callers are the spool's owner). */
void status_json(const struct status_sources *src, const char *caller, struct buf *out);
/* The terminal summary of such JSON (one screen). Returns 0, or -EINVAL when json is not one. */
int status_render(const char *json, size_t len, struct buf *out);
/* A duration as the summaries show it: "3d04h", "2h05m", "4m10s", "12s". */
void status_age_append(struct buf *out, long long s);

#endif
