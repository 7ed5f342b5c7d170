/*
 * A queued message's recipients and jobs (sched_int.h): a recipient's state and last result as
 * the spool keeps it, batches of results written to the spool and applied once durable, the jobs
 * a message's recipients go to destinations in, and recipients failed without a try (an
 * administrator's bounce, an expiry while held). Used by the scheduler and its helpers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "mta/delivery/bounce_category.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/sched_int.h"
#include "mta/delivery/shaping.h"

const char *rcpt_domain(const struct rcpt *r)
{
    const char *at = strrchr(r->addr, '@');
    return at != NULL ? at + 1 : "";
}

int rcpt_final(const struct rcpt *r)
{
    return r->status == SPOOL_RCPT_DELIVERED || r->status == SPOOL_RCPT_BOUNCED;
}

int rcpt_waiting(const struct rcpt *r)
{
    return !r->busy && (r->status == SPOOL_RCPT_PENDING || r->status == SPOOL_RCPT_DEFERRED);
}

void rcpt_set_result(struct rcpt *r, int code, const char *enhanced, const char *text,
                     const char *mta)
{
    r->code = code;
    snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced != NULL ? enhanced : "");
    text = text != NULL ? text : "";
    /* A reply's text starts with its enhanced code, which is kept apart: drop the copy, or the
     * DSN and the spool would say "550 5.1.1 5.1.1 ...". */
    size_t n = strlen(r->enhanced);
    if (n > 0 && strncmp(text, r->enhanced, n) == 0 && (text[n] == ' ' || text[n] == '\0'))
        text += n + (text[n] == ' ');
    free(r->text);
    r->text = xstrdup(text);
    free(r->mta);
    r->mta = mta != NULL ? xstrdup(mta) : NULL;
}

/* "550 5.1.1 text": the one line the spool keeps of a result. */
void rcpt_format_reply(const struct rcpt *r, struct buf *out)
{
    buf_reset(out);
    if (r->code == 0)
        return;
    buf_printf(out, "%d %s%s%s", r->code, r->enhanced, r->enhanced[0] ? " " : "",
               r->text != NULL ? r->text : "");
    if (r->mta != NULL)
        buf_printf(out, " (%s)", r->mta);
}

/* The inverse of rcpt_format_reply, for a result read back from the spool with the host that gave
 * it ("" when local, or not recorded by an older version). */
void rcpt_parse_reply(struct rcpt *r, const char *reply, const char *mta)
{
    if (reply == NULL || strlen(reply) < 3 || reply[0] < '2' || reply[0] > '5')
        return;
    char *end;
    long code = strtol(reply, &end, 10);
    if (end != reply + 3 || (*end != ' ' && *end != '\0'))
        return;
    const char *p = *end ? end + 1 : end;
    char enhanced[16] = "";
    size_t n = strspn(p, "0123456789.");
    if (n > 0 && n < sizeof enhanced && p[0] == reply[0] && p[1] == '.' &&
        (p[n] == ' ' || p[n] == '\0')) {
        memcpy(enhanced, p, n);
        enhanced[n] = '\0';
        p += n + (p[n] == ' ');
    }
    if (mta == NULL || mta[0] == '\0') {
        rcpt_set_result(r, (int)code, enhanced, p, NULL);
        r->category = bounce_category_of(r->code, r->enhanced, r->text);
        return;
    }
    /* Take back the " (host)" that rcpt_format_reply appended, so the text is as it was. */
    size_t len = strlen(p), mta_len = strlen(mta);
    if (len >= mta_len + 3 && p[len - 1] == ')' &&
        strncmp(p + len - mta_len - 1, mta, mta_len) == 0 &&
        strncmp(p + len - mta_len - 3, " (", 2) == 0)
        len -= mta_len + 3;
    char *text = xstrndup(p, len);
    rcpt_set_result(r, (int)code, enhanced, text, mta);
    r->category = bounce_category_of(r->code, r->enhanced, r->text);
    free(text);
}

/* ---- recording results ---- */

/* A batch of recipient results on its way to the spool; applied in memory once durable. */
struct update_batch {
    struct qmsg *m;
    size_t n;
    struct spool_rcpt_update *ups;
    int64_t *next_ms;
    struct buf *replies;
    unsigned admin : 1; /* msg_fail_waiting_at's: its end clears m->admin_writing */
};

static void update_batch_free(struct update_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        buf_free(&b->replies[i]);
    free(b->replies);
    free(b->next_ms);
    free(b->ups);
    free(b);
}

struct update_batch *update_batch_new(struct qmsg *m, size_t n)
{
    struct update_batch *b = xcalloc(1, sizeof *b);
    b->m = m;
    b->ups = xcalloc(n, sizeof *b->ups);
    b->next_ms = xcalloc(n, sizeof *b->next_ms);
    b->replies = xcalloc(n, sizeof *b->replies);
    return b;
}

