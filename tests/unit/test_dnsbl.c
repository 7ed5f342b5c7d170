/*
 * DNS blocklist checks against a real dnsmasq on 127.0.0.1 (started here on a free port, killed at
 * the end) serving listings in RFC 5782 form: weights and threshold, TXT reasons, the
 * 127.255.255.x error codes and answers outside 127/8 ignored, an IPv6 client, a zone whose server
 * refuses, cancellation before the answer and freeing inside the callback. Every wait is bounded.
 */
#include "policy/dnsbl.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"

#include "tests/support/dnsmasq.h"

#include <stdlib.h>

#define WAIT_MS 5000 /* longest wait for one check */

/* 2001:db8::1 in nibble form. */
#define V6_NIBBLES "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"

static uv_loop_t loop;
static struct dnsmasq dnsmasq;

/* ---- the test zone ---- */

static const char *const zone[] = {
    /* 192.0.2.2: listed by a (weight 2, with a reason) and b (weight 1); err answers with a
     * list error code, odd with an address outside 127/8: neither is a listing. */
    "--host-record=2.2.0.192.a.bl.test,127.0.0.2",
    "--txt-record=2.2.0.192.a.bl.test,listed for sp\xc3\xa4m; see http://a.bl.test/",
    "--host-record=2.2.0.192.b.bl.test,127.0.0.10",
    "--host-record=2.2.0.192.err.bl.test,127.255.255.254",
    "--host-record=2.2.0.192.odd.bl.test,10.0.0.1",
    /* 192.0.2.3: b only; 2001:db8::1: a only. */
    "--host-record=3.2.0.192.b.bl.test,127.0.0.3",
    "--host-record=" V6_NIBBLES ".a.bl.test,127.0.0.4", NULL};

/* ---- checks ---- */

struct outcome {
    int calls;
    int free_inside; /* free the check from inside the callback */
    struct dnsbl_check *check;
    int listed;
    unsigned score, errors;
    char hits[512]; /* "zone/weight/answer/reason" joined by ' ' */
};

static void on_result(void *arg, const struct dnsbl_result *res)
{
    struct outcome *o = arg;
    o->calls++;
    o->listed = res->listed;
    o->score = res->score;
    o->errors = res->errors;
    size_t n = 0;
    for (size_t i = 0; i < res->nhits; i++) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &res->hits[i].answer.u.v4, a, sizeof(a));
        n += (size_t)snprintf(o->hits + n, sizeof(o->hits) - n, "%s%s/%u/%s/%s", i ? " " : "",
                              res->hits[i].zone, res->hits[i].weight, a, res->hits[i].reason);
    }
    if (o->free_inside)
        dnsbl_check_free(o->check);
}

static const struct config_dnsbl zones[] = {
    {"a.bl.test", 2, {NULL, 0, 0}},
    {"b.bl.test", 1, {NULL, 0, 0}},
    {"err.bl.test", 5, {NULL, 0, 0}},
    {"odd.bl.test", 5, {NULL, 0, 0}},
};
#define NZONES (sizeof(zones) / sizeof(zones[0]))

/* Runs one check to its callback; returns the check (freed by the caller) or NULL. */
static struct dnsbl_check *run_check(struct dns_resolver *r, const struct config_dnsbl *z,
                                     size_t nz, unsigned threshold, const char *ip,
                                     struct outcome *o)
{
    struct sockaddr_storage ss = client_addr(ip);
    memset(o, 0, sizeof *o);
    struct dnsbl_check *c = NULL;
    int rc = dnsbl_check_start(r, z, nz, threshold, (struct sockaddr *)&ss, on_result, o, &c);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(o->calls, 0); /* never from inside the call */
    CHECK(dnsmasq_run_until(&loop, &o->calls, WAIT_MS));
    CHECK_INT_EQ(o->calls, 1);
    return c;
}

