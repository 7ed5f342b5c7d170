/*
 * `sluice doctor`: what its parts share. cmd_doctor.c loads the configuration, starts every check
 * at once on one loop with one resolver (dns.servers) under an overall deadline, and prints the
 * rows when the last check ends. Each cmd_doctor_<area>.c starts the checks of one area and adds a
 * row per finding as answers come; cmd_doctor_report.c keeps, orders and prints the rows. The
 * doctor owns the rows (their texts are copied in) and the loop; checks own their own state.
 */
#ifndef SLUICE_CMD_DOCTOR_H
#define SLUICE_CMD_DOCTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <uv.h>

#include "lib/config.h"

struct dns_resolver;
struct dkim_signer_set;

enum doctor_status { DOCTOR_PASS, DOCTOR_INFO, DOCTOR_WARN, DOCTOR_FAIL };

/* The report's sections, in the order they print. */
enum doctor_area {
    DOCTOR_AREA_EGRESS,
    DOCTOR_AREA_BLOCKLIST,
    DOCTOR_AREA_DOMAIN,
    DOCTOR_AREA_TLS,
    DOCTOR_AREA_RELAY,
    DOCTOR_AREA_RECEIVERS,
};

/* Where a row sorts: its area, the index of its subject (address, domain, ...) and the place of
 * the check among the subject's rows. */
#define DOCTOR_ORDER(area, subject, item)                                                          \
    ((unsigned)(area) << 24 | ((unsigned)(subject)&0xffffu) << 8 | ((unsigned)(item)&0xffu))

struct doctor_row {
    enum doctor_status status;
    unsigned order; /* DOCTOR_ORDER; equal ones keep the order they were added in */
    size_t seq;
    char *check;   /* "ptr", "blocklist", "spf", ... */
    char *subject; /* what was checked: an address, a domain, a file */
    char *found;   /* what was found */
    char *fix;     /* how to fix it; NULL when there is nothing to do */
};

/* An address mail leaves from, with the EHLO name sent from it. */
struct doctor_egress {
    const char *address; /* as configured */
    struct sockaddr_storage addr;
    const char *ehlo;
    const char *pool;
};

struct doctor {
    uv_loop_t *loop;
    struct dns_resolver *resolver; /* freed at the deadline: lookups then fail at once */
    const struct config *cfg;
    struct dkim_signer_set *signers; /* NULL: no dkim entries, or their keys do not load */
    char *signers_error;             /* why the keys do not load, reported in every run; owned */
    const struct doctor_egress *egress;
    size_t negress;
    size_t pending; /* checks started and not yet ended */
    int timed_out;  /* the overall deadline passed */
    struct doctor_row *rows;
    size_t nrows, cap;
};

/* Adds a row; every text is copied (fix may be NULL). Loop thread only. */
void doctor_add(struct doctor *d, unsigned order, enum doctor_status status, const char *check,
                const char *subject, const char *found, const char *fix);
/* A check began / ended: the doctor waits until every one that began has ended. */
void doctor_begin(struct doctor *d);
void doctor_end(struct doctor *d);
/* "lookup failed (tempfail)", or that the overall deadline passed, for rows about a DNS error. */
const char *doctor_dns_failure(const struct doctor *d, const char *status_name, char *out,
                               size_t size);

/* The areas' checks; each adds its rows and ends what it begins. */
void doctor_egress_start(struct doctor *d);     /* PTR, FCrDNS, EHLO name, generic names */
void doctor_blocklists_start(struct doctor *d); /* every egress address on every list */
void doctor_domains_start(struct doctor *d);    /* SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT */
void doctor_tls_start(struct doctor *d);        /* the certificate, on the thread pool */
void doctor_receivers_start(struct doctor *d);  /* the log's refusals, on the thread pool */
void doctor_relay_check(struct doctor *d);      /* the relay battery on the configuration */

/* Runs every check on a private loop until the last has ended; the rows go to d. Returns 0, or
 * -1 when the resolver cannot start (said on standard error). */
int doctor_run(struct doctor *d);
/* Runs the checks every interval_ms until SIGTERM or SIGINT, logging each row whose status
 * changed as a "doctor.change" event (cmd_doctor_watch.c). Returns 0 once stopped. */
int doctor_watch(struct doctor *d, uint64_t interval_ms);

/* Sorts the rows into the order they print in. */
void doctor_rows_sort(struct doctor *d);
/* The rows sorted, as a table (text) or a JSON array; returns whether any row is a FAIL. */
int doctor_report(struct doctor *d, int json, FILE *out);
void doctor_rows_free(struct doctor *d);

/* ---- pure helpers, unit-tested ---- */

/* 1 when the PTR name looks like one given to any address of a provider's block: the address's
 * octets in it (forwards or backwards, decimal or as one hex number), or a word such as dynamic,
 * dhcp, pool, dsl, cable, ppp; the word found (or "the address's octets") goes to why. */
int doctor_name_is_generic(const char *name, const struct sockaddr *addr, const char **why);

#endif
