/*
 * The streaming MIME parser on real-world message shapes (Outlook, Thunderbird, Gmail), RFC 2231
 * and RFC 2047 filenames, nesting, forwarded messages and malformed input. Every message is also
 * fed one octet at a time and in uneven chunks: the result must not depend on the chunking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mime.h"
#include "tests/unit/check.h"

static const char *const blocked[] = {"exe", "scr", "js", "bat"};
#define NBLOCKED (sizeof(blocked) / sizeof(blocked[0]))

/* The decoded filenames seen, joined by '|'. */
struct seen {
    char names[4096];
};

static void on_filename(void *arg, const char *raw, const char *decoded)
{
    (void)raw;
    struct seen *s = arg;
    size_t n = strlen(s->names);
    snprintf(s->names + n, sizeof(s->names) - n, "%s%s", n ? "|" : "", decoded);
}

/* Parses msg in chunks of `chunk` octets (0: all at once); returns the status, the blocked name or
 * problem in *what and the filenames in seen. */
static enum mime_status parse(const char *msg, size_t chunk, char *what, size_t what_size,
                              struct seen *seen)
{
    memset(seen, 0, sizeof *seen);
    struct mime_parser *p = mime_parser_new(blocked, NBLOCKED, on_filename, seen);
    size_t len = strlen(msg);
    if (chunk == 0)
        chunk = len;
    for (size_t off = 0; off < len; off += chunk)
        mime_parser_feed(p, msg + off, len - off < chunk ? len - off : chunk);
    const struct mime_result *res = mime_parser_finish(p);
    enum mime_status st = res->status;
    const char *w = st == MIME_BLOCKED ? res->name : st == MIME_MALFORMED ? res->problem : "";
    snprintf(what, what_size, "%s", w);
    mime_parser_free(p);
    return st;
}

struct mime_case {
    const char *label;
    const char *msg;
    enum mime_status want;
    const char *want_what;  /* blocked name or problem; "" when clean */
    const char *want_names; /* filenames seen, for clean messages (NULL: not checked) */
};

