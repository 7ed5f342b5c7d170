/*
 * `sluice audit-mx DOMAIN... [--json]`: every MX of a domain seen as a spammer sees it. The name
 * servers come from the parent (the NS set the resolver gives) and from the zone (each of them
 * asked directly for NS); each is asked directly, without recursion, for the MX set, and
 * disagreements are reported. Every MX host's A and AAAA addresses are then probed from outside
 * (cmd_audit_mx_probe.c) and judged against the primary, the MX of lowest preference: one row per
 * MX with its verdict, a summary naming the weakest, in the table (or JSON) of `sluice doctor`.
 * Exit status: 0 clean, 1 an MX relays, is weaker than the primary, or the servers disagree, 2
 * usage or configuration error. No privilege is needed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_audit_mx.h"
#include "mta/cli/cmd_doctor.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/relay_battery.h"

#define DEFAULT_TIMEOUT_S 300
/* One DNS try, and one SMTP step, wait at most this long (less when the deadline is nearer). */
#define DNS_TRY_MS 2000
#define SMTP_STEP_S 10

/* Report sections within a domain. */
enum { PART_NS, PART_SETS, PART_MX, PART_SUMMARY = 0xffff };

struct audit {
    struct doctor rows;       /* only its rows are used: the report is doctor's */
    const char *resolver_csv; /* NULL: /etc/resolv.conf */
    const char *ns_port;
    const char *smtp_port;
    const char *helo;
    struct timespec deadline;
};

/* One authoritative server as the audit found it. */
struct audit_server {
    char name[AUDIT_NAME_LEN];
    char addr[AUDIT_NAME_LEN]; /* its first address; "" when it has none */
    int from_parent, from_zone;
    int mx_status; /* enum dns_status of the MX question */
    struct audit_mx_set mx;
};

struct domain_audit {
    struct audit *a;
    const char *domain;
    unsigned index; /* of the domain on the command line: its rows sort together */
    struct audit_server servers[AUDIT_NAMES_MAX];
    size_t nservers;
    struct audit_mx_set mx; /* every MX any server gave */
};

static void add_row(struct domain_audit *da, unsigned part, unsigned item,
                    enum doctor_status status, const char *check, const char *subject,
                    const char *found, const char *fix)
{
    doctor_add(&da->a->rows, DOCTOR_ORDER(da->index, part, item), status, check, subject, found,
               fix);
}

static int step_s(const struct audit *a)
{
    long left = audit_ms_left(&a->deadline) / 1000;
    return left < 1 ? 1 : left < SMTP_STEP_S ? (int)left : SMTP_STEP_S;
}

/* ---- the name servers and their MX sets ---- */

