/*
 * Where mail for a domain goes: the domain's deliver_to when it is one of ours, the address itself
 * for an address literal ("[192.0.2.1]", "[IPv6:...]"), else its MX hosts (RFC 5321 §5.1, with
 * RFC 7505 null MX), as an ordered list of hosts with addresses. MX hosts at or after our own
 * name's preference are dropped, so mail never loops back to us (§5.1).
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "mta/delivery/mta_sts_policy.h"
#include "mta/delivery/smtp_client.h"

/* The hosts mail for one domain goes to, most preferred first, with their addresses. Made by
 * route_resolve; shared by the jobs and the connections that deliver with it (refs). */
struct mx_target {
    char *name;
    unsigned pref;
    struct sockaddr_storage *addrs; /* port already set */
    size_t naddrs;
    int dnssec;      /* its addresses came with the AD bit (dns.h): DANE may apply (dane.h) */
    char *canonical; /* with dnssec, when name is an alias: the end of its CNAME chain; or NULL */
};

struct mx_list {
    int refs;
    struct mx_target *hosts;
    size_t nhosts;
    /* The domain's MTA-STS policy when its mail was queued (mta_sts.h; a copy), or NULL. */
    struct mta_sts_policy *sts;
};

struct mx_list *mx_list_ref(struct mx_list *mx);
/* Gives mx a copy of policy (NULL: none), replacing the one it had. */
void mx_list_set_sts(struct mx_list *mx, const struct mta_sts_policy *policy);
/* Frees the list with its last reference; NULL is ignored. */
void mx_list_unref(struct mx_list *mx);

/* ok: mx has hosts (one reference for the callee). Otherwise mx is NULL and fail says why, with
 * a 4xx code (try later) or a 5xx code (bounce). */
typedef void (*route_cb)(void *arg, struct mx_list *mx, const struct smtp_client_outcome *fail);

/* Looks the route of `domain` (canonical: A-labels, or an address literal) up; cb runs once,
 * never from inside this call. Returns 0, or a negative errno when the lookup cannot start (the
 * resolver is shutting down). */
int route_resolve(uv_loop_t *loop, struct dns_resolver *dns, const struct config *cfg,
                  const char *domain, route_cb cb, void *arg);

#endif
