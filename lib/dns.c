/*
 * The resolver: c-ares driven by the libuv loop, and the lookups built on it.
 *
 * A request (one public call) is answered by one or more lookups, each one question (type, name)
 * asked of the cache or of c-ares. An MX request asks MX, then A and AAAA for every target; an
 * address request asks A and AAAA; TXT, PTR, TLSA and NS ask one question. A lookup that completes
 * while its starter is still on the stack (cache hit, bad name, c-ares failing at once) is parked
 * on the ready list, which a uv_idle drains on the next loop iteration: so no callback is
 * synchronous. A question already on the wire is not asked twice: the later lookup waits on the
 * first one's list and gets a copy of its answer (many deliveries to one domain start together).
 */
#include "lib/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <ares_nameser.h>

#include "lib/dns_int.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

#define DNS_CACHE_ENTRIES 8192
#define DNS_CACHE_BYTES (8u << 20)
#define DNS_EDNS_UDP_SIZE 1232 /* the DNS flag day 2020 default: no IP fragmentation */
#define DNS_TRIES 2 /* rounds over the server list; the second waits twice as long (c-ares) */

/* A c-ares socket and the uv_poll that watches it. */
struct dns_sock {
    uv_poll_t poll;
    struct dns_resolver *r;
    ares_socket_t fd;
    struct dns_sock *next;
};

struct dns_resolver {
    uv_loop_t *loop;
    ares_channel channel;       /* NULL once destroyed */
    uv_timer_t timer;           /* c-ares' next timeout */
    uv_idle_t idle;             /* runs while the ready list is not empty */
    struct dns_sock *socks;     /* sockets c-ares has open */
    struct dns_lookup *ready;   /* completed lookups waiting for their delivery */
    struct dns_lookup *on_wire; /* lookups whose question c-ares is asking, to join */
    struct dns_lookup **ready_tail;
    struct dns_cache *cache;
    struct dns_stats stats;
    unsigned mode;       /* DNS_MODE_* */
    unsigned handles;    /* open uv handles; the resolver is freed after the last closes */
    unsigned busy;       /* depth of our uv callbacks on the stack */
    int closing;         /* dns_resolver_free was called: no new lookups */
    int destroy_pending; /* ... from inside a callback: finish when it returns */
};

enum req_kind { REQ_MX, REQ_ADDRS, REQ_TXT, REQ_PTR, REQ_TLSA, REQ_NS };

/* A target host: its public view plus the status of each of its two address lookups. */
struct req_host {
    struct dns_mx_host pub;    /* name and addrs point to the fields below */
    char *name;                /* owned, as the MX record or the caller gave it */
    enum dns_status st[2];     /* of the A and the AAAA lookup */
    struct dns_addr *addrs[2]; /* owned: their addresses */
    size_t naddrs[2];
    struct dns_addr *merged; /* owned: both lists, made when the request finishes */
    char *owner[2];          /* owned: the names the A and the AAAA records were found at */
    int unauthenticated;     /* an answer with addresses came without the AD bit */
};

union req_cb {
    dns_mx_cb mx;
    dns_addrs_cb addrs;
    dns_txt_cb txt;
    dns_ptr_cb ptr;
    dns_tlsa_cb tlsa;
    dns_ns_cb ns;
};

struct dns_req {
    struct dns_resolver *r;
    enum req_kind kind;
    union req_cb cb;
    void *arg;
    unsigned pending;       /* lookups started and not finished */
    int cancelled;          /* some lookup ended with DNS_CANCELLED */
    enum dns_status status; /* MX, TXT, PTR: the status of the first question */
    int implicit;           /* MX: no MX records, hosts[0] is the domain */
    struct req_host *hosts; /* MX, ADDRS: the hosts whose addresses are asked */
    size_t nhosts;
    struct dns_answer answer; /* TXT, PTR, TLSA, NS: the records */
};

/* Which part of a request a lookup answers: the request's first question, or an address family
 * of one of its hosts (slot = host index * 2 + 0 for A, 1 for AAAA). */
#define SLOT_MAIN UINT32_MAX

