/*
 * Values as text, before any key or node is involved: numbers with their units, host:port
 * addresses, domain names, networks, and the extra checks that rows of the key table name. Each
 * check returns NULL or why not ("is not ..."), for the loader to quote with the key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/config_int.h"
#include "lib/log_events.h"
#include "lib/xalloc.h"

/* Reads the decimal digits at *s and advances past them; 0 when there are none or they overflow. */
static int read_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == *s)
        return 0;
    *s = p;
    *out = v;
    return 1;
}

struct unit {
    const char *suffix;
    uint64_t factor;
};

static const struct unit size_units[] = {
    {"", 1},           {"k", 1ull << 10}, {"K", 1ull << 10}, {"m", 1ull << 20},
    {"M", 1ull << 20}, {"g", 1ull << 30}, {"G", 1ull << 30}, {NULL, 0},
};
static const struct unit plain_units[] = {{"", 1}, {NULL, 0}};
/* In milliseconds; a plain number is seconds. */
static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0},
};

static int parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
    uint64_t v;
    if (!read_digits(&s, &v))
        return 0;
    for (const struct unit *u = units; u->suffix != NULL; u++) {
        if (strcmp(s, u->suffix) != 0)
            continue;
        if (v > UINT64_MAX / u->factor)
            return 0;
        *out = v * u->factor;
        return 1;
    }
    return 0;
}

int config_parse_amount(const char *s, enum config_key_type type, uint64_t *out)
{
    const struct unit *units = type == CONFIG_SIZE       ? size_units
                               : type == CONFIG_DURATION ? duration_units
                                                         : plain_units;
    return parse_with_units(s, units, out);
}

void config_format_value(enum config_key_type type, uint64_t v, char *out, size_t size)
{
    static const struct unit sizes[] = {{"G", 1ull << 30}, {"M", 1ull << 20}, {"k", 1ull << 10}};
    static const struct unit times[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    const struct unit *units = type == CONFIG_SIZE ? sizes : type == CONFIG_DURATION ? times : NULL;
    size_t n = type == CONFIG_SIZE ? 3 : type == CONFIG_DURATION ? 5 : 0;
    for (size_t i = 0; i < n && v != 0; i++) {
        if (v % units[i].factor == 0) {
            snprintf(out, size, "%llu%s", (unsigned long long)(v / units[i].factor),
                     units[i].suffix);
            return;
        }
    }
    snprintf(out, size, "%llu", (unsigned long long)v);
}

void config_join_words(const char *const *words, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; words[i] != NULL && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? ", " : "", words[i]);
}

static int parse_port(const char *s, in_port_t *port)
{
    uint64_t v;
    if (!read_digits(&s, &v) || *s != '\0' || v < 1 || v > 65535)
        return 0;
    *port = (in_port_t)v;
    return 1;
}

static int has_letter(const char *s)
{
    for (; *s; s++)
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
            return 1;
    return 0;
}

const char *config_parse_hostport(const char *s, int need_port, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *h = s, *port = NULL;
    size_t hlen;
    int family = AF_INET;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return "has '[' without ']'";
        h = s + 1;
        hlen = (size_t)(end - h);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return "has something other than :port after ']'";
        family = AF_INET6;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            if (need_port)
                return "needs brackets around the IPv6 address: [address]:port";
            hlen = strlen(s);
            family = AF_INET6;
        } else {
            hlen = colon ? (size_t)(colon - s) : strlen(s);
            port = colon ? colon + 1 : NULL;
        }
    }
    if (hlen == 0 || hlen >= sizeof host)
        return "has no valid address";
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    in_port_t p = 0;
    if (port == NULL && need_port)
        return "has no :port";
    if (port != NULL && !parse_port(port, &p))
        return "has a port that is not a number from 1 to 65535";

    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return has_letter(host) ? "has a host name where a numeric address is needed"
                                    : "has no valid IPv4 address";
        sin->sin_family = AF_INET;
        sin->sin_port = htons(p);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return "has no valid IPv6 address";
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(p);
    }
    return NULL;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static const char all_digits[] = "is an IP address, not a domain name";

