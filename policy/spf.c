#include "policy/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/xalloc.h"
#include "policy/reverse_dns.h"

/* Every include nests one record deeper and costs one of the SPF_DNS_MECH_MAX lookups. */
#define SPF_DEPTH_MAX (SPF_DNS_MECH_MAX + 1)

/* ---- the record parser ---- */

static int is_delimiter(char ch)
{
    return ch != '\0' && strchr(".-+,/_=", ch) != NULL;
}

static int is_name_char(char ch)
{
    return ch != '\0' && strchr("-_.", ch) != NULL;
}

int spf_record_is_spf(const char *txt, size_t len)
{
    return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 && (len == 6 || txt[6] == ' ');
}

/* Parses the N of a CIDR length (0..max, no leading zero, nothing after); returns N or -1. */
static int parse_cidr(const char *s, unsigned max)
{
    if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 3)
        return -1;
    unsigned v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v <= max ? (int)v : -1;
}

/* The last '/' of `arg` when only digits follow it (a CIDR length), else NULL: a '/' inside a
 * macro's delimiters ("%{l/}") is not one. */
static char *cidr_slash(char *arg)
{
    char *slash = strrchr(arg, '/');
    if (slash == NULL || slash[1] == '\0')
        return slash;
    for (const char *p = slash + 1; *p != '\0'; p++)
        if (!isdigit((unsigned char)*p))
            return NULL;
    return slash;
}

/* Cuts a trailing "/N", "//M" or "/N//M" (dual-cidr-length) off `arg` in place. */
static int split_dual_cidr(char *arg, unsigned *cidr4, unsigned *cidr6)
{
    char *slash = cidr_slash(arg);
    if (slash != NULL && slash > arg && slash[-1] == '/') {
        int v = parse_cidr(slash + 1, 128);
        if (v < 0)
            return -1;
        *cidr6 = (unsigned)v;
        slash[-1] = '\0';
        slash = cidr_slash(arg);
    }
    if (slash != NULL) {
        int v = parse_cidr(slash + 1, 32);
        if (v < 0)
            return -1;
        *cidr4 = (unsigned)v;
        *slash = '\0';
    }
    return 0;
}

/* domain-end (§12): the spec ends with a macro or with "." and a top label that is not all
 * digits, made of letters, digits and inner hyphens. */
static int domain_end_ok(const char *spec)
{
    size_t len = strlen(spec);
    if (len > 0 && spec[len - 1] == '.')
        len--;
    if (len > 0 && spec[len - 1] == '}')
        return 1;
    size_t start = len;
    while (start > 0 && spec[start - 1] != '.')
        start--;
    if (start == 0 || start == len || spec[start] == '-' || spec[len - 1] == '-')
        return 0;
    int alpha = 0;
    for (size_t i = start; i < len; i++) {
        if (!isalnum((unsigned char)spec[i]) && spec[i] != '-')
            return 0;
        alpha |= !isdigit((unsigned char)spec[i]);
    }
    return alpha;
}

/* A domain-spec is a valid macro-string (without the explanation-only letters) and domain-end. */
static int domain_spec_ok(const char *spec)
{
    static const struct spf_macro_env probe = {"l@d.test", "l",      "d.test",  "d.test", "1.2.3.4",
                                               "1.2.3.4",  "h.test", "in-addr", "r.test", 0};
    char scratch[SPF_EXPAND_MAX + 1];
    return *spec != '\0' && domain_end_ok(spec) &&
           spf_macro_expand(spec, &probe, 0, 0, scratch, sizeof(scratch)) >= 0;
}

enum mech_arg {
    ARG_NONE,
    ARG_OPTIONAL_DOMAIN, /* [":" domain-spec] [dual-cidr-length] */
    ARG_DOMAIN,          /* ":" domain-spec */
    ARG_NETWORK,         /* ":" address ["/" length] */
};

/* In the order of enum spf_mech. */
static const struct {
    const char *name;
    enum spf_mech mech;
    enum mech_arg arg;
} mechanisms[] = {
    {"all", SPF_ALL, ARG_NONE},
    {"include", SPF_INCLUDE, ARG_DOMAIN},
    {"a", SPF_A, ARG_OPTIONAL_DOMAIN},
    {"mx", SPF_MX, ARG_OPTIONAL_DOMAIN},
    {"ptr", SPF_PTR, ARG_OPTIONAL_DOMAIN},
    {"ip4", SPF_IP4, ARG_NETWORK},
    {"ip6", SPF_IP6, ARG_NETWORK},
    {"exists", SPF_EXISTS, ARG_DOMAIN},
};

