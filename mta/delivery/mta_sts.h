/*
 * MTA-STS policies of the domains mail goes to (RFC 8461), for the destinations whose shaping
 * says `tls: mta-sts` (or `dane`): the `_mta-sts` TXT record through the daemon's resolver, the
 * policy fetched over HTTPS (certificate verified, size and time limits, no redirects) from
 * mta-sts.<domain>, cached by id and max_age in memory (the mta_sts.max_domains most recently
 * asked about) and in the spool (<spool>/mta-sts/, written on the thread pool, read back at start,
 * when files past their max_age are removed), and looked up again when the TXT id changes. The
 * scheduler owns the cache and asks it before it queues a domain's mail; the policy it gets is
 * borrowed for the moment of the call.
 */
#ifndef SLUICE_MTA_STS_H
#define SLUICE_MTA_STS_H

#include <uv.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "mta/delivery/mta_sts_policy.h"

struct mta_sts;

/* A cache whose files are in <spool_dir>/mta-sts; starts reading them back on the thread pool. */
struct mta_sts *mta_sts_new(uv_loop_t *loop, struct dns_resolver *dns, const char *spool_dir,
                            const struct config *cfg);
/* New settings (mta_sts.*, tls.ca_file) after a reload; cfg is copied from. */
void mta_sts_configure(struct mta_sts *s, const struct config *cfg);
/* Policies that cannot be had (fetch errors, invalid policies) are counted in rpt (tls_rpt.h),
 * which must outlive the cache; NULL: not. */
struct tls_rpt;
void mta_sts_set_report(struct mta_sts *s, struct tls_rpt *rpt);
/* Shutdown: every caller still waiting is answered at once with NULL (from inside this call), and
 * fetches are cancelled. */
void mta_sts_stop(struct mta_sts *s);
/* Frees the cache once its lookups and file writes in flight have ended. */
void mta_sts_free(struct mta_sts *s);

/* policy: the domain's valid policy, or NULL when it has none (or it could not be had). */
typedef void (*mta_sts_cb)(void *arg, const struct mta_sts_policy *policy);

/* The policy of `domain`. Returns 1 with *policy set (NULL: none) when the answer is known now: a
 * cached policy that has not expired (the TXT record is checked again in the background every
 * mta_sts.recheck), or no policy checked within that time. Otherwise returns 0 and cb(arg, ...)
 * runs once, later, when the lookup (and fetch) ends. */
int mta_sts_get(struct mta_sts *s, const char *domain, const struct mta_sts_policy **policy,
                mta_sts_cb cb, void *arg);

#endif
