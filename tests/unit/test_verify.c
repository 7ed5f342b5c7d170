/*
 * Recipient verification against a real SMTP server on loopback: tests/support/smtp_peer.py
 * answers each probe from a JSON script and logs the commands it got, so the checks count the
 * probes that really went over the wire. The cache, its TTLs, the LRU bound and the sharing of one
 * probe by concurrent checks are checked through the public API only.
 */
#include "policy/verify.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/dns.h"
#include "lib/stream.h"
#include "lib/tls.h"
#include "tests/unit/check.h"
#include "tests/support/dnsmasq.h"

#define GUARD_MS 20000

/* One scripted server process: it serves one connection, then exits. */
struct peer {
    FILE *proc;
    char dir[64];
    char target[64]; /* "[127.0.0.1]:port" */
};

static void peer_start(struct peer *p, const char *script)
{
    snprintf(p->dir, sizeof p->dir, "/tmp/test_verify.XXXXXX");
    CHECK(mkdtemp(p->dir) != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "exec /usr/bin/python3 " SLUICE_TEST_SUPPORT_DIR "/smtp_peer.py '%s' %s", script,
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
static struct dns_resolver *dns; /* dnsmasq serving the zone at the end of this file */
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
    struct verify_query q = {target, rcpt, "mx.test", 25, dns, ttl, ttl};
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
    /* The probe arms its timeouts from the loop's time, stale by however long starting the peer
     * took (long on a loaded machine): a 300 ms timeout could fire before the greeting. */
    uv_update_time(&loop);
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

/* ---- STARTTLS and several addresses ---- */

/* The verbs and arguments the python peer logged, one "|"-separated line ("EHLO mx.test|..."). */
static void peer_commands(struct peer *p, char *out, size_t size)
{
    pclose(p->proc);
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/commands.log", p->dir);
    FILE *f = fopen(path, "r");
    size_t n = 0;
    out[0] = '\0';
    while (f != NULL && fgets(line, sizeof line, f) != NULL && n < size) {
        char *cmd = strchr(strchr(line, ' ') + 1, ' ') + 1; /* after "<ms> <replies> " */
        cmd[strcspn(cmd, "\r\n")] = '\0';
        n += (size_t)snprintf(out + n, size - n, "%s%s", n > 0 ? "|" : "", cmd);
    }
    if (f != NULL)
        fclose(f);
}

static SSL_CTX *client_tls(void)
{
    struct buf err = BUF_INIT;
    SSL_CTX *ctx = tls_client_ctx_new(&err);
    CHECK(ctx != NULL);
    buf_free(&err);
    return ctx;
}

#define TLS_EHLO "\"ehlo\": \"250-peer.test\\r\\n250-PIPELINING\\r\\n250 STARTTLS\""

/* STARTTLS when offered: the RCPT goes over TLS, and the EHLO after it does not start TLS again. */
static void test_starttls(void)
{
    SSL_CTX *ctx = client_tls();
    struct verifier_params params = {.tls_ctx = ctx};
    struct verifier *v = verifier_new(&loop, &params);
    struct peer p;
    peer_start(&p, "{\"tls\": true, " TLS_EHLO "}");
    struct got g = {0};
    CHECK_INT_EQ(check(v, p.target, "tls@example.org", 60000, &g), 1);
    wait_for(&g, 1);
    CHECK_INT_EQ(g.res.status, VERIFY_VALID);
    char cmds[512];
    peer_commands(&p, cmds, sizeof cmds);
    CHECK_STR_EQ(cmds, "EHLO mx.test|STARTTLS|EHLO mx.test|MAIL FROM:<>|RCPT TO:<tls@example.org>|"
                       "QUIT");
    verifier_free(v);

    /* Without a context (the default) the probe stays in clear, as before. */
    v = verifier_new(&loop, NULL);
    peer_start(&p, "{\"tls\": true, " TLS_EHLO "}");
    struct got clear = {0};
    CHECK_INT_EQ(check(v, p.target, "clear@example.org", 60000, &clear), 1);
    wait_for(&clear, 1);
    CHECK_INT_EQ(clear.res.status, VERIFY_VALID);
    peer_commands(&p, cmds, sizeof cmds);
    CHECK_STR_EQ(cmds, "EHLO mx.test|MAIL FROM:<>|RCPT TO:<clear@example.org>|QUIT");
    verifier_free(v);
    SSL_CTX_free(ctx);
}

/*
 * An SMTP server in this process, on the test's loop, for what smtp_peer.py cannot do: serve
 * several connections, and listen on a chosen loopback address so that several such servers
 * share one port (a host name's addresses). It logs "<connection> <command>" lines.
 */
#define LPEER_CONNS 4

struct lconn {
    struct stream s;
    struct lpeer *peer;
    int n;         /* 1 for the first connection */
    int open;      /* until the stream's close callback */
    int junk_next; /* after 220 to STARTTLS: the ClientHello gets junk instead of a ServerHello */
    struct buf in;
};

struct lpeer {
    uv_tcp_t server;
    int listening;
    const char *greeting; /* NULL: never greets */
    const char *rcpt;     /* the reply to RCPT */
    int broken_tls;       /* offers STARTTLS and answers each handshake with junk */
    int nconns;
    struct lconn conns[LPEER_CONNS];
    struct buf log;
};

static void lconn_say(struct lconn *c, const char *reply)
{
    stream_write(&c->s, reply, strlen(reply));
}

static void lconn_on_closed(struct stream *s)
{
    struct lconn *c = s->owner;
    buf_free(&c->in);
    c->open = 0;
}

/* Answers the complete lines in c->in. */
static void lconn_on_lines(struct lconn *c)
{
    struct lpeer *lp = c->peer;
    char *eol;
    while (!c->s.closing && c->in.len > 0 && (eol = memchr(c->in.data, '\n', c->in.len)) != NULL) {
        size_t n = (size_t)(eol - c->in.data) + 1;
        buf_printf(&lp->log, "%d %.*s\n", c->n, (int)(n > 1 ? n - 2 : 0), c->in.data);
        if (strncmp(c->in.data, "EHLO", 4) == 0)
            lconn_say(c,
                      lp->broken_tls ? "250-lpeer.test\r\n250 STARTTLS\r\n" : "250 lpeer.test\r\n");
        else if (strncmp(c->in.data, "STARTTLS", 8) == 0)
            lconn_say(c, "220 2.0.0 go ahead\r\n"), c->junk_next = 1;
        else if (strncmp(c->in.data, "RCPT", 4) == 0)
            lconn_say(c, lp->rcpt);
        else if (strncmp(c->in.data, "QUIT", 4) == 0)
            lconn_say(c, "221 2.0.0 bye\r\n"), stream_close(&c->s, lconn_on_closed);
        else
            lconn_say(c, "250 2.0.0 ok\r\n");
        buf_consume(&c->in, c->junk_next ? c->in.len : n);
        if (c->junk_next)
            return;
    }
}

static void lconn_on_event(struct stream *s, enum stream_event ev, int status, const char *data,
                           size_t len)
{
    (void)status;
    struct lconn *c = s->owner;
    if (ev == STREAM_DATA && c->junk_next) {
        c->junk_next = 0;
        lconn_say(c, "this is not TLS\r\n");
    } else if (ev == STREAM_DATA) {
        buf_append(&c->in, data, len);
        lconn_on_lines(c);
    } else if (ev == STREAM_EOF || ev == STREAM_ERROR) {
        stream_close(s, lconn_on_closed);
    }
}

static void lpeer_on_connection(uv_stream_t *server, int status)
{
    struct lpeer *lp = server->data;
    CHECK(status == 0 && lp->nconns < LPEER_CONNS);
    struct lconn *c = &lp->conns[lp->nconns];
    *c = (struct lconn){.peer = lp, .n = ++lp->nconns, .open = 1, .in = BUF_INIT};
    if (stream_accept(&loop, server, &c->s, lconn_on_event, c) < 0) {
        stream_close(&c->s, lconn_on_closed);
        return;
    }
    if (lp->greeting != NULL)
        lconn_say(c, lp->greeting);
    stream_read_start(&c->s);
}

/* Listens on ip:port (0: any free port); returns the port, or -1 when it is taken. */
static int lpeer_start(struct lpeer *lp, const char *ip, int port)
{
    struct sockaddr_in sin;
    uv_ip4_addr(ip, port, &sin);
    uv_tcp_init(&loop, &lp->server);
    lp->server.data = lp;
    lp->listening = 1;
    int namelen = sizeof sin;
    if (uv_tcp_bind(&lp->server, (struct sockaddr *)&sin, 0) < 0 ||
        uv_listen((uv_stream_t *)&lp->server, 8, lpeer_on_connection) < 0 ||
        uv_tcp_getsockname(&lp->server, (struct sockaddr *)&sin, &namelen) < 0)
        return -1;
    return ntohs(sin.sin_port);
}

static int lpeer_open_conns(const struct lpeer *lp)
{
    int n = 0;
    for (int i = 0; i < lp->nconns; i++)
        n += lp->conns[i].open;
    return n;
}

/* Waits (bounded) for the probe's side to end every connection, then stops listening. */
static void lpeer_stop(struct lpeer *lp)
{
    guard_fired = 0;
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (lpeer_open_conns(lp) > 0 && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    CHECK(!guard_fired);
    if (lp->listening)
        uv_close((uv_handle_t *)&lp->server, NULL);
    lp->listening = 0;
    uv_run(&loop, UV_RUN_NOWAIT); /* finishes the close: lp may live on the caller's stack */
}

/* Stops the servers lpeers_start started and frees their logs. */
static void lpeers_stop(struct lpeer **lps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lps[i] != NULL) {
            lpeer_stop(lps[i]);
            buf_free(&lps[i]->log);
        }
}

/* Starts the servers of a host name's addresses on one common port; NULL entries stay down.
 * Returns the port. */
static int lpeers_start(struct lpeer **lps, const char *const *ips, size_t n)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = 0, ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            if (lps[i] == NULL)
                continue;
            int got = lpeer_start(lps[i], ips[i], port);
            ok = got > 0;
            port = got > 0 ? got : port;
        }
        if (ok)
            return port;
        for (size_t i = 0; i < n; i++) /* the port was taken on one address: another one */
            if (lps[i] != NULL && lps[i]->listening) {
                uv_close((uv_handle_t *)&lps[i]->server, NULL);
                lps[i]->listening = 0;
            }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    CHECK(!"no common free port");
    return -1;
}

