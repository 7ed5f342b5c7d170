#include "spool/spool_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* Upper-case base-32 whose ASCII order is its numeric order (Crockford's alphabet), so ids sort by
 * time in a plain directory listing. */
static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define ID_TIME_CHARS 11 /* 55 bits of microseconds: good past the year 3000 */
#define ID_SEQ_CHARS 2   /* 10 bits: ids made within one microsecond */
#define ID_RAND_CHARS 3  /* 15 random bits */
#define ID_SEQ_LIMIT (1u << (5 * ID_SEQ_CHARS))

/* Room left for "/queue/<leaf>/<id>" after the spool's own path. */
#define SPOOL_DIR_MAX (PATH_MAX - 64)

void spool_fs_started(int rc, const char *what)
{
    if (rc < 0)
        log_panic("spool: cannot start %s: %s", what, uv_strerror(rc));
}

/* Creates the directories above the spool that are missing (like mkdir -p), so a spool path such
 * as the default ./var/spool works in a fresh checkout. */
static int spool_fs_create_parents(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* fsync of directory dir: 0 or -errno. */
static int spool_fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int spool_fs_create(const char *dir, char **path, struct buf *err)
{
    static const char *const subs[] = {SPOOL_TMP, SPOOL_QUEUE, SPOOL_CORRUPT, SPOOL_STATE,
                                       SPOOL_JOURNAL};
    int rc = spool_fs_create_parents(dir);
    if (rc < 0) {
        buf_printf(err, "spool %s: cannot create its parent directories: %s", dir, strerror(-rc));
        return rc;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        buf_printf(err, "spool %s: cannot create: %s", dir, strerror(e));
        return -e;
    }
    if (strlen(dir) > SPOOL_DIR_MAX) {
        buf_printf(err, "spool %s: path too long", dir);
        return -ENAMETOOLONG;
    }
    int made = 0;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
        if (mkdir(sub, 0700) == 0) {
            made = 1;
        } else if (errno != EEXIST) {
            int e = errno;
            buf_printf(err, "spool %s: cannot create: %s", sub, strerror(e));
            return -e;
        }
    }
    /* A new directory (journal/ in a spool from before it) must outlive a crash like what goes
     * into it. */
    rc = made ? spool_fs_sync_dir(dir) : 0;
    if (rc < 0) {
        buf_printf(err, "spool %s: cannot sync: %s", dir, strerror(-rc));
        return rc;
    }
    *path = xstrdup(dir);
    return 0;
}

int spool_fs_open_dir(const char *dir, const char *sub, struct buf *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        buf_printf(err, "spool %s: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

/* splitmix64: cheap, well-mixed bits from a seed taken once from the system at open. */
static uint64_t id_random(struct spool *sp)
{
    uint64_t z = (sp->id_rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static char *id_put(char *out, uint64_t value, int chars)
{
    for (int i = chars - 1; i >= 0; i--, value >>= 5)
        out[i] = id_alphabet[value & 31];
    return out + chars;
}

void spool_fs_id_make(struct spool *sp, char *out)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    uint64_t us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
    /* (id_us, id_seq) only grows, even when the clock stalls or steps back within this process. */
    if (us > sp->id_us) {
        sp->id_us = us;
        sp->id_seq = 0;
    } else if (++sp->id_seq == ID_SEQ_LIMIT) {
        sp->id_us++;
        sp->id_seq = 0;
    }
    char *p = id_put(out, sp->id_us, ID_TIME_CHARS);
    p = id_put(p, sp->id_seq, ID_SEQ_CHARS);
    p = id_put(p, id_random(sp), ID_RAND_CHARS);
    *p = '\0';
}

int spool_fs_id_valid(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len <= SPOOL_ID_MAX && strspn(name, id_alphabet) == len;
}

/* Follows the record headers of a queue file (1 type byte, 4-byte length: envelope.h) through its
 * bytes, without checking them, to find where the end record ends: what follows is the message's
 * recipient state records. */
struct rec_walk {
    uint64_t next;              /* offset of the next header */
    char hdr[ENVELOPE_HDR_LEN]; /* its bytes so far */
    size_t got;
    uint64_t end; /* offset past the end record; 0 until it was seen */
};

/* Feeds the n bytes at p, which start at offset off of the file; bytes are fed in order. */
static void rec_walk_feed(struct rec_walk *w, uint64_t off, const char *p, size_t n)
{
    while (w->end == 0 && w->next + w->got >= off && w->next + w->got < off + n) {
        uint64_t at = w->next + w->got;
        size_t take = ENVELOPE_HDR_LEN - w->got;
        if (take > off + n - at)
            take = (size_t)(off + n - at);
        memcpy(w->hdr + w->got, p + (at - off), take);
        w->got += take;
        if (w->got < ENVELOPE_HDR_LEN)
            return;
        uint64_t past = w->next + ENVELOPE_HDR_LEN + envelope_get_be32(w->hdr + 1);
        if ((unsigned char)w->hdr[0] == ENVELOPE_REC_END)
            w->end = past;
        w->next = past;
        w->got = 0;
    }
}

uint64_t spool_fs_end_of(const void *data, size_t len)
{
    struct rec_walk walk = {0};
    rec_walk_feed(&walk, 0, data, len);
    return walk.end <= len ? walk.end : 0;
}

int spool_fs_read(int dirfd, const char *name, struct envelope_decoder *dec, struct buf *body,
                  struct buf *err)
{
    return spool_fs_read_tail(dirfd, name, dec, body, NULL, NULL, err);
}

int spool_fs_read_tail(int dirfd, const char *name, struct envelope_decoder *dec, struct buf *body,
                       struct buf *tail, uint64_t *tail_at, struct buf *err)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP) {
            buf_printf(err, "%s: a symbolic link", name);
            return -EBADMSG;
        }
        buf_printf(err, "%s: %s", name, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        buf_printf(err, "%s: not a regular file", name);
        close(fd);
        return -EBADMSG;
    }

    envelope_decoder_init(dec);
    size_t had = body != NULL ? body->len : 0;
    struct buf why = BUF_INIT;
    char chunk[64 * 1024];
    struct rec_walk walk = {0};
    uint64_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            buf_printf(&why, "%s", strerror(errno));
            break;
        }
        if (n == 0) {
            if (rc == 0)
                buf_printf(&why, "truncated: no end record");
            rc = rc == 1 ? 0 : -EBADMSG;
            break;
        }
        rec_walk_feed(&walk, off, chunk, (size_t)n);
        /* The decoder gets the message's records; the state records after them go to tail. */
        size_t mine = (size_t)n;
        if (walk.end != 0 && walk.end < off + (uint64_t)n)
            mine = walk.end > off ? (size_t)(walk.end - off) : 0;
        if (mine > 0 && rc == 0)
            rc = envelope_decoder_feed(dec, chunk, mine, body, &why);
        if (rc < 0)
            break;
        if (tail != NULL && mine < (size_t)n)
            buf_append(tail, chunk + mine, (size_t)n - mine);
        off += (uint64_t)n;
    }
    close(fd);
    if (tail_at != NULL)
        *tail_at = walk.end;
    if (rc < 0) {
        buf_printf(err, "%s: %.*s", name, (int)why.len, why.data);
        envelope_decoder_free(dec);
    } else if (body != NULL && dec->prefix.len > 0) {
        /* The prefix was written last but is read first. */
        size_t plen = dec->prefix.len;
        buf_reserve(body, plen);
        memmove(body->data + had + plen, body->data + had, body->len - had);
        memcpy(body->data + had, dec->prefix.data, plen);
        body->len += plen;
    }
    buf_free(&why);
    return rc;
}

