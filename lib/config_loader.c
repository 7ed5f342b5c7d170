/*
 * Loading a configuration from text or a file: the tree is built and walked against the key table,
 * then come the steps that need every key read first: the shaping rules (which inherit
 * shaping.default, site rules before the shipped ones), checks across keys, and values normalized
 * once all are known. The result is reference-counted and freed whole with its last reference.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config_int.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* A configuration file larger than this is not one (long domain lists stay far below). */
#define MAX_FILE_SIZE (64u << 20)

/* packaging/shaping.yaml, embedded at build time (lib/CMakeLists.txt). */
extern const char config_shipped_shaping[];
#define CONFIG_SHIPPED_SHAPING_NAME "<shipped shaping.yaml>"

static void shaping_copy(struct config_shaping *to, const struct config_shaping *from)
{
    *to = *from;
    to->pool = from->pool ? xstrdup(from->pool) : NULL;
    to->retry_ms = xcalloc(from->nretry + 1, sizeof *to->retry_ms);
    if (from->nretry > 0)
        memcpy(to->retry_ms, from->retry_ms, from->nretry * sizeof *to->retry_ms);
}

/* Rules in order after those loaded already: each starts as a copy of shaping.default, then its
 * own keys (any shaping.default key, plus match) override. `name` names the list in messages. */
static void load_shaping_rules(struct load *ld, const struct node *n, const char *name, int shipped)
{
    struct config *cfg = ld->cfg;
    if (n->kind != NODE_SEQUENCE) {
        config_fail(ld, n, "%s: expected a list of rules, not %s", name,
                    config_node_kind_name(n->kind));
        return;
    }
    size_t total = cfg->shaping.nrules + n->nitems,
           pool_key = config_key_index("shaping.default.pool");
    cfg->shaping.rules = xrealloc(cfg->shaping.rules, (total + 1) * sizeof *cfg->shaping.rules);
    ld->rule_pool = xrealloc(ld->rule_pool, (total + 1) * sizeof *ld->rule_pool);
    const struct node **where = xcalloc(config_key_count, sizeof *where);
    for (size_t i = 0; i < n->nitems; i++) {
        const struct node *item = n->items[i], *match = NULL;
        char display[NAME_BUF], match_name[NAME_BUF + 8];
        snprintf(display, sizeof display, "%s[%zu]", name, i);
        snprintf(match_name, sizeof match_name, "%s.match", display);
        size_t index = cfg->shaping.nrules++;
        struct config_shaping_rule *rule = &cfg->shaping.rules[index];
        memset(rule, 0, sizeof *rule);
        memset(&ld->rule_pool[index], 0, sizeof ld->rule_pool[index]);
        rule->shipped = shipped;
        rule->pos = config_pos_of(ld, item);
        shaping_copy(&rule->values, &cfg->shaping.defaults);
        if (item->kind != NODE_MAPPING) {
            config_fail(ld, item, "%s: expected a mapping with match, not %s", display,
                        config_node_kind_name(item->kind));
            continue;
        }
        /* The keys other than match are shaping.default's: walk them as such. */
        struct node values = {.kind = NODE_MAPPING, .line = item->line, .column = item->column};
        values.items = xcalloc(item->nitems + 1, sizeof *values.items);
        for (size_t j = 0; j + 1 < item->nitems; j += 2) {
            const struct node *key = item->items[j];
            if (key->kind == NODE_SCALAR && config_node_is(key, "match")) {
                if (match != NULL)
                    config_fail(ld, key, "duplicate key '%s' (first at line %u)", match_name,
                                match->line);
                else
                    match = item->items[j + 1];
                continue;
            }
            values.items[values.nitems++] = item->items[j];
            values.items[values.nitems++] = item->items[j + 1];
        }
        memset(where, 0, config_key_count * sizeof *where);
        ld->inherit++;
        config_walk_map(ld, &values, "shaping.default", display, &rule->values, where);
        ld->inherit--;
        free(values.items);
        if (where[pool_key] != NULL)
            ld->rule_pool[index] = config_pos_of(ld, where[pool_key]);

        if (match == NULL || config_node_is_null(match)) {
            config_fail(ld, match ? match : item, "%s is required", match_name);
        } else if (match->kind != NODE_MAPPING) {
            config_fail(ld, match, "%s: expected a mapping (mx, domain), not %s", match_name,
                        config_node_kind_name(match->kind));
        } else {
            int errors = ld->e.count;
            config_walk_map(ld, match, "shaping.rules[].match", match_name, rule, NULL);
            if (rule->nmatch_mx == 0 && rule->nmatch_domain == 0 && ld->e.count == errors)
                config_fail(ld, match, "%s: needs mx, domain or both", match_name);
        }
    }
    free(where);
}

