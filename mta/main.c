/*
 * `sluice <subcommand>`: a dispatch table, one function per subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "lib/uvutil.h"
#include "mta/commands.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
};

static const struct subcommand subcommands[] = {
    {"run", cmd_run,
     "run [-c FILE]                 run the daemon (embedded default config without -c)"},
    {"check-config", cmd_check_config, "check-config [-c FILE]        validate a configuration"},
    {"config-keys", cmd_config_keys,
     "config-keys                   print the configuration reference"},
    {"queue", cmd_queue, "queue list|show|retry|delete|suspend|resume ...   see and steer the queue"},
    {"relay-test", cmd_relay_test,
     "relay-test [-c FILE]          try relaying from outside through every listener's policy\n"
     "  sluice relay-test HOST:PORT --local-domain D [--helo H] [--from A]   the same over SMTP"},
    {"explain", cmd_explain,
     "explain [-c FILE] --client IP [--listener NAME] [--helo H] [--auth USER] --from A --rcpt B\n"
     "                                show the decision for MAIL and RCPT and the rule that made "
     "it"},
    {"dkim", cmd_dkim,
     "dkim keygen --domain D --selector S [--algorithm rsa-sha256|ed25519-sha256] [--bits N]\n"
     "            [--out FILE] [-c FILE]   write a signing key (0600; by root: 0640 with the\n"
     "                                 daemon's group), print its DNS record\n"
     "  sluice dkim check [-c FILE]   compare each configured selector's DNS record with its key"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(subcommands); i++)
        fprintf(out, "  sluice %s\n", subcommands[i].usage);
    fprintf(out, "  sluice version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("sluice %s\n", SLUICE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(subcommands); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "sluice: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
