/*
 * DMARC (see dmarc.h): the record, the From domain, alignment, the evaluation and the lookup.
 */
#include "policy/dmarc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/idna.h"
#include "lib/xalloc.h"

/* ---- the record (§6.3, §6.4) ---- */

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

int dmarc_record_is_dmarc(const char *txt, size_t len)
{
    static const char version[] = "v=DMARC1";
    size_t n = sizeof version - 1;
    if (len < n || memcmp(txt, version, n) != 0)
        return 0;
    return len == n || txt[n] == ';' || is_wsp(txt[n]);
}

/* A tag's value, white space around it removed. */
struct tag {
    const char *name, *value;
    size_t name_len, value_len;
};

/* The next "name=value" of the record from *at; 0 at its end, -1 for a tag without '='. */
static int next_tag(const char *txt, size_t len, size_t *at, struct tag *t)
{
    size_t i = *at;
    while (i < len && (is_wsp(txt[i]) || txt[i] == ';'))
        i++;
    if (i == len)
        return 0;
    size_t end = i;
    while (end < len && txt[end] != ';')
        end++;
    *at = end;
    const char *eq = memchr(txt + i, '=', end - i);
    if (eq == NULL)
        return -1;
    size_t name_end = (size_t)(eq - txt), value = name_end + 1;
    while (name_end > i && is_wsp(txt[name_end - 1]))
        name_end--;
    while (value < end && is_wsp(txt[value]))
        value++;
    while (end > value && is_wsp(txt[end - 1]))
        end--;
    t->name = txt + i, t->name_len = name_end - i;
    t->value = txt + value, t->value_len = end - value;
    return 1;
}

static int tag_is(const struct tag *t, const char *name)
{
    return t->name_len == strlen(name) && strncasecmp(t->name, name, t->name_len) == 0;
}

static int value_is(const struct tag *t, const char *word)
{
    return t->value_len == strlen(word) && strncasecmp(t->value, word, t->value_len) == 0;
}

/* -1 for a value that is not a policy. */
static int parse_policy(const struct tag *t)
{
    if (value_is(t, "none"))
        return DMARC_POLICY_NONE;
    if (value_is(t, "quarantine"))
        return DMARC_POLICY_QUARANTINE;
    if (value_is(t, "reject"))
        return DMARC_POLICY_REJECT;
    return -1;
}

/* 'r', 's', or the default 'r' for anything else (§6.3: a bad value takes the default). */
static char parse_mode(const struct tag *t)
{
    return value_is(t, "s") ? 's' : 'r';
}

/* 0..100, or 100 for anything else. */
static unsigned parse_pct(const struct tag *t)
{
    if (t->value_len == 0 || t->value_len > 3)
        return 100;
    unsigned n = 0;
    for (size_t i = 0; i < t->value_len; i++) {
        if (t->value[i] < '0' || t->value[i] > '9')
            return 100;
        n = n * 10 + (unsigned)(t->value[i] - '0');
    }
    return n > 100 ? 100 : n;
}

/* rua holds at least one URI (a scheme and a colon): §6.6.3 step 6 only asks that it be valid. */
static int has_uri(const struct tag *t)
{
    const char *colon = memchr(t->value, ':', t->value_len);
    return colon != NULL && colon > t->value;
}

int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec, const char **err)
{
    int p = -1, sp = -1, rua = 0;
    *rec = (struct dmarc_record){.p = DMARC_POLICY_NONE, .pct = 100, .adkim = 'r', .aspf = 'r'};
    if (!dmarc_record_is_dmarc(txt, len)) {
        *err = "not a DMARC record";
        return -1;
    }
    size_t at = strlen("v=DMARC1");
    struct tag t;
    int rc;
    while ((rc = next_tag(txt, len, &at, &t)) != 0) {
        if (rc < 0)
            continue; /* a tag without a value says nothing we act on */
        if (tag_is(&t, "p"))
            p = parse_policy(&t);
        else if (tag_is(&t, "sp"))
            sp = parse_policy(&t);
        else if (tag_is(&t, "pct"))
            rec->pct = parse_pct(&t);
        else if (tag_is(&t, "adkim"))
            rec->adkim = parse_mode(&t);
        else if (tag_is(&t, "aspf"))
            rec->aspf = parse_mode(&t);
        else if (tag_is(&t, "rua"))
            rua = has_uri(&t);
    }
    if (p < 0 && !rua) {
        *err = "no valid p= tag";
        return -1;
    }
    rec->p = p < 0 ? DMARC_POLICY_NONE : (enum dmarc_policy)p;
    rec->sp = sp < 0 ? rec->p : (enum dmarc_policy)sp;
    return 0;
}

