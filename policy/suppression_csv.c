#include "policy/suppression_csv.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define NFIELDS 6
#define FIELD_MAX SMTP_PATH_MAX /* the longest field that can be valid: an address */

static const char *const field_names[NFIELDS] = {"address", "tenant", "source",
                                                 "time",    "expiry", "note"};

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int suppression_time_parse(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if ((len != 10 && len != SUPPRESSION_TIME_LEN) || s[4] != '-' || s[7] != '-' ||
        digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 || digits(s + 8, 2, &d) < 0)
        return -1;
    if (len == SUPPRESSION_TIME_LEN &&
        (s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
         digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 || digits(s + 17, 2, &sec) < 0))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* timegm normalized a day the month does not have */
        return -1;
    *out = (int64_t)t;
    return 0;
}

void suppression_time_format(int64_t t, char out[SUPPRESSION_TIME_LEN + 1])
{
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(out, SUPPRESSION_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

/* Splits the row into its fields (unquoted, NUL-terminated): 0, or -1 with why filled. */
static int split(const char *line, size_t len, char fields[NFIELDS][FIELD_MAX + 1], char *why)
{
    size_t at = 0;
    int n = 0;
    for (;;) {
        if (n == NFIELDS) {
            snprintf(why, SUPPRESSION_CSV_WHY_MAX, "more than %d fields", NFIELDS);
            return -1;
        }
        size_t flen = 0;
        int quoted = at < len && line[at] == '"';
        at += quoted;
        for (;;) {
            if (at == len) {
                if (quoted) {
                    snprintf(why, SUPPRESSION_CSV_WHY_MAX, "%s: a quote is not closed",
                             field_names[n]);
                    return -1;
                }
                break;
            }
            char c = line[at];
            if (quoted && c == '"') {
                if (at + 1 < len && line[at + 1] == '"') {
                    at++; /* "" is a quote */
                } else {
                    quoted = 0, at++;
                    if (at < len && line[at] != ',') {
                        snprintf(why, SUPPRESSION_CSV_WHY_MAX, "%s: text after the closing quote",
                                 field_names[n]);
                        return -1;
                    }
                    break;
                }
            } else if (!quoted && c == ',') {
                break;
            } else if (!quoted && c == '"') {
                snprintf(why, SUPPRESSION_CSV_WHY_MAX, "%s: a quote inside an unquoted field",
                         field_names[n]);
                return -1;
            }
            if (flen == FIELD_MAX) {
                snprintf(why, SUPPRESSION_CSV_WHY_MAX, "%s: longer than %d octets", field_names[n],
                         FIELD_MAX);
                return -1;
            }
            fields[n][flen++] = line[at++];
        }
        fields[n++][flen] = '\0';
        if (at == len)
            break;
        at++; /* the comma */
    }
    if (n != NFIELDS) {
        snprintf(why, SUPPRESSION_CSV_WHY_MAX, "%d fields, expected %d (%s)", n, NFIELDS,
                 SUPPRESSION_CSV_HEADER);
        return -1;
    }
    return 0;
}

int suppression_csv_row(const char *line, size_t len, int64_t now, struct suppression_entry *e,
                        char why[SUPPRESSION_CSV_WHY_MAX])
{
    char f[NFIELDS][FIELD_MAX + 1];
    if (split(line, len, f, why) < 0)
        return -1;
    enum suppression_source source = SUPPRESSION_IMPORT;
    int64_t added = now, expiry = 0;
    if (f[2][0] != '\0' && suppression_source_parse(f[2], &source) < 0) {
        snprintf(why, SUPPRESSION_CSV_WHY_MAX,
                 "source: '%.40s' is none of bad-mailbox, bad-domain, complaint, manual, import",
                 f[2]);
        return -1;
    }
    for (int i = 3; i <= 4; i++) {
        if (f[i][0] != '\0' && suppression_time_parse(f[i], i == 3 ? &added : &expiry) < 0) {
            snprintf(why, SUPPRESSION_CSV_WHY_MAX,
                     "%s: '%.40s' is not a UTC time (2026-12-01T10:30:00Z or 2026-12-01)",
                     field_names[i], f[i]);
            return -1;
        }
    }
    const char *bad;
    if (suppression_entry_make(f[1], f[0], source, added, expiry, f[5], e, &bad) < 0) {
        snprintf(why, SUPPRESSION_CSV_WHY_MAX, "%s", bad);
        return -1;
    }
    return 0;
}

/* A field, quoted when it holds a comma or a quote (which is doubled). */
static void field_format(const char *s, struct buf *out)
{
    if (strpbrk(s, ",\"") == NULL) {
        buf_printf(out, "%s", s);
        return;
    }
    buf_printf(out, "\"");
    for (; *s; s++)
        buf_printf(out, *s == '"' ? "\"\"" : "%c", *s);
    buf_printf(out, "\"");
}

void suppression_csv_format(const struct suppression_entry *e, struct buf *out)
{
    char added[SUPPRESSION_TIME_LEN + 1], expiry[SUPPRESSION_TIME_LEN + 1] = "";
    suppression_time_format(e->added, added);
    if (e->expiry != 0)
        suppression_time_format(e->expiry, expiry);
    field_format(e->address, out);
    buf_printf(out, ",");
    field_format(e->tenant, out);
    buf_printf(out, ",%s,%s,%s,", suppression_source_name(e->source), added, expiry);
    field_format(e->note, out);
    buf_printf(out, "\n");
}
