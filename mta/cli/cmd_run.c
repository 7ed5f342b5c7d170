/*
 * `sluice run`, `sluice check-config`, `sluice config-keys` and `sluice log-events`: the daemon,
 * the same configuration loading and start-up gates without starting anything, and the references
 * of every key and every log event.
 */
#include <stdio.h>

#include "lib/config.h"
#include "lib/log_events.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/daemon.h"
#include "mta/run_gates.h"
#include "policy/public_suffix.h"

static int parse_config_only(int argc, char **argv, const char *name, const char **path)
{
    const struct command_option opts[] = {{"--config", "-c", path, NULL}};
    *path = NULL;
    return command_parse(name, argc, argv, opts, 1, NULL, 0, NULL) == 0 ? 0 : -1;
}

int cmd_run(int argc, char **argv)
{
    const char *path;
    if (parse_config_only(argc, argv, "run", &path) < 0)
        return 2;
    return daemon_run(path);
}

int cmd_check_config(int argc, char **argv)
{
    const char *path;
    if (parse_config_only(argc, argv, "check-config", &path) < 0)
        return 2;
    struct buf err = BUF_INIT;
    struct config *cfg = config_load_for_command(path, &err);
    struct run_gates gates;
    struct public_suffixes *suffixes = NULL;
    if (cfg != NULL && (config_public_suffixes(cfg, &suffixes, &err) < 0 ||
                        run_gates_check(cfg, path, &gates, &err) < 0)) { /* as run will */
        config_unref(cfg);
        cfg = NULL;
    }
    public_suffixes_unref(suffixes);
    if (cfg == NULL)
        return command_failed(&err);
    printf("%s: ok\n", cfg->source);
    run_gates_free(&gates);
    config_unref(cfg);
    buf_free(&err);
    return 0;
}

int cmd_config_keys(int argc, char **argv)
{
    return command_print_reference("config-keys", argc, argv, config_describe_keys);
}

int cmd_log_events(int argc, char **argv)
{
    return command_print_reference("log-events", argc, argv, log_events_describe);
}
