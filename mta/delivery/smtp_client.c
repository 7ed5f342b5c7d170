/*
 * The outbound SMTP session (see smtp_client.h). One state machine: client_enter_state() sends what
 * a state sends and arms its timeout, client_on_reply() hands each complete reply to the state's
 * handler. During a transaction two cursors count the envelope commands (MAIL, each RCPT, DATA):
 * `sent` and `replied`; with PIPELINING several are in flight, without it at most one. With BDAT
 * (RFC 3030) the body goes in chunks, one BDAT each, once the RCPT replies are in; two more
 * cursors count the chunks sent and answered.
 */
#include "mta/delivery/smtp_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/smtp_addr.h"
#include "lib/smtp_data.h"
#include "lib/smtp_dsn.h"
#include "lib/smtp_reply.h"
#include "lib/stream.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/dane.h"
#include "mta/delivery/smtp_client_int.h"
#include "spool/spool.h"

/* Stored message bytes encoded per write; the next chunk waits for STREAM_DRAINED. */
#define BODY_CHUNK (64 * 1024)
/* Nothing depends on the reply to QUIT, so it is not worth the full command timeout. */
#define QUIT_TIMEOUT_MS 10000
/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets; we refuse to send anything longer. */
#define PATH_MAX_OCTETS 256

/* The chain, in firing order. */
static void client_on_stream(struct stream *s, enum stream_event ev, int status, const char *data,
                             size_t len);
static void client_on_data(struct smtp_client *c, const char *data, size_t len);
static void client_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void client_on_timeout(uv_timer_t *t);
static void client_on_pace(uv_timer_t *t);
static void client_on_handle_closed(uv_handle_t *h);
static void client_on_stream_closed(struct stream *s);

/* ---- outcomes ---- */

static void outcome_set(struct smtp_client_outcome *o, char **text_slot, int code,
                        const char *enhanced, const char *stage, int remote, const char *text)
{
    o->code = code;
    snprintf(o->enhanced, sizeof o->enhanced, "%s", enhanced);
    o->stage = stage;
    o->remote = remote;
    free(*text_slot);
    *text_slot = xstrdup(text);
    o->text = *text_slot;
}

static void rcpt_decide(struct client_rcpt *r, int code, const char *enhanced, const char *stage,
                        int remote, const char *text)
{
    outcome_set(&r->out, &r->text, code, enhanced, stage, remote, text);
    r->status = RCPT_DECIDED;
}

/* The reply's enhanced code as "c.s.d", or "" when it had none. */
static void reply_enhanced(const struct smtp_reply *r, char out[16])
{
    out[0] = '\0';
    if (r->enhanced.cls != 0)
        snprintf(out, 16, "%u.%u.%u", r->enhanced.cls, r->enhanced.subject, r->enhanced.detail);
}

static void rcpt_decide_reply(struct client_rcpt *rc, const struct smtp_reply *r, const char *stage)
{
    char enhanced[16];
    struct buf text = BUF_INIT;
    reply_enhanced(r, enhanced);
    smtp_reply_text_join(r, "; ", &text);
    rcpt_decide(rc, r->code, enhanced, stage, 1, text.data);
    buf_free(&text);
}

/* ---- transactions ---- */

static void tx_free(struct client_tx *t)
{
    for (size_t i = 0; i < t->nrcpts; i++) {
        free(t->rcpts[i].addr);
        free(t->rcpts[i].text);
        free(t->rcpts[i].orcpt);
    }
    free(t->rcpts);
    free(t->sender);
    free(t->envid);
    free(t);
}

/* Delivers TX_DONE for t (already detached from c), giving `rest` to every undecided recipient. */
static void tx_emit(struct smtp_client *c, struct client_tx *t,
                    const struct smtp_client_outcome *rest)
{
    struct smtp_client_outcome *out = xcalloc(t->nrcpts ? t->nrcpts : 1, sizeof *out);
    for (size_t i = 0; i < t->nrcpts; i++) {
        out[i] = t->rcpts[i].status == RCPT_DECIDED ? t->rcpts[i].out : *rest;
        out[i].dsn_offered = (c->caps.ext & SMTP_EXT_DSN) != 0;
    }
    c->cb(c, SMTP_CLIENT_TX_DONE, out, t->nrcpts, c->arg);
    free(out);
    tx_free(t);
}

/* The transaction is over: back to IDLE, then TX_DONE (whose callback may send the next one). */
static void tx_finish(struct smtp_client *c)
{
    static const struct smtp_client_outcome not_tried = {
        .code = 451,
        .enhanced = "4.3.0",
        .stage = "MAIL FROM",
        .text = "transaction ended before this recipient was tried"};
    struct client_tx *t = c->tx;
    c->tx = NULL;
    c->had_tx = 1;
    client_enter_state(c, CS_IDLE);
    tx_emit(c, t, &not_tried);
}

/* ---- writing ---- */

