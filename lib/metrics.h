/*
 * Counters and histograms kept as plain integers where events happen, rendered in the Prometheus
 * text exposition format (version 0.0.4). A labelled counter keeps at most METRICS_SERIES_MAX label
 * sets, the first ones seen; later sets count under "other" for every label (but those the counter
 * keeps, whose values come from a small fixed set, such as a result), so what peers or clients
 * name (domains, hosts, tenants) cannot grow a scrape or the daemon's memory. Loop thread only, no
 * locks. The families are static objects of the module that counts (mta/delivery/mail_metrics.c);
 * this module owns only the series arrays they grow, freed by metrics_counter_free.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define METRICS_LABELS_MAX 3
#define METRICS_SERIES_MAX 50 /* label sets per counter before "other" */
#define METRICS_VALUE_MAX 64  /* a label value longer than this is cut */
#define METRICS_BUCKETS_MAX 16
#define METRICS_OTHERS_MAX 8 /* "other" label sets of the kept labels' values */

struct metrics_series {
    char values[METRICS_LABELS_MAX][METRICS_VALUE_MAX];
    uint64_t count;
};

struct metrics_counter {
    const char *name; /* "sluice_..._total" */
    const char *help;
    const char *labels[METRICS_LABELS_MAX]; /* names; NULL after the last */
    struct metrics_series *series;          /* grown up to METRICS_SERIES_MAX */
    size_t nseries;
    /* Bit l: label l keeps its value in "other" (a set beyond the bound). */
    unsigned keep_in_other;
    struct metrics_series *others; /* the "other" sets, grown up to METRICS_OTHERS_MAX */
    size_t nothers;
    uint64_t other; /* label sets beyond both bounds; shown only when non-zero */
};

struct metrics_histogram {
    const char *name; /* unit in the name: "sluice_..._seconds" */
    const char *help;
    double bounds[METRICS_BUCKETS_MAX];        /* upper bounds, ascending; 0 after the last */
    uint64_t buckets[METRICS_BUCKETS_MAX + 1]; /* the last one is +Inf */
    uint64_t count;
    double sum;
};

/* Adds n to the series of values (one per label name; NULL is ""). */
void metrics_counter_add(struct metrics_counter *c, const char *const *values, uint64_t n);
/* The sum over every series (for summaries). */
uint64_t metrics_counter_total(const struct metrics_counter *c);
void metrics_counter_render(const struct metrics_counter *c, struct buf *out);
void metrics_counter_free(struct metrics_counter *c);

void metrics_histogram_observe(struct metrics_histogram *h, double value);
void metrics_histogram_render(const struct metrics_histogram *h, struct buf *out);

/* "# HELP" and "# TYPE" lines of a family; type "gauge" or "counter". */
void metrics_family_begin(struct buf *out, const char *name, const char *type, const char *help);
/* One sample: name{label="value"} number; label NULL: no labels. The value is escaped. */
void metrics_sample(struct buf *out, const char *name, const char *label, const char *value,
                    double number);

#endif
