/*
 * What the files of the configuration loader share; everyone else uses lib/config.h. Each file
 * uses only those listed before it:
 *   config_tree.c       errors as "file:line:column: message" lines, and the YAML document as a
 *                       tree of nodes that know where they were written
 *   config_scalar.c     values as text: numbers with units, addresses, names, networks, and the
 *                       checks that rows of the key table name
 *   config.c            lookups in a loaded configuration (the public ones of config.h)
 *   config_values.c     one key's value, from its node into its field, or a message saying why not
 *   config_walk.c       the key table (config_keys.h): mappings walked against it, defaults, and
 *                       the keys that hold sections (listeners, domains, lists, egress pools)
 *   config_loader.c     config_load_*: the stages in order, then what needs every key (shaping
 *                       rules, checks across keys); the reference count and freeing
 *   config_reference.c  the key table as the reference, and the embedded default configuration
 */
#ifndef SLUICE_CONFIG_INT_H
#define SLUICE_CONFIG_INT_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/config.h"

/* ---- The key table's rows (the table itself is config_keys.h) ---- */

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
    CONFIG_RATE,      /* struct config_rate: "6/s", "500/10m" or "none" (lib/ratelimit.h) */
    CONFIG_DURATIONS, /* uint64_t * milliseconds at offset, size_t count at aux; non-empty */
    CONFIG_COUNTS,    /* uint64_t * whole numbers at offset, size_t count at aux; non-empty */
    CONFIG_NAMES,     /* char ** at offset, size_t count at aux: one name or a list; lower-cased,
                         a trailing dot dropped, then the key's check */
    CONFIG_LIST,      /* array of elem_size structs at offset, size_t count at aux: a list of
                         mappings of "<this key>[].*" keys; each struct's config_pos at pos_offset */
    CONFIG_EGRESS_POOLS,  /* struct config's egress_pools: name -> list of "egress.pools.*[].*" */
    CONFIG_SHAPING_RULES, /* struct config's shaping rules: a list of "shaping.rules[].match"
                             plus any "shaping.default.*" key */
};

/* The struct that a key's offsets are relative to. */
enum config_scope {
    CONFIG_SCOPE_CONFIG,    /* struct config */
    CONFIG_SCOPE_LISTENER,  /* struct config_listener */
    CONFIG_SCOPE_DOMAIN,    /* struct config_domain */
    CONFIG_SCOPE_EGRESS,    /* struct config_egress_addr */
    CONFIG_SCOPE_SHAPING,   /* struct config_shaping */
    CONFIG_SCOPE_RULE,      /* struct config_shaping_rule */
    CONFIG_SCOPE_DKIM,      /* struct config_dkim */
    CONFIG_SCOPE_DNSBL,     /* struct config_dnsbl */
    CONFIG_SCOPE_BACKOFF,   /* struct config_backoff */
    CONFIG_SCOPE_REPLY,     /* struct config_reply_rule */
    CONFIG_SCOPE_DOCTOR,    /* struct config_blocklist (doctor.blocklists) */
    CONFIG_SCOPE_WEBHOOK,   /* struct config_webhook */
    CONFIG_SCOPE_WARMUP,    /* struct config_warmup_step (egress.pools.*[].warmup.schedule) */
    CONFIG_SCOPE_TRACE_KEY, /* struct config_trace_key (feedback.trace_keys) */
    CONFIG_SCOPE_TENANT,    /* struct config_tenant (tenants) */
};

#define CONFIG_KEY_REQUIRED 1u   /* no default: leaving it out is an error */
#define CONFIG_KEY_POS 2u        /* STRING, PATH: where the value is written goes to pos_offset */
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
    size_t elem_size, pos_offset; /* CONFIG_LIST; pos_offset also CONFIG_KEY_POS */
};

/* The table, instantiated once in config_walk.c. */
extern const struct config_key *const config_key_table;
extern const size_t config_key_count;

/* ---- Errors and the YAML tree (config_tree.c) ---- */

/* Longest value quoted back in a message, and the buffer that holds it escaped. */
#define SHOWN_MAX 60
#define SHOWN_BUF (SHOWN_MAX * 4 + 4)
/* Room for a dotted key name in messages: "domains.<253 octets>.deliver_to". */
#define NAME_BUF 320

