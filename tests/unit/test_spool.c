#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool/envelope.h"
#include "spool/spool.h"
#include "spool/spool_move.h"
#include "spool/spool_state.h"
#include "tests/unit/check.h"
#include "tests/unit/spool_fixture.h"

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

    /* Right after new: nothing on disk yet. */
    struct spool_msg *a = spool_msg_new(sp, &env_full);
    spool_msg_abort(a);
    CHECK_INT_EQ(spool_pending(sp), 0); /* nothing to clean up: gone at once */
    /* Mid-write: a megabyte buffered, its file being opened, more buffered behind it. */
    struct spool_msg *b = spool_msg_new(sp, &env_full);
    struct spool_msg *c = spool_msg_new(sp, &env_bounce);
    struct spool_msg *d = spool_msg_new(sp, &env_full);
    char c_id[SPOOL_ID_MAX + 1];
    snprintf(c_id, sizeof c_id, "%s", spool_msg_id(c));
    CHECK_INT_EQ(spool_msg_append(b, big.data, big.len, NULL, NULL), 0); /* starts the open */
    CHECK_INT_EQ(spool_msg_append(b, big.data, big.len, NULL, NULL), 1);
    spool_msg_abort(b);
    /* A file open with a write done, nothing in flight. */
    CHECK_INT_EQ(spool_msg_append(d, big.data, 100 * 1024, NULL, NULL), 0);
    run_until(&never, 1); /* lets d's open and write finish */
    CHECK(path_exists(dir, "tmp", spool_msg_id(d)));
    spool_msg_abort(d);
    /* Idle, small: no file was ever made for it. */
    spool_msg_append(c, "hello", 5, NULL, NULL);
    CHECK(!path_exists(dir, "tmp", c_id));
    spool_msg_abort(c);
    CHECK_INT_EQ(spool_pending(sp), 1); /* d; b finished above, c at once */
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
    char from[64], to[64];
    msg_rel(from, sizeof from, dir, "queue", w.id);
    static const struct {
        const char *id;
        long cut, flip;
    } damaged[] = {
        {"0000000000000000A1", -1, -1},  /* last byte missing */
        {"0000000000000000A2", -17, -1}, /* no end record */
        {"0000000000000000A3", 40, -1},  /* envelope only */
        {"0000000000000000A4", 0, 3000}, /* whole, one byte changed */
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        msg_rel(to, sizeof to, dir, "queue", damaged[i].id);
        copy_file(dir, from, to, damaged[i].cut, damaged[i].flip);
    }
    copy_file(dir, from, "queue/not-an-id", 0, -1);           /* valid content, bad name */
    copy_file(dir, from, "tmp/0000000000000000B1", -100, -1); /* half-written */
    char wrong[SPOOL_NAME_MAX + 1], path[4096];
    spool_layout_name("0000000000000000A6", wrong);
    wrong[0] = wrong[0] == '0' ? '1' : '0'; /* a valid file, but in another leaf than its id's */
    snprintf(path, sizeof path, "%s/queue/%.*s", dir, SPOOL_LEAF_LEN, wrong);
    CHECK(mkdir(path, 0700) == 0 || errno == EEXIST);
    snprintf(to, sizeof to, "queue/%s", wrong);
    copy_file(dir, from, to, 0, -1);
    char link[4096];
    msg_file(link, sizeof link, dir, "queue", "0000000000000000A5");
    CHECK(symlink(w.id, link) == 0); /* points at the good file: still not a queue file */

    /* The scan reports only the good one and changes nothing. */
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), 1);
    CHECK_INT_EQ(seen.n, 1);
    CHECK_STR_EQ(seen.id[0], w.id);
    seen_free(&seen);
    CHECK_INT_EQ(count_files(dir, "queue"), 8);
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
    CHECK_INT_EQ(count_files(dir, "corrupt"), 7);
    CHECK(path_exists(dir, "corrupt", "0000000000000000A1"));
    CHECK(path_exists(dir, "corrupt", "not-an-id"));
    spool_close(sp);
    buf_free(&w.body);
    buf_free(&err);
    rm_tree(dir);
    free(dir);
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

    /* tmp/ replaced by a file: a small message, written unnamed in its queue/ leaf, does not
     * need it; staged in tmp/ (a file system without O_TMPFILE), the open fails, the commit
     * reports it. */
    snprintf(path, sizeof path, "%s/spool", dir);
    sp = open_spool(path);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/tmp", path);
    CHECK(rmdir(sub) == 0);
    fd = open(sub, O_WRONLY | O_CREAT, 0600);
    close(fd);
    struct result r = commit_one(sp, &env_full);
    CHECK_INT_EQ(r.status, 0);
    spool_test_unnamed(sp, 0);
    r = commit_one(sp, &env_full);
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
    CHECK_INT_EQ(count_files(path, "queue"), 2);

    /* queue/ replaced by a file: the move fails (its leaf cannot be made in the directory that
     * is gone), the tmp file is removed. */
    snprintf(path, sizeof path, "%s/spool2", dir);
    sp = open_spool(path);
    snprintf(sub, sizeof sub, "%s/queue", path);
    CHECK(rmdir(sub) == 0);
    fd = open(sub, O_WRONLY | O_CREAT, 0600);
    close(fd);
    r = commit_one(sp, &env_bounce);
    CHECK_INT_EQ(r.status, -ENOENT);
    CHECK_INT_EQ(count_files(path, "tmp"), 0);
    spool_close(sp);

    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

