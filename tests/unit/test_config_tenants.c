/*
 * The tenancy keys (lib/config.h): tenancy.* field names with their defaults, tenants[] with its
 * pool and priority, config_tenant_find, and every error naming file:line:column and the key (an
 * unknown pool, a tenant twice, a bad priority, a bad name, a bad field name).
 */
#include <string.h>

#include "lib/config.h"
#include "tests/unit/check.h"

#define POOLS                                                                                      \
    "egress:\n  pools:\n    default:\n      - {address: 127.0.0.10}\n"                             \
    "    acme-ips:\n      - {address: 127.0.0.11}\n"

static struct config *load(const char *text, struct buf *err)
{
    struct config *cfg = NULL;
    buf_reset(err);
    if (config_load_string(text, strlen(text), "t.yaml", &cfg, err) < 0)
        return NULL;
    return cfg;
}

static void test_defaults(void)
{
    struct buf err = BUF_INIT;
    struct config *cfg = load("", &err);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    CHECK_STR_EQ(cfg->tenancy.tenant_header, "X-Sluice-Tenant");
    CHECK_STR_EQ(cfg->tenancy.campaign_header, "X-Sluice-Campaign");
    CHECK_INT_EQ(cfg->ntenants, 0);
    CHECK(config_tenant_find(cfg, "acme") == NULL);
    CHECK(config_tenant_find(cfg, NULL) == NULL);
    config_unref(cfg);
    buf_free(&err);
}

static void test_tenants(void)
{
    struct buf err = BUF_INIT;
    struct config *cfg = load(POOLS "tenancy: {tenant_header: X-Customer, campaign_header: X-M}\n"
                                    "tenants:\n"
                                    "  - {name: acme, pool: acme-ips, priority: transactional}\n"
                                    "  - {name: news@example.com, priority: bulk}\n"
                                    "  - {name: plain}\n"
                                    "  - {name: slow, shaping: {rate: 2/s, message_rate: 100/h}}\n",
                              &err);
    CHECK(cfg != NULL);
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
        return;
    }
    CHECK_STR_EQ(cfg->tenancy.tenant_header, "X-Customer");
    CHECK_STR_EQ(cfg->tenancy.campaign_header, "X-M");
    CHECK_INT_EQ(cfg->ntenants, 4);
    const struct config_tenant *t = config_tenant_find(cfg, "acme");
    CHECK(t != NULL && strcmp(t->pool, "acme-ips") == 0);
    CHECK(t != NULL && t->priority == TENANT_PRIORITY_TRANSACTIONAL);
    t = config_tenant_find(cfg, "news@example.com");
    CHECK(t != NULL && t->pool == NULL && t->priority == TENANT_PRIORITY_BULK);
    t = config_tenant_find(cfg, "plain");
    CHECK(t != NULL && t->pool == NULL && t->priority == TENANT_PRIORITY_NORMAL);
    CHECK(t != NULL && t->rate.count == 0 && t->message_rate.count == 0); /* none of its own */
    t = config_tenant_find(cfg, "slow");
    CHECK(t != NULL && t->rate.count == 2 && t->rate.period_ms == 1000);
    CHECK(t != NULL && t->message_rate.count == 100 && t->message_rate.period_ms == 3600000);
    CHECK(config_tenant_find(cfg, "ACME") == NULL); /* names are compared exactly */
    config_unref(cfg);
    buf_free(&err);
}

static const struct {
    const char *text;
    const char *error; /* the first line of the errors starts with this */
} bad[] = {
    {POOLS "tenants:\n  - name: acme\n    pool: nope\n",
     "t.yaml:9:11: tenants[0].pool: 'nope' is not a pool of egress.pools"},
    {POOLS "tenants:\n  - {name: acme}\n  - {name: b}\n  - {name: acme}\n",
     "t.yaml:10:5: tenants[2].name: 'acme' is already tenants[0]"},
    {"tenants:\n  - {name: acme, priority: urgent}\n",
     "t.yaml:2:28: tenants[0].priority: 'urgent' is not one of: transactional, normal, bulk"},
    {"tenants:\n  - {name: two words}\n", "t.yaml:2:12: tenants[0].name: 'two words' is not a tenant name"},
    {"tenants:\n  - {pool: default}\n", "t.yaml:2:5: tenants[0].name is required"},
    {"tenants:\n  - {name: acme, pools: x}\n",
     "t.yaml:2:18: unknown key 'tenants[0].pools' (did you mean 'tenants[0].pool'?)"},
    {"tenants:\n  - name: acme\n    shaping:\n      rate: fast\n",
     "t.yaml:4:13: tenants[0].shaping.rate: "},
    {"tenants:\n  - name: acme\n    shaping: {connections: 2}\n",
     "t.yaml:3:15: unknown key 'tenants[0].shaping.connections'"},
    {"tenancy:\n  tenant_header: 'X-Tenant:'\n",
     "t.yaml:2:18: tenancy.tenant_header: 'X-Tenant:' is not a header field name"},
};

static void test_errors(void)
{
    struct buf err = BUF_INIT;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct config *cfg = load(bad[i].text, &err);
        CHECK(cfg == NULL);
        config_unref(cfg);
        buf_append(&err, "", 1);
        int starts = strncmp(err.data, bad[i].error, strlen(bad[i].error)) == 0;
        CHECK(starts);
        if (!starts)
            fprintf(stderr, "case %zu: got: %s\n     want: %s\n", i, err.data, bad[i].error);
    }
    buf_free(&err);
}

int main(void)
{
    test_defaults();
    test_tenants();
    test_errors();
    return check_report("test_config_tenants");
}
