/*
 * Fuzzes a whole inbound SMTP session: a real session (mta/server/smtp_server.h, as the listener
 * starts it) on a loopback TCP connection inside this process, with a real spool in a temporary
 * directory (/dev/shm when there is one, so nothing waits on a disk) and DKIM signing (Ed25519) of
 * the mail from example.org that a trusted client relays. The input is what a client sends, cut
 * into chunks; each chunk is written and the loop is run until the session has read it all and
 * gone quiet (every reply read, no disk work in flight), so commands arrive pipelined in one read,
 * split across reads, or one by one as the input says. Then the client resets the connection and
 * the loop must close with no handle left.
 *
 * Checked, besides ASan/UBSan and leaks: the session never stalls with input left unread in the
 * socket or replies unsent while nothing is in flight; every reply line is well formed (three
 * digits, '-' or ' ', printable ASCII, at most 512 octets with its CRLF, RFC 5321 §4.5.3.1.5) and
 * its code agrees within a multi-line reply; there are never more replies than the banner, one per
 * line sent and a last 421; after the session, the spool's queue holds exactly the messages
 * answered "250 ... queued as ID", each one whole, and tmp/ holds nothing (an aborted message
 * leaves no file).
 *
 * Input: byte 0 picks the listener (bit 0: inbound, else submission) and the client address (bit
 * 1: 127.0.0.2, a stranger; else 127.0.0.1, a trusted network that may relay). Then chunks: a
 * length byte and that many bytes (0: the rest of the input).
 * With SLUICE_FUZZ_TRACE set in the environment, the chunks sent and the replies read are printed
 * (to see what a crashing input does).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/config.h"
#include "lib/log.h"
#include "mta/config_load.h"
#include "mta/dkim/dkim.h"
#include "mta/dkim/dkim_key.h"
#include "mta/server/smtp_server.h"
#include "spool/spool.h"
#include "tests/fuzz/fuzz.h"
#include "tests/support/test_dirs.h"

#define REPLY_LINE_MAX 512     /* octets with CRLF, RFC 5321 §4.5.3.1.5 */
#define QUIET_DEADLINE_MS 5000 /* a session that does not settle in this time is stuck */
#define QUEUED_MAX 1024        /* messages one input can have accepted */

/* Linux's struct tcp_info goes on after the fields glibc declares (uv.h brings in glibc's header,
 * which cannot be mixed with <linux/tcp.h>); the byte counts are there since Linux 4.19. */
struct tcp_info_linux {
    struct tcp_info glibc; /* up to tcpi_total_retrans */
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
    uint64_t delivery_rate, busy_time, rwnd_limited, sndbuf_limited;
    uint32_t delivered, delivered_ce;
    uint64_t bytes_sent;
};
_Static_assert(offsetof(struct tcp_info_linux, bytes_received) == 128, "linux/tcp.h layout");
_Static_assert(offsetof(struct tcp_info_linux, bytes_sent) == 200, "linux/tcp.h layout");

/* %s: the DKIM key's path. Mail from example.org is signed when the session may relay. */
static const char config_format[] =
    "server:\n"
    "  hostname: mx.fuzz.example\n"
    "  spool: /nonexistent\n"
    "listeners:\n"
    "  - {name: submission, address: \"127.0.0.1:2525\", role: submission}\n"
    "  - {name: inbound, address: \"127.0.0.1:2526\", role: inbound}\n"
    "relay:\n"
    "  trusted_networks: [\"127.0.0.1/32\"]\n"
    "domains:\n"
    "  example.com:\n"
    "  example.org:\n"
    "dkim:\n"
    "  - {domain: example.org, selector: fuzz, key: \"%s\", algorithm: ed25519-sha256}\n"
    "limits:\n"
    "  max_message_size: 8k\n"
    "  max_recipients_per_message: 3\n"
    "  max_errors: 5\n";

static struct config *cfg;
static struct dkim_signer_set *signers;
static char base[64], spool_dir[96], key_path[96];
static int trace;

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_smtp_session: %s\n", why);
    abort();
}

