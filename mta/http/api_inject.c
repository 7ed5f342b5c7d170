#include "mta/http/api_inject.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/smtp_addr.h"
#include "lib/xalloc.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/postmaster.h"
#include "mta/http/http_auth.h"
#include "mta/http/inject_request.h"
#include "mta/server/smtp_server.h"
#include "mta/server/submit.h"
#include "policy/rcpt_policy.h"
#include "policy/suppression.h"

/* The listener name injected mail carries in its envelope, log and metrics. */
#define INJECT_LISTENER "http"

/* A submission listener whose every client authenticated: the token's user. */
static const struct config_listener inject_listener = {
    .name = INJECT_LISTENER,
    .role = LISTENER_SUBMISSION,
};

/* Messages of one request on their way to the spool at once: their commits share the syncs. */
#define INJECT_IN_FLIGHT 32

struct inject_job;
struct inject_one;

/* One message of a request, from its checks to its answer. */
struct inject_one {
    struct inject_job *job;
    const struct inject_message *m;
    json_t *answer; /* NULL until started */
    int64_t now;    /* when its recipients are decided */
    /* Each recipient's RCPT decision, made once, as if no recipient were accepted before it;
     * relayed mail's is completed by the suppression list's answer, read on the thread pool (a
     * page of the map not in memory would hold the loop up), one batch for the message. */
    struct rcpt_decision *decided;
    struct suppression_batch *batch; /* the list's read of its recipients, until answered */
    struct submit *submit;           /* on its way to the spool, else NULL */
    char sender[SMTP_PATH_MAX + 8];
    char **rcpts; /* accepted, canonical, as spooled */
    size_t nrcpts;
    unsigned flags; /* SPOOL_ENV_* */
};

/* One request: its messages start in order, up to INJECT_IN_FLIGHT at a time. */
struct inject_job {
    struct smtp_server *srv;
    struct config *cfg; /* one reference, for the whole request */
    char user[HTTP_USER_MAX + 1];
    char client[64];
    struct http_later *later; /* NULL once the client has gone */
    struct inject_request req;
    struct inject_one *ones; /* req.nmsgs */
    size_t next;             /* the next to start */
    size_t in_flight;
};

static void inject_job_run(struct inject_job *job);

/* ---- answers and events ---- */

static void log_refused(const struct inject_job *job, const char *address, int code,
                        const char *text, const char *rule)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "http.inject_refused");
    log_str(&r, "tenant", job->user);
    log_str(&r, "client", job->client);
    if (address != NULL)
        log_str(&r, "address", address);
    log_int(&r, "code", code);
    log_str(&r, "text", text);
    if (rule != NULL)
        log_str(&r, "rule", rule);
    log_end(&r);
}