/* Queues bytes; a failure ends the session (then the caller returns at once). */
static int client_write(struct smtp_client *c, const char *data, size_t len)
{
    int rc = stream_write(&c->stream, data, len);
    if (rc < 0)
        client_end(c, NULL, 451, "4.4.2", 0, 0, "lost connection with %s: %s", c->mx_name,
                   uv_strerror(rc));
    return rc;
}

void client_send_line(struct smtp_client *c, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    client_write(c, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
}

/* Whether the pacer lets the next MAIL or RCPT go now; if not, arms the pace timer for when it
 * may. */
static int client_may_send(struct smtp_client *c, enum smtp_client_pace what)
{
    if (c->pace == NULL)
        return 1;
    /* The loop's cached time is that of the iteration's start: a busy iteration would stamp the
     * event earlier than it goes out and let the next one go too soon by as much. */
    uv_update_time(c->loop);
    uint64_t wait = c->pace(c->pace_arg, what, uv_now(c->loop));
    if (wait == 0)
        return 1;
    if (!uv_is_active((uv_handle_t *)&c->pace_timer))
        uv_timer_start(&c->pace_timer, client_on_pace, wait, 0);
    return 0;
}

/* ---- state table ---- */

static void greeting_enter(struct smtp_client *c);
static void ehlo_enter(struct smtp_client *c);
static void helo_enter(struct smtp_client *c);
static void refused_enter(struct smtp_client *c);
static void envelope_enter(struct smtp_client *c);
static void body_enter(struct smtp_client *c);
static void rset_enter(struct smtp_client *c);
static void quit_enter(struct smtp_client *c);
static void closing_enter(struct smtp_client *c);

static void greeting_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void ehlo_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void helo_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void envelope_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void body_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void rset_on_reply(struct smtp_client *c, const struct smtp_reply *r);
static void quit_on_reply(struct smtp_client *c, const struct smtp_reply *r);

struct state_row {
    const char *name;
    const char *stage; /* for outcomes; CS_ENVELOPE's depends on the reply awaited */
    void (*enter)(struct smtp_client *c);
    void (*on_reply)(struct smtp_client *c, const struct smtp_reply *r); /* NULL: unexpected */
};

static const struct state_row states[] = {
    [CS_CONNECTING] = {"connecting", "connect", NULL, NULL},
    [CS_GREETING] = {"greeting", "greeting", greeting_enter, greeting_on_reply},
    [CS_EHLO] = {"ehlo", "EHLO", ehlo_enter, ehlo_on_reply},
    [CS_HELO] = {"helo", "EHLO", helo_enter, helo_on_reply},
    [CS_STARTTLS] = {"starttls", "STARTTLS", client_starttls_enter, client_starttls_on_reply},
    [CS_TLS_HANDSHAKE] = {"tls-handshake", "STARTTLS", client_handshake_enter, NULL},
    [CS_IDLE] = {"idle", "idle", NULL, NULL},
    [CS_TX_REFUSED] = {"tx-refused", "MAIL FROM", refused_enter, NULL},
    [CS_ENVELOPE] = {"envelope", "MAIL FROM", envelope_enter, envelope_on_reply},
    [CS_BODY] = {"body", "end of data", body_enter, body_on_reply},
    [CS_END_OF_DATA] = {"end-of-data", "end of data", NULL, body_on_reply},
    [CS_RSET] = {"rset", "RSET", rset_enter, rset_on_reply},
    [CS_QUIT] = {"quit", "QUIT", quit_enter, quit_on_reply},
    [CS_CLOSING] = {"closing", "QUIT", closing_enter, NULL},
};

static const char *client_stage(const struct smtp_client *c)
{
    if (c->state == CS_ENVELOPE) {
        size_t i = c->tx->replied;
        return i == 0 ? "MAIL FROM" : i <= c->tx->nrcpts ? "RCPT TO" : "DATA";
    }
    return states[c->state].stage;
}

/* How long the current state waits for the peer; 0: not waiting. */
static uint64_t client_timeout_ms(const struct smtp_client *c)
{
    const struct smtp_client_timeouts *t = &c->timeouts;
    switch (c->state) {
    case CS_CONNECTING:
        return t->connect;
    case CS_GREETING:
        return t->greeting;
    case CS_EHLO:
    case CS_HELO:
    case CS_STARTTLS:
    case CS_TLS_HANDSHAKE:
    case CS_RSET:
        return t->command;
    case CS_ENVELOPE:
        if (c->tx->replied == c->tx->sent)
            return 0; /* waiting for rate tokens, not for the peer */
        return c->tx->replied == c->tx->nrcpts + 1 ? t->data_init : t->command;
    case CS_BODY:
        return t->data_block;
    case CS_END_OF_DATA:
        return t->data_term;
    case CS_QUIT:
        return t->command < QUIT_TIMEOUT_MS ? t->command : QUIT_TIMEOUT_MS;
    case CS_IDLE:
        return c->had_tx ? t->idle : 0;
    default:
        return 0;
    }
}

/* (Re)starts the timeout for what the current state waits for, or stops it. */
static void client_arm_timer(struct smtp_client *c)
{
    uint64_t ms = client_timeout_ms(c);
    if (ms == 0)
        uv_timer_stop(&c->reply_timer);
    else
        uv_timer_start(&c->reply_timer, client_on_timeout, ms, 0);
}

void client_enter_state(struct smtp_client *c, enum client_state st)
{
    log_msg(LOG_DEBUG, "smtp_client.state", "session %llu: %s -> %s",
            (unsigned long long)c->session_id, states[c->state].name, states[st].name);
    c->state = st;
    uv_timer_stop(&c->reply_timer);
    if (states[st].enter != NULL)
        states[st].enter(c);
    if (c->state == st && st != CS_CLOSING)
        client_arm_timer(c);
}

/* Ends the session (stage NULL: the current one): remembers why (the first reason wins), fails the
 * transaction's undecided recipients with the same outcome, then QUIT (polite, when the connection
 * is still usable) or close at once. */
void client_end(struct smtp_client *c, const char *stage, int code, const char *enhanced,
                int remote, int polite, const char *fmt, ...)
{
    if (c->state == CS_CLOSING)
        return;
    if (c->state == CS_QUIT) { /* nothing more to learn from this peer */
        client_enter_state(c, CS_CLOSING);
        return;
    }
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct smtp_client_outcome o;
    char *o_text = NULL;
    outcome_set(&o, &o_text, code, enhanced, stage != NULL ? stage : client_stage(c), remote, text);
    if (c->why.code == 0) {
        c->why = o;
        c->why_text = xstrdup(text);
        c->why.text = c->why_text;
    }
    struct client_tx *t = c->tx;
    c->tx = NULL;
    client_enter_state(c, polite && c->connected ? CS_QUIT : CS_CLOSING);
    if (t != NULL)
        tx_emit(c, t, &o);
    free(o_text);
}

/* Ends the session with the peer's own reply as the reason. */
static void client_end_reply(struct smtp_client *c, const struct smtp_reply *r, int polite)
{
    char enhanced[16];
    struct buf text = BUF_INIT;
    reply_enhanced(r, enhanced);
    smtp_reply_text_join(r, "; ", &text);
    client_end(c, NULL, r->code, enhanced, 1, polite, "%s", text.data);
    buf_free(&text);
}

/* ---- connection setup ---- */

static void greeting_enter(struct smtp_client *c)
{
    int rc = stream_read_start(&c->stream);
    if (rc < 0)
        client_end(c, NULL, 451, "4.4.2", 0, 0, "lost connection with %s: %s", c->mx_name,
                   uv_strerror(rc));
}

static void greeting_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code / 100 == 2)
        client_enter_state(c, CS_EHLO);
    else
        client_end_reply(c, r, 1);
}

