#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool/spool.h"
#include "tests/unit/check.h"

static uv_loop_t loop;

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/test_spool.XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    return strdup(dir);
}

static int path_exists(const char *dir, const char *sub, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    return stat(path, &st) == 0;
}

/* Entries of dir/sub (symbolic links included, not followed), or -1. */
static int count_files(const char *dir, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
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

/* Runs the loop until *count reaches target, nothing is left to run, or 60 s pass. */
static void run_until(const int *count, int target)
{
    uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
    while (*count < target && uv_hrtime() < deadline)
        if (uv_run(&loop, UV_RUN_ONCE) == 0)
            break;
}

static struct spool *open_spool(const char *dir)
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
static void fill_random(struct buf *b, size_t len, uint32_t seed)
{
    char *p = buf_reserve(b, len);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
    b->len += len;
}

/* An envelope flattened to one string, to compare what was written with what came back. */
static void env_flatten(const struct spool_envelope *env, struct buf *out)
{
    buf_printf(out, "%s|", env->sender);
    for (size_t i = 0; i < env->nrcpts; i++)
        buf_printf(out, "%s,", env->rcpts[i]);
    buf_printf(out, "|%s|%s|%s|%s|%lld|%u", env->client_addr ? env->client_addr : "(null)",
               env->helo ? env->helo : "(null)", env->auth_user ? env->auth_user : "(null)",
               env->listener ? env->listener : "(null)", (long long)env->received_at, env->flags);
}

/* ---- one message fed by a writer that honours the pause ---- */

struct writer {
    struct spool_msg *msg;
    struct buf body;   /* what we send */
    size_t off, chunk; /* progress, bytes per append */
    int pauses, resumes;
    int committed; /* commit callbacks seen (must end at 1) */
    int status;
    char id[SPOOL_ID_MAX + 1];
    int queued_before_commit; /* the queue file existed before the commit callback */
    const char *dir;
    int *done; /* counter shared by writers */
};

static void writer_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct writer *w = arg;
    w->committed++;
    w->status = status;
    CHECK_STR_EQ(spool_msg_id(msg), w->id);
    CHECK_INT_EQ(spool_msg_size(msg), w->body.len);
    (*w->done)++;
}

static void writer_feed(struct writer *w);

static void writer_on_writable(struct spool_msg *msg, void *arg)
{
    struct writer *w = arg;
    w->resumes++;
    writer_feed(w);
}

static void writer_feed(struct writer *w)
{
    while (w->off < w->body.len) {
        size_t n = w->body.len - w->off < w->chunk ? w->body.len - w->off : w->chunk;
        int paused = spool_msg_append(w->msg, w->body.data + w->off, n, writer_on_writable, w);
        w->off += n;
        if (paused) {
            w->pauses++;
            return;
        }
    }
    w->queued_before_commit = path_exists(w->dir, "queue", w->id);
    spool_msg_commit(w->msg, writer_on_committed, w);
}

static void writer_start(struct writer *w, struct spool *sp, const struct spool_envelope *env,
                         size_t size, size_t chunk, uint32_t seed, const char *dir, int *done)
{
    memset(w, 0, sizeof *w);
    fill_random(&w->body, size, seed);
    w->chunk = chunk;
    w->dir = dir;
    w->done = done;
    w->msg = spool_msg_new(sp, env);
    CHECK(w->msg != NULL);
    snprintf(w->id, sizeof w->id, "%s", spool_msg_id(w->msg));
    writer_feed(w);
}

/* ---- what spool_recover and spool_scan report ---- */

#define MAX_SEEN 512
struct seen {
    int n;
    char id[MAX_SEEN][SPOOL_ID_MAX + 1];
    struct buf env[MAX_SEEN];
    uint64_t size[MAX_SEEN];
};

static void seen_on_entry(const struct spool_entry *e, void *arg)
{
    struct seen *s = arg;
    if (s->n >= MAX_SEEN)
        return;
    snprintf(s->id[s->n], sizeof s->id[s->n], "%s", e->id);
    env_flatten(e->env, &s->env[s->n]);
    s->size[s->n] = e->body_size;
    s->n++;
}

static void seen_free(struct seen *s)
{
    for (int i = 0; i < s->n; i++)
        buf_free(&s->env[i]);
    s->n = 0;
}

static int seen_find(const struct seen *s, const char *id)
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

/* ---- tests ---- */