/* A message is refused as a whole: its answer says why, in SMTP terms. */
static void message_refuse(struct inject_one *o, int code, const char *enhanced, const char *rule,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void message_refuse(struct inject_one *o, int code, const char *enhanced, const char *rule,
                           const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_object_set_new(o->answer, "error", json_string(text));
    json_object_set_new(o->answer, "code", json_integer(code));
    json_object_set_new(o->answer, "enhanced", json_string(enhanced));
    log_refused(o->job, NULL, code, text, rule);
}

static json_t *reply_json(const char *address, int code, const char *enhanced, const char *text)
{
    return json_pack("{s:s, s:i, s:s, s:s}", "address", address, "code", code, "enhanced",
                     enhanced != NULL ? enhanced : "", "text", text);
}

static void log_injected(const struct inject_one *o, const char *queue_id, uint64_t size)
{
    struct buf rcpts = BUF_INIT;
    for (size_t i = 0; i < o->nrcpts; i++)
        buf_printf(&rcpts, "%s%s", i > 0 ? "," : "", o->rcpts[i]);
    struct logrec r;
    log_begin(&r, LOG_INFO, "http.injected");
    log_str(&r, "queue_id", queue_id);
    log_str(&r, "tenant", o->job->user);
    if (o->m->campaign != NULL)
        log_str(&r, "campaign", o->m->campaign);
    log_str(&r, "from", o->sender);
    log_strn(&r, "rcpts", rcpts.data, rcpts.len);
    log_int(&r, "size", (long long)size);
    log_str(&r, "client", o->job->client);
    log_end(&r);
    buf_free(&rcpts);
}

/* ---- one message ---- */

/* The facts of a RCPT decision as a submission client authenticated as the token's user would
 * have them, with nrcpts recipients accepted before. */
static void rcpt_facts_of(const struct inject_one *o, size_t nrcpts, struct rcpt_facts *f)
{
    const struct inject_job *job = o->job;
    *f = (struct rcpt_facts){
        .cfg = job->cfg,
        .listener = &inject_listener,
        .auth_user = job->user,
        .smtputf8 = 1,
        .nrcpts = nrcpts,
        .suppression = job->srv->suppression,
        .tenant = job->user,
        .now = o->now,
        .recipients = job->srv->recipients,
        .no_verifier = 1,
    };
}

/* The RCPT decision for rcpt with nrcpts recipients accepted before it. */
static void rcpt_decide(const struct inject_one *o, const char *rcpt, size_t nrcpts,
                        struct rcpt_decision *r)
{
    struct rcpt_facts f;
    rcpt_facts_of(o, nrcpts, &f);
    struct buf arg = BUF_INIT;
    buf_printf(&arg, "TO:<%s>", rcpt);
    rcpt_policy_decide(&f, (struct smtp_slice){arg.data, arg.len}, r);
    buf_free(&arg);
}

/* The list's answers (NULL: it cannot be read now) complete the decisions waiting for it, in
 * the order their addresses were asked. */
static void message_suppressed(struct inject_one *o, const struct suppression_answer *answers)
{
    struct rcpt_facts f;
    rcpt_facts_of(o, 0, &f);
    size_t k = 0;
    for (size_t i = 0; i < o->m->nrcpts; i++) {
        struct rcpt_decision *r = &o->decided[i];
        if (r->outcome != RCPT_NEED_SUPPRESSION)
            continue;
        if (answers != NULL)
            rcpt_policy_suppressed(&f, answers[k].found, answers[k].entry, r);
        else
            rcpt_policy_suppressed(&f, -EAGAIN, NULL, r);
        k++;
    }
}

static void message_on_suppression(void *arg, const struct suppression_answer *answers, size_t n);

/* Decides each recipient once, as if none were accepted before it (the cap, which counts only
 * those accepted, is message_recipients' to apply), and starts the suppression list's read of
 * those that need one, all in one batch. */
static void message_decide(struct inject_one *o)
{
    const struct inject_message *m = o->m;
    o->decided = xcalloc(m->nrcpts, sizeof *o->decided);
    const char **ask = xcalloc(m->nrcpts, sizeof *ask);
    size_t nask = 0;
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct rcpt_decision *r = &o->decided[i];
        rcpt_decide(o, m->rcpts[i], 0, r);
        if (r->outcome == RCPT_NEED_SUPPRESSION)
            ask[nask++] = r->addr;
    }
    if (nask > 0) {
        o->batch = suppression_batch_start(o->job->srv->suppression, o->job->user, ask, nask,
                                           o->now, message_on_suppression, o);
        if (o->batch == NULL)
            message_suppressed(o, NULL);
    }
    free(ask);
}

