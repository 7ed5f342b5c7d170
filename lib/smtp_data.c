#include "lib/smtp_data.h"

/*
 * States, by what the bytes just before the next one were:
 *   LINE_START  CRLF (or the start of data)
 *   DOT         CRLF "."           a "." here is either stuffing or the start of the end marker
 *   DOT_CR      CRLF "." CR        LF now ends the data
 *   TEXT        anything else
 *   CR          a CR not yet known to be part of CRLF (held back from the output)
 */
enum { LINE_START, DOT, DOT_CR, TEXT, CR };

void smtp_data_init(struct smtp_data *d)
{
    d->state = LINE_START;
    d->line_len = 0;
    d->flags = 0;
}

static void count_octet(struct smtp_data *d)
{
    if (++d->line_len > SMTP_TEXT_LINE_MAX - 2)
        d->flags |= SMTP_DATA_LONG_LINE;
}

/* A bare CR or LF never ends the data, but it is stored as the CRLF every later reader (DKIM
 * signer, MIME parser, SMTP client) takes it for, so what is signed is what is sent. The state
 * stays TEXT: a "." after it is content, not stuffing. */
static void bare_line_end(struct smtp_data *d, unsigned flag, struct buf *out)
{
    d->flags |= flag;
    buf_append(out, "\r\n", 2);
    d->line_len = 0;
    d->state = TEXT;
}

size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out, int *done)
{
    size_t i = 0;
    *done = 0;
    while (i < len) {
        char c = in[i++];
        switch (d->state) {
        case LINE_START:
            if (c == '.') {
                d->state = DOT;
                count_octet(d);
                continue;
            }
            d->state = TEXT;
            break; /* c is handled as text below */
        case DOT:
            if (c == '\r') {
                d->state = DOT_CR;
                continue;
            }
            d->state = TEXT; /* the stuffed dot is dropped; c is text */
            break;
        case DOT_CR:
            if (c == '\n') {
                *done = 1;
                d->state = LINE_START;
                return i;
            }
            /* ".CR" followed by something else: the dot was stuffing, the CR is a bare CR. */
            bare_line_end(d, SMTP_DATA_BARE_CR, out);
            break;
        case CR:
            if (c == '\n') {
                buf_append(out, "\r\n", 2);
                d->line_len = 0;
                d->state = LINE_START;
                continue;
            }
            bare_line_end(d, SMTP_DATA_BARE_CR, out);
            break;
        case TEXT:
            break;
        }

        /* TEXT: copy a run of ordinary octets in one go. */
        if (c == '\r') {
            d->state = CR;
            continue;
        }
        if (c == '\n') {
            bare_line_end(d, SMTP_DATA_BARE_LF, out);
            continue;
        }
        size_t start = i - 1;
        while (i < len && in[i] != '\r' && in[i] != '\n')
            i++;
        buf_append(out, in + start, i - start);
        d->line_len += i - start;
        if (d->line_len > SMTP_TEXT_LINE_MAX - 2)
            d->flags |= SMTP_DATA_LONG_LINE;
    }
    return i;
}

/*
 * Encoder states, by what was last written:
 *   ENC_LINE_START  CRLF (or nothing yet)
 *   ENC_AFTER_CR    the CRLF that a CR became; an LF right after it belongs to that CRLF
 *   ENC_TEXT        anything else
 */
enum { ENC_LINE_START, ENC_AFTER_CR, ENC_TEXT };

void smtp_data_enc_init(struct smtp_data_enc *e)
{
    *e = (struct smtp_data_enc){.state = ENC_LINE_START};
}

void smtp_data_enc_init_chunked(struct smtp_data_enc *e)
{
    *e = (struct smtp_data_enc){.state = ENC_LINE_START, .chunked = 1};
}

void smtp_data_enc_init_binary(struct smtp_data_enc *e)
{
    *e = (struct smtp_data_enc){.state = ENC_LINE_START, .chunked = 1, .binary = 1};
}

size_t smtp_data_wire_size(const char *msg, size_t len)
{
    size_t size = len;
    for (size_t i = 0; i < len; i++) {
        int bare_cr = msg[i] == '\r' && (i + 1 == len || msg[i + 1] != '\n');
        int bare_lf = msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r');
        size += bare_cr || bare_lf; /* each becomes CRLF */
    }
    if (len > 0 && msg[len - 1] != '\r' && msg[len - 1] != '\n')
        size += 2; /* the CRLF the encoder ends the last line with */
    return size;
}

void smtp_data_enc_feed(struct smtp_data_enc *e, const char *in, size_t len, struct buf *out)
{
    if (e->binary) {
        buf_append(out, in, len);
        return;
    }
    size_t i = 0;
    while (i < len) {
        char c = in[i++];
        if (c == '\n' && e->state == ENC_AFTER_CR) {
            e->state = ENC_LINE_START;
            continue;
        }
        if (c == '\r' || c == '\n') {
            buf_append(out, "\r\n", 2);
            e->state = c == '\r' ? ENC_AFTER_CR : ENC_LINE_START;
            continue;
        }
        if (c == '.' && e->state != ENC_TEXT && !e->chunked)
            buf_append(out, ".", 1);
        e->state = ENC_TEXT;
        /* Copy the run of ordinary octets up to the next line break in one go. */
        size_t start = i - 1;
        while (i < len && in[i] != '\r' && in[i] != '\n')
            i++;
        buf_append(out, in + start, i - start);
    }
}

void smtp_data_enc_finish(struct smtp_data_enc *e, struct buf *out)
{
    if (e->binary)
        return;
    if (e->state == ENC_TEXT)
        buf_append(out, "\r\n", 2);
    if (!e->chunked)
        buf_append(out, ".\r\n", 3);
    e->state = ENC_LINE_START;
}