static void test_write_commit_recover(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    int done = 0;
    struct writer w[4];
    /* Many small appends; a large body in big appends; several MiB in small ones; empty. */
    writer_start(&w[0], sp, &env_full, 200000, 37, 1, dir, &done);
    writer_start(&w[1], sp, &env_bounce, 6 * 1024 * 1024 + 11, 300 * 1024, 2, dir, &done);
    writer_start(&w[2], sp, &env_full, 3 * 1024 * 1024, 4096, 3, dir, &done);
    writer_start(&w[3], sp, &env_bounce, 0, 1, 4, dir, &done);
    run_until(&done, 4);
    CHECK_INT_EQ(done, 4);
    CHECK_INT_EQ(spool_pending(sp), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_INT_EQ(w[i].committed, 1);
        CHECK_INT_EQ(w[i].status, 0);
        CHECK_INT_EQ(w[i].queued_before_commit, 0);
        CHECK(path_exists(dir, "queue", w[i].id));
        CHECK(!path_exists(dir, "tmp", w[i].id));
        CHECK_INT_EQ(w[i].pauses, w[i].resumes);
    }
    /* 300 KiB appends outrun the writes: the writer was asked to wait and was resumed. */
    CHECK(w[1].pauses > 0);
    spool_close(sp);

    /* A fresh spool object finds every message again, envelope and body byte for byte. */
    sp = open_spool(dir);
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 4);
    for (int i = 0; i < 4; i++) {
        int k = seen_find(&seen, w[i].id);
        CHECK(k >= 0);
        if (k < 0)
            continue;
        struct buf want = BUF_INIT;
        env_flatten(i % 2 ? &env_bounce : &env_full, &want);
        CHECK_INT_EQ(seen.env[k].len, want.len);
        CHECK(seen.env[k].len == want.len && memcmp(seen.env[k].data, want.data, want.len) == 0);
        CHECK_INT_EQ(seen.size[k], w[i].body.len);
        buf_free(&want);

        struct buf body = BUF_INIT;
        buf_append(&body, "keep", 4); /* load_body appends */
        CHECK_INT_EQ(spool_load_body(dir, w[i].id, &body, &err), 0);
        CHECK_INT_EQ(body.len, w[i].body.len + 4);
        CHECK(body.len == w[i].body.len + 4 && memcmp(body.data, "keep", 4) == 0 &&
              (w[i].body.len == 0 || memcmp(body.data + 4, w[i].body.data, w[i].body.len) == 0));
        buf_free(&body);
    }
    /* Recovery is in id order, which is creation order. */
    for (int i = 1; i < seen.n; i++)
        CHECK(strcmp(seen.id[i - 1], seen.id[i]) < 0);
    seen_free(&seen);

    /* The read-only scan agrees. */
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), 4);
    CHECK_INT_EQ(seen.n, 4);
    seen_free(&seen);
    spool_close(sp);
    for (int i = 0; i < 4; i++)
        buf_free(&w[i].body);
    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

#define CONCURRENT 200

static int id_compare(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_concurrent_commits(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    static struct writer w[CONCURRENT];
    int done = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        size_t size = i % 50 == 0 ? 700 * 1024 : 1000 + (size_t)i * 97;
        writer_start(&w[i], sp, i % 3 ? &env_full : &env_bounce, size, 1500, (uint32_t)i + 10, dir,
                     &done);
    }
    /* Writers of large bodies were paused before their commit; the others are all pending. */
    int committing = 0;
    for (int i = 0; i < CONCURRENT; i++)
        committing += w[i].off == w[i].body.len;
    CHECK(committing >= CONCURRENT - CONCURRENT / 50);
    CHECK_INT_EQ(spool_pending(sp), committing);
    CHECK_INT_EQ(done, 0); /* callbacks never run inside the call */
    run_until(&done, CONCURRENT);
    CHECK_INT_EQ(done, CONCURRENT);
    CHECK_INT_EQ(spool_pending(sp), 0);

    static char ids[CONCURRENT][SPOOL_ID_MAX + 1];
    int ok = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        ok += w[i].committed == 1 && w[i].status == 0;
        memcpy(ids[i], w[i].id, sizeof ids[i]);
        CHECK(strlen(ids[i]) > 0 && strlen(ids[i]) <= SPOOL_ID_MAX);
        CHECK_INT_EQ(strspn(ids[i], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"), strlen(ids[i]));
        if (i > 0)
            CHECK(strcmp(ids[i - 1], ids[i]) < 0); /* made in order: sortable by time */
    }
    CHECK_INT_EQ(ok, CONCURRENT);
    qsort(ids, CONCURRENT, sizeof ids[0], id_compare);
    int dups = 0;
    for (int i = 1; i < CONCURRENT; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK_INT_EQ(dups, 0);
    CHECK_INT_EQ(count_files(dir, "queue"), CONCURRENT);
    CHECK_INT_EQ(count_files(dir, "tmp"), 0);

    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), CONCURRENT);
    int sizes_ok = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        int k = seen_find(&seen, w[i].id);
        sizes_ok += k >= 0 && seen.size[k] == w[i].body.len;
    }
    CHECK_INT_EQ(sizes_ok, CONCURRENT);
    /* Spot-check bodies, the large ones included. */
    for (int i = 0; i < CONCURRENT; i += 25) {
        struct buf body = BUF_INIT;
        CHECK_INT_EQ(spool_load_body(dir, w[i].id, &body, &err), 0);
        CHECK(body.len == w[i].body.len && memcmp(body.data, w[i].body.data, body.len) == 0);
        buf_free(&body);
    }
    seen_free(&seen);
    for (int i = 0; i < CONCURRENT; i++)
        buf_free(&w[i].body);
    spool_close(sp);
    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

