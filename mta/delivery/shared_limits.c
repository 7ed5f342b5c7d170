/* Rates, connection leases and suspensions shared through Redis (see shared_limits.h). */
#include "mta/delivery/shared_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/ratewindow.h"
#include "lib/xalloc.h"
#include "mta/delivery/cluster.h"

/* A denied lease, or a suspension seen in Redis, is asked about again this soon at the latest. */
#define SHARED_RECHECK_MS 100
/* Open connections look for a suspension set on another node at most this often. */
#define SHARED_SUSPEND_CHECK_MS 1000
/* A node refused a lease counts as waiting for one this long (it asks again sooner). */
#define SHARED_WAITING_MS (3 * SHARED_RECHECK_MS)
/* A grant is used within this long of the question, or forgotten (Redis counted it: forgetting
 * only costs an event). Half the margin when that is more. */
#define SHARED_GRANT_MIN_MS 5

/* One script, every decision in one call. Times are Redis's own clock (TIME), so that the nodes'
 * clocks never meet. rate: a sliding log of the last `count` events (an event may go when the
 * count-th before it left the window), or above SHARED_LOG_MAX events one every window/count
 * (GCRA without burst). lease: one of `cap` leases that expire unless renewed; refused while the
 * destination is suspended, and to a node holding its fair share while other nodes wait for one
 * (they are remembered for a moment each time they are refused). */
const char shared_limits_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
    "local op = ARGV[1]\n"
    "if op == 'rate' then\n"
    "  local count, window = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "  if count <= tonumber(ARGV[5]) then\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)\n"
    "    if redis.call('ZCARD', KEYS[1]) < count then\n"
    "      redis.call('ZADD', KEYS[1], now, ARGV[4])\n"
    "      redis.call('PEXPIRE', KEYS[1], window)\n"
    "      return {1, 0}\n"
    "    end\n"
    "    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "    return {0, math.ceil(tonumber(oldest[2]) + window - now)}\n"
    "  end\n"
    "  local interval = window / count\n"
    "  local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "  if tat > now then return {0, math.ceil(tat - now)} end\n"
    "  redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(window))\n"
    "  return {1, 0}\n"
    "elseif op == 'lease' then\n"
    "  local suspended = redis.call('PTTL', KEYS[2])\n"
    "  local cap, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "  if ARGV[5] == '1' then\n"
    "    redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])\n"
    "    redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "    return {1, suspended}\n"
    "  end\n"
    "  if suspended ~= -2 then return {-1, suspended} end\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "  local leases = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "  local fair = #leases < cap\n"
    "  local others = redis.call('ZCARD', KEYS[3])\n"
    "  if redis.call('ZSCORE', KEYS[3], ARGV[6]) then others = others - 1 end\n"
    "  if fair and others > 0 then\n"
    "    local mine, prefix = 0, ARGV[6] .. ':'\n"
    "    for _, m in ipairs(leases) do\n"
    "      if string.sub(m, 1, #prefix) == prefix then mine = mine + 1 end\n"
    "    end\n"
    "    fair = mine < math.ceil(cap / (others + 1))\n"
    "  end\n"
    "  if fair then\n"
    "    redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])\n"
    "    redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "    redis.call('ZREM', KEYS[3], ARGV[6])\n"
    "    return {1, suspended}\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[6])\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[7])\n"
    "  return {0, 0}\n"
    "elseif op == 'suspended' then\n"
    "  local left = redis.call('PTTL', KEYS[1])\n"
    "  if left == -2 then return {0, 0} end\n"
    "  return {-1, left}\n"
    "elseif op == 'release' then\n"
    "  return redis.call('ZREM', KEYS[1], ARGV[2])\n"
    "elseif op == 'suspend' then\n"
    "  if tonumber(ARGV[2]) > 0 then return redis.call('SET', KEYS[1], '1', 'PX', ARGV[2]) end\n"
    "  return redis.call('SET', KEYS[1], '1')\n"
    "elseif op == 'resume' then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return redis.error_reply('unknown operation')\n";

struct shared_limits {
    uv_loop_t *loop;
    struct cluster *cluster;
    char *prefix;
    char node[96]; /* this node's name in lease and event members */
    uint64_t seq;  /* makes members unique */
    unsigned nodes;
    uint64_t lease_ttl_ms;
    struct shared_lease *leases; /* held or attached: renewed */
    uv_timer_t renew;
    unsigned refs; /* the objects made from it, and the timer until it closed */
};

