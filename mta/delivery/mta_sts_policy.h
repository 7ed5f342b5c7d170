/*
 * MTA-STS (RFC 8461) as text: the `_mta-sts.<domain>` TXT record ("v=STSv1; id=...") and the
 * policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt, parsed into plain
 * structs, and an MX host name matched against the policy's `mx:` patterns. Pure functions on
 * borrowed input, fed what remote servers publish (so fuzzed); a parsed policy owns its patterns.
 */
#ifndef SLUICE_MTA_STS_POLICY_H
#define SLUICE_MTA_STS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define MTA_STS_ID_MAX 32         /* RFC 8461 §3.1: sts-id = 1*32(ALPHA / DIGIT) */
#define MTA_STS_POLICY_MAX 65536  /* §3.3: a policy larger than this may be refused; we do */
#define MTA_STS_MAX_AGE 31557600u /* §3.2: at most one year, in seconds */
#define MTA_STS_MX_MAX 64         /* more mx: lines than any real policy; the rest is refused */

enum mta_sts_mode { MTA_STS_MODE_NONE, MTA_STS_MODE_TESTING, MTA_STS_MODE_ENFORCE };

struct mta_sts_policy {
    enum mta_sts_mode mode;
    uint32_t max_age; /* seconds */
    char **mx;        /* lower-case patterns, "mx.example.net" or "*.example.net"; owned */
    size_t nmx;
};

/* Parses a TXT record. Returns 1 and the id (NUL-terminated) when it is an STSv1 record, 0 when
 * it is not one at all (no "v=STSv1" first: another TXT at the name), -1 with a reason in err when
 * it claims to be one but is malformed. */
int mta_sts_record_parse(const char *txt, size_t len, char id[MTA_STS_ID_MAX + 1], struct buf *err);

/* Parses a policy file (lines "key: value" ended by CRLF or LF; unknown keys ignored, §3.2).
 * Returns 0 with *p filled (free it with mta_sts_policy_free), or -1 with a reason in err and *p
 * left empty: no or another version, a mode or max_age missing or invalid, no mx: outside mode
 * none, a bad pattern, or more than MTA_STS_POLICY_MAX bytes or MTA_STS_MX_MAX patterns. */
int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, struct buf *err);
void mta_sts_policy_free(struct mta_sts_policy *p);
/* *dst becomes a copy of src that owns its own patterns. */
void mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src);

/* 1 when host (any case, a trailing dot ignored) matches one of p's patterns: exactly, or, for
 * "*.example.net", as one label followed by ".example.net" (§4.1: the wildcard covers the leftmost
 * label only). */
int mta_sts_mx_match(const struct mta_sts_policy *p, const char *host);

/* "none", "testing", "enforce". */
const char *mta_sts_mode_name(enum mta_sts_mode mode);

#endif