/* ---- the RFC5322.From domain (§6.6.1) ---- */

#define FROM_ADDR_MAX 1024 /* one address without comments: a longer one is not a mailbox */

/* One address of the field, as it is scanned: comments and white space dropped, the contents of
 * quoted strings replaced by 'q' so that no '@' inside them counts. */
struct from_addr {
    char text[FROM_ADDR_MAX];
    size_t len;
    unsigned angle : 1;  /* inside <...> */
    unsigned closed : 1; /* after the closing '>': the rest of the mailbox is ignored */
};

/* The lower-case A-label form of the address's domain into out: 0, or -1 with *err. */
static int addr_domain(const struct from_addr *a, char *out, size_t size, const char **err)
{
    const char *at = NULL;
    for (size_t i = 0; i < a->len; i++)
        if (a->text[i] == '@')
            at = a->text + i;
    if (at == NULL || at + 1 == a->text + a->len) {
        *err = "a From address has no domain";
        return -1;
    }
    size_t len = (size_t)(a->text + a->len - at - 1);
    if (at[1] == '[') {
        *err = "a From address has an address literal, not a domain";
        return -1;
    }
    if (at[len] == '.') /* one trailing dot: the same name */
        len--;
    const char *why;
    if (len == 0 || idna_to_ascii(at + 1, len, out, size, &why) < 0) {
        *err = "a From address has an invalid domain";
        return -1;
    }
    size_t n = strlen(out), label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = out[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || out[i - 1] == '-' || out[i - label] == '-') {
                *err = "a From address has an invalid domain";
                return -1;
            }
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            label++;
        } else {
            *err = "a From address has an invalid domain";
            return -1;
        }
    }
    return n > DMARC_DOMAIN_MAX ? (*err = "a From address has an invalid domain", -1) : 0;
}

/* The address ended (',' or ';' or the end of the field): its domain joins the others. Returns
 * -1 with *err when it has none or differs from theirs. */
static int addr_finish(struct from_addr *a, char *out, size_t size, int *naddrs, const char **err)
{
    if (a->len == 0) { /* an empty list element, or a group with no member */
        *a = (struct from_addr){0};
        return 0;
    }
    char domain[DMARC_DOMAIN_MAX + 64];
    if (addr_domain(a, domain, sizeof domain, err) < 0)
        return -1;
    *a = (struct from_addr){0};
    if (*naddrs > 0 && strcmp(domain, out) != 0) {
        *err = "the From addresses have different domains";
        return -1;
    }
    if (strlen(domain) >= size) {
        *err = "a From address has an invalid domain";
        return -1;
    }
    strcpy(out, domain);
    (*naddrs)++;
    return 0;
}

