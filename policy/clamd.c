#include "policy/clamd.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

struct clamd_scan {
    uv_loop_t *loop;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } conn;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    uint64_t timeout_ms;
    int handles; /* open handles and lookups; the scan is freed at 0 once freed is set */
    unsigned conn_open : 1;
    unsigned resolving : 1; /* the host name lookup is in flight */
    unsigned connected : 1;
    unsigned full : 1;      /* clamd_scan_write returned 1; on_writable is owed */
    unsigned finishing : 1; /* clamd_scan_finish was called */
    unsigned done : 1;      /* the result is known (and delivered once finishing) */
    unsigned delivered : 1;
    unsigned freed : 1;
    size_t queued;    /* octets not yet written to clamd */
    struct buf early; /* the stream before the connection is up */
    char reply[CLAMD_REPLY_MAX + 1];
    size_t reply_len;
    char name[CLAMD_REPLY_MAX + 1];
    char error[160];
    struct clamd_result result;
    clamd_writable_cb on_writable;
    clamd_result_cb on_result;
    void *arg, *result_arg;
};

struct clamd_write {
    uv_write_t req;
    struct clamd_scan *scan;
    size_t len;
    char data[];
};

static void scan_maybe_free(struct clamd_scan *c)
{
    if (c->freed && c->handles == 0) {
        buf_free(&c->early);
        free(c);
    }
}

static void scan_on_handle_closed(uv_handle_t *h)
{
    struct clamd_scan *c = h->data;
    c->handles--;
    scan_maybe_free(c);
}

static void scan_close_conn(struct clamd_scan *c)
{
    if (!c->conn_open)
        return;
    c->conn_open = 0;
    uv_close(&c->conn.handle, scan_on_handle_closed);
}

/* The result is known: hand it over if it was asked for. */
static void scan_deliver(struct clamd_scan *c)
{
    if (!c->done || !c->finishing || c->delivered || c->freed)
        return;
    c->delivered = 1;
    uv_timer_stop(&c->timer);
    c->on_result(c->result_arg, &c->result);
}

/* Ends the scan with an error; a writer waiting for room is released (its data is dropped). */
static void scan_fail(struct clamd_scan *c, const char *what, int status)
{
    if (c->done)
        return;
    if (status != 0)
        snprintf(c->error, sizeof c->error, "%s: %s", what, uv_strerror(status));
    else
        snprintf(c->error, sizeof c->error, "%s", what);
    c->result = (struct clamd_result){.status = CLAMD_ERROR, .error = c->error};
    c->done = 1;
    scan_close_conn(c);
    if (c->full && !c->freed) {
        c->full = 0;
        c->on_writable(c->arg);
    }
    scan_deliver(c);
}

/* The timer bounds every wait on clamd: it runs while something is owed by clamd. */
static void scan_on_timeout(uv_timer_t *t)
{
    scan_fail(t->data, "clamd timed out", 0);
}

