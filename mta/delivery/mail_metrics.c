#include "mta/delivery/mail_metrics.h"

#include <time.h>

#include "lib/metrics.h"
#include "mta/delivery/bounce_category.h"

static struct metrics_counter received = {
    .name = "sluice_messages_received_total",
    .help = "Messages committed to the spool, by listener.",
    .labels = {"listener"},
};
static struct metrics_counter results = {
    .name = "sluice_recipients_total",
    .help = "Recipients' results (delivered, deferred, bounced: refused, expired or bounced by "
            "an administrator), by destination and egress address.",
    .labels = {"destination", "egress", "result"},
};
static struct metrics_counter tenants = {
    .name = "sluice_tenant_recipients_total",
    .help = "Recipients' results (delivered, deferred, bounced: refused, expired or bounced by "
            "an administrator), by tenant (\"\": mail of no tenant).",
    .labels = {"tenant", "result"},
    .keep_in_other = 1u << 1, /* past the bound, "other" tenants by result */
};
static struct metrics_counter bounces = {
    .name = "sluice_bounces_total",
    .help = "Recipients bounced, by destination and bounce category (message-expired: given up "
            "at expiry; admin-bounce: bounced by an administrator).",
    .labels = {"destination", "category"},
};
static struct metrics_counter rules = {
    .name = "sluice_reply_rule_hits_total",
    .help = "Replies a reply rule matched (what=matched), and times it acted (what=fired: its "
            "threshold reached; a dry-run rule only logs).",
    .labels = {"rule", "what"},
};
static struct metrics_counter feedback = {
    .name = "sluice_feedback_reports_total",
    .help = "Reports that came back to the feedback addresses: complaints and late bounces matched "
            "to mail we sent, and unrecognized ones (about mail we did not send).",
    .labels = {"kind"},
};
static struct metrics_counter feedback_alarms = {
    .name = "sluice_feedback_alarms_total",
    .help = "Times the unrecognized-feedback alarm was raised (more than "
            "feedback.alarm_threshold reports in feedback.alarm_window).",
};
/* From a second to the default expiry (5 days). */
static struct metrics_histogram delivery_delay = {
    .name = "sluice_delivery_delay_seconds",
    .help = "Time from a message's arrival to a recipient's delivery.",
    .bounds = {1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 5 * 86400},
};

/* Whatever the label sets: what `sluice status` sums up. */
static struct mail_metrics_totals totals;

/* The last minutes' counts, for rates: one slot per minute of the clock, reused in turn. */
#define RECENT_SLOTS (MAIL_METRICS_RATE_MINUTES + 1)
static struct {
    int64_t minute;
    struct mail_metrics_totals n;
} recent[RECENT_SLOTS];

static struct mail_metrics_totals *recent_now(void)
{
    int64_t minute = (int64_t)time(NULL) / 60;
    size_t slot = (size_t)(minute % RECENT_SLOTS);
    if (recent[slot].minute != minute) {
        recent[slot].minute = minute;
        recent[slot].n = (struct mail_metrics_totals){0};
    }
    return &recent[slot].n;
}

int64_t mail_metrics_minute(unsigned ago, struct mail_metrics_totals *t)
{
    int64_t minute = (int64_t)time(NULL) / 60 - ago;
    size_t slot = (size_t)(minute % RECENT_SLOTS);
    int kept = ago <= MAIL_METRICS_RATE_MINUTES && recent[slot].minute == minute;
    *t = kept ? recent[slot].n : (struct mail_metrics_totals){0};
    return minute * 60;
}

void mail_metrics_recent(struct mail_metrics_totals *t)
{
    *t = (struct mail_metrics_totals){0};
    /* The minutes before this one, whole: the current one has only begun. */
    for (unsigned ago = 1; ago <= MAIL_METRICS_RATE_MINUTES; ago++) {
        struct mail_metrics_totals m;
        mail_metrics_minute(ago, &m);
        t->received += m.received;
        t->delivered += m.delivered;
        t->deferred += m.deferred;
        t->bounced += m.bounced;
    }
}

