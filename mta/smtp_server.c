/*
 * Inbound SMTP: the connection side of a session. Input arrives as STREAM_DATA, is split into
 * command lines (or fed to the DATA decoder) and dispatched through one command table; replies are
 * collected in s->out and written once per batch of input, which is also what PIPELINING needs.
 * Every state change goes through smtp_set_state.
 */
#include "mta/smtp_session.h"
#include "mta/smtp_auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/client_table.h"
#include "lib/log.h"
#include "lib/ratelimit.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "policy/dnsbl.h"
#include "policy/reverse_dns.h"

/* Stop reading while this much of our output waits for a client that does not read its replies. */
#define SMTP_OUT_HIGH_WATER (64 * 1024)

static void session_on_stream(struct stream *st, enum stream_event ev, int status, const char *data,
                              size_t len);
static void session_process(struct smtp_session *s);
static void session_close(struct smtp_session *s);

static const char *const state_names[] = {
    [SMTP_STATE_TLS_WAIT] = "tls-wait",
    [SMTP_STATE_GREET_WAIT] = "greet-wait",
    [SMTP_STATE_CONNECTED] = "connected",
    [SMTP_STATE_READY] = "ready",
    [SMTP_STATE_MAIL_CHECK] = "mail-check",
    [SMTP_STATE_MAIL] = "mail",
    [SMTP_STATE_RCPT] = "rcpt",
    [SMTP_STATE_DATA] = "data",
    [SMTP_STATE_SCAN] = "scan",
    [SMTP_STATE_COMMIT] = "commit",
    [SMTP_STATE_STARTTLS] = "starttls",
    [SMTP_STATE_CLOSING] = "closing",
    [SMTP_STATE_AUTH] = "auth",
    [SMTP_STATE_AUTH_CHECK] = "auth-check",
};

void smtp_set_state(struct smtp_session *s, enum smtp_state state)
{
    struct logrec r;
    log_begin(&r, LOG_DEBUG, "smtp.state");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "from", state_names[s->state]);
    log_str(&r, "to", state_names[state]);
    log_end(&r);
    s->state = state;
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

    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.reply");
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
        session_close(s);
        return;
    }
    buf_free(&s->out);
}

void smtp_close_after_reply(struct smtp_session *s)
{
    smtp_tx_free(s);
    smtp_set_state(s, SMTP_STATE_CLOSING);
    smtp_pause_input(s);
    smtp_flush(s);
    if (!s->closed && s->stream.write_pending == 0)
        session_close(s);
    /* otherwise STREAM_DRAINED closes it */
}

int smtp_client_error(struct smtp_session *s)
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
    if (s->closed || s->state == SMTP_STATE_CLOSING)
        return;
    s->reading = 1;
    smtp_arm_timer(s); /* the client's deadline starts now, not while it waited for us */
    /* Process what is already buffered first: it may hold pipelined commands. */
    session_process(s);
    if (s->closed || !s->reading)
        return;
    if (!s->spool_paused && s->stream.write_pending < SMTP_OUT_HIGH_WATER)
        stream_read_start(&s->stream);
}

/* ---- timers ----
 *
 * Deadlines rather than idle timers, so a client trickling a byte at a time cannot hold a slot:
 * a command line must be complete within limits.command_timeout of the previous reply (the wait
 * for its first byte included); the message data within limits.data_deadline of the 354, with no
 * pause longer than limits.data_timeout; and after limits.session_lifetime the session ends at
 * its next command boundary. Never inside DATA: a message being sent is read, committed and
 * acknowledged first, then the 421 follows. One timer per session serves all of them. */

/* The session waits for a command line (or an AUTH response). */
static int awaiting_line(const struct smtp_session *s)
{
    return s->state == SMTP_STATE_CONNECTED || s->state == SMTP_STATE_READY ||
           s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT ||
           s->state == SMTP_STATE_AUTH;
}