/* The shipped provider rules: a mapping of rules, backoff and reply_rules, read like
 * shaping.rules, shaping.backoff and shaping.reply_rules and appended to them. */
static void load_shipped_rules(struct load *ld)
{
    struct config *cfg = ld->cfg;
    const char *text = config_shipped_shaping;
    struct node *root = NULL;
    size_t site_replies = cfg->shaping.nreply_rules;
    ld->e.file = CONFIG_SHIPPED_SHAPING_NAME;
    if (config_tree_build(text, strlen(text), &ld->e, &root) == 0) {
        for (size_t i = 0; root != NULL && root->kind == NODE_MAPPING && i + 1 < root->nitems;
             i += 2) {
            const struct node *key = root->items[i], *value = root->items[i + 1];
            if (config_node_is(key, "rules"))
                load_shaping_rules(ld, value, "rules", 1);
            else if (config_node_is(key, "backoff"))
                config_walk_list(ld, value, "backoff", "shaping.backoff[]",
                                 sizeof *cfg->shaping.backoffs,
                                 offsetof(struct config_backoff, pos),
                                 (void **)&cfg->shaping.backoffs, &cfg->shaping.nbackoffs);
            else if (config_node_is(key, "reply_rules"))
                config_walk_list(ld, value, "reply_rules", "shaping.reply_rules[]",
                                 sizeof *cfg->shaping.reply_rules,
                                 offsetof(struct config_reply_rule, pos),
                                 (void **)&cfg->shaping.reply_rules, &cfg->shaping.nreply_rules);
            else
                config_fail(ld, key, "expected only the keys rules, backoff and reply_rules");
        }
    }
    for (size_t i = site_replies; i < cfg->shaping.nreply_rules; i++)
        cfg->shaping.reply_rules[i].shipped = 1;
    config_node_free(root);
    ld->e.file = cfg->source;
}

/* The first backoff set called name, or NULL. */
static const struct config_backoff *backoff_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->shaping.nbackoffs; i++)
        if (cfg->shaping.backoffs[i].name != NULL &&
            strcmp(cfg->shaping.backoffs[i].name, name) == 0)
            return &cfg->shaping.backoffs[i];
    return NULL;
}

/* Each reply rule's text compiled once, here (a bad one names where it is written), and its
 * backoff set found. */
static void finish_reply_rules(struct load *ld)
{
    struct config *cfg = ld->cfg;
    size_t nsite = 0;
    for (size_t i = 0; i < cfg->shaping.nreply_rules; i++) {
        struct config_reply_rule *rule = &cfg->shaping.reply_rules[i];
        const char *list = rule->shipped ? "reply_rules" : "shaping.reply_rules";
        size_t index = rule->shipped ? i - nsite : i;
        nsite += !rule->shipped;
        if (rule->text != NULL) {
            rule->regex = xmalloc(sizeof *rule->regex);
            int rc = regcomp(rule->regex, rule->text, REG_EXTENDED | REG_ICASE | REG_NOSUB);
            if (rc != 0) {
                char why[160];
                regerror(rc, rule->regex, why, sizeof why);
                free(rule->regex);
                rule->regex = NULL;
                config_fail_at(ld, rule->text_pos,
                               "%s[%zu].text: not a valid regular expression: %s", list, index,
                               why);
            }
        }
        if (rule->action == REPLY_RULE_BACKOFF && rule->backoff == NULL)
            config_fail_at(ld, rule->pos, "%s[%zu].backoff is required with action backoff", list,
                           index);
        else if (rule->backoff != NULL &&
                 (rule->backoff_set = backoff_find(cfg, rule->backoff)) == NULL)
            config_fail_at(ld, rule->backoff_pos,
                           "%s[%zu].backoff: '%s' is not a set of "
                           "shaping.backoff",
                           list, index, rule->backoff);
    }
}

static int pool_usable(const struct config *cfg, const char *pool)
{
    return pool == NULL || config_egress_pool_find(cfg, pool) != NULL ||
           (cfg->negress_pools == 0 && strcmp(pool, "default") == 0);
}

