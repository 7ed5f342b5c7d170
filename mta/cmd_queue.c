/*
 * `sluice queue list|show`: reads the spool directly (read-only), so it works whether or not the
 * daemon runs. Committed files are never rewritten in place, so reading them races with nothing.
 */
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "mta/commands.h"
#include "mta/config_load.h"
#include "spool/spool.h"

struct show_args {
    const char *id;
    int found;
    int body_only;
};

static void list_on_entry(const struct spool_entry *e, void *arg)
{
    printf("%s %llu <%s>", e->id, (unsigned long long)e->body_size, e->env->sender);
    for (size_t i = 0; i < e->env->nrcpts; i++)
        printf("%s%s", i ? "," : " ", e->env->rcpts[i]);
    printf("\n");
}

static void show_on_entry(const struct spool_entry *e, void *arg)
{
    struct show_args *show = arg;
    if (strcmp(e->id, show->id) != 0)
        return;
    show->found = 1;
    if (show->body_only)
        return;
    printf("id: %s\nsender: <%s>\n", e->id, e->env->sender);
    for (size_t i = 0; i < e->env->nrcpts; i++)
        printf("recipient: <%s>\n", e->env->rcpts[i]);
    printf("client: %s\nhelo: %s\nlistener: %s\nreceived_at: %lld\nsize: %llu\n\n",
           e->env->client_addr ? e->env->client_addr : "", e->env->helo ? e->env->helo : "",
           e->env->listener ? e->env->listener : "", (long long)e->env->received_at,
           (unsigned long long)e->body_size);
}

static int queue_usage(void)
{
    fprintf(stderr, "usage: sluice queue list [-c FILE]\n"
                    "       sluice queue show ID [--body] [-c FILE]\n");
    return 2;
}

int cmd_queue(int argc, char **argv)
{
    const char *path = NULL, *action = NULL, *id = NULL;
    int body_only = 0;
    for (int i = 0; i < argc; i++) {
        if (command_config_option(argc, argv, &i, &path))
            continue;
        if (strcmp(argv[i], "--body") == 0)
            body_only = 1;
        else if (action == NULL)
            action = argv[i];
        else if (id == NULL)
            id = argv[i];
        else
            return queue_usage();
    }
    if (action == NULL || (strcmp(action, "list") != 0 && strcmp(action, "show") != 0) ||
        (strcmp(action, "show") == 0) != (id != NULL))
        return queue_usage();

    struct buf err = BUF_INIT;
    struct config *cfg = config_load_for_command(path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
        buf_free(&err);
        return 1;
    }
    int status = 0;
    if (strcmp(action, "list") == 0) {
        if (spool_scan(cfg->server.spool, list_on_entry, NULL, &err) < 0)
            status = 1;
    } else {
        struct show_args show = {id, 0, body_only};
        struct buf body = BUF_INIT;
        if (spool_scan(cfg->server.spool, show_on_entry, &show, &err) < 0) {
            status = 1;
        } else if (!show.found) {
            buf_printf(&err, "queue: no message %s", id);
            status = 1;
        } else if (spool_load_body(cfg->server.spool, id, &body, &err) < 0) {
            status = 1;
        } else {
            fwrite(body.data, 1, body.len, stdout);
        }
        buf_free(&body);
    }
    if (status != 0)
        fprintf(stderr, "sluice: %.*s\n", (int)err.len, err.data);
    config_unref(cfg);
    buf_free(&err);
    return status;
}
