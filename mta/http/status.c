#include "mta/http/status.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/time.h>

#include "lib/xalloc.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/http/status_recent.h"

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static json_t *dest_json(const struct dest_summary *d)
{
    json_t *o = json_pack("{s:s, s:I, s:I}", "destination", d->key, "queued_jobs",
                          (json_int_t)d->queued, "connections", (json_int_t)d->conns);
    if (d->suspended) {
        json_object_set_new(o, "suspended", json_true());
        json_object_set_new(o, "suspended_for_s",
                            d->until_ms ? json_integer((json_int_t)(d->until_ms + 999) / 1000)
                                        : json_null());
    }
    if (d->paused)
        json_object_set_new(o, "throttled_egress", json_integer(d->paused));
    if (d->backoff)
        json_object_set_new(o, "backoff_egress", json_integer(d->backoff));
    if (d->why[0])
        json_object_set_new(o, "reason", json_string(d->why));
    return o;
}

static json_t *totals_json(const struct mail_metrics_totals *t, double per)
{
    return json_pack("{s:f, s:f, s:f, s:f}", "received", (double)t->received / per, "delivered",
                     (double)t->delivered / per, "deferred", (double)t->deferred / per, "bounced",
                     (double)t->bounced / per);
}

static json_t *queue_json(const struct scheduler_summary *q, int64_t now)
{
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "messages", (json_int_t)q->messages, "on_disk",
                  (json_int_t)q->on_disk, "pending", (json_int_t)q->rcpts_pending, "deferred",
                  (json_int_t)q->rcpts_deferred, "bouncing", (json_int_t)q->rcpts_failed,
                  "destinations", (json_int_t)q->destinations);
    json_object_set_new(o, "oldest_age_s",
                        q->oldest_ms ? json_integer((json_int_t)(now - q->oldest_ms) / 1000)
                                     : json_null());
    return o;
}

void status_json(const struct status_sources *src, const char *caller, struct buf *out)
{
    int64_t now = now_ms();
    struct mail_metrics_totals total, recent;
    mail_metrics_totals(&total);
    mail_metrics_recent(&recent);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "version", SLUICE_VERSION, "hostname", src->hostname,
                  "user", src->run_user, "started_at", (json_int_t)(src->started_ms / 1000),
                  "uptime_s", (json_int_t)((now - src->started_ms) / 1000));
    json_object_set_new(o, "caller", caller != NULL ? json_string(caller) : json_null());
    json_object_set_new(o, "totals",
                        json_pack("{s:I, s:I, s:I, s:I}", "received", (json_int_t)total.received,
                                  "delivered", (json_int_t)total.delivered, "deferred",
                                  (json_int_t)total.deferred, "bounced",
                                  (json_int_t)total.bounced));
    json_object_set_new(o, "rates_per_minute", totals_json(&recent, MAIL_METRICS_RATE_MINUTES));
    json_object_set_new(o, "rate_minutes", json_integer(MAIL_METRICS_RATE_MINUTES));
    json_object_set_new(o, "minutes", status_minutes_json());
    json_object_set_new(o, "alarms", status_alarms_json());
    json_object_set_new(o, "connections",
                        json_pack("{s:I, s:I}", "smtp_in", (json_int_t)src->conns_in, "http",
                                  (json_int_t)src->http_conns));
    json_t *top = json_array(), *held = json_array();
    if (src->scheduler != NULL) {
        struct scheduler_summary *q = xmalloc(sizeof *q); /* ~8 KB: not on the stack */
        scheduler_summarize(src->scheduler, q);
        json_object_set_new(o, "queue", queue_json(q, now));
        json_object_set_new(json_object_get(o, "connections"), "smtp_out",
                            json_integer(q->conns_out));
        for (size_t i = 0; i < q->ntop; i++)
            json_array_append_new(top, dest_json(&q->top[i]));
        for (size_t i = 0; i < q->nheld; i++)
            json_array_append_new(held, dest_json(&q->held[i]));
        free(q);
    } else {
        json_object_set_new(o, "queue", json_null()); /* stopping */
    }
    json_object_set_new(o, "top_destinations", top);
    json_object_set_new(o, "held_destinations", held);
    char *text = json_dumps(o, JSON_COMPACT);
    buf_append_str(out, text);
    buf_append(out, "\n", 1);
    free(text);
    json_decref(o);
}

/* ---- the terminal summary (`sluice status`) ---- */

