/*
 * One DKIM selector's published record held against its configured key: the TXT lookup at
 * SELECTOR._domainkey.D through lib/dns and the judgement of what came back. `sluice dkim check`
 * and `sluice doctor` both run it; the check owns its texts and the caller owns the check.
 */
#ifndef SLUICE_CMD_DKIM_H
#define SLUICE_CMD_DKIM_H

#include "lib/buf.h"

struct dkim_entry;
struct dns_resolver;

enum dkim_selector_verdict {
    DKIM_SELECTOR_PENDING,
    DKIM_SELECTOR_MATCH,
    DKIM_SELECTOR_MISMATCH,  /* a record, but another key, algorithm, or revoked */
    DKIM_SELECTOR_MISSING,   /* no DKIM key record at the name */
    DKIM_SELECTOR_DNS_ERROR, /* the lookup failed or could not start */
};

struct dkim_selector_check;
typedef void (*dkim_selector_cb)(struct dkim_selector_check *c, void *arg);

struct dkim_selector_check {
    const struct dkim_entry *entry; /* borrowed from the signer set */
    char *public_key;               /* the p= value our private key implies */
    char *name;                     /* SELECTOR._domainkey.D */
    enum dkim_selector_verdict verdict;
    struct buf detail; /* why it is not a match */
    dkim_selector_cb cb;
    void *arg;
};

/* Prepares the check of `e`. Returns 0, or -1 with the reason in err (the public key cannot be
 * derived); close it either way. */
int dkim_selector_check_init(struct dkim_selector_check *c, const struct dkim_entry *e,
                             struct buf *err);
/* Looks the record up; cb(c, arg) runs once with the verdict set. When the lookup cannot start the
 * verdict is DKIM_SELECTOR_DNS_ERROR at once and cb never runs; returns the resolver's error. */
int dkim_selector_check_start(struct dkim_selector_check *c, struct dns_resolver *r,
                              dkim_selector_cb cb, void *arg);
void dkim_selector_check_close(struct dkim_selector_check *c);
/* "match", "mismatch", "not published", "DNS error". */
const char *dkim_selector_verdict_word(enum dkim_selector_verdict v);

#endif
