/* Matching remote replies against the reply rules, and their hit counts (see reply_rules.h). */
#include "mta/delivery/reply_rules.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/delivery/shaping.h"

struct rule_state {
    uint64_t hits, fired;
    uint64_t *recent; /* ring of the last `threshold` match times (threshold > 1 only) */
    size_t next, nrecent;
};

struct reply_rules_state {
    const struct config *cfg; /* borrowed: the destination holds a reference */
    struct rule_state *rules; /* one per cfg->shaping.reply_rules */
};

/* "4.7.28" fits "4.7.28" exactly; a pattern ending at a dot ("4.7.") fits what starts with it. */
static int enhanced_fits(const char *pattern, const char *enhanced)
{
    size_t len = strlen(pattern);
    if (len > 0 && pattern[len - 1] == '.')
        return strncmp(enhanced, pattern, len) == 0;
    return strcmp(enhanced, pattern) == 0;
}

int reply_rule_fits(const struct config_reply_rule *rule, int code, const char *enhanced,
                    const char *text)
{
    if (rule->code != 0 && (int)rule->code != code)
        return 0;
    if (rule->enhanced != NULL && !enhanced_fits(rule->enhanced, enhanced ? enhanced : ""))
        return 0;
    return rule->regex == NULL || regexec(rule->regex, text ? text : "", 0, NULL, 0) == 0;
}

int reply_rule_applies(const struct config_reply_rule *rule, const char *domain,
                       const char *mx_host)
{
    if (rule->nmatch_domain == 0 && rule->nmatch_mx == 0)
        return 1;
    const char *hosts[1] = {mx_host};
    return shaping_names_match(rule->match_domain, rule->nmatch_domain, rule->match_mx,
                               rule->nmatch_mx, domain, hosts, mx_host != NULL);
}

long reply_rules_find(const struct config *cfg, const char *domain, const char *mx_host, int code,
                      const char *enhanced, const char *text)
{
    for (size_t i = 0; i < cfg->shaping.nreply_rules; i++) {
        const struct config_reply_rule *rule = &cfg->shaping.reply_rules[i];
        if (reply_rule_applies(rule, domain, mx_host) &&
            reply_rule_fits(rule, code, enhanced, text))
            return (long)i;
    }
    return -1;
}

struct reply_rules_state *reply_rules_state_new(const struct config *cfg)
{
    struct reply_rules_state *st = xcalloc(1, sizeof *st);
    st->cfg = cfg;
    st->rules = xcalloc(cfg->shaping.nreply_rules + 1, sizeof *st->rules);
    return st;
}

void reply_rules_state_free(struct reply_rules_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->cfg->shaping.nreply_rules; i++)
        free(st->rules[i].recent);
    free(st->rules);
    free(st);
}

int reply_rules_hit(struct reply_rules_state *st, size_t index, uint64_t now_ms)
{
    const struct config_reply_rule *rule = &st->cfg->shaping.reply_rules[index];
    struct rule_state *rs = &st->rules[index];
    rs->hits++;
    mail_metrics_rule(rule->name, "matched");
    if (rule->threshold > 1) {
        if (rs->recent == NULL)
            rs->recent = xcalloc(rule->threshold, sizeof *rs->recent);
        rs->recent[rs->next] = now_ms;
        rs->next = (rs->next + 1) % rule->threshold;
        if (rs->nrecent < rule->threshold)
            rs->nrecent++;
        /* Full ring: the oldest of the last `threshold` matches is at next. */
        if (rs->nrecent < rule->threshold ||
            now_ms - rs->recent[rs->next] > rule->threshold_window_ms)
            return 0;
        rs->nrecent = 0;
    }
    rs->fired++;
    mail_metrics_rule(rule->name, "fired");
    return 1;
}

uint64_t reply_rules_hits(const struct reply_rules_state *st, size_t index)
{
    return st->rules[index].hits;
}

uint64_t reply_rules_fired(const struct reply_rules_state *st, size_t index)
{
    return st->rules[index].fired;
}

static const char *const action_names[] = {"suspend", "suspend_destination", "backoff", "bounce"};

const char *reply_rule_action_name(enum reply_rule_action a)
{
    return (size_t)a < sizeof action_names / sizeof action_names[0] ? action_names[a] : "?";
}

/* 1 when rule `index` is worth showing at the destination called key: a rule for it (its domain,
 * or the MX pattern a provider's destination is named by), or one that matched there. */
static int rule_shown(const struct reply_rules_state *st, size_t index, const char *key)
{
    const struct config_reply_rule *rule = &st->cfg->shaping.reply_rules[index];
    int scoped = rule->nmatch_domain > 0 || rule->nmatch_mx > 0;
    return st->rules[index].hits > 0 || (scoped && reply_rule_applies(rule, key, key));
}

void reply_rules_describe(const struct reply_rules_state *st, const char *key, struct buf *out)
{
    size_t n = 0;
    buf_printf(out, "[");
    for (size_t i = 0; i < st->cfg->shaping.nreply_rules; i++) {
        const struct config_reply_rule *rule = &st->cfg->shaping.reply_rules[i];
        const struct rule_state *rs = &st->rules[i];
        if (!rule_shown(st, i, key))
            continue;
        buf_printf(out,
                   "%s{\"rule\":\"%s\",\"action\":\"%s\",\"hits\":%llu,\"fired\":%llu,"
                   "\"dry_run\":%s,\"shipped\":%s}",
                   n++ ? "," : "", rule->name, reply_rule_action_name(rule->action),
                   (unsigned long long)rs->hits, (unsigned long long)rs->fired,
                   rule->dry_run ? "true" : "false", rule->shipped ? "true" : "false");
    }
    buf_printf(out, "]");
}

void reply_rules_explain(const struct reply_rules_state *st, const char *key, struct buf *out)
{
    for (size_t i = 0; i < st->cfg->shaping.nreply_rules; i++) {
        const struct config_reply_rule *rule = &st->cfg->shaping.reply_rules[i];
        if (!rule_shown(st, i, key))
            continue;
        buf_printf(out, "  reply rule %s (%s%s%s): %llu hits, acted %llu times\n", rule->name,
                   reply_rule_action_name(rule->action), rule->dry_run ? ", dry run" : "",
                   rule->shipped ? ", shipped" : "", (unsigned long long)st->rules[i].hits,
                   (unsigned long long)st->rules[i].fired);
    }
}
