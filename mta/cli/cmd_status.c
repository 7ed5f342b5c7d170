/*
 * `sluice status`: the running daemon's status on one screen (or as JSON), asked over the control
 * socket, so it works whether or not http.listen is set; the daemon builds it with the same code
 * as GET /api/v1/status (mta/http/status.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/control.h"
#include "mta/http/status.h"

#define STATUS_TIMEOUT_MS 10000

/* The daemon's status JSON into json; 0, or 1 with the reason in err. */
static int status_fetch(const char *spool, struct buf *json, struct buf *err)
{
    struct buf path = BUF_INIT, answer = BUF_INIT;
    int status = 1;
    int rc = control_socket_path(spool, &path, err);
    if (rc == 0)
        rc = control_call(path.data, "status", STATUS_TIMEOUT_MS, &answer, err);
    if (rc == -ENOENT || rc == -ECONNREFUSED) {
        buf_reset(err);
        buf_printf(err, "no daemon is running on the spool %s", spool);
    } else if (rc == 0 && answer.len >= 3 && memcmp(answer.data, "ok\n", 3) == 0) {
        buf_append(json, answer.data + 3, answer.len - 3);
        status = 0;
    } else if (rc == 0) {
        buf_printf(err, "the daemon answered: %.*s", (int)answer.len, answer.data);
    }
    buf_free(&path);
    buf_free(&answer);
    return status;
}

int cmd_status(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    const struct command_option opts[] = {
        {"--config", "-c", &path, NULL},
        {"--json", NULL, NULL, &json},
    };
    if (command_parse("status", argc, argv, opts, ARRAY_LEN(opts), NULL, 0, NULL) != 0)
        return 2;
    struct buf err = BUF_INIT, answer = BUF_INIT, text = BUF_INIT;
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL)
        return command_failed(&err);
    int status = status_fetch(cfg->server.spool, &answer, &err);
    if (status == 0 && json) {
        fwrite(answer.data, 1, answer.len, stdout);
    } else if (status == 0 && status_render(answer.data, answer.len, &text) == 0) {
        fwrite(text.data, 1, text.len, stdout);
    } else if (status == 0) {
        buf_printf(&err, "the daemon's status is not JSON");
        status = 1;
    }
    if (status != 0)
        fprintf(stderr, "sluice: %.*s\n", (int)err.len, err.data);
    config_unref(cfg);
    buf_free(&err);
    buf_free(&answer);
    buf_free(&text);
    return status;
}
