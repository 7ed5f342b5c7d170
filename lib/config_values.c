/*
 * One key's value, from its node in the tree into its field: strings with the key's check,
 * numbers within bounds, enums, addresses, networks, rates, lists of these. What is wrong is
 * reported where it was written, naming the key; the field is then left as it was. Sections and
 * the keys that hold lists or maps of sections are config_walk.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config_int.h"
#include "lib/ratelimit.h"
#include "lib/xalloc.h"

/* Enum fields of the structs are written through an int. */
_Static_assert(sizeof(enum listener_role) == sizeof(int) &&
                   sizeof(enum listener_tls) == sizeof(int) &&
                   sizeof(enum shaping_tls) == sizeof(int) &&
                   sizeof(enum dkim_on_error) == sizeof(int) &&
                   sizeof(enum inbound_reverse_dns) == sizeof(int) &&
                   sizeof(enum inbound_spf) == sizeof(int) &&
                   sizeof(enum inbound_clamd_down) == sizeof(int) &&
                   sizeof(enum suppression_action) == sizeof(int),
               "enum fields are stored as int");
_Static_assert(sizeof(struct config_rate) == sizeof(struct ratelimit_rate),
               "struct config_rate mirrors struct ratelimit_rate");

struct config_pos config_pos_of(const struct load *ld, const struct node *n)
{
    struct config_pos pos = {ld->e.file, 0, 0};
    if (n != NULL && ld->defaults == 0) {
        pos.line = n->line;
        pos.column = n->column;
    }
    return pos;
}

void config_fail_at(struct load *ld, struct config_pos pos, const char *fmt, ...)
{
    const char *file = ld->e.file;
    va_list ap;
    va_start(ap, fmt);
    if (pos.file != NULL)
        ld->e.file = pos.file;
    config_verror_at(&ld->e, pos.line, pos.column, fmt, ap);
    ld->e.file = file;
    va_end(ap);
}

