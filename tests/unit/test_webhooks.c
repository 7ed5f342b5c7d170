/* The webhook set on a real loop: records logged go through the log's tap into the endpoint's
 * backlog; past webhooks[].backlog_max they are dropped, counted by webhooks_dropped_total() and
 * logged once; a stop writes what was taken and closes every handle. The endpoint refuses
 * connections, so nothing leaves the backlog. */
#include "mta/webhooks/webhooks.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "mta/webhooks/webhook_backlog.h"
#include "tests/support/test_dirs.h"

enum { RECORDS = 100 };

static size_t lines_in(const char *file, const char *needle)
{
    FILE *f = fopen(file, "r");
    char line[4096];
    size_t n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        n += strstr(line, needle) != NULL;
    if (f != NULL)
        fclose(f);
    return n;
}

static void on_stopped(void *arg)
{
    *(int *)arg = 1;
}

int main(void)
{
    char tmpdir[64], log_path[128], yaml[512];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice_test_webhooks_XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    snprintf(log_path, sizeof log_path, "%s/log", tmpdir);
    CHECK_INT_EQ(log_open(log_path), 0);

    /* Bound and not listening: connections are refused while the test holds it. */
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sin;
    CHECK(bind(sock, (struct sockaddr *)&sin, sizeof sin) == 0);
    CHECK(getsockname(sock, (struct sockaddr *)&sin, &slen) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", ntohs(sin.sin_port));
    snprintf(yaml, sizeof yaml,
             "webhooks:\n  - url: %s\n    events: [smtp.accepted]\n    backlog_max: 4k\n", url);
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err), 0);
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
        return 1;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    unsigned long long before = webhooks_dropped_total();
    struct webhooks *w = webhooks_new(&loop, tmpdir, cfg);
    for (int i = 0; i < RECORDS; i++) {
        char id[16];
        snprintf(id, sizeof id, "Q%06d", i);
        struct logrec r;
        log_begin(&r, LOG_INFO, "smtp.accepted");
        log_str(&r, "queue_id", id);
        log_str(&r, "from", "someone@example.com");
        log_end(&r);
        log_msg(LOG_INFO, "smtp.connect", "not selected");
    }
    int stopped = 0;
    webhooks_stop(w, on_stopped, &stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(stopped);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    log_flush();

    char *backlog = webhook_backlog_path(tmpdir, url);
    size_t kept = lines_in(backlog, "\"event\":\"smtp.accepted\"");
    unsigned long long dropped = webhooks_dropped_total() - before;
    CHECK(kept > 10);
    CHECK(kept < RECORDS);
    CHECK_INT_EQ(lines_in(backlog, "smtp.connect"), 0);
    CHECK_INT_EQ(kept + dropped, RECORDS);
    CHECK_INT_EQ(lines_in(log_path, "\"event\":\"webhook.backlog_full\""), 1);
    /* The kept ones are the first ones, in order. */
    CHECK_INT_EQ(lines_in(backlog, "\"queue_id\":\"Q000000\""), 1);

    free(backlog);
    close(sock);
    config_unref(cfg);
    buf_free(&err);
    test_dir_clear(tmpdir);
    rmdir(tmpdir);
    return check_report("test_webhooks");
}
