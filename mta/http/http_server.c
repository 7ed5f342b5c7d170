#include "mta/http/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <h2o.h>
#include <h2o/http1.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/tls.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/http/http_auth.h"

/* Connections waiting to be accepted per listening socket. */
#define HTTP_BACKLOG 128

/* A listening socket or a connection; h2o keeps a connection's socket in tcp.data. */
struct http_handle {
    uv_tcp_t tcp;
    struct http_server *h;
    unsigned *count; /* the server's count of these, lowered when it has closed */
};

/* A listening socket: its handle first, so that handle_on_close frees it whole. */
struct http_listener {
    struct http_handle handle;
    struct http_listener *next;
    char address[]; /* as http.listen has it */
};

/* The one h2o handler: routes every path itself. */
struct http_handler {
    h2o_handler_t super;
    struct http_server *h;
};

struct http_server {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl;               /* NULL: plain HTTP */
    struct http_tokens *tokens; /* NULL: no token is valid */
    const struct http_route *routes;
    size_t nroutes;
    void *arg;
    struct http_listener *listeners; /* accepting */
    struct http_listener *prepared;  /* bound by a reload not yet committed */
    int fresh;                       /* made by that reload: it goes if the reload does not */
    unsigned open_listeners, conns, max_conns;
    size_t max_header;
    int metrics_public;
    int page_loopback; /* http.status_page_loopback */
    int closing;
    uv_timer_t dispose; /* frees the server from a timer callback, see server_on_dispose */
};

static void listener_on_connection(uv_stream_t *server, int status);
static void handle_on_close(uv_handle_t *handle);
static int handler_on_req(h2o_handler_t *self, h2o_req_t *req);
static void server_maybe_dispose(struct http_server *h);

/* ---- answers ---- */

static void respond(h2o_req_t *req, int status, const char *reason, const char *type,
                    const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
}

/* The reason phrase is ours, never a handler's text, so nothing can reach the status line. */
static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 503:
        return "Service Unavailable";
    }
    return status < 500 ? "Client Error" : "Server Error";
}

/* {"error": message}, the message JSON-escaped (NULL: the reason phrase). */
static void respond_error(h2o_req_t *req, int status, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", message != NULL ? message : reason_of(status));
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    const char *body = text != NULL ? text : "{}";
    respond(req, status, reason_of(status), "application/json", body, strlen(body));
    free(text);
    json_decref(o);
}

/* RFC 6750 §3: a missing token gets the challenge alone, a wrong one error="invalid_token". */
static void respond_unauthorized(h2o_req_t *req, int token_given)
{
    static const char plain[] = "Bearer realm=\"sluice\"";
    static const char invalid[] = "Bearer realm=\"sluice\", error=\"invalid_token\"";
    const char *v = token_given ? invalid : plain;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, v, strlen(v));
    respond_error(req, 401, NULL);
}

/* ---- a request ---- */

static size_t head_size(const h2o_req_t *req)
{
    size_t n = req->method.len + req->path.len;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

/* The user of the request's bearer token; NULL with *given set when it carries a wrong one. */
static const char *request_user(struct http_server *h, h2o_req_t *req, int *given)
{
    *given = 0;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return NULL;
    *given = 1;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    const char *token;
    size_t len;
    if (!http_bearer_parse(v->base, v->len, &token, &len))
        return NULL;
    return http_tokens_user(h->tokens, token, len);
}

/* Whether the route answers without a token: /metrics when public, the status page to a client on
 * a loopback address when http.status_page_loopback. */
static int request_public(struct http_server *h, h2o_req_t *req, const struct http_route *route)
{
    if (route == NULL)
        return 0;
    if (route->access == HTTP_ACCESS_METRICS)
        return h->metrics_public;
    struct sockaddr_storage peer;
    return route->access == HTTP_ACCESS_PAGE && h->page_loopback &&
           req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&peer) > 0 &&
           sockaddr_is_loopback(&peer);
}

static void request_log(const h2o_req_t *req, int status, const char *user)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "http.request");
    log_strn(&r, "method", req->method.base, req->method.len);
    log_strn(&r, "path", req->path.base, req->path.len < 256 ? req->path.len : 256);
    log_int(&r, "status", status);
    if (user != NULL)
        log_str(&r, "user", user);
    log_end(&r);
}

