/*
 * Recipient validation for the domains we are MX for: each `domains` entry may name a recipients
 * file, and RCPT TO for that domain is accepted only for an address the file lists. The files of
 * every domain are read at config load (or reload, or on the thread pool: reading blocks) into one
 * immutable hash table that the session consults at RCPT without blocking. The table refers to the
 * config it was loaded from (decision positions) and must not outlive it.
 */
#ifndef SLUICE_RECIPIENTS_H
#define SLUICE_RECIPIENTS_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "policy/policy.h"

/* Room for the reply text "<addr>: Recipient address rejected: User unknown". */
#define RECIPIENTS_TEXT_MAX (2 * SMTP_LOCAL_MAX + 3 + SMTP_DOMAIN_MAX + 64)

struct recipients;

/* Reads the recipients file of every domain of cfg that names one (blocking). A file holds one
 * address a line ("user@example.com", with or without angle brackets; "*@example.com" accepts
 * every local part of the domain); blank lines and lines starting with '#' are skipped. Each
 * address is canonicalized with smtp_addr_parse and must belong to the file's domain. Returns 0 and
 * *out, or a negative errno with "file:line: message" lines appended to err. */
int recipients_load(const struct config *cfg, struct recipients **out, struct buf *err);
void recipients_free(struct recipients *r);
/* Number of addresses loaded (catch-alls included), for logs. */
size_t recipients_count(const struct recipients *r);

/* Decides RCPT TO for a canonical address: accepted when its domain has no recipients file (the
 * check does not apply), or when the file lists the address, else the address with its "+tag"
 * removed from the local part, else the domain's catch-all. Local parts compare
 * case-insensitively (ASCII), as nearly all mail servers treat them; postmaster@ is always
 * accepted (RFC 5321 §4.5.1). A rejection is 550 5.1.1
 * "<addr>: Recipient address rejected: User unknown"; its text is written to `text` and the
 * decision points at it. */
struct policy_decision recipients_check(const struct recipients *r, const struct smtp_addr *rcpt,
                                        char text[RECIPIENTS_TEXT_MAX]);

#endif
