/*
 * The configuration key table: each key's dotted name, type, default, bounds and one-line doc, and
 * where its value goes. The loader parses, validates and fills in defaults from this table alone,
 * and renders it as the reference (`sluice config-keys`, docs/configuration.md), so they cannot
 * disagree. The row type and the checks that rows name are in config_int.h. Included by
 * config_walk.c only, which hands the table to the rest. Adding a key: a field in struct config
 * (config.h) and one row here.
 */
#ifndef SLUICE_CONFIG_KEYS_H
#define SLUICE_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/config_int.h"

#define KEY_AT(field) .scope = CONFIG_SCOPE_CONFIG, .offset = offsetof(struct config, field)
#define KEY_LIST(field, count) KEY_AT(field), .aux = offsetof(struct config, count)
/* A string or path whose position is kept in `pos_field` of struct config. */
#define KEY_AT_POS(field, pos_field)                                                               \
    KEY_AT(field), .flags = CONFIG_KEY_POS, .pos_offset = offsetof(struct config, pos_field)
#define KEY_SECTION .type = CONFIG_SECTION, .offset = CONFIG_NO_FIELD
#define KEY_LISTENER(field)                                                                        \
    .scope = CONFIG_SCOPE_LISTENER, .offset = offsetof(struct config_listener, field)
#define KEY_DOMAIN(field)                                                                          \
    .scope = CONFIG_SCOPE_DOMAIN, .offset = offsetof(struct config_domain, field)

#define KEY_IN(scope_, type_, field)                                                               \
    .scope = CONFIG_SCOPE_##scope_, .offset = offsetof(type_, field)
#define KEY_SHAPING(field) KEY_IN(SHAPING, struct config_shaping, field)
#define KEY_DKIM(field) KEY_IN(DKIM, struct config_dkim, field)
#define KEY_WEBHOOK(field) KEY_IN(WEBHOOK, struct config_webhook, field)
#define KEY_LIST_OF(field, count, type_)                                                           \
    .type = CONFIG_LIST, KEY_LIST(field, count), .elem_size = sizeof(type_),                       \
    .pos_offset = offsetof(type_, pos)

#define KEY_KB 1024ull
#define KEY_GB (1024ull * 1024 * 1024)
#define KEY_SECOND 1000ull
#define KEY_HOUR (3600ull * 1000)
#define KEY_DAY (24 * KEY_HOUR)

static const char *const config_log_formats[] = {"json", NULL};
/* In the order of enum log_level (lib/log.h). */
static const char *const config_log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const config_roles[] = {"inbound", "submission", NULL};
static const char *const config_tls_modes[] = {"starttls", "implicit", "none", NULL};
static const char *const config_booleans[] = {"false", "true", NULL};
/* In the order of enum warmup_overflow. */
static const char *const config_warmup_overflow[] = {"next", "wait", NULL};
/* In the order of enum shaping_tls. */
static const char *const config_shaping_tls[] = {"opportunistic", "required", "none",
                                                 "dane",          "mta-sts",  NULL};
static const char *const config_dkim_on_failure[] = {"accept", "tempfail", NULL};
static const char *const config_reverse_dns[] = {"ignore", "require_ptr",
                                                 "require_forward_confirmed", NULL};
static const char *const config_spf[] = {"ignore", "mark", "reject_fail", NULL};
static const char *const config_clamd_down[] = {"tempfail", "accept", NULL};
/* In the order of enum suppression_action. */
static const char *const config_suppression_actions[] = {"reject", "drop", NULL};
/* In the order of enum tenant_priority. */
static const char *const config_tenant_priorities[] = {"transactional", "normal", "bulk", NULL};
static const char *const config_dmarc[] = {"ignore", "mark", "enforce", NULL};
/* In the order of enum reply_rule_action. */
static const char *const config_reply_actions[] = {"suspend", "suspend_destination", "backoff",
                                                   "bounce", NULL};

