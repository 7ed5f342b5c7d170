/*
 * The control socket (see control.h). One connection carries one request: read a line, call the
 * handler, write the answer, close. A long answer (a page of the queue) is written a piece at a
 * time as the handler makes it, holding at most about CONTROL_STREAM_HIGH bytes the client has not
 * taken yet: beyond that the handler waits for the client (control_later_full). Each connection
 * holds a pipe and a timer and is freed from the second close callback; the struct control is
 * freed once its listening pipe and every connection have closed.
 */
#include "mta/control.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "spool/spool.h"

/* The biggest answer the client takes (a list of a very large queue). */
#define CONTROL_ANSWER_MAX (64u << 20)
#define CONTROL_BACKLOG 16
/* Bytes queued for a client beyond which a streamed answer waits, and below which it goes on. */
#define CONTROL_STREAM_HIGH (256u << 10)
#define CONTROL_STREAM_LOW (64u << 10)
/* Bytes of a request line its log line shows. */
#define CONTROL_LOGGED_REQUEST_MAX 300

struct control_conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    struct control *ctl;
    struct control_conn *next, **pprev; /* in ctl->conns */
    char in[CONTROL_REQUEST_MAX];       /* the request line as it arrives */
    size_t inlen;
    struct control_later *later; /* a handler answers later; NULL when none */
    size_t queued;               /* bytes of the answer handed to the pipe, not yet written */
    unsigned writes;             /* writes under way */
    char last;                   /* the last byte of the answer so far */
    int started;                 /* the answer's first line is on its way */
    int ended;                   /* the whole answer is: the connection closes once it is written */
    int open_handles;            /* freed when it drops to 0 */
    int closing;
};

struct control {
    uv_pipe_t server;
    uv_loop_t *loop;
    struct control_handlers handlers;
    void *arg;
    char *path; /* owned; the socket file, removed at close */
    uint64_t idle_ms;
    unsigned nconns;
    struct control_conn *conns;
    int server_open; /* the listening pipe has not finished closing */
    int closing;
};

/* A handler's answer to come: the connection and the request line, for the log. */
struct control_later {
    struct control_conn *cc; /* NULL once the connection is gone */
    size_t linelen;
    void (*wake)(void *arg); /* the handler waits for the client to take what is queued */
    void *wake_arg;
};

/* A piece of an answer on its way to the client. */
struct control_piece {
    uv_write_t req;
    struct control_conn *cc;
    struct buf bytes; /* owned until written */
};

/* The request chain, in firing order. */
static void server_on_connection(uv_stream_t *server, int status);
static void conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);
static void conn_serve(struct control_conn *cc, size_t linelen);
static void conn_answer(struct control_conn *cc, size_t linelen, int rc, const struct buf *payload);
static void conn_send(struct control_conn *cc, const char *data, size_t len);
static void conn_send_buf(struct control_conn *cc, struct buf *bytes);
static void piece_on_written(uv_write_t *w, int status);
static void conn_on_timeout(uv_timer_t *t);
static void conn_close(struct control_conn *cc);

/* ---- request syntax ---- */

struct verb_row {
    const char *name;
    enum control_verb verb;
    int min_args, max_args;
};

static const struct verb_row verbs[] = {
    {"list", CONTROL_LIST, 0, 2},
    {"retry", CONTROL_RETRY, 1, 1},
    {"delete", CONTROL_DELETE, 1, 1},
    {"suspend", CONTROL_SUSPEND, 1, 2},
    {"resume", CONTROL_RESUME, 1, 1},
    {"destinations", CONTROL_DESTINATIONS, 0, 1},
    {"status", CONTROL_STATUS, 0, 0},
    {"suspend-tenant", CONTROL_SUSPEND_TENANT, 1, 2},
    {"resume-tenant", CONTROL_RESUME_TENANT, 1, 2},
    {"bounce-tenant", CONTROL_BOUNCE_TENANT, 1, 2},
    {"bounce", CONTROL_BOUNCE, 1, 1},
    {"bounce-destination", CONTROL_BOUNCE_DESTINATION, 1, 3},
    {"tls-rpt-send", CONTROL_TLS_RPT_SEND, 0, 0},
};

