/*
 * smtp_client against a real server on loopback: tests/support/smtp_peer.py answers from a JSON
 * script and records every byte it gets, so the checks look at what really went over the wire. Each
 * case runs one client on its own loop with a guard timer and ends with the loop closing cleanly
 * (no handle left behind).
 */
#include "mta/smtp_client.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/smtp_reply.h"
#include "lib/tls.h"
#include "spool/spool.h"
#include "tests/unit/check.h"

#define GUARD_MS 20000
#define MAX_TX 3
#define MAX_RCPTS 8

struct saved {
    int code;
    char enhanced[16];
    char stage[32];
    int remote;
    char text[512];
};

/* One scripted server process and the directory it records into. */
struct peer {
    pid_t pid;
    int port;
    char dir[64];
};

/* One client run: the transactions to send in turn, and everything the client reported. */
struct run {
    uv_loop_t loop;
    uv_timer_t guard;
    struct smtp_client_params params;
    struct sockaddr_in dst;
    const struct smtp_client_tx *txs;
    size_t ntx, next;
    int ready;
    char tls_version[32];
    unsigned ext;
    size_t ndone;
    struct saved out[MAX_TX][MAX_RCPTS];
    uv_timer_t stopper; /* calls smtp_client_abort after abort_after_ms, when set */
    uint64_t abort_after_ms;
    struct smtp_client *client;
    int closed;
    size_t nwhy;
    struct saved why;
};

static void save(struct saved *s, const struct smtp_client_outcome *o)
{
    s->code = o->code;
    snprintf(s->enhanced, sizeof s->enhanced, "%s", o->enhanced);
    snprintf(s->stage, sizeof s->stage, "%s", o->stage);
    s->remote = o->remote;
    snprintf(s->text, sizeof s->text, "%s", o->text);
}

/* ---- the peer ---- */

static void peer_start(struct peer *p, const char *script)
{
    static const char path[] = SLUICE_TEST_SUPPORT_DIR "/smtp_peer.py";
    snprintf(p->dir, sizeof p->dir, "/tmp/test_smtp_client.XXXXXX");
    if (mkdtemp(p->dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl("/usr/bin/python3", "python3", path, script, p->dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    size_t got = 0;
    while (got < sizeof line - 1 && strchr(line, '\n') == NULL) {
        ssize_t n = read(fds[0], line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        line[got] = '\0';
    }
    close(fds[0]);
    p->port = atoi(line);
    if (p->port <= 0) {
        fprintf(stderr, "smtp_peer.py did not start\n");
        exit(1);
    }
}

/* Waits for the peer to finish (it ends when the client has gone), killing it after 10 s. */
static void peer_wait(struct peer *p)
{
    int status;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            return;
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    CHECK(!"smtp_peer.py did not finish");
}

/* Reads a file the peer wrote; "" when it is missing. */
static void peer_file(const struct peer *p, const char *name, struct buf *out)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", p->dir, name);
    buf_reset(out);
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            buf_append(out, chunk, n);
        fclose(f);
    }
    buf_append(out, "", 1);
    out->len--;
}

/* The body the peer received, byte for byte. */
static void check_peer_data(const struct peer *p, const char *name, const char *want)
{
    struct buf got = BUF_INIT;
    peer_file(p, name, &got);
    CHECK_MEM_EQ(got.data, got.len, want);
    buf_free(&got);
}

static void peer_cleanup(struct peer *p)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
    CHECK(system(cmd) == 0);
}

/* The commands the peer logged ("<ms> <replies before> <line>"), split for inspection. */
struct logged {
    long ms[64];
    int seen[64];
    char line[64][128];
    size_t n;
};

static void peer_commands(const struct peer *p, struct logged *l)
{
    struct buf b = BUF_INIT;
    peer_file(p, "commands.log", &b);
    l->n = 0;
    char *save_ptr = NULL;
    for (char *s = strtok_r(b.data, "\n", &save_ptr); s != NULL && l->n < 64;
         s = strtok_r(NULL, "\n", &save_ptr)) {
        int off = 0;
        if (sscanf(s, "%ld %d %n", &l->ms[l->n], &l->seen[l->n], &off) == 2) {
            snprintf(l->line[l->n], sizeof l->line[0], "%s", s + off);
            l->n++;
        }
    }
    buf_free(&b);
}

/* Index of the k-th (0-based) logged line starting with prefix, or -1. */
static int logged_find(const struct logged *l, const char *prefix, int k)
{
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->line[i], prefix, strlen(prefix)) == 0 && k-- == 0)
            return (int)i;
    return -1;
}