/* Where messages go: "file:line:column: message" lines appended to out, the first ones only. */
struct errors {
    const char *file;
    struct buf *out;
    int count; /* all reported, including those past the cap */
};

void config_verror_at(struct errors *e, unsigned line, unsigned column, const char *fmt,
                      va_list ap);
/* Quotes text for a message: printable ASCII as is, other octets as \xNN, long text cut short, so
 * that a message stays one readable line whatever the file holds. Returns out. */
const char *config_shown(const char *text, size_t len, char out[SHOWN_BUF]);

enum node_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING };

/* The parsed document, kept until the load ends so that any message can point at any node. */
struct node {
    enum node_kind kind;
    int plain;  /* a scalar written without quotes: "", "~" and "null" then mean nothing */
    char *text; /* scalar value, NUL-terminated; may hold NULs of its own (see len) */
    size_t len;
    struct node **items; /* sequence items, or mapping keys and values alternating */
    size_t nitems, cap;
    unsigned line, column; /* 1-based */
};

/* Parses text into a tree with libyaml's event API; *root is NULL for an empty document. On
 * error, returns -EINVAL after reporting to e. */
int config_tree_build(const char *text, size_t len, struct errors *e, struct node **root);
void config_node_free(struct node *n);
/* The node is a scalar whose text is exactly `word`. */
int config_node_is(const struct node *n, const char *word);
/* NULL, or a plain scalar that YAML reads as nothing: "", "~", "null". */
int config_node_is_null(const struct node *n);
/* "a single value", "a list", "a mapping": for "expected ..., not ..." messages. */
const char *config_node_kind_name(enum node_kind kind);

/* ---- Values as text (config_scalar.c) ---- */

/* A number as a key of `type` writes it: a size ("50M"), a duration in milliseconds ("30s"; plain:
 * seconds) or a whole number. 1 with *out set; 0 when it is none of these, or too large. */
int config_parse_amount(const char *s, enum config_key_type type, uint64_t *out);
/* The type of one item of a list of numbers (DURATIONS, COUNTS); other types are their own. */
static inline enum config_key_type config_item_type(enum config_key_type type)
{
    return type == CONFIG_DURATIONS ? CONFIG_DURATION : type == CONFIG_COUNTS ? CONFIG_UINT : type;
}
/* A bound or a default as a person writes it: "1k", "2G", "30s", "1h". */
void config_format_value(enum config_key_type type, uint64_t v, char *out, size_t size);
/* words (NULL-terminated) joined by ", " into out. */
void config_join_words(const char *const *words, char *out, size_t size);
/* "IPv4:port" or "[IPv6]:port"; the port may be left out unless need_port. The host must be a
 * numeric address. Returns NULL, or why not. */
const char *config_parse_hostport(const char *s, int need_port, struct sockaddr_storage *ss);
int config_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* A host or domain name (RFC 1035 §2.3.1 with digits allowed first, RFC 1123 §2.1), without a
 * trailing dot. Returns NULL, or why not. */
const char *config_domain_why(const char *s);
/* "address/prefix" into c (its text and pos are left to the caller); -EINVAL with why. */
int config_parse_cidr(const char *s, struct config_cidr *c, char *why, size_t why_size);

/* Copies a name lower-cased and without one trailing dot into out[size]; 0 when it does not fit
 * or is empty. */
static inline int canonical_name(const char *s, size_t len, char *out, size_t size)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len >= size || memchr(s, '\0', len) != NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    out[len] = '\0';
    return 1;
}

/* Named by rows of the key table: the default of server.hostname, and checks that return NULL or
 * why the value is not fit. */
char *config_default_hostname(void);
/* Names: */
const char *config_check_hostname(const char *value);
const char *config_check_listener_name(const char *value); /* listeners and egress pools */
const char *config_check_mx_pattern(const char *value);    /* "mx.example.net", "*.example.net" */
const char *config_check_enhanced_pattern(const char *value); /* "4.7.28", "4.7." */
const char *config_check_selector(const char *value);         /* DKIM, all-digit labels allowed */
/* Addresses: */
const char *config_check_dns_server(const char *value);
const char *config_check_http_listen(const char *value); /* "address:port" */
const char *config_check_deliver_to(const char *value);
const char *config_check_ip(const char *value);
/* "2026-12-01" (from 1970 on) as days since 1970-01-01; "+02:00" as minutes east of UTC. 1, or 0
 * when the text is not one. */
