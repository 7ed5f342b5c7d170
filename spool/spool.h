/*
 * The durable queue. A message is written while it arrives (spool_msg_new, _append), made durable
 * by spool_msg_commit, whose callback runs only once the file and its directory entry are synced:
 * only then may the SMTP server answer 250. All disk work runs on libuv's thread pool; syncs of
 * concurrent commits are grouped so sessions do not queue behind one another. At start,
 * spool_recover finds the committed messages again and removes half-written ones.
 *
 * On disk each message is one file of length-prefixed records (never lines, so no byte of a peer
 * can forge a record); a file without its end record was never committed.
 */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"

/* Queue ids are upper-case base-32 text of this many characters at most. */
#define SPOOL_ID_MAX 24

struct spool;
struct spool_msg;

/* What the server knew when it accepted the message. Strings are copied by spool_msg_new. */
struct spool_envelope {
    const char *sender;       /* canonical "local@domain", "" for the null sender */
    const char *const *rcpts; /* canonical recipients */
    size_t nrcpts;
    const char *client_addr; /* "192.0.2.1" or "2001:db8::1" */
    const char *helo;
    const char *auth_user; /* NULL when not authenticated */
    const char *listener;  /* listener name */
    int64_t received_at;   /* unix seconds */
    unsigned flags;        /* SPOOL_ENV_* */
};

#define SPOOL_ENV_8BITMIME 0x01
#define SPOOL_ENV_SMTPUTF8 0x02

/* A committed message as found again by spool_recover. Pointers are valid during the callback. */
struct spool_entry {
    const char *id;
    const struct spool_envelope *env;
    uint64_t body_size;
};

/* Opens (creating when missing, mode 0700) the spool under dir. Synchronous: call at start-up
 * before the loop runs. Returns 0 or -errno with a reason in err. */
int spool_open(uv_loop_t *loop, const char *dir, struct spool **out, struct buf *err);
/* Scans the spool: calls cb for every committed message, removes half-written files. Synchronous,
 * at start-up. Returns the number of committed messages, or -errno with a reason in err. */
typedef void (*spool_recover_cb)(const struct spool_entry *entry, void *arg);
int spool_recover(struct spool *sp, spool_recover_cb cb, void *arg, struct buf *err);
/* Frees the spool; every message must have been committed or aborted and their callbacks run. */
void spool_close(struct spool *sp);

/* Starts a message: assigns its queue id and records the envelope. Returns NULL only on an id or
 * memory failure that cannot happen in practice (errors of the file itself surface at commit). */
struct spool_msg *spool_msg_new(struct spool *sp, const struct spool_envelope *env);
const char *spool_msg_id(const struct spool_msg *msg);

/* Appends body bytes (copied). Returns 1 when the caller should stop feeding until writable_cb runs
 * (too much is buffered while a write is in flight), 0 otherwise. writable_cb never runs after
 * spool_msg_commit or spool_msg_abort. */
typedef void (*spool_writable_cb)(struct spool_msg *msg, void *arg);
int spool_msg_append(struct spool_msg *msg, const char *data, size_t len, spool_writable_cb cb,
                     void *arg);
uint64_t spool_msg_size(const struct spool_msg *msg);

/* Writes what is buffered and the end record, syncs the file and its directory. cb runs once with
 * status 0 (durable: answer 250) or a negative errno (answer 451); the message is freed after cb
 * returns. */
typedef void (*spool_commit_cb)(struct spool_msg *msg, int status, void *arg);
void spool_msg_commit(struct spool_msg *msg, spool_commit_cb cb, void *arg);

/* Throws the message away (client gone, message rejected). Disk work still in flight finishes on
 * its own; the file is removed and the message freed then. No callback. */
void spool_msg_abort(struct spool_msg *msg);

/* Read-only access, safe while a daemon runs (committed files are never rewritten in place): used
 * by `sluice queue` and by delivery. spool_scan lists committed messages like spool_recover but
 * removes nothing; spool_load_body reads a committed message's body bytes exactly as stored. Both
 * return 0 (scan: the count) or -errno with a reason in err. */
int spool_scan(const char *dir, spool_recover_cb cb, void *arg, struct buf *err);
int spool_load_body(const char *dir, const char *id, struct buf *body, struct buf *err);

/* Commits and aborts not yet finished; the daemon waits for 0 before it exits. */
size_t spool_pending(const struct spool *sp);

#endif
