/*
 * The gates `sluice run` passes before it starts, beyond those of loading the configuration
 * (mta/config_load.h): who the daemon runs as, its log file, its spool, its listeners' addresses,
 * the TLS certificate and key, the users file, and whether the files read again at reload stay
 * readable once the daemon is no longer root. `sluice check-config` runs the same list, so what it
 * calls ok is what run starts with; only what needs the real thing is left to run: binding the
 * ports (a running daemon holds them) and taking the spool's control socket. Problems are errors
 * or warnings; warnings are logged as config.warning events and do not stop anything.
 */
#ifndef SLUICE_RUN_GATES_H
#define SLUICE_RUN_GATES_H

#include <openssl/ssl.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/run_user.h"

struct auth_users;

/* What the gates loaded on the way, for run to use (each NULL when taken or not configured). */
struct run_gates {
    struct run_user user;     /* who the daemon runs as */
    SSL_CTX *tls;             /* tls.certificate with tls.key; NULL when unset */
    struct auth_users *users; /* relay.users; NULL when unset */
};

/* Runs every gate over cfg, which was loaded from config_path (NULL: the embedded default).
 * Returns 0 with *g filled (free it with run_gates_free), or -1 with "file:line:column: key:
 * problem" lines in err (*g freed). Blocking: at start and in check-config. */
int run_gates_check(const struct config *cfg, const char *config_path, struct run_gates *g,
                    struct buf *err);
void run_gates_free(struct run_gates *g);

#endif
