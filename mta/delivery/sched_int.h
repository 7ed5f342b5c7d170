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
#include "mta/delivery/mta_sts.h"
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
    /* The queue id a notice owed was being spooled as when the daemon stopped: whether that
     * message exists decides if it is written again (bounce_out.c); NULL otherwise. */
    char *notice_dsn;
    unsigned busy : 1; /* in a route lookup, a destination or a spool write */
    /* Delivered with NOTIFY=SUCCESS to a server that does not offer DSN: a notice (Action:
     * relayed) is owed. Recorded in the spool with the delivery, cleared once the notice is
     * spooled (bounce_out.c). */
    unsigned relay_notice : 1;
    /* A failed recipient's bounce category (enum bounce_category), found once: from its outcome,
     * when it expired, or when its result was read back from the spool. */
    unsigned category : 5;
    /* Its failure was offered to the suppression list: once per failure, not per DSN attempt. */
    unsigned suppression_noted : 1;
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
    /* In s->arrivals, key received_ms, while it is in msgs and counted (sched_summary.c). */
    struct minheap_node arrival;
    /* What is in flight: one per recipient in a route lookup or a job (so the parts of a job a
     * destination splits need no holds of their own), one per spool read or write. */
    unsigned holds;
    unsigned bouncing : 1; /* a DSN is being written, or waits for bounce_retry_ms */
    unsigned deleted : 1;  /* an admin deleted it: removed once nothing is in flight */
    /* An admin bounce of a selection (sched_bounce.c) fails its waiting recipients in a slice to
     * come: none is dispatched meanwhile. */
    unsigned bounce_selected : 1;
    /* An administrator's bounce failed recipients of it and their writes (the failure, then the
     * DSN) are under way: one of s->bounce_work until they are done (sched_bounce.c). */
    unsigned admin_inflight : 1;
    unsigned admin_writing : 1; /* msg_fail_waiting_at's write is under way */
    /* A DSN that could not be written is tried again at this unix ms (0: none waits), its wait
     * doubling with each failure in a row (bounce_failures). */
    int64_t bounce_retry_ms;
    unsigned bounce_failures;
};

struct scheduler {
    uv_loop_t *loop;
    struct spool *spool;
    struct dns_resolver *dns;
    struct config *cfg;
    struct dest_env env;
    struct mta_sts *sts; /* the MTA-STS policies of the domains mail goes to */
    struct strmap msgs;  /* queue id -> struct qmsg */
    struct strmap dests; /* destination key -> struct dest */
    /* Destinations retired by a reload whose state (open connections, pauses, suspension) the
     * next destination for the key takes over; kept until then, or until that state is gone. */
    struct strmap retired;
    size_t retired_dests; /* not freed yet */
    /* Suspensions an administrator named before any mail for them: destination key -> uint64_t
     * (loop ms it ends, UINT64_MAX: until resumed), applied when the destination appears. */
    struct strmap held;
    /* Destinations kept while deferred mail for them waits (sched_retain.c): destination key ->
     * int64_t (unix ms until which the sweep keeps it). */
    struct strmap retain;
    struct sched_suspended *suspensions; /* kept in the spool (sched_suspended.c) */
    /* Tenants' mail an administrator holds: "TENANT\nCAMPAIGN" ("TENANT\n": all of it) -> the
     * key itself (sched_tenancy.c). */
    struct strmap tenant_holds;
    /* Messages on disk an admin bounce of a destination selected: queue id -> the domain whose
     * waiting recipients fail once it is read back (sched_bounce.c). */
    struct strmap bounce_at;
    /* Admin bounces' work in flight (sched_bounce.c): messages whose writes are under way, reads
     * that lead to a bounce; capped at SCHED_BOUNCE_WORK_MAX for selections. */
    size_t bounce_work, bounce_work_max; /* now, and the most at once since the start */
    struct bounce_sel *bounce_sels;      /* the selections being bounced */
    struct dsn_builder *dsn_builder;     /* DSNs waiting to be built (bounce_out.c) */
    struct minheap due;
    /* What `sluice status` and the metrics count, kept as msgs changes (sched_summary.c): the
     * messages in msgs by arrival, their recipients by status. */
    struct minheap arrivals;
    size_t rcpts_by_status[SPOOL_RCPT_BOUNCED + 1];
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
    uv_idle_t slicer;                   /* runs tasks (sched_slice.c) while one is left */
    struct sched_task *tasks;           /* admin work in slices, started first last */
    unsigned holds;                     /* sum of every message's holds */
    unsigned closed;                    /* handles closed by scheduler_free */
    unsigned loads;                     /* scheduler_add_id reads in flight */
    struct postmaster_quota postmaster; /* double bounces reported to server.postmaster */
    /* The destinations' part of scheduler_summarize, walked at most every SUMMARY_WALK_MS. */
    struct scheduler_summary dests_summary;
    uint64_t dests_walked_ms; /* uv_now of that walk */
    unsigned dests_walked : 1; /* 0: walk at the next summary */
    struct suppression *suppression;    /* where hard bounces go (bounce_out.c); NULL: nowhere */
    unsigned started : 1;
    unsigned stopping : 1;
    void (*stopped_cb)(void *arg);
    void *stopped_arg;
};

