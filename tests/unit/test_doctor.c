/*
 * The generic-name heuristic of `sluice doctor`: PTR names that carry the address's octets (either
 * order, any separators, or one hex number) or a word of dynamic and pooled ranges are generic;
 * names of hosts of their own, including ones with other numbers or those words inside longer
 * words, are not.
 */
#include <arpa/inet.h>
#include <string.h>

#include "lib/uvutil.h"
#include "mta/cli/cmd_doctor.h"
#include "tests/unit/check.h"

static const struct {
    const char *address;
    const char *name;
    const char *why; /* NULL: not generic */
} cases[] = {
    {"192.0.2.10", "mail.example.com", NULL},
    {"192.0.2.10", "out10.example.com", NULL},
    {"192.0.2.10", "mx2.example.com", NULL},
    {"192.0.2.10", "192-0-2-10.example.net", "the address's octets"},
    {"192.0.2.10", "10.2.0.192.in-addr.example.net", "the address's octets"},
    {"192.0.2.10", "host-192.0.2.10.isp.example", "the address's octets"},
    {"192.0.2.10", "ip192_0_2_10.example", "the address's octets"},
    {"192.0.2.10", "c000020a.static.example", "the address's octets"},
    {"192.0.2.10", "192-0-2-11.example.net", NULL}, /* another address's octets */
    {"192.0.2.10", "dynamic.example.net", "dynamic"},
    {"192.0.2.10", "a1.dhcp.example.net", "dhcp"},
    {"192.0.2.10", "pool-7.example.net", "pool"},
    {"192.0.2.10", "adsl12.example.net", "adsl"},
    {"192.0.2.10", "cpe.cable.example.net", "cable"},
    {"192.0.2.10", "ppp-3.example.net", "ppp"},
    {"192.0.2.10", "poolside.example.com", NULL}, /* a word inside another is no match */
    {"192.0.2.10", "cablecar.example.com", NULL},
    {"2001:db8::10", "dsl.example.net", "dsl"},
    {"2001:db8::10", "mail.example.net", NULL},
};

int main(void)
{
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct sockaddr_storage ss = {0};
        if (strchr(cases[i].address, ':') != NULL) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, cases[i].address, &s6->sin6_addr);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            inet_pton(AF_INET, cases[i].address, &s4->sin_addr);
        }
        const char *why = NULL;
        int generic = doctor_name_is_generic(cases[i].name, (const struct sockaddr *)&ss, &why);
        CHECK_INT_EQ(generic, cases[i].why != NULL);
        if (cases[i].why != NULL && why != NULL)
            CHECK_STR_EQ(why, cases[i].why);
        if (generic != (cases[i].why != NULL))
            fprintf(stderr, "  case: %s for %s\n", cases[i].name, cases[i].address);
    }
    return check_report("test_doctor");
}
