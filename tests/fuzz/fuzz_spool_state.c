/*
 * Fuzzes the recipient state file decoder: whatever the bytes and however they are split, it
 * reaches the same states and the same valid length; the valid records alone decode to the same
 * states without a torn tail; replies and remote hosts stay capped and printable; and the states it
 * reached encode into records that decode back to them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool/spool_state.h"

#define FUZZ_RCPTS 4 /* records for higher indexes are intact but skipped */

static void decode(const uint8_t *data, size_t size, size_t step, struct spool_state *st)
{
    spool_state_init(st, FUZZ_RCPTS);
    for (size_t off = 0; off < size; off += step)
        spool_state_feed(st, data + off, size - off < step ? size - off : step);
}

static void check_same(const struct spool_state *a, const struct spool_state *b)
{
    for (size_t i = 0; i < FUZZ_RCPTS; i++) {
        const struct spool_rcpt_state *x = &a->rcpts[i], *y = &b->rcpts[i];
        if (x->status != y->status || x->attempts != y->attempts ||
            x->next_attempt != y->next_attempt || strcmp(x->reply, y->reply) != 0 ||
            strcmp(x->remote_mta, y->remote_mta) != 0 || x->delay_warned != y->delay_warned ||
            x->notice != y->notice || strcmp(x->notice_dsn, y->notice_dsn) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spool_state whole, pieces, valid, again;
    decode(data, size, size ? size : 1, &whole);
    decode(data, size, size ? data[0] % 23 + 1 : 1, &pieces);
    if (whole.valid_len != pieces.valid_len || whole.valid_len > size || whole.fed_len != size)
        abort();
    check_same(&whole, &pieces);

    decode(data, (size_t)whole.valid_len, 4096, &valid);
    if (valid.valid_len != whole.valid_len || valid.broken || valid.got != 0)
        abort();
    check_same(&whole, &valid);

    struct spool_rcpt_update updates[FUZZ_RCPTS];
    for (size_t i = 0; i < FUZZ_RCPTS; i++) {
        const struct spool_rcpt_state *r = &whole.rcpts[i];
        size_t len = strlen(r->reply);
        if (len > SPOOL_REPLY_MAX || r->status > SPOOL_RCPT_BOUNCED)
            abort();
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)r->reply[k] < 0x20 || r->reply[k] == 0x7f)
                abort();
        size_t mta_len = strlen(r->remote_mta);
        if (mta_len > SPOOL_REMOTE_MTA_MAX)
            abort();
        for (size_t k = 0; k < mta_len; k++)
            if ((unsigned char)r->remote_mta[k] < 0x20 || r->remote_mta[k] == 0x7f)
                abort();
        updates[i] = (struct spool_rcpt_update){
            .rcpt = i,
            .status = r->status,
            .attempts = r->attempts,
            .next_attempt = r->next_attempt,
            .reply = r->reply,
            .remote_mta = r->remote_mta,
            .delay_warned = r->delay_warned,
            .notice_write = r->notice != SPOOL_NOTICE_NONE || r->notice_dsn[0] != '\0',
            .notice = r->notice,
            .notice_dsn = r->notice_dsn,
        };
    }
    struct buf enc = BUF_INIT;
    spool_state_encode(updates, FUZZ_RCPTS, &enc);
    decode((const uint8_t *)enc.data, enc.len, enc.len, &again);
    if (again.valid_len != enc.len)
        abort();
    check_same(&whole, &again);

    buf_free(&enc);
    spool_state_free(&whole);
    spool_state_free(&pieces);
    spool_state_free(&valid);
    spool_state_free(&again);
    return 0;
}
