/*
 * Configuration: one YAML file (or the embedded default) loaded with libyaml into an immutable,
 * reference-counted struct config. Every key comes from the key table in config_keys.h, so parsing,
 * validation, defaults and the reference documentation cannot disagree. A reload builds a new
 * struct and swaps it in whole; sessions keep the one they started with until they end.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <regex.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/log.h"

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
    char *name;            /* lowercased A-labels, no trailing dot */
    char *deliver_to;      /* NULL: the domain's MX */
    char *recipients;      /* NULL: every local part is accepted */
    int verify_recipients; /* ask deliver_to about each recipient at RCPT (cached) */
    struct config_pos pos;
};

/* egress.pools.*[].warmup.schedule[]: one provider's messages per day while an address warms
 * up. */
struct config_warmup_step {
    char *provider;    /* a destination (a domain or a provider's MX pattern), or "*": any other */
    uint64_t *per_day; /* messages on day 1, 2, ...; after the last day the address is warm */
    size_t ndays;
    struct config_pos pos;
};

enum warmup_overflow {
    WARMUP_OVERFLOW_NEXT, /* mail beyond the allowance goes from the pool's other addresses */
    WARMUP_OVERFLOW_WAIT, /* mail beyond it waits for the next day */
};

/* egress.pools.*[].warmup: a new address's daily allowances. No schedule: no warm-up. */
struct config_warmup {
    char *start;       /* "YYYY-MM-DD": day 1; required with a schedule */
    int64_t start_day; /* start as days since 1970-01-01 */
    char *utc_offset;  /* "+00:00": where a day begins */
    int offset_minutes;
    int overflow; /* enum warmup_overflow */
    struct config_warmup_step *schedule;
    size_t nschedule;
    struct config_pos start_pos;
};

/* egress.pools: named lists of source addresses for outbound delivery. */
struct config_egress_addr {
    char *address;                /* as written: "192.0.2.10" or "2001:db8::10" */
    struct sockaddr_storage addr; /* port 0 */
    char *ehlo;                   /* EHLO name; default: server.hostname */
    struct config_warmup warmup;
    struct config_pos pos;
};

struct config_egress_pool {
    char *name;
    struct config_egress_addr *addrs;
    size_t naddrs;
    struct config_pos pos;
};

enum shaping_tls {
    SHAPING_TLS_OPPORTUNISTIC, /* STARTTLS when offered, certificate not checked (RFC 7435) */
    SHAPING_TLS_REQUIRED,      /* STARTTLS with a certificate valid for the MX host, else defer */
    SHAPING_TLS_NONE,          /* never STARTTLS */
    SHAPING_TLS_DANE,          /* DANE (RFC 7672) where TLSA records exist, else as mta-sts */
    SHAPING_TLS_MTA_STS,       /* the receiver's MTA-STS policy (RFC 8461), else opportunistic */
};

/* A rate such as "6/s": count per period_ms; count 0 is "none" (unlimited). Same layout as
 * struct ratelimit_rate in lib/ratelimit.h. */
struct config_rate {
    uint64_t count;
    uint64_t period_ms;
};

/* The values of one shaping rule, after the keys it leaves out were inherited from
 * shaping.default. */
struct config_shaping {
    unsigned connections; /* concurrent, per egress address */
    unsigned messages_per_connection;
    unsigned recipients_per_connection;
    unsigned recipients_per_message;
    struct config_rate rate;            /* recipients per egress address */
    struct config_rate message_rate;    /* messages per egress address */
    struct config_rate connection_rate; /* connections opened per egress address */
    unsigned rate_margin_percent;       /* the rates' windows widened by this much of the period */
    uint64_t *retry_ms;                 /* delays before retry 1, 2, ...; the last repeats */
    size_t nretry;
    uint64_t expire_ms; /* after this long in the queue a message bounces */
    enum shaping_tls tls;
    char *pool; /* egress pool; "default" */
    uint64_t connect_timeout_ms;
    uint64_t idle_timeout_ms;      /* an idle connection waits this long for more mail; 0: QUIT */
    uint64_t recovery_interval_ms; /* after a backoff or throttle: one step up per clean interval */
    unsigned recovery_step_percent; /* each step: this share of the way back to the full limits */
    int chunking;                   /* BDAT to a server offering CHUNKING (RFC 3030), else DATA */
};

