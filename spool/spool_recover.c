/*
 * Finding committed messages again: spool_recover at start-up (removes what was half-written and
 * moves files that fail validation to corrupt/), spool_scan and spool_load_body for readers that
 * change nothing. All synchronous: they run before the loop or in a command-line tool.
 */
#include "spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/envelope.h"
#include "spool/spool_fs.h"

static int not_dot(const struct dirent *de)
{
    return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

/* Removes every file of tmp/: messages that were never committed. Returns how many, or -errno. */
static int tmp_clear(struct spool *sp, struct buf *err)
{
    int fd = spool_fs_open_dir(sp->dir, SPOOL_TMP, err);
    if (fd < 0)
        return fd;
    struct dirent **names;
    int n = scandirat(fd, ".", &names, not_dot, NULL);
    if (n < 0) {
        int e = errno;
        buf_printf(err, "spool %s/%s: %s", sp->dir, SPOOL_TMP, strerror(e));
        close(fd);
        return -e;
    }
    int removed = 0;
    for (int i = 0; i < n; i++) {
        if (unlinkat(fd, names[i]->d_name, 0) == 0)
            removed++;
        else
            log_msg(LOG_WARN, "spool.tmp_left", "cannot remove %s/%s/%s: %s", sp->dir, SPOOL_TMP,
                    names[i]->d_name, strerror(errno));
        free(names[i]);
    }
    free(names);
    close(fd);
    return removed;
}

/* Moves a queue file that failed validation to corrupt/, where a person can look at it. */
static int quarantine(int queue_fd, int corrupt_fd, const char *name, const char *why)
{
    int rc = renameat(queue_fd, name, corrupt_fd, name) == 0 ? 0 : -errno;
    struct logrec r;
    log_begin(&r, LOG_WARN, "spool.corrupt");
    log_strn(&r, "file", name, strlen(name));
    log_str(&r, "reason", why);
    if (rc == 0)
        log_str(&r, "moved_to", SPOOL_CORRUPT);
    else
        log_str(&r, "move_failed", strerror(-rc));
    log_end(&r);
    return rc;
}

/* Calls cb for each whole, valid file of queue/ in id (so time) order. Files that fail validation
 * go to corrupt/ when corrupt_fd >= 0, and are skipped otherwise. Returns the count or -errno. */
static int queue_walk(const char *dir, int queue_fd, int corrupt_fd, spool_recover_cb cb, void *arg,
                      struct buf *err)
{
    struct dirent **names;
    int n = scandirat(queue_fd, ".", &names, not_dot, alphasort);
    if (n < 0) {
        int e = errno;
        buf_printf(err, "spool %s/%s: %s", dir, SPOOL_QUEUE, strerror(e));
        return -e;
    }
    int count = 0, moved = 0;
    for (int i = 0; i < n && count >= 0; i++) {
        const char *name = names[i]->d_name;
        struct envelope_decoder dec;
        struct buf why = BUF_INIT;
        int rc = -EBADMSG;
        if (!spool_fs_id_valid(name))
            buf_printf(&why, "not a queue id");
        else
            rc = spool_fs_read(queue_fd, name, &dec, NULL, &why);
        if (rc == 0) {
            struct spool_entry entry = {name, &dec.env, dec.body_size};
            cb(&entry, arg);
            envelope_decoder_free(&dec);
            count++;
        } else if (rc == -EBADMSG) {
            if (corrupt_fd >= 0 && quarantine(queue_fd, corrupt_fd, name, why.data) == 0)
                moved++;
        } else if (rc != -ENOENT) { /* ENOENT: delivered and removed since the listing */
            buf_printf(err, "spool %s/%s/%.*s", dir, SPOOL_QUEUE, (int)why.len, why.data);
            count = rc;
        }
        buf_free(&why);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    /* Make the moves last, so a crash does not bring a bad file back at the next start. */
    if (moved > 0 && (fsync(corrupt_fd) < 0 || fsync(queue_fd) < 0) && count >= 0) {
        int e = errno;
        buf_printf(err, "spool %s: sync after moving corrupt files: %s", dir, strerror(e));
        count = -e;
    }
    return count;
}

int spool_recover(struct spool *sp, spool_recover_cb cb, void *arg, struct buf *err)
{
    int removed = tmp_clear(sp, err);
    if (removed < 0)
        return removed;
    if (removed > 0)
        log_msg(LOG_INFO, "spool.tmp_removed", "%d half-written messages removed", removed);
    int corrupt_fd = spool_fs_open_dir(sp->dir, SPOOL_CORRUPT, err);
    if (corrupt_fd < 0)
        return corrupt_fd;
    int count = queue_walk(sp->dir, sp->queue_fd, corrupt_fd, cb, arg, err);
    close(corrupt_fd);
    return count;
}

int spool_scan(const char *dir, spool_recover_cb cb, void *arg, struct buf *err)
{
    int queue_fd = spool_fs_open_dir(dir, SPOOL_QUEUE, err);
    if (queue_fd < 0)
        return queue_fd;
    int count = queue_walk(dir, queue_fd, -1, cb, arg, err);
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
    struct buf why = BUF_INIT;
    int rc = spool_fs_read(queue_fd, id, &dec, body, &why);
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
