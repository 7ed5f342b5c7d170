#include "mta/delivery/warmup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "lib/xalloc.h"

#define DAY_MS (24 * 3600 * 1000LL)
/* While the counts are read at start, a warming address asks again this soon. */
#define LOAD_WAIT_MS 100
/* The file's first line; each further line is "address provider day used". */
#define FILE_MAGIC "sluice-warmup 1\n"
/* Longest line read back (an address, a destination name, two numbers). */
#define LINE_MAX_LEN 400

struct warmup_count {
    struct warmup *w;
    char *address;
    char *provider;
    /* The schedule, copied from the configuration at the latest warmup_for. */
    int64_t start_day;
    int offset_minutes;
    int overflow; /* enum warmup_overflow */
    uint64_t *per_day;
    size_t ndays;
    int64_t day;       /* the day (days since 1970-01-01 at the offset) `used` counts */
    uint64_t used;     /* messages handed out that day */
    int64_t noted_day; /* the day the mail's overflow or wait was logged */
};

struct warmup {
    uv_loop_t *loop;
    char *dir;
    struct strmap counts; /* "address provider" -> struct warmup_count */
    uv_work_t load_req, save_req;
    struct buf file; /* read: the file's bytes; write: what is being written */
    int io_status;   /* of the last read or write: 0 or -errno */
    int loaded;      /* the counts on disk are known */
    int saving;      /* a write is in flight */
    int dirty;       /* a count changed since the write in flight began */
    int freeing;     /* warmup_free ran: free once no work is in flight */
};

static void warmup_save(struct warmup *w);

/* ---- arithmetic ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t warmup_day(int64_t unix_ms, int offset_minutes)
{
    return floor_div(unix_ms + (int64_t)offset_minutes * 60000, DAY_MS);
}

uint64_t warmup_ms_to_next_day(int64_t unix_ms, int offset_minutes)
{
    int64_t next = (warmup_day(unix_ms, offset_minutes) + 1) * DAY_MS;
    return (uint64_t)(next - (unix_ms + (int64_t)offset_minutes * 60000));
}

int64_t warmup_day_number(int64_t start_day, int64_t today)
{
    return today < start_day ? 1 : today - start_day + 1;
}

uint64_t warmup_allowance(const uint64_t *per_day, size_t ndays, int64_t n)
{
    if (n < 1)
        n = 1;
    return (uint64_t)n > ndays ? UINT64_MAX : per_day[n - 1];
}

const struct config_warmup_step *warmup_step_find(const struct config_warmup *w,
                                                  const char *provider)
{
    const struct config_warmup_step *any = NULL;
    for (size_t i = 0; i < w->nschedule; i++) {
        const struct config_warmup_step *s = &w->schedule[i];
        if (strcmp(s->provider, "*") == 0)
            any = s;
        else if (strcasecmp(s->provider, provider) == 0)
            return s;
    }
    return any;
}

static int64_t unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Today's day for c; a new day starts its count over. A clock set back keeps the count it has
 * (counting on is the safe direction). */
static int64_t count_today(struct warmup_count *c, int64_t now_ms)
{
    int64_t today = warmup_day(now_ms, c->offset_minutes);
    if (today > c->day) {
        c->day = today;
        c->used = 0;
    }
    return today;
}

static uint64_t count_allowance(const struct warmup_count *c, int64_t today)
{
    return warmup_allowance(c->per_day, c->ndays, warmup_day_number(c->start_day, today));
}

/* ---- the registry ---- */

static struct warmup_count *count_get(struct warmup *w, const char *address, const char *provider)
{
    struct buf key = BUF_INIT;
    buf_printf(&key, "%s %s", address, provider);
    struct warmup_count *c = strmap_get(&w->counts, key.data);
    if (c == NULL) {
        c = xcalloc(1, sizeof *c);
        c->w = w;
        c->address = xstrdup(address);
        c->provider = xstrdup(provider);
        c->noted_day = -1;
        strmap_put(&w->counts, key.data, c);
    }
    buf_free(&key);
    return c;
}

struct warmup_count *warmup_for(struct warmup *w, const struct config_egress_addr *ea,
                                const char *provider)
{
    const struct config_warmup_step *step = warmup_step_find(&ea->warmup, provider);
    if (step == NULL)
        return NULL;
    struct warmup_count *c = count_get(w, ea->address, provider);
    c->start_day = ea->warmup.start_day;
    c->offset_minutes = ea->warmup.offset_minutes;
    c->overflow = ea->warmup.overflow;
    free(c->per_day);
    c->per_day = xmalloc(step->ndays * sizeof *c->per_day);
    memcpy(c->per_day, step->per_day, step->ndays * sizeof *c->per_day);
    c->ndays = step->ndays;
    return c;
}