/* Parses one directive (`term` without its qualifier) into t. */
static int parse_directive(char *term, struct spf_term *t, const char **err)
{
    size_t namelen = strcspn(term, ":/");
    size_t i = 0;
    while (i < sizeof(mechanisms) / sizeof(mechanisms[0]) &&
           (strlen(mechanisms[i].name) != namelen ||
            strncasecmp(term, mechanisms[i].name, namelen) != 0))
        i++;
    if (i == sizeof(mechanisms) / sizeof(mechanisms[0])) {
        *err = "unknown mechanism";
        return -1;
    }
    t->mech = mechanisms[i].mech;
    t->cidr4 = 32;
    t->cidr6 = 128;
    char *rest = term + namelen;
    enum mech_arg kind = mechanisms[i].arg;
    if (kind == ARG_OPTIONAL_DOMAIN && split_dual_cidr(rest, &t->cidr4, &t->cidr6) < 0) {
        *err = "bad CIDR length";
        return -1;
    }
    if (kind == ARG_OPTIONAL_DOMAIN && t->mech == SPF_PTR && (t->cidr4 != 32 || t->cidr6 != 128)) {
        *err = "ptr takes no CIDR length";
        return -1;
    }
    if (kind == ARG_NONE && *rest != '\0') {
        *err = "all takes no argument";
        return -1;
    }
    if ((kind == ARG_DOMAIN || kind == ARG_NETWORK) && *rest != ':') {
        *err = "mechanism needs an argument";
        return -1;
    }
    if (kind == ARG_OPTIONAL_DOMAIN || kind == ARG_DOMAIN) {
        if (*rest == ':') {
            t->domain = rest + 1;
            if (!domain_spec_ok(t->domain)) {
                *err = "bad domain-spec";
                return -1;
            }
        } else if (*rest != '\0') {
            *err = "bad mechanism argument";
            return -1;
        }
        return 0;
    }
    if (kind == ARG_NETWORK) {
        char *addr = rest + 1, *slash = strchr(addr, '/');
        int v4 = t->mech == SPF_IP4, len = v4 ? 32 : 128;
        if (slash != NULL) {
            *slash = '\0';
            len = parse_cidr(slash + 1, v4 ? 32 : 128);
        }
        if (len < 0 ||
            inet_pton(v4 ? AF_INET : AF_INET6, addr, v4 ? (void *)&t->ip4 : &t->ip6) != 1) {
            *err = v4 ? "bad ip4 network" : "bad ip6 network";
            return -1;
        }
        if (v4)
            t->cidr4 = (unsigned)len;
        else
            t->cidr6 = (unsigned)len;
    }
    return 0;
}

/* Parses one modifier ("name=value"); known ones are stored, unknown ones only checked. */
static int parse_modifier(char *term, size_t namelen, struct spf_record *rec, const char **err)
{
    char *value = term + namelen + 1;
    const char **slot = NULL;
    if (namelen == 8 && strncasecmp(term, "redirect", 8) == 0)
        slot = &rec->redirect;
    else if (namelen == 3 && strncasecmp(term, "exp", 3) == 0)
        slot = &rec->exp;
    if (slot == NULL) {
        static const struct spf_macro_env probe = {"", "", "", "", "", "", "", "", "", 0};
        char scratch[SPF_EXPAND_MAX + 1];
        if (spf_macro_expand(value, &probe, 1, 0, scratch, sizeof(scratch)) < 0) {
            *err = "bad macro in modifier";
            return -1;
        }
        return 0;
    }
    if (*slot != NULL) {
        *err = "modifier given twice";
        return -1;
    }
    if (!domain_spec_ok(value)) {
        *err = "bad domain-spec";
        return -1;
    }
    *slot = value;
    return 0;
}