/* One key per row reads better than one field per line. */
/* clang-format off */
static const struct config_key config_keys[] = {
    {.name = "server", KEY_SECTION, .doc = "This server's identity, storage, privileges and log."},
    {.name = "server.hostname", .type = CONFIG_STRING, .def_fn = config_default_hostname,
     .def_doc = "the system's host name", .check = config_check_hostname, KEY_AT(server.hostname),
     .doc = "Name in the SMTP banner and in EHLO; a fully qualified name."},
    {.name = "server.spool", .type = CONFIG_PATH, .def = "./var/spool",
     KEY_AT_POS(server.spool, server.spool_pos),
     .doc = "Directory of the message queue; the daemon's user must be able to reach it."},
    {.name = "server.user", .type = CONFIG_STRING, KEY_AT_POS(server.user, server.user_pos),
     .doc = "When started as root: the user to become after binding ports and reading keys. "
            "Unset: the system user sluice (start is refused when it does not exist); root "
            "stays root, with a warning."},
    {.name = "server.log", KEY_SECTION, .doc = "The event log: one JSON object per line."},
    {.name = "server.log.format", .type = CONFIG_ENUM, .def = "json", .names = config_log_formats,
     .scope = CONFIG_SCOPE_CONFIG, .offset = CONFIG_NO_FIELD,
     .doc = "Log format; json is the only one."},
    {.name = "server.log.level", .type = CONFIG_ENUM, .def = "info", .names = config_log_levels,
     KEY_AT(server.log_level),
     .doc = "Least severe events written: debug adds the trace of each session's states "
            "(smtp.state, smtp_client.state); warn and error leave out the routine events."},
    {.name = "server.log.file", .type = CONFIG_PATH, .def = "\"-\"",
     KEY_AT_POS(server.log_file, server.log_file_pos),
     .doc = "File the events are appended to, opened with the rights of server.user; \"-\" is "
            "standard error."},
    {.name = "server.shutdown_grace", .type = CONFIG_DURATION, .def = "30s", .min = 0,
     .max = KEY_HOUR, KEY_AT(server.shutdown_grace_ms),
     .doc = "On SIGTERM: how long transactions in progress may go on before the process exits."},
    {.name = "server.postmaster", .type = CONFIG_STRING, .check = config_check_mailbox,
     KEY_AT(server.postmaster),
     .doc = "The mailbox (user@domain) that mail to <postmaster> and to postmaster@ each of "
            "`domains` and server.hostname is delivered to, and that gets the DSNs which could "
            "not be delivered (double bounces). Unset: postmaster mail is routed like any other "
            "and double bounces are only logged."},
    {.name = "server.postmaster_rate", .type = CONFIG_RATE, .def = "30/h",
     KEY_AT(server.postmaster_rate),
     .doc = "At most this many double bounces go to server.postmaster in each period (counted "
            "from the first in it); the others are only logged. none: no bound."},

    {.name = "dns", KEY_SECTION, .doc = "Name resolution (MX, A, AAAA, PTR, TXT, TLSA lookups)."},
    {.name = "dns.servers", .type = CONFIG_STRINGS, .check = config_check_dns_server,
     KEY_LIST(dns.servers, dns.nservers),
     .doc = "Resolvers as \"address\" or \"address:port\" (\"[v6]:port\"). None: those of "
            "/etc/resolv.conf."},
    {.name = "dns.timeout", .type = CONFIG_DURATION, .def = "5s", .min = 100,
     .max = 60 * KEY_SECOND, KEY_AT(dns.timeout_ms), .doc = "How long one query may take."},
    {.name = "dns.dnssec", .type = CONFIG_ENUM, .def = "false", .names = config_booleans,
     KEY_AT(dns.dnssec),
     .doc = "true: dns.servers are validating resolvers; their AD bit is believed when every one is "
            "on loopback, and destinations with `tls: dane` then get DANE (TLSA records, RFC 7672)."},

    {.name = "tls", KEY_SECTION,
     .doc = "The certificate offered with STARTTLS and implicit TLS, and the CAs trusted when "
            "sending."},
    {.name = "tls.certificate", .type = CONFIG_PATH,
     KEY_AT_POS(tls.certificate, tls.certificate_pos),
     .doc = "PEM certificate chain. Unset: no TLS is offered. Needs tls.key."},
    {.name = "tls.key", .type = CONFIG_PATH, KEY_AT_POS(tls.key, tls.key_pos),
     .doc = "PEM private key of tls.certificate."},
    {.name = "tls.ca_file", .type = CONFIG_PATH, KEY_AT(tls.ca_file),
     .doc = "PEM file of the CA certificates that outbound certificate checks (tls: required, "
            "MTA-STS) trust. Unset: the system's store."},

    {.name = "mta_sts", KEY_SECTION,
     .doc = "How MTA-STS policies (RFC 8461) of destinations with shaping tls: mta-sts are "
            "looked up."},
    {.name = "mta_sts.recheck", .type = CONFIG_DURATION, .def = "5m", .min = KEY_SECOND,
     .max = KEY_DAY, KEY_AT(mta_sts.recheck_ms),
     .doc = "How often the _mta-sts TXT record of a domain with a cached policy is checked "
            "again; a new id fetches the policy anew."},
    {.name = "mta_sts.fetch_timeout", .type = CONFIG_DURATION, .def = "10s", .min = 100,
     .max = 60 * KEY_SECOND, KEY_AT(mta_sts.fetch_timeout_ms),
     .doc = "How long one HTTPS fetch of a policy may take, connection included."},
    {.name = "mta_sts.max_domains", .type = CONFIG_UINT, .def = "10000", .min = 1, .max = 1000000,
     KEY_AT(mta_sts.max_domains),
     .doc = "How many domains' policies (or their absence) are kept in memory; the least recently "
            "used is dropped for a new one and looked up again when next needed (read at start)."},

    {.name = "tls_rpt", KEY_SECTION,
     .doc = "TLS reporting (RFC 8460): daily reports on the TLS sessions to each recipient domain, "
            "sent to the addresses its _smtp._tls TXT record names."},
    {.name = "tls_rpt.enabled", .type = CONFIG_ENUM, .def = "false", .names = config_booleans,
     KEY_AT(tls_rpt.enabled),
     .doc = "true: count the outcome of every outbound TLS session (and MTA-STS/DANE failure) per "
            "recipient domain and send the daily reports."},
    {.name = "tls_rpt.organization", .type = CONFIG_STRING, KEY_AT(tls_rpt.organization),
     .doc = "The reports' organization-name. Unset: server.hostname."},
    {.name = "tls_rpt.contact", .type = CONFIG_STRING, KEY_AT(tls_rpt.contact),
     .doc = "The reports' contact-info (an address or URL). Unset: tls_rpt.sender."},
    {.name = "tls_rpt.sender", .type = CONFIG_STRING, .check = config_check_mailbox,
     KEY_AT(tls_rpt.sender),
     .doc = "From: and envelope sender of the report mails (user@domain); its domain is the "
            "TLS-Report-Submitter. Unset: postmaster@server.hostname."},
    {.name = "tls_rpt.send_after", .type = CONFIG_DURATION, .def = "15m", .min = 0,
     .max = 23 * KEY_HOUR, KEY_AT(tls_rpt.send_after_ms),
     .doc = "How long after midnight UTC the reports of the day before are sent."},
    {.name = "tls_rpt.max_domains", .type = CONFIG_UINT, .def = "10000", .min = 1, .max = 1000000,
     KEY_AT(tls_rpt.max_domains),
     .doc = "How many recipient domains (per day) are counted at once; sessions to more are "
            "dropped (tls_rpt.overflow)."},

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

    {.name = "http", KEY_SECTION,
     .doc = "The operations interface over HTTP: Prometheus metrics and the status API "
            "(docs/http.md). Off unless http.listen is set."},
    {.name = "http.listen", .type = CONFIG_STRINGS, .check = config_check_http_listen,
     KEY_LIST(http.listen, http.nlisten),
     .doc = "Addresses to serve on, \"IPv4:port\" or \"[IPv6]:port\". None: no HTTP server. "
            "An address that is not loopback needs http.tls and http.tokens."},
    {.name = "http.tls", .type = CONFIG_ENUM, .def = "false", .names = config_booleans,
     KEY_AT(http.tls),
     .doc = "true: HTTPS, with http.certificate and http.key, or else tls.certificate and "
            "tls.key."},
    {.name = "http.certificate", .type = CONFIG_PATH,
     KEY_AT_POS(http.certificate, http.certificate_pos),
     .doc = "PEM certificate chain for HTTPS. Unset: tls.certificate."},
    {.name = "http.key", .type = CONFIG_PATH, KEY_AT_POS(http.key, http.key_pos),
     .doc = "PEM private key of http.certificate. Unset: tls.key."},
    {.name = "http.tokens", .type = CONFIG_PATH, KEY_AT_POS(http.tokens, http.tokens_pos),
     .doc = "File of bearer tokens, one \"name:hash\" line each (hash: the token's SHA-256 in "
            "hex); a request carrying one is that user's. Unset: only /metrics may answer, "
            "when http.metrics_public."},
    {.name = "http.metrics_public", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_AT(http.metrics_public),
     .doc = "true: GET /metrics needs no token; every other request always does."},
    {.name = "http.status_page_loopback", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_AT(http.status_page_loopback),
     .doc = "true: the status page (GET /) needs no token from a client on a loopback address, "
            "so a browser on the host itself can show it; from elsewhere it always does."},
    {.name = "http.max_connections", .type = CONFIG_UINT, .def = "64", .min = 1, .max = 10000,
     KEY_AT(http.max_connections),
     .doc = "HTTP connections open at once; more are closed as they arrive."},
    {.name = "http.request_timeout", .type = CONFIG_DURATION, .def = "10s", .min = 100,
     .max = 10 * 60 * KEY_SECOND, KEY_AT(http.request_timeout_ms),
     .doc = "How long a request may take to arrive, an idle connection may stay open, and a "
            "streamed answer may wait for the client to take its next piece."},
    {.name = "http.max_header_size", .type = CONFIG_SIZE, .def = "16k", .min = KEY_KB,
     .max = 256 * KEY_KB, KEY_AT(http.max_header_size),
     .doc = "Largest request head (request line and header fields): more gets 431."},
    {.name = "http.max_body_size", .type = CONFIG_SIZE, .def = "1M", .min = 0,
     .max = KEY_GB, KEY_AT(http.max_body_size),
     .doc = "Largest request body: more gets 413."},

    {.name = "relay", KEY_SECTION,
     .doc = "Who may send mail to any domain through a submission listener."},
    {.name = "relay.trusted_networks", .type = CONFIG_CIDRS,
     .def = "[\"127.0.0.0/8\", \"::1/128\"]",
     KEY_LIST(relay.trusted_networks, relay.ntrusted_networks),
     .doc = "Client networks (address/prefix) that may relay without authenticating."},
    {.name = "relay.users", .type = CONFIG_PATH, KEY_AT_POS(relay.users, relay.users_pos),
     .doc = "File of \"name:crypt-hash\" lines for SMTP AUTH. Unset: no authentication."},
    {.name = "relay.allow_address_literals", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_AT(relay.allow_address_literals),
     .doc = "true: mail that may be relayed to user@[192.0.2.1] or user@[IPv6:...] goes to that "
            "address (no MX lookup); false: such recipients are refused at RCPT (550 5.1.2)."},
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
    {.name = "domains.*.verify_recipients", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_DOMAIN(verify_recipients),
     .doc = "true: each recipient is checked at RCPT with an SMTP probe (MAIL, RCPT, QUIT) to "
            "deliver_to, the answer cached; a temporary failure answers 450."},

    {.name = "delivery", KEY_SECTION, .doc = "Outbound delivery to remote MX hosts."},
    {.name = "delivery.port", .type = CONFIG_UINT, .def = "25", .min = 1, .max = 65535,
     KEY_AT(delivery.port), .doc = "TCP port remote MX hosts are contacted on (tests use another)."},
    {.name = "delivery.bounce_category_files", .type = CONFIG_STRINGS,
     KEY_LIST(delivery.bounce_category_files, delivery.nbounce_category_files),
     .doc = "Pattern files (\"category regex\" a line) tried, in order, before the shipped "
            "bounce categories; see delivery.md."},
    {.name = "delivery.dsn_return_max", .type = CONFIG_SIZE, .def = "1M", .min = 0,
     .max = 50 * 1024 * KEY_KB, KEY_AT(delivery.dsn_return_max),
     .doc = "A failure DSN for a message sent with RET=FULL (RFC 3461) carries the whole message "
            "when it is at most this size; a larger one, like any other, only its header section."},
    {.name = "delivery.delay_warning", .type = CONFIG_DURATIONS, .def = "[4h]",
     .min = KEY_SECOND, .max = 30 * KEY_DAY,
     KEY_LIST(delivery.delay_warning_ms, delivery.ndelay_warning),
     .doc = "Ages in the queue after which a recipient still deferred gets a delay DSN, one per "
            "age, when it was sent with NOTIFY including DELAY (RFC 3461)."},
    {.name = "delivery.active_limit", .type = CONFIG_UINT, .def = "20000", .min = 1,
     .max = 10000000, KEY_AT(delivery.active_limit),
     .doc = "Messages the scheduler holds in memory at most (its active queue); the others wait "
            "on disk, in an index of a few tens of bytes each, until they are due and there is "
            "room."},
    {.name = "delivery.active_window", .type = CONFIG_DURATION, .def = "5m", .min = 0,
     .max = KEY_DAY, KEY_AT(delivery.active_window_ms),
     .doc = "A message whose next attempt is further away than this leaves memory for the disk "
            "index, and one in the index is read back this long before it is due."},

    {.name = "egress", KEY_SECTION, .doc = "Source addresses for outbound delivery."},
    {.name = "egress.pools", .type = CONFIG_EGRESS_POOLS,
     .doc = "Map of pool name to a list of source addresses with the keys below. None: the "
            "system's choice of address, EHLO server.hostname."},
    {.name = "egress.pools.*[].address", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_ip, KEY_IN(EGRESS, struct config_egress_addr, address),
     .doc = "Numeric IPv4 or IPv6 source address, no port; unique across pools."},
    {.name = "egress.pools.*[].ehlo", .type = CONFIG_STRING, .def_doc = "server.hostname",
     .check = config_check_hostname, KEY_IN(EGRESS, struct config_egress_addr, ehlo),
     .doc = "EHLO name sent from this address (its PTR name, ideally)."},
    {.name = "egress.pools.*[].warmup", .type = CONFIG_SECTION, .offset = CONFIG_NO_FIELD,
     .scope = CONFIG_SCOPE_EGRESS,
     .doc = "IP warm-up: messages per day per provider from this address, growing day by day "
            "from start; none: no cap."},
    {.name = "egress.pools.*[].warmup.start", .type = CONFIG_STRING, .check = config_check_date,
     KEY_IN(EGRESS, struct config_egress_addr, warmup.start), .flags = CONFIG_KEY_POS,
     .pos_offset = offsetof(struct config_egress_addr, warmup.start_pos),
     .doc = "Day 1 of the schedule, YYYY-MM-DD; required with a schedule. Before it, day 1 "
            "applies."},
    {.name = "egress.pools.*[].warmup.utc_offset", .type = CONFIG_STRING, .def = "+00:00",
     .check = config_check_utc_offset,
     KEY_IN(EGRESS, struct config_egress_addr, warmup.utc_offset),
     .doc = "Where a day begins: midnight at this offset from UTC, +HH:MM or -HH:MM."},
    {.name = "egress.pools.*[].warmup.overflow", .type = CONFIG_ENUM, .def = "next",
     .names = config_warmup_overflow, KEY_IN(EGRESS, struct config_egress_addr, warmup.overflow),
     .doc = "next: mail beyond the day's allowance goes from the pool's other addresses; wait: "
            "it waits for the next day."},
    {.name = "egress.pools.*[].warmup.schedule", .type = CONFIG_LIST,
     KEY_IN(EGRESS, struct config_egress_addr, warmup.schedule),
     .aux = offsetof(struct config_egress_addr, warmup.nschedule),
     .elem_size = sizeof(struct config_warmup_step),
     .pos_offset = offsetof(struct config_warmup_step, pos),
     .doc = "List of {provider, per_day}: the allowances per provider."},
    {.name = "egress.pools.*[].warmup.schedule[].provider", .type = CONFIG_STRING, .def = "\"*\"",
     .check = config_check_provider, KEY_IN(WARMUP, struct config_warmup_step, provider),
     .doc = "A destination as `sluice queue list --json` names it (a domain, or a provider's MX "
            "pattern such as *.yahoodns.net), or * for every other one; each counts apart."},
    {.name = "egress.pools.*[].warmup.schedule[].per_day", .type = CONFIG_COUNTS,
     .flags = CONFIG_KEY_REQUIRED, .min = 0, .max = 100000000,
     KEY_IN(WARMUP, struct config_warmup_step, per_day),
     .aux = offsetof(struct config_warmup_step, ndays),
     .doc = "Messages on day 1, 2, ... to the provider; after the last day the address is warm."},

    {.name = "shaping", KEY_SECTION,
     .doc = "Outbound limits per destination: the first rule that matches wins; shaping.default "
            "otherwise."},
    {.name = "shaping.default", .type = CONFIG_SECTION, KEY_AT(shaping.defaults),
     .doc = "Limits for destinations no rule matches, and for the keys a rule leaves out."},
    {.name = "shaping.default.connections", .type = CONFIG_UINT, .def = "10", .min = 1,
     .max = 1000, KEY_SHAPING(connections),
     .doc = "Concurrent connections to one destination, per egress address."},
    {.name = "shaping.default.messages_per_connection", .type = CONFIG_UINT, .def = "100",
     .min = 1, .max = 100000, KEY_SHAPING(messages_per_connection),
     .doc = "Messages sent over one connection before it is closed."},
    {.name = "shaping.default.recipients_per_connection", .type = CONFIG_UINT, .def = "500",
     .min = 1, .max = 1000000, KEY_SHAPING(recipients_per_connection),
     .doc = "Recipients (RCPT TO) over one connection before it is closed."},
    {.name = "shaping.default.recipients_per_message", .type = CONFIG_UINT, .def = "100",
     .min = 1, .max = 100000, KEY_SHAPING(recipients_per_message),
     .doc = "Recipients per transaction; more are sent in further transactions."},
    {.name = "shaping.default.rate", .type = CONFIG_RATE, .def = "none", KEY_SHAPING(rate),
     .doc = "Recipients per egress address: \"6/s\", \"1000/h\", \"500/10m\" or none; never more "
            "in any window of the period widened by rate_margin_percent."},
    {.name = "shaping.default.message_rate", .type = CONFIG_RATE, .def = "none",
     KEY_SHAPING(message_rate), .doc = "Messages per egress address, written like rate."},
    {.name = "shaping.default.connection_rate", .type = CONFIG_RATE, .def = "none",
     KEY_SHAPING(connection_rate),
     .doc = "Connections opened per egress address, written like rate."},
    {.name = "shaping.default.rate_margin_percent", .type = CONFIG_UINT, .def = "5", .min = 0,
     .max = 100, KEY_SHAPING(rate_margin_percent),
     .doc = "Safety margin of rate, message_rate and connection_rate against network jitter: "
            "6/s with 5 is never more than 6 in any 1.05 s."},
    {.name = "shaping.default.retry", .type = CONFIG_DURATIONS,
     .def = "[5m, 10m, 30m, 1h, 2h, 4h]", .min = KEY_SECOND, .max = 7 * KEY_DAY,
     KEY_SHAPING(retry_ms), .aux = offsetof(struct config_shaping, nretry),
     .doc = "Delays before the 1st, 2nd, ... retry of a temporary failure; the last repeats."},
    {.name = "shaping.default.expire", .type = CONFIG_DURATION, .def = "5d", .min = KEY_SECOND,
     .max = 30 * KEY_DAY, KEY_SHAPING(expire_ms),
     .doc = "How long a message may wait in the queue before it bounces."},
    {.name = "shaping.default.tls", .type = CONFIG_ENUM, .def = "opportunistic",
     .names = config_shaping_tls, KEY_SHAPING(tls),
     .doc = "opportunistic: STARTTLS when offered, certificate not checked; required: STARTTLS "
            "with a certificate valid for the MX host name (tls.ca_file), else defer; mta-sts: "
            "as the destination's MTA-STS policy says, opportunistic without one; dane: DANE "
            "where the MX host has TLSA records, else as mta-sts; none: never STARTTLS."},
    {.name = "shaping.default.pool", .type = CONFIG_STRING, .def = "default",
     .check = config_check_listener_name, KEY_SHAPING(pool),
     .doc = "Egress pool to send from; must be in egress.pools unless it is default and there "
            "are none."},
    {.name = "shaping.default.connect_timeout", .type = CONFIG_DURATION, .def = "30s",
     .min = KEY_SECOND, .max = 10 * 60 * KEY_SECOND, KEY_SHAPING(connect_timeout_ms),
     .doc = "How long a TCP connection to an MX host may take to open."},
    {.name = "shaping.default.idle_timeout", .type = CONFIG_DURATION, .def = "5s", .min = 0,
     .max = 5 * 60 * KEY_SECOND, KEY_SHAPING(idle_timeout_ms),
     .doc = "How long a connection with nothing to send waits open for the next message to the "
            "same destination (within messages_per_connection) before QUIT; 0: QUIT at once."},
    {.name = "shaping.default.recovery_interval", .type = CONFIG_DURATION, .def = "1m",
     .min = 100, .max = KEY_DAY, KEY_SHAPING(recovery_interval_ms),
     .doc = "After a backoff or a throttle, the limits climb back one step per interval in which "
            "transactions went through and no reply asked to slow down."},
    {.name = "shaping.default.recovery_step_percent", .type = CONFIG_UINT, .def = "25", .min = 1,
     .max = 100, KEY_SHAPING(recovery_step_percent),
     .doc = "Each recovery step: this share of the way from the slowed limits back to the full "
            "ones (a reply that asks to slow down halves the way gone)."},
    {.name = "shaping.default.chunking", .type = CONFIG_ENUM, .def = "true",
     .names = config_booleans, KEY_SHAPING(chunking),
     .doc = "Send the message with BDAT (RFC 3030: no dot-stuffing) to a server that offers "
            "CHUNKING; false: always DATA."},
    {.name = "shaping.rules", .type = CONFIG_SHAPING_RULES,
     .doc = "List of rules: match (below) plus any shaping.default key, which overrides the "
            "default for the destinations matched."},
    {.name = "shaping.rules[].match", KEY_SECTION, .flags = CONFIG_KEY_REQUIRED,
     .doc = "Which destinations the rule is for: mx, domain or both (either matches)."},
    {.name = "shaping.rules[].match.mx", .type = CONFIG_NAMES, .check = config_check_mx_pattern,
     KEY_IN(RULE, struct config_shaping_rule, match_mx),
     .aux = offsetof(struct config_shaping_rule, nmatch_mx),
     .doc = "MX host name or \"*.name\" (any name below it), or a list of them."},
    {.name = "shaping.rules[].match.domain", .type = CONFIG_NAMES, .check = config_check_hostname,
     KEY_IN(RULE, struct config_shaping_rule, match_domain),
     .aux = offsetof(struct config_shaping_rule, nmatch_domain),
     .doc = "Recipient domain, or a list of them (exact, case-insensitive)."},
    {.name = "shaping.provider_rules", .type = CONFIG_ENUM, .def = "true",
     .names = config_booleans, KEY_AT(shaping.provider_rules),
     .doc = "true: Sluice's shipped rules for large mailbox providers apply after shaping.rules."},
    {.name = "shaping.backoff", KEY_LIST_OF(shaping.backoffs, shaping.nbackoffs,
                                            struct config_backoff),
     .doc = "Named sets of slower limits for reply rules' backoff action (the shipped sets "
            "follow; the first of a name wins)."},
    {.name = "shaping.backoff[].name", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_listener_name, KEY_IN(BACKOFF, struct config_backoff, name),
     .doc = "The set's name, as reply rules give it."},
    {.name = "shaping.backoff[].connections", .type = CONFIG_UINT, .def = "1", .min = 1,
     .max = 1000, KEY_IN(BACKOFF, struct config_backoff, connections),
     .doc = "Concurrent connections per egress address while backing off."},
    {.name = "shaping.backoff[].messages_per_connection", .type = CONFIG_UINT, .def = "0",
     .max = 100000, KEY_IN(BACKOFF, struct config_backoff, messages_per_connection),
     .doc = "Messages per connection while backing off; 0: the destination's own."},
    {.name = "shaping.backoff[].recipients_per_connection", .type = CONFIG_UINT, .def = "0",
     .max = 1000000, KEY_IN(BACKOFF, struct config_backoff, recipients_per_connection),
     .doc = "Recipients per connection while backing off; 0: the destination's own."},
    {.name = "shaping.backoff[].rate", .type = CONFIG_RATE, .def = "none",
     KEY_IN(BACKOFF, struct config_backoff, rate),
     .doc = "Recipients per egress address while backing off, like shaping.default.rate; none: "
            "the destination's own."},
    {.name = "shaping.reply_rules", KEY_LIST_OF(shaping.reply_rules, shaping.nreply_rules,
                                                struct config_reply_rule),
     .doc = "Rules on remote replies: the first whose match, code, enhanced and text all fit acts "
            "(the shipped rules follow the site's); none: 421 or a rate reply throttles."},
    {.name = "shaping.reply_rules[].name", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_listener_name, KEY_IN(REPLY, struct config_reply_rule, name),
     .doc = "The rule's name in logs and in `sluice queue list`."},
    {.name = "shaping.reply_rules[].match", KEY_SECTION,
     .doc = "Destinations the rule is for (mx, domain, like shaping.rules); none: every one."},
    {.name = "shaping.reply_rules[].match.mx", .type = CONFIG_NAMES,
     .check = config_check_mx_pattern, KEY_IN(REPLY, struct config_reply_rule, match_mx),
     .aux = offsetof(struct config_reply_rule, nmatch_mx),
     .doc = "MX host name or \"*.name\" of the host that replied, or a list of them."},
    {.name = "shaping.reply_rules[].match.domain", .type = CONFIG_NAMES,
     .check = config_check_hostname, KEY_IN(REPLY, struct config_reply_rule, match_domain),
     .aux = offsetof(struct config_reply_rule, nmatch_domain),
     .doc = "Recipient domain, or a list of them."},
    {.name = "shaping.reply_rules[].code", .type = CONFIG_UINT, .def = "0", .max = 599,
     KEY_IN(REPLY, struct config_reply_rule, code),
     .doc = "Reply code (421, 451, 554, ...); 0: any."},
    {.name = "shaping.reply_rules[].enhanced", .type = CONFIG_STRING,
     .check = config_check_enhanced_pattern, KEY_IN(REPLY, struct config_reply_rule, enhanced),
     .doc = "Enhanced status code (\"4.7.28\"), or its start up to a dot (\"4.7.\"); none: any."},
    {.name = "shaping.reply_rules[].text", .type = CONFIG_STRING, .flags = CONFIG_KEY_POS,
     KEY_IN(REPLY, struct config_reply_rule, text),
     .pos_offset = offsetof(struct config_reply_rule, text_pos),
     .doc = "POSIX extended regular expression searched in the reply text, case-insensitive; "
            "none: any text."},
    {.name = "shaping.reply_rules[].threshold", .type = CONFIG_UINT, .def = "1", .min = 1,
     .max = 1000, KEY_IN(REPLY, struct config_reply_rule, threshold),
     .doc = "Matches (per destination) needed within threshold_window before the rule acts."},
    {.name = "shaping.reply_rules[].threshold_window", .type = CONFIG_DURATION, .def = "1m",
     .min = 100, .max = KEY_DAY, KEY_IN(REPLY, struct config_reply_rule, threshold_window_ms),
     .doc = "The window the threshold's matches must fall in."},
    {.name = "shaping.reply_rules[].action", .type = CONFIG_ENUM, .flags = CONFIG_KEY_REQUIRED,
     .names = config_reply_actions, KEY_IN(REPLY, struct config_reply_rule, action),
     .doc = "suspend: the egress address that got the reply; suspend_destination: every one; "
            "backoff: the named slower limits; bounce: queued mail fails with a DSN."},
    {.name = "shaping.reply_rules[].backoff", .type = CONFIG_STRING, .flags = CONFIG_KEY_POS,
     .check = config_check_listener_name, KEY_IN(REPLY, struct config_reply_rule, backoff),
     .pos_offset = offsetof(struct config_reply_rule, backoff_pos),
     .doc = "For action backoff: the name of a shaping.backoff set."},
    {.name = "shaping.reply_rules[].duration", .type = CONFIG_DURATION, .def = "10m", .min = 100,
     .max = 7 * KEY_DAY, KEY_IN(REPLY, struct config_reply_rule, duration_ms),
     .doc = "How long the action lasts; then the limits climb back gradually."},
    {.name = "shaping.reply_rules[].reason", .type = CONFIG_STRING,
     KEY_IN(REPLY, struct config_reply_rule, reason),
     .doc = "What the reply means and what to do about it: logged when the rule fires, and given "
            "in the DSN of mail a bounce rule fails."},
    {.name = "shaping.reply_rules[].dry_run", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_IN(REPLY, struct config_reply_rule, dry_run),
     .doc = "true: only log what the rule would do (the fallback acts instead)."},

    {.name = "dkim", KEY_LIST_OF(dkim, ndkim, struct config_dkim),
     .doc = "DKIM signing of mail from relay-authorized senders: a list of keys (below)."},
    {.name = "dkim[].domain", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_hostname, KEY_DKIM(domain),
     .doc = "From: domain whose mail this key signs."},
    {.name = "dkim[].selector", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_selector, KEY_DKIM(selector),
     .doc = "Selector (s=): the public key is published at SELECTOR._domainkey.D (D: d=)."},
    {.name = "dkim[].key", .type = CONFIG_PATH, .flags = CONFIG_KEY_REQUIRED, KEY_DKIM(key),
     .doc = "PEM private key: RSA (2048 to 4096 bits; 1024 still loads, with a warning) or "
            "Ed25519."},
    {.name = "dkim[].algorithm", .type = CONFIG_STRING, .def = "rsa-sha256",
     .check = config_check_dkim_algorithm, KEY_DKIM(algorithm),
     .doc = "rsa-sha256 or ed25519-sha256; must suit the key."},
    {.name = "dkim[].canonicalization", .type = CONFIG_STRING, .def = "relaxed/relaxed",
     .check = config_check_canonicalization, KEY_DKIM(canonicalization),
     .doc = "Header/body canonicalization (c=): relaxed or simple, each."},
    {.name = "dkim[].signing_domain", .type = CONFIG_STRING, .check = config_check_hostname,
     KEY_DKIM(signing_domain), .doc = "d= when it differs from domain. Unset: domain."},
    {.name = "dkim[].expire", .type = CONFIG_DURATION, .def = "0", .min = 0,
     .max = 365 * KEY_DAY, KEY_DKIM(expire_ms),
     .doc = "Signature lifetime (x= after t=); 0: no x=."},
    {.name = "dkim[].identity", .type = CONFIG_STRING, .check = config_check_identity,
     KEY_DKIM(identity), .doc = "i= (\"@d=\" or \"user@sub.d=\"). Unset: no i=."},
    {.name = "dkim_on_failure", .type = CONFIG_ENUM, .def = "accept",
     .names = config_dkim_on_failure, KEY_AT(dkim_on_error),
     .doc = "When signing fails: accept (unsigned, logged) or tempfail (451)."},

    {.name = "inbound", KEY_SECTION, .doc = "Checks on inbound listeners."},
    {.name = "inbound.dnsbl",
     KEY_LIST_OF(inbound.dnsbl, inbound.ndnsbl, struct config_dnsbl),
     .doc = "DNS blocklists the client address is looked up in: a list of zones (below)."},
    {.name = "inbound.dnsbl[].zone", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_hostname, KEY_IN(DNSBL, struct config_dnsbl, zone),
     .doc = "The list's DNS zone, e.g. zen.spamhaus.org."},
    {.name = "inbound.dnsbl[].weight", .type = CONFIG_UINT, .def = "1", .min = 1, .max = 100,
     KEY_IN(DNSBL, struct config_dnsbl, weight),
     .doc = "Added to the client's score when it is listed."},
    {.name = "inbound.dnsbl_threshold", .type = CONFIG_UINT, .def = "1", .min = 1, .max = 10000,
     KEY_AT(inbound.dnsbl_threshold), .doc = "Score at which a client is rejected."},
    {.name = "inbound.reverse_dns", .type = CONFIG_ENUM, .def = "ignore",
     .names = config_reverse_dns, KEY_AT(inbound.reverse_dns),
     .doc = "Client's PTR: ignore, require_ptr (one exists) or require_forward_confirmed (and "
            "its name resolves back to the address)."},
    {.name = "inbound.spf", .type = CONFIG_ENUM, .def = "ignore", .names = config_spf,
     KEY_AT(inbound.spf),
     .doc = "ignore, mark (Authentication-Results header) or reject_fail (also 550 on fail, 451 "
            "on temperror)."},
    {.name = "inbound.reject_unknown_sender_domain", .type = CONFIG_ENUM, .def = "false",
     .names = config_booleans, KEY_AT(inbound.reject_unknown_sender_domain),
     .doc = "Refuse MAIL FROM whose domain has no MX and no address (550 5.1.8) or a null MX "
            "(550 5.7.27); 451 when DNS fails."},
    {.name = "inbound.dkim_verify", .type = CONFIG_ENUM, .def = "true", .names = config_booleans,
     KEY_AT(inbound.dkim_verify),
     .doc = "Verify the DKIM signatures of inbound messages; the results go into the "
            "Authentication-Results field."},
    {.name = "inbound.blocked_attachments", .type = CONFIG_STRINGS,
     .def = "[exe, scr, pif, com, bat, cmd, js, jse, vbs, vbe, wsf, hta, jar, msi, iso]",
     .check = config_check_extension,
     KEY_LIST(inbound.blocked_attachments, inbound.nblocked_attachments),
     .doc = "File name extensions refused in attachments (lower-cased, a leading dot dropped)."},
    {.name = "inbound.max_connections_per_client", .type = CONFIG_UINT, .def = "20", .min = 0,
     .max = 100000, KEY_AT(inbound.max_connections_per_client),
     .doc = "Concurrent connections from one client address; 0: no limit."},
    {.name = "inbound.max_connection_rate_per_client", .type = CONFIG_RATE, .def = "none",
     KEY_AT(inbound.max_connection_rate_per_client),
     .doc = "New connections one client address may open, e.g. \"30/m\"; more get 421."},
    {.name = "inbound.verify_positive_ttl", .type = CONFIG_DURATION, .def = "1h", .min = KEY_SECOND,
     .max = 30 * 86400 * KEY_SECOND, KEY_AT(inbound.verify_positive_ttl_ms),
     .doc = "How long an accepted recipient probe is reused."},
    {.name = "inbound.verify_negative_ttl", .type = CONFIG_DURATION, .def = "10m",
     .min = KEY_SECOND, .max = 30 * 86400 * KEY_SECOND, KEY_AT(inbound.verify_negative_ttl_ms),
     .doc = "How long a rejected recipient probe is reused (temporary failures are not kept)."},
    {.name = "inbound.pregreet_wait", .type = CONFIG_DURATION, .def = "0", .min = 0,
     .max = 60 * KEY_SECOND, KEY_AT(inbound.pregreet_wait_ms),
     .doc = "Banner delay; clients that talk before it are rejected. 0: no test."},
    {.name = "inbound.clamd", .type = CONFIG_STRING, .check = config_check_clamd,
     KEY_AT(inbound.clamd),
     .doc = "clamd to scan messages with: a unix socket path or \"host:port\". Unset: no scan."},
    {.name = "inbound.clamd_down", .type = CONFIG_ENUM, .def = "tempfail",
     .names = config_clamd_down, KEY_AT(inbound.clamd_down),
     .doc = "When clamd cannot be reached: tempfail (451) or accept unscanned."},
    {.name = "inbound.dmarc", .type = CONFIG_ENUM, .def = "ignore", .names = config_dmarc,
     KEY_AT(inbound.dmarc),
     .doc = "DMARC (RFC 7489) of the From domain: ignore, mark (Authentication-Results) or "
            "enforce (also 550 for p=reject, the X-Sluice-Quarantine field for p=quarantine, 451 "
            "when the record cannot be fetched)."},
    {.name = "inbound.dmarc_override", KEY_SECTION,
     .doc = "Forwarders and mailing lists whose DMARC failures enforce only marks."},
    {.name = "inbound.dmarc_override.networks", .type = CONFIG_CIDRS,
     KEY_LIST(inbound.dmarc_override_networks, inbound.ndmarc_override_networks),
     .doc = "Client networks (address/prefix)."},
    {.name = "inbound.dmarc_override.senders", .type = CONFIG_STRINGS,
     .check = config_check_hostname,
     KEY_LIST(inbound.dmarc_override_senders, inbound.ndmarc_override_senders),
     .doc = "MAIL FROM domains, each with its subdomains."},
    {.name = "inbound.public_suffix_list", .type = CONFIG_PATH,
     .def = "/usr/share/publicsuffix/public_suffix_list.dat",
     KEY_AT_POS(inbound.public_suffix_list, inbound.public_suffix_list_pos),
     .doc = "The Public Suffix List DMARC finds organizational domains with; read at start "
            "and at each reload when inbound.dmarc is not ignore."},

    {.name = "tenancy", KEY_SECTION,
     .doc = "Tenants and campaigns: whose mail a relayed message is, and which campaign it is part "
            "of (see the tenants guide)."},
    {.name = "tenancy.tenant_header", .type = CONFIG_STRING, .def = "X-Sluice-Tenant",
     .check = config_check_field_name, KEY_AT(tenancy.tenant_header),
     .doc = "Header field naming the tenant of mail a trusted network relays without SMTP AUTH "
            "(authenticated mail is its user's). Removed from every message before signing; "
            "read only from clients allowed to relay."},
    {.name = "tenancy.campaign_header", .type = CONFIG_STRING, .def = "X-Sluice-Campaign",
     .check = config_check_field_name, KEY_AT(tenancy.campaign_header),
     .doc = "Header field naming the campaign of relayed mail. Removed from every message before "
            "signing; read only from clients allowed to relay."},
    {.name = "tenants", KEY_LIST_OF(tenants, ntenants, struct config_tenant),
     .doc = "What each tenant's mail is sent with (see the tenants guide); a tenant not listed "
            "sends from the shaping's pool with priority normal."},
    {.name = "tenants[].name", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_tenant_name, KEY_IN(TENANT, struct config_tenant, name),
     .doc = "The tenant: an authenticated user name, or what tenancy.tenant_header names."},
    {.name = "tenants[].pool", .type = CONFIG_STRING, .check = config_check_listener_name,
     KEY_IN(TENANT, struct config_tenant, pool), .flags = CONFIG_KEY_POS,
     .pos_offset = offsetof(struct config_tenant, pool_pos),
     .doc = "Egress pool (of egress.pools) its mail leaves from, whatever the shaping says; "
            "unset: the shaping's pool."},
    {.name = "tenants[].priority", .type = CONFIG_ENUM, .def = "normal",
     .names = config_tenant_priorities, KEY_IN(TENANT, struct config_tenant, priority),
     .doc = "transactional, normal or bulk: at one destination the mail of a higher class goes "
            "first; tenants of one class take turns."},
    {.name = "tenants[].shaping", KEY_SECTION,
     .doc = "The tenant's own limits at every destination, on top of the destination's shaping "
            "(see the tenants guide)."},
    {.name = "tenants[].shaping.rate", .type = CONFIG_RATE, .def = "none",
     KEY_IN(TENANT, struct config_tenant, rate),
     .doc = "Recipients of the tenant's mail per destination (all its egress addresses "
            "together), written like shaping.default.rate; none: only the destination's limits."},
    {.name = "tenants[].shaping.message_rate", .type = CONFIG_RATE, .def = "none",
     KEY_IN(TENANT, struct config_tenant, message_rate),
     .doc = "Messages of the tenant's mail per destination, written like rate."},
    {.name = "feedback", KEY_SECTION,
     .doc = "What receivers say after the 250: the trace on relayed mail, feedback-loop "
            "complaints and late bounces, and the alarm when they are about mail we never sent."},
    {.name = "feedback.addresses", .type = CONFIG_STRINGS, .check = config_check_mailbox,
     KEY_LIST(feedback.addresses, feedback.naddresses),
     .doc = "Addresses receivers send complaint reports to (ARF): mail for them on an inbound "
            "listener is parsed and logged, never delivered. Their domains must be in domains."},
    {.name = "feedback.verp_domain", .type = CONFIG_STRING, .check = config_check_hostname,
     KEY_AT(feedback.verp_domain),
     .doc = "Relayed mail gets the return path bounce+TRACE@ this domain (VERP), and mail for it "
            "is read as a late bounce. It must be in domains. Unset: the return path is kept."},
    {.name = "feedback.sender_id", .type = CONFIG_STRING, KEY_AT(feedback.sender_id),
     .doc = "Relayed mail gets Feedback-ID: TENANT:CAMPAIGN:this (Gmail's feedback loop). "
            "Unset: no Feedback-ID."},
    {.name = "feedback.trace_keys",
     KEY_LIST_OF(feedback.trace_keys, feedback.ntrace_keys, struct config_trace_key),
     .doc = "Keys of the MAC in X-Sluice-Trace, oldest first: the last signs, all verify. "
            "None: relayed mail carries no trace and no report can be matched."},
    {.name = "feedback.trace_keys[].id", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_trace_key_id, KEY_IN(TRACE_KEY, struct config_trace_key, id),
     .doc = "The key's name in each trace (1 to 8 letters and digits)."},
    {.name = "feedback.trace_keys[].secret", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_trace_secret, KEY_IN(TRACE_KEY, struct config_trace_key, secret),
     .doc = "The HMAC-SHA256 key: a random string of 16 characters or more."},
    {.name = "feedback.trace_max_age", .type = CONFIG_DURATION, .def = "180d", .min = KEY_DAY,
     .max = 3650 * KEY_DAY, KEY_AT(feedback.trace_max_age_ms),
     .doc = "A trace whose queue id was made longer ago than this, or in the future, names a "
            "message we never sent."},
    {.name = "feedback.alarm_threshold", .type = CONFIG_UINT, .def = "5", .min = 0,
     .max = 1000, KEY_AT(feedback.alarm_threshold),
     .doc = "More reports about mail we never sent than this within feedback.alarm_window "
            "raise the alarm."},
    {.name = "feedback.alarm_window", .type = CONFIG_DURATION, .def = "1h", .min = KEY_SECOND,
     .max = 7 * KEY_DAY, KEY_AT(feedback.alarm_window_ms),
     .doc = "The window of feedback.alarm_threshold; the alarm re-arms after a window with no "
            "such report."},
    {.name = "feedback.alarm_notify", .type = CONFIG_STRING, .check = config_check_mailbox,
     KEY_AT(feedback.alarm_notify),
     .doc = "Address that gets a short message when the alarm is raised. Unset: logged only."},

    {.name = "doctor", KEY_SECTION,
     .doc = "What `sluice doctor` checks besides what the rest of the configuration names."},
    {.name = "doctor.blocklists",
     KEY_LIST_OF(doctor.blocklists, doctor.nblocklists, struct config_blocklist),
     .doc = "Public DNS blocklists each egress address is looked up in, besides the shipped "
            "ones (an entry with a shipped zone replaces that one): a list of zones (below)."},
    {.name = "doctor.blocklists[].zone", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_hostname, KEY_IN(DOCTOR, struct config_blocklist, zone),
     .doc = "The list's DNS zone, e.g. bl.example.org."},
    {.name = "doctor.blocklists[].name", .type = CONFIG_STRING,
     KEY_IN(DOCTOR, struct config_blocklist, name),
     .doc = "Name shown in the report. Unset: the zone."},
    {.name = "doctor.blocklists[].removal", .type = CONFIG_STRING,
     KEY_IN(DOCTOR, struct config_blocklist, removal),
     .doc = "Where to ask for removal (a URL), shown with a listing."},
    {.name = "doctor.shipped_blocklists", .type = CONFIG_ENUM, .def = "true",
     .names = config_booleans, KEY_AT(doctor.shipped_blocklists),
     .doc = "true: the lists Sluice ships (Spamhaus ZEN, Barracuda, SpamCop, UCEPROTECT, ...) are "
            "checked too; false: only doctor.blocklists."},

    {.name = "suppression", KEY_SECTION,
     .doc = "The suppression list: recipients that relayed mail is not sent to (hard bounces, "
            "complaints, entries made with `sluice suppress`)."},
    {.name = "suppression.enabled", .type = CONFIG_ENUM, .def = "false", .names = config_booleans,
     KEY_AT(suppression.enabled),
     .doc = "Check each recipient of relayed mail against the list at RCPT, and add the "
            "recipients of hard bounces (bounce categories bad-mailbox and bad-domain) to it."},
    {.name = "suppression.action", .type = CONFIG_ENUM, .def = "reject",
     .names = config_suppression_actions, KEY_AT(suppression.action),
     .doc = "What RCPT does with a suppressed recipient: reject (550 5.7.1 naming the source and "
            "date) or drop (250, and the recipient is left out of the message, with an event)."},
    {.name = "suppression.drop_tenants", .type = CONFIG_STRINGS,
     KEY_LIST(suppression.drop_tenants, suppression.ndrop_tenants),
     .doc = "Tenants (today: authenticated user names) whose suppressed recipients are dropped, "
            "whatever suppression.action says."},
    {.name = "suppression.reject_tenants", .type = CONFIG_STRINGS,
     KEY_LIST(suppression.reject_tenants, suppression.nreject_tenants),
     .doc = "Tenants whose suppressed recipients are rejected, whatever suppression.action says "
            "(suppression.drop_tenants is asked first)."},
    {.name = "suppression.path", .type = CONFIG_PATH, .def_doc = "<server.spool>/suppression",
     KEY_AT_POS(suppression.path, suppression.path_pos),
     .doc = "Directory of the list (an LMDB store); the daemon's user must be able to write it."},
    {.name = "suppression.hard_bounce_expiry", .type = CONFIG_DURATION, .def = "90d", .min = 0,
     .max = 3650 * KEY_DAY, KEY_AT(suppression.hard_bounce_expiry_ms),
     .doc = "How long a hard bounce keeps its recipient on the list; 0: for good."},
    {.name = "webhooks", KEY_LIST_OF(webhooks, nwebhooks, struct config_webhook),
     .doc = "Endpoints that get log events POSTed as JSON batches, retried and kept on disk while "
            "they are down: a list of mappings (below). None: nothing is sent."},
    {.name = "webhooks[].url", .type = CONFIG_STRING, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_http_url, KEY_WEBHOOK(url),
     .doc = "Where the batches are POSTed: an http:// or https:// URL, one entry each."},
    {.name = "webhooks[].events", .type = CONFIG_STRINGS, .flags = CONFIG_KEY_REQUIRED,
     .check = config_check_log_event, KEY_WEBHOOK(events),
     .aux = offsetof(struct config_webhook, nevents),
     .doc = "The events sent, by name (`sluice log-events`), e.g. [delivery.delivered, "
            "delivery.deferred, delivery.failed]; at least one. They are sent whatever "
            "server.log.level is."},
    {.name = "webhooks[].batch_max", .type = CONFIG_UINT, .def = "100", .min = 1, .max = 10000,
     KEY_WEBHOOK(batch_max), .doc = "Events per POST, at most."},
    {.name = "webhooks[].batch_wait", .type = CONFIG_DURATION, .def = "1s", .min = 0,
     .max = KEY_HOUR, KEY_WEBHOOK(batch_wait_ms),
     .doc = "How long an event may wait for others to fill a batch before it is sent."},
    {.name = "webhooks[].headers", .type = CONFIG_STRINGS, .check = config_check_http_header,
     KEY_WEBHOOK(headers), .aux = offsetof(struct config_webhook, nheaders),
     .doc = "Extra header lines of each POST, as [\"Name: value\", ...]."},
    {.name = "webhooks[].bearer_token", .type = CONFIG_STRING, KEY_WEBHOOK(bearer_token),
     .doc = "Sent as \"Authorization: Bearer <token>\". Unset: none."},
    {.name = "webhooks[].ca_file", .type = CONFIG_PATH, KEY_WEBHOOK(ca_file),
     .doc = "PEM file of the CAs an https endpoint's certificate must chain to. Unset: the "
            "system's CAs."},
    {.name = "webhooks[].timeout", .type = CONFIG_DURATION, .def = "10s", .min = KEY_SECOND,
     .max = 5 * 60 * KEY_SECOND, KEY_WEBHOOK(timeout_ms),
     .doc = "How long one POST may take, connection included; then it is tried again."},
    {.name = "webhooks[].retry_max", .type = CONFIG_DURATION, .def = "5m", .min = KEY_SECOND,
     .max = KEY_HOUR, KEY_WEBHOOK(retry_max_ms),
     .doc = "Longest wait between two tries of a batch (the wait doubles from 1s up to it)."},
    {.name = "webhooks[].backlog_max", .type = CONFIG_SIZE, .def = "100M", .min = 4 * KEY_KB,
     .max = 1024 * KEY_GB, KEY_WEBHOOK(backlog_max),
     .doc = "Octets of events kept on disk for the endpoint until it takes them; events beyond "
            "it are dropped (webhook.backlog_full)."},
    {.name = "cluster", KEY_SECTION,
     .doc = "Several nodes sending from one set of egress addresses: their rates, connections and "
            "suspensions are kept together in Redis."},
    {.name = "cluster.redis", .type = CONFIG_STRING, .check = config_check_redis,
     KEY_AT(cluster.redis),
     .doc = "redis-server that holds the shared limits: a unix socket path or a numeric "
            "\"address:port\" (\"[v6]:port\"). Unset: every limit is this node's alone."},
    {.name = "cluster.nodes", .type = CONFIG_UINT, .def = "1", .min = 1, .max = 1000,
     KEY_AT(cluster.nodes),
     .doc = "Nodes sharing the limits. While Redis cannot be reached each node keeps to 1/nodes "
            "of every rate and connection limit."},
    {.name = "cluster.key_prefix", .type = CONFIG_STRING, .def = "\"sluice:\"",
     KEY_AT(cluster.key_prefix),
     .doc = "Put in front of every Redis key; nodes share limits when they use the same one."},
    {.name = "cluster.lease_ttl", .type = CONFIG_DURATION, .def = "30s", .min = KEY_SECOND,
     .max = KEY_HOUR, KEY_AT(cluster.lease_ttl_ms),
     .doc = "A connection's lease on one of a destination's connections, renewed while the "
            "connection lives; a node that dies frees its connections after this long."},
    {.name = "cluster.timeout", .type = CONFIG_DURATION, .def = "1s", .min = 10,
     .max = 60 * KEY_SECOND, KEY_AT(cluster.timeout_ms),
     .doc = "How long Redis may take to answer before it counts as unreachable and the node "
            "falls back to its share."},

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
    {.name = "limits.spool_min_free", .type = CONFIG_SIZE, .def = "1G", .min = 0,
     .max = 1024 * KEY_GB, KEY_AT(limits.spool_min_free),
     .doc = "Free space to keep on the spool's file system: MAIL gets 452 4.3.1 when less is "
            "left, or less than this plus its SIZE=. 0: only SIZE= is checked."},
    {.name = "limits.spool_min_free_percent", .type = CONFIG_UINT, .def = "5", .min = 1,
     .max = 100, KEY_AT(limits.spool_min_free_percent),
     .doc = "Caps limits.spool_min_free at this share of the file system's size, for small "
            "disks; 100: no cap."},
    {.name = "limits.command_timeout", .type = CONFIG_DURATION, .def = "5m", .min = KEY_SECOND,
     .max = KEY_HOUR, KEY_AT(limits.command_timeout_ms),
     .doc = "How long a client may take to send a whole command line, counted from the previous "
            "reply (RFC 5321 4.5.3.2.7); also bounds a TLS handshake."},
    {.name = "limits.data_timeout", .type = CONFIG_DURATION, .def = "3m", .min = KEY_SECOND,
     .max = KEY_HOUR, KEY_AT(limits.data_timeout_ms),
     .doc = "How long a client may pause while sending message data (RFC 5321 4.5.3.2.6)."},
    {.name = "limits.data_deadline", .type = CONFIG_DURATION, .def = "10m", .min = KEY_SECOND,
     .max = KEY_DAY, KEY_AT(limits.data_deadline_ms),
     .doc = "How long the message data may take in all, from the 354 reply to the final dot."},
    {.name = "limits.session_lifetime", .type = CONFIG_DURATION, .def = "1h", .min = KEY_SECOND,
     .max = 7 * KEY_DAY, KEY_AT(limits.session_lifetime_ms),
     .doc = "How long a client session may last: past it, 421 at its next command (a message "
            "being sent is finished first)."},
};
/* clang-format on */

#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

#endif
