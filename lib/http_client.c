#include "lib/http_client.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lib/buf.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/*
 * curl tells us which sockets to watch (client_on_socket) and when to call it back at the latest
 * (client_on_timer); we tell curl what happened on a socket or that the time came
 * (curl_multi_socket_action), then collect the transfers it finished (client_collect_done). curl
 * closes each socket only after its REMOVE call, so the poll handle goes first.
 */
struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct http_request *requests; /* running, newest first */
    struct http_socket *sockets;   /* watched, for the close at free */
    int freeing;
    unsigned open_handles; /* the timer and the poll handles not closed yet */
};

struct http_socket {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_client *client;
    struct http_socket *prev, *next;
};

struct http_request {
    struct http_client *client;
    struct http_request *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *resolve;
    char *body; /* curl reads it while the request runs */
    http_done_cb *cb;
    void *arg;
    struct buf reply;  /* up to reply_max octets of the reply's body */
    size_t reply_max;  /* HTTP_REPLY_KEPT for a POST, its max_body for a GET */
    int reply_too_big; /* a GET's body went past reply_max: the transfer was ended */
    char error[CURL_ERROR_SIZE];
};

static uv_once_t curl_once = UV_ONCE_INIT;
static int curl_ready;

static void curl_init_once(void)
{
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void client_collect_done(struct http_client *c);

static void client_maybe_free(struct http_client *c)
{
    if (c->freeing && c->open_handles == 0)
        free(c);
}

static void handle_on_closed(uv_handle_t *h)
{
    struct http_client *c = h->data;
    if (h->type == UV_POLL)
        free(container_of((uv_poll_t *)h, struct http_socket, poll));
    c->open_handles--;
    client_maybe_free(c);
}

static void socket_close(struct http_socket *s)
{
    struct http_client *c = s->client;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->sockets = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, handle_on_closed);
}

static void socket_on_ready(uv_poll_t *h, int status, int events)
{
    struct http_socket *s = container_of(h, struct http_socket, poll);
    struct http_client *c = s->client;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else
        flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
                (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
    /* May close s (a REMOVE call): nothing of s is used after it. */
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    client_collect_done(c);
}

static int client_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct http_socket *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            if (!c->freeing) /* curl_multi_cleanup() forgets its sockets itself */
                curl_multi_assign(c->multi, fd, NULL);
            socket_close(s);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof *s);
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->client = c;
        s->poll.data = c;
        s->next = c->sockets;
        if (c->sockets != NULL)
            c->sockets->prev = s;
        c->sockets = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, events, socket_on_ready);
    return 0;
}

static void timer_on_expire(uv_timer_t *t)
{
    struct http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    client_collect_done(c);
}

/* curl asks to be called back in timeout_ms (-1: not at all); the call itself waits for the loop,
 * as curl must not be re-entered from its own callback. */
static int client_on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, timer_on_expire, (uint64_t)timeout_ms, 0);
    return 0;
}

struct http_client *http_client_new(uv_loop_t *loop)
{
    uv_once(&curl_once, curl_init_once);
    if (!curl_ready)
        return NULL;
    struct http_client *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, client_on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, client_on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

static size_t request_on_body(char *data, size_t size, size_t n, void *arg)
{
    struct http_request *r = arg;
    size_t len = size * n, room = r->reply_max - r->reply.len;
    size_t keep = len < room ? len : room;
    buf_append(&r->reply, data, keep);
    if (keep < len && r->body == NULL) { /* a GET: too long, end it */
        r->reply_too_big = 1;
        return 0;
    }
    return len; /* a POST's reply: the rest is read and let go */
}

/* Unlinks r from its client and frees it; curl forgets it first. */
static void request_free(struct http_request *r)
{
    struct http_client *c = r->client;
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->resolve);
    buf_free(&r->reply);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->requests = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    free(r->body);
    free(r);
}

static void client_collect_done(struct http_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_request *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        long status = 0;
        struct http_result res = {.body = r->reply.data != NULL ? r->reply.data : "",
                                  .body_len = r->reply.len,
                                  .error = ""};
        if (r->reply_too_big) {
            snprintf(r->error, sizeof r->error, "reply body longer than %zu octets", r->reply_max);
            res.error = r->error;
        } else if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            res.status = (int)status;
        } else {
            res.error = r->error[0] ? r->error : curl_easy_strerror(msg->data.result);
        }
        r->cb(r->arg, &res);
        request_free(r);
    }
}

static struct curl_slist *headers_of(const struct http_post *p)
{
    struct curl_slist *list = NULL;
    char line[256];
    if (p->content_type != NULL) {
        snprintf(line, sizeof line, "Content-Type: %s", p->content_type);
        list = curl_slist_append(list, line);
    }
    list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip for large bodies */
    for (size_t i = 0; i < p->nheaders; i++)
        list = curl_slist_append(list, p->headers[i]);
    return list;
}

/* A request for url with what POST and GET share; NULL when curl cannot make one. */
static struct http_request *request_new(struct http_client *c, const char *url, const char *ca_file,
                                        uint64_t timeout_ms, size_t reply_max, http_done_cb *cb,
                                        void *arg)
{
    struct http_request *r = xcalloc(1, sizeof *r);
    r->client = c;
    r->cb = cb;
    r->arg = arg;
    r->reply_max = reply_max;
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return NULL;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "Sluice");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    if (ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    return r;
}

/* Hands r to curl; NULL (and r freed, its callback never run) when curl refuses it. */
static struct http_request *request_start(struct http_client *c, struct http_request *r)
{
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, request_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    r->next = c->requests;
    if (c->requests != NULL)
        c->requests->prev = r;
    c->requests = r;
    /* curl starts it from its timer callback, on a later loop turn. */
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        r->cb = NULL;
        request_free(r);
        return NULL;
    }
    return r;
}

struct http_request *http_client_post(struct http_client *c, const struct http_post *p,
                                      http_done_cb *cb, void *arg)
{
    struct http_request *r =
        request_new(c, p->url, p->ca_file, p->timeout_ms, HTTP_REPLY_KEPT, cb, arg);
    if (r == NULL)
        return NULL;
    r->body = xmalloc(p->len + 1);
    memcpy(r->body, p->body, p->len);
    r->headers = headers_of(p);
    curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->len);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    return request_start(c, r);
}

struct http_request *http_client_get(struct http_client *c, const struct http_get *g,
                                     http_done_cb *cb, void *arg)
{
    struct http_request *r =
        request_new(c, g->url, g->ca_file, g->timeout_ms, g->max_body, cb, arg);
    if (r == NULL)
        return NULL;
    if (g->resolve != NULL) {
        r->resolve = curl_slist_append(NULL, g->resolve);
        curl_easy_setopt(r->easy, CURLOPT_RESOLVE, r->resolve);
    }
    curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
    return request_start(c, r);
}

void http_request_cancel(struct http_request *r)
{
    request_free(r);
}

void http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    while (c->requests != NULL)
        request_free(c->requests);
    c->freeing = 1;
    curl_multi_cleanup(c->multi); /* closes cached connections, with their REMOVE calls */
    while (c->sockets != NULL)
        socket_close(c->sockets);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_on_closed);
}
