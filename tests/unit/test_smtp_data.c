#include <string.h>

#include "lib/smtp_data.h"
#include "tests/unit/check.h"

struct result {
    struct buf out;
    size_t used;
    int done;
    unsigned flags;
};

/* Decodes input split into pieces of `step` bytes (0: all at once), as a socket might deliver it.
 */
static struct result decode(const char *input, size_t len, size_t step)
{
    struct smtp_data d;
    struct result r = {BUF_INIT, 0, 0, 0};
    smtp_data_init(&d);
    while (r.used < len && !r.done) {
        size_t n = step == 0 || len - r.used < step ? len - r.used : step;
        r.used += smtp_data_feed(&d, input + r.used, n, &r.out, &r.done);
    }
    r.flags = d.flags;
    return r;
}

static void check_decode(const char *input, const char *want_body, size_t want_used, unsigned flags)
{
    size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct result r = decode(input, strlen(input), steps[i]);
        CHECK_INT_EQ(r.done, 1);
        CHECK_MEM_EQ(r.out.data, r.out.len, want_body);
        CHECK_INT_EQ(r.used, want_used);
        CHECK_INT_EQ(r.flags, flags);
        buf_free(&r.out);
    }
}

static void test_end_of_data(void)
{
    check_decode("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", 23, 0);
    check_decode(".\r\n", "", 3, 0); /* empty message */
    /* Bytes after the end belong to the next command and are not consumed. */
    check_decode("a\r\n.\r\nQUIT\r\n", "a\r\n", 6, 0);
}

static void test_dot_stuffing(void)
{
    check_decode("..leading dot\r\n.\r\n", ".leading dot\r\n", 18, 0);
    check_decode("...\r\n.\r\n", "..\r\n", 8, 0);
    check_decode("a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n", 11, 0);
}

/* The smuggling sequences: none of them ends the message. Bare CR and LF are stored as CRLF (what
 * every later reader takes them for), so each trick leaves a "." line as content, which the
 * encoder dot-stuffs on the way out. */
static void test_smuggling(void)
{
    static const struct {
        const char *trick, *stored;
    } cases[] = {
        {"\n.\n", "\r\n.\r\n"},   /* bare LF, dot, bare LF */
        {"\r\n.\n", "\r\n\r\n"},  /* the dot is stuffing, the LF a bare line end */
        {"\n.\r\n", "\r\n.\r\n"}, /* after a bare LF the dot is content */
        {"\r.\r\n", "\r\n.\r\n"}, {"\r\n.\r", "\r\n\r\n"}, /* stuffing dot, then a bare CR */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char input[256], body[256];
        snprintf(input, sizeof input, "a%sMAIL FROM:<x@y>\r\n.\r\n", cases[i].trick);
        struct result r = decode(input, strlen(input), 0);
        CHECK_INT_EQ(r.done, 1);
        CHECK_INT_EQ(r.used, strlen(input));
        snprintf(body, sizeof body, "a%sMAIL FROM:<x@y>\r\n", cases[i].stored);
        CHECK_MEM_EQ(r.out.data, r.out.len, body);
        CHECK(r.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR));
        /* On the way out the "." line is stuffed, so no receiver sees an end of data there. */
        struct smtp_data_enc enc;
        struct buf wire = BUF_INIT;
        smtp_data_enc_init(&enc);
        smtp_data_enc_feed(&enc, r.out.data, r.out.len, &wire);
        smtp_data_enc_finish(&enc, &wire);
        const char *end = memmem(wire.data, wire.len, "\r\n.\r\n", 5);
        CHECK(end != NULL && (size_t)(end - wire.data) + 5 == wire.len);
        buf_free(&wire);
        buf_free(&r.out);
    }
}

static void test_flags(void)
{
    struct result r = decode("a\nb\r\n.\r\n", 8, 0);
    CHECK_INT_EQ(r.flags, SMTP_DATA_BARE_LF);
    buf_free(&r.out);
    r = decode("a\rb\r\n.\r\n", 8, 0);
    CHECK_INT_EQ(r.flags, SMTP_DATA_BARE_CR);
    buf_free(&r.out);

    char input[2100];
    memset(input, 'x', 998);
    strcpy(input + 998, "\r\n.\r\n");
    r = decode(input, strlen(input), 0);
    CHECK_INT_EQ(r.flags, 0); /* 998 + CRLF = 1000: the limit itself */
    buf_free(&r.out);
    memset(input, 'x', 999);
    strcpy(input + 999, "\r\n.\r\n");
    r = decode(input, strlen(input), 0);
    CHECK_INT_EQ(r.flags, SMTP_DATA_LONG_LINE);
    buf_free(&r.out);
}

static void test_incomplete(void)
{
    struct result r = decode("abc\r\n.\r", 7, 0);
    CHECK_INT_EQ(r.done, 0);
    CHECK_INT_EQ(r.used, 7);
    CHECK_MEM_EQ(r.out.data, r.out.len, "abc\r\n"); /* ".\r" is held back until its fate is known */
    buf_free(&r.out);
}

/* Encodes input in pieces of `step` bytes (0: all at once) and checks the wire bytes; chunked:
 * as for BDAT. */
