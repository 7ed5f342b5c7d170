#include "lib/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "lib/config_keys.h"
#include "lib/edit_distance.h"
#include "lib/idna.h"
#include "lib/ratelimit.h"
#include "lib/xalloc.h"

/* Our keys nest four deep at most (listeners, item, key, value): deeper input is refused before it
 * can cost stack or memory. */
#define MAX_DEPTH 16
/* Messages after this many are dropped: one mistake repeated down a long file says enough. */
#define MAX_ERRORS 20
/* A configuration file larger than this is not one (long domain lists stay far below). */
#define MAX_FILE_SIZE (64u << 20)
/* Longest value quoted back in a message, and the buffer that holds it escaped. */
#define SHOWN_MAX 60
#define SHOWN_BUF (SHOWN_MAX * 4 + 4)
/* Room for a dotted key name in messages: "domains.<253 octets>.deliver_to". */
#define NAME_BUF 320

/* Enum fields of the structs are written through an int. */
_Static_assert(sizeof(enum listener_role) == sizeof(int) &&
                   sizeof(enum listener_tls) == sizeof(int) &&
                   sizeof(enum shaping_tls) == sizeof(int) &&
                   sizeof(enum dkim_on_error) == sizeof(int) &&
                   sizeof(enum inbound_reverse_dns) == sizeof(int) &&
                   sizeof(enum inbound_spf) == sizeof(int) &&
                   sizeof(enum inbound_clamd_down) == sizeof(int),
               "enum fields are stored as int");
_Static_assert(sizeof(struct config_rate) == sizeof(struct ratelimit_rate),
               "struct config_rate mirrors struct ratelimit_rate");

/* ---- Errors: "file:line:column: message" lines ---- */

struct errors {
    const char *file;
    struct buf *out;
    int count;
};

static void verror_at(struct errors *e, unsigned line, unsigned column, const char *fmt, va_list ap)
{
    e->count++;
    if (e->count > MAX_ERRORS + 1)
        return;
    buf_printf(e->out, "%s:%u:%u: ", e->file, line, column);
    if (e->count == MAX_ERRORS + 1) {
        buf_append_str(e->out, "too many errors; the rest are not reported\n");
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    buf_printf(e->out, "%s\n", msg);
}

static void __attribute__((format(printf, 4, 5)))
error_at(struct errors *e, unsigned line, unsigned column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_at(e, line, column, fmt, ap);
    va_end(ap);
}

/* Quotes text for a message: printable ASCII as is, other octets as \xNN, long text cut short, so
 * that a message stays one readable line whatever the file holds. */
static const char *shown(const char *text, size_t len, char out[SHOWN_BUF])
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < SHOWN_MAX; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
    }
    if (len > SHOWN_MAX)
        o += (size_t)snprintf(out + o, 4, "...");
    out[o] = '\0';
    return out;
}

/* ---- The YAML tree ---- */

enum node_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING };

/* The parsed document, kept until the load ends so that any message can point at any node. */
struct node {
    enum node_kind kind;
    int plain;  /* a scalar written without quotes: "", "~" and "null" then mean nothing */
    char *text; /* scalar value, NUL-terminated; may hold NULs of its own (see len) */
    size_t len;
    struct node **items; /* sequence items, or mapping keys and values alternating */
    size_t nitems, cap;
    unsigned line, column; /* 1-based */
};

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nitems; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

static int scalar_is(const struct node *n, const char *word)
{
    return n->len == strlen(word) && memcmp(n->text, word, n->len) == 0;
}

static int node_is_null(const struct node *n)
{
    return n == NULL || (n->kind == NODE_SCALAR && n->plain &&
                         (n->len == 0 || scalar_is(n, "~") || scalar_is(n, "null") ||
                          scalar_is(n, "Null") || scalar_is(n, "NULL")));
}

static const char *kind_name(enum node_kind kind)
{
    return kind == NODE_SCALAR ? "a single value" : kind == NODE_SEQUENCE ? "a list" : "a mapping";
}

struct builder {
    struct errors *e;
    struct node *root;
    struct node *open[MAX_DEPTH]; /* containers not yet closed, innermost last */
    int depth;
    int documents;
    int done;
};

/* Anchors and aliases are refused outright: a tree of aliases expands exponentially ("billion
 * laughs"), and a configuration has no need to share values. Tags would change a value's type. */
static int builder_check_properties(struct builder *b, const yaml_event_t *ev, const char *anchor,
                                    const char *tag)
{
    char tmp[SHOWN_BUF];
    unsigned line = (unsigned)ev->start_mark.line + 1, column = (unsigned)ev->start_mark.column + 1;
    if (anchor != NULL) {
        error_at(b->e, line, column, "YAML anchors (&%s) are not allowed: write each value out",
                 shown(anchor, strlen(anchor), tmp));
        return -EINVAL;
    }
    if (tag != NULL) {
        error_at(b->e, line, column, "YAML tags (%s) are not allowed",
                 shown(tag, strlen(tag), tmp));
        return -EINVAL;
    }
    return 0;
}

static int builder_add(struct builder *b, const yaml_event_t *ev, enum node_kind kind)
{
    unsigned line = (unsigned)ev->start_mark.line + 1, column = (unsigned)ev->start_mark.column + 1;
    if (kind != NODE_SCALAR && b->depth == MAX_DEPTH) {
        error_at(b->e, line, column, "nested too deeply (more than %d levels)", MAX_DEPTH);
        return -EINVAL;
    }
    struct node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = line;
    n->column = column;
    if (kind == NODE_SCALAR) {
        n->len = ev->data.scalar.length;
        n->text = xmalloc(n->len + 1);
        memcpy(n->text, ev->data.scalar.value, n->len);
        n->text[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    }
    if (b->depth == 0) {
        b->root = n;
    } else {
        struct node *parent = b->open[b->depth - 1];
        if (parent->nitems == parent->cap) {
            parent->cap = parent->cap ? parent->cap * 2 : 8;
            parent->items = xrealloc(parent->items, parent->cap * sizeof *parent->items);
        }
        parent->items[parent->nitems++] = n;
    }
    if (kind != NODE_SCALAR)
        b->open[b->depth++] = n;
    return 0;
}

static int builder_event(struct builder *b, const yaml_event_t *ev)
{
    char tmp[SHOWN_BUF];
    unsigned line = (unsigned)ev->start_mark.line + 1, column = (unsigned)ev->start_mark.column + 1;
    const char *alias;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        b->done = 1;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            error_at(b->e, line, column, "only one YAML document is allowed");
            return -EINVAL;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        alias = (const char *)ev->data.alias.anchor;
        error_at(b->e, line, column, "YAML aliases (*%s) are not allowed: write each value out",
                 shown(alias, strlen(alias), tmp));
        return -EINVAL;
    case YAML_SCALAR_EVENT:
        if (builder_check_properties(b, ev, (const char *)ev->data.scalar.anchor,
                                     (const char *)ev->data.scalar.tag) < 0)
            return -EINVAL;
        return builder_add(b, ev, NODE_SCALAR);
    case YAML_SEQUENCE_START_EVENT:
        if (builder_check_properties(b, ev, (const char *)ev->data.sequence_start.anchor,
                                     (const char *)ev->data.sequence_start.tag) < 0)
            return -EINVAL;
        return builder_add(b, ev, NODE_SEQUENCE);
    case YAML_MAPPING_START_EVENT:
        if (builder_check_properties(b, ev, (const char *)ev->data.mapping_start.anchor,
                                     (const char *)ev->data.mapping_start.tag) < 0)
            return -EINVAL;
        return builder_add(b, ev, NODE_MAPPING);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        b->depth--;
        return 0;
    default:
        return 0;
    }
}

