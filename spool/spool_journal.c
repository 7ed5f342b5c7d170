#include "spool/spool_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "spool/envelope.h"
#include "spool/spool_fs.h"

#define SEGMENT_NAME_LEN 16 /* hexadecimal digits of the sequence number */
/* A segment is extended with zeros this much at a time ahead of its records, which then overwrite
 * them: a sync that changes neither the file's size nor its blocks is cheaper (bench/sync,
 * journal0), and a reader stops at the first zero length. */
#define ZERO_CHUNK (1024 * 1024)

struct spool_journal_segment {
    struct spool_journal_segment *next; /* the next younger one */
    uint64_t seq;
    int fd;           /* -1 until the first batch created the file */
    uint64_t size;    /* bytes of records known durable: the next batch is written there */
    uint64_t filled;  /* bytes of the file, records and zeros (on the thread pool only) */
    size_t unsettled; /* durable records whose file work is not done */
    int broken;       /* a write or sync failed: nothing more goes here */
    int kept;         /* its checkpoint failed: it and every younger one stay for replay */
};

/* One batch: written and synced on the thread pool while the next one gathers. */
struct spool_journal_batch {
    uv_work_t work;
    struct spool_journal *j;
    struct spool_journal_segment *segment;
    int create; /* segment's file is made first */
    struct buf data;
    struct spool_journal_waiter *waiters;
    size_t n;
    int status;
};

static void batch_start(struct spool_journal *j);
static void checkpoint_maybe(struct spool_journal *j);

static void segment_name(uint64_t seq, char out[SEGMENT_NAME_LEN + 1])
{
    snprintf(out, SEGMENT_NAME_LEN + 1, "%016" PRIx64, seq);
}

/* The sequence number of a segment's name, or 0 when name is not one (0 is never used). */
static uint64_t segment_seq(const char *name)
{
    if (strlen(name) != SEGMENT_NAME_LEN || strspn(name, "0123456789abcdef") != SEGMENT_NAME_LEN)
        return 0;
    return strtoull(name, NULL, 16);
}

/* ---- records ---- */

void spool_journal_encode(struct buf *out, enum spool_journal_rec type, const char *id,
                          const void *data, size_t len)
{
    size_t id_len = id != NULL ? strlen(id) : 0;
    size_t payload = 2 + id_len + len;
    char *rec = buf_reserve(out, 4 + payload + 4);
    envelope_put_be32(rec, (uint32_t)payload);
    rec[4] = (char)type;
    rec[5] = (char)id_len;
    if (id_len > 0)
        memcpy(rec + 6, id, id_len);
    if (len > 0)
        memcpy(rec + 6 + id_len, data, len);
    envelope_put_be32(rec + 4 + payload, envelope_crc32(0, rec, 4 + payload));
    out->len += 4 + payload + 4;
}

int spool_journal_decode(const char *p, size_t size, size_t *pos,
                         struct spool_journal_rec_view *rec)
{
    size_t at = *pos;
    if (size - at < 4 + 2 + 4)
        return 0;
    uint32_t payload = envelope_get_be32(p + at);
    if (payload < 2 || payload > SPOOL_JOURNAL_REC_MAX || size - at - 8 < payload)
        return 0;
    const char *r = p + at;
    if (envelope_get_be32(r + 4 + payload) != envelope_crc32(0, r, 4 + payload))
        return 0;
    size_t id_len = (unsigned char)r[5];
    if (id_len > SPOOL_ID_MAX || id_len > payload - 2)
        return 0;
    rec->type = (enum spool_journal_rec)(unsigned char)r[4];
    memcpy(rec->id, r + 6, id_len);
    rec->id[id_len] = '\0';
    rec->data = r + 6 + id_len;
    rec->len = payload - 2 - id_len;
    *pos = at + 4 + payload + 4;
    return 1;
}

/* ---- open and close ---- */

int spool_journal_open(struct spool_journal *j, uv_loop_t *loop, int spool_fd, const char *dir,
                       size_t *pending, struct buf *err)
{
    memset(j, 0, sizeof *j);
    j->loop = loop;
    j->spool_fd = spool_fd;
    j->pending = pending;
    j->tail = &j->waiters;
    j->segment_max = SPOOL_JOURNAL_SEGMENT_MAX;
    j->next_seq = 1;
    j->dir_fd = spool_fs_open_dir(dir, SPOOL_JOURNAL, err);
    if (j->dir_fd < 0)
        return j->dir_fd;
    int fd = dup(j->dir_fd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        buf_printf(err, "spool %s/%s: %s", dir, SPOOL_JOURNAL, strerror(e));
        if (fd >= 0)
            close(fd);
        close(j->dir_fd);
        return -e;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq = segment_seq(de->d_name);
        if (seq == 0)
            continue;
        j->replay_pending = 1;
        if (seq >= j->next_seq)
            j->next_seq = seq + 1;
    }
    closedir(d);
    return 0;
}

