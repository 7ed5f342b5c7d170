/*
 * `sluice doctor`, blocklists: every egress address looked up in every public DNS blocklist (RFC
 * 5782) of the shipped table below and of doctor.blocklists, all at once. An answer is a listing
 * (its code's meaning and the list's removal page shown), a refusal of our resolver (the lists'
 * 127.255.255.x error codes: public resolvers, too many queries), something else the resolver made
 * up, or a failed lookup: only a listing is a FAIL.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/dns.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_doctor.h"
#include "policy/dnsbl.h"

struct blocklist_code {
    const char *answer; /* dotted IPv4 */
    const char *meaning;
};

struct blocklist {
    const char *zone, *name, *removal;
    enum doctor_status listed;          /* FAIL; WARN for lists of whole networks */
    const struct blocklist_code *codes; /* ends with a NULL answer; NULL: none known */
};

/* The answers of the lists, as they document them. */
static const struct blocklist_code spamhaus_codes[] = {
    {"127.0.0.2", "SBL: a known spam source or spam operation"},
    {"127.0.0.3", "SBL CSS: snowshoe spam"},
    {"127.0.0.4", "XBL: an exploited or infected host"},
    {"127.0.0.9", "SBL DROP: a hijacked or criminal network"},
    {"127.0.0.10", "PBL: the provider says this address should not send mail directly"},
    {"127.0.0.11", "PBL: an end-user address that should not send mail directly"},
    {"127.255.255.252", "typing error in the list's name"},
    {"127.255.255.254", "query through a public or open resolver, which Spamhaus does not answer"},
    {"127.255.255.255", "too many queries from this resolver"},
    {NULL, NULL},
};
static const struct blocklist_code barracuda_codes[] = {
    {"127.0.0.2", "on the Barracuda Reputation Block List (BRBL)"}, {NULL, NULL}};
static const struct blocklist_code spamcop_codes[] = {
    {"127.0.0.2", "reported as a spam source by SpamCop users (expires 24 h after the last)"},
    {NULL, NULL}};
static const struct blocklist_code uceprotect1_codes[] = {
    {"127.0.0.2", "hit UCEPROTECT's spam traps (expires 7 days after the last hit)"}, {NULL, NULL}};
static const struct blocklist_code uceprotect2_codes[] = {
    {"127.0.0.2", "the provider's network around this address has too many listed addresses"},
    {NULL, NULL}};
static const struct blocklist_code psbl_codes[] = {{"127.0.0.2", "sent mail to PSBL's spam traps"},
                                                   {NULL, NULL}};
static const struct blocklist_code mailspike_codes[] = {
    {"127.0.0.2", "listed by Mailspike for a bad sending reputation"}, {NULL, NULL}};
static const struct blocklist_code spamrats_codes[] = {
    {"127.0.0.36", "RATS-Dyna: the address looks dynamic (generic PTR name)"},
    {"127.0.0.37", "RATS-NoPtr: the address has no PTR record"},
    {"127.0.0.38", "RATS-Spam: spam was seen from the address"},
    {"127.0.0.43", "RATS-Auth: brute-force login attempts from the address"},
    {NULL, NULL}};

/* The shipped lists: widely used by receivers and free to query at low volume. SORBS is left out:
 * it closed in 2024. Removal pages as published by each list. */
static const struct blocklist shipped[] = {
    {"zen.spamhaus.org", "Spamhaus ZEN", "https://check.spamhaus.org/", DOCTOR_FAIL,
     spamhaus_codes},
    {"b.barracudacentral.org", "Barracuda BRBL",
     "https://www.barracudacentral.org/rbl/removal-request", DOCTOR_FAIL, barracuda_codes},
    {"bl.spamcop.net", "SpamCop", "https://www.spamcop.net/bl.shtml", DOCTOR_FAIL, spamcop_codes},
    {"dnsbl-1.uceprotect.net", "UCEPROTECT level 1", "https://www.uceprotect.net/en/rblcheck.php",
     DOCTOR_FAIL, uceprotect1_codes},
    {"dnsbl-2.uceprotect.net", "UCEPROTECT level 2", "https://www.uceprotect.net/en/rblcheck.php",
     DOCTOR_WARN, uceprotect2_codes},
    {"psbl.surriel.com", "PSBL", "https://psbl.org/", DOCTOR_FAIL, psbl_codes},
    {"bl.mailspike.net", "Mailspike", "https://mailspike.org/", DOCTOR_FAIL, mailspike_codes},
    {"all.spamrats.com", "SpamRATS", "https://www.spamrats.com/lookup.php", DOCTOR_FAIL,
     spamrats_codes},
};

struct blocklist_lookup {
    struct doctor *d;
    struct blocklist list; /* its texts are static or the configuration's */
    size_t egress_index, list_index;
};

/* The meaning the list gives `answer`, or NULL. */
static const char *code_meaning(const struct blocklist *list, const char *answer)
{
    for (const struct blocklist_code *c = list->codes; c != NULL && c->answer != NULL; c++)
        if (strcmp(c->answer, answer) == 0)
            return c->meaning;
    return NULL;
}

static void lookup_add(struct blocklist_lookup *l, enum doctor_status status, const char *found,
                       const char *fix)
{
    doctor_add(l->d, DOCTOR_ORDER(DOCTOR_AREA_BLOCKLIST, l->egress_index, l->list_index), status,
               "blocklist", l->d->egress[l->egress_index].address, found, fix);
}