static void server_add(struct domain_audit *da, const char *name, int parent)
{
    for (size_t i = 0; i < da->nservers; i++)
        if (strcasecmp(da->servers[i].name, name) == 0) {
            da->servers[i].from_parent |= parent;
            da->servers[i].from_zone |= !parent;
            return;
        }
    if (da->nservers == AUDIT_NAMES_MAX)
        return;
    struct audit_server *s = &da->servers[da->nservers++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->from_parent = parent;
    s->from_zone = !parent;
}

/* A channel straight to one server, recursion off. */
static struct audit_dns *direct(const struct audit *a, const char *addr)
{
    char csv[AUDIT_NAME_LEN + 24];
    snprintf(csv, sizeof csv, strchr(addr, ':') ? "[%s]:%s" : "%s:%s", addr, a->ns_port);
    return audit_dns_new(csv, 0, DNS_TRY_MS, &a->deadline);
}

static void find_servers(struct domain_audit *da, struct audit_dns *resolver)
{
    struct audit_names parent, addrs;
    int rc = audit_dns_ns(resolver, da->domain, &parent);
    if (parent.n == 0) {
        char found[300];
        snprintf(found, sizeof found, "the resolver gives no NS set: %s", audit_dns_status(rc));
        add_row(da, PART_NS, 0, DOCTOR_FAIL, "ns", da->domain, found,
                "check the delegation at the parent zone (the domain's registrar)");
        return;
    }
    for (size_t i = 0; i < parent.n; i++)
        server_add(da, parent.at[i], 1);
    /* The zone's own NS set, from each server the parent names; servers it adds are asked too. */
    for (size_t i = 0; i < da->nservers; i++) {
        struct audit_server *s = &da->servers[i];
        if (audit_dns_addrs(resolver, s->name, &addrs) != 0 || addrs.n == 0)
            continue;
        snprintf(s->addr, sizeof s->addr, "%s", addrs.at[0]);
        struct audit_dns *dns = direct(da->a, s->addr);
        struct audit_names zone;
        if (dns == NULL)
            continue;
        if (audit_dns_ns(dns, da->domain, &zone) == 0)
            for (size_t k = 0; k < zone.n; k++)
                server_add(da, zone.at[k], 0);
        s->mx_status = audit_dns_mx(dns, da->domain, &s->mx);
        audit_dns_free(dns);
    }
}

static void report_servers(struct domain_audit *da)
{
    const struct audit_server *first = NULL;
    int disagree = 0;
    struct buf sets = BUF_INIT;
    for (size_t i = 0; i < da->nservers; i++) {
        const struct audit_server *s = &da->servers[i];
        char mx[1000], found[1200], subject[600];
        audit_mx_set_text(&s->mx, mx, sizeof mx);
        snprintf(subject, sizeof subject, "%s (%s)", s->name, s->addr[0] ? s->addr : "no address");
        const char *listed = s->from_parent && s->from_zone ? "parent and zone"
                             : s->from_parent               ? "parent only"
                                                            : "zone only";
        if (s->addr[0] == '\0' || s->mx_status != 0) {
            snprintf(found, sizeof found, "listed by the %s; MX question: %s", listed,
                     s->addr[0] == '\0' ? "no address" : audit_dns_status(s->mx_status));
            add_row(da, PART_NS, (unsigned)i, DOCTOR_WARN, "ns", subject, found,
                    "every listed name server must answer for the zone");
            continue;
        }
        snprintf(found, sizeof found, "listed by the %s; MX %s", listed, mx);
        add_row(da, PART_NS, (unsigned)i, DOCTOR_INFO, "ns", subject, found, NULL);
        buf_printf(&sets, "%s%s gives %s", sets.len > 0 ? "; " : "", s->name, mx);
        if (first == NULL)
            first = s;
        else
            disagree |= !audit_mx_set_equal(&first->mx, &s->mx);
        for (size_t k = 0; k < s->mx.n; k++)
            audit_mx_set_add(&da->mx, s->mx.at[k].host, s->mx.at[k].pref);
    }
    if (first == NULL)
        add_row(da, PART_SETS, 0, DOCTOR_FAIL, "mx-set", da->domain,
                "no name server answered for the MX set", "check the zone's name servers");
    else if (disagree)
        add_row(da, PART_SETS, 0, DOCTOR_FAIL, "mx-set", da->domain, sets.len > 0 ? sets.data : "",
                "the name servers disagree: serve one zone from all (check the zone transfers "
                "and serial); every MX any of them gives gets mail and is audited here");
    else
        add_row(da, PART_SETS, 0, DOCTOR_PASS, "mx-set", da->domain, sets.len > 0 ? sets.data : "",
                NULL);
    buf_free(&sets);
}

/* ---- the MX hosts ---- */

static void probe_row(struct domain_audit *da, size_t h, size_t k, const struct audit_probe *p)
{
    char found[2000];
    if (p->timed_out)
        snprintf(found, sizeof found, "not probed: the overall time limit (--timeout) passed");
    else if (!p->reachable)
        snprintf(found, sizeof found, "no SMTP answer on port %s", da->a->smtp_port);
    else
        snprintf(found, sizeof found,
                 "banner \"%s\"; EHLO %s; %s; relay battery %d of %zu "
                 "relayed; unknown recipient %d",
                 p->banner, p->caps[0] ? p->caps : "(none)", p->cert, p->battery.relays,
                 relay_battery_ncases, p->unknown_code);
    add_row(da, PART_MX + (unsigned)h, (unsigned)(k + 1), DOCTOR_INFO, "smtp", p->addr, found,
            NULL);
}

static const enum doctor_status verdict_status[] = {DOCTOR_PASS, DOCTOR_WARN, DOCTOR_WARN,
                                                    DOCTOR_FAIL, DOCTOR_FAIL};

/* Probes every address of every MX host, the primary first; returns the weakest verdict, with
 * what it is about in weakest. */
static enum audit_verdict audit_hosts(struct domain_audit *da, struct audit_dns *resolver,
                                      char *weakest, size_t size)
{
    enum audit_verdict worst = AUDIT_OK;
    const struct audit_probe *primary = NULL;
    struct audit_probe *probes = xcalloc(da->mx.n * AUDIT_NAMES_MAX, sizeof *probes);
    snprintf(weakest, size, "none");
    for (size_t h = 0; h < da->mx.n; h++) {
        const struct audit_mx *mx = &da->mx.at[h];
        struct audit_names addrs;
        char subject[AUDIT_NAME_LEN + 32], found[900];
        snprintf(subject, sizeof subject, "%s (pref %u%s)", mx->host, mx->pref,
                 h == 0 ? ", primary" : "");
        int rc = audit_dns_addrs(resolver, mx->host, &addrs);
        if (addrs.n == 0) {
            snprintf(found, sizeof found, "no address: %s", audit_dns_status(rc));
            add_row(da, PART_MX + (unsigned)h, 0, DOCTOR_WARN, "mx", subject, found,
                    "remove the MX record or give its host an address");
            continue;
        }
        enum audit_verdict host_worst = AUDIT_OK;
        char why[600] = "", host_why[700] = "";
        for (size_t k = 0; k < addrs.n; k++) {
            struct audit_probe *p = &probes[h * AUDIT_NAMES_MAX + k];
            if (audit_ms_left(&da->a->deadline) == 0) {
                snprintf(p->addr, sizeof p->addr, "%.*s", (int)sizeof p->addr - 1, addrs.at[k]);
                p->timed_out = 1;
            } else {
                audit_probe(addrs.at[k], da->a->smtp_port, mx->host, da->domain, da->a->helo,
                            step_s(da->a), p);
            }
            probe_row(da, h, k, p);
            if (h == 0 && primary == NULL && p->reachable)
                primary = p;
            enum audit_verdict v = audit_judge(p, h == 0 ? NULL : primary, why, sizeof why);
            if (k == 0 || v > host_worst) {
                host_worst = v;
                snprintf(host_why, sizeof host_why, "%s%s%s", addrs.n > 1 ? p->addr : "",
                         addrs.n > 1 ? ": " : "", why);
            }
        }
        snprintf(found, sizeof found, "%s: %s", audit_verdict_name(host_worst), host_why);
        add_row(da, PART_MX + (unsigned)h, 0, verdict_status[host_worst], "mx", subject, found,
                host_worst >= AUDIT_WEAKER
                    ? "give every MX the primary's relay and recipient policy, or remove it"
                    : NULL);
        if (h == 0 || host_worst > worst) {
            worst = host_worst;
            snprintf(weakest, size, "%s (%s)", mx->host, found);
        }
    }
    free(probes);
    return worst;
}

static void audit_domain(struct audit *a, const char *domain, unsigned index)
{
    struct domain_audit *da = xcalloc(1, sizeof *da);
    da->a = a;
    da->domain = domain;
    da->index = index;
    struct audit_dns *resolver = audit_dns_new(a->resolver_csv, 1, DNS_TRY_MS, &a->deadline);
    if (resolver == NULL) {
        add_row(da, PART_NS, 0, DOCTOR_FAIL, "ns", domain, "the resolver does not start",
                "give --dns a server as ADDRESS or ADDRESS:PORT");
        free(da);
        return;
    }
    find_servers(da, resolver);
    if (da->nservers > 0)
        report_servers(da);
    if (da->mx.n == 0 && audit_dns_mx(resolver, domain, &da->mx) == 0 && da->mx.n > 0) {
        char mx[1000];
        audit_mx_set_text(&da->mx, mx, sizeof mx);
        add_row(da, PART_SETS, 1, DOCTOR_WARN, "mx-set", domain, mx,
                "no name server answered itself: this set is the resolver's; audited all the same");
    }
    char weakest[1200], found[1400];
    enum audit_verdict worst = audit_hosts(da, resolver, weakest, sizeof weakest);
    if (da->mx.n == 0)
        snprintf(found, sizeof found, "no MX host to audit");
    else if (worst == AUDIT_OK)
        snprintf(found, sizeof found,
                 "%zu MX host(s): none relays, every one answers like the "
                 "primary",
                 da->mx.n);
    else
        snprintf(found, sizeof found, "weakest: %s", weakest);
    add_row(da, PART_SUMMARY, 0, da->mx.n == 0 ? DOCTOR_FAIL : verdict_status[worst], "summary",
            domain, found, NULL);
    audit_dns_free(resolver);
    free(da);
}

/* ---- the command ---- */

/* --dns as given, or -c's dns.servers joined by commas (NULL: none, /etc/resolv.conf). */
static int resolver_servers(const char *dns, const char *path, struct buf *csv)
{
    if (dns != NULL) {
        buf_printf(csv, "%s", dns); /* buf_printf keeps the text NUL-terminated */
        return 0;
    }
    if (path == NULL)
        return 0;
    struct buf err = BUF_INIT;
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL) {
        command_failed(&err);
        return 2; /* a configuration error, as for doctor */
    }
    for (size_t i = 0; i < cfg->dns.nservers; i++)
        buf_printf(csv, "%s%s", i > 0 ? "," : "", cfg->dns.servers[i]);
    config_unref(cfg);
    buf_free(&err);
    return 0;
}

