/*
 * The control socket: request parsing (table-driven), then a real daemon side on a loop with a
 * test handler table, driven by a client thread over the real unix socket: answers, errors, a
 * too-long line, a request without its newline, the idle timeout, the connection cap, the socket's
 * mode, a second daemon refused, a stale socket replaced, and the file removed at close.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "lib/uvutil.h"
#include "mta/control.h"

/* ---- parsing ---- */

struct parse_case {
    const char *line;
    int rc;
    enum control_verb verb;
    const char *target;
    uint32_t seconds;
    unsigned limit; /* list only */
};

static const struct parse_case parse_cases[] = {
    {"list", 0, CONTROL_LIST, "", 0, CONTROL_PAGE_MAX},
    {"  list  ", 0, CONTROL_LIST, "", 0, CONTROL_PAGE_MAX},
    {"list 50", 0, CONTROL_LIST, "", 0, 50},
    {"list 1000 ABC234", 0, CONTROL_LIST, "ABC234", 0, 1000},
    {"list 0", -EINVAL, 0, NULL, 0, 0},
    {"list 1001", -EINVAL, 0, NULL, 0, 0},
    {"list 50 abc234", -EINVAL, 0, NULL, 0, 0},
    {"list 50 ABC234 x", -EINVAL, 0, NULL, 0, 0},
    {"retry ABC234", 0, CONTROL_RETRY, "ABC234", 0, 0},
    {"retry all", 0, CONTROL_RETRY, "all", 0, 0},
    {"delete ABC234", 0, CONTROL_DELETE, "ABC234", 0, 0},
    {"suspend example.com", 0, CONTROL_SUSPEND, "example.com", 0, 0},
    {"suspend example.com 90", 0, CONTROL_SUSPEND, "example.com", 90, 0},
    {"suspend example.com 15m", 0, CONTROL_SUSPEND, "example.com", 900, 0},
    {"suspend gmail 2h", 0, CONTROL_SUSPEND, "gmail", 7200, 0},
    {"suspend gmail 30d", 0, CONTROL_SUSPEND, "gmail", 30 * 86400, 0},
    {"resume example.com", 0, CONTROL_RESUME, "example.com", 0, 0},
    {"destinations", 0, CONTROL_DESTINATIONS, "", 0, 0},
    {"destinations *.google.com", 0, CONTROL_DESTINATIONS, "*.google.com", 0, 0},
    {"status", 0, CONTROL_STATUS, "", 0, 0},
    {"status now", -EINVAL, 0, NULL, 0, 0},
    {"", -EINVAL, 0, NULL, 0, 0},
    {"   ", -EINVAL, 0, NULL, 0, 0},
    {"LIST", -EINVAL, 0, NULL, 0, 0},
    {"lis", -EINVAL, 0, NULL, 0, 0},
    {"list extra", -EINVAL, 0, NULL, 0, 0},
    {"retry", -EINVAL, 0, NULL, 0, 0},
    {"retry abc234", -EINVAL, 0, NULL, 0, 0},                      /* ids are upper case */
    {"retry ../../etc/passwd", -EINVAL, 0, NULL, 0, 0},            /* never a path */
    {"delete all", -EINVAL, 0, NULL, 0, 0},                        /* all is for retry only */
    {"delete ABCDEFGHIJKLMNOPQRSTUVWXYZ", -EINVAL, 0, NULL, 0, 0}, /* longer than SPOOL_ID_MAX */
    {"retry A B", -EINVAL, 0, NULL, 0, 0},
    {"suspend", -EINVAL, 0, NULL, 0, 0},
    {"suspend example.com 0", -EINVAL, 0, NULL, 0, 0},
    {"suspend example.com 31d", -EINVAL, 0, NULL, 0, 0},
    {"suspend example.com 99999999", -EINVAL, 0, NULL, 0, 0},
    {"suspend example.com 5x", -EINVAL, 0, NULL, 0, 0},
    {"suspend example.com h", -EINVAL, 0, NULL, 0, 0},
    {"suspend example.com 1h 2", -EINVAL, 0, NULL, 0, 0},
    {"resume exa\tmple.com", -EINVAL, 0, NULL, 0, 0},
    {"resume ex\xc3\xa9.com", -EINVAL, 0, NULL, 0, 0},
    {"destinations a.example b.example", -EINVAL, 0, NULL, 0, 0},
    {"suspend-tenant acme", 0, CONTROL_SUSPEND_TENANT, "acme", 0, 0},
    {"resume-tenant alice@example.com", 0, CONTROL_RESUME_TENANT, "alice@example.com", 0, 0},
    {"bounce-tenant acme spring", 0, CONTROL_BOUNCE_TENANT, "acme", 0, 0},
    {"bounce ABCDEF234567", 0, CONTROL_BOUNCE, "ABCDEF234567", 0, 0},
    {"bounce abc234", -EINVAL, 0, NULL, 0, 0},
    {"bounce all", -EINVAL, 0, NULL, 0, 0}, /* one message at a time */
    {"bounce", -EINVAL, 0, NULL, 0, 0},
    {"bounce ABC DEF", -EINVAL, 0, NULL, 0, 0},
    {"suspend-tenant", -EINVAL, 0, NULL, 0, 0},
    {"resume-tenant acme spring extra", -EINVAL, 0, NULL, 0, 0},
    {"bounce-destination example.com", 0, CONTROL_BOUNCE_DESTINATION, "example.com", 0, 0},
    {"bounce-destination example.com acme spring", 0, CONTROL_BOUNCE_DESTINATION, "example.com", 0,
     0},
    {"bounce-destination", -EINVAL, 0, NULL, 0, 0},
    {"bounce-destination example.com acme spring x", -EINVAL, 0, NULL, 0, 0},
    {"tls-rpt-send", 0, CONTROL_TLS_RPT_SEND, "", 0, 0},
    {"tls-rpt-send now", -EINVAL, 0, NULL, 0, 0},
};

