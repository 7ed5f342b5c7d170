/*
 * `sluice run`, `sluice check-config` and `sluice config-keys`: the daemon, the same configuration
 * loading and start-up gates without starting anything, and the reference of every key.
 */
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "mta/commands.h"
#include "mta/config_load.h"
#include "mta/daemon.h"
#include "mta/run_gates.h"

int command_config_option(int argc, char **argv, int *i, const char **path)
{
    const char *arg = argv[*i];
    if ((strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) && *i + 1 < argc) {
        *path = argv[++*i];
        return 1;
    }
    if (strncmp(arg, "--config=", 9) == 0) {
        *path = arg + 9;
        return 1;
    }
    return 0;
}

static int parse_config_only(int argc, char **argv, const char *name, const char **path)
{
    *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!command_config_option(argc, argv, &i, path)) {
            fprintf(stderr, "usage: sluice %s [-c FILE]\n", name);
            return -1;
        }
    }
    return 0;
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
    if (cfg != NULL && run_gates_check(cfg, path, &gates, &err) < 0) { /* as run will */
        config_unref(cfg);
        cfg = NULL;
    }
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
        if (err.len > 0 && err.data[err.len - 1] != '\n')
            fputc('\n', stderr);
        buf_free(&err);
        return 1;
    }
    printf("%s: ok\n", cfg->source);
    run_gates_free(&gates);
    config_unref(cfg);
    buf_free(&err);
    return 0;
}

int cmd_config_keys(int argc, char **argv)
{
    if (argc != 0) {
        fprintf(stderr, "usage: sluice config-keys\n");
        return 2;
    }
    struct buf out = BUF_INIT;
    config_describe_keys(&out);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    return 0;
}