void config_fail(struct load *ld, const struct node *n, const char *fmt, ...)
{
    struct config_pos pos = config_pos_of(ld, n);
    va_list ap;
    va_start(ap, fmt);
    config_verror_at(&ld->e, pos.line, pos.column, fmt, ap);
    va_end(ap);
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
    case CONFIG_COUNTS:
        return "a list of whole numbers (e.g. [50, 100, 200])";
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

int config_expect(struct load *ld, const struct config_key *k, const struct node *n,
                  const char *name, enum node_kind kind)
{
    if (n->kind == kind)
        return 1;
    config_fail(ld, n, "%s: expected %s, not %s", name, key_expects(k),
                config_node_kind_name(n->kind));
    return 0;
}

/* The scalar text of n when it is a scalar without control characters; else reports and NULL. */
static const char *scalar_text(struct load *ld, const struct config_key *k, const struct node *n,
                               const char *name)
{
    if (!config_expect(ld, k, n, name, NODE_SCALAR))
        return NULL;
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (c < 0x20 || c == 0x7f) {
            config_fail(ld, n, "%s: control characters are not allowed", name);
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
        config_fail(ld, n, "%s: must not be empty", name);
        return NULL;
    }
    const char *why = k->check ? k->check(s) : NULL;
    if (why != NULL) {
        config_fail(ld, n, "%s: '%s' %s", name, config_shown(s, n->len, tmp), why);
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
        *(struct config_pos *)field_at(base, k->pos_offset) = config_pos_of(ld, n);
}

/* A number of k's type (a list of durations: each item) within k's bounds; else reports and 0. */
static int parse_number(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, uint64_t *v)
{
    char tmp[SHOWN_BUF], lo[32], hi[32];
    const char *s = scalar_text(ld, k, n, name);
    if (s == NULL)
        return 0;
    enum config_key_type type = config_item_type(k->type);
    if (!config_parse_amount(s, type, v)) {
        config_fail(ld, n, "%s: '%s' is not %s", name, config_shown(s, n->len, tmp),
                    type == CONFIG_SIZE       ? "a size (use e.g. 50M)"
                    : type == CONFIG_DURATION ? "a duration (use e.g. 30s or 5m)"
                                              : "a whole number");
        return 0;
    }
    if (*v < k->min || *v > k->max) {
        config_format_value(type, k->min, lo, sizeof lo);
        config_format_value(type, k->max, hi, sizeof hi);
        config_fail(ld, n, "%s: '%s' is out of range (%s..%s)", name, config_shown(s, n->len, tmp),
                    lo, hi);
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
    config_join_words(k->names, words, sizeof words);
    config_fail(ld, n, "%s: '%s' is not one of: %s", name, config_shown(s, n->len, tmp), words);
}

static void set_address(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, void *base)
{
    char tmp[SHOWN_BUF];
    const char *s = checked_string(ld, k, n, name);
    if (s == NULL)
        return;
    const char *why = config_parse_hostport(s, 1, field_at(base, k->aux));
    if (why != NULL) {
        config_fail(ld, n, "%s: '%s' %s (write e.g. \"0.0.0.0:25\" or \"[::]:25\")", name,
                    config_shown(s, n->len, tmp), why);
        return;
    }
    *(char **)field_at(base, k->offset) = xstrdup(s);
}

static void set_strings(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, void *base)
{
    if (!config_expect(ld, k, n, name, NODE_SEQUENCE))
        return;
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

static void set_cidrs(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base)
{
    if (!config_expect(ld, k, n, name, NODE_SEQUENCE))
        return;
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
        if (config_parse_cidr(s, c, why, sizeof why) < 0) {
            config_fail(ld, n->items[i], "%s: '%s' %s", item_name,
                        config_shown(s, n->items[i]->len, tmp), why);
            continue;
        }
        c->text = xstrdup(s);
        c->pos = config_pos_of(ld, n->items[i]);
        (*count)++;
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
        config_fail(ld, n, "%s: '%s': %s", name, config_shown(s, n->len, tmp), why);
        return;
    }
    struct config_rate *field = field_at(base, k->offset);
    field->count = rate.count;
    field->period_ms = rate.period_ms;
}

/* A non-empty list of durations or of whole numbers (CONFIG_DURATIONS, CONFIG_COUNTS). */
static void set_numbers(struct load *ld, const struct config_key *k, const struct node *n,
                        const char *name, void *base)
{
    if (n->kind != NODE_SEQUENCE || n->nitems == 0) {
        config_fail(ld, n, "%s: expected %s, not %s", name, key_expects(k),
                    n->kind == NODE_SEQUENCE ? "an empty list" : config_node_kind_name(n->kind));
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
        config_fail(ld, n, "%s: expected %s, not an empty list", name, key_expects(k));
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
            config_fail(ld, items[i], "%s: '%s' %s", item_name, config_shown(s, items[i]->len, tmp),
                        why);
            continue;
        }
        names[(*count)++] = xstrdup(canon);
    }
}

typedef void (*value_setter)(struct load *ld, const struct config_key *k, const struct node *n,
                             const char *name, void *base);

void config_value_set(struct load *ld, const struct config_key *k, const struct node *n,
                      const char *name, void *base)
{
    static const value_setter setters[] = {
        [CONFIG_STRING] = set_string,     [CONFIG_PATH] = set_string,
        [CONFIG_SIZE] = set_number,       [CONFIG_DURATION] = set_number,
        [CONFIG_UINT] = set_number,       [CONFIG_ENUM] = set_enum,
        [CONFIG_STRINGS] = set_strings,   [CONFIG_CIDRS] = set_cidrs,
        [CONFIG_ADDRESS] = set_address,   [CONFIG_RATE] = set_rate,
        [CONFIG_DURATIONS] = set_numbers, [CONFIG_NAMES] = set_names,
        [CONFIG_COUNTS] = set_numbers,
    };
    if ((size_t)k->type >= sizeof setters / sizeof setters[0] || setters[k->type] == NULL)
        abort(); /* a section, or a list or map of them: config_walk.c's */
    setters[k->type](ld, k, n, name, base);
}
