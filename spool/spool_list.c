/*
 * Finding the committed messages after spool_recover_begin without reading them (spool_list, see
 * spool.h): a slice of SPOOL_LIST_LEAVES hashed directories per job on the thread pool, each
 * listing its state/ leaf, then its queue/ leaf, removing state files whose message is gone, moving
 * what is not a queue file in its place to corrupt/, and reading each message's recipient states
 * (its queue file's tail, or its state file when it has one) for the time it is next due; bodies
 * are not read, and a queue file whose modification time still carries the mark of one without
 * states (spool_fs_mark_unappended) is not opened.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "spool/spool.h"
#include "spool/spool_fs.h"
#include "spool/spool_layout.h"
#include "spool/spool_repair.h"
#include "spool/spool_state.h"

/* Leaves per job: at ten million messages about 80,000 files, a fraction of a second of work. */
#define SPOOL_LIST_LEAVES 32
/* Recipients a state file is first read for; one naming more is read again for them all. */
#define SPOOL_LIST_RCPTS 16

struct spool_lister {
    struct spool *sp;
    uv_work_t work;
    unsigned leaf; /* the first leaf of the next job */
    /* The leaves queue/ or state/ hold, found by listing their tops in the first job: only those
     * are opened (a young spool has few of its 4,096). */
    unsigned char present[SPOOL_LEAVES];
    struct spool_listed *items;
    char (*ids)[SPOOL_ID_MAX + 1]; /* items[i].id points into ids[i] once back on the loop */
    size_t n, cap;
    unsigned orphans; /* state files without a message, removed */
    int corrupt_fd;   /* corrupt/, for what is not where a queue file belongs; -1: none */
    unsigned moved;   /* files moved there */
    spool_list_cb cb;
    void *arg;
};

static void lister_on_work(uv_work_t *work);
static void lister_on_done(uv_work_t *work, int status);

static int not_dot(const struct dirent *de)
{
    return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

/* The sorted entries of leaf in dirfd (none when it was never made). */
static int leaf_list(int dirfd, const char *leaf, int *fd, struct dirent ***names)
{
    *fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0)
        return 0;
    int n = scandirat(*fd, ".", names, not_dot, alphasort);
    return n > 0 ? n : 0;
}

static void names_free(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    if (n > 0)
        free(names);
}

static int name_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(struct dirent *const *)elem)->d_name);
}

static int names_have(struct dirent **names, int n, const char *name)
{
    return n > 0 && bsearch(name, names, (size_t)n, sizeof *names, name_cmp) != NULL;
}

/* When a message whose state records are records is due: its earliest deferred recipient's retry,
 * or 0 (now) when one waits for its first try or its DSN, or when nothing is left (a load then
 * removes the message). */
static int64_t records_due(const struct buf *records)
{
    struct spool_state st;
    size_t want = SPOOL_LIST_RCPTS;
    spool_state_init(&st, want);
    spool_state_feed(&st, records->data, records->len);
    if (st.rcpt_end > want) {
        want = st.rcpt_end;
        spool_state_free(&st);
        spool_state_init(&st, want);
        spool_state_feed(&st, records->data, records->len);
    }
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < st.rcpt_end && i < st.nrcpts; i++) {
        enum spool_rcpt_status s = st.rcpts[i].status;
        if (s == SPOOL_RCPT_DEFERRED && st.rcpts[i].next_attempt < due)
            due = st.rcpts[i].next_attempt > 0 ? st.rcpts[i].next_attempt : 0;
        else if (s == SPOOL_RCPT_PENDING || s == SPOOL_RCPT_FAILED)
            due = 0;
    }
    spool_state_free(&st);
    return due == INT64_MAX ? 0 : due;
}

/* When message name is due, from its state file in the leaf state_fd when it has one, else from
 * its queue file's tail in the leaf queue_fd (the body is not read); 0 when neither can be read
 * (a load settles it). */
static int64_t message_due(int queue_fd, int state_fd, int has_state_file, const char *name)
{
    struct stat st;
    if (!has_state_file && fstatat(queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        spool_fs_unappended(&st, name))
        return 0; /* no states appended since its commit: never tried, due now, and not opened */
    struct buf records = BUF_INIT;
    int fd = openat(has_state_file ? state_fd : queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    uint64_t at;
    int rc = fd < 0           ? -1
             : has_state_file ? fd_read_all(fd, &records)
                              : spool_fs_tail(fd, &records, &at);
    if (fd >= 0)
        close(fd);
    int64_t due = rc == 0 ? records_due(&records) : 0;
    buf_free(&records);
    return due;
}

static void lister_add(struct spool_lister *l, const char *id, int64_t due)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
        l->ids = xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    size_t len = strnlen(id, sizeof l->ids[l->n] - 1); /* a checked queue id: it fits */
    memcpy(l->ids[l->n], id, len);
    l->ids[l->n][len] = '\0';
    l->items[l->n++].due = due;
}

/* Sets name (of directory dir_fd) aside in corrupt/ as to. */
static void lister_set_aside(struct spool_lister *l, int dir_fd, const char *name, const char *to,
                             const char *why)
{
    if (l->corrupt_fd >= 0 && spool_repair_quarantine(dir_fd, name, l->corrupt_fd, to, why) == 0)
        l->moved++;
}

/* The leaf number of name, or -1 when name is not a leaf's. */
static int leaf_number(const char *name)
{
    if (strlen(name) != SPOOL_LEAF_LEN || strspn(name, "0123456789abcdef") != SPOOL_LEAF_LEN)
        return -1;
    unsigned long n = strtoul(name, NULL, 16);
    return n < SPOOL_LEAVES ? (int)n : -1;
}

/* Notes the leaves of queue/ and state/ in l->present. What the top of queue/ holds besides its
 * leaves is nothing Sluice made there: set aside. */
static void lister_top(struct spool_lister *l)
{
    struct dirent **names;
    int n = scandirat(l->sp->queue_fd, ".", &names, not_dot, NULL);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        int leaf = leaf_number(name);
        if (leaf >= 0 && fstatat(l->sp->queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode))
            l->present[leaf] = 1;
        else
            lister_set_aside(l, l->sp->queue_fd, name, name, "not in a hashed directory");
    }
    names_free(names, n);
    n = scandirat(l->sp->state_fd, ".", &names, not_dot, NULL);
    for (int i = 0; i < n; i++) {
        int leaf = leaf_number(names[i]->d_name);
        if (leaf >= 0)
            l->present[leaf] = 1; /* opened as a directory, or found not to be one, by leaf_list */
    }
    names_free(names, n);
}

