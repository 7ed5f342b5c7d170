/* The link to Redis for the shared limits (see cluster.h). */
#include "mta/delivery/cluster.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"

/* How often the link looks for a late reply or a reconnection that is due. */
#define CLUSTER_TICK_MIN_MS 5
#define CLUSTER_TICK_MAX_MS 50

struct cluster {
    uv_loop_t *loop;
    char *redis;
    uint64_t timeout_ms;
    char *script;
    char sha[41];          /* the script's, as SCRIPT LOAD answered */
    redisAsyncContext *ac; /* NULL: not connected; hiredis frees it after on_disconnect */
    enum cluster_state state;
    uint64_t outages, up_since;
    uint64_t backoff_ms, reconnect_at;
    unsigned pending;     /* calls sent and not answered */
    uint64_t progress_at; /* when the connection last moved on: connected, answered, first call */
    uv_timer_t timer;
    cluster_state_cb on_state;
    void *arg;
    uint64_t close_by; /* closing: when to stop waiting for the last replies */
    unsigned closing : 1;
};

struct cluster_call {
    struct cluster *c;
    cluster_reply_cb cb;
    void *arg;
};

static void cluster_on_connect(const redisAsyncContext *ac, int status);
static void cluster_on_loaded(redisAsyncContext *ac, void *reply, void *privdata);
static void cluster_on_disconnect(const redisAsyncContext *ac, int status);

static void cluster_set_state(struct cluster *c, enum cluster_state state, const char *why)
{
    if (state == c->state)
        return;
    enum cluster_state was = c->state;
    c->state = state;
    if (state == CLUSTER_UP) {
        c->up_since = uv_now(c->loop);
        c->backoff_ms = CLUSTER_RECONNECT_MIN_MS;
        log_msg(LOG_INFO, "cluster.shared", "Redis at %s answers: limits are shared again",
                c->redis);
    } else if (state == CLUSTER_DOWN) {
        c->outages++;
        log_msg(LOG_WARN, "cluster.fallback",
                "Redis at %s %s: %s; each node keeps to its share of every limit", c->redis,
                was == CLUSTER_UP ? "was lost" : "cannot be reached", why);
    }
    if (c->on_state != NULL)
        c->on_state(c->arg, state);
}

/* The connection is given up on: pending calls fail, a reconnection follows the backoff. */
static void cluster_schedule_reconnect(struct cluster *c)
{
    c->reconnect_at = uv_now(c->loop) + c->backoff_ms;
    c->backoff_ms *= 2;
    if (c->backoff_ms > CLUSTER_RECONNECT_MAX_MS)
        c->backoff_ms = CLUSTER_RECONNECT_MAX_MS;
}

/* The connection is given up on: pending calls fail, a reconnection follows the backoff. */
static void cluster_drop(struct cluster *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL; /* so that cluster_on_disconnect leaves the rest to us */
    cluster_set_state(c, CLUSTER_DOWN, why);
    cluster_schedule_reconnect(c);
    if (ac != NULL)
        redisAsyncFree(ac); /* calls the pending callbacks with no reply */
}

static redisAsyncContext *cluster_open(const char *redis)
{
    if (redis[0] == '/')
        return redisAsyncConnectUnix(redis);
    /* "address:port" or "[v6]:port", checked by the configuration. */
    char host[64];
    const char *colon = strrchr(redis, ':');
    const char *start = redis[0] == '[' ? redis + 1 : redis;
    size_t len = (size_t)(colon - start) - (redis[0] == '[');
    if (colon == NULL || len >= sizeof host)
        return NULL;
    memcpy(host, start, len);
    host[len] = '\0';
    return redisAsyncConnect(host, atoi(colon + 1));
}

static void cluster_connect(struct cluster *c)
{
    redisAsyncContext *ac = cluster_open(c->redis);
    if (ac == NULL || ac->err != 0 || redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        char why[128];
        snprintf(why, sizeof why, "%s", ac != NULL && ac->err != 0 ? ac->errstr : "no memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        cluster_set_state(c, CLUSTER_DOWN, why);
        cluster_schedule_reconnect(c);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, cluster_on_connect);
    redisAsyncSetDisconnectCallback(ac, cluster_on_disconnect);
    c->ac = ac;
    c->progress_at = uv_now(c->loop);
}

static void cluster_on_connect(const redisAsyncContext *ac, int status)
{
    struct cluster *c = ac->data;
    if (status != REDIS_OK) {
        c->ac = NULL; /* hiredis frees it */
        cluster_set_state(c, CLUSTER_DOWN, ac->errstr);
        cluster_schedule_reconnect(c);
        return;
    }
    const char *argv[] = {"SCRIPT", "LOAD", c->script};
    c->progress_at = uv_now(c->loop);
    c->pending++;
    redisAsyncCommandArgv(c->ac, cluster_on_loaded, c, 3, argv, NULL);
}

static void cluster_on_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct cluster *c = privdata;
    const redisReply *r = reply;
    c->pending--;
    if (c->closing || r == NULL)
        return; /* freed or dropped: on_disconnect follows */
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        cluster_drop(c, r->type == REDIS_REPLY_ERROR ? r->str : "SCRIPT LOAD failed");
        return;
    }
    memcpy(c->sha, r->str, 40);
    c->sha[40] = '\0';
    c->progress_at = uv_now(c->loop);
    cluster_set_state(c, CLUSTER_UP, NULL);
}

