#include "policy/relay_lint.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "policy/ip_space.h"

static void problem(struct buf *err, const struct config *cfg, struct config_pos pos,
                    const char *what)
{
    buf_printf(err, "%s:%u:%u: %s\n", pos.file ? pos.file : cfg->source, pos.line, pos.column,
               what);
}

/* Reachable only from this host or a private network: loopback, RFC 1918, IPv6 unique-local or
 * link-local. A wildcard address (0.0.0.0, ::) is reachable from everywhere. */
static int is_internal(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return 0;
}

/* ---- How much public space the trusted networks cover ---- */

/* What one trusted network covers: IPv4 space (its own, or what an IPv6 network carries through
 * NAT64, 6to4, Teredo or mapping) and IPv6 space, each merged. */
struct coverage {
    struct ip_set v4, v6;
    const char *through; /* the embedding that carries public IPv4 space, or NULL */
};

static void coverage_of(const struct config_cidr *net, struct coverage *c)
{
    ip_set_init(&c->v4, AF_INET);
    ip_set_init(&c->v6, AF_INET6);
    c->through = NULL;
    if (net->family == AF_INET) {
        ip_set_add(&c->v4, net->addr, net->prefix);
    } else {
        ip_set_add(&c->v6, net->addr, net->prefix);
        for (size_t i = 0; i < ip_nembeddings; i++) {
            unsigned char v4[4];
            unsigned v4prefix;
            if (ip_embedded_v4(&ip_embeddings[i], net->addr, net->prefix, v4, &v4prefix) < 0)
                continue;
            struct ip_set carried;
            ip_set_init(&carried, AF_INET);
            ip_set_add(&carried, v4, v4prefix);
            if (c->through == NULL && ip_set_public_count(&carried) > 0)
                c->through = ip_embeddings[i].name;
            ip_set_add_set(&c->v4, &carried);
            ip_set_free(&carried);
        }
    }
    ip_set_merge(&c->v4);
    ip_set_merge(&c->v6);
}

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* The most addresses allowed: a /16 of IPv4, a /32 of IPv6. */
static ip_uint limit_of(int family)
{
    unsigned prefix = family == AF_INET ? RELAY_LINT_MAX_PUBLIC_V4 : RELAY_LINT_MAX_PUBLIC_V6;
    return (ip_uint)1 << (family_bits(family) - prefix);
}

/* "16777216 public IPv4 addresses (a /8)", "more than a /4 of public IPv6 space". */
static void amount_text(struct buf *out, int family, ip_uint count)
{
    unsigned log2 = 0;
    while (log2 < 127 && count >> (log2 + 1) != 0)
        log2++;
    const char *more = count == (ip_uint)1 << log2 ? "" : "more than ";
    unsigned prefix = family_bits(family) - log2;
    if (family == AF_INET)
        buf_printf(out, "%llu public IPv4 addresses (%sa /%u)", (unsigned long long)count, more,
                   prefix);
    else
        buf_printf(out, "%sa /%u of public IPv6 space", more, prefix);
}

static const char open_relay_advice[] =
    ": anyone there may relay through this server (an open relay); narrow it";

/* One network that alone covers too much. Returns which families it exceeds (bit 0: IPv4 space,
 * bit 1: IPv6 space) after writing the problem. */
static int lint_network(const struct config *cfg, const struct config_cidr *net,
                        const struct coverage *c, struct buf *err)
{
    ip_uint v4 = ip_set_public_count(&c->v4), v6 = ip_set_public_count(&c->v6);
    int over = (v4 > limit_of(AF_INET)) | (v6 > limit_of(AF_INET6)) << 1;
    if (over == 0)
        return 0;
    struct buf text = BUF_INIT;
    buf_printf(&text, "relay.trusted_networks: %s trusts ", net->text);
    if (over & 2) {
        amount_text(&text, AF_INET6, v6);
        buf_printf(&text, ", more than a /%u", RELAY_LINT_MAX_PUBLIC_V6);
    }
    if (over & 1) {
        buf_printf(&text, "%s", over & 2 ? ", and " : "");
        amount_text(&text, AF_INET, v4);
        if (c->through != NULL)
            buf_printf(&text, " through %s", c->through);
        buf_printf(&text, ", more than a /%u", RELAY_LINT_MAX_PUBLIC_V4);
    }
    buf_printf(&text, "%s", open_relay_advice);
    problem(err, cfg, net->pos, text.data);
    buf_free(&text);
    return over;
}

