#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_reply.h"
#include "tests/unit/check.h"

/* What one parse produced, rendered so cases compare as strings. */
struct outcome {
    enum smtp_reply_status status;
    size_t consumed;
    int code;
    char enhanced[16]; /* "x.y.z" or "" */
    size_t nlines;
    struct buf join; /* lines joined by " | " */
};

/* Feeds in[0..len) in chunks of `chunk` bytes (0: all at once) until a reply is done or fails. */
static void parse(const char *in, size_t len, size_t chunk, struct outcome *o)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    memset(o, 0, sizeof *o);
    o->status = REPLY_NEED_MORE;
    size_t off = 0;
    while (off < len && o->status == REPLY_NEED_MORE) {
        size_t n = chunk == 0 || chunk > len - off ? len - off : chunk, used;
        o->status = smtp_reply_parser_feed(&p, in + off, n, &used);
        if (used > n || (o->status == REPLY_NEED_MORE && used != n))
            o->status = (enum smtp_reply_status) - 1; /* broken contract shows as a mismatch */
        off += used;
    }
    o->consumed = off;
    if (o->status == REPLY_DONE) {
        o->code = p.reply.code;
        if (p.reply.enhanced.cls)
            snprintf(o->enhanced, sizeof o->enhanced, "%u.%u.%u", p.reply.enhanced.cls,
                     p.reply.enhanced.subject, p.reply.enhanced.detail);
        o->nlines = p.reply.nlines;
        smtp_reply_text_join(&p.reply, " | ", &o->join);
    }
    smtp_reply_parser_close(&p);
}

struct reply_case {
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    enum smtp_reply_status status;
    size_t consumed; /* 0: all of the input */
    int code;
    const char *enhanced;
    size_t nlines;
    const char *join;
};

#define GMAIL_NOUSER                                                                               \
    "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"           \
    "550-5.1.1 double-checking the recipient's email address for typos or\r\n"                     \
    "550-5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser\r\n"              \
    "550 5.1.1 a1b2c3 - gsmtp\r\n"

