#include "mta/delivery/destination.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/ratelimit.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/bounce_category.h"
#include "mta/delivery/bounce_class.h"
#include "mta/delivery/dest_int.h"

static void dest_dispatch(struct dest *d);
static void conn_connect_next(struct conn *c);
static void conn_on_client(struct smtp_client *client, enum smtp_client_event ev,
                           const struct smtp_client_outcome *outcomes, size_t n, void *arg);

void job_free(struct job *job)
{
    if (job == NULL)
        return;
    free(job->domain);
    free(job->rcpts);
    mx_list_unref(job->mx);
    free(job);
}

/* Sets the slot up for shaping sh; a slot taken over from a retired destination (fresh 0) keeps
 * its recovery level (a backoff or a throttle), its pause and the rates' levels. */
static void slot_configure(struct slot *sl, const char *ehlo, const struct config_shaping *sh,
                           uint64_t now, int fresh)
{
    free(sl->ehlo); /* smtp_client_open copies it: no connection points at the old one */
    sl->ehlo = xstrdup(ehlo);
    if (fresh)
        recovery_init(&sl->rec);
    slot_apply(sl, sh, now);
}

/* The predecessor's slot for the same egress address, or NULL. */
static struct slot *dest_find_slot(const struct dest *d, const char *address)
{
    for (size_t i = 0; d != NULL && i < d->nslots; i++)
        if (strcmp(d->slots[i]->address, address) == 0)
            return d->slots[i];
    return NULL;
}

static struct slot *slot_new(const struct dest *d, const struct config_egress_addr *ea,
                             const char *ehlo, const struct config_shaping *sh, uint64_t now)
{
    struct slot *sl = xcalloc(1, sizeof *sl);
    sl->refs = 1;
    if (ea != NULL) {
        sl->src = ea->addr;
        sl->address = xstrdup(ea->address);
    } else {
        sl->src.ss_family = AF_UNSPEC;
        sl->address = xstrdup("any");
    }
    sl->rates = shaping_rates_new(sh, now);
    if (d->env->shared != NULL) {
        shaping_rates_share(sl->rates, d->env->shared, d->key, sl->address);
        sl->shared = shared_conns_new(d->env->shared, d->key, sl->address);
    }
    slot_configure(sl, ehlo, sh, now, 1);
    return sl;
}

static void slot_unref(struct slot *sl, const struct dest *d)
{
    if (sl->owner == d)
        sl->owner = NULL;
    if (--sl->refs > 0)
        return;
    shaping_rates_free(sl->rates);
    shared_conns_free(sl->shared);
    free(sl->ehlo);
    free(sl->address);
    free(sl);
}

struct dest *dest_new(struct dest_env *env, const char *key, struct config *cfg,
                      const struct config_shaping *shaping, const struct config_egress_pool *pool,
                      const struct dest *predecessor)
{
    struct dest *d = xcalloc(1, sizeof *d);
    d->env = env;
    d->key = xstrdup(key);
    d->cfg = config_ref(cfg);
    d->shaping = shaping;
    fair_queue_init(&d->queue, cfg, shaping->rate_margin_percent);
    uint64_t now = uv_now(env->loop);
    /* A tenant's own pool's destination "KEY/POOL" (sched_tenancy.c) warms up as KEY. */
    char *provider = xstrndup(key, strcspn(key, "/"));
    d->nslots = pool != NULL && pool->naddrs > 0 ? pool->naddrs : 1;
    d->slots = xcalloc(d->nslots, sizeof *d->slots);
    for (size_t i = 0; i < d->nslots; i++) {
        const struct config_egress_addr *ea =
            pool != NULL && pool->naddrs > 0 ? &pool->addrs[i] : NULL;
        const char *ehlo = ea != NULL && ea->ehlo != NULL ? ea->ehlo : cfg->server.hostname;
        struct slot *sl = dest_find_slot(predecessor, ea != NULL ? ea->address : "any");
        if (sl != NULL) {
            sl->refs++;
            slot_configure(sl, ehlo, shaping, now, 0);
        } else {
            sl = slot_new(d, ea, ehlo, shaping, now);
        }
        sl->owner = d;
        sl->warm = ea != NULL && env->warmup != NULL ? warmup_for(env->warmup, ea, provider) : NULL;
        d->slots[i] = sl;
    }
    free(provider);
    if (predecessor != NULL) {
        d->fail_streak = predecessor->fail_streak;
        d->suspended_until = predecessor->suspended_until;
        memcpy(d->why, predecessor->why, sizeof d->why);
        d->bounce_until = predecessor->bounce_until;
        d->bounce = predecessor->bounce;
        memcpy(d->bounce_text, predecessor->bounce_text, sizeof d->bounce_text);
        d->bounce.text = d->bounce_text;
    }
    d->rules = reply_rules_state_new(cfg);
    uv_timer_init(env->loop, &d->timer);
    d->timer.data = d;
    return d;
}

const char *dest_key(const struct dest *d)
{
    return d->key;
}

static void dest_on_closed_timer(uv_handle_t *h)
{
    struct dest *d = h->data;
    for (size_t i = 0; i < d->nslots; i++)
        slot_unref(d->slots[i], d);
    free(d->slots);
    fair_queue_close(&d->queue);
    minheap_free(&d->expiry);
    reply_rules_state_free(d->rules);
    config_unref(d->cfg);
    free(d->key);
    free(d);
}