/* A broken handshake: the same address once more, in clear even though STARTTLS is offered. */
static void test_starttls_broken_handshake(void)
{
    SSL_CTX *ctx = client_tls();
    struct verifier_params params = {.tls_ctx = ctx};
    struct verifier *v = verifier_new(&loop, &params);
    struct lpeer lp = {.greeting = "220 lpeer.test\r\n",
                       .rcpt = "250 2.1.5 ok\r\n",
                       .broken_tls = 1,
                       .log = BUF_INIT};
    struct lpeer *lps[] = {&lp};
    const char *ips[] = {"127.0.0.1"};
    char target[64];
    snprintf(target, sizeof target, "[127.0.0.1]:%d", lpeers_start(lps, ips, 1));
    struct got g = {0};
    CHECK_INT_EQ(check(v, target, "hs@example.org", 60000, &g), 1);
    wait_for(&g, 1);
    CHECK_INT_EQ(g.res.status, VERIFY_VALID);
    lpeer_stop(&lp);
    buf_append(&lp.log, "", 1);
    CHECK_STR_EQ(lp.log.data,
                 "1 EHLO mx.test\n1 STARTTLS\n"
                 "2 EHLO mx.test\n2 MAIL FROM:<>\n2 RCPT TO:<hs@example.org>\n2 QUIT\n");
    buf_free(&lp.log);
    verifier_free(v);
    SSL_CTX_free(ctx);
}

