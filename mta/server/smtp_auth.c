/*
 * The AUTH exchange. AUTH picks a mechanism and may carry an initial response; otherwise the
 * client answers 334 challenges, one line each. Once the name and password are known the check
 * goes to the thread pool (crypt(3) is slow on purpose) and the session stops reading; the answer
 * is then held back for clients with recent failures, and a failure counts as a session error.
 *
 * The chain, in firing order: smtp_cmd_auth -> [smtp_auth_line ...] -> check_start ->
 * check_on_work (thread pool) -> check_on_done -> [delay_on_expire] -> check_finish.
 */
#include "mta/server/smtp_auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/server/smtp_session.h"
#include "policy/auth_users.h"

enum auth_mech { AUTH_MECH_PLAIN, AUTH_MECH_LOGIN };
static const char *const mech_names[] = {[AUTH_MECH_PLAIN] = "PLAIN", [AUTH_MECH_LOGIN] = "LOGIN"};

/* One exchange, from AUTH to the answer. Owned by the session (s->auth) until the check starts;
 * from then on also by the thread pool work and the delay timer, and freed by whichever of
 * check_on_done / the timer's close callback comes last for it. */
struct smtp_auth {
    struct smtp_session *s;
    enum auth_mech mech;
    unsigned step; /* LOGIN: 0 waits for the name, 1 for the password */
    char *user;    /* as the client sent it (validated only by the lookup) */
    size_t user_len;
    char *password; /* wiped as soon as the check is done */
    size_t password_len;
    char *hash;      /* a copy: a reload may swap the users table while the check runs */
    int other_authz; /* PLAIN asked to act as somebody else: always fails */
    int known;       /* the user exists and other_authz is 0 */
    int ok;          /* written by the worker thread, read after check_on_done */
    uint64_t delay_ms;
    uv_work_t work;
    uv_timer_t delay;
    unsigned checking : 1; /* work queued, check_on_done not run yet */
    unsigned delaying : 1; /* delay timer initialized: freed from its close callback */
};

static void check_start(struct smtp_session *s);
static void check_on_work(uv_work_t *req);
static void check_on_done(uv_work_t *req, int status);
static void delay_on_expire(uv_timer_t *t);
static void check_finish(struct smtp_auth *a);

/* ---- helpers ---- */

static void wipe_free(char *p, size_t len)
{
    if (p == NULL)
        return;
    explicit_bzero(p, len);
    free(p);
}

static void auth_free(struct smtp_auth *a)
{
    wipe_free(a->user, a->user_len);
    wipe_free(a->password, a->password_len);
    free(a->hash);
    free(a);
}

static void auth_on_timer_closed(uv_handle_t *h)
{
    struct smtp_auth *a = container_of((uv_timer_t *)h, struct smtp_auth, delay);
    struct smtp_session *s = a->s;
    auth_free(a);
    smtp_session_unref(s);
}

/* Frees an exchange whose check has run; drops the session reference the check held. */
static void auth_release(struct smtp_auth *a)
{
    if (a->delaying) {
        uv_close((uv_handle_t *)&a->delay, auth_on_timer_closed);
        return;
    }
    struct smtp_session *s = a->s;
    auth_free(a);
    smtp_session_unref(s);
}

/* Leaves the exchange before any check (cancel, syntax error): back to reading commands. */
static void exchange_end(struct smtp_session *s)
{
    auth_free(s->auth);
    s->auth = NULL;
    s->lines.max = SMTP_CMD_LINE_MAX;
    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
}

/* ---- the exchange ---- */

int smtp_auth_offered(const struct smtp_session *s)
{
    return s->tls && s->srv->auth_users != NULL && s->listener->role == LISTENER_SUBMISSION;
}

