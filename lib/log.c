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

static int log_fd = 2;
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_open(const char *path)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        if (log_fd > 2)
            close(log_fd);
        log_fd = 2;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
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

void log_begin(struct logrec *r, enum log_level level, const char *event)
{
    r->line = (struct buf)BUF_INIT;
    r->enabled = level >= log_min;
    if (!r->enabled)
        return;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    buf_printf(&r->line,
               "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               (long)(tv.tv_usec / 1000), level_names[level]);
    json_escape(&r->line, event, strlen(event));
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

void log_end(struct logrec *r)
{
    if (!r->enabled)
        return;
    buf_append(&r->line, "}\n", 2);
    const char *p = r->line.data;
    size_t left = r->line.len;
    while (left > 0) {
        ssize_t n = write(log_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* nowhere to report a failing log; drop the line */
        p += n;
        left -= (size_t)n;
    }
    buf_free(&r->line);
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
    abort();
}