/* The names the tests below use, and their addresses in the order the resolver gives them: the
 * probe tries them in that order. dnsmasq rotates them from one answer to the next, so they get a
 * TTL that keeps the first answer in the resolver's cache for the whole test. */
static const char *const zone[] = {"--local-ttl=3600",
                                   "--host-record=pair.test,127.0.0.4",
                                   "--host-record=pair.test,127.0.0.5",
                                   "--host-record=triple.test,127.0.0.4",
                                   "--host-record=triple.test,127.0.0.5",
                                   "--host-record=triple.test,127.0.0.6",
                                   NULL};
static char pair_ip[2][INET_ADDRSTRLEN], triple_ip[3][INET_ADDRSTRLEN];
static const char *pair_ips[] = {pair_ip[0], pair_ip[1]};
static const char *triple_ips[] = {triple_ip[0], triple_ip[1], triple_ip[2]};

struct addrs_got {
    int done;
    char (*ips)[INET_ADDRSTRLEN];
    size_t n;
};

static void on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs, size_t n)
{
    struct addrs_got *got = arg;
    CHECK_INT_EQ(status, DNS_OK);
    CHECK_INT_EQ(n, got->n);
    for (size_t i = 0; status == DNS_OK && i < n && i < got->n; i++)
        inet_ntop(AF_INET, &addrs[i].u.v4, got->ips[i], INET_ADDRSTRLEN);
    got->done = 1;
}

static void zone_resolve(const char *name, char (*ips)[INET_ADDRSTRLEN], size_t n)
{
    struct addrs_got got = {0, ips, n};
    CHECK_INT_EQ(dns_resolve_addrs(dns, name, on_addrs, &got), 0);
    CHECK(dnsmasq_run_until(&loop, &got.done, 5000));
}