static void test_parse(void)
{
    for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++) {
        const struct parse_case *pc = &parse_cases[i];
        struct control_request req;
        struct buf err = BUF_INIT;
        int rc = control_request_parse(pc->line, strlen(pc->line), &req, &err);
        CHECK_INT_EQ(rc, pc->rc);
        if (rc != pc->rc)
            fprintf(stderr, "  case \"%s\": %.*s\n", pc->line, (int)err.len, err.data);
        if (rc == 0 && pc->rc == 0) {
            CHECK_INT_EQ(req.verb, pc->verb);
            CHECK_STR_EQ(req.target, pc->target);
            CHECK_INT_EQ(req.seconds, pc->seconds);
            if (req.verb == CONTROL_LIST)
                CHECK_INT_EQ(req.limit, pc->limit);
        } else if (rc < 0) {
            CHECK(err.len > 0); /* a reason for the operator */
        }
        buf_free(&err);
    }
    /* A tenant's campaign is a word of its own, not a duration. */
    struct control_request req;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(control_request_parse("suspend-tenant acme 90", 22, &req, &err), 0);
    CHECK_STR_EQ(req.campaign, "90");
    CHECK_INT_EQ(req.seconds, 0);
    CHECK_INT_EQ(control_request_parse("suspend example.com", 19, &req, &err), 0);
    CHECK_STR_EQ(req.campaign, "");
    /* A destination's bounce takes the tenant and the campaign after it, each optional. */
    CHECK_INT_EQ(control_request_parse("bounce-destination a.example acme", 33, &req, &err), 0);
    CHECK_STR_EQ(req.tenant, "acme");
    CHECK_STR_EQ(req.campaign, "");
    CHECK_INT_EQ(control_request_parse("bounce-destination a.example acme 90", 36, &req, &err), 0);
    CHECK_STR_EQ(req.campaign, "90");
    CHECK_INT_EQ(req.seconds, 0);
    /* A NUL inside the line is refused, not a terminator. */
    CHECK_INT_EQ(control_request_parse("list\0x", 6, &req, &err), -EINVAL);
    buf_reset(&err);
    char longer[CONTROL_REQUEST_MAX + 10];
    memset(longer, 'A', sizeof(longer));
    memcpy(longer, "retry ", 6);
    CHECK_INT_EQ(control_request_parse(longer, sizeof(longer), &req, &err), -EINVAL);
    buf_free(&err);
}

