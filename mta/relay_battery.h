/*
 * The relay battery: a fixed table of relay attempts an outsider might try (percent hack, bang
 * paths, source routes, quoting, address literals, ...) with the outcome each must get. Run against
 * a loaded configuration it asks the relay decision exactly as a session would, for every listener
 * and a spread of untrusted clients over the public address space, without AUTH; `sluice
 * relay-test` also sends the same table over SMTP to any server. Start-up, reload and check-config
 * refuse a configuration in which an attempt relays.
 */
#ifndef SLUICE_RELAY_BATTERY_H
#define SLUICE_RELAY_BATTERY_H

#include <stddef.h>

#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "policy/policy.h"

/* The domain that stands for "somewhere else" in the attempts. */
#define RELAY_BATTERY_FOREIGN "foreign.example"

/* Longest expanded MAIL/RCPT argument: a path plus the "FROM:"/"TO:" prefix and spaces. */
#define RELAY_BATTERY_ARG_MAX (SMTP_PATH_MAX + 16)

struct relay_case {
    const char *name;
    /* Arguments after the verb, with {L} for the local domain and {F} for the foreign one. A NULL
     * mail_arg means the outside sender ("FROM:<relay-test@{F}>", or the --from of relay-test). */
    const char *mail_arg;
    const char *rcpt_arg;
    int must_accept; /* 1: a local recipient that must be accepted; 0: a relay that must be refused
                      */
};

extern const struct relay_case relay_battery_cases[];
extern const size_t relay_battery_ncases;

/* Writes tmpl into out with {L} and {F} replaced, NUL-terminated and truncated to size-1. */
void relay_battery_expand(const char *tmpl, const char *local, const char *foreign, char *out,
                          size_t size);

/* One case on one listener, judged by the policy for every outside client of one family. */
struct relay_result {
    const struct config_listener *listener;
    const struct relay_case *rcase;
    const char *rcpt_arg; /* expanded */
    size_t nclients;      /* outside clients asked about */
    size_t naccepted;     /* how many of them got the recipient accepted */
    int accepted;         /* a relay: for any client; a local recipient: for every client */
    int relayed;          /* accepted although rcase must be refused */
    /* The client shown, as text: the first that relayed (or was refused a local recipient), else
     * the first asked; and the decision it got (syntax errors: builtin.address_syntax). */
    const char *client;
    struct policy_decision decision;
};

typedef void (*relay_battery_cb)(const struct relay_result *res, void *arg);

/* Runs every case on every listener of cfg from a spread of outside clients without AUTH, parsing
 * the arguments as the session does: for IPv4 one public address per /8, for IPv6 one per /8 of
 * 2000::/3 plus the same IPv4 spread carried in NAT64, 6to4, Teredo, mapped and compatible form.
 * Each is outside every trusted network where its block leaves one (else trusted: the relay must
 * show). Calls cb (when not NULL) once per case, listener and family; returns how many of those
 * relayed. The local domain is the first of `domains` ("local.invalid" when there is none). */
int relay_battery_run(const struct config *cfg, relay_battery_cb cb, void *arg);

#endif