static void ehlo_enter(struct smtp_client *c)
{
    memset(&c->caps, 0, sizeof c->caps);
    client_send_line(c, "EHLO %s\r\n", c->ehlo);
}

static void helo_enter(struct smtp_client *c)
{
    client_send_line(c, "HELO %s\r\n", c->ehlo);
}

void client_ready(struct smtp_client *c)
{
    client_enter_state(c, CS_IDLE);
    if (!c->ready_sent) {
        c->ready_sent = 1;
        c->cb(c, SMTP_CLIENT_READY, NULL, 0, c->arg);
    }
}

static void ehlo_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code / 100 == 2) {
        smtp_reply_ehlo_parse(r, &c->caps);
        client_after_hello(c);
    } else if (r->code / 100 == 5) {
        client_enter_state(c, CS_HELO);
    } else {
        client_end_reply(c, r, 1);
    }
}

static void helo_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code / 100 != 2) {
        client_end_reply(c, r, 1);
        return;
    }
    memset(&c->caps, 0, sizeof c->caps);
    client_after_hello(c);
}

/* ---- transactions ---- */

static void refused_enter(struct smtp_client *c)
{
    uv_timer_start(&c->pace_timer, client_on_pace, 0, 0);
}

static void envelope_format_mail(struct smtp_client *c, struct buf *out)
{
    const struct client_tx *t = c->tx;
    buf_printf(out, "MAIL FROM:<%s>", t->sender);
    if (c->caps.ext & SMTP_EXT_SIZE)
        buf_printf(out, " SIZE=%zu", t->wire_size);
    if ((t->flags & SPOOL_ENV_8BITMIME) && (c->caps.ext & SMTP_EXT_8BITMIME))
        buf_append_str(out, " BODY=8BITMIME");
    if (t->flags & SPOOL_ENV_BINARYMIME)
        buf_append_str(out, " BODY=BINARYMIME");
    if (t->flags & SPOOL_ENV_SMTPUTF8)
        buf_append_str(out, " SMTPUTF8");
    if ((c->caps.ext & SMTP_EXT_DSN) && t->ret != SMTP_DSN_RET_NONE)
        buf_append_str(out, t->ret == SMTP_DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if ((c->caps.ext & SMTP_EXT_DSN) && t->envid != NULL) {
        buf_append_str(out, " ENVID=");
        smtp_xtext_encode(t->envid, strlen(t->envid), out);
    }
    buf_append_str(out, "\r\n");
}

/* RFC 3461 §5.2.1: to a server that offers DSN, NOTIFY and ORCPT go on as they came (ORCPT's
 * address xtext-encoded again); none is made up when the client gave none. */
static void envelope_format_rcpt(const struct smtp_client *c, const struct client_rcpt *rc,
                                 struct buf *out)
{
    buf_printf(out, "RCPT TO:<%s>", rc->addr);
    if ((c->caps.ext & SMTP_EXT_DSN) && rc->notify != 0) {
        buf_append_str(out, " NOTIFY=");
        smtp_dsn_notify_format(rc->notify, out);
    }
    const char *semi = rc->orcpt != NULL ? strchr(rc->orcpt, ';') : NULL;
    if ((c->caps.ext & SMTP_EXT_DSN) && semi != NULL) {
        buf_printf(out, " ORCPT=%.*s", (int)(semi + 1 - rc->orcpt), rc->orcpt);
        smtp_xtext_encode(semi + 1, strlen(semi + 1), out);
    }
    buf_append_str(out, "\r\n");
}

/* Sends what may go now: with PIPELINING every command the rate buckets allow (DATA once all
 * RCPTs are out), without it the next command once the previous one was answered. When nothing
 * more will be sent and DATA was not, the transaction ends with RSET. */
static void envelope_enter(struct smtp_client *c)
{
    struct client_tx *t = c->tx;
    size_t n = t->nrcpts;
    int pipelining = (c->caps.ext & SMTP_EXT_PIPELINING) != 0;
    int was_waiting = t->replied < t->sent;
    int body = 0;
    struct buf out = BUF_INIT;
    while (t->sent < n + 2 && !t->mail_failed && (pipelining || t->replied == t->sent)) {
        if (t->sent == n + 1) {
            if (t->replied == n + 1 && t->accepted == 0)
                break; /* every RCPT was refused */
            /* BDAT carries the message itself: it waits for the RCPT replies */
            body = t->chunked && t->replied == n + 1;
            if (t->chunked)
                break;
            buf_append_str(&out, "DATA\r\n");
        } else if (t->sent == 0) {
            if (!client_may_send(c, SMTP_CLIENT_PACE_MAIL))
                break;
            envelope_format_mail(c, &out);
        } else {
            if (!client_may_send(c, SMTP_CLIENT_PACE_RCPT))
                break;
            envelope_format_rcpt(c, &t->rcpts[t->sent - 1], &out);
        }
        t->sent++;
    }
    int rc = out.len > 0 ? client_write(c, out.data, out.len) : 0;
    buf_free(&out);
    if (rc < 0)
        return;
    if (t->replied == t->sent && t->sent <= n + 1 &&
        (t->mail_failed || (t->replied == n + 1 && t->accepted == 0))) {
        client_enter_state(c, CS_RSET);
        return;
    }
    if (body)
        client_enter_state(c, CS_BODY);
    else if (!was_waiting)
        client_arm_timer(c);
}

static void envelope_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    struct client_tx *t = c->tx;
    size_t n = t->nrcpts, i = t->replied++;
    if (i == 0) {
        if (r->code / 100 != 2) {
            t->mail_failed = 1;
            for (size_t k = 0; k < n; k++)
                rcpt_decide_reply(&t->rcpts[k], r, "MAIL FROM");
        }
    } else if (i <= n) {
        struct client_rcpt *rc = &t->rcpts[i - 1];
        if (t->mail_failed) {
            /* the MAIL reply already says why */
        } else if (r->code == 250 || r->code == 251) {
            rc->status = RCPT_ACCEPTED;
            t->accepted++;
        } else {
            rcpt_decide_reply(rc, r, "RCPT TO");
        }
    } else if (r->code == 354) {
        client_enter_state(c, CS_BODY);
        return;
    } else {
        for (size_t k = 0; k < n; k++)
            if (t->rcpts[k].status == RCPT_ACCEPTED)
                rcpt_decide_reply(&t->rcpts[k], r, "DATA");
        client_enter_state(c, CS_RSET);
        return;
    }
    client_arm_timer(c);
    envelope_enter(c);
}

