/*
 * The limits shared through Redis (mta/delivery/shared_limits.h) against a real redis-server on
 * loopback: the script's sliding log and its even spacing never let more than `count` events into
 * a window, leases are capped, expire and stop while a destination is suspended, and two nodes on
 * one loop keep a rate together, fall back to their shares when Redis dies (after a quiet window)
 * and share again when it returns.
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "check.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mta/delivery/shared_limits.h"
#include "tests/support/redis.h"

#define EVENTS_MAX 20000
/* 8 per 400 ms with a 10 % margin is never more than 8 in any 440 ms of Redis's clock. A grant is
 * used up to half the margin after it was asked for (and the loop may run late): as this node's
 * clock sees the events, 8 in any 415 ms. */
#define SHARED_WINDOW 415

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The most of t[0..n) (ascending) that fall in one window [t_i, t_i + w). */
static size_t most_in_window(const double *t, size_t n, double w)
{
    size_t most = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        while (j < n && t[j] < t[i] + w)
            j++;
        if (j - i > most)
            most = j - i;
    }
    return most;
}

/* One script call; returns the reply's first integer and its second in *second. */
static long long eval(redisContext *c, const char *key, const char *key2, const char **args,
                      int nargs, long long *second)
{
    const char *argv[16] = {"EVAL", shared_limits_script, key2 ? "2" : "1", key};
    int argc = 4;
    if (key2 != NULL)
        argv[argc++] = key2;
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    long long first = -100;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        first = r->element[0]->integer;
        *second = r->element[1]->integer;
    } else if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        first = r->integer;
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "script error: %s\n", r->str);
    }
    freeReplyObject(r);
    return first;
}

/* The most of the events in one window of Redis's clock narrower than w, as far as the asker can
 * tell: Redis granted event i between ask[i] and got[i] (ascending), so events i..j certainly fell
 * within got[j] - ask[i]. A stall of this process after a grant widens its bracket instead of
 * crowding a window, so load cannot fail the check, and a window Redis really overfilled still
 * shows (a reply's round trip, well under a millisecond, is all it gives away). */
static size_t most_surely_in_window(const double *ask, const double *got, size_t n, double w)
{
    size_t most = 0;
    for (size_t i = 0, j = i; i < n; i++) {
        if (j < i)
            j = i;
        while (j < n && got[j] - ask[i] < w)
            j++;
        if (j - i > most)
            most = j - i;
    }
    return most;
}

/* Asks as fast as it can for run_ms; each grant's bracket (the time it was asked for, the time
 * its reply came) goes to ask and got (returns how many). */
static size_t hammer_rate(redisContext *c, const char *key, const char *count, const char *window,
                          double run_ms, double *ask, double *got)
{
    size_t n = 0;
    char member[32], logmax[16];
    snprintf(logmax, sizeof logmax, "%d", SHARED_LOG_MAX);
    double start = mono_ms();
    for (unsigned seq = 0; mono_ms() - start < run_ms && n < EVENTS_MAX; seq++) {
        snprintf(member, sizeof member, "m%u", seq);
        const char *args[] = {"rate", count, window, member, logmax};
        long long wait = 0;
        double asked = mono_ms();
        if (eval(c, key, NULL, args, 5, &wait) == 1) {
            ask[n] = asked;
            got[n++] = mono_ms();
        }
    }
    return n;
}

static void test_sliding_log(redisContext *c, double *ask, double *got)
{
    /* 6/s with a 5 % margin: never 7 in any 1.05 s, and the 6 used. */
    size_t n = hammer_rate(c, "t:log", "6", "1050", 2300, ask, got);
    CHECK(n >= 12);
    CHECK(n <= 18);
    CHECK(most_surely_in_window(ask, got, n, 1050) <= 6);
    CHECK(most_in_window(got, n, 1050) >= 6);
}

static void test_spaced(redisContext *c, double *ask, double *got)
{
    /* Above SHARED_LOG_MAX: one every 0.2 ms, never more than 50 in 10 ms, less 0.5 ms: the
     * script keeps its next time as a string of 14 digits, 0.1 ms apart at today's clock. */
    size_t n = hammer_rate(c, "t:spaced", "5000", "1000", 400, ask, got);
    CHECK(n >= 50);
    CHECK(n <= 2001);
    CHECK(most_surely_in_window(ask, got, n, 9.5) <= 50);
    redisReply *r = redisCommand(c, "TYPE t:spaced");
    CHECK_STR_EQ(r != NULL ? r->str : NULL, "string"); /* one number, not a log */
    freeReplyObject(r);
}

static long long lease(redisContext *c, const char *node, const char *member, const char *ttl,
                       long long *wait)
{
    const char *argv[] = {"EVAL",      shared_limits_script,
                          "3",         "t:conns",
                          "t:suspend", "t:waiting",
                          "lease",     "2",
                          ttl,         member,
                          "0",         node,
                          "300"};
    redisReply *r = redisCommandArgv(c, 13, argv, NULL);
    long long first = -100;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        first = r->element[0]->integer;
        *wait = r->element[1]->integer;
    }
    freeReplyObject(r);
    return first;
}

