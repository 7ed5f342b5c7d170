/* spool_list (the listing after spool_recover_begin) and spool_load_queued / spool_peek. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "spool_fixture.h"

#define LISTED_MAX 16

struct listed {
    int calls, done;
    int stop_at; /* the call that returns 1; 0: none */
    size_t n;
    char ids[LISTED_MAX][SPOOL_ID_MAX + 1];
    int64_t due[LISTED_MAX];
};

static int listed_on_slice(const struct spool_listed *items, size_t n, int done, void *arg)
{
    struct listed *l = arg;
    l->calls++;
    for (size_t i = 0; i < n && l->n < LISTED_MAX; i++, l->n++) {
        snprintf(l->ids[l->n], sizeof l->ids[l->n], "%s", items[i].id);
        l->due[l->n] = items[i].due;
    }
    l->done |= done;
    return l->calls == l->stop_at;
}

/* The due time listed for id, or -1 when it was not listed. */
static int64_t listed_due(const struct listed *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->ids[i], id) == 0)
            return l->due[i];
    return -1;
}

static void write_file(const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("not a message\n", f);
        fclose(f);
    }
}

static int in_corrupt(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/corrupt/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_list_due_orphans_and_strays(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char fresh[SPOOL_ID_MAX + 1], deferred[SPOOL_ID_MAX + 1], half[SPOOL_ID_MAX + 1],
        done[SPOOL_ID_MAX + 1];
    commit_with_prefix(sp, &env_full, NULL, "a\r\n", fresh);
    commit_with_prefix(sp, &env_full, NULL, "b\r\n", deferred);
    commit_with_prefix(sp, &env_full, NULL, "c\r\n", half);
    commit_with_prefix(sp, &env_full, NULL, "d\r\n", done);
    struct spool_rcpt_update two_later[] = {
        rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1800000500, "451 later"),
        rcpt_status(1, SPOOL_RCPT_DEFERRED, 1, 1800000000, "451 sooner"),
    };
    struct spool_rcpt_update one_left[] = {
        rcpt_status(0, SPOOL_RCPT_DELIVERED, 1, 0, "250 ok"),
        rcpt_status(1, SPOOL_RCPT_DEFERRED, 1, 1800000900, "451 later"),
    };
    struct spool_rcpt_update all_final[] = {
        rcpt_status(0, SPOOL_RCPT_DELIVERED, 1, 0, "250 ok"),
        rcpt_status(1, SPOOL_RCPT_BOUNCED, 1, 0, "550 no"),
    };
    CHECK_INT_EQ(update_sync(sp, deferred, two_later, 2), 0);
    legacy_state_file(dir, half); /* queued by an earlier version: its states in a state file */
    CHECK_INT_EQ(update_sync(sp, half, one_left, 2), 0);
    CHECK_INT_EQ(update_sync(sp, done, all_final, 2), 0);
    spool_close(sp);

    /* A state file without its message; a file at the top of queue/; one in another leaf than
     * its id's; a name that is no queue id in a leaf. */
    char path[4096], name[SPOOL_NAME_MAX + 1];
    msg_file(path, sizeof path, dir, "state", "0ORPHAN0000000000");
    write_file(path);
    snprintf(path, sizeof path, "%s/queue/stray", dir);
    write_file(path);
    spool_layout_name("00WRONGLEAF00000", name);
    snprintf(path, sizeof path, "%s/queue/%s", dir, strncmp(name, "000", 3) ? "000" : "001");
    (void)mkdir(path, 0700);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/00WRONGLEAF00000");
    write_file(path);
    msg_file(path, sizeof path, dir, "queue", fresh);
    snprintf(strrchr(path, '/') + 1, 16, "bad-name");
    write_file(path);

    sp = open_spool(dir);
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover_begin(sp, &err), 0);
    struct listed l = {0};
    spool_list(sp, listed_on_slice, &l);
    CHECK_INT_EQ(l.calls, 0); /* never from inside the call */
    CHECK(spool_pending(sp) > 0);
    run_until(&l.done, 1);
    CHECK_INT_EQ(l.done, 1);
    CHECK_INT_EQ(l.calls, 1); /* a slice of 32 leaves that exist: the few here, in one */
    CHECK_INT_EQ(spool_pending(sp), 0);
    CHECK_INT_EQ(l.n, 4);
    CHECK_INT_EQ(listed_due(&l, fresh), 0);             /* no states yet: due now */
    CHECK_INT_EQ(listed_due(&l, deferred), 1800000000); /* the earlier retry */
    CHECK_INT_EQ(listed_due(&l, half), 1800000900);     /* the one left */
    CHECK_INT_EQ(listed_due(&l, done), 0);              /* nothing left: a load removes it */
    CHECK(!path_exists(dir, "state", "0ORPHAN0000000000"));
    CHECK(in_corrupt(dir, "stray"));
    CHECK(in_corrupt(dir, "00WRONGLEAF00000"));
    CHECK(in_corrupt(dir, "bad-name"));
    CHECK(path_exists(dir, "state", half));
    CHECK(!path_exists(dir, "state", deferred)); /* its states are in its queue file */
    teardown(sp, dir, &err);
}

