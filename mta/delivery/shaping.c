/* Shaping rule matching, destination keys and the rates that pace delivery (see shaping.h). */
#include "mta/delivery/shaping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/ratewindow.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* MX hosts looked at for a rule; a domain with more is matched by its first ones. */
#define SHAPING_MX_MAX 64

/* Rules hold names as the configuration canonicalized them: lower case, no trailing dot. A name
 * from DNS or an address may have either. Returns name's length without the dot, or 0 when it
 * cannot be a name (empty, or longer than DNS allows). */
static size_t name_len(const char *name)
{
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    return len < 256 ? len : 0;
}

/* Whether the first len bytes of name are `canon`, case aside. */
static int name_is(const char *name, size_t len, const char *canon)
{
    return len > 0 && strlen(canon) == len && strncasecmp(name, canon, len) == 0;
}

/* "*.example.net" matches names below example.net at any depth, not example.net itself. */
static int mx_pattern_match(const char *pattern, const char *host, size_t len)
{
    if (strncmp(pattern, "*.", 2) != 0)
        return name_is(host, len, pattern);
    size_t suffix = strlen(pattern + 1);
    return len > suffix && strncasecmp(host + len - suffix, pattern + 1, suffix) == 0;
}

int shaping_names_match(char *const *domains, size_t ndomains, char *const *mx_patterns,
                        size_t npatterns, const char *domain, const char *const *mx_hosts,
                        size_t nmx)
{
    size_t len = domain != NULL ? name_len(domain) : 0;
    for (size_t i = 0; i < ndomains; i++)
        if (name_is(domain, len, domains[i]))
            return 1;
    for (size_t h = 0; h < nmx; h++) {
        len = name_len(mx_hosts[h]);
        for (size_t i = 0; len > 0 && i < npatterns; i++)
            if (mx_pattern_match(mx_patterns[i], mx_hosts[h], len))
                return 1;
    }
    return 0;
}

const struct config_shaping_rule *shaping_rule_match(const struct config *cfg, const char *domain,
                                                     const char *const *mx_hosts, size_t nmx)
{
    for (size_t i = 0; i < cfg->shaping.nrules; i++)
        if (shaping_names_match(cfg->shaping.rules[i].match_domain,
                                cfg->shaping.rules[i].nmatch_domain, cfg->shaping.rules[i].match_mx,
                                cfg->shaping.rules[i].nmatch_mx, domain, mx_hosts, nmx))
            return &cfg->shaping.rules[i];
    return NULL;
}

struct shaping_dest shaping_dest_for(const struct config *cfg, const char *domain,
                                     const struct mx_list *mx)
{
    const char *names[SHAPING_MX_MAX];
    size_t n = 0;
    for (size_t i = 0; mx != NULL && i < mx->nhosts && n < ARRAY_LEN(names); i++)
        names[n++] = mx->hosts[i].name;
    const struct config_shaping_rule *rule = shaping_rule_match(cfg, domain, names, n);
    struct shaping_dest sd = {domain, &cfg->shaping.defaults};
    if (rule != NULL) {
        sd.values = &rule->values;
        if (rule->nmatch_mx > 0)
            sd.key = rule->match_mx[0];
    }
    return sd;
}

enum { RATE_MSG, RATE_RCPT, RATE_CONN, RATE_KINDS };

struct shaping_rates {
    struct ratewindow msg, rcpt, conn;
    struct shared_rate *shared[RATE_KINDS]; /* across the cluster; NULL: this node's alone */
};

/* A rate that changed starts over (ramping in); one that did not keeps the events it counted,
 * under the margin now configured. */
static void window_set(struct ratewindow *w, const struct config_rate *r, unsigned margin,
                       uint64_t now, int fresh)
{
    if (!fresh && w->rate.count == r->count && w->rate.period_ms == r->period_ms) {
        ratewindow_set_margin(w, margin);
        return;
    }
    if (!fresh)
        ratewindow_free(w);
    ratewindow_init(w, (struct ratelimit_rate){r->count, r->period_ms}, margin, now);
}