static void scan_arm(struct clamd_scan *c)
{
    if (c->done || c->freed)
        return;
    if (!c->connected || c->queued > 0 || c->finishing)
        uv_timer_start(&c->timer, scan_on_timeout, c->timeout_ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void scan_on_written(uv_write_t *req, int status)
{
    struct clamd_write *w = container_of(req, struct clamd_write, req);
    struct clamd_scan *c = w->scan;
    c->queued -= w->len;
    free(w);
    if (c->freed || c->done)
        return;
    if (status < 0) {
        scan_fail(c, "writing to clamd", status);
        return;
    }
    if (c->full && c->queued < CLAMD_QUEUE_HIGH / 2) {
        c->full = 0;
        c->on_writable(c->arg);
    }
    scan_arm(c);
}

/* Sends octets as they are (framing is the caller's). */
static void scan_send(struct clamd_scan *c, const char *data, size_t len)
{
    if (!c->connected) {
        buf_append(&c->early, data, len);
        c->queued += len;
        return;
    }
    struct clamd_write *w = xmalloc(sizeof *w + len);
    w->scan = c;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    c->queued += len;
    int rc = uv_write(&w->req, &c->conn.stream, &b, 1, scan_on_written);
    if (rc < 0) {
        c->queued -= len;
        free(w);
        snprintf(c->error, sizeof c->error, "writing to clamd: %s", uv_strerror(rc));
        c->result = (struct clamd_result){.status = CLAMD_ERROR, .error = c->error};
        c->done = 1;
        scan_close_conn(c);
        return;
    }
    scan_arm(c);
}

static void scan_read_reply(struct clamd_scan *c);

static void scan_on_connected(uv_connect_t *req, int status)
{
    struct clamd_scan *c = req->data;
    if (c->freed || c->done)
        return;
    if (status < 0) {
        scan_fail(c, "connecting to clamd", status);
        return;
    }
    c->connected = 1;
    c->queued -= c->early.len;
    struct buf early = c->early;
    c->early = (struct buf)BUF_INIT;
    scan_send(c, early.data, early.len);
    buf_free(&early);
    if (c->finishing && !c->done)
        scan_read_reply(c);
}

static void scan_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct clamd_scan *c = req->data;
    c->handles--;
    c->resolving = 0;
    if (c->freed || c->done || status < 0) {
        if (!c->freed && !c->done)
            scan_fail(c, "resolving clamd's host", status);
        uv_freeaddrinfo(res);
        scan_maybe_free(c);
        return;
    }
    uv_tcp_init(c->loop, &c->conn.tcp);
    c->conn.handle.data = c;
    c->conn_open = 1;
    c->handles++;
    int rc = uv_tcp_connect(&c->connect_req, &c->conn.tcp, res->ai_addr, scan_on_connected);
    uv_freeaddrinfo(res);
    if (rc < 0)
        scan_fail(c, "connecting to clamd", rc);
}

/* "host:port" or "[v6]:port": the lookup runs on the thread pool. */
static int scan_resolve(struct clamd_scan *c, const char *address)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL)
        return UV_EINVAL;
    char host[256];
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']')
        h++, hlen -= 2;
    if (hlen == 0 || hlen >= sizeof host)
        return UV_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(c->loop, &c->gai, scan_on_resolved, host, colon + 1, &hints);
    if (rc == 0) {
        c->handles++;
        c->resolving = 1;
    }
    return rc;
}

struct clamd_scan *clamd_scan_new(uv_loop_t *loop, const char *address, uint64_t timeout_ms,
                                  clamd_writable_cb on_writable, void *arg)
{
    struct clamd_scan *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->timeout_ms = timeout_ms;
    c->on_writable = on_writable;
    c->arg = arg;
    c->gai.data = c->connect_req.data = c;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    scan_arm(c);
    scan_send(c, "zINSTREAM", sizeof "zINSTREAM"); /* the NUL is part of the command */
    int rc;
    if (address[0] == '/') {
        uv_pipe_init(loop, &c->conn.pipe, 0);
        c->conn.handle.data = c;
        c->conn_open = 1;
        c->handles++;
        uv_pipe_connect(&c->connect_req, &c->conn.pipe, address, scan_on_connected);
        rc = 0;
    } else {
        rc = scan_resolve(c, address);
    }
    if (rc < 0) {
        snprintf(c->error, sizeof c->error, "clamd address %s: %s", address, uv_strerror(rc));
        c->result = (struct clamd_result){.status = CLAMD_ERROR, .error = c->error};
        c->done = 1;
    }
    return c;
}

int clamd_scan_write(struct clamd_scan *c, const char *data, size_t len)
{
    while (len > 0 && !c->done) {
        uint32_t n = len > (1u << 30) ? (1u << 30) : (uint32_t)len;
        uint32_t be = htonl(n);
        scan_send(c, (const char *)&be, sizeof be);
        scan_send(c, data, n);
        data += n, len -= n;
    }
    if (!c->done && c->queued >= CLAMD_QUEUE_HIGH)
        c->full = 1;
    return c->full;
}