struct dns_lookup {
    struct dns_req *req;
    uint32_t slot;
    int type;
    int starting;           /* ares_query is on the stack: its callback must not deliver */
    uint64_t sent_ns;       /* uv_hrtime() when the question went out, for the stats */
    int cached;             /* answered from the cache: not to be stored again */
    enum dns_status status; /* when parked: the outcome */
    unsigned char *msg;     /* when parked: the answer message (owned), or NULL */
    size_t len;
    struct dns_lookup *next;         /* on the ready list, or on a waiters list */
    struct dns_lookup *waiters;      /* lookups of the same question waiting for this answer */
    struct dns_lookup *on_wire_next; /* on the resolver's on_wire list */
    char name[DNS_NAME_BUF];
};

/* The chain of one lookup, in firing order. */
static void lookup_start(struct dns_req *req, uint32_t slot, int type, const char *name);
static void lookup_on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static void lookup_answer_waiters(struct dns_lookup *l, enum dns_status status,
                                  const unsigned char *msg, size_t len);
static void lookup_park(struct dns_lookup *l, enum dns_status status, unsigned char *msg,
                        size_t len);
static void resolver_on_idle(uv_idle_t *h);
static void lookup_deliver(struct dns_lookup *l, enum dns_status status, const unsigned char *msg,
                           size_t len);
static void req_on_answer(struct dns_req *req, uint32_t slot, const char *name,
                          enum dns_status status, struct dns_answer *a);
static void req_finish(struct dns_req *req);

static void resolver_destroy(struct dns_resolver *r);
static void resolver_on_timer(uv_timer_t *t);

const char *dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return "ok";
    case DNS_NXDOMAIN:
        return "nxdomain";
    case DNS_NODATA:
        return "nodata";
    case DNS_NULL_MX:
        return "null-mx";
    case DNS_TEMPFAIL:
        return "tempfail";
    case DNS_BADNAME:
        return "badname";
    case DNS_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

socklen_t dns_addr_to_sockaddr(const struct dns_addr *a, uint16_t port,
                               struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr = a->u.v4;
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = a->u.v6;
    return sizeof(*sin6);
}

/* ---- servers ---- */

/* Parses "addr", "addr:port", "[v6]:port" or a bare IPv6 address into `node`. */
static int server_parse(const char *s, struct ares_addr_port_node *node)
{
    char host[INET6_ADDRSTRLEN];
    const char *port = NULL;
    size_t hostlen;
    memset(node, 0, sizeof(*node));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -EINVAL;
        hostlen = (size_t)(end - s - 1);
        s++;
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strchr(s, ':');
        /* One colon separates a port from an IPv4 address; more make a bare IPv6 address. */
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hostlen = (size_t)(colon - s);
            port = colon + 1;
        } else {
            hostlen = strlen(s);
        }
    }
    if (hostlen == 0 || hostlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, hostlen);
    host[hostlen] = '\0';
    if (inet_pton(AF_INET, host, &node->addr.addr4) == 1)
        node->family = AF_INET;
    else if (inet_pton(AF_INET6, host, &node->addr.addr6) == 1)
        node->family = AF_INET6;
    else
        return -EINVAL;
    int portnum = 53;
    if (port != NULL) {
        char *end;
        long v = strtol(port, &end, 10);
        if (*port < '0' || *port > '9' || *end != '\0' || v < 1 || v > 65535)
            return -EINVAL;
        portnum = (int)v;
    }
    node->udp_port = node->tcp_port = portnum;
    return 0;
}

int dns_server_check(const char *server)
{
    struct ares_addr_port_node node;
    return server_parse(server, &node);
}

int dns_resolver_servers_loopback(const struct dns_resolver *r)
{
    static const struct in6_addr v6_loopback = IN6ADDR_LOOPBACK_INIT;
    struct ares_addr_port_node *list;
    if (r->channel == NULL || ares_get_servers_ports(r->channel, &list) != ARES_SUCCESS)
        return 0;
    int all = list != NULL;
    for (struct ares_addr_port_node *n = list; n != NULL && all; n = n->next)
        all = n->family == AF_INET ? (ntohl(n->addr.addr4.s_addr) >> 24) == 127
                                   : memcmp(&n->addr.addr6, &v6_loopback, sizeof(v6_loopback)) == 0;
    ares_free_data(list);
    return all;
}

/* The servers of /etc/resolv.conf, read by a throwaway channel (c-ares parses the file). */
static int servers_from_system(struct ares_addr_port_node **out)
{
    ares_channel probe;
    struct ares_options opts = {0};
    if (ares_init_options(&probe, &opts, 0) != ARES_SUCCESS)
        return -EIO;
    int rc = ares_get_servers_ports(probe, out);
    ares_destroy(probe);
    return rc == ARES_SUCCESS ? 0 : -EIO;
}

