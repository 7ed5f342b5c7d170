/*
 * The egress pool of a tenant's mail (sched_int.h). A tenant whose tenants[].pool differs from the
 * pool its destination's shaping names gets a destination of its own, "KEY/POOL": same shaping,
 * its own addresses, so its mail never leaves from another tenant's and no other tenant's leaves
 * from its. An administrator's suspension of KEY holds these destinations too. Also the holds an
 * administrator puts on a tenant's mail, or on one of its campaigns (`queue suspend --tenant`),
 * kept in the spool with the suspensions (sched_suspended.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"
#include "mta/delivery/shaping.h"

const char *sched_tenant_pool(const struct config *cfg, const char *tenant,
                              const struct config_shaping *shaping)
{
    const struct config_tenant *t = config_tenant_find(cfg, tenant);
    if (t == NULL || t->pool == NULL ||
        (shaping->pool != NULL && strcmp(t->pool, shaping->pool) == 0))
        return NULL;
    return t->pool;
}

void sched_tenant_key(const char *key, const char *pool, char *out, size_t size)
{
    if (pool == NULL)
        snprintf(out, size, "%s", key);
    else
        snprintf(out, size, "%s/%s", key, pool);
}

/* The destination KEY of a key "KEY/POOL": its length, or 0 for a key without a pool. */
static size_t base_len(const char *key)
{
    const char *slash = strchr(key, '/');
    return slash != NULL ? (size_t)(slash - key) : 0;
}

void sched_tenant_dest_held(struct scheduler *s, struct dest *d)
{
    size_t n = base_len(dest_key(d));
    if (n == 0)
        return;
    char *base = xstrndup(dest_key(d), n);
    uint64_t *until = strmap_get(&s->held, base); /* kept: KEY itself may get mail later */
    struct dest *peer = strmap_get(&s->dests, base);
    struct dest_summary sum;
    uint64_t now = uv_now(s->loop);
    if (until != NULL && *until > now) {
        dest_suspend(d, *until == UINT64_MAX ? 0 : *until - now);
    } else if (peer != NULL) {
        dest_summarize(peer, &sum);
        if (sum.suspended && sum.why[0] == '\0') /* by an administrator */
            dest_suspend(d, sum.until_ms);
    }
    free(base);
}

struct pool_dests {
    const char *name;
    size_t len;
    uint64_t for_ms;
    int resume;
};

static void pool_dest_apply(const char *key, void *value, void *arg)
{
    struct pool_dests *p = arg;
    if (base_len(key) != p->len || strncmp(key, p->name, p->len) != 0)
        return;
    if (p->resume)
        dest_resume(value);
    else
        dest_suspend(value, p->for_ms);
}

void sched_tenant_dests_suspend(struct scheduler *s, const char *name, uint64_t for_ms, int resume)
{
    struct pool_dests p = {name, strlen(name), for_ms, resume};
    if (p.len > 0 && base_len(name) == 0)
        strmap_each(&s->dests, pool_dest_apply, &p);
}

/* ---- holding a tenant's mail ---- */

/* "TENANT\nCAMPAIGN" into out: the key of a hold. */
static void hold_key(const char *tenant, const char *campaign, struct buf *out)
{
    buf_reset(out);
    buf_printf(out, "%s\n%s", tenant, campaign != NULL ? campaign : "");
}

/* The key of the hold on m's mail ("TENANT\n": its tenant's, "TENANT\nCAMPAIGN": its
 * campaign's), or NULL when none holds it. */
static const char *hold_of(const struct scheduler *s, const struct qmsg *m)
{
    if (s->tenant_holds.count == 0 || m->tenant == NULL)
        return NULL;
    struct buf key = BUF_INIT;
    hold_key(m->tenant, NULL, &key);
    const char *held = strmap_get(&s->tenant_holds, key.data);
    if (held == NULL && m->campaign != NULL) {
        hold_key(m->tenant, m->campaign, &key);
        held = strmap_get(&s->tenant_holds, key.data);
    }
    buf_free(&key);
    return held;
}

int sched_tenant_held(const struct scheduler *s, const struct qmsg *m)
{
    return hold_of(s, m) != NULL;
}

int64_t sched_tenant_hold_ends(const struct qmsg *m, const struct rcpt *r)
{
    struct shaping_dest sd = shaping_dest_for(m->s->cfg, rcpt_domain(r), NULL);
    int64_t expires = msg_expires_ms(m, sd.values);
    return expires > r->next_ms ? expires : r->next_ms;
}

