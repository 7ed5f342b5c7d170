/*
 * What a destination does about its receivers' replies (see dest_int.h): the reply rules act
 * (suspend an egress address or the destination, back an egress address off to a named set of
 * slower limits, bounce the destination's mail) and a throttle is the fallback for a 421 or a rate
 * reply that no rule acted on; the limits then climb back one step per clean interval
 * (recovery.h). Every change is logged as a transition with its reason, and described for
 * `sluice queue list --json` and `sluice queue destinations`.
 */
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "mta/delivery/bounce_class.h"
#include "mta/delivery/dest_int.h"

void slot_apply(struct slot *sl, const struct config_shaping *sh, uint64_t now)
{
    struct recovery_limits lim;
    recovery_limits(&sl->rec, sh, &lim);
    sl->max = sh->connections;
    sl->cap = lim.connections;
    sl->msgs_per_conn = lim.messages_per_connection;
    sl->rcpts_per_conn = lim.recipients_per_connection;
    struct config_shaping paced = *sh;
    paced.rate = lim.rate;
    shaping_rates_update(sl->rates, &paced, now);
}

/* A transition of an egress address's limits: event, why, and the limits it now sends under. */
static void slot_log_limits(const struct dest *d, const struct slot *sl, enum log_level level,
                            const char *event, const char *why, const char *msg)
{
    struct recovery_limits lim;
    recovery_limits(&sl->rec, d->shaping, &lim);
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "destination", d->key);
    log_str(&r, "egress", sl->address);
    log_int(&r, "connections", sl->cap);
    log_int(&r, "level_permille", sl->rec.level);
    if (lim.rate.count > 0) {
        log_int(&r, "rate", (long long)lim.rate.count);
        log_int(&r, "rate_period_ms", (long long)lim.rate.period_ms);
    }
    log_int(&r, "messages_per_connection", sl->msgs_per_conn);
    log_int(&r, "recipients_per_connection", sl->rcpts_per_conn);
    if (why != NULL && why[0] != '\0')
        log_str(&r, "reason", why);
    log_str(&r, "msg", msg);
    log_end(&r);
}

void slot_throttle(struct dest *d, struct slot *sl)
{
    const struct config_shaping *sh = d->shaping;
    uint64_t now = uv_now(d->env->loop);
    uint64_t pause = sh->nretry > 0 ? sh->retry_ms[0] : THROTTLE_PAUSE_MIN_MS;
    if (pause < THROTTLE_PAUSE_MIN_MS)
        pause = THROTTLE_PAUSE_MIN_MS;
    if (pause > THROTTLE_PAUSE_MAX_MS)
        pause = THROTTLE_PAUSE_MAX_MS;
    recovery_throttle(&sl->rec, sh, now);
    slot_apply(sl, sh, now);
    sl->paused_until = now + pause;
    slot_log_limits(d, sl, LOG_WARN, "delivery.throttle", "a 421 or a rate reply",
                    "the receiver asked us to slow down: limits halved and a pause");
}

void slot_clean(struct dest *d, struct slot *sl)
{
    uint64_t now = uv_now(d->env->loop);
    if (!recovery_clean(&sl->rec, d->shaping, now))
        return;
    slot_apply(sl, d->shaping, now);
    const char *why = sl->backoff_why[0] ? sl->backoff_why : "a throttle";
    if (sl->rec.level < RECOVERY_FULL) {
        slot_log_limits(d, sl, LOG_INFO, "delivery.recover", why,
                        "a clean interval: one step back towards the full limits");
        return;
    }
    slot_log_limits(d, sl, LOG_INFO, "delivery.recovered", why, "back to the full limits");
    sl->backoff_why[0] = '\0';
}

/* A suspension of d or of sl (NULL: the destination) by a rule, logged with its reason. */
static void dest_log_suspend(const struct dest *d, const struct slot *sl, uint64_t for_ms,
                             const char *why)
{
    struct logrec r;
    log_begin(&r, LOG_WARN, "delivery.suspend");
    log_str(&r, "destination", d->key);
    if (sl != NULL)
        log_str(&r, "egress", sl->address);
    log_int(&r, "for_ms", (long long)for_ms);
    log_str(&r, "reason", why);
    log_str(&r, "msg",
            sl != NULL ? "a reply rule suspended this egress address"
                       : "a reply rule suspended the destination");
    log_end(&r);
}

