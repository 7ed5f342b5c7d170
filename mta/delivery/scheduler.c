#include "mta/delivery/scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/minheap.h"
#include "lib/smtp_dsn.h"
#include "lib/strmap.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/bounce_class.h"
#include "mta/delivery/bounce_category.h"
#include "mta/delivery/dane.h"
#include "mta/delivery/destination.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/route.h"
#include "mta/delivery/sched_int.h"
#include "mta/delivery/shaping.h"
#include "mta/delivery/shared_limits.h"
#include "mta/delivery/tls_rpt.h"
#include "mta/delivery/warmup.h"
#include "spool/envelope.h"

/* Messages dispatched per timer tick, so a queue of many due messages (after a restart or a
 * `retry all`) does not hold the loop; the rest follow on the next turn. Their recipients count
 * too: 256 messages of ten recipients each took a tick of 25 ms of a debug build's CPU, and more. */
#define DISPATCH_BATCH 256
#define DISPATCH_RCPTS 128
/* How often destinations with nothing to do are forgotten. */
#define SWEEP_INTERVAL_MS (60 * 1000)

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- holds: what keeps a message (and a stopping scheduler) busy ---- */

void msg_hold(struct qmsg *m, unsigned n)
{
    m->holds += n;
    m->s->holds += n;
}

void msg_free(struct qmsg *m)
{
    sched_bounce_forget(m);
    sched_count_drop(m);
    for (size_t i = 0; i < m->nrcpts; i++) {
        free(m->rcpts[i].addr);
        free(m->rcpts[i].text);
        free(m->rcpts[i].mta);
        free(m->rcpts[i].orcpt);
        free(m->rcpts[i].notice_dsn);
    }
    free(m->rcpts);
    free(m->sender);
    free(m->tenant);
    free(m->campaign);
    free(m->envid);
    free(m);
}

/* Takes the message out of the queue and off the disk. */
static void msg_remove(struct qmsg *m)
{
    struct scheduler *s = m->s;
    minheap_remove(&s->due, &m->due);
    strmap_del(&s->msgs, m->id);
    spool_msg_remove(s->spool, m->id, NULL, NULL);
    msg_free(m);
    sched_active_fill(s); /* room for one more */
}

void msg_release(struct qmsg *m, unsigned n)
{
    struct scheduler *s = m->s;
    m->holds -= n;
    s->holds -= n;
    if (m->holds == 0 && m->deleted)
        msg_remove(m);
    else if (!s->stopping)
        msg_settle(m);
    scheduler_check_stopped(s);
}

/* Puts the message in the due heap at its earliest waiting recipient (or DSN to write again), or
 * takes it out. */
static void msg_reschedule(struct qmsg *m)
{
    int64_t due = m->bounce_retry_ms != 0 ? m->bounce_retry_ms : INT64_MAX;
    int held = sched_tenant_held(m->s, m); /* then due only at expiry */
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (!rcpt_waiting(&m->rcpts[i]))
            continue;
        int64_t at = held ? sched_tenant_hold_ends(m, &m->rcpts[i]) : m->rcpts[i].next_ms;
        due = at < due ? at : due;
    }
    if (due == INT64_MAX || m->deleted || m->bounce_selected)
        minheap_remove(&m->s->due, &m->due);
    else
        minheap_set(&m->s->due, &m->due, (uint64_t)(due > 0 ? due : 0));
    scheduler_arm(m->s);
}

/* text: the reason as recorded (the reply's, or with why Sluice gave up), for the category of a
 * result that is not a 5xx (whose category came with it). */
static void log_delivery(const struct qmsg *m, const struct rcpt *r, const char *event,
                         const struct smtp_client_outcome *o, const char *text, const char *mx_name,
                         int64_t next_ms, int64_t now)
{
    enum bounce_class cls = bounce_classify(o->code, o->enhanced, o->text);
    struct logrec rec;
    log_begin(&rec, strcmp(event, "delivery.delivered") == 0 ? LOG_INFO : LOG_WARN, event);
    log_str(&rec, "queue_id", m->id);
    log_str(&rec, "from", m->sender);
    log_str(&rec, "rcpt", r->addr);
    log_str(&rec, "tenant", m->tenant != NULL ? m->tenant : "");
    log_str(&rec, "campaign", m->campaign != NULL ? m->campaign : "");
    if (mx_name != NULL)
        log_str(&rec, "mx", mx_name);
    log_int(&rec, "code", o->code);
    if (o->enhanced[0])
        log_str(&rec, "enhanced", o->enhanced);
    log_str(&rec, "stage", o->stage != NULL ? o->stage : "");
    log_bool(&rec, "remote", o->remote);
    log_str(&rec, "reply", o->text != NULL ? o->text : "");
    if (cls != BOUNCE_NONE) {
        log_str(&rec, "class", bounce_class_name(cls));
        log_str(&rec, "category",
                bounce_category_name(o->code >= 500
                                         ? (enum bounce_category)o->category
                                         : bounce_category_of(o->code, o->enhanced, text)));
    }
    log_int(&rec, "attempts", (long long)r->attempts + 1);
    log_int(&rec, "delay_ms", (long long)(now - m->received_ms));
    if (next_ms > 0)
        log_int(&rec, "retry_in_ms", (long long)(next_ms - now));
    log_end(&rec);
}

