/*
 * The recent parts of the status (status.h): the counts of each of the last minutes, and the
 * recent alarms, the last error records the log kept (lib/log.h: log_alarms). Built as JSON for
 * the status builder; both come from rings their modules keep, so nothing here is kept.
 */
#ifndef SLUICE_STATUS_RECENT_H
#define SLUICE_STATUS_RECENT_H

#include <jansson.h>

/* [{"start": unix s, "received", "delivered", "deferred", "bounced"}, ...]: the last
 * MAIL_METRICS_RATE_MINUTES whole minutes, oldest first, then the minute under way. New
 * reference. */
json_t *status_minutes_json(void);
/* The log's recent error records, each the record's JSON object, newest first. New reference. */
json_t *status_alarms_json(void);

#endif
