/*
 * The durable queue. A message is written while it arrives (spool_msg_new, _append), made durable
 * by spool_msg_commit, whose callback runs only once the message is on disk for good (in the
 * spool's journal, or its file and directory entry synced): only then may the SMTP server answer
 * 250. All disk work runs on libuv's thread pool; concurrent commits, state updates and removals
 * share their syncs (group commit, spool_journal.h), so sessions do not queue behind one another.
 * At start, spool_recover replays the journal, finds the committed messages again and removes
 * half-written ones.
 *
 * Delivery records what became of each recipient in append-only records after the message's end
 * record (spool_rcpt_update), so each message is one file; spool_load reads a message back for
 * delivery, spool_msg_remove removes it once done.
 *
 * On disk each message is one file of length-prefixed records (never lines, so no byte of a peer
 * can forge a record); a file without its end record was never committed. Messages queued by
 * earlier versions may have a separate state file, which then holds their recipient states.
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
struct envelope_dsn;

/* What the server knew when it accepted the message. Strings are copied by spool_msg_new. */
struct spool_envelope {
    const char *sender;       /* canonical "local@domain", "" for the null sender */
    const char *const *rcpts; /* canonical recipients */
    size_t nrcpts;
    const char *client_addr; /* "192.0.2.1" or "2001:db8::1" */
    const char *helo;
    const char *auth_user;          /* NULL when not authenticated */
    const char *listener;           /* listener name */
    const char *tenant;             /* whose mail it is (docs/tenants.md); NULL: nobody's */
    const char *campaign;           /* the campaign it belongs to; NULL: none */
    int64_t received_at;            /* unix seconds */
    unsigned flags;                 /* SPOOL_ENV_* */
    const struct envelope_dsn *dsn; /* RFC 3461 parameters (spool/envelope.h); NULL: none */
};

#define SPOOL_ENV_8BITMIME 0x01
#define SPOOL_ENV_SMTPUTF8 0x02
#define SPOOL_ENV_BINARYMIME 0x04 /* RFC 3030 §3: any octets, sent only with BDAT */
/* A TLS report of our own (RFC 8460 §5.3): delivered with opportunistic TLS whatever the
 * receiver's MTA-STS or DANE policy, and its sessions are not counted in the next report. */
#define SPOOL_ENV_TLS_REPORT 0x08

/* What became of one recipient. Only the last record of a recipient counts. */
enum spool_rcpt_status {
    SPOOL_RCPT_PENDING = 0,   /* never tried, or no record yet */
    SPOOL_RCPT_DEFERRED = 1,  /* temporary failure: try again at next_attempt */
    SPOOL_RCPT_DELIVERED = 2, /* final */
    SPOOL_RCPT_FAILED = 3,    /* permanent failure or expiry; a DSN is owed */
    SPOOL_RCPT_BOUNCED = 4,   /* failed and the DSN is in the spool (or none was owed): final */
};

/* A success notice (RFC 3461 NOTIFY=SUCCESS, Action: relayed) owed for a DELIVERED recipient:
 * recorded with its delivery, so a restart before the notice is spooled still sends it. */
enum spool_notice {
    SPOOL_NOTICE_NONE = 0,     /* none owed, or it is spooled */
    SPOOL_NOTICE_OWED = 1,     /* owed, not spooled yet */
    SPOOL_NOTICE_SPOOLING = 2, /* being spooled as the message notice_dsn: owed unless that
                                  message is in the queue (the id keeps a restart from sending
                                  it twice) */
};

struct spool_rcpt_state {
    enum spool_rcpt_status status;
    unsigned attempts;      /* delivery attempts so far */
    int64_t next_attempt;   /* unix seconds; meaningful for DEFERRED */
    const char *reply;      /* last remote reply or local reason, one line, printable; "" none */
    const char *remote_mta; /* host that sent reply (a DSN's Remote-MTA), printable; "" when
                               local, or recorded before state files kept it */
    unsigned delay_warned;  /* delay DSNs sent (steps of delivery.delay_warning) */
    enum spool_notice notice;
    const char *notice_dsn; /* SPOOLING: the notice's queue id; else "" */
};

/* One recipient's new state, as written by spool_rcpt_update. */
struct spool_rcpt_update {
    size_t rcpt; /* index into the envelope's recipients */
    enum spool_rcpt_status status;
    unsigned attempts;
    int64_t next_attempt;
    const char *reply;      /* copied (NULL: ""); cut to SPOOL_REPLY_MAX, control chars to spaces */
    const char *remote_mta; /* host that sent reply, NULL or "" when none; copied and cleaned
                               like reply, cut to SPOOL_REMOTE_MTA_MAX */
    unsigned delay_warned;  /* delay DSNs sent so far; 0 writes nothing for it */
    /* 1: record notice (and notice_dsn, a queue id, for SPOOLING) ahead of the status, so a
     * torn write never leaves a delivery without its notice; 0: the notice is left as it is. */
    unsigned notice_write : 1;
    unsigned notice_only : 1; /* with notice_write: no status record (status etc. unused) */
    enum spool_notice notice;
    const char *notice_dsn;
};

