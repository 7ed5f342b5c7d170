/* The webhook set on a real loop: records logged go through the log's tap into the endpoint's
 * backlog; past webhooks[].backlog_max they are dropped, counted by webhooks_dropped_total() and
 * logged once; a stop writes what was taken and closes every handle; a URL removed and listed again
 * by reloads keeps one endpoint. The endpoints refuse connections, so nothing leaves a backlog. */
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

static char tmpdir[64], log_path[128];
static char refused_url[64]; /* bound and not listening: connections are refused */

static struct config *load(const char *url, const char *more)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "webhooks:\n  - url: %s\n    events: [smtp.accepted]\n%s", url,
             more);
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err), 0);
    if (cfg == NULL)
        fprintf(stderr, "%.*s", (int)err.len, err.data);
    buf_free(&err);
    return cfg;
}

static void log_accepted(int from, int count)
{
    for (int i = from; i < from + count; i++) {
        char id[16];
        snprintf(id, sizeof id, "Q%06d", i);
        struct logrec r;
        log_begin(&r, LOG_INFO, "smtp.accepted");
        log_str(&r, "queue_id", id);
        log_str(&r, "from", "someone@example.com");
        log_end(&r);
        log_msg(LOG_INFO, "smtp.connect", "not selected");
    }
}

static void stop_and_close(uv_loop_t *loop, struct webhooks *w)
{
    int stopped = 0;
    webhooks_stop(w, on_stopped, &stopped);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(stopped);
    CHECK_INT_EQ(uv_loop_close(loop), 0);
    log_flush();
}

static void test_full_backlog_drops_and_counts(void)
{
    enum { RECORDS = 100 };
    struct config *cfg = load(refused_url, "    backlog_max: 4k\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    unsigned long long before = webhooks_dropped_total();
    struct webhooks *w = webhooks_new(&loop, tmpdir, cfg);
    log_accepted(0, RECORDS);
    stop_and_close(&loop, w);

    char *backlog = webhook_backlog_path(tmpdir, refused_url);
    size_t kept = lines_in(backlog, "\"event\":\"smtp.accepted\"");
    unsigned long long dropped = webhooks_dropped_total() - before;
    CHECK(kept > 10);
    CHECK(kept < RECORDS);
    CHECK_INT_EQ(lines_in(backlog, "smtp.connect"), 0);
    CHECK_INT_EQ(kept + dropped, RECORDS);
    CHECK_INT_EQ(lines_in(log_path, "\"event\":\"webhook.backlog_full\""), 1);
    CHECK_INT_EQ(lines_in(backlog, "\"queue_id\":\"Q000000\""), 1); /* the first are kept */
    free(backlog);
    config_unref(cfg);
}

/* Removed by a reload while it still writes, then listed again: the same endpoint goes on, and
 * its backlog has every event once. */
static void test_url_back_before_closed(void)
{
    char other[80];
    snprintf(other, sizeof other, "%s/other", refused_url);
    struct config *with = load(refused_url, ""), *without = load(other, "");
    char *backlog = webhook_backlog_path(tmpdir, refused_url);
    unlink(backlog);
    uv_loop_t loop;
    uv_loop_init(&loop);
    unsigned long long before = webhooks_dropped_total();
    struct webhooks *w = webhooks_new(&loop, tmpdir, with);
    log_accepted(1000, 5);
    webhooks_set_config(w, without); /* its backlog still opening, 5 events to write */
    webhooks_set_config(w, with);
    log_accepted(2000, 5);
    stop_and_close(&loop, w);
    CHECK_INT_EQ(lines_in(backlog, "\"event\":\"smtp.accepted\""), 10);
    CHECK_INT_EQ(webhooks_dropped_total() - before, 0);
    free(backlog);
    config_unref(with);
    config_unref(without);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice_test_webhooks_XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    snprintf(log_path, sizeof log_path, "%s/log", tmpdir);
    CHECK_INT_EQ(log_open(log_path), 0);
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sin;
    CHECK(bind(sock, (struct sockaddr *)&sin, sizeof sin) == 0);
    CHECK(getsockname(sock, (struct sockaddr *)&sin, &slen) == 0);
    snprintf(refused_url, sizeof refused_url, "http://127.0.0.1:%d/hook", ntohs(sin.sin_port));

    test_full_backlog_drops_and_counts();
    test_url_back_before_closed();

    close(sock);
    test_dir_clear(tmpdir);
    rmdir(tmpdir);
    return check_report("test_webhooks");
}
