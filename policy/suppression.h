/*
 * The suppression list: recipients relayed mail must not go to, per tenant and global, kept in an
 * LMDB environment (a directory: data.mdb and lock.mdb) that the daemon and `sluice suppress`
 * open at once. Each entry is keyed by (tenant, lower-cased address), tenant "" being the global
 * list, and holds its source, when it was added, an optional expiry and an optional note. A read
 * is a lookup in a memory map, without a lock or a sync, but a page not in memory yet makes it
 * wait for the disk: the daemon's checks run on the thread pool, in batches
 * (suppression_batch_start). Writes sync the file, so the daemon makes them there too
 * (suppression_add); the command line reads and writes in place. The store is owned by whoever
 * opened it.
 */
#ifndef SLUICE_SUPPRESSION_H
#define SLUICE_SUPPRESSION_H

#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/smtp_addr.h"

/* Why an address is on the list; the names are what replies, logs and CSV show. */
enum suppression_source {
    SUPPRESSION_BAD_MAILBOX, /* a hard bounce of bounce category bad-mailbox */
    SUPPRESSION_BAD_DOMAIN,  /* a hard bounce of bounce category bad-domain */
    SUPPRESSION_COMPLAINT,   /* a feedback report (ARF) about mail to it */
    SUPPRESSION_MANUAL,      /* `sluice suppress add` */
    SUPPRESSION_IMPORT,      /* `sluice suppress import` of a row without a source */
    SUPPRESSION_NSOURCES
};

#define SUPPRESSION_TENANT_MAX 64         /* octets of a tenant name */
#define SUPPRESSION_NOTE_MAX 200          /* octets of a note */
#define SUPPRESSION_MAP_SIZE (1ull << 30) /* the largest the store may grow: ~3 million entries */

struct suppression_entry {
    char tenant[SUPPRESSION_TENANT_MAX + 1]; /* "" for the global list */
    char address[SMTP_PATH_MAX + 1];         /* lower case */
    enum suppression_source source;
    int64_t added;  /* unix seconds */
    int64_t expiry; /* unix seconds after which it no longer counts; 0: never */
    char note[SUPPRESSION_NOTE_MAX + 1];
};

struct suppression;

/* "bad-mailbox", "bad-domain", "complaint", "manual", "import". */
const char *suppression_source_name(enum suppression_source source);
/* The source called name: 0, or -1 when there is none. */
int suppression_source_parse(const char *name, enum suppression_source *out);

/* Fills e from the parts after checking them: tenant NULL or "" is global; the address must be
 * a mailbox (local@domain, no space or control character) and is lower-cased; note may be NULL.
 * Returns 0, or -1 with *why saying what is wrong (static text). */
int suppression_entry_make(const char *tenant, const char *address, enum suppression_source source,
                           int64_t added, int64_t expiry, const char *note,
                           struct suppression_entry *e, const char **why);

/* The store's directory in cfg: suppression.path, else "<server.spool>/suppression". */
void suppression_dir(const struct config *cfg, struct buf *out);

/* Opens the store in dir, making the directory (mode 0700) and its files when missing; loop is
 * where suppression_add reports back (NULL: a command-line user that writes in place). Blocking:
 * at start-up or in a command. Returns 0, or -1 with "suppression DIR: why" in err. */
int suppression_open(const char *dir, uv_loop_t *loop, struct suppression **out, struct buf *err);
/* Closes the store; with writes still on the thread pool, once the last one is done. */
void suppression_close(struct suppression *store);

/* The entry that suppresses address for tenant at now: the tenant's own, else the global one;
 * an expired entry does not count. A read of the map, which may wait for the disk: the command
 * line's. Returns 1 with *out filled, 0 when none applies, or a negative errno when the store
 * cannot be read. */
int suppression_check(struct suppression *store, const char *tenant, const char *address,
                      int64_t now, struct suppression_entry *out);

/* suppression_check for many addresses of one tenant on the thread pool, for the loop: one job
 * and one read transaction for all of them, so that a message to a thousand recipients does not
 * queue a thousand reads. The daemon's checks all go through it: RCPT (the RCPTs of a command),
 * a header-named tenant's recipients and an HTTP injection's. cb runs on the loop with one answer
 * per address, in their order (valid during cb), unless the batch was cancelled first. The
 * addresses are copied; the store stays open until cb's turn has come. Loop thread only, on a
 * store opened with a loop. Returns the batch, or NULL when it could not be queued (cb never
 * runs). */
struct suppression_batch;
struct suppression_answer {
    int found;                             /* as suppression_check returns it */
    const struct suppression_entry *entry; /* when found is 1, else NULL */
};
typedef void (*suppression_batch_cb)(void *arg, const struct suppression_answer *answers, size_t n);
struct suppression_batch *suppression_batch_start(struct suppression *store, const char *tenant,
                                                  const char *const *addresses, size_t n,
                                                  int64_t now, suppression_batch_cb cb, void *arg);
/* cb will not run (the batch ends on the thread pool on its own); NULL is fine. */
void suppression_batch_cancel(struct suppression_batch *batch);

/* The batches' reads so far, for the metrics: a batch counts once its read is done, cancelled or
 * not. Loop thread. */
struct suppression_stats {
    uint64_t reads;   /* batches: a read transaction on the thread pool each */
    uint64_t lookups; /* addresses they checked */
};
void suppression_stats_get(const struct suppression *store, struct suppression_stats *out);

/* Adds an entry: the daemon's way, for hard bounces and complaints. The write and its sync run on
 * the thread pool; the result is logged (suppression.added, or suppression.add_failed). An entry
 * already there and not expired stays as it is (the first reason is kept). tenant NULL or "" is
 * the global list; reason (may be NULL) becomes the note; expiry is unix seconds, 0 for never.
 * Loop thread only, on a store opened with a loop. Returns 0, or -1 for an address or tenant that
 * suppression_entry_make refuses (nothing is written, and the refusal is logged). */
int suppression_add(struct suppression *store, const char *tenant, const char *address,
                    enum suppression_source source, const char *reason, int64_t expiry);

/* Blocking writes, synced before they return: for the command line and the thread pool. put
 * stores the n entries in one transaction (all or none), replacing an entry with the same key
 * when replace is set and otherwise only an expired one (-EEXIST, and nothing written, when one
 * that counts is there); remove deletes (tenant, address) (-ENOENT when absent). Both return 0 or
 * a negative errno (-ENOSPC: the store is full). */
int suppression_put(struct suppression *store, const struct suppression_entry *entries, size_t n,
                    int replace);
int suppression_remove(struct suppression *store, const char *tenant, const char *address);

/* Calls cb for every entry, expired ones too, ordered by tenant then address, until cb returns
 * nonzero; tenant (not NULL) keeps to that tenant's entries ("" the global ones). Returns 0 or a
 * negative errno. */
int suppression_each(struct suppression *store, const char *tenant,
                     int (*cb)(const struct suppression_entry *e, void *arg), void *arg);

#endif