void dest_free(struct dest *d)
{
    if (d->freeing)
        return;
    d->freeing = 1;
    uv_close((uv_handle_t *)&d->timer, dest_on_closed_timer);
}

int dest_idle(const struct dest *d)
{
    return fair_queue_empty(&d->queue) && d->conns == 0 &&
           (d->retired || d->suspended_until != UINT64_MAX);
}

int dest_unused(const struct dest *d)
{
    uint64_t now = uv_now(d->env->loop);
    if (!dest_idle(d) || d->suspended_until > now || d->bounce_until > now)
        return 0;
    /* A shared slot may still carry a retired predecessor's connections, and rates still counting
     * recent events must not be dropped for new ones that would not know them. */
    for (size_t i = 0; i < d->nslots; i++)
        if (d->slots[i]->paused_until > now || recovery_slowed(&d->slots[i]->rec, now) ||
            d->slots[i]->active > 0 || !shaping_rates_idle(d->slots[i]->rates, now))
            return 0;
    return 1;
}

void dest_log(const struct dest *d, const struct slot *sl, enum log_level level, const char *event,
              const char *fmt_msg)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "destination", d->key);
    if (sl != NULL) {
        log_str(&r, "egress", sl->address);
        log_int(&r, "connections", sl->cap);
    }
    log_str(&r, "msg", fmt_msg);
    log_end(&r);
}

/* A job for the same message and route as `job`, with room for `room` recipients and none yet. */
static struct job *job_sibling(const struct job *job, size_t room)
{
    struct job *sib = xmalloc(sizeof *sib);
    *sib = *job;
    sib->domain = xstrdup(job->domain);
    sib->rcpts = xmalloc(room * sizeof *sib->rcpts);
    sib->nrcpts = 0;
    sib->mx = mx_list_ref(job->mx);
    sib->next = NULL;
    sib->expiry = (struct minheap_node)MINHEAP_NODE_INIT;
    return sib;
}

/* Splits off what is beyond the first `keep` recipients into a new job right after it. */
static void job_split(struct job *job, size_t keep)
{
    if (job->nrcpts <= keep)
        return;
    struct job *rest = job_sibling(job, job->nrcpts - keep);
    rest->nrcpts = job->nrcpts - keep;
    memcpy(rest->rcpts, job->rcpts + keep, rest->nrcpts * sizeof *rest->rcpts);
    job->nrcpts = keep;
    rest->next = job->next;
    job->next = rest;
}

/* Queues job (at the front: it goes next), and in the expiry heap. */
static void dest_queue_push(struct dest *d, struct job *job, int front)
{
    fair_queue_push(&d->queue, job, front);
    d->queued++;
    job->expiry = (struct minheap_node)MINHEAP_NODE_INIT; /* in no heap (a new job is zeroed) */
    minheap_set(&d->expiry, &job->expiry, job->expires_at);
}

/* Counts out job, taken from the fair queue (or NULL), and takes it out of the expiry heap. */
static struct job *dest_dequeued(struct dest *d, struct job *job)
{
    if (job != NULL) {
        d->queued--;
        minheap_remove(&d->expiry, &job->expiry);
    }
    return job;
}

/* Takes the next queued job that fits(job, arg) accepts (see fair_queue_take), or NULL. */
static struct job *dest_queue_take(struct dest *d, int (*fits)(const struct job *, const void *),
                                   const void *arg)
{
    return dest_dequeued(d, fair_queue_take(&d->queue, fits, arg));
}

void dest_enqueue(struct dest *d, struct job *job)
{
    struct smtp_client_outcome bounce;
    if (dest_bouncing(d, uv_now(d->env->loop), &bounce)) {
        dest_report_all(d, job, &bounce, NULL);
        return;
    }
    job->next = NULL;
    for (struct job *j = job; j != NULL; j = j->next)
        job_split(j, d->shaping->recipients_per_message);
    while (job != NULL) {
        struct job *next = job->next;
        dest_queue_push(d, job, 0);
        job = next;
    }
    dest_dispatch(d);
}

/* Milliseconds until the warm-up lets slot sl take a message (0: now): sl's own allowance, or
 * an address of d whose used allowance holds the destination's mail (overflow: wait). */
static uint64_t dest_warmup_wait(const struct dest *d, const struct slot *sl)
{
    uint64_t wait = warmup_wait_ms(sl->warm);
    for (size_t i = 0; wait == 0 && i < d->nslots; i++)
        if (warmup_holds_pool(d->slots[i]->warm))
            wait = warmup_wait_ms(d->slots[i]->warm);
    return wait;
}

/* 1 when the warm-up keeps every egress address of d from taking a message now. */
static int dest_warmup_holds(const struct dest *d)
{
    for (size_t i = 0; i < d->nslots; i++)
        if (dest_warmup_wait(d, d->slots[i]) == 0)
            return 0;
    return d->nslots > 0;
}

/* When the next queued job expires (uv_now ms), or UINT64_MAX. */
static uint64_t dest_next_expiry(const struct dest *d)
{
    const struct minheap_node *top = minheap_top(&d->expiry);
    return top != NULL ? top->key : UINT64_MAX;
}

