/*
 * A real redis-server for unit tests: started as the test's child on a free loopback port, with
 * its working directory in a fresh temporary one and nothing saved to disk, stopped at the end (or
 * with the test: PR_SET_PDEATHSIG), and started again on the same port to show a return. Include
 * in one .c per test.
 */
#ifndef SLUICE_TEST_REDIS_H
#define SLUICE_TEST_REDIS_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REDIS_SERVER "/usr/bin/redis-server"

struct redis {
    pid_t pid;
    int port;
    char dir[64];     /* its working directory */
    char address[32]; /* "127.0.0.1:port", for cluster.redis */
};

static inline int redis_free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;
    if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(s, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    close(s);
    return port;
}

static inline int redis_accepts(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int ok = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(s);
    return ok;
}

/* (Re)starts redis-server on r->port (0: a free one) and waits until it accepts; 0 or -1. */
static inline int redis_start(struct redis *r)
{
    if (r->dir[0] == '\0') {
        snprintf(r->dir, sizeof(r->dir), "/tmp/sluice-test-redis-XXXXXX");
        if (mkdtemp(r->dir) == NULL)
            return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = r->port > 0 ? r->port : redis_free_port();
        char portarg[16];
        snprintf(portarg, sizeof(portarg), "%d", port);
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
            execl(REDIS_SERVER, REDIS_SERVER, "--port", portarg, "--bind", "127.0.0.1", "--dir",
                  r->dir, "--save", "", "--appendonly", "no", (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 500; i++) { /* up to ~5 s */
            if (redis_accepts(port)) {
                r->pid = pid;
                r->port = port;
                snprintf(r->address, sizeof(r->address), "127.0.0.1:%d", port);
                return 0;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break; /* it exited: the port was taken meanwhile */
            usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (r->port > 0)
            usleep(100000); /* the same port again: give it a moment */
    }
    return -1;
}

/* Kills it (it keeps nothing: the next start is empty); its directory stays for a restart. */
static inline void redis_stop(struct redis *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = -1;
}

/* Stops it and removes its directory. */
static inline void redis_cleanup(struct redis *r)
{
    redis_stop(r);
    if (r->dir[0] != '\0')
        rmdir(r->dir);
}

#endif
