/*
 * What scheduler.c (the queue manager), sched_active.c (its active window and the index of what
 * waits on disk) and bounce_out.c (the DSNs it owes senders) share: a queued message and its
 * recipients as the scheduler keeps them in memory, and the holds and recipient updates they use.
 * Private to those files; everyone else uses scheduler.h.
 */
#ifndef SLUICE_SCHED_INT_H
#define SLUICE_SCHED_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/config.h"
#include "lib/minheap.h"
#include "lib/strmap.h"
#include "mta/delivery/destination.h"
#include "mta/delivery/postmaster.h"
#include "mta/delivery/queue_index.h"
#include "mta/delivery/scheduler.h"
#include "spool/spool.h"

struct suppression;

struct rcpt {
    char *addr;
    enum spool_rcpt_status status;
    unsigned attempts;
    int64_t next_ms; /* unix ms of the next attempt (PENDING, DEFERRED) */
    /* The last result, for the DSN and `queue show`. */
    int code;
    char enhanced[16];
    char *text;
    char *mta;
    unsigned notify;   /* RFC 3461 NOTIFY bits, 0 when not given */
    char *orcpt;       /* RFC 3461 ORCPT "type;address", or NULL */
    unsigned busy : 1; /* in a route lookup, a destination or a spool write */
    /* Delivered with NOTIFY=SUCCESS to a server that does not offer DSN: a notice (Action:
     * relayed) is owed. Kept in memory only: a restart before it is spooled loses it. */
    unsigned relay_notice : 1;
    /* Delay DSNs sent (recorded in the spool), and the step of delivery.delay_warning a DSN is
     * owed for when larger. */
    unsigned delay_warned, delay_owed;
};

struct qmsg {
    struct scheduler *s;
    char id[SPOOL_ID_MAX + 1];
    char *sender;
    char *tenant;   /* whose mail it is, or NULL (docs/tenants.md) */
    char *campaign; /* its campaign, or NULL */
    char *envid;    /* RFC 3461 ENVID, or NULL */
    unsigned ret;   /* RFC 3461 RET (SMTP_DSN_RET_*), 0 when not given */
    unsigned flags;
    int64_t received_ms;
    struct rcpt *rcpts;
    size_t nrcpts;
    struct minheap_node due; /* key: the earliest next_ms of a recipient waiting to be tried */
    /* What is in flight: one per recipient in a route lookup or a job (so the parts of a job a
     * destination splits need no holds of their own), one per spool read or write. */
    unsigned holds;
    unsigned bouncing : 1; /* a DSN is being written */
    unsigned deleted : 1;  /* an admin deleted it: removed once nothing is in flight */
};

struct scheduler {
    uv_loop_t *loop;
    struct spool *spool;
    struct dns_resolver *dns;
    struct config *cfg;
    struct dest_env env;
    struct strmap msgs;  /* queue id -> struct qmsg */
    struct strmap dests; /* destination key -> struct dest */
    /* Destinations retired by a reload whose state (open connections, pauses, suspension) the
     * next destination for the key takes over; kept until then, or until that state is gone. */
    struct strmap retired;
    size_t retired_dests; /* not freed yet */
    /* Suspensions an administrator named before any mail for them: destination key -> uint64_t
     * (loop ms it ends, UINT64_MAX: until resumed), applied when the destination appears. */
    struct strmap held;
    /* Tenants' mail an administrator holds: "TENANT\nCAMPAIGN" ("TENANT\n": all of it) -> the
     * key itself (sched_tenancy.c). */
    struct strmap tenant_holds;
    struct minheap due;
    /* The active window (sched_active.c): msgs holds at most delivery.active_limit messages,
     * those due within delivery.active_window; the others wait in the index, on disk only. */
    struct queue_index waiting;
    struct strmap loading; /* queue id -> struct active_load: being read back into msgs */
    uint64_t evicted;      /* messages moved from memory to the index so far */
    uint64_t admitted;     /* messages read back from the index so far */
    size_t listed;         /* messages the spool's listing after a start has found */
    size_t in_memory_max;  /* the most messages msgs held at once since the start */
    unsigned listing : 1;  /* that listing is under way (spool_list) */
    uv_timer_t timer, sweep;
    unsigned holds;                     /* sum of every message's holds */
    unsigned closed;                    /* timers closed by scheduler_free */
    unsigned loads;                     /* scheduler_add_id reads in flight */
    struct postmaster_quota postmaster; /* double bounces reported to server.postmaster */
    struct suppression *suppression;    /* where hard bounces go (bounce_out.c); NULL: nowhere */
    unsigned started : 1;
    unsigned stopping : 1;
    void (*stopped_cb)(void *arg);
    void *stopped_arg;
};

