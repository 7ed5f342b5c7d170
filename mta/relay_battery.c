#include "mta/relay_battery.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/smtp_cmd.h"
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

static int is_trusted(const struct config *cfg, const struct sockaddr_storage *ss)
{
    return config_trusted_network_match(cfg, (const struct sockaddr *)ss) != NULL;
}

/* An address of the family outside every trusted network: the documentation address (RFC 5737,
 * RFC 3849) when it is not trusted, else the first free one of a sweep over the unicast space. When
 * the trusted networks cover the whole sweep, the documentation address is used anyway: then
 * everyone is trusted and the battery must show it. */
static void outsider_pick(const struct config *cfg, int family, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(0xc0000201u); /* 192.0.2.1 */
        if (!is_trusted(cfg, ss))
            return;
        for (uint32_t first = 1; first < 224; first++) {
            sin->sin_addr.s_addr = htonl(first << 24 | 0x7b2d43u); /* first.123.45.67 */
            if (!is_trusted(cfg, ss))
                return;
        }
        sin->sin_addr.s_addr = htonl(0xc0000201u);
        return;
    }
    static const unsigned char doc[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}; /* 2001:db8::1 */
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, doc, sizeof doc);
    if (!is_trusted(cfg, ss))
        return;
    for (unsigned first = 0x20; first < 0x40; first++) { /* first00::1 across 2000::/3 */
        memset(&sin6->sin6_addr, 0, sizeof sin6->sin6_addr);
        sin6->sin6_addr.s6_addr[0] = (unsigned char)first;
        sin6->sin6_addr.s6_addr[15] = 1;
        if (!is_trusted(cfg, ss))
            return;
    }
    memcpy(&sin6->sin6_addr, doc, sizeof doc);
}

static struct policy_decision syntax_refusal(int code, const char *enhanced, const char *why)
{
    struct policy_decision d = {POLICY_REJECT, code, enhanced, why, "builtin.address_syntax",
                                {NULL, 0, 0}};
    return d;
}

/* One attempt, parsed as smtp_cmd_mail and smtp_cmd_rcpt parse it (no SMTPUTF8 is offered). */
static struct policy_decision attempt(const struct config *cfg, const struct config_listener *l,
                                      const struct sockaddr *client, const char *mail_arg,
                                      const char *rcpt_arg)
{
    struct smtp_path_args args;
    struct smtp_addr from, rcpt;
    const char *why = "bad address";
    struct smtp_slice mail = {mail_arg, strlen(mail_arg)};
    if (smtp_cmd_parse_path_args(mail, "FROM:", &args) < 0)
        return syntax_refusal(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    if (smtp_addr_parse(args.path.ptr, args.path.len, SMTP_ADDR_ALLOW_NULL, &from, &why) < 0)
        return syntax_refusal(501, "5.1.7", why);

    struct smtp_slice to = {rcpt_arg, strlen(rcpt_arg)};
    if (smtp_cmd_parse_path_args(to, "TO:", &args) < 0)
        return syntax_refusal(501, "5.5.4", "Syntax: RCPT TO:<address>");
    if (args.nparams > 0)
        return syntax_refusal(555, "5.5.4", "unsupported parameter");
    if (smtp_addr_parse(args.path.ptr, args.path.len, SMTP_ADDR_ALLOW_POSTMASTER, &rcpt, &why) < 0)
        return syntax_refusal(501, "5.1.3", why);

    struct relay_query q = {l, client, NULL, &rcpt};
    return policy_relay_check(cfg, &q);
}

int relay_battery_run(const struct config *cfg, relay_battery_cb cb, void *arg)
{
    static const int families[] = {AF_INET, AF_INET6};
    const char *local = cfg->ndomains > 0 ? cfg->domains[0].name : "local.invalid";
    int relays = 0;

    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        struct sockaddr_storage client;
        char client_text[INET6_ADDRSTRLEN];
        outsider_pick(cfg, families[f], &client);
        const void *raw = families[f] == AF_INET
                              ? (const void *)&((struct sockaddr_in *)&client)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)&client)->sin6_addr;
        inet_ntop(families[f], raw, client_text, sizeof client_text);

        for (size_t i = 0; i < cfg->nlisteners; i++) {
            for (size_t c = 0; c < relay_battery_ncases; c++) {
                const struct relay_case *rc = &relay_battery_cases[c];
                char mail_arg[RELAY_BATTERY_ARG_MAX], rcpt_arg[RELAY_BATTERY_ARG_MAX];
                relay_battery_expand(rc->mail_arg ? rc->mail_arg : "FROM:<relay-test@{F}>", local,
                                     RELAY_BATTERY_FOREIGN, mail_arg, sizeof mail_arg);
                relay_battery_expand(rc->rcpt_arg, local, RELAY_BATTERY_FOREIGN, rcpt_arg,
                                     sizeof rcpt_arg);
                struct relay_result res = {
                    .listener = &cfg->listeners[i],
                    .client = client_text,
                    .rcase = rc,
                    .rcpt_arg = rcpt_arg,
                };
                res.decision = attempt(cfg, res.listener, (const struct sockaddr *)&client,
                                       mail_arg, rcpt_arg);
                res.accepted = res.decision.verdict == POLICY_ACCEPT;
                res.relayed = res.accepted && !rc->must_accept;
                relays += res.relayed;
                if (cb != NULL)
                    cb(&res, arg);
            }
        }
    }
    return relays;
}
