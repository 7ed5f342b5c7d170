#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "lib/fdio.h"
#include "lib/log_events.h"
#include "lib/xalloc.h"

/*
 * Writing: until log_open() first runs (start-up, command-line tools, most unit tests) log_end()
 * writes each line itself. From then on it only appends the line to a queue, and one writer thread
 * of our own (not libuv's pool, which a stuck disk must not tie up) empties the queue in order, so
 * a slow disk or a full pipe never stalls the loop. The queue is a list of chunks, one per run of
 * lines bound for the same descriptor, so a log_open() switches targets exactly between two lines.
 */
struct log_chunk {
    struct log_chunk *next;
    int fd;          /* target of these lines */
    int close_after; /* the target was replaced: close fd once the lines before it are written */
    struct buf data; /* whole lines */
};

static uv_once_t log_once = UV_ONCE_INIT;
static uv_mutex_t log_lock;    /* guards everything below */
static uv_cond_t log_work;     /* the writer waits here for lines */
static uv_cond_t log_idle;     /* log_flush() waits here for the writer to catch up */
static int log_fd = 2;         /* target of new lines */
static int log_threaded;       /* the writer thread runs */
static int log_writer_waiting; /* the writer sleeps on log_work */
static int log_writer_busy;    /* the writer is writing a chunk outside the lock */
static struct log_chunk *log_head, *log_tail;
static size_t log_queued;                        /* bytes in the queue and in the writer's hands */
static size_t log_queue_limit = 8 * 1024 * 1024; /* lines beyond this are dropped... */
static unsigned long long log_dropped;           /* ...and counted here */
static unsigned long long log_dropped_total;     /* since start, for the metrics */
static uv_thread_t log_writer;
/* The recent alarms (log_alarms): a ring of the last error records, each a line without its
 * newline. */
static char log_alarm_lines[LOG_ALARMS_MAX][LOG_ALARM_LINE_MAX];
static size_t log_alarm_next, log_nalarms;
/* Event names missing from the event table that were already reported, so each is reported once;
 * a handful at most, as each is a bug. */
static char *log_unknown[16];
static size_t log_nunknown;

/* Lines are queued in chunks of about this size, so a backlog is many small buffers that go as
 * they are written, not one that doubles. */
#define LOG_CHUNK_MAX (64 * 1024)
/* How long the writer waits after a write for more lines before it sleeps until woken. */
#define LOG_GATHER_MS 1

/* The tap: set under log_lock and called under it, so that unsetting it is final. The selection is
 * read without the lock (a record whose event is selected a moment late is simply not tapped). */
static log_tap_cb *log_tap;
static void *log_tap_arg;
static _Atomic(log_tap_cb *) log_tap_on;        /* log_tap, for the unlocked test in log_begin() */
static _Atomic unsigned char *log_tap_selected; /* by index in the event table; allocated once */

/* Set at start and reload, read by every thread that logs. */
static _Atomic enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void log_init_once(void)
{
    if (uv_mutex_init(&log_lock) != 0 || uv_cond_init(&log_work) != 0 ||
        uv_cond_init(&log_idle) != 0)
        abort();
}

static void log_lock_acquire(void)
{
    uv_once(&log_once, log_init_once);
    uv_mutex_lock(&log_lock);
}

/* A failing target loses the rest of what it was given, as there is nowhere to report it. */
static void write_all(int fd, const char *p, size_t len)
{
    (void)fd_write_all(fd, p, len);
}

static struct log_chunk *chunk_push(int fd)
{
    struct log_chunk *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    if (log_tail != NULL)
        log_tail->next = c;
    else
        log_head = c;
    log_tail = c;
    return c;
}

static void writer_wake(void)
{
    if (log_writer_waiting)
        uv_cond_signal(&log_work);
}

static void record_begin(struct logrec *r, enum log_level level, const char *event);
static void dropped_line(struct buf *line, unsigned long long count);

static void writer_on_start(void *arg)
{
    (void)arg;
    int wrote = 0; /* since the writer last napped */
    uv_mutex_lock(&log_lock);
    for (;;) {
        if (log_head != NULL) {
            wrote = 1;
            struct log_chunk *c = log_head;
            log_head = c->next;
            if (log_head == NULL)
                log_tail = NULL;
            log_writer_busy = 1;
            uv_mutex_unlock(&log_lock);
            write_all(c->fd, c->data.data, c->data.len);
            if (c->close_after)
                close(c->fd);
            uv_mutex_lock(&log_lock);
            log_writer_busy = 0;
            log_queued -= c->data.len;
            buf_free(&c->data);
            free(c);
        } else if (log_dropped > 0) {
            /* Caught up after dropping lines: say how many were lost. */
            struct buf line = BUF_INIT;
            int fd = log_fd; /* stays open: only this thread closes replaced targets */
            dropped_line(&line, log_dropped);
            log_dropped = 0;
            log_writer_busy = 1;
            uv_mutex_unlock(&log_lock);
            write_all(fd, line.data, line.len);
            buf_free(&line);
            uv_mutex_lock(&log_lock);
            log_writer_busy = 0;
        } else if (wrote) {
            /* Lines come in bursts (a busy server logs a few per message): a nap lets the next
             * ones gather and go in one write, where each would otherwise wake this thread. */
            wrote = 0;
            uv_mutex_unlock(&log_lock);
            uv_sleep(LOG_GATHER_MS);
            uv_mutex_lock(&log_lock);
        } else {
            uv_cond_broadcast(&log_idle);
            log_writer_waiting = 1;
            uv_cond_wait(&log_work, &log_lock);
            log_writer_waiting = 0;
        }
    }
}