/* 1-based line and column of byte `offset` in text, for errors libyaml reports only by offset. */
static void offset_position(const char *text, size_t len, size_t offset, unsigned *line,
                            unsigned *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

/* The byte offset where 0-based line `line` of text starts (len when there are fewer lines). */
static size_t line_start(const char *text, size_t len, size_t line)
{
    size_t at = 0;
    for (; line > 0 && at < len; at++)
        if (text[at] == '\n')
            line--;
    return at;
}

/* Reports libyaml's parse error, in plain words for the two mistakes people make most: a tab in
 * the indentation (YAML indents with spaces only; libyaml says "found character that cannot start
 * any token") and a quoted string that is never closed (libyaml notices only at the end). */
static void syntax_error(struct errors *e, const char *text, size_t len, const yaml_parser_t *p)
{
    unsigned line = (unsigned)p->problem_mark.line + 1;
    unsigned column = (unsigned)p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_READER_ERROR) {
        offset_position(text, len, p->problem_offset, &line, &column);
    } else if (p->error == YAML_SCANNER_ERROR) {
        size_t start = line_start(text, len, p->problem_mark.line), at = start;
        while (at < len && text[at] == ' ')
            at++;
        if (at < len && text[at] == '\t') {
            error_at(e, line, (unsigned)(at - start) + 1,
                     "tab character used for indentation: YAML allows only spaces");
            return;
        }
        int ends = strcmp(problem, "found unexpected end of stream") == 0;
        if (p->context != NULL && strcmp(p->context, "while scanning a quoted scalar") == 0 &&
            (ends || strcmp(problem, "found unexpected document indicator") == 0)) {
            unsigned from_line = (unsigned)p->context_mark.line + 1;
            unsigned from_column = (unsigned)p->context_mark.column + 1;
            size_t quote = line_start(text, len, p->context_mark.line) + p->context_mark.column;
            char q = quote < len && text[quote] == '\'' ? '\'' : '"';
            if (ends)
                error_at(e, from_line, from_column,
                         "unclosed quoted string starting at %u:%u: no closing %c before the end "
                         "of the file",
                         from_line, from_column, q);
            else
                error_at(e, from_line, from_column,
                         "unclosed quoted string starting at %u:%u: no closing %c before the "
                         "'---' at %u:%u",
                         from_line, from_column, q, line, column);
            return;
        }
    }
    error_at(e, line, column, "YAML syntax error: %s%s%s%s", problem, p->context ? " (" : "",
             p->context ? p->context : "", p->context ? ")" : "");
}

/* Parses text into a tree with libyaml's event API; *root is NULL for an empty document. */
static int tree_build(const char *text, size_t len, struct errors *e, struct node **root)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "sluice: out of memory initializing the YAML parser\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    struct builder b = {.e = e};
    int rc = 0;
    while (rc == 0 && !b.done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(e, text, len, &parser);
            rc = -EINVAL;
            break;
        }
        rc = builder_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc < 0) {
        node_free(b.root);
        return rc;
    }
    *root = b.root;
    return 0;
}

/* ---- Scalars: numbers, sizes, durations, addresses, names ---- */

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

/* A bound or a default as a person writes it: "1k", "2G", "30s", "1h". */
static void format_value(enum config_key_type type, uint64_t v, char *out, size_t size)
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

/* "IPv4:port" or "[IPv6]:port"; the port may be left out unless need_port. The host must be a
 * numeric address. Returns NULL, or why not. */
static const char *parse_hostport(const char *s, int need_port, struct sockaddr_storage *ss)
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

/* A host or domain name (RFC 1035 §2.3.1 with digits allowed first, RFC 1123 §2.1), without a
 * trailing dot. Returns NULL, or why not. */
static const char *domain_why(const char *s)
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

/* Copies a name lower-cased and without one trailing dot into out[size]; 0 when it does not fit
 * or is empty. */
static int canonical_name(const char *s, size_t len, char *out, size_t size)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len >= size || memchr(s, '\0', len) != NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    out[len] = '\0';
    return 1;
}

static char *config_default_hostname(void)
{
    char name[256];
    if (gethostname(name, sizeof name) < 0)
        return xstrdup("localhost");
    name[sizeof name - 1] = '\0';
    return xstrdup(name);
}

static const char *config_check_hostname(const char *value)
{
    return domain_why(value);
}

static const char *config_check_dns_server(const char *value)
{
    struct sockaddr_storage ss;
    return parse_hostport(value, 0, &ss);
}

static const char *config_check_listener_name(const char *value)
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
static const char *config_check_deliver_to(const char *value)
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
        const char *why = domain_why(host);
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
static const char *config_check_ip(const char *value)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1)
        return NULL;
    return has_letter(value) && strchr(value, ':') == NULL
               ? "is a host name where a numeric address is needed"
               : "is not an IPv4 or IPv6 address (without a port)";
}

/* "mx.example.net" or "*.example.net". */
static const char *config_check_mx_pattern(const char *value)
{
    return domain_why(strncmp(value, "*.", 2) == 0 ? value + 2 : value);
}

/* RFC 6376 §3.1: selectors are dot-separated labels, all-digit ones included. */
static const char *config_check_selector(const char *value)
{
    const char *why = domain_why(value);
    return why == all_digits ? NULL : why;
}

static const char *config_check_dkim_algorithm(const char *value)
{
    if (strcmp(value, "rsa-sha256") == 0 || strcmp(value, "ed25519-sha256") == 0)
        return NULL;
    return "is not one of: rsa-sha256, ed25519-sha256";
}

static const char *config_check_canonicalization(const char *value)
{
    static const char *const forms[] = {"relaxed/relaxed", "relaxed/simple", "simple/relaxed",
                                        "simple/simple"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (strcmp(value, forms[i]) == 0)
            return NULL;
    return "is not one of: relaxed/relaxed, relaxed/simple, simple/relaxed, simple/simple";
}

/* "[local-part]@domain" (RFC 6376 §3.5 i=); that the domain is d= or below is checked later. */
static const char *config_check_identity(const char *value)
{
    const char *at = strrchr(value, '@');
    if (at == NULL)
        return "has no '@domain'";
    for (const char *p = value; p < at; p++)
        if (*p == ' ' || *p == ';' || *p == '@')
            return "has a space, ';' or '@' in its local part";
    return domain_why(at + 1);
}

/* "exe" or ".exe": letters and digits, at most 16. */
static const char *config_check_extension(const char *value)
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
static const char *config_check_clamd(const char *value)
{
    struct sockaddr_storage ss;
    if (value[0] == '/' || parse_hostport(value, 1, &ss) == NULL)
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
    return domain_why(host);
}

/* ---- Loading: the tree, checked against the key table ---- */

struct load {
    struct config *cfg;
    struct errors e;
    int defaults; /* > 0 while a default is applied: its nodes are not in the file */
    int inherit;  /* > 0 while a shaping rule is read: keys left out keep the inherited value */
    const struct node *where[CONFIG_NKEYS]; /* keys of struct config as written, for checks */
    struct config_pos *listener_tls;        /* where each listener's tls mode is written */
    const struct node *site_rules;          /* shaping.rules, read once shaping.default is */
    struct config_pos *rule_pool; /* per rule: where its pool is written; file NULL: inherited */
};

static struct config_pos pos_of(const struct load *ld, const struct node *n)
{
    struct config_pos pos = {ld->e.file, 0, 0};
    if (n != NULL && ld->defaults == 0) {
        pos.line = n->line;
        pos.column = n->column;
    }
    return pos;
}

static void __attribute__((format(printf, 3, 4)))
fail_at(struct load *ld, struct config_pos pos, const char *fmt, ...)
{
    const char *file = ld->e.file;
    va_list ap;
    va_start(ap, fmt);
    if (pos.file != NULL)
        ld->e.file = pos.file;
    verror_at(&ld->e, pos.line, pos.column, fmt, ap);
    ld->e.file = file;
    va_end(ap);
}

/* Reports a problem at node n (the parent mapping for a missing key). */
static void __attribute__((format(printf, 3, 4)))
fail(struct load *ld, const struct node *n, const char *fmt, ...)
{
    struct config_pos pos = pos_of(ld, n);
    va_list ap;
    va_start(ap, fmt);
    verror_at(&ld->e, pos.line, pos.column, fmt, ap);
    va_end(ap);
}

static size_t key_index(const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return i;
    abort(); /* a name this file uses is missing from the table */
}

/* The last part of `name` when it is a key directly inside section `prefix` ("" is the top). */
static const char *child_name(const char *name, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (plen > 0) {
        if (strncmp(name, prefix, plen) != 0 || name[plen] != '.')
            return NULL;
        name += plen + 1;
    }
    return strchr(name, '.') == NULL ? name : NULL;
}

static const struct config_key *key_lookup(const char *prefix, const char *key, size_t len)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const char *child = child_name(config_keys[i].name, prefix);
        if (child != NULL && strlen(child) == len && memcmp(child, key, len) == 0)
            return &config_keys[i];
    }
    return NULL;
}