struct config_shaping_rule {
    char **match_mx; /* MX host patterns: "mx.example.net" or "*.example.net" (any depth) */
    size_t nmatch_mx;
    char **match_domain; /* recipient domains, exact (lower case) */
    size_t nmatch_domain;
    struct config_shaping values;
    int shipped; /* from Sluice's shipped provider rules (after the site's own rules) */
    struct config_pos pos;
};

/* shaping.backoff: a named set of slower limits that a reply rule's backoff action applies to a
 * (destination, egress address). 0 (a rate: count 0) keeps the destination's own value. */
struct config_backoff {
    char *name;
    unsigned connections;
    unsigned messages_per_connection;
    unsigned recipients_per_connection;
    struct config_rate rate;
    struct config_pos pos;
};

/* What a reply rule does when it fires, for its duration. */
enum reply_rule_action {
    REPLY_RULE_SUSPEND,             /* no connection from the egress address that got the reply */
    REPLY_RULE_SUSPEND_DESTINATION, /* no connection to the destination at all */
    REPLY_RULE_BACKOFF,             /* the egress address sends under the named backoff limits */
    REPLY_RULE_BOUNCE,              /* the destination's queued mail fails with a DSN */
};

/* shaping.reply_rules, then the shipped ones: a remote reply that matches code, enhanced code and
 * text (all that are given) from a matching destination acts for duration_ms, once threshold
 * matches fell within threshold_window_ms. */
struct config_reply_rule {
    char *name;
    char **match_mx; /* MX host patterns, as shaping rules; none and no domain: everywhere */
    size_t nmatch_mx;
    char **match_domain;
    size_t nmatch_domain;
    unsigned code;  /* 0: any */
    char *enhanced; /* "4.7.28", or a prefix ending at a dot ("4.7."); NULL: any */
    char *text;     /* POSIX extended regular expression, case-insensitive; NULL: any */
    struct config_pos text_pos;
    regex_t *regex; /* compiled from text at load */
    unsigned threshold;
    uint64_t threshold_window_ms;
    enum reply_rule_action action;
    char *backoff; /* the shaping.backoff set's name, for action backoff */
    struct config_pos backoff_pos;
    const struct config_backoff *backoff_set; /* resolved at load */
    uint64_t duration_ms;
    char *reason; /* what the reply means, for the log and a bounce's DSN; NULL: none */
    int dry_run;  /* log what the rule would do, and do the fallback instead */
    int shipped;
    struct config_pos pos;
};

/* dkim: one signing entry (see mta/dkim/dkim.h: struct dkim_entry_conf). */
struct config_dkim {
    char *domain;
    char *signing_domain; /* NULL: domain */
    char *selector;
    char *key;       /* path of the PEM private key */
    char *algorithm; /* "rsa-sha256" or "ed25519-sha256" */
    char *canonicalization;
    uint64_t expire_ms; /* x= after t=; 0: none */
    char *identity;     /* i=; NULL: none */
    struct config_pos pos;
};

enum dkim_on_error {
    DKIM_ON_ERROR_ACCEPT,   /* accept unsigned and log loudly */
    DKIM_ON_ERROR_TEMPFAIL, /* answer 451 */
};

struct config_dnsbl {
    char *zone;
    unsigned weight;
    struct config_pos pos;
};

/* doctor.blocklists: a public DNS blocklist `sluice doctor` looks egress addresses up in. */
struct config_blocklist {
    char *zone;
    char *name;    /* shown in the report; NULL: the zone */
    char *removal; /* where to ask for removal; NULL: not known */
    struct config_pos pos;
};

/* webhooks: an HTTP(S) endpoint that gets the selected log events POSTed as JSON batches
 * (mta/webhooks/webhooks.h). */
struct config_webhook {
    char *url;     /* http:// or https:// */
    char **events; /* names from the log event table; at least one */
    size_t nevents;
    unsigned batch_max;     /* events per POST at most */
    uint64_t batch_wait_ms; /* how long the first event of a batch may wait for more */
    char **headers;         /* extra "Name: value" lines */
    size_t nheaders;
    char *bearer_token; /* sent as "Authorization: Bearer <token>"; NULL: none */
    char *ca_file;      /* CAs for an https URL; NULL: the system's */
    uint64_t timeout_ms;
    uint64_t retry_max_ms; /* the longest wait between two tries */
    uint64_t backlog_max;  /* octets of events waiting on disk, at most */
    struct config_pos pos;
};

