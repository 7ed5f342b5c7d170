/*
 * What scheduler.c (the queue manager) and bounce_out.c (the DSNs it owes senders) share: a queued
 * message and its recipients as the scheduler keeps them in memory, and the holds and recipient
 * updates both use. Private to those two files; everyone else uses scheduler.h.
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
    char *envid;  /* RFC 3461 ENVID, or NULL */
    unsigned ret; /* RFC 3461 RET (SMTP_DSN_RET_*), 0 when not given */
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
    struct minheap due;
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

/* Reports the message's failed recipients that are not busy, or else its owed success notices,
 * or else its owed delay warnings: one DSN per call (bounce_out.c). */
void msg_bounce(struct qmsg *m);

#endif