/* Unix time in ms (the clock the spool's times are in). */
int64_t wall_ms(void);

/* ---- recipients and jobs (sched_job.c) ---- */

/* The domain of r's address; 1 when r waits to be tried (not busy, not final); 1 when r is done
 * (delivered, or bounced and reported). */
const char *rcpt_domain(const struct rcpt *r);
int rcpt_waiting(const struct rcpt *r);
int rcpt_final(const struct rcpt *r);
/* Records r's last result (enhanced and text copied, a leading copy of enhanced dropped; mta:
 * the host that gave it, NULL: Sluice). */
void rcpt_set_result(struct rcpt *r, int code, const char *enhanced, const char *text,
                     const char *mta);
/* "550 5.1.1 text (host)": the one line the spool keeps of r's result ("" when none). */
void rcpt_format_reply(const struct rcpt *r, struct buf *out);
/* The inverse, for a result read back from the spool with the host that gave it ("" or NULL:
 * local); sets r's bounce category. */
void rcpt_parse_reply(struct rcpt *r, const char *reply, const char *mta);
/* When m expires under sh (unix ms). */
int64_t msg_expires_ms(const struct qmsg *m, const struct config_shaping *sh);
/* A job for m's recipients at `domain` from the first-th on whose time has come; each is busy
 * until the job is back. */
struct job *msg_job_new(struct qmsg *m, size_t first, const char *domain, int64_t now);
/* The destination key mail of m to domain counts under in the metrics when no route was looked
 * up (its shaping's, by the domain only; with m's tenant's own pool). */
void msg_dest_key(const struct qmsg *m, const char *domain, char *out, size_t size);
/* Every recipient of the job gets the outcome `one` (key: the destination, NULL: none), as if the
 * destination had reported it; the job is freed. */
void msg_job_fail(struct job *job, const char *key, const struct smtp_client_outcome *one);

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
/* A recipient's status (enum spool_rcpt_status) as `queue list --json` names it. */
extern const char *const status_names[];
/* s as a JSON string. */
void sched_json_string(struct buf *out, const char *s);
/* m as a JSON object of `queue list --json`. */
void msg_json(const struct qmsg *m, int in_memory, struct buf *out);
/* After every change: bounce what failed, remove what is done, schedule what waits, and move the
 * message to the index when it waits beyond the window (m may be freed). */
void msg_settle(struct qmsg *m);
void msg_free(struct qmsg *m);
/* Its deferred recipients are tried now (`queue retry`). */
void msg_retry_now(struct qmsg *m);
/* (Re)arms the due timer for the earliest message, or the earliest read-back from the index. */
void scheduler_arm(struct scheduler *s);
void scheduler_check_stopped(struct scheduler *s);

/* ---- the queue's counts (sched_summary.c) ---- */