/* ---- recipient state, prefix, removal, async load ---- */

/* Closes the spool and removes its directory. */
static void test_prefix(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char with[SPOOL_ID_MAX + 1], without[SPOOL_ID_MAX + 1];
    const char *prefix = "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n";
    const char *body = "Subject: hi\r\n\r\nbody\r\n";
    commit_with_prefix(sp, &env_full, prefix, body, with);
    commit_with_prefix(sp, &env_full, NULL, body, without);

    /* Too long a prefix, or one after commit, is refused. */
    struct spool_msg *msg = spool_msg_new(sp, &env_full);
    struct buf big = BUF_INIT;
    fill_random(&big, 65537, 5);
    CHECK_INT_EQ(spool_msg_prepend(msg, big.data, big.len), -EINVAL);
    buf_free(&big);
    spool_msg_abort(msg);
    int zero = 0;
    run_until(&zero, 1); /* runs until the abort is done */

    /* Readers get the prefix first, then the body; the size counts both. */
    struct buf got = BUF_INIT, err = BUF_INIT;
    CHECK_INT_EQ(spool_load_body(dir, with, &got, &err), 0);
    CHECK_MEM_EQ(got.data, got.len,
                 "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\nSubject: hi\r\n\r\nbody\r\n");
    buf_reset(&got);
    CHECK_INT_EQ(spool_load_body(dir, without, &got, &err), 0);
    CHECK_MEM_EQ(got.data, got.len, body);
    buf_free(&got);
    struct loaded l = load_sync(sp, with);
    CHECK_INT_EQ(l.status, 0);
    CHECK_INT_EQ(l.size, strlen(prefix) + strlen(body));
    CHECK_INT_EQ(l.body.len, strlen(prefix) + strlen(body));
    CHECK(l.body.len > 0 && memcmp(l.body.data, prefix, strlen(prefix)) == 0);
    CHECK_STR_EQ(l.state.data, "0/0/0/;0/0/0/;"); /* no state file: all pending */
    loaded_free(&l);
    spool_close(sp);

    sp = open_spool(dir);
    struct seen seen = {0};
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 2);
    int k = seen_find(&seen, with);
    CHECK(k >= 0 && seen.size[k] == strlen(prefix) + strlen(body));
    seen_free(&seen);
    teardown(sp, dir, &err);
}

