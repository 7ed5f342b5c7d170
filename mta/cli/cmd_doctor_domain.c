/*
 * `sluice doctor`, sending domains (the From: domains of the dkim entries): the SPF record through
 * policy/spf (valid, within the 10 DNS lookups, authorizing every egress address), each DKIM
 * selector through the check of `sluice dkim check`, the DMARC record and whether our signatures
 * align with it, the MX that takes bounces and replies, and the MTA-STS and TLS-RPT records.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/dns.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_dkim.h"
#include "mta/cli/cmd_doctor.h"
#include "mta/dkim/dkim.h"
#include "mta/dkim/dkim_key.h"
#include "policy/spf.h"

/* Where each row of a domain sorts. */
enum {
    ITEM_SPF = 0,
    ITEM_SPF_ADDRESS = 1, /* + the egress address's index */
    ITEM_DKIM = 120,      /* + the selector's index */
    ITEM_DMARC = 240,
    ITEM_DMARC_ALIGN,
    ITEM_MX,
    ITEM_MTA_STS,
    ITEM_TLS_RPT,
};

/* An address no SPF record should authorize (RFC 5737 documentation range): checking it walks
 * every term, so it counts every DNS lookup of the record. */
#define SPF_PROBE_ADDRESS "192.0.2.1"

struct domain_check {
    struct doctor *d;
    size_t index;
    const char *domain; /* the configuration's */
};

static void domain_add(const struct domain_check *c, int item, enum doctor_status status,
                       const char *check, const char *found, const char *fix)
{
    doctor_add(c->d, DOCTOR_ORDER(DOCTOR_AREA_DOMAIN, c->index, item), status, check, c->domain,
               found, fix);
}

/* ---- SPF ---- */

struct spf_lookup {
    struct domain_check dc;
    struct spf_check *check;
    long egress; /* -1: the probe */
};

static void spf_on_probe(void *arg, const struct spf_result *res);
static void spf_on_address(void *arg, const struct spf_result *res);

/* The record to publish: every egress address, then -all. */
static void spf_suggest(const struct doctor *d, const char *domain, struct buf *out)
{
    buf_printf(out, "publish the TXT record %s: \"v=spf1", domain);
    for (size_t i = 0; i < d->negress; i++)
        buf_printf(out, " ip%c:%s", d->egress[i].addr.ss_family == AF_INET6 ? '6' : '4',
                   d->egress[i].address);
    if (d->negress == 0)
        buf_printf(out, " ip4:YOUR-ADDRESS");
    buf_printf(out, " -all\"");
}

static int spf_start(struct domain_check *dc, long egress, const struct sockaddr *client,
                     const char *helo)
{
    struct spf_lookup *l = xcalloc(1, sizeof *l);
    *l = (struct spf_lookup){*dc, NULL, egress};
    char sender[300];
    snprintf(sender, sizeof sender, "postmaster@%s", dc->domain);
    doctor_begin(dc->d);
    int rc = spf_check_start(dc->d->resolver, client, helo, sender, dc->d->cfg->server.hostname,
                             egress < 0 ? spf_on_probe : spf_on_address, l, &l->check);
    if (rc < 0) {
        char found[200];
        domain_add(dc, egress < 0 ? ITEM_SPF : ITEM_SPF_ADDRESS + (int)egress, DOCTOR_WARN,
                   egress < 0 ? "spf" : "spf-address",
                   doctor_dns_failure(dc->d, "not started", found, sizeof found), NULL);
        doctor_end(dc->d);
        free(l);
    }
    return rc;
}

static void spf_end(struct spf_lookup *l)
{
    spf_check_free(l->check);
    doctor_end(l->dc.d);
    free(l);
}