/* ---- answers given later ---- */

/* Lives in the request's memory: h2o disposes of it with the request, answered or not. */
struct http_later {
    h2o_req_t *req;
    const char *user;
    void (*on_gone)(void *owner);
    void *owner;
    int answered;
    struct http_watch *watch; /* while the answer is awaited, else NULL */
};

/* Watches a connection for the client leaving while its answer is awaited (h2o stops reading once
 * a request is whole, and reads again only after the answer). The connection is not read, only
 * polled for its end: a read through libuv that fails (a reset) makes the stream unwritable, and
 * h2o 2.2 ignores the error of the write that follows, so the answer's write callback, and with it
 * the close, would never come. Unread, the stream stays writable, the answer's write fails on the
 * socket and h2o closes the connection. A request pipelined behind waits in the kernel for h2o. */
struct http_watch {
    uv_poll_t poll;
    int fd; /* a duplicate of the connection's: libuv polls one handle per descriptor */
    struct http_later *later;
};

static void watch_on_event(uv_poll_t *poll, int status, int events);
static void watch_on_close(uv_handle_t *handle);

static void later_watch_start(struct http_later *later)
{
    h2o_req_t *req = later->req;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
    if (fd < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return; /* unwatched: the client's leaving shows when its answer is written */
    struct http_watch *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    if (uv_poll_init_socket(req->conn->ctx->loop, &w->poll, fd) != 0) {
        close(fd);
        free(w);
        return;
    }
    w->later = later;
    later->watch = w;
    uv_poll_start(&w->poll, UV_DISCONNECT, watch_on_event);
}

static void later_watch_stop(struct http_later *later)
{
    struct http_watch *w = later->watch;
    if (w == NULL)
        return;
    later->watch = NULL;
    uv_close((uv_handle_t *)&w->poll, watch_on_close);
}

static void watch_on_close(uv_handle_t *handle)
{
    struct http_watch *w = container_of((uv_poll_t *)handle, struct http_watch, poll);
    close(w->fd);
    free(w);
}

static void later_on_dispose(void *p)
{
    struct http_later *later = p;
    later_watch_stop(later);
    if (!later->answered && later->on_gone != NULL)
        later->on_gone(later->owner);
}

/* The client closed or reset the connection (or it failed) before its answer: the handler's work
 * is called off, and h2o closes the connection after an answer nobody reads. 499 is the status logs
 * give a client's leaving (nginx's "client closed request"). */
static void watch_on_event(uv_poll_t *poll, int status, int events)
{
    (void)status, (void)events;
    struct http_watch *w = container_of(poll, struct http_watch, poll);
    struct http_later *later = w->later;
    h2o_req_t *req = later->req;
    later_watch_stop(later);
    later->answered = 1;
    if (later->on_gone != NULL)
        later->on_gone(later->owner);
    req->http1_is_persistent = 0;
    respond_error(req, 499, "the client closed the connection");
    request_log(req, 499, later->user);
}

void http_later_watch(struct http_later *later, void (*on_gone)(void *owner), void *owner)
{
    later->on_gone = on_gone;
    later->owner = owner;
}

void http_later_answer(struct http_later *later, struct http_answer *answer)
{
    h2o_req_t *req = later->req;
    later_watch_stop(later);
    later->answered = 1;
    const char *body = answer->body.data != NULL ? answer->body.data : "";
    if (answer->status == 200 || answer->json_error)
        respond(req, answer->status, reason_of(answer->status), answer->content_type, body,
                answer->body.len);
    else
        respond_error(req, answer->status, answer->body.data);
    request_log(req, answer->status, later->user);
    buf_free(&answer->body);
}

/* ---- answers streamed ---- */

struct http_stream {
    h2o_generator_t generator; /* first: h2o hands it back */
    h2o_req_t *req;            /* NULL once the client has gone */
    struct http_later *later;  /* until the head is sent */
    const char *content_type;
    struct buf held; /* the piece h2o holds (writes from it until it proceeds) */
    struct buf next; /* written since */
    int started, holding, ended, status;
    void (*wake)(void *arg); /* the writer waits for h2o to take the held piece */
    void *wake_arg;
    h2o_timeout_entry_t stall; /* while h2o holds a piece */
};

static void stream_wake(struct http_stream *st)
{
    void (*wake)(void *) = st->wake;
    st->wake = NULL;
    if (wake != NULL)
        wake(st->wake_arg);
}

static void stream_free(struct http_stream *st)
{
    if (h2o_timeout_is_linked(&st->stall))
        h2o_timeout_unlink(&st->stall);
    buf_free(&st->held);
    buf_free(&st->next);
    free(st);
}

/* The client left before the head (watch_on_event answered it 499). */
static void stream_on_gone(void *owner)
{
    struct http_stream *st = owner;
    st->req = NULL;
    st->later = NULL;
    stream_wake(st);
}

/* The client took nothing for http.request_timeout: the connection is shut, so that h2o's write
 * fails and it closes the connection and stops the generator (it has no timeout of its own here). */
static void stream_on_stall(h2o_timeout_entry_t *entry)
{
    struct http_stream *st = container_of(entry, struct http_stream, stall);
    h2o_socket_t *sock = st->req->conn->callbacks->get_socket(st->req->conn);
    int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void stream_start(struct http_stream *st)
{
    h2o_req_t *req = st->req;
    struct http_later *later = st->later;
    later_watch_stop(later);
    later->answered = 1;
    st->later = NULL;
    st->started = 1;
    req->res.status = 200;
    req->res.reason = reason_of(200);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, st->content_type,
                   strlen(st->content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_start_response(req, &st->generator);
    request_log(req, 200, later->user);
}

/* Hands what was written to h2o. The last piece goes into the request's memory, which h2o keeps
 * until it is sent, since st is freed at once. */
static void stream_send(struct http_stream *st, h2o_send_state_t state)
{
    h2o_req_t *req = st->req;
    if (!st->started)
        stream_start(st);
    struct buf t = st->held;
    st->held = st->next;
    st->next = t;
    buf_reset(&st->next);
    h2o_iovec_t piece = h2o_iovec_init(st->held.data, st->held.len);
    if (state == H2O_SEND_STATE_FINAL && piece.len > 0) {
        piece.base = h2o_mem_alloc_pool(&req->pool, piece.len);
        memcpy(piece.base, st->held.data, piece.len);
    }
    if (state == H2O_SEND_STATE_IN_PROGRESS) {
        st->holding = 1;
        h2o_timeout_link(req->conn->ctx->loop, &req->conn->ctx->http1.req_timeout, &st->stall);
    }
    h2o_send(req, &piece, piece.len > 0, state);
}

/* The end once h2o holds nothing of st. */
static void stream_finish(struct http_stream *st, const char *why)
{
    if (st->req != NULL && st->status == 0) {
        stream_send(st, H2O_SEND_STATE_FINAL);
    } else if (st->req != NULL && st->started) {
        h2o_send(st->req, NULL, 0, H2O_SEND_STATE_ERROR);
    } else if (st->req != NULL) {
        struct http_answer answer = {st->status, "application/json", BUF_INIT, 0};
        buf_printf(&answer.body, "%s", why);
        http_later_answer(st->later, &answer);
    }
    stream_free(st);
}

static void stream_on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    struct http_stream *st = (struct http_stream *)generator;
    st->holding = 0;
    h2o_timeout_unlink(&st->stall);
    buf_reset(&st->held);
    if (st->ended)
        stream_finish(st, NULL);
    else if (st->next.len > 0)
        stream_send(st, H2O_SEND_STATE_IN_PROGRESS);
    else
        stream_wake(st);
}

/* The connection closed (the client left, or a write failed) before the end. */
static void stream_on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    struct http_stream *st = (struct http_stream *)generator;
    st->req = NULL;
    st->holding = 0;
    if (h2o_timeout_is_linked(&st->stall))
        h2o_timeout_unlink(&st->stall);
    if (st->ended)
        stream_free(st);
    else
        stream_wake(st);
}

struct http_stream *http_later_stream(struct http_later *later, const char *content_type)
{
    struct http_stream *st = xcalloc(1, sizeof *st);
    st->generator = (h2o_generator_t){stream_on_proceed, stream_on_stop};
    st->req = later->req;
    st->later = later;
    st->content_type = content_type;
    st->stall.cb = stream_on_stall;
    http_later_watch(later, stream_on_gone, st);
    return st;
}

void http_stream_write(struct http_stream *st, const char *data, size_t len)
{
    if (st->req == NULL)
        return;
    buf_append(&st->next, data, len);
    if (!st->holding)
        stream_send(st, H2O_SEND_STATE_IN_PROGRESS);
}

int http_stream_full(struct http_stream *st, void (*wake)(void *arg), void *arg)
{
    if (st->req == NULL)
        return -1;
    if (!st->holding)
        return 0;
    st->wake = wake;
    st->wake_arg = arg;
    return 1;
}

void http_stream_end(struct http_stream *st, int status, const char *why)
{
    st->ended = 1;
    st->status = status;
    st->wake = NULL;
    if (!st->holding)
        stream_finish(st, why);
}

static int handler_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_server *h = ((struct http_handler *)self)->h;
    if (head_size(req) > h->max_header) {
        respond_error(req, 431, NULL);
        request_log(req, 431, NULL);
        return 0;
    }
    size_t path_len, query_len;
    const char *query;
    http_target_split(req->path.base, req->path.len, &path_len, &query, &query_len);
    int status;
    const char *allow;
    const struct http_route *route =
        http_route_find(h->routes, h->nroutes, req->method.base, req->method.len, req->path.base,
                        path_len, &status, &allow);
    int given;
    const char *user = request_user(h, req, &given);
    int public = request_public(h, req, route);
    /* Who is not authenticated learns nothing, not even which paths exist. */
    if (user == NULL && !public) {
        respond_unauthorized(req, given);
        request_log(req, 401, NULL);
        return 0;
    }
    if (route == NULL) {
        if (allow != NULL)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow,
                           strlen(allow));
        respond_error(req, status, NULL);
        request_log(req, status, user);
        return 0;
    }
    struct http_later *later = h2o_mem_alloc_shared(&req->pool, sizeof *later, later_on_dispose);
    /* The name is the tokens table's, which a reload may replace before a later answer. */
    if (user != NULL)
        user = h2o_strdup(&req->pool, user, SIZE_MAX).base;
    *later = (struct http_later){.req = req, .user = user};
    struct sockaddr_storage peer = {0};
    req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&peer);
    struct http_call call = {.user = user,
                             .query = query,
                             .query_len = query_len,
                             .body = req->entity.base,
                             .body_len = req->entity.len,
                             .peer = (const struct sockaddr *)&peer,
                             .later = later};
    call.rest_len = http_route_rest(route, req->path.base, path_len, &call.rest);
    struct http_answer answer = {200, "application/json", BUF_INIT, 0};
    route->handler(h->arg, &call, &answer);
    if (answer.status != HTTP_ANSWER_LATER)
        http_later_answer(later, &answer);
    else if (!later->answered)
        later_watch_start(later);
    return 0;
}