int64_t msg_expires_ms(const struct qmsg *m, const struct config_shaping *sh)
{
    /* The spool keeps whole seconds of arrival: round up, so nothing expires early. */
    return m->received_ms + 999 + (int64_t)sh->expire_ms;
}

/* When a recipient that got a temporary failure is tried again: the shaping rule's schedule
 * (the last step repeats), never after expiry; 0 when it has expired. */
static int64_t retry_at(const struct qmsg *m, const struct config_shaping *sh, unsigned attempts,
                        int64_t now)
{
    int64_t expires = msg_expires_ms(m, sh);
    if (now >= expires)
        return 0;
    uint64_t delay = 5 * 60 * 1000; /* only when a schedule is empty, which config forbids */
    if (sh->nretry > 0) {
        size_t step = attempts > 0 ? attempts - 1 : 0;
        delay = sh->retry_ms[step < sh->nretry ? step : sh->nretry - 1];
    }
    int64_t at = now + (int64_t)delay;
    return at < expires ? at : expires;
}

/* How many of delivery.delay_warning's ages a message received at received_ms has reached. */
static unsigned delay_steps(const struct config *cfg, int64_t received_ms, int64_t now)
{
    unsigned steps = 0;
    for (size_t i = 0; i < cfg->delivery.ndelay_warning; i++)
        steps += now - received_ms >= (int64_t)cfg->delivery.delay_warning_ms[i];
    return steps;
}

/* The metrics count what is recorded: an expiry is a bounce, not the deferral its last reply
 * says; a job that had no destination (its route failed, held mail expired) counts under the
 * destination its domain would have. */
static void count_results(const struct qmsg *m, const char *key, const struct job *job,
                          const struct mail_results *counts)
{
    char own[512];
    if (key == NULL)
        msg_dest_key(m, job->domain, own, sizeof own);
    mail_metrics_results(key != NULL ? key : own, m->tenant, job->egress, counts);
}

/* The destination tried the job (or its route failed): record each recipient's result. */
static void scheduler_on_job_done(void *arg, const char *key, struct job *job,
                                  const struct smtp_client_outcome *outcomes, const char *mx_name)
{
    (void)arg;
    struct qmsg *m = job->msg;
    unsigned held = (unsigned)job->nrcpts;
    int64_t now = wall_ms(), deferred_until = 0;
    /* By the loop's clock, which the destination expires queued jobs by (a few ms off the wall's).
     */
    int expired = job->expires_at <= uv_now(m->s->loop);
    struct update_batch *b = update_batch_new(m, job->nrcpts);
    struct mail_results counts = {0};
    for (size_t i = 0; i < job->nrcpts; i++) {
        const struct smtp_client_outcome *o = &outcomes[i];
        struct rcpt *r = &m->rcpts[job->rcpts[i].index];
        unsigned attempts = r->attempts + 1;
        enum spool_rcpt_status status;
        int64_t next = 0;
        const char *event;
        struct buf text = BUF_INIT;
        buf_printf(&text, "%s", o->text != NULL ? o->text : "");
        if (o->code >= 200 && o->code < 300) {
            status = SPOOL_RCPT_DELIVERED, event = "delivery.delivered";
        } else if (o->code >= 500) {
            status = SPOOL_RCPT_FAILED, event = "delivery.failed";
        } else if (!expired && (next = retry_at(m, job->shaping, attempts, now)) > 0) {
            /* Held back by a reply rule's suspension: tried when it ends, not later. */
            if (job->hold_ms >= 0 && now + job->hold_ms < next)
                next = now + job->hold_ms;
            status = SPOOL_RCPT_DEFERRED, event = "delivery.deferred";
        } else {
            status = SPOOL_RCPT_FAILED, event = "delivery.expired";
            buf_printf(&text, " (gave up: the message has been in the queue too long)");
        }
        log_delivery(m, r, event, o, text.data, mx_name, next, now);
        if (status == SPOOL_RCPT_DELIVERED)
            mail_metrics_delivered_after(now - m->received_ms);
        rcpt_set_result(r, o->code, o->enhanced, text.data,
                        o->remote && status != SPOOL_RCPT_DELIVERED ? mx_name : NULL);
        if (status == SPOOL_RCPT_FAILED)
            r->category = o->code >= 500 ? (unsigned)o->category
                                         : bounce_category_of(o->code, o->enhanced, r->text);
        /* RFC 3461 §5.2.2: a server that offers DSN reports success itself; else Sluice does. */
        r->relay_notice = status == SPOOL_RCPT_DELIVERED && !o->dsn_offered &&
                          m->sender[0] != '\0' && (r->notify & SMTP_DSN_NOTIFY_SUCCESS);
        /* RFC 3461 §4.1: a delay DSN only when asked for, once per age reached. */
        if (status == SPOOL_RCPT_DEFERRED && m->sender[0] != '\0' &&
            (r->notify & SMTP_DSN_NOTIFY_DELAY))
            r->delay_owed = delay_steps(m->s->cfg, m->received_ms, now);
        buf_free(&text);
        mail_results_add(&counts,
                         status == SPOOL_RCPT_DELIVERED  ? MAIL_DELIVERED
                         : status == SPOOL_RCPT_DEFERRED ? MAIL_DEFERRED
                                                         : MAIL_BOUNCED,
                         r->category);
        r->busy = 0; /* update_batch_add holds it again until written */
        update_batch_add(b, job->rcpts[i].index, status, attempts, next);
        if (status == SPOOL_RCPT_DEFERRED && next > deferred_until)
            deferred_until = next;
    }
    if (deferred_until > 0 && key != NULL)
        sched_retain_deferred(m->s, key, deferred_until);
    count_results(m, key, job, &counts);
    job_free(job);
    update_batch_write(b);
    msg_release(m, held);
}

