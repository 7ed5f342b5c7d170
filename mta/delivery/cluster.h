/*
 * The link to the redis-server that several Sluice nodes keep their shared limits in
 * (cluster.redis): one hiredis connection on the loop (its libuv adapter, never blocking), the
 * limits' Lua script loaded into it, and whether Redis can be reached: up (shared decisions),
 * connecting, or down (each node falls back to its share), with reconnection on a backoff and an
 * event at each change. A reply later than cluster.timeout counts as Redis gone. Owned by the
 * daemon; shared_limits.c is its only user.
 */
#ifndef SLUICE_CLUSTER_H
#define SLUICE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

/* Bounds of the reconnection backoff: nodes notice that Redis is back at most this far apart. */
#define CLUSTER_RECONNECT_MIN_MS 100
#define CLUSTER_RECONNECT_MAX_MS 2000

struct cluster_params {
    const char *redis; /* unix socket path or numeric "address:port" ("[v6]:port") */
    uint64_t timeout_ms;
};

enum cluster_state { CLUSTER_CONNECTING, CLUSTER_UP, CLUSTER_DOWN };

/* Called on every change of state (after the event is logged). */
typedef void (*cluster_state_cb)(void *arg, enum cluster_state state);
/* A script call's reply, or NULL when it failed (Redis gone, an error reply: logged). The reply
 * is hiredis's and lives until the callback returns. */
typedef void (*cluster_reply_cb)(void *arg, const redisReply *reply);

struct cluster;

/* Starts connecting to p->redis and loads `script` there once connected (and again after each
 * reconnection). */
struct cluster *cluster_new(uv_loop_t *loop, const struct cluster_params *p, const char *script,
                            cluster_state_cb on_state, void *arg);
/* Calls already made still go out and are answered (within cluster.timeout; after that they get
 * their callback with NULL); then the handles close on the loop. */
void cluster_free(struct cluster *c);
enum cluster_state cluster_state(const struct cluster *c);
/* Number of times Redis was lost since the start (each outage has its own number). */
uint64_t cluster_outages(const struct cluster *c);
/* uv_now ms when Redis last came up (0: never). */
uint64_t cluster_up_since(const struct cluster *c);
/* EVALSHA of the script with keys[0..nkeys) and args[0..nargs). Returns 0 and calls cb once
 * later; -1 when Redis is not up (cb is never called). Calls made in one turn of the loop go out
 * in one write. */
int cluster_eval(struct cluster *c, const char *const *keys, int nkeys, const char *const *args,
                 int nargs, cluster_reply_cb cb, void *arg);

#endif