/* ---- connections ---- */

static void handle_on_close(uv_handle_t *handle)
{
    struct http_handle *c = container_of((uv_tcp_t *)handle, struct http_handle, tcp);
    struct http_server *h = c->h;
    if (c->count != NULL)
        (*c->count)--;
    free(c);
    server_maybe_dispose(h);
}

static void listener_on_connection(uv_stream_t *server, int status)
{
    struct http_handle *l = container_of((uv_tcp_t *)server, struct http_handle, tcp);
    struct http_server *h = l->h;
    if (status < 0)
        return;
    struct http_handle *c = xcalloc(1, sizeof *c);
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, handle_on_close);
        return;
    }
    if (h->conns >= h->max_conns || h->closing) {
        log_msg(LOG_WARN, "http.refused", "%u connections open (http.max_connections): closed",
                h->conns);
        uv_close((uv_handle_t *)&c->tcp, handle_on_close);
        return;
    }
    c->count = &h->conns;
    h->conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, handle_on_close);
    h2o_accept(&h->accept_ctx, sock);
}

/* ---- the server's life ---- */

/* "a.b.c.d:port" or "[v6]:port" (already checked by the configuration). */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return -EINVAL;
    int port = atoi(colon + 1);
    size_t hl = (size_t)(colon - s);
    int v6 = s[0] == '[';
    if (v6)
        s++, hl -= 2;
    if (hl >= sizeof host)
        return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    return v6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss)
              : uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

