#include "mta/relay_battery.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_cmd.h"
#include "lib/xalloc.h"
#include "policy/ip_space.h"
#include "policy/relay.h"

/* Every form here has let some MTA relay at some time. Each is sent as its own transaction. */
const struct relay_case relay_battery_cases[] = {
    {"foreign-domain", NULL, "TO:<user@{F}>", 0},
    {"percent-hack", NULL, "TO:<user%{F}@{L}>", 0},
    {"bang-path", NULL, "TO:<{F}!user@{L}>", 0},
    {"bang-path-no-domain", NULL, "TO:<{F}!user>", 0},
    {"source-route", NULL, "TO:<@{L}:user@{F}>", 0},
    {"quoted-at", NULL, "TO:<\"user@{F}\"@{L}>", 0},
    {"quoted-percent", NULL, "TO:<\"user%{F}\"@{L}>", 0},
    {"ipv4-literal", NULL, "TO:<user@[192.0.2.1]>", 0},
    {"ipv6-literal", NULL, "TO:<user@[IPv6:2001:db8::1]>", 0},
    {"trailing-dot", NULL, "TO:<user@{F}.>", 0},
    {"mixed-case", NULL, "TO:<user@FOREIGN.Example>", 0},
    {"escaped-local-part", NULL, "TO:<us\\er@{F}>", 0},
    {"space-before-path", NULL, "TO: <user@{F}>", 0},
    {"null-sender", "FROM:<>", "TO:<user@{F}>", 0},
    {"postmaster", NULL, "TO:<postmaster>", 1},
    {"postmaster-local", NULL, "TO:<postmaster@{L}>", 1},
    {"local-recipient", NULL, "TO:<user@{L}>", 1},
};
const size_t relay_battery_ncases = sizeof relay_battery_cases / sizeof relay_battery_cases[0];

void relay_battery_expand(const char *tmpl, const char *local, const char *foreign, char *out,
                          size_t size)
{
    size_t n = 0;
    if (size == 0)
        return;
    for (const char *p = tmpl; *p != '\0';) {
        const char *with = NULL;
        if (strncmp(p, "{L}", 3) == 0)
            with = local;
        else if (strncmp(p, "{F}", 3) == 0)
            with = foreign;
        if (with != NULL) {
            for (; *with != '\0' && n + 1 < size; with++)
                out[n++] = *with;
            p += 3;
        } else {
            if (n + 1 < size)
                out[n++] = *p;
            p++;
        }
    }
    out[n] = '\0';
}

/* ---- The outside clients: a spread over the public address space ---- */

/* A client address as the session sees it. */
union client {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
};

struct clients {
    union client *at; /* owned */
    size_t n, cap;
};

static void clients_add(struct clients *c, int family, const unsigned char *bytes)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->at = xrealloc(c->at, c->cap * sizeof *c->at);
    }
    union client *cl = &c->at[c->n++];
    memset(cl, 0, sizeof *cl);
    if (family == AF_INET) {
        cl->sin.sin_family = AF_INET;
        memcpy(&cl->sin.sin_addr, bytes, 4);
    } else {
        cl->sin6.sin6_family = AF_INET6;
        memcpy(&cl->sin6.sin6_addr, bytes, 16);
    }
}

static void client_text(const union client *cl, char *out, size_t size)
{
    if (cl->sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &cl->sin.sin_addr, out, (socklen_t)size);
    else
        inet_ntop(AF_INET6, &cl->sin6.sin6_addr, out, (socklen_t)size);
}

/* One public address in [from, to] (the block's `preferred` one when it qualifies) that is not
 * in the merged set `avoid` (special-purpose space and what the configuration trusts): 0, or -1
 * when the block holds no public address at all. When every public address of the block is
 * avoided, a trusted one is returned all the same: then nobody there is outside, and the battery
 * must show it. */
static int pick_in_block(const struct ip_set *special, const struct ip_set *avoid, ip_uint from,
                         ip_uint to, ip_uint preferred, ip_uint *out)
{
    ip_uint public_addr;
    if (ip_set_find_outside(special, from, to, &public_addr) < 0)
        return -1;
    if (ip_set_find_outside(avoid, preferred, preferred, out) == 0 ||
        ip_set_find_outside(avoid, from, to, out) == 0)
        return 0;
    *out = ip_set_find_outside(special, preferred, preferred, out) == 0 ? preferred : public_addr;
    return 0;
}

/* One IPv4 address per public /8 outside `avoid` (preferably first.123.45.67); each is added as
 * itself, or carried in embedding e when e is not NULL. */
