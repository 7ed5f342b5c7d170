/*
 * GET /: the status page, the status JSON (status.h, the same builder as GET /api/v1/status and
 * `sluice status`) rendered as one HTML document with its style inline and no other asset, that
 * reloads itself (meta refresh): the queue by state, the counts of the last minutes, connections,
 * the destinations held back and why, the busiest ones, and the recent alarms. Every text taken
 * from the JSON (names and replies from the network, names from the configuration) is escaped.
 */
#ifndef SLUICE_STATUS_PAGE_H
#define SLUICE_STATUS_PAGE_H

#include <stddef.h>

#include "lib/buf.h"

#define STATUS_PAGE_CONTENT_TYPE "text/html; charset=utf-8"
#define STATUS_PAGE_REFRESH_S 10

/* Appends the page for the status JSON json[0..len). Returns 0, or -EINVAL when it is not a JSON
 * object (nothing appended). */
int status_page_render(const char *json, size_t len, struct buf *out);

#endif