void mail_metrics_received(const char *listener)
{
    metrics_counter_add(&received, &listener, 1);
    recent_now()->received++;
}

void mail_results_add(struct mail_results *t, enum mail_result r, unsigned category)
{
    t->n[r]++;
    if (r == MAIL_BOUNCED)
        t->bounced[category < BOUNCE_CAT_COUNT ? category : BOUNCE_CAT_OTHER]++;
}

/* Each label set is looked up once per batch of results, with its count. */
void mail_metrics_results(const char *destination, const char *tenant, const char *egress,
                          const struct mail_results *t)
{
    static const char *const result_names[MAIL_RESULT_COUNT] = {"delivered", "deferred", "bounced"};
    struct mail_metrics_totals *now = recent_now();
    totals.delivered += t->n[MAIL_DELIVERED], now->delivered += t->n[MAIL_DELIVERED];
    totals.deferred += t->n[MAIL_DEFERRED], now->deferred += t->n[MAIL_DEFERRED];
    totals.bounced += t->n[MAIL_BOUNCED], now->bounced += t->n[MAIL_BOUNCED];
    for (enum mail_result r = 0; r < MAIL_RESULT_COUNT; r++) {
        const char *labels[] = {destination, egress != NULL ? egress : "none", result_names[r]};
        const char *by_tenant[] = {tenant, result_names[r]};
        if (t->n[r] > 0) {
            metrics_counter_add(&results, labels, t->n[r]);
            metrics_counter_add(&tenants, by_tenant, t->n[r]);
        }
    }
    for (enum bounce_category c = 0; c < BOUNCE_CAT_COUNT; c++) {
        const char *labels[] = {destination, bounce_category_name(c)};
        if (t->bounced[c] > 0)
            metrics_counter_add(&bounces, labels, t->bounced[c]);
    }
}

void mail_metrics_feedback(const char *kind)
{
    metrics_counter_add(&feedback, &kind, 1);
}

void mail_metrics_feedback_alarm(void)
{
    metrics_counter_add(&feedback_alarms, NULL, 1);
}

void mail_metrics_rule(const char *rule, const char *what)
{
    const char *labels[] = {rule, what};
    metrics_counter_add(&rules, labels, 1);
}

/* From a tenth of a millisecond (the journal's group commit) to the slowest disks. */
static struct metrics_histogram spool_commit = {
    .name = "sluice_spool_commit_seconds",
    .help = "Time to make a received message durable, from the end of its data.",
    .bounds = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5},
};
static struct metrics_counter spool_commit_failures = {
    .name = "sluice_spool_commit_failures_total",
    .help = "Received messages the spool could not make durable (refused with 451 or 452).",
};

void mail_metrics_spool_commit(uint64_t ns, int ok)
{
    if (ok)
        metrics_histogram_observe(&spool_commit, (double)ns / 1e9);
    else
        metrics_counter_add(&spool_commit_failures, NULL, 1);
}

void mail_metrics_delivered_after(int64_t ms)
{
    metrics_histogram_observe(&delivery_delay, ms > 0 ? (double)ms / 1000.0 : 0.0);
}

void mail_metrics_totals(struct mail_metrics_totals *t)
{
    *t = totals;
    t->received = metrics_counter_total(&received);
}

void mail_metrics_render(struct buf *out)
{
    metrics_counter_render(&received, out);
    metrics_counter_render(&results, out);
    metrics_counter_render(&tenants, out);
    metrics_counter_render(&bounces, out);
    metrics_counter_render(&rules, out);
    metrics_counter_render(&feedback, out);
    metrics_counter_render(&feedback_alarms, out);
    metrics_histogram_render(&delivery_delay, out);
    metrics_histogram_render(&spool_commit, out);
    metrics_counter_render(&spool_commit_failures, out);
}

void mail_metrics_free(void)
{
    metrics_counter_free(&received);
    metrics_counter_free(&results);
    metrics_counter_free(&tenants);
    metrics_counter_free(&bounces);
    metrics_counter_free(&rules);
    metrics_counter_free(&feedback);
    metrics_counter_free(&feedback_alarms);
    metrics_counter_free(&spool_commit_failures);
}