/* ---- c-ares on the loop ---- */

static void resolver_on_handle_closed(uv_handle_t *h)
{
    struct dns_resolver *r = h->data;
    if (h->type == UV_POLL)
        free(container_of((uv_poll_t *)h, struct dns_sock, poll));
    if (--r->handles == 0)
        free(r);
}

/* Points the timer at c-ares' next timeout, or stops it when nothing is pending. */
static void resolver_timer_update(struct dns_resolver *r)
{
    struct timeval tv;
    if (r->channel == NULL || ares_timeout(r->channel, NULL, &tv) == NULL) {
        uv_timer_stop(&r->timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
    uv_timer_start(&r->timer, resolver_on_timer, ms, 0);
}

/* Our uv callbacks bracket their work so that dns_resolver_free from inside waits for them. */
static void resolver_enter(struct dns_resolver *r)
{
    r->busy++;
}

static void resolver_leave(struct dns_resolver *r)
{
    if (--r->busy == 0 && r->destroy_pending)
        resolver_destroy(r);
    else if (!r->closing)
        resolver_timer_update(r);
}

static void resolver_on_timer(uv_timer_t *t)
{
    struct dns_resolver *r = container_of(t, struct dns_resolver, timer);
    resolver_enter(r);
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    resolver_leave(r);
}

static void sock_on_poll(uv_poll_t *h, int status, int events)
{
    struct dns_sock *s = container_of(h, struct dns_sock, poll);
    struct dns_resolver *r = s->r;
    /* On a poll error let c-ares try both directions: its read or write reports the failure. */
    int rd = status < 0 || (events & UV_READABLE);
    int wr = status < 0 || (events & UV_WRITABLE);
    resolver_enter(r);
    ares_process_fd(r->channel, rd ? s->fd : ARES_SOCKET_BAD, wr ? s->fd : ARES_SOCKET_BAD);
    resolver_leave(r);
}

static void sock_close(struct dns_resolver *r, struct dns_sock **pp)
{
    struct dns_sock *s = *pp;
    *pp = s->next;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, resolver_on_handle_closed);
}

/* c-ares opened, changed or is about to close one of its sockets. */
static void resolver_on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    struct dns_sock **pp = &r->socks;
    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    if (!readable && !writable) {
        if (*pp != NULL)
            sock_close(r, pp);
        return;
    }
    if (*pp == NULL) {
        struct dns_sock *s = xcalloc(1, sizeof(*s));
        if (uv_poll_init_socket(r->loop, &s->poll, fd) < 0) {
            /* Unwatched, the socket's questions run into their timeout and fail as TEMPFAIL. */
            free(s);
            return;
        }
        s->poll.data = r;
        s->r = r;
        s->fd = fd;
        s->next = r->socks;
        r->socks = s;
        r->handles++;
        pp = &r->socks;
    }
    uv_poll_start(&(*pp)->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  sock_on_poll);
}

struct dns_resolver *dns_resolver_new(uv_loop_t *loop, const char *const *servers, size_t nservers,
                                      unsigned timeout_ms, int *err)
{
    struct ares_addr_port_node *list = NULL, *nodes = NULL;
    int rc = 0;
    if (timeout_ms == 0) {
        *err = -EINVAL;
        return NULL;
    }
    if (nservers > 0) {
        nodes = xcalloc(nservers, sizeof(*nodes));
        for (size_t i = 0; i < nservers && rc == 0; i++) {
            rc = server_parse(servers[i], &nodes[i]);
            nodes[i].next = i + 1 < nservers ? &nodes[i + 1] : NULL;
        }
        list = nodes;
    } else {
        rc = servers_from_system(&list);
    }
    size_t count = 0;
    for (struct ares_addr_port_node *n = list; rc == 0 && n != NULL; n = n->next)
        count++;
    if (rc == 0 && count == 0)
        rc = -EIO;

    struct dns_resolver *r = NULL;
    if (rc == 0 && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        rc = -EIO;
    if (rc == 0) {
        r = xcalloc(1, sizeof(*r));
        /* c-ares waits `timeout` for each server in the first round and twice that in the
         * second, so the whole budget is 3 * count * timeout. */
        struct ares_options opts = {0};
        opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
        opts.timeout = (int)(timeout_ms / (3 * count) > 0 ? timeout_ms / (3 * count) : 1);
        opts.tries = DNS_TRIES;
        opts.sock_state_cb = resolver_on_sock_state;
        opts.sock_state_cb_data = r;
        int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
        if (ares_init_options(&r->channel, &opts, mask) != ARES_SUCCESS) {
            rc = -EIO;
        } else if (ares_set_servers_ports(r->channel, list) != ARES_SUCCESS) {
            ares_destroy(r->channel);
            rc = -EIO;
        }
        if (rc < 0) {
            free(r);
            r = NULL;
            ares_library_cleanup();
        }
    }
    if (nodes != NULL)
        free(nodes);
    else if (list != NULL)
        ares_free_data(list);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }

    r->loop = loop;
    r->stats.latency = (struct metrics_histogram){
        .name = "sluice_dns_query_seconds",
        .help = "Time from a DNS question sent to its answer (or failure); cached answers are not "
                "counted.",
        .bounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
    };
    r->ready_tail = &r->ready;
    r->cache = dns_cache_new(DNS_CACHE_ENTRIES, DNS_CACHE_BYTES);
    uv_timer_init(loop, &r->timer);
    uv_idle_init(loop, &r->idle);
    r->timer.data = r->idle.data = r;
    r->handles = 2;
    return r;
}