/* Judges an answer: listed beats refused, refused beats anything else. */
static void lookup_judge(struct blocklist_lookup *l, const struct dns_addr *addrs, size_t n)
{
    const struct dns_addr *listing = NULL, *refusal = NULL, *odd = NULL;
    for (size_t i = 0; i < n; i++) {
        int in_loopback = addrs[i].family == AF_INET && (ntohl(addrs[i].u.v4.s_addr) >> 24) == 127;
        if (dnsbl_answer_lists(&addrs[i]))
            listing = listing != NULL ? listing : &addrs[i];
        else if (in_loopback)
            refusal = refusal != NULL ? refusal : &addrs[i];
        else
            odd = odd != NULL ? odd : &addrs[i];
    }
    const struct dns_addr *shown = listing ? listing : refusal ? refusal : odd;
    char answer[INET6_ADDRSTRLEN], found[800], fix[600];
    inet_ntop(shown->family, &shown->u, answer, sizeof answer);
    const char *meaning = code_meaning(&l->list, answer);
    if (listing != NULL) {
        snprintf(found, sizeof found, "listed in %s (%s): %s", l->list.name, answer,
                 meaning != NULL ? meaning : "listed");
        snprintf(fix, sizeof fix, "find and stop the cause, then ask for removal%s%s",
                 l->list.removal != NULL ? " at " : "",
                 l->list.removal != NULL ? l->list.removal : " from the list's operator");
        lookup_add(l, l->list.listed, found, fix);
    } else if (refusal != NULL) {
        snprintf(found, sizeof found, "%s refused our resolver's query (%s): %s", l->list.name,
                 answer, meaning != NULL ? meaning : "an error code, not a listing");
        lookup_add(l, DOCTOR_WARN, found,
                   "query through a resolver of your own in dns.servers (not a public one such "
                   "as 8.8.8.8), registered with the list where it asks for that");
    } else {
        snprintf(found, sizeof found, "%s answered %s, which is no blocklist answer", l->list.name,
                 answer);
        lookup_add(l, DOCTOR_WARN, found,
                   "the resolver in dns.servers rewrites answers (NXDOMAIN redirection?): use one "
                   "that does not");
    }
}

static void lookup_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                            size_t naddrs)
{
    struct blocklist_lookup *l = arg;
    char found[600], why[128];
    if (status == DNS_OK && naddrs > 0) {
        lookup_judge(l, addrs, naddrs);
    } else if (status == DNS_NXDOMAIN || status == DNS_NODATA) {
        snprintf(found, sizeof found, "not listed in %s", l->list.name);
        lookup_add(l, DOCTOR_PASS, found, NULL);
    } else {
        snprintf(found, sizeof found, "%s: %s", l->list.name,
                 doctor_dns_failure(l->d, dns_status_name(status), why, sizeof why));
        lookup_add(l, DOCTOR_WARN, found, "check dns.servers and run doctor again");
    }
    doctor_end(l->d);
    free(l);
}

/* The lists of this run: the shipped ones (unless turned off), each replaced by a configured
 * entry of the same zone, then the other configured ones. */
static struct blocklist *blocklists_of(const struct config *cfg, size_t *n)
{
    const struct config_blocklist *own = cfg->doctor.blocklists;
    size_t nown = cfg->doctor.nblocklists, count = 0;
    struct blocklist *lists = xcalloc(ARRAY_LEN(shipped) + nown + 1, sizeof *lists);
    char *used = xcalloc(nown + 1, 1);
    for (size_t i = 0; cfg->doctor.shipped_blocklists && i < ARRAY_LEN(shipped); i++) {
        lists[count] = shipped[i];
        for (size_t j = 0; j < nown; j++) {
            if (strcasecmp(own[j].zone, shipped[i].zone) != 0)
                continue;
            used[j] = 1;
            if (own[j].name != NULL)
                lists[count].name = own[j].name;
            if (own[j].removal != NULL)
                lists[count].removal = own[j].removal;
        }
        count++;
    }
    for (size_t j = 0; j < nown; j++) {
        if (!used[j])
            lists[count++] =
                (struct blocklist){own[j].zone, own[j].name != NULL ? own[j].name : own[j].zone,
                                   own[j].removal, DOCTOR_FAIL, NULL};
    }
    free(used);
    *n = count;
    return lists;
}

void doctor_blocklists_start(struct doctor *d)
{
    size_t nlists;
    struct blocklist *lists = blocklists_of(d->cfg, &nlists);
    for (size_t e = 0; e < d->negress; e++) {
        for (size_t i = 0; i < nlists; i++) {
            struct blocklist_lookup *l = xcalloc(1, sizeof *l);
            *l = (struct blocklist_lookup){d, lists[i], e, i};
            char name[300];
            doctor_begin(d);
            if (dnsbl_query_name((const struct sockaddr *)&d->egress[e].addr, lists[i].zone, name,
                                 sizeof name) < 0 ||
                dns_resolve_addrs(d->resolver, name, lookup_on_addrs, l) < 0)
                lookup_on_addrs(l, DNS_TEMPFAIL, NULL, 0);
        }
    }
    free(lists);
}
