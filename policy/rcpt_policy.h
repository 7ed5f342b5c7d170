/*
 * The RCPT decision, in its one order: the command's syntax and address, the recipient cap, the
 * relay decision (first of the rules: nothing after it accepts what it refused), then on an inbound
 * listener the connect-time verdicts (no resolver, DNSBL, reverse DNS; postmaster exempt), the
 * domain's recipients file and recipient verification. A pure function of what is known when RCPT
 * arrives: the session (mta/server/smtp_server_tx.c) and `sluice explain` (mta/cli/cmd_explain.c)
 * both ask it, so explain shows what the daemon does. Verification asks another server: the
 * decision says so, and the session starts the probe and answers with its reply. Relayed mail
 * (a client that may relay, on a submission listener) is checked against the suppression list
 * right after the relay decision: the decision asks for the read (the daemon makes it on the
 * thread pool) and rcpt_policy_suppressed completes it.
 */
#ifndef SLUICE_RCPT_POLICY_H
#define SLUICE_RCPT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "lib/config.h"
#include "lib/smtp_addr.h"
#include "lib/smtp_cmd.h"
#include "policy/policy.h"
#include "policy/recipients.h"
#include "policy/suppression.h"

/* The stages, in the order they run. */
enum rcpt_stage {
    RCPT_STAGE_SYNTAX,     /* "TO:<path>": 501 5.5.4 */
    RCPT_STAGE_PARAMETER,  /* RCPT takes no parameter: 555 5.5.4 */
    RCPT_STAGE_ADDRESS,    /* the path is an address (smtp_addr_parse): 501 5.1.3 */
    RCPT_STAGE_LIMIT,      /* limits.max_recipients_per_message: 452 4.5.3 */
    RCPT_STAGE_RELAY,      /* policy_relay_check */
    RCPT_STAGE_SUPPRESSED, /* relayed mail: the suppression list (policy/suppression.h) */
    RCPT_STAGE_CONNECT,    /* inbound: no resolver, the DNSBL, reverse DNS */
    RCPT_STAGE_RECIPIENTS, /* inbound: the domain's recipients file */
    RCPT_STAGE_VERIFY,     /* inbound: the domain's deliver_to asked (verify_recipients) */
};

/* What is known of the client's reverse DNS when RCPT arrives. */
enum rcpt_rdns {
    RCPT_RDNS_NOT_ASKED, /* inbound.reverse_dns is ignore, or there was no resolver */
    RCPT_RDNS_PENDING,   /* asked at connect and still unanswered: a temporary failure */
    RCPT_RDNS_ANSWERED,  /* rdns_verdict is reverse_dns_verdict of the answer */
};

/* Everything the decision reads. Pointers are borrowed for the call. */
struct rcpt_facts {
    const struct config *cfg;
    const struct config_listener *listener; /* inside cfg */
    const struct sockaddr *client;
    const char *auth_user; /* NULL when not authenticated */
    int smtputf8;          /* MAIL had SMTPUTF8: the address may be UTF-8 */
    size_t nrcpts;         /* recipients of the transaction accepted so far */
    /* Relayed mail: the suppression list (NULL: not checked), whose tenant (NULL: the global
     * list only) and when (unix seconds, for expiries). */
    struct suppression *suppression;
    const char *tenant;
    int64_t now;
    /* Inbound listeners only: */
    int no_resolver; /* the DNSBL or reverse DNS was due at connect but there was no resolver */
    const struct policy_decision *dnsbl; /* the DNSBL's verdict once answered, else NULL */
    enum rcpt_rdns rdns;
    struct policy_decision rdns_verdict; /* when RCPT_RDNS_ANSWERED */
    const struct recipients *recipients; /* the recipients files, NULL when none is loaded */
    int no_verifier; /* recipient verification cannot run (the daemon is stopping) */
};

enum rcpt_outcome {
    RCPT_ACCEPT,
    RCPT_REFUSE,
    RCPT_DROP,        /* suppressed, and the tenant's action is drop: answer 250, leave it out */
    RCPT_NEED_VERIFY, /* every stage before accepted: `verify_domain`'s deliver_to is to be
                         asked, and its answer decides (policy/verify.h) */
    RCPT_NEED_SUPPRESSION, /* relayed mail that every stage before accepted: the suppression
                              list is to be read for f->tenant and `addr` at f->now
                              (suppression_check, or its thread-pool form in the daemon), and
                              rcpt_policy_suppressed decides */
};

/* Room for a reply text made here: "<address>: " and the longest rule text. */
#define RCPT_TEXT_MAX (SMTP_PATH_MAX + RECIPIENTS_TEXT_MAX)
/* The reply of a suppressed recipient: "recipient suppressed (complaint 2026-12-01)". */
#define RCPT_SUPPRESSED_TEXT "recipient suppressed"

struct rcpt_decision {
    enum rcpt_outcome outcome;
    enum rcpt_stage stage;    /* the stage whose rule d names */
    struct policy_decision d; /* the reply as sent, the rule that decided and where it is written */
    const char *reason;       /* a refusal's text for the log (d.text without decoration) */
    const char *check;        /* the refusing check's name in the log's "rule" field */
    const char *listed_by;    /* the recipients file's rule when it listed rcpt, else NULL */
    struct smtp_addr rcpt;    /* canonical, from RCPT_STAGE_LIMIT on */
    char addr[SMTP_PATH_MAX + 8]; /* rcpt as text, no angle brackets; "" before RCPT_STAGE_LIMIT */
    const struct config_domain *verify_domain; /* RCPT_NEED_VERIFY: whose deliver_to to ask */
    /* RCPT_STAGE_SUPPRESSED: the entry's source ("complaint"), its tenant ("" global) and the
     * day it was added ("2026-12-01"); otherwise empty. */
    const char *suppressed_by;
    char suppressed_tenant[SUPPRESSION_TENANT_MAX + 1];
    char suppressed_on[16];
    char text[RCPT_TEXT_MAX]; /* where a composed d.text lives */
};

/* Decides RCPT with argument `arg` ("TO:<path> [params]") from the facts; fills *out, whose
 * texts point into *out, static storage or what the facts point at (valid while those are). */
void rcpt_policy_decide(const struct rcpt_facts *f, struct smtp_slice arg,
                        struct rcpt_decision *out);
/* Completes a RCPT_NEED_SUPPRESSION decision with what the list answered: found and e as
 * suppression_check gives them (e read only when found is 1). */
void rcpt_policy_suppressed(const struct rcpt_facts *f, int found,
                            const struct suppression_entry *e, struct rcpt_decision *out);

#endif
