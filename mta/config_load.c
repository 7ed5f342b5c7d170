#include "mta/config_load.h"

#include <string.h>

#include "lib/log.h"
#include "mta/delivery/bounce_category.h"
#include "mta/dkim/dkim.h"
#include "mta/relay_battery.h"
#include "policy/auth_users.h"
#include "policy/public_suffix.h"
#include "policy/recipients.h"
#include "policy/relay_lint.h"

void config_log_lines(enum log_level level, const char *event, const struct buf *lines)
{
    const char *p = lines->data, *end = lines->data + lines->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0) {
            struct logrec r;
            log_begin(&r, level, event);
            log_strn(&r, "msg", p, len);
            log_end(&r);
        }
        p += len + 1;
    }
}

/* The relay lint turns a configuration that relays for strangers into a load error, unless the file
 * acknowledges it; then each problem is logged as a warning instead. */
static int relay_lint_gate(struct config *cfg, struct buf *err)
{
    struct buf problems = BUF_INIT;
    int n = policy_relay_lint(cfg, &problems);
    if (n == 0)
        return 0;
    if (!cfg->relay.open_relay_acknowledged) {
        buf_append(err, problems.data, problems.len);
        buf_printf(err,
                   "%s: refusing a configuration that relays for strangers (only if that is "
                   "really meant: relay.i_understand_this_is_an_open_relay: true)\n",
                   cfg->source);
        buf_free(&problems);
        return -1;
    }
    config_log_lines(LOG_WARN, "config.open_relay", &problems);
    buf_free(&problems);
    return 0;
}

struct battery_failures {
    const struct config *cfg;
    struct buf lines;
};

/* Each attempt of the battery that relayed becomes one "file:line:column: message" line, at the
 * rule that accepted it (the listener when the rule is built in). */
static void battery_on_result(const struct relay_result *res, void *arg)
{
    struct battery_failures *f = arg;
    if (!res->relayed)
        return;
    struct config_pos pos = res->decision.pos.line > 0 ? res->decision.pos : res->listener->pos;
    buf_printf(&f->lines,
               "%s:%u:%u: relay battery: listener '%s' accepted RCPT %s (%s) from outside client "
               "%s without AUTH, by rule %s\n",
               pos.file ? pos.file : f->cfg->source, pos.line, pos.column, res->listener->name,
               res->rcpt_arg, res->rcase->name, res->client, res->decision.rule);
}

/* The battery asks the relay decision itself what the lint only infers from the keys: a relay it
 * finds refuses the configuration unless the file acknowledges an open relay. */
static int relay_battery_gate(struct config *cfg, struct buf *err)
{
    struct battery_failures failures = {cfg, BUF_INIT};
    int relays = relay_battery_run(cfg, battery_on_result, &failures);
    if (relays == 0)
        return 0;
    if (!cfg->relay.open_relay_acknowledged) {
        buf_append(err, failures.lines.data, failures.lines.len);
        buf_printf(err,
                   "%s: refusing a configuration that relays for strangers: %d relay attempts "
                   "from outside were accepted (only if that is really meant: "
                   "relay.i_understand_this_is_an_open_relay: true)\n",
                   cfg->source, relays);
        buf_free(&failures.lines);
        return -1;
    }
    struct logrec r;
    log_begin(&r, LOG_WARN, "config.open_relay");
    log_str(&r, "msg", "relay battery: relay attempts from outside were accepted");
    log_int(&r, "relays", relays);
    log_end(&r);
    buf_free(&failures.lines);
    return 0;
}

/* A pattern file that does not compile refuses the configuration, for every command (the daemon
 * compiles its own copy of the rules, see daemon.c). */
static int bounce_categories_gate(const struct config *cfg, struct buf *err)
{
    struct bounce_categories *set;
    if (bounce_categories_load_config(cfg, &set, err) < 0)
        return -1;
    bounce_categories_free(set);
    return 0;
}

struct dkim_signer_set *config_dkim_signers(const struct config *cfg, struct buf *err)
{
    struct dkim_signer_set *set = dkim_signer_set_new();
    struct buf why = BUF_INIT, weak = BUF_INIT; /* weak: warnings about small RSA keys */
    int failed = 0;

