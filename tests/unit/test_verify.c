/*
 * Recipient verification against a real SMTP server on loopback: smtp_peer.py (next to this file)
 * answers each probe from a JSON script and logs the commands it got, so the checks count the
 * probes that really went over the wire. The cache, its TTLs, the LRU bound and the sharing of one
 * probe by concurrent checks are checked through the public API only.
 */
#include "policy/verify.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "tests/unit/check.h"

#define GUARD_MS 20000

/* One scripted server process: it serves one connection, then exits. */
struct peer {
    FILE *proc;
    char dir[64];
    char target[64]; /* "[127.0.0.1]:port" */
};

static void peer_start(struct peer *p, const char *script)
{
    char path[512];
    snprintf(path, sizeof path, "%s", __FILE__);
    *strrchr(path, '/') = '\0';
    snprintf(p->dir, sizeof p->dir, "/tmp/test_verify.XXXXXX");
    CHECK(mkdtemp(p->dir) != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec /usr/bin/python3 %s/smtp_peer.py '%s' %s", path, script,
             p->dir);
    p->proc = popen(cmd, "r");
    int port = 0;
    if (p->proc == NULL || fscanf(p->proc, "%d", &port) != 1 || port <= 0) {
        fprintf(stderr, "smtp_peer.py did not start\n");
        exit(1);
    }
    snprintf(p->target, sizeof p->target, "[127.0.0.1]:%d", port);
}

/* Waits for the peer to end (it does once the probe has gone) and counts the RCPTs it got. */
static int peer_rcpts(struct peer *p)
{
    pclose(p->proc);
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/commands.log", p->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        n += strstr(line, "RCPT TO:") != NULL;
    if (f != NULL)
        fclose(f);
    return n;
}

/* What a check reported. */
struct got {
    int n;
    struct verify_result res;
    char text[512], reason[512], rcpt[256];
};

static void save(struct got *g, const struct verify_result *r)
{
    g->n++;
    g->res = *r;
    snprintf(g->text, sizeof g->text, "%s", r->text);
    snprintf(g->reason, sizeof g->reason, "%s", r->reason);
    snprintf(g->rcpt, sizeof g->rcpt, "%s", r->rcpt);
    g->res.text = g->text;
    g->res.reason = g->reason;
}

static void on_result(void *arg, const struct verify_result *r)
{
    save(arg, r);
}

static uv_loop_t loop;
static uv_timer_t guard;
static int guard_fired;

static void on_guard(uv_timer_t *t)
{
    (void)t;
    guard_fired = 1;
}

