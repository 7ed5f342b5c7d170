/*
 * `sluice explain`: what the daemon would answer to one MAIL and one RCPT from a given client on a
 * given listener, and which rule decided, with the file:line:column where it is written, on the
 * configuration as the daemon would load it. RCPT is decided by the session's own function
 * (policy/rcpt_policy.h), given the facts a session would have. On an inbound listener the
 * client's DNSBL, reverse DNS and SPF verdicts are looked up for real through dns.servers (on a
 * private loop, each bounded by dns.timeout) unless --assume gives them, recipient verification is
 * named and assumed to accept, and the attachment policy and DMARC are named (DMARC needs the
 * message's From field, which explain does not have); the message is not explained. Relayed mail
 * is checked against the suppression list when suppression.enabled, read as the daemon reads it.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <uv.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "lib/smtp_addr.h"
#include "lib/smtp_cmd.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/server/smtp_tx_dsn.h"
#include "policy/dmarc.h"
#include "policy/dnsbl.h"
#include "policy/rcpt_policy.h"
#include "policy/recipients.h"
#include "policy/reverse_dns.h"
#include "policy/sender_domain.h"
#include "policy/spf.h"
#include "policy/suppression.h"

/* What --assume gives instead of a lookup: what explain cannot know, or should not ask. Each
 * points at the value of one of assume_items, or is NULL: looked up. */
struct explain_assume {
    const char *dns;   /* "none": no lookup can run (a daemon that is stopping) */
    const char *dnsbl; /* "listed" (by every zone), "clean" or "pending" */
    const char *rdns;  /* a reverse_dns_status_name, or "pending" (unanswered at RCPT) */
};

static const char *const assume_items[] = {
    "dns=none",
    "dnsbl=listed",
    "dnsbl=clean",
    "dnsbl=pending",
    "reverse-dns=ok",
    "reverse-dns=no-ptr",
    "reverse-dns=not-confirmed",
    "reverse-dns=tempfail",
    "reverse-dns=pending",
};

struct explain_args {
    const char *path, *client, *listener, *helo, *auth, *from, *rcpt, *assume_text;
    struct sockaddr_storage client_addr; /* client, parsed */
    struct explain_assume assume;        /* assume_text, parsed */
};

/* Parses "item[,item...]" (assume_items) into *as. Returns 0, or 2 after a usage error. */
static int assume_parse(const char *text, struct explain_assume *as)
{
    for (const char *p = text;; p++) {
        size_t len = strcspn(p, ",");
        const char *item = NULL;
        for (size_t i = 0; i < ARRAY_LEN(assume_items) && item == NULL; i++)
            if (strlen(assume_items[i]) == len && strncmp(p, assume_items[i], len) == 0)
                item = assume_items[i];
        if (item == NULL)
            return command_usage_error("explain",
                                       "--assume: '%.*s' is not one of dns=none, "
                                       "dnsbl=listed|clean|pending, reverse-dns=ok|no-ptr|"
                                       "not-confirmed|tempfail|pending",
                                       (int)len, p);
        const char *value = strchr(item, '=') + 1;
        if (strncmp(item, "dns=", 4) == 0)
            as->dns = value;
        else if (strncmp(item, "dnsbl=", 6) == 0)
            as->dnsbl = value;
        else
            as->rdns = value;
        p += len;
        if (*p == '\0')
            return 0;
    }
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
    /* what the RCPT facts point at */
    struct dnsbl_hit *assumed_hits; /* dnsbl=listed: every zone */
    struct dnsbl_result assumed_dnsbl;
    struct reverse_dns_result assumed_rdns;
    struct policy_decision dnsbl_verdict;
    char dnsbl_reply[DNSBL_REPLY_MAX];
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
    free(l->assumed_hits);
}

/* Starts what cfg asks for and `as` does not give (the sender's checks only when sender is not
 * NULL; SPF when spf) and runs a private loop until every answer is in; the resolver's timeout
 * bounds each lookup. Returns 0, or -1 after saying why. */
