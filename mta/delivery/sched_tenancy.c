/*
 * The egress pool of a tenant's mail (sched_int.h). A tenant whose tenants[].pool differs from the
 * pool its destination's shaping names gets a destination of its own, "KEY/POOL": same shaping,
 * its own addresses, so its mail never leaves from another tenant's and no other tenant's leaves
 * from its. An administrator's suspension of KEY holds these destinations too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

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
