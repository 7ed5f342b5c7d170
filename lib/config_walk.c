/*
 * The key table (config_keys.h, instantiated here once) and the walk of the tree against it: each
 * mapping's keys looked up in the table (an unknown one gets a "did you mean"), each value handed
 * to config_values.c or, for the keys that hold sections (listeners, domains, lists, egress
 * pools), walked in turn; the keys a mapping leaves out get their defaults, parsed like values
 * written in the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config_int.h"
#include "lib/config_keys.h"
#include "lib/edit_distance.h"
#include "lib/idna.h"
#include "lib/xalloc.h"

const struct config_key *const config_key_table = config_keys;
const size_t config_key_count = CONFIG_NKEYS;

size_t config_key_index(const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return i;
    abort(); /* a name the loader uses is missing from the table */
}

/* The last part of `name` when it is a key directly inside section `prefix` ("" is the top). */
static const char *child_name(const char *name, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (plen > 0) {
        if (strncmp(name, prefix, plen) != 0 || name[plen] != '.')
            return NULL;
        name += plen + 1;
    }
    return strchr(name, '.') == NULL ? name : NULL;
}

static const struct config_key *key_lookup(const char *prefix, const char *key, size_t len)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const char *child = child_name(config_keys[i].name, prefix);
        if (child != NULL && strlen(child) == len && memcmp(child, key, len) == 0)
            return &config_keys[i];
    }
    return NULL;
}

/* The key of section `prefix` that `key` is most likely a typo of, or NULL. */
static const char *key_suggest(const char *prefix, const char *key, size_t len)
{
    const char *best = NULL;
    size_t best_distance = 3; /* two edits at most */
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const char *child = child_name(config_keys[i].name, prefix);
        if (child == NULL)
            continue;
        size_t d = edit_distance(key, len, child, strlen(child));
        if (d < best_distance && d < len) {
            best_distance = d;
            best = child;
        }
    }
    return best;
}

static void join_name(char out[NAME_BUF], const char *display, const char *child)
{
    snprintf(out, NAME_BUF, "%s%s%s", display, display[0] ? "." : "", child);
}

/* Each item is a mapping of "listeners[].*" keys; names and addresses must be unique. */
static void set_listeners(struct load *ld, const struct config_key *k, const struct node *n,
                          const char *name)
{
    struct config *cfg = ld->cfg;
    if (!config_node_is_null(n) && !config_expect(ld, k, n, name, NODE_SEQUENCE))
        return;
    if (n->kind != NODE_SEQUENCE || n->nitems == 0) {
        config_fail(ld, n, "%s: no listener given; leave the key out for the default one", name);
        return;
    }
    size_t name_key = config_key_index("listeners[].name"),
           address_key = config_key_index("listeners[].address");
    size_t tls_key = config_key_index("listeners[].tls");
    cfg->listeners = xcalloc(n->nitems, sizeof *cfg->listeners);
    ld->listener_tls = xcalloc(n->nitems, sizeof *ld->listener_tls);
    for (size_t i = 0; i < n->nitems; i++) {
        const struct node *item = n->items[i];
        struct config_listener *l = &cfg->listeners[cfg->nlisteners++];
        char display[NAME_BUF];
        snprintf(display, sizeof display, "%s[%zu]", name, i);
        l->pos = config_pos_of(ld, item);
        if (item->kind != NODE_MAPPING) {
            config_fail(ld, item, "%s: expected a mapping with name, address and role, not %s",
                        display, config_node_kind_name(item->kind));
            continue;
        }
        const struct node *where[CONFIG_NKEYS] = {0};
        config_walk_map(ld, item, "listeners[]", display, l, where);
        ld->listener_tls[i] = config_pos_of(ld, where[tls_key]);
        for (size_t j = 0; j < i; j++) {
            const struct config_listener *other = &cfg->listeners[j];
            if (l->name != NULL && other->name != NULL && strcmp(l->name, other->name) == 0)
                config_fail(ld, where[name_key], "%s.name: '%s' is already the name of %s[%zu]",
                            display, l->name, name, j);
            if (l->address != NULL && other->address != NULL &&
                config_sockaddr_equal(&l->addr, &other->addr))
                config_fail(ld, where[address_key],
                            "%s.address: '%s' is already the address of %s[%zu]", display,
                            l->address, name, j);
        }
    }
}