static void challenge(struct smtp_session *s)
{
    /* RFC 4954 §4: PLAIN's challenge is empty; LOGIN asks "Username:" then "Password:". */
    const char *text = "";
    if (s->auth->mech == AUTH_MECH_LOGIN)
        text = s->auth->step == 0 ? "VXNlcm5hbWU6" : "UGFzc3dvcmQ6";
    smtp_reply(s, 334, NULL, "%s", text);
    s->lines.max = SMTP_AUTH_LINE_MAX;
    smtp_set_state(s, SMTP_PHASE_AUTH, SMTP_WAIT_NONE);
}

int smtp_auth_plain_split(const unsigned char *msg, size_t len, struct smtp_auth_plain *out)
{
    const char *text = (const char *)msg;
    const char *nul1 = memchr(text, '\0', len);
    if (nul1 == NULL)
        return -1;
    const char *authcid = nul1 + 1;
    const char *nul2 = memchr(authcid, '\0', len - (size_t)(authcid - text));
    if (nul2 == NULL)
        return -1;
    out->authzid = (struct smtp_slice){text, (size_t)(nul1 - text)};
    out->authcid = (struct smtp_slice){authcid, (size_t)(nul2 - authcid)};
    out->passwd = (struct smtp_slice){nul2 + 1, len - (size_t)(nul2 + 1 - text)};
    return 0;
}

/* Takes the credentials of a decoded PLAIN message. */
static int plain_take(struct smtp_auth *a, const unsigned char *msg, size_t len)
{
    struct smtp_auth_plain plain;
    if (smtp_auth_plain_split(msg, len, &plain) < 0)
        return -1;
    a->user_len = plain.authcid.len;
    a->user = xstrndup(plain.authcid.ptr, a->user_len);
    a->password_len = plain.passwd.len;
    a->password = xstrndup(plain.passwd.ptr, a->password_len);
    /* We let a user act only as themselves: another authorization identity fails the check. */
    a->other_authz = plain.authzid.len != 0 &&
                     (plain.authzid.len != plain.authcid.len ||
                      memcmp(plain.authzid.ptr, plain.authcid.ptr, plain.authzid.len) != 0);
    return 0;
}

enum smtp_auth_response smtp_auth_response_decode(const char *text, size_t len, int initial,
                                                  unsigned char **msg, size_t *msg_len)
{
    *msg = NULL;
    *msg_len = 0;
    if (len == 1 && text[0] == '*')
        return SMTP_AUTH_RESPONSE_CANCEL;
    if (initial && len == 1 && text[0] == '=')
        len = 0; /* RFC 4954 §4: "=" is an empty initial response */
    unsigned char *out = xmalloc(len / 4 * 3 + 1);
    long n = base64_decode_strict(text, len, out);
    if (n < 0) {
        wipe_free((char *)out, len / 4 * 3 + 1); /* what was decoded before the bad byte */
        return SMTP_AUTH_RESPONSE_BAD_BASE64;
    }
    out[n] = '\0';
    *msg = out;
    *msg_len = (size_t)n;
    return SMTP_AUTH_RESPONSE_OK;
}

/* One response (base64 text), from the AUTH line or a line after 334. */
static void exchange_step(struct smtp_session *s, const char *text, size_t len, int initial)
{
    struct smtp_auth *a = s->auth;
    unsigned char *msg;
    size_t n;
    enum smtp_auth_response res = smtp_auth_response_decode(text, len, initial, &msg, &n);
    if (res == SMTP_AUTH_RESPONSE_CANCEL) {
        exchange_end(s);
        smtp_reply(s, 501, "5.7.0", "Authentication cancelled");
        return;
    }
    int bad = res != SMTP_AUTH_RESPONSE_OK;
    if (!bad && a->mech == AUTH_MECH_PLAIN) {
        bad = plain_take(a, msg, n) < 0;
    } else if (!bad && a->step == 0) {
        a->user = xstrndup((const char *)msg, n);
        a->user_len = n;
        a->step = 1;
    } else if (!bad) {
        a->password = xstrndup((const char *)msg, n);
        a->password_len = n;
    }
    wipe_free((char *)msg, n);
    if (bad) {
        exchange_end(s);
        smtp_reply(s, 501, "5.5.2",
                   res == SMTP_AUTH_RESPONSE_BAD_BASE64 ? "Error: invalid base64"
                                                        : "Error: malformed PLAIN response");
        smtp_peer_error(s);
        return;
    }
    if (a->password == NULL)
        challenge(s); /* LOGIN: the password comes next */
    else
        check_start(s);
}