static void count_log(const struct warmup_count *c, enum log_level level, const char *event,
                      int64_t today, const char *msg)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "egress", c->address);
    log_str(&r, "destination", c->provider);
    log_int(&r, "day", (long long)warmup_day_number(c->start_day, today));
    log_int(&r, "allowance", (long long)count_allowance(c, today));
    log_int(&r, "used", (long long)c->used);
    log_str(&r, "msg", msg);
    log_end(&r);
}

uint64_t warmup_wait_ms(struct warmup_count *c)
{
    if (c == NULL)
        return 0;
    if (!c->w->loaded)
        return LOAD_WAIT_MS;
    int64_t now = unix_now_ms();
    int64_t today = count_today(c, now);
    if (c->used < count_allowance(c, today))
        return 0;
    if (c->noted_day != today) {
        c->noted_day = today;
        if (c->overflow == WARMUP_OVERFLOW_WAIT)
            count_log(c, LOG_INFO, "delivery.warmup_wait", today,
                      "the warming address has used today's allowance: mail to the destination "
                      "waits for the next day");
        else
            count_log(c, LOG_INFO, "delivery.warmup_overflow", today,
                      "the warming address has used today's allowance: mail to the destination "
                      "goes from the pool's other addresses");
    }
    return warmup_ms_to_next_day(now, c->offset_minutes);
}

int warmup_holds_pool(struct warmup_count *c)
{
    return c != NULL && c->overflow == WARMUP_OVERFLOW_WAIT && warmup_wait_ms(c) > 0;
}

void warmup_take(struct warmup_count *c)
{
    if (c == NULL)
        return;
    int64_t today = count_today(c, unix_now_ms());
    c->used++;
    if (c->used == count_allowance(c, today))
        count_log(c, LOG_INFO, "delivery.warmup_full", today,
                  "the warming address has used today's allowance for the destination");
    warmup_save(c->w);
}

void warmup_describe(const struct warmup_count *c, struct buf *out)
{
    if (c == NULL)
        return;
    int64_t today = warmup_day(unix_now_ms(), c->offset_minutes);
    uint64_t allowance = count_allowance(c, today);
    uint64_t used = c->day >= today ? c->used : 0;
    buf_printf(out, ",\"warmup\":{\"day\":%lld,",
               (long long)warmup_day_number(c->start_day, today));
    if (allowance == UINT64_MAX)
        buf_printf(out, "\"warm\":true,");
    else
        buf_printf(out, "\"allowance\":%llu,", (unsigned long long)allowance);
    buf_printf(out, "\"used\":%llu,\"overflow\":\"%s\",\"loaded\":%s}", (unsigned long long)used,
               c->overflow == WARMUP_OVERFLOW_WAIT ? "wait" : "next",
               c->w->loaded ? "true" : "false");
}

void warmup_explain(const struct warmup_count *c, const char *indent, struct buf *out)
{
    if (c == NULL)
        return;
    int64_t today = warmup_day(unix_now_ms(), c->offset_minutes);
    uint64_t allowance = count_allowance(c, today);
    int64_t day = warmup_day_number(c->start_day, today);
    if (allowance == UINT64_MAX) {
        buf_printf(out, "%swarm-up: over after day %zu, warm\n", indent, c->ndays);
        return;
    }
    buf_printf(out, "%swarm-up day %lld: %llu of %llu messages sent today%s%s\n", indent,
               (long long)day, (unsigned long long)(c->day >= today ? c->used : 0),
               (unsigned long long)allowance, !c->w->loaded ? " (counts still being read)" : "",
               c->overflow == WARMUP_OVERFLOW_WAIT ? "; beyond that, mail waits for tomorrow"
                                                   : "; beyond that, other addresses send");
}

/* ---- the file ---- */

/* Thread pool: the whole file into w->file (a missing file is an empty one). */
static void load_work(uv_work_t *req)
{
    struct warmup *w = req->data;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", w->dir, WARMUP_FILE);
    w->io_status = file_read_all(path, &w->file);
}

