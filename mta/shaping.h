/*
 * Shaping: the limits mail to one destination is sent under. Which rule applies to a recipient
 * domain and its MX hosts (the site's shaping.rules, then the shipped provider rules, first match
 * wins), and the destination key under which the scheduler keeps the limits' state, so that every
 * domain a provider hosts shares one set. The rules and their values belong to the configuration;
 * what is returned here borrows from it.
 */
#ifndef SLUICE_SHAPING_H
#define SLUICE_SHAPING_H

#include <stddef.h>

#include "lib/config.h"
#include "mta/route.h"

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

#endif
