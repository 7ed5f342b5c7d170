/*
 * What destination.c (queues, connections, dispatch) and dest_react.c (what a destination does
 * about receivers' replies: reply rules, throttles, recovery, and its description) share: the
 * state of a destination, of each of its egress addresses and of each connection. Private to
 * those two files; everyone else uses destination.h.
 */
#ifndef SLUICE_DEST_INT_H
#define SLUICE_DEST_INT_H

#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mta/delivery/destination.h"
#include "mta/delivery/recovery.h"
#include "mta/delivery/reply_rules.h"
#include "mta/delivery/sched_fair.h"
#include "mta/delivery/shaping.h"
#include "mta/delivery/warmup.h"

/* Connection failures in a row (before the server greeted us properly) that suspend a
 * destination, and the bounds of that suspension. */
#define DEST_FAILS_TO_SUSPEND 3
#define DEST_SUSPEND_MIN_MS 1000
#define DEST_SUSPEND_MAX_MS (30 * 60 * 1000)
/* Room for what put a suspension or a backoff in place, for logs and `queue list`, and for the
 * text mail fails with while a bounce rule holds. */
#define DEST_WHY_MAX 96
#define DEST_BOUNCE_TEXT_MAX 512
/* How long a throttled (destination, egress address) pauses at least and at most. */
#define THROTTLE_PAUSE_MIN_MS 1000
#define THROTTLE_PAUSE_MAX_MS (5 * 60 * 1000)

/* One egress address's state at this destination. A reload's successor destination shares it with
 * the retired one (refs), so the connections still open there count against the cap, and pauses and
 * the rates carry over. */
struct slot {
    int refs;
    struct sockaddr_storage src; /* family AF_UNSPEC: not bound */
    char *ehlo;
    char *address;   /* for logs: "192.0.2.10" or "any" */
    unsigned active; /* open connections, of every destination sharing the slot */
    unsigned max;    /* the shaping's connections */
    unsigned cap;    /* current connection limit: max, lowered when slowed down */
    unsigned msgs_per_conn, rcpts_per_conn; /* current per-connection limits */
    struct recovery rec; /* how far a backoff or a throttle slowed it, and the way back */
    uint64_t paused_until;
    char why[DEST_WHY_MAX];         /* the reply rule that suspended it; "" none */
    char backoff_why[DEST_WHY_MAX]; /* the reply rule that backed it off, until fully recovered */
    struct shaping_rates *rates;    /* what its connections pace MAIL and RCPT by */
    struct warmup_count *warm;      /* its warm-up count at this destination; NULL: warm */
    struct shared_conns *shared;    /* its connections across the cluster; NULL: no cluster */
    struct dest *owner; /* the destination that dispatches on it (the newest), or NULL */
};

struct dest {
    struct dest_env *env;
    char *key;
    struct config *cfg;
    const struct config_shaping *shaping;
    struct slot **slots;
    size_t nslots;
    struct fair_queue queue; /* jobs waiting for a connection, by tenant (sched_fair.h) */
    size_t queued;           /* jobs */
    /* The queued jobs by expires_at, so that mail a suspension or the limits hold back expires
     * on time without a walk of the queue. */
    struct minheap expiry;
    unsigned conns;
    struct conn *conn_list; /* open connections */
    unsigned fail_streak;
    uint64_t suspended_until;          /* uv_now ms; UINT64_MAX: by an admin */
    char why[DEST_WHY_MAX];            /* the reply rule that suspended it; "" none */
    uint64_t bounce_until;             /* a bounce rule fails its mail until then */
    struct smtp_client_outcome bounce; /* what it fails with; text: bounce_text */
    char bounce_text[DEST_BOUNCE_TEXT_MAX];
    struct reply_rules_state *rules; /* hits of the reply rules here */
    uv_timer_t timer;                /* wakes dispatch when a pause or suspension ends */
    unsigned retired : 1;
    unsigned freeing : 1;
    unsigned dispatching : 1; /* a connection that fails at once must not re-enter dispatch */
};

enum conn_state {
    CONN_CONNECTING, /* smtp_client_open done, waiting for READY */
    CONN_READY,      /* idle between jobs, or waiting for the body */
    CONN_SENDING,    /* a transaction is in flight */
    CONN_IDLE,       /* after a transaction, none queued: the next one for it may come, until the
                        client's idle timeout QUITs */
    CONN_QUITTING,
};