/* feedback.trace_keys: one key of the MAC in X-Sluice-Trace; the last signs, all verify. */
struct config_trace_key {
    char *id;     /* named in each trace, so a rotated key still verifies older ones */
    char *secret; /* the HMAC-SHA256 key, as written */
    struct config_pos pos;
};

/* tenants[].priority: a destination sends the mail of a higher class first (docs/tenants.md). */
enum tenant_priority {
    TENANT_PRIORITY_TRANSACTIONAL,
    TENANT_PRIORITY_NORMAL,
    TENANT_PRIORITY_BULK,
};
#define TENANT_PRIORITIES 3

/* tenants[]: what a tenant's mail is sent with. A tenant not listed sends like the defaults. */
struct config_tenant {
    char *name;   /* the authenticated user, or what tenancy.tenant_header names */
    char *pool;   /* egress pool its mail leaves from; NULL: the shaping's */
    int priority; /* enum tenant_priority */
    /* tenants[].shaping: at each destination its mail never goes faster than these, on top of
     * the destination's own limits (count 0: no limit of its own). */
    struct config_rate rate;         /* recipients */
    struct config_rate message_rate; /* messages */
    struct config_pos pos, pool_pos;
};

enum inbound_reverse_dns {
    REVERSE_DNS_IGNORE,
    REVERSE_DNS_REQUIRE_PTR,
    REVERSE_DNS_REQUIRE_FORWARD_CONFIRMED,
};

enum inbound_spf { SPF_IGNORE, SPF_MARK, SPF_REJECT_FAIL };

enum inbound_clamd_down { CLAMD_DOWN_TEMPFAIL, CLAMD_DOWN_ACCEPT };
/* What RCPT does with a suppressed recipient of relayed mail. */
enum suppression_action { SUPPRESSION_ACTION_REJECT, SUPPRESSION_ACTION_DROP };

enum inbound_dmarc { DMARC_IGNORE, DMARC_MARK, DMARC_ENFORCE };

struct config {
    int refs;
    char *source; /* file path, or "<embedded>" */

    struct {
        char *hostname;             /* default: gethostname() */
        char *spool;                /* default: ./var/spool */
        char *user;                 /* NULL: root becomes the `sluice` user (mta/run_user.h) */
        char *log_file;             /* "-": stderr */
        enum log_level log_level;   /* events below it are not written (log_set_level) */
        uint64_t shutdown_grace_ms; /* SIGTERM: how long transactions in progress may finish */
        char *postmaster; /* where mail to postmaster and double bounces go; NULL: nowhere */
        struct config_rate postmaster_rate; /* double bounces sent there; count 0: no bound */
        /* Where spool, user and log.file are written (line 0: the default), for messages. */
        struct config_pos spool_pos, user_pos, log_file_pos;
    } server;

    struct {
        char **servers; /* "host:port" or "host"; none: /etc/resolv.conf */
        size_t nservers;
        uint64_t timeout_ms;
        int dnssec; /* trust the servers' AD bit (when all are on loopback): DANE on */
    } dns;

    struct {
        char *certificate; /* NULL: no TLS offered */
        char *key;
        char *ca_file; /* CAs outbound certificate checks trust; NULL: the system store */
        struct config_pos certificate_pos, key_pos;
    } tls;

    /* MTA-STS policies of the domains mail goes to (mta/delivery/mta_sts.h). */
    struct {
        uint64_t recheck_ms;       /* a cached policy's TXT record is checked this often */
        uint64_t fetch_timeout_ms; /* one HTTPS fetch of a policy, connection included */
        unsigned max_domains;      /* domains kept in memory (read at start) */
    } mta_sts;

    /* TLS reporting of outbound sessions, RFC 8460 (mta/delivery/tls_rpt.h). */
    struct {
        int enabled;
        char *organization;     /* organization-name; NULL: server.hostname */
        char *contact;          /* contact-info; NULL: the sender */
        char *sender;           /* From: and envelope sender; NULL: postmaster@server.hostname */
        uint64_t send_after_ms; /* past midnight UTC, when the day's reports go */
        unsigned max_domains;   /* (day, domain) entries counted at once */
    } tls_rpt;