static uint64_t ms_until(uint64_t now, uint64_t when)
{
    return when > now ? when - now : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static int lifetime_over(const struct smtp_session *s)
{
    return uv_now(s->srv->loop) >= s->lifetime_ends;
}

/* A deadline passed: 421 4.4.2 (RFC 3463 X.4.2, bad connection), and the session ends. An
 * uncommitted message is rolled back; a committed one has had its 250 already. */
static void session_expire(struct smtp_session *s, const char *limit, const char *what)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.timeout");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "state", state_names[s->state]);
    log_str(&r, "limit", limit);
    log_end(&r);
    smtp_reply(s, 421, "4.4.2", "%s Error: %s", s->cfg->server.hostname, what);
    smtp_close_after_reply(s);
}

static void timer_on_expire(uv_timer_t *t)
{
    struct smtp_session *s = container_of(t, struct smtp_session, timer);
    if (s->closed || s->state == SMTP_STATE_CLOSING)
        return;
    if (s->state == SMTP_STATE_DATA && uv_now(s->srv->loop) >= s->tx->data_deadline)
        session_expire(s, "limits.data_deadline", "message data took too long");
    else if (s->state == SMTP_STATE_DATA)
        session_expire(s, "limits.data_timeout", "timeout exceeded");
    else if (lifetime_over(s))
        session_expire(s, "limits.session_lifetime", "session lifetime exceeded");
    else
        session_expire(s, "limits.command_timeout", "timeout exceeded");
}

void smtp_arm_timer(struct smtp_session *s)
{
    if (s->closed)
        return;
    const struct config *cfg = s->cfg;
    uint64_t now = uv_now(s->srv->loop), ms;
    if (s->state == SMTP_STATE_DATA)
        ms = min_u64(cfg->limits.data_timeout_ms, ms_until(now, s->tx->data_deadline));
    else if (awaiting_line(s) || s->state == SMTP_STATE_TLS_WAIT || s->state == SMTP_STATE_STARTTLS)
        ms = min_u64(cfg->limits.command_timeout_ms, ms_until(now, s->lifetime_ends));
    else
        return; /* waiting for ourselves: a check, the spool, the wait before the banner */
    uv_timer_start(&s->timer, timer_on_expire, ms, 0);
}

/* ---- commands outside a transaction ---- */

static int arg_empty(struct smtp_slice arg)
{
    return arg.len == 0;
}

/* HELO/EHLO argument: a domain or address literal; we only insist on printable ASCII without
 * spaces, as it ends up in our Received: header. */
static int helo_arg_ok(struct smtp_slice arg)
{
    if (arg.len == 0 || arg.len > 255)
        return 0;
    for (size_t i = 0; i < arg.len; i++) {
        unsigned char c = (unsigned char)arg.ptr[i];
        if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '\\')
            return 0;
    }
    return 1;
}

/* Takes the HELO/EHLO argument. Returns 0, or -1 after replying 501: the session is then as it
 * was (a greeted session stays greeted, so the caller must not tell the state apart by it). */
