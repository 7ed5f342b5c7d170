/*
 * Who the daemon runs as, what that user may open, and becoming it (see run_user.h).
 */
#include "mta/run_user.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"

/* getgrouplist says how many groups there are when the array is too small: a second try fits. */
#define GROUP_LIST_TRIES 4

static void user_groups(struct run_user *u, const char *name)
{
    int n = 16;
    for (int tries = 0; tries < GROUP_LIST_TRIES; tries++) {
        u->groups = xrealloc(u->groups, (size_t)n * sizeof *u->groups);
        int got = n;
        if (getgrouplist(name, u->gid, u->groups, &got) >= 0) {
            u->ngroups = got;
            return;
        }
        n = got > n ? got : 2 * n;
    }
    u->groups[0] = u->gid; /* the primary group at least */
    u->ngroups = 1;
}

static void user_from_passwd(struct run_user *u, const struct passwd *pw)
{
    u->name = xstrdup(pw->pw_name);
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    user_groups(u, pw->pw_name);
}

/* The process as it runs now. */
static void user_self(struct run_user *u)
{
    u->uid = geteuid();
    u->gid = getegid();
    struct passwd *pw = getpwuid(u->uid);
    if (pw != NULL) {
        u->name = xstrdup(pw->pw_name);
    } else {
        struct buf name = BUF_INIT;
        buf_printf(&name, "uid %u", (unsigned)u->uid);
        u->name = xstrdup(name.data);
        buf_free(&name);
    }
    int n = getgroups(0, NULL);
    u->groups = xcalloc((size_t)(n > 0 ? n : 0) + 1, sizeof *u->groups);
    n = n > 0 ? getgroups(n, u->groups + 1) : 0;
    u->groups[0] = u->gid;
    u->ngroups = (n > 0 ? n : 0) + 1;
}

int run_user_resolve(const char *name, struct run_user *u)
{
    *u = (struct run_user){0};
    int root = geteuid() == 0;
    if (!root) {
        struct passwd *pw = name != NULL ? getpwnam(name) : NULL;
        if (name != NULL && pw == NULL)
            return -ENOENT;
        u->ignored = pw != NULL && pw->pw_uid != geteuid();
        user_self(u);
        return 0;
    }
    struct passwd *pw = getpwnam(name != NULL ? name : RUN_USER_DEFAULT);
    if (pw == NULL)
        return -ENOENT;
    user_from_passwd(u, pw);
    u->change = u->uid != 0;
    return 0;
}

void run_user_free(struct run_user *u)
{
    free(u->name);
    free(u->groups);
    *u = (struct run_user){0};
}

static int user_in_group(const struct run_user *u, gid_t gid)
{
    for (int i = 0; i < u->ngroups; i++)
        if (u->groups[i] == gid)
            return 1;
    return u->gid == gid;
}

int run_user_allows(const struct run_user *u, const struct stat *st, unsigned bits)
{
    if (u->uid == 0)
        return 1;
    unsigned mode = st->st_mode;
    unsigned granted = st->st_uid == u->uid           ? (mode >> 6) & 7
                       : user_in_group(u, st->st_gid) ? (mode >> 3) & 7
                                                      : mode & 7;
    return (granted & bits) == bits;
}

static void name_of_uid(uid_t uid, struct buf *out)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL)
        buf_printf(out, "%s", pw->pw_name);
    else
        buf_printf(out, "%u", (unsigned)uid);
}

void run_user_describe(const struct stat *st, struct buf *out)
{
    buf_printf(out, "mode %04o, owner ", (unsigned)(st->st_mode & 07777));
    name_of_uid(st->st_uid, out);
    struct group *gr = getgrgid(st->st_gid);
    if (gr != NULL)
        buf_printf(out, ":%s", gr->gr_name);
    else
        buf_printf(out, ":%u", (unsigned)st->st_gid);
}

static int denied(const struct run_user *u, const char *path, const struct stat *st,
                  const char *what, struct buf *why)
{
    buf_printf(why, "%s is not %s by %s (", path, what, u->name);
    run_user_describe(st, why);
    buf_printf(why, ")");
    return -EACCES;
}