static void resolver_destroy(struct dns_resolver *r)
{
    r->destroy_pending = 0;
    /* c-ares calls back every question in flight with ARES_EDESTRUCTION, then closes its sockets
     * (our sock_state callback closes their polls); parked lookups are cancelled after it. */
    ares_destroy(r->channel);
    r->channel = NULL;
    while (r->ready != NULL) {
        struct dns_lookup *l = r->ready;
        r->ready = l->next;
        lookup_deliver(l, DNS_CANCELLED, NULL, 0);
    }
    r->ready_tail = &r->ready;
    while (r->socks != NULL)
        sock_close(r, &r->socks);
    dns_cache_free(r->cache);
    r->cache = NULL;
    uv_close((uv_handle_t *)&r->timer, resolver_on_handle_closed);
    uv_close((uv_handle_t *)&r->idle, resolver_on_handle_closed);
    ares_library_cleanup();
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    if (r->busy > 0)
        r->destroy_pending = 1;
    else
        resolver_destroy(r);
}

void dns_resolver_set_mode(struct dns_resolver *r, unsigned mode)
{
    r->mode = mode;
}

void dns_resolver_flush(struct dns_resolver *r)
{
    dns_cache_clear(r->cache);
}

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
    *out = r->stats;
}

/* ---- lookups ---- */

/* Asks l's question with the AD bit set (RFC 6840 §5.7: a validating resolver then says whether
 * it validated the answer, which DANE needs for TLSA records and the MX hosts' addresses), and for
 * TLSA with EDNS0 room for a few records. ares_send hands back NOERROR and NXDOMAIN answers as they
 * are; dns_answer_parse reads their code. */
static void lookup_send_ad(struct dns_resolver *r, struct dns_lookup *l)
{
    unsigned char *q;
    int qlen;
    int edns = l->type == DNS_TYPE_TLSA ? DNS_EDNS_UDP_SIZE : 0;
    int rd = !(r->mode & DNS_MODE_NO_RECURSION);
    if (ares_create_query(l->name, ns_c_in, l->type, 0, rd, &q, &qlen, edns) != ARES_SUCCESS) {
        lookup_on_ares(l, ARES_ENOMEM, 0, NULL, 0);
        return;
    }
    q[3] |= DNS_FLAG_AD;
    ares_send(r->channel, q, qlen, lookup_on_ares, l);
    ares_free_string(q);
}

