/*
 * Fuzzes the Authentication-Results header filter: no crash, leak or unbounded holding whatever
 * the bytes; the output is the same fed whole or in pieces of the size given by the first byte;
 * it never adds bytes; and once the header section is over the rest passes unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/header_filter.h"

static void run(const char *in, size_t len, size_t step, struct buf *out, unsigned *removed)
{
    struct header_filter *f = header_filter_new("mx.example.test");
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        size_t before = out->len;
        int passing = header_filter_passing(f);
        header_filter_feed(f, in + off, n, out);
        if (passing && (out->len - before != n || memcmp(out->data + before, in + off, n) != 0))
            abort();
    }
    header_filter_finish(f, out);
    *removed = header_filter_removed(f);
    header_filter_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = data[0] % 31 + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    struct buf whole = BUF_INIT, pieces = BUF_INIT;
    unsigned removed_whole, removed_pieces;
    run(in, len, len ? len : 1, &whole, &removed_whole);
    run(in, len, step, &pieces, &removed_pieces);
    if (whole.len != pieces.len || (whole.len > 0 && memcmp(whole.data, pieces.data, whole.len)) ||
        removed_whole != removed_pieces || whole.len > len ||
        (removed_whole > 0) == (whole.len == len))
        abort();
    buf_free(&whole);
    buf_free(&pieces);
    return 0;
}
