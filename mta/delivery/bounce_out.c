/*
 * The DSNs the scheduler owes: when recipients of a queued message failed, one report (RFC 3464)
 * to the sender, or to server.postmaster for a null-sender message within its quota, honouring
 * each recipient's NOTIFY (RFC 3461); the report is spooled as a new message and the recipients
 * are marked BOUNCED. Recipients delivered with NOTIFY=SUCCESS to a server that does not offer DSN
 * get a notice of their own (Action: relayed), and deferred ones with NOTIFY=DELAY a warning at
 * each age of delivery.delay_warning (Action: delayed). Called by scheduler.c when a message
 * settles. Hard bounces feed the suppression list on the way.
 *
 * A success notice owed is in the spool from the delivery on (SPOOL_NOTICE_OWED), so it survives
 * a crash. Before its report is committed the recipients record the report's queue id
 * (SPOOLING), and once it is committed that nothing is owed (NONE); only then is the report
 * delivered. A restart that finds SPOOLING writes the report again only when no message of that
 * id is queued, so a crash between the commit and the clear sends it once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/smtp_dsn.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/bounce_category.h"
#include "mta/delivery/dsn.h"
#include "mta/delivery/postmaster.h"
#include "mta/delivery/sched_int.h"
#include "policy/suppression.h"
#include "spool/envelope.h"

struct bounce {
    struct qmsg *m;
    char *to; /* the sender, or server.postmaster for a double bounce */
    size_t *rcpts;
    size_t nrcpts;
    char *dsn_id;           /* the report's queue id, once it is committed */
    enum dsn_action action; /* FAILED, or RELAYED for success notices */
    struct spool_msg *msg;  /* the report, while SPOOLING is recorded before its commit */
    struct buf original;    /* read back, while the report waits to be built */
    struct bounce *next;    /* in the builder's queue */
};

/* Reports are built on the loop (one for 200 recipients takes about a millisecond of a debug
 * build), and the originals they quote come back from the thread pool many in one turn: they wait
 * in a queue that a task of the scheduler (sched_slice.c) builds from for a slice of each turn. */
struct dsn_builder {
    struct sched_task task;
    struct scheduler *s;
    struct bounce *first, **last;
    unsigned running : 1; /* among the scheduler's tasks */
};

static void bounce_free(struct bounce *bo)
{
    free(bo->to);
    free(bo->rcpts);
    free(bo->dsn_id);
    buf_free(&bo->original);
    free(bo);
}

/* A notice's recipients owe nothing more: it is out (a success notice), or could not be written
 * (a notice is not worth keeping the message or the recipient for; a delay warning waits for
 * the next step). */
static void bounce_settle_notices(struct bounce *bo)
{
    for (size_t i = 0; i < bo->nrcpts; i++) {
        struct rcpt *r = &bo->m->rcpts[bo->rcpts[i]];
        r->relay_notice = 0;
        free(r->notice_dsn);
        r->notice_dsn = NULL;
        if (bo->action == DSN_ACTION_DELAYED)
            r->delay_owed = r->delay_warned;
        r->busy = 0;
    }
}

/* The first wait before a DSN that could not be written is tried again, and the longest. */
#define BOUNCE_RETRY_FIRST_MS 1000
#define BOUNCE_RETRY_MAX_MS (5 * 60 * 1000)

/* The DSN could not be written: failed recipients stay FAILED (a success notice stays owed) and
 * their DSN is tried again after a wait that doubles with each failure in a row, up to
 * BOUNCE_RETRY_MAX_MS (the scheduler's due timer wakes the message: msg_bounce_retry_due); a delay
 * warning waits for its next step. */
