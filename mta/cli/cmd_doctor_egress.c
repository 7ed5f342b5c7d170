/*
 * `sluice doctor`, egress addresses: each address's PTR, whether a PTR name resolves back to it
 * (forward-confirmed, through policy/reverse_dns like an inbound client's), whether the EHLO name
 * sent from it is its PTR name, and whether that name looks generic (a provider's name for any
 * address of a block), which receivers treat like a dynamic address.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/dns.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_doctor.h"
#include "policy/reverse_dns.h"

enum { ITEM_PTR, ITEM_FCRDNS, ITEM_EHLO, ITEM_GENERIC };

struct egress_check {
    struct doctor *d;
    size_t index;
    const struct doctor_egress *e;
    struct reverse_dns_check *rdns;
    char *first_name; /* the first PTR name */
};

static void egress_on_ptr(void *arg, enum dns_status status, const char *const *names,
                          size_t nnames);
static void egress_on_rdns(void *arg, const struct reverse_dns_result *res);

static void egress_add(struct egress_check *c, int item, enum doctor_status status,
                       const char *check, const char *found, const char *fix)
{
    doctor_add(c->d, DOCTOR_ORDER(DOCTOR_AREA_EGRESS, c->index, item), status, check, c->e->address,
               found, fix);
}

static void egress_end(struct egress_check *c)
{
    reverse_dns_check_free(c->rdns);
    doctor_end(c->d);
    free(c->first_name);
    free(c);
}

/* The EHLO name against the PTR names: receivers compare them, and some refuse a mismatch. */
static void egress_judge_ehlo(struct egress_check *c, const char *const *names, size_t nnames)
{
    char found[600], fix[700];
    for (size_t i = 0; i < nnames; i++) {
        if (strcasecmp(names[i], c->e->ehlo) == 0) {
            snprintf(found, sizeof found, "EHLO %s is the PTR name", c->e->ehlo);
            egress_add(c, ITEM_EHLO, DOCTOR_PASS, "ehlo", found, NULL);
            return;
        }
    }
    snprintf(found, sizeof found, "EHLO %s is not the PTR name %s", c->e->ehlo, names[0]);
    snprintf(fix, sizeof fix,
             "set the ehlo of %s in egress.pools.%s to %s, or point the PTR at %s (with an A "
             "record back)",
             c->e->address, c->e->pool, names[0], c->e->ehlo);
    egress_add(c, ITEM_EHLO, DOCTOR_WARN, "ehlo", found, fix);
}

static void egress_judge_generic(struct egress_check *c, const char *name)
{
    char found[600];
    const char *why = NULL;
    if (doctor_name_is_generic(name, (const struct sockaddr *)&c->e->addr, &why)) {
        snprintf(found, sizeof found, "%s looks generic (%s)", name, why);
        egress_add(c, ITEM_GENERIC, DOCTOR_WARN, "generic-name", found,
                   "ask the address's provider for a PTR of your own mail host name (and use it "
                   "as EHLO name); receivers treat generic names like dynamic addresses");
    } else {
        snprintf(found, sizeof found, "%s names a host of its own", name);
        egress_add(c, ITEM_GENERIC, DOCTOR_PASS, "generic-name", found, NULL);
    }
}

static void egress_on_ptr(void *arg, enum dns_status status, const char *const *names,
                          size_t nnames)
{
    struct egress_check *c = arg;
    char found[600], fix[600];
    if (status == DNS_NXDOMAIN || status == DNS_NODATA || (status == DNS_OK && nnames == 0)) {
        snprintf(found, sizeof found, "no PTR record (%s)", dns_status_name(status));
        snprintf(fix, sizeof fix,
                 "ask whoever holds %s (hosting provider, ISP) to set its PTR to %s, a name "
                 "with an A record back to it",
                 c->e->address, c->e->ehlo);
        egress_add(c, ITEM_PTR, DOCTOR_FAIL, "ptr", found, fix);
        egress_end(c);
        return;
    }
    if (status != DNS_OK) {
        egress_add(c, ITEM_PTR, DOCTOR_WARN, "ptr",
                   doctor_dns_failure(c->d, dns_status_name(status), found, sizeof found),
                   "check dns.servers and run doctor again");
        egress_end(c);
        return;
    }
    struct buf list = BUF_INIT;
    for (size_t i = 0; i < nnames; i++)
        buf_printf(&list, "%s%s", i > 0 ? ", " : "", names[i]);
    egress_add(c, ITEM_PTR, DOCTOR_PASS, "ptr", list.data, NULL);
    buf_free(&list);
    c->first_name = xstrdup(names[0]);
    egress_judge_ehlo(c, names, nnames);
    egress_judge_generic(c, names[0]);
    /* The PTR answer is cached: the check asks only the forward questions. */
    if (reverse_dns_check_start(c->d->resolver, (const struct sockaddr *)&c->e->addr,
                                egress_on_rdns, c, &c->rdns) < 0) {
        egress_add(c, ITEM_FCRDNS, DOCTOR_WARN, "fcrdns",
                   doctor_dns_failure(c->d, "not started", found, sizeof found), NULL);
        egress_end(c);
    }
}