static void dest_log_rule(const struct dest *d, const struct slot *sl,
                          const struct config_reply_rule *rule, const struct smtp_client_outcome *o,
                          const char *mx_name, uint64_t hits)
{
    struct logrec r;
    log_begin(&r, LOG_WARN, "delivery.rule");
    log_str(&r, "destination", d->key);
    log_str(&r, "egress", sl->address);
    log_str(&r, "rule", rule->name);
    log_str(&r, "action", reply_rule_action_name(rule->action));
    if (rule->action == REPLY_RULE_BACKOFF)
        log_str(&r, "backoff", rule->backoff);
    log_int(&r, "for_ms", (long long)rule->duration_ms);
    log_bool(&r, "dry_run", rule->dry_run);
    log_int(&r, "hits", (long long)hits);
    if (mx_name != NULL)
        log_str(&r, "mx", mx_name);
    log_int(&r, "code", o->code);
    if (o->enhanced[0])
        log_str(&r, "enhanced", o->enhanced);
    log_str(&r, "reply", o->text != NULL ? o->text : "");
    if (rule->reason != NULL)
        log_str(&r, "reason", rule->reason);
    log_str(&r, "msg",
            rule->dry_run ? "a reply rule matched (dry run: it would act, but does not)"
                          : "a reply rule matched and acts");
    log_end(&r);
}

/* From now on for the rule's duration, d's mail fails: the reply, why, and with a 5xx code. */
static void dest_start_bounce(struct dest *d, const struct config_reply_rule *rule,
                              const struct smtp_client_outcome *o, uint64_t until)
{
    if (until > d->bounce_until)
        d->bounce_until = until;
    snprintf(d->bounce_text, sizeof d->bounce_text, "%s (reply rule %s%s%s)",
             o->text != NULL ? o->text : "", rule->name, rule->reason ? ": " : "",
             rule->reason ? rule->reason : "");
    d->bounce = (struct smtp_client_outcome){.code = o->code >= 500 ? o->code : 550,
                                             .stage = o->stage,
                                             .remote = o->remote,
                                             .text = d->bounce_text};
    snprintf(d->bounce.enhanced, sizeof d->bounce.enhanced, "%s",
             o->enhanced[0] ? o->enhanced : "5.0.0");
    d->bounce.enhanced[0] = '5';
}

/* Fails the mail queued at d while a bounce rule holds. */
static void dest_bounce_queue(struct dest *d)
{
    struct job *job;
    while ((job = dest_take_any(d)) != NULL)
        dest_report_all(d, job, &d->bounce, NULL);
}

/* Carries out rule `index` that fired on reply o at connection c. */
static void conn_rule_act(struct conn *c, const struct config_reply_rule *rule,
                          const struct smtp_client_outcome *o)
{
    struct dest *d = c->dest;
    struct slot *sl = c->slot;
    uint64_t now = uv_now(d->env->loop), until = now + rule->duration_ms;
    char why[DEST_WHY_MAX];
    snprintf(why, sizeof why, "reply rule %s", rule->name);
    switch (rule->action) {
    case REPLY_RULE_SUSPEND:
        if (until > sl->paused_until)
            sl->paused_until = until;
        memcpy(sl->why, why, sizeof why);
        dest_log_suspend(d, sl, rule->duration_ms, why);
        break;
    case REPLY_RULE_SUSPEND_DESTINATION:
        if (d->suspended_until != UINT64_MAX && until > d->suspended_until)
            d->suspended_until = until;
        memcpy(d->why, why, sizeof why);
        dest_log_suspend(d, NULL, rule->duration_ms, why);
        break;
    case REPLY_RULE_BACKOFF:
        recovery_backoff(&sl->rec, rule->backoff_set, until);
        slot_apply(sl, d->shaping, now);
        memcpy(sl->backoff_why, why, sizeof why);
        slot_log_limits(d, sl, LOG_WARN, "delivery.backoff", why,
                        "a reply rule backs this egress address off to slower limits");
        break;
    case REPLY_RULE_BOUNCE:
        dest_start_bounce(d, rule, o, until);
        dest_bounce_queue(d);
        break;
    }
    if (!fair_queue_empty(&d->queue) && rule->action != REPLY_RULE_BOUNCE)
        dest_arm_timer(d, until);
}