static void test_rcpt_state(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[SPOOL_ID_MAX + 1];
    commit_with_prefix(sp, &env_full, NULL, "x\r\n", id);

    struct spool_rcpt_update first[] = {
        {.rcpt = 0,
         .status = SPOOL_RCPT_DEFERRED,
         .attempts = 1,
         .next_attempt = 1700000600,
         .reply = "451 4.7.1 try later",
         .remote_mta = "mx.example.com"},
        rcpt_status(1, SPOOL_RCPT_DEFERRED, 1, 1700000600, NULL),
    };
    long committed = file_size(dir, "queue", id);
    CHECK_INT_EQ(update_sync(sp, id, first, 2), 0);
    /* The records go after the queue file's end record: no second file. */
    CHECK(!path_exists(dir, "state", id));
    CHECK(file_size(dir, "queue", id) > committed);
    struct stat st;
    char path[4096];
    snprintf(path, sizeof path, "%s/state", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);

    /* Three updates in a row, without waiting: run one at a time, called back in order, and the
     * last record of a recipient wins. A long reply with line breaks becomes one capped line. */
    struct buf longreply = BUF_INIT;
    buf_append_str(&longreply, "550 5.1.1 no\r\nsuch user ");
    while (longreply.len < 1500)
        buf_append_str(&longreply, "x");
    struct spool_rcpt_update second =
        rcpt_status(0, SPOOL_RCPT_DEFERRED, 2, 1700001200, "421 busy");
    struct spool_rcpt_update third = rcpt_status(1, SPOOL_RCPT_DELIVERED, 2, 0, "250 2.0.0 ok");
    struct spool_rcpt_update fourth = {.status = SPOOL_RCPT_FAILED,
                                       .attempts = 3,
                                       .reply = longreply.data,
                                       .remote_mta = "mx1.example.com"};
    struct op_result r = {0};
    spool_rcpt_update(sp, id, &second, 1, op_on_done, &r);
    spool_rcpt_update(sp, id, &third, 1, op_on_done, &r);
    spool_rcpt_update(sp, id, &fourth, 1, op_on_done, &r);
    CHECK_INT_EQ(spool_pending(sp), 3);
    run_until(&r.calls, 3);
    CHECK_INT_EQ(r.calls, 3);
    CHECK(r.status[0] == 0 && r.status[1] == 0 && r.status[2] == 0);
    CHECK_INT_EQ(spool_pending(sp), 0);

    struct buf want = BUF_INIT;
    buf_printf(&want, "3/3/0/550 5.1.1 no  such user %.*s @mx1.example.com;2/2/0/250 2.0.0 ok;",
               SPOOL_REPLY_MAX - 24, longreply.data + 25);
    struct loaded l = load_sync(sp, id);
    CHECK_INT_EQ(l.status, 0);
    CHECK_STR_EQ(l.state.data, want.data);
    CHECK_MEM_EQ(l.body.data, l.body.len, "x\r\n");
    loaded_free(&l);
    spool_close(sp);

    /* Scan and recovery see the same; a FAILED recipient keeps the message. */
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), 1);
    CHECK_STR_EQ(seen.state[0].data, want.data);
    seen_free(&seen);
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 1);
    CHECK_STR_EQ(seen.state[0].data, want.data);
    seen_free(&seen);

    /* Once every recipient is final, the next recovery removes the message and its states. */
    struct spool_rcpt_update bounced = rcpt_status(0, SPOOL_RCPT_BOUNCED, 3, 0, "dsn sent");
    CHECK_INT_EQ(update_sync(sp, id, &bounced, 1), 0);
    spool_close(sp);
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 0);
    CHECK_INT_EQ(count_files(dir, "queue"), 0);
    CHECK_INT_EQ(count_files(dir, "state"), 0);

    /* Bad ids fail through the callback. */
    CHECK_INT_EQ(update_sync(sp, "../queue/x", &bounced, 1), -EINVAL);
    l = load_sync(sp, "not/an/id");
    CHECK_INT_EQ(l.status, -EINVAL);
    loaded_free(&l);
    buf_free(&want);
    buf_free(&longreply);
    teardown(sp, dir, &err);
}

/* A state entry Sluice never makes (a symbolic link out of the spool, a directory) costs neither
 * the message nor the start: recovery moves it to corrupt/ as ID.state and every recipient is
 * pending. */
static void test_foreign_state_entries(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[3][SPOOL_ID_MAX + 1], path[4096], outside[4096];
    for (int i = 0; i < 3; i++) {
        commit_with_prefix(sp, &env_full, NULL, "x\r\n", id[i]);
        legacy_state_file(dir, id[i]);
    }
    struct spool_rcpt_update deferred =
        rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1700000600, "451 later");
    for (int i = 0; i < 3; i++)
        CHECK_INT_EQ(update_sync(sp, id[i], &deferred, 1), 0);
    spool_close(sp);
    snprintf(outside, sizeof outside, "%s/outside", dir);
    FILE *f = fopen(outside, "w"); /* what a link would make recovery read: not ours */
    CHECK(f != NULL && fputs("forged\n", f) >= 0 && fclose(f) == 0);
    msg_file(path, sizeof path, dir, "state", id[0]);
    CHECK(unlink(path) == 0 && symlink(outside, path) == 0);
    msg_file(path, sizeof path, dir, "state", id[1]);
    CHECK(unlink(path) == 0 && mkdir(path, 0700) == 0);

    struct seen seen = {0};
    struct buf err = BUF_INIT;
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 3);
    CHECK_INT_EQ(err.len, 0);
    CHECK_INT_EQ(seen.n, 3);
    for (int i = 0; i < seen.n && i < 3; i++) {
        CHECK_STR_EQ(seen.id[i], id[i]);
        CHECK_INT_EQ(strstr(seen.state[i].data, "451 later") != NULL, i == 2);
        CHECK(strstr(seen.state[i].data, "forged") == NULL);
    }
    seen_free(&seen);
    CHECK_INT_EQ(count_files(dir, "queue"), 3);
    CHECK_INT_EQ(count_files(dir, "corrupt"), 2);
    snprintf(path, sizeof path, "%s.state", id[0]);
    CHECK(path_exists(dir, "corrupt", path));
    snprintf(path, sizeof path, "%s.state", id[1]);
    CHECK(path_exists(dir, "corrupt", path));
    teardown(sp, dir, &err);
}

