/*
 * The spool's group commit (spool_journal.c) and its replay at start (spool_replay.c): concurrent
 * commits and state updates share syncs, each callback runs only once its record is durable, a
 * crash that lost unsynced file bytes is repaired from the journal, segments are checkpointed away,
 * and a spool written before the journal existed is read as it is.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "lib/uvutil.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "spool/spool_journal.h"
#include "spool/spool_layout.h"
#include "spool/spool_state.h"
#include "tests/unit/check.h"
#include "tests/unit/spool_fixture.h"

#define MESSAGES 64

/* ---- what the journal holds on disk ---- */

static struct spool_journal_stats stats(struct spool *sp)
{
    struct spool_journal_stats st;
    spool_test_journal_stats(sp, &st);
    return st;
}

/* Reads the journal segment `seq` of the spool at dir whole into out; 0 or -errno. */
static int segment_read(const char *dir, uint64_t seq, struct buf *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/journal/%016llx", dir, (unsigned long long)seq);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(out, chunk, (size_t)n);
    close(fd);
    return 0;
}

/* Where the record of type for id ends in the segment (its first one), or 0 when it has none. */
static size_t record_end(const struct buf *seg, enum spool_journal_rec type, const char *id)
{
    struct spool_journal_rec_view rec;
    size_t pos = 0;
    while (spool_journal_decode(seg->data, seg->len, &pos, &rec))
        if (rec.type == type && strcmp(rec.id, id) == 0)
            return pos;
    return 0;
}

/* 1 when the spool's current journal segment holds the record of type for id within the bytes
 * known durable: what a callback may rely on when it runs. */
static int record_durable(struct spool *sp, const char *dir, enum spool_journal_rec type,
                          const char *id)
{
    struct spool_journal_stats st = stats(sp);
    struct buf seg = BUF_INIT;
    int ok = segment_read(dir, st.segment, &seg) == 0;
    size_t end = ok ? record_end(&seg, type, id) : 0;
    buf_free(&seg);
    return end > 0 && end <= st.synced;
}

/* ---- many commits at once ---- */

struct batch_msg {
    struct spool *sp;
    const char *dir;
    struct buf body;
    char id[SPOOL_ID_MAX + 1];
    int calls, status;
    int durable_at_callback; /* its record was within the synced bytes when called back */
    int queued_at_callback;  /* queue/<id> existed when called back */
    int *done;
};

static void batch_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct batch_msg *m = arg;
    m->calls++;
    m->status = status;
    snprintf(m->id, sizeof m->id, "%s", spool_msg_id(msg));
    m->durable_at_callback = record_durable(m->sp, m->dir, SPOOL_JOURNAL_REC_MSG, m->id);
    m->queued_at_callback = path_exists(m->dir, "queue", m->id);
    (*m->done)++;
}

/* Starts and commits n small messages at once; *done counts their callbacks. */
static void commit_start(struct spool *sp, const char *dir, struct batch_msg *m, int n, int *done)
{
    for (int i = 0; i < n; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].sp = sp;
        m[i].dir = dir;
        m[i].done = done;
        fill_random(&m[i].body, 200 + (size_t)i * 37, (uint32_t)i + 1);
        struct spool_msg *msg = spool_msg_new(sp, i % 2 ? &env_full : &env_bounce);
        spool_msg_append(msg, m[i].body.data, m[i].body.len, NULL, NULL);
        spool_msg_commit(msg, batch_on_committed, &m[i]);
    }
    CHECK_INT_EQ(*done, 0);
}

/* commit_start, then runs the loop until every message is called back. */
static void commit_many(struct spool *sp, const char *dir, struct batch_msg *m, int n)
{
    int done = 0;
    commit_start(sp, dir, m, n, &done);
    run_until(&done, n);
    CHECK_INT_EQ(done, n);
}

static void batch_free(struct batch_msg *m, int n)
{
    for (int i = 0; i < n; i++)
        buf_free(&m[i].body);
}