static void test_socket_path(void)
{
    struct buf path = BUF_INIT, err = BUF_INIT;
    CHECK_INT_EQ(control_socket_path("/var/spool/sluice", &path, &err), 0);
    CHECK_STR_EQ(path.data, "/var/spool/sluice/control");
    char deep[200];
    memset(deep, 'd', sizeof(deep) - 1);
    deep[0] = '/';
    deep[sizeof(deep) - 1] = '\0';
    CHECK_INT_EQ(control_socket_path(deep, &path, &err), -ENAMETOOLONG);
    CHECK(strstr(err.data, "shorter spool path") != NULL);
    buf_free(&path);
    buf_free(&err);
}

/* ---- the socket ---- */

/* What the test handlers saw; touched only on the loop thread. */
struct seen {
    int calls;
    char last[300];
    uint32_t seconds;
    uv_timer_t later_timer; /* answers a list later */
    struct control_later *later;
    size_t streamed;     /* bytes of a streamed answer put so far */
    int fulls, wakes;    /* times control_later_full held the stream back, and woke it */
    int parked;
};

/* A streamed list answer: STREAM_PIECES pieces of STREAM_PIECE bytes. */
#define STREAM_PIECE 32768
#define STREAM_PIECES 128

static char stream_byte(size_t i)
{
    return (char)('a' + i % 23);
}

/* Set by the client thread: list answers this long later (longer than the idle timeout). */
static int list_later_ms;

static void list_on_later(uv_timer_t *t)
{
    struct seen *s = container_of(t, struct seen, later_timer);
    struct buf doc = BUF_INIT;
    buf_append_str(&doc, "{\"later\":true}");
    control_later_done(s->later, 0, &doc);
    s->later = NULL;
    buf_free(&doc);
}

static void stream_wake(void *arg)
{
    struct seen *s = arg;
    s->wakes++;
    s->parked = 0;
}

/* Puts the next piece while the client takes them (a timer tick each). */
static void stream_on_tick(uv_timer_t *t)
{
    struct seen *s = container_of(t, struct seen, later_timer);
    if (s->parked)
        return;
    if (control_later_full(s->later, stream_wake, s)) {
        s->fulls++;
        s->parked = 1;
        return;
    }
    char piece[STREAM_PIECE];
    for (size_t i = 0; i < sizeof piece; i++)
        piece[i] = stream_byte(s->streamed + i);
    control_later_put(s->later, piece, sizeof piece);
    s->streamed += sizeof piece;
    if (s->streamed == (size_t)STREAM_PIECE * STREAM_PIECES) {
        struct buf none = BUF_INIT;
        control_later_done(s->later, 0, &none);
        s->later = NULL;
        uv_timer_stop(t);
    }
}

static int h_list(void *arg, const char *after, unsigned limit, struct buf *out,
                  struct control_later *later)
{
    struct seen *s = arg;
    s->calls++;
    if (limit == CONTROL_PAGE_MAX && after[0] == '\0')
        snprintf(s->last, sizeof(s->last), "list");
    else
        snprintf(s->last, sizeof(s->last), "list %u %s", limit, after);
    int ms = __atomic_load_n(&list_later_ms, __ATOMIC_SEQ_CST);
    if (ms < 0) { /* streamed */
        s->later = later;
        s->streamed = 0;
        uv_timer_start(&s->later_timer, stream_on_tick, 1, 1);
        return CONTROL_LATER;
    }
    if (ms > 0) {
        s->later = later;
        uv_timer_start(&s->later_timer, list_on_later, (uint64_t)ms, 0);
        return CONTROL_LATER;
    }
    buf_append_str(out, "{\"messages\":[],\"destinations\":[]}"); /* no newline: added */
    return 0;
}

