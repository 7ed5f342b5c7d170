/*
 * Helpers shared by the spool's unit tests (test_spool.c, test_spool_batch.c): temporary spools,
 * file counts, the loop they run, committing and updating synchronously, and what spool_recover and
 * spool_scan report, flattened for comparison. Include after check.h, once per test program.
 */
#ifndef SLUICE_TEST_SPOOL_FIXTURE_H
#define SLUICE_TEST_SPOOL_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool/spool.h"
#include "spool/spool_layout.h"
#include "tests/support/test_dirs.h"

static uv_loop_t loop; /* the test program's loop: main initialises it */

/* ---- helpers ---- */

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/test_spool.XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    return strdup(dir);
}

/* 1 for queue/ and state/, whose files are in hashed directories (spool_layout.h). */
static inline int sub_hashed(const char *sub)
{
    return strcmp(sub, "queue") == 0 || strcmp(sub, "state") == 0;
}

/* Into out: the path of name below dir/sub, relative to dir, where the spool keeps it (in
 * queue/ and state/, the hashed directory of name as a queue id, which is made when missing). */
static inline void msg_rel(char *out, size_t size, const char *dir, const char *sub,
                           const char *name)
{
    char hashed[SPOOL_NAME_MAX + 1];
    snprintf(hashed, sizeof hashed, "%s", name);
    if (sub_hashed(sub)) {
        spool_layout_name(name, hashed);
        char leaf[4096];
        snprintf(leaf, sizeof leaf, "%s/%s/%.*s", dir, sub, SPOOL_LEAF_LEN, hashed);
        (void)mkdir(leaf, 0700);
    }
    snprintf(out, size, "%s/%s", sub, hashed);
}

/* The same as an absolute path. */
static inline void msg_file(char *out, size_t size, const char *dir, const char *sub,
                            const char *name)
{
    char rel[4096];
    msg_rel(rel, sizeof rel, dir, sub, name);
    snprintf(out, size, "%s/%s", dir, rel);
}

/* Gives message id the empty state file an earlier version made at its first update: its
 * recipient states then go there, not into its queue file. */
static inline void legacy_state_file(const char *dir, const char *id)
{
    char path[4096];
    msg_file(path, sizeof path, dir, "state", id);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0)
        close(fd);
}

static inline int path_exists(const char *dir, const char *sub, const char *name)
{
    char path[4096];
    struct stat st;
    msg_file(path, sizeof path, dir, sub, name);
    return stat(path, &st) == 0;
}

/* Entries right in the directory at path (not those of its sub-directories), or -1. */
static inline int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Entries of dir/sub (symbolic links included, not followed), or -1; in queue/ and state/, the
 * entries of their leaves instead of the leaves. */
static inline int count_files(const char *dir, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    return sub_hashed(sub) ? test_dir_count(path) : count_entries(path);
}

/* Runs the loop until *count reaches target, nothing is left to run, or 60 s pass. */
static inline void run_until(const int *count, int target)
{
    uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
    while (*count < target && uv_hrtime() < deadline)
        if (uv_run(&loop, UV_RUN_ONCE) == 0)
            break;
}

static inline struct spool *open_spool(const char *dir)
{
    struct spool *sp = NULL;
    struct buf err = BUF_INIT;
    int rc = spool_open(&loop, dir, &sp, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "spool_open: %.*s\n", (int)err.len, err.data);
    buf_free(&err);
    return sp;
}

/* Deterministic pseudo-random bytes, so bodies are not all alike. */
static inline void fill_random(struct buf *b, size_t len, uint32_t seed)
{
    char *p = buf_reserve(b, len);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
    b->len += len;
}

/* An envelope flattened to one string, to compare what was written with what came back. */
static inline void env_flatten(const struct spool_envelope *env, struct buf *out)
{
    buf_printf(out, "%s|", env->sender);
    for (size_t i = 0; i < env->nrcpts; i++)
        buf_printf(out, "%s,", env->rcpts[i]);
    buf_printf(out, "|%s|%s|%s|%s|%lld|%u", env->client_addr ? env->client_addr : "(null)",
               env->helo ? env->helo : "(null)", env->auth_user ? env->auth_user : "(null)",
               env->listener ? env->listener : "(null)", (long long)env->received_at, env->flags);
}

