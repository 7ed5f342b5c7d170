/*
 * Fuzzes the DSN parameter parsers (RFC 3461) on any bytes: NOTIFY gives bits that format back to
 * a list that parses the same; RET gives FULL or HDRS; xtext, ENVID and ORCPT decode to printable
 * ASCII only (never CR, LF or NUL: the values end up in DSN header fields and on the next hop's
 * command line), leave the buffer as it was when they refuse, and what decodes encodes back to
 * xtext that decodes to the same text.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_dsn.h"

static void check_printable(const struct buf *b, size_t from)
{
    for (size_t i = from; i < b->len; i++)
        if (b->data[i] < ' ' || b->data[i] > '~')
            abort();
}

static void check_notify(struct smtp_slice in)
{
    int bits = smtp_dsn_notify_parse(in);
    if (bits == -EINVAL)
        return;
    if (bits <= 0 || bits > 15)
        abort();
    struct buf text = BUF_INIT;
    smtp_dsn_notify_format((unsigned)bits, &text);
    if (smtp_dsn_notify_parse((struct smtp_slice){text.data, text.len}) != bits)
        abort();
    buf_free(&text);
}

static void check_decoded(int rc, const struct buf *out, size_t before)
{
    if (rc != 0) {
        if (rc != -EINVAL || out->len != before)
            abort();
        return;
    }
    check_printable(out, before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_slice in = {(const char *)data, size};
    check_notify(in);
    int ret = smtp_dsn_ret_parse(in);
    if (ret != -EINVAL && ret != SMTP_DSN_RET_FULL && ret != SMTP_DSN_RET_HDRS)
        abort();

    struct buf out = BUF_INIT;
    buf_append_str(&out, "x");
    int rc = smtp_xtext_decode(in, &out);
    check_decoded(rc, &out, 1);
    if (rc == 0) {
        struct buf enc = BUF_INIT, dec = BUF_INIT;
        smtp_xtext_encode(out.data + 1, out.len - 1, &enc);
        if (smtp_xtext_decode((struct smtp_slice){enc.data, enc.len}, &dec) != 0 ||
            dec.len != out.len - 1 || (dec.len && memcmp(dec.data, out.data + 1, dec.len) != 0))
            abort();
        buf_free(&enc);
        buf_free(&dec);
    }
    size_t before = out.len;
    check_decoded(smtp_dsn_envid_parse(in, &out), &out, before);
    before = out.len;
    rc = smtp_dsn_orcpt_parse(in, &out);
    check_decoded(rc, &out, before);
    if (rc == 0 && memchr(out.data + before, ';', out.len - before) == NULL)
        abort();
    buf_free(&out);
    return 0;
}