static int h_retry(void *arg, const char *id, struct buf *out)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "retry %s", id);
    if (strcmp(id, "NOSUCH") == 0) {
        buf_printf(out, "no message %s in the queue\nsecond line not sent\n", id);
        return -ENOENT;
    }
    buf_printf(out, "%s scheduled for delivery now\n", id);
    return 0;
}

static int h_delete(void *arg, const char *id, struct buf *out)
{
    struct seen *s = arg;
    (void)out;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "delete %s", id);
    return -EIO; /* no reason given: the answer names the errno */
}

static int h_suspend(void *arg, const char *dest, uint32_t seconds, struct buf *out)
{
    struct seen *s = arg;
    s->calls++;
    s->seconds = seconds;
    snprintf(s->last, sizeof(s->last), "suspend %s", dest);
    buf_printf(out, "%s suspended\n", dest);
    return 0;
}

static int h_resume(void *arg, const char *dest, struct buf *out)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "resume %s", dest);
    buf_printf(out, "%s resumed\n", dest);
    return 0;
}

static int h_destinations(void *arg, const char *dest, struct buf *out)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "destinations %s", dest);
    buf_printf(out, "destination %s: 0 jobs queued\n", dest[0] ? dest : "a.example");
    return 0;
}

static int h_status(void *arg, struct buf *out)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "status");
    buf_printf(out, "{\"version\":\"test\"}\n");
    return 0;
}

static const struct control_handlers handlers = {h_list,   h_retry,        h_delete, h_suspend,
                                                 h_resume, h_destinations, h_status, NULL,
                                                 NULL,     NULL,           NULL,     NULL};

struct fixture {
    uv_loop_t loop;
    uv_async_t done; /* the client thread has finished */
    struct control *ctl;
    struct seen seen;
    char path[108];
};

static int raw_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until EOF or timeout_ms; returns the milliseconds it took, or -1 on timeout. */
static long raw_read_all(int fd, struct buf *out, int timeout_ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, buf_reserve(out, 4096), 4096);
        if (n <= 0)
            break;
        out->len += (size_t)n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

/* A whole control_call: the answer as a C string (static, overwritten by the next call). */
static const char *call(struct fixture *f, const char *request)
{
    static struct buf answer;
    struct buf err = BUF_INIT;
    buf_reset(&answer);
    int rc = control_call(f->path, request, 5000, &answer, &err);
    if (rc != 0)
        fprintf(stderr, "control_call(%s): %d %.*s\n", request, rc, (int)err.len, err.data);
    buf_free(&err);
    buf_append(&answer, "", 1); /* NUL-terminate */
    return answer.data;
}

static const char *raw_exchange(struct fixture *f, const char *bytes, size_t len, int half_close)
{
    static struct buf answer;
    buf_reset(&answer);
    int fd = raw_connect(f->path);
    if (fd < 0)
        return "(connect failed)";
    if (write(fd, bytes, len) != (ssize_t)len)
        fprintf(stderr, "short write\n");
    if (half_close)
        shutdown(fd, SHUT_WR);
    raw_read_all(fd, &answer, 5000);
    close(fd);
    buf_append(&answer, "", 1);
    return answer.data;
}

