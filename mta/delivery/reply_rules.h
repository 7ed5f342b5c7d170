/*
 * Reply rules: which of the configuration's shaping.reply_rules (the site's, then the shipped
 * provider rules) a remote reply matches, for the destination and MX host that sent it, and each
 * rule's hits and recent matches at one destination, so that a rule with a threshold ("3 matches
 * in 1m") fires only at its N-th match. The rules and their compiled expressions belong to the
 * configuration; the destination (destination.c) owns one state per configuration it runs under
 * and carries out what a rule says.
 */
#ifndef SLUICE_REPLY_RULES_H
#define SLUICE_REPLY_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/config.h"

/* 1 when the rule's code, enhanced code and text (each that it gives) fit the reply. enhanced
 * and text may be NULL or empty. */
int reply_rule_fits(const struct config_reply_rule *rule, int code, const char *enhanced,
                    const char *text);
/* 1 when the rule is for recipient domain `domain` (may be NULL) or MX host `mx_host` (may be
 * NULL): a rule with no match is for every destination. */
int reply_rule_applies(const struct config_reply_rule *rule, const char *domain,
                       const char *mx_host);
/* The index of the first rule of cfg that applies and fits, or -1. */
long reply_rules_find(const struct config *cfg, const char *domain, const char *mx_host, int code,
                      const char *enhanced, const char *text);

/* Each rule's hits and recent matches at one destination. */
struct reply_rules_state;

struct reply_rules_state *reply_rules_state_new(const struct config *cfg);
void reply_rules_state_free(struct reply_rules_state *st);
/* Counts a match of rule `index` at now_ms. Returns 1 when it fires: its threshold-th match
 * within its threshold window (the matches counted are then forgotten, so the next firing needs
 * as many again). */
int reply_rules_hit(struct reply_rules_state *st, size_t index, uint64_t now_ms);
/* Matches of rule `index` so far, and times it fired. */
uint64_t reply_rules_hits(const struct reply_rules_state *st, size_t index);
uint64_t reply_rules_fired(const struct reply_rules_state *st, size_t index);
/* Appends a JSON list of the rules for the destination called `key` (a domain, or a provider's MX
 * pattern such as "*.yahoodns.net") and of every rule with hits: name, action, hits, fired,
 * dry_run, shipped. */
void reply_rules_describe(const struct reply_rules_state *st, const char *key, struct buf *out);
/* The same rules as lines of text for `sluice queue destinations`: "  reply rule NAME (ACTION[, dry
 * run][, shipped]): H hits, acted F times". */
void reply_rules_explain(const struct reply_rules_state *st, const char *key, struct buf *out);

/* "suspend", "suspend_destination", "backoff", "bounce". */
const char *reply_rule_action_name(enum reply_rule_action a);

#endif