/* Jobs still queued when their message expires (held back by a suspension, the warm-up
 * (overflow: wait) or the limits) leave untried with a temporary failure that says why, which
 * the scheduler turns into the expiry's bounce. */
static void dest_expire_waiting(struct dest *d, uint64_t now)
{
    static const struct smtp_client_outcome suspended = {
        .code = 451,
        .enhanced = "4.4.7",
        .stage = "queue",
        .text = "not sent: the destination was suspended"};
    static const struct smtp_client_outcome warming = {
        .code = 451,
        .enhanced = "4.4.7",
        .stage = "warm-up",
        .text = "not sent: the warming egress addresses had used their allowance for the day"};
    static const struct smtp_client_outcome limited = {
        .code = 451,
        .enhanced = "4.4.7",
        .stage = "queue",
        .text = "not sent: the destination's limits held it back"};
    while (dest_next_expiry(d) <= now) {
        struct job *job = container_of(minheap_top(&d->expiry), struct job, expiry);
        fair_queue_remove(&d->queue, job); /* no tenant's turn moves for it */
        dest_dequeued(d, job);
        dest_report_all(d, job,
                        d->suspended_until > now ? &suspended
                        : dest_warmup_holds(d)   ? &warming
                                                 : &limited,
                        NULL);
    }
}

static int job_is_report(const struct job *job)
{
    return (job->flags & SPOOL_ENV_TLS_REPORT) != 0;
}

/* What a session to MX host `host` must meet for job. RFC 8460 §5.3: a TLS report must go even
 * when the receiver's MTA-STS or DANE policy fails, so it goes under the shaping's own mode
 * (mta-sts and dane: opportunistic). */
static struct tls_policy job_tls_policy(const struct dest *d, const struct job *job,
                                        const struct mx_list *mx, const char *host)
{
    if (job_is_report(job))
        return tls_policy_for_mode(d->shaping->tls);
    return tls_policy_for_mx(d->shaping->tls, mx->sts, host);
}

/* 1 when connection c (arg) may carry job: its route, or a host of it is the one c is on, and
 * mail of another domain only when the session meets that domain's TLS policy. A session opened
 * for a TLS report met no receiver's policy: it carries reports only. */
static int job_fits_conn(const struct job *job, const void *arg)
{
    const struct conn *c = arg;
    if (c->report && !job_is_report(job))
        return 0;
    if (job->mx == c->mx)
        return 1;
    int fits = 0;
    for (size_t i = 0; !fits && i < job->mx->nhosts; i++)
        fits = strcmp(job->mx->hosts[i].name, c->mx_name) == 0;
    if (!fits)
        return 0;
    struct tls_policy want = job_tls_policy(c->dest, job, job->mx, c->mx_name);
    return tls_policy_covers(&c->tls, &want);
}

/* Takes the next queued job to send, by tenants' fair share and their own rates, that connection c
 * may carry (any job when c is NULL). A job held by its tenant's rates wakes dispatch when due. */
struct job *dest_take_job(struct dest *d, const struct conn *c)
{
    if (c != NULL && dest_warmup_wait(d, c->slot) > 0)
        return NULL;
    struct job *job =
        dest_dequeued(d, fair_queue_take_due(&d->queue, c != NULL ? job_fits_conn : NULL, c,
                                             uv_now(d->env->loop)));
    if (job == NULL && dest_rate_held(d))
        dest_arm_timer(d, d->queue.rate_wake_ms);
    return job;
}

struct job *dest_take_any(struct dest *d)
{
    return dest_queue_take(d, NULL, NULL);
}

static void dest_on_timer(uv_timer_t *t)
{
    dest_dispatch(t->data);
}

void dest_arm_timer(struct dest *d, uint64_t at)
{
    uint64_t now = uv_now(d->env->loop);
    uint64_t due = uv_timer_get_due_in(&d->timer);
    uint64_t wait = at > now ? at - now : 0;
    if (!uv_is_active((uv_handle_t *)&d->timer) || wait < due)
        uv_timer_start(&d->timer, dest_on_timer, wait, 0);
}

/* The slot to open the next connection from: not paused, under its connection cap and its
 * connection rate, the least busy such. *wake is lowered to when a paused or rate-held slot may
 * open one. */
static struct slot *dest_free_slot(struct dest *d, uint64_t now, uint64_t *wake)
{
    struct slot *best = NULL;
    for (size_t i = 0; i < d->nslots; i++) {
        struct slot *sl = d->slots[i];
        if (sl->paused_until > now) {
            if (sl->paused_until < *wake)
                *wake = sl->paused_until;
            continue;
        }
        if (sl->active >= sl->cap)
            continue;
        uint64_t wait = dest_warmup_wait(d, sl);
        if (wait == 0)
            wait = shaping_rates_connect_wait(sl->rates, now);
        if (wait == 0 && sl->shared != NULL)
            wait = shared_conns_wait(sl->shared, sl->cap, sl->active, now);
        if (wait > 0) {
            if (now + wait < *wake)
                *wake = now + wait;
            continue;
        }
        if (best == NULL || sl->active < best->active)
            best = sl;
    }
    return best;
}