/* The key of section `prefix` that `key` is most likely a typo of, or NULL. */
static const char *key_suggest(const char *prefix, const char *key, size_t len)
{
    const char *best = NULL;
    size_t best_distance = 3; /* two edits at most */
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const char *child = child_name(config_keys[i].name, prefix);
        if (child == NULL)
            continue;
        size_t d = edit_distance(key, len, child, strlen(child));
        if (d < best_distance && d < len) {
            best_distance = d;
            best = child;
        }
    }
    return best;
}

static void join_name(char out[NAME_BUF], const char *display, const char *child)
{
    snprintf(out, NAME_BUF, "%s%s%s", display, display[0] ? "." : "", child);
}

static void *field_at(void *base, size_t offset)
{
    return (char *)base + offset;
}

/* What a value of key k looks like, for "expected ..." messages. */
static const char *key_expects(const struct config_key *k)
{
    switch (k->type) {
    case CONFIG_SECTION:
        return "a mapping of keys";
    case CONFIG_STRING:
        return "a string";
    case CONFIG_PATH:
        return "a file name";
    case CONFIG_SIZE:
        return "a size (e.g. 50M)";
    case CONFIG_DURATION:
        return "a duration (e.g. 30s, 5m)";
    case CONFIG_UINT:
        return "a whole number";
    case CONFIG_ENUM:
        return "one word";
    case CONFIG_STRINGS:
        return "a list of strings";
    case CONFIG_CIDRS:
        return "a list of networks (e.g. [\"192.0.2.0/24\"])";
    case CONFIG_ADDRESS:
        return "an address (e.g. \"127.0.0.1:25\")";
    case CONFIG_LISTENERS:
        return "a list of listeners";
    case CONFIG_DOMAINS:
        return "a mapping of domain names";
    case CONFIG_RATE:
        return "a rate (e.g. 6/s, 1000/h) or none";
    case CONFIG_DURATIONS:
        return "a list of durations (e.g. [5m, 1h])";
    case CONFIG_NAMES:
        return "a name or a list of names";
    case CONFIG_LIST:
        return "a list of mappings";
    case CONFIG_EGRESS_POOLS:
        return "a mapping of pool names to lists of addresses";
    case CONFIG_SHAPING_RULES:
        return "a list of rules";
    }
    return "a value";
}

/* The scalar text of n when it is a scalar without control characters; else reports and NULL. */
static const char *scalar_text(struct load *ld, const struct config_key *k, const struct node *n,
                               const char *name)
{
    if (n->kind != NODE_SCALAR) {
        fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        return NULL;
    }
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (c < 0x20 || c == 0x7f) {
            fail(ld, n, "%s: control characters are not allowed", name);
            return NULL;
        }
    }
    return n->text;
}

/* A non-empty string that passes the key's own check; else reports and NULL. */
static const char *checked_string(struct load *ld, const struct config_key *k, const struct node *n,
                                  const char *name)
{
    char tmp[SHOWN_BUF];
    const char *s = scalar_text(ld, k, n, name);
    if (s == NULL)
        return NULL;
    if (*s == '\0') {
        fail(ld, n, "%s: must not be empty", name);
        return NULL;
    }
    const char *why = k->check ? k->check(s) : NULL;
    if (why != NULL) {
        fail(ld, n, "%s: '%s' %s", name, shown(s, n->len, tmp), why);
        return NULL;
    }
    return s;
}

static void set_string(struct load *ld, const struct config_key *k, const struct node *n,
                       const char *name, void *base)
{
    const char *s = checked_string(ld, k, n, name);
    if (s == NULL)
        return;
    char **field = field_at(base, k->offset);
    free(*field); /* a shaping rule overriding its inherited value */
    *field = xstrdup(s);
    if (k->flags & CONFIG_KEY_POS)
        *(struct config_pos *)field_at(base, k->pos_offset) = pos_of(ld, n);
}

/* A number of k's type (a list of durations: each item) within k's bounds; else reports and 0. */
static int parse_number(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, uint64_t *v)
{
    char tmp[SHOWN_BUF], lo[32], hi[32];
    const char *s = scalar_text(ld, k, n, name);
    if (s == NULL)
        return 0;
    enum config_key_type type = k->type == CONFIG_DURATIONS ? CONFIG_DURATION : k->type;
    const struct unit *units = type == CONFIG_SIZE       ? size_units
                               : type == CONFIG_DURATION ? duration_units
                                                         : plain_units;
    if (!parse_with_units(s, units, v)) {
        fail(ld, n, "%s: '%s' is not %s", name, shown(s, n->len, tmp),
             type == CONFIG_SIZE       ? "a size (use e.g. 50M)"
             : type == CONFIG_DURATION ? "a duration (use e.g. 30s or 5m)"
                                       : "a whole number");
        return 0;
    }
    if (*v < k->min || *v > k->max) {
        format_value(type, k->min, lo, sizeof lo);
        format_value(type, k->max, hi, sizeof hi);
        fail(ld, n, "%s: '%s' is out of range (%s..%s)", name, shown(s, n->len, tmp), lo, hi);
        return 0;
    }
    return 1;
}

static void set_number(struct load *ld, const struct config_key *k, const struct node *n,
                       const char *name, void *base)
{
    uint64_t v;
    if (!parse_number(ld, k, n, name, &v))
        return;
    if (k->type == CONFIG_UINT)
        *(unsigned *)field_at(base, k->offset) = (unsigned)v;
    else
        *(uint64_t *)field_at(base, k->offset) = v;
}

static void join_words(const char *const *words, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; words[i] != NULL && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? ", " : "", words[i]);
}

static void set_enum(struct load *ld, const struct config_key *k, const struct node *n,
                     const char *name, void *base)
{
    char tmp[SHOWN_BUF], words[128];
    const char *s = scalar_text(ld, k, n, name);
    if (s == NULL)
        return;
    for (int i = 0; k->names[i] != NULL; i++) {
        if (strcmp(s, k->names[i]) == 0) {
            if (k->offset != CONFIG_NO_FIELD)
                *(int *)field_at(base, k->offset) = i;
            return;
        }
    }
    join_words(k->names, words, sizeof words);
    fail(ld, n, "%s: '%s' is not one of: %s", name, shown(s, n->len, tmp), words);
}

static void set_address(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, void *base)
{
    char tmp[SHOWN_BUF];
    const char *s = checked_string(ld, k, n, name);
    if (s == NULL)
        return;
    const char *why = parse_hostport(s, 1, field_at(base, k->aux));
    if (why != NULL) {
        fail(ld, n, "%s: '%s' %s (write e.g. \"0.0.0.0:25\" or \"[::]:25\")", name,
             shown(s, n->len, tmp), why);
        return;
    }
    *(char **)field_at(base, k->offset) = xstrdup(s);
}

