#include "mta/http/status_recent.h"

#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mta/delivery/mail_metrics.h"

json_t *status_minutes_json(void)
{
    json_t *a = json_array();
    for (unsigned ago = MAIL_METRICS_RATE_MINUTES + 1; ago-- > 0;) {
        struct mail_metrics_totals t;
        int64_t start = mail_metrics_minute(ago, &t);
        json_array_append_new(
            a, json_pack("{s:I, s:I, s:I, s:I, s:I}", "start", (json_int_t)start, "received",
                         (json_int_t)t.received, "delivered", (json_int_t)t.delivered, "deferred",
                         (json_int_t)t.deferred, "bounced", (json_int_t)t.bounced));
    }
    return a;
}

json_t *status_alarms_json(void)
{
    json_t *a = json_array();
    struct buf lines = BUF_INIT;
    log_alarms(&lines);
    const char *p = lines.data, *end = lines.data + lines.len;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_t *rec = json_loadb(p, (size_t)(nl - p), 0, NULL);
        if (rec != NULL)
            json_array_insert_new(a, 0, rec);
        p = nl + 1;
    }
    buf_free(&lines);
    return a;
}
