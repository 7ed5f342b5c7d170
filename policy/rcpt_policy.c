#include "policy/rcpt_policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/smtp_dsn.h"
#include "policy/relay.h"
#include "policy/reverse_dns.h"

static const struct config_pos builtin = {NULL, 0, 0};

/* Each stage returns 1 when it decided (out filled), 0 to go on. */

static int refuse(struct rcpt_decision *out, enum rcpt_stage stage, struct policy_decision d,
                  const char *reason, const char *check)
{
    out->outcome = RCPT_REFUSE;
    out->stage = stage;
    out->d = d;
    out->reason = reason;
    out->check = check;
    return 1;
}

/* The session took the DSN parameters when all were DSN ones; name one that is not. */
static const struct smtp_param *unsupported_param(const struct smtp_path_args *args)
{
    for (size_t i = 0; i < args->nparams; i++)
        if (!smtp_dsn_is_rcpt_param(&args->params[i]))
            return &args->params[i];
    return &args->params[0];
}

/* The syntax, parameter and address stages; the canonical recipient goes to out. */
static int address_stages(const struct rcpt_facts *f, struct smtp_slice arg,
                          struct rcpt_decision *out)
{
    struct policy_decision d = {
        POLICY_REJECT, 501, "5.5.4", "Syntax: RCPT TO:<address>", "builtin.address_syntax",
        builtin};
    struct smtp_path_args args;
    if (smtp_cmd_parse_path_args(arg, "TO:", &args) < 0)
        return refuse(out, RCPT_STAGE_SYNTAX, d, d.text, d.rule);
    if (args.nparams > 0) {
        const struct smtp_param *p = unsupported_param(&args);
        snprintf(out->text, sizeof out->text, "Error: unsupported parameter %.*s", (int)p->key.len,
                 p->key.ptr);
        d.code = 555, d.text = out->text;
        return refuse(out, RCPT_STAGE_PARAMETER, d, d.text, d.rule);
    }
    const char *why = "bad address";
    unsigned options = SMTP_ADDR_ALLOW_POSTMASTER | (f->smtputf8 ? SMTP_ADDR_ALLOW_UTF8 : 0);
    if (smtp_addr_parse(args.path.ptr, args.path.len, options, &out->rcpt, &why) < 0) {
        snprintf(out->text, sizeof out->text, "Bad recipient address syntax: %s", why);
        d.enhanced = "5.1.3", d.text = out->text;
        return refuse(out, RCPT_STAGE_ADDRESS, d, why, d.rule);
    }
    smtp_addr_format(&out->rcpt, out->addr, sizeof out->addr);
    return 0;
}

/* The cap is checked before the counter grows (Exim CVE-2020-28017). */
static int limit_stage(const struct rcpt_facts *f, struct rcpt_decision *out)
{
    if (f->nrcpts < f->cfg->limits.max_recipients_per_message)
        return 0;
    struct policy_decision d = {POLICY_TEMPFAIL,
                                452,
                                "4.5.3",
                                "Error: too many recipients",
                                "limits.max_recipients_per_message",
                                builtin};
    return refuse(out, RCPT_STAGE_LIMIT, d, "too many recipients", d.rule);
}

/* The relay decision comes first and alone: nothing after it can accept what it refused. */
static int relay_stage(const struct rcpt_facts *f, struct rcpt_decision *out)
{
    struct relay_query q = {f->listener, f->client, f->auth_user, &out->rcpt};
    struct policy_decision d = policy_relay_check(f->cfg, &q);
    out->d = d;
    out->stage = RCPT_STAGE_RELAY;
    if (d.verdict == POLICY_ACCEPT)
        return 0;
    snprintf(out->text, sizeof out->text, "<%s>: %s", out->addr, d.text);
    out->d.text = out->text;
    return refuse(out, RCPT_STAGE_RELAY, out->d, d.text, d.rule);
}

/* The action for a suppressed recipient of the tenant: its own list's, else suppression.action. */
static enum suppression_action suppression_action_for(const struct config *cfg, const char *tenant)
{
    for (size_t i = 0; tenant != NULL && i < cfg->suppression.ndrop_tenants; i++)
        if (strcmp(tenant, cfg->suppression.drop_tenants[i]) == 0)
            return SUPPRESSION_ACTION_DROP;
    for (size_t i = 0; tenant != NULL && i < cfg->suppression.nreject_tenants; i++)
        if (strcmp(tenant, cfg->suppression.reject_tenants[i]) == 0)
            return SUPPRESSION_ACTION_REJECT;
    return cfg->suppression.action;
}

/* Relayed mail only meets the suppression list: the caller reads it and rcpt_policy_suppressed
 * decides. */
static int suppression_stage(const struct rcpt_facts *f, struct rcpt_decision *out)
{
    if (f->suppression == NULL || !f->cfg->suppression.enabled ||
        f->listener->role == LISTENER_INBOUND ||
        policy_relay_authorized(f->cfg, f->listener, f->client, f->auth_user).verdict !=
            POLICY_ACCEPT)
        return 0;
    out->outcome = RCPT_NEED_SUPPRESSION;
    return 1;
}

/* A recipient on the tenant's or the global list is refused, or dropped. A list that cannot be
 * read is a temporary failure: mail it would stop must not slip through. */