static void spf_on_probe(void *arg, const struct spf_result *res)
{
    struct spf_lookup *l = arg;
    struct doctor *d = l->dc.d;
    struct buf found = BUF_INIT, fix = BUF_INIT;
    enum doctor_status status = DOCTOR_FAIL;
    int valid = 0;
    switch (res->status) {
    case SPF_NONE:
        buf_printf(&found, "no SPF record");
        spf_suggest(d, l->dc.domain, &fix);
        break;
    case SPF_PERMERROR:
        if (res->lookups > SPF_DNS_MECH_MAX) {
            buf_printf(&found,
                       "more than %d DNS lookups: receivers give permerror (RFC 7208 "
                       "4.6.4)",
                       SPF_DNS_MECH_MAX);
            buf_printf(&fix,
                       "replace include:, a, mx and ptr terms with ip4:/ip6: ranges until "
                       "%d or fewer lookups remain",
                       SPF_DNS_MECH_MAX);
        } else {
            buf_printf(&found, "invalid record: %s", res->reason);
            buf_printf(&fix, "correct the record: one TXT record \"v=spf1 ...\" at %s",
                       l->dc.domain);
        }
        break;
    case SPF_TEMPERROR:
        status = DOCTOR_WARN;
        buf_printf(&found, "could not be evaluated: %s", res->reason);
        buf_printf(&fix, "check dns.servers and run doctor again");
        break;
    case SPF_PASS:
        status = DOCTOR_WARN;
        buf_printf(&found, "authorizes %s, a documentation address (%s): almost anyone may send",
                   SPF_PROBE_ADDRESS, res->reason);
        buf_printf(&fix, "list only your own addresses and end the record with -all");
        valid = 1;
        break;
    default:
        status = DOCTOR_PASS;
        buf_printf(&found, "valid, %u of %d DNS lookups", res->lookups, SPF_DNS_MECH_MAX);
        valid = 1;
    }
    domain_add(&l->dc, ITEM_SPF, status, "spf", found.data, fix.len > 0 ? fix.data : NULL);
    buf_free(&found);
    buf_free(&fix);
    for (size_t i = 0; valid && i < d->negress; i++)
        spf_start(&l->dc, (long)i, (const struct sockaddr *)&d->egress[i].addr, d->egress[i].ehlo);
    spf_end(l);
}

static void spf_on_address(void *arg, const struct spf_result *res)
{
    struct spf_lookup *l = arg;
    const struct doctor_egress *e = &l->dc.d->egress[l->egress];
    char found[1200], fix[600];
    enum doctor_status status = DOCTOR_FAIL;
    const char *fixp = fix;
    if (res->status == SPF_PASS) {
        status = DOCTOR_PASS;
        snprintf(found, sizeof found, "authorizes %s (%s)", e->address, res->reason);
        fixp = NULL;
    } else if (res->status == SPF_TEMPERROR) {
        status = DOCTOR_WARN;
        snprintf(found, sizeof found, "%s: could not be evaluated (%s)", e->address, res->reason);
        snprintf(fix, sizeof fix, "check dns.servers and run doctor again");
    } else {
        snprintf(found, sizeof found, "does not authorize %s: %s (%s)", e->address,
                 spf_status_name(res->status), res->reason);
        snprintf(fix, sizeof fix, "add ip%c:%s to the SPF record of %s",
                 e->addr.ss_family == AF_INET6 ? '6' : '4', e->address, l->dc.domain);
    }
    domain_add(&l->dc, ITEM_SPF_ADDRESS + (int)l->egress, status, "spf-address", found, fixp);
    spf_end(l);
}

/* ---- DKIM ---- */

struct selector_lookup {
    struct domain_check dc;
    int item;
    struct dkim_selector_check check;
};

