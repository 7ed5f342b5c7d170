/*
 * Writing messages into the spool, and the group commit.
 *
 * Layout (directories mode 0700, files 0600; <leaf>/<id> is spool_layout_name's):
 *   <spool>/tmp/<id>          a message being written; never read, removed by spool_recover
 *   <spool>/queue/<leaf>/<id> a committed message, named by its queue id, its recipient states
 *                             appended after its end record (spool_ops.c), never rewritten
 *   <spool>/corrupt/<id>      a queue file that failed validation at recovery, kept for a person
 *   <spool>/state/<leaf>/<id> recipient states of a message queued by an earlier version
 *
 * A message is framed into records in memory as it arrives; once SPOOL_WRITE_CHUNK is buffered,
 * its file is created in tmp/ and written in chunks, one write in flight per message, on the
 * thread pool. Commit appends the prefix and end records. Then one of two ways, each step on the
 * thread pool, concurrently with other messages:
 *
 *  - A message still all in memory at commit (so most mail, up to about 64 KiB; at most
 *    SPOOL_JOURNAL_INLINE_MAX) is staged in one step: its id is checked free in queue/ (should
 *    queue/ already hold it, the message takes a fresh one) and its file written whole, without a
 *    sync, as a file without a name in its queue/ leaf (O_TMPFILE; in tmp/ where the file system
 *    cannot). The file's bytes go into the journal, whose one fdatasync per batch is shared by
 *    every commit in flight (group commit, spool_journal.c); the batch's own step on the thread
 *    pool, once synced, then gives the file its name in queue/ (a link, or the move from tmp/).
 *    Should a crash lose the file's bytes or its name, the journal writes it again at the next
 *    start.
 *  - A larger one, already partly written, is fdatasynced (its own sync costs little beside its
 *    size), closed and moved into queue/, and an fsync of queue/ is shared: while one runs,
 *    messages renamed meanwhile wait, and the next single fsync covers all of them
 *    (spool_dirsync.c). The move never replaces a file (spool_move.c): should queue/ already hold
 *    the id, the message takes a fresh one.
 *
 * Either way queue/ holds only complete files once the next start has replayed the journal; the
 * end record's CRC still catches a disk that lies.
 */
#include "spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "spool/envelope.h"
#include "spool/spool_fs.h"
#include "spool/spool_journal.h"
#include "spool/spool_layout.h"
#include "spool/spool_move.h"

#define SPOOL_WRITE_CHUNK (64 * 1024)  /* buffered bytes that start a write */
#define SPOOL_BUFFER_HIGH (256 * 1024) /* buffered while a write runs: the sender is paused */
#define NO_RECORD SIZE_MAX
#define ID_CLASH_TRIES 8 /* fresh ids tried when queue/ holds the id: each clash is ~2^-15 */

struct spool_msg {
    struct spool *sp;
    struct spool_dirsync_waiter sync;              /* in the group commit of queue/ */
    char queue_name[SPOOL_NAME_MAX + 1];           /* its path in queue/ while it waits there */
    struct spool_journal_waiter jw;                /* in the journal's group commit */
    struct spool_journal_segment *journal_segment; /* holds its record: settled after the move */
    union {
        uv_fs_t fs;
        uv_work_t work;
    } req;                   /* the one operation in flight, if busy */
    uv_file fd;              /* -1 before open and once closed */
    int error;               /* first failure (negative errno), reported at commit */
    unsigned busy : 1;       /* req is in flight: its callback continues the message */
    unsigned created : 1;    /* our file exists on disk: remove it if the message fails */
    unsigned in_queue : 1;   /* ... and was renamed into queue/ */
    unsigned committing : 1; /* spool_msg_commit was called */
    unsigned aborted : 1;    /* spool_msg_abort was called */
    unsigned ended : 1;      /* the end record was handed to a write */
    unsigned paused : 1;     /* append returned 1: writable_cb is owed */
    unsigned prepended : 1;  /* spool_msg_prepend was called */
    unsigned journaled : 1;  /* staged whole: its bytes (buf) go into the journal, no own sync */
    struct buf prefix;       /* its bytes, written just before the end record */
    struct buf buf;          /* framed records not yet written */
    struct buf wbuf;         /* records being written */
    size_t wdone;            /* bytes of wbuf written so far */
    size_t open_rec;         /* offset in buf of the body record appends extend, or NO_RECORD */
    uint64_t offset;         /* bytes written to the file */
    uint64_t body_size;      /* body bytes appended */
    uint32_t crc;            /* of every byte moved into wbuf */
    spool_writable_cb writable_cb;
    void *writable_arg;
    spool_commit_cb commit_cb;
    void *commit_arg;
    int move_status;               /* result of the move into queue/, from the thread pool */
    unsigned clashes;              /* ids found taken in queue/ */
    char id[SPOOL_ID_MAX + 1];     /* the queue id: the file's name in queue/ */
    char tmp_id[SPOOL_ID_MAX + 1]; /* its name in tmp/: the first id, kept after a clash */
};

