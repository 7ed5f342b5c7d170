/*
 * The HTTP server of the operations interface, on the daemon's own libuv loop: h2o (HTTP/1.1,
 * optionally over TLS) parses requests; this module listens on http.listen, caps connections,
 * sizes and time, authenticates every request with a bearer token (http_auth.h) and hands it to
 * the row of the route table (http_route.h) that matches. The daemon owns the server and gives it
 * the table; handlers answer at once from what the daemon keeps, or later (http_later_answer, for
 * an injection waiting for its commit) without holding the loop.
 */
#ifndef SLUICE_HTTP_SERVER_H
#define SLUICE_HTTP_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/http/http_route.h"

struct http_server;

/* Listens on cfg's http.listen addresses, with its TLS and tokens (read here: call before giving
 * up root). *out stays NULL when http.listen is empty: nothing listens, nothing costs. routes (n
 * rows) and arg stay valid until the server has closed. Returns 0, or -1 with the reason in err
 * (then nothing is left open). Synchronous: at start. */
int http_server_open(uv_loop_t *loop, const struct config *cfg, const struct http_route *routes,
                     size_t n, void *arg, struct http_server **out, struct buf *err);
/* Connections open now. */
unsigned http_server_connections(const struct http_server *h);
/* Stops listening; requests in progress finish, keep-alive ends; the memory goes once every
 * connection has closed (at most http.request_timeout later), so the loop must run. NULL is fine.
 */
void http_server_close(struct http_server *h);

#endif
