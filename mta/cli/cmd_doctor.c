/*
 * `sluice doctor [-c FILE] [--json]`: everything a receiver checks about us, for the configuration
 * in hand, in one table of PASS / INFO / WARN / FAIL rows with what was found and how to fix it.
 * Every DNS question (through dns.servers) and the file reads start at once on one private loop,
 * under an overall deadline; the rows print when the last check has ended. Exit status: 0 no
 * FAIL, 1 a FAIL, 2 usage or configuration error. --watch repeats it (cmd_doctor_watch.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dns.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_doctor.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/dkim/dkim.h"
#include "mta/relay_battery.h"

/* The overall deadline: a few question timeouts, since lookups chain (PTR then A, SPF includes). */
#define DEADLINE_TIMEOUTS 3
#define DEADLINE_EXTRA_MS 5000

/* ---- the open-relay battery ---- */

struct relay_tally {
    int attempts, relays;
    char first[600]; /* the first attempt that relayed */
};

static void relay_on_result(const struct relay_result *res, void *arg)
{
    struct relay_tally *t = arg;
    t->attempts++;
    if (!res->relayed || t->relays++ > 0)
        return;
    snprintf(t->first, sizeof t->first, "%s (RCPT %s) on listener %s from %s, by rule %s",
             res->rcase->name, res->rcpt_arg, res->listener->name, res->client, res->decision.rule);
}

void doctor_relay_check(struct doctor *d)
{
    struct relay_tally t = {0, 0, ""};
    char found[900], fix[400];
    relay_battery_run(d->cfg, relay_on_result, &t);
    if (t.relays == 0) {
        snprintf(found, sizeof found,
                 "no relay: %d attempts (percent hack, bang paths, source routes, literals, ...) "
                 "refused to outside clients",
                 t.attempts);
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_RELAY, 0, 0), DOCTOR_PASS, "open-relay",
                   d->cfg->source, found, NULL);
        return;
    }
    snprintf(found, sizeof found, "OPEN RELAY: %d of %d attempts relayed, first %s", t.relays,
             t.attempts, t.first);
    snprintf(fix, sizeof fix,
             "see every attempt with sluice relay-test -c %s; narrow relay.trusted_networks and "
             "drop relay.i_understand_this_is_an_open_relay",
             d->cfg->source);
    doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_RELAY, 0, 0), DOCTOR_FAIL, "open-relay", d->cfg->source,
               found, fix);
}

/* ---- the run ---- */

/* The egress addresses of every pool, in configuration order; NULL when there are none. */
static struct doctor_egress *egress_list(const struct config *cfg, size_t *n)
{
    size_t count = 0;
    for (size_t p = 0; p < cfg->negress_pools; p++)
        count += cfg->egress_pools[p].naddrs;
    *n = count;
    if (count == 0)
        return NULL;
    struct doctor_egress *list = xcalloc(count, sizeof *list);
    size_t k = 0;
    for (size_t p = 0; p < cfg->negress_pools; p++) {
        const struct config_egress_pool *pool = &cfg->egress_pools[p];
        for (size_t i = 0; i < pool->naddrs; i++, k++) {
            list[k].address = pool->addrs[i].address;
            list[k].addr = pool->addrs[i].addr;
            list[k].ehlo = pool->addrs[i].ehlo != NULL ? pool->addrs[i].ehlo : cfg->server.hostname;
            list[k].pool = pool->name;
        }
    }
    return list;
}

/* The DKIM keys, as the daemon loads them; why they do not load goes to d->signers_error. */
static void load_signers(struct doctor *d)
{
    if (d->cfg->ndkim == 0)
        return;
    struct buf err = BUF_INIT;
    d->signers = config_dkim_signers(d->cfg, &err);
    if (d->signers == NULL) {
        while (err.len > 0 && err.data[err.len - 1] == '\n')
            err.data[--err.len] = '\0';
        d->signers_error = xstrdup(err.len > 0 ? err.data : "the keys do not load");
    }
    buf_free(&err);
}