/* m entered msgs (msg_admit) or leaves it (msg_free: a no-op for a message never counted). */
void sched_count_admit(struct qmsg *m);
void sched_count_drop(struct qmsg *m);
/* r of m (counted or not) takes status st. */
void sched_count_status(struct qmsg *m, struct rcpt *r, enum spool_rcpt_status st);
/* An admin operation changed what destinations show: the next summary walks them again. */
void sched_summary_stale(struct scheduler *s);

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
/* queue bounce of a message not in msgs: read back at once, then its waiting recipients fail;
 * -ENOENT with the reason in out when it is not queued. */
int sched_active_bounce(struct scheduler *s, const char *id, struct buf *out);
/* The same for a message an admin bounce of a selection found on disk (sched_bounce.c): read back
 * first, or flagged while it is; the entry it had stays, a hint, so that many are marked in a row
 * without a search. The caller fills and arms afterwards. */
void sched_active_bounce_mark(struct scheduler *s, const char *id);
/* The window's counters as a JSON member ("active":{...}). */
void sched_active_counters(struct scheduler *s, struct buf *out);
void sched_active_free(struct scheduler *s);

/* ---- destinations kept while mail for them waits (sched_retain.c) ---- */

/* Recipients were deferred at the destination called key until next_ms: it stays until then (and
 * a margin). */
void sched_retain_deferred(struct scheduler *s, const char *key, int64_t next_ms);
/* 1 when the sweep must keep the destination called key. */
int sched_retain_holds(const struct scheduler *s, const char *key, int64_t now);
/* Drops what is over (the sweep); sched_retain_free drops all. */
void sched_retain_prune(struct scheduler *s, int64_t now);
void sched_retain_free(struct scheduler *s);

/* ---- administrators' suspensions kept in the spool (sched_suspended.c) ---- */

struct sched_suspended;
/* Reads <spool_dir>/suspended on the thread pool and restores what it holds (a suspension changed
 * meanwhile keeps its new state) through scheduler_restore_suspension and
 * scheduler_restore_tenant_hold. */
struct sched_suspended *sched_suspended_open(struct scheduler *s, const char *spool_dir);
/* A suspend (for_ms 0: until resumed) or a resume: the file is rewritten on the thread pool. */
void sched_suspended_note(struct sched_suspended *ss, const char *name, uint64_t for_ms);
void sched_suspended_forget(struct sched_suspended *ss, const char *name);
/* A hold of a tenant's mail (campaign "": all of it) put (hold 1) or lifted: rewritten likewise. */
void sched_suspended_hold(struct sched_suspended *ss, const char *tenant, const char *campaign,
                          int hold);
/* The scheduler is being freed: ss frees itself once its file work is done. */
void sched_suspended_close(struct sched_suspended *ss);
/* A suspension read back from the spool: applied to the destination, or held for its first mail. */
void scheduler_restore_suspension(struct scheduler *s, const char *name, uint64_t for_ms);
/* A hold of a tenant's mail (campaign "": all of it) read back from the spool (sched_tenancy.c). */
void scheduler_restore_tenant_hold(struct scheduler *s, const char *tenant, const char *campaign);

/* ---- admin work in slices (sched_slice.c) ---- */

/* Items a task handles per loop turn: 256 messages of ten recipients each (retry all) or of the
 * listing's walk take a few milliseconds of a debug build's loop; 1,024 took up to 20. */
#define SCHED_SLICE_ITEMS 256
/* A slice also ends once it has taken this much of the loop's time (uv_hrtime), whatever its
 * count: its items differ in cost (a message of 200 recipients failed, a DSN for them built). */
#define SCHED_SLICE_BUDGET_NS (4 * 1000 * 1000)

/* Work over the whole queue for an operator, done one slice per loop turn. */
#define SCHED_TASK_PARKED 2
struct sched_task {
    struct sched_task *next;
    /* One slice of at most about SCHED_SLICE_ITEMS items; returns 1 once the task is done, or
     * SCHED_TASK_PARKED to leave the loop alone until it is started again (sched_task_start). */
    int (*step)(struct sched_task *t);
    /* Runs once: after the last step (cancelled 0) or at a stop (1). Frees the task. */
    void (*finish)(struct sched_task *t, int cancelled);
};