/* A job left a destination untried (reload, stop): its recipients wait again. */
static void scheduler_on_job_returned(void *arg, struct job *job)
{
    (void)arg;
    struct qmsg *m = job->msg;
    unsigned held = (unsigned)job->nrcpts;
    for (size_t i = 0; i < job->nrcpts; i++)
        m->rcpts[job->rcpts[i].index].busy = 0;
    job_free(job);
    msg_release(m, held);
}

static void scheduler_release_dest(struct scheduler *s, struct dest *d)
{
    dest_free(d);
    s->retired_dests--;
    scheduler_check_stopped(s);
}

static void scheduler_on_dest_idle(void *arg, struct dest *d)
{
    struct scheduler *s = arg;
    if (strmap_get(&s->retired, dest_key(d)) == d) {
        if (!dest_unused(d))
            return; /* a successor may still take its pauses over (or the sweep drops it) */
        strmap_del(&s->retired, dest_key(d));
    }
    scheduler_release_dest(s, d);
}

/* ---- routing: recipients -> destinations ---- */

/* The destination of a routed domain (see shaping_dest_for), made when it is the first; NULL
 * when there is none and the route failed. */
/* A suspension named before the destination existed holds from its first mail on. */
static void held_apply(struct scheduler *s, struct dest *d)
{
    uint64_t *until = strmap_del(&s->held, dest_key(d));
    uint64_t now = uv_now(s->loop);
    if (until != NULL && *until > now)
        dest_suspend(d, *until == UINT64_MAX ? 0 : *until - now);
    free(until);
}

static struct dest *scheduler_dest_for(struct scheduler *s, const char *domain,
                                       const struct mx_list *mx, const char *tenant,
                                       const struct config_shaping **shaping)
{
    struct shaping_dest sd = shaping_dest_for(s->cfg, domain, mx);
    *shaping = sd.values;
    const char *own = sched_tenant_pool(s->cfg, tenant, sd.values);
    char key[512];
    sched_tenant_key(sd.key, own, key, sizeof key);
    struct dest *d = strmap_get(&s->dests, key);
    if (d == NULL && mx != NULL) {
        const struct config_egress_pool *pool =
            config_egress_pool_find(s->cfg, own != NULL ? own : sd.values->pool);
        struct dest *predecessor = strmap_del(&s->retired, key);
        d = dest_new(&s->env, key, s->cfg, sd.values, pool, predecessor);
        strmap_put(&s->dests, key, d);
        held_apply(s, d);
        sched_tenant_dest_held(s, d);
        if (predecessor != NULL && dest_idle(predecessor))
            scheduler_release_dest(s, predecessor);
    }
    return d;
}

static void scheduler_on_sts(void *arg, const struct mta_sts_policy *policy);

static void scheduler_on_route(void *arg, struct mx_list *mx,
                               const struct smtp_client_outcome *fail)
{
    struct job *job = arg;
    struct scheduler *s = job->msg->s;
    job->mx = mx;
    if (s->stopping) {
        scheduler_on_job_returned(s, job);
        return;
    }
    struct dest *d = scheduler_dest_for(s, job->domain, mx, job->tenant, &job->shaping);
    int64_t left = msg_expires_ms(job->msg, job->shaping) - wall_ms();
    job->expires_at = uv_now(s->loop) + (uint64_t)(left > 0 ? left : 0);
    if (fail != NULL) {
        struct smtp_client_outcome one = *fail;
        bounce_category_outcomes(&one, 1);
        msg_job_fail(job, d != NULL ? dest_key(d) : NULL, &one);
        return;
    }
    /* With tls: mta-sts (or dane), the domain's policy goes with its MX list to the
     * connections; the job waits for it when it is not known yet. A TLS report goes whatever
     * the policy (destination.c), so it needs none. */
    const struct mta_sts_policy *sts = NULL;
    if ((job->shaping->tls == SHAPING_TLS_MTA_STS || job->shaping->tls == SHAPING_TLS_DANE) &&
        !(job->flags & SPOOL_ENV_TLS_REPORT) &&
        mta_sts_get(s->sts, job->domain, &sts, scheduler_on_sts, job) == 0)
        return;
    mx_list_set_sts(mx, sts);
    dest_enqueue(d, job);
}