/* Checks the directory `dir` may be searched (and written, when write is set) by u. */
static int dir_check(const struct run_user *u, const char *dir, int write, struct buf *why)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        int e = errno;
        buf_printf(why, "%s: %s", dir, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        buf_printf(why, "%s is not a directory", dir);
        return -ENOTDIR;
    }
    if (!run_user_allows(u, &st, S_IXOTH))
        return denied(u, dir, &st, "searchable", why);
    if (write && !run_user_allows(u, &st, S_IWOTH | S_IXOTH))
        return denied(u, dir, &st, "writable", why);
    return 0;
}

void run_user_parent_dir(const char *path, struct buf *out)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    while (len > 0 && path[len - 1] != '/')
        len--;
    while (len > 1 && path[len - 1] == '/')
        len--;
    buf_reset(out);
    if (len == 0)
        buf_printf(out, ".");
    else
        buf_printf(out, "%.*s", (int)len, path);
}

/* Checks every directory on the way to path's last component is searchable by u. */
static int dirs_on_the_way(const struct run_user *u, const char *path, struct buf *why)
{
    struct buf dir = BUF_INIT, parent = BUF_INIT;
    run_user_parent_dir(path, &parent);
    int rc = dir_check(u, path[0] == '/' ? "/" : ".", 0, why);
    for (size_t i = 1; i <= parent.len && rc == 0; i++) {
        if ((i < parent.len && parent.data[i] != '/') || parent.data[i - 1] == '/')
            continue;
        buf_reset(&dir);
        buf_printf(&dir, "%.*s", (int)i, parent.data);
        if (strcmp(dir.data, ".") != 0)
            rc = dir_check(u, dir.data, 0, why);
    }
    buf_free(&dir);
    buf_free(&parent);
    return rc;
}

int run_user_can_open(const struct run_user *u, const char *path, int mode, struct buf *why)
{
    int rc = dirs_on_the_way(u, path, why);
    if (rc < 0)
        return rc;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            buf_printf(why, "%s is a directory", path);
            return -EISDIR;
        }
        if (!run_user_allows(u, &st, mode == R_OK ? S_IROTH : S_IWOTH))
            return denied(u, path, &st, mode == R_OK ? "readable" : "writable", why);
        return 0;
    }
    if (errno != ENOENT || mode == R_OK) {
        rc = -errno;
        buf_printf(why, "%s: %s", path, strerror(-rc));
        return rc;
    }
    /* Appending to a file that is not there yet: u creates it in its directory. */
    struct buf dir = BUF_INIT;
    run_user_parent_dir(path, &dir);
    rc = dir_check(u, dir.data, 1, why);
    buf_free(&dir);
    return rc;
}

int run_user_can_reach(const struct run_user *u, const char *dir, int creates, struct buf *why)
{
    struct buf part = BUF_INIT, last = BUF_INIT; /* last: the deepest directory that exists */
    buf_printf(&last, "%s", dir[0] == '/' ? "/" : ".");
    int rc = dir_check(u, last.data, 0, why);
    size_t len = strlen(dir);
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if ((i < len && dir[i] != '/') || dir[i - 1] == '/')
            continue;
        buf_reset(&part);
        buf_printf(&part, "%.*s", (int)i, dir);
        struct stat st;
        if (stat(part.data, &st) < 0 && errno == ENOENT) {
            /* The start creates the rest, in the deepest directory that exists. */
            if (creates)
                rc = dir_check(u, last.data, 1, why);
            break;
        }
        rc = dir_check(u, part.data, 0, why);
        buf_reset(&last);
        buf_printf(&last, "%s", part.data);
    }
    buf_free(&part);
    buf_free(&last);
    return rc;
}

int run_user_log_open(const struct run_user *u, const char *path)
{
    if (!u->change)
        return log_open(path);
    /* The groups stay u's afterwards: root's rights do not depend on them, and the daemon
     * becomes u shortly. */
    if (setgroups((size_t)u->ngroups, u->groups) < 0 || setegid(u->gid) < 0)
        return -errno;
    if (seteuid(u->uid) < 0) {
        int e = errno;
        (void)setegid(0);
        return -e;
    }
    int rc = log_open(path);
    if (seteuid(0) < 0 || setegid(0) < 0)
        log_panic("cannot return to root after opening the log as %s: %s", u->name,
                  strerror(errno));
    return rc;
}

int run_user_become(const struct run_user *u, struct buf *err)
{
    if (!u->change)
        return 0;
    if (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0) {
        buf_printf(err, "server.user: cannot become %s: %s", u->name, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        buf_printf(err, "server.user: became %s, but root can still be regained", u->name);
        return -1;
    }
    return 0;
}
