#include "spool/spool_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "spool/envelope.h"

/* Offsets in a record. */
#define REC_LEN 0
#define REC_RCPT 4
#define REC_STATUS 8
#define REC_ATTEMPTS 9
#define REC_NEXT 13
#define REC_REPLY 21

/* The status byte of a record that only says how many delay DSNs a recipient got (its attempts
 * field holds the count); a reader from before such records skips it as a status it does not
 * know. */
#define REC_DELAY_WARNED 0x40
/* The status byte of a record that says whether a success notice is owed (its attempts field holds
 * the enum spool_notice, its reply text the notice's queue id); skipped by older readers alike. */
#define REC_NOTICE 0x41

/* Bytes of s to keep: at most max, not splitting a UTF-8 sequence. */
static size_t text_cut(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    if (len <= max)
        return len;
    len = max;
    while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
        len--;
    return len;
}

/* Copies len bytes of s to out, control characters (NUL cannot occur) made spaces. */
static void text_put(char *out, const char *s, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        out[k] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
}

/* Appends one record for u, with `status` as its status byte. */
static void rec_encode(const struct spool_rcpt_update *u, unsigned char status, struct buf *out)
{
    const char *reply = u->reply != NULL ? u->reply : "";
    const char *mta = u->remote_mta != NULL ? u->remote_mta : "";
    size_t reply_len = text_cut(reply, SPOOL_REPLY_MAX);
    size_t mta_len = text_cut(mta, SPOOL_REMOTE_MTA_MAX);
    size_t payload = SPOOL_STATE_FIXED + reply_len + (mta_len > 0 ? 1 + mta_len : 0);
    char *rec = buf_reserve(out, 4 + payload + 4);
    envelope_put_be32(rec + REC_LEN, (uint32_t)payload);
    envelope_put_be32(rec + REC_RCPT, (uint32_t)u->rcpt);
    rec[REC_STATUS] = (char)status;
    envelope_put_be32(rec + REC_ATTEMPTS, u->attempts);
    envelope_put_be64(rec + REC_NEXT, (uint64_t)u->next_attempt);
    text_put(rec + REC_REPLY, reply, reply_len);
    if (mta_len > 0) {
        rec[REC_REPLY + reply_len] = '\0';
        text_put(rec + REC_REPLY + reply_len + 1, mta, mta_len);
    }
    envelope_put_be32(rec + 4 + payload, envelope_crc32(0, rec, 4 + payload));
    out->len += 4 + payload + 4;
}

void spool_state_encode(const struct spool_rcpt_update *updates, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (updates[i].notice_write) {
            struct spool_rcpt_update d = {.rcpt = updates[i].rcpt,
                                          .attempts = updates[i].notice,
                                          .reply = updates[i].notice_dsn};
            rec_encode(&d, REC_NOTICE, out);
            if (updates[i].notice_only)
                continue;
        }
        rec_encode(&updates[i], (unsigned char)updates[i].status, out);
        if (updates[i].delay_warned > 0) {
            struct spool_rcpt_update d = {.rcpt = updates[i].rcpt,
                                          .attempts = updates[i].delay_warned};
            rec_encode(&d, REC_DELAY_WARNED, out);
        }
    }
}

void spool_state_init(struct spool_state *st, size_t nrcpts)
{
    memset(st, 0, sizeof *st);
    st->nrcpts = nrcpts;
    st->rcpts = xcalloc(nrcpts ? nrcpts : 1, sizeof *st->rcpts);
    st->replies = xcalloc(nrcpts ? nrcpts : 1, sizeof *st->replies);
    st->remote_mtas = xcalloc(nrcpts ? nrcpts : 1, sizeof *st->remote_mtas);
    st->notice_dsns = xcalloc(nrcpts ? nrcpts : 1, sizeof *st->notice_dsns);
    for (size_t i = 0; i < nrcpts; i++) {
        st->rcpts[i].reply = "";
        st->rcpts[i].remote_mta = "";
        st->rcpts[i].notice_dsn = "";
    }
}

void spool_state_free(struct spool_state *st)
{
    for (size_t i = 0; i < st->nrcpts; i++) {
        free(st->replies[i]);
        free(st->remote_mtas[i]);
        free(st->notice_dsns[i]);
    }
    free(st->replies);
    free(st->remote_mtas);
    free(st->notice_dsns);
    st->notice_dsns = NULL;
    free(st->rcpts);
    st->rcpts = NULL;
    st->replies = NULL;
    st->remote_mtas = NULL;
    st->nrcpts = 0;
}

static int text_printable(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 0;
    return 1;
}

/* Applies the whole record in st->rec. A record that is intact (its CRC matches) but names a
 * recipient or status this reader does not know is skipped, not taken for a torn tail. */