/* Unix time in ms (the clock the spool's times are in). */
int64_t wall_ms(void);

/* In-flight work keeps a message (and a stopping scheduler) busy; the last release settles it. */
void msg_hold(struct qmsg *m, unsigned n);
void msg_release(struct qmsg *m, unsigned n);

/* A batch of recipient results written to the spool, applied in memory once durable; each added
 * recipient is busy until then, and the message held. */
struct update_batch;
struct update_batch *update_batch_new(struct qmsg *m, size_t n);
void update_batch_add(struct update_batch *b, size_t rcpt, enum spool_rcpt_status status,
                      unsigned attempts, int64_t next_ms);
void update_batch_write(struct update_batch *b);

/* A queued message made from what the spool holds (msg_free frees it); msg_admit also puts it in
 * msgs (not yet scheduled: msg_settle does that). */
struct qmsg *msg_new(struct scheduler *s, const struct spool_entry *entry);
struct qmsg *msg_admit(struct scheduler *s, const struct spool_entry *entry);
/* m as a JSON object of `queue list --json`. */
void msg_json(const struct qmsg *m, int in_memory, struct buf *out);
/* Ends a `queue list --json` document: the window's counters and the destinations. */
void scheduler_list_finish(struct scheduler *s, struct buf *doc);
/* After every change: bounce what failed, remove what is done, schedule what waits, and move the
 * message to the index when it waits beyond the window (m may be freed). */
void msg_settle(struct qmsg *m);
void msg_free(struct qmsg *m);
/* Its deferred recipients are tried now (`queue retry`). */
void msg_retry_now(struct qmsg *m);
/* (Re)arms the due timer for the earliest message, or the earliest read-back from the index. */
void scheduler_arm(struct scheduler *s);
void scheduler_check_stopped(struct scheduler *s);

/* ---- the active window (sched_active.c) ---- */

/* 1 when msgs has room for one more message (those being read back count). */
int sched_active_room(const struct scheduler *s);
/* Moves m (settled, nothing in flight) to the index when it waits beyond the window. Returns 1
 * when it did (m is freed). */
int sched_active_evict(struct qmsg *m);
/* Reads messages of the index back while there is room and they are due within the window. */
void sched_active_fill(struct scheduler *s);
/* When sched_active_fill has work next (unix ms), or INT64_MAX. */
int64_t sched_active_fill_at(const struct scheduler *s);
/* Lists the spool after a start into the index (spool_list), logging spool.recovered for each
 * message and spool.recovery_done at the end. */
void sched_active_recover(struct scheduler *s);
/* queue retry / delete of a message not in msgs; the answer in out. */
int sched_active_retry(struct scheduler *s, const char *id, struct buf *out);
size_t sched_active_retry_all(struct scheduler *s);
int sched_active_delete(struct scheduler *s, const char *id, struct buf *out);
/* Goes on with a `queue list --json` document (doc, holding n messages, taken over) with the
 * messages of the index, read on the thread pool, then finishes it and calls cb. */
void sched_active_list(struct scheduler *s, struct buf *doc, size_t n, scheduler_list_cb cb,
                       void *arg);
/* The window's counters as a JSON member ("active":{...}). */
void sched_active_counters(struct scheduler *s, struct buf *out);
void sched_active_free(struct scheduler *s);

/* ---- tenants' egress pools (sched_tenancy.c) ---- */

/* The pool a tenant's mail for a destination of `shaping` leaves from when it is not the
 * shaping's own (tenants[].pool), else NULL. */
const char *sched_tenant_pool(const struct config *cfg, const char *tenant,
                              const struct config_shaping *shaping);
/* The key of the destination for mail sent from `pool` (NULL: the shaping's): "KEY/POOL". */
void sched_tenant_key(const char *key, const char *pool, char *out, size_t size);
/* A new "KEY/POOL" destination d takes an administrator's suspension of KEY. */
void sched_tenant_dest_held(struct scheduler *s, struct dest *d);
/* An administrator's suspension of `name` (for_ms, 0: until resumed), or with resume its end,
 * for every "name/POOL" destination. */
void sched_tenant_dests_suspend(struct scheduler *s, const char *name, uint64_t for_ms, int resume);

/* 1 when an administrator holds m's mail (its tenant's, or its campaign's): none is dispatched. */
int sched_tenant_held(const struct scheduler *s, const struct qmsg *m);
void sched_tenant_holds_free(struct scheduler *s);

/* Its recipients waiting to be tried fail with 550 5.0.0 text (recorded, then bounced). */
void msg_fail_waiting(struct qmsg *m, const char *text);

/* Reports the message's failed recipients that are not busy, or else its owed success notices,
 * or else its owed delay warnings: one DSN per call (bounce_out.c). */
void msg_bounce(struct qmsg *m);

#endif
