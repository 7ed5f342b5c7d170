#include <errno.h>
#include <stdlib.h>

#include "lib/smtp_dsn.h"
#include "spool/envelope.h"
#include "tests/unit/check.h"

static const char *const rcpts3[] = {"a@example.com", "b@example.net", "\"q x\"@example.org"};

static const struct spool_envelope full_env = {
    .sender = "sender@example.org",
    .rcpts = rcpts3,
    .nrcpts = 3,
    .client_addr = "2001:db8::1",
    .helo = "mail.example.org",
    .auth_user = "alice",
    .listener = "submission",
    .tenant = "acme",
    .campaign = "spring sale",
    .received_at = 1700000000,
    .flags = SPOOL_ENV_8BITMIME | SPOOL_ENV_SMTPUTF8,
};

/* A whole file: envelope, the body split in records of at most `chunk` bytes, end record. */
static void build_file(const struct spool_envelope *env, const char *body, size_t len, size_t chunk,
                       struct buf *out)
{
    CHECK_INT_EQ(envelope_encode(env, out), 0);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        envelope_rec_begin(out, ENVELOPE_REC_BODY, (uint32_t)n);
        buf_append(out, body + off, n);
    }
    envelope_end_append(out, len, envelope_crc32(0, out->data, out->len));
}

/* Feeds data in pieces of `step` bytes; returns the last result. */
static int decode(const char *data, size_t len, size_t step, struct envelope_decoder *d,
                  struct buf *body)
{
    struct buf err = BUF_INIT;
    int rc = 0;
    envelope_decoder_init(d);
    for (size_t off = 0; off < len && rc >= 0; off += step)
        rc = envelope_decoder_feed(d, data + off, len - off < step ? len - off : step, body, &err);
    if (rc < 0)
        CHECK(err.len > 0); /* every rejection says why */
    buf_free(&err);
    return rc;
}

static int same_str(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static void check_env_eq(const struct spool_envelope *got, const struct spool_envelope *want)
{
    CHECK_STR_EQ(got->sender, want->sender);
    CHECK_INT_EQ(got->nrcpts, want->nrcpts);
    for (size_t i = 0; i < got->nrcpts && i < want->nrcpts; i++)
        CHECK_STR_EQ(got->rcpts[i], want->rcpts[i]);
    CHECK(same_str(got->client_addr, want->client_addr));
    CHECK(same_str(got->helo, want->helo));
    CHECK(same_str(got->auth_user, want->auth_user));
    CHECK(same_str(got->listener, want->listener));
    CHECK(same_str(got->tenant, want->tenant));
    CHECK(same_str(got->campaign, want->campaign));
    CHECK_INT_EQ(got->received_at, want->received_at);
    CHECK_INT_EQ(got->flags, want->flags);
}

static void test_crc32(void)
{
    CHECK_INT_EQ(envelope_crc32(0, "123456789", 9), 0xcbf43926u); /* the standard check value */
    CHECK_INT_EQ(envelope_crc32(0, "", 0), 0);
    const char *text = "The quick brown fox jumps over the lazy dog, twice over: 0123456789";
    size_t len = strlen(text);
    uint32_t whole = envelope_crc32(0, text, len);
    for (size_t cut = 0; cut <= len; cut++)
        CHECK_INT_EQ(envelope_crc32(envelope_crc32(0, text, cut), text + cut, len - cut), whole);
}

static void test_round_trip(void)
{
    const char *body = "Subject: hi\r\n\r\nline one\r\nline two\r\n";
    struct buf file = BUF_INIT;
    build_file(&full_env, body, strlen(body), 7, &file);
    static const size_t steps[] = {1, 2, 5, 13, 4096};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct envelope_decoder d;
        struct buf got = BUF_INIT;
        CHECK_INT_EQ(decode(file.data, file.len, steps[i], &d, &got), 1);
        check_env_eq(&d.env, &full_env);
        CHECK_INT_EQ(d.body_size, strlen(body));
        CHECK_MEM_EQ(got.data, got.len, body);
        CHECK_INT_EQ(d.prefix.len, 0); /* a file without a prefix record, as before them */
        envelope_decoder_free(&d);
        buf_free(&got);
    }
    buf_free(&file);

    /* Null sender, absent optional strings, empty body, a negative time, no body buffer. */
    const char *const one[] = {""};
    struct spool_envelope bare = {.sender = "", .rcpts = one, .nrcpts = 1, .received_at = -5};
    build_file(&bare, "", 0, 1, &file);
    struct envelope_decoder d;
    CHECK_INT_EQ(decode(file.data, file.len, 3, &d, NULL), 1);
    check_env_eq(&d.env, &bare);
    /* a file without tenancy records, as written before them, has no tenant nor campaign */
    CHECK(d.env.client_addr == NULL && d.env.auth_user == NULL);
    CHECK(d.env.tenant == NULL && d.env.campaign == NULL);
    CHECK_INT_EQ(d.body_size, 0);
    envelope_decoder_free(&d);
    buf_free(&file);
}

