/*
 * The HTTP interface's routes and request parts: one table maps a method and a path to a handler
 * and says who may call it, and a query string yields its parameters. New endpoints (the admin
 * API, injection) are rows of the table that http_server.c holds. Pure functions of the request's
 * bytes, which are untrusted: fuzzed (tests/fuzz/fuzz_http_request.c).
 */
#ifndef SLUICE_HTTP_ROUTE_H
#define SLUICE_HTTP_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>

#include "lib/buf.h"

enum http_access {
    HTTP_ACCESS_TOKEN,   /* a bearer token of http.tokens, always */
    HTTP_ACCESS_METRICS, /* a token, unless http.metrics_public */
    HTTP_ACCESS_PAGE,    /* a token, unless http.status_page_loopback and the client is on
                            a loopback address */
};

struct http_later;

/* What a handler is given: the caller, the parameters after '?' and the request's body (valid
 * until the handler returns). */
struct http_call {
    const char *user; /* the token's user; NULL for a public /metrics */
    const char *query;
    size_t query_len;
    const char *body;
    size_t body_len;
    const struct sockaddr *peer; /* the client's address */
    struct http_later *later;    /* to answer after returning (HTTP_ANSWER_LATER) */
    const char *rest;            /* the path's last segment when the route's ends in '*' */
    size_t rest_len;
};

/* A handler's status that says the answer comes later, through http_later_answer. */
#define HTTP_ANSWER_LATER 0

/* What it answers: status (200 unless it says otherwise), the body and its type. A status other
 * than 200 sends {"error": body} unless json_error is set: then the body is sent as it is. */
struct http_answer {
    int status;
    const char *content_type; /* static */
    struct buf body;
    int json_error;
};

struct http_route {
    const char *method; /* "GET" */
    /* Matched whole ("/api/v1/status"), or, ending in '*', its head and one more segment. */
    const char *path;
    enum http_access access;
    void (*handler)(void *arg, const struct http_call *call, struct http_answer *answer);
};

/* The client of a later answer has gone (its connection closed): on_gone(owner) runs once, and
 * the answer is no longer to be given. */
void http_later_watch(struct http_later *later, void (*on_gone)(void *owner), void *owner);
/* Gives the answer a handler deferred (its body is freed); at most once, never after on_gone. */
void http_later_answer(struct http_later *later, struct http_answer *answer);

/* A later answer streamed instead: status 200 and content_type (static), its body sent a piece at
 * a time (chunked) as the handler writes it, each piece once h2o has taken the one before, so a
 * slow client holds one piece in memory, never the whole answer. Takes the later's watch. */
struct http_stream;
struct http_stream *http_later_stream(struct http_later *later, const char *content_type);
/* The next bytes of the body; the head goes with the first. Nothing once the client has gone. */
void http_stream_write(struct http_stream *st, const char *data, size_t len);
/* Before writing more: 0, go on; 1, h2o still holds the piece before (the client reads slowly):
 * wake(arg) runs once when it has taken it or the client has gone; -1, the client has gone. A
 * client that takes no piece for http.request_timeout is cut off. */
int http_stream_full(struct http_stream *st, void (*wake)(void *arg), void *arg);
/* The end, once; st is freed. status 0: the body is whole. Otherwise it is cut short (the
 * connection is closed), or, when nothing was written yet, answered as http_later_answer does
 * an error of that status with the message why. */
void http_stream_end(struct http_stream *st, int status, const char *why);

/* The route for method and path (the target up to '?'), or NULL with *status 404 (no such path)
 * or 405 (the path exists for other methods; *allow names them, static). */
const struct http_route *http_route_find(const struct http_route *table, size_t n,
                                         const char *method, size_t method_len, const char *path,
                                         size_t path_len, int *status, const char **allow);

/* The part of path that route's '*' matched (not decoded): its length, 0 for a route without. */
size_t http_route_rest(const struct http_route *route, const char *path, size_t path_len,
                       const char **rest);

/* Splits a request target at its first '?': the path and the query (len 0: none). */
void http_target_split(const char *target, size_t len, size_t *path_len, const char **query,
                       size_t *query_len);

/* The value of parameter name in query ("a=1&b=x", percent-decoded and '+' as a space) into
 * out[size], NUL-terminated. Returns 1 found, 0 absent, -1 malformed (a bad %-escape, a decoded
 * NUL, or longer than size - 1). */
int http_query_get(const char *query, size_t len, const char *name, char *out, size_t size);

#endif