static const struct mime_case cases[] = {
    {"plain text, no MIME", "From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n.exe\r\n",
     MIME_CLEAN, "", ""},
    {"Thunderbird: multipart/mixed with a PDF and an exe",
     "From: a@example.com\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed;\r\n"
     " boundary=\"------------8Bq1Yxj0RwEJzUqCjXbG3eaF\"\r\n"
     "\r\n"
     "This is a multi-part message in MIME format.\r\n"
     "--------------8Bq1Yxj0RwEJzUqCjXbG3eaF\r\n"
     "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
     "Content-Transfer-Encoding: 7bit\r\n"
     "\r\n"
     "see attached\r\n"
     "--------------8Bq1Yxj0RwEJzUqCjXbG3eaF\r\n"
     "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
     "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "JVBERi0xLjQK\r\n"
     "--------------8Bq1Yxj0RwEJzUqCjXbG3eaF\r\n"
     "Content-Type: application/x-msdownload; name=\"setup.exe\"\r\n"
     "Content-Disposition: attachment; filename=\"setup.exe\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "TVqQAAMAAAAEAAAA\r\n"
     "--------------8Bq1Yxj0RwEJzUqCjXbG3eaF--\r\n",
     MIME_BLOCKED, "setup.exe", NULL},
    {"Thunderbird: clean attachments",
     "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
     "\r\n"
     "--b1\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "text\r\n"
     "--b1\r\n"
     "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
     "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
     "\r\n"
     "JVBERi0xLjQK\r\n"
     "--b1--\r\n"
     "epilogue\r\n",
     MIME_CLEAN, "", "report.pdf|report.pdf"},
    {"Outlook: multipart/mixed > multipart/alternative > multipart/related, RFC 2047 name",
     "Content-Type: multipart/mixed;\r\n"
     "\tboundary=\"_004_DM6PR11MB4react_\"\r\n"
     "MIME-Version: 1.0\r\n"
     "\r\n"
     "--_004_DM6PR11MB4react_\r\n"
     "Content-Type: multipart/alternative;\r\n"
     "\tboundary=\"_000_DM6PR11MB4react_\"\r\n"
     "\r\n"
     "--_000_DM6PR11MB4react_\r\n"
     "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
     "\r\n"
     "Hello\r\n"
     "--_000_DM6PR11MB4react_\r\n"
     "Content-Type: text/html; charset=\"us-ascii\"\r\n"
     "\r\n"
     "<p>Hello</p>\r\n"
     "--_000_DM6PR11MB4react_--\r\n"
     "\r\n"
     "--_004_DM6PR11MB4react_\r\n"
     "Content-Type: application/octet-stream;\r\n"
     "\tname=\"=?utf-8?B?UmVjaG51bmcuZXhl?=\"\r\n"
     "Content-Description: =?utf-8?B?UmVjaG51bmcuZXhl?=\r\n"
     "Content-Disposition: attachment;\r\n"
     "\tfilename=\"=?utf-8?B?UmVjaG51bmcuZXhl?=\"; size=1024;\r\n"
     "\tcreation-date=\"Mon, 23 Nov 2026 09:00:00 GMT\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "TVqQ\r\n"
     "--_004_DM6PR11MB4react_--\r\n",
     MIME_BLOCKED, "Rechnung.exe", NULL},
    {"Gmail: multipart/mixed with alternative, Q-encoded name",
     "Content-Type: multipart/mixed; boundary=\"000000000000a1b2c3\"\r\n"
     "\r\n"
     "--000000000000a1b2c3\r\n"
     "Content-Type: multipart/alternative; boundary=\"000000000000a1b2c0\"\r\n"
     "\r\n"
     "--000000000000a1b2c0\r\n"
     "Content-Type: text/plain; charset=\"UTF-8\"\r\n"
     "\r\n"
     "hi\r\n"
     "--000000000000a1b2c0--\r\n"
     "--000000000000a1b2c3\r\n"
     "Content-Type: application/javascript; name=\"=?UTF-8?Q?caf=C3=A9_menu=2Ejs?=\"\r\n"
     "Content-Disposition: attachment; filename=\"=?UTF-8?Q?caf=C3=A9_menu=2Ejs?=\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "X-Attachment-Id: f_kx1\r\n"
     "\r\n"
     "YWxlcnQoMSk=\r\n"
     "--000000000000a1b2c3--\r\n",
     MIME_BLOCKED, "caf?? menu.js", NULL},
    {"nested multipart/mixed inside multipart/alternative",
     "Content-Type: multipart/alternative; boundary=outer\r\n"
     "\r\n"
     "--outer\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "x\r\n"
     "--outer\r\n"
     "Content-Type: multipart/mixed; boundary=inner\r\n"
     "\r\n"
     "--inner\r\n"
     "Content-Type: text/html\r\n"
     "\r\n"
     "<b>x</b>\r\n"
     "--inner\r\n"
     "Content-Type: application/octet-stream\r\n"
     "Content-Disposition: attachment; filename=invoice.scr\r\n"
     "\r\n"
     "AAAA\r\n"
     "--inner--\r\n"
     "--outer--\r\n",
     MIME_BLOCKED, "invoice.scr", NULL},
    {".exe inside a forwarded message/rfc822",
     "Content-Type: multipart/mixed; boundary=\"fwd\"\r\n"
     "\r\n"
     "--fwd\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "FYI\r\n"
     "--fwd\r\n"
     "Content-Type: message/rfc822\r\n"
     "Content-Disposition: attachment; filename=\"original.eml\"\r\n"
     "\r\n"
     "From: someone@example.org\r\n"
     "Subject: original\r\n"
     "Content-Type: multipart/mixed; boundary=\"orig\"\r\n"
     "\r\n"
     "--orig\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "body\r\n"
     "--orig\r\n"
     "Content-Type: application/octet-stream; name=\"tool.exe\"\r\n"
     "\r\n"
     "TVqQ\r\n"
     "--orig--\r\n"
     "--fwd--\r\n",
     MIME_BLOCKED, "tool.exe", NULL},
    {"message/rfc822 whose own headers name the attachment",
     "Content-Type: message/rfc822\r\n"
     "\r\n"
     "Subject: inner\r\n"
     "Content-Type: application/octet-stream\r\n"
     "Content-Disposition: attachment; filename=payload.bat\r\n"
     "\r\n"
     "@echo off\r\n",
     MIME_BLOCKED, "payload.bat", NULL},
    {"RFC 2231 continuations split across lines, percent-encoded",
     "Content-Type: multipart/mixed; boundary=b\r\n"
     "\r\n"
     "--b\r\n"
     "Content-Type: application/octet-stream\r\n"
     "Content-Disposition: attachment;\r\n"
     " filename*0*=UTF-8''%E2%82%AC%20long%20name%20for%20;\r\n"
     " filename*1*=the%20quarterly%20;\r\n"
     " filename*2=\"results.e\";\r\n"
     " filename*3=xe\r\n"
     "\r\n"
     "AAAA\r\n"
     "--b--\r\n",
     MIME_BLOCKED, "??? long name for the quarterly results.exe", NULL},
    {"RFC 2231 continuations given out of order",
     "Content-Type: application/octet-stream;\r\n"
     " name*1=\".exe\"; name*0=\"virus\"\r\n"
     "\r\n"
     "AAAA\r\n",
     MIME_BLOCKED, "virus.exe", NULL},
    {"RFC 2231 single extended value",
     "Content-Disposition: attachment; filename*=iso-8859-1'en'%66oo.Js\r\n\r\nx\r\n", MIME_BLOCKED,
     "foo.Js", NULL},
    {"quoted string with escapes and the trailing dot trick",
     "Content-Disposition: attachment; filename=\"a \\\"quoted\\\" name.EXE.\"\r\n\r\nx\r\n",
     MIME_BLOCKED, "a \"quoted\" name.EXE.", NULL},
    {"trailing space trick, unquoted name with spaces",
     "Content-Type: application/octet-stream; name=my file.exe \r\n\r\nx\r\n", MIME_BLOCKED,
     "my file.exe", NULL},
    {"NUL byte encoded in the name",
     "Content-Disposition: attachment; filename=\"=?utf-8?Q?evil.exe=00.txt?=\"\r\n\r\nx\r\n",
     MIME_BLOCKED, "evil.exe?.txt", NULL},
    {"encoded-word split in two, blanks between dropped",
     "Content-Disposition: attachment;\r\n"
     " filename=\"=?UTF-8?B?bWFsd2FyZS4=?= =?UTF-8?B?ZXhl?=\"\r\n\r\nx\r\n",
     MIME_BLOCKED, "malware.exe", NULL},
    {"bad encoded-word: the raw name is checked too",
     "Content-Disposition: attachment; filename=\"=?utf-8?X?zz?=.exe\"\r\n\r\nx\r\n", MIME_BLOCKED,
     "=?utf-8?X?zz?=.exe", NULL},
    {"comment in the field, case of names",
     "CONTENT-TYPE: Multipart/Mixed (a comment); BOUNDARY=\"q\"\r\n"
     "\r\n"
     "--q\r\n"
     "content-disposition: ATTACHMENT; FILENAME=\"x.BaT\"\r\n"
     "\r\n"
     "--q--\r\n",
     MIME_BLOCKED, "x.BaT", NULL},
    {"LF line ends, no closing boundary (truncated): still checked",
     "Content-Type: multipart/mixed; boundary=z\n"
     "\n"
     "--z\n"
     "Content-Type: text/plain\n"
     "\n"
     "text\n"
     "--z\n"
     "Content-Type: image/png; name=\"a.png\"\n"
     "\n"
     "iVBO\n",
     MIME_CLEAN, "", "a.png"},
    {"a boundary-like line of another multipart is body",
     "Content-Type: multipart/mixed; boundary=real\r\n"
     "\r\n"
     "--real\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "--fake\r\n"
     "Content-Disposition: attachment; filename=in-body.exe\r\n"
     "\r\n"
     "--real--\r\n",
     MIME_CLEAN, "", ""},
    {"outer boundary closes the inner multipart too",
     "Content-Type: multipart/mixed; boundary=o\r\n"
     "\r\n"
     "--o\r\n"
     "Content-Type: multipart/alternative; boundary=i\r\n"
     "\r\n"
     "--i\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "x\r\n"
     "--o\r\n"
     "Content-Type: application/octet-stream; name=late.exe\r\n"
     "\r\n"
     "--o--\r\n",
     MIME_BLOCKED, "late.exe", NULL},
    {"multipart/digest: parts are messages by default",
     "Content-Type: multipart/digest; boundary=d\r\n"
     "\r\n"
     "--d\r\n"
     "\r\n"
     "Subject: digest item\r\n"
     "Content-Type: application/octet-stream; name=\"item.scr\"\r\n"
     "\r\n"
     "x\r\n"
     "--d--\r\n",
     MIME_BLOCKED, "item.scr", NULL},
    {"safe extensions and look-alikes",
     "Content-Type: multipart/mixed; boundary=s\r\n"
     "\r\n"
     "--s\r\n"
     "Content-Disposition: attachment; filename=\"exe\"\r\n"
     "\r\n"
     "--s\r\n"
     "Content-Disposition: attachment; filename=\"notes.exe.txt\"\r\n"
     "\r\n"
     "--s\r\n"
     "Content-Disposition: attachment; filename=\"archive.exez\"\r\n"
     "\r\n"
     "--s--\r\n",
     MIME_CLEAN, "", "exe|notes.exe.txt|archive.exez"},
    {"uuencoded file in a text body",
     "Subject: old school\r\n\r\nsee below\r\nbegin 644 fun.exe\r\nM35J0\r\n`\r\nend\r\n",
     MIME_BLOCKED, "fun.exe", NULL},
    {"uuencode-like prose is not a file",
     "Subject: x\r\n\r\nbegin 644\r\nbegin now.exe\r\nbegin-base64 755 list.txt\r\n", MIME_CLEAN,
     "", "list.txt"},
    /* Malformed: refused rather than guessed. */
    {"multipart without a boundary",
     "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n", MIME_MALFORMED,
     "multipart without a boundary", NULL},
    {"two Content-Type fields",
     "Content-Type: multipart/mixed; boundary=a\r\nContent-Type: text/plain\r\n\r\nx\r\n",
     MIME_MALFORMED, "more than one Content-Type field", NULL},
    {"base64-encoded multipart",
     "Content-Type: multipart/mixed; boundary=a\r\nContent-Transfer-Encoding: base64\r\n\r\n",
     MIME_MALFORMED, "multipart or message part with a transfer encoding", NULL},
    {"boundary over the cap",
     "Content-Type: multipart/mixed; boundary=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\r\n\r\n",
     MIME_MALFORMED, "multipart boundary empty or too long", NULL},
};

