/*
 * A whole message stored the way SMTP's DATA stores one (mta/server/submit.h), on a real spool:
 * done comes later, never from inside submit_start, once the message is durable; the stored
 * message has our Received field, the trace fields (the campaign taken from X-Sluice-Campaign) and
 * the text byte for byte; relayed mail takes the VERP return path; a submission freed while its
 * commit runs is kept, and never answered.
 */
#include "tests/unit/check.h"
#include "tests/unit/spool_fixture.h"

#include "lib/smtp_addr.h"
#include "mta/server/smtp_server.h"
#include "mta/server/submit.h"

static struct config_trace_key keys[] = {{.id = "k1", .secret = "sixteen characters+"}};

struct seen_done {
    int calls, verdict;
    char queue_id[SPOOL_ID_MAX + 1];
    char sender[SMTP_PATH_MAX + 8];
    uint64_t size;
};

static void on_done(void *arg, const struct submit_outcome *out)
{
    struct seen_done *s = arg;
    s->calls++;
    s->verdict = out->d->verdict;
    snprintf(s->queue_id, sizeof s->queue_id, "%s", out->queue_id);
    snprintf(s->sender, sizeof s->sender, "%s", out->sender);
    s->size = out->size;
}

static void config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->server.hostname = "mx.sluice.test";
    cfg->feedback.trace_keys = keys;
    cfg->feedback.ntrace_keys = 1;
    cfg->feedback.sender_id = "esp";
    cfg->feedback.verp_domain = "bounces.sluice.test";
    cfg->tenancy.tenant_header = "X-Sluice-Tenant";
    cfg->tenancy.campaign_header = "X-Sluice-Campaign";
}

static const char *const rcpts[] = {"bob@dest.test"};

static const struct submit_message message = {
    .sender = "alice@sender.test",
    .rcpts = rcpts,
    .nrcpts = 1,
    .auth_user = "acme",
    .client = "2001:db8::1",
    .listener = "http",
    .protocol = "HTTP",
    .text = "X-Sluice-Campaign: spring\r\nFrom: alice@sender.test\r\nSubject: hi\r\n\r\nbody\r\n",
};

static void test_committed(struct smtp_server *srv, const struct config *cfg)
{
    struct submit_message m = message;
    m.len = strlen(m.text);
    struct seen_done seen = {0};
    struct policy_decision refused;
    struct submit *s = submit_start(srv, cfg, &m, on_done, &seen, &refused);
    CHECK(s != NULL);
    CHECK_INT_EQ(seen.calls, 0); /* never from inside the call */
    run_until(&seen.calls, 1);
    CHECK_INT_EQ(seen.calls, 1);
    CHECK_INT_EQ(seen.verdict, POLICY_ACCEPT);
    CHECK(strncmp(seen.sender, "bounce+", 7) == 0 && strstr(seen.sender, "@bounces.sluice.test"));
    struct loaded l = load_sync(srv->spool, seen.queue_id);
    CHECK_INT_EQ(l.status, 0);
    CHECK_INT_EQ(l.size, seen.size);
    buf_append(&l.body, "", 1);
    char received[256];
    snprintf(received, sizeof received,
             "Received: from acme ([IPv6:2001:db8::1])\r\n\tby mx.sluice.test (Sluice, listener "
             "http) with HTTP id %s\r\n\tfor <bob@dest.test>;\r\n\t",
             seen.queue_id);
    CHECK(strncmp(l.body.data, received, strlen(received)) == 0);
    CHECK(strstr(l.body.data, "X-Sluice-Campaign") == NULL);
    CHECK(strstr(l.body.data, "\r\nX-Sluice-Trace: q") != NULL);
    CHECK(strstr(l.body.data, "\r\nFeedback-ID: acme:spring:esp\r\n") != NULL);
    CHECK(strstr(l.body.data, "\r\nFrom: alice@sender.test\r\nSubject: hi\r\n") != NULL);
    CHECK(strstr(l.body.data, "\r\n\r\nbody\r\n") != NULL);
    loaded_free(&l);
    submit_free(s);
}

static void test_freed_before_commit(struct smtp_server *srv, const struct config *cfg,
                                     const char *dir)
{
    struct submit_message m = message;
    m.len = strlen(m.text);
    int before = count_files(dir, "queue");
    struct seen_done seen = {0};
    struct policy_decision refused;
    struct submit *s = submit_start(srv, cfg, &m, on_done, &seen, &refused);
    CHECK(s != NULL);
    submit_free(s); /* already committing: the commit runs on, kept but never answered */
    int none = 0;
    run_until(&none, 1); /* until the loop has nothing left */
    CHECK_INT_EQ(seen.calls, 0);
    CHECK_INT_EQ(spool_pending(srv->spool), 0);
    CHECK_INT_EQ(count_files(dir, "queue"), before + 1);
}

int main(void)
{
    uv_loop_init(&loop);
    char *dir = make_tmpdir();
    struct smtp_server srv = {.loop = &loop, .spool = open_spool(dir)};
    struct config cfg;
    config_init(&cfg);
    srv.cfg = &cfg;
    test_committed(&srv, &cfg);
    test_freed_before_commit(&srv, &cfg, dir);
    struct buf err = BUF_INIT;
    teardown(srv.spool, dir, &err);
    uv_loop_close(&loop);
    return check_report("test_submit");
}
