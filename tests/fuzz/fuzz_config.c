/*
 * Fuzzes configuration loading: any bytes either load into a configuration whose lookups work, or
 * fail with -EINVAL and at least one "name:line:column: message" line; nothing leaks or crashes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    int rc = config_load_string((const char *)data, size, "fuzz.yaml", &cfg, &err);
    if (rc == 0) {
        if (cfg == NULL || err.len != 0 || cfg->nlisteners == 0)
            abort();
        for (size_t i = 0; i < cfg->ndomains; i++)
            if (config_domain_find(cfg, cfg->domains[i].name) != &cfg->domains[i])
                abort();
        struct sockaddr_in6 client = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        config_trusted_network_match(cfg, (const struct sockaddr *)&client);
        config_unref(cfg);
    } else if (rc != -EINVAL || cfg != NULL || err.len < sizeof "fuzz.yaml:1:1: x" - 1 ||
               memcmp(err.data, "fuzz.yaml:", 10) != 0 || err.data[err.len - 1] != '\n') {
        abort();
    }
    buf_free(&err);
    return 0;
}