const char *config_domain_why(const char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return "is empty";
    if (len > 253)
        return "is longer than 253 characters";
    const char *label = s;
    for (;;) {
        const char *end = strchr(label, '.');
        size_t n = end ? (size_t)(end - label) : strlen(label);
        if (n == 0)
            return "has an empty label";
        if (n > 63)
            return "has a label longer than 63 characters";
        if (label[0] == '-' || label[n - 1] == '-')
            return "has a label that starts or ends with '-'";
        int digits = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)label[i];
            if (c >= 0x80)
                return "has non-ASCII characters: write the name in its xn-- form";
            if (!is_alnum(c) && c != '-')
                return "has a character other than letters, digits, '-' and '.'";
            if (c < '0' || c > '9')
                digits = 0;
        }
        if (end == NULL)
            return digits ? all_digits : NULL;
        label = end + 1;
    }
}

char *config_default_hostname(void)
{
    char name[256];
    if (gethostname(name, sizeof name) < 0)
        return xstrdup("localhost");
    name[sizeof name - 1] = '\0';
    return xstrdup(name);
}

const char *config_check_hostname(const char *value)
{
    return config_domain_why(value);
}

const char *config_check_dns_server(const char *value)
{
    struct sockaddr_storage ss;
    return config_parse_hostport(value, 0, &ss);
}

const char *config_check_http_listen(const char *value)
{
    struct sockaddr_storage ss;
    return config_parse_hostport(value, 1, &ss);
}

const char *config_check_listener_name(const char *value)
{
    size_t len = strlen(value);
    if (len > 64)
        return "is longer than 64 characters";
    for (size_t i = 0; i < len; i++)
        if (!is_alnum((unsigned char)value[i]) && strchr("._-", value[i]) == NULL)
            return "has a character other than letters, digits, '.', '_' and '-'";
    return NULL;
}

/* "host", "host:port", "[address]" or "[address]:port" (IPv4 or IPv6 inside the brackets). */
const char *config_check_deliver_to(const char *value)
{
    char host[256];
    const char *port;
    if (value[0] == '[') {
        const char *end = strchr(value, ']');
        unsigned char addr[16];
        size_t hlen = end ? (size_t)(end - value - 1) : 0;
        if (end == NULL || hlen == 0 || hlen >= INET6_ADDRSTRLEN)
            return "has no valid [address]";
        memcpy(host, value + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
            return "has no valid [address]";
        if (end[1] != '\0' && end[1] != ':')
            return "has something other than :port after ']'";
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strchr(value, ':');
        size_t hlen = colon ? (size_t)(colon - value) : strlen(value);
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return "needs brackets around an IPv6 address: [2001:db8::1]:25";
        if (hlen >= sizeof host)
            return "is longer than 253 characters";
        memcpy(host, value, hlen);
        host[hlen] = '\0';
        const char *why = config_domain_why(host);
        if (why != NULL) {
            unsigned char addr[4];
            return inet_pton(AF_INET, host, addr) == 1
                       ? "needs brackets around an address: [192.0.2.1]:25"
                       : why;
        }
        port = colon ? colon + 1 : NULL;
    }
    in_port_t p;
    if (port != NULL && !parse_port(port, &p))
        return "has a port that is not a number from 1 to 65535";
    return NULL;
}

/* A numeric IPv4 or IPv6 address without a port. */
const char *config_check_ip(const char *value)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1)
        return NULL;
    return has_letter(value) && strchr(value, ':') == NULL
               ? "is a host name where a numeric address is needed"
               : "is not an IPv4 or IPv6 address (without a port)";
}

/* "mx.example.net" or "*.example.net". */
const char *config_check_mx_pattern(const char *value)
{
    return config_domain_why(strncmp(value, "*.", 2) == 0 ? value + 2 : value);
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int config_parse_date(const char *value, int64_t *days)
{
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(value) != 10 || value[4] != '-' || value[7] != '-')
        return 0;
    int y = digits(value, 4), m = digits(value + 5, 2), d = digits(value + 8, 2);
    int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1] ||
        (m == 2 && d == 29 && !leap))
        return 0;
    /* Days from the civil date (H. Hinnant's algorithm, proleptic Gregorian calendar). */
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t era = yy / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = era * 146097 + doe - 719468;
    return 1;
}

const char *config_check_date(const char *value)
{
    int64_t days;
    return config_parse_date(value, &days) ? NULL : "is not a date written YYYY-MM-DD";
}

int config_parse_utc_offset(const char *value, int *minutes)
{
    if (strlen(value) != 6 || (value[0] != '+' && value[0] != '-') || value[3] != ':')
        return 0;
    int h = digits(value + 1, 2), m = digits(value + 4, 2);
    if (h < 0 || h > 14 || m < 0 || m > 59)
        return 0;
    *minutes = (value[0] == '-' ? -1 : 1) * (h * 60 + m);
    return 1;
}

