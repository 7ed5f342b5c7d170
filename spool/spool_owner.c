/*
 * The spool handed to the daemon's user without following a link (see spool_owner.h).
 */
#include "spool/spool_owner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool_fs.h"

struct hand_over {
    uid_t uid;
    gid_t gid;
    int skipped; /* entries left as they are */
    struct buf *err;
};

static void leave(struct hand_over *h, const char *dir, const char *name, const char *why)
{
    log_msg(LOG_WARN, "spool.not_handed_over", "%s/%s: %s; left as it is", dir, name, why);
    h->skipped++;
}

/* Gives the inode behind fd (any descriptor, O_PATH included) to the user. */
static int give(struct hand_over *h, int fd, const struct stat *st, const char *path)
{
    if (st->st_uid == h->uid && st->st_gid == h->gid)
        return 0;
    if (fchownat(fd, "", h->uid, h->gid, AT_EMPTY_PATH) == 0)
        return 0;
    int e = errno;
    buf_printf(h->err, "spool %s: cannot hand it to uid %u: %s", path, (unsigned)h->uid,
               strerror(e));
    return -e;
}

static int walk_dir(struct hand_over *h, int dirfd, const char *path, int depth);

/* One entry of the directory dirfd (at path). */
static int walk_entry(struct hand_over *h, int dirfd, const char *path, const char *name, int depth)
{
    /* O_PATH with O_NOFOLLOW opens the entry itself, a symbolic link included, and nothing
     * else: whatever replaces the name afterwards, fd stays this inode. */
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* gone since the listing: nothing to hand */
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    struct buf sub = BUF_INIT;
    buf_printf(&sub, "%s/%s", path, name);
    if (rc < 0) {
        buf_printf(h->err, "spool %s: %s", sub.data, strerror(-rc));
    } else if (S_ISDIR(st.st_mode)) {
        if (depth >= SPOOL_OWNER_MAX_DEPTH) {
            leave(h, path, name, "a directory nested deeper than the spool's own");
        } else {
            int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            rc = dfd < 0 ? -errno : give(h, dfd, &st, sub.data);
            if (dfd < 0)
                buf_printf(h->err, "spool %s: %s", sub.data, strerror(-rc));
            if (rc == 0)
                rc = walk_dir(h, dfd, sub.data, depth + 1);
            if (dfd >= 0)
                close(dfd);
        }
    } else if (S_ISLNK(st.st_mode)) {
        leave(h, path, name, "a symbolic link");
    } else if (!S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode)) {
        leave(h, path, name, "neither a directory, a regular file nor a socket");
    } else if (st.st_nlink != 1) {
        /* Another name of the same file may be outside the spool (/etc/shadow). */
        leave(h, path, name, "a file with more than one name (a hard link)");
    } else {
        rc = give(h, fd, &st, sub.data);
    }
    buf_free(&sub);
    close(fd);
    return rc;
}

/* Hands over what is in dirfd (at path, depth levels below the spool). */
static int walk_dir(struct hand_over *h, int dirfd, const char *path, int depth)
{
    int fd = dup(dirfd); /* closedir closes it, dirfd stays the caller's */
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    if (dir == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        buf_printf(h->err, "spool %s: %s", path, strerror(e));
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = walk_entry(h, dirfd, path, de->d_name, depth);
    }
    if (rc == 0 && errno != 0) {
        rc = -errno;
        buf_printf(h->err, "spool %s: %s", path, strerror(-rc));
    }
    closedir(dir);
    return rc;
}

int spool_owner_hand_over(const char *dir, uid_t uid, gid_t gid, struct buf *err)
{
    char *given;
    int rc = spool_fs_create(dir, &given, err);
    if (rc < 0)
        return rc;
    /* The configured path may go through links (/var/spool/sluice -> /data/spool); below it,
     * nothing is followed. */
    char *abs = realpath(given, NULL);
    free(given);
    if (abs == NULL) {
        rc = -errno;
        buf_printf(err, "spool %s: %s", dir, strerror(-rc));
        return rc;
    }
    struct hand_over h = {uid, gid, 0, err};
    int fd = open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        buf_printf(err, "spool %s: %s", abs, strerror(-rc));
    } else {
        rc = give(&h, fd, &st, abs);
        if (rc == 0)
            rc = walk_dir(&h, fd, abs, 1);
    }
    if (fd >= 0)
        close(fd);
    free(abs);
    return rc < 0 ? rc : h.skipped;
}