static void check_pools(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    const char *pool = cfg->shaping.defaults.pool;
    if (!pool_usable(cfg, pool)) {
        const struct node *at = ld->where[config_key_index("shaping.default.pool")];
        config_fail(ld, at ? at : ld->where[config_key_index("egress.pools")],
                    "shaping.default.pool: '%s' is not a pool of egress.pools (name one there, or "
                    "set shaping.default.pool)",
                    pool);
    }
    size_t nsite = 0;
    for (size_t i = 0; i < cfg->shaping.nrules; i++) {
        const struct config_shaping_rule *rule = &cfg->shaping.rules[i];
        nsite += !rule->shipped;
        if (ld->rule_pool[i].file != NULL && !pool_usable(cfg, rule->values.pool))
            config_fail_at(ld, ld->rule_pool[i], "%s[%zu].pool: '%s' is not a pool of egress.pools",
                           rule->shipped ? "rules" : "shaping.rules", rule->shipped ? i - nsite : i,
                           rule->values.pool);
    }
}

/* An egress address's warm-up: a schedule needs a start, one entry per provider. */
static void finish_warmup(struct load *ld, const struct config_egress_pool *pool, size_t index)
{
    struct config_egress_addr *a = &pool->addrs[index];
    struct config_warmup *w = &a->warmup;
    if (w->utc_offset != NULL)
        config_parse_utc_offset(w->utc_offset, &w->offset_minutes);
    if (w->start != NULL && w->nschedule == 0)
        config_fail_at(ld, w->start_pos,
                       "egress.pools.%s[%zu].warmup.schedule is required with warmup.start",
                       pool->name, index);
    if (w->nschedule == 0)
        return;
    if (w->start == NULL)
        config_fail_at(ld, w->schedule[0].pos,
                       "egress.pools.%s[%zu].warmup.start is required with a schedule", pool->name,
                       index);
    else
        config_parse_date(w->start, &w->start_day);
    for (size_t i = 0; i < w->nschedule; i++)
        for (size_t j = 0; j < i; j++)
            if (w->schedule[i].provider != NULL && w->schedule[j].provider != NULL &&
                strcasecmp(w->schedule[i].provider, w->schedule[j].provider) == 0)
                config_fail_at(ld, w->schedule[i].pos,
                               "egress.pools.%s[%zu].warmup.schedule[%zu].provider: '%s' is "
                               "already scheduled (line %u)",
                               pool->name, index, i, w->schedule[i].provider,
                               w->schedule[j].pos.line);
}

/* Values that depend on other keys, or are normalized once all are known. */
static void finish_values(struct load *ld)
{
    struct config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->negress_pools; i++)
        for (size_t j = 0; j < cfg->egress_pools[i].naddrs; j++) {
            if (cfg->egress_pools[i].addrs[j].ehlo == NULL && cfg->server.hostname != NULL)
                cfg->egress_pools[i].addrs[j].ehlo = xstrdup(cfg->server.hostname);
            finish_warmup(ld, &cfg->egress_pools[i], j);
        }
    for (size_t i = 0; i < cfg->inbound.nblocked_attachments; i++) {
        char *ext = cfg->inbound.blocked_attachments[i];
        if (ext[0] == '.')
            memmove(ext, ext + 1, strlen(ext));
        for (char *p = ext; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    /* RFC 6376 §3.5: the domain of i= is d= or a subdomain of it. */
    for (size_t i = 0; i < cfg->ndkim; i++) {
        const struct config_dkim *d = &cfg->dkim[i];
        const char *sdid = d->signing_domain ? d->signing_domain : d->domain;
        if (d->identity == NULL || sdid == NULL)
            continue;
        const char *auid = strrchr(d->identity, '@') + 1;
        size_t alen = strlen(auid), slen = strlen(sdid);
        if (!(alen == slen || (alen > slen && auid[alen - slen - 1] == '.')) ||
            strcasecmp(auid + alen - slen, sdid) != 0)
            config_fail_at(ld, d->pos, "dkim[%zu].identity: '%s' is not in %s or below it", i,
                           d->identity, sdid);
    }
}

/* A webhook sends some events, and one URL has one entry (one backlog). */
static void check_webhooks(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        const struct config_webhook *w = &cfg->webhooks[i];
        if (w->nevents == 0 && w->url != NULL)
            config_fail_at(ld, w->pos, "webhooks[%zu].events: name at least one event", i);
        for (size_t j = 0; j < i && w->url != NULL; j++)
            if (cfg->webhooks[j].url != NULL && strcmp(cfg->webhooks[j].url, w->url) == 0)
                config_fail_at(ld, w->pos,
                               "webhooks[%zu].url: '%s' is listed twice (also at line %u)", i,
                               w->url, cfg->webhooks[j].pos.line);
    }
}

