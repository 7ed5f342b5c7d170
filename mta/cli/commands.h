/*
 * The `sluice` subcommands and what they share: the table of commands with their synopsis and
 * help, the option parser, usage errors that say what is wrong before the synopsis, and the report
 * of a failure (a configuration that does not load). Each command takes the arguments after its
 * name and returns the process exit status (0 success, 1 failure, 2 usage error). `sluice CMD
 * --help` is answered by main() from the table.
 */
#ifndef SLUICE_COMMANDS_H
#define SLUICE_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

#include "lib/buf.h"

int cmd_run(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_suppress(int argc, char **argv);
int cmd_config_keys(int argc, char **argv);
int cmd_log_events(int argc, char **argv);
int cmd_relay_test(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_dkim(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_audit_mx(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_tls_rpt(int argc, char **argv);

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;  /* one line for `sluice --help` */
    const char *synopsis; /* usage lines without "sluice ", '\n'-separated */
    const char *help;     /* what it does and its options, for `sluice CMD --help` */
};

extern const struct command commands[];
extern const size_t ncommands;

/* The command called name, or NULL. */
const struct command *command_find(const char *name);
/* Appends what the command does and its options (its help without the synopsis). */
void command_help_body(const struct command *c, struct buf *out);
/* Prints the command's synopsis and help (standard output for --help). */
void command_help(const struct command *c, FILE *out);
/* Prints the list of commands. */
void command_list(FILE *out);

/* Prints "sluice NAME: <what is wrong>", then the synopsis of NAME's first word, to standard
 * error; returns 2, the exit status of a usage error. */
int command_usage_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints what went wrong (err, as a loader or gate wrote it; a newline is added when it has none)
 * to standard error and frees err; returns 1, the exit status of a failure. */
int command_failed(struct buf *err);
/* A command NAME that takes no arguments and prints what describe appends (a reference generated
 * from a table); returns its exit status. */
int command_print_reference(const char *name, int argc, char **argv,
                            void (*describe)(struct buf *out));
/* The candidate that word was probably meant to be (a word of 3 or more octets that starts it, or
 * one or two typing mistakes away), or NULL when none or several are as close. */
const char *command_suggest(const char *word, const char *const *candidates, size_t n);

/* Sends request to the daemon of the spool over its control socket (mta/control.h); the payload
 * of an "ok" answer goes to payload, an error to err. Returns 0, 1 on failure, or -1 when no
 * daemon answers (err then says so). */
int command_control_call(const char *spool, const char *request, struct buf *payload,
                         struct buf *err);

/* An option: "--name VALUE", "--name=VALUE" or the alias ("-c FILE"), or a flag without a value. */
struct command_option {
    const char *name;   /* "--selector" */
    const char *alias;  /* "-c", or NULL */
    const char **value; /* an option's value goes here; NULL for a flag */
    int *flag;          /* a flag sets this to 1 */
};

/* At most this many options per command. */
#define COMMAND_OPTIONS_MAX 16

/* Parses argv: options anywhere, every other argument into words[] (at most max_words; words may
 * be NULL when none are taken). Returns 0, or 2 after a usage error naming the unknown option
 * (with a suggestion), the missing value, the option given twice or the unexpected argument. */
int command_parse(const char *name, int argc, char **argv, const struct command_option *opts,
                  size_t nopts, char **words, int max_words, int *nwords);

#endif