static void test_cases(void)
{
    static const size_t chunks[] = {0, 1, 2, 3, 7, 64};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mime_case *c = &cases[i];
        for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
            char what[256];
            struct seen seen;
            enum mime_status st = parse(c->msg, chunks[k], what, sizeof(what), &seen);
            if (st != c->want || strcmp(what, c->want_what) != 0 ||
                (c->want_names && strcmp(seen.names, c->want_names) != 0))
                fprintf(stderr, "case \"%s\", chunks of %zu: status %d \"%s\" names \"%s\"\n",
                        c->label, chunks[k], (int)st, what, seen.names);
            CHECK_INT_EQ(st, c->want);
            CHECK_STR_EQ(what, c->want_what);
            if (c->want_names)
                CHECK_STR_EQ(seen.names, c->want_names);
        }
    }
}

static void test_name_blocked(void)
{
    static const struct {
        const char *name;
        int want;
    } names[] = {
        {"a.exe", 1},   {"A.EXE", 1}, {"a.exe.", 1},    {"a.exe ", 1},       {"a.exe . .", 1},
        {"a.b.exe", 1}, {".exe", 1},  {"a.exe.txt", 0}, {"exe", 0},          {"a.exex", 0},
        {"a.", 0},      {"", 0},      {"a.ex", 0},      {"dir.exe/file", 0},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int got = mime_name_blocked(names[i].name, strlen(names[i].name), blocked, NBLOCKED);
        if (got != names[i].want)
            fprintf(stderr, "name \"%s\"\n", names[i].name);
        CHECK_INT_EQ(got, names[i].want);
    }
    CHECK_INT_EQ(mime_name_blocked("a.exe\0.txt", 10, blocked, NBLOCKED), 1);
}

