/*
 * The trace token (mta/feedback/trace.h): what it says survives formatting and verifying, under
 * the newest key and after rotation; a changed field, a changed MAC, an unknown key and a token
 * that is not ours are told apart; queue ids we cannot have issued are refused.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mta/feedback/trace.h"

static struct config_trace_key keys[] = {
    {.id = "k1", .secret = "first secret, sixteen+"},
    {.id = "k2", .secret = "second secret, sixteen+"},
};

static struct trace_fields fields(const char *qid, const char *tenant, const char *campaign,
                                  const char *rcpt)
{
    struct trace_fields f;
    memset(&f, 0, sizeof f);
    snprintf(f.queue_id, sizeof f.queue_id, "%s", qid);
    snprintf(f.tenant, sizeof f.tenant, "%s", tenant);
    snprintf(f.campaign, sizeof f.campaign, "%s", campaign);
    snprintf(f.rcpt, sizeof f.rcpt, "%s", rcpt);
    return f;
}

static void test_round_trip(void)
{
    static const char *const cases[][4] = {
        {"0QJ5K8M2X4Y6Z000", "alice@example.com", "spring-sale", "bob@dest.test"},
        {"0QJ5K8M2X4Y6Z001", "", "", ""},
        {"0QJ5K8M2X4Y6Z002", "a", "ü\"; =?x?= \t<>", "\"quoted local\"@dest.test"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct trace_fields f = fields(cases[i][0], cases[i][1], cases[i][2], cases[i][3]), got;
        char token[TRACE_TOKEN_MAX + 1];
        int n = trace_format(keys, 2, &f, token);
        CHECK(n > 0);
        CHECK_INT_EQ((int)strlen(token), n);
        /* A dot-atom: no empty atom, only these characters. */
        CHECK(strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
              (size_t)n);
        CHECK(strstr(token, "..") == NULL);
        CHECK_INT_EQ(trace_verify(keys, 2, token, (size_t)n, &got), TRACE_VALID);
        CHECK_STR_EQ(got.queue_id, cases[i][0]);
        CHECK_STR_EQ(got.tenant, cases[i][1]);
        CHECK_STR_EQ(got.campaign, cases[i][2]);
        CHECK_STR_EQ(got.rcpt, cases[i][3]);
        CHECK_STR_EQ(got.key_id, "k2"); /* the newest signs */
    }
}

static void test_rotation_and_forgery(void)
{
    struct trace_fields f = fields("0QJ5K8M2X4Y6Z000", "alice", "c1", "bob@dest.test"), got;
    char token[TRACE_TOKEN_MAX + 1], padded[TRACE_TOKEN_MAX + 8];
    int n = trace_format(keys, 1, &f, token); /* signed before k2 existed */
    CHECK(strstr(token, ".kk1.m") != NULL);
    CHECK_INT_EQ(trace_verify(keys, 2, token, (size_t)n, &got), TRACE_VALID);
    snprintf(padded, sizeof padded, " %s\r\n", token); /* as a header value arrives */
    CHECK_INT_EQ(trace_verify(keys, 2, padded, strlen(padded), &got), TRACE_VALID);
    /* k1 retired: its traces are no longer ours to vouch for. */
    CHECK_INT_EQ(trace_verify(keys + 1, 1, token, (size_t)n, &got), TRACE_UNKNOWN_KEY);

    char forged[TRACE_TOKEN_MAX + 1];
    memcpy(forged, token, (size_t)n + 1);
    forged[5] = forged[5] == 'A' ? 'B' : 'A'; /* another queue id */
    CHECK_INT_EQ(trace_verify(keys, 2, forged, (size_t)n, &got), TRACE_BAD_MAC);
    memcpy(forged, token, (size_t)n + 1);
    forged[n - 3] = forged[n - 3] == 'A' ? 'B' : 'A'; /* another MAC */
    CHECK_INT_EQ(trace_verify(keys, 2, forged, (size_t)n, &got), TRACE_BAD_MAC);
    /* Each field is covered: the recipient of another trace spliced in does not verify. */
    struct trace_fields other = fields("0QJ5K8M2X4Y6Z000", "alice", "c1", "eve@dest.test");
    char theirs[TRACE_TOKEN_MAX + 1];
    n = trace_format(keys, 1, &f, token);
    trace_format(keys, 1, &other, theirs);
    const char *r_ours = strstr(token, ".r"), *k_ours = strstr(token, ".k");
    const char *r_theirs = strstr(theirs, ".r"), *k_theirs = strstr(theirs, ".k");
    snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(r_ours - token), token,
             (int)(k_theirs - r_theirs), r_theirs, k_ours);
    CHECK(strcmp(forged, token) != 0);
    CHECK_INT_EQ(trace_verify(keys, 2, forged, strlen(forged), &got), TRACE_BAD_MAC);
    /* The same fields under a secret we do not know, claiming our key id. */
    struct config_trace_key guessed = {.id = "k1", .secret = "an attacker's secret"};
    n = trace_format(&guessed, 1, &f, forged);
    CHECK_INT_EQ(trace_verify(keys, 2, forged, (size_t)n, &got), TRACE_BAD_MAC);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "",
        "hello",
        "qABC.t.c.kk1",
        "qABC.t.c.kk1.m",
        "qABC.t.c.kk1.mAAAA",
        "qABC.t!!.c.kk1.mAAAAAAAAAAAAAAAAAAAAAA",
        "tAAAA.qABC.c.kk1.mAAAAAAAAAAAAAAAAAAAAAA",
        "qABC.t.c.k.mAAAAAAAAAAAAAAAAAAAAAA",
        "qABC.t.c.kk1.mAAAAAAAAAAAAAAAAAAAAAA.x",
        "qA/C.t.c.kk1.mAAAAAAAAAAAAAAAAAAAAAA",
        "qABC.tAA.c.kk1.mAAAAAAAAAAAAAAAAAAAAAA", /* NUL */
    };
    struct trace_fields got;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_EQ(trace_verify(keys, 2, bad[i], strlen(bad[i]), &got), TRACE_MALFORMED);
    struct trace_fields f = fields("0QJ5", "alice", "c", "");
    char token[TRACE_TOKEN_MAX + 1];
    CHECK_INT_EQ(trace_format(keys, 0, &f, token), -22);
}