int spf_record_parse(const char *txt, size_t len, struct spf_record *rec, const char **err)
{
    rec->nterms = 0;
    rec->redirect = rec->exp = NULL;
    if (!spf_record_is_spf(txt, len)) {
        *err = "not an SPF record";
        return -1;
    }
    if (len > SPF_RECORD_MAX || memchr(txt, '\0', len) != NULL) {
        *err = len > SPF_RECORD_MAX ? "record too long" : "NUL in record";
        return -1;
    }
    memcpy(rec->text, txt, len);
    rec->text[len] = '\0';
    char *p = rec->text + 6;
    while (*p != '\0') {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        char *term = p;
        p += strcspn(p, " ");
        if (*p != '\0')
            *p++ = '\0';
        for (const char *q = term; *q != '\0'; q++) {
            if (*q < 0x21 || *q > 0x7e) {
                *err = "bad character in record";
                return -1;
            }
        }
        size_t namelen = 0;
        if (isalpha((unsigned char)term[0]))
            while (isalnum((unsigned char)term[namelen]) || is_name_char(term[namelen]))
                namelen++;
        if (namelen > 0 && term[namelen] == '=') {
            if (parse_modifier(term, namelen, rec, err) < 0)
                return -1;
            continue;
        }
        if (rec->nterms == SPF_TERMS_MAX) {
            *err = "too many terms";
            return -1;
        }
        struct spf_term *t = &rec->terms[rec->nterms++];
        memset(t, 0, sizeof *t);
        t->qualifier = '+';
        if (strchr("+-~?", term[0]) != NULL) {
            t->qualifier = term[0];
            term++;
        }
        if (parse_directive(term, t, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- macro expansion (§7) ---- */

/* Output with a hard end: an overflow is remembered and reported once at the end. */
struct out {
    char *p;
    size_t len, size;
    int overflow;
};

static void out_putc(struct out *o, char ch)
{
    if (o->len + 1 >= o->size) {
        o->overflow = 1;
        return;
    }
    o->p[o->len++] = ch;
}

/* Appends `s` URL-escaped (§7.3: upper-case macro letters): all but unreserved characters. */
static void out_escaped(struct out *o, const char *s, size_t n, int escape)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!escape || isalnum(ch) || strchr("-._~", ch) != NULL) {
            out_putc(o, (char)ch);
        } else {
            out_putc(o, '%');
            out_putc(o, hex[ch >> 4]);
            out_putc(o, hex[ch & 15]);
        }
    }
}

static const char *macro_value(const struct spf_macro_env *env, char letter, int explanation,
                               char *stamp, size_t stamp_size)
{
    switch (letter) {
    case 's':
        return env->sender;
    case 'l':
        return env->local;
    case 'o':
        return env->sender_domain;
    case 'd':
        return env->domain;
    case 'i':
        return env->ip;
    case 'p':
        return "unknown"; /* allowed by §7.3; saves the PTR lookups */
    case 'h':
        return env->helo;
    case 'v':
        return env->ip_version;
    case 'c':
        return explanation ? env->ip_text : NULL;
    case 'r':
        return explanation ? env->receiver : NULL;
    case 't':
        if (!explanation)
            return NULL;
        snprintf(stamp, stamp_size, "%lld", env->now);
        return stamp;
    default:
        return NULL;
    }
}

/* Expands "%{" letter transformers delimiters "}" starting after "%{"; returns the position after
 * the "}" or NULL when invalid. */
static const char *expand_one(const char *p, const struct spf_macro_env *env, int explanation,
                              struct out *o)
{
    char stamp[24];
    char letter = *p++;
    const char *value =
        macro_value(env, (char)tolower((unsigned char)letter), explanation, stamp, sizeof(stamp));
    if (value == NULL)
        return NULL;
    int escape = isupper((unsigned char)letter);
    unsigned keep = 0; /* 0: all parts */
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        keep = keep < 1000 ? keep * 10 + (unsigned)(*p - '0') : keep;
        digits = 1;
        p++;
    }
    if (digits && keep == 0)
        return NULL; /* §7.3: the number must be nonzero */
    int reverse = 0;
    if (*p == 'r' || *p == 'R') {
        reverse = 1;
        p++;
    }
    char delims[8] = "";
    size_t ndelims = 0;
    while (is_delimiter(*p)) {
        if (ndelims < sizeof(delims) - 1 && strchr(delims, *p) == NULL)
            delims[ndelims++] = *p;
        p++;
    }
    if (*p != '}')
        return NULL;
    if (ndelims == 0)
        delims[0] = '.';
    /* Split the value into parts at the delimiters. */
    size_t vlen = strlen(value), nparts = 0;
    uint16_t starts[SPF_EXPAND_MAX + 1], lens[SPF_EXPAND_MAX + 1];
    if (vlen > SPF_EXPAND_MAX)
        return NULL;
    for (size_t i = 0, start = 0; i <= vlen; i++) {
        if (i == vlen || strchr(delims, value[i]) != NULL) {
            starts[nparts] = (uint16_t)start;
            lens[nparts++] = (uint16_t)(i - start);
            start = i + 1;
        }
    }
    /* After the optional reversal, only the rightmost `keep` parts are used. */
    size_t first = keep > 0 && keep < nparts ? nparts - keep : 0;
    for (size_t k = first; k < nparts; k++) {
        size_t idx = reverse ? nparts - 1 - k : k;
        if (k > first)
            out_putc(o, '.');
        out_escaped(o, value + starts[idx], lens[idx], escape);
    }
    return p + 1;
}