static void conn_start(struct dest *d, struct slot *sl, struct job *job);
static void conn_assign(struct conn *c, struct job *job);
static void conn_quit(struct conn *c);

/* Queued jobs go first to connections idle after a transaction (a reused connection is not a new
 * one for connection_rate). An idle connection that can carry none of them while its egress
 * address is at its cap QUITs, to make room for one that can. */
static void dest_feed_idle(struct dest *d, uint64_t now)
{
    for (struct conn *c = d->conn_list; c != NULL && !fair_queue_empty(&d->queue); c = c->next) {
        if (c->state != CONN_IDLE || !smtp_client_is_idle(c->client))
            continue; /* (a client whose idle time ran out is QUITting: CLOSED follows) */
        int held = c->slot->paused_until > now ||
                   (c->slot->shared != NULL && shared_conns_suspended(c->slot->shared, now));
        struct job *job = held ? NULL : dest_take_job(d, c);
        if (job != NULL)
            conn_assign(c, job);
        else if (c->slot->active >= c->slot->cap && (held || !dest_rate_held(d)))
            conn_quit(c); /* (one waiting for a tenant's rates takes the job when due) */
    }
}

static void dest_dispatch(struct dest *d)
{
    if (d->retired || d->freeing || d->dispatching)
        return;
    uint64_t now = uv_now(d->env->loop);
    dest_note_ends(d, now);
    if (d->suspended_until > now) {
        dest_expire_waiting(d, now);
        uint64_t wake = dest_next_expiry(d);
        if (d->suspended_until < wake && !fair_queue_empty(&d->queue))
            wake = d->suspended_until;
        if (wake != UINT64_MAX)
            dest_arm_timer(d, wake);
        return;
    }
    uint64_t wake = UINT64_MAX;
    d->dispatching = 1;
    dest_feed_idle(d, now);
    while (!fair_queue_empty(&d->queue) && d->suspended_until <= now) {
        struct slot *sl = dest_free_slot(d, now, &wake);
        struct job *job = sl != NULL ? dest_take_job(d, NULL) : NULL;
        if (job == NULL)
            break;
        shaping_rates_connected(sl->rates, now);
        conn_start(d, sl, job);
    }
    d->dispatching = 0;
    /* After the dispatch: a job that comes at its expiry still gets its one last try. */
    dest_expire_waiting(d, now);
    if (dest_next_expiry(d) < wake)
        wake = dest_next_expiry(d);
    if (d->suspended_until > now && d->suspended_until < wake && !fair_queue_empty(&d->queue))
        wake = d->suspended_until;
    if (!fair_queue_empty(&d->queue) && wake != UINT64_MAX)
        dest_arm_timer(d, wake);
}

void dest_suspend(struct dest *d, uint64_t for_ms)
{
    d->suspended_until = for_ms > 0 ? uv_now(d->env->loop) + for_ms : UINT64_MAX;
    dest_log(d, NULL, LOG_WARN, "delivery.suspend",
             for_ms > 0 ? "suspended by an administrator for a while"
                        : "suspended by an administrator");
    if (d->env->shared != NULL)
        shared_limits_suspend(d->env->shared, d->key, for_ms);
    if (for_ms > 0 && !fair_queue_empty(&d->queue))
        dest_arm_timer(d, d->suspended_until);
}

void dest_resume(struct dest *d)
{
    d->suspended_until = 0;
    d->fail_streak = 0;
    for (size_t i = 0; i < d->nslots; i++)
        d->slots[i]->paused_until = 0;
    dest_log(d, NULL, LOG_INFO, "delivery.resume", "resumed");
    if (d->env->shared != NULL)
        shared_limits_resume(d->env->shared, d->key);
    dest_dispatch(d);
}

void dest_return_jobs(struct dest *d, int (*match)(const struct job *, const void *),
                      const void *arg)
{
    struct job *job;
    while ((job = dest_queue_take(d, match, arg)) != NULL)
        d->env->hooks.job_returned(d->env->hooks.arg, job);
}

static void dest_return_queue(struct dest *d)
{
    dest_return_jobs(d, NULL, NULL);
}

static void conn_finish_job(struct conn *c, const struct smtp_client_outcome *outcomes);
static void conn_abort(struct conn *c);

/* Idle connections end with QUIT; with abort, the others are dropped. */
void dest_retire(struct dest *d, int abort)
{
    d->retired = 1;
    uv_timer_stop(&d->timer);
    dest_return_queue(d);
    for (struct conn *c = d->conn_list, *next; c != NULL; c = next) {
        next = c->next; /* an abort may end the connection at once */
        if (c->state == CONN_IDLE)
            conn_quit(c);
        else if (abort)
            conn_abort(c);
    }
}

static void dest_connect_failed(struct dest *d)
{
    if (++d->fail_streak < DEST_FAILS_TO_SUSPEND || d->suspended_until == UINT64_MAX)
        return;
    uint64_t base = d->shaping->nretry > 0 ? d->shaping->retry_ms[0] : DEST_SUSPEND_MIN_MS;
    if (base < DEST_SUSPEND_MIN_MS)
        base = DEST_SUSPEND_MIN_MS;
    uint64_t wait = ratelimit_backoff_ms(
        base, DEST_SUSPEND_MAX_MS, d->fail_streak - DEST_FAILS_TO_SUSPEND + 1, (uint32_t)random());
    d->suspended_until = uv_now(d->env->loop) + wait;
    struct logrec r;
    log_begin(&r, LOG_WARN, "delivery.suspend");
    log_str(&r, "destination", d->key);
    log_int(&r, "failures", d->fail_streak);
    log_int(&r, "for_ms", (long long)wait);
    log_str(&r, "msg", "connections keep failing: suspended with backoff");
    log_end(&r);
}

