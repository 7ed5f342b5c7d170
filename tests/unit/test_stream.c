/*
 * stream and tls over real loopback sockets: a server stream accepted from a listener and a client
 * stream connected to it, on one loop per test, with a guard timer so a hang fails fast. Covers
 * plaintext echo, STARTTLS-style upgrade with large transfers, data right behind the handshake,
 * read stop/start inside callbacks, garbage peers, and closing with writes in flight.
 */
#include "lib/stream.h"
#include "lib/tls.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/buf.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

#define GUARD_MS 20000

struct fixture;

/* One end of the connection and everything it saw. */
struct peer {
    struct stream st;
    struct fixture *fx;
    struct buf got; /* plaintext received */
    int connected, connect_status;
    int tls_ready, tls_status;
    int eof, errors, error_status, drained, chunks;
    int close_notify;       /* the EOF came with a TLS close_notify */
    int data_in_handshake;  /* STREAM_DATA while a handshake ran: must stay 0 */
    int data_while_stopped; /* STREAM_DATA after stream_read_stop: must stay 0 */
    int late_events;        /* events after stream_close: must stay 0 */
    int close_called, closed;
    char version[32];
};

typedef void (*hook_fn)(struct peer *p, enum stream_event ev, int status, const char *data,
                        size_t len);

struct fixture {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t guard; /* fails the whole run when it fires */
    uv_timer_t aux;   /* for the tests' own delays */
    struct peer server, client;
    hook_fn hook;                        /* the test's protocol, after the common bookkeeping */
    void (*on_accept)(struct fixture *); /* starts the server side */
    int in_read_start;                   /* set around a stream_read_start from the aux timer */
    int held_deliveries;                 /* STREAM_DATA delivered inside that call */
    int stops;
    int nstreams;   /* streams opened; the timers close after the last */
    size_t variant; /* test-specific switch: TLS on, delayed resume */
    size_t step;    /* upgrade test: index into upgrade_sizes */
};

static SSL_CTX *server_ctx, *client_ctx;
static char *pattern; /* PATTERN_MAX pseudo-random bytes */
#define PATTERN_MAX (8 * 1024 * 1024)

/* ---- fixture ---- */

static void remove_cert(void);

static void guard_on_expire(uv_timer_t *t)
{
    fprintf(stderr, "test_stream: guard timer fired: a test hung\n");
    remove_cert();
    exit(1);
}

static void fixture_on_handle_closed(uv_handle_t *h)
{
}

static void peer_on_closed(struct stream *st)
{
    struct peer *p = st->owner;
    p->closed++;
    struct fixture *fx = p->fx;
    if (fx->server.closed + fx->client.closed == fx->nstreams) {
        uv_close((uv_handle_t *)&fx->guard, fixture_on_handle_closed);
        uv_close((uv_handle_t *)&fx->aux, fixture_on_handle_closed);
    }
}

static void peer_close(struct peer *p)
{
    p->close_called = 1;
    stream_close(&p->st, peer_on_closed);
}

static void peer_on_event(struct stream *st, enum stream_event ev, int status, const char *data,
                          size_t len)
{
    struct peer *p = st->owner;
    if (p->close_called) {
        p->late_events++;
        return;
    }
    switch (ev) {
    case STREAM_CONNECTED:
        p->connected++;
        p->connect_status = status;
        break;
    case STREAM_DATA:
        if (st->tls_handshaking)
            p->data_in_handshake++;
        if (!st->reading)
            p->data_while_stopped++;
        if (p->fx->in_read_start)
            p->fx->held_deliveries++;
        p->chunks++;
        buf_append(&p->got, data, len);
        break;
    case STREAM_TLS_READY:
        p->tls_ready++;
        p->tls_status = status;
        if (status == 0)
            snprintf(p->version, sizeof p->version, "%s", stream_tls_version(st));
        break;
    case STREAM_DRAINED:
        p->drained++;
        break;
    case STREAM_EOF:
        p->eof++;
        p->close_notify = st->ssl != NULL && (SSL_get_shutdown(st->ssl) & SSL_RECEIVED_SHUTDOWN);
        break;
    case STREAM_ERROR:
        p->errors++;
        p->error_status = status;
        break;
    }
    p->fx->hook(p, ev, status, data, len);
    /* Whatever the test did, a finished connection is closed. */
    if (!p->close_called &&
        (ev == STREAM_EOF || ev == STREAM_ERROR || (ev == STREAM_TLS_READY && status < 0) ||
         (ev == STREAM_CONNECTED && status < 0)))
        peer_close(p);
}

