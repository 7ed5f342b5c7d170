/*
 * The daemon's mail counters: messages received per listener, recipients' results per
 * destination, egress address and result, and per tenant (what the scheduler recorded: tried,
 * expired or bounced by an administrator), bounces per destination and category,
 * reply rules' matches, reports that came back to the feedback addresses and the alarm on
 * unrecognized ones, and how long commits took and delivered mail waited. Counted where the events
 * happen (the SMTP server's commit, the scheduler's record of a result) as plain integers, so
 * they cost a few comparisons when nobody reads them; mta/http/prom.c renders them for GET
 * /metrics. Loop thread only; the storage is static, mail_metrics_free gives its series back at
 * exit.
 */
#ifndef SLUICE_MAIL_METRICS_H
#define SLUICE_MAIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "mta/delivery/bounce_category.h"

struct mail_metrics_totals {
    uint64_t received, delivered, deferred, bounced;
};

/* A message committed to the spool (after its 250) on the listener named. */
void mail_metrics_received(const char *listener);
/* What happened to recipients of one destination and tenant, counted together before
 * mail_metrics_results looks their label sets up. */
enum mail_result { MAIL_DELIVERED, MAIL_DEFERRED, MAIL_BOUNCED, MAIL_RESULT_COUNT };
struct mail_results {
    uint64_t n[MAIL_RESULT_COUNT];
    uint64_t bounced[BOUNCE_CAT_COUNT];
};
/* One recipient's result; category (enum bounce_category) counts only for MAIL_BOUNCED. */
void mail_results_add(struct mail_results *t, enum mail_result r, unsigned category);
/* The results of recipients of tenant's mail (NULL: of none) at destination, tried from egress
 * (NULL: none, no connection was made: the route failed, the mail expired or was bounced by an
 * administrator before it was tried). */
void mail_metrics_results(const char *destination, const char *tenant, const char *egress,
                          const struct mail_results *t);
/* A reply rule (shaping.reply_rules[].name) matched a reply, or fired (reached its threshold). */
void mail_metrics_rule(const char *rule, const char *what);
/* A report that came back to a feedback address, by kind: "complaint", "late_bounce" or
 * "unrecognized" (about mail we did not send). */
void mail_metrics_feedback(const char *kind);
/* The unrecognized-feedback alarm was raised. */
void mail_metrics_feedback_alarm(void);
/* A message's commit to the spool (from the end of its data to durable, or failed) took ns. */
void mail_metrics_spool_commit(uint64_t ns, int ok);
/* A recipient delivered after waiting ms since the message was received. */
void mail_metrics_delivered_after(int64_t ms);

void mail_metrics_totals(struct mail_metrics_totals *t);
/* What the last MAIL_METRICS_RATE_MINUTES whole minutes counted (by the wall clock), for rates. */
#define MAIL_METRICS_RATE_MINUTES 5
void mail_metrics_recent(struct mail_metrics_totals *t);
/* What the minute `ago` minutes before the current one counted (0: the current one, begun; zeros
 * beyond MAIL_METRICS_RATE_MINUTES). Returns when it began, unix seconds. */
int64_t mail_metrics_minute(unsigned ago, struct mail_metrics_totals *t);
/* Every family in the Prometheus text format. */
void mail_metrics_render(struct buf *out);
void mail_metrics_free(void);

#endif