/* Each recipient's decision in order, the cap applied: the accepted ones go to o->rcpts. */
static void message_recipients(struct inject_one *o)
{
    const struct inject_job *job = o->job;
    const struct inject_message *m = o->m;
    json_t *answers = json_array();
    json_object_set_new(o->answer, "recipients", answers);
    o->rcpts = xcalloc(m->nrcpts, sizeof *o->rcpts);
    for (size_t i = 0; i < m->nrcpts; i++) {
        const struct rcpt_decision *r = &o->decided[i];
        struct rcpt_decision capped;
        /* Over SMTP the cap comes after the address checks, and counts those accepted before. */
        int address_refused = r->outcome == RCPT_REFUSE && r->stage < RCPT_STAGE_LIMIT;
        if (!address_refused && o->nrcpts >= job->cfg->limits.max_recipients_per_message) {
            rcpt_decide(o, m->rcpts[i], o->nrcpts, &capped);
            r = &capped;
        }
        if (r->outcome == RCPT_REFUSE || r->outcome == RCPT_NEED_VERIFY) {
            json_array_append_new(answers,
                                  reply_json(m->rcpts[i], r->d.code, r->d.enhanced, r->d.text));
            log_refused(job, m->rcpts[i], r->d.code, r->reason != NULL ? r->reason : r->d.text,
                        r->check);
            continue;
        }
        /* A dropped recipient (suppressed, action drop) is told Ok, as over SMTP. */
        json_array_append_new(answers, reply_json(m->rcpts[i], 250, "2.1.5", "Ok"));
        if (r->outcome == RCPT_DROP) {
            log_refused(job, r->addr, 250, "suppressed: dropped", "suppression");
            continue;
        }
        if (r->rcpt.flags & SMTP_ADDR_UTF8)
            o->flags |= SPOOL_ENV_SMTPUTF8;
        o->rcpts[o->nrcpts++] = xstrdup(postmaster_redirect(job->cfg, r->addr));
    }
}

/* The client's part of the message: the campaign and header fields asked for, then the content
 * with bare LF made CRLF and a last line end added. Returns 0, or -1 after refusing it. */
static int message_text(struct inject_one *o, struct buf *out)
{
    const struct inject_message *m = o->m;
    if (m->campaign != NULL)
        buf_printf(out, "X-Sluice-Campaign: %s\r\n", m->campaign);
    for (size_t i = 0; i < m->nfields; i++)
        buf_printf(out, "%s: %s\r\n", m->fields[i].name, m->fields[i].value);
    const char *p = m->content, *end = m->content + m->content_len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *eol = lf != NULL ? lf : end;
        size_t len = (size_t)(eol - p) - (eol > p && eol[-1] == '\r'); /* the line without CR */
        if (len > 998) {
            message_refuse(o, 500, "5.5.2", "builtin.line_length",
                           "message line longer than 1000 octets (RFC 5321 4.5.3.1.6)");
            return -1;
        }
        for (size_t i = 0; i < len && !(o->flags & SPOOL_ENV_8BITMIME); i++)
            if ((unsigned char)p[i] >= 0x80)
                o->flags |= SPOOL_ENV_8BITMIME;
        buf_append(out, p, len);
        buf_append(out, "\r\n", 2);
        p = eol + (lf != NULL);
    }
    if (out->len > o->job->cfg->limits.max_message_size) {
        message_refuse(o, 552, "5.3.4", "limits.max_message_size",
                       "Message size exceeds fixed limit");
        return -1;
    }
    return 0;
}

static void message_on_done(void *arg, const struct submit_outcome *out);

/* The message goes to the spool the way SMTP's DATA does (mta/server/submit.h). Returns 1 when it
 * is on its way (message_on_done follows), 0 when it was refused at once. */
static int message_store(struct inject_one *o, const struct buf *text)
{
    struct submit_message sm = {
        .sender = o->sender,
        .rcpts = (const char *const *)o->rcpts,
        .nrcpts = o->nrcpts,
        .auth_user = o->job->user,
        .client = o->job->client,
        .listener = INJECT_LISTENER,
        .protocol = "HTTP",
        .flags = o->flags,
        .text = text->data,
        .len = text->len,
    };
    struct policy_decision refused;
    o->submit = submit_start(o->job->srv, o->job->cfg, &sm, message_on_done, o, &refused);
    if (o->submit != NULL)
        return 1;
    message_refuse(o, refused.code, refused.enhanced, refused.rule, "%s", refused.text);
    return 0;
}

/* A message goes no further once the daemon is stopping: 1 when refused for that. */
static int message_refused_stopping(struct inject_one *o)
{
    if (!o->job->srv->stopping)
        return 0;
    message_refuse(o, 421, "4.3.2", NULL, "Service shutting down");
    return 1;
}

