/*
 * `sluice relay-test`: the relay battery (mta/relay_battery.h) run two ways. Against a
 * configuration file it asks the policy directly, listener by listener; against HOST:PORT it sends
 * the same attempts over SMTP to any server (never DATA), so an admin can check every MX. A
 * blocking client with timeouts is enough here: this is a one-shot command, not the daemon's loop.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"
#include "mta/cli/live_smtp.h"
#include "mta/config_load.h"
#include "mta/relay_battery.h"

/* Exit status when no attempt relayed but some could not be made at all. */
#define EXIT_INCONCLUSIVE 3

/* ---- mode A: the policy of a configuration file ---- */

struct policy_tally {
    int attempts;
    int local_refused;
    size_t clients[2]; /* outside clients per attempt: IPv4, IPv6 */
};

static void policy_on_result(const struct relay_result *res, void *arg)
{
    struct policy_tally *tally = arg;
    const struct policy_decision *d = &res->decision;
    int v6 = strchr(res->client, ':') != NULL;
    tally->attempts++;
    tally->local_refused += res->rcase->must_accept && !res->accepted;
    tally->clients[v6] = res->nclients;
    printf("%s %s %s %s %s %d %s", res->listener->name, res->client, res->rcase->name,
           res->rcpt_arg, live_outcome_word(res->rcase->must_accept, res->accepted), d->code,
           d->rule);
    if (d->pos.line > 0)
        printf(" (%s:%u:%u)", d->pos.file, d->pos.line, d->pos.column);
    /* Where the outcome is not the same for everyone, say for how many. */
    size_t odd = res->rcase->must_accept ? res->nclients - res->naccepted : res->naccepted;
    if (odd > 0)
        printf(" for %zu of %zu outside IPv%c clients", odd, res->nclients, v6 ? '6' : '4');
    printf("\n");
}

static int relay_test_policy(const char *path)
{
    struct buf err = BUF_INIT;
    /* Loaded without the relay gates of config_load_for_command: showing which attempts relay in
     * a configuration those gates refuse is the point of this command. */
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL)
        return command_failed(&err);
    struct policy_tally tally = {0, 0, {0, 0}};
    int relays = relay_battery_run(cfg, policy_on_result, &tally);
    printf("verdict: %s: %d of %d attempts relayed", relays > 0 ? "OPEN RELAY" : "ok", relays,
           tally.attempts);
    if (tally.local_refused > 0)
        printf("; %d local recipients refused", tally.local_refused);
    printf(" (each asked for %zu IPv4 and %zu IPv6 outside clients)\n", tally.clients[0],
           tally.clients[1]);
    config_unref(cfg);
    buf_free(&err);
    return relays > 0 ? 1 : 0;
}

/* ---- mode B: a live server ---- */

static int relay_test_live(struct live *lv, const char *local, const char *from)
{
    struct live_tally t;
    if (live_battery(lv, local, from, stdout, &t) < 0)
        return EXIT_INCONCLUSIVE;
    printf("verdict: %s: %d of %zu attempts relayed",
           t.relays > 0     ? "OPEN RELAY"
           : t.untested > 0 ? "inconclusive"
                            : "ok",
           t.relays, relay_battery_ncases);
    if (t.untested > 0)
        printf("; %d not tested", t.untested);
    if (t.local_refused > 0)
        printf("; %d local recipients refused", t.local_refused);
    printf("\n");
    return t.relays > 0 ? 1 : t.untested > 0 ? EXIT_INCONCLUSIVE : 0;
}

int cmd_relay_test(int argc, char **argv)
{
    const char *path = NULL, *local = NULL, *from = NULL, *helo = NULL;
    char *target = NULL;
    int nwords = 0;
    const struct command_option opts[] = {
        {"--config", "-c", &path, NULL},
        {"--local-domain", NULL, &local, NULL},
        {"--from", NULL, &from, NULL},
        {"--helo", NULL, &helo, NULL},
    };
    if (command_parse("relay-test", argc, argv, opts, ARRAY_LEN(opts), &target, 1, &nwords) != 0)
        return 2;
    if (target == NULL) {
        if (local != NULL || from != NULL || helo != NULL)
            return command_usage_error("relay-test", "%s goes with HOST:PORT (a live server)",
                                       local  ? "--local-domain"
                                       : from ? "--from"
                                              : "--helo");
        return relay_test_policy(path);
    }
    if (path != NULL)
        return command_usage_error("relay-test", "-c goes without HOST:PORT: test a "
                                                 "configuration file or a live server, not both");
    if (local == NULL)
        return command_usage_error("relay-test",
                                   "missing --local-domain (a domain %s accepts "
                                   "mail for)",
                                   target);

    char hostname[256] = "relay-test.invalid";
    if (helo == NULL) {
        if (gethostname(hostname, sizeof hostname) < 0 || strchr(hostname, '.') == NULL)
            strcpy(hostname, "relay-test.invalid");
        hostname[sizeof hostname - 1] = '\0';
        helo = hostname;
    }
    struct live lv = {.target = target, .helo = helo, .fd = -1};
    if (live_target_split(&lv) < 0)
        return command_usage_error("relay-test",
                                   "'%s' is not HOST:PORT (e.g. mx.example.com:25 "
                                   "or [2001:db8::1]:25)",
                                   target);
    return relay_test_live(&lv, local, from);
}