struct shared_rate {
    struct shared_limits *s;
    char *key;
    struct config_rate rate;
    unsigned margin;
    uint64_t window_ms; /* the period widened by the margin */
    uint64_t asked_at;  /* when the question in flight, or the grant it got, was sent */
    uint64_t retry_at;  /* refused: ask again then */
    unsigned pending : 1, granted : 1, freed : 1;
    /* This node's share while Redis is away, and for a while after: */
    unsigned share_on : 1;
    uint64_t share_outage; /* the outage it was set up in */
    uint64_t quiet_until;  /* nothing goes before: what other nodes sent may still count */
    struct ratewindow share;
};

struct shared_lease {
    struct shared_limits *s;
    char *key;
    char member[128];
    uint64_t granted_at;
    unsigned attached : 1; /* to a connection; otherwise held by its shared_conns */
    struct shared_conns *holder;
    struct shared_lease *next, **prev;
};

struct shared_conns {
    struct shared_limits *s;
    char *key, *suspend_key, *wait_key;
    char asked[128];           /* the lease asked for, while pending */
    struct shared_lease *held; /* granted for the next connection */
    uint64_t retry_at;
    uint64_t suspended_until; /* by a suspension in Redis, as last seen */
    uint64_t checked_at;      /* when open connections last asked about one */
    unsigned pending : 1, checking : 1, freed : 1;
};

static void no_reply(void *arg, const redisReply *r)
{
    (void)arg;
    (void)r;
}

/* Once the daemon has let go of the link, whatever is still freed late sees Redis as away. */
static enum cluster_state shared_state(const struct shared_limits *s)
{
    return s->cluster != NULL ? cluster_state(s->cluster) : CLUSTER_DOWN;
}

static int shared_eval(struct shared_limits *s, const char *const *keys, int nkeys,
                       const char *const *args, int nargs, cluster_reply_cb cb, void *arg)
{
    return s->cluster != NULL ? cluster_eval(s->cluster, keys, nkeys, args, nargs, cb, arg) : -1;
}

static void shared_unref(struct shared_limits *s)
{
    if (--s->refs > 0)
        return;
    free(s->prefix);
    free(s);
}

static char *key_join(const struct shared_limits *s, const char *kind, const char *a, const char *b)
{
    size_t len = strlen(s->prefix) + strlen(kind) + strlen(a) + (b ? strlen(b) : 0) + 3;
    char *k = xmalloc(len);
    snprintf(k, len, "%s%s:%s%s%s", s->prefix, kind, a, b ? ":" : "", b ? b : "");
    return k;
}

static void member_new(struct shared_limits *s, char *out, size_t size)
{
    snprintf(out, size, "%s:%llu", s->node, (unsigned long long)++s->seq);
}

/* Whether n (an object's reply array) holds integers at [0] and [1]. */
static int reply_pair(const redisReply *r, long long *a, long long *b)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        return 0;
    *a = r->element[0]->integer;
    *b = r->element[1]->integer;
    return 1;
}

/* Whether, at now, a node keeps to its share: Redis is away, or came back less than `span` ago
 * (the other nodes may not have noticed yet, and what they sent on their share is not in Redis).
 */
static int shared_on_share(const struct shared_limits *s, uint64_t now, uint64_t span)
{
    enum cluster_state st = shared_state(s);
    if (st == CLUSTER_DOWN)
        return 1;
    return st == CLUSTER_UP && cluster_outages(s->cluster) > 0 &&
           now < cluster_up_since(s->cluster) + span + CLUSTER_RECONNECT_MAX_MS;
}

/* ---- rates ---- */

static uint64_t window_of(struct config_rate rate, unsigned margin)
{
    return rate.period_ms + rate.period_ms * margin / 100;
}

/* 1/nodes of a rate: count/nodes per period, or when that is less than one, one per as many
 * periods as it takes. */
static struct ratelimit_rate rate_share(struct config_rate rate, unsigned nodes)
{
    if (rate.count >= nodes)
        return (struct ratelimit_rate){rate.count / nodes, rate.period_ms};
    return (struct ratelimit_rate){1, rate.period_ms * ((nodes + rate.count - 1) / rate.count)};
}

struct shared_rate *shared_rate_new(struct shared_limits *s, const char *name,
                                    struct config_rate rate, unsigned margin_percent)
{
    struct shared_rate *r = xcalloc(1, sizeof *r);
    r->s = s;
    s->refs++;
    r->key = key_join(s, "rate", name, NULL);
    shared_rate_set(r, rate, margin_percent);
    return r;
}

