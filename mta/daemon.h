/*
 * The daemon: one libuv loop running the listeners and SMTP sessions over the spool. It loads the
 * configuration and passes the start-up gates (mta/run_gates.h), binds, hands the spool to its
 * user and becomes that user (mta/run_user.h), recovers the spool, and then handles SIGHUP
 * (reload: a bad file is reported and the running configuration stays) and SIGTERM/SIGINT
 * (orderly stop).
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

/* Runs until stopped. config_path NULL: the embedded default. Returns the process exit status. */
int daemon_run(const char *config_path);

#endif