/* One run: the loop, the server side, and the client's end of the connection. */
struct run {
    uv_loop_t loop;
    uv_tcp_t listener;
    const char *listener_name;
    struct smtp_server srv;
    int client;
    /* the client's view */
    const uint8_t *out; /* the chunk being written */
    size_t out_len;
    uint64_t written, read; /* bytes in each direction */
    int eof;                /* the server closed the connection */
    char line[REPLY_LINE_MAX + 1];
    size_t line_len;
    int multi_code;   /* code of the multi-line reply in progress, 0 outside one */
    unsigned replies; /* final reply lines */
    int last_code;    /* of the last final line */
    unsigned crlfs;   /* CRLFs sent: lines the session may answer */
    int prev_cr;      /* the last byte sent was CR */
    char queued[QUEUED_MAX][SPOOL_ID_MAX + 1];
    size_t nqueued;
};

static void remove_files(const char *sub)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", spool_dir, sub);
    test_dir_clear(path);
}

static void cleanup(void)
{
    static const char *const subs[] = {"tmp", "queue", "state", "corrupt"};
    char path[160];
    for (size_t i = 0; i < 4; i++) {
        remove_files(subs[i]);
        snprintf(path, sizeof path, "%s/%s", spool_dir, subs[i]);
        rmdir(path);
    }
    rmdir(spool_dir);
    unlink(key_path);
    rmdir(base);
    dkim_signer_set_unref(signers);
    config_unref(cfg);
}

static void setup(void)
{
    if (fuzz_tmpdir(base, sizeof base, "session") < 0)
        fail("cannot make a temporary directory");
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", base);
    snprintf(key_path, sizeof key_path, "%s/dkim.key", base);
    struct buf record = BUF_INIT, err = BUF_INIT, text = BUF_INIT;
    if (dkim_key_generate(key_path, DKIM_ALG_ED25519_SHA256, 0, "example.org", "fuzz",
                          DKIM_KEY_OWNER_ONLY, &record, &err) < 0)
        fail(err.data);
    buf_printf(&text, config_format, key_path);
    if (config_load_string(text.data, text.len, "fuzz.yaml", &cfg, &err) < 0 ||
        (signers = config_dkim_signers(cfg, &err)) == NULL)
        fail(err.data);
    buf_free(&record);
    buf_free(&text);
    /* Every line the sessions log is made and escaped as usual, then thrown away. */
    if (log_open("/dev/null") < 0)
        fail("cannot open /dev/null");
    trace = getenv("SLUICE_FUZZ_TRACE") != NULL;
    atexit(cleanup);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void listener_on_connection(uv_stream_t *server, int status)
{
    struct run *r = server->data;
    if (status < 0)
        fail("accept failed");
    smtp_session_accept(&r->srv, server, r->listener_name);
}

/* ---- the client's view of the replies ---- */

static void reply_line(struct run *r)
{
    const char *l = r->line;
    size_t len = r->line_len;
    if (trace)
        fprintf(stderr, "S: %.*s\n", (int)len, l);
    if (len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
        l[2] > '9' || (len > 3 && l[3] != ' ' && l[3] != '-'))
        fail("a reply line without a code");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)l[i] < 0x20 || (unsigned char)l[i] > 0x7e)
            fail("a reply with a byte outside printable ASCII");
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (r->multi_code != 0 && code != r->multi_code)
        fail("the lines of a reply have different codes");
    if (len > 3 && l[3] == '-') {
        r->multi_code = code;
        return;
    }
    r->multi_code = 0;
    r->replies++;
    r->last_code = code;
    static const char queued[] = "250 2.0.0 Ok: queued as ";
    if (len > sizeof queued - 1 && memcmp(l, queued, sizeof queued - 1) == 0) {
        size_t id_len = len - (sizeof queued - 1);
        if (id_len > SPOOL_ID_MAX || r->nqueued == QUEUED_MAX)
            fail("a queue id too long, or too many messages");
        memcpy(r->queued[r->nqueued], l + sizeof queued - 1, id_len);
        r->queued[r->nqueued++][id_len] = '\0';
    }
}

