/*
 * TLS reporting for outbound mail (RFC 8460), with tls_rpt.enabled. The SMTP client's TLS stage,
 * the MTA-STS cache and the destination record what each session to a policy domain (the
 * recipient domain, or for DANE the TLSA base domain: RFC 8460 §3) came to: a success, or a failure
 * by result type. The counts (tls_rpt_table.h) are saved in <spool>/tls-rpt/ on the thread pool
 * every few seconds and at stop, and read back at start. Once per UTC day, tls_rpt.send_after past
 * midnight (or at once with tls_rpt_send_now), each domain of the days before gets its report: when
 * `_smtp._tls.<domain>` publishes mailto: addresses, the JSON report goes there as a mail spooled
 * by Sluice itself, and a copy is written to <spool>/tls-rpt/reports/ (kept 30 days). The scheduler
 * owns the struct; loop thread only.
 */
#ifndef SLUICE_TLS_RPT_H
#define SLUICE_TLS_RPT_H

#include <sys/socket.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/dns.h"
#include "mta/delivery/tls_rpt_table.h"

struct tls_rpt;
struct spool;
struct spool_entry;
struct mta_sts_policy;
struct dkim_signer_set;

/* A report mail is durable in the spool: hand it to delivery. */
typedef void (*tls_rpt_queued_cb)(void *arg, const struct spool_entry *entry);

/* Reads the saved counts back (thread pool). spool and dns must outlive the struct. */
struct tls_rpt *tls_rpt_new(uv_loop_t *loop, struct dns_resolver *dns, struct spool *spool,
                            const struct config *cfg, tls_rpt_queued_cb queued, void *arg);
/* New settings after a reload (copied from cfg). */
void tls_rpt_configure(struct tls_rpt *r, const struct config *cfg);
/* The DKIM keys reports are signed with (the one covering tls_rpt.sender's domain); referenced
 * until replaced (at reload) or the struct is freed. NULL: none. */
void tls_rpt_set_signers(struct tls_rpt *r, struct dkim_signer_set *set);
/* Shutdown: saves the counts; cb(arg) runs (from the loop, never inside this call) once no DNS
 * lookup, spool commit or file write is in flight. Nothing is recorded or sent afterwards. */
void tls_rpt_stop(struct tls_rpt *r, void (*cb)(void *arg), void *arg);
/* After the stop callback. NULL is fine. */
void tls_rpt_free(struct tls_rpt *r);

/* Counts ev for today (UTC). Does nothing when r is NULL or reporting is off. */
void tls_rpt_record(struct tls_rpt *r, const struct tls_rpt_event *ev);

/* Starts sending every report held, today's so far included (`sluice tls-rpt send`); a line per
 * domain goes to out. Returns the number of domains, or -ESHUTDOWN/-ENOTSUP (off). */
int tls_rpt_send_now(struct tls_rpt *r, struct buf *out);

/* The MTA-STS policy as the report's policy strings ("version: STSv1\nmode: ...\nmx: ...\n
 * max_age: ..."), appended to out. */
void tls_rpt_sts_text(const struct mta_sts_policy *p, struct buf *out);

/* RFC 8461 §5.1: MX host mx of domain is not in its MTA-STS policy sts (the host is not tried
 * when the policy is enforced). */
void tls_rpt_record_unlisted_mx(struct tls_rpt *r, const char *domain,
                                const struct mta_sts_policy *sts, const char *mx);

/* ---- one SMTP session's report (the SMTP client's) ---- */

/* What a connection reports on, by value in the client's parameters; rpt NULL: nothing. */
struct tls_rpt_target {
    struct tls_rpt *rpt;
    const char *domain;               /* the policy domain but for tlsa, borrowed for the call */
    const struct mta_sts_policy *sts; /* its MTA-STS policy, or NULL; borrowed for the call */
};

struct tls_rpt_session;

/* A session to mx (address dst, from src, NULL: any) for target. NULL when there is nothing to
 * report to. Copies what it keeps. */
struct tls_rpt_session *tls_rpt_session_new(const struct tls_rpt_target *t, const char *mx,
                                            const struct sockaddr *src, const struct sockaddr *dst);
void tls_rpt_session_free(struct tls_rpt_session *s);
/* The session's result under the policy of `type`; counted once per session, later calls are
 * ignored. For tlsa, tlsa_base is the TLSA base domain (RFC 7672 §2.2.3: the MX host, or where its
 * validated CNAME chain ends) and policy_text its TLSA records: the base domain is then the policy
 * domain (RFC 8460 §3), not the target's; both NULL for the others. reason may be NULL. */
void tls_rpt_session_result(struct tls_rpt_session *s, enum tls_rpt_policy_type type,
                            const char *tlsa_base, const char *policy_text,
                            enum tls_rpt_result result, const char *reason);

/* The RFC 8460 result type of an OpenSSL verification error (X509_V_ERR_*). */
enum tls_rpt_result tls_rpt_result_for_verify(long verify_result);

#endif
