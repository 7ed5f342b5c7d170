/*
 * Growable byte buffer. Owns its memory; a buffer drained to zero length gives the memory back,
 * so an idle connection holds nothing. Callers check their own caps before appending.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* owned; NULL when cap == 0 */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes room for at least `extra` more bytes; returns a pointer to data + len (NULL when extra is
 * 0 and the buffer holds no memory). */
char *buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
/* printf-style append; always NUL-terminates data (the NUL is not counted in len). */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first `len` bytes; frees the memory when nothing is left. */
void buf_consume(struct buf *b, size_t len);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