/* The public space of family that the first n networks cover together. */
static ip_uint covered_by_first(const struct coverage *cov, size_t n, int family)
{
    struct ip_set all;
    ip_set_init(&all, family);
    for (size_t i = 0; i < n; i++)
        ip_set_add_set(&all, family == AF_INET ? &cov[i].v4 : &cov[i].v6);
    ip_set_merge(&all);
    ip_uint count = ip_set_public_count(&all);
    ip_set_free(&all);
    return count;
}

/* Networks each within the bound but too much together: the problem is written at the network
 * that takes the total over it (found by bisection: the total only grows down the list). */
static int lint_total(const struct config *cfg, const struct coverage *cov, int family,
                      struct buf *err)
{
    size_t n = cfg->relay.ntrusted_networks;
    ip_uint total = covered_by_first(cov, n, family);
    if (total <= limit_of(family))
        return 0;
    size_t lo = 1, hi = n; /* the first `hi` networks are too much */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (covered_by_first(cov, mid, family) > limit_of(family))
            hi = mid;
        else
            lo = mid + 1;
    }
    const struct config_cidr *net = &cfg->relay.trusted_networks[hi - 1];
    struct buf text = BUF_INIT;
    buf_printf(&text, "relay.trusted_networks: with %s the trusted networks cover ", net->text);
    amount_text(&text, family, total);
    buf_printf(&text, " in all, more than a /%u%s",
               family == AF_INET ? RELAY_LINT_MAX_PUBLIC_V4 : RELAY_LINT_MAX_PUBLIC_V6,
               open_relay_advice);
    problem(err, cfg, net->pos, text.data);
    buf_free(&text);
    return 1;
}

static int lint_trusted_networks(const struct config *cfg, struct buf *err)
{
    size_t n = cfg->relay.ntrusted_networks;
    struct coverage *cov = xcalloc(n > 0 ? n : 1, sizeof *cov);
    int problems = 0, over = 0;
    for (size_t i = 0; i < n; i++) {
        coverage_of(&cfg->relay.trusted_networks[i], &cov[i]);
        int o = lint_network(cfg, &cfg->relay.trusted_networks[i], &cov[i], err);
        problems += o != 0;
        over |= o;
    }
    /* A family already refused network by network is not refused again for its total. */
    if (!(over & 1))
        problems += lint_total(cfg, cov, AF_INET, err);
    if (!(over & 2))
        problems += lint_total(cfg, cov, AF_INET6, err);
    for (size_t i = 0; i < n; i++) {
        ip_set_free(&cov[i].v4);
        ip_set_free(&cov[i].v6);
    }
    free(cov);
    return problems;
}

int policy_relay_lint(const struct config *cfg, struct buf *err)
{
    int problems = lint_trusted_networks(cfg, err);
    char text[512];

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct config_listener *l = &cfg->listeners[i];
        if (l->role != LISTENER_SUBMISSION || is_internal(&l->addr) || cfg->relay.users != NULL)
            continue;
        snprintf(text, sizeof text,
                 "listeners: submission listener '%s' on %s is reachable from the Internet but "
                 "relay.users is not set, so no client can authenticate; use role: inbound, a "
                 "loopback address, or set relay.users",
                 l->name, l->address);
        problem(err, cfg, l->pos, text);
        problems++;
    }
    return problems;
}