#define SPOOL_REPLY_MAX 1000
#define SPOOL_REMOTE_MTA_MAX 255 /* a DNS name (RFC 1035 §2.3.4) or an address literal */

/* A committed message as found again by spool_recover, spool_scan or spool_load. Pointers are
 * valid during the callback. */
struct spool_entry {
    const char *id;
    const struct spool_envelope *env;
    uint64_t body_size;                        /* bytes a reader gets: prefix and body */
    const struct spool_rcpt_state *rcpt_state; /* env->nrcpts entries, from the state file (all
                                                  PENDING without one); never NULL */
};

/* Opens (creating when missing, mode 0700) the spool under dir. Synchronous: call at start-up
 * before the loop runs. Returns 0 or -errno with a reason in err. */
int spool_open(uv_loop_t *loop, const char *dir, struct spool **out, struct buf *err);
/* Scans the spool: calls cb for every committed message that has work left, removes half-written
 * files, messages whose recipients are all final (DELIVERED or BOUNCED), state files without a
 * message, and cuts torn records off state files. Synchronous, at start-up. Returns the number of
 * messages passed to cb, or -errno with a reason in err. */
typedef void (*spool_recover_cb)(const struct spool_entry *entry, void *arg);
int spool_recover(struct spool *sp, spool_recover_cb cb, void *arg, struct buf *err);

/* Start-up of a daemon that does not read every message before it serves: spool_recover_begin
 * does what must come first (replays the journal, removes half-written files; synchronous and
 * bounded by the journal), then spool_list finds the committed messages on the thread pool, a slice
 * of queue/'s hashed directories at a time, without reading their queue files: cb gets each
 * slice's messages with the time their earliest recipient is due, taken from the recipient states
 * alone (the queue file's records are followed to its end record, its body is not read; 0: due
 * now, also when there are no states yet or they say that nothing is left to do, so a load
 * settles it). It also removes state files without a message. cb runs on the loop once per slice,
 * with done set on the last call (n may be 0 then); it returns 0 to go on, or 1 to stop (no call
 * follows). Counts in spool_pending until the last call. A message committed meanwhile may be
 * listed too. */
int spool_recover_begin(struct spool *sp, struct buf *err);
struct spool_listed {
    const char *id;
    int64_t due; /* unix seconds */
};
typedef int (*spool_list_cb)(const struct spool_listed *items, size_t n, int done, void *arg);
void spool_list(struct spool *sp, spool_list_cb cb, void *arg);
/* Frees the spool; every message must have been committed or aborted, and every callback (of
 * commits and of the operations below) run: spool_pending is 0. */
void spool_close(struct spool *sp);

/* Starts a message: assigns its queue id and records the envelope. Returns NULL only on an id or
 * memory failure that cannot happen in practice (errors of the file itself surface at commit).
 * Should queue/ already hold a file of that id (a clock set back between runs), commit gives the
 * message a fresh one: spool_msg_id is final in the commit callback. */
struct spool_msg *spool_msg_new(struct spool *sp, const struct spool_envelope *env);
const char *spool_msg_id(const struct spool_msg *msg);
/* Replaces the envelope of a message nothing was appended to yet, for an envelope that depends on
 * the queue id (a VERP return path). Returns 0, or -EBUSY once bytes were appended. */
int spool_msg_set_envelope(struct spool_msg *msg, const struct spool_envelope *env);
/* The time a queue id made by this spool code was issued, in microseconds since the epoch, into
 * *us: 0, or -EINVAL when id is not of the form spool_msg_new makes. */
int spool_id_issued_at(const char *id, uint64_t *us);
/* For tests only: the next spool_msg_new takes id (a queue id, at most SPOOL_ID_MAX characters)
 * instead of making one, so that a test can make it clash with a committed message. */
void spool_test_next_id(struct spool *sp, const char *id);

/* Appends body bytes (copied). Returns 1 when the caller should stop feeding until writable_cb runs
 * (too much is buffered while a write is in flight), 0 otherwise. writable_cb never runs after
 * spool_msg_commit or spool_msg_abort. */
typedef void (*spool_writable_cb)(struct spool_msg *msg, void *arg);
int spool_msg_append(struct spool_msg *msg, const char *data, size_t len, spool_writable_cb cb,
                     void *arg);
uint64_t spool_msg_size(const struct spool_msg *msg);

/* Writes what is buffered and the end record and makes the message durable (see the top of
 * spool.c). cb runs once with status 0 (durable: answer 250) or a negative errno (answer 451); the
 * message is freed after cb returns. */
typedef void (*spool_commit_cb)(struct spool_msg *msg, int status, void *arg);
void spool_msg_commit(struct spool_msg *msg, spool_commit_cb cb, void *arg);