/* Encodes and queues the next chunk of the body (nothing but the final dot when no recipient was
 * accepted: a server that said 354 anyway gets an empty message, RFC 2920 §3.1); with BDAT, after
 * its BDAT command, the last one as BDAT LAST. */
static void body_enter(struct smtp_client *c)
{
    struct client_tx *t = c->tx;
    if (t->chunk_failed)
        return; /* only the replies to the chunks sent are awaited */
    size_t left = t->accepted > 0 ? t->body->len - t->body_off : 0;
    size_t n = left < BODY_CHUNK ? left : BODY_CHUNK;
    struct buf wire = BUF_INIT;
    smtp_data_enc_feed(&t->enc, t->body->data + t->body_off, n, &wire);
    t->body_off += n;
    if (n == left)
        smtp_data_enc_finish(&t->enc, &wire);
    int rc = 0;
    if (t->chunked) {
        char bdat[64];
        int len = snprintf(bdat, sizeof bdat, "BDAT %zu%s\r\n", wire.len, n == left ? " LAST" : "");
        rc = client_write(c, bdat, (size_t)len);
        t->chunks_sent++;
        t->last_sent = n == left;
    }
    if (rc == 0)
        rc = client_write(c, wire.data, wire.len);
    buf_free(&wire);
    if (rc < 0)
        return;
    if (n == left)
        client_enter_state(c, CS_END_OF_DATA);
}

