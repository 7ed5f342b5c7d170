#include "lib/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int fd_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fd_read_all(int fd, struct buf *out)
{
    for (;;) {
        char *p = buf_reserve(out, 64 * 1024);
        ssize_t n = read(fd, p, 64 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        out->len += (size_t)n;
    }
}

int file_read_all(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = fd_read_all(fd, out);
    close(fd);
    return rc;
}

int file_replace(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[4096], path[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s.new", dir, name) >= sizeof tmp)
        return -ENAMETOOLONG;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = fd_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    int dfd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            rc = -errno;
        close(dfd);
    }
    return rc;
}
