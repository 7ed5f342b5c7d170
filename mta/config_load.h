/*
 * Loading the configuration for a command: from the file given with -c, or the embedded default,
 * then through the relay lint, so no command (run, reload, check-config) can use a configuration
 * that relays for strangers unless the file acknowledges it, through the DKIM key loader, so
 * none can use a missing or unsafe signing key, and through the recipients loader, so a bad line
 * in a domain's recipients file refuses the configuration with its file:line, and through the
 * bounce category pattern files, so one that does not compile refuses it too.
 */
#ifndef SLUICE_CONFIG_LOAD_H
#define SLUICE_CONFIG_LOAD_H

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"

struct dkim_signer_set;
struct recipients;
struct auth_users;
struct public_suffixes;

/* Returns the configuration, or NULL after writing "file:line:column: message" lines into err.
 * The DKIM keys are loaded and checked too, so a bad key refuses the configuration. */
struct config *config_load_for_command(const char *path, struct buf *err);
/* The same, also handing over what was loaded with it: the DKIM signer set (one reference) in
 * *signers and the domains' recipients tables in *recipients (NULL pointers: not wanted). */
struct config *config_load_with_signers(const char *path, struct dkim_signer_set **signers,
                                        struct recipients **recipients, struct buf *err);
/* The file (or the embedded default) as written, without the relay, recipients and DKIM gates: for
 * commands that only read it, such as `sluice queue` (which must work while a key is broken) and
 * `sluice relay-test` (which shows what the gates would refuse). */
struct config *config_load_ungated(const char *path, struct buf *err);
/* Loads relay.users into *out (NULL when unset): 0, or -1 with "file:line: message" lines in err.
 * Blocking, like the configuration itself. */
int config_auth_users(const struct config *cfg, struct auth_users **out, struct buf *err);
/* The signer set of cfg's dkim entries, keys loaded; NULL after writing "file:line:column:
 * message" lines (naming the key file when the key is at fault) into err. Blocking. */
struct dkim_signer_set *config_dkim_signers(const struct config *cfg, struct buf *err);
/* Loads inbound.public_suffix_list into *out when inbound.dmarc is not ignore (else NULL): 0, or
 * -1 with a "file:line:column: key: problem" line in err. Blocking. */
int config_public_suffixes(const struct config *cfg, struct public_suffixes **out,
                           struct buf *err);
/* Logs each non-empty line of `lines` as one `event` record at `level`, its text in "msg". */
void config_log_lines(enum log_level level, const char *event, const struct buf *lines);

#endif
