#include "policy/reverse_dns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

/* One PTR name and its forward lookup. */
struct rdns_name {
    struct reverse_dns_check *check;
    char *name;
    enum dns_status status; /* of its address lookup */
    int confirmed;
};

struct reverse_dns_check {
    struct dns_resolver *resolver;
    struct dns_addr client;
    struct rdns_name names[REVERSE_DNS_NAMES_MAX];
    size_t nnames;
    size_t pending; /* lookups in flight */
    int done;       /* the callback ran */
    int cancelled;  /* reverse_dns_check_free came before the callback */
    reverse_dns_cb cb;
    void *arg;
    const char *confirmed[REVERSE_DNS_NAMES_MAX];
    struct reverse_dns_result result;
};

/* Lookup callbacks, in firing order. */
static void check_on_ptr(void *arg, enum dns_status status, const char *const *names, size_t n);
static void name_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                          size_t naddrs);
static void check_finish(struct reverse_dns_check *c, enum reverse_dns_status status);

int reverse_dns_client_addr(const struct sockaddr *client, struct dns_addr *out)
{
    memset(out, 0, sizeof *out);
    if (client->sa_family == AF_INET) {
        out->family = AF_INET;
        out->u.v4 = ((const struct sockaddr_in *)client)->sin_addr;
        return 0;
    }
    if (client->sa_family != AF_INET6)
        return -EINVAL;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)client)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        out->family = AF_INET;
        memcpy(&out->u.v4, a6->s6_addr + 12, 4);
    } else {
        out->family = AF_INET6;
        out->u.v6 = *a6;
    }
    return 0;
}

int reverse_dns_addr_equal(const struct dns_addr *a, const struct dns_addr *b)
{
    if (a->family != b->family)
        return 0;
    if (a->family == AF_INET)
        return a->u.v4.s_addr == b->u.v4.s_addr;
    return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

static void check_release(struct reverse_dns_check *c)
{
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i].name);
    free(c);
}

int reverse_dns_check_start(struct dns_resolver *r, const struct sockaddr *client,
                            reverse_dns_cb cb, void *arg, struct reverse_dns_check **out)
{
    struct reverse_dns_check *c = xcalloc(1, sizeof *c);
    if (reverse_dns_client_addr(client, &c->client) < 0) {
        free(c);
        return -EINVAL;
    }
    c->resolver = r;
    c->cb = cb;
    c->arg = arg;
    int rc = dns_resolve_ptr(r, client, check_on_ptr, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->pending = 1;
    *out = c;
    return 0;
}

static void check_on_ptr(void *arg, enum dns_status status, const char *const *names, size_t n)
{
    struct reverse_dns_check *c = arg;
    c->pending = 0;
    if (c->cancelled) {
        check_release(c);
        return;
    }
    if (status == DNS_NXDOMAIN || status == DNS_NODATA || (status == DNS_OK && n == 0)) {
        check_finish(c, REVERSE_DNS_NO_PTR);
        return;
    }
    if (status != DNS_OK) {
        check_finish(c, REVERSE_DNS_TEMPFAIL);
        return;
    }
    for (size_t i = 0; i < n && c->nnames < REVERSE_DNS_NAMES_MAX; i++) {
        struct rdns_name *nm = &c->names[c->nnames++];
        nm->check = c;
        nm->name = xstrdup(names[i]);
    }
    /* Every name's lookup is started before any can answer: callbacks never run synchronously. */
    for (size_t i = 0; i < c->nnames; i++) {
        if (dns_resolve_addrs(c->resolver, c->names[i].name, name_on_addrs, &c->names[i]) == 0)
            c->pending++;
        else
            c->names[i].status = DNS_TEMPFAIL;
    }
    if (c->pending == 0)
        check_finish(c, REVERSE_DNS_TEMPFAIL); /* the resolver is shutting down */
}

static void name_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                          size_t naddrs)
{
    struct rdns_name *nm = arg;
    struct reverse_dns_check *c = nm->check;
    nm->status = status;
    for (size_t i = 0; status == DNS_OK && i < naddrs && !nm->confirmed; i++)
        nm->confirmed = reverse_dns_addr_equal(&addrs[i], &c->client);
    if (--c->pending > 0)
        return;
    if (c->cancelled) {
        check_release(c);
        return;
    }
    int tempfail = 0;
    for (size_t i = 0; i < c->nnames; i++) {
        if (c->names[i].confirmed)
            c->confirmed[c->result.nconfirmed++] = c->names[i].name;
        else if (c->names[i].status != DNS_OK && c->names[i].status != DNS_NXDOMAIN &&
                 c->names[i].status != DNS_NODATA && c->names[i].status != DNS_BADNAME)
            tempfail = 1;
    }
    /* A failed forward lookup might have confirmed: only a confirmation outweighs it. */
    check_finish(c, c->result.nconfirmed > 0 ? REVERSE_DNS_OK
                    : tempfail               ? REVERSE_DNS_TEMPFAIL
                                             : REVERSE_DNS_NOT_CONFIRMED);
}

static void check_finish(struct reverse_dns_check *c, enum reverse_dns_status status)
{
    c->result.status = status;
    c->result.confirmed = c->confirmed;
    c->result.name = c->result.nconfirmed > 0 ? c->confirmed[0] : NULL;
    c->done = 1;
    c->cb(c->arg, &c->result); /* last: the callback may free the check */
}

void reverse_dns_check_free(struct reverse_dns_check *c)
{
    if (c == NULL)
        return;
    if (!c->done && c->pending > 0) {
        c->cancelled = 1; /* released when the last lookup returns */
        return;
    }
    check_release(c);
}

struct policy_decision reverse_dns_verdict(const struct reverse_dns_result *res,
                                           enum inbound_reverse_dns mode)
{
    static const struct config_pos builtin = {NULL, 0, 0};
    struct policy_decision d = {POLICY_ACCEPT, 250, "2.0.0", "Ok", "inbound.reverse_dns", builtin};
    if (mode == REVERSE_DNS_IGNORE || res->status == REVERSE_DNS_OK)
        return d;
    if (res->status == REVERSE_DNS_NOT_CONFIRMED && mode != REVERSE_DNS_REQUIRE_FORWARD_CONFIRMED)
        return d;
    if (res->status == REVERSE_DNS_TEMPFAIL) {
        d.verdict = POLICY_TEMPFAIL;
        d.code = 450;
        d.enhanced = "4.7.25";
        d.text = "Reverse DNS validation failed: temporary DNS error, try again later";
        return d;
    }
    d.verdict = POLICY_REJECT;
    d.code = 550;
    d.enhanced = "5.7.25";
    d.text = res->status == REVERSE_DNS_NO_PTR
                 ? "Reverse DNS validation failed: client address has no PTR record"
                 : "Reverse DNS validation failed: client hostname does not resolve back to it";
    return d;
}

const char *reverse_dns_status_name(enum reverse_dns_status s)
{
    static const char *const names[] = {"ok", "no-ptr", "not-confirmed", "tempfail"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}