/* The message once its recipients' reads have answered: its text, its recipients, then the
 * spool. Returns 1 when it is on its way there (message_on_done follows), 0 when answered. */
static int message_continue(struct inject_one *o)
{
    if (message_refused_stopping(o))
        return 0;
    struct buf text = BUF_INIT;
    int rc = 0;
    if (message_text(o, &text) == 0) {
        message_recipients(o);
        if (o->nrcpts == 0)
            message_refuse(o, 554, "5.5.1", NULL, "No valid recipients");
        else
            rc = message_store(o, &text);
    }
    buf_free(&text);
    return rc;
}

/* The message's checks, then its recipients' reads: 1 when it is in flight (reading the list or
 * on its way to the spool), 0 when answered. */
static int message_start(struct inject_one *o)
{
    const struct inject_job *job = o->job;
    const struct inject_message *m = o->m;
    o->answer = json_object();
    if (message_refused_stopping(o))
        return 0;
    if (m->tenant != NULL && strcmp(m->tenant, job->user) != 0) {
        message_refuse(o, 550, "5.7.1", "http.tokens", "tenant \"%.64s\" is not this token's (%s)",
                       m->tenant, job->user);
        return 0;
    }
    struct smtp_addr from;
    const char *why = "bad address";
    struct buf path = BUF_INIT;
    buf_printf(&path, "<%s>", m->sender);
    int bad = smtp_addr_parse(path.data, path.len, SMTP_ADDR_ALLOW_NULL | SMTP_ADDR_ALLOW_UTF8,
                              &from, &why) < 0;
    buf_free(&path);
    if (bad) {
        message_refuse(o, 501, "5.1.7", "builtin.address_syntax", "Bad sender address syntax: %s",
                       why);
        return 0;
    }
    smtp_addr_format(&from, o->sender, sizeof o->sender);
    if (from.flags & SMTP_ADDR_UTF8)
        o->flags |= SPOOL_ENV_SMTPUTF8;
    o->now = time(NULL);
    message_decide(o);
    if (o->batch != NULL)
        return 1; /* message_on_suppression goes on once the list has answered */
    return message_continue(o);
}

/* What is left of a message once it is answered (its reads, if any, cancelled). */
static void message_end(struct inject_one *o)
{
    submit_free(o->submit);
    o->submit = NULL;
    for (size_t i = 0; i < o->nrcpts; i++)
        free(o->rcpts[i]);
    free(o->rcpts);
    o->rcpts = NULL;
    o->nrcpts = 0;
    suppression_batch_cancel(o->batch);
    o->batch = NULL;
    free(o->decided);
    o->decided = NULL;
}

/* A message in flight is answered: the next ones may start. */
static void message_answered(struct inject_one *o)
{
    message_end(o);
    o->job->in_flight--;
    inject_job_run(o->job);
}

static void message_on_suppression(void *arg, const struct suppression_answer *answers, size_t n)
{
    struct inject_one *o = arg;
    (void)n; /* those of o->decided that were waiting for it */
    o->batch = NULL;
    message_suppressed(o, answers);
    if (message_continue(o) == 0)
        message_answered(o);
}

/* The commit's outcome: the id once the message is durable (delivery has it), else the reply. */
static void message_on_done(void *arg, const struct submit_outcome *out)
{
    struct inject_one *o = arg;
    const struct policy_decision *d = out->d;
    if (d->verdict == POLICY_ACCEPT) {
        snprintf(o->sender, sizeof o->sender, "%s", out->sender);
        log_injected(o, out->queue_id, out->size);
        mail_metrics_received(INJECT_LISTENER);
        json_object_set_new(o->answer, "id", json_string(out->queue_id));
    } else {
        message_refuse(o, d->code, d->enhanced, d->rule, "%s", d->text);
    }
    message_answered(o);
}

/* ---- the request ---- */

static void inject_job_free(struct inject_job *job)
{
    for (size_t i = 0; i < job->req.nmsgs; i++)
        json_decref(job->ones[i].answer);
    free(job->ones);
    inject_request_free(&job->req);
    config_unref(job->cfg);
    free(job);
}