/* Runs the loop until the (held) journal has gathered n records, or 60 s pass. */
static void run_until_gathered(struct spool *sp, uint64_t n)
{
    uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
    while (stats(sp).waiting < n && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT_EQ(stats(sp).waiting, n);
}

static void run_until_idle(struct spool *sp)
{
    uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
    while (spool_pending(sp) > 0 && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT_EQ(spool_pending(sp), 0);
}

static void test_commits_share_syncs(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    static struct batch_msg m[MESSAGES];

    /* Every commit in flight while a sync runs (here: while the journal is held) goes into the
     * next one: 64 commits, one sync. None is answered, or moved into queue/, before it. */
    int done = 0;
    spool_test_journal_hold(sp, 1);
    commit_start(sp, dir, m, MESSAGES, &done);
    run_until_gathered(sp, MESSAGES);
    CHECK_INT_EQ(done, 0);
    CHECK_INT_EQ(stats(sp).syncs, 0);
    CHECK_INT_EQ(count_files(dir, "queue"), 0);
    spool_test_journal_hold(sp, 0);
    run_until(&done, MESSAGES);
    int ok = 0, durable = 0, queued = 0;
    for (int i = 0; i < MESSAGES; i++) {
        ok += m[i].calls == 1 && m[i].status == 0;
        durable += m[i].durable_at_callback;
        queued += m[i].queued_at_callback;
    }
    CHECK_INT_EQ(ok, MESSAGES);
    CHECK_INT_EQ(durable, MESSAGES); /* no callback before its batch was synced */
    CHECK_INT_EQ(queued, MESSAGES);  /* ... and moved into queue/ */
    CHECK_INT_EQ(stats(sp).records, MESSAGES);
    CHECK_INT_EQ(stats(sp).syncs, 1);
    CHECK_INT_EQ(count_files(dir, "tmp"), 0);

    /* Unheld, batches form by themselves while a sync runs: how many depends on the disk. */
    static struct batch_msg more[MESSAGES];
    commit_many(sp, dir, more, MESSAGES);
    fprintf(stderr, "%d commits at once, unheld: %llu journal syncs\n", MESSAGES,
            (unsigned long long)stats(sp).syncs - 1);

    /* State updates of every message at once share one sync as well, and are called back only
     * after it. */
    struct spool_journal_stats before = stats(sp);
    struct op_result r[MESSAGES] = {0};
    spool_test_journal_hold(sp, 1);
    for (int i = 0; i < MESSAGES; i++) {
        struct spool_rcpt_update u = {.rcpt = 0,
                                      .status = SPOOL_RCPT_DELIVERED,
                                      .attempts = 1,
                                      .reply = "250 ok",
                                      .remote_mta = "mx.example.net"};
        spool_rcpt_update(sp, m[i].id, &u, 1, op_on_done, &r[i]);
    }
    run_until_gathered(sp, MESSAGES);
    int called = 0;
    for (int i = 0; i < MESSAGES; i++)
        called += r[i].calls;
    CHECK_INT_EQ(called, 0);
    spool_test_journal_hold(sp, 0);
    run_until_idle(sp);
    done = 0;
    for (int i = 0; i < MESSAGES; i++)
        done += r[i].calls == 1 && r[i].status[0] == 0;
    CHECK_INT_EQ(done, MESSAGES);
    CHECK_INT_EQ(stats(sp).records - before.records, MESSAGES);
    CHECK_INT_EQ(stats(sp).syncs - before.syncs, 1);
    struct loaded l = load_sync(sp, m[5].id);
    CHECK_STR_EQ(l.state.data, "2/1/0/250 ok @mx.example.net;0/0/0/;");
    loaded_free(&l);
    batch_free(m, MESSAGES);
    batch_free(more, MESSAGES);
    spool_close(sp);
    CHECK_INT_EQ(count_files(dir, "journal"), 0); /* a clean stop leaves nothing to replay */
    rm_tree(dir);
    free(dir);
}

/* Each update's callback runs only once its journal record is synced. */
struct durable_op {
    struct spool *sp;
    const char *dir;
    const char *id;
    int calls, status, durable;
};

static void durable_on_done(int status, void *arg)
{
    struct durable_op *d = arg;
    d->calls++;
    d->status = status;
    d->durable = record_durable(d->sp, d->dir, SPOOL_JOURNAL_REC_STATE, d->id);
}

static void test_update_durable_at_callback(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[SPOOL_ID_MAX + 1];
    commit_with_prefix(sp, &env_full, NULL, "Subject: s\r\n\r\nbody\r\n", id);
    struct durable_op d = {sp, dir, id, 0, 1, 0};
    struct spool_rcpt_update u = rcpt_status(1, SPOOL_RCPT_DEFERRED, 1, 1700000999, "451 later");
    spool_rcpt_update(sp, id, &u, 1, durable_on_done, &d);
    run_until(&d.calls, 1);
    CHECK_INT_EQ(d.status, 0);
    CHECK_INT_EQ(d.durable, 1);
    spool_close(sp);
    rm_tree(dir);
    free(dir);
}

/* ---- a crash: files lost what was never synced, the journal brings it back ---- */

static void copy_tree(const char *from, const char *to)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", from, to);
    CHECK_INT_EQ(system(cmd), 0);
}

static void file_cut(const char *dir, const char *sub, const char *id, off_t len)
{
    char path[4096];
    msg_file(path, sizeof path, dir, sub, id);
    CHECK_INT_EQ(truncate(path, len), 0);
}

static void test_replay_repairs(void)
{
    char *dir = make_tmpdir();
    char *image = make_tmpdir();
    struct spool *sp = open_spool(dir);
    static struct batch_msg m[6];
    commit_many(sp, dir, m, 6);
    /* m1 (two recipients): one bounced, one deferred; m2 (with a state file): deferred; m4:
     * removed. */
    struct spool_rcpt_update u0[] = {
        {.rcpt = 0,
         .status = SPOOL_RCPT_BOUNCED,
         .attempts = 1,
         .reply = "550 no",
         .remote_mta = "mx.example.com"},
        rcpt_status(1, SPOOL_RCPT_DEFERRED, 2, 1700000777, "451 busy")};
    struct spool_rcpt_update u1 = rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1700000555, "421 later");
    const char *id0 = m[1].id;
    long committed0 = file_size(dir, "queue", id0);
    CHECK_INT_EQ(update_sync(sp, id0, u0, 2), 0);
    legacy_state_file(dir, m[2].id); /* as an earlier version left it: states go there */
    CHECK_INT_EQ(update_sync(sp, m[2].id, &u1, 1), 0);
    char kept[SPOOL_ID_MAX + 1 + 6];
    msg_rel(kept, sizeof kept, dir, "queue", m[4].id);
    copy_file(dir, kept, "removed-copy", 0, -1);
    struct op_result r = {0};
    spool_msg_remove(sp, m[4].id, op_on_done, &r);
    run_until(&r.calls, 1);
    CHECK_INT_EQ(r.status[0], 0);

    /* The disk as a crash could leave it: the journal is whole, the files are not. */
    char crashed[4200];
    snprintf(crashed, sizeof crashed, "%s/spool", image);
    copy_tree(dir, crashed);
    CHECK(count_files(crashed, "journal") >= 1);
    char path[4300];
    msg_file(path, sizeof path, crashed, "queue", m[3].id);
    CHECK_INT_EQ(unlink(path), 0);                    /* m3: its move was lost */
    file_cut(crashed, "queue", m[2].id, 0);           /* m2: its bytes were lost */
    file_cut(crashed, "queue", m[5].id, 77);          /* m5: torn */
    file_cut(crashed, "queue", id0, committed0 + 40); /* m1's states: torn mid-record */
    file_cut(crashed, "state", m[2].id, 0);           /* m2's state file: its records lost */
    char back[4300];
    snprintf(path, sizeof path, "%s/removed-copy", dir);
    msg_file(back, sizeof back, crashed, "queue", m[4].id);
    CHECK_INT_EQ(rename(path, back), 0); /* m4: its removal was lost */
    snprintf(path, sizeof path, "%s/removed-copy", crashed);
    unlink(path);

    struct spool *again = open_spool(crashed);
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover(again, seen_on_entry, &seen, &err), 5);
    CHECK_INT_EQ(seen.n, 5);
    CHECK(seen_find(&seen, m[4].id) < 0);
    CHECK_INT_EQ(count_files(crashed, "corrupt"), 0);    /* repaired, not quarantined */
    CHECK_INT_EQ(count_files(crashed, "journal"), 0);    /* replayed, synced, gone */
    CHECK(mtime_is(crashed, m[3].id, id_mark(m[3].id))); /* rewritten, no states: marked */
    CHECK(!mtime_is(crashed, id0, id_mark(id0)));        /* its states appended again */
    int k = seen_find(&seen, id0);
    CHECK(k >= 0);
    if (k >= 0)
        CHECK_STR_EQ(seen.state[k].data, "4/1/0/550 no @mx.example.com;1/2/1700000777/451 busy;");
    k = seen_find(&seen, m[2].id);
    CHECK(k >= 0);
    if (k >= 0)
        CHECK_STR_EQ(seen.state[k].data, "1/1/1700000555/421 later;");
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            continue;
        struct buf body = BUF_INIT;
        CHECK_INT_EQ(spool_load_body(crashed, m[i].id, &body, &err), 0);
        CHECK(body.len == m[i].body.len && memcmp(body.data, m[i].body.data, body.len) == 0);
        buf_free(&body);
    }
    seen_free(&seen);
    /* The repaired spool works on: a new message and an update of a replayed one. */
    struct result res = commit_one(again, &env_bounce);
    CHECK_INT_EQ(res.status, 0);
    CHECK_INT_EQ(update_sync(again, m[3].id, &u1, 1), 0);
    spool_close(again);

    batch_free(m, 6);
    spool_close(sp);
    buf_free(&err);
    rm_tree(dir);
    rm_tree(image);
    free(dir);
    free(image);
}