static void scheduler_on_sts(void *arg, const struct mta_sts_policy *policy)
{
    struct job *job = arg;
    struct scheduler *s = job->msg->s;
    if (s->stopping) {
        scheduler_on_job_returned(s, job);
        return;
    }
    mx_list_set_sts(job->mx, policy);
    dest_enqueue(scheduler_dest_for(s, job->domain, job->mx, job->tenant, &job->shaping), job);
}

/* Sends every recipient whose time has come on its way: one route lookup per domain. */
static void msg_dispatch(struct qmsg *m, int64_t now)
{
    struct scheduler *s = m->s;
    if (m->bounce_selected)
        return; /* out of the due heap until its slice */
    int bounce_due = msg_bounce_retry_due(m, now), held = sched_tenant_held(s, m);
    if (held)
        sched_tenant_expire_held(m, now);
    for (size_t i = 0; i < m->nrcpts && !held; i++) {
        if (!rcpt_waiting(&m->rcpts[i]) || m->rcpts[i].next_ms > now)
            continue;
        struct job *job = msg_job_new(m, i, rcpt_domain(&m->rcpts[i]), now);
        msg_hold(m, (unsigned)job->nrcpts);
        if (route_resolve(s->loop, s->dns, s->cfg, job->domain, scheduler_on_route, job) < 0) {
            struct smtp_client_outcome fail = {.code = 451,
                                               .enhanced = "4.4.3",
                                               .stage = "DNS lookup",
                                               .text = "the resolver is not available"};
            scheduler_on_route(job, NULL, &fail);
        }
    }
    if (bounce_due)
        msg_settle(m);
    else
        msg_reschedule(m);
}

void msg_settle(struct qmsg *m)
{
    if (m->deleted)
        return;
    int all_final = 1, failed = 0, notices = 0;
    for (size_t i = 0; i < m->nrcpts; i++) {
        all_final &= rcpt_final(&m->rcpts[i]);
        failed |= m->rcpts[i].status == SPOOL_RCPT_FAILED && !m->rcpts[i].busy;
        notices |= m->rcpts[i].relay_notice ||
                   (m->rcpts[i].delay_owed > m->rcpts[i].delay_warned && !m->rcpts[i].busy &&
                    m->rcpts[i].status == SPOOL_RCPT_DEFERRED);
    }
    if (m->holds == 0 && all_final && !notices) {
        msg_remove(m);
        return;
    }
    /* Like a queue manager's pass: the DSN waits until every attempt in flight for the message
     * has reported, so failures found together go out in one DSN. */
    if ((failed || notices) && !m->bouncing && m->holds == 0 && m->s->started && !m->s->stopping)
        msg_bounce(m);
    sched_bounce_settled(m);
    msg_reschedule(m);
    sched_active_evict(m);
}

/* ---- the due timer ---- */

static void scheduler_on_timer(uv_timer_t *t)
{
    struct scheduler *s = t->data;
    int64_t now = wall_ms();
    size_t rcpts = 0;
    for (int n = 0; n < DISPATCH_BATCH && rcpts < DISPATCH_RCPTS && !s->stopping; n++) {
        struct minheap_node *top = minheap_top(&s->due);
        if (top == NULL || (int64_t)top->key > now)
            break;
        minheap_remove(&s->due, top);
        struct qmsg *m = container_of(top, struct qmsg, due);
        rcpts += m->nrcpts;
        msg_dispatch(m, now);
    }
    sched_active_fill(s);
    scheduler_arm(s);
}