static void set_strings(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, void *base)
{
    if (n->kind != NODE_SEQUENCE) {
        fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        return;
    }
    char **items = xcalloc(n->nitems, sizeof *items);
    size_t *count = field_at(base, k->aux);
    *(char ***)field_at(base, k->offset) = items;
    for (size_t i = 0; i < n->nitems; i++) {
        char item_name[NAME_BUF];
        snprintf(item_name, sizeof item_name, "%s[%zu]", name, i);
        const char *s = checked_string(ld, k, n->items[i], item_name);
        if (s != NULL)
            items[(*count)++] = xstrdup(s);
    }
}

/* "address/prefix" (a bare address is a single host). Host bits beyond the prefix are refused:
 * "10.0.0.1/8" is either a typo or a misunderstanding, and either way it should not trust 10/8
 * silently. A v4-mapped IPv6 network becomes the IPv4 one it stands for. */
static int parse_cidr(const char *s, struct config_cidr *c, char *why, size_t why_size)
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

static void set_cidrs(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base)
{
    if (n->kind != NODE_SEQUENCE) {
        fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        return;
    }
    struct config_cidr *nets = xcalloc(n->nitems, sizeof *nets);
    size_t *count = field_at(base, k->aux);
    *(struct config_cidr **)field_at(base, k->offset) = nets;
    for (size_t i = 0; i < n->nitems; i++) {
        char item_name[NAME_BUF], why[160], tmp[SHOWN_BUF];
        snprintf(item_name, sizeof item_name, "%s[%zu]", name, i);
        const char *s = checked_string(ld, k, n->items[i], item_name);
        if (s == NULL)
            continue;
        struct config_cidr *c = &nets[*count];
        if (parse_cidr(s, c, why, sizeof why) < 0) {
            fail(ld, n->items[i], "%s: '%s' %s", item_name, shown(s, n->items[i]->len, tmp), why);
            continue;
        }
        c->text = xstrdup(s);
        c->pos = pos_of(ld, n->items[i]);
        (*count)++;
    }
}

static void walk_map(struct load *ld, const struct node *map, const char *prefix,
                     const char *display, void *base, const struct node **where);

static int sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
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

/* Each item is a mapping of "listeners[].*" keys; names and addresses must be unique. */
static void set_listeners(struct load *ld, const struct config_key *k, const struct node *n,
                          const char *name)
{
    struct config *cfg = ld->cfg;
    if (n->kind != NODE_SEQUENCE) {
        if (node_is_null(n))
            fail(ld, n, "%s: no listener given; leave the key out for the default one", name);
        else
            fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        return;
    }
    if (n->nitems == 0) {
        fail(ld, n, "%s: no listener given; leave the key out for the default one", name);
        return;
    }
    size_t name_key = key_index("listeners[].name"), address_key = key_index("listeners[].address");
    size_t tls_key = key_index("listeners[].tls");
    cfg->listeners = xcalloc(n->nitems, sizeof *cfg->listeners);
    ld->listener_tls = xcalloc(n->nitems, sizeof *ld->listener_tls);
    for (size_t i = 0; i < n->nitems; i++) {
        const struct node *item = n->items[i];
        struct config_listener *l = &cfg->listeners[cfg->nlisteners++];
        char display[NAME_BUF];
        snprintf(display, sizeof display, "%s[%zu]", name, i);
        l->pos = pos_of(ld, item);
        if (item->kind != NODE_MAPPING) {
            fail(ld, item, "%s: expected a mapping with name, address and role, not %s", display,
                 kind_name(item->kind));
            continue;
        }
        const struct node *where[CONFIG_NKEYS] = {0};
        walk_map(ld, item, "listeners[]", display, l, where);
        ld->listener_tls[i] = pos_of(ld, where[tls_key]);
        for (size_t j = 0; j < i; j++) {
            const struct config_listener *other = &cfg->listeners[j];
            if (l->name != NULL && other->name != NULL && strcmp(l->name, other->name) == 0)
                fail(ld, where[name_key], "%s.name: '%s' is already the name of %s[%zu]", display,
                     l->name, name, j);
            if (l->address != NULL && other->address != NULL &&
                sockaddr_equal(&l->addr, &other->addr))
                fail(ld, where[address_key], "%s.address: '%s' is already the address of %s[%zu]",
                     display, l->address, name, j);
        }
    }
}

static int domain_compare(const void *a, const void *b)
{
    const struct config_domain *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    if (x->pos.line != y->pos.line)
        return x->pos.line < y->pos.line ? -1 : 1;
    return x->pos.column < y->pos.column ? -1 : x->pos.column > y->pos.column;
}

/* Domain names are lowercased, converted to A-labels (U-labels may be written) and lose one
 * trailing dot, then kept sorted for config_domain_find. */
static void set_domains(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name)
{
    struct config *cfg = ld->cfg;
    if (n->kind != NODE_MAPPING) {
        fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        return;
    }
    cfg->domains = xcalloc(n->nitems / 2, sizeof *cfg->domains);
    for (size_t i = 0; i + 1 < n->nitems; i += 2) {
        const struct node *key = n->items[i], *value = n->items[i + 1];
        char canon[256], display[NAME_BUF], tmp[SHOWN_BUF];
        if (key->kind != NODE_SCALAR || node_is_null(key)) {
            fail(ld, key, "%s: expected a domain name, not %s", name,
                 key->kind == NODE_SCALAR ? "nothing" : kind_name(key->kind));
            continue;
        }
        /* Recipients' domains are compared in A-label form, so ours are kept in it too. */
        const char *text = key->text, *idna_why = NULL;
        size_t len = key->len;
        char ascii[256];
        if (idna_needed(key->text, key->len)) {
            if (idna_to_ascii(key->text, key->len, ascii, sizeof ascii, &idna_why) < 0) {
                fail(ld, key, "%s: '%s' is not a valid internationalized domain name: %s", name,
                     shown(key->text, key->len, tmp), idna_why ? idna_why : "domain too long");
                continue;
            }
            text = ascii;
            len = strlen(ascii);
        }
        if (!canonical_name(text, len, canon, sizeof canon)) {
            fail(ld, key, "%s: '%s' is not a domain name", name, shown(key->text, key->len, tmp));
            continue;
        }
        const char *why = domain_why(canon);
        if (why != NULL) {
            fail(ld, key, "%s: '%s' %s", name, shown(key->text, key->len, tmp), why);
            continue;
        }
        struct config_domain *d = &cfg->domains[cfg->ndomains++];
        d->name = xstrdup(canon);
        d->pos = pos_of(ld, key);
        snprintf(display, sizeof display, "%s.%s", name, canon);
        if (node_is_null(value))
            walk_map(ld, NULL, "domains.*", display, d, NULL);
        else if (value->kind == NODE_MAPPING)
            walk_map(ld, value, "domains.*", display, d, NULL);
        else
            fail(ld, value, "%s: expected nothing or a mapping (deliver_to, recipients), not %s",
                 display, kind_name(value->kind));
    }
    qsort(cfg->domains, cfg->ndomains, sizeof *cfg->domains, domain_compare);
    for (size_t i = 1; i < cfg->ndomains; i++) {
        const struct config_domain *d = &cfg->domains[i], *prev = &cfg->domains[i - 1];
        if (strcmp(d->name, prev->name) == 0)
            fail_at(ld, d->pos, "%s: '%s' is listed twice (also at line %u)", name, d->name,
                    prev->pos.line);
    }
}

static void set_rate(struct load *ld, const struct config_key *k, const struct node *n,
                     const char *name, void *base)
{
    char tmp[SHOWN_BUF];
    const char *s = scalar_text(ld, k, n, name);
    if (s == NULL)
        return;
    struct ratelimit_rate rate;
    const char *why;
    if (ratelimit_parse(s, &rate, &why) < 0) {
        fail(ld, n, "%s: '%s': %s", name, shown(s, n->len, tmp), why);
        return;
    }
    struct config_rate *field = field_at(base, k->offset);
    field->count = rate.count;
    field->period_ms = rate.period_ms;
}

