#include "policy/relay_lint.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

int policy_relay_lint(const struct config *cfg, struct buf *err)
{
    int problems = 0;
    char text[512];

    for (size_t i = 0; i < cfg->relay.ntrusted_networks; i++) {
        const struct config_cidr *net = &cfg->relay.trusted_networks[i];
        unsigned min = net->family == AF_INET ? RELAY_LINT_MIN_PREFIX_V4 : RELAY_LINT_MIN_PREFIX_V6;
        if (net->prefix >= min)
            continue;
        snprintf(
            text, sizeof text,
            "relay.trusted_networks: %s trusts more than a /%u: anyone in it may relay through "
            "this server (an open relay); narrow it",
            net->text, min);
        problem(err, cfg, net->pos, text);
        problems++;
    }

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