void scheduler_arm(struct scheduler *s)
{
    if (!s->started || s->stopping)
        return;
    struct minheap_node *top = minheap_top(&s->due);
    int64_t at = sched_active_fill_at(s);
    if (top != NULL && (int64_t)top->key < at)
        at = (int64_t)top->key;
    if (at == INT64_MAX) {
        uv_timer_stop(&s->timer);
        return;
    }
    int64_t wait = at - wall_ms();
    uv_timer_start(&s->timer, scheduler_on_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

struct key_list {
    char **keys;
    size_t n;
};

static void collect_unused_dest(const char *key, void *value, void *arg)
{
    struct key_list *kl = arg;
    if (dest_unused(value))
        kl->keys[kl->n++] = xstrdup(key);
}

/* The keys of map's destinations that dest_unused finds nothing in. */
static struct key_list unused_dests(struct strmap *map)
{
    struct key_list kl = {xcalloc(map->count + 1, sizeof(char *)), 0};
    strmap_each(map, collect_unused_dest, &kl);
    return kl;
}

static void held_log(enum log_level level, const char *event, const char *name, const char *msg);

/* Destinations nothing was sent to lately are forgotten, so thousands of domains do not pile up,
 * unless deferred mail for them waits (sched_retain.c);
 * so are retired ones whose pauses ended without a successor. */
static void scheduler_on_sweep(uv_timer_t *t)
{
    struct scheduler *s = t->data;
    int64_t now = wall_ms();
    sched_retain_prune(s, now);
    struct key_list kl = unused_dests(&s->dests);
    for (size_t i = 0; i < kl.n; i++) {
        if (!sched_retain_holds(s, kl.keys[i], now)) { /* kept while its deferred mail waits */
            held_log(LOG_DEBUG, "delivery.forgotten", kl.keys[i], "idle with nothing waiting");
            dest_free(strmap_del(&s->dests, kl.keys[i]));
        }
        free(kl.keys[i]);
    }
    free(kl.keys);
    kl = unused_dests(&s->retired);
    for (size_t i = 0; i < kl.n; i++) {
        scheduler_release_dest(s, strmap_del(&s->retired, kl.keys[i]));
        free(kl.keys[i]);
    }
    free(kl.keys);
}

/* ---- life cycle ---- */

static void scheduler_on_report_queued(void *arg, const struct spool_entry *entry)
{
    scheduler_add(arg, entry);
}

static void scheduler_on_reports_stopped(void *arg)
{
    struct scheduler *s = arg;
    s->holds--;
    scheduler_check_stopped(s);
}

struct tls_rpt *scheduler_tls_rpt(struct scheduler *s)
{
    return s->env.tls_rpt;
}

struct scheduler *scheduler_new(uv_loop_t *loop, struct spool *sp, struct dns_resolver *dns,
                                SSL_CTX *tls_client_ctx, struct config *cfg)
{
    struct scheduler *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->spool = sp;
    s->dns = dns;
    s->cfg = config_ref(cfg);
    s->env = (struct dest_env){
        .loop = loop,
        .spool = sp,
        .tls_ctx = tls_client_ctx,
        .dane = dane_new(dns, tls_client_ctx),
        .warmup = warmup_new(loop, cfg->server.spool),
        .hooks = {scheduler_on_job_done, scheduler_on_job_returned, scheduler_on_dest_idle, s},
    };
    s->msgs = (struct strmap)STRMAP_INIT;
    s->dests = (struct strmap)STRMAP_INIT;
    s->retired = (struct strmap)STRMAP_INIT;
    s->held = (struct strmap)STRMAP_INIT;
    s->retain = (struct strmap)STRMAP_INIT;
    s->suspensions = sched_suspended_open(s, cfg->server.spool);
    s->due = (struct minheap)MINHEAP_INIT;
    s->arrivals = (struct minheap)MINHEAP_INIT;
    s->waiting = (struct queue_index)QUEUE_INDEX_INIT;
    s->loading = (struct strmap)STRMAP_INIT;
    s->sts = mta_sts_new(loop, dns, cfg->server.spool, cfg);
    s->env.tls_rpt = tls_rpt_new(loop, dns, sp, cfg, scheduler_on_report_queued, s);
    mta_sts_set_report(s->sts, s->env.tls_rpt);
    uv_timer_init(loop, &s->timer);
    uv_timer_init(loop, &s->sweep);
    s->timer.data = s->sweep.data = s;
    sched_slice_init(s);
    sched_dsn_init(s);
    return s;
}

static void retire_dest(const char *key, void *value, void *arg)
{
    struct scheduler *s = arg;
    struct dest *d = value;
    s->retired_dests++;
    dest_retire(d, s->stopping);
    if (!s->stopping)
        strmap_put(&s->retired, key, d);
    if (dest_idle(d))
        scheduler_on_dest_idle(s, d);
}

/* Stopping: a retired destination waits for no successor; its connections are dropped. */
static void abort_retired_dest(const char *key, void *value, void *arg)
{
    (void)key;
    struct scheduler *s = arg;
    struct dest *d = value;
    dest_retire(d, 1);
    if (dest_idle(d))
        scheduler_release_dest(s, d);
}

/* Every destination stops taking jobs (those queued come back) and ends once idle. */
static void scheduler_retire_dests(struct scheduler *s)
{
    if (s->stopping) {
        struct strmap waiting = s->retired;
        s->retired = (struct strmap)STRMAP_INIT;
        strmap_each(&waiting, abort_retired_dest, s);
        strmap_free(&waiting);
    }
    struct strmap old = s->dests;
    s->dests = (struct strmap)STRMAP_INIT;
    strmap_each(&old, retire_dest, s);
    strmap_free(&old);
}

void scheduler_share_limits(struct scheduler *s, struct shared_limits *shared)
{
    s->env.shared = shared;
}

void scheduler_set_config(struct scheduler *s, struct config *cfg)
{
    config_ref(cfg);
    config_unref(s->cfg);
    s->cfg = cfg;
    mta_sts_configure(s->sts, cfg);
    tls_rpt_configure(s->env.tls_rpt, cfg);
    scheduler_retire_dests(s);
    scheduler_arm(s);
}

static void collect_key(const char *key, void *value, void *arg)
{
    (void)value;
    struct key_list *kl = arg;
    kl->keys[kl->n++] = xstrdup(key);
}

void scheduler_start(struct scheduler *s)
{
    s->started = 1;
    /* Failed recipients found at recovery still owe their DSN (settling may remove messages, so
     * walk a copy of the keys). */
    struct key_list kl = {xcalloc(s->msgs.count + 1, sizeof(char *)), 0};
    strmap_each(&s->msgs, collect_key, &kl);
    for (size_t i = 0; i < kl.n; i++) {
        struct qmsg *m = strmap_get(&s->msgs, kl.keys[i]);
        if (m != NULL)
            msg_settle(m);
        free(kl.keys[i]);
    }
    free(kl.keys);
    uv_timer_start(&s->sweep, scheduler_on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    sched_active_recover(s);
    sched_active_fill(s);
    scheduler_arm(s);
}

void scheduler_check_stopped(struct scheduler *s)
{
    if (!s->stopping || s->stopped_cb == NULL || s->holds > 0 || s->loads > 0 ||
        s->retired_dests > 0 || s->listing)
        return;
    void (*cb)(void *) = s->stopped_cb;
    s->stopped_cb = NULL;
    cb(s->stopped_arg);
}

void scheduler_stop(struct scheduler *s, void (*cb)(void *arg), void *arg)
{
    s->stopping = 1;
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->sweep);
    sched_slice_stop(s);
    sched_bounce_stop(s);
    mta_sts_stop(s->sts); /* jobs waiting for a policy come back */
    s->holds++;           /* until the reports being spooled and the counts' file are written */
    tls_rpt_stop(s->env.tls_rpt, scheduler_on_reports_stopped, s);
    /* Not stopped before every destination is retired: one already idle must not end the stop
     * while a later one still has connections (an idle one QUITting). */
    scheduler_retire_dests(s);
    s->stopped_cb = cb;
    s->stopped_arg = arg;
    scheduler_check_stopped(s);
}

static void free_msg_entry(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    msg_free(value);
}

/* The last of the three handles to close (two timers, the slicer) frees the scheduler. */
static void scheduler_on_closed(uv_handle_t *h)
{
    struct scheduler *s = h->data;
    if (++s->closed == 3)
        free(s);
}

void scheduler_free(struct scheduler *s)
{
    strmap_each(&s->msgs, free_msg_entry, NULL);
    strmap_free(&s->msgs);
    strmap_free(&s->dests);
    strmap_free(&s->retired);
    strmap_free_values(&s->held);
    sched_retain_free(s);
    sched_suspended_close(s->suspensions);
    sched_tenant_holds_free(s);
    sched_bounce_free(s);
    sched_dsn_free(s);
    minheap_free(&s->due);
    minheap_free(&s->arrivals);
    sched_active_free(s);
    config_unref(s->cfg);
    mta_sts_free(s->sts);
    tls_rpt_free(s->env.tls_rpt);
    warmup_free(s->env.warmup);
    dane_free(s->env.dane);
    uv_close((uv_handle_t *)&s->sweep, scheduler_on_closed);
    uv_close((uv_handle_t *)&s->timer, scheduler_on_closed);
    sched_slice_close(s, scheduler_on_closed);
}

/* When the message's earliest recipient waiting to be tried is due (unix ms), INT64_MAX when none
 * waits. */
static int64_t entry_due_ms(const struct spool_entry *entry)
{
    if (entry->rcpt_state == NULL) /* just accepted: every recipient pending */
        return 0;
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < entry->env->nrcpts; i++) {
        const struct spool_rcpt_state *st = &entry->rcpt_state[i];
        int64_t at = st->status == SPOOL_RCPT_DEFERRED  ? st->next_attempt * 1000
                     : st->status == SPOOL_RCPT_PENDING ? 0
                                                        : INT64_MAX;
        due = at < due ? at : due;
    }
    return due;
}

void scheduler_add(struct scheduler *s, const struct spool_entry *entry)
{
    if (strmap_get(&s->msgs, entry->id) != NULL)
        return;
    int64_t due = entry_due_ms(entry);
    /* The window is full: the message waits on disk, unless something it owes (a DSN, its
     * removal) needs it now; reading it back later costs one load. */
    if (!sched_active_room(s) && due != INT64_MAX) {
        queue_index_push(&s->waiting, entry->id, due, 0);
        scheduler_arm(s);
        return;
    }
    msg_settle(msg_admit(s, entry));
}

struct qmsg *msg_new(struct scheduler *s, const struct spool_entry *entry)
{
    const struct spool_envelope *env = entry->env;
    struct qmsg *m = xcalloc(1, sizeof *m);
    m->s = s;
    snprintf(m->id, sizeof m->id, "%s", entry->id);
    m->sender = xstrdup(env->sender != NULL ? env->sender : "");
    m->tenant = env->tenant != NULL ? xstrdup(env->tenant) : NULL;
    m->campaign = env->campaign != NULL ? xstrdup(env->campaign) : NULL;
    const struct envelope_dsn *dsn = env->dsn; /* RFC 3461 parameters, when given */
    m->envid = dsn != NULL && dsn->envid != NULL ? xstrdup(dsn->envid) : NULL;
    m->ret = dsn != NULL ? dsn->ret : 0;
    m->flags = env->flags;
    m->received_ms = env->received_at * 1000;
    m->due = (struct minheap_node)MINHEAP_NODE_INIT;
    m->arrival = (struct minheap_node)MINHEAP_NODE_INIT;
    m->nrcpts = env->nrcpts;
    m->rcpts = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof *m->rcpts);
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct rcpt *r = &m->rcpts[i];
        r->addr = xstrdup(env->rcpts[i]);
        r->notify = dsn != NULL ? dsn->notify[i] : 0;
        r->orcpt = dsn != NULL && dsn->orcpt[i] != NULL ? xstrdup(dsn->orcpt[i]) : NULL;
        if (entry->rcpt_state == NULL)
            continue;
        const struct spool_rcpt_state *st = &entry->rcpt_state[i];
        r->status = st->status;
        r->attempts = st->attempts;
        r->next_ms = st->next_attempt * 1000;
        r->delay_warned = st->delay_warned;
        r->relay_notice = st->status == SPOOL_RCPT_DELIVERED && st->notice != SPOOL_NOTICE_NONE;
        if (r->relay_notice && st->notice == SPOOL_NOTICE_SPOOLING)
            r->notice_dsn = xstrdup(st->notice_dsn);
        rcpt_parse_reply(r, st->reply, st->remote_mta);
    }
    return m;
}