/* Scans one field value (RFC 5322 §3.4 address-list, obsolete forms included). */
static int from_scan(const char *v, size_t len, char *out, size_t size, int *naddrs,
                     const char **err)
{
    struct from_addr a = {0};
    int depth = 0, quoted = 0, group = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if ((depth > 0 || quoted) && c == '\\') { /* quoted-pair */
            i++;
            continue;
        }
        if (depth > 0) {
            depth += c == '(' ? 1 : c == ')' ? -1 : 0;
            continue;
        }
        if (quoted) {
            quoted = c != '"';
            continue;
        }
        if (c == '"' || c == '(') {
            quoted = c == '"';
            depth = c == '(';
            if (quoted && !a.closed && a.len < sizeof a.text)
                a.text[a.len++] = 'q';
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (a.angle) {
            if (c == '>')
                a.angle = 0, a.closed = 1;
            else if (a.len < sizeof a.text)
                a.text[a.len++] = c;
            else
                return (*err = "a From address is too long", -1);
            continue;
        }
        if (c == '<' && a.closed)
            return (*err = "a From address has two angle addresses", -1);
        if (c == '<') {
            a.len = 0; /* the display name before it is not the address */
            a.angle = 1;
        } else if (c == ':' && !group && !a.closed) {
            a.len = 0; /* a group's display name */
            group = 1;
        } else if (c == ',' || (c == ';' && group)) {
            if (addr_finish(&a, out, size, naddrs, err) < 0)
                return -1;
            group = c == ';' ? 0 : group;
        } else if (!a.closed) {
            if (a.len == sizeof a.text)
                return (*err = "a From address is too long", -1);
            a.text[a.len++] = c;
        }
    }
    if (depth > 0 || quoted || a.angle)
        return (*err = "the From field is not closed (comment, quote or angle bracket)", -1);
    return addr_finish(&a, out, size, naddrs, err);
}

int dmarc_from_domain(const char *const *values, const size_t *lens, size_t nvalues, char *out,
                      size_t size, const char **err)
{
    if (nvalues == 0)
        return (*err = "the message has no From field", -1);
    if (nvalues > 1)
        return (*err = "the message has several From fields", -1);
    int naddrs = 0;
    if (from_scan(values[0], lens[0], out, size, &naddrs, err) < 0)
        return -1;
    if (naddrs == 0)
        return (*err = "the From field has no address", -1);
    return 0;
}

/* ---- alignment and evaluation (§3.1, §6.6) ---- */

int dmarc_aligned(const struct public_suffixes *psl, const char *from, const char *domain,
                  char mode)
{
    if (domain[0] == '\0')
        return 0;
    if (strcasecmp(from, domain) == 0)
        return 1;
    if (mode == 's')
        return 0;
    char a[DMARC_DOMAIN_MAX + 1], b[DMARC_DOMAIN_MAX + 1];
    return public_suffix_org_domain(psl, from, a, sizeof a) == 0 &&
           public_suffix_org_domain(psl, domain, b, sizeof b) == 0 && strcasecmp(a, b) == 0;
}

/* §6.6.4: a message outside pct's sample gets the next milder policy. */
static enum dmarc_policy milder(enum dmarc_policy p)
{
    return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

void dmarc_evaluate(const struct public_suffixes *psl, const char *from,
                    const struct dmarc_identifiers *ids, const struct dmarc_policy_record *found,
                    unsigned sample, struct dmarc_result *out)
{
    *out = (struct dmarc_result){.status = found->status, .reason = "no DMARC record"};
    if (found->status == DMARC_TEMPERROR) {
        out->reason = "the DMARC record could not be fetched";
        return;
    }
    if (found->status != DMARC_PASS)
        return;
    const struct dmarc_record *rec = &found->rec;
    out->policy = found->organizational ? rec->sp : rec->p;
    if (ids->spf == SPF_PASS && dmarc_aligned(psl, from, ids->spf_domain, rec->aspf)) {
        out->reason = "aligned SPF pass";
        return;
    }
    for (size_t i = 0; i < ids->dkim.n && i < DMARC_DKIM_MAX; i++) {
        if (ids->dkim.sigs[i].pass &&
            dmarc_aligned(psl, from, ids->dkim.sigs[i].domain, rec->adkim)) {
            out->reason = "aligned DKIM pass";
            return;
        }
    }
    out->status = DMARC_FAIL;
    out->reason = "no aligned SPF or DKIM pass";
    out->disposition = sample < rec->pct ? out->policy : milder(out->policy);
}

const char *dmarc_override_match(const struct config *cfg, const struct sockaddr *client,
                                 const char *sender_domain)
{
    if (config_cidr_match(cfg->inbound.dmarc_override_networks,
                          cfg->inbound.ndmarc_override_networks, client) != NULL)
        return "network";
    size_t len = strlen(sender_domain);
    for (size_t i = 0; i < cfg->inbound.ndmarc_override_senders; i++) {
        const char *s = cfg->inbound.dmarc_override_senders[i];
        size_t n = strlen(s);
        if (n <= len && strcasecmp(sender_domain + len - n, s) == 0 &&
            (n == len || sender_domain[len - n - 1] == '.'))
            return "sender";
    }
    return NULL;
}

unsigned dmarc_sample(const char *text, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a: documented, so a test can choose its Message-ID */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 16777619u;
    return h % 100;
}

const char *dmarc_status_name(enum dmarc_status s)
{
    static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};
    return names[s];
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    static const char *const names[] = {"none", "quarantine", "reject"};
    return names[p];
}