/* ---- the client ---- */

static void run_on_guard(uv_timer_t *t)
{
    fprintf(stderr, "test_smtp_client: guard timer fired: a test hung\n");
    exit(1);
}

static void run_next(struct run *r, struct smtp_client *c)
{
    if (r->next < r->ntx)
        smtp_client_send(c, &r->txs[r->next++]);
    else
        smtp_client_quit(c);
}

static void run_on_client(struct smtp_client *c, enum smtp_client_event ev,
                          const struct smtp_client_outcome *o, size_t n, void *arg)
{
    struct run *r = arg;
    switch (ev) {
    case SMTP_CLIENT_READY:
        r->ready++;
        r->ext = smtp_client_extensions(c);
        if (smtp_client_tls_version(c) != NULL)
            snprintf(r->tls_version, sizeof r->tls_version, "%s", smtp_client_tls_version(c));
        run_next(r, c);
        return;
    case SMTP_CLIENT_TX_DONE:
        CHECK_INT_EQ(n, r->txs[r->ndone].nrcpts);
        for (size_t i = 0; i < n && i < MAX_RCPTS; i++)
            save(&r->out[r->ndone][i], &o[i]);
        r->ndone++;
        run_next(r, c);
        return;
    case SMTP_CLIENT_CLOSED:
        r->closed++;
        r->nwhy = n;
        if (n == 1)
            save(&r->why, &o[0]);
        uv_close((uv_handle_t *)&r->guard, NULL);
        if (r->abort_after_ms != 0)
            uv_close((uv_handle_t *)&r->stopper, NULL);
        return;
    }
}

static void run_init(struct run *r, int port, const struct smtp_client_tx *txs, size_t ntx)
{
    memset(r, 0, sizeof *r);
    uv_loop_init(&r->loop);
    uv_ip4_addr("127.0.0.1", port, &r->dst);
    r->params.dst = (const struct sockaddr *)&r->dst;
    r->params.mx_name = "mx.test";
    r->params.ehlo = "client.test";
    r->params.tls = SHAPING_TLS_NONE;
    r->params.timeouts.command = 5000;
    r->params.timeouts.greeting = 5000;
    r->txs = txs;
    r->ntx = ntx;
}

static void run_on_stopper(uv_timer_t *t)
{
    struct run *r = t->data;
    smtp_client_abort(r->client);
    smtp_client_abort(r->client); /* a second call does nothing */
}

/* Runs the client until CLOSED; the loop must end with nothing left open. */
static void run_go(struct run *r)
{
    uv_timer_init(&r->loop, &r->guard);
    uv_timer_start(&r->guard, run_on_guard, GUARD_MS, 0);
    if (r->abort_after_ms != 0) {
        uv_timer_init(&r->loop, &r->stopper);
        r->stopper.data = r;
        uv_timer_start(&r->stopper, run_on_stopper, r->abort_after_ms, 0);
    }
    struct buf why = BUF_INIT;
    struct smtp_client *c = smtp_client_open(&r->loop, &r->params, run_on_client, r, &why);
    r->client = c;
    CHECK(c != NULL);
    buf_free(&why);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r->closed, 1);
    CHECK_INT_EQ(uv_loop_close(&r->loop), 0);
}

/* One case: the client's run, the peer, and what the peer logged. */
struct trial {
    struct run r;
    struct peer p;
    struct logged l;
};

