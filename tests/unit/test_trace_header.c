/*
 * The trace fields added to relayed mail (mta/feedback/trace_header.h): the campaign taken from
 * X-Sluice-Campaign (folded too) and the field removed, a client's X-Sluice-Trace and Feedback-ID
 * removed, ours added at the end of the header section, the body untouched; the same whether the
 * message comes whole or byte by byte, with or without a body. The tenancy fields: read only from
 * mail we relay (the tenant's only when no user authenticated), removed from every message.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mta/feedback/trace.h"
#include "mta/feedback/trace_header.h"

static struct config_trace_key keys[] = {{.id = "k1", .secret = "sixteen characters+"}};

/* Runs the filter over msg, whole (step 0) or in pieces of `step` bytes. */
static void run(const struct config *cfg, const char *msg, size_t step, const char *rcpt,
                struct buf *out, char *campaign, size_t csize)
{
    struct trace_header *th = trace_header_new(cfg, "0QJ5K8M2X4Y6Z000", "alice", rcpt, 1);
    size_t len = strlen(msg);
    for (size_t at = 0; at < len;) {
        size_t n = step == 0 || len - at < step ? len - at : step;
        trace_header_feed(th, msg + at, n, out);
        at += n;
    }
    trace_header_finish(th, out);
    snprintf(campaign, csize, "%s", trace_header_campaign(th));
    trace_header_free(th);
    buf_append(out, "", 1);
}

/* The token of the X-Sluice-Trace line in text, verified. */
static enum trace_verdict verify_in(const char *text, struct trace_fields *f)
{
    const char *v = strstr(text, "X-Sluice-Trace: ");
    if (v == NULL)
        return TRACE_MALFORMED;
    v += strlen("X-Sluice-Trace: ");
    return trace_verify(keys, 1, v, strcspn(v, "\r\n"), f);
}

/* A configuration with the default tenancy fields and nothing else. */
static void config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->tenancy.tenant_header = "X-Sluice-Tenant";
    cfg->tenancy.campaign_header = "X-Sluice-Campaign";
}

static void test_fields(void)
{
    struct config cfg;
    config_init(&cfg);
    cfg.feedback.trace_keys = keys;
    cfg.feedback.ntrace_keys = 1;
    cfg.feedback.sender_id = "esp";
    static const char msg[] = "From: a@example.com\r\nX-Sluice-Campaign: spring\r\n  sale\r\n"
                              "X-Sluice-Trace: qFORGED.t.c.r.kk1.mAAAA\r\nFeedback-ID: x:y:z\r\n"
                              "Subject: hi\r\n\r\nX-Sluice-Campaign: in the body stays\r\n";
    static const size_t steps[] = {0, 1, 7};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct buf out = BUF_INIT;
        char campaign[TRACE_NAME_MAX + 1];
        run(&cfg, msg, steps[i], "bob@dest.test", &out, campaign, sizeof campaign);
        CHECK_STR_EQ(campaign, "spring sale");
        const char *body = strstr(out.data, "\r\n\r\n");
        CHECK(body != NULL);
        CHECK_STR_EQ(body, "\r\n\r\nX-Sluice-Campaign: in the body stays\r\n");
        CHECK(strncmp(out.data, "From: a@example.com\r\nSubject: hi\r\nX-Sluice-Trace: ", 50) == 0);
        CHECK(strstr(out.data, "qFORGED") == NULL);
        CHECK(strstr(out.data, "x:y:z") == NULL);
        CHECK(strstr(out.data, "\r\nFeedback-ID: alice:spring_sale:esp\r\n\r\n") != NULL);
        struct trace_fields f;
        CHECK_INT_EQ(verify_in(out.data, &f), TRACE_VALID);
        CHECK_STR_EQ(f.tenant, "alice");
        CHECK_STR_EQ(f.campaign, "spring sale");
        CHECK_STR_EQ(f.rcpt, "bob@dest.test");
        buf_free(&out);
    }
}

