/*
 * What smtp_client.c (the session's state machine: connection setup, transactions, the end) and
 * smtp_client_tls.c (its TLS stage: STARTTLS, the handshake, the MTA-STS/TLS policy and DANE
 * checks) share: the state of a session and of its transaction, and the steps both files take.
 * Private to those two files; everyone else uses smtp_client.h.
 */
#ifndef SLUICE_SMTP_CLIENT_INT_H
#define SLUICE_SMTP_CLIENT_INT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/smtp_data.h"
#include "lib/smtp_reply.h"
#include "lib/stream.h"
#include "mta/delivery/dane.h"
#include "mta/delivery/smtp_client.h"
#include "mta/delivery/tls_rpt.h"

enum client_state {
    CS_CONNECTING,
    CS_GREETING,
    CS_EHLO,
    CS_HELO,
    CS_STARTTLS,
    CS_TLS_HANDSHAKE,
    CS_IDLE,        /* READY or TX_DONE delivered: waiting for smtp_client_send or _quit; after
                       a transaction at most timeouts.idle, then QUIT */
    CS_TX_REFUSED,  /* a transaction we will not send: TX_DONE follows from a zero timer */
    CS_ENVELOPE,    /* MAIL, RCPTs and DATA going out, their replies coming back */
    CS_BODY,        /* after 354 (or the RCPT replies, for BDAT): the body in chunks, each after
                       the previous one drained */
    CS_END_OF_DATA, /* the final dot (or BDAT LAST) is queued: waiting for the reply */
    CS_RSET,        /* the transaction failed before DATA: RSET, then TX_DONE */
    CS_QUIT,
    CS_CLOSING, /* handles closing; CLOSED comes from the last close callback */
};

enum rcpt_status { RCPT_PENDING, RCPT_ACCEPTED, RCPT_DECIDED };

struct client_rcpt {
    char *addr; /* owned copy */
    enum rcpt_status status;
    struct smtp_client_outcome out; /* valid once DECIDED; out.text is `text` */
    char *text;                     /* owned */
    unsigned notify;                /* RFC 3461 NOTIFY bits; 0: not given */
    char *orcpt;                    /* RFC 3461 ORCPT "type;address", owned; NULL: not given */
};

struct client_tx {
    char *sender; /* owned copy */
    struct client_rcpt *rcpts;
    size_t nrcpts;
    const struct buf *body; /* borrowed until TX_DONE */
    unsigned flags;         /* SPOOL_ENV_* */
    unsigned ret;           /* RFC 3461 RET (SMTP_DSN_RET_*); 0: not given */
    char *envid;            /* RFC 3461 ENVID, owned; NULL: not given */
    size_t sent;            /* envelope commands written: 0 MAIL, 1..n RCPT, n + 1 DATA */
    size_t replied;         /* replies consumed, numbered the same way */
    size_t accepted;        /* recipients with 250/251 */
    int mail_failed;
    size_t body_off; /* stored bytes encoded so far */
    struct smtp_data_enc enc;
    size_t wire_size;          /* the message as sent, RFC 1870's count: what SIZE= says */
    unsigned chunked : 1;      /* sent with BDAT: the server offers CHUNKING, shaping allows */
    unsigned last_sent : 1;    /* BDAT LAST is queued */
    unsigned chunk_failed : 1; /* a chunk was refused: no more are sent, then RSET */
    size_t chunks_sent;        /* BDAT commands written */
    size_t chunks_replied;     /* their replies read */
};

struct smtp_client {
    uv_loop_t *loop;
    struct stream stream;
    uv_timer_t reply_timer; /* the current step's timeout */
    uv_timer_t pace_timer;  /* waits for rate tokens; defers a locally refused TX_DONE */
    int open_handles;       /* freed when the last of stream and timers has closed */
    enum client_state state;
    smtp_client_cb cb;
    void *arg;
    struct sockaddr_storage dst;
    struct sockaddr_storage src; /* family AF_UNSPEC: not bound */
    char *mx_name, *ehlo;
    char addr_text[INET6_ADDRSTRLEN];
    struct tls_policy tls;
    SSL_CTX *tls_ctx;
    struct dane_peer *dane;      /* NULL: DANE does not apply */
    struct tls_rpt_session *rpt; /* the TLS report this session counts in; NULL: none */
    enum dane_mode dane_mode;    /* once the TLSA answer is in */
    int chunking;                /* BDAT when offered (params->chunking) */
    struct smtp_client_timeouts timeouts;
    smtp_client_pace_cb pace;
    void *pace_arg;
    uint64_t session_id;
    struct smtp_reply_parser parser;
    struct smtp_ehlo caps;
    const char *tls_version; /* static string from OpenSSL once TLS is up */
    unsigned connected : 1;
    unsigned dane_pending : 1; /* the TLSA answer has not come yet */
    unsigned connect_waits : 1; /* no connection before it (smtp_client_open) */
    unsigned hello_waits : 1;  /* EHLO is done and waits for it (client_on_dane) */
    unsigned ready_sent : 1;
    unsigned silent : 1;      /* smtp_client_open failed: no event at all */
    unsigned had_tx : 1;      /* a transaction ended: CS_IDLE waits at most timeouts.idle */
    unsigned idle_closed : 1; /* the peer ended the session while it was idle */
    struct client_tx *tx;
    unsigned messages; /* transactions that reached the end of data */
    /* Why the session ended; code 0 after a clean QUIT. why.text is why_text. */
    struct smtp_client_outcome why;
    char *why_text;
};

/* ---- smtp_client.c ---- */

/* Every state change goes through here: logs it, runs the state's sending step, arms its timer
 * unless that step already moved on to another state. */
void client_enter_state(struct smtp_client *c, enum client_state st);
/* Ends the session (stage NULL: the current one), failing the transaction's undecided recipients
 * with the same outcome; QUIT when polite and still connected, else close at once. */
void client_end(struct smtp_client *c, const char *stage, int code, const char *enhanced,
                int remote, int polite, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Setup is done: IDLE, and READY the first time. */
void client_ready(struct smtp_client *c);
/* Queues one formatted command line; a failure ends the session. */
void client_send_line(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- smtp_client_tls.c ---- */

/* After EHLO or HELO: STARTTLS when offered and wanted, else ready (unless TLS is required). */
void client_after_hello(struct smtp_client *c);
/* CS_STARTTLS: sends the command, reads its reply. */
void client_starttls_enter(struct smtp_client *c);
void client_starttls_on_reply(struct smtp_client *c, const struct smtp_reply *r);
/* CS_TLS_HANDSHAKE: starts TLS on the stream with the SNI and the DANE or policy checks. */
void client_handshake_enter(struct smtp_client *c);
/* After the handshake: 1 when the certificate meets the policy (or a failure is only logged). */
int client_tls_checked(struct smtp_client *c);
/* Counts the session's TLS result in its TLS report (once; nothing when no TLS was tried). */
void client_tls_report(struct smtp_client *c, enum tls_rpt_result result, const char *reason);
/* The TLSA answer for the MX host (dane_peer_new's callback). */
void client_on_dane(void *arg, enum dane_mode mode, const char *why);
/* The TLSA answer let a session that waited for it connect (connect_waits). */
void client_connect_waited(struct smtp_client *c);

#endif