static void server_setup_h2o(struct http_server *h)
{
    h2o_config_init(&h->config);
    h->config.http1.upgrade_to_http2 = 0;
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("sluice"));
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct http_handler *handler =
        (struct http_handler *)h2o_create_handler(path, sizeof(struct http_handler));
    handler->super.on_req = handler_on_req;
    handler->h = h;
}

/* Listens on address, the listener put on *list. Returns 0, or -1 with err (nothing kept). */
static int listen_on(struct http_server *h, const char *address, struct http_listener **list,
                     struct buf *err)
{
    struct sockaddr_storage ss;
    size_t len = strlen(address);
    struct http_listener *l = xcalloc(1, sizeof *l + len + 1);
    memcpy(l->address, address, len + 1);
    l->handle.h = h;
    l->handle.count = &h->open_listeners;
    uv_tcp_init(h->loop, &l->handle.tcp);
    h->open_listeners++;
    int rc = parse_listen(address, &ss);
    if (rc == 0)
        rc = uv_tcp_bind(&l->handle.tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0) /* a bind's EADDRINUSE shows here */
        rc = uv_listen((uv_stream_t *)&l->handle.tcp, HTTP_BACKLOG, listener_on_connection);
    if (rc < 0) {
        buf_printf(err, "http.listen: cannot listen on %s: %s", address, uv_strerror(rc));
        uv_close((uv_handle_t *)&l->handle.tcp, handle_on_close);
        return -1;
    }
    l->next = *list;
    *list = l;
    return 0;
}

