/*
 * The delivery scheduler (queue manager): keeps every queued message's recipients in memory,
 * groups them by destination (the recipient domain, the domain's deliver_to, or the shaping rule
 * whose MX pattern its MX hosts match), and opens SMTP client connections within each
 * (destination, egress address)'s limits. It records every recipient's result in the spool before
 * acting on it, retries deferred recipients on the shaping rule's schedule, bounces permanent
 * failures and expired recipients with one DSN per message, and removes a message when all its
 * recipients are final.
 */
#ifndef SLUICE_SCHEDULER_H
#define SLUICE_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/dns.h"
#include "mta/delivery/destination.h"
#include "spool/spool.h"

struct scheduler;
struct shared_limits;

struct scheduler *scheduler_new(uv_loop_t *loop, struct spool *sp, struct dns_resolver *dns,
                                SSL_CTX *tls_client_ctx, struct config *cfg);
/* Limits kept with the other nodes of a cluster (NULL: none), for destinations made from now on;
 * the caller frees it after scheduler_free. */
void scheduler_share_limits(struct scheduler *s, struct shared_limits *shared);
/* A reload: new shaping and egress apply to connections opened from now on. */
void scheduler_set_config(struct scheduler *s, struct config *cfg);
/* Starts delivering (after recovery has added what the spool holds). */
void scheduler_start(struct scheduler *s);
/* Stops opening connections and aborts those open; cb runs once every connection has closed and
 * every spool update has been written. */
void scheduler_stop(struct scheduler *s, void (*cb)(void *arg), void *arg);
void scheduler_free(struct scheduler *s);

/* Hard bounces (bounce categories bad-mailbox and bad-domain) add their recipients to store (the
 * daemon's; NULL: none) while cfg's suppression.enabled is set. */
struct suppression;
void scheduler_set_suppression(struct scheduler *s, struct suppression *store);

/* The daemon's TLS reporting (tls_rpt.h), for `sluice tls-rpt send`. */
struct tls_rpt;
struct tls_rpt *scheduler_tls_rpt(struct scheduler *s);

/* A committed message (from recovery or from the SMTP server after its 250). */
void scheduler_add(struct scheduler *s, const struct spool_entry *entry);
/* The same, for a committed message known only by its id (read back from the spool first). */
void scheduler_add_id(struct scheduler *s, const char *id);

/* Admin commands (the control socket). Each appends a one-line answer to out and returns 0, or
 * -ENOENT (no such message or destination) / -EINVAL with the reason in out. */
int scheduler_retry(struct scheduler *s, const char *id, struct buf *out);  /* "all" too */
int scheduler_delete(struct scheduler *s, const char *id, struct buf *out); /* no DSN */
/* for_ms 0: until scheduler_resume. Callers take at most SCHEDULER_SUSPEND_MAX_S (30 days, as
 * the control socket's CONTROL_SUSPEND_MAX_S). */
#define SCHEDULER_SUSPEND_MAX_S (30 * 86400)
int scheduler_suspend(struct scheduler *s, const char *destination, uint64_t for_ms,
                      struct buf *out);
int scheduler_resume(struct scheduler *s, const char *destination, struct buf *out);
/* One page of `sluice queue list --json`: at most limit (1 to SCHEDULER_PAGE_MAX) queued messages
 * whose queue id sorts after `after` ("": from the first), in queue id order, as a JSON document
 * {"messages":[...],"next":ID or null,"active":{...}} and, on the first page, "destinations":[...];
 * "next" is the `after` of the following page. The queue is walked in slices across loop turns and
 * the page's messages on disk read on the thread pool; the document is given to the sink a piece
 * at a time as it is written (a slice of messages per loop turn), never whole. */
#define SCHEDULER_PAGE_MAX 1000
struct scheduler_listing; /* a page on its way */
struct scheduler_list_sink {
    /* The next bytes of the document. */
    void (*put)(void *arg, const char *data, size_t len);
    /* Asked before each slice of the page's work. 0: go on. 1: the sink holds as much as it wants;
     * the page waits until the sink calls scheduler_list_wake(l), once (e.g. when its reader has
     * taken enough). -1: its reader has gone; the page stops (done follows). */
    int (*full)(void *arg, struct scheduler_listing *l);
    /* The end, once: status 0 after the whole document, or -ECANCELED with a reason when the
     * scheduler stops first or the reader has gone (what was put then is a document cut short). */
    void (*done)(void *arg, int status, const char *why);
    void *arg;
};
struct scheduler_list_filter;
void scheduler_list_stream(struct scheduler *s, const char *after, size_t limit,
                           const struct scheduler_list_filter *filter,
                           const struct scheduler_list_sink *sink);