struct conn {
    struct dest *dest;
    struct conn *next, **prev; /* in dest->conn_list */
    struct slot *slot;
    uint64_t id;
    struct smtp_client *client;
    enum conn_state state;
    struct job *job; /* the job being delivered */
    struct buf body;
    unsigned body_ready : 1;
    unsigned body_loading : 1;
    unsigned aborting : 1; /* dropped by a stop: CLOSED follows from the client */
    unsigned last_job : 1; /* the receiver asked us to slow down: QUIT after this job */
    unsigned failover : 1; /* the session ended mid-job: the job moves on to the next host */
    unsigned in_clear : 1; /* opportunistic TLS failed at this address: try it once in clear */
    /* The session was opened for a TLS report (SPOOL_ENV_TLS_REPORT): under the shaping's own
     * mode, not the receiver's policy, and not counted. It carries no other mail. */
    unsigned report : 1;
    struct mx_list *mx;    /* the host list this connection works through */
    size_t host, addr;     /* next address to try */
    const char *mx_name;   /* host of the current connection */
    struct tls_policy tls; /* what the current connection was opened under */
    unsigned msgs, rcpts;  /* sent on the current connection */
    /* The last failure to reach a host, for the job when no host can be reached. */
    int fail_code;
    char fail_enhanced[16];
    const char *fail_stage;
    struct buf fail_text;
    /* Its place among the cluster's connections (shared_limits.h), or NULL. */
    struct shared_lease *lease;
};

/* ---- destination.c, for dest_react.c ---- */

/* Logs event about d (and egress address sl, when not NULL) with text msg. */
void dest_log(const struct dest *d, const struct slot *sl, enum log_level level, const char *event,
              const char *msg);
/* 1 when a temporary reply among o[0..n) is 421 or asks us to slow down (bounce_class.h). */
int outcomes_throttle(const struct smtp_client_outcome *o, size_t n);
/* Wakes dispatch at `at` (uv_now ms) unless it is due sooner already. */
void dest_arm_timer(struct dest *d, uint64_t at);
/* Reports every recipient of job with the one outcome o (from host mx_name, may be NULL). */
void dest_report_all(struct dest *d, struct job *job, const struct smtp_client_outcome *o,
                     const char *mx_name);
struct job *dest_take_job(struct dest *d, const struct conn *c);
/* The next queued job whatever its tenant's rates (to fail it, not to send it). */
struct job *dest_take_any(struct dest *d);
/* 1 when the last dest_take_job found a job that waits only for its tenant's own rates. */
static inline int dest_rate_held(const struct dest *d)
{
    return d->queue.rate_wake_ms != UINT64_MAX;
}

/* ---- dest_react.c ---- */

/* The slot's limits at its recovery level (connections, per connection, the rate it paces by). */
void slot_apply(struct slot *sl, const struct config_shaping *sh, uint64_t now);
/* What the reply rules say about replies outcomes[0..n) at connection c (the first remote failure
 * a rule matches counts a hit; the rule acts once its threshold is reached). Returns 1 when a
 * rule acted, so that the fallback (slot_throttle) does not. */
int conn_apply_rules(struct conn *c, const struct smtp_client_outcome *outcomes, size_t n);
/* The fallback for a 421 or a rate reply that no rule acted on: the egress address's limits are
 * halved (multiplicative decrease) and it pauses for the first retry step. */
void slot_throttle(struct dest *d, struct slot *sl);
/* A transaction went through on sl: one recovery step when an interval has passed. */
void slot_clean(struct dest *d, struct slot *sl);
/* Logs the end of suspensions (of d, of its egress addresses) that reply rules put in place and
 * that have run out by now. */
void dest_note_ends(struct dest *d, uint64_t now);
/* 1 when a reply rule holds c back: its egress address or the destination suspended by a rule, or
 * the destination's mail bouncing. Its job then goes to no other MX host on this connection. */
int conn_held(const struct conn *c, uint64_t now);
/* While a bounce rule holds: 1, and *o (borrowing d's text) is what d's mail fails with. */
int dest_bouncing(const struct dest *d, uint64_t now, struct smtp_client_outcome *o);
/* Milliseconds until mail that a reply rule's suspension holds back can be tried (0: at once),
 * or -1 when no such suspension holds (the retry schedule applies). */
int64_t dest_rule_hold_ms(const struct dest *d, uint64_t now);

#endif