static void eod_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    struct client_tx *t = c->tx;
    for (size_t k = 0; k < t->nrcpts; k++)
        if (t->rcpts[k].status == RCPT_ACCEPTED)
            rcpt_decide_reply(&t->rcpts[k], r, "end of data");
    c->messages++;
    tx_finish(c);
}

/* BDAT: the replies come one per chunk, in order. The LAST's is the message's; one before it is
 * 250, or the message failed (RFC 3030 §2: no chunk may follow a refused one), and once the
 * replies to the chunks already sent are read, RSET. */
static void chunk_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    struct client_tx *t = c->tx;
    t->chunks_replied++;
    if (!t->chunk_failed && t->last_sent && t->chunks_replied == t->chunks_sent) {
        eod_on_reply(c, r);
        return;
    }
    if (!t->chunk_failed && r->code / 100 != 2) {
        for (size_t k = 0; k < t->nrcpts; k++)
            if (t->rcpts[k].status == RCPT_ACCEPTED)
                rcpt_decide_reply(&t->rcpts[k], r, "end of data");
        t->chunk_failed = 1;
    }
    if (t->chunk_failed && t->chunks_replied == t->chunks_sent)
        client_enter_state(c, CS_RSET);
}

/* A reply while the body goes out or after its end. With DATA, one during the body (a server
 * giving up early) ends the transaction like the final one. */
static void body_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (c->tx->chunked)
        chunk_on_reply(c, r);
    else
        eod_on_reply(c, r);
}

static void rset_enter(struct smtp_client *c)
{
    client_send_line(c, "RSET\r\n");
}

static void rset_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    tx_finish(c);
}

/* ---- the end ---- */

static void quit_enter(struct smtp_client *c)
{
    client_send_line(c, "QUIT\r\n");
}

static void quit_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    client_enter_state(c, CS_CLOSING);
}

static void closing_enter(struct smtp_client *c)
{
    uv_timer_stop(&c->pace_timer);
    stream_close(&c->stream, client_on_stream_closed);
    uv_close((uv_handle_t *)&c->reply_timer, client_on_handle_closed);
    uv_close((uv_handle_t *)&c->pace_timer, client_on_handle_closed);
}

static void client_log_session(const struct smtp_client *c)
{
    struct logrec r;
    log_begin(&r, c->why.code != 0 ? LOG_WARN : LOG_INFO, "smtp_client.session");
    log_int(&r, "session", (long long)c->session_id);
    log_str(&r, "mx", c->mx_name);
    log_str(&r, "address", c->addr_text);
    log_bool(&r, "connected", c->connected);
    log_str(&r, "tls", c->tls_version != NULL ? c->tls_version : "none");
    log_int(&r, "messages", c->messages);
    if (c->why.code != 0) {
        log_int(&r, "code", c->why.code);
        log_str(&r, "stage", c->why.stage);
        log_str(&r, "reason", c->why.text);
    } else {
        log_str(&r, "reason", c->idle_closed ? "closed by the peer while idle" : "QUIT");
    }
    log_end(&r);
}

/* Called once per handle (stream and two timers); the last one ends the session. */
static void client_release(struct smtp_client *c)
{
    if (--c->open_handles > 0)
        return;
    if (!c->silent) {
        client_log_session(c);
        c->cb(c, SMTP_CLIENT_CLOSED, &c->why, c->why.code != 0 ? 1 : 0, c->arg);
    }
    smtp_reply_parser_close(&c->parser);
    free(c->why_text);
    dane_peer_free(c->dane);
    tls_rpt_session_free(c->rpt);
    free(c->mx_name);
    free(c->ehlo);
    free(c);
}

static void client_on_handle_closed(uv_handle_t *h)
{
    client_release(h->data);
}

static void client_on_stream_closed(struct stream *s)
{
    client_release(s->owner);
}

/* ---- events ---- */

/* A peer may end a session kept open between transactions (a close, or a 421 for its own idle
 * timeout): nothing was lost, so the session ends as after QUIT. Returns 1 when that was so. */
static int client_idle_ended(struct smtp_client *c)
{
    if (c->state != CS_IDLE || !c->had_tx)
        return 0;
    c->idle_closed = 1;
    client_enter_state(c, CS_CLOSING);
    return 1;
}