static int greet(struct smtp_session *s, struct smtp_slice arg, int esmtp)
{
    if (!helo_arg_ok(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        smtp_client_error(s);
        return -1;
    }
    smtp_tx_free(s); /* RFC 5321 §4.1.4: EHLO/HELO resets the transaction */
    free(s->helo);
    s->helo = xstrndup(arg.ptr, arg.len);
    s->esmtp = esmtp;
    smtp_set_state(s, SMTP_STATE_READY);
    return 0;
}

static void cmd_helo(struct smtp_session *s, struct smtp_slice arg)
{
    if (greet(s, arg, 0) == 0)
        smtp_reply(s, 250, NULL, "%s", s->cfg->server.hostname);
}

static int starttls_offered(const struct smtp_session *s)
{
    return s->srv->tls_ctx != NULL && !s->tls && s->listener->tls != LISTENER_TLS_NONE;
}

static void cmd_ehlo(struct smtp_session *s, struct smtp_slice arg)
{
    if (greet(s, arg, 1) < 0)
        return;
    /* RFC 2034 §4: no enhanced status codes on the EHLO reply. */
    buf_printf(&s->out, "250-%s\r\n", s->cfg->server.hostname);
    buf_printf(&s->out, "250-PIPELINING\r\n");
    buf_printf(&s->out, "250-SIZE %llu\r\n", (unsigned long long)s->cfg->limits.max_message_size);
    if (starttls_offered(s))
        buf_printf(&s->out, "250-STARTTLS\r\n");
    if (smtp_auth_offered(s))
        buf_printf(&s->out, "250-AUTH PLAIN LOGIN\r\n");
    buf_printf(&s->out, "250-8BITMIME\r\n");
    buf_printf(&s->out, "250-ENHANCEDSTATUSCODES\r\n");
    buf_printf(&s->out, "250-SMTPUTF8\r\n");
    buf_printf(&s->out, "250 HELP\r\n");
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.reply");
    log_int(&r, "session", (long long)s->id);
    log_int(&r, "code", 250);
    log_str(&r, "text", "EHLO");
    log_end(&r);
}

static void cmd_rset(struct smtp_session *s, struct smtp_slice arg)
{
    if (!arg_empty(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: RSET");
        smtp_client_error(s);
        return;
    }
    smtp_tx_free(s);
    if (s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT)
        smtp_set_state(s, SMTP_STATE_READY);
    smtp_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct smtp_session *s, struct smtp_slice arg)
{
    smtp_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct smtp_session *s, struct smtp_slice arg)
{
    if (!arg_empty(arg)) { /* RFC 5321 §4.3.2: QUIT takes no argument */
        smtp_reply(s, 501, "5.5.4", "Syntax: QUIT");
        smtp_client_error(s);
        return;
    }
    smtp_reply(s, 221, "2.0.0", "Bye");
    smtp_close_after_reply(s);
}

static void cmd_vrfy(struct smtp_session *s, struct smtp_slice arg)
{
    if (arg_empty(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: VRFY address");
        smtp_client_error(s);
        return;
    }
    /* RFC 5321 §3.5.3: 252 tells nothing about whether the mailbox exists. */
    smtp_reply(s, 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, struct smtp_slice arg)
{
    smtp_reply(s, 502, "5.5.1", "EXPN not available");
    smtp_client_error(s);
}

static void cmd_help(struct smtp_session *s, struct smtp_slice arg)
{
    /* Only what this session may use now: STARTTLS and AUTH as the EHLO reply offers them. */
    smtp_reply(s, 214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s%s",
               starttls_offered(s) ? " STARTTLS" : "", smtp_auth_offered(s) ? " AUTH" : "");
}

static void cmd_bdat(struct smtp_session *s, struct smtp_slice arg)
{
    smtp_reply(s, 502, "5.5.1", "Error: CHUNKING not offered");
    smtp_client_error(s);
}

static void cmd_starttls(struct smtp_session *s, struct smtp_slice arg)
{
    if (!arg_empty(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
        smtp_client_error(s);
        return;
    }
    if (s->tls) {
        smtp_reply(s, 503, "5.5.1", "Error: TLS already active");
        smtp_client_error(s);
        return;
    }
    if (s->srv->tls_ctx == NULL || s->listener->tls == LISTENER_TLS_NONE) {
        smtp_reply(s, 454, "4.7.0", "TLS not available");
        return;
    }
    smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
    smtp_flush(s);
    /* RFC 3207 §4.2: the session starts again from nothing (no HELO, no AUTH, no transaction).
     * What the client sent after STARTTLS in clear is dropped by process_chunk (CVE-2011-0411). */
    smtp_tx_free(s);
    free(s->helo);
    s->helo = NULL;
    free(s->auth_user); /* AUTH needs TLS, so this is NULL today; the reset must not depend on it */
    s->auth_user = NULL;
    s->esmtp = 0;
    smtp_set_state(s, SMTP_STATE_STARTTLS);
    smtp_arm_timer(s); /* the handshake has command_timeout */
    if (stream_tls_server(&s->stream, s->srv->tls_ctx) < 0)
        session_close(s);
}

/* ---- dispatch ---- */

#define CMD_NEEDS_HELO 0x01 /* 503 before HELO/EHLO */
/* RFC 2920 §3.1: the client must wait for this command's reply before it sends more, as the
 * reply changes what may follow (QUIT is left out: we close after it anyway). */
#define CMD_LAST_IN_GROUP 0x02

struct smtp_command {
    enum smtp_verb verb;
    unsigned flags;
    void (*handle)(struct smtp_session *s, struct smtp_slice arg);
};

static const struct smtp_command commands[] = {
    {SMTP_VERB_HELO, CMD_LAST_IN_GROUP, cmd_helo},
    {SMTP_VERB_EHLO, CMD_LAST_IN_GROUP, cmd_ehlo},
    {SMTP_VERB_MAIL, CMD_NEEDS_HELO, smtp_cmd_mail},
    {SMTP_VERB_RCPT, CMD_NEEDS_HELO, smtp_cmd_rcpt},
    {SMTP_VERB_DATA, CMD_NEEDS_HELO | CMD_LAST_IN_GROUP, smtp_cmd_data},
    {SMTP_VERB_BDAT, CMD_NEEDS_HELO, cmd_bdat},
    {SMTP_VERB_RSET, 0, cmd_rset},
    {SMTP_VERB_NOOP, CMD_LAST_IN_GROUP, cmd_noop},
    {SMTP_VERB_QUIT, 0, cmd_quit},
    {SMTP_VERB_VRFY, CMD_LAST_IN_GROUP, cmd_vrfy},
    {SMTP_VERB_EXPN, CMD_LAST_IN_GROUP, cmd_expn},
    {SMTP_VERB_HELP, 0, cmd_help},
    {SMTP_VERB_STARTTLS, CMD_NEEDS_HELO, cmd_starttls},
    {SMTP_VERB_AUTH, CMD_NEEDS_HELO, smtp_cmd_auth},
};

/* Inbound: a command followed by more input in the same read was sent before its reply came back.
 * That is pipelining, allowed only after EHLO offered PIPELINING and never after a command that
 * must end a group (a client that sends the message before 354 is the classic case: if DATA
 * fails, the message is read as commands). Postfix's smtpd answers "554 5.5.0" and postscreen
 * 521; we answer 554 5.5.0 and close: the client is out of step with us, so nothing it has
 * queued can be trusted to mean what it meant. */
static int improper_pipelining(struct smtp_session *s, const struct smtp_command *c, int followed)
{
    if (!s->inbound || !followed || (s->esmtp && !(c->flags & CMD_LAST_IN_GROUP)))
        return 0;
    const char *text = "Error: improper command pipelining";
    smtp_reply(s, 554, "5.5.0", "%s", text);
    smtp_log_rejected(s, "command", 554, text, "pipelining", NULL);
    smtp_close_after_reply(s);
    return 1;
}

/* Runs one command line; `followed` says more input came after it in the same read. */
static void dispatch(struct smtp_session *s, const char *line, size_t len, int followed)
{
    struct smtp_cmd cmd;
    if (smtp_cmd_parse(line, len, &cmd) < 0 || cmd.verb == SMTP_VERB_UNKNOWN) {
        smtp_reply(s, 500, "5.5.2", "Error: command not recognized");
        smtp_client_error(s);
        return;
    }
    if (s->srv->stopping && s->tx == NULL && cmd.verb != SMTP_VERB_QUIT) {
        smtp_reply(s, 421, "4.3.2", "%s Service shutting down", s->cfg->server.hostname);
        smtp_close_after_reply(s);
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        if (commands[i].verb != cmd.verb)
            continue;
        if (improper_pipelining(s, &commands[i], followed))
            return;
        if ((commands[i].flags & CMD_NEEDS_HELO) && s->helo == NULL) {
            smtp_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
            smtp_client_error(s);
            return;
        }
        commands[i].handle(s, cmd.arg);
        return;
    }
    smtp_reply(s, 502, "5.5.1", "Error: command not implemented");
    smtp_client_error(s);
}

/* Handles one chunk of input; returns how many bytes it used. It stops early when the session
 * leaves a state in which it reads (a commit, TLS, closing, backpressure). */
static size_t process_chunk(struct smtp_session *s, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->reading && !s->closed) {
        if (s->state == SMTP_STATE_DATA) {
            used += smtp_tx_data_feed(s, data + used, len - used);
            if (awaiting_line(s))
                smtp_arm_timer(s); /* refused at the final dot: the next command's deadline */
            continue;
        }
        if (!awaiting_line(s))
            break;
        const char *line;
        size_t line_len, consumed;
        enum line_result res =
            linereader_next(&s->lines, data + used, len - used, &line, &line_len, &consumed);
        used += consumed;
        if (res == LINE_NEED_MORE)
            break; /* a partial line does not move the deadline */
        if (lifetime_over(s)) {
            session_expire(s, "limits.session_lifetime", "session lifetime exceeded");
            break;
        }
        if (s->state == SMTP_STATE_AUTH) {
            smtp_auth_line(s, res, line, line_len); /* a response to 334, never a command */
        } else if (res == LINE_TOO_LONG) {
            smtp_reply(s, 500, "5.5.2", "Error: line too long");
            smtp_client_error(s);
        } else if (res == LINE_BAD_EOL) {
            smtp_reply(s, 500, "5.5.2",
                       "Error: bare <CR> or <LF> received; lines end with <CR><LF>");
            smtp_client_error(s);
        } else {
            dispatch(s, line, line_len, used < len);
            if (s->state == SMTP_STATE_STARTTLS)
                return len; /* plaintext pipelined after STARTTLS is never executed */
        }
        if (!s->closed && awaiting_line(s))
            smtp_arm_timer(s); /* the line is answered: the next one's deadline starts */
        if (s->stream.write_pending + s->out.len > SMTP_OUT_HIGH_WATER)
            break; /* the client is not reading its replies: stop until they drain */
    }
    return used;
}

/* Works through s->in. */
static void session_process(struct smtp_session *s)
{
    if (s->in.len > 0) {
        size_t used = process_chunk(s, s->in.data, s->in.len);
        buf_consume(&s->in, used);
    }
    smtp_flush(s);
    if (!s->closed && s->state != SMTP_STATE_CLOSING &&
        s->stream.write_pending > SMTP_OUT_HIGH_WATER)
        stream_read_stop(&s->stream);
}

/* Inbound, pregreet test: a client that talks before the banner is not a mail program waiting for
 * its turn (postscreen's pregreet test). */
static void session_on_pregreet(struct smtp_session *s)
{
    const char *text = "protocol error: talking before the banner";
    smtp_reply(s, 554, "5.5.1", "%s", text);
    smtp_log_rejected(s, "connect", 554, text, "pregreet", NULL);
    smtp_close_after_reply(s);
}

static void session_on_data(struct smtp_session *s, const char *data, size_t len)
{
    if (s->state == SMTP_STATE_GREET_WAIT) {
        session_on_pregreet(s);
        return;
    }
    if (!s->reading) {
        buf_append(&s->in, data, len); /* kept for when we read again */
        return;
    }
    if (s->state == SMTP_STATE_DATA)
        smtp_arm_timer(s); /* data_timeout limits each pause, within the data deadline */
    if (s->in.len > 0) {
        buf_append(&s->in, data, len);
        session_process(s);
        return;
    }
    /* Nothing buffered: work on the borrowed bytes and keep only the rest. */
    size_t used = process_chunk(s, data, len);
    if (used < len && !s->closed)
        buf_append(&s->in, data + used, len - used);
    smtp_flush(s);
    if (!s->closed && s->stream.write_pending > SMTP_OUT_HIGH_WATER)
        stream_read_stop(&s->stream);
    /* A command line can never grow past the line cap (the line reader drops it); in other states
     * we stop reading, so s->in holds at most one read. */
}

static void send_banner(struct smtp_session *s)
{
    smtp_set_state(s, SMTP_STATE_CONNECTED);
    smtp_reply(s, 220, NULL, "%s ESMTP Sluice", s->cfg->server.hostname);
    smtp_flush(s);
    smtp_arm_timer(s);
    s->reading = 1;
    stream_read_start(&s->stream);
}

/* ---- inbound: before the banner ---- */

static int connect_checks_pending(const struct smtp_session *s)
{
    return (s->dnsbl != NULL && !s->dnsbl_done) || (s->rdns != NULL && !s->rdns_done);
}

/* The banner waits for inbound.pregreet_wait, and for the DNSBL and reverse DNS answers (at most
 * dns.timeout), so their verdicts are ready at the first RCPT. */
static void greet_wait_on_timer(uv_timer_t *t);

static void greet_maybe(struct smtp_session *s)
{
    if (s->closed || s->state != SMTP_STATE_GREET_WAIT)
        return;
    uint64_t wait = s->cfg->inbound.pregreet_wait_ms;
    if (connect_checks_pending(s) && s->cfg->dns.timeout_ms > wait)
        wait = s->cfg->dns.timeout_ms;
    uint64_t elapsed = uv_now(s->srv->loop) - s->connected_at;
    if (elapsed >= wait) {
        send_banner(s);
        return;
    }
    uv_timer_start(&s->timer, greet_wait_on_timer, wait - elapsed, 0);
}

static void greet_wait_on_timer(uv_timer_t *t)
{
    greet_maybe(container_of(t, struct smtp_session, timer));
}

static void dnsbl_on_result(void *arg, const struct dnsbl_result *res)
{
    struct smtp_session *s = arg;
    s->dnsbl_done = 1;
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.dnsbl");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_int(&r, "listed", res->listed);
    log_int(&r, "score", res->score);
    for (size_t i = 0; i < res->nhits; i++)
        log_str(&r, "zone", res->hits[i].zone);
    log_end(&r);
    greet_maybe(s);
}

static void rdns_on_result(void *arg, const struct reverse_dns_result *res)
{
    struct smtp_session *s = arg;
    s->rdns_done = 1;
    s->rdns_verdict = reverse_dns_verdict(res, s->cfg->inbound.reverse_dns);
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.reverse_dns");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "status", reverse_dns_status_name(res->status));
    if (res->name != NULL)
        log_str(&r, "name", res->name);
    log_end(&r);
    greet_maybe(s);
}

static void connect_check_failed(struct smtp_session *s, const char *check, int rc)
{
    struct logrec r;
    log_begin(&r, LOG_WARN, "smtp.check_failed");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "check", check);
    log_str(&r, "error", strerror(-rc));
    log_end(&r);
}

/* Starts the connect-time lookups of an inbound session. Without a resolver (the daemon is
 * stopping) RCPT answers 451 4.4.3. A check that cannot start is settled here: a DNSBL as not
 * listing (a list outage must not stop mail), reverse DNS as a temporary failure (450 at RCPT). */
static void connect_checks_start(struct smtp_session *s)
{
    const struct config *cfg = s->cfg;
    const struct sockaddr *peer = (const struct sockaddr *)&s->peer;
    int rc = 0;
    if (s->srv->dns == NULL) {
        s->no_resolver = cfg->inbound.ndnsbl > 0 || cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE;
        return;
    }
    if (cfg->inbound.ndnsbl > 0) {
        if ((rc = dnsbl_check_start(s->srv->dns, cfg->inbound.dnsbl, cfg->inbound.ndnsbl,
                                    cfg->inbound.dnsbl_threshold, peer, dnsbl_on_result, s,
                                    &s->dnsbl)) < 0) {
            connect_check_failed(s, "dnsbl", rc);
            s->dnsbl_done = 1;
        }
    }
    rc = 0;
    if (cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE) {
        if ((rc = reverse_dns_check_start(s->srv->dns, peer, rdns_on_result, s, &s->rdns)) < 0) {
            connect_check_failed(s, "reverse_dns", rc);
            struct reverse_dns_result failed = {.status = REVERSE_DNS_TEMPFAIL};
            s->rdns_verdict = reverse_dns_verdict(&failed, cfg->inbound.reverse_dns);
            s->rdns_done = 1;
        }
    }
}

/* The banner, or for an inbound session first the checks and waits before it. */
static void session_greet(struct smtp_session *s)
{
    if (!s->inbound) {
        send_banner(s);
        return;
    }
    s->connected_at = uv_now(s->srv->loop);
    connect_checks_start(s);
    smtp_set_state(s, SMTP_STATE_GREET_WAIT);
    if (s->cfg->inbound.pregreet_wait_ms > 0) {
        s->reading = 1; /* anything the client sends now fails the pregreet test */
        stream_read_start(&s->stream);
    }
    greet_maybe(s);
}

/* Inbound, inbound.max_connections_per_client: live sessions from the client's address, this one
 * included. The session list is bounded by limits.max_connections. */
static unsigned sessions_from(const struct smtp_server *srv, const char *client_addr)
{
    unsigned n = 0;
    for (const struct smtp_session *o = srv->sessions; o != NULL; o = o->next)
        n += strcmp(o->client_addr, client_addr) == 0;
    return n;
}

/* Clients whose connection rate is tracked; the least recently connecting one makes room. */
#define CONNECTION_RATE_CLIENTS 65536

/* Inbound, inbound.max_connection_rate_per_client: takes a token from the client's bucket (burst =
 * count, so a client may open `count` connections at once and then `count` per period). Returns 0
 * when the client is over its rate. IPv6 clients share the bucket of their /64 (client_table.h). */
static int connection_rate_ok(struct smtp_server *srv, const struct smtp_session *s)
{
    const struct config_rate *cfg_rate = &s->cfg->inbound.max_connection_rate_per_client;
    if (cfg_rate->count == 0)
        return 1;
    if (srv->connection_rates == NULL)
        srv->connection_rates =
            client_table_new(CONNECTION_RATE_CLIENTS, sizeof(struct ratelimit_bucket));
    struct ratelimit_rate rate = {cfg_rate->count, cfg_rate->period_ms};
    uint64_t now = uv_now(srv->loop);
    int created;
    struct ratelimit_bucket *b =
        client_table_get(srv->connection_rates, (const struct sockaddr *)&s->peer, &created);
    if (b == NULL)
        return 1;
    /* A reload may have changed the rate: the client starts afresh under the new one. */
    if (created || b->rate.count != rate.count || b->rate.period_ms != rate.period_ms)
        ratelimit_bucket_init(b, rate, rate.count, now, RATELIMIT_START_FULL);
    return ratelimit_bucket_take(b, 1, now);
}

static void session_on_tls_ready(struct smtp_session *s, int status)
{
    if (status < 0) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "smtp.tls_failed");
        log_int(&r, "session", (long long)s->id);
        log_str(&r, "error", uv_strerror(status));
        log_end(&r);
        session_close(s);
        return;
    }
    s->tls = 1;
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.tls");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "version", stream_tls_version(&s->stream));
    log_str(&r, "cipher", stream_tls_cipher(&s->stream));
    log_end(&r);
    if (s->state == SMTP_STATE_TLS_WAIT) {
        session_greet(s);
        return;
    }
    smtp_set_state(s, SMTP_STATE_CONNECTED);
    smtp_arm_timer(s);
    s->reading = 1;
    stream_read_start(&s->stream);
}

static void session_on_stream(struct stream *st, enum stream_event ev, int status, const char *data,
                              size_t len)
{
    struct smtp_session *s = st->owner;
    if (s->closed)
        return;
    switch (ev) {
    case STREAM_DATA:
        session_on_data(s, data, len);
        break;
    case STREAM_TLS_READY:
        session_on_tls_ready(s, status);
        break;
    case STREAM_DRAINED:
        if (s->state == SMTP_STATE_CLOSING)
            session_close(s);
        else if (s->reading && !s->spool_paused && s->in.len > 0)
            smtp_resume_input(s); /* commands held while the client did not read its replies */
        else if (s->reading && !s->spool_paused)
            stream_read_start(&s->stream);
        break;
    case STREAM_EOF:
    case STREAM_ERROR:
    case STREAM_CONNECTED:
        session_close(s);
        break;
    }
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

static void session_close(struct smtp_session *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    s->reading = 0;
    smtp_tx_free(s); /* rolls back an uncommitted message */
    smtp_auth_close(s);
    dnsbl_check_free(s->dnsbl); /* cancels lookups in flight */
    s->dnsbl = NULL;
    reverse_dns_check_free(s->rdns);
    s->rdns = NULL;

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
    log_str(&r, "state", state_names[s->state]);
    log_end(&r);

    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, session_on_handle_closed);
    stream_close(&s->stream, session_on_stream_closed);
}

static void peer_to_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
    out[0] = '\0';
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)size);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)size);
    }
}