/* Runs the loop until g has n answers (or the guard fires). */
static void wait_for(struct got *g, int n)
{
    guard_fired = 0;
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (g->n < n && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    CHECK(!guard_fired);
}

static void sleep_loop(uint64_t ms)
{
    guard_fired = 0;
    uv_timer_start(&guard, on_guard, ms, 0);
    while (!guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
}

/* Checks rcpt against target; returns 1 when a probe started, filling g either way. */
static int check(struct verifier *v, const char *target, const char *rcpt, uint64_t ttl,
                 struct got *g)
{
    struct verify_query q = {target, rcpt, "mx.test", 25, NULL, ttl, ttl};
    struct verify_check *h;
    struct verify_result now;
    int rc = verify_check(v, &q, on_result, g, &h, &now);
    if (rc == 0)
        save(g, &now);
    else
        CHECK(h != NULL);
    return rc;
}

/* Never answers: a cached answer must not need it, and a probe to it fails. */
#define NOBODY "[127.0.0.1]:1"

/* One probe against a fresh peer running script: checks rcpt (a probe must start), waits for the
 * answer and returns how many RCPTs the peer got. */
static int probe_once(struct verifier *v, const char *script, const char *rcpt, uint64_t ttl,
                      struct got *g)
{
    struct peer p;
    peer_start(&p, script);
    CHECK_INT_EQ(check(v, p.target, rcpt, ttl, g), 1);
    wait_for(g, 1);
    return peer_rcpts(&p);
}

static void test_valid_cached(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    struct got g = {0};
    CHECK_INT_EQ(probe_once(v, "{}", "Alice@Example.org", 60000, &g), 1);
    CHECK_INT_EQ(g.res.status, VERIFY_VALID);
    CHECK_INT_EQ(g.res.code, 250);
    CHECK_INT_EQ(g.res.cached, 0);

    struct got again = {0};
    CHECK_INT_EQ(check(v, NOBODY, "alice@example.org", 60000, &again), 0);
    CHECK_INT_EQ(again.res.status, VERIFY_VALID);
    CHECK_INT_EQ(again.res.cached, 1);
    CHECK_INT_EQ(verifier_probes(v), 1);
    verifier_free(v);
}

static void test_unknown_cached(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    struct got g = {0};
    CHECK_INT_EQ(
        probe_once(v, "{\"rcpt\": \"550 5.1.1 no such user\"}", "bob@example.org", 60000, &g), 1);
    CHECK_INT_EQ(g.res.status, VERIFY_INVALID);
    CHECK_INT_EQ(g.res.code, 550);
    CHECK_STR_EQ(g.res.enhanced, "5.1.1");
    CHECK_STR_EQ(g.text, "<bob@example.org>: Recipient address rejected: undeliverable address: "
                         "550 5.1.1 no such user");

    struct got again = {0};
    CHECK_INT_EQ(check(v, NOBODY, "bob@example.org", 60000, &again), 0);
    CHECK_INT_EQ(again.res.status, VERIFY_INVALID);
    CHECK_INT_EQ(again.res.cached, 1);
    CHECK_STR_EQ(again.text, g.text);
    verifier_free(v);
}

/* 4xx at RCPT: 450 4.1.1 and not cached, so the next check probes again. */
static void test_tempfail_not_cached(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    for (int i = 0; i < 2; i++) {
        struct got g = {0};
        CHECK_INT_EQ(
            probe_once(v, "{\"rcpt\": \"451 4.3.0 try later\"}", "carol@example.org", 60000, &g),
            1);
        CHECK_INT_EQ(g.res.status, VERIFY_TEMPFAIL);
        CHECK_INT_EQ(g.res.code, 450);
        CHECK_STR_EQ(g.res.enhanced, "4.1.1");
        CHECK_STR_EQ(g.text, "<carol@example.org>: Recipient address rejected: unverified "
                             "address: 451 4.3.0 try later");
    }
    CHECK_INT_EQ(verifier_probes(v), 2);
    verifier_free(v);
}

/* A long refusal is cut to VERIFY_REASON_MAX octets: it is quoted in a one-line reply. */
static void test_long_reply(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    char script[512], junk[301];
    memset(junk, 'x', 300);
    junk[300] = '\0';
    snprintf(script, sizeof script, "{\"rcpt\": \"550 5.1.1 %s\"}", junk);
    struct got g = {0};
    CHECK_INT_EQ(probe_once(v, script, "long@example.org", 60000, &g), 1);
    CHECK_INT_EQ(g.res.status, VERIFY_INVALID);
    CHECK_INT_EQ(strlen(g.reason), VERIFY_REASON_MAX);
    CHECK(strcmp(g.reason + VERIFY_REASON_MAX - 3, "...") == 0);
    verifier_free(v);
}

static void test_server_down(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    struct got g = {0};
    CHECK_INT_EQ(check(v, NOBODY, "dave@example.org", 60000, &g), 1);
    wait_for(&g, 1);
    CHECK_INT_EQ(g.res.status, VERIFY_TEMPFAIL);
    CHECK_INT_EQ(g.res.code, 450);
    CHECK(strstr(g.reason, "connect:") == g.reason);
    verifier_free(v);
}

/* Failures before RCPT say nothing about the address; a refused EHLO falls back to HELO. */
static void test_before_rcpt(void)
{
    static const struct {
        const char *script, *reason;
        int rcpts;
    } cases[] = {
        {"{\"greeting\": \"554 go away\"}", "greeting: 554 go away", 0},
        {"{\"mail\": \"553 5.7.1 no null sender\"}", "MAIL FROM: 553 5.7.1 no null sender", 0},
        {"{\"greeting\": \"@close\"}", "connection lost waiting for the greeting", 0},
        {"{\"ehlo\": \"502 no ehlo\"}", "250 2.1.5 ok", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct verifier *v = verifier_new(&loop, NULL);
        struct got g = {0};
        CHECK_INT_EQ(probe_once(v, cases[i].script, "erin@example.org", 60000, &g), cases[i].rcpts);
        CHECK_INT_EQ(g.res.status, cases[i].rcpts ? VERIFY_VALID : VERIFY_TEMPFAIL);
        CHECK_STR_EQ(g.reason, cases[i].reason);
        verifier_free(v);
    }
}

static void test_timeout(void)
{
    struct verifier_params params = {.timeout_ms = 300};
    struct verifier *v = verifier_new(&loop, &params);
    struct got g = {0};
    CHECK_INT_EQ(probe_once(v, "{\"rcpt\": \"@hang\"}", "gina@example.org", 60000, &g), 1);
    CHECK_INT_EQ(g.res.status, VERIFY_TEMPFAIL);
    CHECK_STR_EQ(g.reason, "timeout waiting for the RCPT TO reply");
    verifier_free(v);
}

static void test_ttl_expiry(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    for (int i = 0; i < 2; i++) {
        struct got g = {0}, cached = {0};
        CHECK_INT_EQ(probe_once(v, "{}", "hank@example.org", 100, &g), 1);
        CHECK_INT_EQ(g.res.status, VERIFY_VALID);
        CHECK_INT_EQ(check(v, NOBODY, "hank@example.org", 100, &cached), 0);
        sleep_loop(150); /* past the TTL: the next check probes again */
    }
    CHECK_INT_EQ(verifier_probes(v), 2);
    verifier_free(v);
}

/* Two checks of one address at once share one probe; a cancelled third hears nothing. */
static void test_coalesce_and_cancel(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    struct peer p;
    peer_start(&p, "{\"rcpt\": \"550 5.1.1 unknown\"}");
    struct got a = {0}, b = {0}, c = {0};
    struct verify_query q = {p.target, "ivy@example.org", "mx.test", 25, NULL, 60000, 60000};
    struct verify_check *ha, *hb, *hc;
    struct verify_result now;
    CHECK_INT_EQ(verify_check(v, &q, on_result, &a, &ha, &now), 1);
    q.rcpt = "IVY@example.org";
    CHECK_INT_EQ(verify_check(v, &q, on_result, &b, &hb, &now), 1);
    CHECK_INT_EQ(verify_check(v, &q, on_result, &c, &hc, &now), 1);
    verify_cancel(hc);
    wait_for(&b, 1);
    wait_for(&a, 1);
    CHECK_INT_EQ(a.res.status, VERIFY_INVALID);
    CHECK_INT_EQ(b.res.status, VERIFY_INVALID);
    CHECK(strstr(b.text, "<IVY@example.org>") == b.text); /* each check's own spelling */
    CHECK_STR_EQ(b.rcpt, "IVY@example.org");
    CHECK_STR_EQ(a.rcpt, "ivy@example.org");
    CHECK_INT_EQ(c.n, 0);
    CHECK_INT_EQ(verifier_probes(v), 1);
    CHECK_INT_EQ(peer_rcpts(&p), 1);
    verifier_free(v);
}

/* The cache holds cache_max addresses; the least recently used goes first. */
static void test_lru_bound(void)
{
    struct verifier_params params = {.cache_max = 2};
    struct verifier *v = verifier_new(&loop, &params);
    const char *rcpts[] = {"a@example.org", "b@example.org", "c@example.org"};
    for (int i = 0; i < 3; i++) {
        struct got g = {0};
        CHECK_INT_EQ(probe_once(v, "{}", rcpts[i], 60000, &g), 1);
        if (i == 1) { /* a is used again: b becomes the oldest */
            struct got hit = {0};
            CHECK_INT_EQ(check(v, NOBODY, rcpts[0], 60000, &hit), 0);
        }
    }
    struct got g = {0};
    CHECK_INT_EQ(check(v, NOBODY, rcpts[0], 60000, &g), 0);
    CHECK_INT_EQ(check(v, NOBODY, rcpts[2], 60000, &g), 0);
    /* b was dropped: probing again, and abandoned by verifier_free with a temporary failure */
    struct got dropped = {0};
    CHECK_INT_EQ(check(v, NOBODY, rcpts[1], 60000, &dropped), 1);
    verifier_free(v);
    CHECK_INT_EQ(dropped.n, 1);
    CHECK_INT_EQ(dropped.res.status, VERIFY_TEMPFAIL);
    CHECK_STR_EQ(dropped.reason, "shutting down");
}

static void test_skipped(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    struct got g = {0};
    CHECK_INT_EQ(check(v, NULL, "x@example.org", 60000, &g), 0);
    CHECK_INT_EQ(g.res.status, VERIFY_SKIPPED);
    /* A host name with no resolver: a temporary failure, from the loop */
    struct got h = {0};
    CHECK_INT_EQ(check(v, "mail.example.org:2525", "x@example.org", 60000, &h), 1);
    wait_for(&h, 1);
    CHECK_INT_EQ(h.res.status, VERIFY_TEMPFAIL);
    CHECK_STR_EQ(h.reason, "DNS unavailable");
    verifier_free(v);
}

int main(void)
{
    uv_loop_init(&loop);
    uv_timer_init(&loop, &guard);
    test_valid_cached();
    test_unknown_cached();
    test_tempfail_not_cached();
    test_long_reply();
    test_server_down();
    test_before_rcpt();
    test_timeout();
    test_ttl_expiry();
    test_coalesce_and_cancel();
    test_lru_bound();
    test_skipped();
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    return check_report("test_verify");
}