/* Runs on its own thread while the loop serves; handler state is read only after join. */
static void client_thread(void *arg)
{
    struct fixture *f = arg;
    CHECK_STR_EQ(call(f, "list"), "ok\n{\"messages\":[],\"destinations\":[]}\n");
    CHECK_STR_EQ(call(f, "retry ABC234"), "ok\nABC234 scheduled for delivery now\n");
    CHECK_STR_EQ(call(f, "retry NOSUCH"), "error: no message NOSUCH in the queue\n");
    CHECK_STR_EQ(call(f, "delete ABC234"), "error: Input/output error\n");
    CHECK_STR_EQ(call(f, "resume example.com"), "ok\nexample.com resumed\n");
    CHECK_STR_EQ(call(f, "status"), "ok\n{\"version\":\"test\"}\n");
    CHECK_STR_EQ(call(f, "suspend example.com 2h"), "ok\nexample.com suspended\n");
    CHECK_STR_EQ(call(f, "destinations"), "ok\ndestination a.example: 0 jobs queued\n");
    CHECK_STR_EQ(call(f, "destinations b.example"), "ok\ndestination b.example: 0 jobs queued\n");
    CHECK_STR_EQ(call(f, "destinations a b"),
                 "error: destinations takes at most one destination\n");
    CHECK_STR_EQ(call(f, "frobnicate"), "error: unknown request frobnicate\n");
    CHECK_STR_EQ(call(f, "retry ../x"), "error: ../x is not a queue id\n");

    /* CRLF line end; a request without a newline that the client half-closes. */
    CHECK_STR_EQ(raw_exchange(f, "resume a.example\r\n", 18, 0), "ok\na.example resumed\n");
    CHECK_STR_EQ(raw_exchange(f, "resume b.example", 16, 1), "ok\nb.example resumed\n");
    /* Only the first line is a request. */
    CHECK_STR_EQ(raw_exchange(f, "resume c.example\nlist\n", 22, 0), "ok\nc.example resumed\n");

    /* A line that never ends is refused once it reaches the cap, without waiting for more. */
    char flood[3 * CONTROL_REQUEST_MAX];
    memset(flood, 'x', sizeof(flood));
    memcpy(flood, "resume ", 7);
    CHECK_STR_EQ(raw_exchange(f, flood, CONTROL_REQUEST_MAX, 0),
                 "error: request longer than 1023 bytes\n");

    /* At most CONTROL_MAX_CONNS at once: one more is told so and closed. */
    int idle[CONTROL_MAX_CONNS];
    for (int i = 0; i < CONTROL_MAX_CONNS; i++)
        idle[i] = raw_connect(f->path);
    CHECK_STR_EQ(call(f, "list"), "error: too many control connections, try again\n");
    /* The daemon answers and closes without reading: a request too large to be written before
     * that ends in a broken pipe, and the client still reads the answer. */
    static char big[1 << 20];
    memset(big, 'x', sizeof big - 1);
    CHECK_STR_EQ(call(f, big), "error: too many control connections, try again\n");
    for (int i = 0; i < CONTROL_MAX_CONNS; i++)
        if (idle[i] >= 0)
            close(idle[i]);

    /* Served again once the idle ones are gone (they close on the loop, so allow a moment). */
    const char *again = "";
    for (int i = 0; i < 50 && strcmp(again, "ok\nd.example resumed\n") != 0; i++) {
        again = call(f, "resume d.example");
        usleep(20000);
    }
    CHECK_STR_EQ(again, "ok\nd.example resumed\n");

    /* A client that sends nothing is dropped after the idle timeout (300 ms here). */
    struct buf got = BUF_INIT;
    int fd = raw_connect(f->path);
    long ms = raw_read_all(fd, &got, 5000);
    close(fd);
    CHECK(ms >= 250);
    CHECK_INT_EQ(got.len, 0);
    buf_free(&got);

    /* A list answered later, after more than the idle time: the client gets it whole. */
    __atomic_store_n(&list_later_ms, 500, __ATOMIC_SEQ_CST);
    CHECK_STR_EQ(call(f, "list"), "ok\n{\"later\":true}\n");
    /* The client goes away first: the late answer goes to nobody, and nothing breaks. */
    fd = raw_connect(f->path);
    CHECK(fd >= 0 && write(fd, "list\n", 5) == 5);
    close(fd);
    usleep(700000);
    __atomic_store_n(&list_later_ms, 0, __ATOMIC_SEQ_CST);
    CHECK_STR_EQ(call(f, "list"), "ok\n{\"messages\":[],\"destinations\":[]}\n");

    /* A streamed answer to a client that reads late: the handler is held back (its pieces wait
     * for the client rather than pile up), woken as the client reads, and every byte comes in
     * order, the line end added. */
    __atomic_store_n(&list_later_ms, -1, __ATOMIC_SEQ_CST);
    fd = raw_connect(f->path);
    CHECK(fd >= 0 && write(fd, "list\n", 5) == 5);
    usleep(300000);
    CHECK(raw_read_all(fd, &got, 5000) >= 0);
    close(fd);
    size_t want = (size_t)STREAM_PIECE * STREAM_PIECES;
    CHECK_INT_EQ(got.len, 3 + want + 1);
    CHECK(got.len >= 3 && memcmp(got.data, "ok\n", 3) == 0);
    size_t wrong = 0;
    for (size_t i = 0; i < want && 3 + i < got.len; i++)
        wrong += got.data[3 + i] != stream_byte(i);
    CHECK_INT_EQ(wrong, 0);
    CHECK(got.len > 0 && got.data[got.len - 1] == '\n');
    CHECK(__atomic_load_n(&f->seen.fulls, __ATOMIC_SEQ_CST) > 0);
    CHECK_INT_EQ(__atomic_load_n(&f->seen.wakes, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&f->seen.fulls, __ATOMIC_SEQ_CST));
    buf_free(&got);
    __atomic_store_n(&list_later_ms, 0, __ATOMIC_SEQ_CST);
    uv_async_send(&f->done);
}

