/*
 * Work on committed messages, each on the thread pool with its callback on the loop: recipient
 * state updates (appended to state/<leaf>/<id>), removals, and loads: for delivery (with the body,
 * or, for the scheduler, without it and with recovery's repairs) and for listings (changing
 * nothing).
 *
 * Updates and removals are made durable by the journal's group commit (spool_journal.c), not by a
 * sync of their own: an update appends its records to the state file, then the same records to the
 * journal, and is called back once the journal's batch is synced; a removal is journaled first and
 * its files removed after. Should a crash lose a state file's bytes or a removal, the journal
 * brings them back at the next start.
 *
 * Updates and removals of one message run one at a time, in call order (loads need not: a reader
 * takes a record being appended for a torn tail and ignores it). So a failed append can be cut off
 * the file again before the next one starts, and no torn record ends up between valid ones, where
 * it would hide every later record.
 */
#include "spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "spool/spool_fs.h"
#include "spool/spool_journal.h"
#include "spool/spool_layout.h"
#include "spool/spool_repair.h"
#include "spool/spool_state.h"

enum op_kind { OP_UPDATE, OP_REMOVE, OP_LOAD, OP_LOAD_QUEUED, OP_PEEK };

struct spool_op {
    struct spool *sp;
    uv_work_t work;
    enum op_kind kind;
    int status;                     /* the result, set on the thread pool */
    struct spool_journal_waiter jw; /* update, removal: in the journal's group commit */
    struct spool_op *next_running;  /* in sp->ops_running (updates and removals) */
    struct spool_op *next_same; /* the next update or removal of this id, waiting for this one */
    spool_update_cb update_cb;
    spool_load_cb load_cb;
    void *arg;
    struct buf data; /* update: the records; load: the body */
    struct buf why;  /* load: the reason of a failure */
    struct spool_loaded loaded;
    char id[SPOOL_ID_MAX + 1];
};

static void op_work(uv_work_t *work);
static void op_done(uv_work_t *work, int status);
static void op_on_remove_journaled(struct spool_journal_waiter *w, int status);

static struct spool_op *op_new(struct spool *sp, enum op_kind kind, const char *id, void *arg)
{
    struct spool_op *op = xcalloc(1, sizeof *op);
    op->sp = sp;
    op->kind = kind;
    op->arg = arg;
    if (strlen(id) <= SPOOL_ID_MAX && spool_fs_id_valid(id))
        strcpy(op->id, id);
    else
        op->status = -EINVAL; /* reported through the callback, like any failure */
    sp->nops++;
    sp->pending++;
    return op;
}

/* Starts op's work; a removal is journaled first. */
static void op_queue(struct spool_op *op)
{
    if (op->kind == OP_REMOVE && op->status == 0) {
        op->jw.done = op_on_remove_journaled;
        spool_journal_append(&op->sp->journal, &op->jw, SPOOL_JOURNAL_REC_REMOVE, op->id, NULL, 0);
        return;
    }
    spool_fs_started(uv_queue_work(op->sp->loop, &op->work, op_work, op_done), "work");
}

/* Queues op, or, when an update or removal of its message is running, links it behind that. */
static void op_start(struct spool_op *op)
{
    struct spool *sp = op->sp;
    if ((op->kind == OP_UPDATE || op->kind == OP_REMOVE) && op->status == 0) {
        for (struct spool_op *r = sp->ops_running; r != NULL; r = r->next_running) {
            if (strcmp(r->id, op->id) == 0) {
                while (r->next_same != NULL)
                    r = r->next_same;
                r->next_same = op;
                return;
            }
        }
        op->next_running = sp->ops_running;
        sp->ops_running = op;
    }
    op_queue(op);
}