static void rate_share_off(struct shared_rate *r)
{
    if (r->share_on)
        ratewindow_free(&r->share);
    r->share_on = 0;
}

void shared_rate_set(struct shared_rate *r, struct config_rate rate, unsigned margin_percent)
{
    if (r->rate.count != rate.count || r->rate.period_ms != rate.period_ms ||
        r->margin != margin_percent)
        rate_share_off(r); /* set up anew, quiet first, when next needed */
    r->rate = rate;
    r->margin = margin_percent;
    r->window_ms = window_of(rate, margin_percent);
}

/* The wait that this node's share imposes, setting it up (quiet for one window) for an outage
 * it was not set up in. */
static uint64_t rate_share_wait(struct shared_rate *r, uint64_t now)
{
    uint64_t outage = r->s->cluster != NULL ? cluster_outages(r->s->cluster) : 0;
    if (!r->share_on || r->share_outage != outage) {
        rate_share_off(r);
        ratewindow_init(&r->share, rate_share(r->rate, r->s->nodes), r->margin, now);
        r->share_on = 1;
        r->share_outage = outage;
        r->quiet_until = now + r->window_ms;
    }
    if (now < r->quiet_until)
        return r->quiet_until - now;
    return ratewindow_wait_ms(&r->share, now);
}

static void rate_on_reply(void *arg, const redisReply *reply)
{
    struct shared_rate *r = arg;
    r->pending = 0;
    if (r->freed) {
        shared_rate_free(r);
        return;
    }
    long long ok, wait;
    if (!reply_pair(reply, &ok, &wait))
        return; /* Redis gone (the fallback takes over) or an error (logged): ask again */
    if (ok == 1)
        r->granted = 1;
    else
        r->retry_at = uv_now(r->s->loop) + (wait > 0 ? (uint64_t)wait : 1);
}

uint64_t shared_rate_wait(struct shared_rate *r, uint64_t now)
{
    if (r->rate.count == 0)
        return 0;
    struct shared_limits *s = r->s;
    if (shared_on_share(s, now, r->window_ms)) {
        uint64_t wait = rate_share_wait(r, now);
        if (wait > 0 || shared_state(s) == CLUSTER_DOWN)
            return wait;
    } else {
        rate_share_off(r);
    }
    uint64_t fresh = (r->window_ms - r->rate.period_ms) / 2;
    if (r->granted &&
        now - r->asked_at <= (fresh > SHARED_GRANT_MIN_MS ? fresh : SHARED_GRANT_MIN_MS))
        return 0;
    r->granted = 0;
    if (r->pending)
        return SHARED_POLL_MS;
    if (now < r->retry_at)
        return r->retry_at - now;
    char count[24], window[24], member[128], logmax[24];
    snprintf(count, sizeof count, "%llu", (unsigned long long)r->rate.count);
    snprintf(window, sizeof window, "%llu", (unsigned long long)r->window_ms);
    snprintf(logmax, sizeof logmax, "%d", SHARED_LOG_MAX);
    member_new(s, member, sizeof member);
    const char *keys[] = {r->key};
    const char *args[] = {"rate", count, window, member, logmax};
    if (shared_eval(s, keys, 1, args, 5, rate_on_reply, r) == 0) {
        r->pending = 1;
        r->asked_at = now;
    }
    return SHARED_POLL_MS;
}

void shared_rate_take(struct shared_rate *r, uint64_t now)
{
    if (r->share_on)
        ratewindow_take(&r->share, now);
    r->granted = 0;
}

int shared_rate_idle(const struct shared_rate *r, uint64_t now)
{
    return !r->share_on || ratewindow_idle(&r->share, now);
}

void shared_rate_free(struct shared_rate *r)
{
    if (r == NULL)
        return;
    if (r->pending) {
        r->freed = 1; /* the reply frees it */
        return;
    }
    rate_share_off(r);
    shared_unref(r->s);
    free(r->key);
    free(r);
}

/* ---- connection leases ---- */

/* A lease of key under `member` (what Redis was asked for), or a new name when NULL. */
static struct shared_lease *lease_new(struct shared_limits *s, const char *key, const char *member,
                                      uint64_t now)
{
    struct shared_lease *l = xcalloc(1, sizeof *l);
    l->s = s;
    s->refs++;
    l->key = xstrdup(key);
    if (member != NULL)
        snprintf(l->member, sizeof l->member, "%s", member);
    else
        member_new(s, l->member, sizeof l->member);
    l->granted_at = now;
    l->next = s->leases;
    if (l->next != NULL)
        l->next->prev = &l->next;
    l->prev = &s->leases;
    s->leases = l;
    return l;
}

