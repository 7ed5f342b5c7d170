/* The HTTP client on a real loop against a small HTTP/1.1 server on the same loop (loopback, a free
 * port): what a POST carries, a GET pinned to an address and bounded in size, the status and reply
 * it reports, a refused connection, a timeout, a cancelled request and a client freed with requests
 * running, each ending with no handle left. */
#include "lib/http_client.h"
#include "tests/unit/check.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/uvutil.h"

static uv_loop_t loop;

/* The server: answers each request with `status` once its body is in, or never when silent. */
struct server {
    uv_tcp_t listener;
    int port;
    int status;
    int silent;
    struct buf request; /* the last request, head and body */
    int requests;
};

struct conn {
    uv_tcp_t tcp;
    struct server *srv;
    struct buf in;
    uv_write_t write;
    char reply[128];
};

static void conn_on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    buf_free(&c->in);
    free(c);
}

static void conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    struct conn *c = h->data;
    (void)hint;
    out->base = buf_reserve(&c->in, 4096);
    out->len = 4096;
}

static void conn_on_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, conn_on_closed);
}

/* A whole request: the head, then Content-Length octets. */
static int request_complete(const struct buf *in)
{
    const char *end = memmem(in->data, in->len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    const char *cl = memmem(in->data, (size_t)(end - in->data), "Content-Length: ", 16);
    size_t body = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
    return in->len >= (size_t)(end + 4 - in->data) + body;
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    (void)b;
    if (n < 0) {
        uv_close((uv_handle_t *)s, conn_on_closed);
        return;
    }
    c->in.len += (size_t)n;
    if (!request_complete(&c->in))
        return;
    struct server *srv = c->srv;
    srv->requests++;
    buf_reset(&srv->request);
    buf_append(&srv->request, c->in.data, c->in.len);
    buf_append(&srv->request, "", 1);
    if (srv->silent)
        return; /* read on: the client's timeout closes it, and then this end */
    uv_read_stop(s);
    snprintf(c->reply, sizeof c->reply,
             "HTTP/1.1 %d Whatever\r\nContent-Length: 11\r\nConnection: close\r\n\r\nreply text",
             srv->status);
    strcat(c->reply, "!");
    uv_buf_t out = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
    uv_write(&c->write, s, &out, 1, conn_on_written);
}

static void server_on_connection(uv_stream_t *l, int status)
{
    struct server *srv = l->data;
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    c->srv = srv;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read);
    else
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
}

static void server_on_closed(uv_handle_t *h)
{
    ((struct server *)h->data)->listener.data = NULL;
}

/* Closes the listener and waits until it is (the server lives on the caller's stack). */
static void server_stop(struct server *srv)
{
    uv_close((uv_handle_t *)&srv->listener, server_on_closed);
    while (srv->listener.data != NULL)
        uv_run(&loop, UV_RUN_ONCE);
    buf_free(&srv->request);
}

static void server_start(struct server *srv)
{
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(&loop, &srv->listener);
    srv->listener.data = srv;
    CHECK_INT_EQ(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sin, 0), 0);
    CHECK_INT_EQ(uv_listen((uv_stream_t *)&srv->listener, 16, server_on_connection), 0);
    int len = sizeof sin;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&sin, &len);
    srv->port = ntohs(sin.sin_port);
}

/* What a request's callback saw. */
struct outcome {
    int done;
    int status;
    char error[256];
    char body[HTTP_REPLY_KEPT + 1];
};

static void request_on_done(void *arg, const struct http_result *res)
{
    struct outcome *o = arg;
    o->done++;
    o->status = res->status;
    snprintf(o->error, sizeof o->error, "%s", res->error);
    memcpy(o->body, res->body, res->body_len);
    o->body[res->body_len] = '\0';
}

static struct http_request *post(struct http_client *c, int port, uint64_t timeout_ms,
                                 struct outcome *o)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    const char *headers[] = {"X-Test: one", "Authorization: Bearer tok"};
    struct http_post p = {.url = url,
                          .content_type = "application/json",
                          .body = "[{\"a\":1}]",
                          .len = 9,
                          .headers = headers,
                          .nheaders = 2,
                          .timeout_ms = timeout_ms};
    return http_client_post(c, &p, request_on_done, o);
}

