/*
 * Fuzzes the command line reader as the session drives it: bytes arrive in chunks of any size and
 * the caller keeps what was not consumed in front of the next chunk. Whatever the chunking (whole,
 * byte by byte up to 4 KiB, and sizes drawn from the input), the reader must read the same lines,
 * agree with a plain model (the input cut at each CRLF; a piece is a line when it holds no CR or
 * LF and fits the cap, else one error, of the kind the piece has), and never leave the caller
 * holding more than a line's worth of bytes.
 * Input: byte 0 picks the cap (the command line's 512, AUTH's 12288, or a small one), byte 1 seeds
 * the chunk sizes, the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/linereader.h"
#include "lib/smtp_cmd.h"
#include "mta/server/smtp_auth.h"

/* One result as the model sees it: a line, or an error (kinds 1 and 2 for a piece with only a bare
 * CR/LF or only too long; 3 for one with both, where the reader may name either). */
struct result {
    const char *line; /* into the input, or a copy; NULL for an error */
    size_t len;
    int error; /* 0 line; bit 1 bare CR/LF seen; bit 2 too long */
};

#define RESULTS_MAX 16384

struct run {
    struct result res[RESULTS_MAX];
    size_t n;
    struct buf lines; /* copies of the lines read, one after the other */
};

static struct run model, got;

static size_t cap_of(uint8_t b)
{
    if (b < 0x40)
        return SMTP_CMD_LINE_MAX;
    if (b < 0x50)
        return SMTP_AUTH_LINE_MAX;
    return 2 + (b & 0x1f); /* the CRLF alone fits */
}

static void model_run(const char *data, size_t size, size_t cap)
{
    model.n = 0;
    size_t start = 0;
    for (size_t i = 0; i + 1 < size && model.n < RESULTS_MAX; i++) {
        if (data[i] != '\r' || data[i + 1] != '\n')
            continue;
        size_t len = i - start;
        int error = (memchr(data + start, '\r', len) || memchr(data + start, '\n', len) ? 1 : 0) |
                    (len + 2 > cap ? 2 : 0);
        model.res[model.n++] = (struct result){error ? NULL : data + start, len, error};
        start = i + 2;
        i++;
    }
}

/* Reads everything the caller holds; returns 0 when the reader broke a rule. */
static int drain(struct linereader *lr, struct buf *held, size_t cap)
{
    while (held->len > 0) { /* the session never calls with nothing (a drained buf is NULL) */
        const char *line;
        size_t len, consumed;
        enum line_result r = linereader_next(lr, held->data, held->len, &line, &len, &consumed);
        if (consumed > held->len)
            return 0;
        if (r == LINE_NEED_MORE) {
            buf_consume(held, consumed);
            /* Bounded memory: a partial line under the cap, or the CR of a dropped one. */
            return held->len < cap || held->len <= 1;
        }
        if (got.n == RESULTS_MAX)
            return 1;
        if (r == LINE_OK) {
            if (line < held->data || line + len + 2 > held->data + consumed || len + 2 > cap ||
                memchr(line, '\r', len) || memchr(line, '\n', len))
                return 0;
            got.res[got.n++] = (struct result){NULL, len, 0};
            buf_append(&got.lines, line, len);
        } else {
            got.res[got.n++] = (struct result){NULL, 0, r == LINE_BAD_EOL ? 1 : 2};
        }
        buf_consume(held, consumed);
    }
    return 1;
}

/* Feeds the stream in chunks (step 0: sizes from the seed) and checks the results. */
static void check_chunked(const char *data, size_t size, size_t cap, size_t step, uint32_t seed)
{
    struct linereader lr;
    struct buf held = BUF_INIT;
    linereader_init(&lr, cap);
    got.n = 0;
    buf_reset(&got.lines);
    for (size_t off = 0; off < size;) {
        size_t n = step;
        if (step == 0) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 97;
        }
        if (n > size - off)
            n = size - off;
        buf_append(&held, data + off, n);
        off += n;
        if (!drain(&lr, &held, cap))
            abort();
    }
    buf_free(&held);

    if (got.n != model.n)
        abort();
    size_t pos = 0;
    for (size_t i = 0; i < model.n; i++) {
        const struct result *w = &model.res[i], *g = &got.res[i];
        if (w->error == 0) {
            if (g->error != 0 || g->len != w->len ||
                (w->len > 0 && memcmp(got.lines.data + pos, w->line, w->len) != 0))
                abort();
            pos += g->len;
        } else if (g->error == 0 || (w->error != 3 && g->error != w->error)) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cap = cap_of(data[0]);
    uint32_t seed = data[1];
    const char *stream = (const char *)data + 2;
    size -= 2;
    model_run(stream, size, cap);
    check_chunked(stream, size, cap, size ? size : 1, 0);
    if (size <= 4096) /* quadratic: each byte rescans the line so far */
        check_chunked(stream, size, cap, 1, 0);
    check_chunked(stream, size, cap, 0, seed);
    buf_free(&got.lines);
    return 0;
}
