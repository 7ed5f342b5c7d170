/*
 * Classifies a remote reply (or Sluice's own failure) into the reason a mail was not delivered,
 * from the reply code, the RFC 3463 enhanced code and well-known phrases of the large mailbox
 * providers. Logged with every delivery event and used to react: a rate-limit class slows the
 * destination down. Pure: no I/O, no state.
 *
 * Rules, first match wins: a 2xx code is NONE; a provider marker names its cause (Yahoo [TSS04]
 * rate, [TS03]/[TSS09] reputation; Microsoft (S3150)/(S3140) reputation; Comcast RL0000xx rate,
 * BL0000xx reputation); a decisive enhanced code (given, or leading the text) such as 5.1.1,
 * x.2.2, x.3.4, x.7.26 (unauthenticated), x.7.28 (Gmail rate), x.7.606 (Microsoft ban), x.7.650
 * (Microsoft rate); then phrases in order rate, TLS, quota, size, DNS, blocklists (Spamhaus,
 * RBL, "listed"), unknown user, policy/spam, "blocked", then connection errors (for temporary
 * failures and our own reports only: a 5xx came over a working connection); then 421 is
 * RATE_LIMIT, any x.7.x is POLICY, no code at all is CONNECTION, 552 is MESSAGE_SIZE, 554 (a
 * refused transaction) is POLICY, the rest OTHER.
 */
#ifndef SLUICE_BOUNCE_CLASS_H
#define SLUICE_BOUNCE_CLASS_H

#include <stddef.h>

enum bounce_class {
    BOUNCE_NONE,         /* delivered (2xx) */
    BOUNCE_UNKNOWN_USER, /* 5.1.1, 5.1.10, "user unknown", "no such user", "does not exist" */
    BOUNCE_MAILBOX_FULL, /* 4.2.2 / 5.2.2, "quota", "mailbox full" */
    BOUNCE_POLICY,       /* content or policy: 5.7.1 without a reputation cue, "spam", "policy" */
    BOUNCE_REPUTATION, /* blocklist or sender reputation: "blocked", "listed", "spamhaus", "RBL" */
    BOUNCE_RATE_LIMIT, /* 4.7.0/4.7.28 rate cues, 421 "too many", "rate", "throttl", "try later" */
    BOUNCE_TLS,        /* TLS required but unavailable, handshake failure, 5.7.10/4.7.5 */
    BOUNCE_DNS,        /* no MX/A, NXDOMAIN, null MX, 5.1.2 / 4.4.3 / 5.4.4 */
    BOUNCE_CONNECTION, /* refused, timed out, lost connection (no reply to classify) */
    BOUNCE_MESSAGE_SIZE, /* 5.3.4 / 552 size */
    BOUNCE_OTHER,
};

/* The class of a reply: code (0 when there was no reply), enhanced ("5.1.1" or "" / NULL),
 * text (may be NULL). Phrases are matched case-insensitively. */
enum bounce_class bounce_classify(int code, const char *enhanced, const char *text);

/* "unknown_user", "mailbox_full", ... for logs and `sluice queue show`. */
const char *bounce_class_name(enum bounce_class c);

/* 1 when a temporary reply of this class asks us to slow down (fewer connections, a pause). */
int bounce_class_is_throttle(enum bounce_class c);

#endif
