/*
 * POST /api/v1/inject: mail handed to the daemon over HTTP, one message or a batch
 * (inject_request.h), under the policy of a submission listener whose client authenticated as the
 * token's user: the RCPT decision for each recipient (relay, then the suppression list, read on the
 * thread pool for all of a message's recipients at once), the size limit, the trace and campaign
 * fields, DKIM signing, then the spool's commit through the same body sinks as SMTP's DATA
 * (mta/server/smtp_sinks.h). A message is answered with its queue id once it is
 * durable, each recipient with the SMTP reply it would have had. A batch's messages start in order,
 * a bounded number at a time so their commits share syncs; a client that leaves stops the ones not
 * started and those still reading the suppression list. The daemon owns the route (mta/daemon.c),
 * the server the connection.
 */
#ifndef SLUICE_API_INJECT_H
#define SLUICE_API_INJECT_H

#include "mta/http/http_route.h"

struct smtp_server;

/* The route's handler, given the daemon's SMTP server state: answers at once (400, 503) or later,
 * once every message of the request is committed or refused. */
void api_inject(struct smtp_server *srv, const struct http_call *call, struct http_answer *answer);

#endif
