/*
 * The body sinks of an inbound SMTP transaction (mta/server/body_sink.h): which consumers a message
 * gets, chosen from the session's facts at DATA, and their glue to the spool, DKIM signing
 * (mta/dkim/dkim.h), DKIM verification (mta/dkim/dkim_check.h), clamd (policy/clamd.h), the
 * attachment check (policy/mime.h) and the feedback intake (mta/feedback/feedback_intake.h): each
 * logs its own events and turns its result into a decision. A new check of the message is one more
 * sink here; smtp_server_tx.c does not change.
 */
#ifndef SLUICE_SMTP_SINKS_H
#define SLUICE_SMTP_SINKS_H

#include <stdint.h>
#include <sys/socket.h>

#include "lib/config.h"
#include "mta/server/body_sink.h"
#include "spool/spool.h"

struct smtp_server;
struct spf_result;

/* What the sinks of a message may know of its session; copied by each sink. */
struct smtp_sink_context {
    struct smtp_server *srv;
    const struct config *cfg; /* the session's; sinks read it only while they report */
    uint64_t session;         /* the session's id, for the log */
    const char *queue_id;
    const struct sockaddr *client; /* the client's address, and as text */
    const char *client_text;
    const char *sender;            /* MAIL FROM, canonical; "" for <> */
    const struct spf_result *spf;  /* SPF's result from MAIL; NULL when not checked */
    const char *verp;              /* a report's: the VERP return path it was sent to, or NULL */
    unsigned inbound : 1;          /* the listener's role is inbound: the MX checks apply */
    unsigned relay_authorized : 1; /* the sender is ours (AUTH, trusted submission client) */
};

/* Adds the sinks that check, sign or verify this message, in the order they finish. */
void smtp_sinks_add_checks(struct body_sinks *set, const struct smtp_sink_context *ctx);

/* The spool's sink for `msg` (the sink owns it): add it last. Its finish puts the fields the
 * others gathered in front of the message and commits it; it accepts once the message is durable
 * and refuses with 452 4.3.1 or 451 4.3.0 when the commit failed. Freed while committing, it lets
 * the commit finish and hands a message made durable to the scheduler, unacknowledged. */
struct body_sink *smtp_store_new(const struct smtp_sink_context *ctx, struct spool_msg *msg);
/* The sink of a report for feedback.addresses (mta/feedback/feedback_intake.h), instead of the
 * spool's: it reads the report on the thread pool, logs and acts on it, then accepts. */
struct body_sink *smtp_report_new(const struct smtp_sink_context *ctx);
/* The size of the committed message (once the sink has accepted). */
uint64_t smtp_store_size(const struct body_sink *store);

#endif