/* Takes a finished op out of the running list; the next one of its message takes its place. */
static void op_running_end(struct spool_op *op)
{
    struct spool_op **p = &op->sp->ops_running;
    while (*p != NULL && *p != op)
        p = &(*p)->next_running;
    if (*p == NULL)
        return; /* never ran: failed before it was queued behind anything */
    struct spool_op *next = op->next_same;
    if (next != NULL) {
        next->next_running = op->next_running;
        *p = next;
        op_queue(next);
    } else {
        *p = op->next_running;
    }
}

void spool_rcpt_update(struct spool *sp, const char *id, const struct spool_rcpt_update *updates,
                       size_t n, spool_update_cb cb, void *arg)
{
    struct spool_op *op = op_new(sp, OP_UPDATE, id, arg);
    op->update_cb = cb;
    spool_state_encode(updates, n, &op->data);
    op_start(op);
}

void spool_msg_remove(struct spool *sp, const char *id, spool_update_cb cb, void *arg)
{
    struct spool_op *op = op_new(sp, OP_REMOVE, id, arg);
    op->update_cb = cb;
    op_start(op);
}

static void load_start(struct spool *sp, enum op_kind kind, const char *id, spool_load_cb cb,
                       void *arg)
{
    struct spool_op *op = op_new(sp, kind, id, arg);
    op->load_cb = cb;
    op_start(op);
}

void spool_load(struct spool *sp, const char *id, spool_load_cb cb, void *arg)
{
    load_start(sp, OP_LOAD, id, cb, arg);
}

void spool_load_queued(struct spool *sp, const char *id, spool_load_cb cb, void *arg)
{
    load_start(sp, OP_LOAD_QUEUED, id, cb, arg);
}

void spool_peek(struct spool *sp, const char *id, spool_load_cb cb, void *arg)
{
    load_start(sp, OP_PEEK, id, cb, arg);
}

/* ---- on the thread pool ---- */

/* One write of all records (O_APPEND), no sync: the journal makes them durable (op_done). They go
 * after the end record of the queue file, or into the state file of a message that has one (queued
 * by an earlier version: spool_state.h); no file is created. */
