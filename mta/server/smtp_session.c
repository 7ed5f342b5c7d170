/*
 * Inbound SMTP: the connection of a session, under the command layer (smtp_server.c), the
 * transaction (smtp_server_tx.c), AUTH (smtp_auth.c) and the wait before the banner
 * (smtp_greet.c): its state and the one transition, replies collected in s->out and written once
 * per batch of input (which is also what PIPELINING needs), pausing and resuming input, the
 * deadlines, and the session's lifetime. What it needs of the layers above (work through the
 * input, drop the transaction, let go of what is in flight) it asks through s->ops.
 */
#include "mta/server/smtp_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/log.h"
#include "lib/uvutil.h"

/* ---- states ----
 *
 * A session's state is its protocol phase (what the client's next line means) and what it waits
 * for before reading that line. The phase says how input is read; the command table
 * (smtp_server.c) says in which phases each command is allowed. */

static const struct {
    const char *name;
    enum smtp_input input;
} phases[] = {
    [SMTP_PHASE_CONNECTED] = {"connected", SMTP_INPUT_COMMAND},
    [SMTP_PHASE_GREETED] = {"ready", SMTP_INPUT_COMMAND},
    [SMTP_PHASE_MAIL] = {"mail", SMTP_INPUT_COMMAND},
    [SMTP_PHASE_RCPT] = {"rcpt", SMTP_INPUT_COMMAND},
    [SMTP_PHASE_DATA] = {"data", SMTP_INPUT_MESSAGE},
    [SMTP_PHASE_CHUNK] = {"chunk", SMTP_INPUT_CHUNK},
    [SMTP_PHASE_BDAT] = {"bdat", SMTP_INPUT_COMMAND},
    [SMTP_PHASE_AUTH] = {"auth", SMTP_INPUT_RESPONSE},
    [SMTP_PHASE_CLOSING] = {"closing", SMTP_INPUT_NONE},
};

static const struct {
    const char *name;
    unsigned client_deadline : 1; /* the client must act (a handshake): limits.command_timeout */
    unsigned drops_input : 1;     /* what was read before is plaintext: never executed */
} waits[] = {
    [SMTP_WAIT_NONE] = {"none", 0, 0},
    [SMTP_WAIT_TLS] = {"tls-wait", 1, 0},
    [SMTP_WAIT_BANNER] = {"greet-wait", 0, 0},
    /* CVE-2011-0411: commands pipelined after STARTTLS in clear are dropped */
    [SMTP_WAIT_STARTTLS] = {"starttls", 1, 1},
    [SMTP_WAIT_MAIL_CHECK] = {"mail-check", 0, 0},
    [SMTP_WAIT_AUTH_CHECK] = {"auth-check", 0, 0},
    [SMTP_WAIT_END_OF_DATA] = {"end-of-data", 0, 0},
};

/* One word for the log: what the session waits for, else its phase. */
static const char *state_name(const struct smtp_session *s)
{
    return s->wait != SMTP_WAIT_NONE ? waits[s->wait].name : phases[s->phase].name;
}

enum smtp_input smtp_session_input(const struct smtp_session *s)
{
    if (s->wait != SMTP_WAIT_NONE)
        return SMTP_INPUT_NONE;
    return s->discard.left > 0 ? SMTP_INPUT_DISCARD : phases[s->phase].input;
}

int smtp_reading_message(const struct smtp_session *s)
{
    enum smtp_input input = smtp_session_input(s);
    return input == SMTP_INPUT_MESSAGE || input == SMTP_INPUT_CHUNK;
}

int smtp_awaiting_line(const struct smtp_session *s)
{
    enum smtp_input input = smtp_session_input(s);
    return input == SMTP_INPUT_COMMAND || input == SMTP_INPUT_RESPONSE;
}

int smtp_session_drops_input(const struct smtp_session *s)
{
    return waits[s->wait].drops_input;
}

void smtp_set_state(struct smtp_session *s, enum smtp_phase phase, enum smtp_wait wait)
{
    if (s->phase == phase && s->wait == wait)
        return;
    struct logrec r;
    log_begin(&r, LOG_DEBUG, "smtp.state");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "from", phases[s->phase].name);
    log_str(&r, "to", phases[phase].name);
    log_str(&r, "wait", waits[wait].name);
    log_end(&r);
    s->phase = phase;
    s->wait = wait;
}

/* ---- replies ---- */

void smtp_reply(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    if (enhanced != NULL)
        buf_printf(&s->out, "%d %s %s\r\n", code, enhanced, text);
    else
        buf_printf(&s->out, "%d %s\r\n", code, text);

    /* 4xx and 5xx at info; the rest of a session, the per-message chatter of a busy server,
     * at debug (smtp.accepted says once what a transaction achieved). */
    struct logrec r;
    log_begin(&r, code >= 400 ? LOG_INFO : LOG_DEBUG, "smtp.reply");
    log_int(&r, "session", (long long)s->id);
    log_int(&r, "code", code);
    if (enhanced != NULL)
        log_str(&r, "enhanced", enhanced);
    log_str(&r, "text", text);
    log_end(&r);
}

void smtp_flush(struct smtp_session *s)
{
    if (s->out.len == 0 || s->closed)
        return;
    if (stream_write(&s->stream, s->out.data, s->out.len) < 0) {
        buf_free(&s->out);
        smtp_session_close(s);
        return;
    }
    buf_free(&s->out);
}