static void client_on_stream(struct stream *s, enum stream_event ev, int status, const char *data,
                             size_t len)
{
    struct smtp_client *c = s->owner;
    if (c->state == CS_CLOSING)
        return;
    switch (ev) {
    case STREAM_CONNECTED:
        if (status < 0) {
            client_end(c, NULL, 451, "4.4.1", 0, 0, "connect to %s [%s] failed: %s", c->mx_name,
                       c->addr_text, uv_strerror(status));
            return;
        }
        c->connected = 1;
        client_enter_state(c, CS_GREETING);
        return;
    case STREAM_DATA:
        client_on_data(c, data, len);
        return;
    case STREAM_TLS_READY:
        if (status < 0) {
            client_tls_report(c, TLS_RPT_VALIDATION_FAILURE, "TLS handshake failed");
            client_end(c, NULL, 451, "4.7.5", 0, 0, "TLS handshake with %s failed", c->mx_name);
            return;
        }
        c->tls_version = stream_tls_version(&c->stream);
        if (client_tls_checked(c))
            client_enter_state(c, CS_EHLO); /* RFC 3207 §4.2: forget everything learnt in clear */
        return;
    case STREAM_DRAINED:
        if (c->state == CS_BODY) {
            body_enter(c);
            if (c->state == CS_BODY)
                client_arm_timer(c);
        }
        return;
    case STREAM_EOF:
    case STREAM_ERROR:
        if (client_idle_ended(c))
            return;
        if (c->state == CS_QUIT)
            client_enter_state(c, CS_CLOSING);
        else
            client_end(c, NULL, 451, "4.4.2", 0, 0, "lost connection with %s while %s", c->mx_name,
                       client_stage(c));
        return;
    }
}

/* Splits the input into replies. Input after the 220 to STARTTLS is dropped: it came in clear and
 * anyone on the path could have put it there (the CVE-2011-0411 class). */
static void client_on_data(struct smtp_client *c, const char *data, size_t len)
{
    while (len > 0 && c->state != CS_CLOSING && c->state != CS_TLS_HANDSHAKE) {
        size_t used = 0;
        enum smtp_reply_status st = smtp_reply_parser_feed(&c->parser, data, len, &used);
        data += used;
        len -= used;
        if (st == REPLY_NEED_MORE)
            return;
        if (st == REPLY_ERROR) {
            client_end(c, NULL, 451, "4.5.0", 0, 0, "malformed reply from %s while %s: %s",
                       c->mx_name, client_stage(c), c->parser.error);
            return;
        }
        client_on_reply(c, &c->parser.reply);
    }
}

static void client_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code == 421 && client_idle_ended(c))
        return;
    if (r->code == 421 && c->state != CS_QUIT) { /* RFC 5321 §3.8: the server is going away */
        client_end_reply(c, r, 0);
        return;
    }
    if (states[c->state].on_reply == NULL) {
        client_end(c, NULL, 451, "4.5.0", 0, 0, "unexpected reply %d from %s while %s", r->code,
                   c->mx_name, client_stage(c));
        return;
    }
    states[c->state].on_reply(c, r);
}

static void client_on_timeout(uv_timer_t *t)
{
    struct smtp_client *c = t->data;
    if (c->state == CS_QUIT) {
        client_enter_state(c, CS_CLOSING);
        return;
    }
    if (c->state == CS_IDLE) { /* no next transaction came in time */
        client_enter_state(c, CS_QUIT);
        return;
    }
    if (c->state == CS_CONNECTING)
        client_end(c, NULL, 451, "4.4.1", 0, 0, "timeout connecting to %s [%s]", c->mx_name,
                   c->addr_text);
    else
        client_end(c, NULL, 451, "4.4.2", 0, 0, "timeout waiting for %s reply from %s",
                   client_stage(c), c->mx_name);
}

static void client_on_pace(uv_timer_t *t)
{
    struct smtp_client *c = t->data;
    if (c->state == CS_ENVELOPE)
        envelope_enter(c);
    else if (c->state == CS_TX_REFUSED)
        tx_finish(c);
}

/* ---- public interface ---- */

static void timeouts_default(struct smtp_client_timeouts *t)
{
    static const struct smtp_client_timeouts rfc = {
        30000, 300000, 300000, 120000, 180000, 600000, 0 /* idle: until told */
    };
    t->connect = t->connect ? t->connect : rfc.connect;
    t->greeting = t->greeting ? t->greeting : rfc.greeting;
    t->command = t->command ? t->command : rfc.command;
    t->data_init = t->data_init ? t->data_init : rfc.data_init;
    t->data_block = t->data_block ? t->data_block : rfc.data_block;
    t->data_term = t->data_term ? t->data_term : rfc.data_term;
}

static int client_connect(struct smtp_client *c)
{
    return stream_connect_prepared(&c->stream, (const struct sockaddr *)&c->dst,
                                   c->src.ss_family != AF_UNSPEC ? (const struct sockaddr *)&c->src
                                                                 : NULL);
}

void client_connect_waited(struct smtp_client *c)
{
    c->connect_waits = 0;
    int rc = client_connect(c);
    if (rc < 0)
        client_end(c, NULL, 451, "4.4.1", 0, 0, "cannot connect to %s [%s]: %s", c->mx_name,
                   c->addr_text, uv_strerror(rc));
    else
        client_arm_timer(c); /* the connect timeout starts now */
}