int conn_apply_rules(struct conn *c, const struct smtp_client_outcome *outcomes, size_t n)
{
    struct dest *d = c->dest;
    const char *domain = c->job != NULL ? c->job->domain : d->key;
    for (size_t i = 0; i < n; i++) {
        const struct smtp_client_outcome *o = &outcomes[i];
        if (!o->remote || o->code < 400)
            continue;
        long index = reply_rules_find(d->cfg, domain, c->mx_name, o->code, o->enhanced, o->text);
        if (index < 0)
            continue;
        /* One reply counts once, however many recipients it answered. */
        const struct config_reply_rule *rule = &d->cfg->shaping.reply_rules[index];
        if (!reply_rules_hit(d->rules, (size_t)index, uv_now(d->env->loop)))
            return 0;
        dest_log_rule(d, c->slot, rule, o, c->mx_name, reply_rules_hits(d->rules, (size_t)index));
        if (rule->dry_run)
            return 0;
        conn_rule_act(c, rule, o);
        return 1;
    }
    return 0;
}

static void log_end_of(const struct dest *d, const struct slot *sl, const char *why)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, "delivery.resume");
    log_str(&r, "destination", d->key);
    if (sl != NULL)
        log_str(&r, "egress", sl->address);
    log_str(&r, "reason", why);
    log_str(&r, "msg", "the suspension a reply rule put in place has ended");
    log_end(&r);
}

void dest_note_ends(struct dest *d, uint64_t now)
{
    if (d->why[0] != '\0' && d->suspended_until <= now) {
        log_end_of(d, NULL, d->why);
        d->why[0] = '\0';
    }
    for (size_t i = 0; i < d->nslots; i++) {
        struct slot *sl = d->slots[i];
        if (sl->why[0] != '\0' && sl->paused_until <= now) {
            log_end_of(d, sl, sl->why);
            sl->why[0] = '\0';
        }
    }
}

int dest_bouncing(const struct dest *d, uint64_t now, struct smtp_client_outcome *o)
{
    if (d->bounce_until <= now)
        return 0;
    if (o != NULL)
        *o = d->bounce;
    return 1;
}

int conn_held(const struct conn *c, uint64_t now)
{
    const struct dest *d = c->dest;
    return (c->slot->paused_until > now && c->slot->why[0] != '\0') ||
           (d->suspended_until > now && d->why[0] != '\0') || dest_bouncing(d, now, NULL);
}

int64_t dest_rule_hold_ms(const struct dest *d, uint64_t now)
{
    if (d->suspended_until > now)
        return d->why[0] != '\0' && d->suspended_until != UINT64_MAX
                   ? (int64_t)(d->suspended_until - now)
                   : -1;
    uint64_t soonest = UINT64_MAX;
    int by_rule = 0;
    for (size_t i = 0; i < d->nslots; i++) {
        const struct slot *sl = d->slots[i];
        uint64_t free_at = sl->paused_until > now ? sl->paused_until : now;
        by_rule |= sl->paused_until > now && sl->why[0] != '\0';
        if (free_at < soonest)
            soonest = free_at;
    }
    return by_rule ? (int64_t)(soonest - now) : -1;
}

void dest_describe(const struct dest *d, struct buf *out)
{
    uint64_t now = uv_now(d->env->loop);
    buf_printf(out, "{\"destination\":\"%s\",\"queued_jobs\":%zu,\"connections\":%u,", d->key,
               d->queued, d->conns);
    if (d->retired)
        buf_printf(out, "\"retired\":true,");
    if (d->suspended_until == UINT64_MAX)
        buf_printf(out, "\"suspended\":\"admin\",");
    else if (d->suspended_until > now)
        buf_printf(out, "\"suspended_ms\":%llu,", (unsigned long long)(d->suspended_until - now));
    if (d->suspended_until > now && d->why[0])
        buf_printf(out, "\"suspended_by\":\"%s\",", d->why);
    if (d->bounce_until > now)
        buf_printf(out, "\"bouncing_ms\":%llu,", (unsigned long long)(d->bounce_until - now));
    buf_printf(out, "\"egress\":[");
    for (size_t i = 0; i < d->nslots; i++) {
        const struct slot *sl = d->slots[i];
        buf_printf(out, "%s{\"address\":\"%s\",\"active\":%u,\"cap\":%u,\"level_permille\":%u",
                   i ? "," : "", sl->address, sl->active, sl->cap, sl->rec.level);
        if (sl->paused_until > now)
            buf_printf(out, ",\"paused\":true,\"paused_ms\":%llu",
                       (unsigned long long)(sl->paused_until - now));
        if (sl->paused_until > now && sl->why[0])
            buf_printf(out, ",\"suspended_by\":\"%s\"", sl->why);
        if (sl->rec.hold_until > now)
            buf_printf(out, ",\"backoff_ms\":%llu", (unsigned long long)(sl->rec.hold_until - now));
        if (sl->backoff_why[0])
            buf_printf(out, ",\"backoff_by\":\"%s\"", sl->backoff_why);
        warmup_describe(sl->warm, out);
        buf_printf(out, "}");
    }
    buf_printf(out, "],\"reply_rules\":");
    reply_rules_describe(d->rules, d->key, out);
    buf_printf(out, "}");
}

