/*
 * The inside of an inbound SMTP session, in layers: smtp_session.c (the connection: state,
 * replies, input flow, deadlines, lifetime) under smtp_greet.c (before the banner), smtp_auth.c
 * (AUTH), smtp_server_tx.c (the transaction: MAIL, RCPT, DATA and the body sinks), smtp_chunking.c
 * (BDAT) and, on top,
 * smtp_server.c (accept, the command table, reading input). Nothing else includes this header.
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
#include "mta/server/body_sink.h"
#include "mta/server/smtp_server.h"
#include "mta/server/smtp_tx_dsn.h"
#include "policy/policy.h"

struct dnsbl_check;
struct reverse_dns_check;
struct spf_check;
struct sender_domain_check;
struct verify_check;
struct header_filter;

/* Where the session is in the protocol, as the client has been told: what its next line means. */
enum smtp_phase {
    SMTP_PHASE_CONNECTED, /* no HELO/EHLO yet (nor a banner while the session waits for it) */
    SMTP_PHASE_GREETED,   /* HELO/EHLO answered, no transaction */
    SMTP_PHASE_MAIL,      /* MAIL accepted, no recipient yet */
    SMTP_PHASE_RCPT,      /* at least one recipient accepted */
    SMTP_PHASE_DATA,      /* reading the message */
    SMTP_PHASE_CHUNK,     /* reading the octets of a BDAT chunk (tx->chunk_left) */
    SMTP_PHASE_BDAT,      /* a chunk accepted, not the LAST: only BDAT (or RSET, ...) goes on */
    SMTP_PHASE_AUTH,      /* 334 sent: the next line is an AUTH response (smtp_auth.c) */
    SMTP_PHASE_CLOSING,   /* last reply queued; closing once it is written */
};

/* What the session waits for before it reads the client's next line: its own work (input paused),
 * a TLS handshake, or the moment for the banner (a client that talks then fails the pregreet
 * test). */
enum smtp_wait {
    SMTP_WAIT_NONE,        /* nothing: reading */
    SMTP_WAIT_TLS,         /* implicit TLS: the handshake before the banner */
    SMTP_WAIT_BANNER,      /* inbound: the wait before the banner (pregreet test, DNSBL, rDNS) */
    SMTP_WAIT_STARTTLS,    /* 220 sent to STARTTLS: the handshake */
    SMTP_WAIT_MAIL_CHECK,  /* inbound: the checks of the sender of MAIL (domain, SPF) */
    SMTP_WAIT_AUTH_CHECK,  /* the password check (thread pool) or the delay after it */
    SMTP_WAIT_END_OF_DATA, /* the message's sinks finish: checks, signing, the spool's commit */
};

/* How a phase reads the client's input, once the session waits for nothing. */
enum smtp_input {
    SMTP_INPUT_NONE,     /* nothing more is read */
    SMTP_INPUT_COMMAND,  /* command lines, dispatched through the command table */
    SMTP_INPUT_RESPONSE, /* one line answering a 334 challenge (smtp_auth_line) */
    SMTP_INPUT_MESSAGE,  /* message data up to the final dot (smtp_tx_data_feed) */
    SMTP_INPUT_CHUNK,    /* the rest of a BDAT chunk (smtp_tx_chunk_feed) */
    SMTP_INPUT_DISCARD,  /* the rest of a refused BDAT chunk, dropped (smtp_discard_feed) */
};

/* Stop reading while this much of our output waits for a client that does not read its replies. */
#define SMTP_OUT_HIGH_WATER (64 * 1024)

struct smtp_session;

/* What the connection asks of the layers above it (smtp_server.c sets them at accept). */
struct smtp_session_ops {
    void (*process)(struct smtp_session *s);          /* work through the input held in s->in */
    void (*drop_transaction)(struct smtp_session *s); /* roll it back: closing after the reply */
    void (*release)(struct smtp_session *s); /* closed: let go of all in flight (no reply) */
};

/* The transaction: made at MAIL, freed at RSET, end of DATA, STARTTLS or disconnect. */
struct trace_header;
struct rcpt_lookup;
struct rcpt_ahead;
struct smtp_tx_suppress;

