/*
 * Fuzzes the client-side reply parser with what a hostile server could send. The input is parsed
 * as a stream of pipelined replies twice, whole and in pseudo-random chunks (drawn from a seed
 * made of the input), and both runs must produce the same replies and end the same way. Every
 * reply must respect the caps, and its joined text must be printable ASCII only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_reply.h"

static void check_reply(const struct smtp_reply *r)
{
    if (r->code < 200 || r->code > 559 || r->code % 100 > 59)
        abort();
    if (r->nlines < 1 || r->nlines > SMTP_REPLY_LINES_MAX || r->text.len > SMTP_REPLY_TOTAL_MAX)
        abort();
    if (r->enhanced.cls != 0 && (r->enhanced.cls != (unsigned)r->code / 100 ||
                                 r->enhanced.subject > 999 || r->enhanced.detail > 999))
        abort();
    size_t pos = 0, n = 0, len;
    const char *text;
    while (smtp_reply_line_next(r, &pos, &text, &len)) {
        if (len + 5 > SMTP_REPLY_LINE_MAX || memchr(text, '\0', len))
            abort();
        n++;
    }
    if (n != r->nlines)
        abort();
    struct smtp_ehlo ehlo;
    smtp_reply_ehlo_parse(r, &ehlo);
}

/* Records each reply as one line "code enhanced nlines join" in log, and returns the last status.
 * chunk_seed 0 feeds everything at once; otherwise chunks are 0..63 bytes. */
static enum smtp_reply_status run(const uint8_t *data, size_t size, uint64_t chunk_seed,
                                  struct buf *log)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    enum smtp_reply_status st = REPLY_NEED_MORE;
    uint64_t rng = chunk_seed;
    size_t off = 0;
    while (off < size) {
        size_t n = size - off;
        if (chunk_seed != 0) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (rng % 64 < n)
                n = rng % 64;
        }
        size_t used;
        st = smtp_reply_parser_feed(&p, data + off, n, &used);
        if (used > n || (st == REPLY_NEED_MORE && used != n) || (st == REPLY_DONE && used == 0))
            abort();
        off += used;
        if (st == REPLY_ERROR)
            break;
        if (st == REPLY_DONE) {
            check_reply(&p.reply);
            const struct smtp_enhanced *e = &p.reply.enhanced;
            buf_printf(log, "%d %u.%u.%u %zu ", p.reply.code, e->cls, e->subject, e->detail,
                       p.reply.nlines);
            size_t start = log->len;
            smtp_reply_text_join(&p.reply, "|", log);
            for (size_t i = start; i < log->len; i++)
                if (log->data[i] < 0x20 || log->data[i] > 0x7e)
                    abort();
            buf_append(log, "\n", 1);
        }
    }
    smtp_reply_parser_close(&p);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = 1469598103934665603ull; /* FNV-1a of the input: never 0 in practice */
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 1099511628211ull;
    if (seed == 0)
        seed = 1;
    struct buf whole = BUF_INIT, chunked = BUF_INIT;
    enum smtp_reply_status a = run(data, size, 0, &whole);
    enum smtp_reply_status b = run(data, size, seed, &chunked);
    if (a != b || whole.len != chunked.len ||
        (whole.len && memcmp(whole.data, chunked.data, whole.len) != 0))
        abort();
    buf_free(&whole);
    buf_free(&chunked);
    return 0;
}