static void set_durations(struct load *ld, const struct config_key *k, const struct node *n,
                          const char *name, void *base)
{
    if (n->kind != NODE_SEQUENCE || n->nitems == 0) {
        fail(ld, n, "%s: expected %s, not %s", name, key_expects(k),
             n->kind == NODE_SEQUENCE ? "an empty list" : kind_name(n->kind));
        return;
    }
    uint64_t **field = field_at(base, k->offset);
    size_t *count = field_at(base, k->aux);
    free(*field); /* a shaping rule overriding its inherited schedule */
    *field = xcalloc(n->nitems, sizeof **field);
    *count = 0;
    for (size_t i = 0; i < n->nitems; i++) {
        char item_name[NAME_BUF];
        snprintf(item_name, sizeof item_name, "%s[%zu]", name, i);
        if (parse_number(ld, k, n->items[i], item_name, &(*field)[*count]))
            (*count)++;
    }
}

/* One name or a list of them, each lower-cased without a trailing dot, then checked. */
static void set_names(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base)
{
    struct node *const *items = (struct node *const *)&n;
    size_t nitems = 1;
    if (n->kind == NODE_SEQUENCE) {
        items = n->items;
        nitems = n->nitems;
    }
    if (nitems == 0) {
        fail(ld, n, "%s: expected %s, not an empty list", name, key_expects(k));
        return;
    }
    char **names = xcalloc(nitems, sizeof *names);
    size_t *count = field_at(base, k->aux);
    *(char ***)field_at(base, k->offset) = names;
    for (size_t i = 0; i < nitems; i++) {
        char item_name[NAME_BUF], canon[256], tmp[SHOWN_BUF];
        snprintf(item_name, sizeof item_name, n->kind == NODE_SEQUENCE ? "%s[%zu]" : "%s", name, i);
        const char *s = scalar_text(ld, k, items[i], item_name);
        if (s == NULL)
            continue;
        const char *why = canonical_name(s, items[i]->len, canon, sizeof canon)
                              ? k->check(canon)
                              : "is not a name (empty or too long)";
        if (why != NULL) {
            fail(ld, items[i], "%s: '%s' %s", item_name, shown(s, items[i]->len, tmp), why);
            continue;
        }
        names[(*count)++] = xstrdup(canon);
    }
}

/* A list of mappings of "<prefix>.*" keys into a new array of elem_size structs. */
static void set_list(struct load *ld, const struct node *n, const char *name, const char *prefix,
                     size_t elem_size, size_t pos_offset, void **array, size_t *count)
{
    if (n->kind != NODE_SEQUENCE) {
        fail(ld, n, "%s: expected a list of mappings, not %s", name, kind_name(n->kind));
        return;
    }
    char *elems = xcalloc(n->nitems ? n->nitems : 1, elem_size);
    *array = elems;
    for (size_t i = 0; i < n->nitems; i++) {
        const struct node *item = n->items[i];
        char display[NAME_BUF];
        void *elem = elems + elem_size * (*count)++;
        snprintf(display, sizeof display, "%s[%zu]", name, i);
        *(struct config_pos *)field_at(elem, pos_offset) = pos_of(ld, item);
        if (item->kind == NODE_MAPPING)
            walk_map(ld, item, prefix, display, elem, NULL);
        else
            fail(ld, item, "%s: expected a mapping, not %s", display, kind_name(item->kind));
    }
}

static void set_list_key(struct load *ld, const struct config_key *k, const struct node *n,
                         const char *name, void *base)
{
    char prefix[NAME_BUF];
    snprintf(prefix, sizeof prefix, "%s[]", k->name);
    set_list(ld, n, name, prefix, k->elem_size, k->pos_offset, field_at(base, k->offset),
             field_at(base, k->aux));
}

/* Pool name -> list of {address, ehlo}; an address may be in one pool only, once. */
static void set_egress_pools(struct load *ld, const struct config_key *k, const struct node *n,
                             const char *name)
{
    struct config *cfg = ld->cfg;
    if (n->kind != NODE_MAPPING) {
        fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        return;
    }
    cfg->egress_pools = xcalloc(n->nitems / 2 + 1, sizeof *cfg->egress_pools);
    for (size_t i = 0; i + 1 < n->nitems; i += 2) {
        const struct node *key = n->items[i], *value = n->items[i + 1];
        char display[NAME_BUF], tmp[SHOWN_BUF];
        const char *why = key->kind != NODE_SCALAR || node_is_null(key)
                              ? "is not a pool name"
                              : config_check_listener_name(key->text);
        if (why == NULL && config_egress_pool_find(cfg, key->text) != NULL)
            why = "is already the name of a pool";
        if (why != NULL) {
            fail(ld, key, "%s: '%s' %s", name,
                 key->kind == NODE_SCALAR ? shown(key->text, key->len, tmp) : "", why);
            continue;
        }
        struct config_egress_pool *pool = &cfg->egress_pools[cfg->negress_pools++];
        pool->name = xstrdup(key->text);
        pool->pos = pos_of(ld, key);
        snprintf(display, sizeof display, "%s.%s", name, pool->name);
        if (node_is_null(value) || (value->kind == NODE_SEQUENCE && value->nitems == 0)) {
            fail(ld, value, "%s: no address given", display);
            continue;
        }
        set_list(ld, value, display, "egress.pools.*[]", sizeof *pool->addrs,
                 offsetof(struct config_egress_addr, pos), (void **)&pool->addrs, &pool->naddrs);
        for (size_t j = 0; j < pool->naddrs; j++) {
            struct config_egress_addr *a = &pool->addrs[j];
            if (a->address == NULL || parse_hostport(a->address, 0, &a->addr) != NULL)
                continue;
            for (size_t p = 0; p < cfg->negress_pools; p++) {
                const struct config_egress_pool *other = &cfg->egress_pools[p];
                for (size_t q = 0; q < (other == pool ? j : other->naddrs); q++)
                    if (sockaddr_equal(&a->addr, &other->addrs[q].addr))
                        fail_at(ld, a->pos, "%s[%zu].address: '%s' is already in pool %s (line %u)",
                                display, j, a->address, other->name, other->addrs[q].pos.line);
            }
        }
    }
}