/* A commit whose move fails after its record was journaled is taken back in the journal too: a
 * crash right then does not bring back a message the client was told was not accepted. The move
 * is made to fail by a file that takes the message's name in queue/ after its id was checked free;
 * both ways of staging a small message are tried (unnamed in its leaf, and through tmp/). */
static void test_failed_move_taken_back(void)
{
    for (int unnamed = 1; unnamed >= 0; unnamed--) {
        char *dir = make_tmpdir();
        char *image = make_tmpdir();
        struct spool *sp = open_spool(dir);
        spool_test_unnamed(sp, unnamed);
        spool_test_journal_hold(sp, 1);
        struct result r = {0, 1};
        struct spool_msg *msg = spool_msg_new(sp, &env_full);
        char name[SPOOL_NAME_MAX + 1], blocker[4300];
        spool_layout_name(spool_msg_id(msg), name);
        spool_msg_append(msg, "Subject: x\r\n\r\nbody\r\n", 20, NULL, NULL);
        spool_msg_commit(msg, result_on_committed, &r);
        run_until_gathered(sp, 1); /* staged, its id checked free: its record waits */
        snprintf(blocker, sizeof blocker, "%s/queue/%.3s", dir, name);
        CHECK(mkdir(blocker, 0700) == 0 ||
              errno == EEXIST); /* its leaf, made when staged unnamed */
        snprintf(blocker, sizeof blocker, "%s/queue/%s", dir, name);
        int fd = open(blocker, O_WRONLY | O_CREAT | O_EXCL, 0600);
        CHECK(fd >= 0);
        close(fd);
        spool_test_journal_hold(sp, 0);
        run_until(&r.calls, 1);
        CHECK_INT_EQ(r.status, -EEXIST);
        CHECK_INT_EQ(count_files(dir, "tmp"), 0);
        CHECK_INT_EQ(count_files(dir, "queue"), 1); /* the blocker alone */
        char crashed[4200];
        snprintf(crashed, sizeof crashed, "%s/spool", image);
        copy_tree(dir, crashed);
        spool_close(sp);

        snprintf(blocker, sizeof blocker, "%s/queue/%s", crashed, name);
        CHECK_INT_EQ(unlink(blocker), 0);
        struct spool *again = open_spool(crashed);
        struct seen seen = {0};
        struct buf err = BUF_INIT;
        CHECK_INT_EQ(spool_recover(again, seen_on_entry, &seen, &err), 0);
        CHECK_INT_EQ(count_files(crashed, "queue"), 0);
        seen_free(&seen);
        spool_close(again);
        buf_free(&err);
        rm_tree(dir);
        rm_tree(image);
        free(dir);
        free(image);
    }
}

