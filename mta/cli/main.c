/*
 * `sluice <command>`: finds the command in the table (mta/cli/commands.c) and runs it; answers
 * `sluice --help`, `sluice help [CMD]` and `sluice CMD --help` (or -h) on standard output, and
 * prints the manual pages (`sluice help [--roff] sluice|sluice.yaml`, mta/cli/manual.h).
 */
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "mta/cli/commands.h"
#include "mta/cli/manual.h"

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

static const char help_usage[] = "usage: sluice help [COMMAND]\n"
                                 "       sluice help [--roff] sluice|sluice.yaml\n";

/* `sluice help [COMMAND]`: the list of commands, or one command's help; `sluice help [--roff]
 * PAGE`: a manual page, as text or as roff for man. */
static int help(int argc, char **argv)
{
    if (argc == 0 || is_help(argv[0])) {
        command_list(stdout);
        return 0;
    }
    int roff = strcmp(argv[0], "--roff") == 0;
    if (argc > 1 + roff || (roff && argc == 1)) {
        if (argc > 1 + roff)
            fprintf(stderr, "sluice help: unexpected argument '%s'\n", argv[1 + roff]);
        else
            fprintf(stderr, "sluice help: --roff needs a page: sluice or sluice.yaml\n");
        fputs(help_usage, stderr);
        return 2;
    }
    struct buf page = BUF_INIT;
    if (manual_render(argv[roff], roff ? MANUAL_ROFF : MANUAL_TEXT, &page) == 0) {
        fwrite(page.data, 1, page.len, stdout);
        buf_free(&page);
        return 0;
    }
    const struct command *c = command_find(argv[roff]);
    if (c == NULL || roff)
        return unknown_command(argv[roff]);
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
