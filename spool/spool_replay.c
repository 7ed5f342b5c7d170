/*
 * Replaying the journal at start (spool_journal_replay, declared in spool_journal.h): the segments
 * an earlier run left hold every record it made durable since its last checkpoint, while the files
 * those records stand for were written without a sync of their own and a crash may have lost some
 * of their bytes. Records are applied in order, oldest segment first:
 *
 *   M  queue/<leaf>/<id> must start with the record's bytes: rewritten (through tmp/) when it is
 *      missing or differs (torn); recipient states after them are kept (any that the rewrite loses
 *      come back with the S records, which all follow the M record in the journal)
 *   S  the records are appended where spool_rcpt_update appends them (state/<leaf>/<id> when there
 *      is one, else after the queue file's end record), after cutting a torn tail, unless the
 *      message is gone; a record already there is appended again, which changes nothing (the last
 *      record of a recipient wins, and the order is kept)
 *   X  queue/<leaf>/<id> and state/<leaf>/<id> are removed
 *
 * A message's M and S records followed by its X are skipped, so that a message removed later is
 * not first written again. A segment ends at its first torn or damaged record: nothing after it
 * was acknowledged (the writer syncs in order and opens a new segment after a failure). Then
 * everything is synced once and the segments are deleted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "lib/xalloc.h"
#include "spool/spool_fs.h"
#include "spool/spool_journal.h"
#include "spool/spool_layout.h"
#include "spool/spool_state.h"

struct replay {
    int queue_fd, state_fd, tmp_fd;
    struct strmap removals; /* queue id -> X records still ahead (as a pointer-sized count) */
    int repaired;           /* queue files rewritten */
};

/* Reads file name of dirfd whole into out. Returns 0 or -errno. */
static int file_read(int dirfd, const char *name, struct buf *out)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int rc = fd_read_all(fd, out);
    close(fd);
    return rc;
}

static int replay_msg(struct replay *r, const struct spool_journal_rec_view *rec)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(rec->id, name);
    struct buf have = BUF_INIT;
    int same = file_read(r->queue_fd, name, &have) == 0 && have.len >= rec->len &&
               memcmp(have.data, rec->data, rec->len) == 0;
    buf_free(&have);
    if (same)
        return 0;
    int fd =
        openat(r->tmp_fd, rec->id, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int rc = fd_write_all(fd, rec->data, rec->len);
    if (rc == 0)
        spool_fs_mark_unappended(fd, rec->id); /* its states, if any, are appended next */
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        rc = spool_layout_leaf_make(r->queue_fd, name);
    if (rc == 0 && renameat(r->tmp_fd, rec->id, r->queue_fd, name) < 0)
        rc = -errno;
    if (rc < 0)
        return rc;
    r->repaired++;
    struct logrec lr;
    log_begin(&lr, LOG_WARN, "spool.journal_repaired");
    log_str(&lr, "queue_id", rec->id);
    log_str(&lr, "msg", "queue file missing or torn: written again from the journal");
    log_end(&lr);
    return 0;
}

/* Cuts what the states at offset at of fd hold past their whole records (a torn tail), and
 * appends rec's records. Returns 0 or -errno. */
static int state_append(int fd, uint64_t at, const struct buf *have,
                        const struct spool_journal_rec_view *rec)
{
    struct spool_state st;
    spool_state_init(&st, 0); /* counts whole records only */
    spool_state_feed(&st, have->data, have->len);
    off_t valid = (off_t)(at + st.valid_len);
    spool_state_free(&st);
    if (ftruncate(fd, valid) < 0 || lseek(fd, valid, SEEK_SET) < 0)
        return -errno;
    return fd_write_all(fd, rec->data, rec->len);
}