    struct config_listener *listeners;
    size_t nlisteners;

    /* The operations interface (mta/http): metrics and the status API. */
    struct {
        char **listen; /* "address:port" as written; none: no HTTP server */
        size_t nlisten;
        int tls;                     /* HTTPS on every http.listen address */
        char *certificate, *key;     /* NULL: tls.certificate and tls.key */
        char *tokens;                /* file of "name:sha256-hex" lines; NULL: none */
        int metrics_public;          /* GET /metrics without a token */
        int status_page_loopback;    /* GET / without a token from a loopback address */
        unsigned max_connections;    /* open at once; more are closed at accept */
        uint64_t request_timeout_ms; /* a request (its headers and body) and an idle keep-alive */
        uint64_t max_header_size, max_body_size;
        struct config_pos certificate_pos, key_pos, tokens_pos;
    } http;

    struct {
        struct config_cidr *trusted_networks;
        size_t ntrusted_networks;
        char *users;                 /* NULL: no SMTP AUTH */
        int open_relay_acknowledged; /* relay.i_understand_this_is_an_open_relay: lint problems
                                        are warnings instead of errors */
        int allow_address_literals;  /* relayed mail to user@[address] is delivered there */
        struct config_pos users_pos;
    } relay;

    struct config_domain *domains;
    size_t ndomains;

    struct {
        struct config_dnsbl *dnsbl;
        size_t ndnsbl;
        unsigned dnsbl_threshold;
        enum inbound_reverse_dns reverse_dns;
        enum inbound_spf spf;
        int dkim_verify; /* DKIM signatures checked and reported in Authentication-Results */
        int reject_unknown_sender_domain; /* MAIL FROM's domain must have an MX or an address */
        char **blocked_attachments;       /* lower-case extensions without the dot */
        size_t nblocked_attachments;
        unsigned max_connections_per_client;
        struct config_rate max_connection_rate_per_client; /* count 0: no limit */
        uint64_t verify_positive_ttl_ms; /* how long a recipient probe's answer is reused */
        uint64_t verify_negative_ttl_ms;
        uint64_t pregreet_wait_ms; /* 0: no pregreet test */
        char *clamd;               /* clamd's socket (unix path or host:port); NULL: no scan */
        enum inbound_clamd_down clamd_down;
        enum inbound_dmarc dmarc;
        /* Clients and envelope sender domains whose DMARC failures are only marked. */
        struct config_cidr *dmarc_override_networks;
        size_t ndmarc_override_networks;
        char **dmarc_override_senders; /* each covers its subdomains too */
        size_t ndmarc_override_senders;
        char *public_suffix_list; /* the organizational domains' list, loaded for DMARC */
        struct config_pos public_suffix_list_pos;
    } inbound;

    struct {
        char *redis;           /* redis-server: unix path or address:port; NULL: no cluster */
        unsigned nodes;        /* nodes sharing the limits: each takes 1/nodes without Redis */
        char *key_prefix;      /* in front of every Redis key */
        uint64_t lease_ttl_ms; /* a connection lease not renewed for this long expires */
        uint64_t timeout_ms;   /* a Redis reply later than this: Redis counts as unreachable */
    } cluster;

    struct config_dkim *dkim;
    size_t ndkim;
    enum dkim_on_error dkim_on_error;

    struct config_egress_pool *egress_pools; /* none: one implicit address, EHLO server.hostname */
    size_t negress_pools;

    struct {
        struct config_shaping defaults;    /* shaping.default */
        struct config_shaping_rule *rules; /* site rules in order, then the shipped ones */
        size_t nrules;
        int provider_rules; /* shaping.provider_rules: the shipped rules are appended */
        struct config_backoff *backoffs; /* site sets, then the shipped ones; first name wins */
        size_t nbackoffs;
        struct config_reply_rule *reply_rules; /* site rules in order, then the shipped ones */
        size_t nreply_rules;
    } shaping;