static void test_list_stops(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    for (int leaf = 0; leaf < 40; leaf++) { /* more than one slice's */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/queue/%03x", dir, leaf);
        CHECK_INT_EQ(mkdir(path, 0700), 0);
    }
    struct listed l = {.stop_at = 1};
    spool_list(sp, listed_on_slice, &l);
    run_until(&l.calls, 2);
    CHECK_INT_EQ(l.calls, 1);
    CHECK_INT_EQ(l.done, 0);
    CHECK_INT_EQ(spool_pending(sp), 0);
    struct buf err = BUF_INIT;
    teardown(sp, dir, &err);
}

struct queued_load {
    int calls, status, had_body;
    char state[256];
};

static void queued_on_loaded(int status, const struct spool_entry *entry, struct buf *body,
                             const char *why, void *arg)
{
    (void)why;
    struct queued_load *q = arg;
    q->calls++;
    q->status = status;
    q->had_body = body != NULL;
    if (status == 0) {
        struct buf flat = BUF_INIT;
        state_flatten(entry, &flat);
        snprintf(q->state, sizeof q->state, "%s", flat.data != NULL ? flat.data : "");
        buf_free(&flat);
    }
}

static struct queued_load load_queued_sync(struct spool *sp, const char *id, int peek)
{
    struct queued_load q = {0};
    (peek ? spool_peek : spool_load_queued)(sp, id, queued_on_loaded, &q);
    run_until(&q.calls, 1);
    CHECK_INT_EQ(q.calls, 1);
    return q;
}

/* A load for delivery repairs what recovery would: a torn state tail is cut (a peek leaves it),
 * and a queue file that fails its checks goes to corrupt/. */
static void test_load_queued_repairs(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char id[SPOOL_ID_MAX + 1], broken[SPOOL_ID_MAX + 1];
    commit_with_prefix(sp, &env_bounce, NULL, "x\r\n", id);
    commit_with_prefix(sp, &env_bounce, NULL, "y\r\n", broken);
    struct spool_rcpt_update a = rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1700000600, "451 first");
    CHECK_INT_EQ(update_sync(sp, id, &a, 1), 0);
    long good = file_size(dir, "queue", id);
    CHECK_INT_EQ(update_sync(sp, id, &a, 1), 0);
    char path[4096];
    msg_file(path, sizeof path, dir, "queue", id);
    CHECK(truncate(path, good + 10) == 0);
    msg_file(path, sizeof path, dir, "queue", broken);
    CHECK(truncate(path, 20) == 0);

    struct queued_load q = load_queued_sync(sp, id, 1);
    CHECK_INT_EQ(q.status, 0);
    CHECK_INT_EQ(q.had_body, 0);
    CHECK_INT_EQ(file_size(dir, "queue", id), good + 10); /* a peek changes nothing */
    q = load_queued_sync(sp, id, 0);
    CHECK_INT_EQ(q.status, 0);
    CHECK_STR_EQ(q.state, "1/1/1700000600/451 first;");
    CHECK_INT_EQ(file_size(dir, "queue", id), good);
    q = load_queued_sync(sp, broken, 1);
    CHECK_INT_EQ(q.status, -EBADMSG);
    CHECK(path_exists(dir, "queue", broken));
    q = load_queued_sync(sp, broken, 0);
    CHECK_INT_EQ(q.status, -EBADMSG);
    CHECK(!path_exists(dir, "queue", broken));
    CHECK(in_corrupt(dir, broken));
    q = load_queued_sync(sp, broken, 0);
    CHECK_INT_EQ(q.status, -ENOENT);
    struct buf err = BUF_INIT;
    teardown(sp, dir, &err);
}