static void lookup_start(struct dns_req *req, uint32_t slot, int type, const char *name)
{
    struct dns_resolver *r = req->r;
    struct dns_lookup *l = xcalloc(1, sizeof(*l));
    l->req = req;
    l->slot = slot;
    l->type = type;
    req->pending++;
    if (dns_name_normalize(name, l->name) < 0) {
        lookup_park(l, DNS_BADNAME, NULL, 0);
        return;
    }
    enum dns_status status;
    unsigned char *msg;
    size_t len;
    if (!(r->mode & DNS_MODE_NO_CACHE) &&
        dns_cache_get(r->cache, type, l->name, uv_now(r->loop), &status, &msg, &len)) {
        r->stats.cache_hits++;
        l->cached = 1;
        lookup_park(l, status, msg, len);
        return;
    }
    for (struct dns_lookup *w = r->on_wire; w != NULL; w = w->on_wire_next)
        if (w->type == type && strcmp(w->name, l->name) == 0) {
            l->cached = 1; /* the first lookup caches the answer */
            l->next = w->waiters;
            w->waiters = l;
            return;
        }
    r->stats.queries++;
    l->on_wire_next = r->on_wire;
    r->on_wire = l;
    l->starting = 1;
    l->sent_ns = uv_hrtime();
    lookup_send_ad(r, l);
    l->starting = 0;
    resolver_timer_update(r);
}

static void lookup_on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_lookup *l = arg;
    /* A message with NOERROR or NXDOMAIN is read in full (its TTLs matter); other failures carry
     * no usable message. */
    int readable = abuf != NULL && alen > 0 &&
                   (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND);
    enum dns_status st = DNS_TEMPFAIL;
    if (readable)
        st = DNS_OK;
    else if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
        st = DNS_CANCELLED;
    else if (status == ARES_EBADNAME)
        st = DNS_BADNAME;
    if (st != DNS_CANCELLED)
        metrics_histogram_observe(&l->req->r->stats.latency,
                                  (double)(uv_hrtime() - l->sent_ns) / 1e9);
    lookup_answer_waiters(l, st, readable ? abuf : NULL, readable ? (size_t)alen : 0);
    if (l->starting) {
        unsigned char *copy = NULL;
        if (readable) {
            copy = xmalloc((size_t)alen);
            memcpy(copy, abuf, (size_t)alen);
        }
        lookup_park(l, st, copy, readable ? (size_t)alen : 0);
        return;
    }
    lookup_deliver(l, st, readable ? abuf : NULL, readable ? (size_t)alen : 0);
}

/* Takes l off the on_wire list and parks the lookups waiting for its question, each with its own
 * copy of the answer (they are never synchronous: they were started on an earlier call). */
static void lookup_answer_waiters(struct dns_lookup *l, enum dns_status status,
                                  const unsigned char *msg, size_t len)
{
    struct dns_lookup **p = &l->req->r->on_wire;
    while (*p != NULL && *p != l)
        p = &(*p)->on_wire_next;
    if (*p == l)
        *p = l->on_wire_next;
    struct dns_lookup *w = l->waiters;
    l->waiters = NULL;
    while (w != NULL) {
        struct dns_lookup *next = w->next;
        unsigned char *copy = NULL;
        if (msg != NULL) {
            copy = xmalloc(len);
            memcpy(copy, msg, len);
        }
        lookup_park(w, status, copy, len);
        w = next;
    }
}

/* Keeps a finished lookup for the next loop iteration; takes ownership of `msg`. */
static void lookup_park(struct dns_lookup *l, enum dns_status status, unsigned char *msg,
                        size_t len)
{
    struct dns_resolver *r = l->req->r;
    l->status = status;
    l->msg = msg;
    l->len = len;
    l->next = NULL;
    *r->ready_tail = l;
    r->ready_tail = &l->next;
    uv_idle_start(&r->idle, resolver_on_idle);
}

static void resolver_on_idle(uv_idle_t *h)
{
    struct dns_resolver *r = h->data;
    /* Deliver what is parked now; lookups parked meanwhile wait for the next iteration. */
    struct dns_lookup *batch = r->ready;
    r->ready = NULL;
    r->ready_tail = &r->ready;
    resolver_enter(r);
    while (batch != NULL) {
        struct dns_lookup *l = batch;
        batch = l->next;
        lookup_deliver(l, l->status, l->msg, l->len);
    }
    if (r->ready == NULL)
        uv_idle_stop(&r->idle);
    resolver_leave(r);
}

/* Hands a lookup's outcome to its request and frees the lookup. With a message (status DNS_OK)
 * the outcome is read from it, and a fresh answer is cached. */
