#include "lib/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/xalloc.h"
#include <stdlib.h>

char *buf_reserve(struct buf *b, size_t extra)
{
    if (b->cap - b->len < extra) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < extra)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (b->data == NULL)
        return NULL; /* nothing asked of an empty buffer: NULL + 0 is undefined (C11 6.5.6) */
    return b->data + b->len;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    memcpy(buf_reserve(b, len), data, len);
    b->len += len;
}

void buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    char *dst = buf_reserve(b, (size_t)need + 1);
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

void buf_consume(struct buf *b, size_t len)
{
    if (len >= b->len) {
        buf_free(b);
        return;
    }
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