/* Rules across keys: a certificate needs its key (and the reverse), implicit TLS a certificate. */
static void check_tls(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    const struct node *section = ld->where[config_key_index("tls")];
    if (cfg->tls.certificate != NULL && cfg->tls.key == NULL)
        config_fail(ld, section, "tls.key is required with tls.certificate");
    if (cfg->tls.key != NULL && cfg->tls.certificate == NULL)
        config_fail(ld, section, "tls.certificate is required with tls.key");
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].tls == LISTENER_TLS_IMPLICIT && cfg->tls.certificate == NULL)
            config_fail_at(ld, ld->listener_tls[i],
                           "listeners[%zu].tls: implicit TLS needs tls.certificate (and tls.key)",
                           i);
}

/* Feedback mail must reach the intake: its domains are ours (else RCPT refuses it as relaying),
 * and the VERP return path needs a key to sign with. Ids name keys: no two alike. */
static void check_feedback(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    const struct node *section = ld->where[config_key_index("feedback")];
    for (size_t i = 0; i < cfg->feedback.naddresses; i++) {
        const char *at = strrchr(cfg->feedback.addresses[i], '@');
        if (at != NULL && config_domain_find(cfg, at + 1) == NULL)
            config_fail(ld, section, "feedback.addresses: the domain of %s is not in domains",
                        cfg->feedback.addresses[i]);
    }
    if (cfg->feedback.verp_domain != NULL) {
        if (config_domain_find(cfg, cfg->feedback.verp_domain) == NULL)
            config_fail(ld, section, "feedback.verp_domain: %s is not in domains",
                        cfg->feedback.verp_domain);
        if (cfg->feedback.ntrace_keys == 0)
            config_fail(ld, section, "feedback.verp_domain needs feedback.trace_keys");
    }
    for (size_t i = 0; i < cfg->feedback.ntrace_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->feedback.trace_keys[i].id, cfg->feedback.trace_keys[j].id) == 0)
                config_fail_at(ld, cfg->feedback.trace_keys[i].pos,
                               "feedback.trace_keys[%zu].id: '%s' is already the id of "
                               "feedback.trace_keys[%zu]",
                               i, cfg->feedback.trace_keys[i].id, j);
}

/* Each tenant once, and its pool one of egress.pools. */
static void check_tenants(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const struct config_tenant *t = &cfg->tenants[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->name, cfg->tenants[j].name) == 0)
                config_fail_at(ld, t->pos, "tenants[%zu].name: '%s' is already tenants[%zu]", i,
                               t->name, j);
        if (t->pool != NULL && config_egress_pool_find(cfg, t->pool) == NULL)
            config_fail_at(ld, t->pool_pos, "tenants[%zu].pool: '%s' is not a pool of egress.pools",
                           i, t->pool);
    }
}

/* The HTTP server listens beyond this host only with TLS and tokens, and TLS needs a certificate.
 */
static void check_http(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    const struct node *listen = ld->where[config_key_index("http.listen")];
    int open_to_all = cfg->http.tls && cfg->http.tokens != NULL;
    for (size_t i = 0; i < cfg->http.nlisten && !open_to_all; i++) {
        struct sockaddr_storage ss;
        if (config_parse_hostport(cfg->http.listen[i], 1, &ss) != NULL || sockaddr_is_loopback(&ss))
            continue;
        const struct node *at =
            listen != NULL && listen->kind == NODE_SEQUENCE && i < listen->nitems ? listen->items[i]
                                                                                  : listen;
        config_fail(ld, at,
                    "http.listen: %s is not a loopback address: it needs http.tls: true and "
                    "http.tokens",
                    cfg->http.listen[i]);
    }
    if ((cfg->http.certificate == NULL) != (cfg->http.key == NULL))
        config_fail_at(ld, cfg->http.certificate ? cfg->http.certificate_pos : cfg->http.key_pos,
                       "http.certificate and http.key go together");
    if (cfg->http.tls && cfg->http.certificate == NULL && cfg->tls.certificate == NULL)
        config_fail(ld, ld->where[config_key_index("http.tls")],
                    "http.tls: needs http.certificate or tls.certificate (and its key)");
}