/* A message of one recipient with one state record ("451 first"), written after its queue file's
 * end record or, legacy set, in the state file of a message queued by an earlier version. Fills
 * id and *sub (the folder of the file the records go to); returns that file's size. */
static long one_state_record(struct spool *sp, const char *dir, int legacy, char *id,
                             const char **sub)
{
    commit_with_prefix(sp, &env_bounce, NULL, "x\r\n", id);
    *sub = legacy ? "state" : "queue";
    if (legacy)
        legacy_state_file(dir, id);
    struct spool_rcpt_update a = rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1700000600, "451 first");
    CHECK_INT_EQ(update_sync(sp, id, &a, 1), 0);
    return file_size(dir, *sub, id);
}

/* A state record torn by a crash at the end of a message's states is ignored by a scan and cut
 * by recovery, in the queue file or, legacy set, in the state file of an earlier version. */
static void test_torn_tail(int legacy)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[SPOOL_ID_MAX + 1];
    const char *sub;
    long good = one_state_record(sp, dir, legacy, id, &sub);
    struct spool_rcpt_update b = rcpt_status(0, SPOOL_RCPT_DELIVERED, 2, 0, "250 second");
    CHECK_INT_EQ(update_sync(sp, id, &b, 1), 0);
    spool_close(sp);

    /* A crash in the middle of the second record. */
    char path[4096];
    msg_file(path, sizeof path, dir, sub, id);
    CHECK(truncate(path, good + 10) == 0);

    /* The scan ignores the torn record and changes nothing. */
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), 1);
    CHECK_STR_EQ(seen.state[0].data, "1/1/1700000600/451 first;");
    seen_free(&seen);
    CHECK_INT_EQ(file_size(dir, sub, id), good + 10);

    /* Recovery cuts it, so a record appended now is read again. */
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 1);
    CHECK_STR_EQ(seen.state[0].data, "1/1/1700000600/451 first;");
    seen_free(&seen);
    CHECK_INT_EQ(file_size(dir, sub, id), good);
    struct spool_rcpt_update c = rcpt_status(0, SPOOL_RCPT_DEFERRED, 2, 1700009999, "452 third");
    CHECK_INT_EQ(update_sync(sp, id, &c, 1), 0);
    struct loaded l = load_sync(sp, id);
    CHECK_STR_EQ(l.state.data, "1/2/1700009999/452 third;");
    loaded_free(&l);

    /* A length beyond the cap, then a valid record: both ignored by readers. */
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(write(fd, "\xff\xff\xff\xff", 4) == 4);
    close(fd);
    CHECK_INT_EQ(update_sync(sp, id, &b, 1), 0);
    l = load_sync(sp, id);
    CHECK_STR_EQ(l.state.data, "1/2/1700009999/452 third;");
    loaded_free(&l);
    teardown(sp, dir, &err);
}

/* First updates of many messages at once: every callback comes, every state is read back, and no
 * message got a second file. */
