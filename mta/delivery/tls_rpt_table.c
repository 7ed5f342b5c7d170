/*
 * TLS-RPT counts (see tls_rpt_table.h): the bounded table, and its JSON form on disk.
 */
#include "mta/delivery/tls_rpt_table.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

static const char *const policy_type_names[TLS_RPT_POLICY_TYPES] = {"sts", "tlsa",
                                                                    "no-policy-found"};

static const char *const result_names[TLS_RPT_RESULTS] = {
    [TLS_RPT_SUCCESS] = "success",
    [TLS_RPT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
    [TLS_RPT_CERT_HOST_MISMATCH] = "certificate-host-mismatch",
    [TLS_RPT_CERT_EXPIRED] = "certificate-expired",
    [TLS_RPT_CERT_NOT_TRUSTED] = "certificate-not-trusted",
    [TLS_RPT_VALIDATION_FAILURE] = "validation-failure",
    [TLS_RPT_TLSA_INVALID] = "tlsa-invalid",
    [TLS_RPT_DNSSEC_INVALID] = "dnssec-invalid",
    [TLS_RPT_DANE_REQUIRED] = "dane-required",
    [TLS_RPT_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
    [TLS_RPT_STS_POLICY_INVALID] = "sts-policy-invalid",
    [TLS_RPT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
};

const char *tls_rpt_policy_type_name(enum tls_rpt_policy_type type)
{
    return type < TLS_RPT_POLICY_TYPES ? policy_type_names[type] : "no-policy-found";
}

const char *tls_rpt_result_name(enum tls_rpt_result result)
{
    return result < TLS_RPT_RESULTS ? result_names[result] : "validation-failure";
}

void tls_rpt_table_init(struct tls_rpt_table *t, size_t max_domains)
{
    *t = (struct tls_rpt_table){.entries = STRMAP_INIT, .max_domains = max_domains};
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static int same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

void tls_rpt_domain_free(struct tls_rpt_domain *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < TLS_RPT_POLICY_TYPES; i++) {
        struct tls_rpt_policy *p = &d->policies[i];
        free(p->text);
        for (size_t r = 0; r < p->nrows; r++) {
            free(p->rows[r].mx_host);
            free(p->rows[r].sending_ip);
            free(p->rows[r].receiving_ip);
            free(p->rows[r].reason);
        }
    }
    free(d->name);
    free(d);
}

static void free_entry(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    tls_rpt_domain_free(value);
}

void tls_rpt_table_free(struct tls_rpt_table *t)
{
    strmap_each(&t->entries, free_entry, NULL);
    strmap_free(&t->entries);
    t->count = 0;
}

static void entry_key(const char *day, const char *domain, struct buf *key)
{
    buf_reset(key);
    buf_printf(key, "%s %s", day, domain);
}

/* The entry for (day, domain), made when there is room; NULL when there is none. */
static struct tls_rpt_domain *table_entry(struct tls_rpt_table *t, const char *day,
                                          const char *domain)
{
    struct buf key = BUF_INIT;
    entry_key(day, domain, &key);
    struct tls_rpt_domain *d = strmap_get(&t->entries, key.data);
    if (d == NULL && t->count < t->max_domains && strlen(day) == TLS_RPT_DAY_LEN) {
        d = xcalloc(1, sizeof *d);
        memcpy(d->day, day, TLS_RPT_DAY_LEN + 1);
        d->name = xstrdup(domain);
        strmap_put(&t->entries, key.data, d);
        t->count++;
    }
    buf_free(&key);
    return d;
}

/* Counts one failure in the row with the same details, or a new one while there is room. */
static void policy_count_failure(struct tls_rpt_policy *p, const struct tls_rpt_event *ev,
                                 uint64_t n)
{
    p->failures += n;
    for (size_t i = 0; i < p->nrows; i++) {
        struct tls_rpt_row *r = &p->rows[i];
        if (r->result == ev->result && same(r->mx_host, ev->mx_host) &&
            same(r->sending_ip, ev->sending_ip) && same(r->receiving_ip, ev->receiving_ip) &&
            same(r->reason, ev->reason)) {
            r->count += n;
            return;
        }
    }
    if (p->nrows == TLS_RPT_ROWS_MAX) {
        p->rows_dropped += n;
        return;
    }
    p->rows[p->nrows++] = (struct tls_rpt_row){
        .result = ev->result,
        .mx_host = dup_or_null(ev->mx_host),
        .sending_ip = dup_or_null(ev->sending_ip),
        .receiving_ip = dup_or_null(ev->receiving_ip),
        .reason = dup_or_null(ev->reason),
        .count = n,
    };
}

static struct tls_rpt_policy *entry_policy(struct tls_rpt_domain *d, enum tls_rpt_policy_type type,
                                           const char *text)
{
    struct tls_rpt_policy *p = &d->policies[type < TLS_RPT_POLICY_TYPES ? type : 0];
    p->used = 1;
    if (text != NULL && !same(p->text, text)) {
        free(p->text);
        p->text = xstrdup(text);
    }
    return p;
}

int tls_rpt_table_count(struct tls_rpt_table *t, const char *day, const struct tls_rpt_event *ev)
{
    struct tls_rpt_domain *d = table_entry(t, day, ev->domain);
    if (d == NULL) {
        t->dropped++;
        return -1;
    }
    struct tls_rpt_policy *p = entry_policy(d, ev->type, ev->policy_text);
    if (ev->result == TLS_RPT_SUCCESS)
        p->successes++;
    else
        policy_count_failure(p, ev, 1);
    return 0;
}

void tls_rpt_table_remove(struct tls_rpt_table *t, struct tls_rpt_domain *d)
{
    struct buf key = BUF_INIT;
    entry_key(d->day, d->name, &key);
    if (strmap_del(&t->entries, key.data) != NULL)
        t->count--;
    buf_free(&key);
}

/* Adds the counts and rows of `from` to d's policy of `type` (whose newer text, if any, stays). */
static void policy_merge(struct tls_rpt_domain *d, enum tls_rpt_policy_type type,
                         const struct tls_rpt_policy *from)
{
    if (!from->used)
        return;
    struct tls_rpt_policy *p = entry_policy(d, type, d->policies[type].used ? NULL : from->text);
    uint64_t in_rows = 0;
    p->successes += from->successes;
    p->rows_dropped += from->rows_dropped;
    for (size_t i = 0; i < from->nrows; i++) {
        const struct tls_rpt_row *r = &from->rows[i];
        struct tls_rpt_event ev = {.result = r->result,
                                   .mx_host = r->mx_host,
                                   .sending_ip = r->sending_ip,
                                   .receiving_ip = r->receiving_ip,
                                   .reason = r->reason};
        policy_count_failure(p, &ev, r->count);
        in_rows += r->count;
    }
    p->failures += from->failures - in_rows; /* those already dropped from the rows */
}

int tls_rpt_table_put_back(struct tls_rpt_table *t, struct tls_rpt_domain *d)
{
    struct buf key = BUF_INIT;
    entry_key(d->day, d->name, &key);
    struct tls_rpt_domain *have = strmap_get(&t->entries, key.data);
    int rc = 0;
    if (have != NULL) {
        for (size_t i = 0; i < TLS_RPT_POLICY_TYPES; i++)
            policy_merge(have, (enum tls_rpt_policy_type)i, &d->policies[i]);
    } else if (t->count < t->max_domains) {
        strmap_put(&t->entries, key.data, d);
        t->count++;
        d = NULL;
    } else {
        t->dropped++;
        rc = -1;
    }
    buf_free(&key);
    tls_rpt_domain_free(d);
    return rc;
}

struct due_scan {
    const char *day;
    struct tls_rpt_domain **out;
    size_t n;
};

static void collect_due(const char *key, void *value, void *arg)
{
    struct due_scan *scan = arg;
    struct tls_rpt_domain *d = value;
    (void)key;
    if (scan->day == NULL || strcmp(d->day, scan->day) < 0)
        scan->out[scan->n++] = d;
}

struct tls_rpt_domain **tls_rpt_table_due(const struct tls_rpt_table *t, const char *day, size_t *n)
{
    struct due_scan scan = {day, xcalloc(t->count + 1, sizeof *scan.out), 0};
    strmap_each(&t->entries, collect_due, &scan);
    *n = scan.n;
    return scan.out;
}

/* ---- the JSON form ---- */

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *policy_json(const struct tls_rpt_policy *p, size_t type)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < p->nrows; i++) {
        const struct tls_rpt_row *r = &p->rows[i];
        json_array_append_new(
            rows, json_pack("{s:i,s:o,s:o,s:o,s:o,s:I}", "result", r->result, "mx",
                            string_or_null(r->mx_host), "sip", string_or_null(r->sending_ip), "rip",
                            string_or_null(r->receiving_ip), "reason", string_or_null(r->reason),
                            "count", (json_int_t)r->count));
    }
    return json_pack("{s:i,s:o,s:I,s:I,s:I,s:o}", "type", (int)type, "text",
                     string_or_null(p->text), "successes", (json_int_t)p->successes, "failures",
                     (json_int_t)p->failures, "dropped", (json_int_t)p->rows_dropped, "rows", rows);
}

static void save_entry(const char *key, void *value, void *arg)
{
    const struct tls_rpt_domain *d = value;
    json_t *policies = json_array();
    (void)key;
    for (size_t i = 0; i < TLS_RPT_POLICY_TYPES; i++)
        if (d->policies[i].used)
            json_array_append_new(policies, policy_json(&d->policies[i], i));
    json_array_append_new(
        arg, json_pack("{s:s,s:s,s:o}", "day", d->day, "domain", d->name, "policies", policies));
}

void tls_rpt_table_save(const struct tls_rpt_table *t, struct buf *out)
{
    json_t *domains = json_array();
    strmap_each(&t->entries, save_entry, domains);
    json_t *root = json_pack("{s:i,s:I,s:o}", "version", 1, "dropped", (json_int_t)t->dropped,
                             "domains", domains);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    buf_reset(out);
    buf_printf(out, "%s", text);
    free(text);
    json_decref(root);
}

static const char *opt_string(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* One saved policy of domain into d: its counts, and its rows as if counted again. */
static void load_policy(struct tls_rpt_domain *d, json_t *jp)
{
    json_int_t type = json_integer_value(json_object_get(jp, "type"));
    if (type < 0 || type >= TLS_RPT_POLICY_TYPES)
        return;
    struct tls_rpt_policy *p =
        entry_policy(d, (enum tls_rpt_policy_type)type, opt_string(jp, "text"));
    p->successes += (uint64_t)json_integer_value(json_object_get(jp, "successes"));
    p->rows_dropped += (uint64_t)json_integer_value(json_object_get(jp, "dropped"));
    uint64_t in_rows = 0;
    size_t i;
    json_t *jr;
    json_array_foreach(json_object_get(jp, "rows"), i, jr)
    {
        json_int_t result = json_integer_value(json_object_get(jr, "result"));
        json_int_t count = json_integer_value(json_object_get(jr, "count"));
        if (result <= TLS_RPT_SUCCESS || result >= TLS_RPT_RESULTS || count <= 0)
            continue;
        struct tls_rpt_event ev = {.result = (enum tls_rpt_result)result,
                                   .mx_host = opt_string(jr, "mx"),
                                   .sending_ip = opt_string(jr, "sip"),
                                   .receiving_ip = opt_string(jr, "rip"),
                                   .reason = opt_string(jr, "reason")};
        policy_count_failure(p, &ev, (uint64_t)count);
        in_rows += (uint64_t)count;
    }
    uint64_t failures = (uint64_t)json_integer_value(json_object_get(jp, "failures"));
    if (failures > in_rows)
        p->failures += failures - in_rows; /* those that had been dropped from the rows */
}

int tls_rpt_table_load(struct tls_rpt_table *t, const char *text, size_t len)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *domains = json_object_get(root, "domains");
    if (!json_is_array(domains)) {
        json_decref(root);
        return -1;
    }
    t->dropped += (uint64_t)json_integer_value(json_object_get(root, "dropped"));
    int added = 0;
    size_t i, k;
    json_t *jd, *jp;
    json_array_foreach(domains, i, jd)
    {
        const char *day = opt_string(jd, "day"), *name = opt_string(jd, "domain");
        struct tls_rpt_domain *d = day != NULL && name != NULL ? table_entry(t, day, name) : NULL;
        if (d == NULL)
            continue;
        json_array_foreach(json_object_get(jd, "policies"), k, jp) load_policy(d, jp);
        added++;
    }
    json_decref(root);
    return added;
}
