/*
 * SPF (RFC 7208): is the client allowed to send mail for the MAIL FROM domain (or the HELO name for
 * the null sender)? Evaluated at MAIL through lib/dns, inside the libuv loop, one query at a time;
 * the result decides per inbound.spf and goes into Authentication-Results (RFC 8601).
 * Our own evaluator rather than libspf2: libspf2 resolves synchronously, so it would need a thread
 * per check and its own resolver, bypassing dns.servers and our cache, and it is barely maintained
 * upstream. The record parser and the macro expander are pure functions (fuzzed).
 * Memory: a check holds one parsed record per nesting level (at most 11, each about 7 KB).
 * Not done: exp= explanations are parsed and checked but never fetched (the reply uses our own
 * text), and %{p} expands to "unknown" (allowed by §7.3) instead of costing PTR lookups.
 */
#ifndef SLUICE_SPF_H
#define SLUICE_SPF_H

#include <stddef.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "policy/policy.h"

#define SPF_RECORD_MAX 4096 /* octets of a record we parse; a longer one is a permerror */
#define SPF_TERMS_MAX 64    /* directives and modifiers of one record */
#define SPF_DNS_MECH_MAX 10 /* include, a, mx, ptr, exists, redirect per check (§4.6.4) */
#define SPF_VOID_MAX 2      /* lookups answering NXDOMAIN or no records (§4.6.4) */
#define SPF_MX_NAMES_MAX 10 /* MX names of one mx mechanism (§4.6.4) */
#define SPF_EXPAND_MAX 1024 /* octets of one macro expansion before domain truncation */
#define SPF_DOMAIN_MAX 253
#define SPF_LOCAL_MAX 64 /* RFC 5321 §4.5.3.1.1; a longer local part is cut for %{l} */

enum spf_status {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
};

struct spf_result {
    enum spf_status status;
    const char *identity; /* "mailfrom" or "helo": which one was checked */
    const char *domain;   /* the domain checked (the sender's, or the HELO name) */
    const char *reason;   /* the mechanism that matched ("-all", "ip4:192.0.2.0/24"), "default"
                           * for neutral with no match, or what went wrong */
    unsigned lookups;     /* DNS-querying terms evaluated (include, a, mx, ptr, exists, redirect);
                           * past SPF_DNS_MECH_MAX the result is a permerror */
};

/* ---- the record, parsed (pure) ---- */

enum spf_mech { SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4, SPF_IP6, SPF_EXISTS };

struct spf_term {
    char qualifier; /* '+', '-', '~' or '?' */
    enum spf_mech mech;
    const char *domain; /* domain-spec (unexpanded, inside the record's text) or NULL */
    unsigned cidr4, cidr6;
    struct in_addr ip4;
    struct in6_addr ip6;
};

struct spf_record {
    char text[SPF_RECORD_MAX + 1]; /* split copy of the record; terms point into it */
    struct spf_term terms[SPF_TERMS_MAX];
    size_t nterms;
    const char *redirect; /* redirect= domain-spec or NULL */
    const char *exp;      /* exp= domain-spec or NULL */
};

/* 1 when the TXT string is an SPF record: "v=spf1" alone or followed by a space (§4.5). */
int spf_record_is_spf(const char *txt, size_t len);

/* Parses an SPF record (starting "v=spf1") into *rec. Returns 0, or -1 on any syntax error
 * (a permerror), with a static message in *err. */
int spf_record_parse(const char *txt, size_t len, struct spf_record *rec, const char **err);

/* What macros expand to (§7.3). Strings are NUL-terminated; any may be empty. */
struct spf_macro_env {
    const char *sender;        /* s: local@domain */
    const char *local;         /* l */
    const char *sender_domain; /* o */
    const char *domain;        /* d: the current domain */
    const char *ip;            /* i: dotted IPv4 or dot-separated nibbles of IPv6 */
    const char *ip_text;       /* c: the address as usually written */
    const char *helo;          /* h */
    const char *ip_version;    /* v: "in-addr" or "ip6" */
    const char *receiver;      /* r: our host name */
    long long now;             /* t */
};

/* The macro values of one check, and the storage they point into. */
struct spf_macro_values {
    char sender[SPF_LOCAL_MAX + 1 + SPF_DOMAIN_MAX + 1], local[SPF_LOCAL_MAX + 1];
    char sender_domain[SPF_DOMAIN_MAX + 1], helo[SPF_DOMAIN_MAX + 1];
    char hostname[SPF_DOMAIN_MAX + 1];
    char ip[64], ip_text[INET6_ADDRSTRLEN];
    struct spf_macro_env env; /* points into the arrays above; domain is the sender's */
};

/* Fills v for a check of `sender` (MAIL FROM's address; "" for the null sender, which stands for
 * postmaster@helo, and no local part means "postmaster") from `client`, with our `hostname` and the
 * time `now`. Pure. Returns 0, or -1 when the identity's domain is longer than SPF_DOMAIN_MAX (it
 * is then cut in v, and the check gives none). */
int spf_macro_values_init(struct spf_macro_values *v, const struct dns_addr *client,
                          const char *helo, const char *sender, const char *hostname,
                          long long now);

/* Expands the macro-string `spec` into out[size]. c, r and t are allowed only when `explanation`
 * is set. A domain-spec's result longer than 253 octets loses labels from the left (§7.3).
 * Returns the length, or -1 for an invalid macro or a result longer than size - 1. */
int spf_macro_expand(const char *spec, const struct spf_macro_env *env, int explanation,
                     int is_domain, char *out, size_t size);

/* ---- the check (asynchronous) ---- */

typedef void (*spf_cb)(void *arg, const struct spf_result *res);

struct spf_check;

/* Checks whether `client` may send for `sender` (MAIL FROM's address, without angle brackets;
 * "" for the null sender, which checks postmaster@helo per §2.4). `helo` and `hostname` (ours, for
 * %{r}) are copied. Returns 0 and *out, then calls cb once, never from inside this call, with a
 * result that lives as long as the check; or returns -EINVAL (client of another family) or the
 * resolver's error and never calls cb. A domain that is not a valid multi-label name gives none. */
int spf_check_start(struct dns_resolver *r, const struct sockaddr *client, const char *helo,
                    const char *sender, const char *hostname, spf_cb cb, void *arg,
                    struct spf_check **out);

/* Ends the check: before its callback ran, the callback is cancelled (a lookup in flight finishes
 * unseen); afterwards, the result is freed. Allowed inside the callback. */
void spf_check_free(struct spf_check *c);

/* The decision at MAIL: under reject_fail, fail is 550 5.7.23 (RFC 7372 "SPF validation
 * failed"); everything else, and every result under ignore and mark, is accepted. */
struct policy_decision spf_verdict(const struct spf_result *res, enum inbound_spf mode);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" (RFC 8601 §2.7.2). */
const char *spf_status_name(enum spf_status s);

/* The Authentication-Results fragment: "spf=pass smtp.mailfrom=example.com" (or smtp.helo= for the
 * null sender). Returns the length snprintf would write. */
int spf_result_format(const struct spf_result *res, char *out, size_t size);

#endif