/* Puts header fields (e.g. DKIM-Signature, each ending in CRLF) in front of the message: a
 * reader (spool_load_body, spool_load) gets them before the bytes appended. Call after the last
 * append and before commit; at most once. Returns 0 or -EINVAL (over ENVELOPE_PREFIX_MAX, 64 KiB;
 * called twice or after commit). On disk they follow the body, so it can be written as it
 * arrives. */
int spool_msg_prepend(struct spool_msg *msg, const char *data, size_t len);

/* Throws the message away (client gone, message rejected). Disk work still in flight finishes on
 * its own; the file is removed and the message freed then. No callback. */
void spool_msg_abort(struct spool_msg *msg);

/* Read-only access, safe while a daemon runs (committed files are never rewritten in place): used
 * by `sluice queue` and by delivery. spool_scan lists committed messages like spool_recover but
 * removes nothing (a torn state record is ignored, not cut); spool_load_body appends a committed
 * message's prefix and body bytes to body. Both return 0 (scan: the count) or -errno with a
 * reason in err. */
int spool_scan(const char *dir, spool_recover_cb cb, void *arg, struct buf *err);
int spool_load_body(const char *dir, const char *id, struct buf *body, struct buf *err);

/*
 * Recipient state of committed messages: records appended to the message's queue file after its
 * end record, or to its state file when it has one (spool_state.h; length-prefixed, each with its
 * own CRC; a torn last record after a crash is ignored), and to the journal, whose sync they share
 * with every other commit in flight. cb (may be NULL) runs once, never from inside the call, with 0
 * when the records are durable, -ENOENT when the message is gone, -EINVAL for an id that is not a
 * queue id, or another negative errno. Updates and removals of one message run one at a time in
 * call order. Records for an index beyond the recipients are ignored by readers. The message's
 * committed records are never rewritten: only appended to.
 */
typedef void (*spool_update_cb)(int status, void *arg);
void spool_rcpt_update(struct spool *sp, const char *id, const struct spool_rcpt_update *updates,
                       size_t n, spool_update_cb cb, void *arg);

/* Removes a message whose recipients are all final (DELIVERED or BOUNCED), or that an admin
 * deletes: journaled first, then the queue file and its state file. On the thread pool; cb may be
 * NULL; status -ENOENT when there was no queue file. A crash in between is repaired at recovery
 * (the journal's removal is done again; a state file without its message is removed). */
void spool_msg_remove(struct spool *sp, const char *id, spool_update_cb cb, void *arg);

/* Reads a committed message's envelope, recipient states and body (prefix included) for
 * delivery, on the thread pool. cb gets 0, the entry and the body (both valid during cb; the
 * callback may move the body out by copying the struct and zeroing *body), or a negative errno
 * with a reason in why. Counts in spool_pending until cb has run. */
typedef void (*spool_load_cb)(int status, const struct spool_entry *entry, struct buf *body,
                              const char *why, void *arg);
void spool_load(struct spool *sp, const char *id, spool_load_cb cb, void *arg);

/* spool_load for the scheduler: the envelope and recipient states only (body NULL in cb), with
 * recovery's repairs, for a message no update is running on: a torn state tail is cut, and a file
 * that fails validation goes to corrupt/ (status -EBADMSG). */
void spool_load_queued(struct spool *sp, const char *id, spool_load_cb cb, void *arg);
/* The same without the repairs, for a reader that must change nothing (a listing). */
void spool_peek(struct spool *sp, const char *id, spool_load_cb cb, void *arg);

/* Commits, aborts, updates, removals and loads not yet called back, and journal checkpoints in
 * flight; the daemon waits for 0 before it exits. */
size_t spool_pending(const struct spool *sp);

/* For tests: what the journal's group commit did so far. */
struct spool_journal_stats {
    uint64_t syncs;   /* fdatasyncs of the journal that succeeded */
    uint64_t records; /* records they made durable (messages, state updates, removals) */
    uint64_t waiting; /* records gathered for the next batch */
    uint64_t segment; /* the segment batches go to now (its name, in hexadecimal), 0: none yet */
    uint64_t synced;  /* bytes of that segment known durable */
};
void spool_test_journal_stats(const struct spool *sp, struct spool_journal_stats *out);
/* For tests: the size past which a journal segment is closed (and then checkpointed). */
void spool_test_journal_segment_max(struct spool *sp, uint64_t bytes);
/* For tests: while held (1), records gather and no batch starts; 0 lets them go as one batch. */
void spool_test_journal_hold(struct spool *sp, int hold);
/* For tests: 0 stages small messages in tmp/, as on a file system without unnamed files
 * (O_TMPFILE); 1 stages them unnamed in their queue/ leaf (the default where spool_open found
 * that it works). */
void spool_test_unnamed(struct spool *sp, int on);

#endif