/* ---- what spool_recover and spool_scan report ---- */

#define MAX_SEEN 512
struct seen {
    int n;
    char id[MAX_SEEN][SPOOL_ID_MAX + 1];
    struct buf env[MAX_SEEN];
    struct buf state[MAX_SEEN];
    uint64_t size[MAX_SEEN];
};

/* Recipient states flattened to "status/attempts/next_attempt/reply[ @remote_mta];" each. */
static inline void state_flatten(const struct spool_entry *e, struct buf *out)
{
    CHECK(e->rcpt_state != NULL);
    for (size_t i = 0; e->rcpt_state != NULL && i < e->env->nrcpts; i++) {
        const struct spool_rcpt_state *r = &e->rcpt_state[i];
        buf_printf(out, "%d/%u/%lld/%s%s%s;", (int)r->status, r->attempts,
                   (long long)r->next_attempt, r->reply, r->remote_mta[0] ? " @" : "",
                   r->remote_mta);
    }
}

static inline void seen_on_entry(const struct spool_entry *e, void *arg)
{
    struct seen *s = arg;
    if (s->n >= MAX_SEEN)
        return;
    snprintf(s->id[s->n], sizeof s->id[s->n], "%s", e->id);
    env_flatten(e->env, &s->env[s->n]);
    state_flatten(e, &s->state[s->n]);
    s->size[s->n] = e->body_size;
    s->n++;
}

static inline void seen_free(struct seen *s)
{
    for (int i = 0; i < s->n; i++) {
        buf_free(&s->env[i]);
        buf_free(&s->state[i]);
    }
    s->n = 0;
}

static inline int seen_find(const struct seen *s, const char *id)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->id[i], id) == 0)
            return i;
    return -1;
}

static const char *const rcpts2[] = {"bob@example.com", "carol@example.net"};
static const struct spool_envelope env_full = {
    .sender = "alice@example.org",
    .rcpts = rcpts2,
    .nrcpts = 2,
    .client_addr = "192.0.2.1",
    .helo = "client.example.org",
    .auth_user = "alice",
    .listener = "submission",
    .received_at = 1700000123,
    .flags = SPOOL_ENV_8BITMIME,
};
static const char *const rcpts1[] = {"postmaster@example.com"};
static const struct spool_envelope env_bounce = {
    .sender = "",
    .rcpts = rcpts1,
    .nrcpts = 1,
    .client_addr = "2001:db8::25",
    .helo = "mx.example.net",
    .listener = "mx",
    .received_at = 1700000456,
    .flags = SPOOL_ENV_SMTPUTF8,
};

/* Copies dir/from to dir/to: whole (cut 0), without its last -cut bytes, or its first cut bytes;
 * with byte `flip` changed unless flip is -1. */
static inline void copy_file(const char *dir, const char *from, const char *to, long cut, long flip)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, from);
    FILE *f = fopen(path, "rb");
    struct buf data = BUF_INIT;
    char chunk[65536];
    size_t n;
    while (f != NULL && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&data, chunk, n);
    if (f != NULL)
        fclose(f);
    CHECK(data.len > 100);
    size_t len = cut < 0 ? data.len - (size_t)-cut : cut > 0 ? (size_t)cut : data.len;
    if (flip >= 0)
        data.data[flip] ^= 0x20;
    snprintf(path, sizeof path, "%s/%s", dir, to);
    f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(data.data, 1, len, f) == len);
    if (f != NULL)
        fclose(f);
    buf_free(&data);
}

struct result {
    int calls, status;
};

static inline void result_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
}

/* Commits one small message and returns its callback's result. */
static inline struct result commit_one(struct spool *sp, const struct spool_envelope *env)
{
    struct result r = {0, 1};
    struct spool_msg *msg = spool_msg_new(sp, env);
    spool_msg_append(msg, "Subject: x\r\n\r\nbody\r\n", 20, NULL, NULL);
    spool_msg_commit(msg, result_on_committed, &r);
    CHECK_INT_EQ(r.calls, 0); /* never from inside the call */
    run_until(&r.calls, 1);
    CHECK_INT_EQ(r.calls, 1);
    return r;
}

static inline void teardown(struct spool *sp, char *dir, struct buf *err)
{
    spool_close(sp);
    buf_free(err);
    rm_tree(dir);
    free(dir);
}