/* One leaf: state/ listed before queue/, so a state file listed without its message is one whose
 * message was gone already (a state file is only made for a committed message). */
static void lister_leaf(struct spool_lister *l, const char *leaf)
{
    struct spool *sp = l->sp;
    int state_fd, queue_fd;
    struct dirent **states, **queued;
    int nstates = leaf_list(sp->state_fd, leaf, &state_fd, &states);
    int nqueued = leaf_list(sp->queue_fd, leaf, &queue_fd, &queued);
    int no_queue_leaf = queue_fd < 0 && errno == ENOENT;
    for (int i = 0; i < nstates; i++) {
        const char *name = states[i]->d_name;
        int gone = no_queue_leaf ||
                   (!names_have(queued, nqueued, name) &&
                    faccessat(queue_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        if (gone && unlinkat(state_fd, name, 0) == 0)
            l->orphans++;
    }
    for (int i = 0; i < nqueued; i++) {
        const char *id = queued[i]->d_name;
        char expected[SPOOL_NAME_MAX + 1] = "";
        if (spool_fs_id_valid(id))
            spool_layout_name(id, expected);
        if (expected[0] == '\0' || strncmp(expected, leaf, SPOOL_LEAF_LEN) != 0) {
            lister_set_aside(l, queue_fd, id, id,
                             expected[0] ? "not in the directory of its queue id"
                                         : "not a queue id");
            continue;
        }
        lister_add(l, id, message_due(queue_fd, state_fd, names_have(states, nstates, id), id));
    }
    names_free(states, nstates);
    names_free(queued, nqueued);
    if (state_fd >= 0)
        close(state_fd);
    if (queue_fd >= 0)
        close(queue_fd);
}

static void lister_on_work(uv_work_t *work)
{
    struct spool_lister *l = container_of(work, struct spool_lister, work);
    unsigned moved = l->moved;
    if (l->leaf == 0)
        lister_top(l);
    for (unsigned listed = 0; listed < SPOOL_LIST_LEAVES && l->leaf < SPOOL_LEAVES; l->leaf++) {
        if (!l->present[l->leaf])
            continue;
        char leaf[SPOOL_LEAF_LEN + 1];
        snprintf(leaf, sizeof leaf, "%03x", l->leaf);
        lister_leaf(l, leaf);
        listed++;
    }
    /* The moves last, so a crash does not bring a bad file back. */
    if (l->moved > moved)
        (void)fsync(l->corrupt_fd);
}

static void lister_finish(struct spool_lister *l)
{
    if (l->orphans > 0)
        log_msg(LOG_INFO, "spool.state_orphans", "%u state files without a message removed",
                l->orphans);
    if (l->corrupt_fd >= 0)
        close(l->corrupt_fd);
    l->sp->pending--;
    free(l->items);
    free(l->ids);
    free(l);
}

static void lister_on_done(uv_work_t *work, int status)
{
    struct spool_lister *l = container_of(work, struct spool_lister, work);
    (void)status; /* never cancelled */
    for (size_t i = 0; i < l->n; i++)
        l->items[i].id = l->ids[i];
    int done = l->leaf >= SPOOL_LEAVES;
    int stop = l->cb(l->items, l->n, done, l->arg);
    l->n = 0;
    if (done || stop) {
        lister_finish(l);
        return;
    }
    spool_fs_started(uv_queue_work(l->sp->loop, &l->work, lister_on_work, lister_on_done), "list");
}

void spool_list(struct spool *sp, spool_list_cb cb, void *arg)
{
    struct spool_lister *l = xcalloc(1, sizeof *l);
    l->sp = sp;
    l->cb = cb;
    l->arg = arg;
    struct buf ignored = BUF_INIT; /* without corrupt/, bad files stay where they are */
    l->corrupt_fd = spool_fs_open_dir(sp->dir, SPOOL_CORRUPT, &ignored);
    buf_free(&ignored);
    sp->pending++;
    spool_fs_started(uv_queue_work(sp->loop, &l->work, lister_on_work, lister_on_done), "list");
}