int config_parse_date(const char *value, int64_t *days);
int config_parse_utc_offset(const char *value, int *minutes);
const char *config_check_date(const char *value);       /* "2026-12-01" */
const char *config_check_utc_offset(const char *value); /* "+02:00", "-05:30" */
const char *config_check_provider(const char *value);   /* "*", a domain or "*.example.net" */
const char *config_check_clamd(const char *value);
const char *config_check_redis(const char *value);
/* DKIM signing and attachments: */
const char *config_check_dkim_algorithm(const char *value);
const char *config_check_canonicalization(const char *value);
const char *config_check_identity(const char *value);
const char *config_check_mailbox(const char *value); /* "user@domain" */
const char *config_check_extension(const char *value);
/* Webhooks: */
const char *config_check_http_url(const char *value);     /* http:// or https:// and a host */
const char *config_check_http_header(const char *value);  /* "Name: value" */
const char *config_check_log_event(const char *value);    /* a name of the log event table */
const char *config_check_trace_key_id(const char *value); /* 1 to 8 letters and digits */
const char *config_check_field_name(const char *value);   /* "X-Sluice-Tenant" */
const char *config_check_tenant_name(const char *value);  /* "acme", "alice@example.com" */
const char *config_check_trace_secret(const char *value); /* 16 characters or more */

/* ---- One key's value (config_values.c) ---- */

/* One load in progress. */
struct load {
    struct config *cfg;
    struct errors e;
    int defaults; /* > 0 while a default is applied: its nodes are not in the file */
    int inherit;  /* > 0 while a shaping rule is read: keys left out keep the inherited value */
    const struct node **where;       /* config_key_count entries: each key of struct config as
                                        written, for checks across keys */
    struct config_pos *listener_tls; /* where each listener's tls mode is written */
    const struct node *site_rules;   /* shaping.rules, read once shaping.default is */
    struct config_pos *rule_pool;    /* per rule: where its pool is written; file NULL: inherited */
};

static inline void *field_at(void *base, size_t offset)
{
    return (char *)base + offset;
}

/* Where node n is written (line 0 for a default). */
struct config_pos config_pos_of(const struct load *ld, const struct node *n);
/* Reports a problem at pos, or at node n (the parent mapping for a missing key). */
void __attribute__((format(printf, 3, 4)))
config_fail_at(struct load *ld, struct config_pos pos, const char *fmt, ...);
void __attribute__((format(printf, 3, 4)))
config_fail(struct load *ld, const struct node *n, const char *fmt, ...);
/* 1 when n is of `kind`; else reports "expected <what key k takes>, not <what n is>" and 0. */
int config_expect(struct load *ld, const struct config_key *k, const struct node *n,
                  const char *name, enum node_kind kind);
/* Sets the field of key k in base from node n (not a null one), named `name` in messages; for
 * every type but the sections and the lists and maps of them. */
void config_value_set(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base);

/* ---- The walk (config_walk.c) ---- */

/* The row of the key table named `name`; aborts when there is none (a bug, not bad input). */
size_t config_key_index(const char *name);
/* Applies the keys of `map` (NULL: the section is absent or empty) that the table lists inside
 * section `prefix` to `base`, then the defaults of those it leaves out. `display` names the map
 * in messages ("listeners[2]"); `where`, when given (config_key_count entries), receives each
 * key's value node. */
void config_walk_map(struct load *ld, const struct node *map, const char *prefix,
                     const char *display, void *base, const struct node **where);
/* Appends the mappings of list n, each walked as section `prefix` ("shaping.reply_rules[]"), to
 * the array of elem_size structs at *array (*count of them already), each struct's config_pos at
 * pos_offset. `name` names the list in messages. */
void config_walk_list(struct load *ld, const struct node *n, const char *name, const char *prefix,
                      size_t elem_size, size_t pos_offset, void **array, size_t *count);

#endif