static void test_abort(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    struct buf big = BUF_INIT;
    fill_random(&big, 1024 * 1024, 7);
    int never = 0;

    /* Right after new: the open is still in flight. */
    struct spool_msg *a = spool_msg_new(sp, &env_full);
    spool_msg_abort(a);
    /* Mid-write: a megabyte buffered, a write in flight, more buffered behind it. */
    struct spool_msg *b = spool_msg_new(sp, &env_full);
    struct spool_msg *c = spool_msg_new(sp, &env_bounce);
    char c_id[SPOOL_ID_MAX + 1];
    snprintf(c_id, sizeof c_id, "%s", spool_msg_id(c));
    run_until(&never, 1); /* lets both opens finish: nothing else is in flight */
    CHECK(path_exists(dir, "tmp", c_id));
    CHECK_INT_EQ(spool_msg_append(b, big.data, big.len, NULL, NULL), 0); /* starts a write */
    CHECK_INT_EQ(spool_msg_append(b, big.data, big.len, NULL, NULL), 1);
    spool_msg_abort(b);
    /* Idle, file open, nothing in flight. */
    spool_msg_append(c, "hello", 5, NULL, NULL);
    spool_msg_abort(c);
    CHECK_INT_EQ(spool_pending(sp), 2); /* a is gone already: its clean-up ran with the opens */
    uint64_t deadline = uv_hrtime() + 30 * (uint64_t)1000000000;
    while (spool_pending(sp) > 0 && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT_EQ(spool_pending(sp), 0);
    CHECK_INT_EQ(count_files(dir, "tmp"), 0);
    CHECK_INT_EQ(count_files(dir, "queue"), 0);
    spool_close(sp);
    buf_free(&big);
    rm_tree(dir);
    free(dir);
}

/* Copies dir/from to dir/to: whole (cut 0), without its last -cut bytes, or its first cut bytes;
 * with byte `flip` changed unless flip is -1. */
static void copy_file(const char *dir, const char *from, const char *to, long cut, long flip)
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

static void test_recover_rejects(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    int done = 0;
    struct writer w;
    writer_start(&w, sp, &env_full, 5000, 1000, 9, dir, &done);
    run_until(&done, 1);
    CHECK_INT_EQ(w.status, 0);

    /* Damaged copies of a committed file, under names that look like queue ids. */
    char from[64];
    snprintf(from, sizeof from, "queue/%s", w.id);
    copy_file(dir, from, "queue/0000000000000000A1", -1, -1);  /* last byte missing */
    copy_file(dir, from, "queue/0000000000000000A2", -17, -1); /* no end record */
    copy_file(dir, from, "queue/0000000000000000A3", 40, -1);  /* envelope only */
    copy_file(dir, from, "queue/0000000000000000A4", 0, 3000); /* whole, one byte changed */
    copy_file(dir, from, "queue/not-an-id", 0, -1);            /* valid content, bad name */
    copy_file(dir, from, "tmp/0000000000000000B1", -100, -1);  /* half-written */
    char link[4096];
    snprintf(link, sizeof link, "%s/queue/0000000000000000A5", dir);
    CHECK(symlink(w.id, link) == 0); /* points at the good file: still not a queue file */

    /* The scan reports only the good one and changes nothing. */
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), 1);
    CHECK_INT_EQ(seen.n, 1);
    CHECK_STR_EQ(seen.id[0], w.id);
    seen_free(&seen);
    CHECK_INT_EQ(count_files(dir, "queue"), 7);
    struct buf body = BUF_INIT;
    CHECK_INT_EQ(spool_load_body(dir, "0000000000000000A1", &body, &err), -EBADMSG);
    CHECK_INT_EQ(body.len, 0);
    CHECK_INT_EQ(spool_load_body(dir, "../queue/x", &body, &err), -EINVAL);
    CHECK_INT_EQ(spool_load_body(dir, "0000000000000000ZZ", &body, &err), -ENOENT);
    buf_free(&body);
    spool_close(sp);

    /* Recovery keeps the good one, moves the bad ones aside and removes the half-written one. */
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 1);
    CHECK_INT_EQ(seen.n, 1);
    CHECK_STR_EQ(seen.id[0], w.id);
    seen_free(&seen);
    CHECK_INT_EQ(count_files(dir, "queue"), 1);
    CHECK_INT_EQ(count_files(dir, "tmp"), 0);
    CHECK_INT_EQ(count_files(dir, "corrupt"), 6);
    CHECK(path_exists(dir, "corrupt", "0000000000000000A1"));
    CHECK(path_exists(dir, "corrupt", "not-an-id"));
    spool_close(sp);
    buf_free(&w.body);
    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

