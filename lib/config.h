/*
 * Configuration: one YAML file (or the embedded default) loaded with libyaml into an immutable,
 * reference-counted struct config. Every key comes from the key table in config_keys.h, so parsing,
 * validation, defaults and the reference documentation cannot disagree. A reload builds a new
 * struct and swaps it in whole; sessions keep the one they started with until they end.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"

/* Where a value came from, for messages and for `sluice explain`. */
struct config_pos {
    const char *file; /* points at config.source */
    unsigned line;    /* 1-based; 0 when the value is a default */
    unsigned column;  /* 1-based */
};

enum listener_role {
    LISTENER_INBOUND,    /* accepts mail for `domains` only; never relays */
    LISTENER_SUBMISSION, /* relays for authenticated users and trusted networks */
};

enum listener_tls {
    LISTENER_TLS_STARTTLS, /* STARTTLS offered when tls.certificate is set (the default) */
    LISTENER_TLS_IMPLICIT, /* TLS from the first byte (port 465 style); needs a certificate */
    LISTENER_TLS_NONE,     /* never offer TLS */
};

struct config_listener {
    char *name;
    char *address; /* as written: "127.0.0.1:2525", "[::1]:25" */
    struct sockaddr_storage addr;
    enum listener_role role;
    enum listener_tls tls;
    struct config_pos pos;
};

struct config_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
    char *text; /* as written */
    struct config_pos pos;
};

struct config_domain {
    char *name;       /* lowercased, no trailing dot */
    char *deliver_to; /* NULL: the domain's MX */
    char *recipients; /* NULL: every local part is accepted */
    struct config_pos pos;
};

struct config {
    int refs;
    char *source; /* file path, or "<embedded>" */

    struct {
        char *hostname;             /* default: gethostname() */
        char *spool;                /* default: ./var/spool */
        char *user;                 /* NULL: stay as started */
        char *log_file;             /* "-": stderr */
        uint64_t shutdown_grace_ms; /* SIGTERM: how long transactions in progress may finish */
    } server;

    struct {
        char **servers; /* "host:port" or "host"; none: /etc/resolv.conf */
        size_t nservers;
        uint64_t timeout_ms;
    } dns;

    struct {
        char *certificate; /* NULL: no TLS offered */
        char *key;
    } tls;

    struct config_listener *listeners;
    size_t nlisteners;

    struct {
        struct config_cidr *trusted_networks;
        size_t ntrusted_networks;
        char *users;                 /* NULL: no SMTP AUTH */
        int open_relay_acknowledged; /* relay.i_understand_this_is_an_open_relay: lint problems
                                        are warnings instead of errors */
    } relay;

    struct config_domain *domains;
    size_t ndomains;

    struct {
        uint64_t max_message_size; /* octets; advertised with SIZE */
        unsigned max_recipients_per_message;
        unsigned max_connections;    /* in all, across listeners */
        unsigned max_errors;         /* per session, then 421 and close */
        uint64_t command_timeout_ms; /* RFC 5321 §4.5.3.2.7: 5 minutes */
        uint64_t data_timeout_ms;    /* RFC 5321 §4.5.3.2.6: 3 minutes between data blocks */
    } limits;
};

/* Loads and validates. On error returns -EINVAL (or -errno when the file cannot be read) and writes
 * "file:line:column: message" lines into err; *out is untouched. On success *out has one reference.
 */
int config_load_file(const char *path, struct config **out, struct buf *err);
/* The same for text in memory; `name` stands for the file in messages. */
int config_load_string(const char *text, size_t len, const char *name, struct config **out,
                       struct buf *err);

/* The embedded default configuration's YAML text (listens on 127.0.0.1:2525, relays for localhost
 * only). */
const char *config_default_yaml(void);

/* Appends the reference of every key (name, type, default, bounds, description) as a Markdown
 * table, generated from the key table; `sluice config-keys` prints it for docs/configuration.md. */
void config_describe_keys(struct buf *out);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* Lookups used on every session. */
const struct config_domain *config_domain_find(const struct config *cfg, const char *domain);
/* Non-zero when addr (AF_INET or AF_INET6; v4-mapped v6 counts as v4) is inside a trusted network.
 */
const struct config_cidr *config_trusted_network_match(const struct config *cfg,
                                                       const struct sockaddr *addr);

#endif