void scheduler_list_wake(struct scheduler_listing *l);
/* The same page of the messages with a recipient at destination (its address's domain, any case;
 * "": any) in state (pending, deferred, delivered, failed or bounced as the listing shows them;
 * "": any), the same recipient for both, and of tenant and campaign (each "": any; a message of no
 * tenant or campaign matches only ""). The walk goes on until the page is full or the queue
 * walked, so "next" is null only after the last page. */
struct scheduler_list_filter {
    char destination[256];
    char state[16];
    char tenant[256];
    char campaign[256];
};
/* One queued message and why it waits: {"message":{...},"destinations":[...]}, the message as the
 * listing shows it and, for each destination (a recipient's domain) a recipient still waits for,
 * {"destination":NAME,"state":{...},"why":TEXT}: its object of the destinations listing and the
 * words of scheduler_explain, both null when the scheduler keeps no state for it. cb runs once,
 * perhaps before this returns (after a read on the thread pool for a message on disk): status 0
 * and the document, or -ENOENT (not queued) / another error and a reason. */
typedef void (*scheduler_show_cb)(void *arg, int status, const struct buf *doc);
void scheduler_show(struct scheduler *s, const char *id, scheduler_show_cb cb, void *arg);
/* The destinations as a JSON array, as `queue list --json` and the admin API show them. */
void scheduler_destinations_json(struct scheduler *s, struct buf *out);
/* With hold, a tenant's mail (campaign "": all of it) is no longer sent: its jobs waiting at
 * destinations come back and none is made until it is released (hold 0), which only undoes a hold
 * of the same tenant and campaign. Messages in flight finish. The hold is kept in the spool, so a
 * restart keeps it. -ENOENT: nothing to release. */
int scheduler_hold_tenant(struct scheduler *s, const char *tenant, const char *campaign, int hold,
                          struct buf *out);
/* Fails, with a DSN to each sender, the waiting recipients of the mail the filter selects as
 * scheduler_list_stream does (its state is ignored), with a destination only those at that
 * domain: the messages queued now, in memory and on disk beyond the active window (whose
 * envelopes are read on the thread pool), in slices across loop turns. Those queued at
 * destinations come back first; recipients on a connection finish. Answers at once, in out, what
 * it starts; queue.bounce_done is logged at the end. -ECANCELED while the scheduler stops. */
int scheduler_bounce_selected(struct scheduler *s, const struct scheduler_list_filter *filter,
                              struct buf *out);
/* Fails, with a DSN to the sender, every waiting recipient of the queued message id: its jobs
 * queued at destinations come back first, recipients on a connection finish. A message waiting on
 * disk beyond the active window is read back at once and bounced then. -ENOENT: not queued. */
int scheduler_bounce_message(struct scheduler *s, const char *id, struct buf *out);
/* For `sluice queue destinations`: what holds the destination called `destination` back ("":
 * every destination), as text (dest_explain). 0, or -ENOENT with the reason in out. */
int scheduler_explain(struct scheduler *s, const char *destination, struct buf *out);
/* The queue at a glance (status and metrics): counts by recipient state, the oldest message,
 * connections out, and the destinations with the most queued work and those held back. */
#define SCHEDULER_SUMMARY_TOP 10
struct scheduler_summary {
    size_t messages; /* in memory and on disk */
    size_t on_disk;  /* waiting outside the active queue (delivery.active_limit) */
    /* The recipients and the oldest arrival are those of the messages in memory. */
    size_t rcpts_pending, rcpts_deferred, rcpts_failed; /* failed: a DSN is being made */
    int64_t oldest_ms;                                  /* unix ms of the oldest arrival; 0: none */
    size_t destinations, suspended, throttled, backing_off;
    unsigned conns_out;
    struct dest_summary top[SCHEDULER_SUMMARY_TOP]; /* most queued jobs first */
    size_t ntop;
    struct dest_summary held[SCHEDULER_SUMMARY_TOP]; /* suspended, throttled or backing off */
    size_t nheld;
};
/* The message counts are kept as the queue changes; the destinations' counts and lists are those
 * of a walk (O(destinations)) at most a second old, or made after the last suspend, resume or
 * tenant hold. */
void scheduler_summarize(struct scheduler *s, struct scheduler_summary *out);

#endif
