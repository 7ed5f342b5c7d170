/*
 * Shaping: the limits mail to one destination is sent under. Which rule applies to a recipient
 * domain and its MX hosts (the site's shaping.rules, then the shipped provider rules, first match
 * wins), the destination key under which the scheduler keeps the limits' state, so that every
 * domain a provider hosts shares one set, and the message and recipient rates that pace the SMTP
 * client. The rules and their values belong to the configuration, and what is returned here
 * borrows from it; a destination owns the rates of each of its egress addresses.
 */
#ifndef SLUICE_SHAPING_H
#define SLUICE_SHAPING_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "mta/delivery/route.h"
#include "mta/delivery/shared_limits.h"
#include "mta/delivery/smtp_client.h"

/* 1 when `domain` (may be NULL) is one of domains[0..ndomains) or one of mx_hosts[0..nmx) matches
 * one of mx_patterns[0..npatterns) (case-insensitive, a trailing dot ignored; "*.example.net"
 * matches any name ending in ".example.net"). Shared by shaping and reply rules. */
int shaping_names_match(char *const *domains, size_t ndomains, char *const *mx_patterns,
                        size_t npatterns, const char *domain, const char *const *mx_hosts,
                        size_t nmx);

/* The first shaping rule whose domain list holds `domain` or one of whose MX patterns matches one
 * of mx_hosts[0..nmx) (case-insensitive, a trailing dot ignored; "*.example.net" matches any name
 * ending in ".example.net"), or NULL for shaping.default. domain may be NULL. */
const struct config_shaping_rule *shaping_rule_match(const struct config *cfg, const char *domain,
                                                     const char *const *mx_hosts, size_t nmx);

/* Where mail for one domain is shaped. */
struct shaping_dest {
    /* The domain itself, or, when the rule that matched names MX patterns (a provider), the rule's
     * first pattern: every domain hosted at that provider, matched by name or by MX host, then
     * shares the limits. Borrowed from the domain or from cfg. */
    const char *key;
    const struct config_shaping *values; /* the rule's, or shaping.default; in cfg */
};

/* The shaping of mail for `domain` routed to mx (NULL: the route failed, so only the domain can
 * match). */
struct shaping_dest shaping_dest_for(const struct config *cfg, const char *domain,
                                     const struct mx_list *mx);

/* The message, recipient and connection rates of one (destination, egress address), which every
 * connection from that address to the destination paces its MAIL and RCPT commands by, and the
 * destination its connection openings: sliding windows (lib/ratewindow.h), so that no window of
 * a rate's period widened by rate_margin_percent ever sees more than the rate, whatever the
 * jitter on the way. A new set ramps in as if the rates had been used in full up to now, so a
 * restart cannot burst on top of what was sent just before it. */
struct shaping_rates;

struct shaping_rates *shaping_rates_new(const struct config_shaping *sh, uint64_t now_ms);
/* New values (a reload): a rate that changed starts over, ramping in; one that did not keeps the
 * events it counted (a new margin applies to them), so a reload cannot burst. */
void shaping_rates_update(struct shaping_rates *r, const struct config_shaping *sh,
                          uint64_t now_ms);
void shaping_rates_free(struct shaping_rates *r);
/* Makes r's rates also hold across the nodes of a cluster (shared_limits.h), for destination
 * `dest` from egress address `egress`: an event goes once both this node's and the cluster's
 * rate let it. */
void shaping_rates_share(struct shaping_rates *r, struct shared_limits *shared, const char *dest,
                         const char *egress);
/* An smtp_client_pace_cb (rates: the struct shaping_rates). Counts a MAIL against the message
 * rate or a RCPT against the recipient rate and returns 0, or, when the window is full, the
 * milliseconds (at least 1) until it will not be. */
uint64_t shaping_rates_pace(void *rates, enum smtp_client_pace what, uint64_t now_ms);
/* Milliseconds from now_ms until the connection rate lets one more connection open (0: now),
 * and counting one that opens. */
uint64_t shaping_rates_connect_wait(const struct shaping_rates *r, uint64_t now_ms);
void shaping_rates_connected(struct shaping_rates *r, uint64_t now_ms);
/* 1 when none of the rates counts an event inside its window any more: the set can be dropped
 * and made anew (ramping in) without letting more than a rate into one window. */
int shaping_rates_idle(const struct shaping_rates *r, uint64_t now_ms);

#endif
