#include "policy/relay.h"

static struct policy_decision decide(enum policy_verdict verdict, int code, const char *enhanced,
                                     const char *text, const char *rule, struct config_pos pos)
{
    struct policy_decision d = {verdict, code, enhanced, text, rule, pos};
    return d;
}

static const struct config_pos builtin = {NULL, 0, 0};

struct policy_decision policy_relay_check(const struct config *cfg, const struct relay_query *q)
{
    const struct smtp_addr *rcpt = q->rcpt;

    /* A local part that still routes ('@', '%', '!') could be forwarded by whatever server handles
     * it next, to anywhere: we cannot know, so we never accept it, local domain or not. */
    if (rcpt->flags & SMTP_ADDR_ROUTING_CHARS)
        return decide(POLICY_REJECT, 550, "5.7.1",
                      "Relay access denied: routing characters in local part",
                      "builtin.routing_characters", builtin);

    /* RFC 5321 §4.5.1: <postmaster> without a domain always reaches us. */
    if (rcpt->flags & SMTP_ADDR_POSTMASTER_ONLY)
        return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "builtin.postmaster", builtin);

    if (!(rcpt->flags & SMTP_ADDR_IP_LITERAL)) {
        const struct config_domain *dom = config_domain_find(cfg, rcpt->domain);
        if (dom != NULL)
            return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "domains", dom->pos);
    }

    if (q->listener->role == LISTENER_SUBMISSION) {
        if (q->auth_user != NULL)
            return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "relay.authenticated", builtin);
        const struct config_cidr *net = config_trusted_network_match(cfg, q->client);
        if (net != NULL)
            return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "relay.trusted_networks", net->pos);
    }
    return decide(POLICY_REJECT, 550, "5.7.1", "Relay access denied",
                  q->listener->role == LISTENER_INBOUND ? "listener.inbound" : "relay.default_deny",
                  q->listener->pos);
}