static void test_query_names(void)
{
    char name[400];
    struct sockaddr_storage ss = client_addr("192.0.2.99");
    CHECK_INT_EQ(dnsbl_query_name((struct sockaddr *)&ss, "zen.example", name, sizeof(name)), 0);
    CHECK_STR_EQ(name, "99.2.0.192.zen.example");
    ss = client_addr("::ffff:192.0.2.99");
    CHECK_INT_EQ(dnsbl_query_name((struct sockaddr *)&ss, "zen.example", name, sizeof(name)), 0);
    CHECK_STR_EQ(name, "99.2.0.192.zen.example");
    /* RFC 5782 §2.4's own example. */
    ss = client_addr("2001:db8:1:2:3:4:567:89ab");
    CHECK_INT_EQ(dnsbl_query_name((struct sockaddr *)&ss, "ugly.example.com", name, sizeof(name)),
                 0);
    CHECK_STR_EQ(
        name, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
    CHECK_INT_EQ(dnsbl_query_name((struct sockaddr *)&ss, "x", name, 20), -EINVAL);

    static const struct {
        const char *ip;
        int lists;
    } answers[] = {{"127.0.0.2", 1},       {"127.0.0.10", 1},    {"127.1.2.3", 1},
                   {"127.255.255.254", 0}, {"127.255.255.0", 0}, {"127.255.254.1", 1},
                   {"10.0.0.1", 0},        {"128.0.0.2", 0}};
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        struct dns_addr a = {.family = AF_INET};
        inet_pton(AF_INET, answers[i].ip, &a.u.v4);
        CHECK_INT_EQ(dnsbl_answer_lists(&a), answers[i].lists);
    }
}

/* "zone/weight/answer/reason" of 192.0.2.2's listings by a and b. */
#define HITS_2                                                                                     \
    "a.bl.test/2/127.0.0.2/listed for sp??m; see http://a.bl.test/ b.bl.test/1/127.0.0.10/"

/* dnsmasq refuses names outside its zone (no upstream): an error, counted as not listed. */
static const struct config_dnsbl refused[] = {{"bl.example", 9, {NULL, 0, 0}},
                                              {"b.bl.test", 1, {NULL, 0, 0}}};

/* One client against some zones under a threshold: the result, and the refusal when listed. */
static const struct listing_case {
    const char *what;
    const struct config_dnsbl *zones;
    size_t nzones;
    unsigned threshold;
    const char *ip;
    int listed;
    unsigned score, errors;
    const char *hits;
    const char *refusal; /* the reply text when listed */
} listings[] = {
    {"a and b (2 + 1 = 3 = threshold); err and odd do not count", zones, NZONES, 3, "192.0.2.2", 1,
     3, 0, HITS_2, "Service unavailable; client [192.0.2.2] blocked using a.bl.test"},
    {"the same client under a higher threshold", zones, NZONES, 4, "192.0.2.2", 0, 3, 0, HITS_2,
     NULL},
    {"b only: below the threshold", zones, NZONES, 3, "192.0.2.3", 0, 1, 0,
     "b.bl.test/1/127.0.0.3/", NULL},
    {"threshold 0 means any listing", zones + 1, 1, 0, "192.0.2.3", 1, 1, 0,
     "b.bl.test/1/127.0.0.3/", "Service unavailable; client [192.0.2.3] blocked using b.bl.test"},
    {"an unlisted client", zones, NZONES, 1, "192.0.2.9", 0, 0, 0, "", NULL},
    {"IPv6 client, nibble form", zones, NZONES, 2, "2001:db8::1", 1, 2, 0, "a.bl.test/2/127.0.0.4/",
     "Service unavailable; client [2001:db8::1] blocked using a.bl.test"},
    {"the IPv4-mapped form of a listed client", zones, NZONES, 3, "::ffff:192.0.2.2", 1, 3, 0,
     HITS_2, "Service unavailable; client [192.0.2.2] blocked using a.bl.test"},
    {"a zone whose server refuses", refused, 2, 1, "192.0.2.2", 1, 1, 1, "b.bl.test/1/127.0.0.10/",
     "Service unavailable; client [192.0.2.2] blocked using b.bl.test"},
};

