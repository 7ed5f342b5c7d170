/*
 * One outbound SMTP connection (RFC 5321 client side): connect from a chosen source address,
 * greeting, EHLO (HELO when EHLO is refused), STARTTLS as the shaping rule (or the MX host's DANE
 * TLSA records, looked up while connecting, dane.h) says, then any number
 * of transactions, each with several recipients, then QUIT. Uses PIPELINING when offered (MAIL and
 * the RCPTs in one write, RFC 2920), respects SIZE, 8BITMIME and SMTPUTF8, and times out every
 * step per RFC 5321 §4.5.3.2. The message body is sent as stored with bare CR and bare LF
 * normalised to CRLF and lines dot-stuffed; or, to a server that offers CHUNKING (RFC 3030) when
 * the shaping rule allows, in BDAT chunks without dot-stuffing. SIZE= announces the size as sent.
 *
 * The scheduler decides everything else (which MX, which messages, whether to retry): the client
 * reports one outcome per recipient, and why the connection ended.
 */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/delivery/tls_policy.h"
#include "mta/delivery/tls_rpt.h"

struct smtp_client;

/* RFC 5321 §4.5.3.2 timeouts (ms). The defaults are the RFC's; tests shorten them. */
struct smtp_client_timeouts {
    uint64_t connect;    /* default 30 s (not in the RFC) */
    uint64_t greeting;   /* 5 min */
    uint64_t command;    /* EHLO, STARTTLS, MAIL, RCPT, RSET, QUIT: 5 min */
    uint64_t data_init;  /* reply to DATA: 2 min */
    uint64_t data_block; /* each block of body bytes accepted by the kernel: 3 min */
    uint64_t data_term;  /* reply after the final dot: 10 min */
    /* Not in the RFC: how long the session waits after a transaction for the next one before it
     * QUITs by itself. 0 (the default): until smtp_client_send or smtp_client_quit. */
    uint64_t idle;
};

/* What the client asks before each MAIL and each RCPT, with the loop's time: 0 lets the command go
 * now (and counts it), otherwise the milliseconds to wait before asking again. */
enum smtp_client_pace { SMTP_CLIENT_PACE_MAIL, SMTP_CLIENT_PACE_RCPT };
typedef uint64_t (*smtp_client_pace_cb)(void *arg, enum smtp_client_pace what, uint64_t now_ms);

struct smtp_client_params {
    const struct sockaddr *dst;    /* address and port of the MX host */
    const char *mx_name;           /* host name (SNI, logs); an address literal when no name */
    const struct sockaddr *src;    /* egress address to bind before connect; NULL: any */
    const char *ehlo;              /* our name in EHLO/HELO */
    struct tls_policy tls;         /* STARTTLS or not, certificate checked or not */
    SSL_CTX *tls_ctx;              /* client context (lib/tls.h); NULL: no STARTTLS */
    struct dane *dane;             /* DANE (dane.h) for this host; NULL: off */
    const char *mx_canonical;      /* the end of mx_name's validated CNAME chain, or NULL */
    struct tls_rpt_target tls_rpt; /* where the TLS result is counted (tls_rpt.h); rpt NULL: not */
    int chunking; /* 1: BDAT when the server offers CHUNKING (shaping chunking), else DATA */
    struct smtp_client_timeouts timeouts; /* zero fields take the RFC defaults */
    /* NULL: no pacing. The client waits on a timer while pace says to, so a pacer shared by
     * several connections holds its rate across them. */
    smtp_client_pace_cb pace;
    void *pace_arg;
    uint64_t session_id; /* for log lines */
};

/* One transaction. smtp_client_send copies the addresses and the rcpts array; only the body is
 * borrowed, until its SMTP_CLIENT_TX_DONE. */
struct smtp_client_tx {
    const char *sender; /* "" for the null sender */
    const char *const *rcpts;
    size_t nrcpts;
    const struct buf *body; /* as stored in the spool (header fields, blank line, body) */
    unsigned flags;         /* SPOOL_ENV_8BITMIME, SPOOL_ENV_SMTPUTF8 */
    /* RFC 3461, passed on (xtext-encoded) when the server offers DSN: RET and ENVID on MAIL,
     * NOTIFY and ORCPT ("type;address", decoded) on each RCPT. 0 / NULL: not given. */
    unsigned ret; /* SMTP_DSN_RET_* */
    const char *envid;
    const unsigned *notify;   /* tx.rcpts[i]'s NOTIFY bits, or NULL for none at all */
    const char *const *orcpt; /* tx.rcpts[i]'s ORCPT, or NULL for none at all */
};