/* The callback chain of a message, in firing order. */
static void msg_open_start(struct spool_msg *msg);
static void msg_on_opened(uv_fs_t *req);
static void msg_advance(struct spool_msg *msg);
static void msg_write_start(struct spool_msg *msg);
static void msg_on_written(uv_fs_t *req);
static void commit_on_synced(uv_fs_t *req);
static void commit_on_closed(uv_fs_t *req);
static void commit_move_start(struct spool_msg *msg);
static void commit_move_work(uv_work_t *work);
static void commit_on_moved(uv_work_t *work, int status);
static void commit_moved(struct spool_msg *msg);
static void commit_name_synced(struct spool_journal_waiter *w);
static void commit_on_durable(struct spool_dirsync_waiter *w, int status);
static void commit_stage_start(struct spool_msg *msg);
static void commit_stage_work(uv_work_t *work);
static void commit_on_staged(uv_work_t *work, int status);
static void commit_on_journaled(struct spool_journal_waiter *w, int status);
static void commit_on_taken_back(struct spool_journal_waiter *w, int status);
static void msg_cleanup(struct spool_msg *msg);
static void cleanup_on_done(uv_fs_t *req);
static void msg_finish(struct spool_msg *msg);
static void work_nothing(uv_work_t *work);
static void commit_on_deferred(uv_work_t *work, int status);
static void msg_work_start(struct spool_msg *msg, uv_work_cb work, uv_after_work_cb done);

/* The message's file in tmp/ (named by its first id) or queue/. */
static void msg_path(const struct spool_msg *msg, const char *sub, char *out, size_t size)
{
    char name[SPOOL_NAME_MAX + 1];
    if (strcmp(sub, SPOOL_TMP) == 0)
        snprintf(name, sizeof name, "%s", msg->tmp_id);
    else
        spool_layout_name(msg->id, name);
    snprintf(out, size, "%s/%s/%s", msg->sp->dir, sub, name);
}

static void msg_fail(struct spool_msg *msg, int status)
{
    if (msg->error == 0)
        msg->error = status;
}

/* ---- the spool ---- */

