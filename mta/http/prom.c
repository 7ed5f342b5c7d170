#include "mta/http/prom.h"

#include <sys/time.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"
#include "mta/delivery/mail_metrics.h"
#include "policy/suppression.h"

static void gauge(struct buf *out, const char *name, const char *help, double value)
{
    metrics_family_begin(out, name, "gauge", help);
    metrics_sample(out, name, NULL, NULL, value);
}

static void counter(struct buf *out, const char *name, const char *help, uint64_t value)
{
    metrics_family_begin(out, name, "counter", help);
    metrics_sample(out, name, NULL, NULL, (double)value);
}

static double queued_of(const struct dest_summary *d)
{
    return (double)d->queued;
}

static double suspended_of(const struct dest_summary *d)
{
    return (double)d->suspended;
}

static double paused_of(const struct dest_summary *d)
{
    return (double)d->paused;
}

static double backoff_of(const struct dest_summary *d)
{
    return (double)d->backoff;
}

/* One family with a sample per destination of list (the summary's top or held ones). */
static void per_destination(struct buf *out, const char *name, const char *help,
                            const struct dest_summary *list, size_t n,
                            double (*value)(const struct dest_summary *))
{
    metrics_family_begin(out, name, "gauge", help);
    for (size_t i = 0; i < n; i++)
        metrics_sample(out, name, "destination", list[i].key, value(&list[i]));
}

static void queue_gauges(struct buf *out, const struct scheduler_summary *q)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    gauge(out, "sluice_queue_messages", "Messages in the queue.", (double)q->messages);
    gauge(out, "sluice_queue_messages_on_disk",
          "Queued messages waiting on disk outside the active queue.", (double)q->on_disk);
    metrics_family_begin(out, "sluice_queue_recipients", "gauge",
                         "Recipients of the messages in the active queue, by state.");
    metrics_sample(out, "sluice_queue_recipients", "state", "pending", (double)q->rcpts_pending);
    metrics_sample(out, "sluice_queue_recipients", "state", "deferred", (double)q->rcpts_deferred);
    metrics_sample(out, "sluice_queue_recipients", "state", "bouncing", (double)q->rcpts_failed);
    gauge(out, "sluice_queue_oldest_message_age_seconds",
          "Age of the oldest queued message; 0 when the queue is empty.",
          q->oldest_ms ? (double)(now - q->oldest_ms) / 1000.0 : 0.0);
    gauge(out, "sluice_connections_out", "SMTP connections open to other servers.",
          (double)q->conns_out);
    gauge(out, "sluice_destinations", "Destinations the scheduler keeps.", (double)q->destinations);
    gauge(out, "sluice_destinations_suspended",
          "Destinations suspended (admin, reply rule or "
          "failed connections).",
          (double)q->suspended);
    gauge(out, "sluice_destinations_throttled",
          "Destinations with an egress address paused by a "
          "throttle.",
          (double)q->throttled);
    gauge(out, "sluice_destinations_backing_off",
          "Destinations with an egress address held back "
          "by a backoff.",
          (double)q->backing_off);
    per_destination(out, "sluice_destination_queued_jobs",
                    "Queued jobs of the destinations with the most.", q->top, q->ntop, queued_of);
    per_destination(out, "sluice_destination_suspended", "1: the destination is suspended.",
                    q->held, q->nheld, suspended_of);
    per_destination(out, "sluice_destination_throttled_egress",
                    "Egress addresses paused by a throttle.", q->held, q->nheld, paused_of);
    per_destination(out, "sluice_destination_backoff_egress",
                    "Egress addresses held back by a backoff.", q->held, q->nheld, backoff_of);
}

void prom_render(const struct status_sources *src, struct buf *out)
{
    metrics_family_begin(out, "sluice_build_info", "gauge", "The running version.");
    metrics_sample(out, "sluice_build_info", "version", SLUICE_VERSION, 1);
    gauge(out, "sluice_start_time_seconds", "When the daemon started (unix time).",
          (double)src->started_ms / 1000.0);
    gauge(out, "sluice_connections_in", "SMTP sessions open.", (double)src->conns_in);
    gauge(out, "sluice_http_connections", "HTTP connections open.", (double)src->http_conns);
    counter(out, "sluice_log_dropped_lines_total",
            "Log lines dropped because the log target fell behind.", log_dropped_count());
    mail_metrics_render(out);
    if (src->dns != NULL) {
        struct dns_stats dns;
        dns_resolver_stats(src->dns, &dns);
        counter(out, "sluice_dns_queries_total", "DNS questions sent to a server.", dns.queries);
        counter(out, "sluice_dns_cache_hits_total", "DNS questions answered from the cache.",
                dns.cache_hits);
        metrics_histogram_render(&dns.latency, out);
    }
    if (src->suppression != NULL) {
        struct suppression_stats st;
        suppression_stats_get(src->suppression, &st);
        counter(out, "sluice_suppression_reads_total",
                "Reads of the suppression list on the thread pool (batches).", st.reads);
        counter(out, "sluice_suppression_lookups_total",
                "Addresses looked up in the suppression list.", st.lookups);
    }
    if (src->scheduler != NULL) {
        struct scheduler_summary *q = xmalloc(sizeof *q);
        scheduler_summarize(src->scheduler, q);
        queue_gauges(out, q);
        free(q);
    }
}