struct smtp_tx {
    char *sender; /* canonical, "" for <> */
    char **rcpts; /* canonical recipients accepted so far */
    size_t nrcpts;
    size_t nrcpts_rejected;
    size_t nrcpts_dropped;  /* answered 250 and left out (suppression drop mode) */
    unsigned env_flags;     /* SPOOL_ENV_* */
    uint64_t declared_size; /* SIZE= on MAIL, 0 when absent */
    struct smtp_tx_dsn dsn; /* RFC 3461 parameters, in step with rcpts */
    int64_t received_at;    /* unix seconds, set at DATA */
    uint64_t data_deadline; /* uv_now by which the final dot must come (limits.data_deadline) */
    char queue_id[SPOOL_ID_MAX + 1]; /* from DATA on */
    struct smtp_data decoder;
    uint64_t body_size;      /* decoded octets the client sent */
    uint64_t chunk_size;     /* BDAT: the size of the chunk being read */
    uint64_t chunk_left;     /* BDAT: its octets not read yet */
    unsigned chunk_last : 1; /* BDAT: it is the LAST */
    unsigned too_big : 1;    /* over limits.max_message_size: the rest is read and dropped */
    unsigned report : 1;     /* for feedback addresses: read as a report, not spooled */
    struct body_sinks sinks; /* from DATA on: what consumes the message (smtp_sinks.h) */
    struct body_sink *store; /* the spool's sink (a report's: the report sink), the last in sinks;
                                NULL before DATA */
    struct spf_check *spf;   /* inbound: SPF of the sender (inbound.spf not ignore), else NULL */
    const struct spf_result *spf_result;      /* its result once in, inside spf, else NULL */
    struct sender_domain_check *sender_check; /* inbound: the sender domain's MX lookup */
    struct verify_check *verify; /* inbound: RCPT waiting for recipient verification, else NULL */
    struct rcpt_lookup *suppression_lookup; /* relayed: RCPT waiting for the suppression list */
    struct rcpt_ahead *suppression_ahead;   /* its answers for the RCPTs pipelined behind it */
    char *auth_results; /* inbound: "spf=... smtp.mailfrom=..." for Authentication-Results */
    struct header_filter *ar_filter; /* inbound: drops forged A-R fields naming us */
    /* Reads the tenancy fields (relayed mail) and removes them (all mail); relayed mail also gets
     * X-Sluice-Trace and Feedback-ID. NULL for a report. */
    struct trace_header *trace;
    /* The spool's message (the store owns it): its envelope is written again with the tenant and
     * the campaign the header section named, before the first byte of the message is. */
    struct spool_msg *msg;
    struct buf front;        /* our Received:, held until then */
    unsigned front_sent : 1; /* the envelope is final and front went to the sinks */
    /* Relayed mail whose header section named its tenant: that tenant's suppression list, read
     * before the envelope is final (smtp_tx_suppress.h); the message's bytes wait in held
     * meanwhile, and its end in end_waits. */
    struct smtp_tx_suppress *suppress;
    struct buf held;
    unsigned end_waits : 1;
    unsigned unstored : 1; /* the list left no recipient, or the 451 of an unreadable list */
};

struct smtp_session {
    struct stream stream; /* embedded; owns the socket */
    uv_timer_t timer;     /* deadlines (smtp_arm_timer), or the wait before the banner */
    struct smtp_server *srv;
    const struct smtp_session_ops *ops;
    struct config *cfg;                     /* our reference, taken at connect */
    const struct config_listener *listener; /* inside cfg */
    struct smtp_session *prev, *next;       /* srv->sessions */
    uint64_t id;
    uint64_t lifetime_ends; /* uv_now after which the next command gets 421 (session_lifetime) */
    struct sockaddr_storage peer;
    char client_addr[INET6_ADDRSTRLEN];

    enum smtp_phase phase;
    enum smtp_wait wait;
    char *helo;                /* argument of the last HELO/EHLO */
    unsigned esmtp : 1;        /* EHLO (not HELO) was used */
    unsigned tls : 1;          /* TLS is up */
    unsigned reading : 1;      /* we want input (the stream may still be paused for backpressure) */
    unsigned sinks_paused : 1; /* input paused because a body sink asked the writer to wait */
    unsigned closed : 1;       /* stream_close called */
    unsigned errors;
    int pending; /* open handles + work in flight that reports to it; freed at 0 */

