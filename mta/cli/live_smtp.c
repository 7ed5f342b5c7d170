/*
 * The blocking SMTP client of mta/cli/live_smtp.h: every step under a socket timeout, a reply read
 * whole (multi-line aware) before the next command, and the relay battery sent over it.
 */
#include "mta/cli/live_smtp.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mta/relay_battery.h"

/* Reconnections allowed in one run: servers close after some number of refused commands. */
#define LIVE_RECONNECTS_MAX 8

const char *live_outcome_word(int must_accept, int accepted)
{
    if (must_accept)
        return accepted ? "accepted-local" : "refused-local";
    return accepted ? "RELAY" : "refused";
}

int live_target_split(struct live *lv)
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

void live_close(struct live *lv)
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
        int textlen = len > 4 ? (int)(len - 4) : 0;
        if (first) {
            lv->code = code;
            snprintf(lv->text, sizeof lv->text, "%.*s", textlen, lv->in + 4);
            lv->lines[0] = '\0';
            first = 0;
        }
        size_t have = strlen(lv->lines);
        snprintf(lv->lines + have, sizeof lv->lines - have, "%s%.*s", have > 0 ? "\n" : "", textlen,
                 lv->in + 4);
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
int live_cmd(struct live *lv, const char *line)
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
int live_open(struct live *lv)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(lv->host, lv->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "sluice: %s: %s\n", lv->target, gai_strerror(rc));
        return -1;
    }
    struct timeval tv = {lv->timeout_s > 0 ? lv->timeout_s : LIVE_TIMEOUT_S, 0};
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
    snprintf(lv->greeting, sizeof lv->greeting, "%s", lv->text);
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

/* One attempt in its own transaction: MAIL, RCPT, RSET. A lost connection (or 421) is retried once
 * on a new connection, since servers close after a number of refused commands. */
enum live_outcome live_attempt(struct live *lv, const char *mail, const char *rcpt, int *reconnects,
                               const char **why)
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

int live_battery(struct live *lv, const char *local, const char *from, FILE *out,
                 struct live_tally *t)
{
    char mail_default[RELAY_BATTERY_ARG_MAX];
    if (from != NULL && from[0] == '<')
        snprintf(mail_default, sizeof mail_default, "FROM:%s", from);
    else if (from != NULL)
        snprintf(mail_default, sizeof mail_default, "FROM:<%s>", from);
    else
        snprintf(mail_default, sizeof mail_default, "FROM:<relay-test@%s>", RELAY_BATTERY_FOREIGN);
    *t = (struct live_tally){0, 0, 0, 0, 0};
    if (live_open(lv) < 0)
        return -1;

    int reconnects = 0;
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
        enum live_outcome res = live_attempt(lv, mail, rcpt, &reconnects, &why);
        if (res == LIVE_UNTESTED) {
            t->untested++;
            if (out != NULL)
                fprintf(out, "%s %s %s untested %s\n", lv->target, rc->name, arg, why);
            continue;
        }
        int accepted = res == LIVE_ACCEPTED;
        t->tested |= (uint64_t)1 << i;
        t->accepted |= (uint64_t)accepted << i;
        t->relays += accepted && !rc->must_accept;
        t->local_refused += !accepted && rc->must_accept;
        if (out != NULL)
            fprintf(out, "%s %s %s %s %d %s\n", lv->target, rc->name, arg,
                    live_outcome_word(rc->must_accept, accepted), lv->code, lv->text);
    }
    if (lv->fd >= 0)
        live_cmd(lv, "QUIT");
    live_close(lv);
    return 0;
}