static void mtime_set(const char *dir, const char *id, struct timespec ts)
{
    char path[4096];
    msg_file(path, sizeof path, dir, "queue", id);
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, ts};
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
}

/* A queue file with no states appended since its commit is listed due now without being opened
 * (its mtime carries the mark); one with states, whole or with a torn tail, is read for them. */
static void test_list_unappended_not_read(void)
{
    char *dir = make_tmpdir();
    struct spool *sp = open_spool(dir);
    char ids[4][SPOOL_ID_MAX + 1];
    for (int i = 0; i < 4; i++)
        commit_with_prefix(sp, &env_bounce, NULL, "x\r\n", ids[i]);
    const char *fresh = ids[0], *marked = ids[1], *deferred = ids[2], *torn = ids[3];
    CHECK(mtime_is(dir, fresh, id_mark(fresh))); /* committed with the mark */

    struct spool_rcpt_update later =
        rcpt_status(0, SPOOL_RCPT_DEFERRED, 1, 1800000000, "451 later");
    CHECK_INT_EQ(update_sync(sp, marked, &later, 1), 0);
    CHECK_INT_EQ(update_sync(sp, deferred, &later, 1), 0);
    CHECK_INT_EQ(update_sync(sp, torn, &later, 1), 0);
    long good = file_size(dir, "queue", torn);
    CHECK_INT_EQ(update_sync(sp, torn, &later, 1), 0);
    spool_close(sp);
    CHECK(!mtime_is(dir, deferred, id_mark(deferred))); /* an append replaces the mark */
    char path[4096];
    msg_file(path, sizeof path, dir, "queue", torn);
    CHECK(truncate(path, good + 10) == 0);
    mtime_set(dir, marked, id_mark(fresh)); /* another id's mark is not its own */

    sp = open_spool(dir);
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(spool_recover_begin(sp, &err), 0);
    struct listed l = {0};
    spool_list(sp, listed_on_slice, &l);
    run_until(&l.done, 1);
    CHECK_INT_EQ(l.n, 4);
    CHECK_INT_EQ(listed_due(&l, fresh), 0);
    CHECK_INT_EQ(listed_due(&l, marked), 1800000000); /* not its mark: read */
    CHECK_INT_EQ(listed_due(&l, deferred), 1800000000);
    CHECK_INT_EQ(listed_due(&l, torn), 1800000000); /* the whole records before the torn one */
    spool_close(sp);

    /* Its own mark put back on a file with states: listed due now, so its states were not read. */
    mtime_set(dir, marked, id_mark(marked));
    sp = open_spool(dir);
    CHECK_INT_EQ(spool_recover_begin(sp, &err), 0);
    struct listed again = {0};
    spool_list(sp, listed_on_slice, &again);
    run_until(&again.done, 1);
    CHECK_INT_EQ(listed_due(&again, marked), 0);
    CHECK_INT_EQ(listed_due(&again, deferred), 1800000000);
    teardown(sp, dir, &err);
}

int main(void)
{
    uv_loop_init(&loop);
    test_list_due_orphans_and_strays();
    test_list_stops();
    test_list_unappended_not_read();
    test_load_queued_repairs();
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_spool_list");
}