static void selector_on_done(struct dkim_selector_check *sc, void *arg)
{
    struct selector_lookup *l = arg;
    const struct dkim_entry *e = sc->entry;
    struct buf found = BUF_INIT, fix = BUF_INIT;
    enum doctor_status status = DOCTOR_FAIL;
    buf_printf(&found, "s=%s d=%s (%s): %s", e->selector, e->signing_domain,
               dkim_alg_name(e->key->alg), dkim_selector_verdict_word(sc->verdict));
    if (sc->verdict == DKIM_SELECTOR_MATCH) {
        status = DOCTOR_PASS;
    } else if (sc->verdict == DKIM_SELECTOR_DNS_ERROR) {
        status = DOCTOR_WARN;
        buf_printf(&found, " (%.*s)", (int)sc->detail.len, sc->detail.data);
        buf_printf(&fix, "check dns.servers and run doctor again");
    } else if (sc->public_key == NULL) { /* the key's public half could not be derived */
        buf_printf(&found, ": %.*s", (int)sc->detail.len, sc->detail.data);
        buf_printf(&fix, "replace the key %s (sluice dkim keygen)", e->key->path);
    } else {
        buf_printf(&found, ": %.*s", (int)sc->detail.len, sc->detail.data);
        buf_printf(&fix, "publish the TXT record %s: \"v=DKIM1; k=%s; p=%s\"", sc->name,
                   e->key->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa", sc->public_key);
    }
    domain_add(&l->dc, l->item, status, "dkim", found.data, fix.len > 0 ? fix.data : NULL);
    buf_free(&found);
    buf_free(&fix);
    dkim_selector_check_close(sc);
    doctor_end(l->dc.d);
    free(l);
}

static void dkim_start(struct domain_check *dc)
{
    size_t n = dc->d->signers != NULL ? dkim_signer_set_count(dc->d->signers) : 0;
    int item = ITEM_DKIM;
    for (size_t i = 0; i < n && item < ITEM_DMARC; i++) {
        const struct dkim_entry *e = dkim_signer_set_entry(dc->d->signers, i);
        if (strcasecmp(e->domain, dc->domain) != 0)
            continue;
        struct selector_lookup *l = xcalloc(1, sizeof *l);
        l->dc = *dc;
        l->item = item++;
        struct buf err = BUF_INIT;
        doctor_begin(dc->d);
        if (dkim_selector_check_init(&l->check, e, &err) < 0) {
            l->check.verdict = DKIM_SELECTOR_MISMATCH;
            buf_printf(&l->check.detail, "%.*s", (int)err.len, err.data);
            selector_on_done(&l->check, l);
        } else if (dkim_selector_check_start(&l->check, dc->d->resolver, selector_on_done, l) < 0) {
            selector_on_done(&l->check, l);
        }
        buf_free(&err);
    }
}

/* ---- DMARC, MTA-STS, TLS-RPT: one TXT record each ---- */

/* 1 when a signature with d=`sdomain` aligns with the From: domain under the mode (RFC 7489
 * 3.1.1): strict is the same name, relaxed the same organizational domain, taken here as one
 * being the other or below it (no public suffix list). */
static int dkim_aligns(const char *sdomain, const char *from, int strict)
{
    size_t s = strlen(sdomain), f = strlen(from);
    if (strcasecmp(sdomain, from) == 0)
        return 1;
    if (strict)
        return 0;
    if (s > f)
        return sdomain[s - f - 1] == '.' && strcasecmp(sdomain + s - f, from) == 0;
    return from[f - s - 1] == '.' && strcasecmp(from + f - s, sdomain) == 0;
}

static void dmarc_judge_alignment(const struct domain_check *c, const char *rec, size_t len)
{
    struct buf adkim = BUF_INIT, aspf = BUF_INIT, found = BUF_INIT, fix = BUF_INIT;
    dkim_record_tag(rec, len, "adkim", &adkim);
    dkim_record_tag(rec, len, "aspf", &aspf);
    int strict = adkim.len == 1 && adkim.data[0] == 's';
    size_t n = c->d->signers != NULL ? dkim_signer_set_count(c->d->signers) : 0;
    const char *misaligned = NULL, *aligned = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct dkim_entry *e = dkim_signer_set_entry(c->d->signers, i);
        if (strcasecmp(e->domain, c->domain) != 0)
            continue;
        if (dkim_aligns(e->signing_domain, c->domain, strict))
            aligned = e->signing_domain;
        else
            misaligned = e->signing_domain;
    }
    const char *spf_mode = aspf.len == 1 && aspf.data[0] == 's' ? "strict" : "relaxed";
    enum doctor_status status = DOCTOR_PASS;
    if (aligned != NULL) {
        buf_printf(&found,
                   "our signatures d=%s align (adkim %s); SPF aligns when the envelope "
                   "sender is in %s (aspf %s)",
                   aligned, strict ? "strict" : "relaxed", c->domain, spf_mode);
    } else if (misaligned != NULL) {
        status = DOCTOR_FAIL;
        buf_printf(&found, "we sign with d=%s, which does not align with %s (adkim %s)", misaligned,
                   c->domain, strict ? "strict" : "relaxed");
        buf_printf(&fix, "sign with d=%s (dkim[].signing_domain)%s", c->domain,
                   strict ? " or relax the record with adkim=r" : "");
    } else {
        status = DOCTOR_WARN;
        buf_printf(&found, "no DKIM key of ours is loaded for %s: only SPF can align", c->domain);
        buf_printf(&fix, "fix the dkim entries of %s", c->domain);
    }
    domain_add(c, ITEM_DMARC_ALIGN, status, "dmarc-alignment", found.data,
               fix.len > 0 ? fix.data : NULL);
    buf_free(&adkim);
    buf_free(&aspf);
    buf_free(&found);
    buf_free(&fix);
}

