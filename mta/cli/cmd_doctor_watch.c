/*
 * `sluice doctor --watch INTERVAL`: the doctor's checks again every INTERVAL until SIGTERM or
 * SIGINT. After each round every row whose status changed since the round before (an address newly
 * listed, a certificate now expiring, a row that appeared or went away) is logged as a
 * "doctor.change" event, then the round's counts as "doctor.round": JSON lines (lib/log) on
 * standard error, for a service manager's journal. The first round reports each row that is not
 * a PASS. Rounds run one at a time, each on its own loop as a single run does.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "mta/cli/cmd_doctor.h"

struct watch {
    struct doctor *d;
    struct doctor_row *prev; /* the last round's rows, sorted; owned */
    size_t nprev;
    int rounds;
    uv_timer_t timer;
    uv_signal_t sigterm, sigint;
};

static const char *const status_words[] = {"PASS", "INFO", "WARN", "FAIL"};

static int same_row(const struct doctor_row *a, const struct doctor_row *b)
{
    return a->order == b->order && strcmp(a->check, b->check) == 0 &&
           strcmp(a->subject, b->subject) == 0;
}

static const struct doctor_row *row_find(const struct doctor_row *rows, size_t n,
                                         const struct doctor_row *r)
{
    for (size_t i = 0; i < n; i++)
        if (same_row(&rows[i], r))
            return &rows[i];
    return NULL;
}

/* One "doctor.change": the row now (NULL: gone) and before (NULL: new). */
static void log_change(const struct doctor_row *before, const struct doctor_row *now)
{
    const struct doctor_row *r = now != NULL ? now : before;
    struct logrec rec;
    log_begin(&rec, now != NULL && now->status == DOCTOR_FAIL ? LOG_WARN : LOG_INFO,
              "doctor.change");
    log_str(&rec, "check", r->check);
    log_str(&rec, "subject", r->subject);
    log_str(&rec, "from", before != NULL ? status_words[before->status] : "none");
    log_str(&rec, "to", now != NULL ? status_words[now->status] : "none");
    log_str(&rec, "found", r->found);
    if (now != NULL && now->fix != NULL)
        log_str(&rec, "fix", now->fix);
    log_end(&rec);
}

static void watch_compare(struct watch *w)
{
    const struct doctor *d = w->d;
    size_t count[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < d->nrows; i++) {
        const struct doctor_row *now = &d->rows[i], *before = row_find(w->prev, w->nprev, now);
        count[now->status]++;
        if (before != NULL ? before->status != now->status
                           : w->rounds > 1 || now->status != DOCTOR_PASS)
            log_change(before, now);
    }
    for (size_t i = 0; i < w->nprev; i++)
        if (row_find(d->rows, d->nrows, &w->prev[i]) == NULL)
            log_change(&w->prev[i], NULL);
    struct logrec rec;
    log_begin(&rec, LOG_INFO, "doctor.round");
    log_int(&rec, "round", w->rounds);
    log_int(&rec, "pass", (long long)count[DOCTOR_PASS]);
    log_int(&rec, "info", (long long)count[DOCTOR_INFO]);
    log_int(&rec, "warn", (long long)count[DOCTOR_WARN]);
    log_int(&rec, "fail", (long long)count[DOCTOR_FAIL]);
    log_end(&rec);
}

static void watch_on_timer(uv_timer_t *t)
{
    struct watch *w = t->data;
    struct doctor *d = w->d;
    w->rounds++;
    if (doctor_run(d) < 0) {
        log_msg(LOG_ERROR, "doctor.round", "round %d not run: the resolver did not start",
                w->rounds);
        return;
    }
    doctor_rows_sort(d);
    watch_compare(w);
    /* This round's rows are the next one's "before". */
    struct doctor prev = {.rows = w->prev, .nrows = w->nprev};
    doctor_rows_free(&prev);
    w->prev = d->rows;
    w->nprev = d->nrows;
    d->rows = NULL;
    d->nrows = d->cap = 0;
}

static void watch_on_signal(uv_signal_t *h, int signum)
{
    struct watch *w = h->data;
    (void)signum;
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
}

int doctor_watch(struct doctor *d, uint64_t interval_ms)
{
    uv_loop_t loop;
    struct watch w = {.d = d};
    uv_loop_init(&loop);
    uv_timer_init(&loop, &w.timer);
    uv_signal_init(&loop, &w.sigterm);
    uv_signal_init(&loop, &w.sigint);
    w.timer.data = w.sigterm.data = w.sigint.data = &w;
    uv_signal_start(&w.sigterm, watch_on_signal, SIGTERM);
    uv_signal_start(&w.sigint, watch_on_signal, SIGINT);
    /* The first round at once, then one every interval after the start of the one before. */
    uv_timer_start(&w.timer, watch_on_timer, 0, interval_ms);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    struct doctor prev = {.rows = w.prev, .nrows = w.nprev};
    doctor_rows_free(&prev);
    return 0;
}