    struct {
        unsigned port;                /* TCP port of remote MX hosts: 25 (tests use another) */
        char **bounce_category_files; /* site pattern files, tried before the shipped rules */
        size_t nbounce_category_files;
        uint64_t dsn_return_max;    /* RET=FULL: largest message a failure DSN carries whole */
        uint64_t *delay_warning_ms; /* ages of a deferred recipient that each get a delay DSN */
        size_t ndelay_warning;
        unsigned active_limit;     /* messages the scheduler keeps in memory at most */
        uint64_t active_window_ms; /* ... those due within this time; the rest wait on disk */
    } delivery;

    struct {
        char **addresses; /* where receivers send complaint reports (feedback loops) */
        size_t naddresses;
        char *verp_domain;                   /* NULL: the return path is left alone */
        char *sender_id;                     /* Feedback-ID's last part; NULL: no Feedback-ID */
        struct config_trace_key *trace_keys; /* none: no X-Sluice-Trace */
        size_t ntrace_keys;
        uint64_t trace_max_age_ms; /* older queue ids in a trace were never ours */
        unsigned alarm_threshold;  /* unrecognized reports tolerated per window */
        uint64_t alarm_window_ms;
        char *alarm_notify; /* NULL: the alarm is only logged */
    } feedback;

    /* Whose mail a message is (docs/tenants.md). */
    struct {
        char *tenant_header;   /* names the tenant of a trusted client's unauthenticated mail */
        char *campaign_header; /* names the campaign of relayed mail */
    } tenancy;
    struct config_tenant *tenants;
    size_t ntenants;

    struct {
        struct config_blocklist *blocklists; /* the site's, besides or instead of the shipped */
        size_t nblocklists;
        int shipped_blocklists; /* the shipped lists are checked too */
    } doctor;

    struct config_webhook *webhooks;
    size_t nwebhooks;

    struct {
        int enabled;                    /* relayed mail is checked against the list at RCPT */
        enum suppression_action action; /* for a tenant in neither list below */
        char **drop_tenants;            /* tenants whose suppressed recipients are dropped */
        size_t ndrop_tenants;
        char **reject_tenants; /* tenants whose suppressed recipients are refused */
        size_t nreject_tenants;
        char *path; /* the store's directory; NULL: <server.spool>/suppression */
        uint64_t hard_bounce_expiry_ms; /* how long a hard bounce suppresses; 0: for good */
        struct config_pos path_pos;
    } suppression;

    struct {
        uint64_t max_message_size; /* octets; advertised with SIZE */
        unsigned max_recipients_per_message;
        unsigned max_connections;        /* in all, across listeners */
        unsigned max_errors;             /* per session, then 421 and close */
        uint64_t spool_min_free;         /* octets to keep free on the spool's file system */
        unsigned spool_min_free_percent; /* ... at most this share of it */
        uint64_t command_timeout_ms;     /* RFC 5321 §4.5.3.2.7: 5 minutes for a whole command */
        uint64_t data_timeout_ms;        /* RFC 5321 §4.5.3.2.6: 3 minutes between data blocks */
        uint64_t data_deadline_ms;       /* the whole of DATA, 354 to the final dot */
        uint64_t session_lifetime_ms;    /* then 421 at the next command boundary */
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
/* The same reference as Markdown (as above), as roff for the sluice.yaml(5) manual page (one
 * tagged paragraph per key), or as plain text (`sluice help sluice.yaml`). */
enum config_reference_format {
    CONFIG_REFERENCE_MARKDOWN,
    CONFIG_REFERENCE_ROFF,
    CONFIG_REFERENCE_TEXT,
};
void config_describe_keys_as(enum config_reference_format format, struct buf *out);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* Lookups used on every session. */
const struct config_domain *config_domain_find(const struct config *cfg, const char *domain);
/* The egress pool called name, or NULL. */
const struct config_egress_pool *config_egress_pool_find(const struct config *cfg,
                                                         const char *name);

/* The entry of tenants[] called name, or NULL (also for NULL). */
const struct config_tenant *config_tenant_find(const struct config *cfg, const char *name);

/* Non-zero when addr (AF_INET or AF_INET6; v4-mapped v6 counts as v4) is inside a trusted network.
 */
const struct config_cidr *config_trusted_network_match(const struct config *cfg,
                                                       const struct sockaddr *addr);
/* The first of nets[0..n) that holds addr (IPv4-mapped IPv6 counts as IPv4), or NULL. */
const struct config_cidr *config_cidr_match(const struct config_cidr *nets, size_t n,
                                            const struct sockaddr *addr);

#endif