static void free_strings(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void shaping_copy(struct config_shaping *to, const struct config_shaping *from)
{
    *to = *from;
    to->pool = from->pool ? xstrdup(from->pool) : NULL;
    to->retry_ms = xcalloc(from->nretry + 1, sizeof *to->retry_ms);
    if (from->nretry > 0)
        memcpy(to->retry_ms, from->retry_ms, from->nretry * sizeof *to->retry_ms);
}

static void shaping_free(struct config_shaping *sh)
{
    free(sh->retry_ms);
    free(sh->pool);
}

/* Rules in order after those loaded already: each starts as a copy of shaping.default, then its
 * own keys (any shaping.default key, plus match) override. `name` names the list in messages. */
static void load_shaping_rules(struct load *ld, const struct node *n, const char *name, int shipped)
{
    struct config *cfg = ld->cfg;
    if (n->kind != NODE_SEQUENCE) {
        fail(ld, n, "%s: expected a list of rules, not %s", name, kind_name(n->kind));
        return;
    }
    size_t total = cfg->shaping.nrules + n->nitems, pool_key = key_index("shaping.default.pool");
    cfg->shaping.rules = xrealloc(cfg->shaping.rules, (total + 1) * sizeof *cfg->shaping.rules);
    ld->rule_pool = xrealloc(ld->rule_pool, (total + 1) * sizeof *ld->rule_pool);
    for (size_t i = 0; i < n->nitems; i++) {
        const struct node *item = n->items[i], *match = NULL;
        char display[NAME_BUF], match_name[NAME_BUF + 8];
        snprintf(display, sizeof display, "%s[%zu]", name, i);
        snprintf(match_name, sizeof match_name, "%s.match", display);
        size_t index = cfg->shaping.nrules++;
        struct config_shaping_rule *rule = &cfg->shaping.rules[index];
        memset(rule, 0, sizeof *rule);
        memset(&ld->rule_pool[index], 0, sizeof ld->rule_pool[index]);
        rule->shipped = shipped;
        rule->pos = pos_of(ld, item);
        shaping_copy(&rule->values, &cfg->shaping.defaults);
        if (item->kind != NODE_MAPPING) {
            fail(ld, item, "%s: expected a mapping with match, not %s", display,
                 kind_name(item->kind));
            continue;
        }
        /* The keys other than match are shaping.default's: walk them as such. */
        struct node values = {.kind = NODE_MAPPING, .line = item->line, .column = item->column};
        values.items = xcalloc(item->nitems + 1, sizeof *values.items);
        for (size_t j = 0; j + 1 < item->nitems; j += 2) {
            const struct node *key = item->items[j];
            if (key->kind == NODE_SCALAR && scalar_is(key, "match")) {
                if (match != NULL)
                    fail(ld, key, "duplicate key '%s' (first at line %u)", match_name, match->line);
                else
                    match = item->items[j + 1];
                continue;
            }
            values.items[values.nitems++] = item->items[j];
            values.items[values.nitems++] = item->items[j + 1];
        }
        const struct node *where[CONFIG_NKEYS] = {0};
        ld->inherit++;
        walk_map(ld, &values, "shaping.default", display, &rule->values, where);
        ld->inherit--;
        free(values.items);
        if (where[pool_key] != NULL)
            ld->rule_pool[index] = pos_of(ld, where[pool_key]);

        if (match == NULL || node_is_null(match)) {
            fail(ld, match ? match : item, "%s is required", match_name);
        } else if (match->kind != NODE_MAPPING) {
            fail(ld, match, "%s: expected a mapping (mx, domain), not %s", match_name,
                 kind_name(match->kind));
        } else {
            int errors = ld->e.count;
            walk_map(ld, match, "shaping.rules[].match", match_name, rule, NULL);
            if (rule->nmatch_mx == 0 && rule->nmatch_domain == 0 && ld->e.count == errors)
                fail(ld, match, "%s: needs mx, domain or both", match_name);
        }
    }
}

/* The shipped provider rules: a mapping with one key, rules. */
static void load_shipped_rules(struct load *ld)
{
    struct node *root = NULL;
    ld->e.file = CONFIG_SHIPPED_SHAPING_NAME;
    if (tree_build(config_shipped_shaping, strlen(config_shipped_shaping), &ld->e, &root) == 0) {
        for (size_t i = 0; root != NULL && root->kind == NODE_MAPPING && i + 1 < root->nitems;
             i += 2) {
            if (scalar_is(root->items[i], "rules"))
                load_shaping_rules(ld, root->items[i + 1], "rules", 1);
            else
                fail(ld, root->items[i], "expected only the key rules");
        }
    }
    node_free(root);
    ld->e.file = ld->cfg->source;
}

static int pool_usable(const struct config *cfg, const char *pool)
{
    return pool == NULL || config_egress_pool_find(cfg, pool) != NULL ||
           (cfg->negress_pools == 0 && strcmp(pool, "default") == 0);
}

static void check_pools(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    const char *pool = cfg->shaping.defaults.pool;
    if (!pool_usable(cfg, pool)) {
        const struct node *at = ld->where[key_index("shaping.default.pool")];
        fail(ld, at ? at : ld->where[key_index("egress.pools")],
             "shaping.default.pool: '%s' is not a pool of egress.pools (name one there, or "
             "set shaping.default.pool)",
             pool);
    }
    size_t nsite = 0;
    for (size_t i = 0; i < cfg->shaping.nrules; i++) {
        const struct config_shaping_rule *rule = &cfg->shaping.rules[i];
        nsite += !rule->shipped;
        if (ld->rule_pool[i].file != NULL && !pool_usable(cfg, rule->values.pool))
            fail_at(ld, ld->rule_pool[i], "%s[%zu].pool: '%s' is not a pool of egress.pools",
                    rule->shipped ? "rules" : "shaping.rules", rule->shipped ? i - nsite : i,
                    rule->values.pool);
    }
}

/* Values that depend on other keys, or are normalized once all are known. */
static void finish_values(struct load *ld)
{
    struct config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->negress_pools; i++)
        for (size_t j = 0; j < cfg->egress_pools[i].naddrs; j++)
            if (cfg->egress_pools[i].addrs[j].ehlo == NULL && cfg->server.hostname != NULL)
                cfg->egress_pools[i].addrs[j].ehlo = xstrdup(cfg->server.hostname);
    for (size_t i = 0; i < cfg->inbound.nblocked_attachments; i++) {
        char *ext = cfg->inbound.blocked_attachments[i];
        if (ext[0] == '.')
            memmove(ext, ext + 1, strlen(ext));
        for (char *p = ext; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    /* RFC 6376 §3.5: the domain of i= is d= or a subdomain of it. */
    for (size_t i = 0; i < cfg->ndkim; i++) {
        const struct config_dkim *d = &cfg->dkim[i];
        const char *sdid = d->signing_domain ? d->signing_domain : d->domain;
        if (d->identity == NULL || sdid == NULL)
            continue;
        const char *auid = strrchr(d->identity, '@') + 1;
        size_t alen = strlen(auid), slen = strlen(sdid);
        if (!(alen == slen || (alen > slen && auid[alen - slen - 1] == '.')) ||
            strcasecmp(auid + alen - slen, sdid) != 0)
            fail_at(ld, d->pos, "dkim[%zu].identity: '%s' is not in %s or below it", i, d->identity,
                    sdid);
    }
}

/* A section's keys are relative to struct config, or to the field at its offset when it has one
 * (shaping.default: struct config_shaping, shared with the rules). */
static void *section_base(const struct config_key *k, void *base)
{
    return k->offset == CONFIG_NO_FIELD ? base : field_at(base, k->offset);
}

static void set_value(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base, const struct node **where)
{
    switch (k->type) {
    case CONFIG_SECTION:
        if (n->kind == NODE_MAPPING)
            walk_map(ld, n, k->name, name, section_base(k, base), where);
        else
            fail(ld, n, "%s: expected %s, not %s", name, key_expects(k), kind_name(n->kind));
        break;
    case CONFIG_STRING:
    case CONFIG_PATH:
        set_string(ld, k, n, name, base);
        break;
    case CONFIG_SIZE:
    case CONFIG_DURATION:
    case CONFIG_UINT:
        set_number(ld, k, n, name, base);
        break;
    case CONFIG_ENUM:
        set_enum(ld, k, n, name, base);
        break;
    case CONFIG_STRINGS:
        set_strings(ld, k, n, name, base);
        break;
    case CONFIG_CIDRS:
        set_cidrs(ld, k, n, name, base);
        break;
    case CONFIG_ADDRESS:
        set_address(ld, k, n, name, base);
        break;
    case CONFIG_LISTENERS:
        set_listeners(ld, k, n, name);
        break;
    case CONFIG_DOMAINS:
        set_domains(ld, k, n, name);
        break;
    case CONFIG_RATE:
        set_rate(ld, k, n, name, base);
        break;
    case CONFIG_DURATIONS:
        set_durations(ld, k, n, name, base);
        break;
    case CONFIG_NAMES:
        set_names(ld, k, n, name, base);
        break;
    case CONFIG_LIST:
        set_list_key(ld, k, n, name, base);
        break;
    case CONFIG_EGRESS_POOLS:
        set_egress_pools(ld, k, n, name);
        break;
    case CONFIG_SHAPING_RULES:
        ld->site_rules = n; /* read after shaping.default, which the rules inherit from */
        break;
    }
}

/* A default goes through the same parsing as a value from the file, so the two cannot differ. */
static void apply_default(struct load *ld, const struct config_key *k, const char *name, void *base)
{
    if (k->def_fn != NULL) {
        *(char **)field_at(base, k->offset) = k->def_fn();
        return;
    }
    if (k->def == NULL)
        return;
    struct node *n = NULL;
    ld->defaults++;
    if (tree_build(k->def, strlen(k->def), &ld->e, &n) == 0 && n != NULL)
        set_value(ld, k, n, name, base, NULL);
    ld->defaults--;
    node_free(n);
}

/* Applies the keys of `map` (NULL: the section is absent or empty) that the table lists inside
 * section `prefix` to `base`, then the defaults of those it leaves out. `display` names the map
 * in messages ("listeners[2]"); `where`, when given, receives each key's value node. */
static void walk_map(struct load *ld, const struct node *map, const char *prefix,
                     const char *display, void *base, const struct node **where)
{
    const struct node *first[CONFIG_NKEYS] = {0};
    unsigned char set[CONFIG_NKEYS] = {0};
    char name[NAME_BUF], tmp[SHOWN_BUF];

    for (size_t i = 0; map != NULL && i + 1 < map->nitems; i += 2) {
        const struct node *key = map->items[i], *value = map->items[i + 1];
        if (key->kind != NODE_SCALAR || node_is_null(key)) {
            fail(ld, key, "%s%skeys must be names, not %s", display, display[0] ? ": " : "",
                 key->kind == NODE_SCALAR ? "nothing" : kind_name(key->kind));
            continue;
        }
        const struct config_key *k = key_lookup(prefix, key->text, key->len);
        if (k == NULL) {
            const char *guess = key_suggest(prefix, key->text, key->len);
            join_name(name, display, shown(key->text, key->len, tmp));
            if (guess != NULL) {
                char guess_name[NAME_BUF];
                join_name(guess_name, display, guess);
                fail(ld, key, "unknown key '%s' (did you mean '%s'?)", name, guess_name);
            } else {
                fail(ld, key, "unknown key '%s'", name);
            }
            continue;
        }
        size_t index = (size_t)(k - config_keys);
        join_name(name, display, key->text);
        if (first[index] != NULL) {
            fail(ld, key, "duplicate key '%s' (first at line %u)", name, first[index]->line);
            continue;
        }
        first[index] = key;
        if (where != NULL && ld->defaults == 0)
            where[index] = value;
        /* An empty value leaves the key out (its default applies); listeners say more. */
        if (node_is_null(value) && k->type != CONFIG_LISTENERS)
            continue;
        set[index] = 1;
        set_value(ld, k, value, name, base, where);
    }

    for (size_t i = 0; i < CONFIG_NKEYS && ld->inherit == 0; i++) {
        const struct config_key *k = &config_keys[i];
        const char *child = child_name(k->name, prefix);
        if (child == NULL || set[i])
            continue;
        join_name(name, display, child);
        if (k->flags & CONFIG_KEY_REQUIRED)
            fail(ld, map, "%s is required", name);
        else if (k->type == CONFIG_SECTION)
            walk_map(ld, NULL, k->name, name, section_base(k, base), where);
        else
            apply_default(ld, k, name, base);
    }
}

/* Rules across keys: a certificate needs its key (and the reverse), implicit TLS a certificate. */
static void check_tls(struct load *ld)
{
    const struct config *cfg = ld->cfg;
    const struct node *section = ld->where[key_index("tls")];
    if (cfg->tls.certificate != NULL && cfg->tls.key == NULL)
        fail(ld, section, "tls.key is required with tls.certificate");
    if (cfg->tls.key != NULL && cfg->tls.certificate == NULL)
        fail(ld, section, "tls.certificate is required with tls.key");
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].tls == LISTENER_TLS_IMPLICIT && cfg->tls.certificate == NULL)
            fail_at(ld, ld->listener_tls[i],
                    "listeners[%zu].tls: implicit TLS needs tls.certificate (and tls.key)", i);
}