/* Caps: deep nesting, many parts, a huge header block, a long filename. */
static void test_caps(void)
{
    char what[256];
    struct seen seen;
    size_t size = 1 << 20;
    char *msg = malloc(size);

    size_t n = 0;
    for (int i = 0; i <= MIME_DEPTH_MAX; i++)
        n += (size_t)snprintf(msg + n, size - n,
                              "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    CHECK_INT_EQ(parse(msg, 0, what, sizeof(what), &seen), MIME_MALFORMED);
    CHECK_STR_EQ(what, "multiparts nested too deep");

    n = (size_t)snprintf(msg, size, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
    for (int i = 0; i < MIME_PARTS_MAX; i++)
        n += (size_t)snprintf(msg + n, size - n, "--p\r\n\r\nx\r\n");
    CHECK_INT_EQ(parse(msg, 0, what, sizeof(what), &seen), MIME_MALFORMED);
    CHECK_STR_EQ(what, "too many MIME parts");

    n = 0;
    while (n < MIME_HEADER_MAX + 100)
        n += (size_t)snprintf(msg + n, size - n, "X-Filler: %0100d\r\n", 0);
    CHECK_INT_EQ(parse(msg, 0, what, sizeof(what), &seen), MIME_MALFORMED);
    CHECK_STR_EQ(what, "header block too large");

    n = (size_t)snprintf(msg, size, "Content-Disposition: attachment; filename=\"");
    memset(msg + n, 'a', MIME_NAME_MAX + 1);
    n += MIME_NAME_MAX + 1;
    snprintf(msg + n, size - n, ".txt\"\r\n\r\n");
    CHECK_INT_EQ(parse(msg, 0, what, sizeof(what), &seen), MIME_MALFORMED);
    CHECK_STR_EQ(what, "filename too long");

    /* One Content-Disposition line longer than a kept line: refused, not truncated. */
    n = (size_t)snprintf(msg, size, "Content-Disposition: attachment; x=\"");
    memset(msg + n, 'a', 5000);
    n += 5000;
    snprintf(msg + n, size - n, "\"; filename=x.exe\r\n\r\n");
    CHECK_INT_EQ(parse(msg, 0, what, sizeof(what), &seen), MIME_MALFORMED);

    /* A long body line is fine. */
    n = (size_t)snprintf(msg, size, "Content-Type: text/plain\r\n\r\n");
    memset(msg + n, 'a', 100000);
    msg[n + 100000] = '\0';
    CHECK_INT_EQ(parse(msg, 0, what, sizeof(what), &seen), MIME_CLEAN);
    free(msg);
}

static void test_verdict(void)
{
    struct mime_parser *p = mime_parser_new(blocked, NBLOCKED, NULL, NULL);
    const char *msg = "Content-Type: application/x; name=\"\x01\xff \xe2\x80\xaetxt.exe\"\r\n\r\n";
    mime_parser_feed(p, msg, strlen(msg));
    mime_parser_finish(p);
    struct policy_decision d = mime_parser_verdict(p);
    CHECK_INT_EQ(d.verdict, POLICY_REJECT);
    CHECK_INT_EQ(d.code, 554);
    CHECK_STR_EQ(d.enhanced, "5.7.1");
    CHECK_STR_EQ(d.text, "Message rejected: attachment type not allowed: ?? ???txt.exe");
    mime_parser_free(p);

    p = mime_parser_new(blocked, NBLOCKED, NULL, NULL);
    mime_parser_feed(p, "Subject: x\r\n\r\nhi\r\n", 18);
    const struct mime_result *res = mime_parser_finish(p);
    CHECK_INT_EQ(res->parts, 1);
    d = mime_parser_verdict(p);
    CHECK_INT_EQ(d.verdict, POLICY_ACCEPT);
    mime_parser_free(p);

    p = mime_parser_new(blocked, NBLOCKED, NULL, NULL);
    mime_parser_feed(p, "Content-Type: multipart/mixed\r\n\r\n", 33);
    mime_parser_finish(p);
    d = mime_parser_verdict(p);
    CHECK_INT_EQ(d.code, 554);
    CHECK_STR_EQ(d.enhanced, "5.6.0");
    mime_parser_free(p);
}

int main(void)
{
    test_cases();
    test_name_blocked();
    test_caps();
    test_verdict();
    return check_report("test_mime");
}
