/*
 * The daemon: one libuv loop running the listeners and SMTP sessions over the spool. It loads the
 * configuration, recovers the spool, binds, drops privileges, and then handles SIGHUP (reload: a
 * bad file is reported and the running configuration stays) and SIGTERM/SIGINT (orderly stop).
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

/* Runs until stopped. config_path NULL: the embedded default. Returns the process exit status. */
int daemon_run(const char *config_path);

#endif
