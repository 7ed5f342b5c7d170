/*
 * Unit tests for dsn: each DSN is built here and parsed by Python's email package
 * (tests/support/dsn_check.py, run with Debian's /usr/bin/python3), which checks the MIME
 * structure, the delivery-status fields, the returned header section, CRLF line ends and line
 * lengths.
 */
#include "mta/delivery/dsn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define NOW 1700000000 /* Tue, 14 Nov 2023 22:13:20 +0000 */

static const char original[] = "Received: from client.example (client.example [192.0.2.7])\r\n"
                               "\tby mx.sluice.test with ESMTP id Q1\r\n"
                               "From: Alice <alice@example.org>\r\n"
                               "To: bob@example.net, carol@example.com\r\n"
                               "Subject: Quarterly figures\r\n"
                               "Message-ID: <m1@example.org>\r\n"
                               "\r\n"
                               "BODY-SECRET: the body never goes back\r\n";

/* Writes the DSN to a temporary file and runs dsn_check.py on it with the expectations (a
 * NULL-terminated list); returns its exit status. */
static int python_check(const struct buf *dsn, const char *const *expectations)
{
    char path[] = "/tmp/test_dsn_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, dsn->data, dsn->len) == (ssize_t)dsn->len);
    close(fd);

    const char *argv[64] = {"python3", SLUICE_TEST_SUPPORT_DIR "/dsn_check.py", path};
    size_t n = 3;
    for (size_t i = 0; expectations[i] != NULL && n < 63; i++)
        argv[n++] = expectations[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid == 0) {
        execv("/usr/bin/python3", (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static struct dsn_params params_base(const struct dsn_rcpt *rcpts, size_t n)
{
    return (struct dsn_params){
        .reporting_mta = "mx.sluice.test",
        .queue_id = "Q1",
        .sender = "alice@example.org",
        .arrival = NOW - 3600,
        .now = NOW,
        .rcpts = rcpts,
        .nrcpts = n,
        .original = original,
        .original_len = sizeof(original) - 1,
        .boundary_seed = "Q2",
    };
}

static void test_failed_recipients(void)
{
    const struct dsn_rcpt rcpts[] = {
        {.rcpt = "bob@example.net",
         .action = DSN_ACTION_FAILED,
         .status = "5.1.1",
         .remote_code = 550,
         .remote_mta = "mx.example.net",
         .diagnostic = "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
         .last_attempt = NOW - 60,
         .category = "bad-mailbox"},
        {.rcpt = "carol@example.com",
         .orcpt = "rfc822;Carol@example.com",
         .action = DSN_ACTION_FAILED,
         .diagnostic = "Host or domain name not found (NXDOMAIN)",
         .category = "bad-domain"},
    };
    struct dsn_params p = params_base(rcpts, 2);
    p.envid = "ENV-7";
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want[] = {
        "hdr.From=Mail Delivery System <MAILER-DAEMON@mx.sluice.test>",
        "hdr.To=<alice@example.org>",
        "hdr.Subject=Undelivered Mail Returned to Sender",
        "hdr.Auto-Submitted=auto-replied",
        "hdr.MIME-Version=1.0",
        "hdr.Date=Tue, 14 Nov 2023 22:13:20 +0000",
        "hdr.Message-ID=<1700000000.Q2.bounce@mx.sluice.test>",
        "msg.Reporting-MTA=dns; mx.sluice.test",
        "msg.X-Sluice-Queue-ID=Q1",
        "msg.Original-Envelope-Id=ENV-7",
        "msg.Arrival-Date=Tue, 14 Nov 2023 21:13:20 +0000",
        "rcpts=2",
        "rcpt0.Final-Recipient=rfc822; bob@example.net",
        "rcpt0.Action=failed",
        "rcpt0.Status=5.1.1",
        "rcpt0.Remote-MTA=dns; mx.example.net",
        "rcpt0.Diagnostic-Code=smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: "
        "User unknown",
        "rcpt0.Last-Attempt-Date=Tue, 14 Nov 2023 22:12:20 +0000",
        "rcpt0.X-Sluice-Category=bad-mailbox",
        "rcpt1.Final-Recipient=rfc822; carol@example.com",
        "rcpt1.Original-Recipient=rfc822;Carol@example.com",
        "rcpt1.Status=5.0.0",
        "rcpt1.Diagnostic-Code=X-Sluice; Host or domain name not found (NXDOMAIN)",
        "rcpt1.X-Sluice-Category=bad-domain",
        "text~<bob@example.net>: host mx.example.net said: 550 5.1.1",
        "text~<carol@example.com>: Host or domain name not found",
        "headers_type=text/rfc822-headers",
        "headers~Subject: Quarterly figures",
        "headers~\tby mx.sluice.test with ESMTP id Q1",
        "headers!BODY-SECRET",
        NULL,
    };
    CHECK_INT_EQ(python_check(&out, want), 0);
    CHECK(memmem(out.data, out.len, "BODY-SECRET", 11) == NULL);
    buf_free(&out);
}

/* Remote text with line breaks, controls and huge lines cannot add fields or break lines. */
static void test_hostile_remote_text(void)
{
    char longword[3000], longtext[6000];
    memset(longword, 'x', sizeof(longword) - 1);
    longword[sizeof(longword) - 1] = '\0';
    size_t n = 0;
    while (n + 6 < sizeof(longtext)) {
        memcpy(longtext + n, "word ", 5);
        n += 5;
    }
    longtext[n] = '\0';
    char diag_long[3100];
    snprintf(diag_long, sizeof(diag_long), "554 %s", longword);
    const struct dsn_rcpt rcpts[] = {
        {.rcpt = "bob@example.net",
         .action = DSN_ACTION_FAILED,
         .status = "not a code\r\nX: y",
         .remote_code = 550,
         .remote_mta = "mx.example.net\r\nSubject: injected",
         .diagnostic = "550 nope\r\nSubject: injected\r\n\r\n--boundary\x1b[31m\x7f\xc3\xa9"},
        {.rcpt = "carol@example.com",
         .action = DSN_ACTION_FAILED,
         .remote_code = 554,
         .diagnostic = diag_long},
        {.rcpt = "dave@example.com",
         .action = DSN_ACTION_FAILED,
         .remote_code = 451,
         .diagnostic = longtext},
    };
    struct dsn_params p = params_base(rcpts, 3);
    p.sender = "alice@example.org>\r\nBcc: <victim@example.com";
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    char want_long[3200];
    snprintf(want_long, sizeof(want_long), "rcpt1.Diagnostic-Code~%.990s", longword);
    const char *const want[] = {
        "raw!Subject: injected",
        "raw!X: y",
        "raw!Bcc:",
        "raw!--boundary",
        "hdr.Subject=Undelivered Mail Returned to Sender",
        "rcpt0.Remote-MTA=dns; mx.example.net??Subject: injected",
        "rcpt0.Diagnostic-Code=smtp; 550 nope??Subject: injected??\?\?--boundary?[31m???",
        "rcpt0.Status=5.0.0",
        "rcpt1.Status=5.0.0",
        "rcpt2.Status=4.0.0",
        want_long,
        "rcpt2.Diagnostic-Code~word word word word",
        NULL,
    };
    CHECK_INT_EQ(python_check(&out, want), 0);
    buf_free(&out);
}

/* The original's header section: bare LF ends, an overlong line, a line that looks like the
 * boundary, and 8-bit header fields (RFC 6532) that need message/global-headers. */
static void test_original_headers(void)
{
    static char hdr[4096];
    int len = snprintf(hdr, sizeof(hdr),
                       "From: a@example.org\nX-Long: %03000d\n--1700000000.Q2.0/sluice\n"
                       "Subject: caf\xc3\xa9\n\nbody\n",
                       7);
    const struct dsn_rcpt rcpt = {.rcpt = "bob@example.net",
                                  .action = DSN_ACTION_FAILED,
                                  .remote_code = 550,
                                  .remote_mta = "mx.example.net",
                                  .diagnostic = "550 no"};
    struct dsn_params p = params_base(&rcpt, 1);
    p.original = hdr;
    p.original_len = (size_t)len;
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want[] = {
        "headers_type=message/global-headers",
        "headers~From: a@example.org\r\n",
        "headers~--1700000000.Q2.0/sluice",
        "headers~Subject: caf\xc3\xa9",
        "headers!body",
        "rcpts=1",
        NULL,
    };
    CHECK_INT_EQ(python_check(&out, want), 0);
    buf_free(&out);
}

/* A header section over the cap is cut at a line end; a message with no body or no header. */
static void test_original_edges(void)
{
    const struct dsn_rcpt rcpt = {.rcpt = "bob@example.net", .action = DSN_ACTION_FAILED};
    struct dsn_params p = params_base(&rcpt, 1);
    struct buf big = BUF_INIT;
    for (int i = 0; i < 4000; i++)
        buf_printf(&big, "X-Filler-%04d: %s\r\n", i, "0123456789");
    buf_append_str(&big, "X-Last: never\r\n\r\nbody\r\n");
    p.original = big.data;
    p.original_len = big.len;
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want_big[] = {"headers~X-Filler-0000: 0123456789\r\n", "headers!X-Last",
                                    "rcpt0.Status=5.0.0", NULL};
    CHECK_INT_EQ(python_check(&out, want_big), 0);
    CHECK(out.len < 80 * 1024);
    buf_free(&big);

    static const char headers_only[] = "Subject: no body";
    p.original = headers_only;
    p.original_len = sizeof(headers_only) - 1;
    buf_reset(&out);
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want_only[] = {"headers~Subject: no body\r\n", NULL};
    CHECK_INT_EQ(python_check(&out, want_only), 0);

    static const char body_only[] = "\r\nSubject: in the body\r\n";
    p.original = body_only;
    p.original_len = sizeof(body_only) - 1;
    buf_reset(&out);
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want_none[] = {"headers!Subject", NULL};
    CHECK_INT_EQ(python_check(&out, want_none), 0);
    buf_free(&out);
}

static void test_delayed_and_utf8(void)
{
    const struct dsn_rcpt rcpts[] = {
        {.rcpt = "j\xc3\xb6rg@example.de",
         .action = DSN_ACTION_DELAYED,
         .remote_code = 451,
         .remote_mta = "mx.example.de",
         .diagnostic = "451 4.7.0 [TSS04] Messages temporarily deferred"},
    };
    struct dsn_params p = params_base(rcpts, 1);
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want[] = {
        "hdr.Subject=Delayed Mail (still being retried)",
        "hdr.Message-ID=<1700000000.Q2.delay@mx.sluice.test>",
        "rcpt0.Final-Recipient=utf-8; j\xc3\xb6rg@example.de",
        "rcpt0.Action=delayed",
        "rcpt0.Status=4.0.0",
        "text~THIS IS A WARNING ONLY",
        NULL,
    };
    CHECK_INT_EQ(python_check(&out, want), 0);
    CHECK(memmem(out.data, out.len, "message/global-delivery-status", 30) != NULL);
    buf_free(&out);
}

/* A success notice for a recipient passed on to a server without DSN: Action relayed, a 2.x.x
 * status, the header section only even with RET=FULL (RFC 3461 §4.3). */
static void test_relayed(void)
{
    const struct dsn_rcpt rcpts[] = {
        {.rcpt = "bob@example.net",
         .orcpt = "rfc822;Bob@example.net",
         .action = DSN_ACTION_RELAYED,
         .status = "2.0.0",
         .remote_code = 250,
         .diagnostic = "250 2.0.0 queued as 4F1"},
    };
    struct dsn_params p = params_base(rcpts, 1);
    p.envid = "E7";
    p.return_full = 1;
    p.full_max = 1 << 20;
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const want[] = {
        "hdr.Subject=Successful Mail Delivery Report",
        "hdr.Message-ID=<1700000000.Q2.relayed@mx.sluice.test>",
        "msg.Original-Envelope-Id=E7",
        "rcpt0.Original-Recipient=rfc822;Bob@example.net",
        "rcpt0.Action=relayed",
        "rcpt0.Status=2.0.0",
        "text~was passed on to the recipients below",
        "headers_type=text/rfc822-headers",
        "headers!BODY-SECRET",
        NULL,
    };
    CHECK_INT_EQ(python_check(&out, want), 0);
    buf_free(&out);
}

/* RET=FULL: the whole message as message/rfc822 within the bound, the header section beyond it,
 * and never in a delay warning. */
static void test_return_full(void)
{
    const struct dsn_rcpt rcpts[] = {{.rcpt = "bob@example.net",
                                      .action = DSN_ACTION_FAILED,
                                      .remote_code = 550,
                                      .remote_mta = "mx.example.net",
                                      .diagnostic = "550 5.1.1 unknown"}};
    struct dsn_params p = params_base(rcpts, 1);
    p.return_full = 1;
    p.full_max = sizeof(original) - 1;
    struct buf out = BUF_INIT;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const whole[] = {
        "headers_type=message/rfc822", "headers~Subject: Quarterly figures",
        "headers~BODY-SECRET: the body never goes back", "text~The message is attached", NULL};
    CHECK_INT_EQ(python_check(&out, whole), 0);
    buf_reset(&out);

    p.full_max = sizeof(original) - 2;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    const char *const too_big[] = {"headers_type=text/rfc822-headers", "headers!BODY-SECRET",
                                   "text~Its header is attached", NULL};
    CHECK_INT_EQ(python_check(&out, too_big), 0);
    buf_reset(&out);

    const struct dsn_rcpt delayed[] = {
        {.rcpt = "bob@example.net", .action = DSN_ACTION_DELAYED, .diagnostic = "451 4.3.0 later"}};
    p = params_base(delayed, 1);
    p.return_full = 1;
    p.full_max = 1 << 20;
    CHECK_INT_EQ(dsn_build(&p, &out), 0);
    CHECK(memmem(out.data, out.len, "BODY-SECRET", 11) == NULL);
    buf_free(&out);
}

static void test_refusals(void)
{
    const struct dsn_rcpt rcpt = {.rcpt = "bob@example.net", .action = DSN_ACTION_FAILED};
    struct dsn_params p = params_base(&rcpt, 1);
    struct buf out = BUF_INIT;
    p.sender = "";
    CHECK_INT_EQ(dsn_build(&p, &out), -EINVAL);
    p.sender = NULL;
    CHECK_INT_EQ(dsn_build(&p, &out), -EINVAL);
    p = params_base(&rcpt, 0);
    CHECK_INT_EQ(dsn_build(&p, &out), -EINVAL);
    CHECK_INT_EQ(out.len, 0);
    buf_free(&out);
}

int main(void)
{
    test_failed_recipients();
    test_hostile_remote_text();
    test_original_headers();
    test_original_edges();
    test_delayed_and_utf8();
    test_return_full();
    test_relayed();
    test_refusals();
    return check_report("test_dsn");
}