/* A host name's addresses are tried in order; returns the answer for rcpt at name:port. */
static void check_host(struct verifier *v, const char *name, int port, const char *rcpt,
                       struct got *g)
{
    char target[64];
    snprintf(target, sizeof target, "%s:%d", name, port);
    uv_update_time(&loop); /* as in probe_once: starting the listeners took time */
    CHECK_INT_EQ(check(v, target, rcpt, 60000, g), 1);
    wait_for(g, 1);
}

/* A host name's addresses in order: a server that is down or busy is passed over; a 5xx to RCPT
 * is the answer, and the next address is not asked. */
static void test_next_address(void)
{
    static const struct {
        const char *first_greeting, *first_rcpt; /* NULL: the first address is down */
        enum verify_status status;
        const char *reason;
        int first_conns, second_conns;
    } cases[] = {
        {NULL, NULL, VERIFY_VALID, "250 2.1.5 ok", 0, 1},
        {"421 4.3.2 busy\r\n", "250 2.1.5 ok\r\n", VERIFY_VALID, "250 2.1.5 ok", 1, 1},
        {"220 one\r\n", "550 5.1.1 unknown\r\n", VERIFY_INVALID, "550 5.1.1 unknown", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct verifier *v = verifier_new(&loop, NULL);
        struct lpeer first = {
            .greeting = cases[i].first_greeting, .rcpt = cases[i].first_rcpt, .log = BUF_INIT};
        struct lpeer second = {
            .greeting = "220 two\r\n", .rcpt = "250 2.1.5 ok\r\n", .log = BUF_INIT};
        struct lpeer *pair[] = {cases[i].first_greeting != NULL ? &first : NULL, &second};
        struct got g = {0};
        check_host(v, "pair.test", lpeers_start(pair, pair_ips, 2), "next@example.org", &g);
        CHECK_INT_EQ(g.res.status, cases[i].status);
        CHECK_STR_EQ(g.reason, cases[i].reason);
        CHECK_INT_EQ(first.nconns, cases[i].first_conns);
        CHECK_INT_EQ(second.nconns, cases[i].second_conns);
        lpeers_stop(pair, 2);
        verifier_free(v);
    }
}

/* Every address fails: a temporary failure naming the last reason. */
static void test_all_addresses_fail(void)
{
    struct verifier *v = verifier_new(&loop, NULL);
    struct got g = {0};
    check_host(v, "pair.test", 1, "nobody@example.org", &g);
    CHECK_INT_EQ(g.res.status, VERIFY_TEMPFAIL);
    CHECK_INT_EQ(g.res.code, 450);
    CHECK_STR_EQ(g.reason, "connect: connection refused (2 of 2 addresses tried)");
    verifier_free(v);
}

/* Servers that never greet: each waits the timeout, and the whole probe its own bound. */
static void test_probe_deadline(void)
{
    struct verifier_params params = {.timeout_ms = 500, .probe_timeout_ms = 900};
    struct verifier *v = verifier_new(&loop, &params);
    struct lpeer mute[3] = {{.log = BUF_INIT}, {.log = BUF_INIT}, {.log = BUF_INIT}};
    struct lpeer *all[] = {&mute[0], &mute[1], &mute[2]};
    struct got g = {0};
    uv_update_time(&loop);
    uint64_t start = uv_now(&loop);
    check_host(v, "triple.test", lpeers_start(all, triple_ips, 3), "slow@example.org", &g);
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - start >= 900);
    CHECK_INT_EQ(g.res.status, VERIFY_TEMPFAIL);
    CHECK_STR_EQ(g.reason, "timeout waiting for the greeting (2 of 3 addresses tried)");
    CHECK_INT_EQ(mute[2].nconns, 0);
    lpeers_stop(all, 3);
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
    test_skipped(); /* while there is no resolver */
    test_starttls();
    test_starttls_broken_handshake();

    struct dnsmasq d;
    dns = dnsmasq_start_resolver(&d, &loop, zone, 2000);
    CHECK(dns != NULL);
    zone_resolve("pair.test", pair_ip, 2);
    zone_resolve("triple.test", triple_ip, 3);
    test_next_address();
    test_all_addresses_fail();
    test_probe_deadline();
    uv_close((uv_handle_t *)&guard, NULL);
    CHECK_INT_EQ(dnsmasq_end(&d, &loop, dns), 0);
    return check_report("test_verify");
}