static void test_listings(struct dns_resolver *r)
{
    for (size_t i = 0; i < sizeof listings / sizeof listings[0]; i++) {
        const struct listing_case *l = &listings[i];
        struct outcome o;
        struct dnsbl_check *c = run_check(r, l->zones, l->nzones, l->threshold, l->ip, &o);
        int failures = check_failures;
        CHECK_INT_EQ(o.listed, l->listed);
        CHECK_INT_EQ(o.score, l->score);
        CHECK_INT_EQ(o.errors, l->errors);
        CHECK_STR_EQ(o.hits, l->hits);
        struct policy_decision d = dnsbl_check_verdict(c);
        if (l->listed) {
            CHECK_DECISION(d, POLICY_REJECT, 554, "5.7.1");
            CHECK_STR_EQ(d.text, l->refusal);
        } else {
            CHECK_INT_EQ(d.verdict, POLICY_ACCEPT);
        }
        if (check_failures != failures)
            fprintf(stderr, "  in case %zu: %s\n", i, l->what);
        dnsbl_check_free(c);
    }
}

static void test_errors(struct dns_resolver *r)
{
    struct outcome o;
    struct dnsbl_check *c = NULL;
    struct sockaddr_storage ss = client_addr("a local socket"); /* AF_UNIX */
    CHECK_INT_EQ(dnsbl_check_start(r, zones, NZONES, 1, (struct sockaddr *)&ss, on_result, &o, &c),
                 -EINVAL);
    ss = client_addr("192.0.2.2");
    CHECK_INT_EQ(dnsbl_check_start(r, zones, 0, 1, (struct sockaddr *)&ss, on_result, &o, &c),
                 -EINVAL);
}

/* Cancelled before the answers: the callback never runs, the lookups finish unseen (ASan checks
 * that nothing leaks or is touched after its release). Then freeing inside the callback. */
static void test_cancel(struct dns_resolver *r)
{
    struct sockaddr_storage ss = client_addr("192.0.2.2");
    struct outcome o = {0};
    struct dnsbl_check *c = NULL;
    dns_resolver_flush(r);
    CHECK_INT_EQ(dnsbl_check_start(r, zones, NZONES, 1, (struct sockaddr *)&ss, on_result, &o, &c),
                 0);
    dnsbl_check_free(c);
    int never = 0;
    dnsmasq_run_until(&loop, &never, 300);
    CHECK_INT_EQ(o.calls, 0);

    dns_resolver_flush(r);
    memset(&o, 0, sizeof o);
    o.free_inside = 1;
    CHECK_INT_EQ(
        dnsbl_check_start(r, zones, NZONES, 1, (struct sockaddr *)&ss, on_result, &o, &o.check), 0);
    CHECK(dnsmasq_run_until(&loop, &o.calls, WAIT_MS));
    CHECK_INT_EQ(o.listed, 1);
}

/* Freeing the resolver with a check in flight: the check completes with errors, not listed. */
static void test_resolver_gone(void)
{
    struct dns_resolver *r = dnsmasq_resolver(&loop, dnsmasq.server, 2000);
    struct sockaddr_storage ss = client_addr("192.0.2.2");
    struct outcome o = {0};
    struct dnsbl_check *c = NULL;
    CHECK_INT_EQ(dnsbl_check_start(r, zones, 2, 1, (struct sockaddr *)&ss, on_result, &o, &c), 0);
    dns_resolver_free(r);
    CHECK(dnsmasq_run_until(&loop, &o.calls, WAIT_MS));
    CHECK_INT_EQ(o.listed, 0);
    CHECK_INT_EQ(o.errors, 2);
    dnsbl_check_free(c);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    test_query_names();
    struct dns_resolver *r = dnsmasq_start_resolver(&dnsmasq, &loop, zone, 3000);
    if (r == NULL)
        return 1;
    test_listings(r);
    test_errors(r);
    test_cancel(r);
    dns_resolver_free(r);
    test_resolver_gone();
    CHECK_INT_EQ(dnsmasq_end(&dnsmasq, &loop, NULL), 0);
    return check_report("test_dnsbl");
}
