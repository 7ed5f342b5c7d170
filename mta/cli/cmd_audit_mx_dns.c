/*
 * `sluice audit-mx`, the DNS side: blocking c-ares questions to a chosen server set, recursive (the
 * configured resolver) or not (one authoritative server asked directly, RD off), each waited for
 * under the audit's overall deadline. Only NS, MX, A and AAAA are needed; nothing is cached, since
 * the point is to see what each server says.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include <ares.h>

#include "lib/xalloc.h"
#include "mta/cli/cmd_audit_mx.h"

struct audit_dns {
    ares_channel channel;
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
    static int library_ready;
    if (!library_ready && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return NULL;
    library_ready = 1;
    struct ares_options opts = {0};
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | (recurse ? 0 : ARES_FLAG_NORECURSE);
    opts.timeout = (int)timeout_ms;
    opts.tries = 2;
    struct audit_dns *dns = xcalloc(1, sizeof *dns);
    dns->deadline = deadline;
    if (ares_init_options(&dns->channel, &opts,
                          ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
        free(dns);
        return NULL;
    }
    if (servers_csv != NULL &&
        ares_set_servers_ports_csv(dns->channel, servers_csv) != ARES_SUCCESS) {
        audit_dns_free(dns);
        return NULL;
    }
    return dns;
}

void audit_dns_free(struct audit_dns *dns)
{
    if (dns == NULL)
        return;
    ares_destroy(dns->channel);
    free(dns);
}

/* One question's answer, as the callback hands it over. */
struct answer {
    int done;
    int status; /* ARES_SUCCESS, ARES_ENODATA, ARES_ENOTFOUND, ... */
    unsigned char *abuf;
    int alen;
};

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct answer *a = arg;
    (void)timeouts;
    a->done = 1;
    a->status = status;
    if (status == ARES_SUCCESS && abuf != NULL && alen > 0) {
        a->abuf = xmalloc((size_t)alen);
        memcpy(a->abuf, abuf, (size_t)alen);
        a->alen = alen;
    }
}

/* Asks one question and waits for its answer until the deadline (then it is cancelled). */
static void ask(struct audit_dns *dns, const char *name, int type, struct answer *a)
{
    *a = (struct answer){0, ARES_ETIMEOUT, NULL, 0};
    ares_query(dns->channel, name, ns_c_in, type, on_answer, a);
    /* Each round waits at most for c-ares's next timeout; c-ares gives up after its tries. */
    for (int rounds = 0; !a->done && rounds < 10000; rounds++) {
        long left = audit_ms_left(dns->deadline);
        if (left == 0) {
            ares_cancel(dns->channel);
            break;
        }
        fd_set readers, writers;
        FD_ZERO(&readers);
        FD_ZERO(&writers);
        int nfds = ares_fds(dns->channel, &readers, &writers);
        struct timeval most = {left / 1000, (left % 1000) * 1000}, tv;
        struct timeval *wait = ares_timeout(dns->channel, &most, &tv);
        if (nfds > 0 || wait != NULL)
            select(nfds, &readers, &writers, NULL, wait);
        ares_process(dns->channel, &readers, &writers);
    }
    if (!a->done) { /* ares_cancel calls back; this only guards against a silent channel */
        a->done = 1;
        a->status = ARES_ETIMEOUT;
    }
}

const char *audit_dns_status(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return "ok";
    case ARES_ENODATA:
        return "no such record";
    case ARES_ENOTFOUND:
        return "no such name";
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:
        return "no answer in time";
    case ARES_EREFUSED:
        return "refused";
    case ARES_ESERVFAIL:
        return "server failure";
    default:
        return ares_strerror(status);
    }
}

int audit_dns_ns(struct audit_dns *dns, const char *domain, struct audit_names *out)
{
    struct answer a;
    struct hostent *host = NULL;
    out->n = 0;
    ask(dns, domain, ns_t_ns, &a);
    if (a.status == ARES_SUCCESS)
        a.status = ares_parse_ns_reply(a.abuf, a.alen, &host);
    for (size_t i = 0; a.status == ARES_SUCCESS && host->h_aliases[i] != NULL; i++)
        audit_names_add(out, host->h_aliases[i]);
    if (host != NULL)
        ares_free_hostent(host);
    free(a.abuf);
    return a.status;
}

int audit_dns_mx(struct audit_dns *dns, const char *domain, struct audit_mx_set *out)
{
    struct answer a;
    struct ares_mx_reply *mx = NULL;
    out->n = 0;
    ask(dns, domain, ns_t_mx, &a);
    if (a.status == ARES_SUCCESS)
        a.status = ares_parse_mx_reply(a.abuf, a.alen, &mx);
    for (struct ares_mx_reply *r = mx; a.status == ARES_SUCCESS && r != NULL; r = r->next)
        audit_mx_set_add(out, r->host, r->priority);
    if (mx != NULL)
        ares_free_data(mx);
    free(a.abuf);
    return a.status;
}

int audit_dns_addrs(struct audit_dns *dns, const char *name, struct audit_names *out)
{
    static const int types[2] = {ns_t_a, ns_t_aaaa};
    int best = ARES_ENODATA; /* why there is no address, when there is none */
    out->n = 0;
    for (size_t t = 0; t < 2; t++) {
        struct answer a;
        struct hostent *host = NULL;
        ask(dns, name, types[t], &a);
        if (a.status == ARES_SUCCESS)
            a.status = t == 0 ? ares_parse_a_reply(a.abuf, a.alen, &host, NULL, NULL)
                              : ares_parse_aaaa_reply(a.abuf, a.alen, &host, NULL, NULL);
        for (size_t i = 0; a.status == ARES_SUCCESS && host->h_addr_list[i] != NULL; i++) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(host->h_addrtype, host->h_addr_list[i], text, sizeof text);
            audit_names_add(out, text);
        }
        if (host != NULL)
            ares_free_hostent(host);
        free(a.abuf);
        if (a.status != ARES_SUCCESS && a.status != ARES_ENODATA && best == ARES_ENODATA)
            best = a.status; /* a failure says more than a missing record */
    }
    return out->n > 0 ? ARES_SUCCESS : best;
}