static int port_arg(const char *arg, const char *option, const char *fallback, const char **out)
{
    char *end;
    long n = arg != NULL ? strtol(arg, &end, 10) : 0;
    *out = arg != NULL ? arg : fallback;
    if (arg != NULL && (*end != '\0' || n < 1 || n > 65535))
        return command_usage_error("audit-mx", "%s '%s' is not a port (1-65535)", option, arg);
    return 0;
}

int cmd_audit_mx(int argc, char **argv)
{
    const char *path = NULL, *dns = NULL, *port = NULL, *ns_port = NULL, *timeout = NULL,
               *helo = NULL;
    int json = 0, nwords = 0;
    char *domains[AUDIT_NAMES_MAX];
    const struct command_option opts[] = {
        {"--config", "-c", &path, NULL},     {"--dns", NULL, &dns, NULL},
        {"--port", NULL, &port, NULL},       {"--ns-port", NULL, &ns_port, NULL},
        {"--timeout", NULL, &timeout, NULL}, {"--helo", NULL, &helo, NULL},
        {"--json", NULL, NULL, &json},
    };
    if (command_parse("audit-mx", argc, argv, opts, ARRAY_LEN(opts), domains, AUDIT_NAMES_MAX,
                      &nwords) != 0)
        return 2;
    if (nwords == 0)
        return command_usage_error("audit-mx", "missing DOMAIN");
    struct audit a = {.helo = helo};
    if (port_arg(port, "--port", "25", &a.smtp_port) != 0 ||
        port_arg(ns_port, "--ns-port", "53", &a.ns_port) != 0)
        return 2;
    char *end;
    long seconds = timeout != NULL ? strtol(timeout, &end, 10) : DEFAULT_TIMEOUT_S;
    if (timeout != NULL && (*end != '\0' || seconds < 1 || seconds > 86400))
        return command_usage_error("audit-mx",
                                   "--timeout '%s' is not a number of seconds "
                                   "(1-86400)",
                                   timeout);
    if (dns != NULL && path != NULL)
        return command_usage_error("audit-mx", "--dns goes without -c (both name the resolver)");
    struct buf csv = BUF_INIT;
    int rc = resolver_servers(dns, path, &csv);
    if (rc != 0)
        return rc;
    a.resolver_csv = csv.len > 0 ? csv.data : NULL;

    char hostname[256] = "audit-mx.invalid";
    if (a.helo == NULL) {
        if (gethostname(hostname, sizeof hostname) < 0 || strchr(hostname, '.') == NULL)
            strcpy(hostname, "audit-mx.invalid");
        hostname[sizeof hostname - 1] = '\0';
        a.helo = hostname;
    }
    /* A server closing during the TLS handshake must not kill the audit (OpenSSL writes with
     * write(2), not send(2) with MSG_NOSIGNAL). */
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_MONOTONIC, &a.deadline);
    a.deadline.tv_sec += seconds;
    for (int i = 0; i < nwords; i++)
        audit_domain(&a, domains[i], (unsigned)i);
    int failed = doctor_report(&a.rows, json, stdout);
    doctor_rows_free(&a.rows);
    buf_free(&csv);
    return failed ? 1 : 0;
}
