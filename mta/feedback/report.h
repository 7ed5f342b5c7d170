/*
 * Reads what receivers send back about our mail: complaint reports (ARF, RFC 5965, also the
 * redacted and headers-only forms Yahoo, AOL and others send, and Microsoft's JMRP, which
 * attaches the original without a feedback-report part) and bounces (DSNs, RFC 3464, and the
 * plain-text bounces that quote the original's header fields). Pure and bounded: the message is
 * in memory, nesting and field lengths are capped; only encoded parts are decoded into a copy.
 * The intake (feedback_intake.c) runs it on the thread pool; fuzzed by fuzz_feedback_report.c.
 */
#ifndef SLUICE_REPORT_H
#define SLUICE_REPORT_H

#include <stddef.h>

#include "mta/feedback/trace.h"

#define REPORT_FIELD_MAX 255

enum report_kind {
    REPORT_NONE,      /* neither a complaint nor a bounce */
    REPORT_COMPLAINT, /* ARF or JMRP */
    REPORT_BOUNCE,    /* DSN or a plain-text bounce */
};

/* What a report says; every string NUL-terminated, "" when not given, cut at REPORT_FIELD_MAX. */
struct feedback_report {
    enum report_kind kind;
    const char *format;                       /* "arf", "jmrp", "dsn", "bounce" or "none" */
    char provider[REPORT_FIELD_MAX + 1];      /* who reports: ARF's User-Agent, the DSN's
                                                 Reporting-MTA, else the domain of From */
    char feedback_type[REPORT_FIELD_MAX + 1]; /* ARF: abuse, fraud, ...; DSN: the action */
    char source_ip[REPORT_FIELD_MAX + 1];     /* ARF: where the reported message came from */
    char sender[REPORT_FIELD_MAX + 1];        /* the original's sender (From, else mail from) */
    char subject[REPORT_FIELD_MAX + 1];       /* the original's subject */
    char recipient[REPORT_FIELD_MAX + 1];     /* the recipient reported on (may be redacted) */
    char status[REPORT_FIELD_MAX + 1];        /* DSN: the recipient's status, e.g. 5.1.1 */
    char trace[TRACE_TOKEN_MAX + 1];          /* X-Sluice-Trace of the original, "" if none */
};

/* Reads the message msg[0..len) (header section and body, CRLF or LF line ends) into *r. */
void report_parse(const char *msg, size_t len, struct feedback_report *r);
/* 1 when the status says the recipient is gone for good (5.x.x), so the address is to be
 * suppressed: a DSN's failed action, or a plain bounce without a temporary status. */
int report_bounce_is_hard(const struct feedback_report *r);

#endif
