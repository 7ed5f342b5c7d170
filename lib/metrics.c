#include "lib/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

static void copy_value(char out[METRICS_VALUE_MAX], const char *value)
{
    size_t n = value != NULL ? strlen(value) : 0;
    if (n >= METRICS_VALUE_MAX)
        n = METRICS_VALUE_MAX - 1;
    memcpy(out, value != NULL ? value : "", n);
    out[n] = '\0';
}

static size_t label_count(const struct metrics_counter *c)
{
    size_t n = 0;
    while (n < METRICS_LABELS_MAX && c->labels[n] != NULL)
        n++;
    return n;
}

/* Adds n to the series of want among v[0..*nv), making it when there are fewer than max; 0, or
 * -1 when it is not there and there is no room. */
static int series_add(struct metrics_series **v, size_t *nv, size_t max, size_t nlabels,
                      char want[METRICS_LABELS_MAX][METRICS_VALUE_MAX], uint64_t n)
{
    for (size_t i = 0; i < *nv; i++) {
        size_t l = 0;
        while (l < nlabels && strcmp((*v)[i].values[l], want[l]) == 0)
            l++;
        if (l == nlabels) {
            (*v)[i].count += n;
            return 0;
        }
    }
    if (*nv == max)
        return -1;
    if (*v == NULL)
        *v = xcalloc(max, sizeof **v);
    struct metrics_series *s = &(*v)[(*nv)++];
    memcpy(s->values, want, sizeof s->values);
    s->count = n;
    return 0;
}

void metrics_counter_add(struct metrics_counter *c, const char *const *values, uint64_t n)
{
    size_t nlabels = label_count(c);
    char want[METRICS_LABELS_MAX][METRICS_VALUE_MAX];
    for (size_t l = 0; l < nlabels; l++)
        copy_value(want[l], values[l]);
    if (series_add(&c->series, &c->nseries, METRICS_SERIES_MAX, nlabels, want, n) == 0)
        return;
    for (size_t l = 0; l < nlabels; l++)
        if (!(c->keep_in_other & (1u << l)))
            copy_value(want[l], "other");
    if (c->keep_in_other == 0 ||
        series_add(&c->others, &c->nothers, METRICS_OTHERS_MAX, nlabels, want, n) < 0)
        c->other += n;
}

uint64_t metrics_counter_total(const struct metrics_counter *c)
{
    uint64_t sum = c->other;
    for (size_t i = 0; i < c->nseries; i++)
        sum += c->series[i].count;
    for (size_t i = 0; i < c->nothers; i++)
        sum += c->others[i].count;
    return sum;
}

/* Label values escaped as the text format asks: backslash, double quote and line feed. */
static void append_escaped(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            buf_append_str(out, "\\n");
        else
            buf_append(out, s, 1);
    }
}

void metrics_family_begin(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct buf *out, const char *name, const char *label, const char *value,
                    double number)
{
    buf_append_str(out, name);
    if (label != NULL) {
        buf_printf(out, "{%s=\"", label);
        append_escaped(out, value);
        buf_append_str(out, "\"}");
    }
    buf_printf(out, " %.17g\n", number);
}

static void render_series(const struct metrics_counter *c, size_t nlabels, const char *const *v,
                          uint64_t count, struct buf *out)
{
    buf_append_str(out, c->name);
    if (nlabels > 0) {
        buf_append_str(out, "{");
        for (size_t l = 0; l < nlabels; l++) {
            buf_printf(out, "%s%s=\"", l ? "," : "", c->labels[l]);
            append_escaped(out, v[l]);
            buf_append_str(out, "\"");
        }
        buf_append_str(out, "}");
    }
    buf_printf(out, " %llu\n", (unsigned long long)count);
}

void metrics_counter_render(const struct metrics_counter *c, struct buf *out)
{
    size_t nlabels = label_count(c);
    metrics_family_begin(out, c->name, "counter", c->help);
    for (size_t i = 0; i < c->nseries + c->nothers; i++) {
        const struct metrics_series *s =
            i < c->nseries ? &c->series[i] : &c->others[i - c->nseries];
        const char *v[METRICS_LABELS_MAX];
        for (size_t l = 0; l < nlabels; l++)
            v[l] = s->values[l];
        render_series(c, nlabels, v, s->count, out);
    }
    if (c->other > 0) {
        const char *other[METRICS_LABELS_MAX] = {"other", "other", "other"};
        render_series(c, nlabels, other, c->other, out);
    }
}

void metrics_counter_free(struct metrics_counter *c)
{
    free(c->series);
    free(c->others);
    c->series = c->others = NULL;
    c->nseries = c->nothers = 0;
    c->other = 0;
}

void metrics_histogram_observe(struct metrics_histogram *h, double value)
{
    size_t b = 0;
    while (b < METRICS_BUCKETS_MAX && h->bounds[b] > 0 && value > h->bounds[b])
        b++;
    h->buckets[b]++;
    h->count++;
    h->sum += value;
}

void metrics_histogram_render(const struct metrics_histogram *h, struct buf *out)
{
    metrics_family_begin(out, h->name, "histogram", h->help);
    uint64_t cumulative = 0;
    size_t b = 0;
    for (; b < METRICS_BUCKETS_MAX && h->bounds[b] > 0; b++) {
        cumulative += h->buckets[b];
        buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->bounds[b],
                   (unsigned long long)cumulative);
    }
    buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", h->name, (unsigned long long)h->count);
    buf_printf(out, "%s_sum %.17g\n%s_count %llu\n", h->name, h->sum, h->name,
               (unsigned long long)h->count);
}