/* ---- connections ---- */

static void conn_on_body(int status, const struct spool_entry *entry, struct buf *body,
                         const char *why, void *arg);

/* Each job a connection takes on counts against its address's warm-up, before it is sent. */
static void conn_load_body(struct conn *c)
{
    warmup_take(c->slot->warm);
    c->body_ready = 0;
    c->body_loading = 1;
    buf_reset(&c->body);
    spool_load(c->dest->env->spool, c->job->queue_id, conn_on_body, c);
}

static struct conn *conn_new(struct dest *d, struct slot *sl, struct job *job)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->dest = d;
    c->slot = sl;
    c->id = ++d->env->next_conn_id;
    c->job = job;
    c->mx = mx_list_ref(job->mx);
    sl->active++;
    d->conns++;
    d->env->conns++;
    c->next = d->conn_list;
    if (c->next != NULL)
        c->next->prev = &c->next;
    c->prev = &d->conn_list;
    d->conn_list = c;
    return c;
}

/* Keeps the first `budget` recipients of job for this connection; the rest goes back to the
 * front of the queue for another one. */
static void dest_fit_job(struct dest *d, struct job *job, size_t budget)
{
    job_split(job, budget);
    struct job *rest = job->next;
    if (rest == NULL)
        return;
    job->next = NULL;
    dest_queue_push(d, rest, 1);
}

static void conn_start(struct dest *d, struct slot *sl, struct job *job)
{
    dest_fit_job(d, job, sl->rcpts_per_conn);
    struct conn *c = conn_new(d, sl, job);
    if (sl->shared != NULL)
        c->lease = shared_conns_take(sl->shared, uv_now(d->env->loop));
    conn_load_body(c);
    conn_connect_next(c);
}

static void conn_free(struct conn *c)
{
    struct dest *d = c->dest;
    struct slot *sl = c->slot;
    sl->active--;
    d->conns--;
    d->env->conns--;
    shared_lease_release(c->lease);
    *c->prev = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    mx_list_unref(c->mx);
    buf_free(&c->body);
    buf_free(&c->fail_text);
    if (c->body_loading)
        c->dest = NULL; /* spool_load still holds c: its callback frees it */
    else
        free(c);
    if (d->retired) {
        /* The successor may open the connection this one leaves free. */
        if (sl->owner != NULL && sl->owner != d)
            dest_dispatch(sl->owner);
        if (dest_idle(d))
            d->env->hooks.dest_idle(d->env->hooks.arg, d);
    } else {
        dest_dispatch(d);
    }
}

static void conn_remember_failure(struct conn *c, const struct smtp_client_outcome *o)
{
    c->fail_code = o->code;
    snprintf(c->fail_enhanced, sizeof c->fail_enhanced, "%s", o->enhanced);
    c->fail_stage = o->stage;
    buf_reset(&c->fail_text);
    buf_printf(&c->fail_text, "%s (%s)", o->text != NULL ? o->text : "failed",
               c->mx_name != NULL ? c->mx_name : "no host");
}

/* Every host and address was tried: the job gets the last failure. */
static void conn_give_up(struct conn *c)
{
    struct smtp_client_outcome o = {
        .code = c->fail_code != 0 ? c->fail_code : 451,
        .stage = c->fail_stage != NULL ? c->fail_stage : "connect",
        .remote = 0,
        .text = c->fail_text.len > 0 ? c->fail_text.data : "no MX host could be reached",
    };
    snprintf(o.enhanced, sizeof o.enhanced, "%s", c->fail_enhanced[0] ? c->fail_enhanced : "4.4.1");
    /* A 5xx greeting from the last host does not make the recipients fail: another attempt
     * later may reach a host that takes the mail. */
    if (o.code >= 500) {
        o.code = 451;
        o.enhanced[0] = '4';
    }
    conn_finish_job(c, &o);
}

/* RFC 8461 §5.1: an MX host the domain's MTA-STS policy does not list is logged, and with
 * `mode: enforce` not tried (returns 1, the host skipped). Not called for a host DANE may cover:
 * the SMTP client decides once the TLSA lookup answers. */
static int conn_skip_host(struct conn *c, const struct tls_policy *tls, const char *host)
{
    char why[300];
    tls_policy_log_unlisted_mx(tls, c->id, host, why, sizeof why);
    tls_rpt_record_unlisted_mx(c->dest->env->tls_rpt, c->job->domain, c->mx->sts, host);
    if (!tls_policy_enforced(tls))
        return 0;
    struct smtp_client_outcome o = {
        .code = 451, .enhanced = "4.7.5", .stage = "connect", .text = why};
    conn_remember_failure(c, &o);
    c->host++;
    return 1;
}