static void listeners_close(struct http_listener **list)
{
    while (*list != NULL) {
        struct http_listener *l = *list;
        *list = l->next;
        uv_close((uv_handle_t *)&l->handle.tcp, handle_on_close);
    }
}

static int listening_on(const struct http_listener *list, const char *address)
{
    for (; list != NULL; list = list->next)
        if (strcmp(list->address, address) == 0)
            return 1;
    return 0;
}

/* The limits of cfg, for the connections and requests to come. */
static void server_set_limits(struct http_server *h, const struct config *cfg)
{
    h->max_conns = cfg->http.max_connections;
    h->max_header = cfg->http.max_header_size;
    h->metrics_public = cfg->http.metrics_public;
    h->page_loopback = cfg->http.status_page_loopback;
    h->config.max_request_entity_size = cfg->http.max_body_size;
    h->config.http1.req_timeout = cfg->http.request_timeout_ms;
    h->config.handshake_timeout = cfg->http.request_timeout_ms;
}

static struct http_server *server_new(uv_loop_t *loop, const struct config *cfg,
                                      const struct http_route *routes, size_t n, void *arg)
{
    struct http_server *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    h->routes = routes, h->nroutes = n, h->arg = arg;
    server_setup_h2o(h);
    server_set_limits(h, cfg);
    h2o_context_init(&h->ctx, h->loop, &h->config);
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;
    uv_timer_init(loop, &h->dispose);
    return h;
}

/* Takes files' tokens and certificate, for the requests and connections to come. Connections
 * keep the certificate they were made with (OpenSSL counts its users). */
static void server_take_files(struct http_server *h, struct http_files *files)
{
    http_tokens_free(h->tokens);
    h->tokens = files->tokens;
    if (h->ssl != NULL)
        SSL_CTX_free(h->ssl);
    h->accept_ctx.ssl_ctx = h->ssl = files->ssl;
    *files = (struct http_files){0};
}

int http_files_load(const struct config *cfg, struct http_files *out, struct buf *err)
{
    *out = (struct http_files){0};
    if (cfg->http.nlisten == 0)
        return 0;
    if (cfg->http.tokens != NULL && http_tokens_load(cfg->http.tokens, &out->tokens, err) < 0)
        return -1;
    if (cfg->http.tls) {
        const char *cert = cfg->http.certificate ? cfg->http.certificate : cfg->tls.certificate;
        const char *key = cfg->http.certificate ? cfg->http.key : cfg->tls.key;
        if ((out->ssl = tls_server_ctx_new(cert, key, err)) == NULL) {
            http_files_free(out);
            return -1;
        }
    }
    return 0;
}

void http_files_free(struct http_files *f)
{
    http_tokens_free(f->tokens);
    if (f->ssl != NULL)
        SSL_CTX_free(f->ssl);
    *f = (struct http_files){0};
}