static void lease_call(struct shared_lease *l, const char *op, const char *cap)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)l->s->lease_ttl_ms);
    const char *keys[] = {l->key, l->key}; /* a renewal does not look at the suspension */
    if (strcmp(op, "release") == 0) {
        const char *args[] = {op, l->member};
        shared_eval(l->s, keys, 1, args, 2, no_reply, NULL);
    } else {
        const char *args[] = {"lease", cap, ttl, l->member, "1"};
        shared_eval(l->s, keys, 2, args, 5, no_reply, NULL);
    }
}

void shared_lease_release(struct shared_lease *l)
{
    if (l == NULL)
        return;
    lease_call(l, "release", NULL);
    *l->prev = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    if (l->holder != NULL)
        l->holder->held = NULL;
    shared_unref(l->s);
    free(l->key);
    free(l);
}

struct shared_conns *shared_conns_new(struct shared_limits *s, const char *dest, const char *egress)
{
    struct shared_conns *sc = xcalloc(1, sizeof *sc);
    sc->s = s;
    s->refs++;
    sc->key = key_join(s, "conns", dest, egress);
    sc->suspend_key = key_join(s, "suspend", dest, NULL);
    sc->wait_key = key_join(s, "waiting", dest, egress);
    return sc;
}

/* A suspension in Redis for n more ms (-1: until resumed) holds sc back until the next look. */
static void conns_suspended(struct shared_conns *sc, long long n, uint64_t now)
{
    sc->suspended_until = now + (n >= 0 && n < SHARED_RECHECK_MS ? (uint64_t)n : SHARED_RECHECK_MS);
}

static void conns_on_reply(void *arg, const redisReply *reply)
{
    struct shared_conns *sc = arg;
    struct shared_limits *s = sc->s;
    uint64_t now = uv_now(s->loop);
    long long ok, n;
    sc->pending = 0;
    if (!reply_pair(reply, &ok, &n)) {
        if (sc->freed)
            shared_conns_free(sc);
        return;
    }
    if (ok == 1) {
        struct shared_lease *l = lease_new(s, sc->key, sc->asked, now);
        l->holder = sc;
        sc->held = l;
    } else if (ok == -1) {
        conns_suspended(sc, n, now);
    } else {
        sc->retry_at = now + (n > 0 && n < SHARED_RECHECK_MS ? (uint64_t)n : SHARED_RECHECK_MS);
    }
    if (sc->freed)
        shared_conns_free(sc);
}

uint64_t shared_conns_wait(struct shared_conns *sc, unsigned cap, unsigned active, uint64_t now)
{
    struct shared_limits *s = sc->s;
    if (now < sc->suspended_until)
        return sc->suspended_until - now;
    if (shared_on_share(s, now, s->lease_ttl_ms / 3)) {
        unsigned share = cap / s->nodes > 0 ? cap / s->nodes : 1;
        if (active >= share)
            return SHARED_RECHECK_MS;
        if (shared_state(s) == CLUSTER_DOWN)
            return 0;
    }
    if (sc->held != NULL)
        return 0;
    if (sc->pending)
        return SHARED_POLL_MS;
    if (now < sc->retry_at)
        return sc->retry_at - now;
    char caps[16], ttl[24], waiting[24];
    snprintf(caps, sizeof caps, "%u", cap);
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)s->lease_ttl_ms);
    snprintf(waiting, sizeof waiting, "%d", SHARED_WAITING_MS);
    member_new(s, sc->asked, sizeof sc->asked);
    const char *keys[] = {sc->key, sc->suspend_key, sc->wait_key};
    const char *args[] = {"lease", caps, ttl, sc->asked, "0", s->node, waiting};
    if (shared_eval(s, keys, 3, args, 7, conns_on_reply, sc) == 0)
        sc->pending = 1;
    return SHARED_POLL_MS;
}

static void conns_on_checked(void *arg, const redisReply *reply)
{
    struct shared_conns *sc = arg;
    long long held, n;
    sc->checking = 0;
    if (reply_pair(reply, &held, &n) && held == -1)
        conns_suspended(sc, n, uv_now(sc->s->loop));
    if (sc->freed)
        shared_conns_free(sc);
}