static void test_leases(redisContext *c)
{
    long long n = 0;
    CHECK_INT_EQ(lease(c, "n1", "n1:1", "60000", &n), 1);
    CHECK_INT_EQ(lease(c, "n1", "n1:2", "60000", &n), 1);
    CHECK_INT_EQ(lease(c, "n2", "n2:1", "60000", &n), 0); /* two is the cap */
    const char *release[] = {"release", "n1:1"};
    CHECK_INT_EQ(eval(c, "t:conns", NULL, release, 2, &n), 1);
    /* n2 waits for one: n1, at its fair share, does not take the place back. */
    CHECK_INT_EQ(lease(c, "n1", "n1:3", "60000", &n), 0);
    CHECK_INT_EQ(lease(c, "n2", "n2:2", "60000", &n), 1);

    /* A suspension holds every node's new leases back, renewals go on. */
    const char *suspend[] = {"suspend", "0"};
    eval(c, "t:suspend", NULL, suspend, 2, &n);
    CHECK_INT_EQ(eval(c, "t:conns", NULL, release, 2, &n), 0);
    CHECK_INT_EQ(lease(c, "n3", "n3:1", "60000", &n), -1);
    CHECK_INT_EQ(n, -1); /* until resumed */
    const char *look[] = {"suspended"};
    CHECK_INT_EQ(eval(c, "t:suspend", NULL, look, 1, &n), -1);
    const char *renew[] = {"lease", "2", "60000", "n2:2", "1"};
    CHECK_INT_EQ(eval(c, "t:conns", "t:suspend", renew, 5, &n), 1);
    const char *resume[] = {"resume"};
    CHECK_INT_EQ(eval(c, "t:suspend", NULL, resume, 1, &n), 1);
    CHECK_INT_EQ(eval(c, "t:suspend", NULL, look, 1, &n), 0);

    /* A lease nobody renews expires: a dead node's connections free their places. */
    redisReply *r = redisCommand(c, "DEL t:conns t:waiting");
    freeReplyObject(r);
    CHECK_INT_EQ(lease(c, "x", "x:1", "300", &n), 1);
    CHECK_INT_EQ(lease(c, "x", "x:2", "300", &n), 1);
    double start = mono_ms();
    while (lease(c, "z", "z:1", "300", &n) == 0 && mono_ms() - start < 3000)
        usleep(10000);
    double took = mono_ms() - start;
    CHECK(took >= 250);
    CHECK(took < 1000);
}

/* ---- two nodes on one loop ---- */

struct node {
    struct shared_limits *s;
    struct shared_rate *r;
    uv_timer_t timer;
    double *t;
    size_t n;
};

static void node_on_timer(uv_timer_t *h)
{
    struct node *nd = h->data;
    uint64_t now = uv_now(h->loop);
    uint64_t wait = shared_rate_wait(nd->r, now);
    if (wait == 0) {
        shared_rate_take(nd->r, now);
        if (nd->n < EVENTS_MAX)
            nd->t[nd->n++] = mono_ms();
    }
    uv_timer_start(h, node_on_timer, wait, 0);
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until cond(arg) holds or ms pass; returns cond(arg). */
static int run_until(uv_loop_t *loop, int (*cond)(void *), void *arg, unsigned ms)
{
    uv_timer_t guard;
    int expired = 0;
    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, ms, 0);
    while ((cond == NULL || !cond(arg)) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return cond != NULL && cond(arg);
}

static int both_up(void *arg)
{
    struct node *nodes = arg;
    return shared_limits_up(nodes[0].s) && shared_limits_up(nodes[1].s);
}

static int both_down(void *arg)
{
    struct node *nodes = arg;
    return !shared_limits_up(nodes[0].s) && !shared_limits_up(nodes[1].s);
}

/* Events of nodes[0..2) from index from[i] on, merged and sorted, into out; returns how many. */
static size_t merged(struct node *nodes, const size_t *from, double *out)
{
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        for (size_t k = from[i]; k < nodes[i].n; k++)
            out[n++] = nodes[i].t[k];
    for (size_t i = 1; i < n; i++) /* insertion sort: the two lists are sorted already */
        for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
            double x = out[k];
            out[k] = out[k - 1];
            out[k - 1] = x;
        }
    return n;
}

struct lease_wait {
    struct shared_conns *sc;
    uv_loop_t *loop;
};

static int lease_granted(void *arg)
{
    struct lease_wait *w = arg;
    return shared_conns_wait(w->sc, 2, 0, uv_now(w->loop)) == 0;
}