void spool_journal_stats(const struct spool_journal *j, struct spool_journal_stats *out)
{
    *out = (struct spool_journal_stats){j->syncs, j->records, j->nwaiting,
                                        j->current != NULL ? j->current->seq : 0, j->synced};
}

int spool_journal_busy(const struct spool_journal *j)
{
    return j->batch != NULL || j->checkpointing != NULL;
}

static void segment_free(struct spool_journal_segment *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

void spool_journal_close(struct spool_journal *j)
{
    int settled = !spool_journal_busy(j) && j->waiters == NULL && !j->replay_pending;
    for (struct spool_journal_segment *s = j->oldest; s != NULL; s = s->next)
        settled = settled && s->unsettled == 0;
    /* A clean stop: the files are made durable and the journal emptied, so the next start has
     * nothing to replay. Should any step fail, the segments stay and are replayed then. */
    int clean = settled && j->oldest != NULL && syncfs(j->spool_fd) == 0;
    while (j->oldest != NULL) {
        struct spool_journal_segment *s = j->oldest;
        char name[SEGMENT_NAME_LEN + 1];
        segment_name(s->seq, name);
        /* Oldest first, each removal durable before the next (see checkpoint_work). */
        if (clean && s->fd >= 0)
            clean = unlinkat(j->dir_fd, name, 0) == 0 && fsync(j->dir_fd) == 0;
        j->oldest = s->next;
        segment_free(s);
    }
    close(j->dir_fd);
    buf_free(&j->waiting);
}

/* ---- batches ---- */

/* pwrite of all of data at offset: 0 or -errno (-EIO for a write of nothing). */
static int pwrite_all(int fd, const void *data, size_t len, uint64_t offset)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n, len -= (size_t)n, offset += (uint64_t)n;
    }
    return 0;
}

void spool_journal_append(struct spool_journal *j, struct spool_journal_waiter *w,
                          enum spool_journal_rec type, const char *id, const void *data, size_t len)
{
    spool_journal_encode(&j->waiting, type, id, data, len);
    w->next = NULL;
    w->segment = NULL;
    *j->tail = w;
    j->tail = &w->next;
    j->nwaiting++;
    if (j->batch == NULL && !j->held)
        batch_start(j);
}

void spool_journal_hold(struct spool_journal *j, int hold)
{
    j->held = hold;
    if (!hold && j->batch == NULL && j->waiters != NULL)
        batch_start(j);
}