static void free_strings(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void shaping_free(struct config_shaping *sh)
{
    free(sh->retry_ms);
    free(sh->pool);
}

static void config_free(struct config *cfg)
{
    free(cfg->server.hostname);
    free(cfg->server.spool);
    free(cfg->server.user);
    free(cfg->server.log_file);
    free(cfg->server.postmaster);
    for (size_t i = 0; i < cfg->dns.nservers; i++)
        free(cfg->dns.servers[i]);
    free(cfg->dns.servers);
    free_strings(cfg->delivery.bounce_category_files, cfg->delivery.nbounce_category_files);
    free(cfg->delivery.delay_warning_ms);
    free(cfg->tls.certificate);
    free(cfg->tls.key);
    free(cfg->tls.ca_file);
    free(cfg->tls_rpt.organization);
    free(cfg->tls_rpt.contact);
    free(cfg->tls_rpt.sender);
    free_strings(cfg->http.listen, cfg->http.nlisten);
    free(cfg->http.certificate);
    free(cfg->http.key);
    free(cfg->http.tokens);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].address);
    }
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->relay.ntrusted_networks; i++)
        free(cfg->relay.trusted_networks[i].text);
    free(cfg->relay.trusted_networks);
    free(cfg->relay.users);
    for (size_t i = 0; i < cfg->ndomains; i++) {
        free(cfg->domains[i].name);
        free(cfg->domains[i].deliver_to);
        free(cfg->domains[i].recipients);
    }
    free(cfg->domains);
    for (size_t i = 0; i < cfg->negress_pools; i++) {
        const struct config_egress_pool *pool = &cfg->egress_pools[i];
        for (size_t j = 0; j < pool->naddrs; j++) {
            struct config_warmup *w = &pool->addrs[j].warmup;
            free(pool->addrs[j].address);
            free(pool->addrs[j].ehlo);
            free(w->start);
            free(w->utc_offset);
            for (size_t k = 0; k < w->nschedule; k++) {
                free(w->schedule[k].provider);
                free(w->schedule[k].per_day);
            }
            free(w->schedule);
        }
        free(pool->addrs);
        free(pool->name);
    }
    free(cfg->egress_pools);
    shaping_free(&cfg->shaping.defaults);
    for (size_t i = 0; i < cfg->shaping.nrules; i++) {
        struct config_shaping_rule *rule = &cfg->shaping.rules[i];
        free_strings(rule->match_mx, rule->nmatch_mx);
        free_strings(rule->match_domain, rule->nmatch_domain);
        shaping_free(&rule->values);
    }
    free(cfg->shaping.rules);
    for (size_t i = 0; i < cfg->shaping.nbackoffs; i++)
        free(cfg->shaping.backoffs[i].name);
    free(cfg->shaping.backoffs);
    for (size_t i = 0; i < cfg->shaping.nreply_rules; i++) {
        struct config_reply_rule *rule = &cfg->shaping.reply_rules[i];
        free(rule->name);
        free_strings(rule->match_mx, rule->nmatch_mx);
        free_strings(rule->match_domain, rule->nmatch_domain);
        free(rule->enhanced);
        free(rule->text);
        if (rule->regex != NULL)
            regfree(rule->regex);
        free(rule->regex);
        free(rule->backoff);
        free(rule->reason);
    }
    free(cfg->shaping.reply_rules);
    for (size_t i = 0; i < cfg->ndkim; i++) {
        const struct config_dkim *d = &cfg->dkim[i];
        free(d->domain);
        free(d->signing_domain);
        free(d->selector);
        free(d->key);
        free(d->algorithm);
        free(d->canonicalization);
        free(d->identity);
    }
    free(cfg->dkim);
    for (size_t i = 0; i < cfg->inbound.ndnsbl; i++)
        free(cfg->inbound.dnsbl[i].zone);
    free(cfg->inbound.dnsbl);
    for (size_t i = 0; i < cfg->doctor.nblocklists; i++) {
        free(cfg->doctor.blocklists[i].zone);
        free(cfg->doctor.blocklists[i].name);
        free(cfg->doctor.blocklists[i].removal);
    }
    free(cfg->doctor.blocklists);
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        struct config_webhook *w = &cfg->webhooks[i];
        free(w->url);
        free_strings(w->events, w->nevents);
        free_strings(w->headers, w->nheaders);
        free(w->bearer_token);
        free(w->ca_file);
    }
    free(cfg->webhooks);
    free_strings(cfg->feedback.addresses, cfg->feedback.naddresses);
    free(cfg->feedback.verp_domain);
    free(cfg->feedback.sender_id);
    for (size_t i = 0; i < cfg->feedback.ntrace_keys; i++) {
        free(cfg->feedback.trace_keys[i].id);
        free(cfg->feedback.trace_keys[i].secret);
    }
    free(cfg->feedback.trace_keys);
    free(cfg->feedback.alarm_notify);
    free(cfg->tenancy.tenant_header);
    free(cfg->tenancy.campaign_header);
    for (size_t i = 0; i < cfg->ntenants; i++) {
        free(cfg->tenants[i].name);
        free(cfg->tenants[i].pool);
    }
    free(cfg->tenants);
    free_strings(cfg->inbound.blocked_attachments, cfg->inbound.nblocked_attachments);
    free(cfg->inbound.clamd);
    free_strings(cfg->suppression.drop_tenants, cfg->suppression.ndrop_tenants);
    free_strings(cfg->suppression.reject_tenants, cfg->suppression.nreject_tenants);
    free(cfg->suppression.path);
    for (size_t i = 0; i < cfg->inbound.ndmarc_override_networks; i++)
        free(cfg->inbound.dmarc_override_networks[i].text);
    free(cfg->inbound.dmarc_override_networks);
    free_strings(cfg->inbound.dmarc_override_senders, cfg->inbound.ndmarc_override_senders);
    free(cfg->inbound.public_suffix_list);
    free(cfg->cluster.redis);
    free(cfg->cluster.key_prefix);
    free(cfg->source);
    free(cfg);
}