/* Called with log_lock held. */
static void writer_start(void)
{
    if (log_threaded)
        return;
    if (uv_thread_create(&log_writer, writer_on_start, NULL) != 0)
        return; /* keep writing synchronously */
    log_threaded = 1;
    atexit(log_flush);
}

void log_flush(void)
{
    log_lock_acquire();
    while (log_threaded && (log_head != NULL || log_dropped > 0 || log_writer_busy)) {
        writer_wake();
        uv_cond_wait(&log_idle, &log_lock);
    }
    uv_mutex_unlock(&log_lock);
}

unsigned long long log_dropped_count(void)
{
    log_lock_acquire();
    unsigned long long n = log_dropped_total;
    uv_mutex_unlock(&log_lock);
    return n;
}

void log_set_queue_limit(size_t bytes)
{
    log_lock_acquire();
    log_queue_limit = bytes;
    uv_mutex_unlock(&log_lock);
}

int log_open(const char *path)
{
    int fd = 2;
    if (path != NULL && strcmp(path, "-") != 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return -errno;
    }
    log_lock_acquire();
    writer_start();
    if (log_fd > 2 && log_fd != fd) {
        if (log_threaded)
            chunk_push(log_fd)->close_after = 1; /* after the lines queued for it */
        else
            close(log_fd);
        writer_wake();
    }
    log_fd = fd;
    uv_mutex_unlock(&log_lock);
    return 0;
}

void log_set_level(enum log_level min)
{
    log_min = min;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void json_escape(struct buf *b, const char *value, size_t n)
{
    const unsigned char *s = (const unsigned char *)value;
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_len(s + i, n - i);
            if (len == 0) {
                buf_append_str(b, "\\ufffd");
                i++;
            } else {
                buf_append(b, s + i, len);
                i += len;
            }
        }
    }
    buf_append(b, "\"", 1);
}

static void record_begin(struct logrec *r, enum log_level level, const char *event)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    buf_printf(&r->line,
               "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               (long)(tv.tv_usec / 1000), level_names[level]);
    json_escape(&r->line, event, strlen(event));
    r->head_len = r->line.len;
    r->error = level >= LOG_ERROR;
}

/* Not filtered by level: a name missing from the table is a bug, and tests look for it. */
static void unknown_event(const char *event)
{
    int first = 1;
    log_lock_acquire();
    for (size_t i = 0; i < log_nunknown && first; i++)
        first = strcmp(log_unknown[i], event) != 0;
    if (first && log_nunknown < sizeof log_unknown / sizeof log_unknown[0])
        log_unknown[log_nunknown++] = xstrdup(event);
    else
        first = 0;
    uv_mutex_unlock(&log_lock);
    if (!first)
        return;
    struct logrec r = {.line = BUF_INIT, .enabled = 1};
    record_begin(&r, LOG_ERROR, "log.unknown_event");
    log_str(&r, "name", event);
    log_str(&r, "msg", "an event name missing from the event table (lib/log_event_table.h)");
    log_end(&r);
}

/* Called with log_lock held. */
static void tap_selection_alloc(void)
{
    if (log_tap_selected == NULL)
        log_tap_selected = xcalloc(log_event_count, sizeof *log_tap_selected);
}

void log_tap_set(log_tap_cb *cb, void *arg)
{
    log_lock_acquire();
    tap_selection_alloc();
    if (cb == NULL)
        for (size_t i = 0; i < log_event_count; i++)
            log_tap_selected[i] = 0;
    log_tap = cb;
    log_tap_arg = arg;
    log_tap_on = cb;
    uv_mutex_unlock(&log_lock);
}

int log_tap_select(const char *name, int on)
{
    const struct log_event *ev = log_event_find(name);
    if (ev == NULL)
        return -ENOENT;
    log_lock_acquire();
    tap_selection_alloc();
    log_tap_selected[ev - log_events] = (unsigned char)(on != 0);
    uv_mutex_unlock(&log_lock);
    return 0;
}