int smtp_auth_check(struct smtp_session *s, struct smtp_slice arg)
{
    if (s->srv->auth_users == NULL || s->listener->role != LISTENER_SUBMISSION) {
        smtp_reply(s, 503, "5.5.1", "Error: authentication not enabled");
        smtp_peer_error(s);
        return -1;
    }
    if (!s->tls) {
        smtp_reply(s, 538, "5.7.11", "Encryption required for requested authentication mechanism");
        smtp_peer_error(s);
        return -1;
    }
    if (!s->esmtp) {
        smtp_reply(s, 503, "5.5.1", "Error: send EHLO first");
        smtp_peer_error(s);
        return -1;
    }
    if (s->auth_user != NULL) {
        smtp_reply(s, 503, "5.5.1", "Error: already authenticated");
        smtp_peer_error(s);
        return -1;
    }
    return 0;
}

void smtp_cmd_auth(struct smtp_session *s, struct smtp_slice arg)
{
    if (arg.len == 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
        smtp_peer_error(s);
        return;
    }
    const char *sp = memchr(arg.ptr, ' ', arg.len);
    size_t mech_len = sp != NULL ? (size_t)(sp - arg.ptr) : arg.len;
    struct smtp_slice initial = {NULL, 0};
    if (sp != NULL)
        initial = (struct smtp_slice){sp + 1, arg.len - mech_len - 1};
    if (mech_len == 0 ||
        (sp != NULL && (initial.len == 0 || memchr(initial.ptr, ' ', initial.len)))) {
        smtp_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
        smtp_peer_error(s);
        return;
    }
    int mech = -1;
    for (size_t i = 0; i < ARRAY_LEN(mech_names); i++)
        if (strlen(mech_names[i]) == mech_len && strncasecmp(arg.ptr, mech_names[i], mech_len) == 0)
            mech = (int)i;
    if (mech < 0) {
        smtp_reply(s, 504, "5.5.4", "Error: unsupported authentication mechanism");
        smtp_peer_error(s);
        return;
    }
    s->auth = xcalloc(1, sizeof *s->auth);
    s->auth->s = s;
    s->auth->mech = (enum auth_mech)mech;
    if (initial.ptr != NULL)
        exchange_step(s, initial.ptr, initial.len, 1);
    else
        challenge(s);
}

void smtp_auth_line(struct smtp_session *s, enum line_result res, const char *line, size_t len)
{
    if (res == LINE_OK) {
        exchange_step(s, line, len, 0);
        return;
    }
    exchange_end(s);
    if (res == LINE_TOO_LONG)
        smtp_reply(s, 500, "5.5.2", "Error: authentication response over %d octets",
                   SMTP_AUTH_LINE_MAX);
    else
        smtp_reply(s, 500, "5.5.2", "Error: bare <CR> or <LF> received; lines end with <CR><LF>");
    smtp_peer_error(s);
}

/* ---- the check ---- */