static void test_many_updates(void)
{
    enum { N = 40 };
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char ids[N][SPOOL_ID_MAX + 1];
    for (int i = 0; i < N; i++)
        commit_with_prefix(sp, &env_bounce, NULL, "x\r\n", ids[i]);
    struct op_result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        struct spool_rcpt_update u =
            rcpt_status(0, SPOOL_RCPT_DEFERRED, (unsigned)i + 1, 1700000000 + i, "451 later");
        spool_rcpt_update(sp, ids[i], &u, 1, op_on_done, &r[i]);
    }
    int calls = 0;
    uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
    while (spool_pending(sp) > 0 && uv_hrtime() < deadline && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    for (int i = 0; i < N; i++) {
        calls += r[i].calls;
        CHECK_INT_EQ(r[i].status[0], 0);
    }
    CHECK_INT_EQ(calls, N);
    CHECK_INT_EQ(count_files(dir, "state"), 0);
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_scan(dir, seen_on_entry, &seen, &err), N);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "1/%d/%d/451 later;", i + 1, 1700000000 + i);
        int k = seen_find(&seen, ids[i]);
        CHECK(k >= 0);
        if (k >= 0)
            CHECK_STR_EQ(seen.state[k].data, want);
    }
    seen_free(&seen);
    teardown(sp, dir, &err);
}

/* An append cut short (here by a file size limit, as a full disk would) fails, is cut off the
 * file again, and does not hide the records appended after it. */
static void test_failed_append(int legacy)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[SPOOL_ID_MAX + 1];
    const char *sub;
    long good = one_state_record(sp, dir, legacy, id, &sub);

    struct rlimit saved, limit;
    CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    limit = saved;
    limit.rlim_cur = (rlim_t)good + 10;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    struct spool_rcpt_update b = rcpt_status(0, SPOOL_RCPT_DEFERRED, 2, 1700001200, "452 second");
    CHECK_INT_EQ(update_sync(sp, id, &b, 1), -EFBIG);
    CHECK(setrlimit(RLIMIT_FSIZE, &saved) == 0);
    signal(SIGXFSZ, SIG_DFL);
    CHECK_INT_EQ(file_size(dir, sub, id), good);

    struct spool_rcpt_update c = rcpt_status(0, SPOOL_RCPT_DELIVERED, 3, 0, "250 third");
    CHECK_INT_EQ(update_sync(sp, id, &c, 1), 0);
    struct loaded l = load_sync(sp, id);
    CHECK_STR_EQ(l.state.data, "2/3/0/250 third;");
    loaded_free(&l);
    struct buf err = BUF_INIT;
    teardown(sp, dir, &err);
}

static void test_remove(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[SPOOL_ID_MAX + 1], kept[SPOOL_ID_MAX + 1];
    commit_with_prefix(sp, &env_full, NULL, "x\r\n", id);
    commit_with_prefix(sp, &env_full, NULL, "y\r\n", kept);
    struct spool_rcpt_update u = rcpt_status(0, SPOOL_RCPT_DELIVERED, 1, 0, "250 ok");
    CHECK_INT_EQ(update_sync(sp, id, &u, 1), 0);
    CHECK(!path_exists(dir, "state", id)); /* its states are in its queue file */

    /* An update queued behind the removal finds the message gone and creates no file. */
    struct op_result r = {0};
    spool_msg_remove(sp, id, op_on_done, &r);
    spool_rcpt_update(sp, id, &u, 1, op_on_done, &r);
    spool_msg_remove(sp, id, NULL, NULL); /* no callback wanted */
    run_until(&r.calls, 2);
    CHECK_INT_EQ(r.status[0], 0);
    CHECK_INT_EQ(r.status[1], -ENOENT);
    while (spool_pending(sp) > 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    CHECK(!path_exists(dir, "queue", id));
    CHECK(!path_exists(dir, "state", id));
    CHECK(path_exists(dir, "queue", kept));
    struct loaded l = load_sync(sp, id);
    CHECK_INT_EQ(l.status, -ENOENT);
    loaded_free(&l);
    spool_close(sp);

    /* A state file left without its message (a crash between the unlinks) goes at recovery. */
    char path[4096];
    msg_file(path, sizeof path, dir, "state", id);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    sp = open_spool(dir);
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 1);
    CHECK_STR_EQ(seen.id[0], kept);
    seen_free(&seen);
    CHECK(!path_exists(dir, "state", id));
    teardown(sp, dir, &err);
}

/* ---- queue id clashes ---- */

struct committed {
    int calls, status;
    char id[SPOOL_ID_MAX + 1];
};

static void committed_on_done(struct spool_msg *msg, int status, void *arg)
{
    struct committed *c = arg;
    c->calls++;
    c->status = status;
    snprintf(c->id, sizeof c->id, "%s", spool_msg_id(msg));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void check_file(const char *path, const char *want)
{
    char got[64] = "";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f != NULL) {
        size_t n = fread(got, 1, sizeof got - 1, f);
        got[n] = '\0';
        fclose(f);
    }
    CHECK_STR_EQ(got, want);
}