/* The client has gone before its answer: the messages on their way to the spool still finish
 * (durable, delivered, logged http.injected); those reading the suppression list stop there and
 * the others never start. */
static void inject_job_on_gone(void *owner)
{
    struct inject_job *job = owner;
    size_t queued = 0, finishing = 0;
    job->later = NULL;
    for (size_t i = 0; i < job->next; i++) {
        struct inject_one *o = &job->ones[i];
        if (o->batch != NULL) {
            message_end(o);
            job->in_flight--;
        }
        finishing += o->submit != NULL;
        queued += o->answer != NULL && json_object_get(o->answer, "id") != NULL;
    }
    struct logrec r;
    log_begin(&r, LOG_INFO, "http.inject_cancelled");
    log_str(&r, "tenant", job->user);
    log_str(&r, "client", job->client);
    log_int(&r, "messages", (long long)job->req.nmsgs);
    log_int(&r, "queued", (long long)queued);
    log_int(&r, "finishing", (long long)finishing);
    log_end(&r);
    inject_job_run(job); /* frees the request when nothing is left in flight */
}

/* A batch answers 200 with a result a message; a single message 200 with its own once it is
 * queued, else its refusal with 422 (permanent) or 503 (temporary: try again). */
static void inject_job_answer(struct inject_job *job)
{
    struct http_answer answer = {200, "application/json", BUF_INIT, 1};
    json_t *doc;
    if (job->req.batch) {
        json_t *list = json_array();
        for (size_t i = 0; i < job->req.nmsgs; i++)
            json_array_append(list, job->ones[i].answer);
        doc = json_pack("{s:o}", "messages", list);
    } else {
        doc = json_incref(job->ones[0].answer);
        json_t *code = json_object_get(doc, "code");
        if (code != NULL)
            answer.status = json_integer_value(code) >= 500 ? 422 : 503;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    buf_append_str(&answer.body, text);
    free(text);
    json_decref(doc);
    http_later_answer(job->later, &answer);
}

/* Starts messages in order while fewer than INJECT_IN_FLIGHT are on their way; answers and frees
 * the request once every message is answered (or the client has gone and none is in flight). */
static void inject_job_run(struct inject_job *job)
{
    while (job->later != NULL && job->next < job->req.nmsgs && job->in_flight < INJECT_IN_FLIGHT) {
        struct inject_one *o = &job->ones[job->next++];
        if (message_start(o) == 1)
            job->in_flight++;
        else
            message_end(o);
    }
    if (job->in_flight > 0)
        return;
    if (job->later != NULL)
        inject_job_answer(job);
    inject_job_free(job);
}

void api_inject(struct smtp_server *srv, const struct http_call *call, struct http_answer *answer)
{
    if (srv->stopping || srv->spool == NULL) {
        answer->status = 503;
        buf_printf(&answer->body, "the daemon is stopping");
        return;
    }
    struct inject_job *job = xcalloc(1, sizeof *job);
    struct buf err = BUF_INIT;
    if (inject_request_parse(call->body, call->body_len, &job->req, &err) < 0) {
        answer->status = 400;
        buf_printf(&answer->body, "%s", err.data);
        buf_free(&err);
        free(job);
        return;
    }
    job->srv = srv;
    job->cfg = config_ref(srv->cfg);
    snprintf(job->user, sizeof job->user, "%s", call->user);
    if (uv_ip_name(call->peer, job->client, sizeof job->client) != 0)
        snprintf(job->client, sizeof job->client, "unknown");
    job->later = call->later;
    job->ones = xcalloc(job->req.nmsgs, sizeof *job->ones);
    for (size_t i = 0; i < job->req.nmsgs; i++)
        job->ones[i] = (struct inject_one){.job = job, .m = &job->req.msgs[i]};
    http_later_watch(call->later, inject_job_on_gone, job);
    answer->status = HTTP_ANSWER_LATER;
    inject_job_run(job);
}
