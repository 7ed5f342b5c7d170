/*
 * What several fuzz targets share: cutting an input into the piece size its first byte picks and
 * the bytes after it (the targets that check a parser reaches the same result fed whole or in
 * pieces), and a fresh directory and files in it for the targets that need them. Include in one .c
 * per target.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* An input as a parser is to be fed it: in[0..len), whole (one piece, at least 1 byte long) and in
 * pieces of `step` bytes. */
struct fuzz_split {
    const char *in;
    size_t len;
    size_t whole; /* the piece size that feeds the input at once */
    size_t step;  /* 1 to max_step, from the first byte */
};

/* Splits data into the piece size (data[0] % max_step + 1) and the input after that byte; returns
 * 0 when there is no first byte (nothing to fuzz), else 1. */
static inline int fuzz_split(const uint8_t *data, size_t size, size_t max_step,
                             struct fuzz_split *s)
{
    if (size == 0)
        return 0;
    s->step = data[0] % max_step + 1;
    s->in = (const char *)data + 1;
    s->len = size - 1;
    s->whole = s->len > 0 ? s->len : 1;
    return 1;
}

/* How many bytes of in[0..len) the piece at `off` holds when they are fed `step` at a time. */
static inline size_t fuzz_piece(size_t len, size_t off, size_t step)
{
    return len - off < step ? len - off : step;
}

/* Makes a fresh directory "sluice-fuzz-NAME-XXXXXX" in /dev/shm when it is writable (so nothing
 * waits on a disk), else in $TMPDIR or /tmp, and writes its path to dir[size]; returns 0 or -1. */
static inline int fuzz_tmpdir(char *dir, size_t size, const char *name)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, size, "%s/sluice-fuzz-%s-XXXXXX", tmp != NULL ? tmp : "/tmp", name);
    return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Writes data (len) as the file at path, replacing it; aborts when it cannot. */
static inline void fuzz_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t)len))
        abort();
    close(fd);
}

#endif