    struct linereader lines;
    /* While a command line is dispatched: the input after it, received with it (borrowed for
     * the call), which the RCPT of a pipelined group looks ahead into. */
    struct smtp_slice ahead;
    struct buf in;  /* received bytes not yet processed */
    struct buf out; /* replies not yet handed to the stream */
    struct smtp_tx *tx;
    char *auth_user;        /* name from the users file after a successful AUTH, else NULL */
    struct smtp_auth *auth; /* AUTH exchange in progress (smtp_auth.c), else NULL */
    /* A refused BDAT: its chunk's octets are read and dropped, then the refusal is sent. */
    struct {
        uint64_t left; /* octets still to drop; SMTP_INPUT_DISCARD while not 0 */
        int code;
        const char *enhanced, *text; /* static */
        unsigned peer_error : 1;     /* counts as an error of the client */
    } discard;

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

/* smtp_session.c */
/* The one state transition: the session is in `phase` and waits for `wait` (logged as smtp.state
 * at debug level). */
void smtp_set_state(struct smtp_session *s, enum smtp_phase phase, enum smtp_wait wait);
/* What the session reads next: SMTP_INPUT_NONE while it waits. */
enum smtp_input smtp_session_input(const struct smtp_session *s);
/* The session reads a message: DATA's, or a BDAT chunk. */
int smtp_reading_message(const struct smtp_session *s);
/* The session waits for a command line (or an AUTH response). */
int smtp_awaiting_line(const struct smtp_session *s);
/* What was read before the wait began is not to be executed (plaintext after STARTTLS). */
int smtp_session_drops_input(const struct smtp_session *s);
void smtp_reply(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Counts an error of the peer (a bad or misplaced command); returns 1 (and has replied 421 and
 * begun closing) when it was one too many (limits.max_errors). */
int smtp_peer_error(struct smtp_session *s);
void smtp_flush(struct smtp_session *s);
void smtp_close_after_reply(struct smtp_session *s);
void smtp_resume_input(struct smtp_session *s);
void smtp_pause_input(struct smtp_session *s);
/* The session waits for the client: arms the deadline of what it waits for (a command line, the
 * next data, a TLS handshake). Does nothing in states where it waits for itself. */
void smtp_arm_timer(struct smtp_session *s);
/* limits.session_lifetime is over: the next command gets 421. */
int smtp_lifetime_over(const struct smtp_session *s);
/* A deadline passed: 421 4.4.2 (RFC 3463 X.4.2, bad connection), and the session ends. An
 * uncommitted message is rolled back; a committed one has had its 250 already. */
void smtp_session_expire(struct smtp_session *s, const char *limit, const char *what);
void smtp_session_ref(struct smtp_session *s);
void smtp_session_unref(struct smtp_session *s);
/* Closes the connection now (ops->release first); freed once the handles and the references
 * held for work in flight are gone. */
void smtp_session_close(struct smtp_session *s);

/* smtp_server_tx.c: MAIL, RCPT and DATA, called by the command table in the phases it allows
 * them; smtp_data_check answers DATA's argument before the phase is looked at. */
void smtp_cmd_mail(struct smtp_session *s, struct smtp_slice arg);
void smtp_cmd_rcpt(struct smtp_session *s, struct smtp_slice arg);
int smtp_data_check(struct smtp_session *s, struct smtp_slice arg);
void smtp_cmd_data(struct smtp_session *s, struct smtp_slice arg);
/* Feeds message bytes in DATA state; returns how many were used (the rest follows the final dot).
 */
size_t smtp_tx_data_feed(struct smtp_session *s, const char *data, size_t len);
/* The message's body, as DATA and BDAT share it: smtp_tx_body_start makes the spool file and the
 * sinks and writes our Received: (0, or -1 when the spool file could not be made); body_write
 * takes the client's message octets; body_end, once the message is complete, finishes the sinks
 * and the reply follows (after the commit). */
int smtp_tx_body_start(struct smtp_session *s);
void smtp_tx_body_write(struct smtp_session *s, const char *data, size_t len);
void smtp_tx_body_end(struct smtp_session *s);
void smtp_tx_free(struct smtp_session *s);

/* smtp_chunking.c: BDAT (RFC 3030), allowed in every phase that reads commands, as its chunk must
 * be read whatever the answer; the feeds take the chunk's octets and return how many they used. */
void smtp_cmd_bdat(struct smtp_session *s, struct smtp_slice arg);
size_t smtp_tx_chunk_feed(struct smtp_session *s, const char *data, size_t len);
size_t smtp_discard_feed(struct smtp_session *s, const char *data, size_t len);
/* Logs smtp.rejected: the stage, the reply, the rule that decided and the address if any. */
void smtp_log_rejected(struct smtp_session *s, const char *stage, int code, const char *text,
                       const char *rule, const char *addr);

#endif
