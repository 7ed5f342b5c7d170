/*
 * Inbound SMTP: the top of a session. The listener hands it the accepted socket; input arrives as
 * STREAM_DATA, is split into command lines (or fed to the DATA decoder) and dispatched through one
 * command table that says in which phases each command is allowed. The layers below
 * (smtp_session.h) reply, keep the state and the deadlines; every state change goes through
 * smtp_set_state.
 */
#include "mta/server/smtp_session.h"
#include "mta/server/smtp_auth.h"
#include "mta/server/smtp_greet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/client_table.h"
#include "lib/log.h"
#include "lib/ratelimit.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

static void session_on_stream(struct stream *st, enum stream_event ev, int status, const char *data,
                              size_t len);
static void session_process(struct smtp_session *s);

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
        smtp_peer_error(s);
        return -1;
    }
    smtp_tx_free(s); /* RFC 5321 §4.1.4: EHLO/HELO resets the transaction */
    free(s->helo);
    s->helo = xstrndup(arg.ptr, arg.len);
    s->esmtp = esmtp;
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
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
    buf_printf(&s->out, "250-CHUNKING\r\n");
    buf_printf(&s->out, "250-BINARYMIME\r\n");
    buf_printf(&s->out, "250-DSN\r\n");
    buf_printf(&s->out, "250-ENHANCEDSTATUSCODES\r\n");
    buf_printf(&s->out, "250-SMTPUTF8\r\n");
    buf_printf(&s->out, "250 HELP\r\n");
    struct logrec r;
    log_begin(&r, LOG_DEBUG, "smtp.reply");
    log_int(&r, "session", (long long)s->id);
    log_int(&r, "code", 250);
    log_str(&r, "text", "EHLO");
    log_end(&r);
}

static void cmd_rset(struct smtp_session *s, struct smtp_slice arg)
{
    if (!arg_empty(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: RSET");
        smtp_peer_error(s);
        return;
    }
    smtp_tx_free(s);
    if (s->phase != SMTP_PHASE_CONNECTED)
        smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
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
        smtp_peer_error(s);
        return;
    }
    smtp_reply(s, 221, "2.0.0", "Bye");
    smtp_close_after_reply(s);
}