static void listener_on_connection(uv_stream_t *l, int status)
{
    struct fixture *fx = container_of((uv_tcp_t *)l, struct fixture, listener);
    CHECK_INT_EQ(status, 0);
    int rc = stream_accept(&fx->loop, l, &fx->server.st, peer_on_event, &fx->server);
    CHECK_INT_EQ(rc, 0);
    uv_close((uv_handle_t *)&fx->listener, fixture_on_handle_closed); /* one connection per test */
    fx->on_accept(fx);
}

static void fixture_init(struct fixture *fx, hook_fn hook, void (*on_accept)(struct fixture *))
{
    memset(fx, 0, sizeof *fx);
    fx->hook = hook;
    fx->on_accept = on_accept;
    fx->server.fx = fx->client.fx = fx;
    CHECK_INT_EQ(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->guard);
    uv_timer_init(&fx->loop, &fx->aux);
    uv_timer_start(&fx->guard, guard_on_expire, GUARD_MS, 0);
}

/* Runs one connection: listener on 127.0.0.1 port 0, client connecting from src (may be NULL). */
static void fixture_run(struct fixture *fx, const struct sockaddr *src)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&fx->loop, &fx->listener);
    CHECK_INT_EQ(uv_tcp_bind(&fx->listener, (const struct sockaddr *)&addr, 0), 0);
    CHECK_INT_EQ(uv_listen((uv_stream_t *)&fx->listener, 8, listener_on_connection), 0);
    int namelen = sizeof addr;
    uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&addr, &namelen);

    fx->nstreams = 2;
    int rc = stream_connect(&fx->loop, &fx->client.st, (const struct sockaddr *)&addr, src,
                            peer_on_event, &fx->client);
    CHECK_INT_EQ(rc, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);

    for (struct peer *p = &fx->server; p <= &fx->client; p++) {
        CHECK_INT_EQ(p->closed, 1);
        CHECK_INT_EQ(p->late_events, 0);
        CHECK_INT_EQ(p->data_in_handshake, 0);
        CHECK_INT_EQ(p->data_while_stopped, 0);
        CHECK_INT_EQ(p->st.write_pending, 0);
        CHECK(p->st.ssl == NULL && p->st.held.data == NULL); /* freed at close */
    }
    CHECK_INT_EQ(uv_loop_close(&fx->loop), 0);
}

static void fixture_free(struct fixture *fx)
{
    buf_free(&fx->server.got);
    buf_free(&fx->client.got);
}

static int got_is(const struct peer *p, const char *s)
{
    return p->got.len == strlen(s) && memcmp(p->got.data, s, p->got.len) == 0;
}

static void accept_read(struct fixture *fx)
{
    CHECK_INT_EQ(stream_read_start(&fx->server.st), 0);
}

static void accept_tls(struct fixture *fx)
{
    CHECK_INT_EQ(stream_tls_server(&fx->server.st, server_ctx), 0);
}

/* ---- plaintext echo, from a bound source address ---- */

#define HELLO "hello, world\r\n"

static void echo_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                      size_t len)
{
    struct fixture *fx = p->fx;
    if (p == &fx->client && ev == STREAM_CONNECTED && status == 0) {
        CHECK_INT_EQ(stream_read_start(&p->st), 0);
        CHECK_INT_EQ(stream_write(&p->st, HELLO, strlen(HELLO)), 0);
        CHECK_INT_EQ(p->st.write_pending, strlen(HELLO));
    } else if (p == &fx->server && ev == STREAM_DATA) {
        CHECK_INT_EQ(stream_write(&p->st, data, len), 0);
    } else if (p == &fx->client && ev == STREAM_DATA && p->got.len >= strlen(HELLO)) {
        peer_close(p);
    }
}

static void test_plain_echo(void)
{
    struct fixture fx;
    fixture_init(&fx, echo_hook, accept_read);
    struct sockaddr_in src;
    uv_ip4_addr("127.0.0.2", 0, &src); /* all of 127/8 is loopback */
    fixture_run(&fx, (const struct sockaddr *)&src);
    CHECK_INT_EQ(fx.client.connected, 1);
    CHECK_INT_EQ(fx.client.connect_status, 0);
    CHECK(got_is(&fx.server, HELLO));
    CHECK(got_is(&fx.client, HELLO));
    CHECK(fx.client.drained >= 1);
    CHECK_INT_EQ(fx.server.eof, 1);
    CHECK_INT_EQ(fx.server.errors, 0);
    CHECK(stream_tls_version(&fx.client.st) == NULL);
    fixture_free(&fx);
}

