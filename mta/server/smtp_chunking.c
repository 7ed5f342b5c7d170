/*
 * Inbound SMTP: CHUNKING (RFC 3030). BDAT states the length of the chunk that follows it, so a
 * message sent this way has no end-of-data marker to smuggle a second one past us: the session
 * reads exactly that many octets, whatever they hold. The chunks go to the transaction's body
 * sinks as DATA's message does (smtp_server_tx.c), the LAST one ends the message and its 250
 * follows the spool's commit. A refused BDAT still has its chunk read and dropped before the
 * refusal is sent, so the client's next command is found where it starts; a BDAT whose length
 * cannot be read leaves nowhere to find it, so the session ends.
 */
#include "mta/server/smtp_session.h"

#include <stdint.h>

/* The refusal once the chunk's octets are read, or at once for an empty chunk. */
static void discard_end(struct smtp_session *s)
{
    smtp_reply(s, s->discard.code, s->discard.enhanced, "%s", s->discard.text);
    if (s->discard.peer_error)
        smtp_peer_error(s);
}

/* Refuses this BDAT: its `size` octets are dropped first. */
static void bdat_refuse(struct smtp_session *s, uint64_t size, int code, const char *enhanced,
                        const char *text, int peer_error)
{
    s->discard.code = code;
    s->discard.enhanced = enhanced;
    s->discard.text = text;
    s->discard.peer_error = peer_error != 0;
    s->discard.left = size;
    if (size == 0)
        discard_end(s);
    else
        smtp_arm_timer(s); /* the chunk must come within limits.command_timeout */
}

/* The transaction fails on this BDAT (RFC 3030 §2: no more chunks are to follow; any already
 * pipelined find no transaction and are refused in turn). */
static void bdat_fail(struct smtp_session *s, uint64_t size, int code, const char *enhanced,
                      const char *text)
{
    smtp_log_rejected(s, "data", code, text, NULL, NULL);
    smtp_tx_free(s); /* rolls back what the earlier chunks stored */
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
    bdat_refuse(s, size, code, enhanced, text, 0);
}

/* The chunk is read: the LAST ends the message, any other is acknowledged with its size. */
static void chunk_end(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (tx->chunk_last) {
        smtp_tx_body_end(s);
        return;
    }
    smtp_set_state(s, SMTP_PHASE_BDAT, SMTP_WAIT_NONE);
    smtp_reply(s, 250, "2.0.0", "Ok: %llu octets received", (unsigned long long)tx->chunk_size);
}

void smtp_cmd_bdat(struct smtp_session *s, struct smtp_slice arg)
{
    uint64_t size;
    int last;
    if (smtp_cmd_parse_bdat(arg, &size, &last) < 0) {
        if (s->phase == SMTP_PHASE_CONNECTED) { /* no transaction that text could slip into */
            smtp_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
            smtp_peer_error(s);
            return;
        }
        const char *text = "Syntax: BDAT chunk-size [LAST]; the chunk cannot be told apart";
        smtp_reply(s, 501, "5.5.4", "%s", text);
        smtp_log_rejected(s, "command", 501, text, "bdat_syntax", NULL);
        smtp_close_after_reply(s);
        return;
    }
    struct smtp_tx *tx = s->tx;
    if (s->phase == SMTP_PHASE_CONNECTED) {
        bdat_refuse(s, size, 503, "5.5.1", "Error: send HELO/EHLO first", 1);
    } else if (tx == NULL) {
        bdat_refuse(s, size, 503, "5.5.1", "Error: need MAIL command", 1);
    } else if (tx->nrcpts + tx->nrcpts_dropped == 0 && tx->nrcpts_rejected > 0) {
        /* RFC 2920 §3.1, as for DATA */
        bdat_refuse(s, size, 554, "5.5.1", "Error: no valid recipients", 1);
    } else if (tx->nrcpts + tx->nrcpts_dropped == 0) {
        bdat_refuse(s, size, 503, "5.5.1", "Error: need RCPT command", 1);
    } else if (size > s->cfg->limits.max_message_size - tx->body_size) {
        bdat_fail(s, size, 552, "5.3.4", "Message size exceeds fixed limit");
    } else if (s->phase == SMTP_PHASE_RCPT && smtp_tx_body_start(s) < 0) {
        bdat_fail(s, size, 451, "4.3.0", "Error: queue file write error");
    } else {
        tx->chunk_size = tx->chunk_left = size;
        tx->chunk_last = last != 0;
        smtp_set_state(s, SMTP_PHASE_CHUNK, SMTP_WAIT_NONE);
        if (size == 0)
            chunk_end(s);
        else
            smtp_arm_timer(s);
    }
}

/* RFC 5321 §4.5.3.1.6 holds for a message sent in chunks too: a line of more than 1000 octets
 * with its CRLF is flagged, and refused at the end as after DATA. A BINARYMIME message has no
 * lines to count (RFC 3030 §3). */
static void chunk_lines_check(struct smtp_tx *tx, const char *data, size_t len)
{
    struct smtp_data *d = &tx->decoder;
    if (tx->env_flags & SPOOL_ENV_BINARYMIME)
        return;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            d->line_len = 0;
        } else if (++d->line_len > SMTP_TEXT_LINE_MAX - 1) { /* the CR of CRLF counted */
            d->flags |= SMTP_DATA_LONG_LINE;
        }
    }
}

size_t smtp_tx_chunk_feed(struct smtp_session *s, const char *data, size_t len)
{
    struct smtp_tx *tx = s->tx;
    size_t n = len < tx->chunk_left ? len : (size_t)tx->chunk_left;
    chunk_lines_check(tx, data, n);
    tx->chunk_left -= n;
    smtp_tx_body_write(s, data, n);
    if (tx->chunk_left == 0)
        chunk_end(s);
    return n;
}

size_t smtp_discard_feed(struct smtp_session *s, const char *data, size_t len)
{
    (void)data;
    size_t n = len < s->discard.left ? len : (size_t)s->discard.left;
    s->discard.left -= n;
    if (s->discard.left == 0)
        discard_end(s);
    return n;
}
