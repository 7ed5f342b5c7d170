#include "mta/delivery/route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/smtp_addr.h"
#include "lib/xalloc.h"

struct route_req {
    route_cb cb;
    void *arg;
    char *hostname; /* ours, to drop MX hosts that are us */
    uint16_t port;
    char *literal_name; /* deliver_to "[address]": the name shown for it */
    struct sockaddr_storage literal;
};

struct mx_list *mx_list_ref(struct mx_list *mx)
{
    mx->refs++;
    return mx;
}

void mx_list_unref(struct mx_list *mx)
{
    if (mx == NULL || --mx->refs > 0)
        return;
    for (size_t i = 0; i < mx->nhosts; i++) {
        free(mx->hosts[i].name);
        free(mx->hosts[i].canonical);
        free(mx->hosts[i].addrs);
    }
    free(mx->hosts);
    mx_list_set_sts(mx, NULL);
    free(mx);
}

void mx_list_set_sts(struct mx_list *mx, const struct mta_sts_policy *policy)
{
    if (mx->sts != NULL) {
        mta_sts_policy_free(mx->sts);
        free(mx->sts);
        mx->sts = NULL;
    }
    if (policy != NULL) {
        mx->sts = xmalloc(sizeof *mx->sts);
        mta_sts_policy_copy(mx->sts, policy);
    }
}

/* A list with room for `hosts` hosts, none filled in yet. */
static struct mx_list *mx_list_new(size_t hosts)
{
    struct mx_list *mx = xcalloc(1, sizeof *mx);
    mx->refs = 1;
    mx->hosts = xcalloc(hosts, sizeof *mx->hosts);
    return mx;
}

static void route_fail(struct route_req *rq, int code, const char *enhanced, const char *text)
{
    struct smtp_client_outcome o = {.code = code, .stage = "DNS lookup", .remote = 0, .text = text};
    snprintf(o.enhanced, sizeof o.enhanced, "%s", enhanced);
    rq->cb(rq->arg, NULL, &o);
}

static void route_req_free(struct route_req *rq)
{
    free(rq->hostname);
    free(rq->literal_name);
    free(rq);
}

static void route_on_mx(void *arg, const struct dns_mx_result *res)
{
    struct route_req *rq = arg;
    switch (res->status) {
    case DNS_OK:
        break;
    case DNS_NULL_MX:
        route_fail(rq, 556, "5.1.10", "the domain accepts no mail (null MX, RFC 7505)");
        goto out;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
    case DNS_BADNAME:
        route_fail(rq, 550, "5.1.2",
                   res->status == DNS_NXDOMAIN ? "the domain does not exist (NXDOMAIN)"
                                               : "the domain has no MX and no address");
        goto out;
    default:
        route_fail(rq, 451, "4.4.3", "temporary DNS failure looking up MX");
        goto out;
    }

    /* RFC 5321 §5.1: when we are one of the MX hosts, only more preferred hosts are candidates. */
    size_t usable = res->nhosts;
    for (size_t i = 0; i < res->nhosts; i++)
        if (strcasecmp(res->hosts[i].name, rq->hostname) == 0) {
            unsigned own = res->hosts[i].pref;
            usable = 0;
            while (usable < res->nhosts && res->hosts[usable].pref < own)
                usable++;
            break;
        }
    if (usable == 0) {
        route_fail(rq, 554, "5.4.6", "mail for the domain loops back to myself (we are its MX)");
        goto out;
    }

    struct mx_list *mx = mx_list_new(usable);
    int tempfail = 0;
    for (size_t i = 0; i < usable; i++) {
        const struct dns_mx_host *h = &res->hosts[i];
        if (h->naddrs == 0) {
            tempfail |= h->status == DNS_TEMPFAIL;
            continue;
        }
        struct mx_target *t = &mx->hosts[mx->nhosts++];
        t->name = xstrdup(h->name);
        t->dnssec = h->authenticated;
        t->canonical = h->authenticated && h->canonical != NULL ? xstrdup(h->canonical) : NULL;
        t->pref = h->pref;
        t->addrs = xcalloc(h->naddrs, sizeof *t->addrs);
        t->naddrs = h->naddrs;
        for (size_t j = 0; j < h->naddrs; j++)
            dns_addr_to_sockaddr(&h->addrs[j], rq->port, &t->addrs[j]);
    }
    if (mx->nhosts == 0) {
        mx_list_unref(mx);
        if (tempfail)
            route_fail(rq, 451, "4.4.3",
                       "temporary DNS failure looking up the MX hosts' addresses");
        else
            route_fail(rq, 550, "5.1.2", "no MX host of the domain has an address");
        goto out;
    }
    rq->cb(rq->arg, mx, NULL);
out:
    route_req_free(rq);
}