static void rec_apply(struct spool_state *st, size_t payload)
{
    uint32_t rcpt = envelope_get_be32(st->rec + REC_RCPT);
    unsigned status = (unsigned char)st->rec[REC_STATUS];
    const char *reply = st->rec + REC_REPLY;
    size_t text_len = payload - SPOOL_STATE_FIXED;
    const char *nul = memchr(reply, '\0', text_len);
    size_t reply_len = nul != NULL ? (size_t)(nul - reply) : text_len;
    const char *mta = nul != NULL ? nul + 1 : "";
    size_t mta_len = nul != NULL ? text_len - reply_len - 1 : 0;
    if (rcpt < ENVELOPE_RCPTS_MAX && rcpt >= st->rcpt_end)
        st->rcpt_end = rcpt + 1;
    if (rcpt < st->nrcpts && status == REC_DELAY_WARNED) {
        st->rcpts[rcpt].delay_warned = envelope_get_be32(st->rec + REC_ATTEMPTS);
        return;
    }
    if (rcpt < st->nrcpts && status == REC_NOTICE) {
        uint32_t notice = envelope_get_be32(st->rec + REC_ATTEMPTS);
        if (notice > SPOOL_NOTICE_SPOOLING || reply_len > SPOOL_ID_MAX ||
            !text_printable(reply, reply_len))
            return;
        struct spool_rcpt_state *r = &st->rcpts[rcpt];
        r->notice = (enum spool_notice)notice;
        free(st->notice_dsns[rcpt]);
        st->notice_dsns[rcpt] = reply_len > 0 ? xstrndup(reply, reply_len) : NULL;
        r->notice_dsn = st->notice_dsns[rcpt] != NULL ? st->notice_dsns[rcpt] : "";
        return;
    }
    if (rcpt >= st->nrcpts || status > SPOOL_RCPT_BOUNCED || reply_len > SPOOL_REPLY_MAX ||
        mta_len > SPOOL_REMOTE_MTA_MAX || !text_printable(reply, reply_len) ||
        !text_printable(mta, mta_len))
        return;
    struct spool_rcpt_state *r = &st->rcpts[rcpt];
    r->status = (enum spool_rcpt_status)status;
    r->attempts = envelope_get_be32(st->rec + REC_ATTEMPTS);
    r->next_attempt = (int64_t)envelope_get_be64(st->rec + REC_NEXT);
    free(st->replies[rcpt]);
    st->replies[rcpt] = reply_len > 0 ? xstrndup(reply, reply_len) : NULL;
    r->reply = st->replies[rcpt] != NULL ? st->replies[rcpt] : "";
    free(st->remote_mtas[rcpt]);
    st->remote_mtas[rcpt] = mta_len > 0 ? xstrndup(mta, mta_len) : NULL;
    r->remote_mta = st->remote_mtas[rcpt] != NULL ? st->remote_mtas[rcpt] : "";
}

void spool_state_feed(struct spool_state *st, const void *data, size_t len)
{
    const char *p = data;
    st->fed_len += len;
    while (len > 0 && !st->broken) {
        /* Until the length is known, take only it: it is checked before anything else. */
        size_t want = 4;
        if (st->got >= 4) {
            uint32_t payload = envelope_get_be32(st->rec + REC_LEN);
            if (payload < SPOOL_STATE_FIXED || payload > SPOOL_STATE_PAYLOAD_MAX) {
                st->broken = 1;
                break;
            }
            want = 4 + payload + 4;
        }
        size_t take = want - st->got < len ? want - st->got : len;
        memcpy(st->rec + st->got, p, take);
        st->got += take;
        p += take, len -= take;
        if (st->got < want || want == 4)
            continue;
        size_t payload = want - 8;
        if (envelope_get_be32(st->rec + 4 + payload) != envelope_crc32(0, st->rec, 4 + payload)) {
            st->broken = 1;
            break;
        }
        rec_apply(st, payload);
        st->valid_len += want;
        st->got = 0;
    }
    if (st->got >= 4 && !st->broken) {
        uint32_t payload = envelope_get_be32(st->rec + REC_LEN);
        st->broken = payload < SPOOL_STATE_FIXED || payload > SPOOL_STATE_PAYLOAD_MAX;
    }
}

int spool_state_all_final(const struct spool_state *st)
{
    for (size_t i = 0; i < st->nrcpts; i++)
        if ((st->rcpts[i].status != SPOOL_RCPT_DELIVERED &&
             st->rcpts[i].status != SPOOL_RCPT_BOUNCED) ||
            (st->rcpts[i].status == SPOOL_RCPT_DELIVERED &&
             st->rcpts[i].notice != SPOOL_NOTICE_NONE))
            return 0;
    return 1;
}

int spool_state_read(int dirfd, const char *name, size_t nrcpts, struct spool_state *st,
                     struct buf *err)
{
    spool_state_init(st, nrcpts);
    if (dirfd < 0)
        return 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 0;
    int rc = 1;
    struct stat sb;
    if (fd < 0 && errno == ELOOP) {
        rc = -EBADMSG; /* a symbolic link */
    } else if (fd < 0 || fstat(fd, &sb) < 0) {
        rc = -errno;
    } else if (!S_ISREG(sb.st_mode)) {
        rc = -EBADMSG;
    } else {
        char chunk[16 * 1024];
        for (;;) {
            ssize_t n = read(fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = n < 0 ? -errno : 1;
                break;
            }
            spool_state_feed(st, chunk, (size_t)n);
        }
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0) {
        buf_printf(err, "%s/%s: %s", SPOOL_STATE, name,
                   rc == -EBADMSG ? "not a regular file" : strerror(-rc));
        spool_state_free(st);
    }
    return rc;
}
