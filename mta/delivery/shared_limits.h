/*
 * Limits that the nodes of a cluster keep together in Redis (cluster.redis), as a receiver counts
 * them: each (destination, egress address) rate is a sliding log in Redis decided by one Lua
 * script call per event, each open connection holds a lease there that it renews while it lives
 * (a dead node's expire), and an administrator's suspension of a destination holds on every node.
 * The local limits (shaping.h, destination.h) stay the first gate; these gate across nodes. While
 * Redis cannot be reached each node keeps to 1/cluster.nodes of every limit, after one quiet
 * window, and keeps to that share for a while after Redis is back. Made by the daemon when
 * cluster.redis is set (NULL otherwise: nothing here runs); destinations own their rates and
 * connection sets, each connection its lease.
 */
#ifndef SLUICE_SHARED_LIMITS_H
#define SLUICE_SHARED_LIMITS_H

#include <stdint.h>

#include <uv.h>

#include "lib/config.h"

/* While a reply is awaited, how soon to look again. */
#define SHARED_POLL_MS 1
/* Largest count kept as a log in Redis (as lib/ratewindow.h); larger rates are spaced evenly. */
#define SHARED_LOG_MAX 1024

struct shared_limits;
struct shared_rate;
struct shared_conns;
struct shared_lease;

/* The Lua script every decision runs (ARGV[1] names the operation); for tests. */
extern const char shared_limits_script[];

/* NULL when cfg has no cluster.redis. Connects at once (cluster.h). */
struct shared_limits *shared_limits_new(uv_loop_t *loop, const struct config *cfg);
/* Closes the link; objects made from it may be freed later (they see Redis as away). */
void shared_limits_free(struct shared_limits *s);
/* 1 while decisions are shared through Redis, 0 while this node keeps to its share or waits for
 * the first connection. */
int shared_limits_up(const struct shared_limits *s);

/* The rate `name` (unique per destination, egress address and kind) at `rate` with the margin. */
struct shared_rate *shared_rate_new(struct shared_limits *s, const char *name,
                                    struct config_rate rate, unsigned margin_percent);
/* New values (a reload). */
void shared_rate_set(struct shared_rate *r, struct config_rate rate, unsigned margin_percent);
/* Milliseconds until one more event may go across the cluster (0: now; then shared_rate_take
 * counts it). Asks Redis when needed, so a later call may answer 0. */
uint64_t shared_rate_wait(struct shared_rate *r, uint64_t now_ms);
void shared_rate_take(struct shared_rate *r, uint64_t now_ms);
/* 1 when dropping r loses nothing (no event of its own share still in its window). */
int shared_rate_idle(const struct shared_rate *r, uint64_t now_ms);
void shared_rate_free(struct shared_rate *r);

/* The connections of one (destination, egress address) across the cluster. */
struct shared_conns *shared_conns_new(struct shared_limits *s, const char *dest,
                                      const char *egress);
/* Milliseconds until one more connection may open, `cap` being the limit and `active` this
 * node's open connections (0: now; then shared_conns_take gives it its lease). */
uint64_t shared_conns_wait(struct shared_conns *sc, unsigned cap, unsigned active, uint64_t now_ms);
/* 1 when a suspension set on any node holds the destination back: its open connections take no
 * further job. Looks in Redis again at most once a second (the answer comes later). */
int shared_conns_suspended(struct shared_conns *sc, uint64_t now_ms);
/* The lease of the connection that opens now: renewed until shared_lease_release. */
struct shared_lease *shared_conns_take(struct shared_conns *sc, uint64_t now_ms);
void shared_lease_release(struct shared_lease *l);
void shared_conns_free(struct shared_conns *sc);

/* An administrator's suspension of `dest` for for_ms (0: until resumed), and its end, for every
 * node: theirs open no connection there meanwhile. */
void shared_limits_suspend(struct shared_limits *s, const char *dest, uint64_t for_ms);
void shared_limits_resume(struct shared_limits *s, const char *dest);

#endif