int spf_macro_expand(const char *spec, const struct spf_macro_env *env, int explanation,
                     int is_domain, char *out, size_t size)
{
    struct out o = {out, 0, size, size == 0};
    for (const char *p = spec; *p != '\0';) {
        unsigned char ch = (unsigned char)*p;
        if (ch != '%') {
            if ((ch < 0x21 || ch > 0x7e) && !(explanation && ch == ' '))
                return -1; /* explain-string allows spaces (§6.2) */
            out_putc(&o, (char)ch);
            p++;
            continue;
        }
        switch (p[1]) {
        case '%':
            out_putc(&o, '%');
            p += 2;
            break;
        case '_':
            out_putc(&o, ' ');
            p += 2;
            break;
        case '-':
            out_escaped(&o, "%20", 3, 0);
            p += 2;
            break;
        case '{':
            p = expand_one(p + 2, env, explanation, &o);
            if (p == NULL)
                return -1;
            break;
        default:
            return -1;
        }
    }
    if (o.overflow)
        return -1;
    out[o.len] = '\0';
    /* §7.3: a domain name too long loses labels from the left. */
    if (is_domain && o.len > SPF_DOMAIN_MAX) {
        const char *dot = out + o.len - SPF_DOMAIN_MAX - 1;
        while (*dot != '\0' && *dot != '.')
            dot++;
        if (*dot == '.') {
            o.len = strlen(dot + 1);
            memmove(out, dot + 1, o.len + 1);
        }
    }
    return (int)o.len;
}

/* ---- the check ---- */

/* One record being evaluated: the checked domain's, or an included one's. */
struct spf_frame {
    char domain[SPF_DOMAIN_MAX + 1];
    struct spf_record *rec; /* NULL until its TXT answer came */
    size_t next;            /* the term to evaluate next */
    int must_exist;         /* reached by include or redirect: no record is a permerror */
};

struct spf_check {
    struct dns_resolver *resolver;
    struct dns_addr client;
    spf_cb cb;
    void *arg;
    int pending;   /* a lookup (or the ptr mechanism's reverse DNS check) is in flight */
    int done;      /* the callback ran */
    int cancelled; /* spf_check_free came before the callback */
    unsigned dns_mechs, voids;
    struct spf_frame frames[SPF_DEPTH_MAX];
    size_t depth;
    const struct spf_term *waiting;  /* the term whose lookup is in flight */
    char target[SPF_EXPAND_MAX + 1]; /* its expanded domain */
    struct reverse_dns_check *rdns;
    struct spf_macro_values macro; /* §7.3 */
    char reason[SPF_EXPAND_MAX + 64];
    struct spf_result result;
};

/* Lookup callbacks and the steps between them, in firing order. */
static int frame_push(struct spf_check *c, const char *domain, int must_exist);
static void frame_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts, size_t n);
static void check_evaluate(struct spf_check *c);
static void term_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                          size_t naddrs);
static void term_on_mx(void *arg, const struct dns_mx_result *res);
static void term_on_rdns(void *arg, const struct reverse_dns_result *res);
static void frame_done(struct spf_check *c, enum spf_status status, const struct spf_term *t);
static void check_finish(struct spf_check *c, enum spf_status status, const char *reason);

static void check_release(struct spf_check *c)
{
    for (size_t i = 0; i < c->depth; i++)
        free(c->frames[i].rec);
    reverse_dns_check_free(c->rdns);
    free(c);
}

/* §4.3: a checkable domain has at least two labels of 1..63 octets and 253 octets in all. */
static int domain_checkable(const char *d)
{
    size_t len = strlen(d), label = 0;
    if (len == 0 || len > SPF_DOMAIN_MAX || strchr(d, '.') == NULL)
        return 0;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            if ((label == 0 && !(*p == '\0' && p > d && p[-1] == '.')) || label > 63)
                return 0;
            if (*p == '\0')
                return 1;
            label = 0;
        } else {
            label++;
        }
    }
}

