/*
 * Fair share within one destination (mta/delivery/sched_fair.c): tenants of one class take turns
 * one job each, whatever order their jobs came in; a higher class goes first; a job put back in
 * front goes next in its lane; a lane that empties leaves the ring and one that comes back waits
 * one turn of the others; a job no connection may carry is passed over without losing its place;
 * a tenant with rates of its own is passed over while they hold its next job (recipients counted
 * per job), others are not, and its rates outlive its lane. A job taken out from the middle of
 * a lane (it expired) leaves at once: no lane's turn moves and every other job keeps its place.
 */
#include <stdint.h>
#include <string.h>

#include "mta/delivery/sched_fair.h"
#include "tests/unit/check.h"

#define NJOBS 32

static struct job jobs[NJOBS];
static char names[NJOBS][8];

/* Job i of tenant t (NULL: none), named "t<i>" for the checks. */
static struct job *job_of(size_t i, const char *tenant)
{
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].tenant = tenant;
    snprintf(names[i], sizeof names[i], "%s%zu", tenant != NULL ? tenant : "-", i);
    jobs[i].queue_id = names[i];
    return &jobs[i];
}

/* Pushes jobs first, first + 1, ... at the back, one per word of `lanes` ("b b c -": tenants b, b,
 * c, and none). */
static void push_jobs(struct fair_queue *q, size_t first, const char *lanes)
{
    static char words[NJOBS][8];
    for (size_t i = first; *lanes != '\0'; i++) {
        size_t n = strcspn(lanes, " ");
        snprintf(words[i], sizeof words[i], "%.*s", (int)n, lanes);
        fair_queue_push(q, job_of(i, strcmp(words[i], "-") == 0 ? NULL : words[i]), 0);
        lanes += n + (lanes[n] == ' ');
    }
}

/* The queue ids of every job taken, space-separated, into out. */
static void take_all(struct fair_queue *q, char *out, size_t size)
{
    out[0] = '\0';
    struct job *job;
    while ((job = fair_queue_take(q, NULL, NULL)) != NULL)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? " " : "", job->queue_id);
    CHECK(fair_queue_empty(q));
}

static struct config_tenant tenants[] = {
    {.name = "t", .priority = TENANT_PRIORITY_TRANSACTIONAL},
    {.name = "b", .priority = TENANT_PRIORITY_BULK},
    {.name = "c", .priority = TENANT_PRIORITY_BULK},
};

static struct config cfg = {.tenants = tenants, .ntenants = 3};

static void test_turns(void)
{
    struct fair_queue q;
    fair_queue_init(&q, &cfg, 0);
    char got[256];
    /* A bulk campaign of b, then c's: b and c alternate. */
    push_jobs(&q, 0, "b b b b c c");
    CHECK_INT_EQ(q.count, 6);
    take_all(&q, got, sizeof got);
    CHECK_STR_EQ(got, "b0 c4 b1 c5 b2 b3");
    /* Unlisted tenants and mail without one are class normal: before bulk, after transactional,
     * and among themselves in turn. */
    push_jobs(&q, 0, "b x x - t");
    take_all(&q, got, sizeof got);
    CHECK_STR_EQ(got, "t4 x1 -3 x2 b0");
    fair_queue_close(&q);
}

static void test_front_and_return(void)
{
    struct fair_queue q;
    fair_queue_init(&q, &cfg, 0);
    char got[256];
    push_jobs(&q, 0, "b b b c");
    struct job *first = fair_queue_take(&q, NULL, NULL);
    CHECK_STR_EQ(first->queue_id, "b0");
    /* Put back in front (a connection kept part of it): it is b's next, after c's turn. */
    fair_queue_push(&q, first, 1);
    take_all(&q, got, sizeof got);
    CHECK_STR_EQ(got, "c3 b0 b1 b2");
    /* c's lane emptied and comes back: it waits for one job of each lane there already. */
    push_jobs(&q, 0, "b b");
    CHECK_STR_EQ(fair_queue_take(&q, NULL, NULL)->queue_id, "b0");
    push_jobs(&q, 2, "c");
    take_all(&q, got, sizeof got);
    CHECK_STR_EQ(got, "b1 c2");
    fair_queue_close(&q);
}

static int not_b1(const struct job *job, const void *arg)
{
    (void)arg;
    return strcmp(job->queue_id, "b1") != 0;
}

static void test_fits(void)
{
    struct fair_queue q;
    fair_queue_init(&q, &cfg, 0);
    push_jobs(&q, 1, "b b");
    /* b1 does not fit this connection: b2 does, and b1 keeps its place. */
    CHECK_STR_EQ(fair_queue_take(&q, not_b1, NULL)->queue_id, "b2");
    CHECK(fair_queue_take(&q, not_b1, NULL) == NULL);
    CHECK_INT_EQ(q.count, 1);
    CHECK_STR_EQ(fair_queue_take(&q, NULL, NULL)->queue_id, "b1");
    CHECK(fair_queue_take(&q, NULL, NULL) == NULL);
    fair_queue_close(&q);
}

