/*
 * `sluice <command>`: finds the command in the table (mta/cli/commands.c) and runs it; answers
 * `sluice --help`, `sluice help [CMD]` and `sluice CMD --help` (or -h) on standard output.
 */
#include <stdio.h>
#include <string.h>

#include "mta/cli/commands.h"

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int unknown_command(const char *name)
{
    const char *names[32];
    size_t n = 0;
    for (size_t i = 0; i < ncommands && n < sizeof names / sizeof names[0]; i++)
        names[n++] = commands[i].name;
    const char *hint = command_suggest(name, names, n);
    if (hint != NULL)
        fprintf(stderr, "sluice: unknown command '%s' (did you mean %s?)\n", name, hint);
    else
        fprintf(stderr, "sluice: unknown command '%s'\n", name);
    command_list(stderr);
    return 2;
}

/* `sluice help [COMMAND]`: the list of commands, or one command's help. */
static int help(int argc, char **argv)
{
    if (argc == 0 || is_help(argv[0])) {
        command_list(stdout);
        return 0;
    }
    const struct command *c = command_find(argv[0]);
    if (c == NULL)
        return unknown_command(argv[0]);
    if (argc > 1) {
        fprintf(stderr, "sluice help: unexpected argument '%s'\nusage: sluice help [COMMAND]\n",
                argv[1]);
        return 2;
    }
    command_help(c, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "sluice: missing command\n");
        command_list(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    if (strcmp(argv[1], "help") == 0 || is_help(argv[1]))
        return help(argc - 2, argv + 2);
    const struct command *c = command_find(argv[1]);
    if (c == NULL)
        return unknown_command(argv[1]);
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            command_help(c, stdout);
            return 0;
        }
    }
    return c->run(argc - 2, argv + 2);
}
