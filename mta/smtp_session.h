/*
 * The inside of an inbound SMTP session, shared by smtp_server.c (connection, I/O, command
 * dispatch) and smtp_server_tx.c (the transaction: MAIL, RCPT, DATA and the spool). Nothing else
 * includes this header.
 */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/linereader.h"
#include "lib/smtp_cmd.h"
#include "lib/smtp_data.h"
#include "lib/stream.h"
#include "mta/smtp_server.h"
#include "policy/policy.h"

struct dkim_stream;
struct dnsbl_check;
struct reverse_dns_check;
struct spf_check;
struct sender_domain_check;
struct verify_check;
struct mime_parser;
struct clamd_scan;
struct header_filter;

enum smtp_state {
    SMTP_STATE_TLS_WAIT,   /* implicit TLS: handshake before the banner */
    SMTP_STATE_GREET_WAIT, /* inbound: before the banner (pregreet test, DNSBL and rDNS lookups) */
    SMTP_STATE_CONNECTED,  /* banner sent, no HELO/EHLO yet */
    SMTP_STATE_READY,      /* greeted, no transaction */
    SMTP_STATE_MAIL_CHECK, /* inbound: SPF for MAIL in progress, input paused */
    SMTP_STATE_MAIL,       /* MAIL accepted, no recipient yet */
    SMTP_STATE_RCPT,       /* at least one recipient accepted */
    SMTP_STATE_DATA,       /* reading the message */
    SMTP_STATE_SCAN,       /* inbound: clamd and DKIM verification examine the message */
    SMTP_STATE_COMMIT,     /* waiting for the spool to make the message durable */
    SMTP_STATE_STARTTLS,   /* 220 sent, TLS handshake in progress */
    SMTP_STATE_AUTH,       /* 334 sent: the next line is an AUTH response (smtp_auth.c) */
    SMTP_STATE_AUTH_CHECK, /* password check (thread pool) or its delay: input paused */
    SMTP_STATE_CLOSING,    /* last reply queued; closing once it is written */
};

/* The transaction: made at MAIL, freed at RSET, end of DATA, STARTTLS or disconnect. */
struct smtp_tx {
    char *sender; /* canonical, "" for <> */
    char **rcpts; /* canonical recipients accepted so far */
    size_t nrcpts;
    size_t nrcpts_rejected;
    unsigned env_flags;     /* SPOOL_ENV_* */
    uint64_t declared_size; /* SIZE= on MAIL, 0 when absent */
    int64_t received_at;    /* unix seconds, set at DATA */
    uint64_t data_deadline; /* uv_now by which the final dot must come (limits.data_deadline) */
    struct spool_msg *msg;  /* from DATA on */
    struct smtp_data decoder;
    uint64_t body_size;       /* decoded octets the client sent */
    unsigned too_big : 1;     /* over limits.max_message_size: the rest is read and dropped */
    struct dkim_stream *dkim; /* signing what is spooled (relay-authorized sender), else NULL */
    unsigned spool_full : 1;  /* the spool asked us to stop writing */
    unsigned dkim_full : 1;   /* the DKIM stream asked us to stop writing */
    struct spf_check *spf;    /* inbound: SPF of the sender (inbound.spf not ignore), else NULL */
    struct sender_domain_check *sender_check; /* inbound: the sender domain's MX lookup */
    struct verify_check *verify; /* inbound: RCPT waiting for recipient verification, else NULL */
    char *auth_results; /* inbound: "spf=... smtp.mailfrom=..." for Authentication-Results */
    struct dkim_check *dkim_check; /* inbound: verifying the sender's DKIM signatures, else NULL */
    unsigned dkim_check_full : 1;  /* the DKIM check asked us to stop writing */
    struct buf ar_field; /* inbound: the Authentication-Results field, made at the end of data */
    struct mime_parser *mime;        /* inbound: attachment check of the message, else NULL */
    struct clamd_scan *clamd;        /* inbound: the message streamed to clamd, else NULL */
    unsigned clamd_full : 1;         /* clamd's queue asked us to stop writing */
    struct header_filter *ar_filter; /* inbound: drops forged A-R fields naming us */
};

struct smtp_session {
    struct stream stream; /* embedded; owns the socket */
    uv_timer_t timer;     /* deadlines (smtp_arm_timer), or the wait before the banner */
    struct smtp_server *srv;
    struct config *cfg;                     /* our reference, taken at connect */
    const struct config_listener *listener; /* inside cfg */
    struct smtp_session *prev, *next;       /* srv->sessions */
    uint64_t id;
    uint64_t lifetime_ends; /* uv_now after which the next command gets 421 (session_lifetime) */
    struct sockaddr_storage peer;
    char client_addr[INET6_ADDRSTRLEN];

    enum smtp_state state;
    char *helo;           /* argument of the last HELO/EHLO */
    unsigned esmtp : 1;   /* EHLO (not HELO) was used */
    unsigned tls : 1;     /* TLS is up */
    unsigned reading : 1; /* we want input (the stream may still be paused for backpressure) */
    unsigned spool_paused : 1;
    unsigned closed : 1; /* stream_close called */
    unsigned errors;
    int pending; /* open handles + commits in flight; freed at 0 */

    struct linereader lines;
    struct buf in;  /* received bytes not yet processed */
    struct buf out; /* replies not yet handed to the stream */
    struct smtp_tx *tx;
    char *auth_user;        /* name from the users file after a successful AUTH, else NULL */
    struct smtp_auth *auth; /* AUTH exchange in progress (smtp_auth.c), else NULL */

    /* Inbound checks started at connect; their verdicts are given at RCPT. */
    unsigned inbound : 1;  /* the listener's role is inbound: the MX checks apply */
    uint64_t connected_at; /* uv_now at accept, for the wait before the banner */
    struct dnsbl_check *dnsbl;
    unsigned dnsbl_done : 1;
    struct reverse_dns_check *rdns;
    unsigned rdns_done : 1;
    struct policy_decision rdns_verdict; /* valid once rdns_done */
    unsigned no_resolver : 1;            /* checks were due but srv->dns was gone */
};

/* smtp_server.c */
void smtp_set_state(struct smtp_session *s, enum smtp_state state);
void smtp_reply(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Counts a client error; returns 1 (and has replied 421 and begun closing) when it was one too
 * many. */
int smtp_client_error(struct smtp_session *s);
void smtp_flush(struct smtp_session *s);
void smtp_close_after_reply(struct smtp_session *s);
void smtp_resume_input(struct smtp_session *s);
void smtp_pause_input(struct smtp_session *s);
/* The session waits for the client: arms the deadline of what it waits for (a command line, the
 * next data, a TLS handshake). Does nothing in states where it waits for itself. */
void smtp_arm_timer(struct smtp_session *s);
void smtp_session_ref(struct smtp_session *s);
void smtp_session_unref(struct smtp_session *s);

/* smtp_server_tx.c */
void smtp_cmd_mail(struct smtp_session *s, struct smtp_slice arg);
void smtp_cmd_rcpt(struct smtp_session *s, struct smtp_slice arg);
void smtp_cmd_data(struct smtp_session *s, struct smtp_slice arg);
/* Feeds message bytes in DATA state; returns how many were used (the rest follows the final dot).
 */
size_t smtp_tx_data_feed(struct smtp_session *s, const char *data, size_t len);
void smtp_tx_free(struct smtp_session *s);
/* Logs smtp.rejected: the stage, the reply, the rule that decided and the address if any. */
void smtp_log_rejected(struct smtp_session *s, const char *stage, int code, const char *text,
                       const char *rule, const char *addr);

#endif