static void conn_connect_next(struct conn *c)
{
    struct dest *d = c->dest;
    while (c->host < c->mx->nhosts) {
        const struct mx_target *h = &c->mx->hosts[c->host];
        if (c->addr >= h->naddrs) {
            c->host++;
            c->addr = 0;
            continue;
        }
        c->report = job_is_report(c->job);
        struct tls_policy tls = job_tls_policy(d, c->job, c->mx, h->name);
        struct dane *dane = d->shaping->tls == SHAPING_TLS_DANE && d->cfg->dns.dnssec &&
                                    h->dnssec && !c->report
                                ? d->env->dane
                                : NULL;
        /* RFC 8461 §2: TLSA records for the host take precedence over an enforced policy that
         * does not list it; the client looks them up and ends the session when there are none. */
        int dane_first = dane != NULL && tls_policy_enforced(&tls);
        if (c->addr == 0 && tls.mx_mismatch && !dane_first && conn_skip_host(c, &tls, h->name))
            continue;
        const struct sockaddr_storage *dst = &h->addrs[c->addr++];
        /* An egress address of one family cannot reach a host of the other. */
        if (c->slot->src.ss_family != AF_UNSPEC && c->slot->src.ss_family != dst->ss_family)
            continue;
        struct smtp_client_params p = {
            .dst = (const struct sockaddr *)dst,
            .mx_name = h->name,
            .src =
                c->slot->src.ss_family != AF_UNSPEC ? (const struct sockaddr *)&c->slot->src : NULL,
            .ehlo = c->slot->ehlo,
            .tls = c->in_clear ? tls_policy_for_mode(SHAPING_TLS_NONE) : tls,
            .chunking = d->shaping->chunking,
            .tls_ctx = d->env->tls_ctx,
            .dane = dane,
            .mx_canonical = h->canonical,
            /* RFC 8460 §5.3: a report's own sessions are not reported on. */
            .tls_rpt = {c->report ? NULL : d->env->tls_rpt, c->job->domain, c->mx->sts},
            .timeouts = {.connect = d->shaping->connect_timeout_ms,
                         .idle = d->shaping->idle_timeout_ms},
            .pace = shaping_rates_pace,
            .pace_arg = c->slot->rates,
            .session_id = c->id,
        };
        struct buf why = BUF_INIT;
        c->mx_name = h->name;
        c->tls = p.tls;
        c->state = CONN_CONNECTING;
        c->msgs = c->rcpts = 0;
        c->client = smtp_client_open(d->env->loop, &p, conn_on_client, c, &why);
        if (c->client != NULL) {
            buf_free(&why);
            return;
        }
        struct smtp_client_outcome o = {.code = 451,
                                        .enhanced = "4.4.1",
                                        .stage = "connect",
                                        .text = why.data != NULL ? why.data : "cannot connect"};
        conn_remember_failure(c, &o);
        buf_free(&why);
    }
    c->client = NULL;
    conn_give_up(c);
    conn_free(c);
}

static void conn_send(struct conn *c)
{
    /* An idle session may end while the body loads: CLOSED then puts the job back. */
    if (c->state != CONN_READY || !c->body_ready || c->job == NULL ||
        !smtp_client_is_idle(c->client))
        return;
    const struct job *job = c->job;
    const char **rcpts = xmalloc(job->nrcpts * sizeof *rcpts);
    const char **orcpt = xmalloc(job->nrcpts * sizeof *orcpt);
    unsigned *notify = xmalloc(job->nrcpts * sizeof *notify);
    for (size_t i = 0; i < job->nrcpts; i++) {
        rcpts[i] = job->rcpts[i].addr;
        orcpt[i] = job->rcpts[i].orcpt;
        notify[i] = job->rcpts[i].notify;
    }
    struct smtp_client_tx tx = {
        .sender = job->sender,
        .rcpts = rcpts,
        .nrcpts = job->nrcpts,
        .body = &c->body,
        .flags = job->flags,
        .ret = job->ret,
        .envid = job->envid,
        .notify = notify,
        .orcpt = orcpt,
    };
    c->state = CONN_SENDING;
    smtp_client_send(c->client, &tx);
    free(rcpts);
    free(orcpt);
    free(notify);
}

static void conn_on_body(int status, const struct spool_entry *entry, struct buf *body,
                         const char *why, void *arg)
{
    struct conn *c = arg;
    c->body_loading = 0;
    if (c->dest == NULL) { /* the connection ended while the body was loading */
        free(c);
        return;
    }
    if (status < 0 || c->job == NULL) {
        if (c->job != NULL) {
            struct smtp_client_outcome o = {.code = 451,
                                            .enhanced = "4.3.0",
                                            .stage = "queue",
                                            .text = why != NULL ? why : "queue file unreadable"};
            conn_finish_job(c, &o);
        }
        if (c->client != NULL && c->state == CONN_READY)
            smtp_client_quit(c->client);
        return;
    }
    c->body = *body;
    memset(body, 0, sizeof *body);
    c->body_ready = 1;
    conn_send(c);
}

/* Reports the job: one outcome for all its recipients (common), or the client's per-recipient
 * outcomes when `outcomes` has job->nrcpts entries (pass per_rcpt = 1). */