enum encoding { ENC_DATA, ENC_CHUNKED, ENC_BINARY };

static void check_encode_as(enum encoding how, const char *input, const char *want_wire)
{
    size_t steps[] = {0, 1, 2, 3, 7};
    size_t len = strlen(input);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct smtp_data_enc e;
        struct buf wire = BUF_INIT;
        if (how == ENC_BINARY)
            smtp_data_enc_init_binary(&e);
        else if (how == ENC_CHUNKED)
            smtp_data_enc_init_chunked(&e);
        else
            smtp_data_enc_init(&e);
        for (size_t off = 0; off < len;) {
            size_t n = steps[i] == 0 || len - off < steps[i] ? len - off : steps[i];
            smtp_data_enc_feed(&e, input + off, n, &wire);
            off += n;
        }
        smtp_data_enc_finish(&e, &wire);
        CHECK_MEM_EQ(wire.data, wire.len, want_wire);
        buf_free(&wire);
    }
}

static void check_encode(const char *input, const char *want_wire)
{
    check_encode_as(ENC_DATA, input, want_wire);
}

static void test_encode(void)
{
    check_encode("", ".\r\n");
    check_encode("a\r\n", "a\r\n.\r\n");
    check_encode("a", "a\r\n.\r\n"); /* the missing final CRLF is added */
    check_encode(".\r\n", "..\r\n.\r\n");
    check_encode(".a\r\n..b\r\nc.d\r\n.", "..a\r\n...b\r\nc.d\r\n..\r\n.\r\n");
    /* Bare LF and bare CR become CRLF, and a dot after them is at a line start. */
    check_encode("a\nb\rc\r\n", "a\r\nb\r\nc\r\n.\r\n");
    check_encode("a\n.\n", "a\r\n..\r\n.\r\n");
    check_encode("a\r.\r", "a\r\n..\r\n.\r\n");
    check_encode("\r\r\n\n\r", "\r\n\r\n\r\n\r\n.\r\n");
    /* The smuggling sequences cannot survive encoding as an early end of data. */
    check_encode("a\n.\nMAIL", "a\r\n..\r\nMAIL\r\n.\r\n");
    check_encode("a\r\n.\rMAIL", "a\r\n..\r\nMAIL\r\n.\r\n");
}

/* For BDAT: line ends made CRLF, the last one too, and nothing else: no dot is doubled, no final
 * dot. smtp_data_wire_size says how many octets that is (RFC 1870's SIZE=). */
static void test_encode_chunked(void)
{
    static const struct {
        const char *in, *wire;
    } cases[] = {
        {"", ""},
        {"a\r\n", "a\r\n"},
        {"a", "a\r\n"},
        {".\r\n", ".\r\n"},
        {".a\r\n..b\r\n.", ".a\r\n..b\r\n.\r\n"},
        {"a\nb\rc\r\n", "a\r\nb\r\nc\r\n"},
        {"\r\r\n\n\r", "\r\n\r\n\r\n\r\n"},
        {"a\r\n.\rMAIL", "a\r\n.\r\nMAIL\r\n"},
        {"\n", "\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_encode_as(ENC_CHUNKED, cases[i].in, cases[i].wire);
        CHECK_INT_EQ(smtp_data_wire_size(cases[i].in, strlen(cases[i].in)), strlen(cases[i].wire));
    }
}

/* For BDAT with BODY=BINARYMIME: the stored octets exactly, bare line ends and dots included. */
static void test_encode_binary(void)
{
    const char *inputs[] = {"", "a", "a\nb\rc\r\n", ".\r\n", "\r\r\n\n\r", "x\r\n.\r\n"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        check_encode_as(ENC_BINARY, inputs[i], inputs[i]);
}

/* Whatever the stored bytes, what the encoder sends decodes back to them with line ends made
 * CRLF, ending exactly at the end of what was sent. */
static void test_encode_decode(void)
{
    const char *inputs[] = {"a\n.\r\n", ".\r.\n..", "\r\n.\r\n", "x\r", "..\n\r\n."};
    const char *normal[] = {"a\r\n.\r\n", ".\r\n.\r\n..\r\n", "\r\n.\r\n", "x\r\n",
                            "..\r\n\r\n.\r\n"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        struct smtp_data_enc e;
        struct buf wire = BUF_INIT;
        smtp_data_enc_init(&e);
        smtp_data_enc_feed(&e, inputs[i], strlen(inputs[i]), &wire);
        smtp_data_enc_finish(&e, &wire);
        struct result r = decode(wire.data, wire.len, 0);
        CHECK_INT_EQ(r.done, 1);
        CHECK_INT_EQ(r.used, wire.len);
        CHECK_INT_EQ(r.flags, 0);
        CHECK_MEM_EQ(r.out.data, r.out.len, normal[i]);
        buf_free(&r.out);
        buf_free(&wire);
    }
}

int main(void)
{
    test_encode();
    test_encode_chunked();
    test_encode_binary();
    test_encode_decode();
    test_end_of_data();
    test_dot_stuffing();
    test_smuggling();
    test_flags();
    test_incomplete();
    return check_report("test_smtp_data");
}
