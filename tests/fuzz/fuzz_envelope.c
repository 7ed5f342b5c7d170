/*
 * Fuzzes the spool file decoder: whatever the bytes and however they are split, it reaches the same
 * verdict with the same envelope and body; and a file it accepts encodes again into one that it
 * accepts with the same content (envelope with its DSN parameters, body and prefix).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool/envelope.h"
#include "tests/fuzz/fuzz.h"

/* The decoded envelope as one string, for comparisons. */
static void flatten(const struct spool_envelope *env, struct buf *out)
{
    const char *opt[] = {env->client_addr, env->helo, env->auth_user, env->listener};
    buf_printf(out, "%s|%zu|", env->sender, env->nrcpts);
    for (size_t i = 0; i < env->nrcpts; i++)
        buf_printf(out, "%s|", env->rcpts[i]);
    for (size_t i = 0; i < 4; i++)
        buf_printf(out, "%d%s|", opt[i] != NULL, opt[i] ? opt[i] : "");
    buf_printf(out, "%lld|%u", (long long)env->received_at, env->flags);
    /* DSN parameters: what is absent is not written, so NULL and all-absent compare equal. */
    const struct envelope_dsn *dsn = env->dsn;
    if (dsn == NULL)
        return;
    if (dsn->ret != 0 || dsn->envid != NULL)
        buf_printf(out, "|D%u:%s", dsn->ret, dsn->envid ? dsn->envid : "");
    for (size_t i = 0; i < env->nrcpts; i++)
        if (dsn->notify[i] != 0 || dsn->orcpt[i] != NULL)
            buf_printf(out, "|N%zu:%u:%s", i, dsn->notify[i], dsn->orcpt[i] ? dsn->orcpt[i] : "");
}

static int buf_same(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int decode(const uint8_t *data, size_t size, size_t step, struct envelope_decoder *d,
                  struct buf *body)
{
    struct buf err = BUF_INIT;
    int rc = 0;
    envelope_decoder_init(d);
    for (size_t off = 0; off < size && rc >= 0; off += step)
        rc = envelope_decoder_feed(d, data + off, fuzz_piece(size, off, step), body, &err);
    if (rc < 0 && err.len == 0)
        abort(); /* a rejection always says why */
    buf_free(&err);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope_decoder whole, pieces;
    struct buf body_whole = BUF_INIT, body_pieces = BUF_INIT;
    int rc = decode(data, size, size ? size : 1, &whole, &body_whole);
    int rc_pieces = decode(data, size, size ? data[0] % 23 + 1 : 1, &pieces, &body_pieces);
    if (rc != rc_pieces)
        abort();
    if (rc == 1) {
        struct buf a = BUF_INIT, b = BUF_INIT, again = BUF_INIT, body_again = BUF_INIT;
        flatten(&whole.env, &a);
        flatten(&pieces.env, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0 ||
            body_whole.len != whole.body_size || body_whole.len != body_pieces.len ||
            (body_whole.len && memcmp(body_whole.data, body_pieces.data, body_whole.len) != 0) ||
            !buf_same(&whole.prefix, &pieces.prefix))
            abort();

        /* What was accepted encodes again, in body records as large as allowed, to the same
         * content. */
        if (envelope_encode(&whole.env, &again) != 0)
            abort();
        for (size_t off = 0; off < body_whole.len; off += ENVELOPE_BODY_REC_MAX) {
            size_t n = body_whole.len - off;
            n = n < ENVELOPE_BODY_REC_MAX ? n : ENVELOPE_BODY_REC_MAX;
            envelope_rec_begin(&again, ENVELOPE_REC_BODY, (uint32_t)n);
            buf_append(&again, body_whole.data + off, n);
        }
        envelope_prefix_append(&again, whole.prefix.data, whole.prefix.len);
        envelope_end_append(&again, body_whole.len, envelope_crc32(0, again.data, again.len));
        struct envelope_decoder d2;
        if (decode((const uint8_t *)again.data, again.len, again.len, &d2, &body_again) != 1)
            abort();
        buf_reset(&b);
        flatten(&d2.env, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0 ||
            body_again.len != body_whole.len ||
            (body_whole.len && memcmp(body_again.data, body_whole.data, body_whole.len) != 0) ||
            !buf_same(&d2.prefix, &whole.prefix))
            abort();
        envelope_decoder_free(&d2);
        buf_free(&a);
        buf_free(&b);
        buf_free(&again);
        buf_free(&body_again);
    }
    envelope_decoder_free(&whole);
    envelope_decoder_free(&pieces);
    buf_free(&body_whole);
    buf_free(&body_pieces);
    return 0;
}