struct result {
    int calls, status;
};

static void result_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
}

/* Commits one small message and returns its callback's result. */
static struct result commit_one(struct spool *sp, const struct spool_envelope *env)
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

static void test_errors(void)
{
    char *dir = make_tmpdir();
    char path[4096];
    struct buf err = BUF_INIT;

    /* A file where the spool directory should be. */
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    struct spool *sp = NULL;
    CHECK(spool_open(&loop, path, &sp, &err) < 0);
    CHECK(err.len > 0);
    buf_reset(&err);
    CHECK(spool_scan(path, seen_on_entry, NULL, &err) < 0);
    buf_reset(&err);

    /* tmp/ replaced by a file: the open fails, the commit reports it. */
    snprintf(path, sizeof path, "%s/spool", dir);
    sp = open_spool(path);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/tmp", path);
    CHECK(rmdir(sub) == 0);
    fd = open(sub, O_WRONLY | O_CREAT, 0600);
    close(fd);
    struct result r = commit_one(sp, &env_full);
    CHECK_INT_EQ(r.status, -ENOTDIR);
    CHECK_INT_EQ(spool_pending(sp), 0);
    unlink(sub);
    CHECK(mkdir(sub, 0700) == 0);
    r = commit_one(sp, &env_full); /* the spool works again */
    CHECK_INT_EQ(r.status, 0);

    /* An envelope over the caps fails at commit, without a file. */
    struct spool_envelope env = env_full;
    env.nrcpts = 20000;
    const char **many = calloc(env.nrcpts, sizeof *many);
    for (size_t i = 0; i < env.nrcpts; i++)
        many[i] = "r@example.com";
    env.rcpts = many;
    r = commit_one(sp, &env);
    CHECK_INT_EQ(r.status, -EINVAL);
    free(many);
    spool_close(sp);
    CHECK_INT_EQ(count_files(path, "tmp"), 0);
    CHECK_INT_EQ(count_files(path, "queue"), 1);

    /* queue/ replaced by a file: the rename fails, the tmp file is removed. */
    snprintf(path, sizeof path, "%s/spool2", dir);
    sp = open_spool(path);
    snprintf(sub, sizeof sub, "%s/queue", path);
    CHECK(rmdir(sub) == 0);
    fd = open(sub, O_WRONLY | O_CREAT, 0600);
    close(fd);
    r = commit_one(sp, &env_bounce);
    CHECK_INT_EQ(r.status, -ENOTDIR);
    CHECK_INT_EQ(count_files(path, "tmp"), 0);
    spool_close(sp);

    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

int main(void)
{
    setenv("UV_THREADPOOL_SIZE", "16", 1);
    uv_loop_init(&loop);
    test_write_commit_recover();
    test_concurrent_commits();
    test_abort();
    test_recover_rejects();
    test_errors();
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_spool");
}
