/*
 * A tenant's egress pool (mta/delivery/sched_tenancy.c): a listed tenant with a pool other than
 * the shaping's gets it, one whose pool is the shaping's, one without a pool, one not listed and
 * mail with no tenant get none; the destination key of a pool's mail is "KEY/POOL".
 */
#include <string.h>

#include "mta/delivery/sched_int.h"
#include "tests/unit/check.h"

static void test_pool(void)
{
    struct config_tenant tenants[] = {
        {.name = "acme", .pool = "acme-ips"},
        {.name = "shared", .pool = "default"},
        {.name = "plain"},
    };
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.tenants = tenants;
    cfg.ntenants = 3;
    struct config_shaping sh = {.pool = "default"};
    CHECK_STR_EQ(sched_tenant_pool(&cfg, "acme", &sh), "acme-ips");
    CHECK(sched_tenant_pool(&cfg, "shared", &sh) == NULL); /* the shaping's own pool */
    CHECK(sched_tenant_pool(&cfg, "plain", &sh) == NULL);
    CHECK(sched_tenant_pool(&cfg, "stranger", &sh) == NULL);
    CHECK(sched_tenant_pool(&cfg, NULL, &sh) == NULL);
    sh.pool = "bulk-ips"; /* a rule's pool: the tenant's still wins */
    CHECK_STR_EQ(sched_tenant_pool(&cfg, "shared", &sh), "default");
}

static void test_key(void)
{
    char key[64];
    sched_tenant_key("gmail.com", NULL, key, sizeof key);
    CHECK_STR_EQ(key, "gmail.com");
    sched_tenant_key("*.yahoodns.net", "acme-ips", key, sizeof key);
    CHECK_STR_EQ(key, "*.yahoodns.net/acme-ips");
}

int main(void)
{
    test_pool();
    test_key();
    return check_report("test_sched_tenancy");
}