static void test_truncated_and_corrupt(void)
{
    char body[3000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)(i * 7 + 3);
    struct buf file = BUF_INIT;
    build_file(&full_env, body, sizeof body, 1000, &file);

    /* Every proper prefix is incomplete, never whole. */
    int whole = 0;
    for (size_t cut = 0; cut < file.len; cut++) {
        struct envelope_decoder d;
        whole += decode(file.data, cut, 64, &d, NULL) == 1;
        envelope_decoder_free(&d);
    }
    CHECK_INT_EQ(whole, 0);

    /* Any single flipped bit anywhere is caught: an error or an incomplete file. */
    whole = 0;
    for (size_t pos = 0; pos < file.len; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            file.data[pos] ^= (char)(1 << bit);
            struct envelope_decoder d;
            whole += decode(file.data, file.len, 512, &d, NULL) == 1;
            envelope_decoder_free(&d);
            file.data[pos] ^= (char)(1 << bit);
        }
    }
    CHECK_INT_EQ(whole, 0);

    /* A byte after the end record. */
    buf_append(&file, "x", 1);
    struct envelope_decoder d;
    CHECK_INT_EQ(decode(file.data, file.len, 4096, &d, NULL), -EBADMSG);
    envelope_decoder_free(&d);
    buf_free(&file);
}

/* A file made of hand-built records, ended with a correct end record for body_size. */
static int decode_records(const char *records, size_t len, uint64_t body_size)
{
    struct buf file = BUF_INIT;
    buf_append(&file, records, len);
    envelope_end_append(&file, body_size, envelope_crc32(0, file.data, file.len));
    struct envelope_decoder d;
    int rc = decode(file.data, file.len, 4096, &d, NULL);
    envelope_decoder_free(&d);
    buf_free(&file);
    return rc;
}

#define REC(type, len) type "\0\0\0" len
#define MAGIC REC("M", "\x0e") "sluice-spool/1"
#define REQUIRED                                                                                   \
    REC("S", "\x01") "s" REC("T", "\x08") "\0\0\0\0\0\0\0\1" REC("F", "\x04") "\0\0\0\0"
#define DEC(lit, size) decode_records(lit, sizeof lit - 1, size)