void update_batch_add(struct update_batch *b, size_t rcpt, enum spool_rcpt_status status,
                      unsigned attempts, int64_t next_ms)
{
    size_t i = b->n++;
    struct rcpt *r = &b->m->rcpts[rcpt];
    rcpt_format_reply(r, &b->replies[i]);
    b->next_ms[i] = next_ms;
    b->ups[i] = (struct spool_rcpt_update){
        .rcpt = rcpt,
        .status = status,
        .attempts = attempts,
        .next_attempt = (next_ms + 999) / 1000,
        .reply = b->replies[i].data != NULL ? b->replies[i].data : "",
        .remote_mta = r->mta,
        .delay_warned = r->delay_warned,
        /* a success notice owed goes to the spool with the delivery (bounce_out.c) */
        .notice_write = status == SPOOL_RCPT_DELIVERED && r->relay_notice,
        .notice = SPOOL_NOTICE_OWED,
    };
    r->busy = 1;
}

static void update_batch_on_written(int status, void *arg)
{
    struct update_batch *b = arg;
    struct qmsg *m = b->m;
    if (status < 0)
        log_msg(LOG_ERROR, "spool.update_failed",
                "queue id %s: recipient state not recorded (%s): a restart may repeat deliveries",
                m->id, strerror(-status));
    for (size_t i = 0; i < b->n; i++) {
        struct rcpt *r = &m->rcpts[b->ups[i].rcpt];
        sched_count_status(m, r, b->ups[i].status);
        r->attempts = b->ups[i].attempts;
        r->next_ms = b->next_ms[i];
        r->busy = 0;
    }
    if (b->admin)
        m->admin_writing = 0;
    update_batch_free(b);
    msg_release(m, 1);
}

/* Writes the batch (the message stays held until it is durable). */
void update_batch_write(struct update_batch *b)
{
    msg_hold(b->m, 1);
    spool_rcpt_update(b->m->s->spool, b->m->id, b->ups, b->n, update_batch_on_written, b);
}

void msg_dest_key(const struct qmsg *m, const char *domain, char *out, size_t size)
{
    struct shaping_dest sd = shaping_dest_for(m->s->cfg, domain, NULL);
    sched_tenant_key(sd.key, sched_tenant_pool(m->s->cfg, m->tenant, sd.values), out, size);
}

/* Counts a run of results at one domain (NULL: none yet) as bounced at its destination. */
static void count_bounced(const struct qmsg *m, const char *domain, const struct mail_results *t)
{
    if (domain == NULL)
        return;
    char key[512];
    msg_dest_key(m, domain, key, sizeof key);
    mail_metrics_results(key, m->tenant, NULL, t);
}

size_t msg_fail_waiting_at(struct qmsg *m, const char *domain, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        n += rcpt_waiting(&m->rcpts[i]) &&
             (domain == NULL || strcasecmp(rcpt_domain(&m->rcpts[i]), domain) == 0);
    if (n == 0)
        return 0;
    struct update_batch *b = update_batch_new(m, n);
    /* Counted by runs of one domain: recipients are usually grouped so. */
    const char *run = NULL;
    struct mail_results t = {0};
    /* One reply for all: its category is found once (by rules, regular expressions). */
    enum bounce_category category = bounce_category_of(550, "5.0.0", text);
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct rcpt *r = &m->rcpts[i];
        if (!rcpt_waiting(r) || (domain != NULL && strcasecmp(rcpt_domain(r), domain) != 0))
            continue;
        rcpt_set_result(r, 550, "5.0.0", text, NULL);
        r->category = category;
        update_batch_add(b, i, SPOOL_RCPT_FAILED, r->attempts, 0);
        if (run != NULL && strcasecmp(run, rcpt_domain(r)) != 0) {
            count_bounced(m, run, &t);
            t = (struct mail_results){0};
        }
        run = rcpt_domain(r);
        mail_results_add(&t, MAIL_BOUNCED, r->category);
    }
    count_bounced(m, run, &t);
    b->admin = 1;
    m->admin_writing = 1;
    update_batch_write(b);
    return n;
}

void msg_fail_waiting(struct qmsg *m, const char *text)
{
    msg_fail_waiting_at(m, NULL, text);
}

struct job *msg_job_new(struct qmsg *m, size_t first, const char *domain, int64_t now)
{
    struct job *job = xcalloc(1, sizeof *job);
    job->msg = m;
    job->queue_id = m->id;
    job->sender = m->sender;
    job->tenant = m->tenant;
    job->campaign = m->campaign;
    job->flags = m->flags;
    job->ret = m->ret;
    job->envid = m->envid;
    job->hold_ms = -1;
    job->domain = xstrdup(domain);
    job->rcpts = xmalloc((m->nrcpts - first) * sizeof *job->rcpts);
    for (size_t i = first; i < m->nrcpts; i++) {
        struct rcpt *r = &m->rcpts[i];
        if (rcpt_waiting(r) && r->next_ms <= now && strcasecmp(rcpt_domain(r), domain) == 0) {
            job->rcpts[job->nrcpts++] = (struct job_rcpt){
                .index = i, .addr = r->addr, .notify = r->notify, .orcpt = r->orcpt};
            r->busy = 1;
        }
    }
    return job;
}

void msg_job_fail(struct job *job, const char *key, const struct smtp_client_outcome *one)
{
    struct smtp_client_outcome *all = xmalloc(job->nrcpts * sizeof *all);
    for (size_t i = 0; i < job->nrcpts; i++)
        all[i] = *one;
    struct dest_hooks *hooks = &job->msg->s->env.hooks;
    hooks->job_done(hooks->arg, key, job, all, NULL);
    free(all);
}
