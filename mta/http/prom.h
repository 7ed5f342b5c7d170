/*
 * GET /metrics: the Prometheus text exposition (version 0.0.4) of the mail counters
 * (mta/delivery/mail_metrics.h), the queue and destination gauges of a scheduler summary,
 * connections, log lines dropped, the suppression list's reads and the process's start and
 * version. Built per scrape from what the daemon already keeps; the status sources (status.h) say
 * where it is.
 */
#ifndef SLUICE_PROM_H
#define SLUICE_PROM_H

#include "lib/buf.h"
#include "mta/http/status.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

void prom_render(const struct status_sources *src, struct buf *out);

#endif