static void bounce_abandon(struct bounce *bo, const char *why)
{
    struct qmsg *m = bo->m;
    struct logrec r;
    log_begin(&r, LOG_ERROR, "delivery.bounce_failed");
    log_str(&r, "queue_id", m->id);
    log_str(&r, "msg", why);
    if (bo->action != DSN_ACTION_DELAYED) {
        int64_t wait = BOUNCE_RETRY_MAX_MS;
        if (m->bounce_failures < 16 && (BOUNCE_RETRY_FIRST_MS << m->bounce_failures) < wait)
            wait = BOUNCE_RETRY_FIRST_MS << m->bounce_failures;
        m->bounce_failures++;
        m->bounce_retry_ms = wall_ms() + wait;
        for (size_t i = 0; i < bo->nrcpts; i++)
            m->rcpts[bo->rcpts[i]].busy = 0;
        log_int(&r, "retry_in_ms", wait);
    } else {
        bounce_settle_notices(bo);
        m->bouncing = 0;
    }
    log_end(&r);
    bounce_free(bo);
    msg_release(m, 1);
}

int msg_bounce_retry_due(struct qmsg *m, int64_t now)
{
    if (m->bounce_retry_ms == 0 || m->bounce_retry_ms > now)
        return 0;
    m->bounce_retry_ms = 0;
    m->bouncing = 0;
    return 1;
}

/* The DSN's envelope: from the null sender to the original's sender. */
static void dsn_envelope(const struct qmsg *m, const char **rcpt, struct spool_envelope *env)
{
    *env = (struct spool_envelope){
        .sender = "",
        .rcpts = rcpt,
        .nrcpts = 1,
        .client_addr = "127.0.0.1",
        .helo = m->s->cfg->server.hostname,
        .listener = "bounce",
        .received_at = wall_ms() / 1000,
        .flags = m->flags & (SPOOL_ENV_SMTPUTF8 | SPOOL_ENV_8BITMIME), /* RET=FULL's body */
    };
}

static void bounce_on_committed(struct spool_msg *msg, int status, void *arg);

/* Records, for the notice's recipients, what is owed (notice_only records: their delivery stays as
 * it is); cb runs once that is durable. */
static void notice_record(struct bounce *bo, enum spool_notice notice, const char *dsn_id,
                          spool_update_cb cb)
{
    struct spool_rcpt_update *ups = xcalloc(bo->nrcpts, sizeof *ups);
    for (size_t i = 0; i < bo->nrcpts; i++)
        ups[i] = (struct spool_rcpt_update){.rcpt = bo->rcpts[i],
                                            .notice_write = 1,
                                            .notice_only = 1,
                                            .notice = notice,
                                            .notice_dsn = dsn_id};
    spool_rcpt_update(bo->m->s->spool, bo->m->id, ups, bo->nrcpts, cb, bo);
    free(ups);
}

/* A clear that did not reach the spool: a restart finds the notice queued and sends no second. */
static void notice_log_unrecorded(const struct qmsg *m, const char *dsn_id, int status)
{
    if (status < 0)
        log_msg(LOG_ERROR, "spool.update_failed",
                "queue id %s: the success notice %s is not recorded as sent (%s)", m->id, dsn_id,
                strerror(-status));
}

/* The report's queue id is durable with the recipients: it may be committed now. */
static void notice_on_spooling(int status, void *arg)
{
    struct bounce *bo = arg;
    struct spool_msg *msg = bo->msg;
    bo->msg = NULL;
    if (status < 0) {
        spool_msg_abort(msg);
        bounce_abandon(bo, strerror(-status));
        return;
    }
    spool_msg_commit(msg, bounce_on_committed, bo);
}

/* The notice is spooled and the recipients say nothing is owed: it may go out. Should the clear
 * not be durable, a restart finds the report queued under the recorded id and sends no second. */
static void notice_on_cleared(int status, void *arg)
{
    struct bounce *bo = arg;
    struct qmsg *m = bo->m;
    struct scheduler *s = m->s;
    notice_log_unrecorded(m, bo->dsn_id, status);
    const char *rcpt = bo->to;
    struct spool_envelope env;
    dsn_envelope(m, &rcpt, &env);
    struct spool_entry entry = {.id = bo->dsn_id, .env = &env};
    scheduler_add(s, &entry);
    bounce_settle_notices(bo);
    bounce_free(bo);
    m->bouncing = 0;
    m->bounce_failures = 0;
    msg_release(m, 1);
}