/* One client session against a peer with this script. */
static void session(struct trial *t, const char *script, const struct smtp_client_tx *txs,
                    size_t ntx, void (*tweak)(struct run *))
{
    peer_start(&t->p, script);
    run_init(&t->r, t->p.port, txs, ntx);
    if (tweak != NULL)
        tweak(&t->r);
    run_go(&t->r);
    peer_wait(&t->p);
    peer_commands(&t->p, &t->l);
}

static void check_saved(const struct saved *s, int code, const char *enhanced, const char *stage,
                        int remote)
{
    CHECK_INT_EQ(s->code, code);
    CHECK_STR_EQ(s->enhanced, enhanced);
    CHECK_STR_EQ(s->stage, stage);
    CHECK_INT_EQ(s->remote, remote);
}

/* ---- cases ---- */

static struct buf small_body = {"Subject: hi\r\n\r\nhello\r\n", 22, 0};
static const char *two_rcpts[] = {"a@peer.test", "b@peer.test"};

static void test_pipelined_partial(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"rcpt\": [\"250 2.1.5 ok\", \"550 5.1.1 no such user\"]}", &tx, 1, NULL);
    CHECK_INT_EQ(t.r.ready, 1);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    check_saved(&t.r.out[0][1], 550, "5.1.1", "RCPT TO", 1);
    CHECK(strstr(t.r.out[0][1].text, "no such user") != NULL);
    CHECK_INT_EQ(t.r.nwhy, 0);
    CHECK(t.r.ext & SMTP_EXT_PIPELINING);
    /* MAIL, both RCPTs and DATA reached the peer before it had answered any of them. */
    int mail = logged_find(&t.l, "MAIL FROM:<s@client.test> SIZE=22", 0);
    int data = logged_find(&t.l, "DATA", 0);
    CHECK(mail >= 0 && data == mail + 3);
    if (mail >= 0 && data == mail + 3)
        CHECK_INT_EQ(t.l.seen[data], t.l.seen[mail]);
    CHECK(logged_find(&t.l, "QUIT", 0) >= 0);
    check_peer_data(&t.p, "data_1.bin", "Subject: hi\r\n\r\nhello\r\n.\r\n");
    peer_cleanup(&t.p);
}

static void test_multi_message(void)
{
    static const char *one[] = {"c@peer.test"};
    struct smtp_client_tx txs[] = {{"s@client.test", two_rcpts, 2, &small_body, 0},
                                   {"", one, 1, &small_body, SPOOL_ENV_8BITMIME}};
    struct trial t;
    session(&t, "{\"end\": [\"250 first\", \"451 4.3.0 try later\"]}", txs, 2, NULL);
    CHECK_INT_EQ(t.r.ndone, 2);
    check_saved(&t.r.out[0][0], 250, "", "end of data", 1);
    check_saved(&t.r.out[0][1], 250, "", "end of data", 1);
    check_saved(&t.r.out[1][0], 451, "4.3.0", "end of data", 1);
    CHECK(logged_find(&t.l, "MAIL FROM:<> SIZE=22 BODY=8BITMIME", 0) >= 0);
    CHECK(logged_find(&t.l, "EHLO client.test", 1) < 0); /* one connection, one EHLO */
    check_peer_data(&t.p, "data_2.bin", "Subject: hi\r\n\r\nhello\r\n.\r\n");
    peer_cleanup(&t.p);
}

static void test_no_pipelining(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"ehlo\": \"250-peer.test\\r\\n250 ENHANCEDSTATUSCODES\"}", &tx, 1, NULL);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][1], 250, "2.0.0", "end of data", 1);
    /* Each command went out only after the previous reply: greeting, EHLO, MAIL, RCPT, RCPT. */
    int mail = logged_find(&t.l, "MAIL", 0);
    CHECK(mail >= 0 && strcmp(t.l.line[mail], "MAIL FROM:<s@client.test>") == 0); /* no SIZE */
    for (int i = 0; mail >= 0 && i < 4; i++)
        CHECK_INT_EQ(t.l.seen[mail + i], 2 + i);
    peer_cleanup(&t.p);
}

