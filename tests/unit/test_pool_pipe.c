/* lib/pool_pipe and lib/header_section: bytes reach the pool consumer whole and in order, the
 * writer is paused and resumed, "enough" drops later writes, an abort while busy releases only
 * after the work returns; the header section is found however the stream is split. */
#include <stdlib.h>

#include <uv.h>

#include "lib/header_section.h"
#include "lib/pool_pipe.h"
#include "lib/uvutil.h"
#include "check.h"

struct sink {
    struct pool_pipe pipe;
    struct buf got;    /* pool side: what consume saw */
    size_t stop_after; /* consume says "enough" once this much arrived; 0: never */
    int last_ran, done, released, writable, consumed_calls;
};

static int sink_consume(struct pool_pipe *p, const char *data, size_t len)
{
    struct sink *k = container_of(p, struct sink, pipe);
    buf_append(&k->got, data, len);
    return k->stop_after > 0 && k->got.len >= k->stop_after;
}

static void sink_consumed(struct pool_pipe *p)
{
    container_of(p, struct sink, pipe)->consumed_calls++;
}

static void sink_release(struct pool_pipe *p)
{
    container_of(p, struct sink, pipe)->released = 1;
}

static void sink_last(struct pool_pipe *p)
{
    container_of(p, struct sink, pipe)->last_ran = 1;
}

static void sink_done(struct pool_pipe *p)
{
    container_of(p, struct sink, pipe)->done++;
}

static void sink_writable(void *arg)
{
    ((struct sink *)arg)->writable = 1;
}

static const struct pool_pipe_ops sink_ops = {sink_consume, sink_consumed, sink_release};

/* A pattern whose every offset is distinguishable, so reordering or loss shows. */
static void pattern(struct buf *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = (char)('a' + (i * 7 + i / 26) % 26);
        buf_append(b, &c, 1);
    }
}