/* A queue id (upper-case base 32, see spool.h). */
static int valid_id(const char *s, size_t len)
{
    if (len == 0 || len > SPOOL_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* A decimal number from 1 to max. */
static int parse_count(const char *s, size_t len, uint32_t max, uint32_t *n)
{
    uint64_t v = 0;
    if (len == 0 || len > 7)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > max)
        return -EINVAL;
    *n = (uint32_t)v;
    return 0;
}

/* "list [LIMIT [AFTER]]": a page of at most LIMIT messages after queue id AFTER. */
static int parse_list(const char *const *words, const size_t *lens, size_t nargs,
                      struct control_request *req, struct buf *err)
{
    uint32_t limit = CONTROL_PAGE_MAX;
    if (nargs >= 1 && parse_count(words[1], lens[1], CONTROL_PAGE_MAX, &limit) < 0) {
        buf_printf(err, "bad page size %.*s (1 to %d)", (int)(lens[1] > 32 ? 32 : lens[1]),
                   words[1], CONTROL_PAGE_MAX);
        return -EINVAL;
    }
    req->limit = limit;
    if (nargs == 2) {
        if (!valid_id(words[2], lens[2])) {
            buf_printf(err, "%.*s is not a queue id", (int)(lens[2] > 32 ? 32 : lens[2]), words[2]);
            return -EINVAL;
        }
        memcpy(req->target, words[2], lens[2]);
    }
    return 0;
}

/* "N", "Ns", "Nm", "Nh", "Nd": 1 second to CONTROL_SUSPEND_MAX_S. */
static int parse_duration(const char *s, size_t len, uint32_t *seconds)
{
    static const struct {
        char unit;
        uint32_t scale;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    uint32_t scale = 1, n;
    for (size_t i = 0; len > 1 && i < ARRAY_LEN(units); i++) {
        if (s[len - 1] == units[i].unit) {
            scale = units[i].scale;
            len--;
        }
    }
    if (parse_count(s, len, CONTROL_SUSPEND_MAX_S / scale, &n) < 0)
        return -EINVAL;
    *seconds = n * scale;
    return 0;
}

/* words[i] (when there is one) into out, a field of sizeof(req->campaign) bytes. */
static int copy_word(const char *const *words, const size_t *lens, size_t n, size_t i, char *out,
                     struct buf *err)
{
    if (i >= n)
        return 0;
    if (lens[i] >= sizeof(((struct control_request *)0)->campaign)) {
        buf_printf(err, "argument longer than %zu bytes",
                   sizeof(((struct control_request *)0)->campaign) - 1);
        return -EINVAL;
    }
    memcpy(out, words[i], lens[i]);
    out[lens[i]] = '\0';
    return 0;
}

int control_request_parse(const char *line, size_t len, struct control_request *req,
                          struct buf *err)
{
    const char *words[4];
    size_t lens[4], n = 0;
    if (len >= CONTROL_REQUEST_MAX) {
        buf_printf(err, "request longer than %d bytes", CONTROL_REQUEST_MAX - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < len;) {
        if (line[i] == ' ') {
            i++;
            continue;
        }
        if (n == ARRAY_LEN(words)) {
            buf_printf(err, "too many words");
            return -EINVAL;
        }
        words[n] = line + i;
        while (i < len && line[i] != ' ') {
            if ((unsigned char)line[i] <= 0x20 || (unsigned char)line[i] >= 0x7f) {
                buf_printf(err, "control character or non-ASCII byte in the request");
                return -EINVAL;
            }
            i++;
        }
        lens[n] = (size_t)(line + i - words[n]);
        n++;
    }
    if (n == 0) {
        buf_printf(err, "empty request");
        return -EINVAL;
    }
    const struct verb_row *row = NULL;
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (strlen(verbs[i].name) == lens[0] && memcmp(verbs[i].name, words[0], lens[0]) == 0)
            row = &verbs[i];
    if (row == NULL) {
        buf_printf(err, "unknown request %.*s", (int)(lens[0] > 32 ? 32 : lens[0]), words[0]);
        return -EINVAL;
    }
    int nargs = (int)n - 1;
    int tenant = row->verb == CONTROL_SUSPEND_TENANT || row->verb == CONTROL_RESUME_TENANT ||
                 row->verb == CONTROL_BOUNCE_TENANT;
    if (tenant && (nargs < 1 || nargs > 2)) {
        buf_printf(err, "%s takes a tenant and an optional campaign", row->name);
        return -EINVAL;
    }
    if (nargs < row->min_args || nargs > row->max_args) {
        buf_printf(err, "%s takes %s", row->name,
                   row->verb == CONTROL_LIST ? "at most a page size and a queue id"
                   : row->max_args == 0      ? "no argument"
                   : row->max_args == 3      ? "a destination, an optional tenant and campaign"
                   : row->max_args == 2      ? "a destination and an optional duration"
                   : row->min_args == 0      ? "at most one destination"
                                             : "one argument");
        return -EINVAL;
    }
    memset(req, 0, sizeof(*req));
    req->verb = row->verb;
    if (row->verb == CONTROL_LIST)
        return parse_list(words, lens, (size_t)nargs, req, err);
    if (nargs == 0)
        return 0;
    if (lens[1] >= sizeof(req->target)) {
        buf_printf(err, "argument longer than %zu bytes", sizeof(req->target) - 1);
        return -EINVAL;
    }
    memcpy(req->target, words[1], lens[1]);
    int is_all = strcmp(req->target, "all") == 0;
    if ((row->verb == CONTROL_RETRY && !is_all && !valid_id(words[1], lens[1])) ||
        ((row->verb == CONTROL_DELETE || row->verb == CONTROL_BOUNCE) &&
         !valid_id(words[1], lens[1]))) {
        buf_printf(err, "%s is not a queue id", req->target);
        return -EINVAL;
    }
    if (row->verb == CONTROL_BOUNCE_DESTINATION) /* DEST [TENANT [CAMPAIGN]] */
        return copy_word(words, lens, n, 2, req->tenant, err) < 0 ||
                       copy_word(words, lens, n, 3, req->campaign, err) < 0
                   ? -EINVAL
                   : 0;
    if (tenant && nargs == 2)
        return copy_word(words, lens, n, 2, req->campaign, err);
    if (nargs == 2 && parse_duration(words[2], lens[2], &req->seconds) < 0) {
        buf_printf(err, "bad duration %.*s (N, Ns, Nm, Nh or Nd, at most 30 days)",
                   (int)(lens[2] > 32 ? 32 : lens[2]), words[2]);
        return -EINVAL;
    }
    return 0;
}

int control_socket_path(const char *spool, struct buf *path, struct buf *err)
{
    struct sockaddr_un sun;
    buf_reset(path);
    buf_printf(path, "%s/control", spool);
    if (path->len >= sizeof(sun.sun_path)) {
        buf_printf(err, "control socket path %s is longer than %zu bytes: use a shorter spool path",
                   path->data, sizeof(sun.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* ---- the daemon side ---- */

static int unix_connect(const char *path, int timeout_ms)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Bounds a connect to a full backlog; the exchange itself is bounded with poll. */
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Removes a socket left by a dead daemon; refuses when a live one answers. */
static int claim_path(const char *path, struct buf *err)
{
    int fd = unix_connect(path, 1000);
    if (fd >= 0) {
        close(fd);
        buf_printf(err, "another daemon answers on %s (same spool?)", path);
        return -EADDRINUSE;
    }
    if (fd == -ECONNREFUSED && unlink(path) < 0 && errno != ENOENT) {
        int e = errno;
        buf_printf(err, "cannot remove stale %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

static void server_on_closed(uv_handle_t *h)
{
    struct control *c = container_of(h, struct control, server);
    c->server_open = 0;
    if (c->nconns == 0) {
        free(c->path);
        free(c);
    }
}

int control_open(uv_loop_t *loop, const char *path, const struct control_handlers *handlers,
                 void *arg, struct control **out, struct buf *err)
{
    int rc = claim_path(path, err);
    if (rc < 0)
        return rc;
    struct control *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->handlers = *handlers;
    c->arg = arg;
    c->path = xstrdup(path);
    c->idle_ms = CONTROL_IDLE_TIMEOUT_MS;
    c->server_open = 1;
    uv_pipe_init(loop, &c->server, 0);
    const char *step = "bind";
    rc = uv_pipe_bind(&c->server, path);
    if (rc == 0) {
        /* Nobody can connect before listen, so the socket is never reachable with wider
         * permissions than these. */
        step = "chmod";
        rc = chmod(path, 0600) < 0 ? -errno : 0;
        if (rc == 0) {
            step = "listen";
            rc = uv_listen((uv_stream_t *)&c->server, CONTROL_BACKLOG, server_on_connection);
        }
        if (rc < 0)
            unlink(path);
    }
    if (rc < 0) {
        buf_printf(err, "control socket %s: %s: %s", path, step, uv_strerror(rc));
        uv_close((uv_handle_t *)&c->server, server_on_closed);
        return rc;
    }
    *out = c;
    return 0;
}

void control_set_idle_timeout(struct control *c, uint64_t ms)
{
    c->idle_ms = ms;
}

void control_close(struct control *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    while (c->conns != NULL)
        conn_close(c->conns);
    unlink(c->path);
    uv_close((uv_handle_t *)&c->server, server_on_closed);
}

static void refused_on_closed(uv_handle_t *h)
{
    free(h);
}

static void server_on_connection(uv_stream_t *server, int status)
{
    struct control *c = container_of(server, struct control, server);
    if (status < 0) {
        log_msg(LOG_WARN, "control.accept", "control socket: %s", uv_strerror(status));
        return;
    }
    if (c->nconns >= CONTROL_MAX_CONNS) {
        /* Accept to drain the backlog, say why, and close. */
        uv_pipe_t *p = xmalloc(sizeof(*p));
        uv_pipe_init(c->loop, p, 0);
        static const char busy[] = "error: too many control connections, try again\n";
        uv_buf_t b = uv_buf_init((char *)busy, sizeof(busy) - 1);
        if (uv_accept(server, (uv_stream_t *)p) == 0)
            uv_try_write((uv_stream_t *)p, &b, 1); /* a fresh socket's buffer takes it whole */
        uv_close((uv_handle_t *)p, refused_on_closed);
        log_msg(LOG_WARN, "control.busy", "%d control connections open: one refused",
                CONTROL_MAX_CONNS);
        return;
    }
    struct control_conn *cc = xcalloc(1, sizeof(*cc));
    cc->ctl = c;
    cc->next = c->conns;
    if (c->conns != NULL)
        c->conns->pprev = &cc->next;
    cc->pprev = &c->conns;
    c->conns = cc;
    c->nconns++;
    uv_pipe_init(c->loop, &cc->pipe, 0);
    uv_timer_init(c->loop, &cc->timer);
    cc->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&cc->pipe) < 0) {
        conn_close(cc);
        return;
    }
    uv_timer_start(&cc->timer, conn_on_timeout, c->idle_ms, 0);
    uv_read_start((uv_stream_t *)&cc->pipe, conn_on_alloc, conn_on_read);
}

static void conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    struct control_conn *cc = container_of(h, struct control_conn, pipe);
    *b = uv_buf_init(cc->in + cc->inlen, (unsigned)(sizeof(cc->in) - cc->inlen));
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct control_conn *cc = container_of(stream, struct control_conn, pipe);
    if (nread < 0) {
        /* A request without its newline still counts when the client half-closes. */
        if (nread == UV_EOF && cc->inlen > 0)
            conn_serve(cc, cc->inlen);
        else
            conn_close(cc);
        return;
    }
    size_t start = cc->inlen;
    cc->inlen += (size_t)nread;
    char *nl = memchr(cc->in + start, '\n', cc->inlen - start);
    if (nl != NULL)
        conn_serve(cc, (size_t)(nl - cc->in));
    else if (cc->inlen == sizeof(cc->in))
        conn_serve(cc, cc->inlen); /* the parser refuses it as too long */
}

static int dispatch(struct control_conn *cc, const struct control_request *req, size_t linelen,
                    struct buf *out)
{
    struct control *c = cc->ctl;
    const struct control_handlers *h = &c->handlers;
    switch (req->verb) {
    case CONTROL_LIST: {
        struct control_later *later = xcalloc(1, sizeof *later);
        *later = (struct control_later){.cc = cc, .linelen = linelen};
        cc->later = later; /* the handler may answer from inside the call */
        int rc = h->list(c->arg, req->target, req->limit, out, later);
        if (rc != CONTROL_LATER) {
            cc->later = NULL;
            free(later);
        }
        return rc;
    }
    case CONTROL_RETRY:
        return h->retry(c->arg, req->target, out);
    case CONTROL_DELETE:
        return h->delete (c->arg, req->target, out);
    case CONTROL_SUSPEND:
        return h->suspend(c->arg, req->target, req->seconds, out);
    case CONTROL_RESUME:
        return h->resume(c->arg, req->target, out);
    case CONTROL_DESTINATIONS:
        return h->destinations(c->arg, req->target, out);
    case CONTROL_STATUS:
        return h->status(c->arg, out);
    case CONTROL_SUSPEND_TENANT:
        return h->suspend_tenant(c->arg, req->target, req->campaign, out);
    case CONTROL_RESUME_TENANT:
        return h->resume_tenant(c->arg, req->target, req->campaign, out);
    case CONTROL_BOUNCE_TENANT:
        return h->bounce_selected(c->arg, "", req->target, req->campaign, out);
    case CONTROL_BOUNCE_DESTINATION:
        return h->bounce_selected(c->arg, req->target, req->tenant, req->campaign, out);
    case CONTROL_BOUNCE:
        return h->bounce(c->arg, req->target, out);
    case CONTROL_TLS_RPT_SEND:
        return h->tls_rpt_send(c->arg, out);
    }
    return -EINVAL;
}

/* "ok\n" and the payload, or "error: " and the first line of the reason. */
static void answer_build(int status, const struct buf *payload, struct buf *answer)
{
    if (status == 0) {
        buf_append_str(answer, "ok\n");
        buf_append(answer, payload->data, payload->len);
        if (payload->len > 0 && payload->data[payload->len - 1] != '\n')
            buf_append(answer, "\n", 1);
        return;
    }
    const char *nl = payload->len ? memchr(payload->data, '\n', payload->len) : NULL;
    size_t len = nl != NULL ? (size_t)(nl - payload->data) : payload->len;
    if (len == 0)
        buf_printf(answer, "error: %s\n", strerror(-status));
    else
        buf_printf(answer, "error: %.*s\n", (int)len, payload->data);
}

static void conn_serve(struct control_conn *cc, size_t linelen)
{
    uv_read_stop((uv_stream_t *)&cc->pipe);
    if (linelen > 0 && cc->in[linelen - 1] == '\r')
        linelen--;
    struct control_request req;
    struct buf payload = BUF_INIT;
    int rc = control_request_parse(cc->in, linelen, &req, &payload);
    if (rc == 0)
        rc = dispatch(cc, &req, linelen, &payload);
    if (rc == CONTROL_LATER) {
        if (cc->later != NULL)
            uv_timer_stop(&cc->timer); /* the handler's work is not the client's idleness */
    } else
        conn_answer(cc, linelen, rc, &payload);
    buf_free(&payload);
}

/* The length of the request line's part that its log line shows, for "%.*s". */
static int logged_len(size_t linelen)
{
    return (int)(linelen < CONTROL_LOGGED_REQUEST_MAX ? linelen : CONTROL_LOGGED_REQUEST_MAX);
}

static void later_wake(struct control_later *later)
{
    void (*wake)(void *) = later->wake;
    later->wake = NULL;
    if (wake != NULL)
        wake(later->wake_arg);
}

void control_later_put(struct control_later *later, const char *data, size_t len)
{
    struct control_conn *cc = later->cc;
    if (cc == NULL)
        return;
    if (!cc->started) {
        cc->started = 1;
        conn_send(cc, "ok\n", 3);
    }
    conn_send(cc, data, len);
}

int control_later_full(struct control_later *later, void (*wake)(void *arg), void *arg)
{
    if (later->cc == NULL || later->cc->queued < CONTROL_STREAM_HIGH)
        return 0;
    later->wake = wake;
    later->wake_arg = arg;
    return 1;
}

void control_later_done(struct control_later *later, int status, const struct buf *payload)
{
    struct control_conn *cc = later->cc;
    size_t linelen = later->linelen;
    free(later);
    if (cc == NULL)
        return;
    cc->later = NULL;
    if (!cc->started) {
        conn_answer(cc, linelen, status, payload);
        return;
    }
    /* Streamed: the end of what control_later_put began. */
    if (status < 0) {
        log_msg(LOG_WARN, "control.request", "%.*s: cut short: %.*s", logged_len(linelen), cc->in,
                (int)strcspn(payload->data, "\n"), payload->data);
        conn_close(cc);
        return;
    }
    log_msg(LOG_INFO, "control.request", "%.*s: ok", logged_len(linelen), cc->in);
    if (cc->last != '\n')
        conn_send(cc, "\n", 1);
    cc->ended = 1;
    if (cc->writes == 0)
        conn_close(cc);
}

/* Writes the answer to the request of linelen bytes; the connection closes once it is sent. */
static void conn_answer(struct control_conn *cc, size_t linelen, int rc, const struct buf *payload)
{
    struct buf answer = BUF_INIT;
    answer_build(rc, payload, &answer);
    const char *nl = memchr(answer.data, '\n', answer.len); /* answers end in one */
    log_msg(rc == 0 ? LOG_INFO : LOG_WARN, "control.request", "%.*s: %.*s", logged_len(linelen),
            cc->in, (int)(nl - answer.data), answer.data);
    cc->started = cc->ended = 1;
    conn_send_buf(cc, &answer);
}

/* Sends len bytes of the answer, the caller's until it returns: what the pipe takes at once is
 * written from data itself, only the rest is copied to wait for the client. */
static void conn_send(struct control_conn *cc, const char *data, size_t len)
{
    if (len == 0 || cc->closing)
        return;
    size_t sent = 0;
    if (cc->writes == 0) { /* else the pipe takes nothing before the queued pieces */
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&cc->pipe, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(cc);
            return;
        }
        sent = n > 0 ? (size_t)n : 0;
    }
    cc->last = data[len - 1];
    if (sent == len)
        return;
    struct buf rest = BUF_INIT;
    buf_append(&rest, data + sent, len - sent);
    conn_send_buf(cc, &rest);
}

/* Queues the bytes of *bytes (taken: *bytes is left empty) for the client, who must take them
 * within the idle time. */
static void conn_send_buf(struct control_conn *cc, struct buf *bytes)
{
    struct buf taken = *bytes;
    *bytes = (struct buf)BUF_INIT;
    if (taken.len == 0 || cc->closing) {
        buf_free(&taken);
        return;
    }
    struct control_piece *piece = xmalloc(sizeof *piece);
    *piece = (struct control_piece){.cc = cc, .bytes = taken};
    uv_buf_t b = uv_buf_init(taken.data, (unsigned)taken.len);
    if (uv_write(&piece->req, (uv_stream_t *)&cc->pipe, &b, 1, piece_on_written) < 0) {
        buf_free(&piece->bytes);
        free(piece);
        conn_close(cc);
        return;
    }
    cc->queued += taken.len;
    cc->writes++;
    cc->last = taken.data[taken.len - 1];
    uv_timer_start(&cc->timer, conn_on_timeout, cc->ctl->idle_ms, 0);
}

static void piece_on_written(uv_write_t *w, int status)
{
    struct control_piece *piece = container_of(w, struct control_piece, req);
    struct control_conn *cc = piece->cc;
    cc->queued -= piece->bytes.len;
    cc->writes--;
    buf_free(&piece->bytes);
    free(piece);
    if (status < 0 || (cc->ended && cc->writes == 0)) {
        conn_close(cc);
        return;
    }
    if (cc->writes > 0)
        uv_timer_start(&cc->timer, conn_on_timeout, cc->ctl->idle_ms, 0); /* it reads */
    else
        uv_timer_stop(&cc->timer); /* it waits for the handler, not idle */
    if (cc->later != NULL && cc->queued <= CONTROL_STREAM_LOW)
        later_wake(cc->later);
}

static void conn_on_timeout(uv_timer_t *t)
{
    struct control_conn *cc = container_of(t, struct control_conn, timer);
    log_msg(LOG_WARN, "control.timeout", "control client idle for %llu ms: dropped",
            (unsigned long long)cc->ctl->idle_ms);
    conn_close(cc);
}

static void conn_on_closed(uv_handle_t *h)
{
    struct control_conn *cc = h->data;
    if (--cc->open_handles > 0)
        return;
    struct control *c = cc->ctl;
    free(cc);
    c->nconns--;
    if (c->nconns == 0 && !c->server_open) {
        free(c->path);
        free(c);
    }
}

static void conn_close(struct control_conn *cc)
{
    if (cc->closing)
        return;
    cc->closing = 1;
    if (cc->later != NULL) {
        cc->later->cc = NULL; /* its answer comes to nobody */
        later_wake(cc->later);
    }
    *cc->pprev = cc->next;
    if (cc->next != NULL)
        cc->next->pprev = cc->pprev;
    cc->pipe.data = cc->timer.data = cc;
    uv_close((uv_handle_t *)&cc->pipe, conn_on_closed);
    uv_close((uv_handle_t *)&cc->timer, conn_on_closed);
}

/* ---- the client ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; returns 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int exchange(int fd, const char *request, int64_t deadline, struct buf *answer)
{
    struct buf line = BUF_INIT;
    buf_printf(&line, "%s\n", request);
    int rc = 0;
    for (size_t sent = 0; rc == 0 && sent < line.len;) {
        rc = wait_fd(fd, POLLOUT, deadline);
        ssize_t n = rc == 0 ? send(fd, line.data + sent, line.len - sent, MSG_NOSIGNAL) : 0;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            rc = -errno;
        else if (n > 0)
            sent += (size_t)n;
    }
    buf_free(&line);
    /* A daemon too busy to read closes after its answer, which may come before all we sent is
     * written: read what it said before blaming the broken pipe. */
    int send_rc = rc == -EPIPE || rc == -ECONNRESET ? rc : 0;
    if (send_rc != 0)
        rc = 0;
    while (rc == 0) {
        if (answer->len >= CONTROL_ANSWER_MAX)
            return -EFBIG;
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0)
            break;
        ssize_t n = recv(fd, buf_reserve(answer, 65536), 65536, MSG_DONTWAIT);
        /* A daemon that closes without reading all we sent (too busy) resets the socket after
         * its answer. */
        if (n == 0 || (n < 0 && errno == ECONNRESET && answer->len > 0))
            break;
        if (n > 0)
            answer->len += (size_t)n;
        else if (errno != EINTR && errno != EAGAIN)
            rc = -errno;
    }
    return rc == 0 && send_rc != 0 && answer->len == 0 ? send_rc : rc;
}

int control_call(const char *path, const char *request, int timeout_ms, struct buf *answer,
                 struct buf *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    int fd = unix_connect(path, timeout_ms);
    if (fd == -ENOENT || fd == -ECONNREFUSED) {
        buf_printf(err, "no daemon answers on %s (is `sluice run` running?)", path);
        return fd;
    }
    if (fd < 0) {
        buf_printf(err, "control socket %s: %s", path, strerror(-fd));
        return fd;
    }
    int rc = exchange(fd, request, deadline, answer);
    close(fd);
    if (rc < 0)
        buf_printf(err, "control socket %s: %s", path, strerror(-rc));
    return rc;
}