/* The server sees the address the client bound to. */
static void bound_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                       size_t len)
{
    struct fixture *fx = p->fx;
    if (p == &fx->client && ev == STREAM_CONNECTED && status == 0) {
        struct sockaddr_in peer;
        int namelen = sizeof peer;
        char text[INET_ADDRSTRLEN] = "";
        CHECK_INT_EQ(uv_tcp_getsockname(&p->st.tcp, (struct sockaddr *)&peer, &namelen), 0);
        inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
        CHECK_STR_EQ(text, "127.0.0.2");
        peer_close(p);
    }
}

static void test_bound_source(void)
{
    struct fixture fx;
    fixture_init(&fx, bound_hook, accept_read);
    struct sockaddr_in src;
    uv_ip4_addr("127.0.0.2", 0, &src);
    fixture_run(&fx, (const struct sockaddr *)&src);
    CHECK_INT_EQ(fx.server.eof, 1);
    fixture_free(&fx);
}

/* ---- STARTTLS-like upgrade, then 1 byte, 100 KiB and 1 MiB echoed back ---- */

static const size_t upgrade_sizes[] = {1, 100 * 1024, 1024 * 1024};

static void upgrade_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                         size_t len)
{
    struct fixture *fx = p->fx;
    struct stream *st = &p->st;
    if (p == &fx->client) {
        if (ev == STREAM_CONNECTED && status == 0) {
            stream_read_start(st);
            CHECK_INT_EQ(stream_write(st, "STARTTLS\r\n", 10), 0);
        } else if (ev == STREAM_DATA && st->ssl == NULL && got_is(p, "220 go\r\n")) {
            buf_free(&p->got);
            CHECK_INT_EQ(stream_tls_client(st, client_ctx, "localhost"), 0);
            CHECK_INT_EQ(stream_tls_client(st, client_ctx, "localhost"), UV_EALREADY);
            CHECK_INT_EQ(stream_write(st, "x", 1), UV_EAGAIN); /* not during the handshake */
        } else if (ev == STREAM_TLS_READY && status == 0) {
            CHECK_INT_EQ(stream_write(st, pattern, upgrade_sizes[0]), 0);
        } else if (ev == STREAM_DATA && st->ssl != NULL && p->got.len >= upgrade_sizes[fx->step]) {
            size_t n = upgrade_sizes[fx->step];
            CHECK_INT_EQ(p->got.len, n);
            CHECK(p->got.len == n && memcmp(p->got.data, pattern, n) == 0);
            buf_free(&p->got);
            if (++fx->step < ARRAY_LEN(upgrade_sizes))
                CHECK_INT_EQ(stream_write(st, pattern, upgrade_sizes[fx->step]), 0);
            else
                peer_close(p);
        }
        return;
    }
    if (ev == STREAM_DATA && st->ssl == NULL && got_is(p, "STARTTLS\r\n")) {
        CHECK_INT_EQ(stream_write(st, "220 go\r\n", 8), 0);
        buf_free(&p->got);
        CHECK_INT_EQ(stream_tls_server(st, server_ctx), 0);
    } else if (ev == STREAM_DATA && st->ssl != NULL) {
        CHECK_INT_EQ(stream_write(st, data, len), 0); /* echo */
    }
}

static void test_starttls_upgrade(void)
{
    struct fixture fx;
    fixture_init(&fx, upgrade_hook, accept_read);
    fixture_run(&fx, NULL);
    CHECK_INT_EQ(fx.step, ARRAY_LEN(upgrade_sizes));
    CHECK_INT_EQ(fx.client.tls_ready, 1);
    CHECK_INT_EQ(fx.client.tls_status, 0);
    CHECK_INT_EQ(fx.server.tls_ready, 1);
    CHECK_INT_EQ(fx.server.tls_status, 0);
    CHECK_STR_EQ(fx.client.version, "TLSv1.3");
    CHECK_STR_EQ(fx.server.version, "TLSv1.3");
    /* The client's close_notify reaches the server as EOF. */
    CHECK_INT_EQ(fx.server.eof, 1);
    CHECK_INT_EQ(fx.server.close_notify, 1);
    CHECK_INT_EQ(fx.server.errors, 0);
    CHECK_INT_EQ(fx.client.errors, 0);
    fixture_free(&fx);
}

