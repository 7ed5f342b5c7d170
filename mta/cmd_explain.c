/*
 * `sluice explain`: what the daemon would answer to one MAIL and one RCPT from a given client on a
 * given listener, and which rule decided, with the file:line:column where it is written. It parses
 * the addresses and asks the policy exactly as a session does, on the configuration as the daemon
 * would load it. On an inbound listener the client's DNSBL, reverse DNS and SPF verdicts are looked
 * up for real through dns.servers (on a private loop, each bounded by dns.timeout), and the
 * recipients table and attachment policy are named; the message itself is not explained.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "lib/smtp_cmd.h"
#include "lib/uvutil.h"
#include "mta/commands.h"
#include "mta/config_load.h"
#include "policy/dnsbl.h"
#include "policy/recipients.h"
#include "policy/relay.h"
#include "policy/reverse_dns.h"
#include "policy/sender_domain.h"
#include "policy/spf.h"

struct explain_args {
    const char *path, *client, *listener, *helo, *auth, *from, *rcpt;
    struct sockaddr_storage client_addr; /* client, parsed */
};

static void print_rule(const struct policy_decision *d)
{
    if (d->pos.line > 0)
        printf("  rule: %s at %s:%u:%u\n", d->rule, d->pos.file, d->pos.line, d->pos.column);
    else
        printf("  rule: %s (built in)\n", d->rule);
}

/* "a@b" becomes "<a@b>"; a path already in angle brackets is kept. */
static void path_arg(const char *prefix, const char *addr, char *out, size_t size)
{
    if (addr[0] == '<')
        snprintf(out, size, "%s%s", prefix, addr);
    else
        snprintf(out, size, "%s<%s>", prefix, addr);
}

