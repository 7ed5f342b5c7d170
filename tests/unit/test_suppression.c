/*
 * The suppression store (policy/suppression.h) in a fresh LMDB directory: add, check, expiry,
 * remove, a tenant's entry against the global one, a second handle on the same store (as the
 * command line next to the daemon), and the daemon's write and batched checks on the thread pool;
 * then the CSV rows of `sluice suppress import` (policy/suppression_csv.h), good and bad.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "policy/suppression.h"
#include "policy/suppression_csv.h"

static char dir[64];

static struct suppression *open_store(uv_loop_t *loop)
{
    struct suppression *st = NULL;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(suppression_open(dir, loop, &st, &err), 0);
    if (err.len)
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
    buf_free(&err);
    return st;
}

static void put(struct suppression *st, const char *tenant, const char *addr,
                enum suppression_source src, int64_t added, int64_t expiry)
{
    struct suppression_entry e;
    const char *why = NULL;
    CHECK_INT_EQ(suppression_entry_make(tenant, addr, src, added, expiry, "n", &e, &why), 0);
    CHECK_INT_EQ(suppression_put(st, &e, 1, 1), 0);
}

static int each_csv(const struct suppression_entry *x, void *arg)
{
    suppression_csv_format(x, arg);
    return 0;
}

static void test_store(void)
{
    struct suppression *st = open_store(NULL);
    struct suppression_entry e;
    int64_t now = 1800000000;
    CHECK_INT_EQ(suppression_check(st, "acme", "a@example.com", now, &e), 0);

    put(st, NULL, "A@Example.COM", SUPPRESSION_COMPLAINT, now - 10, 0);
    CHECK_INT_EQ(suppression_check(st, NULL, "a@example.com", now, &e), 1);
    CHECK_STR_EQ(e.address, "a@example.com");
    CHECK_STR_EQ(e.tenant, "");
    CHECK_STR_EQ(suppression_source_name(e.source), "complaint");
    CHECK_INT_EQ(e.added, now - 10);
    CHECK_STR_EQ(e.note, "n");
    /* the global entry holds for every tenant, whatever the case of the address */
    CHECK_INT_EQ(suppression_check(st, "acme", "a@EXAMPLE.com", now, &e), 1);

    /* a tenant's entry holds for that tenant only, and comes before the global one */
    put(st, "acme", "b@example.com", SUPPRESSION_MANUAL, now, 0);
    CHECK_INT_EQ(suppression_check(st, "acme", "b@example.com", now, &e), 1);
    CHECK_STR_EQ(e.tenant, "acme");
    CHECK_INT_EQ(suppression_check(st, "other", "b@example.com", now, &e), 0);
    CHECK_INT_EQ(suppression_check(st, NULL, "b@example.com", now, &e), 0);
    put(st, "acme", "a@example.com", SUPPRESSION_MANUAL, now, 0);
    CHECK_INT_EQ(suppression_check(st, "acme", "a@example.com", now, &e), 1);
    CHECK_STR_EQ(e.tenant, "acme");

    /* an entry stops counting at its expiry */
    put(st, NULL, "c@example.com", SUPPRESSION_BAD_MAILBOX, now - 100, now + 5);
    CHECK_INT_EQ(suppression_check(st, NULL, "c@example.com", now + 4, &e), 1);
    CHECK_INT_EQ(suppression_check(st, NULL, "c@example.com", now + 5, &e), 0);

    /* without replace, an entry that counts stays; an expired one is replaced */
    struct suppression_entry again;
    const char *why;
    suppression_entry_make(NULL, "a@example.com", SUPPRESSION_BAD_DOMAIN, now, 0, NULL, &again,
                           &why);
    CHECK_INT_EQ(suppression_put(st, &again, 1, 0), -EEXIST);
    put(st, NULL, "d@example.com", SUPPRESSION_MANUAL, 1000, 2000); /* long expired */
    suppression_entry_make(NULL, "d@example.com", SUPPRESSION_BAD_DOMAIN, now, 0, NULL, &again,
                           &why);
    CHECK_INT_EQ(suppression_put(st, &again, 1, 0), 0);
    CHECK_INT_EQ(suppression_check(st, NULL, "d@example.com", now, &e), 1);
    CHECK_STR_EQ(suppression_source_name(e.source), "bad-domain");

    /* a second handle (another process, in life) sees what the first wrote, and the reverse */
    struct suppression *other = open_store(NULL);
    CHECK_INT_EQ(suppression_check(other, "acme", "b@example.com", now, &e), 1);
    CHECK_INT_EQ(suppression_remove(other, "acme", "b@example.com"), 0);
    CHECK_INT_EQ(suppression_check(st, "acme", "b@example.com", now, &e), 0);
    CHECK_INT_EQ(suppression_remove(st, "acme", "b@example.com"), -ENOENT);
    suppression_close(other);

    /* each: ordered by tenant then address; a tenant's range only when asked */
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(suppression_each(st, "acme", each_csv, &out), 0);
    CHECK_INT_EQ(out.len > 0, 1);
    CHECK(strstr(out.data, "a@example.com,acme,manual,") == out.data);
    CHECK(strstr(out.data, "c@example.com") == NULL);
    buf_reset(&out);
    CHECK_INT_EQ(suppression_each(st, "", each_csv, &out), 0);
    CHECK(strstr(out.data, ",acme,") == NULL);
    CHECK(strstr(out.data, "c@example.com,,bad-mailbox,") != NULL);
    buf_free(&out);
    suppression_close(st);
}

