/*
 * DMARC (RFC 7489) for inbound messages: the domain owner's policy, fetched as a TXT record at
 * _dmarc.<From domain> (or at its organizational domain) through lib/dns, is applied to the SPF
 * result from MAIL and the DKIM results from end of data when one of them is aligned with the
 * RFC5322.From domain. Our own evaluator rather than libopendmarc: its lookups are synchronous
 * (a pool thread each, its own resolver outside dns.servers) and what remains, the record and the
 * alignment, is short. The record parser, the From domain extraction and the evaluation are pure
 * functions (fuzzed); the lookup runs on the loop. The SMTP server's sink (mta/server) uses it.
 */
#ifndef SLUICE_DMARC_H
#define SLUICE_DMARC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "policy/public_suffix.h"
#include "policy/spf.h"

#define DMARC_DOMAIN_MAX 253
#define DMARC_DKIM_MAX 5 /* signatures looked at; DKIM verification checks no more */

enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };

/* A parsed record (§6.3). Tags we do not act on (rua, ruf, fo, rf, ri) are only checked for
 * presence where §6.6.3 needs it. */
struct dmarc_record {
    enum dmarc_policy p;
    enum dmarc_policy sp; /* p when the record has none */
    unsigned pct;         /* 0..100; 100 by default */
    char adkim, aspf;     /* 'r' (relaxed, the default) or 's' (strict) */
};

/* 1 when the TXT string is a DMARC record: it starts with "v=DMARC1" followed by ';', white
 * space or its end (§6.4: the version comes first, compared exactly). */
int dmarc_record_is_dmarc(const char *txt, size_t len);

/* Parses a record that dmarc_record_is_dmarc accepted. Unknown tags are ignored and a bad value
 * of sp, pct, adkim or aspf takes the default (§6.3); a missing or bad p is none when a rua tag
 * is present, else the record is unusable (§6.6.3 step 6). Returns 0, or -1 with a static
 * reason in *err. */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec, const char **err);

/* The RFC5322.From domain (§6.6.1) of the message's From fields, given as their values (after
 * the colon, possibly folded). Exactly one field is needed, whose addresses (outside groups'
 * display names, comments and quoted strings) all have the same domain. The domain is written
 * in lower case, as A-labels. Returns 0, or -1 with a static reason in *err (no From field,
 * several, no address, addresses of different domains, a domain that is not a host name). */
int dmarc_from_domain(const char *const *values, const size_t *lens, size_t nvalues, char *out,
                      size_t size, const char **err);

/* 1 when `domain` is aligned with the From domain: the same name in strict mode ('s'), the same
 * organizational domain in relaxed mode ('r'). Both lower case. */
int dmarc_aligned(const struct public_suffixes *psl, const char *from, const char *domain,
                  char mode);

/* What DKIM verification found, per signature (at most DMARC_DKIM_MAX, in header order). */
struct dmarc_dkim_results {
    size_t n;
    struct {
        char domain[DMARC_DOMAIN_MAX + 1]; /* d= */
        unsigned pass : 1;
    } sigs[DMARC_DKIM_MAX];
};

/* The identifiers authenticated before DMARC runs (§4.2). */
struct dmarc_identifiers {
    enum spf_status spf;
    char spf_domain[DMARC_DOMAIN_MAX + 1]; /* MAIL FROM's (or HELO's for <>); "" without SPF */
    struct dmarc_dkim_results dkim;
};

enum dmarc_status { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };

/* What the lookup found (§6.6.3). */
struct dmarc_policy_record {
    enum dmarc_status status;    /* PASS: a usable record; NONE: no (single) record; TEMPERROR */
    struct dmarc_record rec;     /* when PASS */
    unsigned organizational : 1; /* found at the organizational domain: sp applies */
};

struct dmarc_result {
    enum dmarc_status status;
    enum dmarc_policy policy;      /* the record's p (or sp) */
    enum dmarc_policy disposition; /* what the owner asks of this message after pct */
    const char *reason;            /* static: what made it pass or fail */
};

/* The evaluation (§6.6.2-§6.6.4): pass when an SPF pass or a DKIM pass is aligned with `from`
 * (the From domain); fail otherwise; none, temperror as the lookup found. `sample` (0..99, e.g.
 * derived from the Message-ID) below the record's pct applies the policy, else the next milder
 * one (§6.6.4). Pure. */
void dmarc_evaluate(const struct public_suffixes *psl, const char *from,
                    const struct dmarc_identifiers *ids, const struct dmarc_policy_record *found,
                    unsigned sample, struct dmarc_result *out);

/* 0..99, the same for the same text: pct's sample for a message, from its Message-ID. */
unsigned dmarc_sample(const char *text, size_t len);

/* inbound.dmarc_override: "network" when the client is in its networks, "sender" when the
 * envelope sender's domain (MAIL FROM's, "" for <>) is one of its senders or below one, else NULL:
 * the message's failures are then only marked. */
const char *dmarc_override_match(const struct config *cfg, const struct sockaddr *client,
                                 const char *sender_domain);

/* "none", "pass", "fail", "temperror", "permerror" (RFC 8601 §2.7 with RFC 7489 §11.2). */
const char *dmarc_status_name(enum dmarc_status s);
/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

/* ---- the lookup (asynchronous) ---- */

typedef void (*dmarc_lookup_cb)(void *arg, const struct dmarc_policy_record *found);

struct dmarc_lookup;

/* Looks up the record of `from` (lower case), then, when it has none and is not its own
 * organizational domain, the organizational domain's. Returns 0 and *out, then calls cb once,
 * never from inside this call; or returns the resolver's error and never calls cb. A DNS failure
 * is a temperror, never none (§6.6.3). */
int dmarc_lookup_start(struct dns_resolver *r, const struct public_suffixes *psl, const char *from,
                       dmarc_lookup_cb cb, void *arg, struct dmarc_lookup **out);

/* Ends the lookup: before its callback ran, the callback is cancelled (a query in flight finishes
 * unseen). Allowed inside the callback; NULL is a no-op. */
void dmarc_lookup_free(struct dmarc_lookup *l);

#endif