static int domain_compare(const void *a, const void *b)
{
    const struct config_domain *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    if (x->pos.line != y->pos.line)
        return x->pos.line < y->pos.line ? -1 : 1;
    return x->pos.column < y->pos.column ? -1 : x->pos.column > y->pos.column;
}

/* Domain names are lowercased, converted to A-labels (U-labels may be written) and lose one
 * trailing dot, then kept sorted for config_domain_find. */
static void set_domains(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name)
{
    struct config *cfg = ld->cfg;
    if (!config_expect(ld, k, n, name, NODE_MAPPING))
        return;
    cfg->domains = xcalloc(n->nitems / 2, sizeof *cfg->domains);
    for (size_t i = 0; i + 1 < n->nitems; i += 2) {
        const struct node *key = n->items[i], *value = n->items[i + 1];
        char canon[256], display[NAME_BUF], tmp[SHOWN_BUF];
        if (key->kind != NODE_SCALAR || config_node_is_null(key)) {
            config_fail(ld, key, "%s: expected a domain name, not %s", name,
                        key->kind == NODE_SCALAR ? "nothing" : config_node_kind_name(key->kind));
            continue;
        }
        /* Recipients' domains are compared in A-label form, so ours are kept in it too. */
        const char *text = key->text, *idna_why = NULL;
        size_t len = key->len;
        char ascii[256];
        if (idna_needed(key->text, key->len)) {
            if (idna_to_ascii(key->text, key->len, ascii, sizeof ascii, &idna_why) < 0) {
                config_fail(ld, key, "%s: '%s' is not a valid internationalized domain name: %s",
                            name, config_shown(key->text, key->len, tmp),
                            idna_why ? idna_why : "domain too long");
                continue;
            }
            text = ascii;
            len = strlen(ascii);
        }
        if (!canonical_name(text, len, canon, sizeof canon)) {
            config_fail(ld, key, "%s: '%s' is not a domain name", name,
                        config_shown(key->text, key->len, tmp));
            continue;
        }
        const char *why = config_domain_why(canon);
        if (why != NULL) {
            config_fail(ld, key, "%s: '%s' %s", name, config_shown(key->text, key->len, tmp), why);
            continue;
        }
        struct config_domain *d = &cfg->domains[cfg->ndomains++];
        d->name = xstrdup(canon);
        d->pos = config_pos_of(ld, key);
        snprintf(display, sizeof display, "%s.%s", name, canon);
        if (config_node_is_null(value))
            config_walk_map(ld, NULL, "domains.*", display, d, NULL);
        else if (value->kind == NODE_MAPPING)
            config_walk_map(ld, value, "domains.*", display, d, NULL);
        else
            config_fail(ld, value,
                        "%s: expected nothing or a mapping (deliver_to, recipients), not %s",
                        display, config_node_kind_name(value->kind));
    }
    qsort(cfg->domains, cfg->ndomains, sizeof *cfg->domains, domain_compare);
    for (size_t i = 1; i < cfg->ndomains; i++) {
        const struct config_domain *d = &cfg->domains[i], *prev = &cfg->domains[i - 1];
        if (strcmp(d->name, prev->name) == 0)
            config_fail_at(ld, d->pos, "%s: '%s' is listed twice (also at line %u)", name, d->name,
                           prev->pos.line);
    }
}

