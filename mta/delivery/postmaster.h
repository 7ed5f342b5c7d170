/*
 * The postmaster as a person (RFC 5321 §4.5.1): with server.postmaster set, mail for the bare
 * <postmaster> and for postmaster@ one of our domains (or server.hostname) is spooled for that
 * mailbox instead, and the DSNs that cannot be delivered (double bounces) are reported there, at
 * most server.postmaster_rate of them. The SMTP server asks at RCPT, the scheduler when a DSN
 * fails. Pure: the caller owns the quota and passes the clock in.
 */
#ifndef SLUICE_POSTMASTER_H
#define SLUICE_POSTMASTER_H

#include <stdint.h>

#include "lib/config.h"

/* The address to spool for the accepted recipient `rcpt` (canonical form): cfg's postmaster
 * mailbox when rcpt is one of our postmaster addresses and the mailbox is set, else rcpt. The
 * result lives as long as cfg or rcpt. */
const char *postmaster_redirect(const struct config *cfg, const char *rcpt);

/* 1 when addr is cfg's postmaster mailbox (any case); 0 when it is not or none is set. */
int postmaster_is_mailbox(const struct config *cfg, const char *addr);

/* Double bounces reported to the postmaster in the current period. */
struct postmaster_quota {
    int64_t period_start_ms; /* when the first report of the period went */
    uint64_t used;           /* reports in it */
};

/* Counts one report at now_ms if rate allows it: 1 (counted) or 0 (over the bound). A period
 * starts with the first report after the last one ended, so no period holds more than
 * rate.count; count 0 allows everything. */
int postmaster_quota_take(struct postmaster_quota *q, struct config_rate rate, int64_t now_ms);

/* Why a double bounce is not reported to the postmaster (no mailbox set; the failed message was
 * for the mailbox itself, to_postmaster; server.postmaster_rate reached), or NULL when it is: then
 * it has been counted in q. */
const char *postmaster_report_refusal(const struct config *cfg, struct postmaster_quota *q,
                                      int to_postmaster, int64_t now_ms);

#endif