static void lookup_deliver(struct dns_lookup *l, enum dns_status status, const unsigned char *msg,
                           size_t len)
{
    struct dns_req *req = l->req;
    struct dns_resolver *r = req->r;
    struct dns_answer a = {.status = status};
    if (r->closing) {
        a.status = DNS_CANCELLED;
    } else if (msg != NULL) {
        dns_answer_parse(&a, msg, len, l->type, l->name);
        if (!l->cached && !(r->mode & DNS_MODE_NO_CACHE) && a.status != DNS_TEMPFAIL && a.ttl > 0)
            dns_cache_put(r->cache, l->type, l->name, a.status, a.status == DNS_OK ? msg : NULL,
                          len, uv_now(r->loop) + (uint64_t)a.ttl * 1000);
    }
    req_on_answer(req, l->slot, l->name, a.status, &a);
    dns_answer_free(&a);
    free(l->msg);
    free(l);
}

/* ---- requests ---- */

static struct dns_req *req_new(struct dns_resolver *r, enum req_kind kind, void *arg)
{
    struct dns_req *req = xcalloc(1, sizeof(*req));
    req->r = r;
    req->kind = kind;
    req->arg = arg;
    return req;
}

static void req_hosts_add(struct dns_req *req, const char *name, unsigned pref)
{
    req->hosts = xrealloc(req->hosts, (req->nhosts + 1) * sizeof(*req->hosts));
    struct req_host *h = &req->hosts[req->nhosts++];
    memset(h, 0, sizeof(*h));
    h->name = xstrdup(name);
    h->pub.name = h->name;
    h->pub.pref = pref;
}

/* Asks A and AAAA for every host. */
static void req_hosts_start(struct dns_req *req)
{
    if (req->r->closing) {
        req->cancelled = 1;
        return;
    }
    for (size_t i = 0; i < req->nhosts; i++) {
        lookup_start(req, (uint32_t)(i * 2), ns_t_a, req->hosts[i].name);
        lookup_start(req, (uint32_t)(i * 2 + 1), ns_t_aaaa, req->hosts[i].name);
    }
}

/* RFC 5321 §5.1: targets by preference, equal preferences in random order; RFC 7505: MX records
 * that all point to the root mean the domain takes no mail. */
static void mx_on_answer(struct dns_req *req, const char *domain, struct dns_answer *a)
{
    if (req->status == DNS_NODATA) {
        req->implicit = 1;
        req_hosts_add(req, domain, 0);
        req_hosts_start(req);
        return;
    }
    if (req->status != DNS_OK)
        return;
    struct dns_rdata *rr = a->rr;
    for (size_t i = a->n; i > 1; i--) { /* Fisher-Yates, then a stable sort by preference */
        size_t j = arc4random_uniform((uint32_t)i);
        struct dns_rdata t = rr[i - 1];
        rr[i - 1] = rr[j];
        rr[j] = t;
    }
    for (size_t i = 1; i < a->n; i++) {
        struct dns_rdata t = rr[i];
        size_t j = i;
        for (; j > 0 && rr[j - 1].pref > t.pref; j--)
            rr[j] = rr[j - 1];
        rr[j] = t;
    }
    for (size_t i = 0; i < a->n && req->nhosts < DNS_MX_HOSTS_MAX; i++) {
        int seen = rr[i].len == 0; /* the root: no host there */
        for (size_t k = 0; k < req->nhosts && !seen; k++)
            seen = strcmp(req->hosts[k].name, rr[i].data) == 0;
        if (!seen)
            req_hosts_add(req, rr[i].data, rr[i].pref);
    }
    if (req->nhosts == 0) {
        req->status = DNS_NULL_MX;
        return;
    }
    req_hosts_start(req);
}

/* Takes the addresses of `a` and the name they were found at (a->owner, moved). */
static void host_on_answer(struct req_host *h, int v6, enum dns_status status, struct dns_answer *a)
{
    h->st[v6] = status;
    if (status != DNS_OK)
        return;
    h->unauthenticated |= !a->authentic;
    h->owner[v6] = a->owner;
    a->owner = NULL;
    h->addrs[v6] = xcalloc(a->n, sizeof(struct dns_addr));
    for (size_t i = 0; i < a->n; i++) {
        struct dns_addr *d = &h->addrs[v6][i];
        d->family = v6 ? AF_INET6 : AF_INET;
        memcpy(v6 ? (void *)&d->u.v6 : (void *)&d->u.v4, a->rr[i].data, a->rr[i].len);
    }
    h->naddrs[v6] = a->n;
}