static long long conns_held(redisContext *c)
{
    redisReply *r = redisCommand(c, "ZCARD sluice:conns:d:e");
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static int conns_empty(void *arg)
{
    return conns_held(arg) == 0;
}

/* The lease a connection takes is the one Redis holds, and giving it back frees its place. */
static void test_lease_round_trip(uv_loop_t *loop, struct shared_limits *s, struct redis *rd)
{
    redisContext *c = redisConnect("127.0.0.1", rd->port);
    struct lease_wait w = {shared_conns_new(s, "d", "e"), loop};
    CHECK(run_until(loop, lease_granted, &w, 3000));
    struct shared_lease *l = shared_conns_take(w.sc, uv_now(loop));
    CHECK_INT_EQ(conns_held(c), 1);
    shared_lease_release(l);
    CHECK(run_until(loop, conns_empty, c, 3000));
    shared_conns_free(w.sc);
    redisFree(c);
}

static void test_two_nodes(struct redis *rd, double *all)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "cluster: {redis: \"%s\", nodes: 2}\n", rd->address);
    struct buf err = BUF_INIT;
    struct config *cfg = NULL;
    CHECK_INT_EQ(config_load_string(yaml, strlen(yaml), "<test>", &cfg, &err), 0);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err.data);
        return;
    }
    struct config_rate rate = {8, 400};
    struct node nodes[2];
    for (int i = 0; i < 2; i++) {
        nodes[i] = (struct node){.s = shared_limits_new(&loop, cfg), .n = 0};
        nodes[i].t = calloc(EVENTS_MAX, sizeof *nodes[i].t);
        nodes[i].r = shared_rate_new(nodes[i].s, "rcpt:dest:any", rate, 10);
        uv_timer_init(&loop, &nodes[i].timer);
        nodes[i].timer.data = &nodes[i];
    }
    CHECK(run_until(&loop, both_up, nodes, 3000));
    for (int i = 0; i < 2; i++)
        uv_timer_start(&nodes[i].timer, node_on_timer, 0, 0);

    /* Shared: together at most 8 per window, and using it (each node getting some). */
    run_until(&loop, NULL, NULL, 1500);
    size_t from[2] = {0, 0};
    size_t n = merged(nodes, from, all);
    CHECK(most_in_window(all, n, SHARED_WINDOW) <= 8);
    CHECK(n >= 24);
    CHECK(nodes[0].n > 0 && nodes[1].n > 0);

    /* Redis dies: each keeps to 4 per window after a quiet window. */
    redis_stop(rd);
    double lost = mono_ms();
    CHECK(run_until(&loop, both_down, nodes, 3000));
    size_t at_loss[2] = {nodes[0].n, nodes[1].n};
    run_until(&loop, NULL, NULL, 1500);
    for (int i = 0; i < 2; i++) {
        size_t own = nodes[i].n - at_loss[i];
        CHECK(own >= 4);
        CHECK(most_in_window(nodes[i].t + at_loss[i], own, SHARED_WINDOW) <= 4);
        if (own > 0)
            CHECK(nodes[i].t[at_loss[i]] - lost >= 400); /* the quiet window */
    }
    n = merged(nodes, from, all);
    CHECK(most_in_window(all, n, SHARED_WINDOW) <= 8);

    /* Redis returns (empty): shared again, and never more than 8 per window on the way. */
    CHECK_INT_EQ(redis_start(rd), 0);
    CHECK(run_until(&loop, both_up, nodes, 5000));
    size_t at_return[2] = {nodes[0].n, nodes[1].n};
    run_until(&loop, NULL, NULL, 3000);
    n = merged(nodes, from, all);
    CHECK(most_in_window(all, n, SHARED_WINDOW) <= 8);
    n = merged(nodes, at_return, all);
    CHECK(n >= 30); /* more than the two shares alone would give in 3 s */

    test_lease_round_trip(&loop, nodes[0].s, rd);

    for (int i = 0; i < 2; i++) {
        uv_close((uv_handle_t *)&nodes[i].timer, NULL);
        shared_rate_free(nodes[i].r);
        shared_limits_free(nodes[i].s);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    for (int i = 0; i < 2; i++)
        free(nodes[i].t);
    config_unref(cfg);
    buf_free(&err);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    struct redis rd = {0};
    if (redis_start(&rd) < 0) {
        fprintf(stderr, "redis-server did not start\n");
        return 1;
    }
    redisContext *c = redisConnect("127.0.0.1", rd.port);
    CHECK(c != NULL && c->err == 0);
    double *t = calloc(EVENTS_MAX, sizeof *t), *t2 = calloc(EVENTS_MAX, sizeof *t2);
    if (c != NULL && c->err == 0) {
        test_sliding_log(c, t, t2);
        test_spaced(c, t, t2);
        test_leases(c);
    }
    redisFree(c);
    test_two_nodes(&rd, t);
    free(t);
    free(t2);
    redis_cleanup(&rd);
    return check_report("test_shared_limits");
}
