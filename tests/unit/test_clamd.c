/*
 * clamd INSTREAM client: the reply parser, and whole scans against a fake clamd served in the same
 * loop (a unix socket and a TCP port on 127.0.0.1) that checks the framing byte for byte: clean,
 * found, a large message with backpressure, clamd absent, clamd silent (timeout), clamd closing
 * without a reply, and freeing a scan in flight. Every wait is bounded.
 */
#include "policy/clamd.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/uvutil.h"

#define WAIT_MS 5000

static uv_loop_t loop;

/* ---- the fake clamd ---- */

enum fake_mode { FAKE_REPLY, FAKE_SILENT, FAKE_CLOSE };

struct fake_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct buf in;
    uv_write_t req;
};

static enum fake_mode fake_mode;
static struct buf fake_scanned; /* the message as the fake reassembled it */
static int fake_framing_ok;

static void fake_on_closed(uv_handle_t *h)
{
    struct fake_conn *fc = h->data;
    buf_free(&fc->in);
    free(fc);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char space[65536];
    b->base = space;
    b->len = sizeof space;
}

/* 1 once the stream holds "zINSTREAM\0", chunks and the zero length; the chunks land in
 * fake_scanned. */
static int fake_complete(struct fake_conn *fc)
{
    if (fc->in.len < 10)
        return 0;
    fake_framing_ok = memcmp(fc->in.data, "zINSTREAM\0", 10) == 0;
    size_t at = 10;
    buf_reset(&fake_scanned);
    while (at + 4 <= fc->in.len) {
        uint32_t n;
        memcpy(&n, fc->in.data + at, 4);
        n = ntohl(n);
        at += 4;
        if (n == 0)
            return at == fc->in.len || (fake_framing_ok = 0);
        if (at + n > fc->in.len)
            return 0;
        buf_append(&fake_scanned, fc->in.data + at, n);
        at += n;
    }
    return 0;
}

static void fake_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct fake_conn *fc = st->data;
    if (n < 0) {
        uv_close(&fc->h.handle, fake_on_closed);
        return;
    }
    buf_append(&fc->in, b->base, (size_t)n);
    if (!fake_complete(fc))
        return;
    if (fake_mode == FAKE_CLOSE) {
        uv_close(&fc->h.handle, fake_on_closed);
        return;
    }
    if (fake_mode == FAKE_SILENT)
        return;
    static const char ok[] = "stream: OK", found[] = "stream: Eicar-Test-Signature FOUND";
    int infected = memmem(fake_scanned.data, fake_scanned.len, "EICAR", 5) != NULL;
    uv_buf_t reply = uv_buf_init((char *)(infected ? found : ok),
                                 (unsigned)(infected ? sizeof found : sizeof ok)); /* NUL too */
    uv_write(&fc->req, st, &reply, 1, NULL);
}

static void fake_on_connection(uv_stream_t *server, int status)
{
    struct fake_conn *fc = calloc(1, sizeof *fc);
    if (server->type == UV_NAMED_PIPE)
        uv_pipe_init(&loop, &fc->h.pipe, 0);
    else
        uv_tcp_init(&loop, &fc->h.tcp);
    fc->h.handle.data = fc;
    if (status < 0 || uv_accept(server, &fc->h.stream) < 0) {
        uv_close(&fc->h.handle, fake_on_closed);
        return;
    }
    uv_read_start(&fc->h.stream, fake_alloc, fake_on_read);
}

/* ---- a scan ---- */

struct scan_run {
    int done;
    struct clamd_result res;
    char virus[CLAMD_REPLY_MAX + 1];
    char error[256];
    int writable_calls;
};

static void on_result(void *arg, const struct clamd_result *res)
{
    struct scan_run *run = arg;
    run->res = *res;
    if (res->virus != NULL)
        snprintf(run->virus, sizeof run->virus, "%s", res->virus);
    if (res->error != NULL)
        snprintf(run->error, sizeof run->error, "%s", res->error);
    run->done = 1;
}