static void config_free(struct config *cfg)
{
    free(cfg->server.hostname);
    free(cfg->server.spool);
    free(cfg->server.user);
    free(cfg->server.log_file);
    for (size_t i = 0; i < cfg->dns.nservers; i++)
        free(cfg->dns.servers[i]);
    free(cfg->dns.servers);
    free(cfg->tls.certificate);
    free(cfg->tls.key);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].address);
    }
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->relay.ntrusted_networks; i++)
        free(cfg->relay.trusted_networks[i].text);
    free(cfg->relay.trusted_networks);
    free(cfg->relay.users);
    for (size_t i = 0; i < cfg->ndomains; i++) {
        free(cfg->domains[i].name);
        free(cfg->domains[i].deliver_to);
        free(cfg->domains[i].recipients);
    }
    free(cfg->domains);
    for (size_t i = 0; i < cfg->negress_pools; i++) {
        const struct config_egress_pool *pool = &cfg->egress_pools[i];
        for (size_t j = 0; j < pool->naddrs; j++) {
            free(pool->addrs[j].address);
            free(pool->addrs[j].ehlo);
        }
        free(pool->addrs);
        free(pool->name);
    }
    free(cfg->egress_pools);
    shaping_free(&cfg->shaping.defaults);
    for (size_t i = 0; i < cfg->shaping.nrules; i++) {
        struct config_shaping_rule *rule = &cfg->shaping.rules[i];
        free_strings(rule->match_mx, rule->nmatch_mx);
        free_strings(rule->match_domain, rule->nmatch_domain);
        shaping_free(&rule->values);
    }
    free(cfg->shaping.rules);
    for (size_t i = 0; i < cfg->ndkim; i++) {
        const struct config_dkim *d = &cfg->dkim[i];
        free(d->domain);
        free(d->signing_domain);
        free(d->selector);
        free(d->key);
        free(d->algorithm);
        free(d->canonicalization);
        free(d->identity);
    }
    free(cfg->dkim);
    for (size_t i = 0; i < cfg->inbound.ndnsbl; i++)
        free(cfg->inbound.dnsbl[i].zone);
    free(cfg->inbound.dnsbl);
    free_strings(cfg->inbound.blocked_attachments, cfg->inbound.nblocked_attachments);
    free(cfg->inbound.clamd);
    free(cfg->source);
    free(cfg);
}

int config_load_string(const char *text, size_t len, const char *name, struct config **out,
                       struct buf *err)
{
    struct config *cfg = xcalloc(1, sizeof *cfg);
    cfg->refs = 1;
    cfg->source = xstrdup(name);
    struct load ld = {.cfg = cfg, .e = {cfg->source, err, 0}};
    struct node *root = NULL;
    if (tree_build(text, len, &ld.e, &root) == 0) {
        if (!node_is_null(root) && root->kind != NODE_MAPPING) {
            fail(&ld, root, "expected a mapping of sections (server:, listeners:, ...), not %s",
                 kind_name(root->kind));
        } else {
            walk_map(&ld, node_is_null(root) ? NULL : root, "", "", cfg, ld.where);
            check_tls(&ld);
            finish_values(&ld);
            if (ld.site_rules != NULL)
                load_shaping_rules(&ld, ld.site_rules, "shaping.rules", 0);
            if (cfg->shaping.provider_rules)
                load_shipped_rules(&ld);
            check_pools(&ld);
        }
    }
    node_free(root);
    free(ld.listener_tls);
    free(ld.rule_pool);
    if (ld.e.count > 0) {
        config_free(cfg);
        return -EINVAL;
    }
    *out = cfg;
    return 0;
}

