#include "mta/server/submit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/smtp_addr.h"
#include "lib/xalloc.h"
#include "mta/delivery/scheduler.h"
#include "mta/feedback/trace.h"
#include "mta/feedback/trace_header.h"
#include "mta/server/body_sink.h"
#include "mta/server/smtp_server.h"
#include "mta/server/smtp_sinks.h"

struct submit {
    struct smtp_server *srv;
    struct body_sinks sinks;
    struct body_sink *store;
    submit_done_cb done;
    void *arg;
    char queue_id[SPOOL_ID_MAX + 1];
    char sender[SMTP_PATH_MAX + 8];
    char **rcpts;
    size_t nrcpts;
    char *tenant, *campaign; /* owned; NULL: none */
    unsigned flags;
    int64_t received_at;
};

int submit_verp(const struct config *cfg, const char *queue_id, struct spool_msg *msg,
                struct spool_envelope *env, char *out, size_t size)
{
    char verp[SMTP_PATH_MAX + 1];
    if (cfg->feedback.verp_domain == NULL || env->sender[0] == '\0' ||
        trace_verp_format(cfg->feedback.trace_keys, cfg->feedback.ntrace_keys, queue_id,
                          cfg->feedback.verp_domain, verp, sizeof verp) < 0)
        return 0;
    const char *given = env->sender;
    env->sender = verp;
    if (spool_msg_set_envelope(msg, env) < 0) {
        env->sender = given;
        return 0;
    }
    snprintf(out, size, "%s", verp);
    env->sender = out;
    return 1;
}

/* RFC 5321 §4.4 trace field, folded so no line nears the text-line limit. */
static void received_field(const struct submit *s, const struct config *cfg,
                           const struct submit_message *m, struct buf *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    buf_printf(out, "Received: from %s ([%s%s])\r\n\tby %s (Sluice, listener %s) with %s id %s",
               m->auth_user, strchr(m->client, ':') != NULL ? "IPv6:" : "", m->client,
               cfg->server.hostname, m->listener, m->protocol, s->queue_id);
    if (m->nrcpts == 1)
        buf_printf(out, "\r\n\tfor <%s>", m->rcpts[0]);
    buf_printf(out, ";\r\n\t%s\r\n", date);
}

/* The message as the sinks take it: our Received field, then the text through the trace. The
 * campaign its header section names goes into the envelope (msg's, env as given to spool_msg_new)
 * before the first byte reaches the spool. */
static void submit_write(struct submit *s, const struct config *cfg, const struct submit_message *m,
                         struct spool_msg *msg, struct spool_envelope *env)
{
    struct buf text = BUF_INIT, out = BUF_INIT;
    struct trace_header *trace =
        trace_header_new(cfg, s->queue_id, m->auth_user, m->nrcpts == 1 ? m->rcpts[0] : NULL, 1);
    if (trace != NULL) {
        trace_header_feed(trace, m->text, m->len, &text);
        trace_header_finish(trace, &text);
        const char *campaign = trace_header_campaign(trace);
        if (campaign[0] != '\0') {
            env->campaign = s->campaign = xstrdup(campaign);
            (void)spool_msg_set_envelope(msg, env); /* an envelope over the caps fails the commit */
        }
        trace_header_free(trace);
    } else {
        buf_append(&text, m->text, m->len);
    }
    received_field(s, cfg, m, &out);
    body_sinks_write_trace(&s->sinks, out.data, out.len);
    body_sinks_write(&s->sinks, text.data, text.len);
    buf_free(&out);
    buf_free(&text);
}

static void sinks_on_writable(void *arg)
{
    (void)arg; /* the whole message is written at once: there is nothing to resume */
}