/* Why a recipient (or the connection) got the result it got. */
struct smtp_client_outcome {
    int code;          /* the reply code: 250 delivered, 4xx temporary, 5xx permanent */
    char enhanced[16]; /* "5.1.1", from the reply or chosen by Sluice; "" when none */
    const char *stage; /* static: "connect", "greeting", "EHLO" (HELO too), "STARTTLS",
                          "MAIL FROM", "RCPT TO", "DATA", "end of data", "RSET", "QUIT", or
                          "idle" (the peer closed or sent 421 before the first
                          transaction) */
    int remote;        /* 1: the remote server replied this; 0: Sluice decided it (timeout,
                          lost connection, TLS required but not offered, message too big) */
    const char *text;  /* reply text (lines joined with "; ", made printable) or our reason;
                          valid during the callback */
    int dsn_offered;   /* 1: the server offers DSN (RFC 3461), so it was given the recipient's
                          DSN parameters and reports on it from now on */
    int category;      /* a 5xx's bounce category (enum bounce_category), found once when the
                          job is reported (bounce_category_outcomes) and carried to the metrics,
                          the log, the DSN and the suppression list; 0 before */
};

enum smtp_client_event {
    SMTP_CLIENT_READY,   /* greeting, EHLO and TLS done: smtp_client_send may be called; once */
    SMTP_CLIENT_TX_DONE, /* outcomes[i] belongs to tx.rcpts[i]; the client is ready again */
    SMTP_CLIENT_CLOSED,  /* last event; outcomes[0] says why when n == 1 (a failure before READY,
                            a 421, a timeout or a lost connection), n == 0 after a clean QUIT,
                            after timeouts.idle, or when the peer closed (or said 421) while
                            idle after a transaction. The client is freed when the callback
                            returns. */
};

typedef void (*smtp_client_cb)(struct smtp_client *c, enum smtp_client_event ev,
                               const struct smtp_client_outcome *outcomes, size_t n, void *arg);

/* Starts connecting. Returns NULL only when the connection cannot even be started (bad source
 * address, out of sockets): then *why says so and no event follows. */
struct smtp_client *smtp_client_open(uv_loop_t *loop, const struct smtp_client_params *params,
                                     smtp_client_cb cb, void *arg, struct buf *why);

/* Sends one transaction; only after READY or TX_DONE (otherwise it is logged and ignored, and
 * no TX_DONE follows for it). A transaction that the client can tell will fail (larger than the
 * server's SIZE: 552 5.3.4; SMTPUTF8 needed but not offered: 553 5.6.7; an address with CR, LF
 * or angle brackets: 553 5.1.3) is answered with TX_DONE, from a zero timer, without sending it.
 * A transaction with SMTPUTF8 goes to a server that offers it with U-labels in the envelope; to
 * one that does not, with the stored A-labels and without SMTPUTF8 when nothing else (a UTF-8
 * local part or header field) needs it.
 * Never calls back from inside this call. */
void smtp_client_send(struct smtp_client *c, const struct smtp_client_tx *tx);

/* Ends the session politely (QUIT) after READY or TX_DONE; CLOSED follows. */
void smtp_client_quit(struct smtp_client *c);

/* Drops the connection at once (shutdown): a transaction in progress gets TX_DONE with temporary
 * failures (451 4.3.2) from inside this call, then CLOSED (n == 1) follows from the loop. Does
 * nothing once the client is closing. */
void smtp_client_abort(struct smtp_client *c);

/* 1 while the session waits for smtp_client_send (after READY or TX_DONE), not ending. */
int smtp_client_is_idle(const struct smtp_client *c);

/* Capabilities the server announced, valid after READY (for logs and tests). */
unsigned smtp_client_extensions(const struct smtp_client *c);
/* "TLSv1.3" or NULL when the session is in clear. */
const char *smtp_client_tls_version(const struct smtp_client *c);

#endif
