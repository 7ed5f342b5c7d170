/*
 * Lookups in a loaded configuration, the questions that config.h lists after loading. Loading
 * itself is config_loader.c and the files that config_int.h names.
 */
#include "lib/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config_int.h"

static int domain_key_compare(const void *key, const void *elem)
{
    return strcmp(key, ((const struct config_domain *)elem)->name);
}

const struct config_domain *config_domain_find(const struct config *cfg, const char *domain)
{
    char key[254];
    if (cfg->ndomains == 0 || !canonical_name(domain, strlen(domain), key, sizeof key))
        return NULL;
    return bsearch(key, cfg->domains, cfg->ndomains, sizeof *cfg->domains, domain_key_compare);
}

const struct config_tenant *config_tenant_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->ntenants; i++)
        if (strcmp(cfg->tenants[i].name, name) == 0)
            return &cfg->tenants[i];
    return NULL;
}

const struct config_egress_pool *config_egress_pool_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->negress_pools; i++)
        if (strcmp(cfg->egress_pools[i].name, name) == 0)
            return &cfg->egress_pools[i];
    return NULL;
}

static int prefix_match(const unsigned char *addr, const unsigned char *net, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(addr, net, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff00u >> rest);
    return (addr[whole] & mask) == (net[whole] & mask);
}

const struct config_cidr *config_trusted_network_match(const struct config *cfg,
                                                       const struct sockaddr *addr)
{
    return config_cidr_match(cfg->relay.trusted_networks, cfg->relay.ntrusted_networks, addr);
}

const struct config_cidr *config_cidr_match(const struct config_cidr *nets, size_t n,
                                            const struct sockaddr *addr)
{
    unsigned char a[16];
    int family;
    if (addr->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        family = AF_INET;
    } else if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(a, a6->s6_addr + 12, 4);
            family = AF_INET;
        } else {
            memcpy(a, a6->s6_addr, 16);
            family = AF_INET6;
        }
    } else {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct config_cidr *net = &nets[i];
        if (net->family == family && prefix_match(a, net->addr, net->prefix))
            return net;
    }
    return NULL;
}