static void test_helo_fallback(void)
{
    static const char *one[] = {"c@peer.test"};
    struct smtp_client_tx tx = {"s@client.test", one, 1, &small_body, 0};
    struct trial t;
    session(&t, "{\"ehlo\": \"502 5.5.1 what?\"}", &tx, 1, NULL);
    CHECK_INT_EQ(t.r.ready, 1);
    CHECK_INT_EQ(t.r.ext, 0);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    CHECK(logged_find(&t.l, "HELO client.test", 0) == 1);
    CHECK(logged_find(&t.l, "MAIL FROM:<s@client.test>", 0) == 2);
    peer_cleanup(&t.p);
}

static void test_greeting_4xx(void)
{
    struct trial t;
    session(&t, "{\"greeting\": \"450 4.3.2 too busy\"}", NULL, 0, NULL);
    CHECK_INT_EQ(t.r.ready, 0);
    CHECK_INT_EQ(t.r.nwhy, 1);
    check_saved(&t.r.why, 450, "4.3.2", "greeting", 1);
    CHECK(strstr(t.r.why.text, "too busy") != NULL);
    CHECK_INT_EQ(t.l.n, 1);
    CHECK(logged_find(&t.l, "QUIT", 0) == 0);
    peer_cleanup(&t.p);
}

static void test_421_mid_session(void)
{
    static const char *three[] = {"a@peer.test", "b@peer.test", "c@peer.test"};
    struct smtp_client_tx tx = {"s@client.test", three, 3, &small_body, 0};
    struct trial t;
    session(&t,
            "{\"rcpt\": [\"550 5.1.1 unknown\", \"250 ok\", \"421-4.7.0 slow\\r\\n421 4.7.0 "
            "down\"], \"ehlo\": \"250 peer.test\"}",
            &tx, 1, NULL);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 550, "5.1.1", "RCPT TO", 1);
    check_saved(&t.r.out[0][1], 421, "4.7.0", "RCPT TO", 1);
    check_saved(&t.r.out[0][2], 421, "4.7.0", "RCPT TO", 1);
    CHECK(strstr(t.r.out[0][2].text, "slow; down") != NULL); /* both lines, joined */
    CHECK_INT_EQ(t.r.nwhy, 1);
    check_saved(&t.r.why, 421, "4.7.0", "RCPT TO", 1);
    CHECK(logged_find(&t.l, "DATA", 0) < 0);
    peer_cleanup(&t.p);
}

static void test_size_too_big(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"ehlo\": \"250-peer.test\\r\\n250 SIZE 10\"}", &tx, 1, NULL);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 552, "5.3.4", "MAIL FROM", 0);
    check_saved(&t.r.out[0][1], 552, "5.3.4", "MAIL FROM", 0);
    CHECK(logged_find(&t.l, "MAIL", 0) < 0);
    CHECK(logged_find(&t.l, "QUIT", 0) >= 0);
    peer_cleanup(&t.p);
}

/* The whole line the peer logged that starts with prefix, or "". */
static const char *logged_line(const struct logged *l, const char *prefix)
{
    int i = logged_find(l, prefix, 0);
    return i >= 0 ? l->line[i] : "";
}

/* SMTPUTF8 needed (a UTF-8 local part, UTF-8 header fields) and not offered: 553 5.6.7 without
 * sending anything (RFC 6531 §3.4). */
