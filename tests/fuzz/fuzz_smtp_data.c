/*
 * Fuzzes the DATA decoder: whatever the bytes and however they are split, the decoder ends at the
 * same place with the same output, that output has no bare CR or LF, and a clean message survives
 * dot-stuffing and decoding again.
 * The encoder, fed the same bytes in pieces, produces wire bytes that decode back to exactly the
 * input with its line ends made CRLF, ending at the very end of the wire bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_data.h"
#include "tests/fuzz/fuzz.h"

/* What the receiver must get back: every bare CR, bare LF or CRLF as CRLF, and a final CRLF. */
static void normalise(const char *in, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            buf_append(out, "\r\n", 2);
            if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
        } else {
            buf_append(out, in + i, 1);
        }
    }
    if (out->len > 0 && out->data[out->len - 1] != '\n')
        buf_append(out, "\r\n", 2);
}

static void check_round_trip(const char *in, size_t len, size_t step)
{
    struct smtp_data_enc enc;
    struct smtp_data dec;
    struct buf wire = BUF_INIT, back = BUF_INIT, want = BUF_INIT;
    int done = 0;
    smtp_data_enc_init(&enc);
    for (size_t off = 0; off < len; off += step)
        smtp_data_enc_feed(&enc, in + off, fuzz_piece(len, off, step), &wire);
    smtp_data_enc_finish(&enc, &wire);
    smtp_data_init(&dec);
    size_t used = smtp_data_feed(&dec, wire.data, wire.len, &back, &done);
    normalise(in, len, &want);
    if (!done || used != wire.len || (dec.flags & (SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF)) ||
        back.len != want.len || (want.len && memcmp(back.data, want.data, want.len) != 0))
        abort();
    buf_free(&wire);
    buf_free(&back);
    buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_split s;
    if (!fuzz_split(data, size, 17, &s))
        return 0;
    const char *in = s.in;
    size_t len = s.len;
    struct smtp_data whole, pieces;
    struct buf out_whole = BUF_INIT, out_pieces = BUF_INIT;
    int done_whole = 0, done_pieces = 0;
    smtp_data_init(&whole);
    smtp_data_init(&pieces);

    size_t used_whole = smtp_data_feed(&whole, in, len, &out_whole, &done_whole);
    size_t used_pieces = 0;
    while (used_pieces < len && !done_pieces)
        used_pieces +=
            smtp_data_feed(&pieces, in + used_pieces, fuzz_piece(len, used_pieces, s.step),
                           &out_pieces, &done_pieces);

    if (done_whole != done_pieces || used_whole != used_pieces || whole.flags != pieces.flags ||
        out_whole.len != out_pieces.len ||
        (out_whole.len && memcmp(out_whole.data, out_pieces.data, out_whole.len) != 0))
        abort();
    if (used_whole > len || out_whole.len > 2 * len)
        abort();
    /* Bare CR and LF are stored as CRLF: the output has no other line end. */
    for (size_t i = 0; i < out_whole.len; i++)
        if ((out_whole.data[i] == '\r' &&
             (i + 1 == out_whole.len || out_whole.data[i + 1] != '\n')) ||
            (out_whole.data[i] == '\n' && (i == 0 || out_whole.data[i - 1] != '\r')))
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
    check_round_trip(in, len, s.step);
    return 0;
}