int config_load_file(const char *path, struct config **out, struct buf *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int rc = -errno;
        buf_printf(err, "%s: cannot open: %s\n", path, strerror(-rc));
        return rc;
    }
    struct buf text = BUF_INIT;
    int rc = 0;
    for (;;) {
        char *dst = buf_reserve(&text, 65536);
        size_t got = fread(dst, 1, 65536, f);
        text.len += got;
        if (text.len > MAX_FILE_SIZE) {
            buf_printf(err, "%s: larger than %u MiB; not a configuration file\n", path,
                       MAX_FILE_SIZE >> 20);
            rc = -EFBIG;
            break;
        }
        if (got < 65536) {
            if (ferror(f)) {
                rc = -(errno ? errno : EIO);
                buf_printf(err, "%s: cannot read: %s\n", path, strerror(-rc));
            }
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = config_load_string(text.data ? text.data : "", text.len, path, out, err);
    buf_free(&text);
    return rc;
}

struct config *config_ref(struct config *cfg)
{
    cfg->refs++;
    return cfg;
}

void config_unref(struct config *cfg)
{
    if (cfg != NULL && --cfg->refs == 0)
        config_free(cfg);
}

static int domain_key_compare(const void *key, const void *elem)
{
    return strcmp(key, ((const struct config_domain *)elem)->name);
}

const struct config_domain *config_domain_find(const struct config *cfg, const char *domain)
{
    char key[254];
    if (cfg->ndomains == 0 || !canonical_name(domain, strlen(domain), key, sizeof key))
        return NULL;
    return bsearch(key, cfg->domains, cfg->ndomains, sizeof *cfg->domains, domain_key_compare);
}

const struct config_egress_pool *config_egress_pool_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->negress_pools; i++)
        if (strcmp(cfg->egress_pools[i].name, name) == 0)
            return &cfg->egress_pools[i];
    return NULL;
}

/* "*.example.net" matches names below example.net at any depth, not example.net itself. */
static int mx_pattern_match(const char *pattern, const char *host)
{
    if (strncmp(pattern, "*.", 2) != 0)
        return strcmp(pattern, host) == 0;
    size_t plen = strlen(pattern + 1), hlen = strlen(host);
    return hlen > plen && strcmp(host + hlen - plen, pattern + 1) == 0;
}

static int rule_matches(const struct config_shaping_rule *rule, const char *domain,
                        const char *const *mx_hosts, size_t nmx)
{
    char name[256];
    if (domain != NULL && canonical_name(domain, strlen(domain), name, sizeof name))
        for (size_t i = 0; i < rule->nmatch_domain; i++)
            if (strcmp(rule->match_domain[i], name) == 0)
                return 1;
    for (size_t h = 0; h < nmx; h++) {
        if (!canonical_name(mx_hosts[h], strlen(mx_hosts[h]), name, sizeof name))
            continue;
        for (size_t i = 0; i < rule->nmatch_mx; i++)
            if (mx_pattern_match(rule->match_mx[i], name))
                return 1;
    }
    return 0;
}

const struct config_shaping_rule *config_shaping_match(const struct config *cfg, const char *domain,
                                                       const char *const *mx_hosts, size_t nmx)
{
    for (size_t i = 0; i < cfg->shaping.nrules; i++)
        if (rule_matches(&cfg->shaping.rules[i], domain, mx_hosts, nmx))
            return &cfg->shaping.rules[i];
    return NULL;
}

static int prefix_match(const unsigned char *addr, const unsigned char *net, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(addr, net, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff00u >> rest);
    return (addr[whole] & mask) == (net[whole] & mask);
}

const struct config_cidr *config_trusted_network_match(const struct config *cfg,
                                                       const struct sockaddr *addr)
{
    unsigned char a[16];
    int family;
    if (addr->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        family = AF_INET;
    } else if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(a, a6->s6_addr + 12, 4);
            family = AF_INET;
        } else {
            memcpy(a, a6->s6_addr, 16);
            family = AF_INET6;
        }
    } else {
        return NULL;
    }
    for (size_t i = 0; i < cfg->relay.ntrusted_networks; i++) {
        const struct config_cidr *net = &cfg->relay.trusted_networks[i];
        if (net->family == family && prefix_match(a, net->addr, net->prefix))
            return net;
    }
    return NULL;
}

/* ---- The reference ---- */

static void describe_type(const struct config_key *k, struct buf *out)
{
    static const char *const types[] = {
        [CONFIG_SECTION] = "section",
        [CONFIG_STRING] = "string",
        [CONFIG_PATH] = "path",
        [CONFIG_SIZE] = "size",
        [CONFIG_DURATION] = "duration",
        [CONFIG_UINT] = "integer",
        [CONFIG_ENUM] = "one of",
        [CONFIG_STRINGS] = "list of strings",
        [CONFIG_CIDRS] = "list of networks",
        [CONFIG_ADDRESS] = "address",
        [CONFIG_LISTENERS] = "list of listeners",
        [CONFIG_DOMAINS] = "map of domains",
        [CONFIG_RATE] = "rate",
        [CONFIG_DURATIONS] = "list of durations",
        [CONFIG_NAMES] = "name or list of names",
        [CONFIG_LIST] = "list",
        [CONFIG_EGRESS_POOLS] = "map of pools",
        [CONFIG_SHAPING_RULES] = "list of rules",
    };
    buf_append_str(out, types[k->type]);
    if (k->type == CONFIG_ENUM) {
        char words[128];
        join_words(k->names, words, sizeof words);
        buf_printf(out, ": %s", words);
    }
}

/* Appends text with '|' escaped, so that it stays in its table cell. */
static void append_cell(struct buf *out, const char *text)
{
    for (; *text; text++) {
        if (*text == '|')
            buf_append_str(out, "\\");
        buf_append(out, text, 1);
    }
}

void config_describe_keys(struct buf *out)
{
    buf_append_str(out, "| Key | Type | Default | Bounds | Description |\n"
                        "|---|---|---|---|---|\n");
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        buf_printf(out, "| `%s` | ", k->name);
        describe_type(k, out);
        buf_append_str(out, " | ");
        if (k->flags & CONFIG_KEY_REQUIRED) {
            buf_append_str(out, "required");
        } else if (k->def_doc != NULL) {
            append_cell(out, k->def_doc);
        } else if (k->def != NULL) {
            buf_append_str(out, "`");
            append_cell(out, k->def);
            buf_append_str(out, "`");
        } else if (k->type != CONFIG_SECTION) {
            buf_append_str(out, "none");
        }
        buf_append_str(out, " | ");
        if (k->type == CONFIG_SIZE || k->type == CONFIG_DURATION || k->type == CONFIG_UINT ||
            k->type == CONFIG_DURATIONS) {
            enum config_key_type type = k->type == CONFIG_DURATIONS ? CONFIG_DURATION : k->type;
            char lo[32], hi[32];
            format_value(type, k->min, lo, sizeof lo);
            format_value(type, k->max, hi, sizeof hi);
            buf_printf(out, "%s..%s", lo, hi);
        }
        buf_append_str(out, " | ");
        append_cell(out, k->doc);
        buf_append_str(out, " |\n");
    }
}

static const char default_yaml[] =
    "# Sluice's embedded configuration, used when no -c FILE is given: it accepts mail on\n"
    "# 127.0.0.1:2525 and relays for this host only. docs/configuration.md describes every key.\n"
    "server:\n"
    "  spool: ./var/spool\n"
    "listeners:\n"
    "  - name: default\n"
    "    address: \"127.0.0.1:2525\"\n"
    "    role: submission      # relays for relay.trusted_networks\n"
    "relay:\n"
    "  trusted_networks: [\"127.0.0.0/8\", \"::1/128\"]\n";

const char *config_default_yaml(void)
{
    return default_yaml;
}
