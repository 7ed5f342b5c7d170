/*
 * Delivery status notifications (RFC 3464, RFC 3461 §6): builds the report that tells the envelope
 * sender which recipients failed and why, are still being tried, or were passed on to a server
 * that reports no further; a report whose recipients do not all share one of the last two actions
 * reads as a failure report. The result is a whole message (header fields,
 * blank line, multipart/report body with CRLF line ends) ready to be spooled with a null sender.
 * Pure: no I/O.
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

enum dsn_action {
    DSN_ACTION_FAILED,  /* permanent failure or expiry */
    DSN_ACTION_DELAYED, /* still trying (warning); not sent by default */
    DSN_ACTION_RELAYED, /* delivered to a server that does not report further (NOTIFY=SUCCESS) */
};

/* One recipient's report. */
struct dsn_rcpt {
    const char *rcpt;  /* canonical address: Final-Recipient: rfc822; ... (utf-8; when
                          it has 8-bit octets, RFC 6533) */
    const char *orcpt; /* RFC 3461 ORCPT as "rfc822;addr" (Original-Recipient), or NULL */
    enum dsn_action action;
    const char *status;     /* RFC 3463 code "5.1.1"; derived from the reply when NULL/"" */
    int remote_code;        /* the remote reply code; 0 when no remote server answered */
    const char *remote_mta; /* Remote-MTA: dns; host (NULL when none) */
    const char *diagnostic; /* Diagnostic-Code: smtp; "550 5.1.1 ..." text (printable, one line),
                               or our own reason when remote_code is 0 */
    int64_t last_attempt;   /* unix seconds; 0: none */
    const char *category;   /* bounce category ("bad-mailbox"): X-Sluice-Category; NULL: none */
};

struct dsn_params {
    const char *reporting_mta; /* our host name: Reporting-MTA and the From: domain */
    const char *queue_id;      /* X-Sluice-Queue-ID of the original */
    const char *envid;         /* RFC 3461 ENVID (Original-Envelope-Id), or NULL */
    const char *sender;        /* the original envelope sender: the DSN's To: */
    int64_t arrival;           /* when the original was received (unix seconds) */
    int64_t now;               /* Date: */
    const struct dsn_rcpt *rcpts;
    size_t nrcpts;
    /* The original message as stored; only its header section is returned (RFC 3462
     * text/rfc822-headers), so a bounce never carries the body back, unless return_full. */
    const char *original;
    size_t original_len;
    /* RFC 3461 RET=FULL (§4.3: only when it reports a failure): a failure report returns the whole
     * original (message/rfc822) when it is at most full_max octets (and has no NUL and no line over
     * 998 octets), else its header section as without it. */
    int return_full;
    size_t full_max;
    const char *boundary_seed; /* makes the MIME boundary unique (e.g. the new queue id) */
};

/* Appends the DSN message to out. Returns 0, or -EINVAL when params lacks a sender (no DSN is
 * ever sent to the null sender), the reporting MTA or recipients. Header text from the original
 * is copied only inside the text/rfc822-headers part (message/global-headers when it has 8-bit
 * octets, RFC 6533), cut at 64 KiB; remote text is made printable ASCII and folded, so every
 * line ends in CRLF and stays within 998 octets. 8-bit recipient addresses make the report
 * message/global-delivery-status; such a DSN needs SMTPUTF8 to travel. */
int dsn_build(const struct dsn_params *params, struct buf *out);

#endif