static void bounce_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct bounce *bo = arg;
    struct qmsg *m = bo->m;
    struct scheduler *s = m->s;
    if (status < 0) {
        bounce_abandon(bo, strerror(-status));
        return;
    }
    const char *rcpt = bo->to;
    struct spool_envelope env;
    dsn_envelope(m, &rcpt, &env);
    struct spool_entry entry = {.id = spool_msg_id(msg), .env = &env};
    struct logrec r;
    log_begin(&r, LOG_INFO,
              bo->action == DSN_ACTION_RELAYED   ? "delivery.relayed_notice"
              : bo->action == DSN_ACTION_DELAYED ? "delivery.delay_notice"
                                                 : "delivery.bounce");
    log_str(&r, "queue_id", m->id);
    log_str(&r, "dsn_queue_id", entry.id);
    log_str(&r, "to", bo->to);
    log_str(&r, "tenant", m->tenant != NULL ? m->tenant : "");
    log_str(&r, "campaign", m->campaign != NULL ? m->campaign : "");
    log_bool(&r, "double_bounce", m->sender[0] == '\0');
    log_int(&r, "rcpts", (long long)bo->nrcpts);
    log_end(&r);
    if (bo->action == DSN_ACTION_RELAYED) {
        bo->dsn_id = xstrdup(entry.id);
        notice_record(bo, SPOOL_NOTICE_NONE, NULL, notice_on_cleared);
        return;
    }
    scheduler_add(s, &entry);
    struct update_batch *b = update_batch_new(m, bo->nrcpts);
    for (size_t i = 0; i < bo->nrcpts; i++) {
        struct rcpt *rc = &m->rcpts[bo->rcpts[i]];
        if (bo->action == DSN_ACTION_DELAYED) {
            rc->delay_warned = rc->delay_owed; /* the step goes to the spool with it */
            update_batch_add(b, bo->rcpts[i], rc->status, rc->attempts, rc->next_ms);
        } else {
            update_batch_add(b, bo->rcpts[i], SPOOL_RCPT_BOUNCED, rc->attempts, 0);
        }
    }
    update_batch_write(b);
    bounce_free(bo);
    m->bouncing = 0;
    m->bounce_failures = 0;
    msg_release(m, 1);
}

/* Builds the report quoting the original read back and spools it. */
static void bounce_build(struct bounce *bo)
{
    struct qmsg *m = bo->m;
    struct scheduler *s = m->s;
    const struct buf *body = &bo->original;
    struct dsn_rcpt *reports = xcalloc(bo->nrcpts, sizeof *reports);
    struct buf *diagnostics = xcalloc(bo->nrcpts, sizeof *diagnostics);
    for (size_t i = 0; i < bo->nrcpts; i++) {
        const struct rcpt *r = &m->rcpts[bo->rcpts[i]];
        if (r->code != 0)
            buf_printf(&diagnostics[i], "%d %s%s%s", r->code, r->enhanced,
                       r->enhanced[0] ? " " : "", r->text != NULL ? r->text : "");
        reports[i] = (struct dsn_rcpt){
            .rcpt = r->addr,
            .orcpt = r->orcpt,
            .action = bo->action,
            .status = r->enhanced,
            .remote_code = r->mta != NULL ? r->code : 0,
            .remote_mta = r->mta,
            .diagnostic = diagnostics[i].data != NULL ? diagnostics[i].data : "unknown failure",
            .last_attempt = wall_ms() / 1000,
            .category = bo->action != DSN_ACTION_FAILED
                            ? NULL
                            : bounce_category_name((enum bounce_category)r->category),
        };
    }
    struct dsn_params params = {
        .reporting_mta = s->cfg->server.hostname,
        .queue_id = m->id,
        .envid = m->envid,
        .sender = bo->to,
        .arrival = m->received_ms / 1000,
        .now = wall_ms() / 1000,
        .rcpts = reports,
        .nrcpts = bo->nrcpts,
        .original = body->data != NULL ? body->data : "",
        .original_len = body->len,
        /* A binary original would make the DSN binary too: its headers go back instead. */
        .return_full = m->ret == SMTP_DSN_RET_FULL && !(m->flags & SPOOL_ENV_BINARYMIME),
        .full_max = s->cfg->delivery.dsn_return_max,
        .boundary_seed = m->id,
    };
    struct buf dsn = BUF_INIT;
    int rc = dsn_build(&params, &dsn);
    buf_free(&bo->original);
    for (size_t i = 0; i < bo->nrcpts; i++)
        buf_free(&diagnostics[i]);
    free(diagnostics);
    free(reports);
    if (rc < 0) {
        buf_free(&dsn);
        bounce_abandon(bo, "the DSN could not be built");
        return;
    }
    const char *rcpt = bo->to;
    struct spool_envelope env;
    dsn_envelope(m, &rcpt, &env);
    struct spool_msg *msg = spool_msg_new(s->spool, &env);
    if (msg == NULL) {
        buf_free(&dsn);
        bounce_abandon(bo, "no queue file");
        return;
    }
    spool_msg_append(msg, dsn.data, dsn.len, NULL, NULL);
    buf_free(&dsn);
    if (bo->action == DSN_ACTION_RELAYED) {
        bo->msg = msg;
        notice_record(bo, SPOOL_NOTICE_SPOOLING, spool_msg_id(msg), notice_on_spooling);
        return;
    }
    spool_msg_commit(msg, bounce_on_committed, bo);
}