void config_walk_list(struct load *ld, const struct node *n, const char *name, const char *prefix,
                      size_t elem_size, size_t pos_offset, void **array, size_t *count)
{
    if (n->kind != NODE_SEQUENCE) {
        config_fail(ld, n, "%s: expected a list of mappings, not %s", name,
                    config_node_kind_name(n->kind));
        return;
    }
    char *elems = xrealloc(*array, (*count + n->nitems + 1) * elem_size);
    memset(elems + *count * elem_size, 0, (n->nitems + 1) * elem_size);
    *array = elems;
    for (size_t i = 0; i < n->nitems; i++) {
        const struct node *item = n->items[i];
        char display[NAME_BUF];
        void *elem = elems + elem_size * (*count)++;
        snprintf(display, sizeof display, "%s[%zu]", name, i);
        *(struct config_pos *)field_at(elem, pos_offset) = config_pos_of(ld, item);
        if (item->kind == NODE_MAPPING)
            config_walk_map(ld, item, prefix, display, elem, NULL);
        else
            config_fail(ld, item, "%s: expected a mapping, not %s", display,
                        config_node_kind_name(item->kind));
    }
}

static void set_list_key(struct load *ld, const struct config_key *k, const struct node *n,
                         const char *name, void *base)
{
    char prefix[NAME_BUF];
    snprintf(prefix, sizeof prefix, "%s[]", k->name);
    config_walk_list(ld, n, name, prefix, k->elem_size, k->pos_offset, field_at(base, k->offset),
                     field_at(base, k->aux));
}

/* Pool name -> list of {address, ehlo}; an address may be in one pool only, once. */
static void set_egress_pools(struct load *ld, const struct config_key *k, const struct node *n,
                             const char *name)
{
    struct config *cfg = ld->cfg;
    if (!config_expect(ld, k, n, name, NODE_MAPPING))
        return;
    cfg->egress_pools = xcalloc(n->nitems / 2 + 1, sizeof *cfg->egress_pools);
    for (size_t i = 0; i + 1 < n->nitems; i += 2) {
        const struct node *key = n->items[i], *value = n->items[i + 1];
        char display[NAME_BUF], tmp[SHOWN_BUF];
        const char *why = key->kind != NODE_SCALAR || config_node_is_null(key)
                              ? "is not a pool name"
                              : config_check_listener_name(key->text);
        if (why == NULL && config_egress_pool_find(cfg, key->text) != NULL)
            why = "is already the name of a pool";
        if (why != NULL) {
            config_fail(ld, key, "%s: '%s' %s", name,
                        key->kind == NODE_SCALAR ? config_shown(key->text, key->len, tmp) : "",
                        why);
            continue;
        }
        struct config_egress_pool *pool = &cfg->egress_pools[cfg->negress_pools++];
        pool->name = xstrdup(key->text);
        pool->pos = config_pos_of(ld, key);
        snprintf(display, sizeof display, "%s.%s", name, pool->name);
        if (config_node_is_null(value) || (value->kind == NODE_SEQUENCE && value->nitems == 0)) {
            config_fail(ld, value, "%s: no address given", display);
            continue;
        }
        config_walk_list(ld, value, display, "egress.pools.*[]", sizeof *pool->addrs,
                         offsetof(struct config_egress_addr, pos), (void **)&pool->addrs,
                         &pool->naddrs);
        for (size_t j = 0; j < pool->naddrs; j++) {
            struct config_egress_addr *a = &pool->addrs[j];
            if (a->address == NULL || config_parse_hostport(a->address, 0, &a->addr) != NULL)
                continue;
            for (size_t p = 0; p < cfg->negress_pools; p++) {
                const struct config_egress_pool *other = &cfg->egress_pools[p];
                for (size_t q = 0; q < (other == pool ? j : other->naddrs); q++)
                    if (config_sockaddr_equal(&a->addr, &other->addrs[q].addr))
                        config_fail_at(
                            ld, a->pos, "%s[%zu].address: '%s' is already in pool %s (line %u)",
                            display, j, a->address, other->name, other->addrs[q].pos.line);
            }
        }
    }
}

/* A section's keys are relative to struct config, or to the field at its offset when it has one
 * (shaping.default: struct config_shaping, shared with the rules). */
static void *section_base(const struct config_key *k, void *base)
{
    return k->offset == CONFIG_NO_FIELD ? base : field_at(base, k->offset);
}

