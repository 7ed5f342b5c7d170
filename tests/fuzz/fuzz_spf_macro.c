/*
 * Fuzzes SPF macro expansion (RFC 7208 §7) with the values an attacker controls: the MAIL FROM
 * address, the HELO name, the client address and the domain being checked, turned into macro
 * values by spf_macro_values_init exactly as a check does, then a fuzzed macro-string expanded
 * with them. The values must be the parts of the identity, cut to their caps; single macros expand
 * to their values ("%{S}" to the URL-escaped value); whatever expands without the explanation
 * rules expands the same with them; a result is a string of the length returned, and a domain
 * result fits 253 octets unless no dot is left to cut at.
 * Input: byte 0 (bit 0 IPv6, bit 1 explanation, bit 2 domain-spec), 16 address bytes, then the
 * sender, HELO name, current domain and macro-string, separated by NULs.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/spf.h"

#define NOW 1700000000LL

static char out[SPF_EXPAND_MAX + 1], again[SPF_EXPAND_MAX + 1];

/* Takes the next NUL-terminated field of the input (the last runs to the end); "" when none. */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
    size_t len = nul != NULL ? (size_t)(nul - *p) : (size_t)(end - *p);
    char *s = malloc(len + 1);
    memcpy(s, *p, len);
    s[len] = '\0';
    *p = nul != NULL ? nul + 1 : end;
    return s;
}

static int expand(const char *spec, const struct spf_macro_env *env, int explanation, int is_domain,
                  char *buf)
{
    int n = spf_macro_expand(spec, env, explanation, is_domain, buf, SPF_EXPAND_MAX + 1);
    if (n >= 0 && ((size_t)n != strlen(buf) || n > SPF_EXPAND_MAX))
        abort();
    return n;
}

/* A single macro expands to its value, whole (no domain cut). */
static void check_value(const struct spf_macro_env *env, const char *spec, const char *want)
{
    if (expand(spec, env, 1, 0, out) < 0 || strcmp(out, want) != 0)
        abort();
}

/* "%{S}" is "%{s}" URL-escaped: only unreserved characters stay, the rest are %XX. */
static void check_escaped(const struct spf_macro_env *env)
{
    if (expand("%{S}", env, 0, 0, out) < 0)
        abort();
    size_t k = 0;
    for (const char *p = out; *p != '\0'; k++) {
        unsigned byte;
        if (*p == '%') {
            if (sscanf(p + 1, "%2X", &byte) != 1)
                abort();
            p += 3;
        } else {
            byte = (unsigned char)*p++;
        }
        if ((unsigned char)env->sender[k] != byte)
            abort();
    }
    if (env->sender[k] != '\0')
        abort();
}

static void check_values(const struct spf_macro_values *v, const char *sender, const char *helo,
                         int rc)
{
    const char *at = strrchr(sender, '@');
    size_t local_len = at != NULL && at != sender ? (size_t)(at - sender) : 0;
    const char *domain = at != NULL ? at + 1 : *sender != '\0' ? sender : helo;
    if (local_len == 0
            ? strcmp(v->local, "postmaster") != 0
            : strlen(v->local) != (local_len < SPF_LOCAL_MAX ? local_len : SPF_LOCAL_MAX) ||
                  memcmp(v->local, sender, strlen(v->local)) != 0)
        abort();
    size_t dlen = strlen(domain);
    if (strlen(v->sender_domain) != (dlen < SPF_DOMAIN_MAX ? dlen : SPF_DOMAIN_MAX) ||
        memcmp(v->sender_domain, domain, strlen(v->sender_domain)) != 0 ||
        (rc == 0) != (dlen <= SPF_DOMAIN_MAX))
        abort();
    size_t ll = strlen(v->local);
    if (strncmp(v->sender, v->local, ll) != 0 || v->sender[ll] != '@' ||
        strcmp(v->sender + ll + 1, v->sender_domain) != 0)
        abort();
    if (v->env.domain != v->sender_domain || v->env.now != NOW)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 17)
        return 0;
    int flags = data[0];
    struct dns_addr client = {.family = flags & 1 ? AF_INET6 : AF_INET};
    memcpy(flags & 1 ? (void *)&client.u.v6 : (void *)&client.u.v4, data + 1, flags & 1 ? 16 : 4);
    const uint8_t *p = data + 17, *end = data + size;
    char *sender = field(&p, end), *helo = field(&p, end), *domain = field(&p, end);
    char *spec = field(&p, end);

    struct spf_macro_values v;
    int rc = spf_macro_values_init(&v, &client, helo, sender, "mx.ours.example", NOW);
    check_values(&v, sender, helo, rc);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(client.family, &client.u, text, sizeof text);
    if (strcmp(v.ip_text, text) != 0 ||
        strlen(v.ip) != (client.family == AF_INET ? strlen(text) : 63))
        abort();
    check_escaped(&v.env);

    /* The check sets the current domain from an include or redirect target (at most 253). */
    if (strlen(domain) > SPF_DOMAIN_MAX)
        domain[SPF_DOMAIN_MAX] = '\0';
    v.env.domain = domain;
    check_value(&v.env, "%{s}", v.sender);
    check_value(&v.env, "%{l}", v.local);
    check_value(&v.env, "%{o}", v.sender_domain);
    check_value(&v.env, "%{d}", domain);
    check_value(&v.env, "%{h}", v.helo);
    check_value(&v.env, "%{i}", v.ip);
    check_value(&v.env, "%{c}", v.ip_text);
    check_value(&v.env, "%{r}", "mx.ours.example");
    check_value(&v.env, "%{t}", "1700000000");

    int explanation = (flags >> 1) & 1, is_domain = (flags >> 2) & 1;
    int n = expand(spec, &v.env, explanation, is_domain, out);
    if (n > SPF_DOMAIN_MAX && is_domain &&
        memchr(out + n - SPF_DOMAIN_MAX - 1, '.', SPF_DOMAIN_MAX + 1) != NULL)
        abort();
    if (n >= 0 && !explanation &&
        (expand(spec, &v.env, 1, is_domain, again) != n || strcmp(out, again) != 0))
        abort();

    free(sender);
    free(helo);
    free(domain);
    free(spec);
    return 0;
}