/* "1h05m", "4m10s", "12s": what is left of a pause, for people. */
static void time_left(uint64_t ms, char *out, size_t size)
{
    uint64_t s = (ms + 999) / 1000;
    if (s >= 3600)
        snprintf(out, size, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, size, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(out, size, "%llus", (unsigned long long)s);
}

/* An egress address's lines: its connections and limits, what holds it back, its warm-up. */
static void slot_explain(const struct slot *sl, uint64_t now, struct buf *out)
{
    char left[32];
    buf_printf(out, "  egress %s: %u open of %u connections, limits at %u%%\n", sl->address,
               sl->active, sl->cap, sl->rec.level / 10);
    if (sl->paused_until > now) {
        time_left(sl->paused_until - now, left, sizeof left);
        buf_printf(out, "    suspended by %s: %s left\n", sl->why[0] ? sl->why : "a throttle",
                   left);
    }
    if (sl->rec.hold_until > now) {
        time_left(sl->rec.hold_until - now, left, sizeof left);
        buf_printf(out, "    backed off by %s: %s left, then back up step by step\n",
                   sl->backoff_why[0] ? sl->backoff_why : "a reply rule", left);
    } else if (sl->rec.level < RECOVERY_FULL) {
        buf_printf(out, "    recovering from %s: one step up per clean interval\n",
                   sl->backoff_why[0] ? sl->backoff_why : "a throttle");
    }
    warmup_explain(sl->warm, "    ", out);
}

void dest_explain(const struct dest *d, struct buf *out)
{
    uint64_t now = uv_now(d->env->loop);
    char left[32];
    buf_printf(out, "destination %s: %zu jobs queued, %u connections open%s\n", d->key, d->queued,
               d->conns, d->retired ? " (retired by a reload)" : "");
    if (d->suspended_until == UINT64_MAX) {
        buf_printf(out, "  suspended by an administrator until `sluice queue resume`\n");
    } else if (d->suspended_until > now) {
        time_left(d->suspended_until - now, left, sizeof left);
        buf_printf(out, "  suspended by %s: %s left\n",
                   d->why[0] ? d->why : "connection failures in a row", left);
    }
    if (d->bounce_until > now) {
        time_left(d->bounce_until - now, left, sizeof left);
        buf_printf(out, "  mail fails for %s more with: %d %s %s\n", left, d->bounce.code,
                   d->bounce.enhanced, d->bounce_text);
    }
    for (size_t i = 0; i < d->nslots; i++)
        slot_explain(d->slots[i], now, out);
    reply_rules_explain(d->rules, d->key, out);
}

void dest_summarize(const struct dest *d, struct dest_summary *out)
{
    uint64_t now = uv_now(d->env->loop);
    *out = (struct dest_summary){.queued = d->queued, .conns = d->conns};
    snprintf(out->key, sizeof out->key, "%s", d->key);
    out->suspended = d->suspended_until > now;
    if (out->suspended && d->suspended_until != UINT64_MAX)
        out->until_ms = d->suspended_until - now;
    if (out->suspended)
        snprintf(out->why, sizeof out->why, "%s", d->why);
    for (size_t i = 0; i < d->nslots; i++) {
        const struct slot *sl = d->slots[i];
        out->paused += sl->paused_until > now;
        out->backoff += sl->rec.hold_until > now;
        if (!out->why[0] && (sl->paused_until > now || sl->rec.hold_until > now))
            snprintf(out->why, sizeof out->why, "%s", sl->why[0] ? sl->why : sl->backoff_why);
    }
}
