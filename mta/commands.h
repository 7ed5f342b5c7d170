/*
 * The `sluice` subcommands. Each takes the arguments after its name and returns the process exit
 * status (0 success, 1 failure, 2 usage error).
 */
#ifndef SLUICE_COMMANDS_H
#define SLUICE_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_config_keys(int argc, char **argv);
int cmd_relay_test(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_dkim(int argc, char **argv);

/* Parses "-c FILE" / "--config FILE" / "--config=FILE" at argv[*i]; returns 1 when it took it. */
int command_config_option(int argc, char **argv, int *i, const char **path);

#endif