    for (size_t i = 0; i < cfg->ndkim; i++) {
        const struct config_dkim *d = &cfg->dkim[i];
        struct dkim_entry_conf conf = {
            .domain = d->domain,
            .signing_domain = d->signing_domain,
            .selector = d->selector,
            .key_file = d->key,
            .algorithm = d->algorithm,
            .canonicalization = d->canonicalization,
            .expire = (d->expire_ms + 999) / 1000,
            .identity = d->identity,
        };
        buf_reset(&why);
        if (dkim_signer_set_add(set, &conf, &why) < 0) {
            buf_printf(err, "%s:%u:%u: dkim[%zu]: %.*s\n", d->pos.file ? d->pos.file : cfg->source,
                       d->pos.line, d->pos.column, i, (int)why.len, why.data);
            failed = 1;
            continue;
        }
        const struct dkim_key *key =
            dkim_signer_set_entry(set, dkim_signer_set_count(set) - 1)->key;
        if (key->alg == DKIM_ALG_RSA_SHA256 && key->bits < DKIM_RSA_NEW_MIN_BITS)
            buf_printf(&weak,
                       "%s:%u:%u: dkim[%zu].key: %s is an RSA key of %d bits: still used, "
                       "but receivers may soon refuse it; make a %d-bit one (sluice dkim keygen) "
                       "and publish it under a new selector\n",
                       d->pos.file ? d->pos.file : cfg->source, d->pos.line, d->pos.column, i,
                       key->path, key->bits, DKIM_RSA_NEW_MIN_BITS);
    }
    buf_free(&why);
    config_log_lines(LOG_WARN, "config.warning", &weak);
    buf_free(&weak);
    if (failed) {
        dkim_signer_set_unref(set);
        return NULL;
    }
    return set;
}

int config_auth_users(const struct config *cfg, struct auth_users **out, struct buf *err)
{
    *out = NULL;
    if (cfg->relay.users == NULL)
        return 0;
    return auth_users_load(cfg->relay.users, out, err) < 0 ? -1 : 0;
}

int config_public_suffixes(const struct config *cfg, struct public_suffixes **out,
                           struct buf *err)
{
    *out = NULL;
    if (cfg->inbound.dmarc == DMARC_IGNORE)
        return 0;
    struct buf why = BUF_INIT;
    *out = public_suffixes_load(cfg->inbound.public_suffix_list, &why);
    if (*out == NULL) {
        const struct config_pos *pos = &cfg->inbound.public_suffix_list_pos;
        buf_printf(err, "%s:%u:%u: inbound.public_suffix_list: %.*s\n",
                   pos->file != NULL ? pos->file : cfg->source, pos->line, pos->column,
                   (int)why.len, why.data);
    }
    buf_free(&why);
    return *out == NULL ? -1 : 0;
}

struct config *config_load_ungated(const char *path, struct buf *err)
{
    struct config *cfg = NULL;
    int rc;
    if (path != NULL) {
        rc = config_load_file(path, &cfg, err);
    } else {
        const char *text = config_default_yaml();
        rc = config_load_string(text, strlen(text), "<embedded>", &cfg, err);
    }
    return rc < 0 ? NULL : cfg;
}

struct config *config_load_with_signers(const char *path, struct dkim_signer_set **signers,
                                        struct recipients **recipients, struct buf *err)
{
    struct config *cfg = config_load_ungated(path, err);
    if (cfg == NULL)
        return NULL;
    struct dkim_signer_set *set = NULL;
    struct recipients *table = NULL;
    if (relay_lint_gate(cfg, err) < 0 || relay_battery_gate(cfg, err) < 0 ||
        bounce_categories_gate(cfg, err) < 0 || recipients_load(cfg, &table, err) < 0 ||
        (set = config_dkim_signers(cfg, err)) == NULL) {
        recipients_free(table);
        config_unref(cfg);
        return NULL;
    }
    if (signers != NULL)
        *signers = set;
    else
        dkim_signer_set_unref(set);
    if (recipients != NULL)
        *recipients = table;
    else
        recipients_free(table);
    return cfg;
}

struct config *config_load_for_command(const char *path, struct buf *err)
{
    return config_load_with_signers(path, NULL, NULL, err);
}
