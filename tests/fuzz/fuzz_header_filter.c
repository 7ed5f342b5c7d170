/*
 * Fuzzes the Authentication-Results header filter: no crash, leak or unbounded holding whatever
 * the bytes; the output is the same fed whole or in pieces of the size given by the first byte;
 * it never adds bytes; and once the header section is over the rest passes unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/header_filter.h"
#include "tests/fuzz/fuzz.h"

static void run(const char *in, size_t len, size_t step, struct buf *out, unsigned *removed)
{
    struct header_filter *f = header_filter_new("mx.example.test");
    for (size_t off = 0; off < len; off += step) {
        size_t n = fuzz_piece(len, off, step);
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
    struct fuzz_split s;
    if (!fuzz_split(data, size, 31, &s))
        return 0;
    struct buf whole = BUF_INIT, pieces = BUF_INIT;
    unsigned removed_whole, removed_pieces;
    run(s.in, s.len, s.whole, &whole, &removed_whole);
    run(s.in, s.len, s.step, &pieces, &removed_pieces);
    if (whole.len != pieces.len || (whole.len > 0 && memcmp(whole.data, pieces.data, whole.len)) ||
        removed_whole != removed_pieces || whole.len > s.len ||
        (removed_whole > 0) == (whole.len == s.len))
        abort();
    buf_free(&whole);
    buf_free(&pieces);
    return 0;
}
