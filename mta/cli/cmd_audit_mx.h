/*
 * `sluice audit-mx`: what its parts share. cmd_audit_mx.c parses the command, walks each domain
 * (name servers, their MX sets, the MX hosts' addresses) and writes the report through the rows of
 * `sluice doctor` (cmd_doctor_report.c); cmd_audit_mx_dns.c asks the DNS questions (lib/dns on a
 * loop of its own, waited for; RD on or off, uncached); cmd_audit_mx_probe.c connects to one MX
 * address from outside; cmd_audit_mx_verdict.c holds the pure parts (name and MX sets, judging an
 * MX against the primary). Everything runs in order under one overall deadline; the caller owns
 * every struct.
 */
#ifndef SLUICE_CMD_AUDIT_MX_H
#define SLUICE_CMD_AUDIT_MX_H

#include <netinet/in.h>
#include <stddef.h>
#include <time.h>

#include "mta/cli/live_smtp.h"

/* Name servers, MX hosts and addresses kept per list; more are left out of the audit. */
#define AUDIT_NAMES_MAX 16
#define AUDIT_NAME_LEN 256

/* A set of names (or address texts): lower case, no trailing dot, each once, in order added. */
struct audit_names {
    size_t n;
    char at[AUDIT_NAMES_MAX][AUDIT_NAME_LEN];
};

/* An MX set, sorted by preference then name. */
struct audit_mx_set {
    size_t n;
    struct audit_mx {
        unsigned pref;
        char host[AUDIT_NAME_LEN];
    } at[AUDIT_NAMES_MAX];
};

/* ---- sets (cmd_audit_mx_verdict.c) ---- */

/* Adds name (normalized) unless present or the set is full: 1 when added. */
int audit_names_add(struct audit_names *s, const char *name);
int audit_names_has(const struct audit_names *s, const char *name);
/* Adds the MX (host normalized) in its sorted place unless present or full. */
void audit_mx_set_add(struct audit_mx_set *s, const char *host, unsigned pref);
int audit_mx_set_equal(const struct audit_mx_set *a, const struct audit_mx_set *b);
/* "10 mx1.example.com, 20 mx2.example.com" ("none" when empty), truncated to size. */
void audit_mx_set_text(const struct audit_mx_set *s, char *out, size_t size);

/* ---- DNS (cmd_audit_mx_dns.c) ---- */

struct audit_dns;

/* Milliseconds left before the deadline (CLOCK_MONOTONIC); 0 once it passed. */
long audit_ms_left(const struct timespec *deadline);
/* A channel to servers_csv ("addr[:port],..."; NULL: /etc/resolv.conf), recursion desired or not,
 * timeout_ms per try; questions end by the deadline. NULL when the servers are refused. */
struct audit_dns *audit_dns_new(const char *servers_csv, int recurse, unsigned timeout_ms,
                                const struct timespec *deadline);
void audit_dns_free(struct audit_dns *dns);
/* Each returns an enum dns_status (DNS_OK: out holds the answer; DNS_CANCELLED: the deadline
 * passed). */
int audit_dns_ns(struct audit_dns *dns, const char *domain, struct audit_names *out);
int audit_dns_mx(struct audit_dns *dns, const char *domain, struct audit_mx_set *out);
/* A and AAAA: the addresses as text, IPv4 first. */
int audit_dns_addrs(struct audit_dns *dns, const char *name, struct audit_names *out);
/* "ok", "no such name", "no such record", "no answer in time", "refused", ... */
const char *audit_dns_status(int status);

/* ---- one MX address from outside (cmd_audit_mx_probe.c) ---- */

struct audit_probe {
    char addr[INET6_ADDRSTRLEN];
    int reachable;
    int timed_out; /* not probed: the overall deadline had passed */
    char banner[512];
    char caps[512]; /* the EHLO keywords, space-separated */
    int starttls;   /* offered */
    char cert[600]; /* subject, names and expiry; or why there is none */
    struct live_tally battery;
    int unknown_code; /* the reply to RCPT for a random local part; 0: untested */
};

/* Connects to addr:port (helo, per-step timeout) and fills p: banner, EHLO, the certificate after
 * STARTTLS (names checked against mx_host), the relay battery for domain, an unknown recipient. */
void audit_probe(const char *addr, const char *port, const char *mx_host, const char *domain,
                 const char *helo, int timeout_s, struct audit_probe *p);

/* ---- verdicts (cmd_audit_mx_verdict.c) ---- */

/* Worst last: the weakest MX is the one with the highest verdict. */
enum audit_verdict {
    AUDIT_OK,
    AUDIT_UNREACHABLE,     /* nothing answered: not judged */
    AUDIT_ACCEPTS_UNKNOWN, /* takes any recipient, as the primary does (backscatter) */
    AUDIT_WEAKER,          /* accepts what the primary refuses */
    AUDIT_OPEN_RELAY,      /* an attempt of the battery relayed */
};

/* Judges p against primary (NULL, or p itself, when p is the primary or the primary could not be
 * reached); why says what decided it. */
enum audit_verdict audit_judge(const struct audit_probe *p, const struct audit_probe *primary,
                               char *why, size_t size);
const char *audit_verdict_name(enum audit_verdict v);

#endif