static void test_shapes(void)
{
    struct config cfg;
    config_init(&cfg);
    cfg.feedback.trace_keys = keys;
    cfg.feedback.ntrace_keys = 1;
    struct buf out = BUF_INIT;
    char campaign[TRACE_NAME_MAX + 1];
    /* No body, no final line end: the fields go after a line end of our own. */
    run(&cfg, "Subject: hi\r\nFeedback-ID: kept", 3, NULL, &out, campaign, sizeof campaign);
    CHECK(strncmp(out.data, "Subject: hi\r\nFeedback-ID: kept\r\nX-Sluice-Trace: q", 48) == 0);
    CHECK(out.data[out.len - 3] == '\r' && out.data[out.len - 2] == '\n');
    struct trace_fields f;
    CHECK_INT_EQ(verify_in(out.data, &f), TRACE_VALID);
    CHECK_STR_EQ(f.rcpt, "");
    CHECK_STR_EQ(campaign, "");
    buf_free(&out);
    /* The last field removed, and it had no line end: no empty line ahead of ours. */
    run(&cfg, "Subject: hi\r\nX-Sluice-Trace: forged", 0, NULL, &out, campaign, sizeof campaign);
    CHECK(strncmp(out.data, "Subject: hi\r\nX-Sluice-Trace: q", 30) == 0);
    CHECK(strstr(out.data, "\r\n\r\n") == NULL);
    buf_free(&out);
    run(&cfg, "X-Sluice-Trace: forged", 0, NULL, &out, campaign, sizeof campaign);
    CHECK(strncmp(out.data, "X-Sluice-Trace: q", 17) == 0);
    buf_free(&out);
    /* Blanks before the colon (RFC 5322's obsolete syntax) name the field all the same: a forged
     * trace so written goes, and a campaign so written is read. A longer name is another field. */
    run(&cfg,
        "X-Sluice-Trace :forged\r\nX-Sluice-Campaign\t : autumn\r\nX-Sluice-Traced: kept\r\n"
        "\r\nbody\r\n",
        0, NULL, &out, campaign, sizeof campaign);
    CHECK(strstr(out.data, "forged") == NULL);
    CHECK(strstr(out.data, "autumn") == NULL);
    CHECK_STR_EQ(campaign, "autumn");
    CHECK(strncmp(out.data, "X-Sluice-Traced: kept\r\nX-Sluice-Trace: q", 40) == 0);
    buf_free(&out);
    /* A campaign longer than a trace holds is not traced. */
    char msg[400];
    snprintf(msg, sizeof msg, "X-Sluice-Campaign: %0200d\r\n\r\nbody\r\n", 7);
    run(&cfg, msg, 0, NULL, &out, campaign, sizeof campaign);
    CHECK_STR_EQ(campaign, "");
    CHECK_INT_EQ(verify_in(out.data, &f), TRACE_VALID);
    buf_free(&out);
}

/* One message through a filter for `tenant` (NULL: unauthenticated), relayed or not. */
static void run_tenancy(const struct config *cfg, const char *tenant, int relay, const char *msg,
                        struct buf *out, char *got_tenant, char *got_campaign)
{
    struct trace_header *th = trace_header_new(cfg, "0QJ5K8M2X4Y6Z000", tenant, NULL, relay);
    for (size_t at = 0; msg[at] != '\0'; at++) /* byte by byte: a field split anywhere */
        trace_header_feed(th, msg + at, 1, out);
    trace_header_finish(th, out);
    strcpy(got_tenant, trace_header_tenant(th));
    strcpy(got_campaign, trace_header_campaign(th));
    trace_header_free(th);
    buf_append(out, "", 1);
}

static void test_tenancy(void)
{
    struct config cfg;
    config_init(&cfg); /* no trace keys, no sender id: nothing is added */
    static const char msg[] = "From: a@example.com\r\nx-sluice-tenant:  acme \r\n"
                              "X-Sluice-Campaign: spring\r\nSubject: hi\r\n\r\n"
                              "X-Sluice-Tenant: in the body stays\r\n";
    static const char kept[] = "From: a@example.com\r\nSubject: hi\r\n\r\n"
                               "X-Sluice-Tenant: in the body stays\r\n";
    char tenant[TRACE_NAME_MAX + 1], campaign[TRACE_NAME_MAX + 1];
    struct buf out = BUF_INIT;
    /* A trusted client without AUTH names both. */
    run_tenancy(&cfg, NULL, 1, msg, &out, tenant, campaign);
    CHECK_STR_EQ(out.data, kept);
    CHECK_STR_EQ(tenant, "acme");
    CHECK_STR_EQ(campaign, "spring");
    buf_free(&out);
    /* An authenticated user is the tenant: its field is removed and does not count. */
    run_tenancy(&cfg, "alice", 1, msg, &out, tenant, campaign);
    CHECK_STR_EQ(out.data, kept);
    CHECK_STR_EQ(tenant, "alice");
    CHECK_STR_EQ(campaign, "spring");
    buf_free(&out);
    /* From a client that may not relay both are removed and neither is read. */
    run_tenancy(&cfg, NULL, 0, msg, &out, tenant, campaign);
    CHECK_STR_EQ(out.data, kept);
    CHECK_STR_EQ(tenant, "");
    CHECK_STR_EQ(campaign, "");
    buf_free(&out);
    /* Other names configured: those are read and removed, the default ones stay. */
    cfg.tenancy.tenant_header = "X-Customer";
    cfg.tenancy.campaign_header = "X-Mailing";
    run_tenancy(&cfg, NULL, 1, "X-Customer: bravo\r\nX-Mailing: m1\r\nX-Sluice-Tenant: x\r\n\r\n",
                &out, tenant, campaign);
    CHECK_STR_EQ(out.data, "X-Sluice-Tenant: x\r\n\r\n");
    CHECK_STR_EQ(tenant, "bravo");
    CHECK_STR_EQ(campaign, "m1");
    buf_free(&out);
}

int main(void)
{
    test_fields();
    test_shapes();
    test_tenancy();
    return check_report("test_trace_header");
}