static void copy_bounded(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

int spf_macro_values_init(struct spf_macro_values *v, const struct dns_addr *client,
                          const char *helo, const char *sender, const char *hostname, long long now)
{
    static const char hex[] = "0123456789abcdef";
    copy_bounded(v->helo, sizeof(v->helo), helo, strlen(helo));
    copy_bounded(v->hostname, sizeof(v->hostname), hostname, strlen(hostname));
    const char *at = strrchr(sender, '@');
    const char *domain = at != NULL ? at + 1 : sender;
    if (*sender == '\0' || at == sender || at == NULL) {
        /* §4.3: no local part is "postmaster"; §2.4: the null sender checks the HELO name. */
        copy_bounded(v->local, sizeof(v->local), "postmaster", 10);
        domain = *sender == '\0' ? helo : domain;
    } else {
        copy_bounded(v->local, sizeof(v->local), sender, (size_t)(at - sender));
    }
    copy_bounded(v->sender_domain, sizeof(v->sender_domain), domain, strlen(domain));
    snprintf(v->sender, sizeof(v->sender), "%s@%s", v->local, v->sender_domain);
    inet_ntop(client->family, &client->u, v->ip_text, sizeof(v->ip_text));
    if (client->family == AF_INET) {
        snprintf(v->ip, sizeof(v->ip), "%s", v->ip_text);
    } else {
        size_t n = 0;
        for (int i = 0; i < 16; i++) {
            v->ip[n++] = hex[client->u.v6.s6_addr[i] >> 4];
            v->ip[n++] = '.';
            v->ip[n++] = hex[client->u.v6.s6_addr[i] & 15];
            v->ip[n++] = i < 15 ? '.' : '\0';
        }
    }
    v->env = (struct spf_macro_env){
        .sender = v->sender,
        .local = v->local,
        .sender_domain = v->sender_domain,
        .domain = v->sender_domain,
        .ip = v->ip,
        .ip_text = v->ip_text,
        .helo = v->helo,
        .ip_version = client->family == AF_INET ? "in-addr" : "ip6",
        .receiver = v->hostname,
        .now = now,
    };
    return strlen(domain) <= SPF_DOMAIN_MAX ? 0 : -1;
}

int spf_check_start(struct dns_resolver *r, const struct sockaddr *client, const char *helo,
                    const char *sender, const char *hostname, spf_cb cb, void *arg,
                    struct spf_check **out)
{
    struct spf_check *c = xcalloc(1, sizeof *c);
    if (reverse_dns_client_addr(client, &c->client) < 0) {
        free(c);
        return -EINVAL;
    }
    c->resolver = r;
    c->cb = cb;
    c->arg = arg;
    int fits =
        spf_macro_values_init(&c->macro, &c->client, helo, sender, hostname, time(NULL)) == 0;
    c->result.identity = *sender == '\0' ? "helo" : "mailfrom";
    c->result.domain = c->macro.sender_domain;
    /* An uncheckable domain is answered "none" through the resolver (DNS_BADNAME for ""), so the
     * callback still never runs inside this call. */
    const char *domain =
        fits && domain_checkable(c->macro.sender_domain) ? c->macro.sender_domain : "";
    int rc = dns_resolve_txt(r, domain, frame_on_txt, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->depth = 1;
    copy_bounded(c->frames[0].domain, sizeof(c->frames[0].domain), c->macro.sender_domain,
                 strlen(c->macro.sender_domain));
    c->pending = 1;
    *out = c;
    return 0;
}

/* Starts evaluating the record of `domain` one level deeper (include) or in place of the current
 * one (redirect: the caller popped it). Returns 0, or the resolver's error. */
static int frame_push(struct spf_check *c, const char *domain, int must_exist)
{
    struct spf_frame *f = &c->frames[c->depth++];
    memset(f, 0, sizeof *f);
    copy_bounded(f->domain, sizeof(f->domain), domain, strlen(domain));
    f->must_exist = must_exist;
    int rc = dns_resolve_txt(c->resolver, f->domain, frame_on_txt, c);
    c->pending = rc == 0;
    return rc;
}

/* Selects the one SPF record among the TXT records (§4.5) and parses it. */
static void frame_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts, size_t n)
{
    struct spf_check *c = arg;
    struct spf_frame *f = &c->frames[c->depth - 1];
    c->pending = 0;
    if (c->cancelled) {
        check_release(c);
        return;
    }
    if (status != DNS_OK && status != DNS_NXDOMAIN && status != DNS_NODATA &&
        status != DNS_BADNAME) {
        check_finish(c, SPF_TEMPERROR, "DNS error looking up the SPF record");
        return;
    }
    const struct dns_txt *spf = NULL;
    size_t nspf = 0;
    for (size_t i = 0; status == DNS_OK && i < n; i++) {
        if (spf_record_is_spf(txts[i].data, txts[i].len)) {
            spf = &txts[i];
            nspf++;
        }
    }
    if (nspf == 0) {
        check_finish(c, f->must_exist ? SPF_PERMERROR : SPF_NONE, "no SPF record");
        return;
    }
    if (nspf > 1) {
        check_finish(c, SPF_PERMERROR, "more than one SPF record");
        return;
    }
    const char *err = NULL;
    f->rec = xmalloc(sizeof *f->rec);
    if (spf_record_parse(spf->data, spf->len, f->rec, &err) < 0) {
        snprintf(c->reason, sizeof(c->reason), "%s in the record of %s", err, f->domain);
        check_finish(c, SPF_PERMERROR, c->reason);
        return;
    }
    check_evaluate(c);
}

/* Expands a domain-spec for the current frame into c->target; NULL spec means the frame's domain.
 */
static int expand_target(struct spf_check *c, const char *spec)
{
    struct spf_frame *f = &c->frames[c->depth - 1];
    if (spec == NULL) {
        copy_bounded(c->target, sizeof(c->target), f->domain, strlen(f->domain));
        return 0;
    }
    c->macro.env.domain = f->domain;
    return spf_macro_expand(spec, &c->macro.env, 0, 1, c->target, sizeof(c->target)) < 0 ? -1 : 0;
}

static int addr_in_network(const struct dns_addr *a, const void *net, unsigned bits)
{
    const unsigned char *x = (const unsigned char *)&a->u, *y = net;
    size_t whole = bits / 8;
    if (memcmp(x, y, whole) != 0)
        return 0;
    unsigned rest = bits % 8;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return rest == 0 || ((x[whole] ^ y[whole]) & mask) == 0;
}

/* Does one of `addrs` match the client under the term's CIDR lengths (a, mx, exists)? */
static int addrs_match(const struct spf_check *c, const struct spf_term *t,
                       const struct dns_addr *addrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t->mech == SPF_EXISTS && addrs[i].family == AF_INET)
            return 1; /* exists asks for A records whatever the client's family (§5.7) */
        if (t->mech == SPF_EXISTS || addrs[i].family != c->client.family)
            continue;
        unsigned bits = addrs[i].family == AF_INET ? t->cidr4 : t->cidr6;
        if (addr_in_network(&c->client, &addrs[i].u, bits))
            return 1;
    }
    return 0;
}

