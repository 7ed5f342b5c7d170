/*
 * Finding committed messages again: spool_recover at start-up (replays the journal, removes what
 * was half-written and moves files that fail validation to corrupt/, cuts torn state records,
 * removes messages with nothing left to do and state files without a message), its first part
 * spool_recover_begin for a daemon that lists the rest later (spool_list.c), the repairs they share
 * (spool_repair.h), and spool_scan and spool_load_body for readers that change nothing. All
 * synchronous: they run before the loop, on the thread pool, or in a command-line tool.
 */
#include "spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/envelope.h"
#include "spool/spool_fs.h"
#include "spool/spool_layout.h"
#include "spool/spool_repair.h"

static int not_dot(const struct dirent *de)
{
    return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

/* The entries of directory fd (dir/sub): their count, or -errno with a reason in err. */
static int dir_list(int fd, const char *dir, const char *sub, struct dirent ***names,
                    struct buf *err)
{
    int n = scandirat(fd, ".", names, not_dot, NULL);
    if (n < 0) {
        int e = errno;
        buf_printf(err, "spool %s/%s: %s", dir, sub, strerror(e));
        return -e;
    }
    return n;
}

/* spool_layout_list of directory fd (dir/sub), with a reason in err on failure. */
static int hashed_list(int fd, const char *dir, const char *sub, char ***names, struct buf *err)
{
    int n = spool_layout_list(fd, names);
    if (n < 0)
        buf_printf(err, "spool %s/%s: %s", dir, sub, strerror(-n));
    return n;
}

static void dir_list_free(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Removes every file of tmp/: messages that were never committed. Returns how many, or -errno. */
static int tmp_clear(struct spool *sp, struct buf *err)
{
    int fd = spool_fs_open_dir(sp->dir, SPOOL_TMP, err);
    if (fd < 0)
        return fd;
    struct dirent **names;
    int n = dir_list(fd, sp->dir, SPOOL_TMP, &names, err);
    int removed = n < 0 ? n : 0;
    for (int i = 0; i < n; i++) {
        if (unlinkat(fd, names[i]->d_name, 0) == 0)
            removed++;
        else
            log_msg(LOG_WARN, "spool.tmp_left", "cannot remove %s/%s/%s: %s", sp->dir, SPOOL_TMP,
                    names[i]->d_name, strerror(errno));
    }
    if (n >= 0)
        dir_list_free(names, n);
    close(fd);
    return removed;
}

int spool_repair_quarantine(int dir_fd, const char *name, int corrupt_fd, const char *to,
                            const char *why)
{
    int rc = renameat(dir_fd, name, corrupt_fd, to) == 0 ? 0 : -errno;
    struct logrec r;
    log_begin(&r, LOG_WARN, "spool.corrupt");
    log_strn(&r, "file", to, strlen(to));
    log_str(&r, "reason", why);
    if (rc == 0)
        log_str(&r, "moved_to", SPOOL_CORRUPT);
    else
        log_str(&r, "move_failed", strerror(-rc));
    log_end(&r);
    return rc;
}

/* What a walk over queue/ does besides calling cb. */
struct walk {
    const char *dir;
    int queue_fd;
    int state_fd;   /* -1: no state/ (a spool from before state files) */
    int corrupt_fd; /* -1: read-only (spool_scan) */
    spool_recover_cb cb;
    void *arg;
    int moved;    /* files moved to corrupt/ */
    int finished; /* messages removed because every recipient was final */
};

void spool_repair_state_cut(int queue_fd, int state_fd, const char *name, const char *id,
                            const struct spool_loaded *l)
{
    const struct spool_state *st = &l->state;
    int fd =
        openat(l->state_in_queue ? queue_fd : state_fd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    int ok =
        fd >= 0 && ftruncate(fd, (off_t)(l->state_at + st->valid_len)) == 0 && fdatasync(fd) == 0;
    log_msg(ok ? LOG_WARN : LOG_ERROR, "spool.state_cut",
            "queue id %s: %llu bytes of a torn state record %s", id,
            (unsigned long long)(st->fed_len - st->valid_len), ok ? "removed" : "left");
    if (fd >= 0)
        close(fd);
}

/* Recovery only: removes a message with nothing left to do, the queue file durably first (see
 * remove_run in spool_ops.c). */
static int finished_remove(const struct walk *w, const char *name, const char *id)
{
    if (unlinkat(w->queue_fd, name, 0) < 0)
        return -errno;
    int rc = spool_layout_leaf_sync(w->queue_fd, name);
    if (rc < 0)
        return rc;
    if (unlinkat(w->state_fd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    log_msg(LOG_INFO, "spool.finished_removed", "queue id %s: every recipient final", id);
    return 0;
}

int spool_repair_state_entry(int state_fd, const char *name, const char *id, int corrupt_fd)
{
    struct stat st;
    if (state_fd < 0 || fstatat(state_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        S_ISREG(st.st_mode))
        return 0;
    char to[SPOOL_ID_MAX + sizeof ".state"];
    snprintf(to, sizeof to, "%s.state", id);
    return spool_repair_quarantine(state_fd, name, corrupt_fd, to,
                                   "state entry is not a regular file: every recipient is tried "
                                   "again") == 0;
}

/* Handles one entry of queue/ (a spool_layout_list name). Returns 1 when cb was called, 0 when
 * not, or -errno. */
static int walk_one(struct walk *w, const char *name, struct buf *err)
{
    struct spool_loaded l;
    struct buf why = BUF_INIT;
    const char *id = spool_layout_id(name);
    char expected[SPOOL_NAME_MAX + 1] = "";
    if (spool_fs_id_valid(id))
        spool_layout_name(id, expected);
    int rc = -EBADMSG;
    if (expected[0] == '\0') {
        buf_printf(&why, "not a queue id");
    } else if (strcmp(name, expected) != 0) {
        buf_printf(&why, "not in the directory of its queue id (%s)", expected);
    } else {
        if (w->corrupt_fd >= 0)
            w->moved += spool_repair_state_entry(w->state_fd, name, id, w->corrupt_fd);
        rc = spool_fs_load(w->queue_fd, w->state_fd, id, name, &l, NULL, &why);
    }
    if (rc == 0) {
        int recovering = w->corrupt_fd >= 0;
        if (recovering && l.state.valid_len < l.state.fed_len)
            spool_repair_state_cut(w->queue_fd, w->state_fd, name, id, &l);
        if (recovering && l.dec.env.nrcpts > 0 && spool_state_all_final(&l.state)) {
            rc = finished_remove(w, name, id);
            if (rc < 0)
                buf_printf(err, "spool %s/%s/%s: cannot remove: %s", w->dir, SPOOL_QUEUE, name,
                           strerror(-rc));
            else
                w->finished++;
        } else {
            w->cb(&l.entry, w->arg);
            rc = 1;
        }
        spool_fs_loaded_free(&l);
    } else if (rc == -EBADMSG) {
        if (w->corrupt_fd >= 0 &&
            spool_repair_quarantine(w->queue_fd, name, w->corrupt_fd, id, why.data) == 0)
            w->moved++;
        rc = 0;
    } else if (rc == -ENOENT) { /* delivered and removed since the listing */
        rc = 0;
    } else {
        buf_printf(err, "spool %s/%.*s", w->dir, (int)why.len, why.data);
    }
    buf_free(&why);
    return rc;
}

/* Calls cb for each whole, valid file of queue/ in id (so time) order, with its recipient states.
 * When recovering (corrupt_fd >= 0), files that fail validation go to corrupt/ and messages whose
 * recipients are all final are removed; otherwise both are skipped. Returns the count or -errno. */
static int queue_walk(struct walk *w, struct buf *err)
{
    char **names;
    int n = hashed_list(w->queue_fd, w->dir, SPOOL_QUEUE, &names, err);
    if (n < 0)
        return n;
    int count = 0;
    for (int i = 0; i < n && count >= 0; i++) {
        int rc = walk_one(w, names[i], err);
        count = rc < 0 ? rc : count + rc;
    }
    spool_layout_list_free(names, n);
    /* Make the moves last, so a crash does not bring a bad file back at the next start. */
    if (w->moved > 0 && syncfs(w->corrupt_fd) < 0 && count >= 0) {
        int e = errno;
        buf_printf(err, "spool %s: sync after moving corrupt files: %s", w->dir, strerror(e));
        count = -e;
    }
    return count;
}

/* Removes state files whose message is gone (removed between the two unlinks by a crash, or
 * quarantined). Returns how many, or -errno. */
static int state_orphans_clear(struct spool *sp, struct buf *err)
{
    char **names;
    int n = hashed_list(sp->state_fd, sp->dir, SPOOL_STATE, &names, err);
    if (n < 0)
        return n;
    int removed = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i];
        if (faccessat(sp->queue_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
            if (unlinkat(sp->state_fd, name, 0) == 0)
                removed++;
            else
                log_msg(LOG_WARN, "spool.state_left", "cannot remove %s/%s/%s: %s", sp->dir,
                        SPOOL_STATE, name, strerror(errno));
        }
    }
    spool_layout_list_free(names, n);
    return removed;
}

/* Brings queue/ and state/ back to what the journal says (spool_replay.c), first of all. */
static int journal_replay(struct spool *sp, struct buf *err)
{
    int tmp_fd = spool_fs_open_dir(sp->dir, SPOOL_TMP, err);
    if (tmp_fd < 0)
        return tmp_fd;
    int rc = spool_journal_replay(&sp->journal, sp->queue_fd, sp->state_fd, tmp_fd, err);
    close(tmp_fd);
    return rc;
}

int spool_recover_begin(struct spool *sp, struct buf *err)
{
    int replayed = journal_replay(sp, err);
    if (replayed < 0)
        return replayed;
    int removed = tmp_clear(sp, err);
    if (removed < 0)
        return removed;
    if (removed > 0)
        log_msg(LOG_INFO, "spool.tmp_removed", "%d half-written messages removed", removed);
    return 0;
}

int spool_recover(struct spool *sp, spool_recover_cb cb, void *arg, struct buf *err)
{
    int begun = spool_recover_begin(sp, err);
    if (begun < 0)
        return begun;
    int corrupt_fd = spool_fs_open_dir(sp->dir, SPOOL_CORRUPT, err);
    if (corrupt_fd < 0)
        return corrupt_fd;
    struct walk w = {sp->dir, sp->queue_fd, sp->state_fd, corrupt_fd, cb, arg, 0, 0};
    int count = queue_walk(&w, err);
    close(corrupt_fd);
    if (w.finished > 0)
        log_msg(LOG_INFO, "spool.finished", "%d finished messages removed", w.finished);
    int orphans = count < 0 ? 0 : state_orphans_clear(sp, err);
    if (orphans < 0)
        return orphans;
    if (orphans > 0)
        log_msg(LOG_INFO, "spool.state_orphans", "%d state files without a message removed",
                orphans);
    return count;
}

int spool_scan(const char *dir, spool_recover_cb cb, void *arg, struct buf *err)
{
    int queue_fd = spool_fs_open_dir(dir, SPOOL_QUEUE, err);
    if (queue_fd < 0)
        return queue_fd;
    struct buf ignored = BUF_INIT;
    int state_fd = spool_fs_open_dir(dir, SPOOL_STATE, &ignored); /* absent in an old spool */
    buf_free(&ignored);
    struct walk w = {dir, queue_fd, state_fd < 0 ? -1 : state_fd, -1, cb, arg, 0, 0};
    int count = queue_walk(&w, err);
    if (state_fd >= 0)
        close(state_fd);
    close(queue_fd);
    return count;
}

int spool_load_body(const char *dir, const char *id, struct buf *body, struct buf *err)
{
    if (!spool_fs_id_valid(id)) {
        buf_printf(err, "not a queue id: %s", id);
        return -EINVAL;
    }
    int queue_fd = spool_fs_open_dir(dir, SPOOL_QUEUE, err);
    if (queue_fd < 0)
        return queue_fd;
    size_t had = body->len;
    struct envelope_decoder dec;
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(id, name);
    struct buf why = BUF_INIT;
    int rc = spool_fs_read(queue_fd, name, &dec, body, &why);
    close(queue_fd);
    if (rc == 0) {
        envelope_decoder_free(&dec);
    } else {
        body->len = had; /* nothing of a message that failed its checks */
        buf_printf(err, "spool %s/%s/%.*s", dir, SPOOL_QUEUE, (int)why.len, why.data);
    }
    buf_free(&why);
    return rc;
}
