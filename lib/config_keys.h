/*
 * The configuration key table: each key's dotted name, type, default, bounds and one-line doc, and
 * where its value goes. config.c parses, validates and fills in defaults from this table alone, and
 * renders it as the reference (`sluice config-keys`, docs/configuration.md), so they cannot
 * disagree. Included by config.c only. Adding a key: a field in struct config (config.h) and one
 * row here.
 */
#ifndef SLUICE_CONFIG_KEYS_H
#define SLUICE_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

enum config_key_type {
    CONFIG_SECTION,   /* a mapping of the keys named "<this key>.<child>" */
    CONFIG_STRING,    /* char *; NULL when unset */
    CONFIG_PATH,      /* char *, a file or directory name */
    CONFIG_SIZE,      /* uint64_t octets: "50M", "10k", "1G" (K = 1024) or a plain number */
    CONFIG_DURATION,  /* uint64_t milliseconds: "500ms", "30s", "5m", "1h", "2d"; plain = seconds */
    CONFIG_UINT,      /* unsigned */
    CONFIG_ENUM,      /* int: the index of the value in `names` */
    CONFIG_STRINGS,   /* char ** at offset, size_t count at aux */
    CONFIG_CIDRS,     /* struct config_cidr * at offset, size_t count at aux */
    CONFIG_ADDRESS,   /* char * as written at offset, struct sockaddr_storage at aux */
    CONFIG_LISTENERS, /* struct config's listeners: a list of mappings of "listeners[].*" keys */
    CONFIG_DOMAINS,   /* struct config's domains: domain -> nothing or a mapping of "domains.*.*" */
};

/* The struct that a key's offsets are relative to. */
enum config_scope {
    CONFIG_SCOPE_CONFIG,   /* struct config */
    CONFIG_SCOPE_LISTENER, /* struct config_listener */
    CONFIG_SCOPE_DOMAIN,   /* struct config_domain */
};

#define CONFIG_KEY_REQUIRED 1u   /* no default: leaving it out is an error */
#define CONFIG_NO_FIELD SIZE_MAX /* the value is validated but not stored */

struct config_key {
    const char *name; /* dotted; "[]" stands for a list item, "*" for a map key */
    enum config_key_type type;
    const char *def; /* the default as YAML text, parsed like a value from the file; NULL: none */
    char *(*def_fn)(void); /* a default computed at load time (a string, malloc'ed) */
    const char *def_doc;   /* what the reference shows as the default of def_fn */
    uint64_t min, max;     /* inclusive bounds of SIZE, DURATION and UINT */
    const char *doc;
    enum config_scope scope;
    size_t offset;            /* of the value in the scope's struct, or CONFIG_NO_FIELD */
    size_t aux;               /* second field, see the types */
    const char *const *names; /* ENUM values, NULL-terminated, in the order of the C enum */
    /* Extra validation of a string value: NULL when fine, else why not ("is not ..."). */
    const char *(*check)(const char *value);
    unsigned flags;
};

/* Defined in config.c. */
static char *config_default_hostname(void);
static const char *config_check_hostname(const char *value);
static const char *config_check_dns_server(const char *value);
static const char *config_check_listener_name(const char *value);
static const char *config_check_deliver_to(const char *value);

#define KEY_AT(field) .scope = CONFIG_SCOPE_CONFIG, .offset = offsetof(struct config, field)
#define KEY_LIST(field, count) KEY_AT(field), .aux = offsetof(struct config, count)
#define KEY_SECTION .type = CONFIG_SECTION, .offset = CONFIG_NO_FIELD
#define KEY_LISTENER(field)                                                                        \
    .scope = CONFIG_SCOPE_LISTENER, .offset = offsetof(struct config_listener, field)
#define KEY_DOMAIN(field)                                                                          \
    .scope = CONFIG_SCOPE_DOMAIN, .offset = offsetof(struct config_domain, field)

