/*
 * The DMARC sink of an inbound message (inbound.dmarc, policy/dmarc.h): it reads the header section
 * as the message streams in, starts the lookup of the From domain's record as soon as the From
 * field is known, and at end of data, after DKIM verification has filled in its results, evaluates
 * the SPF result of MAIL and those: an Authentication-Results result, the smtp.dmarc event and,
 * under enforce, the refusal (p=reject) or the quarantine field (p=quarantine). Added to a message
 * by smtp_sinks.c after the DKIM verification sink; loop only.
 */
#ifndef SLUICE_SMTP_DMARC_H
#define SLUICE_SMTP_DMARC_H

#include "mta/server/smtp_sinks.h"

/* The field put in front of a message whose domain asks for quarantine, under enforce. */
#define SMTP_DMARC_QUARANTINE_FIELD "X-Sluice-Quarantine: dmarc\r\n"

/* The sink, or NULL when DMARC does not apply (not inbound, inbound.dmarc ignore, a sender of
 * ours, no resolver or no public suffix list). */
struct body_sink *smtp_dmarc_sink_new(const struct smtp_sink_context *ctx);

#endif
