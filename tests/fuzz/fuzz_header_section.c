/*
 * Fuzzes the header section collector and the field walk: whatever the bytes and however they
 * are split, the section ends at the same place; the fields end before the empty line and the
 * body starts right after it; walking the fields visits every byte once, in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/header_section.h"
#include "tests/fuzz/fuzz.h"

/* Feeds in[0..len) in pieces of `step`; returns the state and leaves the section in hs. */
static enum header_section_state feed(struct header_section *hs, const char *in, size_t len,
                                      size_t step, size_t *fed)
{
    enum header_section_state st = HEADER_SECTION_MORE;
    *fed = 0;
    while (*fed < len && st == HEADER_SECTION_MORE) {
        size_t n = fuzz_piece(len, *fed, step);
        st = header_section_feed(hs, in + *fed, n);
        if (st != HEADER_SECTION_TOO_BIG)
            *fed += n;
    }
    if (st == HEADER_SECTION_MORE)
        header_section_end(hs);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_split s;
    if (!fuzz_split(data, size, 31, &s))
        return 0;
    const char *in = s.in;
    struct header_section whole = HEADER_SECTION_INIT, pieces = HEADER_SECTION_INIT;
    size_t fed_whole, fed_pieces;
    enum header_section_state a = feed(&whole, in, s.len, s.whole, &fed_whole);
    enum header_section_state b = feed(&pieces, in, s.len, s.step, &fed_pieces);
    if (a != b || whole.fields != pieces.fields)
        abort();
    if (a == HEADER_SECTION_COMPLETE) {
        /* The empty line sits between the fields and the body, and both saw the same bytes. */
        size_t blank = whole.body - whole.fields;
        if ((blank != 1 && blank != 2) || whole.body != pieces.body ||
            memcmp(whole.data.data, in, whole.data.len) != 0 ||
            memcmp(pieces.data.data, in, pieces.data.len) != 0 || in[whole.body - 1] != '\n')
            abort();
    }
    if (a != HEADER_SECTION_TOO_BIG) {
        size_t at = 0, end = whole.fields, walks = 0;
        while (at < end) {
            size_t next = header_field_end(whole.data.data, at, end);
            if (next <= at || next > end || ++walks > end)
                abort();
            at = next;
        }
    }
    header_section_free(&whole);
    header_section_free(&pieces);
    return 0;
}