static struct config_tenant limited[] = {
    {.name = "r", .rate = {4, 1000}, .message_rate = {3, 1000}},
};
static struct config limited_cfg = {.tenants = limited, .ntenants = 1};

static void test_tenant_rates(void)
{
    struct fair_queue q;
    fair_queue_init(&q, &limited_cfg, 0);
    uint64_t now = 5000;
    push_jobs(&q, 1, "r r r r -");
    jobs[1].nrcpts = jobs[2].nrcpts = jobs[3].nrcpts = jobs[4].nrcpts = 1;
    jobs[5].nrcpts = 9;
    /* A new limiter ramps in: r waits, the unlimited lane does not. */
    CHECK_STR_EQ(fair_queue_take_due(&q, NULL, NULL, now)->queue_id, "-5");
    CHECK(fair_queue_take_due(&q, NULL, NULL, now) == NULL);
    CHECK(q.rate_wake_ms > now && q.rate_wake_ms <= now + 1000);
    now += 1000; /* the ramp has left the window: three messages, then message_rate holds */
    CHECK_STR_EQ(fair_queue_take_due(&q, NULL, NULL, now)->queue_id, "r1");
    CHECK_STR_EQ(fair_queue_take_due(&q, NULL, NULL, now)->queue_id, "r2");
    CHECK_STR_EQ(fair_queue_take_due(&q, NULL, NULL, now)->queue_id, "r3");
    CHECK(fair_queue_take_due(&q, NULL, NULL, now) == NULL);
    CHECK_INT_EQ(q.rate_wake_ms, now + 1000);
    now += 1000;
    CHECK_STR_EQ(fair_queue_take_due(&q, NULL, NULL, now)->queue_id, "r4");
    CHECK(fair_queue_empty(&q));
    /* The lane is gone; its rates stay: a job of 4 recipients waits for r4's to leave the window.
     */
    push_jobs(&q, 6, "r");
    jobs[6].nrcpts = 4;
    CHECK(fair_queue_take_due(&q, NULL, NULL, now + 10) == NULL);
    CHECK_INT_EQ(q.rate_wake_ms, now + 1000);
    /* fair_queue_take ignores them (a job taken to fail it). */
    CHECK_STR_EQ(fair_queue_take(&q, NULL, NULL)->queue_id, "r6");
    fair_queue_close(&q);
}

#define MANY_TENANTS 40
#define PER_TENANT 3

static struct job many[2][MANY_TENANTS * PER_TENANT];
static char many_names[MANY_TENANTS * PER_TENANT][16], many_tenants[MANY_TENANTS][8];

/* Fills q with PER_TENANT jobs for each of MANY_TENANTS tenants, pushed tenant after tenant, but
 * job `skip` (SIZE_MAX: none), and takes `taken` jobs so that the turn sits in the ring. */
static void many_fill(struct fair_queue *q, struct job *set, size_t skip, size_t taken)
{
    fair_queue_init(q, &cfg, 0);
    for (size_t i = 0; i < MANY_TENANTS * PER_TENANT; i++) {
        size_t t = i / PER_TENANT;
        snprintf(many_tenants[t], sizeof many_tenants[t], "u%zu", t);
        snprintf(many_names[i], sizeof many_names[i], "u%zu.%zu", t, i % PER_TENANT);
        set[i] = (struct job){.tenant = many_tenants[t], .queue_id = many_names[i]};
        if (i != skip)
            fair_queue_push(q, &set[i], 0);
    }
    for (size_t i = 0; i < taken; i++)
        CHECK(fair_queue_take(q, NULL, NULL) != NULL);
}

static void test_remove_keeps_turns(void)
{
    static char want[4096], got[4096];
    /* Removing a job must leave the queue as if the job had never been there: the same lanes in
     * the same turn order, each lane's other jobs in their order. The victim: a job in the middle
     * of a lane in the middle of the ring, the turn elsewhere; the only job left of a lane (the
     * lane goes); a job of the lane whose turn it is. */
    static const struct {
        size_t taken, victim;
    } cases[] = {
        {5, (MANY_TENANTS / 2) * PER_TENANT + 1},
        {MANY_TENANTS * 2 + 3, 7 * PER_TENANT + 2},
        {3, 3 * PER_TENANT + 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct fair_queue ref, q;
        many_fill(&ref, many[0], cases[k].victim, cases[k].taken);
        take_all(&ref, want, sizeof want);
        fair_queue_close(&ref);

        many_fill(&q, many[1], SIZE_MAX, cases[k].taken);
        size_t before = q.count;
        struct job *victim = &many[1][cases[k].victim];
        fair_queue_remove(&q, victim);
        CHECK_INT_EQ(q.count, before - 1);
        CHECK(victim->next == NULL && victim->lane == NULL);
        take_all(&q, got, sizeof got);
        fair_queue_close(&q);
        CHECK_STR_EQ(got, want);
    }
}

int main(void)
{
    test_remove_keeps_turns();
    test_tenant_rates();
    test_turns();
    test_front_and_return();
    test_fits();
    return check_report("test_sched_fair");
}