const char *config_check_utc_offset(const char *value)
{
    int minutes;
    return config_parse_utc_offset(value, &minutes)
               ? NULL
               : "is not an offset from UTC (+HH:MM or -HH:MM)";
}

const char *config_check_provider(const char *value)
{
    return strcmp(value, "*") == 0 ? NULL : config_check_mx_pattern(value);
}

/* RFC 3463 §2: class.subject.detail ("4.7.28"), or its start up to a dot ("4.7."). */
const char *config_check_enhanced_pattern(const char *value)
{
    static const char *const why = "is not an enhanced status code (\"4.7.28\", or \"4.7.\")";
    const char *p = value;
    if (*p != '2' && *p != '4' && *p != '5')
        return why;
    p++;
    for (int part = 0; part < 2; part++) { /* subject, then detail */
        if (*p++ != '.')
            return why;
        if (*p == '\0')
            return NULL; /* a prefix ending at a dot */
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 3)
            return why;
        p += digits;
    }
    return *p == '\0' ? NULL : why;
}

/* RFC 6376 §3.1: selectors are dot-separated labels, all-digit ones included. */
const char *config_check_selector(const char *value)
{
    const char *why = config_domain_why(value);
    return why == all_digits ? NULL : why;
}

const char *config_check_dkim_algorithm(const char *value)
{
    if (strcmp(value, "rsa-sha256") == 0 || strcmp(value, "ed25519-sha256") == 0)
        return NULL;
    return "is not one of: rsa-sha256, ed25519-sha256";
}

const char *config_check_canonicalization(const char *value)
{
    static const char *const forms[] = {"relaxed/relaxed", "relaxed/simple", "simple/relaxed",
                                        "simple/simple"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (strcmp(value, forms[i]) == 0)
            return NULL;
    return "is not one of: relaxed/relaxed, relaxed/simple, simple/relaxed, simple/simple";
}

/* "[local-part]@domain" (RFC 6376 §3.5 i=); that the domain is d= or below is checked later. */
const char *config_check_identity(const char *value)
{
    const char *at = strrchr(value, '@');
    if (at == NULL)
        return "has no '@domain'";
    for (const char *p = value; p < at; p++)
        if (*p == ' ' || *p == ';' || *p == '@')
            return "has a space, ';' or '@' in its local part";
    return config_domain_why(at + 1);
}

/* "user@domain": a local part of printable ASCII without blanks, '<', '>', '@' or quotes. */
const char *config_check_mailbox(const char *value)
{
    const char *at = strrchr(value, '@');
    if (at == NULL || at == value)
        return "is not an address of the form user@domain";
    for (const char *p = value; p < at; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("<>@\"\\", *p) != NULL)
            return "has a blank, control, 8-bit, '<', '>', '@' or quote in its local part";
    return config_domain_why(at + 1);
}

/* "exe" or ".exe": letters and digits, at most 16. */
const char *config_check_extension(const char *value)
{
    const char *p = value[0] == '.' ? value + 1 : value;
    size_t len = strlen(p);
    if (len == 0 || len > 16)
        return "is not a file name extension of 1 to 16 characters";
    for (; *p; p++)
        if (!is_alnum((unsigned char)*p))
            return "has a character other than letters and digits";
    return NULL;
}

/* A unix socket path ("/run/clamav/clamd.ctl"), "address:port" or "host:port". */
const char *config_check_clamd(const char *value)
{
    struct sockaddr_storage ss;
    if (value[0] == '/' || config_parse_hostport(value, 1, &ss) == NULL)
        return NULL;
    const char *colon = strrchr(value, ':');
    char host[256];
    in_port_t port;
    if (colon == NULL || (size_t)(colon - value) >= sizeof host)
        return "is neither a socket path (/...) nor host:port";
    if (!parse_port(colon + 1, &port))
        return "has a port that is not a number from 1 to 65535";
    memcpy(host, value, (size_t)(colon - value));
    host[colon - value] = '\0';
    return config_domain_why(host);
}

/* A unix socket path or a numeric "address:port": the Redis client connects without blocking,
 * which a host name (resolved by hiredis itself, synchronously) would not allow. */
const char *config_check_redis(const char *value)
{
    struct sockaddr_storage ss;
    if (value[0] == '/')
        return NULL;
    return config_parse_hostport(value, 1, &ss);
}

/* "address/prefix" (a bare address is a single host). Host bits beyond the prefix are refused:
 * "10.0.0.1/8" is either a typo or a misunderstanding, and either way it should not trust 10/8
 * silently. A v4-mapped IPv6 network becomes the IPv4 one it stands for. */
int config_parse_cidr(const char *s, struct config_cidr *c, char *why, size_t why_size)
{
    static const char not_network[] = "is not a network (write address/prefix, e.g. 192.0.2.0/24)";
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned bits;
    if (hlen == 0 || hlen >= sizeof host) {
        snprintf(why, why_size, "%s", not_network);
        return -EINVAL;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(c->addr, 0, sizeof c->addr);
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        bits = 128;
    } else {
        snprintf(why, why_size, "%s", not_network);
        return -EINVAL;
    }
    uint64_t prefix = bits;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (!read_digits(&p, &prefix) || *p != '\0') {
            snprintf(why, why_size, "%s", not_network);
            return -EINVAL;
        }
        if (prefix > bits) {
            snprintf(why, why_size, "has a prefix longer than /%u", bits);
            return -EINVAL;
        }
    }
    c->prefix = (unsigned)prefix;

    unsigned char net[16];
    memcpy(net, c->addr, sizeof net);
    for (unsigned bit = c->prefix; bit < bits; bit++)
        net[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    if (memcmp(net, c->addr, bits / 8) != 0) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(c->family, net, text, sizeof text);
        snprintf(why, why_size, "has host bits set beyond the /%u prefix (the network is %s/%u)",
                 c->prefix, text, c->prefix);
        return -EINVAL;
    }
    if (c->family == AF_INET6 && c->prefix >= 96 &&
        IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)c->addr)) {
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        c->prefix -= 96;
    }
    return 0;
}

