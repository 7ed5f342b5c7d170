/*
 * The suppression list as CSV, for `sluice suppress import` and `export`: a header row
 * "address,tenant,source,time,expiry,note", then one entry a row. Fields are separated by commas
 * and may be quoted ("a ""quoted"" note, with a comma"); tenant empty is the global list, source
 * empty is import, time empty is the time of the import, expiry empty is never. Times are UTC,
 * "2026-12-01T10:30:00Z" or "2026-12-01" (midnight). Pure text work; the caller reads the file
 * and reports each refused row with its line.
 */
#ifndef SLUICE_SUPPRESSION_CSV_H
#define SLUICE_SUPPRESSION_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "policy/suppression.h"

#define SUPPRESSION_CSV_HEADER "address,tenant,source,time,expiry,note"
#define SUPPRESSION_TIME_LEN 20 /* "2026-12-01T10:30:00Z" */

/* A UTC time as "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DD" into *out (unix seconds): 0, or -1. */
int suppression_time_parse(const char *s, int64_t *out);
/* t as "YYYY-MM-DDTHH:MM:SSZ". */
void suppression_time_format(int64_t t, char out[SUPPRESSION_TIME_LEN + 1]);

/* Room for what suppression_csv_row says is wrong with a row. */
#define SUPPRESSION_CSV_WHY_MAX 128

/* Parses one data row (line[0..len), without its line end) into e, with now for an empty time.
 * Returns 0, or -1 with what is wrong with it in why. */
int suppression_csv_row(const char *line, size_t len, int64_t now, struct suppression_entry *e,
                        char why[SUPPRESSION_CSV_WHY_MAX]);
/* Appends e as one row ending in "\n", quoting the fields that need it. */
void suppression_csv_format(const struct suppression_entry *e, struct buf *out);

#endif