static void batch_work(uv_work_t *work)
{
    struct spool_journal_batch *b = container_of(work, struct spool_journal_batch, work);
    struct spool_journal_segment *s = b->segment;
    if (b->create) {
        char name[SEGMENT_NAME_LEN + 1];
        segment_name(s->seq, name);
        s->fd = openat(b->j->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (s->fd < 0) {
            b->status = -errno;
            return;
        }
    }
    static const char zeros[64 * 1024];
    while (b->status == 0 && s->size + b->data.len > s->filled) {
        for (size_t k = 0; b->status == 0 && k < ZERO_CHUNK; k += sizeof zeros)
            b->status = pwrite_all(s->fd, zeros, sizeof zeros, s->filled + k);
        s->filled += ZERO_CHUNK;
    }
    if (b->status == 0)
        b->status = pwrite_all(s->fd, b->data.data, b->data.len, s->size);
    if (b->status == 0 && fdatasync(s->fd) < 0)
        b->status = -errno;
    /* A new segment's name must be durable too before its records count. */
    if (b->status == 0 && b->create && fsync(b->j->dir_fd) < 0)
        b->status = -errno;
    for (struct spool_journal_waiter *w = b->waiters; b->status == 0 && w != NULL; w = w->next)
        if (w->synced != NULL)
            w->synced(w);
}

static void batch_done(uv_work_t *work, int status)
{
    struct spool_journal_batch *b = container_of(work, struct spool_journal_batch, work);
    struct spool_journal *j = b->j;
    struct spool_journal_segment *s = b->segment;
    if (b->status == 0 && status < 0)
        b->status = status;
    j->batch = NULL;
    if (b->status == 0) {
        j->syncs++;
        j->records += b->n;
        s->size += b->data.len;
        s->unsettled += b->n;
        j->synced = s->size;
    } else {
        log_msg(LOG_ERROR, "spool.journal_failed",
                "spool %s/%016" PRIx64 ": %zu records not made durable: %s", SPOOL_JOURNAL, s->seq,
                b->n, strerror(-b->status));
        s->broken = 1; /* what follows a torn record would not be read again: start a new one */
    }
    struct spool_journal_waiter *w = b->waiters;
    int rc = b->status;
    buf_free(&b->data);
    free(b);
    if (j->waiters != NULL && !j->held)
        batch_start(j); /* gathered while this one was synced */
    while (w != NULL) {
        struct spool_journal_waiter *next = w->next;
        w->segment = rc == 0 ? s : NULL;
        w->done(w, rc);
        w = next;
    }
    checkpoint_maybe(j);
}

/* The segment the next batch goes to: a new one when there is none yet, or the current one is
 * full, broken, or could not be made. */
static struct spool_journal_segment *segment_for_batch(struct spool_journal *j, int *create)
{
    struct spool_journal_segment *s = j->current;
    *create = s == NULL || s->fd < 0 || s->broken || s->size >= j->segment_max;
    if (!*create)
        return s;
    s = xcalloc(1, sizeof *s);
    s->seq = j->next_seq++;
    s->fd = -1;
    struct spool_journal_segment **p = &j->oldest;
    while (*p != NULL)
        p = &(*p)->next;
    *p = s;
    j->current = s;
    j->synced = 0;
    return s;
}

static void batch_start(struct spool_journal *j)
{
    struct spool_journal_batch *b = xcalloc(1, sizeof *b);
    b->j = j;
    b->segment = segment_for_batch(j, &b->create);
    if (b->create) {
        spool_journal_encode(&b->data, SPOOL_JOURNAL_REC_HEADER, NULL, SPOOL_JOURNAL_MAGIC,
                             strlen(SPOOL_JOURNAL_MAGIC));
        buf_append(&b->data, j->waiting.data, j->waiting.len);
        buf_reset(&j->waiting);
    } else {
        b->data = j->waiting; /* taken whole: the next batch gathers in a new buffer */
        j->waiting = (struct buf)BUF_INIT;
    }
    b->waiters = j->waiters;
    b->n = j->nwaiting;
    j->nwaiting = 0;
    j->waiters = NULL;
    j->tail = &j->waiters;
    j->batch = b;
    spool_fs_started(uv_queue_work(j->loop, &b->work, batch_work, batch_done), "work");
}

/* ---- checkpoints ---- */

void spool_journal_settle(struct spool_journal *j, struct spool_journal_segment *segment)
{
    segment->unsettled--;
    checkpoint_maybe(j);
}

static void checkpoint_work(uv_work_t *work)
{
    struct spool_journal *j = container_of(work, struct spool_journal, checkpoint);
    struct spool_journal_segment *s = j->checkpointing;
    char name[SEGMENT_NAME_LEN + 1];
    segment_name(s->seq, name);
    /* The files the segment's records stand for are durable now; then the segment goes, and its
     * removal is made durable before a younger one can go (replay reads them in order). */
    int rc = 0;
    if (syncfs(j->spool_fd) < 0 ||
        (s->fd >= 0 && unlinkat(j->dir_fd, name, 0) < 0 && errno != ENOENT) || fsync(j->dir_fd) < 0)
        rc = -errno;
    j->checkpoint_status = rc;
}

static void checkpoint_done(uv_work_t *work, int status)
{
    struct spool_journal *j = container_of(work, struct spool_journal, checkpoint);
    struct spool_journal_segment *s = j->checkpointing;
    j->checkpointing = NULL;
    (*j->pending)--;
    int rc = j->checkpoint_status < 0 ? j->checkpoint_status : status;
    if (rc < 0) {
        log_msg(LOG_ERROR, "spool.checkpoint_failed",
                "spool %s/%016" PRIx64 ": its files not made durable (%s): it stays, with every "
                "younger segment, until the next start replays them",
                SPOOL_JOURNAL, s->seq, strerror(-rc));
        s->kept = 1;
        return;
    }
    j->oldest = s->next;
    segment_free(s);
    checkpoint_maybe(j);
}

/* Starts the checkpoint of the oldest segment once it is closed and settled. */
static void checkpoint_maybe(struct spool_journal *j)
{
    while (j->oldest != NULL && j->oldest != j->current && j->oldest->fd < 0) {
        struct spool_journal_segment *never = j->oldest; /* its creation failed: nothing to do */
        j->oldest = never->next;
        segment_free(never);
    }
    struct spool_journal_segment *s = j->oldest;
    if (j->checkpointing != NULL || j->replay_pending || s == NULL || s == j->current ||
        s->unsettled > 0 || s->kept)
        return;
    j->checkpointing = s;
    (*j->pending)++;
    spool_fs_started(uv_queue_work(j->loop, &j->checkpoint, checkpoint_work, checkpoint_done),
                     "work");
}
