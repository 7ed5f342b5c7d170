/*
 * Puts the trace on a message we relay: a filter between the client's decoded DATA and the body
 * sinks (smtp_server_tx.c) that holds the header section, takes the tenant and the campaign from
 * the fields tenancy.tenant_header and tenancy.campaign_header name, and adds X-Sluice-Trace
 * (trace.h) and, with feedback.sender_id, Feedback-ID at its end. The fields go in before the
 * sinks see the message, so DKIM signs them (mta/dkim/dkim.c lists both): a receiver's report
 * then quotes a trace nobody altered on the way. Any X-Sluice-Trace or (when we add ours)
 * Feedback-ID the client sent is removed. The tenancy fields are removed from every message,
 * relayed or not, and read only from mail we relay.
 */
#ifndef SLUICE_TRACE_HEADER_H
#define SLUICE_TRACE_HEADER_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/config.h"

struct trace_header;

/* A filter for one message of `tenant` (the authenticated user, or NULL: the tenant field may
 * name it), with queue id `queue_id`, and `rcpt` when it has that one recipient (else NULL).
 * Without `relay` (mail we do not relay) it only removes the tenancy fields. cfg must outlive the
 * filter. */
struct trace_header *trace_header_new(const struct config *cfg, const char *queue_id,
                                      const char *tenant, const char *rcpt, int relay);
void trace_header_free(struct trace_header *th);
/* Feeds in[0..len) and appends what passes on to out. */
void trace_header_feed(struct trace_header *th, const char *in, size_t len, struct buf *out);
/* The message ended: appends what is still held (a message with no body). */
void trace_header_finish(struct trace_header *th, struct buf *out);
/* 1 once the header section has passed: the rest may bypass the filter. */
int trace_header_passing(const struct trace_header *th);
/* The tenant and the campaign of the message ("" when none; known once the header section
 * passed); valid until the filter is freed. */
const char *trace_header_tenant(const struct trace_header *th);
const char *trace_header_campaign(const struct trace_header *th);

#endif
