/*
 * RCPTs pipelined behind one that reads the suppression list (RFC 2920 groups): their addresses
 * are read in the same batch, and each is then answered from here, in its turn, without a read of
 * its own. Only the complete RCPT lines already received count, up to the first other command, so
 * nothing is answered out of order: each RCPT is still dispatched and decided when its turn
 * comes, and takes its answer only when its address is the next one read ahead (otherwise the
 * rest is dropped and it reads the list itself). Owned by the transaction.
 */
#ifndef SLUICE_SMTP_RCPT_AHEAD_H
#define SLUICE_SMTP_RCPT_AHEAD_H

#include <stddef.h>

#include "lib/smtp_cmd.h"
#include "policy/rcpt_policy.h"
#include "policy/suppression.h"

struct rcpt_ahead;

/* The RCPTs in `input` (what came after the RCPT being answered, in the same read) up to the
 * first line that is not a complete RCPT, at most max of them, decided with f as if each one
 * before were accepted: those that will need the list too. NULL when there is none. */
struct rcpt_ahead *rcpt_ahead_scan(struct smtp_slice input, const struct rcpt_facts *f, size_t max);
/* The addresses to read, in their order: rcpt_ahead_count of them. */
size_t rcpt_ahead_count(const struct rcpt_ahead *a);
const char *rcpt_ahead_address(const struct rcpt_ahead *a, size_t i);
/* The list's answers, one per address (entries copied). */
void rcpt_ahead_answered(struct rcpt_ahead *a, const struct suppression_answer *answers);
/* The answer for a RCPT that needs the list for addr: 1 with *found and *e (valid while a is)
 * when addr is the next address read ahead; else 0, and none of the rest will serve. NULL is
 * fine (0). */
int rcpt_ahead_take(struct rcpt_ahead *a, const char *addr, int *found,
                    const struct suppression_entry **e);
/* NULL is fine. */
void rcpt_ahead_free(struct rcpt_ahead *a);

#endif