static enum spf_status qualifier_status(char q)
{
    return q == '-' ? SPF_FAIL : q == '~' ? SPF_SOFTFAIL : q == '?' ? SPF_NEUTRAL : SPF_PASS;
}

/* Counts one DNS-querying term; 0 when the limit allows it, else finishes with permerror. */
static int count_dns_mech(struct spf_check *c)
{
    if (++c->dns_mechs <= SPF_DNS_MECH_MAX)
        return 0;
    check_finish(c, SPF_PERMERROR, "more than 10 DNS-querying mechanisms");
    return -1;
}

/* Counts a lookup that found nothing; 0 while under the limit, else finishes with permerror. */
static int count_void(struct spf_check *c)
{
    if (++c->voids <= SPF_VOID_MAX)
        return 0;
    check_finish(c, SPF_PERMERROR, "more than 2 void DNS lookups");
    return -1;
}

/* ptr (§5.5): the client's validated names, shared with the reverse DNS check. */
static int term_start_ptr(struct spf_check *c)
{
    struct sockaddr_storage ss;
    dns_addr_to_sockaddr(&c->client, 0, &ss);
    reverse_dns_check_free(c->rdns);
    c->rdns = NULL;
    return reverse_dns_check_start(c->resolver, (const struct sockaddr *)&ss, term_on_rdns, c,
                                   &c->rdns);
}