/* A journal that cannot be written fails the commit (451), leaves no file, and the next batch
 * opens a fresh segment. */
static void test_journal_failure(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char blocker[4200];
    snprintf(blocker, sizeof blocker, "%s/journal/%016x", dir, 1);
    CHECK_INT_EQ(mkdir(blocker, 0700), 0); /* where the first segment would go */
    struct result r = commit_one(sp, &env_full);
    CHECK_INT_EQ(r.status, -EEXIST);
    CHECK_INT_EQ(count_files(dir, "tmp"), 0);
    CHECK_INT_EQ(count_files(dir, "queue"), 0);
    r = commit_one(sp, &env_full);
    CHECK_INT_EQ(r.status, 0);
    CHECK_INT_EQ(stats(sp).segment, 2);
    spool_close(sp);
    CHECK_INT_EQ(rmdir(blocker), 0);
    CHECK_INT_EQ(count_files(dir, "journal"), 0);
    CHECK_INT_EQ(count_files(dir, "queue"), 1);
    rm_tree(dir);
    free(dir);
}

/* A message past the first write (64 KiB) is partly on disk before its commit: it is synced on its
 * own, not copied into the journal. */
static void test_large_message_bypasses_journal(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    struct buf body = BUF_INIT;
    fill_random(&body, 300 * 1024, 77);
    struct result r = {0, 1};
    struct spool_msg *msg = spool_msg_new(sp, &env_full);
    char id[SPOOL_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", spool_msg_id(msg));
    uv_run(&loop, UV_RUN_ONCE); /* the file's open, the only work in flight, is done */
    for (size_t off = 0; off < body.len; off += 4096)
        spool_msg_append(msg, body.data + off, 4096, NULL, NULL);
    spool_msg_commit(msg, result_on_committed, &r);
    run_until(&r.calls, 1);
    CHECK_INT_EQ(r.status, 0);
    CHECK_INT_EQ(stats(sp).records, 0);
    CHECK(file_size(dir, "queue", id) > (long)body.len);
    struct buf err = BUF_INIT, back = BUF_INIT;
    CHECK_INT_EQ(spool_load_body(dir, id, &back, &err), 0);
    CHECK(back.len == body.len && memcmp(back.data, body.data, body.len) == 0);
    buf_free(&back);
    buf_free(&body);
    teardown(sp, dir, &err);
}

/* ---- checkpoints ---- */

static void test_checkpoints(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    spool_test_journal_segment_max(sp, 4096);
    static struct batch_msg m[MESSAGES];
    for (int round = 0; round < 4; round++)
        commit_many(sp, dir, m + round * (MESSAGES / 4), MESSAGES / 4);
    run_until_idle(sp);
    CHECK(stats(sp).segment >= 4);                /* full segments were closed ... */
    CHECK_INT_EQ(count_files(dir, "journal"), 1); /* ... and checkpointed away */

    /* A crash now: the checkpointed files are on disk, the last segment replays the rest. */
    char *image = make_tmpdir();
    char crashed[4200];
    snprintf(crashed, sizeof crashed, "%s/spool", image);
    copy_tree(dir, crashed);
    spool_close(sp);
    struct spool *again = open_spool(crashed);
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover(again, seen_on_entry, &seen, &err), MESSAGES);
    seen_free(&seen);
    spool_close(again);
    batch_free(m, MESSAGES);
    buf_free(&err);
    rm_tree(dir);
    rm_tree(image);
    free(dir);
    free(image);
}