void sched_tenant_expire_held(struct qmsg *m, int64_t now)
{
    const char *campaign = strchr(hold_of(m->s, m), '\n') + 1;
    struct buf text = BUF_INIT;
    if (campaign[0] != '\0')
        buf_printf(&text, "not sent: campaign %s of tenant %s was suspended", campaign, m->tenant);
    else
        buf_printf(&text, "not sent: tenant %s was suspended", m->tenant);
    struct smtp_client_outcome held = {
        .code = 451, .enhanced = "4.4.7", .stage = "queue", .text = text.data};
    /* One job per domain, as a destination would have reported it; expires_at 0: expired. */
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct rcpt *r = &m->rcpts[i];
        if (!rcpt_waiting(r) || sched_tenant_hold_ends(m, r) > now)
            continue;
        struct job *job = msg_job_new(m, i, rcpt_domain(r), now);
        job->shaping = shaping_dest_for(m->s->cfg, job->domain, NULL).values;
        msg_hold(m, (unsigned)job->nrcpts);
        msg_job_fail(job, NULL, &held);
    }
    buf_free(&text);
}

void sched_tenant_holds_free(struct scheduler *s)
{
    strmap_free_values(&s->tenant_holds);
}

/* A queued job of a held message goes back to the scheduler. */
static int job_held(const struct job *job, const void *arg)
{
    return sched_tenant_held(arg, job->msg);
}

static void dest_return_held(const char *key, void *value, void *arg)
{
    (void)key;
    dest_return_jobs(value, job_held, arg);
}

/* The messages in memory of a tenant (campaign "" or NULL: all of its), collected first: acting
 * on one may take it out of msgs. */
struct tenant_msgs {
    const char *tenant, *campaign;
    struct qmsg **msgs;
    size_t n;
};

static int msg_of(const struct qmsg *m, const struct tenant_msgs *t)
{
    return m->tenant != NULL && strcmp(m->tenant, t->tenant) == 0 &&
           (t->campaign == NULL || t->campaign[0] == '\0' ||
            (m->campaign != NULL && strcmp(m->campaign, t->campaign) == 0));
}

static void collect_tenant_msg(const char *key, void *value, void *arg)
{
    (void)key;
    struct tenant_msgs *t = arg;
    if (msg_of(value, t))
        t->msgs[t->n++] = value;
}

static void tenant_msgs_collect(struct scheduler *s, struct tenant_msgs *t)
{
    t->msgs = xmalloc((s->msgs.count + 1) * sizeof *t->msgs);
    t->n = 0;
    strmap_each(&s->msgs, collect_tenant_msg, t);
}

/* Released: the tenant's messages in memory go back to the due heap (those on disk are read back
 * when due). */
static void release_tenant_msgs(struct scheduler *s, const char *tenant)
{
    struct tenant_msgs t = {.tenant = tenant};
    tenant_msgs_collect(s, &t);
    for (size_t i = 0; i < t.n; i++)
        msg_settle(t.msgs[i]);
    free(t.msgs);
}

static void hold_log(enum log_level level, const char *event, const char *tenant,
                     const char *campaign)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "tenant", tenant);
    log_str(&r, "campaign", campaign);
    log_end(&r);
}

/* The hold takes effect: the jobs of its messages waiting at destinations come back. */
static void hold_put(struct scheduler *s, const char *tenant, const char *campaign)
{
    struct buf key = BUF_INIT;
    hold_key(tenant, campaign, &key);
    free(strmap_put(&s->tenant_holds, key.data, xstrdup(key.data)));
    buf_free(&key);
    strmap_each(&s->dests, dest_return_held, s);
    strmap_each(&s->retired, dest_return_held, s);
    hold_log(LOG_WARN, "delivery.tenant_suspend", tenant, campaign);
}

void scheduler_restore_tenant_hold(struct scheduler *s, const char *tenant, const char *campaign)
{
    hold_put(s, tenant, campaign);
}

int scheduler_hold_tenant(struct scheduler *s, const char *tenant, const char *campaign, int hold,
                          struct buf *out)
{
    const char *what = campaign[0] != '\0' ? "campaign" : "tenant";
    const char *name = campaign[0] != '\0' ? campaign : tenant;
    sched_summary_stale(s);
    if (hold) {
        hold_put(s, tenant, campaign);
        buf_printf(out, "%s %s of %s suspended until resumed\n", what, name, tenant);
    } else {
        struct buf key = BUF_INIT;
        hold_key(tenant, campaign, &key);
        char *was = strmap_del(&s->tenant_holds, key.data);
        buf_free(&key);
        if (was == NULL) {
            buf_printf(out, "%s %s of %s is not suspended\n", what, name, tenant);
            return -ENOENT;
        }
        free(was);
        release_tenant_msgs(s, tenant);
        hold_log(LOG_INFO, "delivery.tenant_resume", tenant, campaign);
        buf_printf(out, "%s %s of %s resumed\n", what, name, tenant);
    }
    sched_suspended_hold(s->suspensions, tenant, campaign, hold);
    return 0;
}