struct qmsg *msg_admit(struct scheduler *s, const struct spool_entry *entry)
{
    struct qmsg *m = msg_new(s, entry);
    strmap_put(&s->msgs, m->id, m);
    sched_count_admit(m);
    if (s->msgs.count > s->in_memory_max)
        s->in_memory_max = s->msgs.count;
    return m;
}

static void scheduler_on_loaded(int status, const struct spool_entry *entry, struct buf *body,
                                const char *why, void *arg)
{
    (void)body;
    struct scheduler *s = arg;
    s->loads--;
    if (status < 0)
        log_msg(LOG_ERROR, "delivery.load_failed", "a committed message cannot be read: %s",
                why != NULL ? why : strerror(-status));
    else if (!s->stopping)
        scheduler_add(s, entry);
    scheduler_check_stopped(s);
}

void scheduler_add_id(struct scheduler *s, const char *id)
{
    s->loads++;
    spool_load(s->spool, id, scheduler_on_loaded, s);
}

/* ---- admin commands ---- */

void msg_retry_now(struct qmsg *m)
{
    for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i].status == SPOOL_RCPT_DEFERRED)
            m->rcpts[i].next_ms = 0;
    msg_reschedule(m);
}

int scheduler_retry(struct scheduler *s, const char *id, struct buf *out)
{
    if (strcmp(id, "all") == 0) {
        size_t n = sched_retry_all(s); /* in slices: the answer does not wait for them */
        buf_printf(out, "%zu messages scheduled for delivery now\n", n);
        return 0;
    }
    struct qmsg *m = strmap_get(&s->msgs, id);
    if (m == NULL)
        return sched_active_retry(s, id, out);
    msg_retry_now(m);
    buf_printf(out, "%s scheduled for delivery now\n", id);
    return 0;
}