/* Both ways of moving refuse to replace a file, and move when the name is free. */
static void test_move_noreplace(void)
{
    char *dir = make_tmpdir();
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/from", dir);
    snprintf(to, sizeof to, "%s/to", dir);
    int (*const moves[])(const char *, const char *) = {spool_move_noreplace, spool_move_by_link};
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
        write_file(from, "new");
        write_file(to, "committed");
        CHECK_INT_EQ(moves[i](from, to), -EEXIST);
        check_file(to, "committed");
        check_file(from, "new");
        CHECK_INT_EQ(unlink(to), 0);
        CHECK_INT_EQ(moves[i](from, to), 0);
        check_file(to, "new");
        CHECK(access(from, F_OK) < 0 && errno == ENOENT);
        CHECK_INT_EQ(unlink(to), 0);
    }
    CHECK_INT_EQ(spool_move_noreplace(from, to), -ENOENT);
    rm_tree(dir);
    free(dir);
}

/* A message whose id is already taken in queue/ (as after a clock set back) takes a fresh one:
 * both messages survive, whole. */
static void test_id_clash(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char first[SPOOL_ID_MAX + 1];
    commit_with_prefix(sp, &env_full, NULL, "Subject: first\r\n\r\none\r\n", first);

    spool_test_next_id(sp, first);
    struct committed c = {0, 1, ""};
    struct spool_msg *msg = spool_msg_new(sp, &env_bounce);
    CHECK_STR_EQ(spool_msg_id(msg), first); /* the hook works: this id is taken */
    const char *body = "Subject: second\r\n\r\ntwo\r\n";
    spool_msg_append(msg, body, strlen(body), NULL, NULL);
    spool_msg_commit(msg, committed_on_done, &c);
    run_until(&c.calls, 1);
    CHECK_INT_EQ(c.calls, 1);
    CHECK_INT_EQ(c.status, 0);
    CHECK(c.id[0] != '\0' && strcmp(c.id, first) != 0);
    CHECK_INT_EQ(count_files(dir, "queue"), 2);
    CHECK_INT_EQ(count_files(dir, "tmp"), 0);

    struct buf got = BUF_INIT, err = BUF_INIT;
    CHECK_INT_EQ(spool_load_body(dir, first, &got, &err), 0);
    CHECK_MEM_EQ(got.data, got.len, "Subject: first\r\n\r\none\r\n");
    buf_reset(&got);
    CHECK_INT_EQ(spool_load_body(dir, c.id, &got, &err), 0);
    CHECK_MEM_EQ(got.data, got.len, body);
    buf_free(&got);
    spool_close(sp);

    sp = open_spool(dir);
    struct seen seen = {0};
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 2);
    CHECK(seen_find(&seen, first) >= 0 && seen_find(&seen, c.id) >= 0);
    int k = seen_find(&seen, c.id);
    CHECK(k >= 0 && strstr(seen.env[k].data, "postmaster@example.com") != NULL);
    seen_free(&seen);
    teardown(sp, dir, &err);
}

/* A message's leaf is made when the message first needs it, whether its file is staged unnamed in
 * the leaf or in tmp/; a leaf removed by hand is made again. */
static void test_leaf_made_when_missing(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    struct buf err = BUF_INIT;
    char path[4096];
    snprintf(path, sizeof path, "%s/queue", dir);
    CHECK_INT_EQ(count_entries(path), 0); /* none made by spool_open */
    for (int unnamed = 0; unnamed <= 1; unnamed++) {
        spool_test_unnamed(sp, unnamed);
        spool_test_next_id(sp, unnamed ? "1K1SY7NTQNJ002MF" : "0000000000000001");
        snprintf(path, sizeof path, "%s/queue/%s", dir, unnamed ? "5f0" : "bf2");
        CHECK(access(path, F_OK) < 0);
        struct result r = commit_one(sp, &env_full);
        CHECK_INT_EQ(r.status, 0);
        CHECK(path_exists(dir, "queue", unnamed ? "1K1SY7NTQNJ002MF" : "0000000000000001"));
    }
    CHECK_INT_EQ(count_files(dir, "queue"), 2);
    teardown(sp, dir, &err);
}

/* ---- the remote MTA in state records ---- */