static void test_smtputf8_not_offered(void)
{
    static const char *utf8_local[] = {"a@xn--bcher-kva.test", "j\xc3\xb6rg@xn--bcher-kva.test"};
    static char text[] = "Subject: caf\xc3\xa9\r\n\r\nhello\r\n";
    static struct buf utf8_header = {text, sizeof text - 1, 0};
    static const char *ascii[] = {"a@peer.test"};
    const struct smtp_client_tx txs[] = {
        {"s@client.test", utf8_local, 2, &small_body, SPOOL_ENV_SMTPUTF8},
        {"s@client.test", ascii, 1, &utf8_header, SPOOL_ENV_SMTPUTF8 | SPOOL_ENV_8BITMIME},
        {"j\xc3\xb6rg@client.test", ascii, 1, &small_body, SPOOL_ENV_SMTPUTF8},
    };
    for (size_t i = 0; i < sizeof txs / sizeof txs[0]; i++) {
        struct trial t;
        session(&t, "{}", &txs[i], 1, NULL);
        for (size_t j = 0; j < txs[i].nrcpts; j++)
            check_saved(&t.r.out[0][j], 553, "5.6.7", "MAIL FROM", 0);
        CHECK(logged_find(&t.l, "MAIL", 0) < 0);
        peer_cleanup(&t.p);
    }
}

/* A message sent with SMTPUTF8 whose only non-ASCII was in its domains goes to a server without
 * SMTPUTF8 with the A-labels (as stored) and without the parameter. */
static void test_smtputf8_domain_only(void)
{
    static const char *rcpts[] = {"a@xn--bcher-kva.test"};
    struct smtp_client_tx tx = {"s@xn--mnchen-3ya.test", rcpts, 1, &small_body, SPOOL_ENV_SMTPUTF8};
    struct trial t;
    session(&t, "{}", &tx, 1, NULL);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    CHECK_STR_EQ(logged_line(&t.l, "MAIL"), "MAIL FROM:<s@xn--mnchen-3ya.test> SIZE=22");
    CHECK_STR_EQ(logged_line(&t.l, "RCPT"), "RCPT TO:<a@xn--bcher-kva.test>");
    peer_cleanup(&t.p);
}

/* To a server that offers SMTPUTF8 the envelope's domains go as U-labels (RFC 6531 §3.2). */
static void test_smtputf8_offered(void)
{
    static const char *rcpts[] = {"j\xc3\xb6rg@xn--bcher-kva.test", "b@[IPv6:2001:db8::1]",
                                  "c@peer.test"};
    struct smtp_client_tx tx = {"s@xn--mnchen-3ya.test", rcpts, 3, &small_body, SPOOL_ENV_SMTPUTF8};
    struct trial t;
    session(&t, "{\"ehlo\": \"250-peer.test\\r\\n250-PIPELINING\\r\\n250 SMTPUTF8\"}", &tx, 1,
            NULL);
    for (size_t i = 0; i < 3; i++)
        check_saved(&t.r.out[0][i], 250, "2.0.0", "end of data", 1);
    CHECK_STR_EQ(logged_line(&t.l, "MAIL"), "MAIL FROM:<s@m\xc3\xbcnchen.test> SMTPUTF8");
    CHECK_STR_EQ(logged_line(&t.l, "RCPT TO:<j"), "RCPT TO:<j\xc3\xb6rg@b\xc3\xbc"
                                                  "cher.test>");
    CHECK_STR_EQ(logged_line(&t.l, "RCPT TO:<b"), "RCPT TO:<b@[IPv6:2001:db8::1]>");
    CHECK_STR_EQ(logged_line(&t.l, "RCPT TO:<c"), "RCPT TO:<c@peer.test>");
    peer_cleanup(&t.p);

    /* Five labels of twenty U+4F8B: 141 octets as A-labels, 311 as U-labels, past what a path may
     * hold (RFC 5321 §4.5.3.1.3), so the A-labels go. */
    static const char long_rcpt[] = "d@xn--fsqaaaaaaaaaaaaaaaaaaa.xn--fsqaaaaaaaaaaaaaaaaaaa."
                                    "xn--fsqaaaaaaaaaaaaaaaaaaa.xn--fsqaaaaaaaaaaaaaaaaaaa."
                                    "xn--fsqaaaaaaaaaaaaaaaaaaa.test";
    const char *long_rcpts[] = {long_rcpt};
    struct smtp_client_tx long_tx = {"s@client.test", long_rcpts, 1, &small_body,
                                     SPOOL_ENV_SMTPUTF8};
    session(&t, "{\"ehlo\": \"250-peer.test\\r\\n250 SMTPUTF8\"}", &long_tx, 1, NULL);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    CHECK(logged_find(&t.l, "RCPT TO:<d@xn--fsqaaaaaaaaaaaaaaaaaaa.xn--", 0) >= 0);
    peer_cleanup(&t.p);
}