static void add_per_slash8(struct clients *c, const struct ip_set *special4,
                           const struct ip_set *avoid, const struct ip_embedding *e)
{
    for (uint32_t first = 1; first < 224; first++) {
        ip_uint from = (ip_uint)first << 24, addr;
        if (pick_in_block(special4, avoid, from, from | 0xffffff, from | 0x7b2d43, &addr) < 0)
            continue;
        unsigned char v4[4], v6[16];
        ip_to_bytes(AF_INET, addr, v4);
        if (e == NULL) {
            clients_add(c, AF_INET, v4);
        } else {
            ip_embed_v4(e, v4, v6);
            clients_add(c, AF_INET6, v6);
        }
    }
}

/* One IPv6 address per /8 of the global unicast 2000::/3 (preferably XX23:4567:89ab:cdef::1). */
static void add_per_v6_slash8(struct clients *c, const struct ip_set *special6,
                              const struct ip_set *avoid)
{
    for (unsigned first = 0x20; first < 0x40; first++) {
        static const unsigned char rest[16] = {0,    0x23, 0x45, 0x67,    0x89,
                                               0xab, 0xcd, 0xef, [15] = 1};
        ip_uint from = (ip_uint)first << 120, addr;
        ip_uint preferred = from | ip_from_bytes(AF_INET6, rest);
        if (pick_in_block(special6, avoid, from, from | (((ip_uint)1 << 120) - 1), preferred,
                          &addr) < 0)
            continue;
        unsigned char v6[16];
        ip_to_bytes(AF_INET6, addr, v6);
        clients_add(c, AF_INET6, v6);
    }
}

/* The trusted networks of one family, plus the special-purpose space. */
static void avoid_init(struct ip_set *avoid, const struct config *cfg, int family)
{
    ip_set_init(avoid, family);
    ip_set_add_special(avoid);
    for (size_t i = 0; i < cfg->relay.ntrusted_networks; i++) {
        const struct config_cidr *net = &cfg->relay.trusted_networks[i];
        if (net->family == family)
            ip_set_add(avoid, net->addr, net->prefix);
    }
}

/* The outside clients of both families: IPv4 one per public /8; IPv6 one per /8 of 2000::/3 and
 * the same IPv4 spread carried in every embedding (NAT64, 6to4, Teredo, mapped, compatible). */
static void outsiders_build(const struct config *cfg, struct clients *v4, struct clients *v6)
{
    struct ip_set special4, special6, avoid4, avoid6;
    ip_set_init(&special4, AF_INET);
    ip_set_add_special(&special4);
    ip_set_merge(&special4);
    ip_set_init(&special6, AF_INET6);
    ip_set_add_special(&special6);
    ip_set_merge(&special6);
    avoid_init(&avoid4, cfg, AF_INET);
    ip_set_merge(&avoid4);
    avoid_init(&avoid6, cfg, AF_INET6);
    ip_set_merge(&avoid6);

    add_per_slash8(v4, &special4, &avoid4, NULL);
    add_per_v6_slash8(v6, &special6, &avoid6);
    for (size_t i = 0; i < ip_nembeddings; i++) {
        const struct ip_embedding *e = &ip_embeddings[i];
        /* Avoid the IPv4 addresses trusted as themselves and those trusted in this embedding. */
        struct ip_set avoid;
        avoid_init(&avoid, cfg, AF_INET);
        for (size_t t = 0; t < cfg->relay.ntrusted_networks; t++) {
            const struct config_cidr *net = &cfg->relay.trusted_networks[t];
            unsigned char carried[4];
            unsigned prefix;
            if (net->family == AF_INET6 &&
                ip_embedded_v4(e, net->addr, net->prefix, carried, &prefix) == 0)
                ip_set_add(&avoid, carried, prefix);
        }
        ip_set_merge(&avoid);
        add_per_slash8(v6, &special4, &avoid, e);
        ip_set_free(&avoid);
    }
    ip_set_free(&special4);
    ip_set_free(&special6);
    ip_set_free(&avoid4);
    ip_set_free(&avoid6);
}

/* ---- The attempts ---- */

static struct policy_decision syntax_refusal(int code, const char *enhanced, const char *why)
{
    struct policy_decision d = {POLICY_REJECT, code, enhanced, why, "builtin.address_syntax",
                                {NULL, 0, 0}};
    return d;
}

