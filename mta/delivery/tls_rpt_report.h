/*
 * TLS-RPT reports as text (RFC 8460): the `_smtp._tls.<domain>` TXT record that says where they
 * go, the JSON report of one policy domain and day (§4), and the mail that carries it (§5.3).
 * Pure functions on borrowed input; the TXT record is what a remote domain publishes.
 */
#ifndef SLUICE_TLS_RPT_REPORT_H
#define SLUICE_TLS_RPT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "mta/delivery/tls_rpt_table.h"

#define TLS_RPT_RUA_MAX 8 /* mailto: addresses taken from one record; the rest are ignored */

/* Where reports go: the mailto: addresses (owned), and how many other URIs (https:) there were. */
struct tls_rpt_rua {
    char *mailto[TLS_RPT_RUA_MAX];
    size_t nmailto;
    size_t nother;
};

/* Parses a TXT record "v=TLSRPTv1; rua=mailto:a@example.net,https://...". Returns 1 with rua
 * filled (free it with tls_rpt_rua_free), 0 when it is not a TLSRPTv1 record, -1 when it claims
 * to be one but has no rua= or a malformed one. */
int tls_rpt_record_parse(const char *txt, size_t len, struct tls_rpt_rua *rua);
void tls_rpt_rua_free(struct tls_rpt_rua *rua);

/* What a report says about its sender and itself. */
struct tls_rpt_meta {
    const char *organization; /* organization-name */
    const char *contact;      /* contact-info */
    const char *report_id;
    int64_t start, end; /* date-range, unix seconds */
};

/* The JSON report (RFC 8460 §4.4) of one domain's entry, appended to out. */
void tls_rpt_report_json(const struct tls_rpt_domain *d, const struct tls_rpt_meta *m,
                         struct buf *out);

/* The mail that carries a report (§5.3). */
struct tls_rpt_mail {
    const char *from, *to;
    const char *submitter; /* TLS-Report-Submitter: our domain */
    const struct tls_rpt_domain *domain;
    const struct tls_rpt_meta *meta;
    const char *json;
    size_t json_len;
    int64_t now; /* Date: */
};

/* Appends the whole message (header fields, blank line, multipart/report body with the JSON as an
 * application/tlsrpt+json attachment in base64; CRLF line ends) to out. */
void tls_rpt_mail_build(const struct tls_rpt_mail *m, struct buf *out);

#endif