static void conn_report(struct conn *c, const struct smtp_client_outcome *outcomes, int per_rcpt)
{
    struct dest *d = c->dest;
    struct job *job = c->job;
    c->job = NULL;
    c->body_ready = 0;
    buf_free(&c->body);
    if (!per_rcpt) {
        dest_report_all(d, job, &outcomes[0], c->mx_name);
        return;
    }
    /* While a bounce rule holds, what did not go through fails with its text. */
    struct smtp_client_outcome bounce;
    uint64_t now = uv_now(d->env->loop);
    int bouncing = dest_bouncing(d, now, &bounce);
    struct smtp_client_outcome *own = xmalloc(job->nrcpts * sizeof *own);
    for (size_t i = 0; i < job->nrcpts; i++)
        own[i] =
            !bouncing || (outcomes[i].code >= 200 && outcomes[i].code < 300) ? outcomes[i] : bounce;
    bounce_category_outcomes(own, job->nrcpts);
    job->hold_ms = dest_rule_hold_ms(d, now);
    job->egress = c->slot->address;
    d->env->hooks.job_done(d->env->hooks.arg, d->key, job, own, c->mx_name);
    free(own);
}

void dest_report_all(struct dest *d, struct job *job, const struct smtp_client_outcome *o,
                     const char *mx_name)
{
    struct smtp_client_outcome bounce;
    uint64_t now = uv_now(d->env->loop);
    int bouncing = dest_bouncing(d, now, &bounce) && !(o->code >= 200 && o->code < 300);
    struct smtp_client_outcome one = bouncing ? bounce : *o;
    bounce_category_outcomes(&one, 1);
    struct smtp_client_outcome *all = xmalloc(job->nrcpts * sizeof *all);
    for (size_t i = 0; i < job->nrcpts; i++)
        all[i] = one;
    job->hold_ms = dest_rule_hold_ms(d, now);
    d->env->hooks.job_done(d->env->hooks.arg, d->key, job, all, mx_name);
    free(all);
}

static void conn_finish_job(struct conn *c, const struct smtp_client_outcome *outcome)
{
    if (c->job != NULL)
        conn_report(c, outcome, 0);
}

static void conn_quit(struct conn *c)
{
    c->state = CONN_QUITTING;
    smtp_client_quit(c->client);
}

/* Gives c a job, within its recipients_per_connection, and loads the body. */
static void conn_assign(struct conn *c, struct job *job)
{
    dest_fit_job(c->dest, job, c->slot->rcpts_per_conn - c->rcpts);
    c->job = job;
    c->state = CONN_READY;
    conn_load_body(c);
}

/* After a transaction: the next job on the same connection, within the limits; none queued, the
 * connection waits idle for one (shaping idle_timeout); otherwise QUIT (also when the jobs queued
 * cannot ride on it, another host's or another TLS policy's, and it holds their place). */
static void conn_next_job(struct conn *c)
{
    struct dest *d = c->dest;
    const struct config_shaping *sh = d->shaping;
    const struct slot *sl = c->slot;
    struct job *job = NULL;
    if (c->aborting)
        return;
    /* A slot slowed down below its open connections ends the surplus as they finish. */
    int more = !d->retired && !c->last_job && c->msgs < sl->msgs_per_conn &&
               c->rcpts < sl->rcpts_per_conn && sl->active <= sl->cap;
    uint64_t now = uv_now(d->env->loop);
    if (more && d->suspended_until <= now &&
        (sl->shared == NULL || !shared_conns_suspended(sl->shared, now)))
        job = dest_take_job(d, c);
    if (job != NULL)
        conn_assign(c, job);
    else if (more && sh->idle_timeout_ms > 0 && smtp_client_is_idle(c->client) &&
             (fair_queue_empty(&d->queue) || sl->active < sl->cap || dest_rate_held(d)))
        c->state = CONN_IDLE;
    else
        conn_quit(c);
}

/* RFC 7435: with opportunistic TLS, a failed handshake is no reason not to deliver; the same
 * address is tried once more without STARTTLS (never with tls: required). */
static int conn_retry_in_clear(struct conn *c, const struct smtp_client_outcome *o)
{
    struct tls_policy tls = job_tls_policy(c->dest, c->job, c->mx, c->mx_name);
    if (c->in_clear || (tls.level != TLS_POLICY_MAY && !tls.testing) || o->stage == NULL ||
        strcmp(o->stage, "STARTTLS") != 0 || c->addr == 0)
        return 0;
    c->in_clear = 1;
    c->addr--; /* conn_connect_next takes the same address again */
    return 1;
}

/* An outcome that ends the session without the message having been taken: a 421, or our own
 * timeout or lost connection. The recipient may be tried at the next MX host at once. */
static int outcome_ends_session(const struct smtp_client_outcome *o)
{
    return o->code == 421 || (!o->remote && o->code >= 400 && o->code < 500);
}

static int conn_has_next_address(const struct conn *c)
{
    for (size_t h = c->host; h < c->mx->nhosts; h++)
        if ((h == c->host ? c->addr : 0) < c->mx->hosts[h].naddrs)
            return 1;
    return 0;
}

/* After TX_DONE: when the session ended mid-transaction and another host remains, reports the
 * recipients that got a real answer and keeps the others as c->job for the next host (RFC 5321
 * §5.1: try the next MX). Returns 1 when it kept some. */