/* ---- the lookup (§6.6.3) ---- */

struct dmarc_lookup {
    struct dns_resolver *r;
    dmarc_lookup_cb cb;
    void *arg;
    char org[DMARC_DOMAIN_MAX + 1]; /* the organizational domain, or "" when it is `from` */
    unsigned asking_org : 1;        /* the second query, at the organizational domain */
    unsigned done : 1;              /* the callback ran (or is running) */
    unsigned cancelled : 1;         /* freed before that: free when the query answers */
    struct dmarc_policy_record found;
};

static void lookup_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts,
                          size_t ntxts);

static int lookup_ask(struct dmarc_lookup *l, const char *domain)
{
    char name[DMARC_DOMAIN_MAX + 16];
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    return dns_resolve_txt(l->r, name, lookup_on_txt, l);
}

static void lookup_report(struct dmarc_lookup *l)
{
    l->done = 1;
    if (l->cancelled)
        free(l);
    else
        l->cb(l->arg, &l->found);
}

static void lookup_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts,
                          size_t ntxts)
{
    struct dmarc_lookup *l = arg;
    size_t ndmarc = 0;
    const struct dns_txt *one = NULL;
    if (status == DNS_TEMPFAIL || status == DNS_CANCELLED) {
        l->found.status = DMARC_TEMPERROR; /* never none: the owner's policy is unknown */
        lookup_report(l);
        return;
    }
    for (size_t i = 0; status == DNS_OK && i < ntxts; i++)
        if (dmarc_record_is_dmarc(txts[i].data, txts[i].len))
            ndmarc++, one = &txts[i];
    const char *err;
    if (ndmarc == 1 && dmarc_record_parse(one->data, one->len, &l->found.rec, &err) == 0) {
        l->found.status = DMARC_PASS;
        l->found.organizational = l->asking_org;
    } else if (ndmarc == 0 && !l->asking_org && l->org[0] != '\0' && !l->cancelled) {
        l->asking_org = 1;
        if (lookup_ask(l, l->org) == 0)
            return;
        l->found.status = DMARC_TEMPERROR; /* the resolver is stopping */
    } /* else none: several records, an unusable one, or none at either place */
    lookup_report(l);
}

int dmarc_lookup_start(struct dns_resolver *r, const struct public_suffixes *psl, const char *from,
                       dmarc_lookup_cb cb, void *arg, struct dmarc_lookup **out)
{
    struct dmarc_lookup *l = xcalloc(1, sizeof *l);
    l->r = r, l->cb = cb, l->arg = arg;
    l->found.status = DMARC_NONE;
    if (public_suffix_org_domain(psl, from, l->org, sizeof l->org) < 0 ||
        strcasecmp(l->org, from) == 0)
        l->org[0] = '\0';
    int rc = lookup_ask(l, from);
    if (rc < 0) {
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void dmarc_lookup_free(struct dmarc_lookup *l)
{
    if (l == NULL)
        return;
    if (l->done)
        free(l);
    else
        l->cancelled = 1;
}