/* Reads clamd's one reply, which ends with NUL (z commands) or a newline, or at EOF. */
static void scan_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct clamd_scan *c = h->data;
    b->base = c->reply + c->reply_len;
    b->len = CLAMD_REPLY_MAX - c->reply_len;
}

static void scan_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *unused)
{
    struct clamd_scan *c = st->data;
    if (c->done || c->freed)
        return;
    if (n < 0 && c->reply_len == 0) {
        scan_fail(
            c, n == UV_EOF ? "clamd closed the connection without a reply" : "reading from clamd",
            n == UV_EOF ? 0 : (int)n);
        return;
    }
    if (n > 0)
        c->reply_len += (size_t)n;
    int complete = n < 0 || c->reply_len == CLAMD_REPLY_MAX ||
                   memchr(c->reply, '\0', c->reply_len) != NULL ||
                   memchr(c->reply, '\n', c->reply_len) != NULL;
    if (!complete)
        return;
    clamd_reply_parse(c->reply, c->reply_len, c->name, &c->result);
    if (c->result.status == CLAMD_ERROR) {
        snprintf(c->error, sizeof c->error, "clamd: %s", c->result.error);
        c->result.error = c->error;
    }
    c->done = 1;
    scan_close_conn(c);
    scan_deliver(c);
}

static void scan_read_reply(struct clamd_scan *c)
{
    int rc = uv_read_start(&c->conn.stream, scan_on_alloc, scan_on_read);
    if (rc < 0)
        scan_fail(c, "reading from clamd", rc);
}

static void scan_on_settled(uv_timer_t *t)
{
    scan_deliver(t->data);
}

void clamd_scan_finish(struct clamd_scan *c, clamd_result_cb cb, void *arg)
{
    c->on_result = cb;
    c->result_arg = arg;
    c->finishing = 1;
    if (c->done) { /* an error came first: report it from the loop, not from inside this call */
        uv_timer_start(&c->timer, scan_on_settled, 0, 0);
        return;
    }
    static const char end[4] = {0, 0, 0, 0};
    scan_send(c, end, sizeof end);
    if (c->done) {
        uv_timer_start(&c->timer, scan_on_settled, 0, 0);
        return;
    }
    if (c->connected)
        scan_read_reply(c);
    scan_arm(c);
}

void clamd_scan_free(struct clamd_scan *c)
{
    if (c == NULL)
        return;
    c->freed = 1;
    scan_close_conn(c);
    uv_close((uv_handle_t *)&c->timer, scan_on_handle_closed);
    if (c->resolving) /* the lookup reports UV_EAI_CANCELED, or finishes unseen */
        uv_cancel((uv_req_t *)&c->gai);
}

void clamd_reply_parse(const char *reply, size_t len, char *name, struct clamd_result *res)
{
    size_t n = 0;
    while (n < len && n < CLAMD_REPLY_MAX && reply[n] != '\0' && reply[n] != '\n' &&
           reply[n] != '\r')
        n++;
    for (size_t i = 0; i < n; i++) /* the name ends up in a reply and a log */
        name[i] = reply[i] >= 0x20 && reply[i] < 0x7f ? reply[i] : '?';
    name[n] = '\0';
    const char *text = name;
    if (strncmp(text, "stream: ", 8) == 0)
        text += 8;
    size_t tlen = strlen(text);
    *res = (struct clamd_result){.status = CLAMD_ERROR, .error = name};
    if (strcmp(text, "OK") == 0) {
        res->status = CLAMD_CLEAN;
        res->error = NULL;
    } else if (tlen > 6 && strcmp(text + tlen - 6, " FOUND") == 0) {
        memmove(name, text, tlen - 6);
        name[tlen - 6] = '\0';
        res->status = CLAMD_FOUND;
        res->virus = name;
        res->error = NULL;
    } else if (n == 0) {
        res->error = "empty reply";
    }
}