static const struct config_listener *listener_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    return NULL;
}

void smtp_session_accept(struct smtp_server *srv, uv_stream_t *listen_handle,
                         const char *listener_name)
{
    struct smtp_session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->cfg = config_ref(srv->cfg);
    s->listener = listener_find(s->cfg, listener_name);
    s->id = ++srv->next_session_id;
    s->lifetime_ends = uv_now(srv->loop) + s->cfg->limits.session_lifetime_ms;
    s->pending = 2; /* the stream and the timer */
    linereader_init(&s->lines, SMTP_CMD_LINE_MAX);
    uv_timer_init(srv->loop, &s->timer);

    s->next = srv->sessions;
    if (s->next != NULL)
        s->next->prev = s;
    srv->sessions = s;
    srv->nsessions++;

    int rc = stream_accept(srv->loop, listen_handle, &s->stream, session_on_stream, s);
    if (rc < 0 || s->listener == NULL) {
        log_msg(LOG_WARN, "smtp.accept_failed", "%s", rc < 0 ? uv_strerror(rc) : "listener gone");
        session_close(s);
        return;
    }
    int len = sizeof s->peer;
    uv_tcp_getpeername(&s->stream.tcp, (struct sockaddr *)&s->peer, &len);
    peer_to_text(&s->peer, s->client_addr, sizeof s->client_addr);

    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.connect");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_str(&r, "listener", s->listener->name);
    log_end(&r);

    if (srv->nsessions > s->cfg->limits.max_connections || srv->stopping) {
        smtp_reply(s, 421, "4.7.0", "%s Too many connections, try again later",
                   s->cfg->server.hostname);
        smtp_close_after_reply(s);
        return;
    }
    s->inbound = s->listener->role == LISTENER_INBOUND;
    unsigned per_client = s->cfg->inbound.max_connections_per_client;
    if (s->inbound && per_client > 0 && sessions_from(srv, s->client_addr) > per_client) {
        const char *text = "too many connections from your address";
        smtp_reply(s, 421, "4.7.0", "%s", text);
        smtp_log_rejected(s, "connect", 421, text, "client_limit", NULL);
        smtp_close_after_reply(s);
        return;
    }
    if (s->inbound && !connection_rate_ok(srv, s)) {
        const char *text = "too many connections from your address, try again later";
        smtp_reply(s, 421, "4.7.0", "%s %s", s->cfg->server.hostname, text);
        smtp_log_rejected(s, "connect", 421, text, "client_rate", NULL);
        smtp_close_after_reply(s);
        return;
    }
    if (s->listener->tls == LISTENER_TLS_IMPLICIT) {
        s->state = SMTP_STATE_TLS_WAIT;
        smtp_arm_timer(s);
        if (srv->tls_ctx == NULL || stream_tls_server(&s->stream, srv->tls_ctx) < 0)
            session_close(s);
        return;
    }
    session_greet(s);
}

void smtp_server_stop(struct smtp_server *srv)
{
    srv->stopping = 1;
    client_table_free(srv->connection_rates); /* no connection is let in from now on */
    srv->connection_rates = NULL;
    struct smtp_session *s = srv->sessions;
    while (s != NULL) {
        struct smtp_session *next = s->next;
        if (s->tx == NULL && s->state != SMTP_STATE_CLOSING) {
            smtp_reply(s, 421, "4.3.2", "%s Service shutting down", s->cfg->server.hostname);
            smtp_close_after_reply(s);
        }
        s = next;
    }
    if (srv->nsessions == 0 && srv->on_drained != NULL)
        srv->on_drained(srv);
}

void smtp_server_close_all(struct smtp_server *srv)
{
    srv->stopping = 1;
    while (srv->sessions != NULL)
        session_close(srv->sessions);
}