/* Starts the lookup of a DNS-querying term, or finishes the check when it cannot. */
static void term_start_lookup(struct spf_check *c, const struct spf_term *t)
{
    if (count_dns_mech(c) < 0)
        return;
    if (expand_target(c, t->domain) < 0) {
        check_finish(c, SPF_PERMERROR, "bad macro");
        return;
    }
    c->waiting = t;
    int rc;
    if (t->mech == SPF_INCLUDE)
        rc = frame_push(c, c->target, 1);
    else if (t->mech == SPF_MX)
        rc = dns_resolve_mx(c->resolver, c->target, term_on_mx, c);
    else if (t->mech == SPF_PTR)
        rc = term_start_ptr(c);
    else
        rc = dns_resolve_addrs(c->resolver, c->target, term_on_addrs, c);
    if (rc < 0) {
        check_finish(c, SPF_TEMPERROR, "resolver shut down");
        return;
    }
    c->pending = 1;
}

/* Evaluates the current frame's terms from where it stopped until one needs DNS or matches. */
static void check_evaluate(struct spf_check *c)
{
    struct spf_frame *f = &c->frames[c->depth - 1];
    while (f->next < f->rec->nterms) {
        const struct spf_term *t = &f->rec->terms[f->next++];
        int match = 0;
        switch (t->mech) {
        case SPF_ALL:
            match = 1;
            break;
        case SPF_IP4:
            match = c->client.family == AF_INET && addr_in_network(&c->client, &t->ip4, t->cidr4);
            break;
        case SPF_IP6:
            match = c->client.family == AF_INET6 && addr_in_network(&c->client, &t->ip6, t->cidr6);
            break;
        default:
            term_start_lookup(c, t);
            return;
        }
        if (match) {
            frame_done(c, qualifier_status(t->qualifier), t);
            return;
        }
    }
    if (f->rec->redirect == NULL) {
        frame_done(c, SPF_NEUTRAL, NULL);
        return;
    }
    /* §6.1: the redirect target's result is this record's; its absence a permerror. */
    if (count_dns_mech(c) < 0)
        return;
    if (expand_target(c, f->rec->redirect) < 0) {
        check_finish(c, SPF_PERMERROR, "bad macro in redirect");
        return;
    }
    free(f->rec);
    f->rec = NULL;
    c->depth--;
    if (frame_push(c, c->target, 1) < 0)
        check_finish(c, SPF_TEMPERROR, "resolver shut down");
}

/* A lookup of the waiting term ended: continue with its match or the next term. */
static void term_done(struct spf_check *c, int match)
{
    if (match)
        frame_done(c, qualifier_status(c->waiting->qualifier), c->waiting);
    else
        check_evaluate(c);
}

/* Handles what every lookup's callback handles first; returns 1 when the check went on without
 * the answer (cancelled, error or void lookup over the limit). */
static int term_answer_common(struct spf_check *c, enum dns_status status)
{
    c->pending = 0;
    if (c->cancelled) {
        check_release(c);
        return 1;
    }
    if (status == DNS_NXDOMAIN || status == DNS_NODATA)
        return count_void(c) < 0;
    if (status != DNS_OK && status != DNS_BADNAME && status != DNS_NULL_MX) {
        check_finish(c, SPF_TEMPERROR, "DNS error");
        return 1;
    }
    return 0;
}

static void term_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                          size_t naddrs)
{
    struct spf_check *c = arg;
    if (term_answer_common(c, status))
        return;
    term_done(c, status == DNS_OK && addrs_match(c, c->waiting, addrs, naddrs));
}

static void term_on_mx(void *arg, const struct dns_mx_result *res)
{
    struct spf_check *c = arg;
    /* An implicit MX is no MX record to SPF (§5.4): a void lookup. */
    enum dns_status status = res->status == DNS_OK && res->implicit ? DNS_NODATA : res->status;
    if (term_answer_common(c, status))
        return;
    if (status == DNS_OK && res->nhosts > SPF_MX_NAMES_MAX) {
        check_finish(c, SPF_PERMERROR, "more than 10 MX names");
        return;
    }
    int match = 0;
    for (size_t i = 0; status == DNS_OK && i < res->nhosts && !match; i++)
        match = addrs_match(c, c->waiting, res->hosts[i].addrs, res->hosts[i].naddrs);
    term_done(c, match);
}