/* One line "address provider day used": a larger count than the one in memory wins (a count
 * taken before the file was read, or a day that has not begun yet here, stays). */
static void load_line(struct warmup *w, const char *line)
{
    char address[64], provider[300];
    long long day;
    unsigned long long used;
    if (sscanf(line, "%63s %299s %lld %llu", address, provider, &day, &used) != 4)
        return;
    struct warmup_count *c = count_get(w, address, provider);
    if (c->day < day || (c->day == day && c->used < used)) {
        c->day = day;
        c->used = used;
    }
}

static void load_done(uv_work_t *req, int status)
{
    struct warmup *w = req->data;
    if (status == 0 && w->io_status < 0)
        status = w->io_status;
    if (status < 0) {
        log_msg(LOG_ERROR, "delivery.warmup_unreadable",
                "%s/%s could not be read (%s): warm-up counts start from 0", w->dir, WARMUP_FILE,
                uv_strerror(status));
    } else if (w->file.len >= strlen(FILE_MAGIC) &&
               memcmp(w->file.data, FILE_MAGIC, strlen(FILE_MAGIC)) == 0) {
        char *p = w->file.data + strlen(FILE_MAGIC), *end = w->file.data + w->file.len;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            if (nl == NULL || nl - p > LINE_MAX_LEN)
                break; /* a torn or foreign last line */
            *nl = '\0';
            load_line(w, p);
            p = nl + 1;
        }
    }
    buf_free(&w->file);
    w->loaded = 1;
    if (w->dirty)
        warmup_save(w);
    else if (w->freeing)
        warmup_free(w);
}

/* Thread pool: write the new file beside the old, sync it, rename it over, sync the directory. */
static void save_work(uv_work_t *req)
{
    struct warmup *w = req->data;
    w->io_status = file_replace(w->dir, WARMUP_FILE, w->file.data, w->file.len);
}

/* A count of today (or later: a clock set back) as a line of the file; older ones are over. */
static void save_line(const char *key, void *value, void *arg)
{
    (void)key;
    const struct warmup_count *c = value;
    struct buf *file = arg;
    if (c->used > 0 && c->day >= warmup_day(unix_now_ms(), c->offset_minutes))
        buf_printf(file, "%s %s %lld %llu\n", c->address, c->provider, (long long)c->day,
                   (unsigned long long)c->used);
}

static void save_done(uv_work_t *req, int status)
{
    struct warmup *w = req->data;
    w->saving = 0;
    if (status == 0 && w->io_status < 0)
        status = w->io_status;
    if (status < 0)
        log_msg(LOG_ERROR, "delivery.warmup_unsaved",
                "%s/%s could not be written (%s): a restart may forget today's warm-up counts",
                w->dir, WARMUP_FILE, uv_strerror(status));
    buf_free(&w->file);
    if (w->dirty)
        warmup_save(w);
    else if (w->freeing)
        warmup_free(w);
}

/* Writes every count, now or (a write in flight, the file not read yet) after that. */
static void warmup_save(struct warmup *w)
{
    w->dirty = 1;
    if (w->saving || !w->loaded)
        return;
    w->dirty = 0;
    w->saving = 1;
    w->io_status = 0;
    buf_append_str(&w->file, FILE_MAGIC);
    strmap_each(&w->counts, save_line, &w->file);
    int rc = uv_queue_work(w->loop, &w->save_req, save_work, save_done);
    if (rc < 0)
        save_done(&w->save_req, rc);
}

struct warmup *warmup_new(uv_loop_t *loop, const char *spool_dir)
{
    struct warmup *w = xcalloc(1, sizeof *w);
    w->loop = loop;
    w->dir = xstrdup(spool_dir);
    w->counts = (struct strmap)STRMAP_INIT;
    w->load_req.data = w->save_req.data = w;
    int rc = uv_queue_work(loop, &w->load_req, load_work, load_done);
    if (rc < 0)
        load_done(&w->load_req, rc);
    return w;
}

static void free_count(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    struct warmup_count *c = value;
    free(c->address);
    free(c->provider);
    free(c->per_day);
    free(c);
}

void warmup_free(struct warmup *w)
{
    w->freeing = 1;
    if (!w->loaded || w->saving || w->dirty)
        return; /* load_done or save_done calls again */
    strmap_each(&w->counts, free_count, NULL);
    strmap_free(&w->counts);
    buf_free(&w->file);
    free(w->dir);
    free(w);
}
