/*
 * Fuzzes the SPF record parser and the macro expander (both pure). A parsed record must respect
 * its caps and every domain-spec in it must expand; the input itself is also expanded as a
 * macro-string, whose result must be a NUL-terminated string of the length returned.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/spf.h"

/* What macros expand to: a check of RFC 7208 §7.4's sender, strong-bad@email.example.com, from
 * 2001:db8::1, with the values made as spf_check_start makes them. */
static const struct spf_macro_env *example_env(void)
{
    static struct spf_macro_values v;
    static int made;
    if (!made) {
        struct dns_addr client = {.family = AF_INET6};
        if (inet_pton(AF_INET6, "2001:db8::1", &client.u.v6) != 1 ||
            spf_macro_values_init(&v, &client, "mx.example.org", "strong-bad@email.example.com",
                                  "mx.ours.example", 1234567890) != 0)
            abort();
        made = 1;
    }
    return &v.env;
}

static void expand_checked(const char *spec, int explanation, int is_domain, int must_succeed)
{
    char out[SPF_EXPAND_MAX + 1];
    int n = spf_macro_expand(spec, example_env(), explanation, is_domain, out, sizeof(out));
    if (n < 0) {
        if (must_succeed)
            abort();
        return;
    }
    if ((size_t)n != strlen(out) || (size_t)n >= sizeof(out))
        abort();
    /* A long domain loses labels from the left until it fits or no dot is left to cut at. */
    if (is_domain && n > SPF_DOMAIN_MAX &&
        memchr(out + n - SPF_DOMAIN_MAX - 1, '.', SPF_DOMAIN_MAX + 1) != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct spf_record rec;
    const char *err = NULL;
    if (spf_record_parse((const char *)data, size, &rec, &err) == 0) {
        if (rec.nterms > SPF_TERMS_MAX || size > SPF_RECORD_MAX)
            abort();
        for (size_t i = 0; i < rec.nterms; i++) {
            const struct spf_term *t = &rec.terms[i];
            if (strchr("+-~?", t->qualifier) == NULL || t->cidr4 > 32 || t->cidr6 > 128)
                abort();
            if (t->domain != NULL)
                expand_checked(t->domain, 0, 1, 0);
        }
        if (rec.redirect != NULL)
            expand_checked(rec.redirect, 0, 1, 0);
    } else if (err == NULL) {
        abort();
    }
    char *spec = malloc(size + 1);
    if (spec == NULL)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    expand_checked(spec, 0, 0, 0);
    expand_checked(spec, 1, 1, 0);
    free(spec);
    return 0;
}
