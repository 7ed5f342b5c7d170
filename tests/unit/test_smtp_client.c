/*
 * smtp_client against a real server on loopback: tests/support/smtp_peer.py answers from a JSON
 * script and records every byte it gets, so the checks look at what really went over the wire.
 * Each case is a row of one table (the peer's script, what the client sends, what it must report,
 * and a check of what the peer got); each runs one client on its own loop with a guard timer and
 * ends with the loop closing cleanly (no handle left behind).
 */
#include "mta/delivery/smtp_client.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/smtp_reply.h"
#include "lib/tls.h"
#include "mta/delivery/shaping.h"
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
    int stay_idle; /* after the last transaction the client is left idle, not told to QUIT */
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

/* The whole line the peer logged that starts with prefix, or "". */
static const char *logged_line(const struct logged *l, const char *prefix)
{
    int i = logged_find(l, prefix, 0);
    return i >= 0 ? l->line[i] : "";
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
    else if (!r->stay_idle)
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
    r->params.tls = tls_policy_for_mode(SHAPING_TLS_NONE);
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

/* ---- the case table ---- */

/* One case's client run, its peer, and what the peer logged. */
struct trial {
    struct run r;
    struct peer p;
    struct logged l;
};

/* An outcome the client must report; a NULL stage leaves it unchecked. */
struct expect {
    int code;
    const char *enhanced;
    const char *stage;
    int remote;
    const char *text; /* a part of the reply text it must hold, or NULL */
};

/* One client session against one scripted peer. Every case checks that the client got ready
 * (unless not_ready), reported every transaction it got ready for, and each outcome in `out` and
 * `why`; `check` looks at the rest: the run's other fields, what the peer logged and received. */
struct client_case {
    const char *name;
    const char *script; /* the peer's JSON script (see smtp_peer.py) */
    const struct smtp_client_tx *txs;
    size_t ntx;
    void (*tweak)(struct run *);          /* changes to run_init's parameters, or NULL */
    int not_ready;                        /* the session ends before SMTP_CLIENT_READY */
    struct expect out[MAX_TX][MAX_RCPTS]; /* per transaction and recipient */
    struct expect why;                    /* the reason given with SMTP_CLIENT_CLOSED */
    void (*check)(const struct trial *);  /* or NULL */
};

static void check_expect(const struct saved *s, const struct expect *e)
{
    CHECK_INT_EQ(s->code, e->code);
    CHECK_STR_EQ(s->enhanced, e->enhanced);
    CHECK_STR_EQ(s->stage, e->stage);
    CHECK_INT_EQ(s->remote, e->remote);
    if (e->text != NULL) {
        CHECK(strstr(s->text, e->text) != NULL);
        if (strstr(s->text, e->text) == NULL)
            fprintf(stderr, "  reply text \"%s\" lacks \"%s\"\n", s->text, e->text);
    }
}

/* Runs one case against a fresh peer; a failure names the case after its checks' lines. */
static void case_run(const struct client_case *c)
{
    int failures = check_failures;
    struct trial t;
    peer_start(&t.p, c->script);
    run_init(&t.r, t.p.port, c->txs, c->ntx);
    if (c->tweak != NULL)
        c->tweak(&t.r);
    run_go(&t.r);
    peer_wait(&t.p);
    peer_commands(&t.p, &t.l);

    CHECK_INT_EQ(t.r.ready, !c->not_ready);
    CHECK_INT_EQ(t.r.ndone, c->not_ready ? 0 : c->ntx);
    for (size_t i = 0; i < MAX_TX; i++)
        for (size_t j = 0; j < MAX_RCPTS; j++)
            if (c->out[i][j].stage != NULL)
                check_expect(&t.r.out[i][j], &c->out[i][j]);
    if (c->why.stage != NULL) {
        CHECK_INT_EQ(t.r.nwhy, 1);
        check_expect(&t.r.why, &c->why);
    }
    if (c->check != NULL)
        c->check(&t);
    peer_cleanup(&t.p);
    if (check_failures != failures)
        fprintf(stderr, "  (in case \"%s\")\n", c->name);
}

/* ---- what the cases send ---- */

static struct buf small_body = {"Subject: hi\r\n\r\nhello\r\n", 22, 0};
static const char *one_rcpt[] = {"c@peer.test"};
static const char *two_rcpts[] = {"a@peer.test", "b@peer.test"};
static const char *three_rcpts[] = {"a@peer.test", "b@peer.test", "c@peer.test"};
static const char *four_rcpts[] = {"a@peer.test", "b@peer.test", "c@peer.test", "d@peer.test"};
static const struct smtp_client_tx to_one = {
    .sender = "s@client.test", .rcpts = one_rcpt, .nrcpts = 1, .body = &small_body, .flags = 0};
static const struct smtp_client_tx to_two = {
    .sender = "s@client.test", .rcpts = two_rcpts, .nrcpts = 2, .body = &small_body, .flags = 0};
static const struct smtp_client_tx to_three = {
    .sender = "s@client.test", .rcpts = three_rcpts, .nrcpts = 3, .body = &small_body, .flags = 0};
static const struct smtp_client_tx to_four = {
    .sender = "s@client.test", .rcpts = four_rcpts, .nrcpts = 4, .body = &small_body, .flags = 0};

/* Two messages on one connection, the second from the null sender with BODY=8BITMIME. */
static const struct smtp_client_tx two_messages[] = {
    {.sender = "s@client.test", .rcpts = two_rcpts, .nrcpts = 2, .body = &small_body, .flags = 0},
    {.sender = "",
     .rcpts = one_rcpt,
     .nrcpts = 1,
     .body = &small_body,
     .flags = SPOOL_ENV_8BITMIME},
};

/* SMTPUTF8 needed: a UTF-8 local part in a recipient, UTF-8 header fields, a UTF-8 sender. */
static const char *utf8_local[] = {"a@xn--bcher-kva.test", "j\xc3\xb6rg@xn--bcher-kva.test"};
static char utf8_header_text[] = "Subject: caf\xc3\xa9\r\n\r\nhello\r\n";
static struct buf utf8_header = {utf8_header_text, sizeof utf8_header_text - 1, 0};
static const char *ascii_rcpt[] = {"a@peer.test"};
static const struct smtp_client_tx utf8_rcpt = {.sender = "s@client.test",
                                                .rcpts = utf8_local,
                                                .nrcpts = 2,
                                                .body = &small_body,
                                                .flags = SPOOL_ENV_SMTPUTF8};
static const struct smtp_client_tx utf8_headers = {.sender = "s@client.test",
                                                   .rcpts = ascii_rcpt,
                                                   .nrcpts = 1,
                                                   .body = &utf8_header,
                                                   .flags =
                                                       SPOOL_ENV_SMTPUTF8 | SPOOL_ENV_8BITMIME};
static const struct smtp_client_tx utf8_sender = {.sender = "j\xc3\xb6rg@client.test",
                                                  .rcpts = ascii_rcpt,
                                                  .nrcpts = 1,
                                                  .body = &small_body,
                                                  .flags = SPOOL_ENV_SMTPUTF8};

/* SMTPUTF8 only for internationalized domains, stored as A-labels. */
static const char *idn_rcpt[] = {"a@xn--bcher-kva.test"};
static const struct smtp_client_tx idn_only = {.sender = "s@xn--mnchen-3ya.test",
                                               .rcpts = idn_rcpt,
                                               .nrcpts = 1,
                                               .body = &small_body,
                                               .flags = SPOOL_ENV_SMTPUTF8};
static const char *utf8_rcpts[] = {"j\xc3\xb6rg@xn--bcher-kva.test", "b@[IPv6:2001:db8::1]",
                                   "c@peer.test"};
static const struct smtp_client_tx utf8_mixed = {.sender = "s@xn--mnchen-3ya.test",
                                                 .rcpts = utf8_rcpts,
                                                 .nrcpts = 3,
                                                 .body = &small_body,
                                                 .flags = SPOOL_ENV_SMTPUTF8};
/* Five labels of twenty U+4F8B: 141 octets as A-labels, 311 as U-labels, past what a path may
 * hold (RFC 5321 §4.5.3.1.3), so the A-labels go. */
static const char *long_idn_rcpt[] = {"d@xn--fsqaaaaaaaaaaaaaaaaaaa.xn--fsqaaaaaaaaaaaaaaaaaaa."
                                      "xn--fsqaaaaaaaaaaaaaaaaaaa.xn--fsqaaaaaaaaaaaaaaaaaaa."
                                      "xn--fsqaaaaaaaaaaaaaaaaaaa.test"};
static const struct smtp_client_tx long_idn = {.sender = "s@client.test",
                                               .rcpts = long_idn_rcpt,
                                               .nrcpts = 1,
                                               .body = &small_body,
                                               .flags = SPOOL_ENV_SMTPUTF8};

static char text_8bit[] = "Subject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n";
static struct buf body_8bit = {text_8bit, sizeof text_8bit - 1, 0};
static const struct smtp_client_tx eight_bit = {.sender = "s@client.test",
                                                .rcpts = two_rcpts,
                                                .nrcpts = 2,
                                                .body = &body_8bit,
                                                .flags = SPOOL_ENV_8BITMIME};

/* Bare LF and CR, and lines that start with a dot. */
static char raw_text[] = "Subject: t\n\n.hello\r\nbare\rcr\n..x\n.\nend";
static struct buf raw_body = {raw_text, sizeof raw_text - 1, 0};
static const struct smtp_client_tx unencoded = {
    .sender = "s@client.test", .rcpts = one_rcpt, .nrcpts = 1, .body = &raw_body, .flags = 0};

/* A body of several chunks (300 KiB), written by main() before the cases run. */
static struct buf large_body = BUF_INIT;
static const struct smtp_client_tx large = {
    .sender = "s@client.test", .rcpts = one_rcpt, .nrcpts = 1, .body = &large_body, .flags = 0};

/* Hostile peers' scripts, written by main(): a greeting line that never ends, and an EHLO reply
 * of 300 lines. */
#define HOSTILE_REPEAT 300
static char endless_greeting[64 + HOSTILE_REPEAT * 16], endless_ehlo[64 + HOSTILE_REPEAT * 9];

/* Writes head, HOSTILE_REPEAT times unit, then tail into dst. */
static void hostile_script_write(char *dst, size_t size, const char *head, const char *unit,
                                 const char *tail)
{
    size_t n = (size_t)snprintf(dst, size, "%s", head);
    for (int k = 0; k < HOSTILE_REPEAT && n < size; k++)
        n += (size_t)snprintf(dst + n, size - n, "%s", unit);
    CHECK(n < size && (size_t)snprintf(dst + n, size - n, "%s", tail) < size - n);
}

/* ---- how a case changes the client's parameters ---- */

static SSL_CTX *client_ctx;

static void tweak_opportunistic(struct run *r)
{
    r->params.tls = tls_policy_for_mode(SHAPING_TLS_OPPORTUNISTIC);
    r->params.tls_ctx = client_ctx;
}

static void tweak_required(struct run *r)
{
    r->params.tls = tls_policy_for_mode(SHAPING_TLS_REQUIRED);
    r->params.tls_ctx = client_ctx;
}

static void tweak_opportunistic_fast(struct run *r)
{
    tweak_opportunistic(r);
    r->params.timeouts.command = 1000;
}

static struct shaping_rates *pace_rates; /* freed by check_rate_pacing */

static void tweak_pacing(struct run *r)
{
    struct config_shaping sh = {.rate = {5, 1000}}; /* a RCPT every 200 ms; MAIL unlimited */
    pace_rates = shaping_rates_new(&sh, uv_now(&r->loop));
    r->params.pace = shaping_rates_pace;
    r->params.pace_arg = pace_rates;
}

/* The loop's time the client pacer was last handed, against the clock, for "pace stamps". */
static uint64_t pace_stale_ms;

static uint64_t pace_after_busy_mail(void *arg, enum smtp_client_pace what, uint64_t now_ms)
{
    (void)arg;
    uint64_t real_ms = uv_hrtime() / 1000000;
    if (real_ms > now_ms + pace_stale_ms)
        pace_stale_ms = real_ms - now_ms;
    if (what == SMTP_CLIENT_PACE_MAIL) /* a loop iteration busy elsewhere for 60 ms */
        while (uv_hrtime() / 1000000 < real_ms + 60)
            ;
    return 0;
}

static void tweak_busy_pacer(struct run *r)
{
    pace_stale_ms = 0;
    r->params.pace = pace_after_busy_mail;
}

static void tweak_short_timeout(struct run *r)
{
    r->params.timeouts.command = 300;
}

static void tweak_abort(struct run *r)
{
    r->abort_after_ms = 300;
}

#define IDLE_MS 300

static void tweak_chunking(struct run *r)
{
    r->params.chunking = 1;
}

static void tweak_idle(struct run *r)
{
    r->params.timeouts.idle = IDLE_MS;
    r->stay_idle = 1;
}

/* Idle longer than the guard: only the peer can end the session. */
static void tweak_idle_long(struct run *r)
{
    r->params.timeouts.idle = 60000;
    r->stay_idle = 1;
}

/* ---- what each case checks beyond its outcomes ---- */

static void check_pipelined_partial(const struct trial *t)
{
    CHECK_INT_EQ(t->r.nwhy, 0);
    CHECK(t->r.ext & SMTP_EXT_PIPELINING);
    /* MAIL, both RCPTs and DATA reached the peer before it had answered any of them. */
    int mail = logged_find(&t->l, "MAIL FROM:<s@client.test> SIZE=22", 0);
    int data = logged_find(&t->l, "DATA", 0);
    CHECK(mail >= 0 && data == mail + 3);
    if (mail >= 0 && data == mail + 3)
        CHECK_INT_EQ(t->l.seen[data], t->l.seen[mail]);
    CHECK(logged_find(&t->l, "QUIT", 0) >= 0);
    check_peer_data(&t->p, "data_1.bin", "Subject: hi\r\n\r\nhello\r\n.\r\n");
}

static void check_multi_message(const struct trial *t)
{
    CHECK(logged_find(&t->l, "MAIL FROM:<> SIZE=22 BODY=8BITMIME", 0) >= 0);
    CHECK(logged_find(&t->l, "EHLO client.test", 1) < 0); /* one connection, one EHLO */
    check_peer_data(&t->p, "data_2.bin", "Subject: hi\r\n\r\nhello\r\n.\r\n");
}

/* Each command went out only after the previous reply: greeting, EHLO, MAIL, RCPT, RCPT. */
static void check_no_pipelining(const struct trial *t)
{
    int mail = logged_find(&t->l, "MAIL", 0);
    CHECK(mail >= 0 && strcmp(t->l.line[mail], "MAIL FROM:<s@client.test>") == 0); /* no SIZE */
    for (int i = 0; mail >= 0 && i < 4; i++)
        CHECK_INT_EQ(t->l.seen[mail + i], 2 + i);
}

static void check_helo_fallback(const struct trial *t)
{
    CHECK_INT_EQ(t->r.ext, 0);
    CHECK(logged_find(&t->l, "HELO client.test", 0) == 1);
    CHECK(logged_find(&t->l, "MAIL FROM:<s@client.test>", 0) == 2);
}

static void check_greeting_4xx(const struct trial *t)
{
    CHECK_INT_EQ(t->l.n, 1);
    CHECK(logged_find(&t->l, "QUIT", 0) == 0);
}

/* The session ended by itself with QUIT, idle time after the end of data. */
static void check_idle_quit(const struct trial *t)
{
    CHECK_INT_EQ(t->r.nwhy, 0);
    int quit = logged_find(&t->l, "QUIT", 0);
    int dot = logged_find(&t->l, "DATA", 0);
    CHECK(quit >= 0 && dot >= 0);
    if (quit >= 0 && dot >= 0)
        CHECK(t->l.ms[quit] - t->l.ms[dot] >= IDLE_MS);
}

/* A 421 while idle ends the session like a clean close: no reason given, no QUIT sent. */
static void check_idle_closed_quietly(const struct trial *t)
{
    CHECK_INT_EQ(t->r.nwhy, 0);
    CHECK(logged_find(&t->l, "QUIT", 0) < 0);
}

static void check_no_data(const struct trial *t)
{
    CHECK(logged_find(&t->l, "DATA", 0) < 0);
}

/* Refused before anything was sent for the message. */
static void check_no_mail(const struct trial *t)
{
    CHECK(logged_find(&t->l, "MAIL", 0) < 0);
}

static void check_size_too_big(const struct trial *t)
{
    check_no_mail(t);
    CHECK(logged_find(&t->l, "QUIT", 0) >= 0);
}

static void check_smtputf8_domain_only(const struct trial *t)
{
    CHECK_STR_EQ(logged_line(&t->l, "MAIL"), "MAIL FROM:<s@xn--mnchen-3ya.test> SIZE=22");
    CHECK_STR_EQ(logged_line(&t->l, "RCPT"), "RCPT TO:<a@xn--bcher-kva.test>");
}

static void check_smtputf8_offered(const struct trial *t)
{
    CHECK_STR_EQ(logged_line(&t->l, "MAIL"), "MAIL FROM:<s@m\xc3\xbcnchen.test> SMTPUTF8");
    CHECK_STR_EQ(logged_line(&t->l, "RCPT TO:<j"), "RCPT TO:<j\xc3\xb6rg@b\xc3\xbc"
                                                   "cher.test>");
    CHECK_STR_EQ(logged_line(&t->l, "RCPT TO:<b"), "RCPT TO:<b@[IPv6:2001:db8::1]>");
    CHECK_STR_EQ(logged_line(&t->l, "RCPT TO:<c"), "RCPT TO:<c@peer.test>");
}

static void check_smtputf8_too_long(const struct trial *t)
{
    CHECK(logged_find(&t->l, "RCPT TO:<d@xn--fsqaaaaaaaaaaaaaaaaaaa.xn--", 0) >= 0);
}

static void check_no_rcpt_accepted(const struct trial *t)
{
    CHECK(logged_find(&t->l, "RSET", 0) >= 0);
    CHECK(logged_find(&t->l, "<body", 0) < 0);
}

/* raw_body as every receiver must understand it, DATA or BDAT: line ends made CRLF, the last one
 * too. Its length is RFC 1870's size of the message, what SIZE= must announce. */
static const char raw_message[] = "Subject: t\r\n\r\n.hello\r\nbare\r\ncr\r\n..x\r\n.\r\nend\r\n";

static void check_size_param(const struct trial *t, size_t size)
{
    char want[64];
    snprintf(want, sizeof want, "MAIL FROM:<s@client.test> SIZE=%zu", size);
    CHECK_STR_EQ(logged_line(&t->l, "MAIL"), want);
}

static void check_body_encoding(const struct trial *t)
{
    check_peer_data(&t->p, "data_1.bin",
                    "Subject: t\r\n\r\n..hello\r\nbare\r\ncr\r\n...x\r\n..\r\nend\r\n.\r\n");
    check_peer_data(&t->p, "message_1.bin", raw_message);
    check_size_param(t, sizeof raw_message - 1);
    CHECK_INT_EQ(logged_find(&t->l, "BDAT", 0), -1);
}

/* BDAT (RFC 3030): the same message as with DATA, with no dot-stuffing on the wire, in one LAST
 * chunk as it is small, after the RCPT replies, and no DATA. */
static void check_bdat(const struct trial *t)
{
    check_peer_data(&t->p, "message_1.bin", raw_message);
    char last[32];
    snprintf(last, sizeof last, "BDAT %zu LAST", sizeof raw_message - 1);
    CHECK_STR_EQ(logged_line(&t->l, "BDAT"), last);
    CHECK_INT_EQ(logged_find(&t->l, "DATA", 0), -1);
    int bdat = logged_find(&t->l, "BDAT", 0);
    CHECK(bdat > 0 && t->l.seen[bdat] == 4); /* the greeting, EHLO, MAIL and RCPT answered */
    check_size_param(t, sizeof raw_message - 1);
}

/* A large message in several BDAT chunks, the last one LAST, put together byte for byte. */
static void check_bdat_large(const struct trial *t)
{
    struct buf got = BUF_INIT;
    peer_file(&t->p, "message_1.bin", &got);
    CHECK_MEM_EQ(got.data, got.len, large_body.data);
    buf_free(&got);
    CHECK(logged_find(&t->l, "BDAT", 3) > 0);
    CHECK(strstr(logged_line(&t->l, "BDAT 65536 LAST"), "LAST") == NULL);
    check_size_param(t, large_body.len);
}

/* A refused chunk fails the message; no chunk follows it, and the transaction ends with RSET. */
static void check_bdat_refused(const struct trial *t)
{
    CHECK_INT_EQ(logged_find(&t->l, "BDAT", 0) >= 0, 1);
    CHECK(logged_find(&t->l, "RSET", 0) > logged_find(&t->l, "BDAT", 0));
    CHECK_INT_EQ(logged_find(&t->l, "DATA", 0), -1);
}

/* CHUNKING offered, but the shaping rule says DATA. */
static void check_data_not_bdat(const struct trial *t)
{
    check_peer_data(&t->p, "message_1.bin", raw_message);
    CHECK_INT_EQ(logged_find(&t->l, "BDAT", 0), -1);
    CHECK(logged_find(&t->l, "DATA", 0) > 0);
}

static void check_large_body(const struct trial *t)
{
    struct buf got = BUF_INIT;
    peer_file(&t->p, "data_1.bin", &got);
    CHECK_INT_EQ(got.len, large_body.len + 3);
    CHECK(got.len == large_body.len + 3 && memcmp(got.data, large_body.data, large_body.len) == 0);
    buf_free(&got);
}

static void check_starttls(const struct trial *t)
{
    CHECK(strncmp(t->r.tls_version, "TLSv1.", 6) == 0);
    CHECK(logged_find(&t->l, "STARTTLS", 0) == 1);
    CHECK(logged_find(&t->l, "EHLO client.test", 1) == 2); /* EHLO again, under TLS */
    CHECK(logged_find(&t->l, "MAIL", 0) == 3);
}

/* Only EHLO and QUIT went out in clear. */
static void check_tls_required(const struct trial *t)
{
    CHECK_INT_EQ(t->l.n, 2);
    CHECK(logged_find(&t->l, "QUIT", 0) == 1);
}

/* The handshake fails or times out (when the peer is still waiting for a line): a temporary
 * failure at STARTTLS, and nothing more is sent. */
static void check_tls_handshake_fails(const struct trial *t)
{
    CHECK_INT_EQ(t->r.nwhy, 1);
    CHECK_STR_EQ(t->r.why.stage, "STARTTLS");
    CHECK_INT_EQ(t->r.why.code / 100, 4);
    CHECK(logged_find(&t->l, "MAIL", 0) < 0 && logged_find(&t->l, "QUIT", 0) < 0);
}

static void check_rate_pacing(const struct trial *t)
{
    int first = logged_find(&t->l, "RCPT", 0);
    CHECK(first >= 0);
    for (int i = 1; first >= 0 && i < 4; i++) {
        long gap = t->l.ms[first + i] - t->l.ms[first + i - 1];
        CHECK(gap >= 150); /* 200 ms apart, less the peer's own timing slack */
    }
    CHECK(logged_find(&t->l, "DATA", 0) == first + 4); /* DATA only after every RCPT */
    shaping_rates_free(pace_rates);
}

/* Each RCPT is stamped with the time it goes out, not that of the busy iteration it goes out in:
 * a stale stamp would let the next RCPT go early by as much. */
static void check_pace_stamps_fresh(const struct trial *t)
{
    (void)t;
    CHECK(pace_stale_ms < 20);
}

/* Shutdown in the middle of a transaction: TX_DONE with temporary failures, then CLOSED. */
static void check_abort(const struct trial *t)
{
    CHECK_INT_EQ(t->r.nwhy, 1);
    CHECK(logged_find(&t->l, "<body", 0) >= 0);
}

/* ---- the cases ---- */

/* One case per row reads better than one field per line. */
/* clang-format off */
#define DELIVERED {250, "2.0.0", "end of data", 1, NULL}
#define CHUNKING_PEER "{\"ehlo\": \"250-peer.test\\r\\n250-PIPELINING\\r\\n250-SIZE 1000000\\r\\n250 CHUNKING\"}"
#define UTF8_REFUSED {553, "5.6.7", "MAIL FROM", 0, NULL} /* RFC 6531 §3.4: nothing sent */
#define MALFORMED(stage) {451, "4.5.0", stage, 0, "malformed reply"}

static const struct client_case cases[] = {
    {"pipelined, one RCPT refused",
     .script = "{\"rcpt\": [\"250 2.1.5 ok\", \"550 5.1.1 no such user\"]}",
     .txs = &to_two, .ntx = 1, .check = check_pipelined_partial,
     .out = {[0][0] = DELIVERED, [0][1] = {550, "5.1.1", "RCPT TO", 1, "no such user"}}},
    {"two messages on one connection",
     .script = "{\"end\": [\"250 first\", \"451 4.3.0 try later\"]}",
     .txs = two_messages, .ntx = 2, .check = check_multi_message,
     .out = {[0][0] = {250, "", "end of data", 1, NULL}, [0][1] = {250, "", "end of data", 1, NULL},
             [1][0] = {451, "4.3.0", "end of data", 1, NULL}}},
    {"no PIPELINING offered",
     .script = "{\"ehlo\": \"250-peer.test\\r\\n250 ENHANCEDSTATUSCODES\"}",
     .txs = &to_two, .ntx = 1, .check = check_no_pipelining, .out = {[0][1] = DELIVERED}},
    {"EHLO refused: HELO", .script = "{\"ehlo\": \"502 5.5.1 what?\"}",
     .txs = &to_one, .ntx = 1, .check = check_helo_fallback, .out = {[0][0] = DELIVERED}},
    {"greeting 450", .script = "{\"greeting\": \"450 4.3.2 too busy\"}",
     .not_ready = 1, .check = check_greeting_4xx, .why = {450, "4.3.2", "greeting", 1, "too busy"}},
    {"421 in the middle of the RCPTs",
     .script = "{\"rcpt\": [\"550 5.1.1 unknown\", \"250 ok\", "
               "\"421-4.7.0 slow\\r\\n421 4.7.0 down\"], \"ehlo\": \"250 peer.test\"}",
     .txs = &to_three, .ntx = 1, .check = check_no_data,
     .out = {[0][0] = {550, "5.1.1", "RCPT TO", 1, NULL},
             [0][1] = {421, "4.7.0", "RCPT TO", 1, NULL},
             [0][2] = {421, "4.7.0", "RCPT TO", 1, "slow; down"}}, /* both lines, joined */
     .why = {421, "4.7.0", "RCPT TO", 1, NULL}},
    {"message over the peer's SIZE", .script = "{\"ehlo\": \"250-peer.test\\r\\n250 SIZE 10\"}",
     .txs = &to_two, .ntx = 1, .check = check_size_too_big,
     .out = {[0][0] = {552, "5.3.4", "MAIL FROM", 0, NULL},
             [0][1] = {552, "5.3.4", "MAIL FROM", 0, NULL}}},
    {"SMTPUTF8 not offered: UTF-8 local part", .script = "{}", .txs = &utf8_rcpt, .ntx = 1,
     .check = check_no_mail, .out = {[0][0] = UTF8_REFUSED, [0][1] = UTF8_REFUSED}},
    {"SMTPUTF8 not offered: UTF-8 header fields", .script = "{}", .txs = &utf8_headers, .ntx = 1,
     .check = check_no_mail, .out = {[0][0] = UTF8_REFUSED}},
    {"SMTPUTF8 not offered: UTF-8 sender", .script = "{}", .txs = &utf8_sender, .ntx = 1,
     .check = check_no_mail, .out = {[0][0] = UTF8_REFUSED}},
    /* Non-ASCII only in the domains: A-labels, as stored, and no SMTPUTF8 parameter. */
    {"SMTPUTF8 not offered: internationalized domains only", .script = "{}", .txs = &idn_only,
     .ntx = 1, .check = check_smtputf8_domain_only, .out = {[0][0] = DELIVERED}},
    /* To a server that offers SMTPUTF8 the envelope's domains go as U-labels (RFC 6531 §3.2). */
    {"SMTPUTF8 offered",
     .script = "{\"ehlo\": \"250-peer.test\\r\\n250-PIPELINING\\r\\n250 SMTPUTF8\"}",
     .txs = &utf8_mixed, .ntx = 1, .check = check_smtputf8_offered,
     .out = {[0][0] = DELIVERED, [0][1] = DELIVERED, [0][2] = DELIVERED}},
    {"SMTPUTF8 offered, U-labels too long for a path",
     .script = "{\"ehlo\": \"250-peer.test\\r\\n250 SMTPUTF8\"}",
     .txs = &long_idn, .ntx = 1, .check = check_smtputf8_too_long, .out = {[0][0] = DELIVERED}},
    {"8-bit body, no 8BITMIME offered",
     .script = "{\"ehlo\": \"250-peer.test\\r\\n250 PIPELINING\"}",
     .txs = &eight_bit, .ntx = 1, .check = check_no_mail,
     .out = {[0][0] = {554, "5.6.3", "MAIL FROM", 0, NULL}}},
    {"no recipient accepted",
     .script = "{\"rcpt\": \"550 5.1.1 no\", \"data\": \"554 5.5.1 no valid recipients\"}",
     .txs = &to_two, .ntx = 1, .check = check_no_rcpt_accepted,
     .out = {[0][0] = {550, "5.1.1", "RCPT TO", 1, NULL},
             [0][1] = {550, "5.1.1", "RCPT TO", 1, NULL}}},
    {"body encoding", .script = "{}", .txs = &unencoded, .ntx = 1, .check = check_body_encoding,
     .out = {[0][0] = DELIVERED}},
    {"large body", .script = "{}", .txs = &large, .ntx = 1, .check = check_large_body,
     .out = {[0][0] = DELIVERED}},
    {"BDAT to a peer offering CHUNKING", .script = CHUNKING_PEER, .txs = &unencoded, .ntx = 1,
     .tweak = tweak_chunking, .check = check_bdat, .out = {[0][0] = DELIVERED}},
    {"BDAT chunks of a large body", .script = CHUNKING_PEER, .txs = &large, .ntx = 1,
     .tweak = tweak_chunking, .check = check_bdat_large, .out = {[0][0] = DELIVERED}},
    {"BDAT chunk refused",
     .script = "{\"ehlo\": \"250-peer.test\\r\\n250-PIPELINING\\r\\n250 CHUNKING\", "
               "\"bdat\": \"452 4.3.1 no room\"}",
     .txs = &large, .ntx = 1, .tweak = tweak_chunking, .check = check_bdat_refused,
     .out = {[0][0] = {452, "4.3.1", "end of data", 1, "no room"}}},
    {"CHUNKING offered, chunking off: DATA", .script = CHUNKING_PEER, .txs = &unencoded, .ntx = 1,
     .check = check_data_not_bdat, .out = {[0][0] = DELIVERED}},
    {"idle after a transaction: QUIT when the idle time ends", .script = "{}", .txs = &to_one,
     .ntx = 1, .tweak = tweak_idle, .check = check_idle_quit, .out = {[0][0] = DELIVERED}},
    {"421 from the peer while idle",
     .script = "{\"end\": \"@raw:250 2.0.0 queued\\r\\n421 4.4.2 idle too long\\r\\n\"}",
     .txs = &to_one, .ntx = 1, .tweak = tweak_idle_long, .check = check_idle_closed_quietly,
     .out = {[0][0] = DELIVERED}},
    {"STARTTLS",
     .script = "{\"tls\": true, \"ehlo\": \"250-peer.test\\r\\n250-STARTTLS\\r\\n250 PIPELINING\"}",
     .txs = &to_one, .ntx = 1, .tweak = tweak_opportunistic, .check = check_starttls,
     .out = {[0][0] = DELIVERED}},
    {"TLS required, not offered", .script = "{}", .txs = &to_two, .ntx = 1,
     .tweak = tweak_required, .not_ready = 1, .check = check_tls_required,
     .why = {451, "4.7.10", "STARTTLS", 0, NULL}},
    /* The peer says 220 to STARTTLS but then speaks no TLS. */
    {"TLS handshake fails",
     .script = "{\"ehlo\": \"250-peer.test\\r\\n250 STARTTLS\", "
               "\"starttls\": \"@raw:220 go\\r\\nthis is not TLS\\r\\n\"}",
     .tweak = tweak_opportunistic_fast, .not_ready = 1, .check = check_tls_handshake_fails},
    {"RCPT rate", .script = "{}", .txs = &to_four, .ntx = 1, .tweak = tweak_pacing,
     .check = check_rate_pacing, .out = {[0][3] = DELIVERED}},
    {"pace stamps", .script = "{}", .txs = &to_four, .ntx = 1, .tweak = tweak_busy_pacer,
     .check = check_pace_stamps_fresh, .out = {[0][3] = DELIVERED}},
    {"command timeout", .script = "{\"rcpt\": \"@hang\"}", .txs = &to_two, .ntx = 1,
     .tweak = tweak_short_timeout,
     .out = {[0][0] = {451, "4.4.2", "RCPT TO", 0, "timeout"},
             [0][1] = {451, "4.4.2", "RCPT TO", 0, NULL}},
     .why = {451, "4.4.2", "RCPT TO", 0, NULL}},
    {"abort during the data", .script = "{\"end\": \"@hang\"}", .txs = &to_two, .ntx = 1,
     .tweak = tweak_abort, .check = check_abort,
     .out = {[0][0] = {451, "4.3.2", "end of data", 0, NULL},
             [0][1] = {451, "4.3.2", "end of data", 0, NULL}}},
    {"connection lost at DATA", .script = "{\"data\": \"@close\"}", .txs = &to_two, .ntx = 1,
     .out = {[0][0] = {451, "4.4.2", "DATA", 0, "lost connection with mx.test while DATA"}}},
    /* Hostile peers: an endless line, garbage, a flood of reply lines. Each ends cleanly. */
    {"endless greeting line", .script = endless_greeting, .not_ready = 1,
     .why = MALFORMED("greeting")},
    {"greeting not SMTP", .script = "{\"greeting\": \"@raw:hello, I am not SMTP\\r\\n\"}",
     .not_ready = 1, .why = MALFORMED("greeting")},
    {"EHLO reply of 300 lines", .script = endless_ehlo, .not_ready = 1, .why = MALFORMED("EHLO")},
};
/* clang-format on */

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
    check_expect(&r.why, &(struct expect){451, "4.4.1", "connect", 0, "refused"});
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct buf err = BUF_INIT;
    client_ctx = tls_client_ctx_new(&err);
    CHECK(client_ctx != NULL);
    buf_free(&err);
    for (int i = 0; large_body.len < 300 * 1024; i++)
        buf_printf(&large_body, "line %d of a long message .\r\n", i);
    hostile_script_write(endless_greeting, sizeof endless_greeting, "{\"greeting\": \"@raw:220 ",
                         "xxxxxxxxxxxxxxxx", "\"}");
    hostile_script_write(endless_ehlo, sizeof endless_ehlo, "{\"ehlo\": \"@raw:", "250-x\\r\\n",
                         "\"}");

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        case_run(&cases[i]);
    test_connection_refused();

    buf_free(&large_body);
    SSL_CTX_free(client_ctx);
    return check_report("test_smtp_client");
}
