/*
 * The suppression list for a tenant the header section named (X-Sluice-Tenant from a trusted
 * network, no AUTH): that tenant is known only after RCPT, so its list is read when the header
 * section has passed, for every recipient at once on the thread pool, before the first byte of
 * the message is stored (smtp_server_tx.c holds the bytes meanwhile). A suppressed recipient is
 * taken out of the transaction (suppression.hit, stage data); with none left, the message is
 * refused at its end with RCPT's 550 5.7.1 (reject) or discarded (drop). Owned by the
 * transaction.
 */
#ifndef SLUICE_SMTP_TX_SUPPRESS_H
#define SLUICE_SMTP_TX_SUPPRESS_H

#include "mta/server/smtp_session.h"
#include "policy/rcpt_policy.h"

struct smtp_tx_suppress;
/* Every answer is in and applied to s->tx. */
typedef void (*smtp_tx_suppress_cb)(struct smtp_session *s);

/* Starts the reads for s->tx's recipients when the message is relayed mail whose tenant (not
 * NULL) came from its header section and the list is on. Returns the check, or NULL when there
 * is nothing to read. While it is pending, cb runs once, unless the check is freed first; when
 * no read could be queued it is answered already (451) and cb never runs. */
struct smtp_tx_suppress *smtp_tx_suppress_start(struct smtp_session *s, const char *tenant,
                                                smtp_tx_suppress_cb cb);
/* 1 while answers are missing. */
int smtp_tx_suppress_pending(const struct smtp_tx_suppress *c);
/* After cb: the answer owed at the end of the message instead of taking it, or NULL. A 550 when
 * every recipient was suppressed and refused, a 451 when the list could not be read. Valid until
 * the check is freed. */
const struct policy_decision *smtp_tx_suppress_refusal(const struct smtp_tx_suppress *c);
/* Frees c; a check still reading never calls back. NULL is fine. */
void smtp_tx_suppress_free(struct smtp_tx_suppress *c);

/* Logs suppression.hit for r, a suppressed recipient of tenant ("" none), found at `stage`
 * ("rcpt" or "data"). */
void smtp_log_suppressed(const struct smtp_session *s, const char *tenant,
                         const struct rcpt_decision *r, const char *stage);

#endif
