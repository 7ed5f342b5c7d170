/*
 * Refuses, at load time, a configuration that would relay for strangers: trusted networks that
 * cover more public address space than the bounds below (one by one or together, IPv4 carried in
 * IPv6 by NAT64, 6to4, Teredo or mapping counted as IPv4), or a submission listener reachable from
 * outside without SMTP AUTH. The daemon runs it at start-up and on every reload, and `sluice
 * check-config` runs it too, so such a configuration never goes live unless the file acknowledges
 * it in relay.i_understand_this_is_an_open_relay (then every start logs a warning).
 */
#ifndef SLUICE_RELAY_LINT_H
#define SLUICE_RELAY_LINT_H

#include "lib/buf.h"
#include "lib/config.h"

/* The most public space the trusted networks may cover, each and all together: an IPv4 /16 (a
 * large organisation's block) and an IPv6 /32 (a whole provider allocation). Private, loopback,
 * documentation and other special-purpose space (policy/ip_space.h) does not count. */
#define RELAY_LINT_MAX_PUBLIC_V4 16
#define RELAY_LINT_MAX_PUBLIC_V6 32

/* Returns the number of problems found; each is one "file:line:column: message" line in err. */
int policy_relay_lint(const struct config *cfg, struct buf *err);

#endif