int config_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

const char *config_check_http_url(const char *value)
{
    size_t scheme = strncasecmp(value, "http://", 7) == 0    ? 7
                    : strncasecmp(value, "https://", 8) == 0 ? 8
                                                             : 0;
    if (scheme == 0)
        return "is not an http:// or https:// URL";
    size_t host = strcspn(value + scheme, "/?#");
    if (host == 0 || value[scheme] == ':' || value[scheme] == '@')
        return "has no host";
    if (strchr(value, ' ') != NULL)
        return "has a space (write it as %20)";
    return NULL;
}

/* RFC 9110 5.1: a field name is a token; 5.5: its value has no CR, LF or NUL (the loader refuses
 * control characters anyway). */
const char *config_check_http_header(const char *value)
{
    size_t name = strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "!#$%&'*+-.^_`|~");
    if (name == 0 || value[name] != ':')
        return "is not a header line (write \"Name: value\")";
    return NULL;
}

const char *config_check_log_event(const char *value)
{
    return log_event_find(value) == NULL ? "is not an event Sluice logs (see `sluice log-events`)"
                                         : NULL;
}

/* A trace key's id travels in every trace: short, and plain enough for an address's local part. */
const char *config_check_trace_key_id(const char *value)
{
    size_t len = strlen(value);
    if (len == 0 || len > 8)
        return "is not a key id of 1 to 8 letters and digits";
    for (const char *p = value; *p; p++)
        if (!is_alnum((unsigned char)*p))
            return "has a character other than letters and digits";
    return NULL;
}

/* 1 when value is 1 to max printable US-ASCII characters, no blank, and no colon unless colon_ok.
 */
static int is_token(const char *value, size_t max, int colon_ok)
{
    size_t len = strlen(value);
    for (const char *p = value; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || (*p == ':' && !colon_ok))
            return 0;
    return len > 0 && len <= max;
}

/* RFC 5322 §3.6.8: a field name is printable US-ASCII but colon; 76 keeps it on one line. */
const char *config_check_field_name(const char *value)
{
    return is_token(value, 76, 0) ? NULL
                                  : "is not a header field name (1 to 76 characters, no blank, "
                                    "no colon, ASCII only)";
}

/* A tenant is named by a user name or a header field: printable, no blank, as the suppression list
 * keys it (64 octets at most). */
const char *config_check_tenant_name(const char *value)
{
    return is_token(value, 64, 1) ? NULL
                                  : "is not a tenant name (1 to 64 characters, no blank, ASCII "
                                    "only)";
}

/* An HMAC key much shorter than the hash is easy to guess (RFC 2104 §3 asks for at least its
 * output length; 16 characters of a random secret is the floor we accept). */
const char *config_check_trace_secret(const char *value)
{
    return strlen(value) < 16 ? "is shorter than 16 characters" : NULL;
}