static void set_value(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base, const struct node **where)
{
    switch (k->type) {
    case CONFIG_SECTION:
        if (config_expect(ld, k, n, name, NODE_MAPPING))
            config_walk_map(ld, n, k->name, name, section_base(k, base), where);
        break;
    case CONFIG_LISTENERS:
        set_listeners(ld, k, n, name);
        break;
    case CONFIG_DOMAINS:
        set_domains(ld, k, n, name);
        break;
    case CONFIG_LIST:
        set_list_key(ld, k, n, name, base);
        break;
    case CONFIG_EGRESS_POOLS:
        set_egress_pools(ld, k, n, name);
        break;
    case CONFIG_SHAPING_RULES:
        ld->site_rules = n; /* read after shaping.default, which the rules inherit from */
        break;
    default: /* one value, or a list of values */
        config_value_set(ld, k, n, name, base);
        break;
    }
}

/* A default goes through the same parsing as a value from the file, so the two cannot differ. */
static void apply_default(struct load *ld, const struct config_key *k, const char *name, void *base)
{
    if (k->def_fn != NULL) {
        *(char **)field_at(base, k->offset) = k->def_fn();
        return;
    }
    if (k->def == NULL)
        return;
    struct node *n = NULL;
    ld->defaults++;
    if (config_tree_build(k->def, strlen(k->def), &ld->e, &n) == 0 && n != NULL)
        set_value(ld, k, n, name, base, NULL);
    ld->defaults--;
    config_node_free(n);
}

void config_walk_map(struct load *ld, const struct node *map, const char *prefix,
                     const char *display, void *base, const struct node **where)
{
    const struct node *first[CONFIG_NKEYS] = {0};
    unsigned char set[CONFIG_NKEYS] = {0};
    char name[NAME_BUF], tmp[SHOWN_BUF];

    for (size_t i = 0; map != NULL && i + 1 < map->nitems; i += 2) {
        const struct node *key = map->items[i], *value = map->items[i + 1];
        if (key->kind != NODE_SCALAR || config_node_is_null(key)) {
            config_fail(ld, key, "%s%skeys must be names, not %s", display, display[0] ? ": " : "",
                        key->kind == NODE_SCALAR ? "nothing" : config_node_kind_name(key->kind));
            continue;
        }
        const struct config_key *k = key_lookup(prefix, key->text, key->len);
        if (k == NULL) {
            const char *guess = key_suggest(prefix, key->text, key->len);
            join_name(name, display, config_shown(key->text, key->len, tmp));
            if (guess != NULL) {
                char guess_name[NAME_BUF];
                join_name(guess_name, display, guess);
                config_fail(ld, key, "unknown key '%s' (did you mean '%s'?)", name, guess_name);
            } else {
                config_fail(ld, key, "unknown key '%s'", name);
            }
            continue;
        }
        size_t index = (size_t)(k - config_keys);
        join_name(name, display, key->text);
        if (first[index] != NULL) {
            config_fail(ld, key, "duplicate key '%s' (first at line %u)", name, first[index]->line);
            continue;
        }
        first[index] = key;
        if (where != NULL && ld->defaults == 0)
            where[index] = value;
        /* An empty value leaves the key out (its default applies); listeners say more. */
        if (config_node_is_null(value) && k->type != CONFIG_LISTENERS)
            continue;
        set[index] = 1;
        set_value(ld, k, value, name, base, where);
    }

    for (size_t i = 0; i < CONFIG_NKEYS && ld->inherit == 0; i++) {
        const struct config_key *k = &config_keys[i];
        const char *child = child_name(k->name, prefix);
        if (child == NULL || set[i])
            continue;
        join_name(name, display, child);
        if (k->flags & CONFIG_KEY_REQUIRED)
            config_fail(ld, map, "%s is required", name);
        else if (k->type == CONFIG_SECTION)
            config_walk_map(ld, NULL, k->name, name, section_base(k, base), where);
        else
            apply_default(ld, k, name, base);
    }
}