static void test_8bit_to_7bit_server(void)
{
    static char text[] = "Subject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n";
    struct buf body_8bit = {text, sizeof text - 1, 0};
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &body_8bit, SPOOL_ENV_8BITMIME};
    struct trial t;
    session(&t, "{\"ehlo\": \"250-peer.test\\r\\n250 PIPELINING\"}", &tx, 1, NULL);
    check_saved(&t.r.out[0][0], 554, "5.6.3", "MAIL FROM", 0);
    CHECK(logged_find(&t.l, "MAIL", 0) < 0);
    peer_cleanup(&t.p);
}

static void test_no_rcpt_accepted(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"rcpt\": \"550 5.1.1 no\", \"data\": \"554 5.5.1 no valid recipients\"}", &tx, 1,
            NULL);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 550, "5.1.1", "RCPT TO", 1);
    check_saved(&t.r.out[0][1], 550, "5.1.1", "RCPT TO", 1);
    CHECK(logged_find(&t.l, "RSET", 0) >= 0);
    CHECK(logged_find(&t.l, "<body", 0) < 0);
    peer_cleanup(&t.p);
}

static void test_body_encoding(void)
{
    static const char *one[] = {"c@peer.test"};
    static const char raw[] = "Subject: t\n\n.hello\r\nbare\rcr\n..x\n.\nend";
    struct buf body = {(char *)raw, sizeof raw - 1, 0};
    struct smtp_client_tx tx = {"s@client.test", one, 1, &body, 0};
    struct trial t;
    session(&t, "{}", &tx, 1, NULL);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    check_peer_data(&t.p, "data_1.bin",
                    "Subject: t\r\n\r\n..hello\r\nbare\r\ncr\r\n...x\r\n..\r\nend\r\n.\r\n");
    peer_cleanup(&t.p);
}

/* A body of several chunks arrives whole. */
static void test_large_body(void)
{
    static const char *one[] = {"c@peer.test"};
    struct buf body = BUF_INIT;
    for (int i = 0; body.len < 300 * 1024; i++)
        buf_printf(&body, "line %d of a long message .\r\n", i);
    struct smtp_client_tx tx = {"s@client.test", one, 1, &body, 0};
    struct trial t;
    session(&t, "{}", &tx, 1, NULL);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    struct buf got = BUF_INIT;
    peer_file(&t.p, "data_1.bin", &got);
    CHECK_INT_EQ(got.len, body.len + 3);
    CHECK(got.len == body.len + 3 && memcmp(got.data, body.data, body.len) == 0);
    buf_free(&got);
    buf_free(&body);
    peer_cleanup(&t.p);
}

static SSL_CTX *client_ctx;

static void tweak_opportunistic(struct run *r)
{
    r->params.tls = SHAPING_TLS_OPPORTUNISTIC;
    r->params.tls_ctx = client_ctx;
}

static void tweak_required(struct run *r)
{
    r->params.tls = SHAPING_TLS_REQUIRED;
    r->params.tls_ctx = client_ctx;
}

