/*
 * A real dnsmasq for unit tests: started on a free loopback port as the test's child, serving the
 * records passed as dnsmasq options for names under .test (and whatever --local zones the test
 * adds), and killed at the end (or with the test: PR_SET_PDEATHSIG); plus what tests that wait on
 * DNS answers share: a resolver asking it, running the loop with a bound. Include in one .c per
 * test.
 */
#ifndef SLUICE_TEST_DNSMASQ_H
#define SLUICE_TEST_DNSMASQ_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "lib/dns.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define DNSMASQ_ARGS_MAX 128

struct dnsmasq {
    pid_t pid;
    char server[32]; /* "127.0.0.1:port", for dns_resolver_new */
};

/* A port free for both UDP and TCP, as dnsmasq listens on both; -1 if none was found. */
static inline int dnsmasq_free_port(void)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        int t = socket(AF_INET, SOCK_STREAM, 0);
        int port = -1;
        if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
            bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
            port = ntohs(sin.sin_port);
        close(u);
        close(t);
        if (port > 0)
            return port;
    }
    return -1;
}

/* Sends one A query for "a.test" and waits up to 100 ms for any reply. */
static inline int dnsmasq_answers(int port)
{
    static const unsigned char query[] = {0x12, 0x34, 1, 0,   0,   1,   0,   0, 0, 0, 0, 0,
                                          1,    'a',  4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    unsigned char reply[512];
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sendto(s, query, sizeof(query), 0, (struct sockaddr *)&sin, sizeof(sin));
    ssize_t n = recv(s, reply, sizeof(reply), 0);
    close(s);
    return n >= 12 && reply[0] == 0x12 && reply[1] == 0x34;
}

/* In the child: runs dnsmasq on `port` with the common options and then `records`. */
static inline void dnsmasq_exec(int port, const char *const *records)
{
    static char portarg[32];
    static const char *const common[] = {
        DNSMASQ,         "--no-daemon", "--listen-address=127.0.0.1", "--bind-interfaces",
        "--no-resolv",   "--no-hosts",  "--conf-file=/dev/null",      "--pid-file",
        "--local=/test/"};
    char *argv[DNSMASQ_ARGS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        argv[n++] = (char *)common[i];
    snprintf(portarg, sizeof(portarg), "--port=%d", port);
    argv[n++] = portarg;
    for (size_t i = 0; records[i] != NULL && n < DNSMASQ_ARGS_MAX - 1; i++)
        argv[n++] = (char *)records[i];
    argv[n] = NULL;
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    execv(DNSMASQ, argv);
    _exit(127);
}

/* Starts dnsmasq serving `records` (dnsmasq options, NULL-terminated) and waits until it answers;
 * returns 0 or -1. */
static inline int dnsmasq_start(struct dnsmasq *d, const char *const *records)
{
    d->pid = -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = dnsmasq_free_port();
        if (port < 0)
            return -1;
        pid_t pid = fork();
        if (pid == 0)
            dnsmasq_exec(port, records);
        for (int i = 0; i < 50; i++) { /* up to ~5 s */
            if (dnsmasq_answers(port)) {
                d->pid = pid;
                snprintf(d->server, sizeof(d->server), "127.0.0.1:%d", port);
                return 0;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break; /* it exited: most likely the port was taken meanwhile */
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

/* Stops dnsmasq (SIGTERM, then SIGKILL after 2 s); a no-op once stopped. */
static inline void dnsmasq_stop(struct dnsmasq *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
            d->pid = -1;
            return;
        }
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = -1;
}

/* A loopback UDP "DNS server" that never answers: questions to it only time out. Writes its
 * "127.0.0.1:port" to server[size] and returns the socket to close at the end, or -1. */
static inline int dnsmasq_silent_server(char *server, size_t size)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(s, (struct sockaddr *)&sin, &len) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    snprintf(server, size, "127.0.0.1:%d", ntohs(sin.sin_port));
    return s;
}

static inline void dnsmasq_on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs `loop` until *done becomes non-zero or `ms` pass; returns *done. */
static inline int dnsmasq_run_until(uv_loop_t *loop, const int *done, unsigned ms)
{
    uv_timer_t guard;
    int expired = 0;
    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, dnsmasq_on_guard, ms, 0);
    while (!*done && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *done;
}

/* A resolver on `loop` that asks only `server` (a dnsmasq's, or dnsmasq_silent_server's), each
 * question bounded by timeout_ms; NULL, said on standard error, when it cannot be made. */
static inline struct dns_resolver *dnsmasq_resolver(uv_loop_t *loop, const char *server,
                                                    unsigned timeout_ms)
{
    int err = 0;
    struct dns_resolver *r = dns_resolver_new(loop, &server, 1, timeout_ms, &err);
    if (r == NULL)
        fprintf(stderr, "no resolver for %s: %s\n", server, strerror(-err));
    return r;
}

/* A resolver on `loop` whose only server never answers (dnsmasq_silent_server): every question
 * fails after timeout_ms. *sock is that server's socket, to close after dns_resolver_free; NULL,
 * said on standard error, when either cannot be made. */
static inline struct dns_resolver *dnsmasq_silent_resolver(uv_loop_t *loop, unsigned timeout_ms,
                                                           int *sock)
{
    char server[32];
    *sock = dnsmasq_silent_server(server, sizeof server);
    if (*sock < 0) {
        fprintf(stderr, "no silent DNS server\n");
        return NULL;
    }
    struct dns_resolver *r = dnsmasq_resolver(loop, server, timeout_ms);
    if (r == NULL) {
        close(*sock);
        *sock = -1;
    }
    return r;
}

/* Starts dnsmasq serving `records` (as dnsmasq_start) and returns a resolver on `loop` that asks
 * it (as dnsmasq_resolver); NULL, said on standard error and with no server left running, when
 * either fails. The test ends with dns_resolver_free and dnsmasq_stop. */
static inline struct dns_resolver *dnsmasq_start_resolver(struct dnsmasq *d, uv_loop_t *loop,
                                                          const char *const *records,
                                                          unsigned timeout_ms)
{
    if (dnsmasq_start(d, records) < 0) {
        fprintf(stderr, "could not start %s\n", DNSMASQ);
        return NULL;
    }
    struct dns_resolver *r = dnsmasq_resolver(loop, d->server, timeout_ms);
    if (r == NULL)
        dnsmasq_stop(d);
    return r;
}

/* Ends a test's DNS: frees r (NULL when already freed), stops dnsmasq, runs `loop` until the
 * closes are done and closes it. Returns uv_loop_close's result: 0 when no handle was left. */
static inline int dnsmasq_end(struct dnsmasq *d, uv_loop_t *loop, struct dns_resolver *r)
{
    dns_resolver_free(r);
    dnsmasq_stop(d);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

#endif