/* Runs the loop until the outcome is in (the client's own timeouts bound it). */
static void run_until_done(struct outcome *o)
{
    while (!o->done && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
}

static void test_post_carries_body_headers_and_status(struct http_client *c)
{
    struct server srv = {.status = 201};
    server_start(&srv);
    struct outcome o = {0};
    CHECK(post(c, srv.port, 5000, &o) != NULL);
    run_until_done(&o);
    CHECK_INT_EQ(o.done, 1);
    CHECK_INT_EQ(o.status, 201);
    CHECK_STR_EQ(o.body, "reply text!");
    CHECK_STR_EQ(o.error, "");
    CHECK(strstr(srv.request.data, "POST /hook HTTP/1.1\r\n") == srv.request.data);
    CHECK(strstr(srv.request.data, "\r\nContent-Type: application/json\r\n") != NULL);
    CHECK(strstr(srv.request.data, "\r\nX-Test: one\r\n") != NULL);
    CHECK(strstr(srv.request.data, "\r\nAuthorization: Bearer tok\r\n") != NULL);
    CHECK(strstr(srv.request.data, "\r\n\r\n[{\"a\":1}]") != NULL);

    srv.status = 503; /* a status is reported as is */
    o = (struct outcome){0};
    CHECK(post(c, srv.port, 5000, &o) != NULL);
    run_until_done(&o);
    CHECK_INT_EQ(o.status, 503);
    CHECK_INT_EQ(srv.requests, 2);

    srv.silent = 1; /* no answer: the timeout */
    o = (struct outcome){0};
    uint64_t start = uv_now(&loop);
    CHECK(post(c, srv.port, 300, &o) != NULL);
    run_until_done(&o);
    CHECK_INT_EQ(o.status, 0);
    CHECK(strlen(o.error) > 0);
    CHECK(uv_now(&loop) - start < 3000);

    /* Cancelled: the callback never runs. */
    o = (struct outcome){0};
    struct http_request *r = post(c, srv.port, 5000, &o);
    CHECK(r != NULL);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    http_request_cancel(r);
    CHECK_INT_EQ(o.done, 0);
    server_stop(&srv);
}

/* A GET to a name pinned to an address (no system resolver asked), its whole body kept; a body
 * over max_body ends the request with an error. */
static void test_get_pinned_and_bounded(struct http_client *c)
{
    struct server srv = {.status = 200};
    server_start(&srv);
    char url[64], resolve[64];
    snprintf(url, sizeof url, "http://policy.invalid:%d/.well-known/x.txt", srv.port);
    snprintf(resolve, sizeof resolve, "policy.invalid:%d:127.0.0.1", srv.port);
    struct http_get g = {.url = url, .timeout_ms = 5000, .max_body = 64, .resolve = resolve};
    struct outcome o = {0};
    CHECK(http_client_get(c, &g, request_on_done, &o) != NULL);
    run_until_done(&o);
    CHECK_INT_EQ(o.status, 200);
    CHECK_STR_EQ(o.body, "reply text!");
    CHECK(strstr(srv.request.data, "GET /.well-known/x.txt HTTP/1.1\r\n") == srv.request.data);
    CHECK(strstr(srv.request.data, "\r\nHost: policy.invalid:") != NULL);

    g.max_body = 5;
    o = (struct outcome){0};
    CHECK(http_client_get(c, &g, request_on_done, &o) != NULL);
    run_until_done(&o);
    CHECK_INT_EQ(o.status, 0);
    CHECK_STR_EQ(o.error, "reply body longer than 5 octets");
    CHECK_INT_EQ(srv.requests, 2);
    server_stop(&srv);
}

static void test_refused_connection(struct http_client *c)
{
    /* A port just given back: nothing listens there. */
    struct server srv = {0};
    server_start(&srv);
    server_stop(&srv);
    struct outcome o = {0};
    CHECK(post(c, srv.port, 5000, &o) != NULL);
    run_until_done(&o);
    CHECK_INT_EQ(o.status, 0);
    CHECK(strlen(o.error) > 0);
}

int main(void)
{
    uv_loop_init(&loop);
    struct http_client *c = http_client_new(&loop);
    CHECK(c != NULL);
    test_post_carries_body_headers_and_status(c);
    test_refused_connection(c);
    test_get_pinned_and_bounded(c);

    /* Freed with a request running: no callback, and every handle closes. */
    struct outcome o = {0};
    CHECK(post(c, 9, 5000, &o) != NULL);
    http_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(o.done, 0);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_http_client");
}