static void client_read(struct run *r)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(r->client, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            r->eof = 1; /* closed, or reset while we still wrote */
            return;
        }
        r->read += (size_t)n;
        for (ssize_t i = 0; i < n; i++) {
            char c = chunk[i];
            if (c == '\n' && r->line_len > 0 && r->line[r->line_len - 1] == '\r') {
                r->line_len--;
                reply_line(r);
                r->line_len = 0;
            } else if (c == '\n') {
                fail("a reply line ended by a bare LF");
            } else if (r->line_len + 2 > sizeof r->line) {
                fail("a reply line over 512 octets with its CRLF");
            } else {
                r->line[r->line_len++] = c;
            }
        }
    }
}

static void client_write(struct run *r)
{
    while (r->out_len > 0 && !r->eof) {
        ssize_t n = send(r->client, r->out, r->out_len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            r->eof = 1; /* the session closed: the rest is never read */
            return;
        }
        if (trace)
            fprintf(stderr, "C: %.*s\n", (int)n, (const char *)r->out);
        for (ssize_t i = 0; i < n; i++) {
            r->crlfs += r->prev_cr && r->out[i] == '\n';
            r->prev_cr = r->out[i] == '\r';
        }
        r->written += (size_t)n;
        r->out += n;
        r->out_len -= (size_t)n;
    }
}

/* ---- the server's side, seen through libuv and the kernel ---- */

struct session_find {
    const uv_handle_t *listener;
    uv_os_fd_t fd;
};

static void find_session(uv_handle_t *h, void *arg)
{
    struct session_find *f = arg;
    if (h->type == UV_TCP && h != f->listener && !uv_is_closing(h))
        uv_fileno(h, &f->fd);
}

/* The session's socket, or -1 when it is closed. */
static int session_fd(struct run *r)
{
    struct session_find f = {(const uv_handle_t *)&r->listener, -1};
    uv_walk(&r->loop, find_session, &f);
    return f.fd;
}

/* 1 when the session has read everything sent, everything it wrote has been read, and no request
 * (disk work, a write) is in flight. */
static int quiet(struct run *r)
{
    if (r->out_len > 0 && !r->eof)
        return 0;
    if (r->loop.active_reqs.count != 0)
        return 0;
    int fd = session_fd(r);
    if (fd < 0)
        return 1;
    struct tcp_info_linux ti;
    socklen_t len = sizeof ti;
    int unread = 0;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || len < sizeof ti ||
        ioctl(fd, FIONREAD, &unread) < 0)
        fail("no TCP_INFO byte counts (Linux 4.19 or later is needed)");
    if (r->eof)
        return unread == 0;
    return unread == 0 && ti.bytes_received == r->written && ti.bytes_sent == r->read;
}

/* One turn of both sides: the client writes what it can, the loop runs what is ready (a finished
 * write calls back only in the turn after), the client reads. From the fifth turn on, first waits
 * up to 1 ms for the loop (sockets, the thread pool) or for the client's socket. */
static void turn(struct run *r, unsigned n)
{
    if (n >= 4) {
        struct pollfd p[2] = {{uv_backend_fd(&r->loop), POLLIN, 0}, {r->client, POLLIN, 0}};
        poll(p, 2, 1);
    }
    client_write(r);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    client_read(r);
}

/* Writes the chunk and runs the loop until the session is quiet. */
static void pump(struct run *r, const uint8_t *data, size_t len)
{
    r->out = data;
    r->out_len = len;
    uint64_t deadline = now_ms() + QUIET_DEADLINE_MS;
    for (unsigned n = 0;; n++) {
        turn(r, n);
        if (quiet(r))
            return;
        if (now_ms() > deadline)
            fail("the session is stuck: input unread or replies unsent, and nothing to wait for");
    }
}