struct smtp_client *smtp_client_open(uv_loop_t *loop, const struct smtp_client_params *params,
                                     smtp_client_cb cb, void *arg, struct buf *why)
{
    struct smtp_client *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    size_t dlen = params->dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                     : sizeof(struct sockaddr_in);
    memcpy(&c->dst, params->dst, dlen);
    if (params->dst->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)params->dst, c->addr_text, sizeof c->addr_text);
    else
        uv_ip4_name((const struct sockaddr_in *)params->dst, c->addr_text, sizeof c->addr_text);
    c->mx_name = xstrdup(params->mx_name != NULL ? params->mx_name : c->addr_text);
    c->ehlo = xstrdup(params->ehlo);
    c->tls = params->tls;
    c->tls_ctx = params->tls_ctx;
    c->chunking = params->chunking;
    c->timeouts = params->timeouts;
    timeouts_default(&c->timeouts);
    c->pace = params->pace;
    c->pace_arg = params->pace_arg;
    c->session_id = params->session_id;
    smtp_reply_parser_init(&c->parser);
    uv_timer_init(loop, &c->reply_timer);
    uv_timer_init(loop, &c->pace_timer);
    c->reply_timer.data = c->pace_timer.data = c;
    c->open_handles = 3;
    c->state = CS_CONNECTING;
    if (params->src != NULL)
        memcpy(&c->src, params->src,
               params->src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in));
    c->dane = dane_peer_new(params->dane, c->mx_name, params->mx_canonical, client_on_dane, c);
    c->dane_pending = c->dane != NULL;
    c->rpt = tls_rpt_session_new(&params->tls_rpt, c->mx_name, params->src, params->dst);
    /* RFC 8461 §2, RFC 7672: a host the enforced MTA-STS policy does not list may be used with
     * DANE only, so it is not even connected to before its TLSA records are known. */
    c->connect_waits = c->dane_pending && c->tls.mx_mismatch && tls_policy_enforced(&c->tls);

    stream_prepare(loop, &c->stream, client_on_stream, c);
    int rc = c->connect_waits ? 0 : client_connect(c);
    if (rc < 0) {
        buf_printf(why, "cannot connect to %s [%s]: %s", c->mx_name, c->addr_text, uv_strerror(rc));
        c->silent = 1;
        client_enter_state(c, CS_CLOSING);
        return NULL;
    }
    client_arm_timer(c);
    return c;
}

/* An address we cannot put in a command line as it is. */
static int address_unsendable(const char *a)
{
    return strlen(a) > PATH_MAX_OCTETS || strpbrk(a, "\r\n<>") != NULL;
}

static int body_has_8bit(const struct buf *body)
{
    for (size_t i = 0; i < body->len; i++)
        if ((unsigned char)body->data[i] & 0x80)
            return 1;
    return 0;
}

static int has_8bit(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s & 0x80)
            return 1;
    return 0;
}

/* Whether the header section (up to the first empty line) has 8-bit octets (RFC 6532 fields). */
static int header_has_8bit(const struct buf *body)
{
    int line_start = 1;
    for (size_t i = 0; i < body->len; i++) {
        unsigned char c = (unsigned char)body->data[i];
        if (line_start &&
            (c == '\n' || (c == '\r' && i + 1 < body->len && body->data[i + 1] == '\n')))
            return 0;
        if (c & 0x80)
            return 1;
        line_start = c == '\n';
    }
    return 0;
}

/* RFC 6531 §3.4: whether the message needs SMTPUTF8 after all. The addresses are canonical, so
 * their domains are A-labels: only a UTF-8 local part or UTF-8 header fields need it. */
static int tx_needs_smtputf8(const struct client_tx *t)
{
    if (has_8bit(t->sender) || header_has_8bit(t->body))
        return 1;
    for (size_t i = 0; i < t->nrcpts; i++)
        if (has_8bit(t->rcpts[i].addr))
            return 1;
    return 0;
}

/* Replaces an address with its U-label form (RFC 6531 §3.2); kept as is when that form would not
 * fit in a path of SMTP_PATH_MAX octets with its angle brackets. */
static void address_to_utf8(char **addr)
{
    char utf8[SMTP_PATH_MAX - 1];
    if (smtp_addr_to_utf8(*addr, utf8, sizeof utf8) == 0) {
        free(*addr);
        *addr = xstrdup(utf8);
    }
}

/* A message sent with SMTPUTF8 keeps it, with the envelope's domains as U-labels, to a server that
 * announced it. To one that did not, a message whose only non-ASCII was in its domains goes with
 * their A-labels and without the parameter (RFC 6531 §3.4: SHOULD NOT be supplied when not
 * needed); one that needs it is refused in smtp_client_send (5.6.7). */
static void tx_choose_smtputf8(const struct smtp_client *c, struct client_tx *t)
{
    if (!(t->flags & SPOOL_ENV_SMTPUTF8))
        return;
    if (c->caps.ext & SMTP_EXT_SMTPUTF8) {
        address_to_utf8(&t->sender);
        for (size_t i = 0; i < t->nrcpts; i++)
            address_to_utf8(&t->rcpts[i].addr);
    } else if (!tx_needs_smtputf8(t)) {
        t->flags &= ~(unsigned)SPOOL_ENV_SMTPUTF8;
    }
}

