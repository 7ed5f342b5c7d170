#include "mta/http/status_page.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/http/status.h"

/* Text as HTML character data or a quoted attribute value. */
static void put_text(struct buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            buf_append_str(out, "&amp;");
            break;
        case '<':
            buf_append_str(out, "&lt;");
            break;
        case '>':
            buf_append_str(out, "&gt;");
            break;
        case '"':
            buf_append_str(out, "&quot;");
            break;
        case '\'':
            buf_append_str(out, "&#39;");
            break;
        default:
            buf_append(out, s, 1);
        }
    }
}

static const char *str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "?";
}

static long long int_at(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
    "h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}"
    "p.sub{color:#666;margin:.2em 0 0}"
    "table{border-collapse:collapse;background:#fff}"
    "th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}"
    "th{background:#eee;text-align:left}td.name,td.text{text-align:left}td.name{white-space:nowrap}"
    "td.text{max-width:60em;"
    "word-break:break-word}"
    "tr.suspended td.state{color:#a00;font-weight:bold}tr.throttled td.state{color:#a60}"
    "p.none{color:#666}";

static void put_head(struct buf *out, json_t *o)
{
    buf_printf(out,
               "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta http-equiv=\"refresh\" content=\"%d\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<title>sluice on ",
               STATUS_PAGE_REFRESH_S);
    put_text(out, str_at(o, "hostname"));
    buf_printf(out, "</title><style>%s</style></head>\n<body>\n<h1>sluice on ", style);
    put_text(out, str_at(o, "hostname"));
    buf_append_str(out, "</h1>\n<p class=\"sub\">version ");
    put_text(out, str_at(o, "version"));
    buf_append_str(out, ", running as ");
    put_text(out, str_at(o, "user"));
    buf_append_str(out, ", up <span id=\"uptime\">");
    status_age_append(out, int_at(o, "uptime_s"));
    buf_printf(out, "</span>; this page reloads every %d s</p>\n", STATUS_PAGE_REFRESH_S);
}

static void put_queue(struct buf *out, json_t *q)
{
    buf_append_str(out, "<h2>Queue</h2>\n");
    if (!json_is_object(q)) {
        buf_append_str(out, "<p class=\"none\">The daemon is stopping.</p>\n");
        return;
    }
    static const char *const cells[][2] = {{"messages", "messages"},
                                           {"on_disk", "on disk"},
                                           {"pending", "recipients pending"},
                                           {"deferred", "deferred"},
                                           {"bouncing", "bouncing"}};
    size_t n = sizeof cells / sizeof cells[0];
    buf_append_str(out, "<table id=\"queue\"><tr>");
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "<th>%s</th>", cells[i][1]);
    buf_append_str(out, "<th>oldest</th></tr>\n<tr>");
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "<td id=\"queue-%s\">%lld</td>", cells[i][0], int_at(q, cells[i][0]));
    buf_append_str(out, "<td id=\"queue-oldest\">");
    json_t *oldest = json_object_get(q, "oldest_age_s");
    if (json_is_integer(oldest))
        status_age_append(out, json_integer_value(oldest));
    else
        buf_append_str(out, "-");
    buf_append_str(out, "</td></tr></table>\n");
}