static void fixture_on_done(uv_async_t *a)
{
    struct fixture *f = container_of(a, struct fixture, done);
    control_close(f->ctl);
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&f->seen.later_timer, NULL);
}

static void test_socket(const char *dir)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    snprintf(f.path, sizeof(f.path), "%s/control", dir);
    uv_loop_init(&f.loop);
    uv_async_init(&f.loop, &f.done, fixture_on_done);
    uv_timer_init(&f.loop, &f.seen.later_timer);
    struct buf err = BUF_INIT;

    /* A stale socket (bound, nobody listening) is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f.path);
    CHECK_INT_EQ(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(stale);

    CHECK_INT_EQ(control_open(&f.loop, f.path, &handlers, &f.seen, &f.ctl, &err), 0);
    control_set_idle_timeout(f.ctl, 300);
    struct stat st;
    CHECK_INT_EQ(stat(f.path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_INT_EQ(st.st_mode & 0777, 0600);

    /* A second daemon on the same spool is refused, and the first keeps its socket. */
    struct control *second = NULL;
    buf_reset(&err);
    CHECK_INT_EQ(control_open(&f.loop, f.path, &handlers, NULL, &second, &err), -EADDRINUSE);
    CHECK(err.len > 0 && strstr(err.data, "another daemon") != NULL);
    CHECK(second == NULL);

    uv_thread_t t;
    uv_thread_create(&t, client_thread, &f);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uv_thread_join(&t);

    CHECK_STR_EQ(f.seen.last, "list");
    CHECK_INT_EQ(f.seen.seconds, 7200);
    CHECK(f.seen.calls >= 10);
    CHECK_INT_EQ(access(f.path, F_OK), -1); /* removed at close */
    CHECK_INT_EQ(uv_loop_close(&f.loop), 0);
    buf_free(&err);

    /* No daemon: the client says so. */
    struct buf answer = BUF_INIT;
    CHECK_INT_EQ(control_call(f.path, "list", 1000, &answer, &err), -ENOENT);
    CHECK(strstr(err.data, "no daemon answers") != NULL);
    buf_free(&answer);
    buf_free(&err);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon: a client gone is an error, not a signal */
    test_parse();
    test_socket_path();
    char dir[] = "/tmp/test_control-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_socket(dir);
    rmdir(dir);
    return check_report("test_control");
}