void smtp_client_send(struct smtp_client *c, const struct smtp_client_tx *tx)
{
    if (c->state != CS_IDLE) {
        log_msg(LOG_WARN, "smtp_client.misuse", "session %llu: send while %s; ignored",
                (unsigned long long)c->session_id, states[c->state].name);
        return;
    }
    struct client_tx *t = xcalloc(1, sizeof *t);
    t->sender = xstrdup(tx->sender);
    t->nrcpts = tx->nrcpts;
    t->rcpts = xcalloc(tx->nrcpts ? tx->nrcpts : 1, sizeof *t->rcpts);
    int unsendable = address_unsendable(tx->sender);
    for (size_t i = 0; i < tx->nrcpts; i++) {
        t->rcpts[i].addr = xstrdup(tx->rcpts[i]);
        t->rcpts[i].notify = tx->notify != NULL ? tx->notify[i] : 0;
        if (tx->orcpt != NULL && tx->orcpt[i] != NULL)
            t->rcpts[i].orcpt = xstrdup(tx->orcpt[i]);
        unsendable |= address_unsendable(tx->rcpts[i]);
    }
    t->body = tx->body;
    t->flags = tx->flags;
    t->ret = tx->ret;
    t->envid = tx->envid != NULL ? xstrdup(tx->envid) : NULL;
    tx_choose_smtputf8(c, t);
    int binary = (t->flags & SPOOL_ENV_BINARYMIME) != 0;
    t->wire_size = binary ? t->body->len : smtp_data_wire_size(t->body->data, t->body->len);
    /* RFC 3030 §3: a binary message goes with BDAT whatever the shaping prefers. */
    t->chunked = (c->chunking || binary) && (c->caps.ext & SMTP_EXT_CHUNKING);
    if (binary)
        smtp_data_enc_init_binary(&t->enc);
    else if (t->chunked)
        smtp_data_enc_init_chunked(&t->enc);
    else
        smtp_data_enc_init(&t->enc);
    c->tx = t;

    char text[256];
    const char *code = NULL;
    int reply = 0;
    if (unsendable) {
        reply = 553, code = "5.1.3";
        snprintf(text, sizeof text, "an address of this message cannot be sent to %s", c->mx_name);
    } else if ((c->caps.ext & SMTP_EXT_SIZE) && c->caps.size_max != 0 &&
               t->wire_size > c->caps.size_max) {
        reply = 552, code = "5.3.4";
        snprintf(text, sizeof text, "message of %zu bytes exceeds the limit of %llu bytes of %s",
                 t->wire_size, (unsigned long long)c->caps.size_max, c->mx_name);
    } else if ((t->flags & SPOOL_ENV_SMTPUTF8) && !(c->caps.ext & SMTP_EXT_SMTPUTF8)) {
        reply = 553, code = "5.6.7";
        snprintf(text, sizeof text, "message needs SMTPUTF8 and %s does not support it",
                 c->mx_name);
    } else if ((t->flags & SPOOL_ENV_BINARYMIME) &&
               (c->caps.ext & (SMTP_EXT_BINARYMIME | SMTP_EXT_CHUNKING)) !=
                   (SMTP_EXT_BINARYMIME | SMTP_EXT_CHUNKING)) {
        reply = 554, code = "5.6.3"; /* RFC 3030 §3: return it, as for 8-bit content below */
        snprintf(text, sizeof text,
                 "message is binary (BODY=BINARYMIME) and %s does not take "
                 "BINARYMIME with CHUNKING",
                 c->mx_name);
    } else if ((t->flags & SPOOL_ENV_8BITMIME) && !(c->caps.ext & SMTP_EXT_8BITMIME) &&
               body_has_8bit(t->body)) {
        /* RFC 6152 §3: convert or return as undeliverable; Sluice does not rewrite messages. */
        reply = 554, code = "5.6.3";
        snprintf(text, sizeof text, "message has 8-bit content and %s does not support 8BITMIME",
                 c->mx_name);
    }
    if (reply != 0) {
        for (size_t i = 0; i < t->nrcpts; i++)
            rcpt_decide(&t->rcpts[i], reply, code, "MAIL FROM", 0, text);
        client_enter_state(c, CS_TX_REFUSED);
        return;
    }
    client_enter_state(c, CS_ENVELOPE);
}

void smtp_client_quit(struct smtp_client *c)
{
    if (c->state == CS_IDLE)
        client_enter_state(c, CS_QUIT);
}

void smtp_client_abort(struct smtp_client *c)
{
    client_end(c, NULL, 451, "4.3.2", 0, 0, "delivery to %s stopped (shutting down)", c->mx_name);
}

int smtp_client_is_idle(const struct smtp_client *c)
{
    return c->state == CS_IDLE;
}

unsigned smtp_client_extensions(const struct smtp_client *c)
{
    return c->caps.ext;
}

const char *smtp_client_tls_version(const struct smtp_client *c)
{
    return c->tls_version;
}