static void deadline_on_timer(uv_timer_t *t)
{
    struct doctor *d = t->data;
    d->timed_out = 1;
    /* Every lookup in flight ends now with DNS_CANCELLED, and every new one fails at once. */
    dns_resolver_free(d->resolver);
}

int doctor_run(struct doctor *d)
{
    uv_loop_t loop;
    uv_timer_t deadline;
    int err = 0;
    d->timed_out = 0;
    uv_loop_init(&loop);
    d->loop = &loop;
    d->resolver = dns_resolver_new(&loop, (const char *const *)d->cfg->dns.servers,
                                   d->cfg->dns.nservers, (unsigned)d->cfg->dns.timeout_ms, &err);
    if (d->resolver == NULL) {
        fprintf(stderr, "sluice doctor: cannot start the resolver: %s\n", strerror(-err));
        uv_loop_close(&loop);
        return -1;
    }
    uv_timer_init(&loop, &deadline);
    deadline.data = d;
    uv_timer_start(&deadline, deadline_on_timer,
                   DEADLINE_TIMEOUTS * d->cfg->dns.timeout_ms + DEADLINE_EXTRA_MS, 0);

    if (d->signers_error != NULL)
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_DOMAIN, 0, 0), DOCTOR_FAIL, "dkim-keys", "dkim",
                   d->signers_error,
                   "fix the key files named (sluice check-config shows every problem)");
    doctor_egress_start(d);
    doctor_blocklists_start(d);
    doctor_domains_start(d);
    doctor_tls_start(d);
    doctor_receivers_start(d);
    doctor_relay_check(d);
    /* The deadline bounds the DNS; the two file reads end on their own. */
    while (d->pending > 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    if (!d->timed_out)
        dns_resolver_free(d->resolver);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

/* --watch's "N", "Ns", "Nm", "Nh" or "Nd", from 1 second to 7 days, into *ms; -1 if not one. */
static int interval_parse(const char *text, uint64_t *ms)
{
    static const char units[] = "smhd";
    static const uint64_t scale[] = {1000, 60 * 1000, 3600 * 1000, 86400 * 1000};
    char *end;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    const char *unit = *end != '\0' ? strchr(units, *end) : units;
    if (errno != 0 || unit == NULL || (*end != '\0' && end[1] != '\0') || n == 0 || n > 7 * 86400)
        return -1;
    *ms = n * scale[unit - units];
    return *ms <= 7 * scale[3] ? 0 : -1;
}

int cmd_doctor(int argc, char **argv)
{
    const char *path = NULL, *watch = NULL;
    int json = 0;
    uint64_t interval_ms = 0;
    const struct command_option opts[] = {
        {"--config", "-c", &path, NULL},
        {"--json", NULL, NULL, &json},
        {"--watch", NULL, &watch, NULL},
    };
    if (command_parse("doctor", argc, argv, opts, ARRAY_LEN(opts), NULL, 0, NULL) != 0)
        return 2;
    if (watch != NULL && json)
        return command_usage_error("doctor", "--json goes without --watch (its events are JSON)");
    if (watch != NULL && interval_parse(watch, &interval_ms) < 0)
        return command_usage_error("doctor",
                                   "--watch '%s' is not an interval from 1s to 7d "
                                   "(e.g. 30s, 10m, 1h)",
                                   watch);
    struct buf err = BUF_INIT;
    /* Without the relay gate: an open relay is a row of the report, not a refusal to report. */
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL) {
        command_failed(&err);
        return 2;
    }
    struct doctor d = {.cfg = cfg};
    struct doctor_egress *egress = egress_list(cfg, &d.negress);
    d.egress = egress;
    load_signers(&d);
    int rc = 2;
    if (watch != NULL)
        rc = doctor_watch(&d, interval_ms);
    else if (doctor_run(&d) == 0)
        rc = doctor_report(&d, json, stdout) ? 1 : 0;
    doctor_rows_free(&d);
    dkim_signer_set_unref(d.signers);
    free(d.signers_error);
    free(egress);
    config_unref(cfg);
    buf_free(&err);
    return rc;
}