int config_load_string(const char *text, size_t len, const char *name, struct config **out,
                       struct buf *err)
{
    struct config *cfg = xcalloc(1, sizeof *cfg);
    cfg->refs = 1;
    cfg->source = xstrdup(name);
    struct load ld = {.cfg = cfg,
                      .e = {cfg->source, err, 0},
                      .where = xcalloc(config_key_count, sizeof *ld.where)};
    struct node *root = NULL;
    if (config_tree_build(text, len, &ld.e, &root) == 0) {
        if (!config_node_is_null(root) && root->kind != NODE_MAPPING) {
            config_fail(&ld, root,
                        "expected a mapping of sections (server:, listeners:, ...), not %s",
                        config_node_kind_name(root->kind));
        } else {
            config_walk_map(&ld, config_node_is_null(root) ? NULL : root, "", "", cfg, ld.where);
            check_tls(&ld);
            check_http(&ld);
            finish_values(&ld);
            if (ld.site_rules != NULL)
                load_shaping_rules(&ld, ld.site_rules, "shaping.rules", 0);
            if (cfg->shaping.provider_rules)
                load_shipped_rules(&ld);
            finish_reply_rules(&ld);
            check_pools(&ld);
            check_webhooks(&ld);
            check_feedback(&ld);
            check_tenants(&ld);
        }
    }
    config_node_free(root);
    free(ld.where);
    free(ld.listener_tls);
    free(ld.rule_pool);
    if (ld.e.count > 0) {
        config_free(cfg);
        return -EINVAL;
    }
    *out = cfg;
    return 0;
}

int config_load_file(const char *path, struct config **out, struct buf *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int rc = -errno;
        buf_printf(err, "%s: cannot open: %s\n", path, strerror(-rc));
        return rc;
    }
    struct buf text = BUF_INIT;
    int rc = 0;
    for (;;) {
        char *dst = buf_reserve(&text, 65536);
        size_t got = fread(dst, 1, 65536, f);
        text.len += got;
        if (text.len > MAX_FILE_SIZE) {
            buf_printf(err, "%s: larger than %u MiB; not a configuration file\n", path,
                       MAX_FILE_SIZE >> 20);
            rc = -EFBIG;
            break;
        }
        if (got < 65536) {
            if (ferror(f)) {
                rc = -(errno ? errno : EIO);
                buf_printf(err, "%s: cannot read: %s\n", path, strerror(-rc));
            }
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = config_load_string(text.data ? text.data : "", text.len, path, out, err);
    buf_free(&text);
    return rc;
}

struct config *config_ref(struct config *cfg)
{
    cfg->refs++;
    return cfg;
}

void config_unref(struct config *cfg)
{
    if (cfg != NULL && --cfg->refs == 0)
        config_free(cfg);
}
