/*
 * Destinations: where the scheduler's jobs wait for a connection, and the limits that hold for
 * each (destination, egress address) pair: concurrent connections, messages and recipients per
 * connection, the recipient and message rates (shaping.h's, which the SMTP client paces itself
 * by) and the rate of connections opened, pauses after a receiver asks us to slow down, and
 * suspension with backoff after repeated connection failures. A destination owns the SMTP client
 * connections it opens; each connection tries the MX hosts in order and carries as many jobs as its
 * limits allow, waiting idle for the next one up to the shaping's idle_timeout.
 */
#ifndef SLUICE_DESTINATION_H
#define SLUICE_DESTINATION_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "lib/config.h"
#include "lib/minheap.h"
#include "mta/delivery/route.h"
#include "mta/delivery/shared_limits.h"
#include "mta/delivery/smtp_client.h"
#include "spool/spool.h"

struct qmsg;
struct dest;

struct job_rcpt {
    size_t index;      /* in the message's recipients */
    const char *addr;  /* borrowed, like the job's queue_id and sender */
    unsigned notify;   /* RFC 3461 NOTIFY bits, 0: not given */
    const char *orcpt; /* RFC 3461 ORCPT "type;address", NULL: not given */
};

/* One message's recipients for one domain, with what a connection needs of the message. The
 * strings are the scheduler's: it keeps the message until each of its jobs is back (job_done or
 * job_returned). A job a destination splits leaves parts that hold its recipients, each once. */
struct job {
    struct qmsg *msg; /* the scheduler's message: a destination only hands it back */
    const char *queue_id;
    const char *sender;   /* "" for the null sender */
    const char *tenant;   /* whose mail, NULL: nobody's (docs/tenants.md) */
    const char *campaign; /* NULL: none */
    unsigned flags;       /* SPOOL_ENV_8BITMIME, SPOOL_ENV_SMTPUTF8 */
    unsigned ret;         /* RFC 3461 RET, 0: not given */
    const char *envid;    /* RFC 3461 ENVID, NULL: not given */
    char *domain;
    struct job_rcpt *rcpts;
    size_t nrcpts;
    struct mx_list *mx;
    /* The shaping values the job was routed under (retry schedule, expiry); they live in a
     * configuration the destination holds a reference on. */
    const struct config_shaping *shaping;
    /* Loop time (uv_now) at which the message expires under shaping: a job still waiting for the
     * warm-up then leaves untried, to be bounced. */
    uint64_t expires_at;
    /* Its place in its destination's heap of queued jobs by expires_at, while queued there. */
    struct minheap_node expiry;
    /* Set by the destination when it reports the job: milliseconds until a reply rule's
     * suspension that holds the destination back ends (a deferred recipient is tried then, not
     * at its next retry step), or -1: none holds. */
    int64_t hold_ms;
    /* Set by the destination when it reports the job after a connection: the egress address it
     * was tried from (the slot's, for the metrics), valid during job_done; NULL: none. */
    const char *egress;
    struct job *next;
    /* While queued at a destination: the lane of its fair queue it waits in and the job before
     * it there (sched_fair.c's), so that it can leave from the middle at once. */
    struct fair_lane *lane;
    struct job *lane_prev;
};

/* What the scheduler learns from destinations. */
struct dest_hooks {
    /* A job was tried at the destination called dest_key (NULL: its route failed before it had
     * one): outcomes[i] is for job->rcpts[i]; mx_name is the host that answered (or the last one
     * tried). The job is the callee's to free (job_free). */
    void (*job_done)(void *arg, const char *dest_key, struct job *job,
                     const struct smtp_client_outcome *outcomes, const char *mx_name);
    /* A job left a destination without being tried (reload, stop). */
    void (*job_returned)(void *arg, struct job *job);
    /* A retired destination has no job and no connection left: it may be freed now. */
    void (*dest_idle)(void *arg, struct dest *d);
    void *arg;
};

/* What every destination shares. */
struct dest_env {
    uv_loop_t *loop;
    struct spool *spool;
    SSL_CTX *tls_ctx;
    struct dane *dane;       /* used when dns.dnssec is on; NULL: OpenSSL has no DANE */
    struct warmup *warmup;   /* egress addresses' warm-up counts */
    struct tls_rpt *tls_rpt; /* TLS reporting (tls_rpt.h); always set */
    struct dest_hooks hooks;
    uint64_t next_conn_id;
    unsigned conns; /* open connections, all destinations */
    /* Limits kept with the other nodes (shared_limits.h); NULL: no cluster. */
    struct shared_limits *shared;
};

/* A destination for `key` under shaping values `shaping`, sending from `pool` (NULL: one
 * unbound address with EHLO `hostname`); a key "KEY/POOL" is KEY's mail of the tenants whose own
 * pool that is (sched_tenancy.c), warmed up as KEY. Its queue serves tenants fairly (sched_fair.h).
 * Takes a reference on cfg (the values live in it). After a reload, `predecessor` is the retired
 * destination for the same key (or NULL): the new one takes over its suspension and, for each
 * egress address in both, shares its state: the connections still open there count against the new
 * cap, and a throttle, a pause and the rate buckets carry over. The two may be freed in any order.
 */
struct dest *dest_new(struct dest_env *env, const char *key, struct config *cfg,
                      const struct config_shaping *shaping, const struct config_egress_pool *pool,
                      const struct dest *predecessor);
const char *dest_key(const struct dest *d);
/* Queues a job (split by recipients_per_message) and opens connections as the limits allow. */
void dest_enqueue(struct dest *d, struct job *job);
/* Admin suspension for for_ms (0: until dest_resume), or the end of one; queued jobs stay
 * queued. */
void dest_suspend(struct dest *d, uint64_t for_ms);
/* Returns (job_returned) every queued job that match(job, arg) accepts. */
void dest_return_jobs(struct dest *d, int (*match)(const struct job *, const void *),
                      const void *arg);
void dest_resume(struct dest *d);
/* Stops new connections; queued jobs are returned and idle connections QUIT. With abort, the other
 * open connections are dropped (their jobs end with temporary failures). The destination frees
 * itself once idle. */
void dest_retire(struct dest *d, int abort);
/* 1 when it has no jobs and no connections (an admin suspension counts as in use, unless
 * retired). */
int dest_idle(const struct dest *d);
/* 1 when it is idle, no pause or suspension lies ahead and no predecessor's connection is still
 * open on its egress addresses: forgetting it loses nothing. */
int dest_unused(const struct dest *d);
void dest_free(struct dest *d);
/* Appends a JSON object describing it (key, queued jobs, connections, limits, pauses, retired by a
 * reload). */
void dest_describe(const struct dest *d, struct buf *out);
/* Appends, as lines of text, what holds it back: its suspension, a bounce rule, and for each egress
 * address a suspension, a backoff and the recovery level, the warm-up; then each reply rule for it
 * (or that matched here) with its hits. */
void dest_explain(const struct dest *d, struct buf *out);

/* What `sluice status`, the status API and the metrics show of a destination. */
struct dest_summary {
    char key[256];
    size_t queued;     /* jobs */
    unsigned conns;    /* open */
    int suspended;     /* 1: no connection opens (an admin, a reply rule or failed connections) */
    uint64_t until_ms; /* how long a suspension lasts; 0: until resumed */
    char why[96];      /* the reply rule that suspended or slowed it; "" none (or an admin) */
    unsigned paused;   /* egress addresses paused by a throttle */
    unsigned backoff;  /* egress addresses held back by a backoff */
};
void dest_summarize(const struct dest *d, struct dest_summary *out);

void job_free(struct job *job);

#endif