static int update_run(struct spool *sp, const char *id, const struct buf *records)
{
    if (records->len == 0)
        return 0;
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(id, name);
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
    /* The message may have been removed meanwhile (-ENOENT): then no state is wanted. */
    int fd = openat(sp->queue_fd, name, flags);
    if (fd < 0)
        return -errno;
    int state = openat(sp->state_fd, name, flags);
    int state_errno = errno;
    if (state >= 0 || state_errno != ENOENT) {
        close(fd);
        if (state < 0)
            return -state_errno;
        fd = state;
    }
    int rc;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else {
        rc = fd_write_all(fd, records->data, records->len);
        /* Cut a failed append off, so later ones are not hidden behind a torn record (should
         * this fail too, recovery cuts it). */
        if (rc < 0)
            (void)ftruncate(fd, st.st_size);
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The envelope and states of a message nothing updates (see spool_load_queued), repaired as
 * recovery would. */
static int load_queued_run(struct spool *sp, struct spool_op *op)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(op->id, name);
    struct buf ignored = BUF_INIT;
    int corrupt_fd = spool_fs_open_dir(sp->dir, SPOOL_CORRUPT, &ignored);
    buf_free(&ignored);
    int moved = corrupt_fd >= 0 && spool_repair_state_entry(sp->state_fd, name, op->id, corrupt_fd);
    int rc = spool_fs_load(sp->queue_fd, sp->state_fd, op->id, name, &op->loaded, NULL, &op->why);
    if (rc == 0 && op->loaded.state.valid_len < op->loaded.state.fed_len)
        spool_repair_state_cut(sp->queue_fd, sp->state_fd, name, op->id, &op->loaded);
    if (rc == -EBADMSG && corrupt_fd >= 0)
        moved |= spool_repair_quarantine(sp->queue_fd, name, corrupt_fd, op->id, op->why.data) == 0;
    /* The move lasts, so a crash does not bring the bad file back. */
    if (moved)
        (void)fsync(corrupt_fd);
    if (corrupt_fd >= 0)
        close(corrupt_fd);
    return rc;
}

/* Runs once the removal is journaled: the queue file, then the state file, neither synced (the
 * journal removes them again should a crash bring one back). Returns -ENOENT when there was no
 * queue file. */
static int remove_run(struct spool *sp, const char *id)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(id, name);
    int rc = 0;
    if (unlinkat(sp->queue_fd, name, 0) < 0)
        rc = -errno;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (unlinkat(sp->state_fd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    return rc;
}

static void op_work(uv_work_t *work)
{
    struct spool_op *op = container_of(work, struct spool_op, work);
    struct spool *sp = op->sp;
    if (op->status < 0)
        return;
    switch (op->kind) {
    case OP_UPDATE:
        op->status = update_run(sp, op->id, &op->data);
        break;
    case OP_REMOVE:
        op->status = remove_run(sp, op->id);
        break;
    case OP_LOAD:
    case OP_PEEK: {
        char name[SPOOL_NAME_MAX + 1];
        spool_layout_name(op->id, name);
        op->status = spool_fs_load(sp->queue_fd, sp->state_fd, op->id, name, &op->loaded,
                                   op->kind == OP_LOAD ? &op->data : NULL, &op->why);
        break;
    }
    case OP_LOAD_QUEUED:
        op->status = load_queued_run(sp, op);
        break;
    }
}

/* ---- back on the loop ---- */

/* Calls back and frees op. An update or removal lets the next one of its message start only now,
 * once durable, so that the journal holds them in call order. */
static void op_finish(struct spool_op *op)
{
    struct spool *sp = op->sp;
    if (op->kind != OP_UPDATE && op->kind != OP_REMOVE) {
        if (op->status == -EINVAL)
            buf_printf(&op->why, "not a queue id");
        else if (op->why.len == 0 && op->status < 0)
            buf_printf(&op->why, "%s", strerror(-op->status));
        op->load_cb(op->status, op->status == 0 ? &op->loaded.entry : NULL,
                    op->kind == OP_LOAD ? &op->data : NULL, op->status == 0 ? NULL : op->why.data,
                    op->arg);
        if (op->status == 0)
            spool_fs_loaded_free(&op->loaded);
    } else {
        op_running_end(op);
        if (op->update_cb != NULL)
            op->update_cb(op->status, op->arg);
    }
    buf_free(&op->data);
    buf_free(&op->why);
    sp->nops--;
    sp->pending--;
    free(op);
}

/* An update's records are in the state file: now into the journal, and called back once synced. */
static void op_on_update_journaled(struct spool_journal_waiter *w, int status)
{
    struct spool_op *op = container_of(w, struct spool_op, jw);
    if (status < 0)
        op->status = status;
    else
        spool_journal_settle(&op->sp->journal, w->segment); /* its file work was done first */
    op_finish(op);
}

static void op_on_remove_journaled(struct spool_journal_waiter *w, int status)
{
    struct spool_op *op = container_of(w, struct spool_op, jw);
    if (status < 0) {
        op->status = status;
        op_finish(op);
        return;
    }
    spool_fs_started(uv_queue_work(op->sp->loop, &op->work, op_work, op_done), "work");
}

static void op_done(uv_work_t *work, int status)
{
    struct spool_op *op = container_of(work, struct spool_op, work);
    if (status < 0 && op->status == 0)
        op->status = status; /* cancelled: never ran (and so loaded nothing) */
    if (op->kind == OP_REMOVE && op->jw.segment != NULL)
        spool_journal_settle(&op->sp->journal, op->jw.segment);
    if (op->kind == OP_UPDATE && op->status == 0 && op->data.len > 0) {
        op->jw.done = op_on_update_journaled;
        spool_journal_append(&op->sp->journal, &op->jw, SPOOL_JOURNAL_REC_STATE, op->id,
                             op->data.data, op->data.len);
        return;
    }
    op_finish(op);
}
