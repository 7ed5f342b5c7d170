#include "policy/relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct policy_decision decide(enum policy_verdict verdict, int code, const char *enhanced,
                                     const char *text, const char *rule, struct config_pos pos)
{
    struct policy_decision d = {verdict, code, enhanced, text, rule, pos};
    return d;
}

static const struct config_pos builtin = {NULL, 0, 0};

static int is_unspecified(const struct sockaddr_storage *a)
{
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &any6, sizeof any6) == 0;
}

static int is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Delivery to the literal would connect to one of our own listeners: one on delivery.port bound to
 * that address, or to its family's wildcard while the literal is a loopback or unspecified address.
 * (The machine's other addresses behind a wildcard listener are not known here.) */
static int literal_is_us(const struct config *cfg, const char *literal)
{
    struct sockaddr_storage target;
    if (smtp_addr_literal_sockaddr(literal, 0, &target) < 0)
        return 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct sockaddr_storage *l = &cfg->listeners[i].addr;
        uint16_t port = l->ss_family == AF_INET ? ((const struct sockaddr_in *)l)->sin_port
                                                : ((const struct sockaddr_in6 *)l)->sin6_port;
        if (ntohs(port) != cfg->delivery.port || l->ss_family != target.ss_family)
            continue;
        if (same_address(l, &target) ||
            (is_unspecified(l) && (is_loopback(&target) || is_unspecified(&target))))
            return 1;
    }
    return 0;
}

/* A recipient at an address literal that the session may relay (RFC 5321 §4.1.3, §5.1). Refused
 * with X.1.2 (RFC 3463, "bad destination system address"): the address is well-formed (not X.1.3)
 * and the client may relay (not X.7.1); it is the destination system that this server does not
 * deliver to. */
static struct policy_decision relay_literal(const struct config *cfg, const struct smtp_addr *rcpt,
                                            struct policy_decision accepted)
{
    if (!cfg->relay.allow_address_literals)
        return decide(POLICY_REJECT, 550, "5.1.2",
                      "address literals are not relayed (relay.allow_address_literals is false)",
                      "relay.allow_address_literals", builtin);
    if (literal_is_us(cfg, rcpt->domain))
        return decide(POLICY_REJECT, 550, "5.4.6",
                      "the address literal names this server: the mail would loop",
                      "builtin.address_literal_loop", builtin);
    return accepted;
}

struct policy_decision policy_relay_authorized(const struct config *cfg,
                                               const struct config_listener *listener,
                                               const struct sockaddr *client, const char *auth_user)
{
    if (listener->role == LISTENER_SUBMISSION) {
        if (auth_user != NULL)
            return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "relay.authenticated", builtin);
        const struct config_cidr *net = config_trusted_network_match(cfg, client);
        if (net != NULL)
            return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "relay.trusted_networks", net->pos);
    }
    return decide(POLICY_REJECT, 550, "5.7.1", "Relay access denied",
                  listener->role == LISTENER_INBOUND ? "listener.inbound" : "relay.default_deny",
                  listener->pos);
}

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

    struct policy_decision d = policy_relay_authorized(cfg, q->listener, q->client, q->auth_user);
    if (d.verdict == POLICY_ACCEPT && (rcpt->flags & SMTP_ADDR_IP_LITERAL))
        return relay_literal(cfg, rcpt, d);
    return d;
}