#define KEY_KB 1024ull
#define KEY_GB (1024ull * 1024 * 1024)
#define KEY_SECOND 1000ull
#define KEY_HOUR (3600ull * 1000)

static const char *const config_log_formats[] = {"json", NULL};
static const char *const config_roles[] = {"inbound", "submission", NULL};
static const char *const config_tls_modes[] = {"starttls", "implicit", "none", NULL};
static const char *const config_booleans[] = {"false", "true", NULL};

/* One key per row reads better than one field per line. */
/* clang-format off */
static const struct config_key config_keys[] = {
    {.name = "server", KEY_SECTION, .doc = "This server's identity, storage, privileges and log."},
    {.name = "server.hostname", .type = CONFIG_STRING, .def_fn = config_default_hostname,
     .def_doc = "the system's host name", .check = config_check_hostname, KEY_AT(server.hostname),
     .doc = "Name in the SMTP banner and in EHLO; a fully qualified name."},
    {.name = "server.spool", .type = CONFIG_PATH, .def = "./var/spool", KEY_AT(server.spool),
     .doc = "Directory of the message queue."},
    {.name = "server.user", .type = CONFIG_STRING, KEY_AT(server.user),
     .doc = "When started as root: the user to become after binding ports. Unset: stay as "
            "started."},
    {.name = "server.log", KEY_SECTION, .doc = "The event log: one JSON object per line."},
    {.name = "server.log.format", .type = CONFIG_ENUM, .def = "json", .names = config_log_formats,
     .scope = CONFIG_SCOPE_CONFIG, .offset = CONFIG_NO_FIELD,
     .doc = "Log format; json is the only one."},
    {.name = "server.log.file", .type = CONFIG_PATH, .def = "\"-\"", KEY_AT(server.log_file),
     .doc = "File the events are appended to; \"-\" is standard error."},
    {.name = "server.shutdown_grace", .type = CONFIG_DURATION, .def = "30s", .min = 0,
     .max = KEY_HOUR, KEY_AT(server.shutdown_grace_ms),
     .doc = "On SIGTERM: how long transactions in progress may go on before the process exits."},

    {.name = "dns", KEY_SECTION, .doc = "Name resolution (MX, A, AAAA, PTR, TXT lookups)."},
    {.name = "dns.servers", .type = CONFIG_STRINGS, .check = config_check_dns_server,
     KEY_LIST(dns.servers, dns.nservers),
     .doc = "Resolvers as \"address\" or \"address:port\" (\"[v6]:port\"). None: those of "
            "/etc/resolv.conf."},
    {.name = "dns.timeout", .type = CONFIG_DURATION, .def = "5s", .min = 100,
     .max = 60 * KEY_SECOND, KEY_AT(dns.timeout_ms), .doc = "How long one query may take."},

    {.name = "tls", KEY_SECTION, .doc = "The certificate offered with STARTTLS and implicit TLS."},
    {.name = "tls.certificate", .type = CONFIG_PATH, KEY_AT(tls.certificate),
     .doc = "PEM certificate chain. Unset: no TLS is offered. Needs tls.key."},
    {.name = "tls.key", .type = CONFIG_PATH, KEY_AT(tls.key),
     .doc = "PEM private key of tls.certificate."},

    {.name = "listeners", .type = CONFIG_LISTENERS,
     .def = "[{name: default, address: \"127.0.0.1:2525\", role: submission}]",
     .doc = "Where SMTP connections are accepted: a list of listeners with the keys below."},
    {.name = "listeners[].name", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_listener_name, KEY_LISTENER(name),
     .doc = "Unique name used in logs: letters, digits, '.', '_', '-'."},
    {.name = "listeners[].address", .type = CONFIG_ADDRESS, .flags = CONFIG_KEY_REQUIRED,
     KEY_LISTENER(address), .aux = offsetof(struct config_listener, addr),
     .doc = "\"IPv4:port\" or \"[IPv6]:port\", a numeric address (not a host name); unique."},
    {.name = "listeners[].role", .type = CONFIG_ENUM, .flags = CONFIG_KEY_REQUIRED,
     .names = config_roles, KEY_LISTENER(role),
     .doc = "inbound: mail for `domains` only, never relayed; submission: also relays for "
            "relay.users and relay.trusted_networks."},
    {.name = "listeners[].tls", .type = CONFIG_ENUM, .def = "starttls", .names = config_tls_modes,
     KEY_LISTENER(tls),
     .doc = "starttls: offered when tls.certificate is set; implicit: TLS from the first byte "
            "(port 465; needs tls.certificate); none: never."},

    {.name = "relay", KEY_SECTION,
     .doc = "Who may send mail to any domain through a submission listener."},
    {.name = "relay.trusted_networks", .type = CONFIG_CIDRS,
     .def = "[\"127.0.0.0/8\", \"::1/128\"]",
     KEY_LIST(relay.trusted_networks, relay.ntrusted_networks),
     .doc = "Client networks (address/prefix) that may relay without authenticating."},
    {.name = "relay.users", .type = CONFIG_PATH, KEY_AT(relay.users),
     .doc = "File of \"name:crypt-hash\" lines for SMTP AUTH. Unset: no authentication."},
    {.name = "relay.i_understand_this_is_an_open_relay", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_AT(relay.open_relay_acknowledged),
     .doc = "true lets a configuration that relays for strangers load (with a warning at every "
            "start); without it such a configuration is refused."},

    {.name = "domains", .type = CONFIG_DOMAINS,
     .doc = "Domains whose mail is accepted from anyone: a map of domain to nothing or to the keys "
            "below."},
    {.name = "domains.*.deliver_to", .type = CONFIG_STRING, .check = config_check_deliver_to,
     KEY_DOMAIN(deliver_to),
     .doc = "Next hop: \"host\", \"host:port\" or \"[address]:port\". Unset: the domain's MX."},
    {.name = "domains.*.recipients", .type = CONFIG_PATH, KEY_DOMAIN(recipients),
     .doc = "File of valid addresses, one a line. Unset: every local part is accepted."},

    {.name = "limits", KEY_SECTION, .doc = "Resource limits."},
    {.name = "limits.max_message_size", .type = CONFIG_SIZE, .def = "50M", .min = KEY_KB,
     .max = 2 * KEY_GB, KEY_AT(limits.max_message_size),
     .doc = "Largest message accepted, in octets; advertised with SIZE."},
    {.name = "limits.max_recipients_per_message", .type = CONFIG_UINT, .def = "1000", .min = 1,
     .max = 100000, KEY_AT(limits.max_recipients_per_message),
     .doc = "Recipients accepted per message."},
    {.name = "limits.max_connections", .type = CONFIG_UINT, .def = "10000", .min = 1,
     .max = 1000000, KEY_AT(limits.max_connections),
     .doc = "Concurrent client connections, across all listeners."},
    {.name = "limits.max_errors", .type = CONFIG_UINT, .def = "10", .min = 1, .max = 1000,
     KEY_AT(limits.max_errors),
     .doc = "Errors a session may make before it is closed with 421."},
    {.name = "limits.command_timeout", .type = CONFIG_DURATION, .def = "5m", .min = KEY_SECOND,
     .max = KEY_HOUR, KEY_AT(limits.command_timeout_ms),
     .doc = "How long a client may take to send a command (RFC 5321 4.5.3.2.7)."},
    {.name = "limits.data_timeout", .type = CONFIG_DURATION, .def = "3m", .min = KEY_SECOND,
     .max = KEY_HOUR, KEY_AT(limits.data_timeout_ms),
     .doc = "How long a client may pause while sending message data (RFC 5321 4.5.3.2.6)."},
};
/* clang-format on */

#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

#endif
