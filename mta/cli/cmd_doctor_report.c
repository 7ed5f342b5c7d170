/*
 * The rows of `sluice doctor`: kept as checks add them, sorted by section and subject, printed as
 * a table (the fix on its own line under each row that needs one) or as a JSON array of objects.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_doctor.h"

static const char *const status_names[] = {"PASS", "INFO", "WARN", "FAIL"};

void doctor_add(struct doctor *d, unsigned order, enum doctor_status status, const char *check,
                const char *subject, const char *found, const char *fix)
{
    if (d->nrows == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 32;
        d->rows = xrealloc(d->rows, d->cap * sizeof *d->rows);
    }
    d->rows[d->nrows] = (struct doctor_row){
        .status = status,
        .order = order,
        .seq = d->nrows,
        .check = xstrdup(check),
        .subject = xstrdup(subject),
        .found = xstrdup(found),
        .fix = fix != NULL ? xstrdup(fix) : NULL,
    };
    d->nrows++;
}

void doctor_begin(struct doctor *d)
{
    d->pending++;
}

void doctor_end(struct doctor *d)
{
    d->pending--;
}

const char *doctor_dns_failure(const struct doctor *d, const char *status_name, char *out,
                               size_t size)
{
    if (d->timed_out)
        snprintf(out, size, "no answer before the overall time limit");
    else
        snprintf(out, size, "lookup failed (%s)", status_name);
    return out;
}

static int row_compare(const void *a, const void *b)
{
    const struct doctor_row *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A JSON string: quotes, backslashes and control characters escaped; other bytes as they are. */
static void json_string(struct buf *b, const char *s)
{
    buf_append_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            buf_printf(b, "\\u%04x", *p);
        else
            buf_append(b, p, 1);
    }
    buf_append_str(b, "\"");
}

static void report_json(const struct doctor *d, struct buf *out)
{
    buf_append_str(out, "[");
    for (size_t i = 0; i < d->nrows; i++) {
        const struct doctor_row *r = &d->rows[i];
        buf_append_str(out, i > 0 ? ",\n {" : "\n {");
        buf_printf(out, "\"status\": \"%s\", \"check\": ", status_names[r->status]);
        json_string(out, r->check);
        buf_append_str(out, ", \"subject\": ");
        json_string(out, r->subject);
        buf_append_str(out, ", \"found\": ");
        json_string(out, r->found);
        buf_append_str(out, ", \"fix\": ");
        if (r->fix != NULL)
            json_string(out, r->fix);
        else
            buf_append_str(out, "null");
        buf_append_str(out, "}");
    }
    buf_append_str(out, "\n]\n");
}

static void report_table(const struct doctor *d, struct buf *out)
{
    size_t wcheck = 5, wsubject = 7;
    size_t count[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < d->nrows; i++) {
        size_t c = strlen(d->rows[i].check), s = strlen(d->rows[i].subject);
        wcheck = c > wcheck ? c : wcheck;
        wsubject = s > wsubject && s <= 40 ? s : wsubject;
    }
    buf_printf(out, "%-6s %-*s %-*s %s\n", "STATUS", (int)wcheck, "CHECK", (int)wsubject, "SUBJECT",
               "FOUND");
    for (size_t i = 0; i < d->nrows; i++) {
        const struct doctor_row *r = &d->rows[i];
        count[r->status]++;
        buf_printf(out, "%-6s %-*s %-*s %s\n", status_names[r->status], (int)wcheck, r->check,
                   (int)wsubject, r->subject, r->found);
        if (r->fix != NULL)
            buf_printf(out, "%*s fix: %s\n", (int)(6 + 1 + wcheck), "", r->fix);
    }
    buf_printf(out, "\n%zu PASS, %zu INFO, %zu WARN, %zu FAIL\n", count[DOCTOR_PASS],
               count[DOCTOR_INFO], count[DOCTOR_WARN], count[DOCTOR_FAIL]);
}

void doctor_rows_sort(struct doctor *d)
{
    if (d->nrows > 0)
        qsort(d->rows, d->nrows, sizeof *d->rows, row_compare);
}

int doctor_report(struct doctor *d, int json, FILE *out)
{
    struct buf text = BUF_INIT;
    int failed = 0;
    doctor_rows_sort(d);
    for (size_t i = 0; i < d->nrows; i++)
        failed |= d->rows[i].status == DOCTOR_FAIL;
    if (json)
        report_json(d, &text);
    else
        report_table(d, &text);
    fwrite(text.data, 1, text.len, out);
    buf_free(&text);
    return failed;
}

void doctor_rows_free(struct doctor *d)
{
    for (size_t i = 0; i < d->nrows; i++) {
        free(d->rows[i].check);
        free(d->rows[i].subject);
        free(d->rows[i].found);
        free(d->rows[i].fix);
    }
    free(d->rows);
    d->rows = NULL;
    d->nrows = d->cap = 0;
}