static void req_on_answer(struct dns_req *req, uint32_t slot, const char *name,
                          enum dns_status status, struct dns_answer *a)
{
    req->pending--;
    if (status == DNS_CANCELLED) {
        req->cancelled = 1;
    } else if (slot != SLOT_MAIN) {
        host_on_answer(&req->hosts[slot / 2], (int)(slot % 2), status, a);
    } else {
        req->status = status;
        if (req->kind == REQ_MX) {
            mx_on_answer(req, name, a);
        } else { /* TXT, PTR, TLSA: keep the records */
            req->answer = *a;
            a->rr = NULL;
            a->n = 0;
            a->owner = NULL;
        }
    }
    if (req->pending == 0)
        req_finish(req);
}

/* The end of the host's CNAME chain when its name is an alias and both families that answered
 * agree on it; else NULL. */
static const char *host_canonical(const struct req_host *h)
{
    const char *c = h->owner[0] != NULL ? h->owner[0] : h->owner[1];
    if (c == NULL || (h->owner[1] != NULL && strcmp(c, h->owner[1]) != 0))
        return NULL;
    char norm[DNS_NAME_BUF];
    if (dns_name_normalize(h->name, norm) == 0 && strcmp(norm, c) == 0)
        return NULL;
    return c;
}

/* A host's two lookups as one: its addresses, IPv4 first, or the most telling failure. */
static void host_finish(struct req_host *h)
{
    size_t n = h->naddrs[0] + h->naddrs[1];
    h->pub.naddrs = n;
    if (n > 0) {
        struct dns_addr *all = xcalloc(n, sizeof(*all));
        if (h->naddrs[0] > 0)
            memcpy(all, h->addrs[0], h->naddrs[0] * sizeof(*all));
        if (h->naddrs[1] > 0)
            memcpy(all + h->naddrs[0], h->addrs[1], h->naddrs[1] * sizeof(*all));
        h->merged = all;
        h->pub.addrs = all;
        h->pub.status = DNS_OK;
        h->pub.authenticated = !h->unauthenticated;
        h->pub.canonical = host_canonical(h);
        return;
    }
    static const enum dns_status order[] = {DNS_NXDOMAIN, DNS_BADNAME, DNS_TEMPFAIL};
    h->pub.status = DNS_NODATA;
    for (size_t i = 0; i < ARRAY_LEN(order); i++) {
        if (h->st[0] == order[i] || h->st[1] == order[i]) {
            h->pub.status = order[i];
            break;
        }
    }
}

static void req_free(struct dns_req *req)
{
    for (size_t i = 0; i < req->nhosts; i++) {
        struct req_host *h = &req->hosts[i];
        free(h->name);
        free(h->addrs[0]);
        free(h->addrs[1]);
        free(h->merged);
        free(h->owner[0]);
        free(h->owner[1]);
    }
    free(req->hosts);
    dns_answer_free(&req->answer);
    free(req);
}

static void req_finish_mx(struct dns_req *req)
{
    struct dns_mx_result res = {.status = req->status};
    struct dns_mx_host *hosts = NULL;
    if (req->cancelled) {
        res.status = DNS_CANCELLED;
    } else if (req->nhosts > 0) {
        hosts = xcalloc(req->nhosts, sizeof(*hosts));
        for (size_t i = 0; i < req->nhosts; i++) {
            host_finish(&req->hosts[i]);
            hosts[i] = req->hosts[i].pub;
        }
        res.status = req->implicit ? hosts[0].status : DNS_OK;
        if (res.status == DNS_OK) {
            res.implicit = req->implicit;
            res.hosts = hosts;
            res.nhosts = req->nhosts;
        }
    }
    req->cb.mx(req->arg, &res);
    free(hosts);
}