/* ---- data the client sends right behind its handshake ---- */

#define EARLY "EHLO right-behind-the-handshake\r\n"

static void aux_on_resume(uv_timer_t *t)
{
    struct fixture *fx = container_of(t, struct fixture, aux);
    fx->in_read_start = 1;
    CHECK_INT_EQ(stream_read_start(&fx->server.st), 0);
    fx->in_read_start = 0;
}

static void early_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                       size_t len)
{
    struct fixture *fx = p->fx;
    struct stream *st = &p->st;
    if (p == &fx->client) {
        if (ev == STREAM_CONNECTED && status == 0) {
            CHECK_INT_EQ(stream_tls_client(st, client_ctx, NULL), 0);
        } else if (ev == STREAM_TLS_READY && status == 0) {
            CHECK_INT_EQ(stream_write(st, EARLY, strlen(EARLY)), 0);
            stream_read_start(st);
        } else if (ev == STREAM_DATA && got_is(p, "250 ok\r\n")) {
            peer_close(p);
        }
        return;
    }
    if (ev == STREAM_TLS_READY && status == 0 && fx->variant) /* the delayed variant */
        uv_timer_start(&fx->aux, aux_on_resume, 30, 0);
    else if (ev == STREAM_DATA && got_is(p, EARLY))
        CHECK_INT_EQ(stream_write(st, "250 ok\r\n", 8), 0);
}

/* The server reads all along (delayed == 0) or only starts reading 30 ms after its handshake. */
static void run_early(int delayed, void (*on_accept)(struct fixture *))
{
    struct fixture fx;
    fixture_init(&fx, early_hook, on_accept);
    fx.variant = (size_t)delayed;
    fixture_run(&fx, NULL);
    CHECK_INT_EQ(fx.server.tls_status, 0);
    CHECK(got_is(&fx.server, EARLY));
    CHECK(got_is(&fx.client, "250 ok\r\n"));
    /* Delayed: the bytes came with the handshake's last flight, so the stream held them. */
    CHECK_INT_EQ(fx.held_deliveries, delayed ? 1 : 0);
    fixture_free(&fx);
}

static void accept_read_tls(struct fixture *fx)
{
    CHECK_INT_EQ(stream_read_start(&fx->server.st), 0);
    CHECK_INT_EQ(stream_tls_server(&fx->server.st, server_ctx), 0);
}

static void test_data_behind_handshake(void)
{
    run_early(0, accept_read_tls);
    run_early(1, accept_tls);
}

/* ---- stream_read_stop/start inside callbacks ---- */

#define STOP_BYTES (300 * 1024)

/* Odd chunks: stop and resume from a timer; even chunks: stop and resume at once. */
static void stop_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                      size_t len)
{
    struct fixture *fx = p->fx;
    struct stream *st = &p->st;
    if (p == &fx->client) {
        if ((ev == STREAM_CONNECTED && status == 0 && !fx->variant) ||
            (ev == STREAM_TLS_READY && status == 0)) {
            stream_read_start(st);
            CHECK_INT_EQ(stream_write(st, pattern, STOP_BYTES), 0);
        } else if (ev == STREAM_CONNECTED && status == 0) {
            CHECK_INT_EQ(stream_tls_client(st, client_ctx, NULL), 0);
        } else if (ev == STREAM_DATA && got_is(p, "OK")) {
            peer_close(p);
        }
        return;
    }
    if (ev == STREAM_TLS_READY && status == 0) {
        stream_read_start(st);
    } else if (ev == STREAM_DATA) {
        fx->stops++;
        stream_read_stop(st);
        if (p->got.len == STOP_BYTES) {
            CHECK_INT_EQ(stream_write(st, "OK", 2), 0);
            stream_read_start(st); /* for the client's EOF */
        } else if (p->chunks % 2 == 1)
            uv_timer_start(&fx->aux, aux_on_resume, 1, 0);
        else
            stream_read_start(st);
    }
}

