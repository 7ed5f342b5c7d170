/*
 * Forward-confirmed reverse DNS of a client (FCrDNS): the PTR names of the client's address are
 * looked up through lib/dns, then the addresses of each name (at most REVERSE_DNS_NAMES_MAX), and
 * a name is confirmed when one of its addresses is the client's. The session starts a check at
 * connect and asks reverse_dns_verdict for its decision per inbound.reverse_dns; SPF's ptr
 * mechanism and %{p} use the same confirmed names.
 */
#ifndef SLUICE_REVERSE_DNS_H
#define SLUICE_REVERSE_DNS_H

#include <stddef.h>

#include <sys/socket.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "policy/policy.h"

/* PTR names whose addresses are looked up (RFC 7208 §4.6.4 sets the same cap for SPF's ptr). */
#define REVERSE_DNS_NAMES_MAX 10

enum reverse_dns_status {
    REVERSE_DNS_OK,            /* a PTR name resolves back to the client */
    REVERSE_DNS_NO_PTR,        /* NXDOMAIN or NODATA for the PTR */
    REVERSE_DNS_NOT_CONFIRMED, /* PTR names exist, none resolves back to the client */
    REVERSE_DNS_TEMPFAIL,      /* the PTR lookup, or a forward lookup that might confirm, failed */
};

struct reverse_dns_result {
    enum reverse_dns_status status;
    const char *name;             /* REVERSE_DNS_OK: the first confirmed name; else NULL */
    const char *const *confirmed; /* every confirmed name, in PTR answer order */
    size_t nconfirmed;
};

typedef void (*reverse_dns_cb)(void *arg, const struct reverse_dns_result *res);

struct reverse_dns_check;

/* Starts the check of `client` (AF_INET or AF_INET6; IPv4-mapped is taken as IPv4). Returns 0 and
 * *out, then calls cb once, never from inside this call, with a result that lives as long as the
 * check; or returns -EINVAL (other family) or the resolver's error and never calls cb. */
int reverse_dns_check_start(struct dns_resolver *r, const struct sockaddr *client,
                            reverse_dns_cb cb, void *arg, struct reverse_dns_check **out);

/* Ends the check: before its callback ran, the callback is cancelled (lookups in flight finish
 * unseen); afterwards, the result is freed. Allowed inside the callback. */
void reverse_dns_check_free(struct reverse_dns_check *c);

/* The decision for `res` under `mode`: require_ptr rejects NO_PTR, require_forward_confirmed also
 * NOT_CONFIRMED, with 550 5.7.25 (RFC 7372 "Reverse DNS validation failed"); a temporary DNS error
 * under either gives 450 4.7.25, never a 5xx. ignore accepts everything. */
struct policy_decision reverse_dns_verdict(const struct reverse_dns_result *res,
                                           enum inbound_reverse_dns mode);

/* "ok", "no-ptr", "not-confirmed", "tempfail". */
const char *reverse_dns_status_name(enum reverse_dns_status s);

/* The client as a dns_addr: IPv4-mapped IPv6 becomes IPv4. Returns 0, or -EINVAL for another
 * family. */
int reverse_dns_client_addr(const struct sockaddr *client, struct dns_addr *out);

/* 1 when the two addresses are equal (same family and bytes). */
int reverse_dns_addr_equal(const struct dns_addr *a, const struct dns_addr *b);

#endif
