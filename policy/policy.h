/*
 * What every policy stage answers: a verdict with the SMTP reply to give and the rule that decided,
 * so the session can reply and log, and `sluice explain` can show where the decision came from.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include "lib/config.h"

enum policy_verdict {
    POLICY_ACCEPT,
    POLICY_REJECT,   /* 5xx */
    POLICY_TEMPFAIL, /* 4xx */
};

struct policy_decision {
    enum policy_verdict verdict;
    int code;              /* SMTP reply code */
    const char *enhanced;  /* RFC 3463 status, e.g. "5.7.1" */
    const char *text;      /* reply text (static) */
    const char *rule;      /* which rule decided, e.g. "relay.trusted_networks" */
    struct config_pos pos; /* where that rule is written; line 0 for built-in rules */
};

#endif