int shared_conns_suspended(struct shared_conns *sc, uint64_t now)
{
    if (now < sc->suspended_until)
        return 1;
    if (sc->checking || now - sc->checked_at < SHARED_SUSPEND_CHECK_MS)
        return 0;
    const char *keys[] = {sc->suspend_key};
    const char *args[] = {"suspended"};
    sc->checked_at = now;
    if (shared_eval(sc->s, keys, 1, args, 1, conns_on_checked, sc) == 0)
        sc->checking = 1;
    return 0;
}

struct shared_lease *shared_conns_take(struct shared_conns *sc, uint64_t now)
{
    struct shared_lease *l = sc->held;
    sc->held = NULL;
    if (l == NULL)
        l = lease_new(sc->s, sc->key, NULL, now); /* on this node's share: registered later */
    l->holder = NULL;
    l->attached = 1;
    return l;
}

void shared_conns_free(struct shared_conns *sc)
{
    if (sc == NULL)
        return;
    shared_lease_release(sc->held);
    if (sc->pending || sc->checking) {
        sc->freed = 1; /* the reply frees it */
        return;
    }
    shared_unref(sc->s);
    free(sc->key);
    free(sc->suspend_key);
    free(sc->wait_key);
    free(sc);
}

/* Renews every lease of a live connection; releases one granted and still not taken. */
static void shared_on_renew(uv_timer_t *t)
{
    struct shared_limits *s = t->data;
    if (shared_state(s) != CLUSTER_UP)
        return;
    uint64_t now = uv_now(s->loop);
    for (struct shared_lease *l = s->leases, *next; l != NULL; l = next) {
        next = l->next;
        if (l->attached)
            lease_call(l, "lease", "0");
        else if (now - l->granted_at >= s->lease_ttl_ms / 3)
            shared_lease_release(l);
    }
}

/* ---- suspensions ---- */

void shared_limits_suspend(struct shared_limits *s, const char *dest, uint64_t for_ms)
{
    char *key = key_join(s, "suspend", dest, NULL);
    char ms[24];
    snprintf(ms, sizeof ms, "%llu", (unsigned long long)for_ms);
    const char *keys[] = {key};
    const char *args[] = {"suspend", ms};
    shared_eval(s, keys, 1, args, 2, no_reply, NULL);
    free(key);
}

void shared_limits_resume(struct shared_limits *s, const char *dest)
{
    char *key = key_join(s, "suspend", dest, NULL);
    const char *keys[] = {key};
    const char *args[] = {"resume"};
    shared_eval(s, keys, 1, args, 1, no_reply, NULL);
    free(key);
}

/* ---- life cycle ---- */

/* Back from an outage: the leases of live connections go into Redis at once. */
static void shared_on_state(void *arg, enum cluster_state state)
{
    struct shared_limits *s = arg;
    if (state == CLUSTER_UP)
        shared_on_renew(&s->renew);
}

struct shared_limits *shared_limits_new(uv_loop_t *loop, const struct config *cfg)
{
    if (cfg->cluster.redis == NULL)
        return NULL;
    struct shared_limits *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->prefix = xstrdup(cfg->cluster.key_prefix);
    s->nodes = cfg->cluster.nodes;
    s->lease_ttl_ms = cfg->cluster.lease_ttl_ms;
    s->refs = 1; /* the renewal timer's */
    snprintf(s->node, sizeof s->node, "%.60s:%ld:%llu", cfg->server.hostname, (long)getpid(),
             (unsigned long long)uv_hrtime());
    uv_timer_init(loop, &s->renew);
    s->renew.data = s;
    uv_timer_start(&s->renew, shared_on_renew, s->lease_ttl_ms / 3, s->lease_ttl_ms / 3);
    struct cluster_params p = {.redis = cfg->cluster.redis, .timeout_ms = cfg->cluster.timeout_ms};
    s->cluster = cluster_new(loop, &p, shared_limits_script, shared_on_state, s);
    return s;
}

int shared_limits_up(const struct shared_limits *s)
{
    return shared_state(s) == CLUSTER_UP;
}

static void shared_on_renew_closed(uv_handle_t *h)
{
    shared_unref(h->data);
}

void shared_limits_free(struct shared_limits *s)
{
    if (s == NULL)
        return;
    /* Leases still held (granted for a connection that never opened) go back now. */
    for (struct shared_lease *l = s->leases; l != NULL; l = l->next)
        lease_call(l, "release", NULL);
    struct cluster *c = s->cluster;
    s->cluster = NULL;
    cluster_free(c); /* replies still awaited come now, with none */
    uv_close((uv_handle_t *)&s->renew, shared_on_renew_closed);
}
