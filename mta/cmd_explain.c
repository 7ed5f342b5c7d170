/*
 * `sluice explain`: what the daemon would answer to one MAIL and one RCPT from a given client on a
 * given listener, and which rule decided, with the file:line:column where it is written. It parses
 * the addresses and asks the policy exactly as a session does, on the configuration as the daemon
 * would load it. Of the inbound checks only the recipients file is explained: the others need DNS
 * (DNSBL, reverse DNS, SPF) or the message.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "lib/smtp_cmd.h"
#include "mta/commands.h"
#include "mta/config_load.h"
#include "policy/recipients.h"
#include "policy/relay.h"

struct explain_args {
    const char *path, *client, *listener, *helo, *auth, *from, *rcpt;
};

static int explain_usage(void)
{
    fprintf(stderr, "usage: sluice explain [-c FILE] --client IP [--listener NAME] [--helo NAME] "
                    "[--auth USER] --from ADDRESS --rcpt ADDRESS\n");
    return 2;
}

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

/* MAIL: the session's only check is the syntax of the path (and no parameters are explained). */
static int explain_mail(const char *arg_text, struct policy_decision *d)
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
    }
    return 0;
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
    struct sockaddr_storage client;
    if (client_parse(a->client, &client) < 0) {
        fprintf(stderr, "sluice: explain: --client '%s' is not an IP address\n", a->client);
        return 2;
    }
    char mail_arg[SMTP_CMD_LINE_MAX], rcpt_arg[SMTP_CMD_LINE_MAX];
    path_arg("FROM:", a->from, mail_arg, sizeof mail_arg);
    path_arg("TO:", a->rcpt, rcpt_arg, sizeof rcpt_arg);

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

    struct policy_decision d;
    if (explain_mail(mail_arg, &d) < 0) {
        fprintf(stderr, "sluice: explain: MAIL parameters are not explained: %s\n", a->from);
        return 2;
    }
    printf("MAIL %s\n  %s %d %s %s\n", mail_arg, d.verdict == POLICY_ACCEPT ? "accept" : "reject",
           d.code, d.enhanced, d.text);
    print_rule(&d);
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
        struct relay_query q = {l, (const struct sockaddr *)&client, auth, &rcpt};
        d = policy_relay_check(cfg, &q);
        smtp_addr_format(&rcpt, text, sizeof text);
        if (d.verdict == POLICY_ACCEPT && l->role == LISTENER_INBOUND) {
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
    if (text[0] != '\0' && d.verdict != POLICY_ACCEPT)
        printf("  reject %d %s <%s>: %s\n", d.code, d.enhanced, text, d.text);
    else
        printf("  %s %d %s %s\n", d.verdict == POLICY_ACCEPT ? "accept" : "reject", d.code,
               d.enhanced, d.text);
    print_rule(&d);
    return 0;
}

int cmd_explain(int argc, char **argv)
{
    struct explain_args a = {0};
    for (int i = 0; i < argc; i++) {
        if (command_config_option(argc, argv, &i, &a.path))
            continue;
        const char **slot = NULL;
        if (strcmp(argv[i], "--client") == 0)
            slot = &a.client;
        else if (strcmp(argv[i], "--listener") == 0)
            slot = &a.listener;
        else if (strcmp(argv[i], "--helo") == 0)
            slot = &a.helo;
        else if (strcmp(argv[i], "--auth") == 0)
            slot = &a.auth;
        else if (strcmp(argv[i], "--from") == 0)
            slot = &a.from;
        else if (strcmp(argv[i], "--rcpt") == 0)
            slot = &a.rcpt;
        if (slot == NULL || i + 1 >= argc)
            return explain_usage();
        *slot = argv[++i];
    }
    if (a.client == NULL || a.from == NULL || a.rcpt == NULL)
        return explain_usage();

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
