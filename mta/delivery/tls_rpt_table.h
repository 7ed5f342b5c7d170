/*
 * TLS-RPT counts (RFC 8460 §4): per UTC day and policy domain (the recipient domain whose
 * MTA-STS policy applied, or for DANE the TLSA base domain), the TLS sessions that succeeded and those that failed, by
 * policy (sts, tlsa, no-policy-found) and failure detail (result type, MX host, sending and
 * receiving IP, reason). Bounded: at most max_domains (day, domain) entries and
 * TLS_RPT_ROWS_MAX failure rows per policy; what does not fit is counted as dropped. Pure (no I/O,
 * the day is passed in); also kept as JSON (tls_rpt_table_save/_load) so a restart keeps the day.
 * Owned by tls_rpt.c, loop thread only.
 */
#ifndef SLUICE_TLS_RPT_TABLE_H
#define SLUICE_TLS_RPT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/strmap.h"

#define TLS_RPT_ROWS_MAX 64 /* failure-details rows per policy and day */
#define TLS_RPT_DAY_LEN 10  /* "2026-12-05" */

enum tls_rpt_policy_type {
    TLS_RPT_POLICY_STS,  /* an MTA-STS policy applied (RFC 8460 §4.4: "sts") */
    TLS_RPT_POLICY_TLSA, /* DANE TLSA records applied ("tlsa") */
    TLS_RPT_POLICY_NONE, /* neither ("no-policy-found") */
    TLS_RPT_POLICY_TYPES,
};

/* Successes and RFC 8460 §4.3 result types. */
enum tls_rpt_result {
    TLS_RPT_SUCCESS,
    TLS_RPT_STARTTLS_NOT_SUPPORTED,
    TLS_RPT_CERT_HOST_MISMATCH,
    TLS_RPT_CERT_EXPIRED,
    TLS_RPT_CERT_NOT_TRUSTED,
    TLS_RPT_VALIDATION_FAILURE,
    TLS_RPT_TLSA_INVALID,
    TLS_RPT_DNSSEC_INVALID,
    TLS_RPT_DANE_REQUIRED,
    TLS_RPT_STS_POLICY_FETCH_ERROR,
    TLS_RPT_STS_POLICY_INVALID,
    TLS_RPT_STS_WEBPKI_INVALID,
    TLS_RPT_RESULTS,
};

/* One observation: a session that met its policy or failed it, or a policy that could not be had.
 * Strings are borrowed for the call; NULL: not known. */
struct tls_rpt_event {
    const char *domain; /* the policy domain, lower case, no trailing dot */
    enum tls_rpt_policy_type type;
    const char *policy_text; /* the policy strings (sts lines, TLSA records), '\n'-separated */
    enum tls_rpt_result result;
    const char *mx_host;
    const char *sending_ip, *receiving_ip;
    const char *reason; /* failure-reason-code: our own words for the failure */
};

struct tls_rpt_row {
    enum tls_rpt_result result;
    char *mx_host, *sending_ip, *receiving_ip, *reason; /* owned; NULL: not known */
    uint64_t count;
};

struct tls_rpt_policy {
    int used;
    char *text; /* owned: the last policy strings seen; NULL: none */
    uint64_t successes, failures;
    struct tls_rpt_row rows[TLS_RPT_ROWS_MAX];
    size_t nrows;
    uint64_t rows_dropped; /* failures that found no room for their own row */
};

struct tls_rpt_domain {
    char day[TLS_RPT_DAY_LEN + 1];
    char *name; /* owned */
    struct tls_rpt_policy policies[TLS_RPT_POLICY_TYPES];
};

struct tls_rpt_table {
    struct strmap entries; /* "DAY DOMAIN" → struct tls_rpt_domain */
    size_t count, max_domains;
    uint64_t dropped; /* events for a (day, domain) that found no room */
};

void tls_rpt_table_init(struct tls_rpt_table *t, size_t max_domains);
void tls_rpt_table_free(struct tls_rpt_table *t);

/* Counts ev on `day` ("YYYY-MM-DD"). Returns 0, or -1 when it was dropped (table full). */
int tls_rpt_table_count(struct tls_rpt_table *t, const char *day, const struct tls_rpt_event *ev);

/* Takes the entry out of the table (the caller frees it with tls_rpt_domain_free). */
void tls_rpt_table_remove(struct tls_rpt_table *t, struct tls_rpt_domain *d);
void tls_rpt_domain_free(struct tls_rpt_domain *d);
/* Puts d (taken out with tls_rpt_table_remove) back, its counts added to those of the same day
 * and domain counted meanwhile; takes d. Returns 0, or -1 when there is no room (dropped). */
int tls_rpt_table_put_back(struct tls_rpt_table *t, struct tls_rpt_domain *d);

/* The entries of days before `day` (all of them when day is NULL), in a new array the caller
 * frees (the entries stay in the table); *n is their number. */
struct tls_rpt_domain **tls_rpt_table_due(const struct tls_rpt_table *t, const char *day,
                                          size_t *n);

/* The table as JSON (replacing out's content). */
void tls_rpt_table_save(const struct tls_rpt_table *t, struct buf *out);
/* Adds the entries of a saved table (text, len); entries that do not parse are skipped. Returns
 * the number added, or -1 when the text is not a saved table at all. */
int tls_rpt_table_load(struct tls_rpt_table *t, const char *text, size_t len);

/* "sts", "tlsa", "no-policy-found". */
const char *tls_rpt_policy_type_name(enum tls_rpt_policy_type type);
/* "success" or the RFC 8460 result type ("certificate-expired", ...). */
const char *tls_rpt_result_name(enum tls_rpt_result result);

#endif