static void test_queue_id_bounds(void)
{
    const uint64_t day = 86400ull * 1000000;
    /* 16 characters: 11 of microseconds, 2 of sequence, 3 random (spool_fs.c). */
    uint64_t issued;
    CHECK_INT_EQ(spool_id_issued_at("0000000000100ZZZ", &issued), 0);
    CHECK(issued == 1);
    uint64_t now = 1790000000ull * 1000000; /* late 2026 */
    char id[17];
    /* Encode now - 1 day the way spool_fs.c does. */
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t t = now - day;
    for (int i = 10; i >= 0; i--, t >>= 5)
        id[i] = alphabet[t & 31];
    memcpy(id + 11, "00ABC", 6);
    CHECK(trace_queue_id_plausible(id, now, 180 * day));
    CHECK(!trace_queue_id_plausible(id, now, day / 2));             /* too old */
    CHECK(!trace_queue_id_plausible(id, now - 2 * day, 180 * day)); /* in the future */
    CHECK(!trace_queue_id_plausible("ZZZZZZZZZZZZZZZZ", now, 180 * day));
    CHECK(!trace_queue_id_plausible("0000000000000000", now, 180 * day));
    CHECK(!trace_queue_id_plausible("0QJ5", now, 180 * day));             /* not the form */
    CHECK(!trace_queue_id_plausible("0QJ5K8M2X4Y6Z0IL", now, 180 * day)); /* I, L: not ours */
}

static void test_verp(void)
{
    char addr[300];
    /* The longest key id still fits the 64 octets of a local part. */
    struct config_trace_key long_id = {.id = "abcdefgh", .secret = "a secret of sixteen+"};
    int n = trace_verp_format(&long_id, 1, "0QJ5K8M2X4Y6Z000", "Bounce.Example", addr, sizeof addr);
    CHECK(n > 0);
    CHECK(strchr(addr, '@') - addr <= 64);
    const char *token;
    size_t len = trace_verp_token(addr, "bounce.example", &token);
    CHECK(len > 0);
    struct trace_fields got;
    CHECK_INT_EQ(trace_verify(&long_id, 1, token, len, &got), TRACE_VALID);
    CHECK_STR_EQ(got.queue_id, "0QJ5K8M2X4Y6Z000");
    CHECK_INT_EQ((int)trace_verp_token(addr, "other.example", &token), 0);
    CHECK_INT_EQ((int)trace_verp_token("news@bounce.example", "bounce.example", &token), 0);
    CHECK_INT_EQ(trace_verp_format(keys, 0, "0QJ5K8M2X4Y6Z000", "b.example", addr, sizeof addr),
                 -22);
}

int main(void)
{
    test_round_trip();
    test_rotation_and_forgery();
    test_malformed();
    test_queue_id_bounds();
    test_verp();
    return check_report("test_trace");
}
