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

/* A committed message (from recovery or from the SMTP server after its 250). */
void scheduler_add(struct scheduler *s, const struct spool_entry *entry);
/* The same, for a committed message known only by its id (read back from the spool first). */
void scheduler_add_id(struct scheduler *s, const char *id);

/* Admin commands (the control socket). Each appends a one-line answer to out and returns 0, or
 * -ENOENT (no such message or destination) / -EINVAL with the reason in out. */
int scheduler_retry(struct scheduler *s, const char *id, struct buf *out);  /* "all" too */
int scheduler_delete(struct scheduler *s, const char *id, struct buf *out); /* no DSN */
/* for_ms 0: until scheduler_resume. */
int scheduler_suspend(struct scheduler *s, const char *destination, uint64_t for_ms,
                      struct buf *out);
int scheduler_resume(struct scheduler *s, const char *destination, struct buf *out);
/* A JSON array of the queued messages and one of the destinations, for `sluice queue list`. */
void scheduler_list(struct scheduler *s, struct buf *out);

#endif
