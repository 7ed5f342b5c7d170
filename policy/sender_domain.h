/*
 * Whether the sender's domain can take mail at all (Postfix's reject_unknown_sender_domain): the
 * bounces and replies of a message go to its MAIL FROM, so a domain with no MX and no address, or
 * one that does not exist, is a forged sender. Asked at MAIL on inbound listeners through lib/dns
 * (RFC 5321 §5.1: MX, else the implicit MX of the domain's address); a null MX (RFC 7505) says
 * outright that the domain sends no mail. A DNS failure is never a 5xx.
 */
#ifndef SLUICE_SENDER_DOMAIN_H
#define SLUICE_SENDER_DOMAIN_H

#include "lib/dns.h"
#include "policy/policy.h"

struct sender_domain_check;

typedef void (*sender_domain_cb)(void *arg, enum dns_status status);

/* Starts the lookup of `domain`. Returns 0 and *out, then calls cb once, never from inside this
 * call; or returns the resolver's error and never calls cb. */
int sender_domain_check_start(struct dns_resolver *r, const char *domain, sender_domain_cb cb,
                              void *arg, struct sender_domain_check **out);

/* Ends the check: before its callback ran, the callback is cancelled (the lookup finishes unseen).
 * Allowed inside the callback; NULL is a no-op. */
void sender_domain_check_free(struct sender_domain_check *c);

/* The decision for a lookup's status: NXDOMAIN, or no MX and no address, 550 5.1.8; a null MX
 * 550 5.7.27 (RFC 7505 §4.2); a DNS failure 451 4.1.8; anything that resolves is accepted. */
struct policy_decision sender_domain_verdict(enum dns_status status);

#endif