/* ---- a spool from before the journal ---- */

/* Writes queue/<id> and, unless n is 0, state/<id> as Sluice wrote them before the journal and
 * the hashed directories: files only, flat, no journal/ directory. */
static void old_message(const char *dir, const char *id, const char *body,
                        const struct spool_rcpt_update *u, size_t n)
{
    struct buf file = BUF_INIT, state = BUF_INIT;
    CHECK_INT_EQ(envelope_encode(&env_full, &file), 0);
    envelope_rec_begin(&file, ENVELOPE_REC_BODY, (uint32_t)strlen(body));
    buf_append(&file, body, strlen(body));
    envelope_end_append(&file, strlen(body), envelope_crc32(0, file.data, file.len));
    char path[4200];
    snprintf(path, sizeof path, "%s/queue/%s", dir, id);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(file.data, 1, file.len, f) == file.len);
    if (f != NULL)
        fclose(f);
    buf_free(&file);
    if (n == 0)
        return; /* never tried: no state file */
    spool_state_encode(u, n, &state);
    snprintf(path, sizeof path, "%s/state/%s", dir, id);
    f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(state.data, 1, state.len, f) == state.len);
    if (f != NULL)
        fclose(f);
    buf_free(&state);
}

static void test_old_spool(void)
{
    char *dir = make_tmpdir();
    static const char *const subs[] = {"tmp", "queue", "corrupt", "state"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        CHECK_INT_EQ(mkdir(path, 0700), 0);
    }
    struct spool_rcpt_update u = {.rcpt = 1,
                                  .status = SPOOL_RCPT_DELIVERED,
                                  .attempts = 1,
                                  .reply = "250 ok",
                                  .remote_mta = "mx.example.net"};
    old_message(dir, "1K1SY7NTQNJ002MF", "Subject: old\r\n\r\nqueued before\r\n", &u, 1);
    old_message(dir, "1K1SY7NTRXJ001PP", "Subject: older\r\n\r\nalso\r\n", NULL, 0);
    /* As a migration interrupted between queue/ and state/ leaves one: its queue file moved into
     * its leaf, its state file (which says it is not done) still flat. */
    struct spool_rcpt_update half = rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1700000600, "451 later");
    old_message(dir, "1K1SY7NTSAJ003QQ", "Subject: half\r\n\r\nmoved\r\n", &half, 1);
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/queue/1K1SY7NTSAJ003QQ", dir);
    msg_file(to, sizeof to, dir, "queue", "1K1SY7NTSAJ003QQ");
    CHECK_INT_EQ(rename(from, to), 0);

    struct spool *sp = open_spool(dir);
    CHECK_INT_EQ(count_files(dir, "journal"), 0); /* made at open, empty */
    /* Opening moved every flat file into its leaf. */
    static const char *const moved[] = {"queue/1K1SY7NTQNJ002MF", "queue/1K1SY7NTRXJ001PP",
                                        "state/1K1SY7NTQNJ002MF", "state/1K1SY7NTSAJ003QQ"};
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, moved[i]);
        CHECK(access(path, F_OK) < 0 && errno == ENOENT);
        snprintf(path, sizeof path, "%.5s", moved[i]);
        CHECK(path_exists(dir, path, moved[i] + 6));
    }
    struct seen seen = {0};
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 3);
    int k = seen_find(&seen, "1K1SY7NTQNJ002MF");
    CHECK(k >= 0);
    if (k >= 0)
        CHECK_STR_EQ(seen.state[k].data, "0/0/0/;2/1/0/250 ok @mx.example.net;");
    k = seen_find(&seen, "1K1SY7NTSAJ003QQ");
    CHECK(k >= 0);
    if (k >= 0)
        CHECK_STR_EQ(seen.state[k].data, "1/1/1700000600/451 later;0/0/0/;");
    seen_free(&seen);
    /* Updated and removed the new way, then found again after a crash-like stop. */
    struct spool_rcpt_update d = rcpt_status(0, SPOOL_RCPT_DELIVERED, 1, 0, "250 done");
    CHECK_INT_EQ(update_sync(sp, "1K1SY7NTQNJ002MF", &d, 1), 0);
    struct op_result r = {0};
    spool_msg_remove(sp, "1K1SY7NTRXJ001PP", op_on_done, &r);
    spool_msg_remove(sp, "1K1SY7NTSAJ003QQ", op_on_done, &r);
    run_until(&r.calls, 2);
    CHECK_INT_EQ(r.status[0], 0);
    CHECK_INT_EQ(r.status[1], 0);
    spool_close(sp);
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover(sp, seen_on_entry, &seen, &err), 0); /* all final: removed */
    CHECK_INT_EQ(count_files(dir, "queue"), 0);
    seen_free(&seen);
    spool_close(sp);
    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