static void on_writable(void *arg)
{
    ((struct scan_run *)arg)->writable_calls++;
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static int run_until(const int *done, unsigned ms)
{
    uv_timer_t guard;
    int expired = 0;
    uv_timer_init(&loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, ms, 0);
    while (!*done && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *done;
}

/* Scans `msg` written in pieces of `piece` octets; waits for writable when asked to. */
static void scan(const char *address, const char *msg, size_t len, size_t piece,
                 uint64_t timeout_ms, struct scan_run *run)
{
    memset(run, 0, sizeof *run);
    struct clamd_scan *c = clamd_scan_new(&loop, address, timeout_ms, on_writable, run);
    for (size_t at = 0; at < len; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        if (clamd_scan_write(c, msg + at, n)) {
            int calls = run->writable_calls;
            uv_timer_t guard;
            int expired = 0;
            uv_timer_init(&loop, &guard);
            guard.data = &expired;
            uv_timer_start(&guard, on_guard, WAIT_MS, 0);
            while (run->writable_calls == calls && !expired)
                uv_run(&loop, UV_RUN_ONCE);
            uv_close((uv_handle_t *)&guard, NULL);
            CHECK(!expired);
        }
    }
    clamd_scan_finish(c, on_result, run);
    CHECK(!run->done); /* never from inside the call */
    CHECK(run_until(&run->done, WAIT_MS));
    clamd_scan_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_reply_parse(void)
{
    char name[CLAMD_REPLY_MAX + 1];
    struct clamd_result res;
    clamd_reply_parse("stream: OK", 11, name, &res);
    CHECK_INT_EQ(res.status, CLAMD_CLEAN);
    const char found[] = "stream: Win.Test.EICAR_HDB-1 FOUND\n";
    clamd_reply_parse(found, sizeof found - 1, name, &res);
    CHECK_INT_EQ(res.status, CLAMD_FOUND);
    CHECK_STR_EQ(res.virus, "Win.Test.EICAR_HDB-1");
    const char limit[] = "INSTREAM size limit exceeded. ERROR";
    clamd_reply_parse(limit, sizeof limit, name, &res);
    CHECK_INT_EQ(res.status, CLAMD_ERROR);
    CHECK_STR_EQ(res.error, limit);
    clamd_reply_parse("stream: \x01\x7f FOUND", 16, name, &res); /* shown safely */
    CHECK_INT_EQ(res.status, CLAMD_FOUND);
    CHECK_STR_EQ(res.virus, "??");
    clamd_reply_parse("", 0, name, &res);
    CHECK_INT_EQ(res.status, CLAMD_ERROR);
    clamd_reply_parse("stream: FOUND", 13, name, &res); /* no name: not a finding */
    CHECK_INT_EQ(res.status, CLAMD_ERROR);
}

static void test_scans(const char *address)
{
    struct scan_run run;
    const char clean[] = "Subject: hi\r\n\r\nhello\r\n";
    fake_mode = FAKE_REPLY;
    scan(address, clean, sizeof clean - 1, 5, WAIT_MS, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_CLEAN);
    CHECK(fake_framing_ok);
    CHECK_MEM_EQ(fake_scanned.data, fake_scanned.len, clean);

    const char eicar[] = "Subject: x\r\n\r\nX5O!P%@AP...EICAR-STANDARD-ANTIVIRUS-TEST-FILE!\r\n";
    scan(address, eicar, sizeof eicar - 1, 1000, WAIT_MS, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_FOUND);
    CHECK_STR_EQ(run.virus, "Eicar-Test-Signature");

    /* 3 MB in one write: over the queue mark, so the writer waits for on_writable. */
    size_t big_len = 3u << 20;
    char *big = malloc(big_len);
    memset(big, 'a', big_len);
    scan(address, big, big_len, big_len, WAIT_MS, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_CLEAN);
    CHECK_INT_EQ(run.writable_calls, 1);
    CHECK_INT_EQ(fake_scanned.len, big_len);
    free(big);

    fake_mode = FAKE_SILENT;
    scan(address, clean, sizeof clean - 1, 100, 300, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_ERROR);
    CHECK(strstr(run.error, "timed out") != NULL);

    fake_mode = FAKE_CLOSE;
    scan(address, clean, sizeof clean - 1, 100, WAIT_MS, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_ERROR);
    CHECK(strstr(run.error, "without a reply") != NULL);
}

static void test_absent(const char *dir)
{
    struct scan_run run;
    char path[512];
    snprintf(path, sizeof path, "%s/nobody.sock", dir);
    scan(path, "x", 1, 1, WAIT_MS, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_ERROR);
    CHECK(strstr(run.error, "connecting to clamd") != NULL);
    scan("no-port", "x", 1, 1, WAIT_MS, &run);
    CHECK_INT_EQ(run.res.status, CLAMD_ERROR);
}

/* Freed in flight (the client left mid-DATA): no callback, no leak (ASan). */
static void test_free_in_flight(const char *address)
{
    struct scan_run run = {0};
    fake_mode = FAKE_SILENT;
    struct clamd_scan *c = clamd_scan_new(&loop, address, WAIT_MS, on_writable, &run);
    clamd_scan_write(c, "abc", 3);
    uv_run(&loop, UV_RUN_NOWAIT);
    clamd_scan_finish(c, on_result, &run);
    clamd_scan_free(c);
    int never = 0;
    run_until(&never, 100);
    CHECK(!run.done);
    c = clamd_scan_new(&loop, "localhost:1", WAIT_MS, on_writable,
                       &run); /* freed while resolving */
    clamd_scan_free(c);
    run_until(&never, 100);
}

int main(void)
{
    alarm(60);
    uv_loop_init(&loop);
    test_reply_parse();

    char dir[] = "/tmp/test_clamd.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/clamd.sock", dir);
    uv_pipe_t unix_server;
    uv_pipe_init(&loop, &unix_server, 0);
    CHECK_INT_EQ(uv_pipe_bind(&unix_server, path), 0);
    CHECK_INT_EQ(uv_listen((uv_stream_t *)&unix_server, 8, fake_on_connection), 0);

    uv_tcp_t tcp_server;
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(&loop, &tcp_server);
    CHECK_INT_EQ(uv_tcp_bind(&tcp_server, (struct sockaddr *)&sin, 0), 0);
    CHECK_INT_EQ(uv_listen((uv_stream_t *)&tcp_server, 8, fake_on_connection), 0);
    int len = sizeof sin;
    uv_tcp_getsockname(&tcp_server, (struct sockaddr *)&sin, &len);
    char hostport[64];
    snprintf(hostport, sizeof hostport, "127.0.0.1:%u", ntohs(sin.sin_port));

    test_scans(path);
    test_scans(hostport);
    test_absent(dir);
    test_free_in_flight(path);

    uv_close((uv_handle_t *)&unix_server, NULL);
    uv_close((uv_handle_t *)&tcp_server, NULL);
    int never = 0;
    run_until(&never, 50);
    unlink(path);
    rmdir(dir);
    buf_free(&fake_scanned);
    uv_loop_close(&loop);
    return check_report("test_clamd");
}
