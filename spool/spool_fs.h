/*
 * The spool's private side, shared by spool.c (writing messages) and spool_recover.c (start-up and
 * read-only access): directory layout, queue ids (which are the file names) and reading a committed
 * file back with its checks. Nothing outside spool/ includes this.
 */
#ifndef SLUICE_SPOOL_FS_H
#define SLUICE_SPOOL_FS_H

#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "lib/buf.h"
#include "spool/envelope.h"
#include "spool/spool_dirsync.h"
#include "spool/spool_journal.h"
#include "spool/spool.h"
#include "spool/spool_state.h"

#define SPOOL_TMP "tmp"         /* messages being written */
#define SPOOL_QUEUE "queue"     /* committed messages, one file each, named by queue id, hashed */
#define SPOOL_CORRUPT "corrupt" /* queue files that failed validation, kept for a person */
/* SPOOL_STATE (spool_state.h): recipient state files, named and hashed like their queue files */
/* SPOOL_JOURNAL (spool_journal.h): the journal's segments */

struct spool_op;

struct spool {
    uv_loop_t *loop;
    char *dir;    /* absolute path of the spool */
    int dir_fd;   /* <dir> itself, for syncfs() */
    int queue_fd; /* <dir>/queue, open for the directory syncs */
    int state_fd; /* <dir>/state */
    int unnamed;  /* small messages are written unnamed in their leaf (spool_move.h), not in tmp/ */
    size_t nmsgs; /* messages not yet freed */
    size_t pending; /* of those, committed or aborted, and the spool_ops: work to finish */
    size_t nops;    /* state updates, removals and loads not yet called back */
    struct spool_op *ops_running; /* updates and removals on the thread pool, one per id */
    /* queue ids: microseconds, a sequence within one microsecond, random bits */
    uint64_t id_us;
    unsigned id_seq;
    uint64_t id_rng;
    char next_id[SPOOL_ID_MAX + 1];  /* set by spool_test_next_id, else "" */
    struct spool_dirsync queue_sync; /* group commit of renames into queue/ (large messages) */
    struct spool_journal journal;    /* group commit of everything else */
};

/* Panics when rc, the result of starting a uv_fs_* call or uv_queue_work with a callback, is an
 * error: those fail at once only on invalid arguments or exhausted memory (which xalloc treats as
 * fatal everywhere else), both broken invariants here. */
void spool_fs_started(int rc, const char *what);

/* Creates dir and its subdirectories (mode 0700) where missing; sets *path to a malloc'd copy of
 * dir. A relative dir stays relative: the daemon reaches it from its working directory, also after
 * it gave up root, when a directory above (e.g. /root) is closed to its user. Returns 0 or -errno
 * with a reason in err. */
int spool_fs_create(const char *dir, char **path, struct buf *err);
/* Opens dir/sub as a directory (O_RDONLY). Returns the fd or -errno with a reason in err. */
int spool_fs_open_dir(const char *dir, const char *sub, struct buf *err);

/* Makes a new queue id into out (SPOOL_ID_MAX + 1 bytes): unique within the process, sortable by
 * time, and with random bits against a clock set back between runs. */
void spool_fs_id_make(struct spool *sp, char *out);
/* 1 when name is a queue id in form (so it is also a safe file name), else 0. */
int spool_fs_id_valid(const char *name);

/* Reads and checks the committed file `name` in directory dirfd: on success (0) dec holds its
 * envelope and body size (free it with envelope_decoder_free) and its prefix and body bytes, in
 * that order, are appended to body unless body is NULL. On failure dec is already freed; returns
 * -EBADMSG when the file is not a whole, valid message, another -errno when it cannot be read, with
 * a reason in err. What follows the end record (recipient states) is not checked here. */
int spool_fs_read(int dirfd, const char *name, struct envelope_decoder *dec, struct buf *body,
                  struct buf *err);

/* spool_fs_read that also appends what follows the end record (the message's recipient state
 * records, appended after the commit: spool_state.h) to tail, unless NULL, and sets *tail_at,
 * unless NULL, to its offset in the file (0 when there is no end record). */
int spool_fs_read_tail(int dirfd, const char *name, struct envelope_decoder *dec, struct buf *body,
                       struct buf *tail, uint64_t *tail_at, struct buf *err);
/* The same tail of the queue file open as fd, found by following the record headers from the
 * start without reading the body or checking anything. Returns 0, -EBADMSG when there is no end
 * record, or -errno. */
int spool_fs_tail(int fd, struct buf *tail, uint64_t *tail_at);
/* Marks the queue file of id, open as fd and fully written, as holding no recipient states: its
 * modification time is set to the time id was issued, which any later append replaces. Only a
 * shortcut for the start-up listing: a file left unmarked is read instead. */
void spool_fs_mark_unappended(int fd, const char *id);
/* 1 when st, the status of the queue file of id, shows that mark and so no recipient states
 * appended since; 0 when it may hold some (read its tail). */
int spool_fs_unappended(const struct stat *st, const char *id);
/* The offset past the end record of the queue file bytes data (len), found by following the
 * record headers; 0 when they hold no whole end record. */
uint64_t spool_fs_end_of(const void *data, size_t len);

/* A committed message read back with its recipient states; entry points into the struct. */
struct spool_loaded {
    struct envelope_decoder dec;
    struct spool_state state;
    int state_in_queue; /* the states came from the queue file's tail, not from a state file */
    uint64_t state_at;  /* ... starting at this offset of it */
    struct spool_entry entry;
};

/* spool_fs_read of message id's queue file with its recipient states: from its state file in
 * state_fd when it has one (see spool_state_read; a message of an earlier version), else from the
 * queue file's tail; both at name in their directory (spool_layout_name of id). Returns 0 (free l
 * with spool_fs_loaded_free) or as spool_fs_read, l then being freed. */
int spool_fs_load(int queue_fd, int state_fd, const char *id, const char *name,
                  struct spool_loaded *l, struct buf *body, struct buf *err);
void spool_fs_loaded_free(struct spool_loaded *l);

#endif
