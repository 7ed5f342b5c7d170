/*
 * The sender domain check (see sender_domain.h).
 */
#include "policy/sender_domain.h"

#include <stdlib.h>

#include "lib/xalloc.h"

struct sender_domain_check {
    sender_domain_cb cb;
    void *arg;
    int done;      /* the lookup answered */
    int cancelled; /* freed before it answered: free when it does */
};

static void check_on_mx(void *arg, const struct dns_mx_result *res)
{
    struct sender_domain_check *c = arg;
    c->done = 1;
    if (c->cancelled) {
        free(c);
        return;
    }
    c->cb(c->arg, res->status);
}

int sender_domain_check_start(struct dns_resolver *r, const char *domain, sender_domain_cb cb,
                              void *arg, struct sender_domain_check **out)
{
    struct sender_domain_check *c = xcalloc(1, sizeof *c);
    c->cb = cb;
    c->arg = arg;
    int rc = dns_resolve_mx(r, domain, check_on_mx, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sender_domain_check_free(struct sender_domain_check *c)
{
    if (c == NULL)
        return;
    if (c->done)
        free(c);
    else
        c->cancelled = 1;
}

struct policy_decision sender_domain_verdict(enum dns_status status)
{
    struct policy_decision d = {.verdict = POLICY_REJECT,
                                .code = 550,
                                .enhanced = "5.1.8",
                                .text = "Sender address rejected: Domain not found",
                                .rule = "inbound.reject_unknown_sender_domain"};
    switch (status) {
    case DNS_OK:
        d = (struct policy_decision){.verdict = POLICY_ACCEPT,
                                     .code = 250,
                                     .enhanced = "2.1.0",
                                     .text = "Ok",
                                     .rule = d.rule};
        break;
    case DNS_NULL_MX:
        d.enhanced = "5.7.27";
        d.text = "Sender address rejected: the domain accepts no mail (null MX)";
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
    case DNS_BADNAME:
        break;
    case DNS_TEMPFAIL:
    case DNS_CANCELLED:
        d.verdict = POLICY_TEMPFAIL, d.code = 451, d.enhanced = "4.1.8";
        d.text = "Sender address rejected: Domain not found (DNS failure), try again later";
        break;
    }
    return d;
}