/* ---- the record format ---- */

static void test_record_decode(void)
{
    struct buf b = BUF_INIT;
    spool_journal_encode(&b, SPOOL_JOURNAL_REC_STATE, "1K1SY7NTQNJ002MF", "abc", 3);
    spool_journal_encode(&b, SPOOL_JOURNAL_REC_REMOVE, "1K1SY7NTRXJ001PP", NULL, 0);
    size_t whole = b.len;
    struct spool_journal_rec_view rec;
    size_t pos = 0;
    CHECK_INT_EQ(spool_journal_decode(b.data, b.len, &pos, &rec), 1);
    CHECK_INT_EQ(rec.type, SPOOL_JOURNAL_REC_STATE);
    CHECK_STR_EQ(rec.id, "1K1SY7NTQNJ002MF");
    CHECK(rec.len == 3 && memcmp(rec.data, "abc", 3) == 0);
    CHECK_INT_EQ(spool_journal_decode(b.data, b.len, &pos, &rec), 1);
    CHECK_INT_EQ(rec.type, SPOOL_JOURNAL_REC_REMOVE);
    CHECK_INT_EQ(rec.len, 0);
    CHECK_INT_EQ(pos, whole);
    CHECK_INT_EQ(spool_journal_decode(b.data, b.len, &pos, &rec), 0); /* the end */
    /* Every cut of the second record, and any flipped byte, ends the segment there. */
    size_t first = whole - (4 + 2 + 16 + 4);
    for (size_t cut = first + 1; cut < whole; cut++) {
        pos = first;
        CHECK_INT_EQ(spool_journal_decode(b.data, cut, &pos, &rec), 0);
        CHECK_INT_EQ(pos, first);
    }
    for (size_t i = first; i < whole; i++) {
        b.data[i] ^= 0x01;
        pos = first;
        CHECK_INT_EQ(spool_journal_decode(b.data, b.len, &pos, &rec), 0);
        b.data[i] ^= 0x01;
    }
    buf_free(&b);
}