int scheduler_delete(struct scheduler *s, const char *id, struct buf *out)
{
    struct qmsg *m = strmap_get(&s->msgs, id);
    if (m == NULL)
        return sched_active_delete(s, id, out);
    log_msg(LOG_WARN, "queue.deleted", "queue id %s deleted by an administrator (no DSN)", id);
    m->deleted = 1;
    if (m->holds == 0)
        msg_remove(m);
    else
        minheap_remove(&s->due, &m->due);
    buf_printf(out, "%s deleted\n", id);
    return 0;
}

/* A destination retired by a reload counts until its successor exists: that one takes over an
 * admin suspension (or its lifting). */
static struct dest *find_dest(struct scheduler *s, const char *name, struct buf *out)
{
    struct dest *d = strmap_get(&s->dests, name);
    if (d == NULL)
        d = strmap_get(&s->retired, name);
    if (d == NULL)
        buf_printf(out, "no destination %s (see `sluice queue list`)\n", name);
    return d;
}

static void held_log(enum log_level level, const char *event, const char *name, const char *msg)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "destination", name);
    log_str(&r, "msg", msg);
    log_end(&r);
}

/* Any name may be suspended: one with no destination yet (no mail for it, or forgotten while
 * idle) is held until mail for it appears (held_apply). */
static void held_put(struct scheduler *s, const char *name, uint64_t for_ms, const char *why)
{
    uint64_t *until = xmalloc(sizeof *until);
    *until = for_ms > 0 ? uv_now(s->loop) + for_ms : UINT64_MAX;
    free(strmap_put(&s->held, name, until));
    held_log(LOG_WARN, "delivery.suspend", name, why);
}

