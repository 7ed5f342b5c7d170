/*
 * `sluice audit-mx`, the DNS side: questions through lib/dns, each waited for under the audit's
 * overall deadline on a loop of the audit's own. To the configured resolver, recursion desired; or
 * straight to one authoritative server, recursion off (DNS_MODE_NO_RECURSION). Nothing is cached
 * (DNS_MODE_NO_CACHE), since the point is to see what each server says.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "lib/dns.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_audit_mx.h"

#define AUDIT_SERVERS_MAX 8 /* entries of a server list taken */

struct audit_dns {
    uv_loop_t loop;
    struct dns_resolver *r; /* NULL once the deadline passed */
    const struct timespec *deadline;
};

/* Milliseconds left before the deadline (0 when passed). */
long audit_ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

struct audit_dns *audit_dns_new(const char *servers_csv, int recurse, unsigned timeout_ms,
                                const struct timespec *deadline)
{
    char *csv = servers_csv != NULL ? xstrdup(servers_csv) : NULL;
    const char *servers[AUDIT_SERVERS_MAX];
    size_t n = 0;
    for (char *save = NULL, *s = csv != NULL ? strtok_r(csv, ",", &save) : NULL;
         s != NULL && n < AUDIT_SERVERS_MAX; s = strtok_r(NULL, ",", &save))
        servers[n++] = s;
    struct audit_dns *dns = xcalloc(1, sizeof *dns);
    dns->deadline = deadline;
    uv_loop_init(&dns->loop);
    /* lib/dns spreads its budget over two rounds of every server: timeout_ms stays one try's. */
    int err = 0;
    dns->r = dns_resolver_new(&dns->loop, servers, n, timeout_ms * 3 * (n > 0 ? n : 1), &err);
    free(csv);
    if (dns->r == NULL || (servers_csv != NULL && n == 0)) {
        audit_dns_free(dns);
        return NULL;
    }
    dns_resolver_set_mode(dns->r, DNS_MODE_NO_CACHE | (recurse ? 0 : DNS_MODE_NO_RECURSION));
    return dns;
}

void audit_dns_free(struct audit_dns *dns)
{
    if (dns == NULL)
        return;
    if (dns->r != NULL)
        dns_resolver_free(dns->r);
    uv_run(&dns->loop, UV_RUN_DEFAULT); /* the resolver's handles close */
    uv_loop_close(&dns->loop);
    free(dns);
}

/* One question's answer, as its callback hands it over. */
struct answer {
    int done;
    enum dns_status status;
    void *out; /* the audit's set it fills */
};

static void deadline_on_timer(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until a's callback ran; at the deadline every question is cancelled (its
 * callback runs with DNS_CANCELLED) and the channel stays closed. */
static void wait_answer(struct audit_dns *dns, struct answer *a)
{
    uv_timer_t timer;
    int expired = 0;
    uv_timer_init(&dns->loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, deadline_on_timer, (uint64_t)audit_ms_left(dns->deadline), 0);
    while (!a->done && !expired)
        uv_run(&dns->loop, UV_RUN_ONCE);
    if (!a->done) {
        dns_resolver_free(dns->r);
        dns->r = NULL;
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&dns->loop, UV_RUN_NOWAIT);
}

/* Whether a question may go out: a channel whose deadline passed answers none. */
static int may_ask(struct audit_dns *dns, struct answer *a, void *out)
{
    *a = (struct answer){.status = DNS_CANCELLED, .out = out};
    return dns->r != NULL && audit_ms_left(dns->deadline) > 0;
}

const char *audit_dns_status(int status)
{
    switch (status) {
    case DNS_OK:
        return "ok";
    case DNS_NODATA:
        return "no such record";
    case DNS_NXDOMAIN:
        return "no such name";
    case DNS_CANCELLED:
        return "no answer in time";
    case DNS_TEMPFAIL:
        return "no answer (timeout, refused or server failure)";
    default:
        return dns_status_name(status);
    }
}

static void ns_on_answer(void *arg, enum dns_status status, const char *const *names, size_t n)
{
    struct answer *a = arg;
    a->done = 1;
    a->status = status;
    for (size_t i = 0; i < n; i++)
        audit_names_add(a->out, names[i]);
}

int audit_dns_ns(struct audit_dns *dns, const char *domain, struct audit_names *out)
{
    struct answer a;
    out->n = 0;
    if (may_ask(dns, &a, out) && dns_resolve_ns(dns->r, domain, ns_on_answer, &a) == 0)
        wait_answer(dns, &a);
    return a.status;
}

/* The MX records as the server gave them: a domain without any (an implicit MX) has none. */
static void mx_on_answer(void *arg, const struct dns_mx_result *res)
{
    struct answer *a = arg;
    a->done = 1;
    a->status = res->implicit ? DNS_NODATA : res->status;
    for (size_t i = 0; !res->implicit && i < res->nhosts; i++)
        audit_mx_set_add(a->out, res->hosts[i].name, res->hosts[i].pref);
}

int audit_dns_mx(struct audit_dns *dns, const char *domain, struct audit_mx_set *out)
{
    struct answer a;
    out->n = 0;
    if (may_ask(dns, &a, out) && dns_resolve_mx(dns->r, domain, mx_on_answer, &a) == 0)
        wait_answer(dns, &a);
    return a.status;
}

static void addrs_on_answer(void *arg, enum dns_status status, const struct dns_addr *addrs,
                            size_t n)
{
    struct answer *a = arg;
    a->done = 1;
    a->status = status;
    for (size_t i = 0; i < n; i++) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(addrs[i].family, &addrs[i].u, text, sizeof text);
        audit_names_add(a->out, text);
    }
}

int audit_dns_addrs(struct audit_dns *dns, const char *name, struct audit_names *out)
{
    struct answer a;
    out->n = 0;
    if (may_ask(dns, &a, out) && dns_resolve_addrs(dns->r, name, addrs_on_answer, &a) == 0)
        wait_answer(dns, &a);
    return a.status;
}
