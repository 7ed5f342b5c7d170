/*
 * `sluice tls-rpt send`: asks the running daemon, over its control socket, to send the TLS
 * reports (RFC 8460) it holds now, today's so far included, instead of after midnight UTC.
 */
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"

int cmd_tls_rpt(int argc, char **argv)
{
    const char *path = NULL;
    char *words[1];
    int nwords = 0;
    const struct command_option opts[] = {{"--config", "-c", &path, NULL}};
    if (command_parse("tls-rpt", argc, argv, opts, ARRAY_LEN(opts), words, 1, &nwords) != 0)
        return 2;
    if (nwords != 1 || strcmp(words[0], "send") != 0)
        return command_usage_error("tls-rpt",
                                   nwords == 0 ? "missing verb (send)" : "unknown verb '%s' (send)",
                                   nwords == 0 ? "" : words[0]);
    struct buf err = BUF_INIT, payload = BUF_INIT;
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL)
        return command_failed(&err);
    int status = command_control_call(cfg->server.spool, "tls-rpt-send", &payload, &err);
    if (status == 0)
        fwrite(payload.data, 1, payload.len, stdout);
    else if (status < 0)
        fprintf(stderr, "sluice: no daemon is running on the spool %s\n", cfg->server.spool);
    else
        fprintf(stderr, "sluice: %.*s\n", (int)err.len, err.data);
    config_unref(cfg);
    buf_free(&err);
    buf_free(&payload);
    return status == 0 ? 0 : 1;
}
