/*
 * The spool's journal: the group commit of everything that must be durable. Accepted messages
 * (their whole queue file, when it was still in memory at commit), recipient state records and
 * removals are appended to one shared file, journal/<segment>, and made durable by one fdatasync
 * per batch: while one batch is synced, new records gather for the next, so any number of commits
 * in flight share one sync. The files they stand for (queue/<id>, state/<id>) are written without
 * a sync of their own; at start, spool_journal_replay (spool_replay.c) brings them back to what
 * the journal says, should a crash have lost some of their bytes.
 *
 * A segment that grew past its size limit is closed and the next batch opens a new one. Once every
 * file operation that a closed segment's records stand for has finished (spool_journal_settle),
 * one syncfs() of the spool's file system makes those files durable and the segment is deleted
 * (a checkpoint), oldest first. Used by spool.c and spool_ops.c; all disk work on the thread pool.
 *
 * Record (all integers big-endian): 4-byte length of what follows up to the CRC, 1 type byte,
 * 1-byte id length, the queue id, the data, 4-byte CRC-32 of every byte before it. A segment
 * starts with a SPOOL_JOURNAL_REC_HEADER record whose data is the format's name and version, and
 * ends at the first record that is torn or fails its checks, such as the zeros the file is
 * extended with ahead of its records.
 */
#ifndef SLUICE_SPOOL_JOURNAL_H
#define SLUICE_SPOOL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "spool/spool.h"

#define SPOOL_JOURNAL "journal" /* the segments' directory under the spool */
#define SPOOL_JOURNAL_MAGIC "sluice-journal/1"
#define SPOOL_JOURNAL_SEGMENT_MAX (32u * 1024 * 1024) /* a segment is closed past this size */
/* At most this much of a queue file goes into the journal whole (spool.c journals a file that is
 * still all in memory at commit, which a file over 64 KiB rarely is); others sync on their own. */
#define SPOOL_JOURNAL_INLINE_MAX (1024u * 1024)
#define SPOOL_JOURNAL_REC_MAX (SPOOL_JOURNAL_INLINE_MAX + 64 * 1024) /* length field's cap */

enum spool_journal_rec {
    SPOOL_JOURNAL_REC_HEADER = 'J', /* first in a segment; no id */
    SPOOL_JOURNAL_REC_MSG = 'M',    /* a committed message: the queue file's bytes */
    SPOOL_JOURNAL_REC_STATE = 'S',  /* recipient state records, as appended to state/<id> */
    SPOOL_JOURNAL_REC_REMOVE = 'X', /* the message is gone: no data */
};

struct spool_journal_segment;

struct spool_journal_waiter {
    struct spool_journal_waiter *next;
    struct spool_journal_segment *segment; /* where the record went: pass to settle */
    /* Runs on the loop once the record is durable (0) or not known to be (-errno). */
    void (*done)(struct spool_journal_waiter *w, int status);
    /* Optional (NULL: none): runs on the thread pool, in the batch's own step, once the record is
     * durable and before done: file work that must follow the sync, spared a trip of its own. */
    void (*synced)(struct spool_journal_waiter *w);
};

struct spool_journal {
    uv_loop_t *loop;
    int dir_fd;                            /* journal/ */
    int spool_fd;                          /* the spool's directory, for syncfs() */
    uint64_t next_seq;                     /* the name of the next segment opened */
    struct spool_journal_segment *oldest;  /* segments of this process, oldest first */
    struct spool_journal_segment *current; /* where batches go; NULL: open one first */
    struct buf waiting;                    /* records of the next batch */
    struct spool_journal_waiter *waiters;  /* ... and who waits for them */
    struct spool_journal_waiter **tail;
    size_t nwaiting;                   /* how many */
    int held;                          /* for tests: no batch starts (spool_journal_hold) */
    struct spool_journal_batch *batch; /* the batch being written and synced, or NULL */
    uv_work_t checkpoint;
    struct spool_journal_segment *checkpointing; /* the segment being checkpointed, or NULL */
    int checkpoint_status;                       /* its result, from the thread pool */
    uint64_t segment_max;
    int replay_pending; /* segments of an earlier run wait for spool_recover: keep every segment */
    uint64_t syncs, records; /* for tests: fdatasyncs done, records made durable */
    uint64_t synced;         /* for tests: bytes of the current segment known durable */
    size_t *pending;         /* the spool's count of work in flight: a checkpoint counts */
};

/* Opens journal/ under the spool's directory spool_fd (created by spool_fs_create) and notes the
 * segments already there (left by a crash: replayed by spool_journal_replay). Synchronous, at
 * start-up. Returns 0 or -errno with a reason in err. */
int spool_journal_open(struct spool_journal *j, uv_loop_t *loop, int spool_fd, const char *dir,
                       size_t *pending, struct buf *err);
/* Closes the journal; with nothing in flight and every segment settled, makes the spool's files
 * durable and deletes the segments (a clean stop leaves an empty journal/). Synchronous. */
void spool_journal_close(struct spool_journal *j);
/* For spool_test_journal_stats and spool_test_journal_hold. */
void spool_journal_stats(const struct spool_journal *j, struct spool_journal_stats *out);
void spool_journal_hold(struct spool_journal *j, int hold);
/* 1 while a batch or a checkpoint is in flight. */
int spool_journal_busy(const struct spool_journal *j);

/* Appends a record of type for id with the given data (copied; data2 follows data, either may be
 * empty); w->done runs once it is durable. Unless w->done gets an error, the caller then owes one
 * spool_journal_settle(j, w->segment) once the file work the record stands for is done. */
void spool_journal_append(struct spool_journal *j, struct spool_journal_waiter *w,
                          enum spool_journal_rec type, const char *id, const void *data,
                          size_t len);
void spool_journal_settle(struct spool_journal *j, struct spool_journal_segment *segment);

/* Replays the segments an earlier run left (a crash): every queue file and state file comes back
 * to what the journal says, removed messages are removed, all is synced, and the segments are
 * deleted. Synchronous, at start-up, before anything is appended. queue_fd, state_fd, tmp_fd are
 * the spool's directories. Returns the number of records replayed or -errno with a reason in err.
 */
int spool_journal_replay(struct spool_journal *j, int queue_fd, int state_fd, int tmp_fd,
                         struct buf *err);

/* Record encoding and decoding, shared by the writer and the replay. */
void spool_journal_encode(struct buf *out, enum spool_journal_rec type, const char *id,
                          const void *data, size_t len);
struct spool_journal_rec_view {
    enum spool_journal_rec type;
    char id[32];
    const char *data;
    size_t len;
};
/* Decodes the record at *pos of p (size bytes); advances *pos. Returns 1, or 0 at the end or at a
 * record that is torn or fails its checks (nothing after it counts). */
int spool_journal_decode(const char *p, size_t size, size_t *pos,
                         struct spool_journal_rec_view *rec);

#endif
