/*
 * A blocking SMTP client for the commands that probe a live server from outside (`sluice
 * relay-test HOST:PORT`, `sluice audit-mx`): connect, greeting, EHLO, one command and its reply at
 * a time, each step under a timeout, and the relay battery (mta/relay_battery.h) sent over it
 * (never DATA). A one-shot command needs no event loop. The caller owns the struct live.
 */
#ifndef SLUICE_LIVE_SMTP_H
#define SLUICE_LIVE_SMTP_H

#include <stdint.h>
#include <stdio.h>

/* How long any one step (connect, one reply) may take by default. */
#define LIVE_TIMEOUT_S 30

struct live {
    const char *target; /* "HOST:PORT" as shown in messages */
    char host[256];
    char port[16];
    const char *helo;
    int timeout_s; /* per step; 0 means LIVE_TIMEOUT_S */
    int fd;        /* -1 when not connected */
    char in[4096]; /* received, not yet consumed */
    size_t inlen;
    int code;           /* the last reply */
    char text[512];     /* its first line's text */
    char lines[2048];   /* its every line's text, '\n'-separated (EHLO capabilities) */
    char greeting[512]; /* the text of the last greeting */
};

/* Splits lv->target ("host:port", "[v6]:port") into host and port: 0, or -1 when malformed. */
int live_target_split(struct live *lv);
/* Connects, reads the greeting and says EHLO (HELO when EHLO is refused); lv->lines then holds
 * the EHLO reply. Returns 0, or -1 with a reason on stderr. */
int live_open(struct live *lv);
/* Sends one command line and reads its reply: 0, or -1 when the connection was lost (closed). */
int live_cmd(struct live *lv, const char *line);
void live_close(struct live *lv);

enum live_outcome { LIVE_REFUSED, LIVE_ACCEPTED, LIVE_UNTESTED };

/* One attempt in its own transaction: MAIL, RCPT, RSET, reconnecting (counted in *reconnects)
 * when the connection was lost. *why says why an attempt is LIVE_UNTESTED. */
enum live_outcome live_attempt(struct live *lv, const char *mail, const char *rcpt, int *reconnects,
                               const char **why);

/* What the battery found: bit i of a mask stands for relay_battery_cases[i]. */
struct live_tally {
    int relays, untested, local_refused;
    uint64_t accepted, tested;
};

/* Sends every case of the battery (local: the domain the server takes mail for; from: the MAIL
 * FROM address, NULL for an outside one) on a connection opened by live_open, one line per
 * attempt to out (when not NULL), and closes it. Returns -1 when it could not connect. */
int live_battery(struct live *lv, const char *local, const char *from, FILE *out,
                 struct live_tally *t);
/* "accepted-local", "refused-local", "RELAY" or "refused". */
const char *live_outcome_word(int must_accept, int accepted);

#endif
