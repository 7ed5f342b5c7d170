/*
 * Inbound SMTP sessions (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8,
 * STARTTLS). A session is a connection plus at most one transaction (MAIL through the end of DATA).
 * Each session holds a reference on the configuration it started with; the listener hands it the
 * accepted socket, policy decides RCPT, and the spool makes the message durable before the 250.
 */
#ifndef SLUICE_SMTP_SERVER_H
#define SLUICE_SMTP_SERVER_H

#include <stdint.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "lib/config.h"
#include "mta/feedback/feedback_alarm.h"
#include "spool/spool.h"

struct smtp_session;
struct spool_space;
struct auth_users;
struct recipients;
struct auth_failures;
struct scheduler;
struct dns_resolver;
struct dkim_signer_set;
struct dkim_checker;
struct verifier;
struct suppression;
struct client_table;
struct public_suffixes;

/* State shared by all sessions; owned by the daemon. */
struct smtp_server {
    uv_loop_t *loop;
    struct config *cfg; /* the configuration new sessions take; the daemon swaps it on reload */
    SSL_CTX *tls_ctx;   /* NULL when no certificate is configured */
    struct spool *spool;
    struct spool_space *space;   /* the spool's free space; the daemon's, NULL once stopping */
    uint64_t low_space_logged;   /* uv_now of the last spool.low_space event, 0: none yet */
    unsigned low_space_refused;  /* MAIL commands refused for space since then */
    unsigned low_space : 1;      /* the last MAIL checked was refused for space */
    struct dns_resolver *dns;    /* c-ares in the loop, shared with delivery; NULL while stopping */
    struct scheduler *scheduler; /* takes every committed message; NULL: messages stay queued */
    struct auth_users *auth_users; /* relay.users loaded; NULL: no AUTH. Swapped on reload */
    struct recipients *recipients; /* domains' recipients tables; NULL: none. Swapped on reload */
    struct auth_failures *auth_failures;   /* failed AUTH attempts per client, across sessions */
    struct client_table *connection_rates; /* inbound: per client, made at first use */
    struct dkim_signer_set *dkim;      /* DKIM signers of cfg (one reference); swapped on reload */
    struct dkim_checker *dkim_checker; /* inbound DKIM verification; NULL: not verified */
    struct verifier *verifier;         /* recipient probes and their cache; NULL: not verified */
    struct suppression *suppression;   /* the suppression list; NULL: relayed mail not checked */
    struct public_suffixes *public_suffixes; /* for DMARC (one reference); NULL: inbound.dmarc
                                              * ignore. Swapped on reload */
    struct feedback_alarm feedback_alarm;    /* reports about mail we never sent, counted */
    struct smtp_session *sessions;           /* every live session, for shutdown */
    unsigned nsessions;
    uint64_t next_session_id;
    unsigned stopping : 1;
    /* Runs when the last session has gone while stopping. */
    void (*on_drained)(struct smtp_server *srv);
};

/* Accepts one pending connection from `listen_handle` for the listener named `listener_name` in
 * srv->cfg and starts its session. Over limits.max_connections the client gets 421 and is closed.
 */
void smtp_session_accept(struct smtp_server *srv, uv_stream_t *listen_handle,
                         const char *listener_name);

/* Begins an orderly stop: sessions without a transaction in progress are told 421 and closed; the
 * others finish their transaction first. on_drained runs once none is left. */
void smtp_server_stop(struct smtp_server *srv);
/* The grace period is over: closes every session now (uncommitted messages are rolled back). */
void smtp_server_close_all(struct smtp_server *srv);

#endif