void log_begin(struct logrec *r, enum log_level level, const char *event)
{
    const struct log_event *ev = log_event_find(event);
    if (ev == NULL)
        unknown_event(event);
    r->line = (struct buf)BUF_INIT;
    r->tap = log_tap_on != NULL && ev != NULL && log_tap_selected[ev - log_events] ? ev : NULL;
    r->quiet = level < log_min;
    r->enabled = !r->quiet || r->tap != NULL;
    if (r->enabled)
        record_begin(r, level, event);
}

static void field_key(struct logrec *r, const char *key)
{
    buf_append(&r->line, ",", 1);
    json_escape(&r->line, key, strlen(key));
    buf_append(&r->line, ":", 1);
}

void log_strn(struct logrec *r, const char *key, const char *value, size_t len)
{
    if (!r->enabled)
        return;
    field_key(r, key);
    if (value == NULL)
        buf_append_str(&r->line, "null");
    else
        json_escape(&r->line, value, len);
}

void log_str(struct logrec *r, const char *key, const char *value)
{
    log_strn(r, key, value, value ? strlen(value) : 0);
}

void log_int(struct logrec *r, const char *key, long long value)
{
    if (!r->enabled)
        return;
    field_key(r, key);
    buf_printf(&r->line, "%lld", value);
}

void log_bool(struct logrec *r, const char *key, int value)
{
    if (!r->enabled)
        return;
    field_key(r, key);
    buf_append_str(&r->line, value ? "true" : "false");
}

/* Not filtered by level: losing lines is always worth knowing. */
static void dropped_line(struct buf *line, unsigned long long count)
{
    struct logrec r = {.line = BUF_INIT, .enabled = 1};
    record_begin(&r, LOG_ERROR, "log.dropped");
    log_int(&r, "count", (long long)count);
    log_str(&r, "msg", "the log target fell behind; lines were dropped");
    buf_append(&r.line, "}\n", 2);
    *line = r.line;
}

/* Called with log_lock held. */
static void line_queue(const struct buf *line)
{
    if (!log_threaded) {
        write_all(log_fd, line->data, line->len);
    } else if (log_queued + line->len > log_queue_limit) {
        log_dropped++;
        log_dropped_total++;
    } else {
        struct log_chunk *c = log_tail;
        if (c == NULL || c->fd != log_fd || c->close_after || c->data.len >= LOG_CHUNK_MAX)
            c = chunk_push(log_fd);
        buf_append(&c->data, line->data, line->len);
        log_queued += line->len;
        writer_wake();
    }
}

/* Called with log_lock held; r->line ends with "}\n". */
static void alarm_keep(const struct logrec *r)
{
    char *slot = log_alarm_lines[log_alarm_next];
    size_t len = r->line.len - 1;
    if (len < LOG_ALARM_LINE_MAX) {
        memcpy(slot, r->line.data, len);
        slot[len] = '\0';
    } else { /* too long to keep whole: what it was and when */
        snprintf(slot, LOG_ALARM_LINE_MAX, "%.*s}", (int)r->head_len, r->line.data);
    }
    log_alarm_next = (log_alarm_next + 1) % LOG_ALARMS_MAX;
    if (log_nalarms < LOG_ALARMS_MAX)
        log_nalarms++;
}

void log_end(struct logrec *r)
{
    if (!r->enabled)
        return;
    buf_append(&r->line, "}\n", 2);
    log_lock_acquire();
    if (r->tap != NULL && log_tap != NULL)
        log_tap(log_tap_arg, r->tap, r->line.data, r->line.len - 1); /* without the newline */
    if (!r->quiet)
        line_queue(&r->line);
    if (r->error)
        alarm_keep(r);
    uv_mutex_unlock(&log_lock);
    buf_free(&r->line);
}

void log_alarms(struct buf *out)
{
    log_lock_acquire();
    for (size_t i = 0; i < log_nalarms; i++) {
        size_t slot = (log_alarm_next + LOG_ALARMS_MAX - log_nalarms + i) % LOG_ALARMS_MAX;
        buf_append_str(out, log_alarm_lines[slot]);
        buf_append(out, "\n", 1);
    }
    uv_mutex_unlock(&log_lock);
}

static void log_vmsg(enum log_level level, const char *event, const char *fmt, va_list ap)
{
    struct logrec r;
    char text[2048];
    log_begin(&r, level, event);
    if (!r.enabled)
        return;
    vsnprintf(text, sizeof text, fmt, ap);
    log_str(&r, "msg", text);
    log_end(&r);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, event, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_ERROR, event, fmt, ap);
    va_end(ap);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_ERROR, "panic", fmt, ap);
    va_end(ap);
    log_flush(); /* abort() skips atexit */
    abort();
}
