/*
 * Fuzzes the trace fields added to what a relaying client sends (trace_header.h), with the piece
 * size taken from the first byte: fed whole and in pieces the output is the same, it carries
 * exactly one X-Sluice-Trace that verifies, and everything from the first empty line on passes
 * unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "mta/feedback/trace.h"
#include "mta/feedback/trace_header.h"

static struct config_trace_key key = {.id = "k1", .secret = "fuzzing secret, 16+"};

static void filter(const struct config *cfg, const struct fuzz_split *s, size_t step,
                   struct buf *out)
{
    struct trace_header *th = trace_header_new(cfg, "0QJ5K8M2X4Y6Z000", "alice", "bob@x.test", 1);
    for (size_t off = 0; off < s->len; off += fuzz_piece(s->len, off, step))
        trace_header_feed(th, s->in + off, fuzz_piece(s->len, off, step), out);
    trace_header_finish(th, out);
    trace_header_free(th);
}

/* The end of the first empty line of m[0..len) (LF or CRLF), or len. */
static size_t body_start(const char *m, size_t len)
{
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(m + at, '\n', len - at);
        if (nl == NULL)
            return len;
        size_t n = (size_t)(nl - (m + at));
        if (n == 0 || (n == 1 && m[at] == '\r'))
            return at + n + 1;
        at += n + 1;
    }
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_split s;
    if (!fuzz_split(data, size, 64, &s))
        return 0;
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.feedback.trace_keys = &key;
    cfg.feedback.ntrace_keys = 1;
    cfg.feedback.sender_id = "esp";
    cfg.tenancy.tenant_header = "X-Sluice-Tenant";
    cfg.tenancy.campaign_header = "X-Sluice-Campaign";
    struct buf whole = BUF_INIT, pieces = BUF_INIT;
    filter(&cfg, &s, s.whole, &whole);
    filter(&cfg, &s, s.step, &pieces);
    if (whole.len != pieces.len || memcmp(whole.data, pieces.data, whole.len) != 0)
        abort();
    size_t in_body = body_start(s.in, s.len), out_body = body_start(whole.data, whole.len);
    if (in_body < s.len && (s.len - in_body != whole.len - out_body ||
                            memcmp(s.in + in_body, whole.data + out_body, s.len - in_body) != 0))
        abort(); /* the body changed */
    size_t traces = 0;
    const char *last = NULL;
    for (size_t at = 0; at < out_body;) {
        const char *nl = memchr(whole.data + at, '\n', out_body - at);
        size_t n = nl != NULL ? (size_t)(nl - (whole.data + at)) + 1 : out_body - at;
        if (n >= 15 && strncasecmp(whole.data + at, "X-Sluice-Trace:", 15) == 0) {
            traces++;
            last = whole.data + at;
        }
        at += n;
    }
    if (traces != 1)
        abort();
    if (last != NULL) {
        struct trace_fields f;
        size_t vlen = strcspn(last + 16, "\r\n");
        if (strncmp(last, "X-Sluice-Trace: ", 16) == 0 &&
            trace_verify(&key, 1, last + 16, vlen, &f) != TRACE_VALID)
            abort();
    }
    buf_free(&whole);
    buf_free(&pieces);
    return 0;
}