static int replay_state(struct replay *r, const struct spool_journal_rec_view *rec)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(rec->id, name);
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
    if (faccessat(r->queue_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno; /* removed later: no state wanted */
    struct buf have = BUF_INIT;
    uint64_t at = 0;
    int rc = 0;
    int fd = openat(r->state_fd, name, flags);
    if (fd >= 0) { /* a message of an earlier version: its state file holds its states */
        rc = fd_read_all(fd, &have);
    } else if (errno != ENOENT) {
        rc = -errno;
    } else {
        /* Only after the end record of a whole, valid message: one that is not goes to corrupt/
         * at recovery as it is, with no state. */
        struct envelope_decoder dec;
        struct buf why = BUF_INIT;
        rc = spool_fs_read_tail(r->queue_fd, name, &dec, NULL, &have, &at, &why);
        buf_free(&why);
        if (rc == 0)
            envelope_decoder_free(&dec);
        if (rc == 0 && (fd = openat(r->queue_fd, name, flags)) < 0)
            rc = -errno;
        if (rc == -EBADMSG || rc == -ENOENT) {
            buf_free(&have);
            return 0;
        }
    }
    if (rc == 0)
        rc = state_append(fd, at, &have, rec);
    buf_free(&have);
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int replay_remove(struct replay *r, const char *id)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(id, name);
    if (unlinkat(r->queue_fd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    if (unlinkat(r->state_fd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* Past the segment's header record: 1, or 0 when it has none (torn at its creation: none of it
 * was acknowledged). */
static int segment_begin(const struct buf *seg, size_t *pos)
{
    struct spool_journal_rec_view rec;
    *pos = 0;
    return spool_journal_decode(seg->data, seg->len, pos, &rec) &&
           rec.type == SPOOL_JOURNAL_REC_HEADER && rec.len == strlen(SPOOL_JOURNAL_MAGIC) &&
           memcmp(rec.data, SPOOL_JOURNAL_MAGIC, rec.len) == 0;
}

/* Counts each id's X records in r->removals. */
static void removals_count(struct replay *r, const struct buf *seg)
{
    struct spool_journal_rec_view rec;
    size_t pos;
    if (!segment_begin(seg, &pos))
        return;
    while (spool_journal_decode(seg->data, seg->len, &pos, &rec))
        if (rec.type == SPOOL_JOURNAL_REC_REMOVE) {
            uintptr_t n = (uintptr_t)strmap_get(&r->removals, rec.id);
            strmap_put(&r->removals, rec.id, (void *)(n + 1));
        }
}

/* 1 when an X record of id lies ahead; an X record passed is taken off the count. */
static int removal_ahead(struct replay *r, const struct spool_journal_rec_view *rec)
{
    uintptr_t n = (uintptr_t)strmap_get(&r->removals, rec->id);
    if (rec->type == SPOOL_JOURNAL_REC_REMOVE && n > 1)
        strmap_put(&r->removals, rec->id, (void *)(n - 1));
    else if (rec->type == SPOOL_JOURNAL_REC_REMOVE && n == 1)
        strmap_del(&r->removals, rec->id);
    return rec->type != SPOOL_JOURNAL_REC_REMOVE && n > 0;
}

/* Applies one segment's records. Returns how many, or -errno with a reason in err. */
static int replay_segment(struct replay *r, const struct buf *seg, const char *name,
                          struct buf *err)
{
    struct spool_journal_rec_view rec;
    size_t pos;
    if (!segment_begin(seg, &pos))
        return 0;
    int count = 0;
    while (spool_journal_decode(seg->data, seg->len, &pos, &rec)) {
        int rc = 0;
        if (!spool_fs_id_valid(rec.id))
            continue; /* intact but not ours to act on: a newer format's record */
        if (removal_ahead(r, &rec))
            ; /* removed later: nothing to bring back */
        else if (rec.type == SPOOL_JOURNAL_REC_MSG)
            rc = replay_msg(r, &rec);
        else if (rec.type == SPOOL_JOURNAL_REC_STATE)
            rc = replay_state(r, &rec);
        else if (rec.type == SPOOL_JOURNAL_REC_REMOVE)
            rc = replay_remove(r, rec.id);
        if (rc < 0) {
            buf_printf(err, "spool %s/%s: queue id %s: %s", SPOOL_JOURNAL, name, rec.id,
                       strerror(-rc));
            return rc;
        }
        count++;
    }
    size_t tail = seg->len;
    while (tail > pos && seg->data[tail - 1] == '\0')
        tail--; /* the zeros a segment is extended with ahead of its records */
    if (tail > pos)
        log_msg(LOG_INFO, "spool.journal_tail", "%s/%s: %zu bytes of a batch never acknowledged",
                SPOOL_JOURNAL, name, tail - pos);
    return count;
}

static int name_compare(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_segment(const struct dirent *de)
{
    return strlen(de->d_name) == 16 && strspn(de->d_name, "0123456789abcdef") == 16;
}

int spool_journal_replay(struct spool_journal *j, int queue_fd, int state_fd, int tmp_fd,
                         struct buf *err)
{
    if (!j->replay_pending)
        return 0;
    struct dirent **names;
    int n = scandirat(j->dir_fd, ".", &names, is_segment, name_compare);
    if (n < 0) {
        buf_printf(err, "spool %s: %s", SPOOL_JOURNAL, strerror(errno));
        return -errno;
    }
    struct replay r = {queue_fd, state_fd, tmp_fd, STRMAP_INIT, 0};
    struct buf *segs = xcalloc((size_t)n + 1, sizeof *segs);
    int count = 0;
    for (int i = 0; i < n && count >= 0; i++) {
        count = file_read(j->dir_fd, names[i]->d_name, &segs[i]);
        if (count < 0)
            buf_printf(err, "spool %s/%s: %s", SPOOL_JOURNAL, names[i]->d_name, strerror(-count));
        else
            removals_count(&r, &segs[i]);
    }
    for (int i = 0; i < n && count >= 0; i++) {
        int rc = replay_segment(&r, &segs[i], names[i]->d_name, err);
        count = rc < 0 ? rc : count + rc;
    }
    for (int i = 0; i < n; i++)
        buf_free(&segs[i]);
    free(segs);
    strmap_free(&r.removals);
    /* What was replayed is durable before the journal that holds it goes. */
    if (count >= 0 && syncfs(j->spool_fd) < 0) {
        count = -errno;
        buf_printf(err, "spool: sync after replaying %s/: %s", SPOOL_JOURNAL, strerror(errno));
    }
    /* Oldest first, each removal durable before the next: a younger segment alone replays
     * harmlessly, an older one alone could bring back a message that a younger one removed. */
    for (int i = 0; i < n; i++) {
        if (count >= 0 && (unlinkat(j->dir_fd, names[i]->d_name, 0) < 0 || fsync(j->dir_fd) < 0)) {
            count = -errno;
            buf_printf(err, "spool %s/%s: %s", SPOOL_JOURNAL, names[i]->d_name, strerror(errno));
        }
        free(names[i]);
    }
    free(names);
    if (count < 0)
        return count;
    j->replay_pending = 0;
    if (count > 0)
        log_msg(LOG_INFO, "spool.journal_replayed",
                "%d journal records replayed, %d queue files written again", count, r.repaired);
    return count;
}