/* An address literal needs no lookup; the answer still comes from the loop. */
static void route_on_literal(uv_timer_t *t)
{
    struct route_req *rq = t->data;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    if (rq->literal.ss_family == AF_UNSPEC) { /* not from smtp_addr_parse: a damaged spool */
        route_fail(rq, 550, "5.1.2", "the address literal is not an IPv4 or IPv6 address");
        route_req_free(rq);
        return;
    }
    struct mx_list *mx = mx_list_new(1);
    mx->nhosts = 1;
    mx->hosts[0].name = xstrdup(rq->literal_name);
    mx->hosts[0].addrs = xmalloc(sizeof *mx->hosts[0].addrs);
    mx->hosts[0].addrs[0] = rq->literal;
    mx->hosts[0].naddrs = 1;
    rq->cb(rq->arg, mx, NULL);
    route_req_free(rq);
}

/* Answers with the one host rq->literal, called `name`, from the loop. */
static void route_literal_start(uv_loop_t *loop, struct route_req *rq, const char *name)
{
    rq->literal_name = xstrdup(name);
    uv_timer_t *t = xcalloc(1, sizeof *t);
    uv_timer_init(loop, t);
    t->data = rq;
    uv_timer_start(t, route_on_literal, 0, 0);
}

/* Splits deliver_to (validated at load) into host and port. Returns 1 for "[address]". */
static int deliver_to_parse(const char *value, char *host, size_t size, uint16_t *port)
{
    int literal = value[0] == '[';
    const char *start = literal ? value + 1 : value;
    const char *end = literal ? strchr(start, ']') : strchr(start, ':');
    size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
    if (len >= size)
        len = size - 1;
    memcpy(host, start, len);
    host[len] = '\0';
    const char *colon = literal ? (end != NULL && end[1] == ':' ? end + 1 : NULL) : end;
    if (colon != NULL)
        *port = (uint16_t)atoi(colon + 1);
    return literal;
}

int route_resolve(uv_loop_t *loop, struct dns_resolver *dns, const struct config *cfg,
                  const char *domain, route_cb cb, void *arg)
{
    struct route_req *rq = xcalloc(1, sizeof *rq);
    rq->cb = cb;
    rq->arg = arg;
    rq->hostname = xstrdup(cfg->server.hostname);
    rq->port = (uint16_t)cfg->delivery.port;
    /* RFC 5321 §5.1: mail to an address literal goes to that address, with no MX lookup (the
     * relay decision let it through at RCPT: relay.allow_address_literals). */
    if (domain[0] == '[') {
        smtp_addr_literal_sockaddr(domain, rq->port, &rq->literal);
        route_literal_start(loop, rq, domain);
        return 0;
    }
    const char *target = domain;
    char host[256];
    const struct config_domain *ours = config_domain_find(cfg, domain);
    if (ours != NULL && ours->deliver_to != NULL) {
        if (deliver_to_parse(ours->deliver_to, host, sizeof host, &rq->port)) {
            ip_text_sockaddr(host, rq->port, &rq->literal);
            route_literal_start(loop, rq, ours->deliver_to);
            return 0;
        }
        target = host;
    }
    int rc = dns_resolve_mx(dns, target, route_on_mx, rq);
    if (rc < 0)
        route_req_free(rq);
    return rc;
}