static void check_start(struct smtp_session *s)
{
    struct smtp_auth *a = s->auth;
    const struct auth_users *users = s->srv->auth_users;
    const char *hash = auth_users_hash(users, a->user, a->user_len);
    a->known = hash != NULL && !a->other_authz;
    if (hash == NULL)
        hash = auth_users_decoy_hash(users); /* same work, so the time tells nothing */
    a->hash = hash != NULL ? xstrdup(hash) : NULL;
    unsigned failures = auth_failures_count(
        s->srv->auth_failures, (const struct sockaddr *)&s->peer, uv_now(s->srv->loop));
    a->delay_ms = auth_failures_delay_ms(failures);

    int rc = uv_queue_work(s->srv->loop, &a->work, check_on_work, check_on_done);
    if (rc < 0) {
        log_msg(LOG_ERROR, "smtp.auth_failed", "session %llu: %s", (unsigned long long)s->id,
                uv_strerror(rc));
        exchange_end(s);
        smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    a->checking = 1;
    smtp_session_ref(s); /* released by auth_release; the work cannot be cancelled once started */
    s->lines.max = SMTP_CMD_LINE_MAX;
    smtp_set_state(s, s->phase, SMTP_WAIT_AUTH_CHECK);
    uv_timer_stop(&s->timer);
    smtp_pause_input(s);
}

static void check_on_work(uv_work_t *req)
{
    struct smtp_auth *a = container_of(req, struct smtp_auth, work);
    int match = a->hash != NULL && auth_users_verify(a->hash, a->password, a->password_len);
    a->ok = match && a->known;
}

static void check_on_done(uv_work_t *req, int status)
{
    struct smtp_auth *a = container_of(req, struct smtp_auth, work);
    struct smtp_session *s = a->s;
    a->checking = 0;
    wipe_free(a->password, a->password_len);
    a->password = NULL;
    if (s->closed) {
        auth_release(a); /* smtp_auth_close already let go of it */
        return;
    }
    /* status is 0: we never call uv_cancel. */
    if (!a->ok) {
        /* Counted now, not after the delay, so a parallel attempt already sees it. */
        auth_failures_add(s->srv->auth_failures, (const struct sockaddr *)&s->peer,
                          uv_now(s->srv->loop));
    }
    if (a->delay_ms == 0) {
        check_finish(a);
        return;
    }
    /* A client with recent failures waits for every answer, a success included: otherwise
     * giving up on a slow answer would tell the attacker it was a failure. */
    uv_timer_init(s->srv->loop, &a->delay);
    a->delaying = 1;
    uv_timer_start(&a->delay, delay_on_expire, a->delay_ms, 0);
}

static void delay_on_expire(uv_timer_t *t)
{
    check_finish(container_of(t, struct smtp_auth, delay));
}

static void check_finish(struct smtp_auth *a)
{
    struct smtp_session *s = a->s;
    s->auth = NULL;

    struct logrec r;
    log_begin(&r, a->ok ? LOG_INFO : LOG_WARN, "smtp.auth");
    log_int(&r, "session", (long long)s->id);
    log_str(&r, "client", s->client_addr);
    log_strn(&r, "user", a->user, a->user_len);
    log_str(&r, "mechanism", mech_names[a->mech]);
    log_str(&r, "result", a->ok ? "ok" : "failed");
    if (a->delay_ms > 0)
        log_int(&r, "delay_ms", (long long)a->delay_ms);
    log_end(&r);

    smtp_set_state(s, SMTP_PHASE_GREETED, SMTP_WAIT_NONE);
    int closing = 0;
    if (a->ok) {
        /* The name matched an entry of the users file, so it is safe to write into headers. */
        s->auth_user = xstrndup(a->user, a->user_len);
        smtp_reply(s, 235, "2.7.0", "Authentication successful");
    } else {
        smtp_reply(s, 535, "5.7.8", "Authentication credentials invalid");
        closing = smtp_peer_error(s);
    }
    if (!closing)
        smtp_resume_input(s); /* also writes the reply and arms the next command's deadline */
    auth_release(a);
}

void smtp_auth_close(struct smtp_session *s)
{
    struct smtp_auth *a = s->auth;
    if (a == NULL)
        return;
    s->auth = NULL;
    if (a->checking)
        return; /* check_on_done sees s->closed and releases it */
    if (a->delaying) {
        uv_timer_stop(&a->delay);
        auth_release(a);
        return;
    }
    auth_free(a); /* still talking: no check, no reference */
}