static void req_finish(struct dns_req *req)
{
    enum dns_status status = req->cancelled ? DNS_CANCELLED : req->status;
    switch (req->kind) {
    case REQ_MX:
        req_finish_mx(req);
        break;
    case REQ_ADDRS:
        if (req->cancelled) {
            req->cb.addrs(req->arg, DNS_CANCELLED, NULL, 0);
        } else {
            host_finish(&req->hosts[0]);
            req->cb.addrs(req->arg, req->hosts[0].pub.status, req->hosts[0].pub.addrs,
                          req->hosts[0].pub.naddrs);
        }
        break;
    case REQ_TXT: {
        size_t n = status == DNS_OK ? req->answer.n : 0;
        struct dns_txt *txts = xcalloc(n, sizeof(*txts));
        for (size_t i = 0; i < n; i++) {
            txts[i].data = req->answer.rr[i].data;
            txts[i].len = req->answer.rr[i].len;
        }
        req->cb.txt(req->arg, status, n > 0 ? txts : NULL, n);
        free(txts);
        break;
    }
    case REQ_TLSA: {
        size_t n = status == DNS_OK ? req->answer.n : 0;
        struct dns_tlsa *recs = xcalloc(n, sizeof(*recs));
        for (size_t i = 0; i < n; i++) {
            const unsigned char *rd = (const unsigned char *)req->answer.rr[i].data;
            recs[i] = (struct dns_tlsa){rd[0], rd[1], rd[2], rd + 3, req->answer.rr[i].len - 3};
        }
        req->cb.tlsa(req->arg, status, req->answer.authentic, n > 0 ? req->answer.owner : NULL,
                     n > 0 ? recs : NULL, n);
        free(recs);
        break;
    }
    case REQ_PTR:
    case REQ_NS: {
        size_t n = status == DNS_OK ? req->answer.n : 0;
        const char **names = xcalloc(n, sizeof(*names));
        for (size_t i = 0; i < n; i++)
            names[i] = req->answer.rr[i].data;
        if (req->kind == REQ_PTR)
            req->cb.ptr(req->arg, status, n > 0 ? names : NULL, n);
        else
            req->cb.ns(req->arg, status, n > 0 ? names : NULL, n);
        free(names);
        break;
    }
    }
    req_free(req);
}

/* ---- the public lookups ---- */

/* A request that starts with one question: MX, TXT, TLSA, PTR, NS. */
static int resolve_one(struct dns_resolver *r, enum req_kind kind, int type, const char *name,
                       union req_cb cb, void *arg)
{
    if (r->closing)
        return -ESHUTDOWN;
    struct dns_req *req = req_new(r, kind, arg);
    req->cb = cb;
    lookup_start(req, SLOT_MAIN, type, name);
    return 0;
}

int dns_resolve_mx(struct dns_resolver *r, const char *domain, dns_mx_cb cb, void *arg)
{
    return resolve_one(r, REQ_MX, ns_t_mx, domain, (union req_cb){.mx = cb}, arg);
}

int dns_resolve_addrs(struct dns_resolver *r, const char *name, dns_addrs_cb cb, void *arg)
{
    if (r->closing)
        return -ESHUTDOWN;
    struct dns_req *req = req_new(r, REQ_ADDRS, arg);
    req->cb.addrs = cb;
    req_hosts_add(req, name, 0);
    req_hosts_start(req);
    return 0;
}

int dns_resolve_txt(struct dns_resolver *r, const char *name, dns_txt_cb cb, void *arg)
{
    return resolve_one(r, REQ_TXT, ns_t_txt, name, (union req_cb){.txt = cb}, arg);
}

int dns_resolve_tlsa(struct dns_resolver *r, const char *name, dns_tlsa_cb cb, void *arg)
{
    return resolve_one(r, REQ_TLSA, DNS_TYPE_TLSA, name, (union req_cb){.tlsa = cb}, arg);
}

int dns_resolve_ns(struct dns_resolver *r, const char *domain, dns_ns_cb cb, void *arg)
{
    return resolve_one(r, REQ_NS, ns_t_ns, domain, (union req_cb){.ns = cb}, arg);
}

/* "4.3.2.1.in-addr.arpa" or the 32 nibbles of RFC 3596 §2.5 under ip6.arpa. */
static int ptr_name(const struct sockaddr *sa, char *out, size_t size)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *b;
    if (sa->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
            b += sizeof(v4mapped);
        } else {
            size_t off = 0;
            for (int i = 15; i >= 0; i--)
                off += (size_t)snprintf(out + off, size - off, "%x.%x.", b[i] & 0xf, b[i] >> 4);
            snprintf(out + off, size - off, "ip6.arpa");
            return 0;
        }
    } else {
        return -EAFNOSUPPORT;
    }
    snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
    return 0;
}

int dns_resolve_ptr(struct dns_resolver *r, const struct sockaddr *sa, dns_ptr_cb cb, void *arg)
{
    char name[DNS_NAME_BUF];
    if (r->closing)
        return -ESHUTDOWN;
    int rc = ptr_name(sa, name, sizeof(name));
    if (rc < 0)
        return rc;
    return resolve_one(r, REQ_PTR, ns_t_ptr, name, (union req_cb){.ptr = cb}, arg);
}