static void test_starttls(void)
{
    static const char *one[] = {"c@peer.test"};
    struct smtp_client_tx tx = {"s@client.test", one, 1, &small_body, 0};
    struct trial t;
    session(&t,
            "{\"tls\": true, \"ehlo\": \"250-peer.test\\r\\n250-STARTTLS\\r\\n250 PIPELINING\"}",
            &tx, 1, tweak_opportunistic);
    CHECK_INT_EQ(t.r.ready, 1);
    CHECK(strncmp(t.r.tls_version, "TLSv1.", 6) == 0);
    check_saved(&t.r.out[0][0], 250, "2.0.0", "end of data", 1);
    CHECK(logged_find(&t.l, "STARTTLS", 0) == 1);
    CHECK(logged_find(&t.l, "EHLO client.test", 1) == 2); /* EHLO again, under TLS */
    CHECK(logged_find(&t.l, "MAIL", 0) == 3);
    peer_cleanup(&t.p);
}

static void test_tls_required_not_offered(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{}", &tx, 1, tweak_required);
    CHECK_INT_EQ(t.r.ready, 0);
    CHECK_INT_EQ(t.r.ndone, 0);
    CHECK_INT_EQ(t.r.nwhy, 1);
    check_saved(&t.r.why, 451, "4.7.10", "STARTTLS", 0);
    /* Only EHLO and QUIT went out in clear. */
    CHECK_INT_EQ(t.l.n, 2);
    CHECK(logged_find(&t.l, "QUIT", 0) == 1);
    peer_cleanup(&t.p);
}

static void tweak_opportunistic_fast(struct run *r)
{
    tweak_opportunistic(r);
    r->params.timeouts.command = 1000;
}

/* A peer that says 220 to STARTTLS but then speaks no TLS: the handshake fails (or times out, when
 * the peer is still waiting for a line) and nothing more is sent. */
static void test_tls_handshake_fails(void)
{
    struct trial t;
    session(&t,
            "{\"ehlo\": \"250-peer.test\\r\\n250 STARTTLS\", \"starttls\": \"@raw:220 go\\r\\n"
            "this is not TLS\\r\\n\"}",
            NULL, 0, tweak_opportunistic_fast);
    CHECK_INT_EQ(t.r.ready, 0);
    CHECK_INT_EQ(t.r.nwhy, 1);
    CHECK_STR_EQ(t.r.why.stage, "STARTTLS");
    CHECK_INT_EQ(t.r.why.code / 100, 4);
    CHECK(logged_find(&t.l, "MAIL", 0) < 0 && logged_find(&t.l, "QUIT", 0) < 0);
    peer_cleanup(&t.p);
}

static struct ratelimit_bucket pace_bucket;

static void tweak_pacing(struct run *r)
{
    struct ratelimit_rate rate = {5, 1000}; /* one token every 200 ms */
    ratelimit_bucket_init(&pace_bucket, rate, 1, uv_now(&r->loop), 0);
    r->params.rcpt_bucket = &pace_bucket;
}

static void test_rate_pacing(void)
{
    static const char *four[] = {"a@peer.test", "b@peer.test", "c@peer.test", "d@peer.test"};
    struct smtp_client_tx tx = {"s@client.test", four, 4, &small_body, 0};
    struct trial t;
    session(&t, "{}", &tx, 1, tweak_pacing);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][3], 250, "2.0.0", "end of data", 1);
    int first = logged_find(&t.l, "RCPT", 0);
    CHECK(first >= 0);
    for (int i = 1; first >= 0 && i < 4; i++) {
        long gap = t.l.ms[first + i] - t.l.ms[first + i - 1];
        CHECK(gap >= 150); /* 200 ms apart, less the peer's own timing slack */
    }
    CHECK(logged_find(&t.l, "DATA", 0) == first + 4); /* DATA only after every RCPT */
    peer_cleanup(&t.p);
}

static void tweak_short_timeout(struct run *r)
{
    r->params.timeouts.command = 300;
}

static void test_timeout(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"rcpt\": \"@hang\"}", &tx, 1, tweak_short_timeout);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 451, "4.4.2", "RCPT TO", 0);
    check_saved(&t.r.out[0][1], 451, "4.4.2", "RCPT TO", 0);
    CHECK(strstr(t.r.out[0][0].text, "timeout") != NULL);
    CHECK_INT_EQ(t.r.nwhy, 1);
    check_saved(&t.r.why, 451, "4.4.2", "RCPT TO", 0);
    peer_cleanup(&t.p);
}