static void test_rejects(void)
{
    CHECK_INT_EQ(DEC(MAGIC REQUIRED, 0), 1); /* the minimal valid file, as a control */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("B", "\x02") "hi", 2), 1);
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("B", "\x02") "hi", 3), -EBADMSG);            /* size */
    CHECK_INT_EQ(DEC(REC("M", "\x0e") "sluice-spool/2" REQUIRED, 0), -EBADMSG);      /* version */
    CHECK_INT_EQ(DEC(REQUIRED, 0), -EBADMSG);                                        /* no magic */
    CHECK_INT_EQ(DEC(MAGIC MAGIC REQUIRED, 0), -EBADMSG);                            /* twice */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("S", "\x01") "t", 0), -EBADMSG);             /* sender x2 */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("Z", "\x00"), 0), -EBADMSG);                 /* type */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("H", "\x03") "a\0b", 0), -EBADMSG);          /* NUL */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("F", "\x05") "\0\0\0\0\0", 0), -EBADMSG);    /* length */
    CHECK_INT_EQ(DEC(MAGIC REC("S", "\x01") "s" REC("B", "\x01") "x", 1), -EBADMSG); /* no T, F */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("B", "\x01") "x" REC("R", "\x01") "r", 1), -EBADMSG);

    /* The prefix record: once, after the body, never empty, not counted in the body size. */
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("B", "\x01") "x" REC("P", "\x01") "p", 1), 1);
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("P", "\x01") "p", 0), 1);
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("P", "\x01") "p" REC("P", "\x01") "q", 0), -EBADMSG);
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("P", "\x01") "p" REC("B", "\x01") "x", 1), -EBADMSG);
    CHECK_INT_EQ(DEC(MAGIC REQUIRED REC("P", "\x00"), 0), -EBADMSG);
    CHECK_INT_EQ(DEC(MAGIC REC("P", "\x01") "p" REQUIRED, 0), -EBADMSG);

    /* Caps hold before any allocation: a string of 1001 bytes, a body record over 1 MiB. */
    struct buf file = BUF_INIT;
    buf_append(&file, MAGIC, sizeof MAGIC - 1);
    envelope_rec_begin(&file, ENVELOPE_REC_SENDER, ENVELOPE_STR_MAX + 1);
    struct envelope_decoder d;
    CHECK_INT_EQ(decode(file.data, file.len, 4096, &d, NULL), -EBADMSG);
    envelope_decoder_free(&d);
    buf_reset(&file);
    buf_append(&file, MAGIC REQUIRED, sizeof(MAGIC REQUIRED) - 1);
    envelope_rec_begin(&file, ENVELOPE_REC_BODY, ENVELOPE_BODY_REC_MAX + 1);
    CHECK_INT_EQ(decode(file.data, file.len, 4096, &d, NULL), -EBADMSG);
    envelope_decoder_free(&d);

    /* Recipients: 10000 are fine, one more is refused. */
    buf_reset(&file);
    buf_append(&file, MAGIC REQUIRED, sizeof(MAGIC REQUIRED) - 1);
    for (int i = 0; i < ENVELOPE_RCPTS_MAX; i++) {
        envelope_rec_begin(&file, ENVELOPE_REC_RCPT, 1);
        buf_append(&file, "r", 1);
    }
    CHECK_INT_EQ(decode_records(file.data, file.len, 0), 1);
    envelope_rec_begin(&file, ENVELOPE_REC_RCPT, 1);
    buf_append(&file, "r", 1);
    CHECK_INT_EQ(decode_records(file.data, file.len, 0), -EBADMSG);
    buf_free(&file);
}

static void test_prefix(void)
{
    const char *body = "Subject: hi\r\n\r\nbody\r\n";
    const char *prefix = "DKIM-Signature: v=1; b=x\r\n";
    struct buf file = BUF_INIT;
    CHECK_INT_EQ(envelope_encode(&full_env, &file), 0);
    envelope_rec_begin(&file, ENVELOPE_REC_BODY, (uint32_t)strlen(body));
    buf_append_str(&file, body);
    envelope_prefix_append(&file, prefix, strlen(prefix));
    envelope_end_append(&file, strlen(body), envelope_crc32(0, file.data, file.len));
    static const size_t steps[] = {1, 3, 4096};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct envelope_decoder d;
        struct buf got = BUF_INIT;
        CHECK_INT_EQ(decode(file.data, file.len, steps[i], &d, &got), 1);
        CHECK_INT_EQ(d.body_size, strlen(body));
        CHECK_MEM_EQ(got.data, got.len, body); /* the reader puts the prefix in front */
        CHECK_MEM_EQ(d.prefix.data, d.prefix.len, prefix);
        envelope_decoder_free(&d);
        buf_free(&got);
    }

    /* An empty prefix writes no record: the file is as before prefixes existed. */
    size_t len = file.len;
    envelope_prefix_append(&file, "", 0);
    CHECK_INT_EQ(file.len, len);

    /* The cap holds before the payload is read. */
    buf_reset(&file);
    CHECK_INT_EQ(envelope_encode(&full_env, &file), 0);
    envelope_rec_begin(&file, ENVELOPE_REC_PREFIX, ENVELOPE_PREFIX_MAX + 1);
    struct envelope_decoder d;
    CHECK_INT_EQ(decode(file.data, file.len, 4096, &d, NULL), -EBADMSG);
    envelope_decoder_free(&d);
    buf_free(&file);
}

static void test_encode_caps(void)
{
    struct buf out = BUF_INIT;
    char *long_str = malloc(ENVELOPE_STR_MAX + 2);
    memset(long_str, 'a', ENVELOPE_STR_MAX + 1);
    long_str[ENVELOPE_STR_MAX + 1] = '\0';
    struct spool_envelope env = full_env;
    env.helo = long_str;
    CHECK_INT_EQ(envelope_encode(&env, &out), -EINVAL);
    long_str[ENVELOPE_STR_MAX] = '\0'; /* exactly at the cap */
    CHECK_INT_EQ(envelope_encode(&env, &out), 0);
    buf_reset(&out);

    env = full_env;
    const char **many = calloc(ENVELOPE_RCPTS_MAX + 1, sizeof *many);
    for (int i = 0; i <= ENVELOPE_RCPTS_MAX; i++)
        many[i] = "r@example.com";
    env.rcpts = many;
    env.nrcpts = ENVELOPE_RCPTS_MAX + 1;
    CHECK_INT_EQ(envelope_encode(&env, &out), -EINVAL);
    CHECK_INT_EQ(out.len, 0); /* nothing half-written */
    env.sender = NULL;
    env.nrcpts = 1;
    CHECK_INT_EQ(envelope_encode(&env, &out), -EINVAL);
    free(many);
    free(long_str);
    buf_free(&out);
}