static void cluster_on_timer_closed(uv_handle_t *h);

/* The last step of cluster_free, once the connection is gone. */
static void cluster_finish(struct cluster *c)
{
    uv_close((uv_handle_t *)&c->timer, cluster_on_timer_closed);
}

static void cluster_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct cluster *c = ac->data;
    if (c->ac != ac)
        return; /* freed by cluster_free or cluster_drop */
    if (c->closing) {
        c->ac = NULL;
        cluster_finish(c);
        return;
    }
    c->ac = NULL; /* hiredis frees it */
    cluster_set_state(c, CLUSTER_DOWN, status == REDIS_OK ? "connection closed" : ac->errstr);
    cluster_schedule_reconnect(c);
}

static void cluster_on_tick(uv_timer_t *t)
{
    struct cluster *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->closing) {
        if (now >= c->close_by && c->ac != NULL) {
            redisAsyncContext *ac = c->ac;
            c->ac = NULL;
            redisAsyncFree(ac); /* Redis is too slow to see the last calls out */
            cluster_finish(c);
        }
        return;
    }
    if (c->ac == NULL) {
        if (now >= c->reconnect_at)
            cluster_connect(c);
        return;
    }
    /* Connecting, loading the script, or a call unanswered for too long. */
    if ((c->state != CLUSTER_UP || c->pending > 0) && now - c->progress_at > c->timeout_ms) {
        cluster_drop(c, "no answer within cluster.timeout");
    }
}

struct cluster *cluster_new(uv_loop_t *loop, const struct cluster_params *p, const char *script,
                            cluster_state_cb on_state, void *arg)
{
    struct cluster *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->redis = xstrdup(p->redis);
    c->timeout_ms = p->timeout_ms;
    c->script = xstrdup(script);
    c->state = CLUSTER_CONNECTING;
    c->backoff_ms = CLUSTER_RECONNECT_MIN_MS;
    c->on_state = on_state;
    c->arg = arg;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uint64_t tick = p->timeout_ms / 4;
    tick = tick < CLUSTER_TICK_MIN_MS   ? CLUSTER_TICK_MIN_MS
           : tick > CLUSTER_TICK_MAX_MS ? CLUSTER_TICK_MAX_MS
                                        : tick;
    uv_timer_start(&c->timer, cluster_on_tick, tick, tick);
    cluster_connect(c);
    return c;
}

static void cluster_on_timer_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    free(c->redis);
    free(c->script);
    free(c);
}

void cluster_free(struct cluster *c)
{
    if (c == NULL)
        return;
    c->closing = 1;
    c->on_state = NULL;
    if (c->ac != NULL && c->state == CLUSTER_UP) {
        /* The last calls (leases given back) go out and are answered, within cluster.timeout. */
        c->close_by = uv_now(c->loop) + c->timeout_ms;
        redisAsyncDisconnect(c->ac);
        return;
    }
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac != NULL)
        redisAsyncFree(ac); /* calls the pending callbacks with no reply */
    cluster_finish(c);
}

enum cluster_state cluster_state(const struct cluster *c)
{
    return c->state;
}

uint64_t cluster_outages(const struct cluster *c)
{
    return c->outages;
}

uint64_t cluster_up_since(const struct cluster *c)
{
    return c->up_since;
}

static void cluster_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct cluster_call *call = privdata;
    struct cluster *c = call->c;
    const redisReply *r = reply;
    c->pending--;
    c->progress_at = uv_now(c->loop);
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_WARN, "cluster.error", "Redis at %s: %s", c->redis, r->str);
        r = NULL;
    }
    call->cb(call->arg, r);
    free(call);
}

int cluster_eval(struct cluster *c, const char *const *keys, int nkeys, const char *const *args,
                 int nargs, cluster_reply_cb cb, void *arg)
{
    if (c->state != CLUSTER_UP || c->ac == NULL)
        return -1;
    char nkeys_text[16];
    snprintf(nkeys_text, sizeof nkeys_text, "%d", nkeys);
    int argc = 3 + nkeys + nargs;
    const char **argv = xmalloc((size_t)argc * sizeof *argv);
    argv[0] = "EVALSHA";
    argv[1] = c->sha;
    argv[2] = nkeys_text;
    memcpy(argv + 3, keys, (size_t)nkeys * sizeof *argv);
    memcpy(argv + 3 + nkeys, args, (size_t)nargs * sizeof *argv);
    struct cluster_call *call = xmalloc(sizeof *call);
    *call = (struct cluster_call){c, cb, arg};
    int rc = redisAsyncCommandArgv(c->ac, cluster_on_reply, call, argc, argv, NULL);
    free(argv);
    if (rc != REDIS_OK) {
        free(call);
        return -1;
    }
    if (c->pending++ == 0)
        c->progress_at = uv_now(c->loop);
    return 0;
}