void sched_slice_init(struct scheduler *s);
/* Runs t's steps from the next loop turn on. */
void sched_task_start(struct scheduler *s, struct sched_task *t);
/* A stop: every task left is finished as cancelled. */
void sched_slice_stop(struct scheduler *s);
/* Closes the idle handle (scheduler_free); cb is the scheduler's close callback. */
void sched_slice_close(struct scheduler *s, uv_close_cb cb);
/* A message read back with QUEUE_INDEX_BOUNCE (m NULL: gone meanwhile): its waiting recipients
 * fail, those at the domain an admin bounce of a selection noted for it when it did. */
void sched_bounce_read_back(struct scheduler *s, const char *id, struct qmsg *m);
void sched_bounce_free(struct scheduler *s);
/* An admin bounce of a selection keeps at most this much work in flight: messages whose failure
 * and DSN are being written, and the reads of messages on disk that lead to one. Each message is a
 * spool write and then a DSN (a new file, its commit) on the thread pool: 32 syncs in flight
 * nearly triple the spool's commits of one at a time (this is also ACTIVE_LOADS_MAX), and it keeps
 * a bounce of 200,000 recipients to a few dozen open files and pool jobs. */
#define SCHED_BOUNCE_WORK_MAX 32
/* 1 while a selection may start more work (a bounce of one message never waits). */
int sched_bounce_room(const struct scheduler *s);
/* A unit of bounce work starts (a read of a message marked for a bounce), or ends. */
void sched_bounce_work_begin(struct scheduler *s);
void sched_bounce_work_end(struct scheduler *s);
/* m settled (msg_settle) or is freed: its admin bounce's work ends once the failure is written
 * and no DSN is being written (one that waits to be tried again, or for the message's other
 * attempts in flight, counts as done: a message whose other recipients wait at a suspended
 * destination must not hold a unit for days). */
void sched_bounce_settled(struct qmsg *m);
void sched_bounce_forget(struct qmsg *m);
/* A stop: selections waiting for room are cancelled. */
void sched_bounce_stop(struct scheduler *s);
/* 1 when m is of the filter's tenant and campaign, with a recipient at its destination in its
 * state (sched_list.c; scheduler_list_stream). */
int sched_list_matches(const struct qmsg *m, const struct scheduler_list_filter *f);
/* `queue retry all`: marks the index at once and the messages in memory in slices. Returns how
 * many messages there were. */
size_t sched_retry_all(struct scheduler *s);
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
/* When held mail to r expires (unix ms; never before r->next_ms): under the shaping of r's
 * domain, as no route is looked up for held mail. */
int64_t sched_tenant_hold_ends(const struct qmsg *m, const struct rcpt *r);
/* m is held: its recipients whose hold has ended expire, bounced with the hold as the reason. */
void sched_tenant_expire_held(struct qmsg *m, int64_t now);
void sched_tenant_holds_free(struct scheduler *s);

/* Its recipients waiting to be tried fail with 550 5.0.0 text (recorded, then bounced); _at: only
 * those at domain (any case; NULL: every one), returning how many (none: nothing was written). */
void msg_fail_waiting(struct qmsg *m, const char *text);
size_t msg_fail_waiting_at(struct qmsg *m, const char *domain, const char *text);
/* The text of an administrator's bounce (`sluice queue bounce`, by message or tenant). */
#define SCHED_ADMIN_BOUNCE "bounced by an administrator (sluice queue bounce)"

/* Reports the message's failed recipients that are not busy, or else its owed success notices,
 * or else its owed delay warnings: one DSN per call (bounce_out.c). */
void msg_bounce(struct qmsg *m);
/* The queue of DSNs to build, a slice a loop turn; freed empty, after a stop. */
void sched_dsn_init(struct scheduler *s);
void sched_dsn_free(struct scheduler *s);
/* Ends the wait of a DSN that could not be written once bounce_retry_ms has come; returns 1 when
 * it did (msg_settle then writes it again). */
int msg_bounce_retry_due(struct qmsg *m, int64_t now);

#endif
