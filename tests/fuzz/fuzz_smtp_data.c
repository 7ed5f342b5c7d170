/*
 * Fuzzes the DATA decoder: whatever the bytes and however they are split, the decoder ends at the
 * same place with the same output, and a clean message survives dot-stuffing and decoding again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    struct smtp_data whole, pieces;
    struct buf out_whole = BUF_INIT, out_pieces = BUF_INIT;
    int done_whole = 0, done_pieces = 0;
    smtp_data_init(&whole);
    smtp_data_init(&pieces);

    size_t used_whole = smtp_data_feed(&whole, in, len, &out_whole, &done_whole);
    size_t used_pieces = 0;
    while (used_pieces < len && !done_pieces) {
        size_t n = len - used_pieces < step ? len - used_pieces : step;
        used_pieces += smtp_data_feed(&pieces, in + used_pieces, n, &out_pieces, &done_pieces);
    }

    if (done_whole != done_pieces || used_whole != used_pieces || whole.flags != pieces.flags ||
        out_whole.len != out_pieces.len ||
        (out_whole.len && memcmp(out_whole.data, out_pieces.data, out_whole.len) != 0))
        abort();
    if (used_whole > len || out_whole.len > len)
        abort();
    /* A complete message with clean line endings survives being dot-stuffed and decoded again, as
     * it will be when it is relayed. */
    if (done_whole && whole.flags == 0) {
        struct buf stuffed = BUF_INIT, again = BUF_INIT;
        int done_again = 0;
        for (size_t i = 0; i < out_whole.len; i++) {
            if (out_whole.data[i] == '.' && (i == 0 || out_whole.data[i - 1] == '\n'))
                buf_append(&stuffed, ".", 1);
            buf_append(&stuffed, out_whole.data + i, 1);
        }
        buf_append(&stuffed, ".\r\n", 3);
        smtp_data_init(&whole);
        size_t used_again = smtp_data_feed(&whole, stuffed.data, stuffed.len, &again, &done_again);
        if (!done_again || used_again != stuffed.len || again.len != out_whole.len ||
            (again.len && memcmp(again.data, out_whole.data, again.len) != 0))
            abort();
        buf_free(&stuffed);
        buf_free(&again);
    }
    buf_free(&out_whole);
    buf_free(&out_pieces);
    return 0;
}
