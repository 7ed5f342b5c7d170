/*
 * Small blocking file-descriptor helpers for code that runs off the loop (thread pool, commands).
 */
#ifndef SLUICE_FDIO_H
#define SLUICE_FDIO_H

#include <stddef.h>

/* Writes all of data, retrying on EINTR and after partial writes: 0 or -errno. A short write is
 * only followed by another when the first was cut short (a full disk, a file size limit), which
 * then reports why; a write of 0 bytes is -EIO. */
int fd_write_all(int fd, const void *data, size_t len);

#endif