static void test_order_and_backpressure(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sink k = {0};
    pool_pipe_init(&k.pipe, &loop, &sink_ops);
    struct buf want = BUF_INIT;
    pattern(&want, 3 * POOL_PIPE_HIGH_WATER + 12345);

    int paused = 0;
    size_t off = 0;
    for (int rounds = 0; off < want.len && rounds < 100000; rounds++) {
        size_t n = want.len - off < 7919 ? want.len - off : 7919;
        if (pool_pipe_write(&k.pipe, want.data + off, n, sink_writable, &k) == 1) {
            paused++;
            k.writable = 0;
            while (!k.writable) /* the writer waits; bounded: the pool drains the backlog */
                uv_run(&loop, UV_RUN_ONCE);
        }
        off += n;
    }
    CHECK_INT_EQ(off, want.len);
    CHECK(paused > 0);
    pool_pipe_finish(&k.pipe, sink_last, sink_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(k.done, 1);
    CHECK_INT_EQ(k.last_ran, 1);
    CHECK(k.consumed_calls >= 2);
    CHECK(k.got.len == want.len && memcmp(k.got.data, want.data, want.len) == 0);

    /* More work after finish: pool_pipe_run. */
    k.last_ran = 0;
    pool_pipe_run(&k.pipe, sink_last, sink_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(k.done, 2);
    CHECK_INT_EQ(k.last_ran, 1);
    CHECK_INT_EQ(k.released, 0);

    pool_pipe_close(&k.pipe);
    buf_free(&k.got);
    buf_free(&want);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static void test_enough_drops_later_writes(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sink k = {.stop_after = 1};
    pool_pipe_init(&k.pipe, &loop, &sink_ops);
    struct buf data = BUF_INIT;
    pattern(&data, POOL_PIPE_BATCH);
    pool_pipe_write(&k.pipe, data.data, data.len, sink_writable, &k); /* one batch: hands it over */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(k.pipe.discard, 1);
    CHECK_INT_EQ(pool_pipe_write(&k.pipe, data.data, data.len, sink_writable, &k), 0);
    CHECK_INT_EQ(k.pipe.pending.len, 0);
    pool_pipe_finish(&k.pipe, NULL, sink_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(k.got.len, POOL_PIPE_BATCH);
    CHECK_INT_EQ(k.done, 1);
    pool_pipe_close(&k.pipe);
    buf_free(&k.got);
    buf_free(&data);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static void test_abort_idle_and_busy(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sink k = {0};
    pool_pipe_init(&k.pipe, &loop, &sink_ops);
    pool_pipe_write(&k.pipe, "abc", 3, sink_writable, &k);
    pool_pipe_abort(&k.pipe); /* idle: released at once */
    CHECK_INT_EQ(k.released, 1);
    pool_pipe_close(&k.pipe);

    struct sink b = {0};
    struct buf data = BUF_INIT;
    pattern(&data, POOL_PIPE_BATCH);
    pool_pipe_init(&b.pipe, &loop, &sink_ops);
    pool_pipe_write(&b.pipe, data.data, data.len, sink_writable, &b); /* work now in flight */
    CHECK_INT_EQ(b.pipe.busy, 1);
    pool_pipe_abort(&b.pipe);
    CHECK_INT_EQ(b.released, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(b.released, 1);
    CHECK_INT_EQ(b.consumed_calls, 0); /* nothing but release after an abort */
    pool_pipe_close(&b.pipe);
    buf_free(&b.got);
    buf_free(&data);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* The header section is found at the same place however the bytes are split. */
static void check_section(const char *msg, const char *want_fields, const char *want_body)
{
    size_t len = strlen(msg);
    for (size_t step = 1; step <= len; step++) {
        struct header_section hs = HEADER_SECTION_INIT;
        enum header_section_state st = HEADER_SECTION_MORE;
        for (size_t off = 0; off < len && st == HEADER_SECTION_MORE; off += step)
            st = header_section_feed(&hs, msg + off, len - off < step ? len - off : step);
        if (st == HEADER_SECTION_MORE)
            header_section_end(&hs);
        CHECK_MEM_EQ(hs.data.data, hs.fields, want_fields);
        size_t body_have = hs.data.len - hs.body;
        /* Only the body bytes that came with the final piece are in the section's buffer. */
        CHECK(body_have <= strlen(want_body) &&
              memcmp(hs.data.data + hs.body, want_body, body_have) == 0);
        header_section_free(&hs);
    }
}

static void test_header_section(void)
{
    check_section("From: a\r\nSubject: b\r\n\r\nbody\r\n", "From: a\r\nSubject: b\r\n", "body\r\n");
    check_section("From: a\nSubject: b\n\nbody\n", "From: a\nSubject: b\n", "body\n");
    check_section("\r\nbody", "", "body");
    check_section("From: a\r\nSubject: no body", "From: a\r\nSubject: no body", "");

    const char *h = "A: 1\r\n folded\r\n\tagain\r\nB: 2\r\nC: 3";
    size_t end = strlen(h);
    size_t a = header_field_end(h, 0, end);
    CHECK_INT_EQ(a, strlen("A: 1\r\n folded\r\n\tagain\r\n"));
    size_t b = header_field_end(h, a, end);
    CHECK_INT_EQ(b - a, strlen("B: 2\r\n"));
    CHECK_INT_EQ(header_field_end(h, b, end), end);

    struct header_section big = HEADER_SECTION_INIT;
    struct buf line = BUF_INIT;
    buf_printf(&line, "X-Filler: %0900d\r\n", 0);
    enum header_section_state st = HEADER_SECTION_MORE;
    for (int i = 0; i < 2000 && st == HEADER_SECTION_MORE; i++)
        st = header_section_feed(&big, line.data, line.len);
    CHECK_INT_EQ(st, HEADER_SECTION_TOO_BIG);
    CHECK(big.data.len <= HEADER_SECTION_MAX);
    header_section_free(&big);
    buf_free(&line);
}

int main(void)
{
    test_order_and_backpressure();
    test_enough_drops_later_writes();
    test_abort_idle_and_busy();
    test_header_section();
    return check_report("pool_pipe");
}