void rcpt_policy_suppressed(const struct rcpt_facts *f, int found,
                            const struct suppression_entry *e, struct rcpt_decision *out)
{
    out->outcome = RCPT_ACCEPT;
    if (found == 0)
        return;
    if (found < 0) {
        struct policy_decision d = {
            POLICY_TEMPFAIL, 451,
            "4.3.0",         "Temporary failure: the suppression list cannot be read",
            "suppression",   builtin};
        refuse(out, RCPT_STAGE_SUPPRESSED, d, d.text, "suppression");
        return;
    }
    struct tm tm;
    time_t added = (time_t)e->added;
    strftime(out->suppressed_on, sizeof out->suppressed_on, "%Y-%m-%d", gmtime_r(&added, &tm));
    out->suppressed_by = suppression_source_name(e->source);
    snprintf(out->suppressed_tenant, sizeof out->suppressed_tenant, "%s", e->tenant);
    snprintf(out->text, sizeof out->text, RCPT_SUPPRESSED_TEXT " (%s %s)", out->suppressed_by,
             out->suppressed_on);
    struct policy_decision d = {POLICY_REJECT, 550,           "5.7.1",
                                out->text,     "suppression", f->cfg->suppression.path_pos};
    refuse(out, RCPT_STAGE_SUPPRESSED, d, RCPT_SUPPRESSED_TEXT, "suppression");
    if (suppression_action_for(f->cfg, f->tenant) == SUPPRESSION_ACTION_DROP)
        out->outcome = RCPT_DROP;
}

/* RFC 5321 §4.5.1: postmaster must stay reachable, from listed clients too. */
static int is_postmaster(const struct smtp_addr *rcpt)
{
    return (rcpt->flags & SMTP_ADDR_POSTMASTER_ONLY) || strcasecmp(rcpt->local, "postmaster") == 0;
}

/* The verdicts of the checks started at connect, held until here so postmaster can be reached:
 * no resolver, then the DNSBL (one still unanswered does not count), then reverse DNS (one still
 * unanswered is a temporary failure: dns.timeout passed before the banner). */
static int connect_stage(const struct rcpt_facts *f, struct rcpt_decision *out)
{
    if (is_postmaster(&out->rcpt))
        return 0;
    struct policy_decision d = {POLICY_ACCEPT};
    if (f->no_resolver) {
        d = (struct policy_decision){
            POLICY_TEMPFAIL, 451,    "4.4.3", "Temporary failure: DNS unavailable, try again later",
            "inbound.dns",   builtin};
    } else if (f->dnsbl != NULL && f->dnsbl->verdict != POLICY_ACCEPT) {
        d = *f->dnsbl;
    } else if (f->rdns == RCPT_RDNS_ANSWERED) {
        d = f->rdns_verdict;
    } else if (f->rdns == RCPT_RDNS_PENDING) {
        struct reverse_dns_result pending = {.status = REVERSE_DNS_TEMPFAIL};
        d = reverse_dns_verdict(&pending, f->cfg->inbound.reverse_dns);
    }
    if (d.verdict == POLICY_ACCEPT)
        return 0;
    /* the rules are "inbound.<check>" */
    return refuse(out, RCPT_STAGE_CONNECT, d, d.text, d.rule + strlen("inbound."));
}

/* The domain's recipients file; a listing names the rule that accepted. */
static int recipients_stage(const struct rcpt_facts *f, struct rcpt_decision *out)
{
    if (f->recipients == NULL)
        return 0;
    struct policy_decision d = recipients_check(f->recipients, &out->rcpt, out->text);
    if (d.verdict != POLICY_ACCEPT)
        return refuse(out, RCPT_STAGE_RECIPIENTS, d, d.text, "recipients");
    if (strcmp(d.rule, "domains.recipients.none") != 0) {
        out->d = d;
        out->stage = RCPT_STAGE_RECIPIENTS;
        out->listed_by = d.rule;
    }
    return 0;
}

/* Verification applies to a domain with verify_recipients and deliver_to; postmaster is never
 * verified. */
static int verify_stage(const struct rcpt_facts *f, struct rcpt_decision *out)
{
    const struct config_domain *dom = config_domain_find(f->cfg, out->rcpt.domain);
    if (dom == NULL || !dom->verify_recipients || dom->deliver_to == NULL ||
        is_postmaster(&out->rcpt))
        return 0;
    if (f->no_verifier) {
        struct policy_decision d = {
            POLICY_TEMPFAIL,
            450,
            "4.1.1",
            "Recipient address rejected: unverified address: server shutting down",
            "domains.verify_recipients",
            dom->pos};
        return refuse(out, RCPT_STAGE_VERIFY, d, d.text, "verify");
    }
    out->outcome = RCPT_NEED_VERIFY;
    out->verify_domain = dom;
    return 1;
}

void rcpt_policy_decide(const struct rcpt_facts *f, struct smtp_slice arg,
                        struct rcpt_decision *out)
{
    memset(out, 0, sizeof *out);
    out->outcome = RCPT_ACCEPT;
    if (address_stages(f, arg, out) || limit_stage(f, out) || relay_stage(f, out) ||
        suppression_stage(f, out))
        return;
    /* the MX checks, on an inbound listener only */
    if (f->listener->role == LISTENER_INBOUND && !connect_stage(f, out) &&
        !recipients_stage(f, out))
        verify_stage(f, out);
}
