/*
 * The relay decision: the one stage that says whether a recipient may be accepted at all. It runs
 * first at RCPT, before any other rule, and nothing later can accept what it refused. A recipient
 * in one of our `domains` may be accepted from anyone (later stages still judge it); any other
 * recipient only when the session may relay: a submission listener and a trusted client or an
 * authenticated user, and then an address literal only with relay.allow_address_literals. An
 * inbound listener never relays.
 */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <sys/socket.h>

#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "policy/policy.h"

struct relay_query {
    const struct config_listener *listener;
    const struct sockaddr *client;
    const char *auth_user;        /* NULL when not authenticated */
    const struct smtp_addr *rcpt; /* canonical, from smtp_addr_parse */
};

/* Whether the session may relay at all: on a submission listener, an authenticated user (rule
 * "relay.authenticated") or a client in relay.trusted_networks (that network's rule and position).
 * Otherwise "Relay access denied" by the listener ("listener.inbound" or "relay.default_deny").
 * The relay decision asks it for recipients outside our domains; the session asks it whether a
 * message is ours to DKIM-sign. */
struct policy_decision policy_relay_authorized(const struct config *cfg,
                                               const struct config_listener *listener,
                                               const struct sockaddr *client,
                                               const char *auth_user);

/* The relay decision for one recipient (q->rcpt), in the order the top of this header gives. */
struct policy_decision policy_relay_check(const struct config *cfg, const struct relay_query *q);

#endif