enum txt_kind { TXT_DMARC, TXT_MTA_STS, TXT_TLS_RPT };

static const struct txt_spec {
    const char *prefix;  /* of the name, before the domain */
    const char *version; /* the record's first tag */
    const char *check;
    int item;
    enum doctor_status absent;
    const char *absent_text;
    const char *fix[3]; /* the fix: fix[0], the record's name, fix[1], the domain, fix[2] */
} txt_specs[] = {
    [TXT_DMARC] = {"_dmarc.",
                   "v=DMARC1",
                   "dmarc",
                   ITEM_DMARC,
                   DOCTOR_FAIL,
                   "no DMARC record: Gmail, Yahoo and Microsoft want one from bulk senders",
                   {"publish the TXT record ", ": \"v=DMARC1; p=none; rua=mailto:postmaster@",
                    "\", then p=quarantine or p=reject once the reports show all your mail "
                    "passes"}},
    [TXT_MTA_STS] = {"_mta-sts.",
                     "v=STSv1",
                     "mta-sts",
                     ITEM_MTA_STS,
                     DOCTOR_INFO,
                     "no MTA-STS record: mail to this domain may be downgraded to plain text",
                     {"optional: publish the TXT record ",
                      ": \"v=STSv1; id=...\" with a policy at https://mta-sts.",
                      "/.well-known/mta-sts.txt (RFC 8461)"}},
    [TXT_TLS_RPT] = {"_smtp._tls.",
                     "v=TLSRPTv1",
                     "tls-rpt",
                     ITEM_TLS_RPT,
                     DOCTOR_INFO,
                     "no TLS-RPT record: senders do not report TLS failures to you",
                     {"optional: publish the TXT record ",
                      ": \"v=TLSRPTv1; rua=mailto:tls-reports@", "\""}},
};

struct txt_lookup {
    struct domain_check dc;
    enum txt_kind kind;
    char name[300];
};

static void txt_on_answer(void *arg, enum dns_status status, const struct dns_txt *txts,
                          size_t ntxts)
{
    struct txt_lookup *l = arg;
    const struct txt_spec *spec = &txt_specs[l->kind];
    size_t vlen = strlen(spec->version), nrec = 0;
    const struct dns_txt *rec = NULL;
    for (size_t i = 0; status == DNS_OK && i < ntxts; i++) {
        if (txts[i].len >= vlen && strncasecmp(txts[i].data, spec->version, vlen) == 0 &&
            (txts[i].len == vlen || txts[i].data[vlen] == ';' || txts[i].data[vlen] == ' ')) {
            rec = &txts[i];
            nrec++;
        }
    }
    char found[700], fix[700];
    if (status != DNS_OK && status != DNS_NXDOMAIN && status != DNS_NODATA) {
        domain_add(&l->dc, spec->item, DOCTOR_WARN, spec->check,
                   doctor_dns_failure(l->dc.d, dns_status_name(status), found, sizeof found),
                   "check dns.servers and run doctor again");
    } else if (nrec == 0) {
        snprintf(fix, sizeof fix, "%s%s%s%s%s", spec->fix[0], l->name, spec->fix[1], l->dc.domain,
                 spec->fix[2]);
        domain_add(&l->dc, spec->item, spec->absent, spec->check, spec->absent_text, fix);
    } else if (nrec > 1) {
        snprintf(found, sizeof found, "%zu %s records at %s: receivers use none of them", nrec,
                 spec->version, l->name);
        snprintf(fix, sizeof fix, "keep one record at %s", l->name);
        domain_add(&l->dc, spec->item, DOCTOR_FAIL, spec->check, found, fix);
    } else if (l->kind == TXT_DMARC) {
        struct buf p = BUF_INIT;
        dkim_record_tag(rec->data, rec->len, "p", &p);
        enum doctor_status st = DOCTOR_PASS;
        if (p.len == 0) {
            st = DOCTOR_FAIL;
            snprintf(found, sizeof found, "the record at %s has no policy (p=)", l->name);
            snprintf(fix, sizeof fix, "add p=none, p=quarantine or p=reject to it");
        } else {
            if (p.len == 4 && memcmp(p.data, "none", 4) == 0)
                st = DOCTOR_INFO;
            snprintf(found, sizeof found, "p=%.*s%s", (int)p.len, p.data,
                     st == DOCTOR_INFO ? ": monitoring only, receivers enforce nothing" : "");
            snprintf(fix, sizeof fix,
                     "move to p=quarantine or p=reject once the reports show "
                     "all your mail passes");
        }
        domain_add(&l->dc, spec->item, st, spec->check, found, st == DOCTOR_PASS ? NULL : fix);
        dmarc_judge_alignment(&l->dc, rec->data, rec->len);
        buf_free(&p);
    } else {
        snprintf(found, sizeof found, "%.*s", (int)(rec->len < 300 ? rec->len : 300), rec->data);
        domain_add(&l->dc, spec->item, DOCTOR_PASS, spec->check, found, NULL);
    }
    doctor_end(l->dc.d);
    free(l);
}