static void held_suspend(struct scheduler *s, const char *name, uint64_t for_ms)
{
    held_put(s, name, for_ms,
             "suspended by an administrator before any mail for it: holds when mail appears");
    if (s->env.shared != NULL)
        shared_limits_suspend(s->env.shared, name, for_ms);
}

void scheduler_restore_suspension(struct scheduler *s, const char *name, uint64_t for_ms)
{
    struct dest *d = strmap_get(&s->dests, name);
    if (d != NULL)
        dest_suspend(d, for_ms); /* mail came before the file was read */
    else
        held_put(s, name, for_ms, "suspended by an administrator before the restart: holds still");
}

int scheduler_suspend(struct scheduler *s, const char *destination, uint64_t for_ms,
                      struct buf *out)
{
    sched_summary_stale(s);
    struct dest *d = strmap_get(&s->dests, destination);
    if (d == NULL)
        d = strmap_get(&s->retired, destination);
    if (d == NULL)
        held_suspend(s, destination, for_ms);
    else
        dest_suspend(d, for_ms);
    sched_suspended_note(s->suspensions, destination, for_ms);
    sched_tenant_dests_suspend(s, destination, for_ms, 0);
    if (for_ms > 0)
        buf_printf(out, "%s suspended for %llu s\n", destination,
                   (unsigned long long)(for_ms / 1000));
    else
        buf_printf(out, "%s suspended until resumed\n", destination);
    if (d == NULL)
        buf_printf(out, "(no mail for it yet: the suspension holds when mail for it appears)\n");
    return 0;
}

int scheduler_resume(struct scheduler *s, const char *destination, struct buf *out)
{
    sched_summary_stale(s);
    uint64_t *held = strmap_del(&s->held, destination);
    sched_tenant_dests_suspend(s, destination, 0, 1);
    struct dest *d = held != NULL ? NULL : find_dest(s, destination, out);
    if (held != NULL) {
        free(held);
        held_log(LOG_INFO, "delivery.resume", destination, "resumed before any mail for it");
        if (s->env.shared != NULL)
            shared_limits_resume(s->env.shared, destination);
    } else if (d == NULL) {
        return -ENOENT;
    } else {
        dest_resume(d);
    }
    sched_suspended_forget(s->suspensions, destination);
    buf_printf(out, "%s resumed\n", destination);
    return 0;
}

const char *const status_names[] = {"pending", "deferred", "delivered", "failed", "bounced"};

void sched_json_string(struct buf *out, const char *s)
{
    buf_append(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_printf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            buf_printf(out, "\\u%04x", *p);
        else
            buf_append(out, (const char *)p, 1);
    }
    buf_append(out, "\"", 1);
}

void msg_json(const struct qmsg *m, int in_memory, struct buf *out)
{
    buf_printf(out, "{\"id\":\"%s\",\"in_memory\":%s,\"from\":", m->id,
               in_memory ? "true" : "false");
    sched_json_string(out, m->sender);
    buf_append_str(out, ",\"tenant\":");
    sched_json_string(out, m->tenant != NULL ? m->tenant : "");
    buf_append_str(out, ",\"campaign\":");
    sched_json_string(out, m->campaign != NULL ? m->campaign : "");
    buf_printf(out, ",\"received_at\":%lld,\"rcpts\":[", (long long)(m->received_ms / 1000));
    for (size_t i = 0; i < m->nrcpts; i++) {
        const struct rcpt *r = &m->rcpts[i];
        buf_printf(out, "%s{\"rcpt\":", i ? "," : "");
        sched_json_string(out, r->addr);
        buf_printf(out, ",\"status\":\"%s\",\"attempts\":%u", status_names[r->status], r->attempts);
        if (r->status == SPOOL_RCPT_DEFERRED)
            buf_printf(out, ",\"next_attempt\":%lld", (long long)(r->next_ms / 1000));
        if (r->code != 0) {
            struct buf reply = BUF_INIT;
            rcpt_format_reply(r, &reply);
            buf_printf(out, ",\"reply\":");
            sched_json_string(out, reply.data);
            buf_free(&reply);
        }
        buf_append(out, "}", 1);
    }
    buf_append(out, "]}", 2);
}

static void explain_dest(const char *key, void *value, void *arg)
{
    (void)key;
    dest_explain(value, arg);
}

int scheduler_explain(struct scheduler *s, const char *destination, struct buf *out)
{
    if (destination[0] != '\0') {
        struct dest *d = find_dest(s, destination, out);
        if (d == NULL)
            return -ENOENT;
        dest_explain(d, out);
        return 0;
    }
    size_t before = out->len;
    strmap_each(&s->dests, explain_dest, out);
    strmap_each(&s->retired, explain_dest, out);
    if (out->len == before)
        buf_printf(out, "no destination has mail or state\n");
    return 0;
}