static void spool_fds_close(struct spool *sp)
{
    int fds[] = {sp->dir_fd, sp->queue_fd, sp->state_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int spool_open(uv_loop_t *loop, const char *dir, struct spool **out, struct buf *err)
{
    char *path;
    int rc = spool_fs_create(dir, &path, err);
    if (rc < 0)
        return rc;
    struct spool *sp = xcalloc(1, sizeof *sp);
    sp->loop = loop;
    sp->dir = path;
    sp->queue_fd = sp->state_fd = -1;
    rc = sp->dir_fd = spool_fs_open_dir(path, ".", err);
    if (rc >= 0)
        rc = spool_fs_open_dir(path, SPOOL_TMP, err);
    if (rc >= 0) {
        sp->unnamed = spool_move_unnamed_usable(rc, "unnamed-probe");
        close(rc);
        rc = sp->queue_fd = spool_fs_open_dir(path, SPOOL_QUEUE, err);
    }
    if (rc >= 0)
        rc = sp->state_fd = spool_fs_open_dir(path, SPOOL_STATE, err);
    if (rc >= 0) {
        rc = uv_random(NULL, NULL, &sp->id_rng, sizeof sp->id_rng, 0, NULL);
        if (rc < 0)
            buf_printf(err, "spool %s: no random seed for queue ids: %s", path, uv_strerror(rc));
    }
    if (rc == 0)
        rc = spool_layout_migrate(sp->dir_fd, sp->queue_fd, sp->state_fd, err);
    if (rc >= 0)
        rc = spool_journal_open(&sp->journal, loop, sp->dir_fd, path, &sp->pending, err);
    if (rc < 0) {
        spool_fds_close(sp);
        free(path);
        free(sp);
        return rc;
    }
    spool_dirsync_init(&sp->queue_sync, loop, sp->queue_fd);
    *out = sp;
    return 0;
}

void spool_close(struct spool *sp)
{
    if (sp->nmsgs > 0 || sp->nops > 0 || spool_journal_busy(&sp->journal))
        log_panic("spool_close: %zu messages and %zu operations not finished", sp->nmsgs,
                  sp->nops + (size_t)spool_journal_busy(&sp->journal));
    spool_journal_close(&sp->journal);
    spool_fds_close(sp);
    free(sp->dir);
    free(sp);
}

void spool_test_journal_stats(const struct spool *sp, struct spool_journal_stats *out)
{
    spool_journal_stats(&sp->journal, out);
}

void spool_test_journal_segment_max(struct spool *sp, uint64_t bytes)
{
    sp->journal.segment_max = bytes;
}

void spool_test_journal_hold(struct spool *sp, int hold)
{
    spool_journal_hold(&sp->journal, hold);
}

void spool_test_unnamed(struct spool *sp, int on)
{
    sp->unnamed = on;
}

size_t spool_pending(const struct spool *sp)
{
    return sp->pending;
}

/* ---- a message ---- */

struct spool_msg *spool_msg_new(struct spool *sp, const struct spool_envelope *env)
{
    struct spool_msg *msg = xcalloc(1, sizeof *msg);
    msg->sp = sp;
    msg->fd = -1;
    msg->open_rec = NO_RECORD;
    if (sp->next_id[0] != '\0') {
        memcpy(msg->id, sp->next_id, sizeof msg->id);
        sp->next_id[0] = '\0';
    } else {
        spool_fs_id_make(sp, msg->id);
    }
    memcpy(msg->tmp_id, msg->id, sizeof msg->tmp_id);
    sp->nmsgs++;
    msg->error = envelope_encode(env, &msg->buf); /* a failure is reported at commit */
    return msg;
}

void spool_test_next_id(struct spool *sp, const char *id)
{
    snprintf(sp->next_id, sizeof sp->next_id, "%s", id);
}

const char *spool_msg_id(const struct spool_msg *msg)
{
    return msg->id;
}

int spool_msg_set_envelope(struct spool_msg *msg, const struct spool_envelope *env)
{
    /* Until the first append, buf holds the envelope record alone and nothing reached the file. */
    if (msg->body_size > 0 || msg->offset > 0 || msg->wbuf.len > 0 || msg->open_rec != NO_RECORD)
        return -EBUSY;
    buf_reset(&msg->buf);
    msg->error = envelope_encode(env, &msg->buf);
    return 0;
}

uint64_t spool_msg_size(const struct spool_msg *msg)
{
    return msg->body_size;
}

int spool_msg_append(struct spool_msg *msg, const char *data, size_t len, spool_writable_cb cb,
                     void *arg)
{
    msg->body_size += len;
    if (msg->error < 0)
        return 0; /* nothing more reaches the disk; commit reports the failure */
    while (len > 0) {
        if (msg->open_rec == NO_RECORD) {
            msg->open_rec = msg->buf.len;
            envelope_rec_begin(&msg->buf, ENVELOPE_REC_BODY, 0);
        }
        size_t have = msg->buf.len - msg->open_rec - ENVELOPE_HDR_LEN;
        size_t take = ENVELOPE_BODY_REC_MAX - have < len ? ENVELOPE_BODY_REC_MAX - have : len;
        buf_append(&msg->buf, data, take);
        envelope_rec_set_len(msg->buf.data + msg->open_rec, (uint32_t)(have + take));
        if (have + take == ENVELOPE_BODY_REC_MAX)
            msg->open_rec = NO_RECORD;
        data += take, len -= take;
    }
    if (!msg->busy) {
        msg_advance(msg);
        return 0;
    }
    if (msg->buf.len <= SPOOL_BUFFER_HIGH)
        return 0;
    msg->paused = 1;
    msg->writable_cb = cb;
    msg->writable_arg = arg;
    return 1;
}

int spool_msg_prepend(struct spool_msg *msg, const char *data, size_t len)
{
    if (msg->prepended || msg->committing || len > ENVELOPE_PREFIX_MAX)
        return -EINVAL;
    msg->prepended = 1;
    buf_append(&msg->prefix, data, len);
    return 0;
}

void spool_msg_commit(struct spool_msg *msg, spool_commit_cb cb, void *arg)
{
    msg->committing = 1;
    msg->paused = 0; /* the body is complete: no writable_cb any more */
    msg->commit_cb = cb;
    msg->commit_arg = arg;
    msg->sp->pending++;
    if (msg->busy)
        return; /* the operation in flight continues the chain */
    if (msg->error < 0 && msg->fd < 0 && !msg->created) {
        /* Failed with nothing on disk to clean up. The callback must still not run from inside
         * this call: report on the way back from the thread pool. */
        msg_work_start(msg, work_nothing, commit_on_deferred);
        return;
    }
    msg_advance(msg);
}

void spool_msg_abort(struct spool_msg *msg)
{
    msg->aborted = 1;
    msg->paused = 0;
    msg->sp->pending++;
    if (!msg->busy)
        msg_cleanup(msg);
}

/* ---- the chain ---- */

/* Creates the message's file in tmp/, once its bytes do not stay in memory. */
static void msg_open_start(struct spool_msg *msg)
{
    char path[PATH_MAX];
    msg_path(msg, SPOOL_TMP, path, sizeof path);
    msg->busy = 1;
    spool_fs_started(uv_fs_open(msg->sp->loop, &msg->req.fs, path,
                                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, msg_on_opened),
                     "open");
}

static void msg_on_opened(uv_fs_t *req)
{
    struct spool_msg *msg = container_of(req, struct spool_msg, req.fs);
    msg->busy = 0;
    if (req->result < 0) {
        msg_fail(msg, (int)req->result);
    } else {
        msg->fd = (uv_file)req->result;
        msg->created = 1;
    }
    uv_fs_req_cleanup(req);
    msg_advance(msg);
}

/* 1 when the whole file of a committing message that has no file yet, with its prefix and end
 * records, fits in one journal record. */
static int msg_fits_journal(const struct spool_msg *msg)
{
    return !msg->created &&
           msg->buf.len + msg->prefix.len + 4 * ENVELOPE_HDR_LEN + 64 <= SPOOL_JOURNAL_INLINE_MAX;
}

/* Appends the prefix and end records to what is buffered: the message is complete. */
static void msg_seal(struct spool_msg *msg)
{
    envelope_prefix_append(&msg->buf, msg->prefix.data, msg->prefix.len);
    msg->crc = envelope_crc32(msg->crc, msg->buf.data, msg->buf.len);
    envelope_end_append(&msg->buf, msg->body_size, msg->crc);
    msg->ended = 1;
}

/* Starts whatever comes next for a message with no operation in flight. */
static void msg_advance(struct spool_msg *msg)
{
    if (msg->aborted || (msg->committing && msg->error < 0)) {
        msg_cleanup(msg);
        return;
    }
    if (msg->error < 0) {
        buf_free(&msg->buf);
        buf_free(&msg->wbuf);
        msg->open_rec = NO_RECORD;
    } else if (msg->committing && msg->ended) {
        msg->busy = 1;
        spool_fs_started(uv_fs_fdatasync(msg->sp->loop, &msg->req.fs, msg->fd, commit_on_synced),
                         "fdatasync");
        return;
    } else if (msg->committing && msg->fd < 0 && msg_fits_journal(msg)) {
        msg_seal(msg);
        msg->journaled = 1;
        commit_stage_start(msg);
        return;
    } else if (msg->fd < 0 && (msg->committing || msg->buf.len >= SPOOL_WRITE_CHUNK)) {
        msg_open_start(msg);
    } else if (msg->committing || msg->buf.len >= SPOOL_WRITE_CHUNK) {
        msg_write_start(msg);
    }
    if (msg->paused && msg->buf.len <= SPOOL_BUFFER_HIGH) {
        msg->paused = 0;
        msg->writable_cb(msg, msg->writable_arg); /* last: it may append or abort */
    }
}

static void msg_write_more(struct spool_msg *msg)
{
    uv_buf_t b = uv_buf_init(msg->wbuf.data + msg->wdone, (unsigned)(msg->wbuf.len - msg->wdone));
    msg->busy = 1;
    spool_fs_started(uv_fs_write(msg->sp->loop, &msg->req.fs, msg->fd, &b, 1, (int64_t)msg->offset,
                                 msg_on_written),
                     "write");
}

/* Hands everything buffered (and, once committing, the end record) to a write. */
static void msg_write_start(struct spool_msg *msg)
{
    msg->open_rec = NO_RECORD; /* the record is on its way: later appends start a new one */
    if (msg->committing)
        msg_seal(msg);
    else
        msg->crc = envelope_crc32(msg->crc, msg->buf.data, msg->buf.len);
    struct buf swap = msg->wbuf; /* empty, its memory kept for the next chunk */
    msg->wbuf = msg->buf;
    msg->buf = swap;
    msg->wdone = 0;
    msg_write_more(msg);
}

static void msg_on_written(uv_fs_t *req)
{
    struct spool_msg *msg = container_of(req, struct spool_msg, req.fs);
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    msg->busy = 0;
    if (n <= 0) {
        msg_fail(msg, n < 0 ? (int)n : -EIO);
    } else {
        msg->offset += (uint64_t)n;
        msg->wdone += (size_t)n;
        if (msg->wdone < msg->wbuf.len && !msg->aborted) {
            msg_write_more(msg); /* a short write: go on from where it stopped */
            return;
        }
    }
    if (msg->wbuf.cap > 2 * SPOOL_BUFFER_HIGH)
        buf_free(&msg->wbuf); /* one huge append: do not keep its memory */
    else
        buf_reset(&msg->wbuf);
    msg_advance(msg);
}

static void commit_on_synced(uv_fs_t *req)
{
    struct spool_msg *msg = container_of(req, struct spool_msg, req.fs);
    int status = (int)req->result;
    uv_fs_req_cleanup(req);
    msg->busy = 0;
    if (status < 0) {
        msg_fail(msg, status);
        msg_advance(msg);
        return;
    }
    msg->busy = 1;
    spool_fs_started(uv_fs_close(msg->sp->loop, &msg->req.fs, msg->fd, commit_on_closed), "close");
    msg->fd = -1;
}

static void commit_on_closed(uv_fs_t *req)
{
    struct spool_msg *msg = container_of(req, struct spool_msg, req.fs);
    int status = (int)req->result;
    uv_fs_req_cleanup(req);
    msg->busy = 0;
    if (status < 0) {
        msg_fail(msg, status);
        msg_advance(msg);
        return;
    }
    commit_move_start(msg);
}

/* After a step that found whether queue/ holds the message's id (move_status): 0 to go on, or 1
 * when the message failed, or when the id was taken (by a run whose clock was ahead) and the step
 * is tried again with a fresh id. The first id has only been in log lines and in the Received:
 * field already written into the body; the client is told the new one, and this event names
 * both. */
static int commit_id_checked(struct spool_msg *msg, void (*again)(struct spool_msg *msg))
{
    if (msg->move_status == -EEXIST && msg->clashes++ < ID_CLASH_TRIES) {
        char taken[SPOOL_ID_MAX + 1];
        memcpy(taken, msg->id, sizeof taken);
        spool_fs_id_make(msg->sp, msg->id);
        log_msg(LOG_WARN, "spool.id_clash", "queue id %s is taken in %s/: the message is %s", taken,
                SPOOL_QUEUE, msg->id);
        again(msg);
        return 1;
    }
    if (msg->move_status < 0) {
        msg->busy = 0;
        msg_fail(msg, msg->move_status);
        msg_advance(msg);
        return 1;
    }
    return 0;
}

/* Runs work for the message on the thread pool; done continues its chain. */
static void msg_work_start(struct spool_msg *msg, uv_work_cb work, uv_after_work_cb done)
{
    msg->busy = 1;
    spool_fs_started(uv_queue_work(msg->sp->loop, &msg->req.work, work, done), "work");
}

/* libuv has no rename that refuses to replace: the move runs as thread-pool work. */
static void commit_move_start(struct spool_msg *msg)
{
    msg_work_start(msg, commit_move_work, commit_on_moved);
}

/* Gives the message's file its name in queue/: synchronous, on the thread pool. */
static void msg_name(struct spool_msg *msg)
{
    spool_layout_name(msg->id, msg->queue_name);
    if (!msg->created) {
        /* Staged without a name in its leaf: the link is the move. */
        msg->move_status = spool_move_unnamed_link(msg->fd, msg->sp->queue_fd, msg->queue_name);
    } else {
        char from[PATH_MAX], to[PATH_MAX];
        msg_path(msg, SPOOL_TMP, from, sizeof from);
        msg_path(msg, SPOOL_QUEUE, to, sizeof to);
        msg->move_status = spool_layout_leaf_make(msg->sp->queue_fd, msg->queue_name);
        if (msg->move_status == 0)
            msg->move_status = spool_move_noreplace(from, to);
    }
    if (msg->fd >= 0) {
        /* Its bytes are in the journal: a failed close loses nothing. */
        (void)close(msg->fd);
        msg->fd = -1;
    }
}

static void commit_move_work(uv_work_t *work)
{
    msg_name(container_of(work, struct spool_msg, req.work));
}

static void commit_on_moved(uv_work_t *work, int status)
{
    commit_moved(container_of(work, struct spool_msg, req.work));
}

static void commit_moved(struct spool_msg *msg)
{
    struct spool *sp = msg->sp;
    if (msg->journaled) {
        if (msg->move_status == 0) {
            msg->in_queue = 1;
            spool_journal_settle(&sp->journal, msg->journal_segment);
            msg->busy = 0;
            msg_finish(msg);
            return;
        }
        /* The journal holds the message: take it back there too, or the next start would bring
         * it back, and a retry by the client would make it a second copy. */
        msg_fail(msg, msg->move_status);
        msg->jw.done = commit_on_taken_back;
        msg->jw.synced = NULL;
        spool_journal_append(&sp->journal, &msg->jw, SPOOL_JOURNAL_REC_REMOVE, msg->id, NULL, 0);
        return;
    }
    if (commit_id_checked(msg, commit_move_start))
        return;
    msg->in_queue = 1;
    /* Still busy: waiting for the directory sync. */
    msg->sync.done = commit_on_durable;
    msg->sync.entry = msg->queue_name;
    spool_dirsync_add(&sp->queue_sync, &msg->sync);
}

static void commit_on_durable(struct spool_dirsync_waiter *w, int status)
{
    struct spool_msg *msg = container_of(w, struct spool_msg, sync);
    msg->busy = 0;
    if (status < 0) {
        /* Not known to be durable: answer 451 and take the file back, so that a retry by the
         * client does not also deliver this copy. */
        msg_fail(msg, status);
        msg_advance(msg);
        return;
    }
    msg_finish(msg);
}

/* ---- the journal's way: stage the file, journal its bytes, then name it ---- */

/* Checks that queue/ does not hold the message's id yet and writes its file, unnamed in its leaf
 * or in tmp/, without a sync: one step on the thread pool. */
static void commit_stage_start(struct spool_msg *msg)
{
    msg_work_start(msg, commit_stage_work, commit_on_staged);
}

static void commit_stage_work(uv_work_t *work)
{
    struct spool_msg *msg = container_of(work, struct spool_msg, req.work);
    struct spool *sp = msg->sp;
    spool_layout_name(msg->id, msg->queue_name);
    int rc = 0;
    if (faccessat(sp->queue_fd, msg->queue_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        rc = -EEXIST;
    else if (errno != ENOENT)
        rc = -errno;
    int fd = -1;
    char path[PATH_MAX];
    if (rc == 0 && sp->unnamed) {
        char leaf[SPOOL_LEAF_LEN + 1];
        snprintf(leaf, sizeof leaf, "%.*s", SPOOL_LEAF_LEN, msg->queue_name);
        rc = fd = spool_move_unnamed_open(sp->queue_fd, leaf);
        if (rc == -ENOENT) /* the leaf's first message (or the leaf was removed) */
            rc = spool_layout_leaf_make(sp->queue_fd, msg->queue_name);
        if (rc == 0)
            rc = fd = spool_move_unnamed_open(sp->queue_fd, leaf);
    } else if (rc == 0) {
        msg_path(msg, SPOOL_TMP, path, sizeof path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        rc = fd < 0 ? -errno : 0;
        msg->created = fd >= 0;
    }
    if (fd >= 0)
        rc = fd_write_all(fd, msg->buf.data, msg->buf.len);
    if (rc == 0 && fd >= 0)
        spool_fs_mark_unappended(fd, msg->id); /* the start-up listing then need not read it */
    if (rc < 0 && fd >= 0) {
        close(fd);
        fd = -1;
        if (msg->created && unlink(path) == 0)
            msg->created = 0;
    }
    msg->fd = fd;
    msg->move_status = rc < 0 ? rc : 0;
}

static void commit_on_staged(uv_work_t *work, int status)
{
    struct spool_msg *msg = container_of(work, struct spool_msg, req.work);
    struct spool *sp = msg->sp;
    if (commit_id_checked(msg, commit_stage_start))
        return;
    msg->jw.done = commit_on_journaled;
    msg->jw.synced = commit_name_synced;
    msg->move_status = -EIO; /* until the name is given */
    spool_journal_append(&sp->journal, &msg->jw, SPOOL_JOURNAL_REC_MSG, msg->id, msg->buf.data,
                         msg->buf.len);
    buf_free(&msg->buf);
}

static void commit_on_journaled(struct spool_journal_waiter *w, int status)
{
    struct spool_msg *msg = container_of(w, struct spool_msg, jw);
    if (status < 0) {
        msg->busy = 0;
        msg_fail(msg, status);
        msg_advance(msg);
        return;
    }
    msg->journal_segment = w->segment;
    commit_moved(msg); /* named by commit_name_synced, in the journal's step */
}

/* Once the journal's batch holding the message is durable, on the thread pool. */
static void commit_name_synced(struct spool_journal_waiter *w)
{
    msg_name(container_of(w, struct spool_msg, jw));
}

static void commit_on_taken_back(struct spool_journal_waiter *w, int status)
{
    struct spool_msg *msg = container_of(w, struct spool_msg, jw);
    struct spool *sp = msg->sp;
    spool_journal_settle(&sp->journal, msg->journal_segment);
    if (status == 0)
        spool_journal_settle(&sp->journal, w->segment);
    msg->busy = 0;
    msg_advance(msg);
}

/* ---- failure and abort: close, remove the file, free ---- */

static void commit_on_deferred(uv_work_t *work, int status)
{
    struct spool_msg *msg = container_of(work, struct spool_msg, req.work);
    msg->busy = 0;
    msg_finish(msg);
}

static void work_nothing(uv_work_t *work)
{
}

/* One step per call, each on the thread pool; cleanup_on_done calls it again for the next. */
static void msg_cleanup(struct spool_msg *msg)
{
    uv_loop_t *loop = msg->sp->loop;
    msg->busy = 1;
    if (msg->fd >= 0) {
        spool_fs_started(uv_fs_close(loop, &msg->req.fs, msg->fd, cleanup_on_done), "close");
        msg->fd = -1;
    } else if (msg->created) {
        char path[PATH_MAX];
        msg_path(msg, msg->in_queue ? SPOOL_QUEUE : SPOOL_TMP, path, sizeof path);
        msg->created = 0;
        spool_fs_started(uv_fs_unlink(loop, &msg->req.fs, path, cleanup_on_done), "unlink");
    } else {
        msg->busy = 0;
        msg_finish(msg);
    }
}

static void cleanup_on_done(uv_fs_t *req)
{
    struct spool_msg *msg = container_of(req, struct spool_msg, req.fs);
    if (req->result < 0 && req->fs_type == UV_FS_UNLINK)
        log_msg(LOG_WARN, "spool.cleanup_failed", "queue id %s: cannot remove %s: %s", msg->id,
                req->path, uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    msg->busy = 0;
    msg_cleanup(msg);
}

static void msg_finish(struct spool_msg *msg)
{
    struct spool *sp = msg->sp;
    if (msg->committing)
        msg->commit_cb(msg, msg->error, msg->commit_arg);
    buf_free(&msg->buf);
    buf_free(&msg->wbuf);
    buf_free(&msg->prefix);
    sp->nmsgs--;
    sp->pending--;
    free(msg);
}