int spool_fs_load(int queue_fd, int state_fd, const char *id, const char *name,
                  struct spool_loaded *l, struct buf *body, struct buf *err)
{
    struct buf why = BUF_INIT, tail = BUF_INIT;
    int rc = spool_fs_read_tail(queue_fd, name, &l->dec, body, &tail, &l->state_at, &why);
    if (rc < 0)
        buf_printf(err, "%s/%.*s", SPOOL_QUEUE, (int)why.len, why.data);
    buf_free(&why);
    if (rc < 0) {
        buf_free(&tail);
        return rc;
    }
    rc = spool_state_read(state_fd, name, l->dec.env.nrcpts, &l->state, err);
    l->state_in_queue = rc == 0;
    if (rc == 0)
        spool_state_feed(&l->state, tail.data, tail.len);
    else
        l->state_at = 0;
    buf_free(&tail);
    if (rc < 0) {
        envelope_decoder_free(&l->dec);
        return rc;
    }
    l->entry =
        (struct spool_entry){id, &l->dec.env, l->dec.body_size + l->dec.prefix.len, l->state.rcpts};
    return 0;
}

int spool_fs_tail(int fd, struct buf *tail, uint64_t *tail_at)
{
    struct rec_walk walk = {0};
    char chunk[16 * 1024];
    /* Mostly one read: the records of a small message. A body record is skipped, not read. */
    while (walk.end == 0) {
        ssize_t n = pread(fd, chunk, sizeof chunk, (off_t)(walk.next + walk.got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EBADMSG; /* no end record */
        rec_walk_feed(&walk, walk.next + walk.got, chunk, (size_t)n);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (walk.end > (uint64_t)st.st_size)
        return -EBADMSG; /* the end record is cut short */
    if (lseek(fd, (off_t)walk.end, SEEK_SET) < 0)
        return -errno;
    *tail_at = walk.end;
    return fd_read_all(fd, tail);
}

void spool_fs_loaded_free(struct spool_loaded *l)
{
    spool_state_free(&l->state);
    envelope_decoder_free(&l->dec);
}

int spool_id_issued_at(const char *id, uint64_t *us)
{
    if (strlen(id) != ID_TIME_CHARS + ID_SEQ_CHARS + ID_RAND_CHARS || !spool_fs_id_valid(id))
        return -EINVAL;
    uint64_t value = 0;
    for (int i = 0; i < ID_TIME_CHARS; i++)
        value = value << 5 | (uint64_t)(strchr(id_alphabet, id[i]) - id_alphabet);
    *us = value;
    return 0;
}

/* The modification time that marks the queue file of id as holding no recipient states. */
static int unappended_time(const char *id, struct timespec *ts)
{
    uint64_t us;
    if (spool_id_issued_at(id, &us) < 0)
        return -EINVAL;
    ts->tv_sec = (time_t)(us / 1000000);
    ts->tv_nsec = (long)(us % 1000000) * 1000;
    return 0;
}

void spool_fs_mark_unappended(int fd, const char *id)
{
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}};
    if (unappended_time(id, &times[1]) == 0)
        (void)futimens(fd, times);
}

int spool_fs_unappended(const struct stat *st, const char *id)
{
    struct timespec mark;
    return unappended_time(id, &mark) == 0 && st->st_mtim.tv_sec == mark.tv_sec &&
           st->st_mtim.tv_nsec == mark.tv_nsec;
}
