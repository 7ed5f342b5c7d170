/*
 * An HTTP(S) client on the event loop: libcurl's multi-socket interface, with a uv_poll_t per
 * socket curl opens and one uv_timer_t for curl's timeouts, so no request ever blocks the loop.
 * Used by the event webhooks (mta/webhooks/) to POST batches; any module that fetches over HTTP can
 * share it. Only http and https URLs are followed; redirects are not; proxies come from the
 * environment as curl reads them (http_proxy, https_proxy, no_proxy). The client owns its requests.
 * MTA-STS (mta/delivery/mta_sts.c) GETs policies with it.
 */
#ifndef SLUICE_HTTP_CLIENT_H
#define SLUICE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct http_client;
struct http_request;

/* What to POST; everything is copied before http_client_post() returns. */
struct http_post {
    const char *url; /* http:// or https:// */
    const char *content_type;
    const char *body;
    size_t len;
    const char *const *headers; /* extra "Name: value" lines */
    size_t nheaders;
    const char *ca_file; /* PEM file of the CAs a https server's certificate must chain to;
                            NULL: the system's store */
    uint64_t timeout_ms; /* the whole request, connection included */
};

/* What to GET; copied before http_client_get() returns. */
struct http_get {
    const char *url;     /* https:// (or http://) */
    const char *ca_file; /* as in struct http_post */
    uint64_t timeout_ms; /* the whole request, connection included */
    size_t max_body;     /* a longer reply body ends the request with an error */
    /* "host:port:address": connect to address for host:port instead of asking the system's
     * resolver (the caller looked the name up itself); NULL: curl resolves. */
    const char *resolve;
};

/* How a request ended; valid during the callback only. */
struct http_result {
    int status;        /* the HTTP status, or 0 when no reply came (error says why) */
    const char *error; /* transport error text when status is 0, else "" */
    const char *body;  /* the start of the reply's body (up to HTTP_REPLY_KEPT octets; a GET's
                          whole body) */
    size_t body_len;
};

#define HTTP_REPLY_KEPT 256

typedef void http_done_cb(void *arg, const struct http_result *res);

/* NULL when curl cannot start (out of memory). */
struct http_client *http_client_new(uv_loop_t *loop);
/* Cancels the requests still running (their callbacks do not run), then frees the client once its
 * handles are closed. Not from inside a done callback. */
void http_client_free(struct http_client *c);

/* Starts a POST; cb runs once on the loop when it ends (never from inside this call). Returns NULL
 * when it could not start (a URL curl refuses): cb then never runs. */
struct http_request *http_client_post(struct http_client *c, const struct http_post *p,
                                      http_done_cb *cb, void *arg);
/* Starts a GET, as http_client_post. The status is 0 (error says why) when the body is longer
 * than max_body. */
struct http_request *http_client_get(struct http_client *c, const struct http_get *g,
                                     http_done_cb *cb, void *arg);
/* Ends a request that has not called back yet; its callback never runs. */
void http_request_cancel(struct http_request *r);

#endif