/* The sinks' outcome: the commit's, or a check's refusal (DKIM's tempfail policy, ...). */
static void sinks_on_done(void *arg, const struct body_outcome *out)
{
    struct submit *s = arg;
    struct submit_outcome o = {&out->decision, s->queue_id, s->sender, 0};
    if (out->sink == s->store && out->decision.verdict == POLICY_ACCEPT) {
        o.size = smtp_store_size(s->store);
        struct spool_envelope env = {
            .sender = s->sender,
            .rcpts = (const char *const *)s->rcpts,
            .nrcpts = s->nrcpts,
            .tenant = s->tenant,
            .campaign = s->campaign,
            .received_at = s->received_at,
            .flags = s->flags,
        };
        struct spool_entry entry = {.id = s->queue_id, .env = &env, .body_size = o.size};
        if (s->srv->scheduler != NULL) /* else stopping: the next start delivers it */
            scheduler_add(s->srv->scheduler, &entry);
    }
    s->done(s->arg, &o);
}

struct submit *submit_start(struct smtp_server *srv, const struct config *cfg,
                            const struct submit_message *m, submit_done_cb done, void *arg,
                            struct policy_decision *refused)
{
    struct spool_envelope env = {
        .sender = m->sender,
        .rcpts = m->rcpts,
        .nrcpts = m->nrcpts,
        .client_addr = m->client,
        .helo = m->listener,
        .auth_user = m->auth_user,
        .listener = m->listener,
        .tenant = m->auth_user,
        .received_at = (int64_t)time(NULL),
        .flags = m->flags,
    };
    struct spool_msg *msg = spool_msg_new(srv->spool, &env);
    if (msg == NULL) {
        *refused = (struct policy_decision){.verdict = POLICY_TEMPFAIL,
                                            .code = 451,
                                            .enhanced = "4.3.0",
                                            .text = "Error: queue file write error"};
        return NULL;
    }
    struct submit *s = xcalloc(1, sizeof *s);
    *s = (struct submit){
        .srv = srv, .done = done, .arg = arg, .flags = m->flags, .received_at = env.received_at};
    snprintf(s->queue_id, sizeof s->queue_id, "%s", spool_msg_id(msg));
    snprintf(s->sender, sizeof s->sender, "%s", m->sender);
    s->tenant = m->auth_user != NULL ? xstrdup(m->auth_user) : NULL;
    submit_verp(cfg, s->queue_id, msg, &env, s->sender, sizeof s->sender);
    s->rcpts = xcalloc(m->nrcpts, sizeof *s->rcpts);
    for (s->nrcpts = 0; s->nrcpts < m->nrcpts; s->nrcpts++)
        s->rcpts[s->nrcpts] = xstrdup(m->rcpts[s->nrcpts]);
    struct smtp_sink_context ctx = {
        .srv = srv,
        .cfg = cfg,
        .queue_id = s->queue_id,
        .client_text = m->client,
        .sender = s->sender,
        .relay_authorized = 1,
    };
    body_sinks_init(&s->sinks, cfg->server.hostname, sinks_on_writable, sinks_on_done, s);
    smtp_sinks_add_checks(&s->sinks, &ctx);
    s->store = smtp_store_new(&ctx, msg);
    body_sinks_add(&s->sinks, s->store);
    submit_write(s, cfg, m, msg, &env);
    struct body_outcome out;
    if (body_sinks_finish(&s->sinks, &out) == 1)
        return s;
    /* A check refused it at once: its reply outlives the sinks here (the loop is one thread). */
    static char enhanced[16], text[512];
    snprintf(enhanced, sizeof enhanced, "%s", out.decision.enhanced ? out.decision.enhanced : "");
    snprintf(text, sizeof text, "%s", out.decision.text ? out.decision.text : "");
    *refused = (struct policy_decision){
        out.decision.verdict, out.decision.code, enhanced, text, NULL, out.decision.pos};
    submit_free(s);
    return NULL;
}

void submit_free(struct submit *s)
{
    if (s == NULL)
        return;
    body_sinks_free(&s->sinks); /* rolls back what was not committed */
    for (size_t i = 0; i < s->nrcpts; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    free(s->tenant);
    free(s->campaign);
    free(s);
}