/* A state record as the format defines it, payload given whole (reply, maybe NUL and host). */
static void state_record(struct buf *out, uint32_t rcpt, int status, const char *text, size_t len)
{
    size_t payload = SPOOL_STATE_FIXED + len;
    char *rec = buf_reserve(out, 4 + payload + 4);
    memset(rec, 0, 4 + payload + 4);
    envelope_put_be32(rec, (uint32_t)payload);
    envelope_put_be32(rec + 4, rcpt);
    rec[8] = (char)status;
    envelope_put_be32(rec + 9, 1);
    memcpy(rec + 4 + SPOOL_STATE_FIXED, text, len);
    envelope_put_be32(rec + 4 + payload, envelope_crc32(0, rec, 4 + payload));
    out->len += 4 + payload + 4;
}

static void test_state_remote_mta(void)
{
    /* A record from before the field (no NUL) reads as before, with no remote MTA; a record that
     * is intact but has two NULs is skipped, not taken for a torn tail. */
    struct buf file = BUF_INIT;
    const char old[] = "550 5.1.1 gone (mx.old.example)";
    state_record(&file, 0, SPOOL_RCPT_FAILED, old, strlen(old));
    const char twice[] = "550 x\0mx\0y";
    state_record(&file, 1, SPOOL_RCPT_FAILED, twice, sizeof twice - 1);
    struct spool_state st;
    spool_state_init(&st, 2);
    spool_state_feed(&st, file.data, file.len);
    CHECK_INT_EQ(st.valid_len, file.len);
    CHECK_INT_EQ(st.rcpts[0].status, SPOOL_RCPT_FAILED);
    CHECK_STR_EQ(st.rcpts[0].reply, old);
    CHECK_STR_EQ(st.rcpts[0].remote_mta, "");
    CHECK_INT_EQ(st.rcpts[1].status, SPOOL_RCPT_PENDING);
    spool_state_free(&st);

    /* Round trip: the host is kept, cleaned like a reply and cut to its cap; none is none. */
    struct buf longhost = BUF_INIT;
    while (longhost.len < SPOOL_REMOTE_MTA_MAX + 40)
        buf_append_str(&longhost, "h");
    struct buf longreply = BUF_INIT;
    while (longreply.len < SPOOL_REPLY_MAX + 10)
        buf_append_str(&longreply, "r");
    struct spool_rcpt_update ups[] = {
        {.rcpt = 0,
         .status = SPOOL_RCPT_FAILED,
         .attempts = 2,
         .reply = "550 5.1.1 no such user",
         .remote_mta = "mx.example.net"},
        {.rcpt = 1,
         .status = SPOOL_RCPT_DEFERRED,
         .attempts = 1,
         .next_attempt = 1700000600,
         .reply = "451 later",
         .remote_mta = "mx\r\nevil",
         .delay_warned = 2},
        {.rcpt = 2,
         .status = SPOOL_RCPT_FAILED,
         .attempts = 1,
         .reply = longreply.data,
         .remote_mta = longhost.data},
        {.rcpt = 3,
         .status = SPOOL_RCPT_FAILED,
         .attempts = 1,
         .reply = "local reason",
         .remote_mta = ""},
    };
    buf_reset(&file);
    spool_state_encode(ups, 4, &file);
    spool_state_init(&st, 4);
    for (size_t off = 0; off < file.len; off += 7) /* in pieces */
        spool_state_feed(&st, file.data + off, file.len - off < 7 ? file.len - off : 7);
    CHECK_INT_EQ(st.valid_len, file.len);
    CHECK_STR_EQ(st.rcpts[0].reply, "550 5.1.1 no such user");
    CHECK_STR_EQ(st.rcpts[0].remote_mta, "mx.example.net");
    CHECK_STR_EQ(st.rcpts[1].remote_mta, "mx  evil");
    /* The delay DSNs sent ride in a record of their own that leaves the state as it was. */
    CHECK_INT_EQ(st.rcpts[1].delay_warned, 2);
    CHECK_INT_EQ(st.rcpts[1].status, SPOOL_RCPT_DEFERRED);
    CHECK_STR_EQ(st.rcpts[1].reply, "451 later");
    CHECK_INT_EQ(st.rcpts[0].delay_warned, 0);
    CHECK_INT_EQ(strlen(st.rcpts[2].reply), SPOOL_REPLY_MAX);
    CHECK_INT_EQ(strlen(st.rcpts[2].remote_mta), SPOOL_REMOTE_MTA_MAX);
    CHECK_STR_EQ(st.rcpts[3].reply, "local reason");
    CHECK_STR_EQ(st.rcpts[3].remote_mta, "");

    /* A later record without a host clears it. */
    struct spool_rcpt_update local = rcpt_status(0, SPOOL_RCPT_BOUNCED, 2, 0, "dsn sent");
    buf_reset(&file);
    spool_state_encode(&local, 1, &file);
    spool_state_feed(&st, file.data, file.len);
    CHECK_STR_EQ(st.rcpts[0].remote_mta, "");
    spool_state_free(&st);
    buf_free(&longhost);
    buf_free(&longreply);
    buf_free(&file);
}

