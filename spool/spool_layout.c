/*
 * The hashed directories below queue/ and state/ (see spool_layout.h).
 */
#include "spool/spool_layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "spool/envelope.h"
#include "spool/spool_fs.h"

void spool_layout_name(const char *id, char *out)
{
    /* The id's leading characters are its time, shared by every message of a burst: a hash of
     * the whole id spreads them. */
    uint32_t h = envelope_crc32(0, id, strlen(id)) % SPOOL_LEAVES;
    snprintf(out, SPOOL_NAME_MAX + 1, "%03x/%s", (unsigned)h, id);
}

const char *spool_layout_id(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash != NULL ? slash + 1 : name;
}

/* The leaf part of name, NUL-terminated, into out (SPOOL_LEAF_LEN + 1 bytes). */
static void leaf_of(const char *name, char *out)
{
    memcpy(out, name, SPOOL_LEAF_LEN);
    out[SPOOL_LEAF_LEN] = '\0';
}

int spool_layout_leaf_make(int dirfd, const char *name)
{
    char leaf[SPOOL_LEAF_LEN + 1];
    leaf_of(name, leaf);
    return mkdirat(dirfd, leaf, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

int spool_layout_leaf_sync(int dirfd, const char *name)
{
    char leaf[SPOOL_LEAF_LEN + 1];
    leaf_of(name, leaf);
    int fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int not_dot(const struct dirent *de)
{
    return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

static int is_leaf_name(const char *name)
{
    return strlen(name) == SPOOL_LEAF_LEN && strspn(name, "0123456789abcdef") == SPOOL_LEAF_LEN;
}

/* A list of names that grows. */
struct names {
    char **v;
    int n, cap;
};

static void names_add(struct names *l, char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = name;
}

/* Adds "<leaf>/<entry>" for each entry of leaf (a directory of dirfd, not a link). Returns 0,
 * -ENOTDIR when leaf is not a directory one may enter, or another -errno. */
static int leaf_list(int dirfd, const char *leaf, struct names *out)
{
    int fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP || errno == ENOTDIR ? -ENOTDIR : -errno;
    struct dirent **des;
    int n = scandirat(fd, ".", &des, not_dot, NULL);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    for (int i = 0; i < n; i++) {
        char *name = xmalloc(SPOOL_LEAF_LEN + 1 + strlen(des[i]->d_name) + 1);
        sprintf(name, "%s/%s", leaf, des[i]->d_name);
        names_add(out, name);
        free(des[i]);
    }
    if (n >= 0)
        free(des);
    return rc;
}

static int by_entry(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int c = strcmp(spool_layout_id(x), spool_layout_id(y));
    return c != 0 ? c : strcmp(x, y);
}

int spool_layout_list(int dirfd, char ***names)
{
    struct dirent **top;
    int n = scandirat(dirfd, ".", &top, not_dot, NULL);
    if (n < 0)
        return -errno;
    struct names out = {0};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = top[i]->d_name;
        int r = is_leaf_name(name) ? leaf_list(dirfd, name, &out) : -ENOTDIR;
        if (r == -ENOTDIR)
            names_add(&out, xstrdup(name));
        else if (r < 0 && rc == 0)
            rc = r;
        free(top[i]);
    }
    free(top);
    if (rc < 0) {
        spool_layout_list_free(out.v, out.n);
        return rc;
    }
    if (out.n > 0)
        qsort(out.v, (size_t)out.n, sizeof *out.v, by_entry);
    *names = out.v;
    return out.n;
}

void spool_layout_list_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Moves the flat files of dirfd (the spool's directory what) into their leaves: how many, or
 * -errno with a reason in err. */
static int migrate_dir(int dirfd, const char *what, struct buf *err)
{
    struct dirent **top;
    int n = scandirat(dirfd, ".", &top, not_dot, NULL);
    if (n < 0) {
        int e = errno;
        buf_printf(err, "spool %s: %s", what, strerror(e));
        return -e;
    }
    int moved = 0;
    for (int i = 0; i < n; i++) {
        const char *id = top[i]->d_name;
        struct stat st;
        char name[SPOOL_NAME_MAX + 1];
        if (moved >= 0 && spool_fs_id_valid(id) &&
            fstatat(dirfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
            spool_layout_name(id, name);
            /* A rename cannot leave the file in both places: what an interrupted migration left
             * at the top has no copy in its leaf. */
            int rc = spool_layout_leaf_make(dirfd, name);
            if (rc == 0 && renameat(dirfd, id, dirfd, name) < 0)
                rc = -errno;
            if (rc < 0) {
                buf_printf(err, "spool %s/%s: cannot move it to %s/%s: %s", what, id, what, name,
                           strerror(-rc));
                moved = rc;
            } else {
                moved++;
            }
        }
        free(top[i]);
    }
    free(top);
    return moved;
}

int spool_layout_migrate(int spool_fd, int queue_fd, int state_fd, struct buf *err)
{
    int queued = migrate_dir(queue_fd, SPOOL_QUEUE, err);
    if (queued < 0)
        return queued;
    int states = migrate_dir(state_fd, SPOOL_STATE, err);
    if (states < 0)
        return states;
    if (queued + states == 0)
        return 0;
    /* Durable before anything is written at the new places. */
    if (syncfs(spool_fd) < 0) {
        int e = errno;
        buf_printf(err, "spool: sync after moving files into hashed directories: %s", strerror(e));
        return -e;
    }
    struct logrec r;
    log_begin(&r, LOG_INFO, "spool.migrated");
    log_int(&r, "count", queued);
    log_int(&r, "state_files", states);
    log_str(&r, "msg", "files of the flat layout moved into hashed directories");
    log_end(&r);
    return queued + states;
}