void smtp_close_after_reply(struct smtp_session *s)
{
    s->ops->drop_transaction(s);
    smtp_set_state(s, SMTP_PHASE_CLOSING, SMTP_WAIT_NONE);
    smtp_pause_input(s);
    smtp_flush(s);
    if (!s->closed && s->stream.write_pending == 0)
        smtp_session_close(s);
    /* otherwise STREAM_DRAINED closes it */
}

int smtp_peer_error(struct smtp_session *s)
{
    if (++s->errors < s->cfg->limits.max_errors)
        return 0;
    smtp_reply(s, 421, "4.7.0", "%s Error: too many errors", s->cfg->server.hostname);
    smtp_close_after_reply(s);
    return 1;
}

/* ---- input flow control ---- */

void smtp_pause_input(struct smtp_session *s)
{
    s->reading = 0;
    if (!s->closed)
        stream_read_stop(&s->stream);
}

void smtp_resume_input(struct smtp_session *s)
{
    if (s->closed || s->phase == SMTP_PHASE_CLOSING)
        return;
    s->reading = 1;
    smtp_arm_timer(s); /* the client's deadline starts now, not while it waited for us */
    /* Process what is already buffered first: it may hold pipelined commands. */
    s->ops->process(s);
    if (s->closed || !s->reading)
        return;
    if (!s->sinks_paused && s->stream.write_pending < SMTP_OUT_HIGH_WATER)
        stream_read_start(&s->stream);
}

/* ---- timers ----
 *
 * Deadlines rather than idle timers, so a client trickling a byte at a time cannot hold a slot:
 * a command line must be complete within limits.command_timeout of the previous reply (the wait
 * for its first byte included); the message data within limits.data_deadline of the 354 (or of
 * the first BDAT), with no pause longer than limits.data_timeout; a refused chunk within
 * limits.command_timeout of its BDAT; and after limits.session_lifetime the session ends at
 * its next command boundary. Never inside DATA: a message being sent is read, committed and
 * acknowledged first, then the 421 follows. One timer per session serves all of them. */

static uint64_t ms_until(uint64_t now, uint64_t when)
{
    return when > now ? when - now : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

int smtp_lifetime_over(const struct smtp_session *s)
{
    return uv_now(s->srv->loop) >= s->lifetime_ends;
}

void smtp_session_expire(struct smtp_session *s, const char *limit, const char *what)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.timeout");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "state", state_name(s));
    log_str(&r, "limit", limit);
    log_end(&r);
    smtp_reply(s, 421, "4.4.2", "%s Error: %s", s->cfg->server.hostname, what);
    smtp_close_after_reply(s);
}

static void timer_on_expire(uv_timer_t *t)
{
    struct smtp_session *s = container_of(t, struct smtp_session, timer);
    if (s->closed || s->phase == SMTP_PHASE_CLOSING)
        return;
    int message = smtp_reading_message(s);
    if (message && uv_now(s->srv->loop) >= s->tx->data_deadline)
        smtp_session_expire(s, "limits.data_deadline", "message data took too long");
    else if (message)
        smtp_session_expire(s, "limits.data_timeout", "timeout exceeded");
    else if (smtp_lifetime_over(s))
        smtp_session_expire(s, "limits.session_lifetime", "session lifetime exceeded");
    else
        smtp_session_expire(s, "limits.command_timeout", "timeout exceeded");
}

void smtp_arm_timer(struct smtp_session *s)
{
    if (s->closed)
        return;
    const struct config *cfg = s->cfg;
    uint64_t now = uv_now(s->srv->loop), ms;
    if (smtp_reading_message(s))
        ms = min_u64(cfg->limits.data_timeout_ms, ms_until(now, s->tx->data_deadline));
    else if (smtp_awaiting_line(s) || smtp_session_input(s) == SMTP_INPUT_DISCARD ||
             waits[s->wait].client_deadline)
        ms = min_u64(cfg->limits.command_timeout_ms, ms_until(now, s->lifetime_ends));
    else
        return; /* waiting for ourselves: a check, the spool, the wait before the banner */
    uv_timer_start(&s->timer, timer_on_expire, ms, 0);
}

/* ---- lifetime ---- */

void smtp_session_ref(struct smtp_session *s)
{
    s->pending++;
}

void smtp_session_unref(struct smtp_session *s)
{
    if (--s->pending > 0)
        return;
    struct smtp_server *srv = s->srv;
    buf_free(&s->in);
    buf_free(&s->out);
    free(s->helo);
    free(s->auth_user);
    config_unref(s->cfg);
    free(s);
    if (srv->stopping && srv->nsessions == 0 && srv->on_drained != NULL)
        srv->on_drained(srv);
}

static void session_on_handle_closed(uv_handle_t *h)
{
    smtp_session_unref(container_of((uv_timer_t *)h, struct smtp_session, timer));
}

static void session_on_stream_closed(struct stream *st)
{
    smtp_session_unref(st->owner);
}

void smtp_session_close(struct smtp_session *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    s->reading = 0;
    s->ops->release(s);

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        s->srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->srv->nsessions--;

    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.disconnect");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "state", state_name(s));
    log_end(&r);

    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, session_on_handle_closed);
    stream_close(&s->stream, session_on_stream_closed);
}