static const char *str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "?";
}

static json_int_t int_at(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* "3d04h", "2h05m", "4m10s", "12s" */
void status_age_append(struct buf *out, long long s)
{
    if (s >= 86400)
        buf_printf(out, "%lldd%02lldh", (long long)s / 86400, (long long)s % 86400 / 3600);
    else if (s >= 3600)
        buf_printf(out, "%lldh%02lldm", (long long)s / 3600, (long long)s % 3600 / 60);
    else if (s >= 60)
        buf_printf(out, "%lldm%02llds", (long long)s / 60, (long long)s % 60);
    else
        buf_printf(out, "%llds", (long long)s);
}

static void render_dest(json_t *d, struct buf *out)
{
    buf_printf(out, "  %-32s %6lld queued %3lld conn", str_at(d, "destination"),
               (long long)int_at(d, "queued_jobs"), (long long)int_at(d, "connections"));
    if (json_is_true(json_object_get(d, "suspended"))) {
        json_t *left = json_object_get(d, "suspended_for_s");
        buf_printf(out, "  suspended ");
        if (json_is_integer(left))
            status_age_append(out, json_integer_value(left));
        else
            buf_printf(out, "until resumed");
    }
    if (int_at(d, "throttled_egress") > 0)
        buf_printf(out, "  throttled (%lld egress)", (long long)int_at(d, "throttled_egress"));
    if (int_at(d, "backoff_egress") > 0)
        buf_printf(out, "  backing off (%lld egress)", (long long)int_at(d, "backoff_egress"));
    const char *why = json_string_value(json_object_get(d, "reason"));
    if (why != NULL)
        buf_printf(out, "  by %s", why);
    buf_printf(out, "\n");
}

static void render_rates(json_t *o, const char *label, struct buf *out, int rate)
{
    buf_printf(out, "%s", label);
    static const char *const keys[] = {"received", "delivered", "deferred", "bounced"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (rate)
            buf_printf(out, "%s %.1f %s", i ? "," : "", json_number_value(v), keys[i]);
        else
            buf_printf(out, "%s %lld %s", i ? "," : "", (long long)json_integer_value(v), keys[i]);
    }
    buf_printf(out, "\n");
}

int status_render(const char *text, size_t len, struct buf *out)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -EINVAL;
    }
    buf_printf(out, "sluice %s on %s, running as %s, up ", str_at(o, "version"),
               str_at(o, "hostname"), str_at(o, "user"));
    status_age_append(out, int_at(o, "uptime_s"));
    buf_printf(out, "\n");
    json_t *q = json_object_get(o, "queue");
    if (json_is_object(q)) {
        buf_printf(out,
                   "queue: %lld messages (%lld on disk); recipients %lld pending, %lld deferred, "
                   "%lld bouncing",
                   (long long)int_at(q, "messages"), (long long)int_at(q, "on_disk"),
                   (long long)int_at(q, "pending"), (long long)int_at(q, "deferred"),
                   (long long)int_at(q, "bouncing"));
        if (json_is_integer(json_object_get(q, "oldest_age_s"))) {
            buf_printf(out, "; oldest ");
            status_age_append(out, int_at(q, "oldest_age_s"));
        }
        buf_printf(out, "\n");
    } else {
        buf_printf(out, "queue: the daemon is stopping\n");
    }
    render_rates(json_object_get(o, "totals"), "since start:", out, 0);
    char label[64];
    snprintf(label, sizeof label,
             "per minute, last %lld min:", (long long)int_at(o, "rate_minutes"));
    render_rates(json_object_get(o, "rates_per_minute"), label, out, 1);
    json_t *c = json_object_get(o, "connections");
    buf_printf(out, "connections: %lld SMTP in, %lld SMTP out, %lld HTTP\n",
               (long long)int_at(c, "smtp_in"), (long long)int_at(c, "smtp_out"),
               (long long)int_at(c, "http"));
    static const char *const lists[][2] = {{"top_destinations", "busiest destinations"},
                                           {"held_destinations", "held back"}};
    for (size_t l = 0; l < 2; l++) {
        json_t *a = json_object_get(o, lists[l][0]);
        buf_printf(out, "%s:%s\n", lists[l][1], json_array_size(a) == 0 ? " none" : "");
        size_t i;
        json_t *d;
        json_array_foreach(a, i, d) render_dest(d, out);
    }
    json_decref(o);
    return 0;
}