static void txt_start(struct domain_check *dc, enum txt_kind kind)
{
    struct txt_lookup *l = xcalloc(1, sizeof *l);
    l->dc = *dc;
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s%s", txt_specs[kind].prefix, dc->domain);
    doctor_begin(dc->d);
    if (dns_resolve_txt(dc->d->resolver, l->name, txt_on_answer, l) < 0)
        txt_on_answer(l, DNS_TEMPFAIL, NULL, 0);
}

/* ---- MX ---- */

static void mx_on_answer(void *arg, const struct dns_mx_result *res)
{
    struct domain_check *c = arg;
    struct buf found = BUF_INIT;
    char fix[400], why[128];
    snprintf(fix, sizeof fix, "publish an MX record for %s naming the host that takes its mail",
             c->domain);
    if (res->status == DNS_OK && !res->implicit) {
        for (size_t i = 0; i < res->nhosts; i++)
            buf_printf(&found, "%s%s (%u)", i > 0 ? ", " : "", res->hosts[i].name,
                       res->hosts[i].pref);
        domain_add(c, ITEM_MX, DOCTOR_PASS, "mx", found.data, NULL);
    } else if (res->status == DNS_OK) {
        domain_add(c, ITEM_MX, DOCTOR_WARN, "mx",
                   "no MX record: bounces and replies go to the domain's own address", fix);
    } else if (res->status == DNS_NULL_MX) {
        domain_add(c, ITEM_MX, DOCTOR_FAIL, "mx",
                   "null MX: the domain takes no mail, so bounces and replies are lost", fix);
    } else if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA) {
        buf_printf(&found, "no MX and no address (%s): bounces and replies are lost",
                   dns_status_name(res->status));
        domain_add(c, ITEM_MX, DOCTOR_FAIL, "mx", found.data, fix);
    } else {
        domain_add(c, ITEM_MX, DOCTOR_WARN, "mx",
                   doctor_dns_failure(c->d, dns_status_name(res->status), why, sizeof why),
                   "check dns.servers and run doctor again");
    }
    buf_free(&found);
    doctor_end(c->d);
    free(c);
}

static void mx_start(const struct domain_check *dc)
{
    struct domain_check *c = xmalloc(sizeof *c);
    *c = *dc;
    doctor_begin(dc->d);
    if (dns_resolve_mx(dc->d->resolver, dc->domain, mx_on_answer, c) < 0) {
        struct dns_mx_result failed = {.status = DNS_TEMPFAIL};
        mx_on_answer(c, &failed);
    }
}

/* ---- all of a domain ---- */

void doctor_domains_start(struct doctor *d)
{
    const struct config *cfg = d->cfg;
    struct sockaddr_in probe = {.sin_family = AF_INET};
    inet_pton(AF_INET, SPF_PROBE_ADDRESS, &probe.sin_addr);
    size_t index = 0;
    for (size_t i = 0; i < cfg->ndkim; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcasecmp(cfg->dkim[j].domain, cfg->dkim[i].domain) == 0;
        if (seen)
            continue;
        struct domain_check dc = {d, index++, cfg->dkim[i].domain};
        spf_start(&dc, -1, (const struct sockaddr *)&probe, cfg->server.hostname);
        dkim_start(&dc);
        txt_start(&dc, TXT_DMARC);
        mx_start(&dc);
        txt_start(&dc, TXT_MTA_STS);
        txt_start(&dc, TXT_TLS_RPT);
    }
    if (index == 0)
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_DOMAIN, 0, 0), DOCTOR_WARN, "domains", "(none)",
                   "no dkim entries: no sending domain to check (SPF, DKIM, DMARC, MX)",
                   "sign your domains' mail: sluice dkim keygen, then a dkim entry per domain");
}
