/*
 * Who the daemon runs as. Started as root it binds its ports and reads its keys as root, then
 * becomes server.user (unset: the `sluice` system user the package creates; root stays root only
 * when server.user says so); started as anyone else it stays who it is. The start-up gates
 * (mta/run_gates.h) also ask, from permission bits, whether that user will be able to open a file
 * again at reload, when it no longer is root. A struct run_user is owned by whoever resolved it.
 */
#ifndef SLUICE_RUN_USER_H
#define SLUICE_RUN_USER_H

#include <sys/stat.h>
#include <sys/types.h>

#include "lib/buf.h"

/* The user a daemon started as root becomes when server.user is unset. */
#define RUN_USER_DEFAULT "sluice"

struct run_user {
    char *name; /* user name, or "uid N" for a uid without one */
    uid_t uid;
    gid_t gid;     /* primary group */
    gid_t *groups; /* every group of the user, the primary one included */
    int ngroups;
    int change;  /* started as root, becomes this user, who is not root */
    int ignored; /* server.user was given, but not started as root: stays as started */
};

/* Resolves the user `run`, started now by this process, runs as when server.user is `name` (NULL:
 * unset). Returns 0 with *u filled (free it with run_user_free), or -ENOENT when that user, or
 * RUN_USER_DEFAULT for root with name NULL, does not exist. Blocking (the user database). */
int run_user_resolve(const char *name, struct run_user *u);
void run_user_free(struct run_user *u);

/* Whether u's permission bits allow `bits` (S_IROTH, S_IWOTH, S_IXOTH or a sum) on a file of
 * status st: the owner's, the group's or the others' bits, as the kernel picks them. Root: always.
 */
int run_user_allows(const struct run_user *u, const struct stat *st, unsigned bits);

/* Whether u could open path for reading (mode R_OK) or for appending (W_OK: an existing file
 * writable by u, or a missing one u may create in its directory), judging by the permission bits
 * of the file and of every directory on the way (ACLs are not consulted). Returns 0, or -errno
 * with what is in the way in why. Blocking. */
int run_user_can_open(const struct run_user *u, const char *path, int mode, struct buf *why);

/* The directory path is in: "." for a bare name, "/" for a top-level one (trailing slashes aside).
 */
void run_user_parent_dir(const char *path, struct buf *out);

/* Whether u can reach the directory dir: every existing directory on the way, dir included, is
 * searchable by u. A missing part is created later by whoever starts the daemon: when that is u
 * itself (creates set), the directory it goes into must be writable by u. Returns 0, or -errno
 * with what is in the way in why. Blocking. */
int run_user_can_reach(const struct run_user *u, const char *dir, int creates, struct buf *why);

/* Appends "mode 0640, owner root:sluice" for a file of status st. */
void run_user_describe(const struct stat *st, struct buf *out);

/* log_open(path) with u's rights (when u->change, the effective ids are u's during the call), so
 * the file is one the daemon can still reopen at SIGHUP once it is u. Returns as log_open. */
int run_user_log_open(const struct run_user *u, const char *path);

/* Becomes u for good when u->change: its groups, gid and uid; refuses to go on if root could be
 * regained. Returns 0, or -1 with a message in err. */
int run_user_become(const struct run_user *u, struct buf *err);

#endif
