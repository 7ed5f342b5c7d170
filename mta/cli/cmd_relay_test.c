/*
 * `sluice relay-test`: the relay battery (mta/relay_battery.h) run two ways. Against a
 * configuration file it asks the policy directly, listener by listener; against HOST:PORT it sends
 * the same attempts over SMTP to any server (never DATA), so an admin can check every MX. A
 * blocking client with timeouts is enough here: this is a one-shot command, not the daemon's loop.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/relay_battery.h"

/* How long any one step (connect, one reply) may take before the server counts as unreachable. */
#define LIVE_TIMEOUT_S 30
/* Reconnections allowed in one run: servers close after some number of refused commands. */
#define LIVE_RECONNECTS_MAX 8

/* Exit status when no attempt relayed but some could not be made at all. */
#define EXIT_INCONCLUSIVE 3

/* ---- mode A: the policy of a configuration file ---- */

struct policy_tally {
    int attempts;
    int local_refused;
    size_t clients[2]; /* outside clients per attempt: IPv4, IPv6 */
};

static const char *outcome_word(int must_accept, int accepted)
{
    if (must_accept)
        return accepted ? "accepted-local" : "refused-local";
    return accepted ? "RELAY" : "refused";
}

static void policy_on_result(const struct relay_result *res, void *arg)
{
    struct policy_tally *tally = arg;
    const struct policy_decision *d = &res->decision;
    int v6 = strchr(res->client, ':') != NULL;
    tally->attempts++;
    tally->local_refused += res->rcase->must_accept && !res->accepted;
    tally->clients[v6] = res->nclients;
    printf("%s %s %s %s %s %d %s", res->listener->name, res->client, res->rcase->name,
           res->rcpt_arg, outcome_word(res->rcase->must_accept, res->accepted), d->code, d->rule);
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

struct live {
    const char *target; /* "HOST:PORT" as given */
    char host[256];
    char port[16];
    const char *helo;
    int fd;        /* -1 when not connected */
    char in[4096]; /* received, not yet consumed */
    size_t inlen;
    int code;       /* the last reply */
    char text[512]; /* its first line's text */
};

static int target_split(struct live *lv)
{
    const char *t = lv->target, *colon;
    size_t hostlen;
    if (t[0] == '[') {
        const char *close = strchr(t, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hostlen = (size_t)(close - t - 1);
        t++;
        colon = close + 1;
    } else {
        colon = strrchr(t, ':');
        if (colon == NULL)
            return -1;
        hostlen = (size_t)(colon - t);
    }
    if (hostlen == 0 || hostlen >= sizeof lv->host || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof lv->port)
        return -1;
    memcpy(lv->host, t, hostlen);
    lv->host[hostlen] = '\0';
    strcpy(lv->port, colon + 1);
    return 0;
}

static void live_close(struct live *lv)
{
    if (lv->fd >= 0)
        close(lv->fd);
    lv->fd = -1;
    lv->inlen = 0;
}

/* Reads one whole reply (multi-line aware) into lv->code and lv->text. Returns 0, or -1 when the
 * connection closed, timed out or sent something that is not a reply (then it is closed). */
static int live_reply(struct live *lv)
{
    for (int first = 1;;) {
        char *nl = memchr(lv->in, '\n', lv->inlen);
        if (nl == NULL) {
            if (lv->inlen == sizeof lv->in)
                goto broken;
            ssize_t n = recv(lv->fd, lv->in + lv->inlen, sizeof lv->in - lv->inlen, 0);
            if (n <= 0)
                goto broken;
            lv->inlen += (size_t)n;
            continue;
        }
        size_t len = (size_t)(nl - lv->in);
        if (len > 0 && lv->in[len - 1] == '\r')
            len--;
        if (len < 3 || lv->in[0] < '2' || lv->in[0] > '5' || !isdigit((unsigned char)lv->in[1]) ||
            !isdigit((unsigned char)lv->in[2]) || (len > 3 && lv->in[3] != ' ' && lv->in[3] != '-'))
            goto broken;
        int code = (lv->in[0] - '0') * 100 + (lv->in[1] - '0') * 10 + (lv->in[2] - '0');
        int last = len == 3 || lv->in[3] == ' ';
        if (first) {
            lv->code = code;
            snprintf(lv->text, sizeof lv->text, "%.*s", len > 4 ? (int)(len - 4) : 0, lv->in + 4);
            first = 0;
        }
        size_t used = (size_t)(nl - lv->in) + 1;
        memmove(lv->in, lv->in + used, lv->inlen - used);
        lv->inlen -= used;
        if (last)
            return 0;
    }
broken:
    live_close(lv);
    return -1;
}

/* Sends one command line and reads its reply; -1 as for live_reply. */
static int live_cmd(struct live *lv, const char *line)
{
    char out[RELAY_BATTERY_ARG_MAX + 16];
    int n = snprintf(out, sizeof out, "%s\r\n", line);
    if (n < 0 || (size_t)n >= sizeof out || send(lv->fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
        live_close(lv);
        return -1;
    }
    return live_reply(lv);
}

/* Connects, reads the greeting and says EHLO (HELO when EHLO is refused). Returns 0, or -1 with a
 * reason on stderr. */
static int live_open(struct live *lv)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(lv->host, lv->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "sluice: %s: %s\n", lv->target, gai_strerror(rc));
        return -1;
    }
    struct timeval tv = {LIVE_TIMEOUT_S, 0};
    int saved = 0;
    for (ai = res; ai != NULL && lv->fd < 0; ai = ai->ai_next) {
        lv->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (lv->fd < 0)
            continue;
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        setsockopt(lv->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(lv->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(lv->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            saved = errno;
            live_close(lv);
        }
    }
    freeaddrinfo(res);
    if (lv->fd < 0) {
        fprintf(stderr, "sluice: %s: cannot connect: %s\n", lv->target, strerror(saved));
        return -1;
    }
    if (live_reply(lv) < 0 || lv->code / 100 != 2) {
        fprintf(stderr, "sluice: %s: no greeting (%d %s)\n", lv->target, lv->fd < 0 ? 0 : lv->code,
                lv->fd < 0 ? "connection lost" : lv->text);
        live_close(lv);
        return -1;
    }
    char line[300];
    snprintf(line, sizeof line, "EHLO %s", lv->helo);
    if (live_cmd(lv, line) == 0 && lv->code / 100 != 2) {
        snprintf(line, sizeof line, "HELO %s", lv->helo);
        live_cmd(lv, line);
    }
    if (lv->fd < 0 || lv->code / 100 != 2) {
        fprintf(stderr, "sluice: %s: EHLO and HELO refused (%d %s)\n", lv->target, lv->code,
                lv->text);
        live_close(lv);
        return -1;
    }
    return 0;
}

enum live_outcome { LIVE_REFUSED, LIVE_ACCEPTED, LIVE_UNTESTED };

/* One attempt in its own transaction: MAIL, RCPT, RSET. A lost connection (or 421) is retried once
 * on a new connection, since servers close after a number of refused commands. */
static enum live_outcome live_attempt(struct live *lv, const char *mail, const char *rcpt,
                                      int *reconnects, const char **why)
{
    for (int tries = 0; tries < 2; tries++) {
        if (lv->fd < 0) {
            if (*reconnects >= LIVE_RECONNECTS_MAX || live_open(lv) < 0) {
                *why = "no connection";
                return LIVE_UNTESTED;
            }
            ++*reconnects;
        }
        if (live_cmd(lv, mail) < 0 || lv->code == 421) {
            live_close(lv);
            continue;
        }
        if (lv->code / 100 != 2) {
            *why = "MAIL refused";
            live_cmd(lv, "RSET");
            return LIVE_UNTESTED;
        }
        if (live_cmd(lv, rcpt) < 0 || lv->code == 421) {
            live_close(lv);
            continue;
        }
        int accepted = lv->code / 100 == 2;
        int code = lv->code;
        char text[sizeof lv->text];
        memcpy(text, lv->text, sizeof text);
        if (live_cmd(lv, "RSET") < 0 || lv->code / 100 != 2)
            live_close(lv);
        lv->code = code;
        memcpy(lv->text, text, sizeof text);
        return accepted ? LIVE_ACCEPTED : LIVE_REFUSED;
    }
    *why = "connection lost";
    return LIVE_UNTESTED;
}

static int relay_test_live(struct live *lv, const char *local, const char *from)
{
    char mail_default[RELAY_BATTERY_ARG_MAX];
    if (from != NULL && from[0] == '<')
        snprintf(mail_default, sizeof mail_default, "FROM:%s", from);
    else if (from != NULL)
        snprintf(mail_default, sizeof mail_default, "FROM:<%s>", from);
    else
        snprintf(mail_default, sizeof mail_default, "FROM:<relay-test@%s>", RELAY_BATTERY_FOREIGN);
    if (live_open(lv) < 0)
        return EXIT_INCONCLUSIVE;

    int relays = 0, untested = 0, local_refused = 0, reconnects = 0;
    for (size_t i = 0; i < relay_battery_ncases; i++) {
        const struct relay_case *rc = &relay_battery_cases[i];
        char mail[RELAY_BATTERY_ARG_MAX + 8], rcpt[RELAY_BATTERY_ARG_MAX + 8];
        char arg[RELAY_BATTERY_ARG_MAX];
        relay_battery_expand(rc->mail_arg ? rc->mail_arg : mail_default, local,
                             RELAY_BATTERY_FOREIGN, arg, sizeof arg);
        snprintf(mail, sizeof mail, "MAIL %s", arg);
        relay_battery_expand(rc->rcpt_arg, local, RELAY_BATTERY_FOREIGN, arg, sizeof arg);
        snprintf(rcpt, sizeof rcpt, "RCPT %s", arg);

        const char *why = NULL;
        enum live_outcome out = live_attempt(lv, mail, rcpt, &reconnects, &why);
        if (out == LIVE_UNTESTED) {
            untested++;
            printf("%s %s %s untested %s\n", lv->target, rc->name, arg, why);
            continue;
        }
        int accepted = out == LIVE_ACCEPTED;
        relays += accepted && !rc->must_accept;
        local_refused += !accepted && rc->must_accept;
        printf("%s %s %s %s %d %s\n", lv->target, rc->name, arg,
               outcome_word(rc->must_accept, accepted), lv->code, lv->text);
    }
    if (lv->fd >= 0)
        live_cmd(lv, "QUIT");
    live_close(lv);

    printf("verdict: %s: %d of %zu attempts relayed",
           relays > 0     ? "OPEN RELAY"
           : untested > 0 ? "inconclusive"
                          : "ok",
           relays, relay_battery_ncases);
    if (untested > 0)
        printf("; %d not tested", untested);
    if (local_refused > 0)
        printf("; %d local recipients refused", local_refused);
    printf("\n");
    return relays > 0 ? 1 : untested > 0 ? EXIT_INCONCLUSIVE : 0;
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
    if (target_split(&lv) < 0)
        return command_usage_error("relay-test",
                                   "'%s' is not HOST:PORT (e.g. mx.example.com:25 "
                                   "or [2001:db8::1]:25)",
                                   target);
    return relay_test_live(&lv, local, from);
}
