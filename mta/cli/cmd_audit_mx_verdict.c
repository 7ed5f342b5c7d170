/*
 * `sluice audit-mx`, the pure parts: name and MX sets as the audit compares them (case and a
 * trailing dot do not matter), and the verdict on one MX address judged against the primary: a
 * backup that relays, or accepts a battery attempt or an unknown recipient the primary refuses, is
 * the hole spammers use.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mta/cli/cmd_audit_mx.h"
#include "mta/relay_battery.h"

static void normalize(const char *name, char *out)
{
    size_t n = 0;
    for (; name[n] != '\0' && n + 1 < AUDIT_NAME_LEN; n++)
        out[n] = (char)tolower((unsigned char)name[n]);
    if (n > 1 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
}

int audit_names_has(const struct audit_names *s, const char *name)
{
    char norm[AUDIT_NAME_LEN];
    normalize(name, norm);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->at[i], norm) == 0)
            return 1;
    return 0;
}

int audit_names_add(struct audit_names *s, const char *name)
{
    if (s->n == AUDIT_NAMES_MAX || audit_names_has(s, name))
        return 0;
    normalize(name, s->at[s->n++]);
    return 1;
}

static int mx_compare(const struct audit_mx *a, unsigned pref, const char *host)
{
    if (a->pref != pref)
        return a->pref < pref ? -1 : 1;
    return strcmp(a->host, host);
}

void audit_mx_set_add(struct audit_mx_set *s, const char *host, unsigned pref)
{
    char norm[AUDIT_NAME_LEN];
    normalize(host, norm);
    size_t at = 0;
    while (at < s->n && mx_compare(&s->at[at], pref, norm) < 0)
        at++;
    if (s->n == AUDIT_NAMES_MAX || (at < s->n && mx_compare(&s->at[at], pref, norm) == 0))
        return;
    memmove(&s->at[at + 1], &s->at[at], (s->n - at) * sizeof s->at[0]);
    s->at[at].pref = pref;
    memcpy(s->at[at].host, norm, sizeof norm);
    s->n++;
}

int audit_mx_set_equal(const struct audit_mx_set *a, const struct audit_mx_set *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (mx_compare(&a->at[i], b->at[i].pref, b->at[i].host) != 0)
            return 0;
    return 1;
}

void audit_mx_set_text(const struct audit_mx_set *s, char *out, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return;
    snprintf(out, size, "%s", s->n == 0 ? "none" : "");
    for (size_t i = 0; i < s->n && len < size; i++) {
        int n = snprintf(out + len, size - len, "%s%u %s", i > 0 ? ", " : "", s->at[i].pref,
                         s->at[i].host);
        len += n > 0 ? (size_t)n : 0;
    }
}

const char *audit_verdict_name(enum audit_verdict v)
{
    static const char *const names[] = {"ok", "unreachable", "accepts unknown recipients",
                                        "weaker than the primary", "OPEN RELAY"};
    return names[v];
}

static int accepts_unknown(const struct audit_probe *p)
{
    return p->unknown_code / 100 == 2;
}

enum audit_verdict audit_judge(const struct audit_probe *p, const struct audit_probe *primary,
                               char *why, size_t size)
{
    if (!p->reachable) {
        snprintf(why, size, "%s",
                 p->timed_out ? "not probed in the time allowed" : "no SMTP service answered");
        return AUDIT_UNREACHABLE;
    }
    if (p->battery.relays > 0) {
        for (size_t i = 0; i < relay_battery_ncases; i++)
            if (!relay_battery_cases[i].must_accept && (p->battery.accepted >> i & 1)) {
                snprintf(why, size, "%d of %zu attempts relayed, first %s", p->battery.relays,
                         relay_battery_ncases, relay_battery_cases[i].name);
                break;
            }
        return AUDIT_OPEN_RELAY;
    }
    int judged = primary != NULL && primary != p && primary->reachable;
    if (judged) {
        /* An attempt both asked where this one accepts and the primary refuses. */
        uint64_t more = p->battery.accepted & ~primary->battery.accepted & primary->battery.tested;
        for (size_t i = 0; i < relay_battery_ncases; i++)
            if (more >> i & 1) {
                snprintf(why, size, "accepts %s, which the primary refuses",
                         relay_battery_cases[i].name);
                return AUDIT_WEAKER;
            }
        if (accepts_unknown(p) && primary->unknown_code / 100 == 5) {
            snprintf(why, size, "accepts an unknown recipient (%d), which the primary refuses (%d)",
                     p->unknown_code, primary->unknown_code);
            return AUDIT_WEAKER;
        }
    }
    if (accepts_unknown(p)) {
        snprintf(why, size, "accepts an unknown recipient (%d)%s", p->unknown_code,
                 judged ? ", as the primary does" : "");
        return AUDIT_ACCEPTS_UNKNOWN;
    }
    char unknown[64] = "not tested";
    if (p->unknown_code != 0)
        snprintf(unknown, sizeof unknown, "refused (%d)", p->unknown_code);
    snprintf(why, size, "no relay; unknown recipient %s%s", unknown,
             judged ? "; answers like the primary" : "");
    return AUDIT_OK;
}