/* A file of the given records (type, payload; NUL-terminated lists), an empty body and the end. */
static void build_records(const char *const *recs, struct buf *out)
{
    for (size_t i = 0; recs[i] != NULL; i += 2) {
        size_t len = strlen(recs[i + 1]);
        envelope_rec_begin(out, (enum envelope_rec)recs[i][0], (uint32_t)len);
        buf_append(out, recs[i + 1], len);
    }
    envelope_end_append(out, 0, envelope_crc32(0, out->data, out->len));
}

/* RFC 3461 parameters: kept per message and per recipient; a file without them (as every file
 * was before) loads with none; recipient records out of place are refused. */
static void test_dsn(void)
{
    static const unsigned char notify[] = {SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_FAILURE, 0,
                                           SMTP_DSN_NOTIFY_NEVER};
    static const char *const orcpt[] = {"rfc822;A+b@example.com", NULL, NULL};
    struct envelope_dsn dsn = {SMTP_DSN_RET_HDRS, "ENV 42", notify, orcpt};
    struct spool_envelope env = full_env;
    env.dsn = &dsn;
    struct buf file = BUF_INIT;
    build_file(&env, "x", 1, 1, &file);
    static const size_t steps[] = {1, 3, 4096};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct envelope_decoder d;
        CHECK_INT_EQ(decode(file.data, file.len, steps[i], &d, NULL), 1);
        check_env_eq(&d.env, &env);
        CHECK(d.env.dsn != NULL);
        if (d.env.dsn != NULL) {
            CHECK_INT_EQ(d.env.dsn->ret, SMTP_DSN_RET_HDRS);
            CHECK_STR_EQ(d.env.dsn->envid, "ENV 42");
            for (size_t r = 0; r < 3; r++) {
                CHECK_INT_EQ(d.env.dsn->notify[r], notify[r]);
                CHECK(same_str(d.env.dsn->orcpt[r], orcpt[r]));
            }
        }
        envelope_decoder_free(&d);
    }
    buf_reset(&file);

    /* Nothing given: no DSN records at all, so the file is byte for byte as before. */
    struct envelope_dsn none = {0};
    static const unsigned char zero[3] = {0};
    none.notify = zero;
    env.dsn = &none;
    struct buf plain = BUF_INIT;
    build_file(&env, "x", 1, 1, &file);
    build_file(&full_env, "x", 1, 1, &plain);
    CHECK(file.len == plain.len && memcmp(file.data, plain.data, plain.len) == 0);
    buf_free(&plain);
    buf_reset(&file);

    /* An old file loads with no parameters. */
    build_file(&full_env, "x", 1, 1, &file);
    struct envelope_decoder d;
    CHECK_INT_EQ(decode(file.data, file.len, 5, &d, NULL), 1);
    CHECK(d.env.dsn == NULL);
    envelope_decoder_free(&d);
    buf_reset(&file);

    static const char *const misplaced[][16] = {
        {"M", "sluice-spool/1", "S", "a@b.example", "N", "\x02", NULL},
        {"M", "sluice-spool/1", "S", "a@b.example", "R", "c@d.example", "N", "\x02", "N", "\x04",
         NULL},
        {"M", "sluice-spool/1", "S", "a@b.example", "D", "\x01", "D", "\x02", NULL},
        {"M", "sluice-spool/1", "S", "a@b.example", "D", "", NULL},
    };
    for (size_t i = 0; i < sizeof misplaced / sizeof misplaced[0]; i++) {
        build_records(misplaced[i], &file);
        CHECK_INT_EQ(decode(file.data, file.len, 4096, &d, NULL), -EBADMSG);
        envelope_decoder_free(&d);
        buf_reset(&file);
    }
    buf_free(&file);
}

int main(void)
{
    test_crc32();
    test_round_trip();
    test_truncated_and_corrupt();
    test_rejects();
    test_prefix();
    test_encode_caps();
    test_dsn();
    return check_report("test_envelope");
}