static void cmd_vrfy(struct smtp_session *s, struct smtp_slice arg)
{
    if (arg_empty(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: VRFY address");
        smtp_peer_error(s);
        return;
    }
    /* RFC 5321 §3.5.3: 252 tells nothing about whether the mailbox exists. */
    smtp_reply(s, 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, struct smtp_slice arg)
{
    smtp_reply(s, 502, "5.5.1", "EXPN not available");
    smtp_peer_error(s);
}

static void cmd_help(struct smtp_session *s, struct smtp_slice arg)
{
    /* Only what this session may use now: STARTTLS and AUTH as the EHLO reply offers them. */
    smtp_reply(s, 214, "2.0.0",
               "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s%s",
               starttls_offered(s) ? " STARTTLS" : "", smtp_auth_offered(s) ? " AUTH" : "");
}

static void cmd_starttls(struct smtp_session *s, struct smtp_slice arg)
{
    if (!arg_empty(arg)) {
        smtp_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
        smtp_peer_error(s);
        return;
    }
    if (s->tls) {
        smtp_reply(s, 503, "5.5.1", "Error: TLS already active");
        smtp_peer_error(s);
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
    smtp_set_state(s, SMTP_PHASE_CONNECTED, SMTP_WAIT_STARTTLS);
    smtp_arm_timer(s); /* the handshake has command_timeout */
    if (stream_tls_server(&s->stream, s->srv->tls_ctx) < 0)
        smtp_session_close(s);
}

/* ---- dispatch ---- */

/* RFC 2920 §3.1: the client must wait for this command's reply before it sends more, as the
 * reply changes what may follow (QUIT is left out: we close after it anyway). */
#define CMD_LAST_IN_GROUP 0x01

/* The phases in which commands are read, as bits of smtp_command.phases. */
#define IN(phase) (1u << SMTP_PHASE_##phase)
#define ANY_PHASE (IN(CONNECTED) | IN(GREETED) | IN(MAIL) | IN(RCPT) | IN(BDAT))
#define GREETED_ON (IN(GREETED) | IN(MAIL) | IN(RCPT)) /* RFC 5321 §4.1.4: after HELO/EHLO */

struct smtp_command {
    enum smtp_verb verb;
    unsigned phases; /* where it is allowed; elsewhere phase_refuse answers */
    unsigned flags;
    /* NULL, or what the command needs besides its phase (that it is offered, its argument),
     * looked at once the session is greeted and before the phase: 0, or -1 after replying. */
    int (*check)(struct smtp_session *s, struct smtp_slice arg);
    void (*handle)(struct smtp_session *s, struct smtp_slice arg);
    const char *in_transaction; /* 503 text when it comes inside a transaction */
};

static const struct smtp_command commands[] = {
    {SMTP_VERB_HELO, ANY_PHASE, CMD_LAST_IN_GROUP, NULL, cmd_helo, NULL},
    {SMTP_VERB_EHLO, ANY_PHASE, CMD_LAST_IN_GROUP, NULL, cmd_ehlo, NULL},
    {SMTP_VERB_MAIL, IN(GREETED), 0, NULL, smtp_cmd_mail, "Error: nested MAIL command"},
    {SMTP_VERB_RCPT, IN(MAIL) | IN(RCPT), 0, NULL, smtp_cmd_rcpt, NULL},
    {SMTP_VERB_DATA, IN(RCPT), CMD_LAST_IN_GROUP, smtp_data_check, smtp_cmd_data, NULL},
    /* Every phase that reads commands: its chunk follows whatever the answer (smtp_chunking.c) */
    {SMTP_VERB_BDAT, ANY_PHASE, 0, NULL, smtp_cmd_bdat, NULL},
    {SMTP_VERB_RSET, ANY_PHASE, 0, NULL, cmd_rset, NULL},
    {SMTP_VERB_NOOP, ANY_PHASE, CMD_LAST_IN_GROUP, NULL, cmd_noop, NULL},
    {SMTP_VERB_QUIT, ANY_PHASE, 0, NULL, cmd_quit, NULL},
    {SMTP_VERB_VRFY, ANY_PHASE, CMD_LAST_IN_GROUP, NULL, cmd_vrfy, NULL},
    {SMTP_VERB_EXPN, ANY_PHASE, CMD_LAST_IN_GROUP, NULL, cmd_expn, NULL},
    {SMTP_VERB_HELP, ANY_PHASE, 0, NULL, cmd_help, NULL},
    {SMTP_VERB_STARTTLS, GREETED_ON, 0, NULL, cmd_starttls, NULL},
    {SMTP_VERB_AUTH, IN(GREETED), 0, smtp_auth_check, smtp_cmd_auth,
     "Error: MAIL transaction in progress"},
};

/* For a command that needs a later phase than the session's: what is missing first. */
static const char *const missing[] = {
    [SMTP_PHASE_CONNECTED] = "Error: send HELO/EHLO first",
    [SMTP_PHASE_GREETED] = "Error: need MAIL command",
    [SMTP_PHASE_MAIL] = "Error: need RCPT command",
    [SMTP_PHASE_BDAT] = "Error: BDAT chunks in progress: BDAT LAST or RSET first",
};

/* A command outside the phases it is allowed in: the one place for those 503s. It comes either
 * inside a transaction when it belongs outside, or before the phase it needs: the text says what
 * is missing. RFC 2920 §3.1: DATA after recipients that were all refused is 554. */
static void phase_refuse(struct smtp_session *s, const struct smtp_command *c)
{
    if (s->phase == SMTP_PHASE_MAIL && c->verb == SMTP_VERB_DATA && s->tx->nrcpts_rejected > 0)
        smtp_reply(s, 554, "5.5.1", "Error: no valid recipients");
    else if (c->in_transaction != NULL && s->tx != NULL)
        smtp_reply(s, 503, "5.5.1", "%s", c->in_transaction);
    else
        smtp_reply(s, 503, "5.5.1", "%s", missing[s->phase]);
    smtp_peer_error(s);
}

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
        smtp_peer_error(s);
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
        const struct smtp_command *c = &commands[i];
        if (improper_pipelining(s, c, followed))
            return;
        int allowed = (c->phases & (1u << s->phase)) != 0;
        /* Before HELO/EHLO nothing else about the command is looked at. */
        if (!allowed && s->phase == SMTP_PHASE_CONNECTED) {
            phase_refuse(s, c);
            return;
        }
        if (c->check != NULL && c->check(s, cmd.arg) < 0)
            return;
        if (!allowed) {
            phase_refuse(s, c);
            return;
        }
        c->handle(s, cmd.arg);
        return;
    }
    smtp_reply(s, 502, "5.5.1", "Error: command not implemented");
    smtp_peer_error(s);
}

/* Handles one chunk of input; returns how many bytes it used. It stops early when the session
 * stops reading (it waits for something, closes, or a sink or the client holds it back). */
static size_t process_chunk(struct smtp_session *s, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->reading && !s->closed) {
        enum smtp_input input = smtp_session_input(s);
        size_t (*feed)(struct smtp_session *, const char *, size_t) =
            input == SMTP_INPUT_MESSAGE   ? smtp_tx_data_feed
            : input == SMTP_INPUT_CHUNK   ? smtp_tx_chunk_feed
            : input == SMTP_INPUT_DISCARD ? smtp_discard_feed
                                          : NULL;
        if (feed != NULL) {
            used += feed(s, data + used, len - used);
            if (smtp_awaiting_line(s))
                smtp_arm_timer(s); /* the end of a message or chunk: the next command's deadline */
            continue;
        }
        if (input == SMTP_INPUT_NONE)
            break;
        const char *line;
        size_t line_len, consumed;
        enum line_result res =
            linereader_next(&s->lines, data + used, len - used, &line, &line_len, &consumed);
        used += consumed;
        if (res == LINE_NEED_MORE)
            break; /* a partial line does not move the deadline */
        if (smtp_lifetime_over(s)) {
            smtp_session_expire(s, "limits.session_lifetime", "session lifetime exceeded");
            break;
        }
        if (input == SMTP_INPUT_RESPONSE) {
            smtp_auth_line(s, res, line, line_len); /* a response to 334, never a command */
        } else if (res == LINE_TOO_LONG) {
            smtp_reply(s, 500, "5.5.2", "Error: line too long");
            smtp_peer_error(s);
        } else if (res == LINE_BAD_EOL) {
            smtp_reply(s, 500, "5.5.2",
                       "Error: bare <CR> or <LF> received; lines end with <CR><LF>");
            smtp_peer_error(s);
        } else {
            s->ahead = (struct smtp_slice){data + used, len - used};
            dispatch(s, line, line_len, used < len);
            s->ahead = (struct smtp_slice){NULL, 0};
            if (smtp_session_drops_input(s))
                return len; /* e.g. plaintext pipelined after STARTTLS is never executed */
        }
        if (!s->closed && smtp_awaiting_line(s))
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
    if (!s->closed && s->phase != SMTP_PHASE_CLOSING &&
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
    if (s->wait == SMTP_WAIT_BANNER) {
        session_on_pregreet(s);
        return;
    }
    if (!s->reading) {
        buf_append(&s->in, data, len); /* kept for when we read again */
        return;
    }
    if (smtp_reading_message(s))
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
        smtp_session_close(s);
        return;
    }
    s->tls = 1;
    struct logrec r;
    log_begin(&r, LOG_INFO, "smtp.tls");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "version", stream_tls_version(&s->stream));
    log_str(&r, "cipher", stream_tls_cipher(&s->stream));
    log_end(&r);
    if (s->wait == SMTP_WAIT_TLS) {
        smtp_greet_start(s);
        return;
    }
    smtp_set_state(s, SMTP_PHASE_CONNECTED, SMTP_WAIT_NONE);
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
        if (s->phase == SMTP_PHASE_CLOSING)
            smtp_session_close(s);
        else if (s->reading && !s->sinks_paused && s->in.len > 0)
            smtp_resume_input(s); /* commands held while the client did not read its replies */
        else if (s->reading && !s->sinks_paused)
            stream_read_start(&s->stream);
        break;
    case STREAM_EOF:
    case STREAM_ERROR:
    case STREAM_CONNECTED:
        smtp_session_close(s);
        break;
    }
}

