/*
 * DNS blocklists (RFC 5782), looked up as a client connects: every zone of inbound.dnsbl is asked
 * at once for the client's reversed address through lib/dns, the weights of the zones that list it
 * are summed, and the sum is held against inbound.dnsbl_threshold. The session starts a check at
 * connect, keeps the handle, and reads the verdict when it must answer (banner or RCPT).
 */
#ifndef SLUICE_DNSBL_H
#define SLUICE_DNSBL_H

#include <stddef.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "policy/policy.h"

#define DNSBL_REASON_MAX 200 /* octets of a zone's TXT reason kept */
/* Room for the refusal "Service unavailable; client [IP] blocked using <zone>". */
#define DNSBL_REPLY_MAX (INET6_ADDRSTRLEN + 254 + 64)

/* One zone that lists the client. */
struct dnsbl_hit {
    const char *zone;
    unsigned weight;
    struct dns_addr answer;            /* the 127.0.0.x return code */
    char reason[DNSBL_REASON_MAX + 1]; /* the zone's TXT record, printable ASCII; "" if none */
};

struct dnsbl_result {
    int listed;                   /* score >= threshold */
    unsigned score;               /* sum of the weights of the zones that list the client */
    const struct dnsbl_hit *hits; /* in config order */
    size_t nhits;
    unsigned
        errors; /* zones that could not be asked (DNS error or timeout): counted as not listing */
};

typedef void (*dnsbl_cb)(void *arg, const struct dnsbl_result *res);

struct dnsbl_check;

/* Asks every zone about `client` (AF_INET or AF_INET6; an IPv4-mapped address as IPv4). Zones and
 * weights are copied. Returns 0 and *out, then calls cb once, never from inside this call, with a
 * result that lives as long as the check; or returns -EINVAL (no zones, other family) or the
 * resolver's error, and never calls cb. A zone's DNS error counts as not listed and is logged.
 * The client is listed when the score reaches `threshold` (0 is taken as 1). */
int dnsbl_check_start(struct dns_resolver *r, const struct config_dnsbl *zones, size_t nzones,
                      unsigned threshold, const struct sockaddr *client, dnsbl_cb cb, void *arg,
                      struct dnsbl_check **out);

/* Ends the check: before its callback ran, the callback is cancelled (the lookups in flight finish
 * unseen); afterwards, the result is freed. Allowed inside the callback. */
void dnsbl_check_free(struct dnsbl_check *c);

/* The decision for `res` about `client`: accept, or when listed 554 5.7.1 "Service unavailable;
 * client [IP] blocked using <zone>" naming the listing zone with the highest weight (an
 * IPv4-mapped client as IPv4), the text written to reply. */
struct policy_decision dnsbl_verdict(const struct dnsbl_result *res, const struct sockaddr *client,
                                     char reply[DNSBL_REPLY_MAX]);

/* dnsbl_verdict of the check's result (accept before the callback). The text lives as long as the
 * check. */
struct policy_decision dnsbl_check_verdict(struct dnsbl_check *c);

/* The name to query for `client` in `zone`: "4.3.2.1.zone" for 1.2.3.4, 32 nibbles in reverse for
 * IPv6 (RFC 5782 §2.4). Returns 0, or -EINVAL for another family or when it does not fit. */
int dnsbl_query_name(const struct sockaddr *client, const char *zone, char *out, size_t size);

/* 1 when `a` is a listing answer: in 127.0.0.0/8 but not in 127.255.255.0/24 (RFC 5782 §2.1 and
 * the lists' error codes: query refused, typo'd zone, ...). */
int dnsbl_answer_lists(const struct dns_addr *a);

#endif