/* Parses one attempt's MAIL and RCPT arguments as smtp_cmd_mail and smtp_cmd_rcpt parse them (no
 * SMTPUTF8 is offered): 0 with the recipient in *rcpt, or -1 with the session's refusal in *d. */
static int attempt_parse(const char *mail_arg, const char *rcpt_arg, struct smtp_addr *rcpt,
                         struct policy_decision *d)
{
    struct smtp_path_args args;
    struct smtp_addr from;
    const char *why = "bad address";
    struct smtp_slice mail = {mail_arg, strlen(mail_arg)};
    if (smtp_cmd_parse_path_args(mail, "FROM:", &args) < 0)
        *d = syntax_refusal(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    else if (smtp_addr_parse(args.path.ptr, args.path.len, SMTP_ADDR_ALLOW_NULL, &from, &why) < 0)
        *d = syntax_refusal(501, "5.1.7", why);
    else if (smtp_cmd_parse_path_args((struct smtp_slice){rcpt_arg, strlen(rcpt_arg)},
                                      "TO:", &args) < 0)
        *d = syntax_refusal(501, "5.5.4", "Syntax: RCPT TO:<address>");
    else if (args.nparams > 0)
        *d = syntax_refusal(555, "5.5.4", "unsupported parameter");
    else if (smtp_addr_parse(args.path.ptr, args.path.len, SMTP_ADDR_ALLOW_POSTMASTER, rcpt, &why) <
             0)
        *d = syntax_refusal(501, "5.1.3", why);
    else
        return 0;
    return -1;
}

/* One case on one listener from every client of a group: the relay decision is asked once per
 * client (the arguments are parsed once). The result shows the client that matters: the first
 * accepted for a relay, the first refused for a local recipient, else the first. */
static void attempt_all(const struct config *cfg, struct relay_result *res,
                        const struct clients *group, const char *mail_arg, char *client,
                        size_t client_size)
{
    struct smtp_addr rcpt;
    const union client *shown = &group->at[0];
    res->nclients = group->n;
    res->naccepted = 0;
    if (attempt_parse(mail_arg, res->rcpt_arg, &rcpt, &res->decision) == 0) {
        int found = 0; /* a client with the outcome that matters is shown */
        for (size_t i = 0; i < group->n; i++) {
            struct relay_query q = {res->listener, &group->at[i].sa, NULL, &rcpt};
            struct policy_decision d = policy_relay_check(cfg, &q);
            int accepted = d.verdict == POLICY_ACCEPT;
            int matters = accepted != res->rcase->must_accept;
            res->naccepted += accepted;
            if (i == 0 || (matters && !found)) {
                res->decision = d;
                shown = &group->at[i];
                found = matters;
            }
        }
    }
    res->accepted = res->rcase->must_accept ? res->naccepted == res->nclients : res->naccepted > 0;
    res->relayed = res->accepted && !res->rcase->must_accept;
    client_text(shown, client, client_size);
    res->client = client;
}

int relay_battery_run(const struct config *cfg, relay_battery_cb cb, void *arg)
{
    const char *local = cfg->ndomains > 0 ? cfg->domains[0].name : "local.invalid";
    struct clients groups[2] = {{NULL, 0, 0}, {NULL, 0, 0}}; /* IPv4, IPv6 */
    int relays = 0;
    outsiders_build(cfg, &groups[0], &groups[1]);

    for (size_t g = 0; g < 2; g++) {
        if (groups[g].n == 0)
            continue;
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            for (size_t c = 0; c < relay_battery_ncases; c++) {
                const struct relay_case *rc = &relay_battery_cases[c];
                char mail_arg[RELAY_BATTERY_ARG_MAX], rcpt_arg[RELAY_BATTERY_ARG_MAX];
                char client[INET6_ADDRSTRLEN];
                relay_battery_expand(rc->mail_arg ? rc->mail_arg : "FROM:<relay-test@{F}>", local,
                                     RELAY_BATTERY_FOREIGN, mail_arg, sizeof mail_arg);
                relay_battery_expand(rc->rcpt_arg, local, RELAY_BATTERY_FOREIGN, rcpt_arg,
                                     sizeof rcpt_arg);
                struct relay_result res = {
                    .listener = &cfg->listeners[i],
                    .rcase = rc,
                    .rcpt_arg = rcpt_arg,
                };
                attempt_all(cfg, &res, &groups[g], mail_arg, client, sizeof client);
                relays += res.relayed;
                if (cb != NULL)
                    cb(&res, arg);
            }
        }
    }
    free(groups[0].at);
    free(groups[1].at);
    return relays;
}
