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
#include <openssl/ssl.h>
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
/* What http.* names in files: the bearer tokens and, with http.tls, the certificate. */
struct http_files {
    struct http_tokens *tokens; /* NULL: none */
    SSL_CTX *ssl;               /* NULL: plain HTTP */
};

/* Reads cfg's files into *out (all NULL when nothing listens). Returns 0, or -1 with err (nothing
 * kept). Blocking: on the thread pool at a reload. */
int http_files_load(const struct config *cfg, struct http_files *out, struct buf *err);
void http_files_free(struct http_files *f);

/* A reload, in two steps so that it is applied whole or not at all. http_server_prepare listens
 * on cfg's addresses *hp does not (making the server when *hp is NULL and cfg has some): 0, or -1
 * with err and nothing changed. Then, in the same loop callback, http_server_commit (cfg's files,
 * taken, and limits for the connections to come; addresses cfg no longer has are closed, their
 * open connections finish; no address left closes the server, *hp NULL) or http_server_abandon
 * (what prepare opened is closed). */
int http_server_prepare(struct http_server **hp, uv_loop_t *loop, const struct config *cfg,
                        const struct http_route *routes, size_t n, void *arg, struct buf *err);
void http_server_commit(struct http_server **hp, const struct config *cfg,
                        struct http_files *files);
void http_server_abandon(struct http_server **hp);

/* Connections open now. */
unsigned http_server_connections(const struct http_server *h);
/* Stops listening; requests in progress finish, keep-alive ends; the memory goes once every
 * connection has closed (at most http.request_timeout later), so the loop must run. NULL is fine.
 */
void http_server_close(struct http_server *h);

#endif