static int lookups_run(const struct config *cfg, const struct explain_assume *as,
                       const struct sockaddr *client, const char *helo, const char *sender, int spf,
                       struct inbound_lookups *l)
{
    const char *sender_domain = sender_domain_to_check(cfg, sender);
    int dnsbl = cfg->inbound.ndnsbl > 0 && as->dnsbl == NULL;
    int rdns = cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE && as->rdns == NULL;
    if (as->dns != NULL || (!dnsbl && !rdns && !spf && sender_domain == NULL))
        return 0; /* nothing to look up, or nothing to look it up with */
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    struct dns_resolver *dns = NULL;
    if (rc == 0)
        dns = dns_resolver_new(&loop, (const char *const *)cfg->dns.servers, cfg->dns.nservers,
                               (unsigned)cfg->dns.timeout_ms, &rc);
    if (dns != NULL && dnsbl &&
        (rc = dnsbl_check_start(dns, cfg->inbound.dnsbl, cfg->inbound.ndnsbl,
                                cfg->inbound.dnsbl_threshold, client, lookups_on_dnsbl, l,
                                &l->dnsbl)) == 0)
        l->pending++;
    if (dns != NULL && rc == 0 && rdns &&
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

/* dnsbl=listed: every zone lists the client. */
static const struct dnsbl_result *assumed_listing(const struct config *cfg,
                                                  struct inbound_lookups *l)
{
    unsigned threshold = cfg->inbound.dnsbl_threshold ? cfg->inbound.dnsbl_threshold : 1;
    l->assumed_hits = xcalloc(cfg->inbound.ndnsbl, sizeof *l->assumed_hits);
    for (size_t i = 0; i < cfg->inbound.ndnsbl; i++) {
        l->assumed_hits[i].zone = cfg->inbound.dnsbl[i].zone;
        l->assumed_hits[i].weight = cfg->inbound.dnsbl[i].weight;
        l->assumed_dnsbl.score += cfg->inbound.dnsbl[i].weight;
    }
    l->assumed_dnsbl.hits = l->assumed_hits;
    l->assumed_dnsbl.nhits = cfg->inbound.ndnsbl;
    l->assumed_dnsbl.listed = l->assumed_dnsbl.score >= threshold;
    return &l->assumed_dnsbl;
}

enum connect_answer { ANSWERED, NOT_ASKED, PENDING };

/* A connect check that has no answer to judge: says so and returns NOT_ASKED (`off` says why it is
 * off, or there is no resolver) or PENDING (assumed unanswered by RCPT); else ANSWERED. */
static enum connect_answer connect_check_unanswered(const struct explain_assume *as,
                                                    const char *name, const char *off,
                                                    const char *assumed)
{
    if (off != NULL || as->dns != NULL) {
        printf("%s: %s\n", name, off != NULL ? off : "not checked (no resolver)");
        return NOT_ASKED;
    }
    if (assumed != NULL && strcmp(assumed, "pending") == 0) {
        printf("%s: no answer yet (assumed)\n", name);
        return PENDING;
    }
    return ANSWERED;
}

/* The DNSBL at connect: printed with its verdict, which goes to f as a session holds it (none
 * while unanswered). */
static void connect_dnsbl(const struct config *cfg, const struct explain_assume *as,
                          const struct sockaddr *client, struct inbound_lookups *l,
                          struct rcpt_facts *f)
{
    const char *assumed = as->dnsbl != NULL ? " (assumed)" : "";
    const struct dnsbl_result *res = l->dnsbl_res;
    static const struct dnsbl_result clean = {0};
    if (connect_check_unanswered(as, "dnsbl", cfg->inbound.ndnsbl == 0 ? "none configured" : NULL,
                                 as->dnsbl) != ANSWERED)
        return; /* a DNSBL without an answer does not count at RCPT */
    if (as->dnsbl != NULL)
        res = strcmp(as->dnsbl, "listed") == 0 ? assumed_listing(cfg, l) : &clean;
    printf("dnsbl: score %u, threshold %u", res->score,
           cfg->inbound.dnsbl_threshold ? cfg->inbound.dnsbl_threshold : 1);
    for (size_t i = 0; i < res->nhits; i++)
        printf("%s %s (weight %u)", i == 0 ? "; listed by" : ",", res->hits[i].zone,
               res->hits[i].weight);
    if (res->errors > 0)
        printf("; %u zones unanswered", res->errors);
    printf("%s\n", assumed);
    l->dnsbl_verdict = dnsbl_verdict(res, client, l->dnsbl_reply);
    f->dnsbl = &l->dnsbl_verdict;
    print_decision(f->dnsbl);
}

/* Reverse DNS at connect: printed with its verdict, and put in f as a session holds it. */
static void connect_rdns(const struct config *cfg, const struct explain_assume *as,
                         struct inbound_lookups *l, struct rcpt_facts *f)
{
    const struct reverse_dns_result *res = l->rdns_res;
    const char *off = cfg->inbound.reverse_dns == REVERSE_DNS_IGNORE
                          ? "not checked (inbound.reverse_dns is ignore)"
                          : NULL;
    switch (connect_check_unanswered(as, "reverse dns", off, as->rdns)) {
    case PENDING:
        f->rdns = RCPT_RDNS_PENDING;
        return;
    case NOT_ASKED:
        return;
    case ANSWERED:
        break;
    }
    if (as->rdns != NULL) {
        while (strcmp(reverse_dns_status_name(l->assumed_rdns.status), as->rdns) != 0)
            l->assumed_rdns.status++; /* as->rdns is one of the names */
        res = &l->assumed_rdns;
    }
    printf("reverse dns: %s%s%s%s\n", reverse_dns_status_name(res->status), res->name ? " " : "",
           res->name ? res->name : "", as->rdns != NULL ? " (assumed)" : "");
    f->rdns = RCPT_RDNS_ANSWERED;
    f->rdns_verdict = reverse_dns_verdict(res, cfg->inbound.reverse_dns);
    print_decision(&f->rdns_verdict);
}

/* MAIL on an inbound listener, after the syntax accepted: the sender's domain when asked for, then
 * SPF, as a session checks them; d becomes the decision. */
static void mail_checks(const struct config *cfg, const struct explain_assume *as,
                        const char *sender, const struct inbound_lookups *l,
                        struct policy_decision *d)
{
    if (as->dns != NULL &&
        (sender_domain_to_check(cfg, sender) != NULL || cfg->inbound.spf != SPF_IGNORE)) {
        static const struct policy_decision unavailable = {
            POLICY_TEMPFAIL, 451,
            "4.4.3",         "Temporary failure: DNS unavailable, try again later",
            "inbound.dns",   {NULL, 0, 0}};
        printf("  %s: not checked (no resolver)\n",
               sender_domain_to_check(cfg, sender) != NULL ? "sender domain" : "spf");
        *d = unavailable;
        return;
    }
    if (l->sender_checked) {
        printf("  sender domain: %s\n", dns_status_name(l->sender_status));
        *d = sender_domain_verdict(l->sender_status);
        if (d->verdict != POLICY_ACCEPT)
            return;
    }
    if (l->spf_res == NULL) {
        printf("  spf: not checked (inbound.spf is ignore)\n");
        return;
    }
    char frag[SMTP_PATH_MAX + 64];
    spf_result_format(l->spf_res, frag, sizeof frag);
    printf("  spf: %s (Authentication-Results: %s)\n", spf_status_name(l->spf_res->status), frag);
    *d = spf_verdict(l->spf_res, cfg->inbound.spf);
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

/* DMARC judges the message at end of data: what explain can say without it. */
static void print_dmarc(const struct config *cfg, const struct sockaddr *client, const char *sender,
                        const struct inbound_lookups *l)
{
    if (cfg->inbound.dmarc == DMARC_IGNORE) {
        printf("dmarc: not evaluated (inbound.dmarc is ignore)\n");
        return;
    }
    printf("dmarc: %s at end of data, on the message's From domain (explain has no message)\n",
           cfg->inbound.dmarc == DMARC_ENFORCE ? "enforced" : "marked");
    if (l->spf_res != NULL && l->spf_res->status == SPF_PASS)
        printf("  spf passed for %s: a From domain aligned with it passes\n", l->spf_res->domain);
    else
        printf("  spf %s: only an aligned DKIM signature can make it pass\n",
               cfg->inbound.spf == SPF_IGNORE ? "is not checked (inbound.spf is ignore)"
                                              : "did not pass");
    const char *at = strrchr(sender, '@');
    const char *override = dmarc_override_match(cfg, client, at != NULL ? at + 1 : "");
    if (override != NULL)
        printf("  a failure is only marked: the %s is in inbound.dmarc_override.%ss\n",
               strcmp(override, "network") == 0 ? "client" : "sender", override);
}

/* A suppressed recipient: which list holds it, why and since when, and what RCPT does with it. */
static void print_suppressed(const struct rcpt_decision *r)
{
    if (r->suppressed_tenant[0] != '\0')
        printf("  suppressed: on tenant %s's list, source %s, added %s\n", r->suppressed_tenant,
               r->suppressed_by, r->suppressed_on);
    else
        printf("  suppressed: on the global list, source %s, added %s\n", r->suppressed_by,
               r->suppressed_on);
    if (r->outcome != RCPT_DROP) {
        print_decision(&r->d);
        return;
    }
    printf("  drop 250 2.1.5 Ok (left out of the message; the client is not told)\n");
    print_rule(&r->d);
}

/* The suppression list the daemon would check, when suppression.enabled: NULL when it is off, or
 * no list was made yet (nobody is suppressed); a list that cannot be opened is an error (1). */
static int suppression_for_explain(const struct config *cfg, struct suppression **out)
{
    *out = NULL;
    if (!cfg->suppression.enabled)
        return 0;
    struct buf dir = BUF_INIT, data = BUF_INIT, err = BUF_INIT;
    suppression_dir(cfg, &dir);
    buf_printf(&data, "%s/data.mdb", dir.data);
    struct stat st;
    int status = 0;
    if (stat(data.data, &st) < 0)
        printf("suppression: no list at %s yet: nobody is suppressed\n", dir.data);
    else if (suppression_open(dir.data, NULL, out, &err) < 0)
        status = command_failed(&err);
    buf_free(&dir);
    buf_free(&data);
    buf_free(&err);
    return status;
}

/* MAIL and RCPT, once the listener and client are known: f holds the session's facts so far; the
 * inbound lookups go to `look`. */
static int explain_envelope(const struct explain_args *a, const struct config *cfg,
                            struct rcpt_facts *f, struct inbound_lookups *look)
{
    char mail_arg[SMTP_CMD_LINE_MAX], rcpt_arg[SMTP_CMD_LINE_MAX];
    path_arg("FROM:", a->from, mail_arg, sizeof mail_arg);
    path_arg("TO:", a->rcpt, rcpt_arg, sizeof rcpt_arg);
    int inbound = f->listener->role == LISTENER_INBOUND;

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
        if (lookups_run(cfg, &a->assume, f->client, a->helo ? a->helo : "unknown",
                        accepted ? sender : NULL, spf, look) < 0)
            return 1;
        /* as a session: without a resolver, RCPT refuses only when a connect check was due */
        f->no_resolver = a->assume.dns != NULL && (cfg->inbound.ndnsbl > 0 ||
                                                   cfg->inbound.reverse_dns != REVERSE_DNS_IGNORE);
        connect_dnsbl(cfg, &a->assume, f->client, look, f);
        connect_rdns(cfg, &a->assume, look, f);
    }
    printf("MAIL %s\n", mail_arg);
    if (inbound && d.verdict == POLICY_ACCEPT)
        mail_checks(cfg, &a->assume, sender, look, &d);
    print_decision(&d);
    printf("RCPT %s\n", rcpt_arg);
    if (d.verdict != POLICY_ACCEPT) {
        printf("  not reached: MAIL was refused\n");
        return 0;
    }

    /* DSN parameters are the session's, as in smtp_server_tx.c: the policy sees the path alone. */
    struct smtp_slice rcpt = {rcpt_arg, strlen(rcpt_arg)};
    struct smtp_tx_dsn dsn = {0};
    const char *why;
    int bad_dsn = smtp_tx_dsn_rcpt_arg(&dsn, &rcpt, &why) < 0;
    smtp_tx_dsn_free(&dsn);
    if (bad_dsn) {
        struct policy_decision bad = {.verdict = POLICY_REJECT,
                                      .code = 501,
                                      .enhanced = "5.5.4",
                                      .text = why,
                                      .rule = "builtin.address_syntax"};
        print_decision(&bad);
        return 0;
    }
    struct rcpt_decision r;
    rcpt_policy_decide(f, rcpt, &r);
    if (r.outcome == RCPT_NEED_SUPPRESSION) { /* read in place, as `sluice suppress check` */
        struct suppression_entry e;
        int found = suppression_check(f->suppression, f->tenant, r.addr, f->now, &e);
        rcpt_policy_suppressed(f, found, &e, &r);
    }
    if (r.outcome == RCPT_NEED_VERIFY)
        printf("  verify: %s is asked; explain does not ask, and assumes it accepts\n",
               r.verify_domain->deliver_to);
    if (r.stage == RCPT_STAGE_SUPPRESSED && r.suppressed_by != NULL)
        print_suppressed(&r);
    else
        print_decision(&r.d);
    if (inbound && r.outcome != RCPT_REFUSE) {
        print_message_policy(cfg, &r.rcpt);
        print_dmarc(cfg, f->client, sender, look);
    }
    return 0;
}

static int explain_run(const struct explain_args *a, const struct config *cfg,
                       const struct recipients *recipients)
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
    const struct sockaddr *client = (const struct sockaddr *)&a->client_addr;

    printf("listener: %s (%s, %s) at %s:%u:%u\n", l->name,
           l->role == LISTENER_SUBMISSION ? "submission" : "inbound", l->address,
           l->pos.file ? l->pos.file : cfg->source, l->pos.line, l->pos.column);
    const struct config_cidr *net = config_trusted_network_match(cfg, client);
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
    if (a->assume.dns != NULL && l->role == LISTENER_INBOUND)
        printf("dns: no resolver (assumed): no lookup can run\n");

    /* The first RCPT of a session without SMTPUTF8, whose verifier runs. */
    struct rcpt_facts facts = {.cfg = cfg,
                               .listener = l,
                               .client = client,
                               .auth_user = auth,
                               .tenant = auth, /* as the session names it */
                               .now = time(NULL),
                               .recipients = recipients};
    if (suppression_for_explain(cfg, &facts.suppression) != 0)
        return 1;
    struct inbound_lookups look = {0};
    int status = explain_envelope(a, cfg, &facts, &look);
    lookups_free(&look);
    suppression_close(facts.suppression);
    return status;
}

int cmd_explain(int argc, char **argv)
{
    struct explain_args a = {0};
    const struct command_option opts[] = {
        {"--config", "-c", &a.path, NULL},       {"--client", NULL, &a.client, NULL},
        {"--listener", NULL, &a.listener, NULL}, {"--helo", NULL, &a.helo, NULL},
        {"--auth", NULL, &a.auth, NULL},         {"--from", NULL, &a.from, NULL},
        {"--rcpt", NULL, &a.rcpt, NULL},         {"--assume", NULL, &a.assume_text, NULL},
    };
    if (command_parse("explain", argc, argv, opts, ARRAY_LEN(opts), NULL, 0, NULL) != 0)
        return 2;
    if (a.client == NULL || a.from == NULL || a.rcpt == NULL)
        return command_usage_error("explain", "missing %s",
                                   a.client == NULL ? "--client"
                                   : a.from == NULL ? "--from"
                                                    : "--rcpt");
    if (ip_text_sockaddr(a.client, 0, &a.client_addr) < 0)
        return command_usage_error("explain", "--client '%s' is not an IP address", a.client);
    if (a.assume_text != NULL && assume_parse(a.assume_text, &a.assume) != 0)
        return 2;

    struct buf err = BUF_INIT;
    struct recipients *recipients = NULL;
    struct config *cfg = config_load_with_signers(a.path, NULL, &recipients, &err);
    if (cfg == NULL)
        return command_failed(&err);
    int status = explain_run(&a, cfg, recipients);
    recipients_free(recipients);
    config_unref(cfg);
    buf_free(&err);
    return status;
}