static void rates_set(struct shaping_rates *r, const struct config_shaping *sh, uint64_t now,
                      int fresh)
{
    window_set(&r->msg, &sh->message_rate, sh->rate_margin_percent, now, fresh);
    window_set(&r->rcpt, &sh->rate, sh->rate_margin_percent, now, fresh);
    window_set(&r->conn, &sh->connection_rate, sh->rate_margin_percent, now, fresh);
    for (int k = 0; k < RATE_KINDS && r->shared[k] != NULL; k++) {
        const struct config_rate *rate = k == RATE_MSG    ? &sh->message_rate
                                         : k == RATE_RCPT ? &sh->rate
                                                          : &sh->connection_rate;
        shared_rate_set(r->shared[k], *rate, sh->rate_margin_percent);
    }
}

struct shaping_rates *shaping_rates_new(const struct config_shaping *sh, uint64_t now_ms)
{
    struct shaping_rates *r = xcalloc(1, sizeof *r);
    rates_set(r, sh, now_ms, 1);
    return r;
}

void shaping_rates_update(struct shaping_rates *r, const struct config_shaping *sh, uint64_t now_ms)
{
    rates_set(r, sh, now_ms, 0);
}

void shaping_rates_share(struct shaping_rates *r, struct shared_limits *shared, const char *dest,
                         const char *egress)
{
    static const char *const kinds[RATE_KINDS] = {"msg", "rcpt", "conn"};
    const struct ratewindow *local[RATE_KINDS] = {&r->msg, &r->rcpt, &r->conn};
    for (int k = 0; k < RATE_KINDS; k++) {
        size_t len = strlen(kinds[k]) + strlen(dest) + strlen(egress) + 3;
        char *name = xmalloc(len);
        snprintf(name, len, "%s:%s:%s", kinds[k], dest, egress);
        struct config_rate rate = {local[k]->rate.count, local[k]->rate.period_ms};
        r->shared[k] = shared_rate_new(shared, name, rate, local[k]->margin_percent);
        free(name);
    }
}

void shaping_rates_free(struct shaping_rates *r)
{
    if (r == NULL)
        return;
    for (int k = 0; k < RATE_KINDS; k++)
        shared_rate_free(r->shared[k]);
    ratewindow_free(&r->msg);
    ratewindow_free(&r->rcpt);
    ratewindow_free(&r->conn);
    free(r);
}

/* Milliseconds until w, and then the cluster's rate (shared, may be NULL), let one event go. */
static uint64_t window_wait(const struct ratewindow *w, struct shared_rate *shared, uint64_t now)
{
    uint64_t wait = ratewindow_wait_ms(w, now);
    return wait == 0 && shared != NULL ? shared_rate_wait(shared, now) : wait;
}

/* Counts an event of w at now and returns 0, or the milliseconds (at least 1) until one may go. */
static uint64_t window_take(struct ratewindow *w, struct shared_rate *shared, uint64_t now)
{
    uint64_t wait = window_wait(w, shared, now);
    if (wait > 0 || !ratewindow_take(w, now))
        return wait == 0 ? 1 : wait;
    if (shared != NULL)
        shared_rate_take(shared, now);
    return 0;
}

uint64_t shaping_rates_pace(void *rates, enum smtp_client_pace what, uint64_t now_ms)
{
    struct shaping_rates *r = rates;
    if (what == SMTP_CLIENT_PACE_MAIL)
        return window_take(&r->msg, r->shared[RATE_MSG], now_ms);
    return window_take(&r->rcpt, r->shared[RATE_RCPT], now_ms);
}

uint64_t shaping_rates_connect_wait(const struct shaping_rates *r, uint64_t now_ms)
{
    return window_wait(&r->conn, r->shared[RATE_CONN], now_ms);
}

void shaping_rates_connected(struct shaping_rates *r, uint64_t now_ms)
{
    window_take(&r->conn, r->shared[RATE_CONN], now_ms);
}

int shaping_rates_idle(const struct shaping_rates *r, uint64_t now_ms)
{
    for (int k = 0; k < RATE_KINDS; k++)
        if (r->shared[k] != NULL && !shared_rate_idle(r->shared[k], now_ms))
            return 0;
    return ratewindow_idle(&r->msg, now_ms) && ratewindow_idle(&r->rcpt, now_ms) &&
           ratewindow_idle(&r->conn, now_ms);
}