static void run_stop(int tls)
{
    struct fixture fx;
    fixture_init(&fx, stop_hook, tls ? accept_tls : accept_read);
    fx.variant = (size_t)tls;
    fixture_run(&fx, NULL);
    CHECK_INT_EQ(fx.server.got.len, STOP_BYTES);
    CHECK(fx.server.got.len == STOP_BYTES && memcmp(fx.server.got.data, pattern, STOP_BYTES) == 0);
    CHECK(fx.stops >= 3);
    CHECK(got_is(&fx.client, "OK"));
    /* With TLS one socket read holds several records: the rest was held and handed over by
     * stream_read_start. Without TLS the kernel keeps it. */
    if (tls)
        CHECK(fx.held_deliveries > 0);
    else
        CHECK_INT_EQ(fx.held_deliveries, 0);
    fixture_free(&fx);
}

static void test_read_stop_start(void)
{
    run_stop(0);
    run_stop(1);
}

/* ---- garbage peers ---- */

static void garbage_server_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                                size_t len)
{
    if (p == &p->fx->client && ev == STREAM_CONNECTED && status == 0)
        CHECK_INT_EQ(stream_tls_client(&p->st, client_ctx, "localhost"), 0);
}

static void accept_garbage(struct fixture *fx)
{
    static const char junk[] = "220 this is not TLS at all\r\n";
    CHECK_INT_EQ(stream_write(&fx->server.st, junk, strlen(junk)), 0);
    CHECK_INT_EQ(stream_read_start(&fx->server.st), 0);
}

static void garbage_client_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                                size_t len)
{
    if (p == &p->fx->client && ev == STREAM_CONNECTED && status == 0) {
        stream_read_start(&p->st);
        CHECK_INT_EQ(stream_write(&p->st, "EHLO plain\r\n", 12), 0);
    }
}

static void test_garbage(void)
{
    struct fixture fx;
    fixture_init(&fx, garbage_server_hook, accept_garbage);
    fixture_run(&fx, NULL);
    CHECK_INT_EQ(fx.client.tls_ready, 1);
    CHECK_INT_EQ(fx.client.tls_status, UV_EPROTO);
    CHECK_INT_EQ(fx.client.got.len, 0);
    CHECK_INT_EQ(fx.client.errors, 0); /* the failure is reported once */
    fixture_free(&fx);

    fixture_init(&fx, garbage_client_hook, accept_tls);
    fixture_run(&fx, NULL);
    CHECK_INT_EQ(fx.server.tls_ready, 1);
    CHECK_INT_EQ(fx.server.tls_status, UV_EPROTO);
    CHECK_INT_EQ(fx.server.got.len, 0);
    CHECK(fx.client.eof + fx.client.errors == 1);
    fixture_free(&fx);
}

/* ---- closing with writes in flight ---- */

static void close_writing_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                               size_t len)
{
    struct fixture *fx = p->fx;
    struct stream *st = &p->st;
    if (p != &fx->client)
        return;
    if (ev == STREAM_CONNECTED && status == 0 && fx->variant) {
        CHECK_INT_EQ(stream_tls_client(st, client_ctx, NULL), 0);
    } else if ((ev == STREAM_CONNECTED && status == 0) || (ev == STREAM_TLS_READY && status == 0)) {
        /* More than loopback's socket buffers take at once, so writes are still queued. */
        CHECK_INT_EQ(stream_write(st, pattern, PATTERN_MAX), 0);
        CHECK(st->write_pending >= PATTERN_MAX);
        peer_close(p);
        peer_close(p); /* idempotent */
        CHECK_INT_EQ(stream_write(st, "x", 1), UV_EPIPE);
        CHECK_INT_EQ(stream_read_start(st), 0); /* does nothing now */
    }
}

static void accept_read_or_tls(struct fixture *fx)
{
    if (fx->variant)
        accept_tls(fx);
    else
        accept_read(fx);
}

static void tls_ready_reads_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                                 size_t len)
{
    if (p == &p->fx->server && ev == STREAM_TLS_READY && status == 0)
        stream_read_start(&p->st);
    else
        close_writing_hook(p, ev, status, data, len);
}

static void test_close_while_writing(void)
{
    for (int tls = 0; tls <= 1; tls++) {
        struct fixture fx;
        fixture_init(&fx, tls_ready_reads_hook, accept_read_or_tls);
        fx.variant = (size_t)tls;
        fixture_run(&fx, NULL);
        CHECK_INT_EQ(fx.client.closed, 1); /* on_close ran once */
        CHECK_INT_EQ(fx.server.eof + fx.server.errors, 1);
        CHECK(fx.server.got.len < PATTERN_MAX);
        CHECK(fx.server.got.len == 0 ||
              memcmp(fx.server.got.data, pattern, fx.server.got.len) == 0);
        fixture_free(&fx);
    }
}

