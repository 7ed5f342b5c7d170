/* The MTA-STS cache on a real loop against a real dnsmasq (tests/support/dnsmasq.h): policies
 * read back from the spool (expired, malformed and half-written files left out, the expired and
 * half-written ones removed), the TXT record
 * checked against the cached id, domains without a policy or with two records, names that are no
 * domains, and a stop answering the callers still waiting. Fetching over HTTPS is covered by
 * tests/integration/test_mta_sts.py. */
#include "mta/delivery/mta_sts.h"
#include "tests/support/dnsmasq.h"
#include "tests/unit/check.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#define WAIT_MS 5000

static uv_loop_t loop;

static const char *const zone[] = {
    "--txt-record=_mta-sts.cached.test,v=STSv1; id=abc",
    "--txt-record=_mta-sts.none.test,v=spf1 -all",
    "--txt-record=_mta-sts.two.test,v=STSv1; id=1",
    "--txt-record=_mta-sts.two.test,v=STSv1; id=2",
    NULL,
};

struct answer {
    int calls;
    const struct mta_sts_policy *policy;
    enum mta_sts_mode mode;
};

static void on_policy(void *arg, const struct mta_sts_policy *policy)
{
    struct answer *a = arg;
    a->calls++;
    a->policy = policy;
    if (policy != NULL)
        a->mode = policy->mode;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* The spool's mta-sts/ before the start: one good policy, and files that must be left out. */
static void make_spool(const char *spool)
{
    char dir[512], text[512];
    snprintf(dir, sizeof dir, "%s/mta-sts", spool);
    CHECK_INT_EQ(mkdir(dir, 0700), 0);
    const char *policy = "version: STSv1\nmode: enforce\nmx: mx.cached.test\nmax_age: 3600\n";
    snprintf(text, sizeof text, "id abc\nexpires %lld\n\n%s", (long long)time(NULL) + 3600, policy);
    write_file(dir, "cached.test", text);
    snprintf(text, sizeof text, "id abc\nexpires %lld\n\n%s", (long long)time(NULL) - 1, policy);
    write_file(dir, "old.test", text); /* expired */
    snprintf(text, sizeof text, "id abc\nexpires %lld\n\nversion: STSv1\nmode: sometimes\n",
             (long long)time(NULL) + 3600);
    write_file(dir, "bad.test", text);
    snprintf(text, sizeof text, "id abc\nexpires %lld\n\n%s", (long long)time(NULL) + 3600, policy);
    write_file(dir, "half.test.tmp", text); /* a write that a crash cut short, before its rename */
}

/* A cache on spool keeping at most max_domains domains. */
static struct mta_sts *cache_new(struct dns_resolver *r, const char *spool, unsigned max_domains)
{
    struct config cfg = {0};
    cfg.mta_sts.recheck_ms = 60000;
    cfg.mta_sts.fetch_timeout_ms = 1000;
    cfg.mta_sts.max_domains = max_domains;
    return mta_sts_new(&loop, r, spool, &cfg);
}

static void test_cache(struct dns_resolver *r, const char *spool)
{
    struct mta_sts *s = cache_new(r, spool, 100);
    const struct mta_sts_policy *p = NULL;

    /* Before the files are read back, even a cached domain is waited for. */
    struct answer cached = {0};
    CHECK_INT_EQ(mta_sts_get(s, "cached.test", &p, on_policy, &cached), 0);
    CHECK(dnsmasq_run_until(&loop, &cached.calls, WAIT_MS));
    CHECK(cached.policy != NULL);
    CHECK_INT_EQ(cached.mode, MTA_STS_MODE_ENFORCE);
    /* Reading them back removed the expired file and the half-written one, and kept the rest. */
    static const struct {
        const char *name;
        int kept;
    } files[] = {{"cached.test", 1}, {"bad.test", 1}, {"old.test", 0}, {"half.test.tmp", 0}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/mta-sts/%s", spool, files[i].name);
        CHECK_INT_EQ(stat(path, &st) == 0, files[i].kept);
    }

    /* Now known at once, in any case and with a trailing dot; the TXT check it starts finds the
     * same id, so nothing is fetched and the policy stays. */
    CHECK_INT_EQ(mta_sts_get(s, "CACHED.test.", &p, on_policy, &cached), 1);
    CHECK(p != NULL && mta_sts_mx_match(p, "mx.cached.test"));
    int never = 0;
    dnsmasq_run_until(&loop, &never, 200);
    CHECK_INT_EQ(mta_sts_get(s, "cached.test", &p, on_policy, &cached), 1);
    CHECK(p != NULL);
    CHECK_INT_EQ(cached.calls, 1);

    /* No STSv1 record, two of them, an expired or malformed file: no policy. */
    const char *none[] = {"none.test", "two.test", "old.test", "bad.test", "half.test.tmp"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        struct answer a = {0};
        CHECK_INT_EQ(mta_sts_get(s, none[i], &p, on_policy, &a), 0);
        CHECK(dnsmasq_run_until(&loop, &a.calls, WAIT_MS));
        CHECK(a.policy == NULL);
        if (strstr(none[i], ".tmp") != NULL)
            continue; /* not under .test: dnsmasq refuses, a temporary failure asked again */
        /* Checked a moment ago: answered at once. */
        CHECK_INT_EQ(mta_sts_get(s, none[i], &p, on_policy, &a), 1);
        CHECK(p == NULL);
        CHECK_INT_EQ(a.calls, 1);
    }

    /* An address literal has no policy to look up. */
    CHECK_INT_EQ(mta_sts_get(s, "[192.0.2.1]", &p, on_policy, NULL), 1);
    CHECK(p == NULL);

    /* A stop answers the waiting callers at once, and later ones at once too. */
    struct answer waiting = {0};
    CHECK_INT_EQ(mta_sts_get(s, "other.test", &p, on_policy, &waiting), 0);
    mta_sts_stop(s);
    CHECK_INT_EQ(waiting.calls, 1);
    CHECK(waiting.policy == NULL);
    CHECK_INT_EQ(mta_sts_get(s, "cached.test", &p, on_policy, &waiting), 1);
    CHECK(p == NULL);
    mta_sts_free(s); /* freed once the TXT lookup in flight has answered */
}

/* At most mta_sts.max_domains domains in memory: the least recently asked one leaves (and is
 * looked up anew when asked again), and one whose lookup runs still answers its callers. */
static void test_cap(struct dns_resolver *r, const char *spool)
{
    struct mta_sts *s = cache_new(r, spool, 2);
    const struct mta_sts_policy *p = NULL;
    struct answer cached = {0}, none = {0}, two = {0};
    CHECK_INT_EQ(mta_sts_get(s, "cached.test", &p, on_policy, &cached), 0);
    CHECK(dnsmasq_run_until(&loop, &cached.calls, WAIT_MS));
    CHECK(cached.policy != NULL);
    CHECK_INT_EQ(mta_sts_get(s, "none.test", &p, on_policy, &none), 0);
    CHECK(dnsmasq_run_until(&loop, &none.calls, WAIT_MS));
    CHECK_INT_EQ(mta_sts_get(s, "none.test", &p, on_policy, &none), 1); /* still known */
    /* A third domain evicts cached.test, the least recently asked. */
    CHECK_INT_EQ(mta_sts_get(s, "two.test", &p, on_policy, &two), 0);
    CHECK(dnsmasq_run_until(&loop, &two.calls, WAIT_MS));
    struct answer again = {0};
    CHECK_INT_EQ(mta_sts_get(s, "cached.test", &p, on_policy, &again), 0);
    CHECK(dnsmasq_run_until(&loop, &again.calls, WAIT_MS));
    CHECK(again.policy == NULL); /* its file was read at start only; no HTTPS here */

    /* Two domains whose lookups run evict each other and both still answer. */
    struct answer a = {0}, b = {0}, c = {0};
    CHECK_INT_EQ(mta_sts_get(s, "a.test", &p, on_policy, &a), 0);
    CHECK_INT_EQ(mta_sts_get(s, "b.test", &p, on_policy, &b), 0);
    CHECK_INT_EQ(mta_sts_get(s, "c.test", &p, on_policy, &c), 0);
    int all = 0;
    for (int i = 0; i < 100 && !(a.calls && b.calls && c.calls); i++)
        dnsmasq_run_until(&loop, &all, 50);
    CHECK_INT_EQ(a.calls + b.calls + c.calls, 3);
    mta_sts_stop(s);
    mta_sts_free(s);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    char spool[] = "/tmp/sluice-test-mta-sts-XXXXXX";
    CHECK(mkdtemp(spool) != NULL);
    make_spool(spool);
    struct dnsmasq dm;
    struct dns_resolver *r = dnsmasq_start_resolver(&dm, &loop, zone, 3000);
    if (r == NULL)
        return 1;
    test_cache(r, spool);
    char spool2[] = "/tmp/sluice-test-mta-sts-XXXXXX";
    CHECK(mkdtemp(spool2) != NULL);
    make_spool(spool2);
    test_cap(r, spool2);
    CHECK_INT_EQ(dnsmasq_end(&dm, &loop, r), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", spool, spool2);
    CHECK_INT_EQ(system(cmd), 0);
    return check_report("test_mta_sts");
}