static const struct reply_case cases[] = {
    {"220 mx.example ESMTP ready\r\n", 0, REPLY_DONE, 0, 220, "", 1, "mx.example ESMTP ready"},
    {"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 0, REPLY_DONE, 0, 250, "", 3,
     "mx.example | PIPELINING | 8BITMIME"},
    {GMAIL_NOUSER, 0, REPLY_DONE, 0, 550, "5.1.1", 4,
     "5.1.1 The email account that you tried to reach does not exist. Please try | "
     "double-checking the recipient's email address for typos or | unnecessary spaces. "
     "https://support.google.com/mail/?p=NoSuchUser | a1b2c3 - gsmtp"},
    /* Bare LF line ends, a code alone, an empty continuation text. */
    {"250-a\n250 b\n", 0, REPLY_DONE, 0, 250, "", 2, "a | b"},
    {"250\r\n", 0, REPLY_DONE, 0, 250, "", 1, ""},
    {"250-\r\n250 end\r\n", 0, REPLY_DONE, 0, 250, "", 2, " | end"},
    /* Bytes after the reply belong to the next one (PIPELINING). */
    {"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", 0, REPLY_DONE, 14, 250, "2.1.0", 1, "2.1.0 Ok"},
    {"250-a\r\n250 b\r\nXYZ", 0, REPLY_DONE, 14, 250, "", 2, "a | b"},
    /* Enhanced codes: present, absent, bogus, or of another class than the reply. */
    {"250 2.0.0 Ok: queued as 1234\r\n", 0, REPLY_DONE, 0, 250, "2.0.0", 1,
     "2.0.0 Ok: queued as 1234"},
    {"550 5.1.10 RESOLVER.ADR.RecipientNotFound\r\n", 0, REPLY_DONE, 0, 550, "5.1.10", 1,
     "5.1.10 RESOLVER.ADR.RecipientNotFound"},
    {"421 4.7.0\r\n", 0, REPLY_DONE, 0, 421, "4.7.0", 1, "4.7.0"},
    {"550 4.1.1 class mismatch\r\n", 0, REPLY_DONE, 0, 550, "", 1, "4.1.1 class mismatch"},
    {"354 3.0.0 go ahead\r\n", 0, REPLY_DONE, 0, 354, "", 1, "3.0.0 go ahead"},
    {"550 5.1 short\r\n", 0, REPLY_DONE, 0, 550, "", 1, "5.1 short"},
    {"550 5.1.1234 long\r\n", 0, REPLY_DONE, 0, 550, "", 1, "5.1.1234 long"},
    {"550 5.7.1x glued\r\n", 0, REPLY_DONE, 0, 550, "", 1, "5.7.1x glued"},
    {"550 6.1.1 bad class\r\n", 0, REPLY_DONE, 0, 550, "", 1, "6.1.1 bad class"},
    {"550-5.7.1 a\r\n550 5.7.2 b\r\n", 0, REPLY_DONE, 0, 550, "5.7.1", 2, "5.7.1 a | 5.7.2 b"},
    /* Control and 8-bit bytes are made safe in the joined text; one trailing CR is the EOL. */
    {"550 bad\x1b[31m\r\r\n", 0, REPLY_DONE, 0, 550, "", 1, "bad?[31m?"},
    {"550 j\xc3\xb6rg\ttab\r\n", 0, REPLY_DONE, 0, 550, "", 1, "j??rg?tab"},
    /* Malformed. */
    {"250-a\r\n251 b\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"250 a\0b\r\n", 9, REPLY_ERROR, 0, 0, "", 0, ""},
    {"250-a\r\n\0", 8, REPLY_ERROR, 0, 0, "", 0, ""},
    {"600 x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"150 x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"260 x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"25 x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"250x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"25a x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {"\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    {" 250 x\r\n", 0, REPLY_ERROR, 0, 0, "", 0, ""},
    /* Incomplete: everything is consumed and kept. */
    {"250-a\r\n250 b", 0, REPLY_NEED_MORE, 0, 0, "", 0, ""},
    {"250 a\r", 0, REPLY_NEED_MORE, 0, 0, "", 0, ""},
};

static void check_case(const struct reply_case *c, size_t index)
{
    size_t len = c->in_len ? c->in_len : strlen(c->in);
    size_t want_consumed = c->consumed ? c->consumed : len;
    /* Whole, byte by byte, and in odd-sized chunks: all must agree with the expectation. After an
     * error the connection is dropped, so how much was consumed does not matter. */
    const size_t chunks[] = {0, 1, 2, 7};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        struct outcome o;
        parse(c->in, len, chunks[k], &o);
        int ok = o.status == c->status && o.code == c->code &&
                 strcmp(o.enhanced, c->enhanced) == 0 && o.nlines == c->nlines &&
                 (c->status == REPLY_ERROR || o.consumed == want_consumed) &&
                 (c->status != REPLY_DONE || strcmp(o.join.data, c->join) == 0);
        CHECK(ok);
        if (!ok)
            fprintf(stderr,
                    "  case %zu chunk %zu: status %d consumed %zu code %d enh '%s' lines %zu"
                    " join '%s'\n",
                    index, chunks[k], (int)o.status, o.consumed, o.code, o.enhanced, o.nlines,
                    o.join.data ? o.join.data : "");
        buf_free(&o.join);
    }
}

/* A reply made of `lines` lines, each `line_len` octets long including CRLF. */
static char *make_reply(size_t lines, size_t line_len, size_t *out_len)
{
    char *s = malloc(lines * line_len);
    for (size_t i = 0; i < lines; i++) {
        char *l = s + i * line_len;
        memcpy(l, i + 1 < lines ? "250-" : "250 ", 4);
        memset(l + 4, 'x', line_len - 6);
        memcpy(l + line_len - 2, "\r\n", 2);
    }
    *out_len = lines * line_len;
    return s;
}

static void test_caps(void)
{
    const struct {
        size_t lines, line_len;
        enum smtp_reply_status status;
    } caps[] = {
        {1, SMTP_REPLY_LINE_MAX, REPLY_DONE},
        {1, SMTP_REPLY_LINE_MAX + 1, REPLY_ERROR},
        {1, 100000, REPLY_ERROR},
        {SMTP_REPLY_LINES_MAX, 8, REPLY_DONE},
        {SMTP_REPLY_LINES_MAX + 1, 8, REPLY_ERROR},
        {SMTP_REPLY_TOTAL_MAX / 1024, 1024, REPLY_DONE},
        {SMTP_REPLY_TOTAL_MAX / 1024 + 1, 1024, REPLY_ERROR},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        size_t len;
        char *in = make_reply(caps[i].lines, caps[i].line_len, &len);
        for (size_t chunk = 0; chunk < 3; chunk++) {
            struct outcome o;
            parse(in, len, chunk, &o);
            CHECK_INT_EQ(o.status, caps[i].status);
            if (caps[i].status == REPLY_DONE) {
                CHECK_INT_EQ(o.nlines, caps[i].lines);
                CHECK_INT_EQ(o.consumed, len);
            }
            buf_free(&o.join);
        }
        free(in);
    }
    /* An endless line fails as soon as it passes the cap, without waiting for its end. */
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    char junk[512];
    memset(junk, 'a', sizeof junk);
    enum smtp_reply_status st = REPLY_NEED_MORE;
    size_t fed = 0, used;
    while (st == REPLY_NEED_MORE && fed < 10 * SMTP_REPLY_LINE_MAX) {
        st = smtp_reply_parser_feed(&p, junk, sizeof junk, &used);
        fed += sizeof junk;
    }
    CHECK_INT_EQ(st, REPLY_ERROR);
    CHECK(fed <= SMTP_REPLY_LINE_MAX + sizeof junk);
    CHECK_STR_EQ(p.error, "reply line too long");
    /* The error is sticky. */
    CHECK_INT_EQ(smtp_reply_parser_feed(&p, "250 ok\r\n", 8, &used), REPLY_ERROR);
    CHECK_INT_EQ(used, 0);
    smtp_reply_parser_close(&p);
}

static void test_sequence(void)
{
    /* Pipelined replies come out one by one from one buffer; the parser reuses itself. */
    const char *in = "250 2.1.0 Sender ok\r\n250-2.1.5 a\r\n250 2.1.5 b\r\n354 go\r\n";
    const int codes[] = {250, 250, 354};
    const size_t lines[] = {1, 2, 1};
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    size_t off = 0, len = strlen(in), used;
    for (int i = 0; i < 3; i++) {
        CHECK_INT_EQ(smtp_reply_parser_feed(&p, in + off, len - off, &used), REPLY_DONE);
        CHECK_INT_EQ(p.reply.code, codes[i]);
        CHECK_INT_EQ(p.reply.nlines, lines[i]);
        off += used;
    }
    CHECK_INT_EQ(off, len);
    CHECK_INT_EQ(p.reply.enhanced.cls, 0);
    /* Nothing left: an empty feed needs more and the finished reply is gone. */
    CHECK_INT_EQ(smtp_reply_parser_feed(&p, "", 0, &used), REPLY_NEED_MORE);
    CHECK_INT_EQ(p.reply.nlines, 0);
    smtp_reply_parser_close(&p);
}

static void test_line_next(void)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    size_t used;
    const char *in = "250-one\r\n250-\r\n250 three\r\n";
    CHECK_INT_EQ(smtp_reply_parser_feed(&p, in, strlen(in), &used), REPLY_DONE);
    const char *want[] = {"one", "", "three"};
    size_t pos = 0, n = 0, len;
    const char *text;
    while (smtp_reply_line_next(&p.reply, &pos, &text, &len)) {
        if (n < 3)
            CHECK_MEM_EQ(text, len, want[n]);
        n++;
    }
    CHECK_INT_EQ(n, 3);
    smtp_reply_parser_close(&p);
}

struct ehlo_case {
    const char *in;
    int rc;
    unsigned ext;
    uint64_t size_max;
    unsigned auth;
};

static const struct ehlo_case ehlo_cases[] = {
    {"250-mx.google.com at your service, [192.0.2.1]\r\n250-SIZE 157286400\r\n250-8BITMIME\r\n"
     "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
     "250 SMTPUTF8\r\n",
     0,
     SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_STARTTLS | SMTP_EXT_ENHANCEDSTATUSCODES |
         SMTP_EXT_PIPELINING | SMTP_EXT_CHUNKING | SMTP_EXT_SMTPUTF8,
     157286400, 0},
    /* Lower case, extra blanks, tabs, the old AUTH= form, unknown mechanisms and keywords. */
    {"250-mail.example Hello\r\n250-size 35882577\r\n250-pipelining\r\n250-Dsn\r\n"
     "250-AUTH LOGIN  PLAIN\tGSSAPI xoauth2 \r\n250-AUTH=CRAM-MD5\r\n250-X-EXPS NTLM\r\n"
     "250 BINARYMIME\n",
     0, SMTP_EXT_SIZE | SMTP_EXT_PIPELINING | SMTP_EXT_DSN | SMTP_EXT_AUTH | SMTP_EXT_BINARYMIME,
     35882577, SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN | SMTP_AUTH_XOAUTH2 | SMTP_AUTH_CRAM_MD5},
    {"250-x\r\n250-auth scram-sha-256\r\n250 STARTTLS\r\n", 0, SMTP_EXT_AUTH | SMTP_EXT_STARTTLS, 0,
     SMTP_AUTH_SCRAM_SHA_256},
    /* Junk: overflowing or non-numeric SIZE reads as "no limit"; prefixes and suffixes of a
     * keyword are not the keyword; blank lines are skipped. */
    {"250-x\r\n250-SIZE 99999999999999999999999\r\n250-PIPELININGX\r\n250-  \r\n"
     "250-STARTTLS extra args\r\n250-8BIT\r\n250 SIZE\r\n",
     0, SMTP_EXT_SIZE | SMTP_EXT_STARTTLS, 0, 0},
    {"250-x\r\n250-SIZE 12abc\r\n250 SIZE=2048\r\n", 0, SMTP_EXT_SIZE, 2048, 0},
    {"250-x\r\n250 SIZE -5\r\n", 0, SMTP_EXT_SIZE, 0, 0},
    /* The first line greets; keywords in it mean nothing. */
    {"250-STARTTLS PIPELINING\r\n250 DSN\r\n", 0, SMTP_EXT_DSN, 0, 0},
    {"250 mx.example\r\n", 0, 0, 0, 0},
    {"502 5.5.1 EHLO not supported\r\n", -EINVAL, 0, 0, 0},
    {"220-STARTTLS\r\n220 PIPELINING\r\n", -EINVAL, 0, 0, 0},
};

static void test_ehlo(void)
{
    for (size_t i = 0; i < sizeof ehlo_cases / sizeof ehlo_cases[0]; i++) {
        const struct ehlo_case *c = &ehlo_cases[i];
        struct smtp_reply_parser p;
        smtp_reply_parser_init(&p);
        size_t used;
        CHECK_INT_EQ(smtp_reply_parser_feed(&p, c->in, strlen(c->in), &used), REPLY_DONE);
        struct smtp_ehlo e;
        CHECK_INT_EQ(smtp_reply_ehlo_parse(&p.reply, &e), c->rc);
        CHECK_INT_EQ(e.ext, c->ext);
        CHECK_INT_EQ(e.size_max, c->size_max);
        CHECK_INT_EQ(e.auth, c->auth);
        smtp_reply_parser_close(&p);
    }
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], i);
    test_caps();
    test_sequence();
    test_line_next();
    test_ehlo();
    return check_report("test_smtp_reply");
}