/* ---- what the connection asks of this layer ---- */

/* The connection is closing: whatever is in flight is dropped, an uncommitted message rolled
 * back. */
static void session_release(struct smtp_session *s)
{
    smtp_tx_free(s);
    smtp_auth_close(s);
    smtp_greet_close(s);
}

static const struct smtp_session_ops session_ops = {
    .process = session_process,
    .drop_transaction = smtp_tx_free,
    .release = session_release,
};

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
    s->ops = &session_ops;
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
        smtp_session_close(s);
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
        s->wait = SMTP_WAIT_TLS; /* the phase starts at 0: connected */
        smtp_arm_timer(s);
        if (srv->tls_ctx == NULL || stream_tls_server(&s->stream, srv->tls_ctx) < 0)
            smtp_session_close(s);
        return;
    }
    smtp_greet_start(s);
}

void smtp_server_stop(struct smtp_server *srv)
{
    srv->stopping = 1;
    client_table_free(srv->connection_rates); /* no connection is let in from now on */
    srv->connection_rates = NULL;
    struct smtp_session *s = srv->sessions;
    while (s != NULL) {
        struct smtp_session *next = s->next;
        if (s->tx == NULL && s->phase != SMTP_PHASE_CLOSING) {
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
        smtp_session_close(srv->sessions);
}