/* Commits a message with the given prefix (NULL: none) and body; returns its id in id. */
static inline void commit_with_prefix(struct spool *sp, const struct spool_envelope *env,
                                      const char *prefix, const char *body, char *id)
{
    struct result r = {0, 1};
    struct spool_msg *msg = spool_msg_new(sp, env);
    snprintf(id, SPOOL_ID_MAX + 1, "%s", spool_msg_id(msg));
    spool_msg_append(msg, body, strlen(body), NULL, NULL);
    if (prefix != NULL) {
        CHECK_INT_EQ(spool_msg_prepend(msg, prefix, strlen(prefix)), 0);
        CHECK_INT_EQ(spool_msg_prepend(msg, prefix, strlen(prefix)), -EINVAL); /* only once */
    }
    spool_msg_commit(msg, result_on_committed, &r);
    run_until(&r.calls, 1);
    CHECK_INT_EQ(r.status, 0);
}

struct op_result {
    int calls;
    int status[8];
};

static inline void op_on_done(int status, void *arg)
{
    struct op_result *r = arg;
    if (r->calls < 8)
        r->status[r->calls] = status;
    r->calls++;
}

/* A recipient's new status with the fields most updates set; the rest zero (no remote MTA, no
 * delay DSN, no notice). A test that needs more sets them on the result. */
static inline struct spool_rcpt_update rcpt_status(size_t rcpt, enum spool_rcpt_status status,
                                                   unsigned attempts, int64_t next_attempt,
                                                   const char *reply)
{
    return (struct spool_rcpt_update){.rcpt = rcpt,
                                      .status = status,
                                      .attempts = attempts,
                                      .next_attempt = next_attempt,
                                      .reply = reply};
}

/* Writes updates and waits for the callback; returns its status. */
static inline int update_sync(struct spool *sp, const char *id, const struct spool_rcpt_update *u,
                              size_t n)
{
    struct op_result r = {0};
    spool_rcpt_update(sp, id, u, n, op_on_done, &r);
    CHECK_INT_EQ(r.calls, 0); /* never from inside the call */
    run_until(&r.calls, 1);
    CHECK_INT_EQ(r.calls, 1);
    return r.status[0];
}

/* The modification time that marks the queue file of id as holding no states: id's issue time. */
static inline struct timespec id_mark(const char *id)
{
    uint64_t us = 0;
    CHECK_INT_EQ(spool_id_issued_at(id, &us), 0);
    return (struct timespec){(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
}

static inline int mtime_is(const char *dir, const char *id, struct timespec ts)
{
    char path[4096];
    msg_file(path, sizeof path, dir, "queue", id);
    struct stat st;
    return stat(path, &st) == 0 && st.st_mtim.tv_sec == ts.tv_sec &&
           st.st_mtim.tv_nsec == ts.tv_nsec;
}

static inline long file_size(const char *dir, const char *sub, const char *name)
{
    char path[4096];
    struct stat st;
    msg_file(path, sizeof path, dir, sub, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

struct loaded {
    int calls, status;
    struct buf body, state, why;
    uint64_t size;
};

static inline void loaded_on_done(int status, const struct spool_entry *entry, struct buf *body,
                                  const char *why, void *arg)
{
    struct loaded *l = arg;
    l->calls++;
    l->status = status;
    if (status == 0) {
        state_flatten(entry, &l->state);
        l->size = entry->body_size;
        l->body = *body; /* moved out, as the API allows */
        *body = (struct buf)BUF_INIT;
    } else {
        CHECK(why != NULL && why[0] != '\0');
        buf_printf(&l->why, "%s", why);
    }
}

static inline struct loaded load_sync(struct spool *sp, const char *id)
{
    struct loaded l = {0};
    spool_load(sp, id, loaded_on_done, &l);
    CHECK_INT_EQ(l.calls, 0);
    CHECK(spool_pending(sp) > 0);
    run_until(&l.calls, 1);
    CHECK_INT_EQ(l.calls, 1);
    CHECK_INT_EQ(spool_pending(sp), 0);
    return l;
}

static inline void loaded_free(struct loaded *l)
{
    buf_free(&l->body);
    buf_free(&l->state);
    buf_free(&l->why);
}

#endif