static void tweak_abort(struct run *r)
{
    r->abort_after_ms = 300;
}

/* Shutdown in the middle of a transaction: TX_DONE with temporary failures, then CLOSED. */
static void test_abort(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"end\": \"@hang\"}", &tx, 1, tweak_abort);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 451, "4.3.2", "end of data", 0);
    check_saved(&t.r.out[0][1], 451, "4.3.2", "end of data", 0);
    CHECK_INT_EQ(t.r.nwhy, 1);
    CHECK(logged_find(&t.l, "<body", 0) >= 0);
    peer_cleanup(&t.p);
}

static void test_lost_connection(void)
{
    struct smtp_client_tx tx = {"s@client.test", two_rcpts, 2, &small_body, 0};
    struct trial t;
    session(&t, "{\"data\": \"@close\"}", &tx, 1, NULL);
    CHECK_INT_EQ(t.r.ndone, 1);
    check_saved(&t.r.out[0][0], 451, "4.4.2", "DATA", 0);
    CHECK(strstr(t.r.out[0][0].text, "lost connection with mx.test while DATA") != NULL);
    peer_cleanup(&t.p);
}

static void test_connection_refused(void)
{
    /* A bound socket that does not listen: connecting to its port is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    struct run r;
    run_init(&r, ntohs(a.sin_port), NULL, 0);
    run_go(&r);
    close(fd);
    CHECK_INT_EQ(r.nwhy, 1);
    check_saved(&r.why, 451, "4.4.1", "connect", 0);
    CHECK(strstr(r.why.text, "refused") != NULL);
}

/* Hostile peers: an endless line, garbage, a flood of reply lines. Each ends the session cleanly.
 */
static void test_hostile(void)
{
    /* Each script is {before, after} the filler. */
    static const char *scripts[][2] = {
        {"{\"greeting\": \"@raw:220 ", "\"}"},
        {"{\"greeting\": \"@raw:hello, I am not SMTP\\r\\n\"}", ""},
        {"{\"ehlo\": \"@raw:", "\"}"},
    };
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        struct buf filler = BUF_INIT, script = BUF_INIT;
        for (int k = 0; k < 300; k++)
            buf_append_str(&filler, i == 2 ? "250-x\\r\\n" : "xxxxxxxxxxxxxxxx");
        buf_append_str(&script, scripts[i][0]);
        if (scripts[i][1][0] != '\0')
            buf_append(&script, filler.data, filler.len);
        buf_printf(&script, "%s", scripts[i][1]);
        struct trial t;
        session(&t, script.data, NULL, 0, NULL);
        CHECK_INT_EQ(t.r.ready, 0);
        CHECK_INT_EQ(t.r.nwhy, 1);
        check_saved(&t.r.why, 451, "4.5.0", i == 2 ? "EHLO" : "greeting", 0);
        CHECK(strstr(t.r.why.text, "malformed reply") != NULL);
        peer_cleanup(&t.p);
        buf_free(&filler);
        buf_free(&script);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct buf err = BUF_INIT;
    client_ctx = tls_client_ctx_new(&err);
    CHECK(client_ctx != NULL);
    buf_free(&err);

    test_pipelined_partial();
    test_multi_message();
    test_no_pipelining();
    test_helo_fallback();
    test_greeting_4xx();
    test_421_mid_session();
    test_size_too_big();
    test_smtputf8_not_offered();
    test_smtputf8_domain_only();
    test_smtputf8_offered();
    test_8bit_to_7bit_server();
    test_no_rcpt_accepted();
    test_body_encoding();
    test_large_body();
    test_starttls();
    test_tls_required_not_offered();
    test_tls_handshake_fails();
    test_rate_pacing();
    test_timeout();
    test_abort();
    test_lost_connection();
    test_connection_refused();
    test_hostile();

    SSL_CTX_free(client_ctx);
    return check_report("test_smtp_client");
}
