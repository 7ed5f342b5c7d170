/*
 * The pure parts of `sluice audit-mx`: name and MX sets compare regardless of case, a trailing dot
 * and the order the records came in; an MX is judged against the primary: relaying is worst, then
 * accepting a battery attempt or an unknown recipient the primary refuses, then accepting unknown
 * recipients as the primary does; an unreachable MX is not judged.
 */
#include <string.h>

#include "mta/cli/cmd_audit_mx.h"
#include "mta/relay_battery.h"
#include "tests/unit/check.h"

static void test_sets(void)
{
    struct audit_names names = {0};
    CHECK_INT_EQ(audit_names_add(&names, "NS1.Example.COM."), 1);
    CHECK_INT_EQ(audit_names_add(&names, "ns1.example.com"), 0);
    CHECK_INT_EQ(audit_names_has(&names, "Ns1.example.com."), 1);
    CHECK_INT_EQ(audit_names_has(&names, "ns2.example.com"), 0);
    CHECK_STR_EQ(names.at[0], "ns1.example.com");
    for (int i = 0; i < 2 * AUDIT_NAMES_MAX; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d.example", i);
        audit_names_add(&names, name);
    }
    CHECK_INT_EQ(names.n, AUDIT_NAMES_MAX);

    struct audit_mx_set a = {0}, b = {0};
    char text[200];
    audit_mx_set_text(&a, text, sizeof text);
    CHECK_STR_EQ(text, "none");
    audit_mx_set_add(&a, "mx2.example.com", 20);
    audit_mx_set_add(&a, "MX1.example.com.", 10);
    audit_mx_set_add(&a, "mx1.example.com", 10); /* the same record twice */
    audit_mx_set_add(&b, "mx1.example.com", 10);
    audit_mx_set_add(&b, "mx2.example.com.", 20);
    CHECK_INT_EQ(audit_mx_set_equal(&a, &b), 1);
    audit_mx_set_text(&a, text, sizeof text);
    CHECK_STR_EQ(text, "10 mx1.example.com, 20 mx2.example.com");
    audit_mx_set_add(&b, "mx3.example.com", 20);
    CHECK_INT_EQ(audit_mx_set_equal(&a, &b), 0);
    audit_mx_set_text(&b, text, 20); /* truncated, terminated */
    CHECK_INT_EQ(strlen(text), 19);
    struct audit_mx_set c = {0};
    audit_mx_set_add(&c, "mx1.example.com", 10);
    audit_mx_set_add(&c, "mx2.example.com", 30); /* another preference: another set */
    CHECK_INT_EQ(audit_mx_set_equal(&a, &c), 0);
}

/* A reachable server that accepts exactly the local cases of the battery, and refuses (550) an
 * unknown recipient. */
static struct audit_probe strict(void)
{
    struct audit_probe p = {.reachable = 1, .unknown_code = 550};
    for (size_t i = 0; i < relay_battery_ncases; i++) {
        p.battery.tested |= (uint64_t)1 << i;
        if (relay_battery_cases[i].must_accept)
            p.battery.accepted |= (uint64_t)1 << i;
    }
    return p;
}

static size_t case_index(const char *name)
{
    for (size_t i = 0; i < relay_battery_ncases; i++)
        if (strcmp(relay_battery_cases[i].name, name) == 0)
            return i;
    return 0;
}

static void test_judge(void)
{
    char why[300];
    struct audit_probe primary = strict(), backup = strict();
    CHECK_INT_EQ(audit_judge(&primary, NULL, why, sizeof why), AUDIT_OK);
    CHECK_STR_EQ(why, "no relay; unknown recipient refused (550)");
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_OK);
    CHECK_STR_EQ(why, "no relay; unknown recipient refused (550); answers like the primary");

    /* Refusing a local recipient the primary takes is no weakness. */
    backup.battery.accepted &= ~((uint64_t)1 << case_index("local-recipient"));
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_OK);

    backup = strict();
    backup.unknown_code = 250;
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_WEAKER);
    CHECK_STR_EQ(why, "accepts an unknown recipient (250), which the primary refuses (550)");
    primary.unknown_code = 250; /* both take any recipient: alike, but noted */
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_ACCEPTS_UNKNOWN);
    CHECK_STR_EQ(why, "accepts an unknown recipient (250), as the primary does");
    CHECK_INT_EQ(audit_judge(&primary, NULL, why, sizeof why), AUDIT_ACCEPTS_UNKNOWN);

    /* Accepting an attempt the primary refuses, without relaying (a local form of it). */
    primary = strict();
    backup = strict();
    size_t pm = case_index("postmaster");
    primary.battery.accepted &= ~((uint64_t)1 << pm);
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_WEAKER);
    CHECK_STR_EQ(why, "accepts postmaster, which the primary refuses");
    /* ... unless the primary could not be asked it. */
    primary.battery.tested &= ~((uint64_t)1 << pm);
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_OK);

    backup = strict();
    backup.battery.relays = 2;
    backup.battery.accepted |= (uint64_t)1 << case_index("percent-hack");
    backup.battery.accepted |= (uint64_t)1 << case_index("bang-path");
    CHECK_INT_EQ(audit_judge(&backup, &primary, why, sizeof why), AUDIT_OPEN_RELAY);
    CHECK(strstr(why, "2 of ") == why);
    CHECK(strstr(why, "attempts relayed, first percent-hack") != NULL);
    CHECK_INT_EQ(audit_judge(&backup, NULL, why, sizeof why), AUDIT_OPEN_RELAY);

    struct audit_probe down = {.reachable = 0};
    CHECK_INT_EQ(audit_judge(&down, &primary, why, sizeof why), AUDIT_UNREACHABLE);
    struct audit_probe late = {.timed_out = 1};
    CHECK_INT_EQ(audit_judge(&late, &primary, why, sizeof why), AUDIT_UNREACHABLE);
    CHECK_STR_EQ(why, "not probed in the time allowed");
    /* An unreachable primary leaves the others judged alone. */
    backup = strict();
    backup.unknown_code = 250;
    CHECK_INT_EQ(audit_judge(&backup, &down, why, sizeof why), AUDIT_ACCEPTS_UNKNOWN);
    CHECK(AUDIT_OPEN_RELAY > AUDIT_WEAKER && AUDIT_WEAKER > AUDIT_ACCEPTS_UNKNOWN);
    CHECK_STR_EQ(audit_verdict_name(AUDIT_OPEN_RELAY), "OPEN RELAY");
}

int main(void)
{
    test_sets();
    test_judge();
    return check_report("test_audit_mx");
}
