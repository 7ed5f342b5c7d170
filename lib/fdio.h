/*
 * Small blocking file-descriptor helpers for code that runs off the loop (thread pool, commands).
 */
#ifndef SLUICE_FDIO_H
#define SLUICE_FDIO_H

#include <stddef.h>

#include "lib/buf.h"

/* Writes all of data, retrying on EINTR and after partial writes: 0 or -errno. A short write is
 * only followed by another when the first was cut short (a full disk, a file size limit), which
 * then reports why; a write of 0 bytes is -EIO. */
int fd_write_all(int fd, const void *data, size_t len);

/* Appends what fd has up to its end to out: 0 or -errno. */
int fd_read_all(int fd, struct buf *out);

/* Appends the whole file at path to out: 0 (a missing file reads as empty) or -errno. */
int file_read_all(const char *path, struct buf *out);

/* Replaces dir/name with data durably: writes dir/name.new, syncs it, renames it over the old one
 * and syncs dir. 0 or -errno (the old file then stays as it was). */
int file_replace(const char *dir, const char *name, const void *data, size_t len);

#endif