/* Takes the next report waiting off the queue and builds it (it may queue others). */
static void builder_build_next(struct dsn_builder *b)
{
    struct bounce *bo = b->first;
    b->first = bo->next;
    if (b->first == NULL)
        b->last = &b->first;
    bounce_build(bo);
}

/* A stop: the reports waiting are built at once (their messages hold the stop until spooled). */
static void builder_drain(struct dsn_builder *b)
{
    while (b->first != NULL)
        builder_build_next(b);
}

/* Builds the reports waiting, one at least, until the slice's time is spent. */
static int builder_step(struct sched_task *t)
{
    struct dsn_builder *b = container_of(t, struct dsn_builder, task);
    uint64_t start = uv_hrtime();
    do {
        builder_build_next(b);
    } while (b->first != NULL && uv_hrtime() - start < SCHED_SLICE_BUDGET_NS);
    if (b->first != NULL)
        return 0;
    b->running = 0;
    return SCHED_TASK_PARKED;
}

static void builder_finish(struct sched_task *t, int cancelled)
{
    (void)cancelled;
    struct dsn_builder *b = container_of(t, struct dsn_builder, task);
    b->running = 0;
    builder_drain(b);
}

void sched_dsn_init(struct scheduler *s)
{
    struct dsn_builder *b = xcalloc(1, sizeof *b);
    b->s = s;
    b->last = &b->first;
    b->task = (struct sched_task){.step = builder_step, .finish = builder_finish};
    s->dsn_builder = b;
}

void sched_dsn_free(struct scheduler *s)
{
    free(s->dsn_builder); /* empty: its messages held the stop */
}

static void bounce_on_original(int status, const struct spool_entry *entry, struct buf *body,
                               const char *why, void *arg)
{
    (void)entry;
    struct bounce *bo = arg;
    struct dsn_builder *b = bo->m->s->dsn_builder;
    if (status < 0) {
        bounce_abandon(bo, why != NULL ? why : strerror(-status));
        return;
    }
    bo->original = *body;
    *body = (struct buf)BUF_INIT;
    *b->last = bo;
    b->last = &bo->next;
    if (bo->m->s->stopping) { /* the slicer has stopped */
        builder_drain(b);
        return;
    }
    if (!b->running) {
        b->running = 1;
        sched_task_start(b->s, &b->task);
    }
}

/* Why a failed null-sender message (a DSN: RFC 5321 §6.1 forbids a DSN to it) is not reported to
 * the postmaster, or NULL when it is. */
static const char *double_bounce_drop_reason(struct qmsg *m)
{
    int to_postmaster = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        to_postmaster |= m->rcpts[i].status == SPOOL_RCPT_FAILED &&
                         postmaster_is_mailbox(m->s->cfg, m->rcpts[i].addr);
    return postmaster_report_refusal(m->s->cfg, &m->s->postmaster, to_postmaster, wall_ms());
}