static int client_parse(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

static void print_decision(const struct policy_decision *d)
{
    printf("  %s %d %s %s\n", d->verdict == POLICY_ACCEPT ? "accept" : "reject", d->code,
           d->enhanced, d->text);
    print_rule(d);
}

/* MAIL: the syntax of the path (no parameters are explained); the canonical sender goes to
 * sender[SMTP_PATH_MAX + 8]. SPF, on inbound listeners, comes after. */
static int explain_mail(const char *arg_text, struct policy_decision *d, char *sender)
{
    struct smtp_path_args args;
    struct smtp_addr from;
    const char *why = "bad address";
    struct smtp_slice arg = {arg_text, strlen(arg_text)};
    struct policy_decision ok = {.verdict = POLICY_ACCEPT,
                                 .code = 250,
                                 .enhanced = "2.1.0",
                                 .text = "Ok",
                                 .rule = "builtin.address_syntax"};
    *d = ok;
    if (smtp_cmd_parse_path_args(arg, "FROM:", &args) < 0) {
        d->verdict = POLICY_REJECT, d->code = 501, d->enhanced = "5.5.4";
        d->text = "Syntax: MAIL FROM:<address>";
    } else if (args.nparams > 0) {
        return -1;
    } else if (smtp_addr_parse(args.path.ptr, args.path.len, SMTP_ADDR_ALLOW_NULL, &from, &why) <
               0) {
        d->verdict = POLICY_REJECT, d->code = 501, d->enhanced = "5.1.7", d->text = why;
    } else {
        smtp_addr_format(&from, sender, SMTP_PATH_MAX + 8);
    }
    return 0;
}

/* ---- inbound: the DNS checks, as a session makes them, on a private loop ---- */

struct inbound_lookups {
    struct dnsbl_check *dnsbl;
    const struct dnsbl_result *dnsbl_res;
    struct reverse_dns_check *rdns;
    const struct reverse_dns_result *rdns_res;
    struct spf_check *spf;
    const struct spf_result *spf_res;
    struct sender_domain_check *sender_check;
    enum dns_status sender_status;
    int sender_checked; /* sender_status is the answer */
    unsigned pending;
};

static void lookups_on_dnsbl(void *arg, const struct dnsbl_result *res)
{
    struct inbound_lookups *l = arg;
    l->dnsbl_res = res;
    l->pending--;
}

static void lookups_on_rdns(void *arg, const struct reverse_dns_result *res)
{
    struct inbound_lookups *l = arg;
    l->rdns_res = res;
    l->pending--;
}

static void lookups_on_spf(void *arg, const struct spf_result *res)
{
    struct inbound_lookups *l = arg;
    l->spf_res = res;
    l->pending--;
}

static void lookups_on_sender_domain(void *arg, enum dns_status status)
{
    struct inbound_lookups *l = arg;
    l->sender_status = status;
    l->sender_checked = 1;
    l->pending--;
}

/* The domain inbound.reject_unknown_sender_domain asks about, or NULL (the null sender, an address
 * literal, the check off). */
static const char *sender_domain_to_check(const struct config *cfg, const char *sender)
{
    const char *at = sender != NULL ? strrchr(sender, '@') : NULL;
    if (!cfg->inbound.reject_unknown_sender_domain || at == NULL || at[1] == '[')
        return NULL;
    return at + 1;
}

static void lookups_free(struct inbound_lookups *l)
{
    dnsbl_check_free(l->dnsbl);
    reverse_dns_check_free(l->rdns);
    spf_check_free(l->spf);
    sender_domain_check_free(l->sender_check);
}

/* Starts what cfg asks for (the sender's checks only when sender is not NULL; SPF when spf) and
 * runs a private loop until every answer is in; the resolver's timeout bounds each lookup.
 * Returns 0, or -1 after saying why. */
static int lookups_run(const struct config *cfg, const struct sockaddr *client, const char *helo,
                       const char *sender, int spf, struct inbound_lookups *l)
{
    const char *sender_domain = sender_domain_to_check(cfg, sender);
    if (cfg->inbound.ndnsbl == 0 && cfg->inbound.reverse_dns == REVERSE_DNS_IGNORE && !spf &&
        sender_domain == NULL)
        return 0; /* nothing to look up */
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    struct dns_resolver *dns = NULL;
    if (rc == 0)
        dns = dns_resolver_new(&loop, (const char *const *)cfg->dns.servers, cfg->dns.nservers,
                               (unsigned)cfg->dns.timeout_ms, &rc);
    if (dns != NULL && cfg->inbound.ndnsbl > 0 &&
        (rc = dnsbl_check_start(dns, cfg->inbound.dnsbl, cfg->inbound.ndnsbl,
                                cfg->inbound.dnsbl_threshold, client, lookups_on_dnsbl, l,
                                &l->dnsbl)) == 0)
        l->pending++;
    if (dns != NULL && rc == 0 && cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE &&
        (rc = reverse_dns_check_start(dns, client, lookups_on_rdns, l, &l->rdns)) == 0)
        l->pending++;
    if (dns != NULL && rc == 0 && spf &&
        (rc = spf_check_start(dns, client, helo, sender, cfg->server.hostname, lookups_on_spf, l,
                              &l->spf)) == 0)
        l->pending++;
    if (dns != NULL && rc == 0 && sender_domain != NULL &&
        (rc = sender_domain_check_start(dns, sender_domain, lookups_on_sender_domain, l,
                                        &l->sender_check)) == 0)
        l->pending++;
    while (rc == 0 && l->pending > 0)
        uv_run(&loop, UV_RUN_ONCE);
    if (rc < 0) {
        fprintf(stderr, "sluice: explain: the DNS checks could not start: %s\n", strerror(-rc));
        lookups_free(l); /* cancels what did start: the results go with the loop */
        *l = (struct inbound_lookups){0};
    }
    if (dns != NULL)
        dns_resolver_free(dns);
    uv_run(&loop, UV_RUN_DEFAULT); /* the resolver's handles close */
    uv_loop_close(&loop);
    return rc < 0 ? -1 : 0;
}

/* The connect-time checks, whose verdicts a session gives at RCPT (postmaster exempt). */
static void print_connect_checks(const struct config *cfg, struct inbound_lookups *l)
{
    if (l->dnsbl_res == NULL) {
        printf("dnsbl: none configured\n");
    } else {
        printf("dnsbl: score %u, threshold %u", l->dnsbl_res->score,
               cfg->inbound.dnsbl_threshold ? cfg->inbound.dnsbl_threshold : 1);
        for (size_t i = 0; i < l->dnsbl_res->nhits; i++)
            printf("%s %s (weight %u)", i == 0 ? "; listed by" : ",", l->dnsbl_res->hits[i].zone,
                   l->dnsbl_res->hits[i].weight);
        if (l->dnsbl_res->errors > 0)
            printf("; %u zones unanswered", l->dnsbl_res->errors);
        printf("\n");
        struct policy_decision d = dnsbl_check_verdict(l->dnsbl);
        print_decision(&d);
    }
    if (l->rdns_res == NULL) {
        printf("reverse dns: not checked (inbound.reverse_dns is ignore)\n");
    } else {
        printf("reverse dns: %s%s%s\n", reverse_dns_status_name(l->rdns_res->status),
               l->rdns_res->name ? " " : "", l->rdns_res->name ? l->rdns_res->name : "");
        struct policy_decision d = reverse_dns_verdict(l->rdns_res, cfg->inbound.reverse_dns);
        print_decision(&d);
    }
}

/* SPF at MAIL; returns its decision. */
static struct policy_decision print_spf(const struct config *cfg, const struct inbound_lookups *l)
{
    char frag[SMTP_PATH_MAX + 64];
    spf_result_format(l->spf_res, frag, sizeof frag);
    printf("  spf: %s (Authentication-Results: %s)\n", spf_status_name(l->spf_res->status), frag);
    return spf_verdict(l->spf_res, cfg->inbound.spf);
}

/* RCPT, inbound, after the relay decision: the connect verdicts as smtp_connect_verdict. */
static struct policy_decision connect_verdict(const struct config *cfg, struct inbound_lookups *l)
{
    struct policy_decision d = {.verdict = POLICY_ACCEPT};
    if (l->dnsbl_res != NULL)
        d = dnsbl_check_verdict(l->dnsbl);
    if (d.verdict == POLICY_ACCEPT && l->rdns_res != NULL)
        d = reverse_dns_verdict(l->rdns_res, cfg->inbound.reverse_dns);
    return d;
}

/* The parts of the inbound policy that judge the message: named, not run. */
static void print_message_policy(const struct config *cfg, const struct smtp_addr *rcpt)
{
    const struct config_domain *dom = config_domain_find(cfg, rcpt->domain);
    if (dom != NULL && dom->recipients != NULL)
        printf("recipients: %s table %s%s\n", dom->name, dom->recipients,
               dom->verify_recipients ? ", verified with deliver_to" : "");
    else if (dom != NULL)
        printf("recipients: %s has no table (every local part is accepted)%s\n", dom->name,
               dom->verify_recipients ? ", verified with deliver_to" : "");
    printf("attachments:");
    for (size_t i = 0; i < cfg->inbound.nblocked_attachments; i++)
        printf(" .%s", cfg->inbound.blocked_attachments[i]);
    printf(cfg->inbound.nblocked_attachments ? " blocked (554 5.7.1 at end of data)\n"
                                             : " none blocked\n");
    printf("clamd: %s\n", cfg->inbound.clamd ? cfg->inbound.clamd : "none");
    printf(cfg->inbound.dkim_verify ? "dkim: signatures verified at end of data, results in "
                                      "Authentication-Results (never refused)\n"
                                    : "dkim: not verified (inbound.dkim_verify is false)\n");
}

/* RCPT on an inbound listener, after the relay decision accepted: the domain's recipients file,
 * as smtp_server_tx.c asks it. */
static struct policy_decision explain_recipients(const struct config *cfg,
                                                 const struct smtp_addr *rcpt,
                                                 char text[RECIPIENTS_TEXT_MAX])
{
    struct recipients *table = NULL;
    struct buf err = BUF_INIT;
    struct policy_decision d = {.verdict = POLICY_ACCEPT, .rule = "domains.recipients.none"};
    if (recipients_load(cfg, &table, &err) == 0) { /* loaded and checked with cfg already */
        d = recipients_check(table, rcpt, text);
        recipients_free(table);
    }
    buf_free(&err);
    return d;
}

/* MAIL and RCPT, once the listener and client are known; `look` holds the inbound lookups (all
 * NULL elsewhere). */
static int explain_envelope(const struct explain_args *a, const struct config *cfg,
                            const struct config_listener *l, const struct sockaddr *client,
                            const char *auth, struct inbound_lookups *look)
{
    char mail_arg[SMTP_CMD_LINE_MAX], rcpt_arg[SMTP_CMD_LINE_MAX];
    path_arg("FROM:", a->from, mail_arg, sizeof mail_arg);
    path_arg("TO:", a->rcpt, rcpt_arg, sizeof rcpt_arg);
    int inbound = l->role == LISTENER_INBOUND;

    struct policy_decision d;
    char sender[SMTP_PATH_MAX + 8] = "";
    if (explain_mail(mail_arg, &d, sender) < 0) {
        fprintf(stderr, "sluice: explain: MAIL parameters are not explained: %s\n", a->from);
        return 2;
    }
    if (inbound) {
        int accepted = d.verdict == POLICY_ACCEPT;
        int spf = accepted && cfg->inbound.spf != SPF_IGNORE;
        /* a session always has a HELO name; without --helo the null sender's SPF gets "unknown" */
        if (lookups_run(cfg, client, a->helo ? a->helo : "unknown", accepted ? sender : NULL, spf,
                        look) < 0)
            return 1;
        print_connect_checks(cfg, look);
    }
    printf("MAIL %s\n", mail_arg);
    if (inbound && d.verdict == POLICY_ACCEPT && look->sender_checked) {
        printf("  sender domain: %s\n", dns_status_name(look->sender_status));
        d = sender_domain_verdict(look->sender_status);
    }
    if (inbound && d.verdict == POLICY_ACCEPT) {
        if (look->spf_res != NULL)
            d = print_spf(cfg, look);
        else
            printf("  spf: not checked (inbound.spf is ignore)\n");
    }
    print_decision(&d);
    if (d.verdict != POLICY_ACCEPT) {
        printf("RCPT %s\n  not reached: MAIL was refused\n", rcpt_arg);
        return 0;
    }

    /* RCPT, as smtp_cmd_rcpt: syntax, parameters, address, then the relay decision. */
    struct smtp_path_args args;
    struct smtp_addr rcpt;
    const char *why = "bad address";
    struct smtp_slice arg = {rcpt_arg, strlen(rcpt_arg)};
    struct policy_decision syntax = {.verdict = POLICY_REJECT,
                                     .code = 501,
                                     .enhanced = "5.5.4",
                                     .text = "Syntax: RCPT TO:<address>",
                                     .rule = "builtin.address_syntax"};
    char text[SMTP_PATH_MAX + 8] = "";
    printf("RCPT %s\n", rcpt_arg);
    if (smtp_cmd_parse_path_args(arg, "TO:", &args) < 0) {
        d = syntax;
    } else if (args.nparams > 0) {
        d = syntax;
        d.code = 555, d.text = "Error: unsupported parameter";
    } else if (smtp_addr_parse(args.path.ptr, args.path.len, SMTP_ADDR_ALLOW_POSTMASTER, &rcpt,
                               &why) < 0) {
        d = syntax;
        d.enhanced = "5.1.3", d.text = why;
    } else {
        struct relay_query q = {l, client, auth, &rcpt};
        d = policy_relay_check(cfg, &q);
        smtp_addr_format(&rcpt, text, sizeof text);
        if (d.verdict == POLICY_ACCEPT && inbound) {
            int postmaster = (rcpt.flags & SMTP_ADDR_POSTMASTER_ONLY) ||
                             strcasecmp(rcpt.local, "postmaster") == 0;
            struct policy_decision c = connect_verdict(cfg, look);
            if (!postmaster && c.verdict != POLICY_ACCEPT) {
                print_decision(&c);
                return 0;
            }
            char rtext[RECIPIENTS_TEXT_MAX];
            struct policy_decision r = explain_recipients(cfg, &rcpt, rtext);
            if (r.verdict != POLICY_ACCEPT) {
                printf("  reject %d %s %s\n", r.code, r.enhanced, r.text); /* text has <addr> */
                print_rule(&r);
                return 0;
            }
            if (strcmp(r.rule, "domains.recipients.none") != 0)
                d.rule = r.rule, d.pos = r.pos; /* the recipients file decided */
        }
    }
    if (text[0] != '\0' && d.verdict != POLICY_ACCEPT) {
        printf("  reject %d %s <%s>: %s\n", d.code, d.enhanced, text, d.text);
        print_rule(&d);
    } else {
        print_decision(&d);
    }
    if (inbound && d.verdict == POLICY_ACCEPT)
        print_message_policy(cfg, &rcpt);
    return 0;
}

static int explain_run(const struct explain_args *a, const struct config *cfg)
{
    const struct config_listener *l = &cfg->listeners[0];
    if (a->listener != NULL) {
        l = NULL;
        for (size_t i = 0; i < cfg->nlisteners && l == NULL; i++)
            if (strcmp(cfg->listeners[i].name, a->listener) == 0)
                l = &cfg->listeners[i];
        if (l == NULL) {
            fprintf(stderr, "sluice: explain: no listener '%s' in %s\n", a->listener, cfg->source);
            return 1;
        }
    }
    struct sockaddr_storage client = a->client_addr;

    printf("listener: %s (%s, %s) at %s:%u:%u\n", l->name,
           l->role == LISTENER_SUBMISSION ? "submission" : "inbound", l->address,
           l->pos.file ? l->pos.file : cfg->source, l->pos.line, l->pos.column);
    const struct config_cidr *net = config_trusted_network_match(cfg, (struct sockaddr *)&client);
    if (net != NULL)
        printf("client: %s, in relay.trusted_networks %s at %s:%u:%u\n", a->client, net->text,
               net->pos.file, net->pos.line, net->pos.column);
    else
        printf("client: %s, not in relay.trusted_networks\n", a->client);
    if (a->helo != NULL)
        printf("helo: %s (no rule judges it)\n", a->helo);
    /* Nobody can authenticate without relay.users, so --auth then changes nothing. */
    const char *auth = a->auth != NULL && cfg->relay.users != NULL ? a->auth : NULL;
    if (a->auth != NULL && auth == NULL)
        printf("auth: none (relay.users is not set, so %s cannot authenticate)\n", a->auth);
    else
        printf("auth: %s\n", auth ? auth : "none");

    struct inbound_lookups look = {0};
    int status = explain_envelope(a, cfg, l, (const struct sockaddr *)&client, auth, &look);
    lookups_free(&look);
    return status;
}

int cmd_explain(int argc, char **argv)
{
    struct explain_args a = {0};
    const struct command_option opts[] = {
        {"--config", "-c", &a.path, NULL},       {"--client", NULL, &a.client, NULL},
        {"--listener", NULL, &a.listener, NULL}, {"--helo", NULL, &a.helo, NULL},
        {"--auth", NULL, &a.auth, NULL},         {"--from", NULL, &a.from, NULL},
        {"--rcpt", NULL, &a.rcpt, NULL},
    };
    if (command_parse("explain", argc, argv, opts, ARRAY_LEN(opts), NULL, 0, NULL) != 0)
        return 2;
    if (a.client == NULL || a.from == NULL || a.rcpt == NULL)
        return command_usage_error("explain", "missing %s",
                                   a.client == NULL ? "--client"
                                   : a.from == NULL ? "--from"
                                                    : "--rcpt");
    if (client_parse(a.client, &a.client_addr) < 0)
        return command_usage_error("explain", "--client '%s' is not an IP address", a.client);

    struct buf err = BUF_INIT;
    struct config *cfg = config_load_for_command(a.path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
        buf_free(&err);
        return 1;
    }
    int status = explain_run(&a, cfg);
    config_unref(cfg);
    buf_free(&err);
    return status;
}
