#include "mta/webhooks/webhook_backlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/xalloc.h"

/* The header: a magic line whose last field is the read offset in fixed-width hex, rewritten in
 * place (16 octets: within one disk sector, so it is written whole or not at all). */
#define MAGIC "sluice-webhook-backlog 1 "
#define MAGIC_LEN (sizeof MAGIC - 1)
#define OFFSET_DIGITS 16
#define HEADER_LEN (MAGIC_LEN + OFFSET_DIGITS + 1)
#define CHUNK (64 * 1024)
/* A file whose taken head is larger than this and than its rest is rewritten without the head. */
#define COMPACT_MIN (1024 * 1024)

char *webhook_backlog_path(const char *spool, const char *url)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: a stable name, not a secret */
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/webhooks/%016" PRIx64 ".backlog", spool, h);
    return path.data;
}

static int sync_dir_of(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    int fd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void header_format(char out[HEADER_LEN + 1], uint64_t offset)
{
    snprintf(out, HEADER_LEN + 1, "%s%016" PRIx64 "\n", MAGIC, offset);
}

static int offset_write(struct webhook_backlog *b, uint64_t offset)
{
    char header[HEADER_LEN + 1];
    header_format(header, offset);
    if (pwrite(b->fd, header + MAGIC_LEN, OFFSET_DIGITS, MAGIC_LEN) != OFFSET_DIGITS)
        return errno ? -errno : -EIO;
    return fdatasync(b->fd) < 0 ? -errno : 0;
}

/* A new file: the header alone, synced with its directory entry. */
static int backlog_create(struct webhook_backlog *b)
{
    char header[HEADER_LEN + 1];
    header_format(header, HEADER_LEN);
    int rc = fd_write_all(b->fd, header, HEADER_LEN);
    if (rc == 0 && fdatasync(b->fd) < 0)
        rc = -errno;
    if (rc == 0)
        rc = sync_dir_of(b->path);
    b->read_off = b->size = HEADER_LEN;
    return rc;
}

/* Counts the lines from the offset, and cuts off a last line a crash left without its end. */
static int backlog_scan(struct webhook_backlog *b)
{
    char *chunk = xmalloc(CHUNK);
    uint64_t pos = b->read_off, line_end = b->read_off;
    int rc = 0;
    b->unsent = 0;
    while (pos < b->size) {
        size_t want = b->size - pos < CHUNK ? (size_t)(b->size - pos) : CHUNK;
        ssize_t got = pread(b->fd, chunk, want, (off_t)pos);
        if (got <= 0) {
            rc = got < 0 ? -errno : -EIO;
            break;
        }
        for (ssize_t i = 0; i < got; i++)
            if (chunk[i] == '\n') {
                b->unsent++;
                line_end = pos + (uint64_t)i + 1;
            }
        pos += (uint64_t)got;
    }
    free(chunk);
    if (rc == 0 && line_end < b->size) {
        if (ftruncate(b->fd, (off_t)line_end) < 0)
            return -errno;
        b->size = line_end;
    }
    return rc;
}

int webhook_backlog_open(struct webhook_backlog *b, const char *path, struct buf *err)
{
    *b = (struct webhook_backlog){.fd = -1, .path = xstrdup(path)};
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    int rc = mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
    free(dir);
    if (rc == 0 && (b->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        rc = -errno;
    struct stat st;
    if (rc == 0 && fstat(b->fd, &st) < 0)
        rc = -errno;
    if (rc < 0) {
        buf_printf(err, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (st.st_size == 0) {
        rc = backlog_create(b);
    } else {
        char header[HEADER_LEN + 1] = {0};
        char *end;
        if (st.st_size < (off_t)HEADER_LEN || pread(b->fd, header, HEADER_LEN, 0) != HEADER_LEN ||
            memcmp(header, MAGIC, MAGIC_LEN) != 0 || header[HEADER_LEN - 1] != '\n') {
            buf_printf(err, "%s: not a webhook backlog (move it away)", path);
            return -EINVAL;
        }
        b->size = (uint64_t)st.st_size;
        b->read_off = strtoull(header + MAGIC_LEN, &end, 16);
        if (b->read_off < HEADER_LEN)
            b->read_off = HEADER_LEN;
        if (b->read_off > b->size) /* emptied, and the crash came before the offset was reset */
            b->read_off = b->size;
        rc = backlog_scan(b);
    }
    if (rc < 0)
        buf_printf(err, "%s: %s", path, strerror(-rc));
    return rc;
}

void webhook_backlog_close(struct webhook_backlog *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    free(b->path);
    b->path = NULL;
}

int webhook_backlog_append(struct webhook_backlog *b, const char *lines, size_t len,
                           uint64_t nevents)
{
    if (lseek(b->fd, (off_t)b->size, SEEK_SET) < 0)
        return -errno;
    int rc = fd_write_all(b->fd, lines, len);
    if (rc == 0 && fdatasync(b->fd) < 0)
        rc = -errno;
    if (rc < 0) {
        (void)ftruncate(b->fd, (off_t)b->size); /* no half line stays behind */
        return rc;
    }
    b->size += len;
    b->unsent += nevents;
    return 0;
}

int webhook_backlog_read(struct webhook_backlog *b, unsigned max_events, size_t max_bytes,
                         struct buf *out, uint64_t *nevents)
{
    uint64_t pos = b->read_off;
    size_t taken = 0; /* octets of whole lines taken */
    int full = 0;
    *nevents = 0;
    out->len = 0;
    while (!full && pos < b->size) {
        size_t want = b->size - pos < CHUNK ? (size_t)(b->size - pos) : CHUNK;
        char *dst = buf_reserve(out, want);
        ssize_t got = pread(b->fd, dst, want, (off_t)pos);
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        out->len += (size_t)got;
        pos += (uint64_t)got;
        const char *nl;
        while (!full && (nl = memchr(out->data + taken, '\n', out->len - taken)) != NULL) {
            size_t end = (size_t)(nl - out->data) + 1;
            if (taken > 0 && end > max_bytes)
                break; /* the line is read again for the next batch */
            taken = end;
            full = ++*nevents == max_events || taken >= max_bytes;
        }
        full = full || (taken > 0 && nl != NULL);
    }
    out->len = taken;
    return 0;
}

/* Rewrites the file without its taken head: the rest goes to a new file that replaces it. */
static int backlog_compact(struct webhook_backlog *b)
{
    struct buf tmp_path = BUF_INIT;
    buf_printf(&tmp_path, "%s.tmp", b->path);
    struct webhook_backlog fresh = {.path = tmp_path.data};
    int rc = 0;
    fresh.fd = open(fresh.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fresh.fd < 0) {
        rc = -errno;
        buf_free(&tmp_path);
        return rc;
    }
    char header[HEADER_LEN + 1];
    header_format(header, HEADER_LEN);
    rc = fd_write_all(fresh.fd, header, HEADER_LEN);
    char *chunk = xmalloc(CHUNK);
    for (uint64_t pos = b->read_off; rc == 0 && pos < b->size;) {
        size_t want = b->size - pos < CHUNK ? (size_t)(b->size - pos) : CHUNK;
        ssize_t got = pread(b->fd, chunk, want, (off_t)pos);
        rc = got <= 0 ? (got < 0 ? -errno : -EIO) : fd_write_all(fresh.fd, chunk, (size_t)got);
        pos += got > 0 ? (uint64_t)got : 0;
    }
    free(chunk);
    if (rc == 0 && fdatasync(fresh.fd) < 0)
        rc = -errno;
    if (rc == 0 && rename(fresh.path, b->path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = sync_dir_of(b->path);
    if (rc < 0) {
        close(fresh.fd);
        (void)unlink(fresh.path);
    } else {
        close(b->fd);
        b->fd = fresh.fd;
        b->size = HEADER_LEN + (b->size - b->read_off);
        b->read_off = HEADER_LEN;
    }
    buf_free(&tmp_path);
    return rc;
}

int webhook_backlog_ack(struct webhook_backlog *b, uint64_t len, uint64_t nevents)
{
    b->read_off += len;
    b->unsent -= nevents;
    if (b->read_off == b->size) {
        /* Emptied first: a crash before the offset is reset leaves it past the end (see open). */
        if (ftruncate(b->fd, HEADER_LEN) < 0)
            return -errno;
        b->read_off = b->size = HEADER_LEN;
        return offset_write(b, HEADER_LEN);
    }
    int rc = offset_write(b, b->read_off);
    uint64_t head = b->read_off - HEADER_LEN;
    if (rc == 0 && head > COMPACT_MIN && head > b->size - b->read_off)
        rc = backlog_compact(b);
    return rc;
}