/* A success notice owed rides in a record of its own, written ahead of the delivery it belongs to;
 * it keeps the message from counting as done until a notice-only record clears it, and leaves the
 * status and reply as they were. */
static void test_state_notice(void)
{
    struct spool_rcpt_update delivered = {.rcpt = 0,
                                          .status = SPOOL_RCPT_DELIVERED,
                                          .attempts = 1,
                                          .reply = "250 2.0.0 ok",
                                          .notice_write = 1,
                                          .notice = SPOOL_NOTICE_OWED};
    struct buf file = BUF_INIT;
    spool_state_encode(&delivered, 1, &file);
    struct spool_state st;
    spool_state_init(&st, 1);
    spool_state_feed(&st, file.data, file.len);
    CHECK_INT_EQ(st.valid_len, file.len);
    CHECK_INT_EQ(st.rcpts[0].status, SPOOL_RCPT_DELIVERED);
    CHECK_INT_EQ(st.rcpts[0].notice, SPOOL_NOTICE_OWED);
    CHECK_INT_EQ(spool_state_all_final(&st), 0);

    /* A torn write keeps the notice: its record comes before the status. */
    struct spool_state torn;
    spool_state_init(&torn, 1);
    spool_state_feed(&torn, file.data, file.len - 1);
    CHECK_INT_EQ(torn.rcpts[0].status, SPOOL_RCPT_PENDING);
    spool_state_free(&torn);

    struct spool_rcpt_update spooling = {.rcpt = 0,
                                         .notice_write = 1,
                                         .notice_only = 1,
                                         .notice = SPOOL_NOTICE_SPOOLING,
                                         .notice_dsn = "0000000000000000N1"};
    buf_reset(&file);
    spool_state_encode(&spooling, 1, &file);
    spool_state_feed(&st, file.data, file.len);
    CHECK_INT_EQ(st.rcpts[0].notice, SPOOL_NOTICE_SPOOLING);
    CHECK_STR_EQ(st.rcpts[0].notice_dsn, "0000000000000000N1");
    CHECK_INT_EQ(st.rcpts[0].status, SPOOL_RCPT_DELIVERED);
    CHECK_STR_EQ(st.rcpts[0].reply, "250 2.0.0 ok");
    CHECK_INT_EQ(spool_state_all_final(&st), 0);

    struct spool_rcpt_update cleared = {
        .rcpt = 0, .notice_write = 1, .notice_only = 1, .notice = SPOOL_NOTICE_NONE};
    buf_reset(&file);
    spool_state_encode(&cleared, 1, &file);
    spool_state_feed(&st, file.data, file.len);
    CHECK_INT_EQ(st.rcpts[0].notice, SPOOL_NOTICE_NONE);
    CHECK_STR_EQ(st.rcpts[0].notice_dsn, "");
    CHECK_INT_EQ(st.rcpts[0].status, SPOOL_RCPT_DELIVERED);
    CHECK_INT_EQ(spool_state_all_final(&st), 1);
    spool_state_free(&st);
    buf_free(&file);
}

int main(void)
{
    setenv("UV_THREADPOOL_SIZE", "16", 1);
    uv_loop_init(&loop);
    test_write_commit_recover();
    test_concurrent_commits();
    test_abort();
    test_state_notice();
    test_recover_rejects();
    test_errors();
    test_prefix();
    test_rcpt_state();
    test_foreign_state_entries();
    test_torn_tail(0);
    test_torn_tail(1);
    test_failed_append(0);
    test_failed_append(1);
    test_many_updates();
    test_remove();
    test_move_noreplace();
    test_id_clash();
    test_leaf_made_when_missing();
    test_state_remote_mta();
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_spool");
}