static void put_counts(struct buf *out, json_t *o)
{
    static const char *const keys[] = {"received", "delivered", "deferred", "bounced"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        buf_printf(out, "<td>%lld</td>", int_at(o, keys[i]));
}

static void put_minutes(struct buf *out, json_t *o)
{
    buf_append_str(out, "<h2>Last minutes</h2>\n<table id=\"minutes\"><tr><th>minute (UTC)</th>"
                        "<th>received</th><th>delivered</th><th>deferred</th><th>bounced</th>"
                        "</tr>\n");
    json_t *minutes = json_object_get(o, "minutes"), *m;
    size_t i, n = json_array_size(minutes);
    json_array_foreach(minutes, i, m)
    {
        time_t start = (time_t)int_at(m, "start");
        struct tm tm;
        gmtime_r(&start, &tm);
        buf_printf(out, "<tr><td class=\"name\">%02d:%02d%s</td>", tm.tm_hour, tm.tm_min,
                   i + 1 == n ? " (so far)" : "");
        put_counts(out, m);
        buf_append_str(out, "</tr>\n");
    }
    buf_append_str(out, "<tr id=\"totals\"><td class=\"name\">since start</td>");
    put_counts(out, json_object_get(o, "totals"));
    json_t *c = json_object_get(o, "connections");
    buf_printf(out,
               "</tr></table>\n<p id=\"connections\">Connections: %lld SMTP in, %lld SMTP out, "
               "%lld HTTP</p>\n",
               int_at(c, "smtp_in"), int_at(c, "smtp_out"), int_at(c, "http"));
}

/* A destination's row; what holds it back in the state cell, its reason apart. */
static void put_dest(struct buf *out, json_t *d)
{
    int suspended = json_is_true(json_object_get(d, "suspended"));
    long long paused = int_at(d, "throttled_egress"), backoff = int_at(d, "backoff_egress");
    buf_printf(out, "<tr class=\"%s\"><td class=\"name\">",
               suspended           ? "suspended"
               : paused || backoff ? "throttled"
                                   : "open");
    put_text(out, str_at(d, "destination"));
    buf_printf(out, "</td><td>%lld</td><td>%lld</td><td class=\"name state\">",
               int_at(d, "queued_jobs"), int_at(d, "connections"));
    const char *sep = "";
    if (suspended) {
        json_t *left = json_object_get(d, "suspended_for_s");
        buf_append_str(out, "suspended ");
        if (json_is_integer(left))
            buf_append_str(out, "for "), status_age_append(out, json_integer_value(left));
        else
            buf_append_str(out, "until resumed");
        sep = ", ";
    }
    if (paused)
        buf_printf(out, "%sthrottled (%lld egress)", sep, paused), sep = ", ";
    if (backoff)
        buf_printf(out, "%sbacking off (%lld egress)", sep, backoff), sep = ", ";
    if (!*sep)
        buf_append_str(out, "open");
    buf_append_str(out, "</td><td class=\"text reason\">");
    const char *why = json_string_value(json_object_get(d, "reason"));
    put_text(out, why != NULL ? why : "");
    buf_append_str(out, "</td></tr>\n");
}

static void put_dests(struct buf *out, json_t *list, const char *id, const char *title)
{
    buf_printf(out, "<h2>%s</h2>\n", title);
    if (json_array_size(list) == 0) {
        buf_printf(out, "<p class=\"none\" id=\"%s\">None.</p>\n", id);
        return;
    }
    buf_printf(out,
               "<table id=\"%s\"><tr><th>destination</th><th>queued jobs</th><th>connections</th>"
               "<th>state</th><th>reason</th></tr>\n",
               id);
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d) put_dest(out, d);
    buf_append_str(out, "</table>\n");
}

/* An alarm's fields besides its time, level and event: key=value, strings as they are. */
static void put_alarm_fields(struct buf *out, json_t *a)
{
    const char *key, *sep = "";
    json_t *v;
    json_object_foreach(a, key, v)
    {
        if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "event") == 0)
            continue;
        buf_append_str(out, sep);
        put_text(out, key);
        buf_append_str(out, "=");
        if (json_is_string(v)) {
            put_text(out, json_string_value(v));
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            put_text(out, text != NULL ? text : "?");
            free(text);
        }
        sep = " ";
    }
}

static void put_alarms(struct buf *out, json_t *alarms)
{
    buf_append_str(out, "<h2>Recent alarms</h2>\n");
    if (json_array_size(alarms) == 0) {
        buf_append_str(out, "<p class=\"none\" id=\"alarms\">None since the start.</p>\n");
        return;
    }
    buf_append_str(out, "<table id=\"alarms\"><tr><th>time (UTC)</th><th>event</th>"
                        "<th>details</th></tr>\n");
    size_t i;
    json_t *a;
    json_array_foreach(alarms, i, a)
    {
        buf_append_str(out, "<tr><td class=\"name\">");
        put_text(out, str_at(a, "ts"));
        buf_append_str(out, "</td><td class=\"name event\">");
        put_text(out, str_at(a, "event"));
        buf_append_str(out, "</td><td class=\"text\">");
        put_alarm_fields(out, a);
        buf_append_str(out, "</td></tr>\n");
    }
    buf_append_str(out, "</table>\n");
}

int status_page_render(const char *json, size_t len, struct buf *out)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -EINVAL;
    }
    put_head(out, o);
    put_queue(out, json_object_get(o, "queue"));
    put_minutes(out, o);
    put_dests(out, json_object_get(o, "held_destinations"), "held", "Held back");
    put_dests(out, json_object_get(o, "top_destinations"), "busiest", "Busiest destinations");
    put_alarms(out, json_object_get(o, "alarms"));
    buf_append_str(out, "</body></html>\n");
    json_decref(o);
    return 0;
}