/* A failed recipient that gets a DSN: one of a null-sender message (its report goes to the
 * postmaster, or nowhere) or one whose NOTIFY, when given, asks for failures (RFC 3461 §4.1). */
static int rcpt_failure_reported(const struct qmsg *m, const struct rcpt *r)
{
    return m->sender[0] == '\0' || r->notify == 0 || (r->notify & SMTP_DSN_NOTIFY_FAILURE);
}

/* Marks the failed recipients BOUNCED without a DSN (all, or those whose NOTIFY asked for none);
 * the log is the only place that says so, and why. */
static void msg_drop_failed(struct qmsg *m, int all, const char *event, const char *why)
{
    struct update_batch *b = update_batch_new(m, m->nrcpts);
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct rcpt *r = &m->rcpts[i];
        if (r->status != SPOOL_RCPT_FAILED || r->busy || (!all && rcpt_failure_reported(m, r)))
            continue;
        struct logrec rec;
        log_begin(&rec, LOG_WARN, event);
        log_str(&rec, "queue_id", m->id);
        log_str(&rec, "rcpt", r->addr);
        log_str(&rec, "msg", why);
        log_end(&rec);
        update_batch_add(b, i, SPOOL_RCPT_BOUNCED, r->attempts, 0);
    }
    update_batch_write(b);
}

/* Whether the recipient is one a report of this action is for (and none is under way). */
static int rcpt_owed(const struct rcpt *r, enum dsn_action action)
{
    if (r->busy)
        return 0;
    if (action == DSN_ACTION_DELAYED)
        return r->status == SPOOL_RCPT_DEFERRED && r->delay_owed > r->delay_warned;
    return action == DSN_ACTION_RELAYED ? r->relay_notice : r->status == SPOOL_RCPT_FAILED;
}

/* A notice a restart found being spooled as notice_dsn: when that message is queued, it is the
 * notice and nothing more is owed; when it is not, its commit never finished (the clear is durable
 * before a notice is delivered) and the notice is written again. */
struct notice_check {
    struct qmsg *m;
    size_t rcpt;
};

static void notice_check_on_cleared(int status, void *arg)
{
    struct notice_check *c = arg;
    struct qmsg *m = c->m;
    struct rcpt *r = &m->rcpts[c->rcpt];
    notice_log_unrecorded(m, r->notice_dsn, status);
    r->relay_notice = 0;
    free(r->notice_dsn);
    r->notice_dsn = NULL;
    r->busy = 0;
    m->bouncing = 0;
    free(c);
    msg_release(m, 1);
}

static void notice_check_on_peeked(int status, const struct spool_entry *entry, struct buf *body,
                                   const char *why, void *arg)
{
    (void)entry, (void)body, (void)why;
    struct notice_check *c = arg;
    struct qmsg *m = c->m;
    struct rcpt *r = &m->rcpts[c->rcpt];
    if (status == 0) {
        struct spool_rcpt_update u = {
            .rcpt = c->rcpt, .notice_write = 1, .notice_only = 1, .notice = SPOOL_NOTICE_NONE};
        spool_rcpt_update(m->s->spool, m->id, &u, 1, notice_check_on_cleared, c);
        return;
    }
    free(r->notice_dsn); /* not queued: owed still */
    r->notice_dsn = NULL;
    r->busy = 0;
    m->bouncing = 0;
    free(c);
    msg_release(m, 1);
}

/* Starts the check of a recipient whose notice_dsn is set; returns 1, or 0 when there is none. */
static int notice_check_start(struct qmsg *m)
{
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct rcpt *r = &m->rcpts[i];
        if (r->busy || !r->relay_notice || r->notice_dsn == NULL)
            continue;
        struct notice_check *c = xcalloc(1, sizeof *c);
        c->m = m;
        c->rcpt = i;
        r->busy = 1;
        m->bouncing = 1;
        msg_hold(m, 1);
        spool_peek(m->s->spool, r->notice_dsn, notice_check_on_peeked, c);
        return 1;
    }
    return 0;
}

/* Reads the original's header section (or all of it, for RET=FULL), builds the report for the
 * recipients it is owed to and spools it with a null sender. */
