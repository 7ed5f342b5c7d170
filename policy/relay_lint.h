/*
 * Refuses, at load time, a configuration that would relay for strangers: a trusted network wider
 * than the bounds below, or a submission listener reachable from outside without SMTP AUTH. The
 * daemon runs it at start-up and on every reload, and `sluice check-config` runs it too, so such a
 * configuration never goes live unless the file acknowledges it in
 * relay.i_understand_this_is_an_open_relay (then every start logs a warning).
 */
#ifndef SLUICE_RELAY_LINT_H
#define SLUICE_RELAY_LINT_H

#include "lib/buf.h"
#include "lib/config.h"

/* The widest trusted networks accepted: an IPv4 /8 (10.0.0.0/8 is a common private network) and an
 * IPv6 /32 (a whole provider allocation). Anything wider trusts a good part of the Internet. */
#define RELAY_LINT_MIN_PREFIX_V4 8
#define RELAY_LINT_MIN_PREFIX_V6 32

/* Returns the number of problems found; each is one "file:line:column: message" line in err. */
int policy_relay_lint(const struct config *cfg, struct buf *err);

#endif