/* ---- connect failure ---- */

static void refused_hook(struct peer *p, enum stream_event ev, int status, const char *data,
                         size_t len)
{
}

static void test_connect_refused(void)
{
    struct fixture fx;
    fixture_init(&fx, refused_hook, NULL);
    /* A port that was free a moment ago: bind, learn the port, close. */
    uv_tcp_t probe;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&fx.loop, &probe);
    CHECK_INT_EQ(uv_tcp_bind(&probe, (const struct sockaddr *)&addr, 0), 0);
    int namelen = sizeof addr;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&addr, &namelen);
    uv_close((uv_handle_t *)&probe, fixture_on_handle_closed);

    fx.nstreams = 1;
    CHECK_INT_EQ(stream_connect(&fx.loop, &fx.client.st, (const struct sockaddr *)&addr, NULL,
                                peer_on_event, &fx.client),
                 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(fx.client.connected, 1);
    CHECK_INT_EQ(fx.client.connect_status, UV_ECONNREFUSED);
    CHECK_INT_EQ(fx.client.closed, 1);
    CHECK_INT_EQ(uv_loop_close(&fx.loop), 0);
    fixture_free(&fx);
}

/* ---- contexts, and a self-signed certificate for the tests ---- */

static char tmpdir[] = "/tmp/test_stream.XXXXXX";
static char cert_path[64], key_path[64], other_key_path[64];

static void write_key(EVP_PKEY *key, const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    if (f != NULL)
        fclose(f);
}

/* Writes cert_path (CN=localhost, signed by its own key), key_path and an unrelated key. */
static void make_cert(void)
{
    CHECK(mkdtemp(tmpdir) != NULL);
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir);
    snprintf(other_key_path, sizeof other_key_path, "%s/other.pem", tmpdir);

    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    CHECK(X509_sign(x, key, EVP_sha256()) > 0);

    FILE *f = fopen(cert_path, "w");
    CHECK(f != NULL && PEM_write_X509(f, x) == 1);
    if (f != NULL)
        fclose(f);
    write_key(key, key_path);
    write_key(other, other_key_path);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void remove_cert(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(other_key_path);
    rmdir(tmpdir);
}

static void test_contexts(void)
{
    struct buf err = BUF_INIT;
    char missing[80];
    snprintf(missing, sizeof missing, "%s/missing.pem", tmpdir);
    CHECK(tls_server_ctx_new(missing, key_path, &err) == NULL);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, missing) != NULL);
    CHECK(strstr(err.data, "No such file") != NULL);
    buf_free(&err);

    CHECK(tls_server_ctx_new(cert_path, other_key_path, &err) == NULL);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, other_key_path) != NULL);
    CHECK(strstr(err.data, "mismatch") != NULL);
    buf_free(&err);

    /* A key file in the certificate's place. */
    CHECK(tls_server_ctx_new(key_path, key_path, &err) == NULL);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, key_path) != NULL);
    buf_free(&err);

    server_ctx = tls_server_ctx_new(cert_path, key_path, &err);
    client_ctx = tls_client_ctx_new(&err);
    CHECK(server_ctx != NULL && client_ctx != NULL);
    CHECK_INT_EQ(err.len, 0);
    CHECK_INT_EQ(SSL_CTX_get_min_proto_version(server_ctx), TLS1_2_VERSION);
    CHECK_INT_EQ(SSL_CTX_get_min_proto_version(client_ctx), TLS1_2_VERSION);
    buf_free(&err);
}

int main(void)
{
    pattern = xmalloc(PATTERN_MAX);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < PATTERN_MAX; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        pattern[i] = (char)x;
    }
    make_cert();
    test_contexts();
    if (server_ctx != NULL && client_ctx != NULL) {
        test_plain_echo();
        test_bound_source();
        test_connect_refused();
        test_starttls_upgrade();
        test_data_behind_handshake();
        test_read_stop_start();
        test_garbage();
        test_close_while_writing();
    }
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    remove_cert();
    free(pattern);
    return check_report("test_stream");
}