static void bounce_start(struct qmsg *m, enum dsn_action action)
{
    struct bounce *bo = xcalloc(1, sizeof *bo);
    bo->m = m;
    bo->action = action;
    bo->to = xstrdup(m->sender[0] != '\0' ? m->sender : m->s->cfg->server.postmaster);
    bo->rcpts = xmalloc(m->nrcpts * sizeof *bo->rcpts);
    for (size_t i = 0; i < m->nrcpts; i++)
        if (rcpt_owed(&m->rcpts[i], action)) {
            bo->rcpts[bo->nrcpts++] = i;
            m->rcpts[i].busy = 1;
        }
    m->bouncing = 1;
    msg_hold(m, 1);
    spool_load(m->s->spool, m->id, bounce_on_original, bo);
}

void scheduler_set_suppression(struct scheduler *s, struct suppression *store)
{
    s->suppression = store;
}

/* A recipient that failed because it does not exist (bad-mailbox) or its domain does not
 * (bad-domain) goes on the global list: that holds whichever tenant writes to it next. Once per
 * failure: a DSN that could not be written and is tried again does not add it again. */
static void rcpt_suppress_hard_bounce(const struct scheduler *s, struct rcpt *r)
{
    if (r->suppression_noted)
        return;
    r->suppression_noted = 1;
    enum bounce_category cat = r->category;
    if (cat != BOUNCE_CAT_BAD_MAILBOX && cat != BOUNCE_CAT_BAD_DOMAIN)
        return;
    char reason[SUPPRESSION_NOTE_MAX + 1];
    snprintf(reason, sizeof reason, "%d %s %s", r->code, r->enhanced, r->text ? r->text : "");
    uint64_t keep_s = s->cfg->suppression.hard_bounce_expiry_ms / 1000;
    suppression_add(s->suppression, NULL, r->addr,
                    cat == BOUNCE_CAT_BAD_MAILBOX ? SUPPRESSION_BAD_MAILBOX
                                                  : SUPPRESSION_BAD_DOMAIN,
                    reason, keep_s > 0 ? (int64_t)(wall_ms() / 1000 + keep_s) : 0);
}

/* Failed recipients owe the sender one DSN (RFC 3464), or the postmaster when the sender is null,
 * and are marked BOUNCED once it is spooled; after them, success notices go out, then delay
 * warnings (whose step is recorded in the spool, so a restart does not repeat them). */
void msg_bounce(struct qmsg *m)
{
    size_t failed = 0, relayed = 0, delayed = 0;
    int suppress = m->s->suppression != NULL && m->s->cfg->suppression.enabled;
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (suppress && rcpt_owed(&m->rcpts[i], DSN_ACTION_FAILED))
            rcpt_suppress_hard_bounce(m->s, &m->rcpts[i]);
        failed += rcpt_owed(&m->rcpts[i], DSN_ACTION_FAILED);
        relayed += rcpt_owed(&m->rcpts[i], DSN_ACTION_RELAYED);
        delayed += rcpt_owed(&m->rcpts[i], DSN_ACTION_DELAYED);
    }
    if (failed == 0) {
        if (relayed > 0 && notice_check_start(m))
            return;
        if (relayed > 0 || delayed > 0)
            bounce_start(m, relayed > 0 ? DSN_ACTION_RELAYED : DSN_ACTION_DELAYED);
        return;
    }
    const char *drop = m->sender[0] == '\0' ? double_bounce_drop_reason(m) : NULL;
    if (drop != NULL) {
        msg_drop_failed(m, 1, "delivery.double_bounce", drop);
        return;
    }
    size_t wanted = 0, unwanted = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i].status == SPOOL_RCPT_FAILED && !m->rcpts[i].busy)
            rcpt_failure_reported(m, &m->rcpts[i]) ? wanted++ : unwanted++;
    if (unwanted > 0)
        msg_drop_failed(m, 0, "delivery.dsn_not_requested",
                        "NOTIFY asked for no failure DSN: none is sent");
    if (wanted > 0)
        bounce_start(m, DSN_ACTION_FAILED);
}