static void egress_on_rdns(void *arg, const struct reverse_dns_result *res)
{
    struct egress_check *c = arg;
    char found[600], fix[700];
    if (res->status == REVERSE_DNS_OK) {
        snprintf(found, sizeof found, "%s resolves back to %s", res->name, c->e->address);
        egress_add(c, ITEM_FCRDNS, DOCTOR_PASS, "fcrdns", found, NULL);
    } else if (res->status == REVERSE_DNS_TEMPFAIL) {
        egress_add(c, ITEM_FCRDNS, DOCTOR_WARN, "fcrdns",
                   doctor_dns_failure(c->d, "tempfail", found, sizeof found),
                   "check dns.servers and run doctor again");
    } else {
        snprintf(found, sizeof found, "%s does not resolve back to %s", c->first_name,
                 c->e->address);
        snprintf(fix, sizeof fix,
                 "publish the %s record %s -> %s (receivers such as Gmail and Microsoft require "
                 "forward-confirmed reverse DNS)",
                 c->e->addr.ss_family == AF_INET6 ? "AAAA" : "A", c->first_name, c->e->address);
        egress_add(c, ITEM_FCRDNS, DOCTOR_FAIL, "fcrdns", found, fix);
    }
    egress_end(c);
}

void doctor_egress_start(struct doctor *d)
{
    if (d->negress == 0) {
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_EGRESS, 0, 0), DOCTOR_WARN, "egress", "(system)",
                   "egress.pools is empty: the system picks the source address, so its PTR, "
                   "blocklists and SPF are not checked",
                   "list the addresses mail leaves from in egress.pools, each with its ehlo name");
        return;
    }
    for (size_t i = 0; i < d->negress; i++) {
        struct egress_check *c = xcalloc(1, sizeof *c);
        *c = (struct egress_check){.d = d, .index = i, .e = &d->egress[i]};
        doctor_begin(d);
        if (dns_resolve_ptr(d->resolver, (const struct sockaddr *)&c->e->addr, egress_on_ptr, c) <
            0)
            egress_on_ptr(c, DNS_TEMPFAIL, NULL, 0);
    }
}

/* ---- the generic-name heuristic ---- */

/* Words providers put in the names of dynamic or pooled addresses; a label matches when it is
 * the word, optionally followed by digits. */
static const char *const generic_words[] = {
    "dynamic",   "dyn",      "dhcp", "pool",        "dsl",        "adsl",    "vdsl",
    "xdsl",      "cable",    "ppp",  "pppoe",       "dial",       "dialup",  "dialin",
    "broadband", "customer", "cust", "residential", "unassigned", "generic", "nat",
};

static int label_is_word(const char *label, size_t len, const char *word)
{
    size_t wlen = strlen(word);
    if (len < wlen || strncasecmp(label, word, wlen) != 0)
        return 0;
    for (size_t i = wlen; i < len; i++)
        if (!isdigit((unsigned char)label[i]))
            return 0;
    return 1;
}

/* 1 when the four octets appear as consecutive numbers in the name, forwards or backwards. */
static int name_has_octets(const char *name, const unsigned char oct[4])
{
    long nums[64];
    size_t n = 0;
    for (const char *p = name; *p != '\0' && n < ARRAY_LEN(nums);) {
        if (!isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        char *end;
        nums[n++] = strtol(p, &end, 10);
        p = end;
    }
    for (size_t i = 0; i + 4 <= n; i++) {
        int fwd = 1, back = 1;
        for (int k = 0; k < 4; k++) {
            fwd &= nums[i + (size_t)k] == oct[k];
            back &= nums[i + (size_t)k] == oct[3 - k];
        }
        if (fwd || back)
            return 1;
    }
    return 0;
}

int doctor_name_is_generic(const char *name, const struct sockaddr *addr, const char **why)
{
    if (addr->sa_family == AF_INET) {
        const unsigned char *oct =
            (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
        char hex[9];
        snprintf(hex, sizeof hex, "%02x%02x%02x%02x", oct[0], oct[1], oct[2], oct[3]);
        if (name_has_octets(name, oct) || strcasestr(name, hex) != NULL) {
            *why = "the address's octets";
            return 1;
        }
    }
    for (const char *label = name; *label != '\0';) {
        size_t len = strcspn(label, ".-_");
        for (size_t i = 0; i < ARRAY_LEN(generic_words); i++) {
            if (label_is_word(label, len, generic_words[i])) {
                *why = generic_words[i];
                return 1;
            }
        }
        label += len + (label[len] != '\0');
    }
    return 0;
}