static int conn_keep_for_next_mx(struct conn *c, const struct smtp_client_outcome *outcomes)
{
    struct job *job = c->job;
    size_t keep = 0;
    for (size_t i = 0; i < job->nrcpts; i++)
        keep += outcome_ends_session(&outcomes[i]);
    if (keep == 0 || !conn_has_next_address(c))
        return 0;
    conn_remember_failure(c, &outcomes[0]);
    c->failover = 1;
    if (keep == job->nrcpts)
        return 1;
    /* Report the answered recipients as a job of their own. */
    struct job *answered = job_sibling(job, job->nrcpts);
    struct smtp_client_outcome *answered_outcomes = xmalloc(job->nrcpts * sizeof *outcomes);
    size_t kept = 0;
    for (size_t i = 0; i < job->nrcpts; i++) {
        if (outcome_ends_session(&outcomes[i])) {
            job->rcpts[kept++] = job->rcpts[i];
        } else {
            answered_outcomes[answered->nrcpts] = outcomes[i];
            answered->rcpts[answered->nrcpts++] = job->rcpts[i];
        }
    }
    job->nrcpts = kept;
    bounce_category_outcomes(answered_outcomes, answered->nrcpts);
    answered->egress = c->slot->address;
    c->dest->env->hooks.job_done(c->dest->env->hooks.arg, c->dest->key, answered, answered_outcomes,
                                 c->mx_name);
    free(answered_outcomes);
    return 1;
}

int outcomes_throttle(const struct smtp_client_outcome *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (o[i].code == 421 ||
            (o[i].code >= 400 && o[i].code < 500 &&
             bounce_class_is_throttle(bounce_classify(o[i].code, o[i].enhanced, o[i].text))))
            return 1;
    return 0;
}

static void conn_on_client(struct smtp_client *client, enum smtp_client_event ev,
                           const struct smtp_client_outcome *outcomes, size_t n, void *arg)
{
    struct conn *c = arg;
    struct dest *d = c->dest;
    switch (ev) {
    case SMTP_CLIENT_READY:
        c->state = CONN_READY;
        d->fail_streak = 0;
        if (c->aborting) {
            smtp_client_abort(client);
            return;
        }
        conn_send(c);
        return;
    case SMTP_CLIENT_TX_DONE: {
        size_t njob = c->job->nrcpts;
        /* The reply rules first; a throttle is the fallback for what no rule acted on. */
        int acted = conn_apply_rules(c, outcomes, n);
        int throttle = !acted && outcomes_throttle(outcomes, n);
        c->msgs++;
        c->rcpts += (unsigned)njob;
        if (!c->aborting && !d->retired && !conn_held(c, uv_now(d->env->loop)) &&
            conn_keep_for_next_mx(c, outcomes))
            return; /* CLOSED follows: the rest of the job goes to the next MX host */
        conn_report(c, outcomes, 1);
        if (throttle)
            slot_throttle(d, c->slot);
        else if (!acted)
            slot_clean(d, c->slot);
        if (throttle || acted)
            c->last_job = 1;
        conn_next_job(c);
        return;
    }
    case SMTP_CLIENT_CLOSED:
        break;
    }
    /* CLOSED: the client is gone. */
    c->client = NULL;
    int before_ready = c->state == CONN_CONNECTING;
    if (n == 1 && !c->last_job && !conn_apply_rules(c, outcomes, n) && outcomes[0].code == 421)
        slot_throttle(d, c->slot);
    if (c->job != NULL && (before_ready || c->failover) && !c->aborting && !d->retired &&
        !conn_held(c, uv_now(d->env->loop))) {
        /* Connection refused, timed out, 4xx/5xx greeting, TLS required but absent, or the
         * session ended (421, lost) before the message was taken: the next address or the next
         * MX host, in order. */
        c->failover = 0;
        if (n == 1)
            conn_remember_failure(c, &outcomes[0]);
        if (n == 1 && conn_retry_in_clear(c, &outcomes[0])) {
            conn_connect_next(c);
            return;
        }
        c->in_clear = 0;
        dest_connect_failed(d);
        if (d->suspended_until <= uv_now(d->env->loop)) {
            conn_connect_next(c);
            return;
        }
    }
    /* The session ended quietly before the job went out: the peer closed it while it was idle, or
     * the idle time ran out while the body loaded. The job has not been tried. */
    int unsent = c->job != NULL && c->state == CONN_READY && n == 0;
    if (unsent && !c->aborting && !d->retired) {
        dest_queue_push(d, c->job, 1);
        c->job = NULL;
    }
    if (c->job != NULL && (c->aborting || unsent)) {
        /* Stopping: the job was never sent, so it has not been tried. */
        struct job *job = c->job;
        c->job = NULL;
        d->env->hooks.job_returned(d->env->hooks.arg, job);
    } else if (c->job != NULL) {
        /* The job was never sent: whatever ended the connection defers it. */
        if (n == 1)
            conn_remember_failure(c, &outcomes[0]);
        conn_give_up(c);
    }
    conn_free(c);
}

static void conn_abort(struct conn *c)
{
    c->aborting = 1;
    if (c->client != NULL)
        smtp_client_abort(c->client);
}
