/*
 * The intake of what receivers send to feedback.addresses on an inbound listener: complaint
 * reports and late bounces. The SMTP server's report sink (mta/server/smtp_sinks.c) hands each
 * message to a feedback_read, which keeps its first FEEDBACK_REPORT_MAX octets and reads them on
 * the thread pool (report.h, then the trace's MAC, trace.h). Back on the loop,
 * feedback_report_handle logs a report matched to a message of ours (feedback.complaint,
 * bounce.late) and hands it to feedback_report_matched, or logs one about mail we never sent
 * (feedback.unrecognized) and counts it towards the alarm (feedback_alarm.h), which is logged and
 * optionally mailed to feedback.alarm_notify through the spool.
 */
#ifndef SLUICE_FEEDBACK_INTAKE_H
#define SLUICE_FEEDBACK_INTAKE_H

#include <stdint.h>

#include <uv.h>

#include "lib/config.h"
#include "mta/feedback/feedback_alarm.h"
#include "mta/feedback/report.h"
#include "mta/feedback/trace.h"
#include "spool/spool.h"

struct suppression;

/* Octets of a report that are read: the parts that matter come first; the rest of a long
 * attached original is dropped. */
#define FEEDBACK_REPORT_MAX (1024 * 1024)

struct scheduler;

/* 1 when addr (canonical) is one of feedback.addresses, compared ignoring case, or a VERP return
 * path at feedback.verp_domain. */
int feedback_is_address(const struct config *cfg, const char *addr);

/* What the thread pool made of a report. */
struct feedback_outcome {
    struct feedback_report report;
    enum trace_verdict verdict; /* of report.trace (TRACE_MALFORMED when there is none) */
    struct trace_fields trace;  /* what the trace says, when verdict is TRACE_VALID */
    int issued;                 /* the trace's queue id lies within our issuing window */
    int by_verp; /* the trace is the VERP return path's (the report quotes no valid one) */
};

struct feedback_read;
typedef void (*feedback_read_cb)(void *arg, const struct feedback_outcome *out);

/* A reader for one report sent to `verp` (a VERP return path of ours, or NULL), with a copy of
 * cfg's trace keys (a reload may free cfg meanwhile). */
struct feedback_read *feedback_read_new(uv_loop_t *loop, const struct config *cfg,
                                        const char *verp);
/* Takes the next bytes of the message (copied; past FEEDBACK_REPORT_MAX dropped). */
void feedback_read_write(struct feedback_read *fr, const char *data, size_t len);
/* Reads the message on the thread pool; cb runs on the loop, then the reader frees itself. */
void feedback_read_finish(struct feedback_read *fr, feedback_read_cb cb, void *arg);
/* Frees the reader at any point; while it is on the thread pool cb never runs and it is freed
 * when the work reports. */
void feedback_read_free(struct feedback_read *fr);

/* What handling a report needs of the server. */
struct feedback_site {
    uv_loop_t *loop;
    struct feedback_alarm *alarm;       /* the server's */
    struct spool *spool;                /* for the alarm's message */
    struct scheduler *const *scheduler; /* the server's field: read when that message is
                                           committed (NULL once stopping) */
    const char *client;                 /* the address the report came from */
    struct suppression *suppression;    /* the server's list; NULL: not kept */
};

/* Logs the report and acts on it (matched, or counted towards the alarm). */
void feedback_report_handle(const struct config *cfg, const struct feedback_outcome *out,
                            const struct feedback_site *site);

/* The one place a report about a message of ours reaches the suppression list: a complaint adds
 * the recipient to its tenant's list (out->trace.tenant; "" is the global one), for good; a late
 * bounce whose status says the mailbox or domain is gone (bounce categories bad-mailbox and
 * bad-domain, as at delivery) adds it to the global list for suppression.hard_bounce_expiry.
 * With store NULL (suppression.enabled false) nothing is written. Returns 1 when the report asks
 * for suppression. */
int feedback_report_matched(const struct config *cfg, const struct feedback_outcome *out,
                            struct suppression *store);

#endif