static void test_entry_checks(void)
{
    struct suppression_entry e;
    const char *why = NULL;
    CHECK_INT_EQ(suppression_entry_make(NULL, "nodomain", SUPPRESSION_MANUAL, 0, 0, NULL, &e, &why),
                 -1);
    CHECK_STR_EQ(why, "the address is not local@domain");
    CHECK_INT_EQ(suppression_entry_make(NULL, "a b@c.d", SUPPRESSION_MANUAL, 0, 0, NULL, &e, &why),
                 -1);
    char longt[80];
    memset(longt, 't', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    CHECK_INT_EQ(suppression_entry_make(longt, "a@c.d", SUPPRESSION_MANUAL, 0, 0, NULL, &e, &why),
                 -1);
    CHECK_INT_EQ(suppression_entry_make("t", "a@c.d", SUPPRESSION_MANUAL, 0, 0, "x\ny", &e, &why),
                 -1);
}

/* suppression_add writes on the thread pool and reports back to the loop. */
static void test_add_async(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct suppression *st = open_store(&loop);
    CHECK_INT_EQ(suppression_add(st, NULL, "Bounced@Example.org", SUPPRESSION_BAD_MAILBOX,
                                 "550 5.1.1 user unknown\r\n", 0),
                 0);
    CHECK_INT_EQ(suppression_add(st, NULL, "not an address", SUPPRESSION_BAD_MAILBOX, NULL, 0), -1);
    CHECK_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns once the write is done */
    struct suppression_entry e;
    CHECK_INT_EQ(suppression_check(st, "any", "bounced@example.org", 1800000000, &e), 1);
    CHECK_STR_EQ(e.note, "550 5.1.1 user unknown  ");
    /* closed with a write still queued: freed once it is done */
    CHECK_INT_EQ(suppression_add(st, "t", "late@example.org", SUPPRESSION_COMPLAINT, NULL, 0), 0);
    suppression_close(st);
    CHECK_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

#define BATCH_N 1000

/* What a batch's callback saw: how often it ran, and each answer (its entry copied). */
struct batch_result {
    int calls;
    size_t n;
    int found[BATCH_N];
    struct suppression_entry e[BATCH_N];
};

static void on_batch(void *arg, const struct suppression_answer *answers, size_t n)
{
    struct batch_result *res = arg;
    res->calls++;
    res->n = n;
    for (size_t i = 0; i < n && i < BATCH_N; i++) {
        res->found[i] = answers[i].found;
        CHECK((answers[i].entry != NULL) == (answers[i].found == 1));
        if (answers[i].entry != NULL)
            res->e[i] = *answers[i].entry;
    }
}

static struct batch_result many, own, cancelled, late;

/* The daemon's checks on the thread pool, a batch of addresses in one read: each answer is
 * suppression_check's for its address (the tenant's entry, else the global one, an expired one
 * not counting), in the order asked, all in one callback; a cancelled batch reports nothing, and
 * one in flight keeps a closed store open until it is done. The store counts a read per batch. */
static void test_batch(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct suppression *st = open_store(&loop);
    static char addrs[BATCH_N][32];
    const char *ask[BATCH_N];
    for (size_t i = 0; i < BATCH_N; i++) {
        snprintf(addrs[i], sizeof addrs[i], "R%zu@Example.NET", i); /* checked case-blind */
        ask[i] = addrs[i];
        if (i % 7 == 3)
            put(st, "acme", addrs[i], SUPPRESSION_COMPLAINT, 1800000000, 0);
        if (i % 11 == 5)
            put(st, NULL, addrs[i], SUPPRESSION_MANUAL, 1800000000, 0);
        if (i % 13 == 6 && i % 7 != 3) /* expired: does not count */
            put(st, "acme", addrs[i], SUPPRESSION_BAD_MAILBOX, 1700000000, 1800000000);
    }
    put(st, "other", addrs[1], SUPPRESSION_COMPLAINT, 1800000000, 0); /* not acme's */
    CHECK(suppression_batch_start(st, "acme", ask, BATCH_N, 1800000001, on_batch, &many));
    const char *one = "r3@example.net";
    CHECK(suppression_batch_start(st, "acme", &one, 1, 1800000001, on_batch, &own));
    suppression_batch_cancel(
        suppression_batch_start(st, NULL, ask, 10, 1800000001, on_batch, &cancelled));
    CHECK_INT_EQ(many.calls + own.calls, 0); /* never from inside the call */
    CHECK_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT_EQ(many.calls, 1);
    CHECK_INT_EQ(many.n, BATCH_N);
    size_t hits = 0;
    for (size_t i = 0; i < BATCH_N; i++) {
        struct suppression_entry e;
        int want = suppression_check(st, "acme", addrs[i], 1800000001, &e);
        CHECK_INT_EQ(many.found[i], want);
        if (want != 1 || many.found[i] != 1)
            continue;
        hits++;
        CHECK_STR_EQ(many.e[i].tenant, e.tenant);
        CHECK_STR_EQ(many.e[i].address, e.address);
        CHECK_INT_EQ(many.e[i].source, e.source);
        /* the tenant's own entry first, else the global one; expired ones never */
        CHECK_STR_EQ(many.e[i].tenant, i % 7 == 3 ? "acme" : "");
        CHECK(i % 7 == 3 || i % 11 == 5);
    }
    CHECK_INT_EQ(hits, 143 + 91 - 13); /* i%7==3: 143, i%11==5: 91, both (i%77==38): 13 */
    CHECK_INT_EQ(many.found[1], 0);
    CHECK_INT_EQ(own.calls, 1);
    CHECK_INT_EQ(own.n, 1);
    CHECK_INT_EQ(own.found[0], 1);
    CHECK_STR_EQ(own.e[0].address, "r3@example.net");
    CHECK_INT_EQ(cancelled.calls, 0);
    /* one read per batch, the cancelled one too, for the metrics */
    struct suppression_stats stats;
    suppression_stats_get(st, &stats);
    CHECK_INT_EQ(stats.reads, 3);
    CHECK_INT_EQ(stats.lookups, BATCH_N + 1 + 10);
    CHECK(suppression_batch_start(st, NULL, ask + 5, 1, 1800000001, on_batch, &late));
    suppression_close(st);
    CHECK_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT_EQ(late.calls, 1);
    CHECK_INT_EQ(late.found[0], 1);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static const struct {
    const char *row;
    const char *why; /* NULL: parses */
} rows[] = {
    {"a@b.example,,,,,", NULL},
    {"a@b.example,acme,complaint,2026-12-01,2027-01-01T10:30:00Z,\"said \"\"stop\"\", twice\"",
     NULL},
    {"a@b.example,,,,", "5 fields, expected 6 (address,tenant,source,time,expiry,note)"},
    {"a@b.example,,,,,,", "more than 6 fields"},
    {"a@b.example,,spam,,,", "source: 'spam' is none of bad-mailbox, bad-domain, complaint, "
                             "manual, import"},
    {"a@b.example,,,2026-02-30,,",
     "time: '2026-02-30' is not a UTC time (2026-12-01T10:30:00Z or 2026-12-01)"},
    {"a@b.example,,,,tomorrow,",
     "expiry: 'tomorrow' is not a UTC time (2026-12-01T10:30:00Z or 2026-12-01)"},
    {"\"a@b.example,,,,,", "address: a quote is not closed"},
    {"\"a@b.example\"x,,,,,", "address: text after the closing quote"},
    {"a\"b@c.example,,,,,", "address: a quote inside an unquoted field"},
    {"nobody,,,,,", "the address is not local@domain"},
};

static void test_csv(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct suppression_entry e;
        char why[SUPPRESSION_CSV_WHY_MAX] = "";
        int rc = suppression_csv_row(rows[i].row, strlen(rows[i].row), 42, &e, why);
        CHECK_INT_EQ(rc, rows[i].why == NULL ? 0 : -1);
        if (rows[i].why != NULL)
            CHECK_STR_EQ(why, rows[i].why);
    }
    /* what a row says, and the same row back from the formatter */
    const char *row = rows[1].row;
    struct suppression_entry e;
    char why[SUPPRESSION_CSV_WHY_MAX];
    CHECK_INT_EQ(suppression_csv_row(row, strlen(row), 42, &e, why), 0);
    CHECK_STR_EQ(e.tenant, "acme");
    CHECK_STR_EQ(e.note, "said \"stop\", twice");
    CHECK_INT_EQ(e.added, 1796083200);  /* 2026-12-01T00:00:00Z */
    CHECK_INT_EQ(e.expiry, 1798799400); /* 2027-01-01T10:30:00Z */
    struct buf out = BUF_INIT;
    suppression_csv_format(&e, &out);
    CHECK_STR_EQ(out.data, "a@b.example,acme,complaint,2026-12-01T00:00:00Z,"
                           "2027-01-01T10:30:00Z,\"said \"\"stop\"\", twice\"\n");
    buf_free(&out);
    /* empty fields: global, import, the time of the import, never */
    CHECK_INT_EQ(suppression_csv_row(rows[0].row, strlen(rows[0].row), 42, &e, why), 0);
    CHECK_STR_EQ(e.tenant, "");
    CHECK_STR_EQ(suppression_source_name(e.source), "import");
    CHECK_INT_EQ(e.added, 42);
    CHECK_INT_EQ(e.expiry, 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sluice-test-suppression-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    test_entry_checks();
    test_store();
    test_add_async();
    test_batch();
    test_csv();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(0);
    return check_report("test_suppression");
}