/* A waiter's synced hook runs in the batch's own step on the thread pool: after the sync, before
 * its done callback, off the loop's thread; not at all when the batch was not made durable. */
struct hooked {
    struct spool_journal_waiter w;
    uv_thread_t loop_thread;
    int synced;         /* hook calls */
    int synced_on_loop; /* ... of which on the loop's thread */
    int before_done;    /* the hook had run when done was called */
    int done, status;
};

static void hooked_synced(struct spool_journal_waiter *w)
{
    struct hooked *h = container_of(w, struct hooked, w);
    uv_thread_t self = uv_thread_self();
    h->synced++;
    h->synced_on_loop += uv_thread_equal(&self, &h->loop_thread);
}

static void hooked_done(struct spool_journal_waiter *w, int status)
{
    struct hooked *h = container_of(w, struct hooked, w);
    h->before_done = h->synced;
    h->status = status;
    h->done++;
}

static void test_synced_hook(void)
{
    char *dir = make_tmpdir();
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/journal", dir);
    CHECK_INT_EQ(mkdir(sub, 0700), 0);
    int spool_fd = open(dir, O_RDONLY | O_DIRECTORY);
    size_t pending = 0;
    struct spool_journal j;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_journal_open(&j, &loop, spool_fd, dir, &pending, &err), 0);
    struct hooked h[3] = {0};
    spool_journal_hold(&j, 1);
    for (int i = 0; i < 3; i++) {
        h[i].loop_thread = uv_thread_self();
        h[i].w.done = hooked_done;
        h[i].w.synced = i < 2 ? hooked_synced : NULL; /* the third has none */
        spool_journal_append(&j, &h[i].w, SPOOL_JOURNAL_REC_REMOVE, "0000000000000000A1", NULL, 0);
    }
    spool_journal_hold(&j, 0);
    int done = 0;
    uint64_t deadline = uv_hrtime() + 30 * (uint64_t)1000000000;
    while (done < 3 && uv_hrtime() < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        done = h[0].done + h[1].done + h[2].done;
    }
    for (int i = 0; i < 3; i++) {
        CHECK_INT_EQ(h[i].done, 1);
        CHECK_INT_EQ(h[i].status, 0);
        CHECK_INT_EQ(h[i].synced, i < 2);
        CHECK_INT_EQ(h[i].before_done, i < 2);
        CHECK_INT_EQ(h[i].synced_on_loop, 0);
        spool_journal_settle(&j, h[i].w.segment);
    }

    /* A batch that fails (its segment cannot be made): no hook runs, done gets the error. */
    snprintf(sub, sizeof sub, "%s/journal/%016x", dir, 2);
    CHECK_INT_EQ(mkdir(sub, 0700), 0);
    j.segment_max = 1; /* the next batch opens segment 2 */
    struct hooked f = {0};
    f.loop_thread = uv_thread_self();
    f.w.done = hooked_done;
    f.w.synced = hooked_synced;
    spool_journal_append(&j, &f.w, SPOOL_JOURNAL_REC_REMOVE, "0000000000000000A2", NULL, 0);
    while (f.done == 0 && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT_EQ(f.done, 1);
    CHECK(f.status < 0);
    CHECK_INT_EQ(f.synced, 0);
    CHECK_INT_EQ(rmdir(sub), 0);
    while (spool_journal_busy(&j) && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    spool_journal_close(&j);
    close(spool_fd);
    buf_free(&err);
    rm_tree(dir);
    free(dir);
}

int main(void)
{
    setenv("UV_THREADPOOL_SIZE", "16", 1);
    uv_loop_init(&loop);
    test_record_decode();
    test_commits_share_syncs();
    test_update_durable_at_callback();
    test_replay_repairs();
    test_failed_move_taken_back();
    test_journal_failure();
    test_synced_hook();
    test_large_message_bypasses_journal();
    test_checkpoints();
    test_old_spool();
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_spool_batch");
}