static int connect_client(struct run *r, int stranger)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    int len = sizeof addr;
    if (uv_tcp_getsockname(&r->listener, (struct sockaddr *)&addr, &len) < 0)
        fail("no listener address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(stranger ? 0x7f000002 : 0x7f000001);
    int one = 1;
    /* Reset at close: no TIME_WAIT left behind by thousands of runs a second. */
    struct linger lg = {1, 0};
    /* Each chunk leaves at once, never held back by Nagle for the session's delayed ACK. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&from, sizeof from) < 0 ||
        (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS))
        fail("cannot connect over loopback");
    return fd;
}

/* Closes everything; the loop must end with no handle and no request left. */
static void teardown(struct run *r)
{
    close(r->client);
    uint64_t deadline = now_ms() + QUIET_DEADLINE_MS;
    r->client = -1;
    for (unsigned n = 0; r->srv.nsessions > 0 || r->loop.active_reqs.count > 0; n++) {
        if (now_ms() > deadline)
            fail("the session outlives its connection");
        if (n >= 4) {
            struct pollfd p = {uv_backend_fd(&r->loop), POLLIN, 0};
            poll(&p, 1, 1);
        }
        uv_run(&r->loop, UV_RUN_NOWAIT);
    }
    uv_close((uv_handle_t *)&r->listener, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (spool_pending(r->srv.spool) != 0)
        fail("spool work left after the session");
    spool_close(r->srv.spool);
    if (uv_loop_close(&r->loop) != 0)
        fail("a handle is left open after the session");
}

/* Crosses a committed message off the list of those answered 250. */
static void on_spooled(const struct spool_entry *e, void *arg)
{
    struct run *r = arg;
    for (size_t i = 0; i < r->nqueued; i++)
        if (strcmp(r->queued[i], e->id) == 0) {
            r->queued[i][0] = '\0'; /* found once */
            return;
        }
    fail("a message in the queue that was never answered 250");
}

/* The queue holds exactly the messages answered 250, each whole; tmp/ is empty. */
static void check_spool(struct run *r)
{
    struct buf err = BUF_INIT;
    char path[160];
    snprintf(path, sizeof path, "%s/tmp", spool_dir);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            fail("a half-written message left in tmp/");
    if (d != NULL)
        closedir(d);
    size_t nqueued = r->nqueued;
    int n = spool_scan(spool_dir, on_spooled, r, &err);
    if (n < 0 || (size_t)n != nqueued)
        fail("a message answered 250 is not in the queue, whole");
    snprintf(path, sizeof path, "%s/queue", spool_dir);
    if (test_dir_count(path) != n)
        fail("a file in the queue that is not a whole message");
    buf_free(&err);
    remove_files("queue");
    remove_files("state");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg == NULL)
        setup();
    if (size < 1)
        return 0;
    static struct run r;
    memset(&r, 0, sizeof r);
    struct buf err = BUF_INIT;
    if (uv_loop_init(&r.loop) < 0 || spool_open(&r.loop, spool_dir, &r.srv.spool, &err) < 0)
        fail("cannot open the spool");
    r.srv.loop = &r.loop;
    r.srv.cfg = cfg;
    r.srv.dkim = signers;
    r.listener_name = data[0] & 1 ? "inbound" : "submission";
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    uv_tcp_init(&r.loop, &r.listener);
    r.listener.data = &r;
    if (uv_tcp_bind(&r.listener, (struct sockaddr *)&any, 0) < 0 ||
        uv_listen((uv_stream_t *)&r.listener, 8, listener_on_connection) < 0)
        fail("cannot listen on loopback");
    r.client = connect_client(&r, data[0] & 2);

    pump(&r, NULL, 0); /* the banner */
    for (size_t off = 1; off < size;) {
        size_t len = data[off++];
        if (len == 0 || len > size - off)
            len = size - off;
        pump(&r, data + off, len);
        off += len;
    }
    /* Replies: the banner, at most one per line, and a last 421 when the session gave up. */
    if (r.replies > 1 + r.crlfs + (r.eof && r.last_code == 421))
        fail("more replies than lines sent");
    teardown(&r);
    check_spool(&r);
    buf_free(&err);
    return 0;
}