int http_server_open(uv_loop_t *loop, const struct config *cfg, const struct http_route *routes,
                     size_t n, void *arg, struct http_server **out, struct buf *err)
{
    *out = NULL;
    if (cfg->http.nlisten == 0)
        return 0;
    struct http_files files;
    if (http_files_load(cfg, &files, err) < 0)
        return -1;
    struct http_server *h = server_new(loop, cfg, routes, n, arg);
    server_take_files(h, &files);
    for (size_t i = 0; i < cfg->http.nlisten; i++) {
        if (listen_on(h, cfg->http.listen[i], &h->listeners, err) < 0) {
            http_server_close(h);
            return -1;
        }
    }
    *out = h;
    return 0;
}

int http_server_prepare(struct http_server **hp, uv_loop_t *loop, const struct config *cfg,
                        const struct http_route *routes, size_t n, void *arg, struct buf *err)
{
    if (cfg->http.nlisten == 0)
        return 0;
    if (*hp == NULL) {
        *hp = server_new(loop, cfg, routes, n, arg);
        (*hp)->fresh = 1;
    }
    struct http_server *h = *hp;
    for (size_t i = 0; i < cfg->http.nlisten; i++) {
        const char *address = cfg->http.listen[i];
        if (listening_on(h->listeners, address) || listening_on(h->prepared, address))
            continue;
        if (listen_on(h, address, &h->prepared, err) < 0) {
            http_server_abandon(hp);
            return -1;
        }
    }
    return 0;
}

void http_server_abandon(struct http_server **hp)
{
    struct http_server *h = *hp;
    if (h == NULL)
        return;
    listeners_close(&h->prepared);
    if (h->fresh) {
        http_server_close(h);
        *hp = NULL;
    }
}

void http_server_commit(struct http_server **hp, const struct config *cfg, struct http_files *files)
{
    struct http_server *h = *hp;
    if (h == NULL)
        return;
    if (cfg->http.nlisten == 0) {
        http_server_close(h);
        *hp = NULL;
        return;
    }
    h->fresh = 0;
    struct http_listener **link = &h->listeners;
    while (*link != NULL) {
        struct http_listener *l = *link;
        int keep = 0;
        for (size_t i = 0; i < cfg->http.nlisten && !keep; i++)
            keep = strcmp(cfg->http.listen[i], l->address) == 0;
        if (keep) {
            link = &l->next;
            continue;
        }
        *link = l->next;
        uv_close((uv_handle_t *)&l->handle.tcp, handle_on_close);
    }
    *link = h->prepared;
    h->prepared = NULL;
    server_set_limits(h, cfg);
    /* h2o's context took the timeouts at start: what waits from now on waits the new time. */
    h->ctx.http1.req_timeout.timeout = h->config.http1.req_timeout;
    h->ctx.handshake_timeout.timeout = h->config.handshake_timeout;
    server_take_files(h, files);
}

unsigned http_server_connections(const struct http_server *h)
{
    return h != NULL ? h->conns : 0;
}

static void server_on_closed(uv_handle_t *handle)
{
    free(container_of((uv_timer_t *)handle, struct http_server, dispose));
}

/* h2o_context_dispose runs the loop once itself (UV_RUN_NOWAIT) to finish closing its timers, so
 * it is called from a timer callback, where a nested run is safe, never from an I/O callback. */
static void server_on_dispose(uv_timer_t *t)
{
    struct http_server *h = container_of(t, struct http_server, dispose);
    /* h2o_context_request_shutdown arms HTTP/2's GOAWAY timer even when no HTTP/2 connection was
     * ever made (none is: neither h2c nor ALPN is offered); dispose asserts that it is not armed.
     */
    if (h2o_timeout_is_linked(&h->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&h->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&h->ctx);
    h2o_config_dispose(&h->config);
    http_tokens_free(h->tokens);
    if (h->ssl != NULL)
        SSL_CTX_free(h->ssl);
    uv_close((uv_handle_t *)t, server_on_closed);
}

static void server_maybe_dispose(struct http_server *h)
{
    if (h->closing && h->conns == 0 && h->open_listeners == 0)
        uv_timer_start(&h->dispose, server_on_dispose, 0, 0);
}

void http_server_close(struct http_server *h)
{
    if (h == NULL || h->closing)
        return;
    h->closing = 1;
    h2o_context_request_shutdown(&h->ctx);
    listeners_close(&h->listeners);
    listeners_close(&h->prepared);
    server_maybe_dispose(h);
}