/* A validated name matches when it is the target or a subdomain of it (§5.5). */
static int name_within(const char *name, const char *target)
{
    size_t n = strlen(name), t = strlen(target);
    if (t > 0 && target[t - 1] == '.')
        t--;
    if (n < t || strncasecmp(name + n - t, target, t) != 0)
        return 0;
    return n == t || name[n - t - 1] == '.';
}

static void term_on_rdns(void *arg, const struct reverse_dns_result *res)
{
    struct spf_check *c = arg;
    /* A DNS error in ptr only makes it not match (§5.5). */
    enum dns_status status = res->status == REVERSE_DNS_NO_PTR ? DNS_NXDOMAIN : DNS_OK;
    if (term_answer_common(c, status))
        return;
    int match = 0;
    for (size_t i = 0; i < res->nconfirmed && !match; i++)
        match = name_within(res->confirmed[i], c->target);
    term_done(c, match);
}

/* Writes the directive as the result's reason: "-all", "+ip4:192.0.2.0/24", "+a:%{d}/24//64". */
static void term_describe(const struct spf_term *t, char *out, size_t size)
{
    char arg[INET6_ADDRSTRLEN] = "", cidr[16] = "";
    const char *shown = t->domain;
    if (t->mech == SPF_IP4 || t->mech == SPF_IP6)
        shown = inet_ntop(t->mech == SPF_IP4 ? AF_INET : AF_INET6,
                          t->mech == SPF_IP4 ? (const void *)&t->ip4 : &t->ip6, arg, sizeof(arg));
    if (t->mech == SPF_IP6 && t->cidr6 != 128)
        snprintf(cidr, sizeof(cidr), "/%u", t->cidr6);
    if (t->mech != SPF_IP6 && t->cidr4 != 32) /* "/32//128" at most: it fits */
        snprintf(cidr, sizeof(cidr), "/%u", t->cidr4);
    if (t->mech != SPF_IP6 && t->cidr6 != 128)
        snprintf(cidr + strlen(cidr), sizeof(cidr) - strlen(cidr), "//%u", t->cidr6);
    snprintf(out, size, "%c%s%s%s%s", t->qualifier, mechanisms[t->mech].name,
             shown != NULL ? ":" : "", shown != NULL ? shown : "", cidr);
}

/* The current frame's record gave `status` (t: the term that matched, NULL for the default). */
static void frame_done(struct spf_check *c, enum spf_status status, const struct spf_term *t)
{
    if (c->depth > 1) {
        /* §5.2: an included pass matches the include; fail, softfail and neutral do not. */
        free(c->frames[c->depth - 1].rec);
        c->frames[--c->depth].rec = NULL;
        struct spf_frame *parent = &c->frames[c->depth - 1];
        c->waiting = &parent->rec->terms[parent->next - 1];
        term_done(c, status == SPF_PASS);
        return;
    }
    if (t == NULL) {
        check_finish(c, status, "default");
        return;
    }
    term_describe(t, c->reason, sizeof(c->reason));
    check_finish(c, status, c->reason);
}

static void check_finish(struct spf_check *c, enum spf_status status, const char *reason)
{
    c->result.status = status;
    c->result.reason = reason;
    c->result.lookups = c->dns_mechs;
    c->done = 1;
    c->cb(c->arg, &c->result); /* last: the callback may free the check */
}

void spf_check_free(struct spf_check *c)
{
    if (c == NULL)
        return;
    if (!c->done && c->pending) {
        c->cancelled = 1; /* released when the lookup in flight returns */
        return;
    }
    check_release(c);
}

struct policy_decision spf_verdict(const struct spf_result *res, enum inbound_spf mode)
{
    static const struct config_pos builtin = {NULL, 0, 0};
    struct policy_decision d = {POLICY_ACCEPT, 250, "2.0.0", "Ok", "inbound.spf", builtin};
    if (mode == SPF_REJECT_FAIL && res->status == SPF_FAIL) {
        d.verdict = POLICY_REJECT;
        d.code = 550;
        d.enhanced = "5.7.23";
        d.text = "SPF validation failed: the sender's domain does not permit this client";
    }
    return d;
}

const char *spf_status_name(enum spf_status s)
{
    static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int spf_result_format(const struct spf_result *res, char *out, size_t size)
{
    return snprintf(out, size, "spf=%s smtp.%s=%s", spf_status_name(res->status),
                    strcmp(res->identity, "helo") == 0 ? "helo" : "mailfrom", res->domain);
}
