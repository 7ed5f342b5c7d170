#include "spool/envelope.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

/* Payload of the magic record: a new layout gets a new version here, never a silent change. */
#define ENVELOPE_MAGIC "sluice-spool/1"
#define ENVELOPE_END_LEN 12 /* body size (8) + CRC-32 (4) */

/* ---- CRC-32, slicing by 8: the loop thread checksums every body byte ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t envelope_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    pthread_once(&crc_once, crc_table_init);
    crc = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    }
    while (len-- > 0)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- encoding ---- */

void envelope_rec_begin(struct buf *out, enum envelope_rec type, uint32_t len)
{
    char *hdr = buf_reserve(out, ENVELOPE_HDR_LEN);
    hdr[0] = (char)type;
    envelope_put_be32(hdr + 1, len);
    out->len += ENVELOPE_HDR_LEN;
}

void envelope_rec_set_len(char *hdr, uint32_t len)
{
    envelope_put_be32(hdr + 1, len);
}

static void rec_append(struct buf *out, enum envelope_rec type, const void *data, size_t len)
{
    envelope_rec_begin(out, type, (uint32_t)len);
    buf_append(out, data, len);
}

static void rec_str(struct buf *out, enum envelope_rec type, const char *s)
{
    if (s != NULL)
        rec_append(out, type, s, strlen(s));
}

static int str_fits(const char *s)
{
    return s == NULL || strnlen(s, ENVELOPE_STR_MAX + 1) <= ENVELOPE_STR_MAX;
}

/* A one-byte value and a string as one record, when either is there. */
static void rec_byte_str(struct buf *out, enum envelope_rec type, unsigned byte, const char *s)
{
    if (byte == 0 && (s == NULL || s[0] == '\0'))
        return;
    size_t len = s != NULL ? strlen(s) : 0;
    envelope_rec_begin(out, type, (uint32_t)(1 + len));
    char b = (char)byte;
    buf_append(out, &b, 1);
    buf_append(out, s, len);
}

static void msg_dsn_append(struct buf *out, const struct envelope_dsn *dsn)
{
    if (dsn != NULL)
        rec_byte_str(out, ENVELOPE_REC_DSN, dsn->ret, dsn->envid);
}

static void rcpt_dsn_append(struct buf *out, const struct envelope_dsn *dsn, size_t i)
{
    if (dsn != NULL)
        rec_byte_str(out, ENVELOPE_REC_RCPT_DSN, dsn->notify != NULL ? dsn->notify[i] : 0,
                     dsn->orcpt != NULL ? dsn->orcpt[i] : NULL);
}

int envelope_encode(const struct spool_envelope *env, struct buf *out)
{
    if (env->sender == NULL || env->nrcpts > ENVELOPE_RCPTS_MAX || !str_fits(env->sender) ||
        !str_fits(env->client_addr) || !str_fits(env->helo) || !str_fits(env->auth_user) ||
        !str_fits(env->listener) || !str_fits(env->tenant) || !str_fits(env->campaign))
        return -EINVAL;
    for (size_t i = 0; i < env->nrcpts; i++)
        if (env->rcpts[i] == NULL || !str_fits(env->rcpts[i]) ||
            (env->dsn != NULL && env->dsn->orcpt != NULL && !str_fits(env->dsn->orcpt[i])))
            return -EINVAL;
    if (env->dsn != NULL && (env->dsn->ret > 255 || !str_fits(env->dsn->envid)))
        return -EINVAL;

    rec_str(out, ENVELOPE_REC_MAGIC, ENVELOPE_MAGIC);
    rec_str(out, ENVELOPE_REC_SENDER, env->sender);
    for (size_t i = 0; i < env->nrcpts; i++) {
        rec_str(out, ENVELOPE_REC_RCPT, env->rcpts[i]);
        rcpt_dsn_append(out, env->dsn, i);
    }
    msg_dsn_append(out, env->dsn);
    rec_str(out, ENVELOPE_REC_CLIENT, env->client_addr);
    rec_str(out, ENVELOPE_REC_HELO, env->helo);
    rec_str(out, ENVELOPE_REC_AUTH, env->auth_user);
    rec_str(out, ENVELOPE_REC_LISTENER, env->listener);
    rec_str(out, ENVELOPE_REC_TENANT, env->tenant);
    rec_str(out, ENVELOPE_REC_CAMPAIGN, env->campaign);
    char num[8];
    envelope_put_be64(num, (uint64_t)env->received_at);
    rec_append(out, ENVELOPE_REC_RECEIVED, num, 8);
    envelope_put_be32(num, env->flags);
    rec_append(out, ENVELOPE_REC_FLAGS, num, 4);
    return 0;
}

void envelope_prefix_append(struct buf *out, const void *data, size_t len)
{
    if (len > 0)
        rec_append(out, ENVELOPE_REC_PREFIX, data, len);
}

void envelope_end_append(struct buf *out, uint64_t body_size, uint32_t crc)
{
    char *rec = buf_reserve(out, ENVELOPE_HDR_LEN + ENVELOPE_END_LEN);
    rec[0] = ENVELOPE_REC_END;
    envelope_put_be32(rec + 1, ENVELOPE_END_LEN);
    envelope_put_be64(rec + ENVELOPE_HDR_LEN, body_size);
    crc = envelope_crc32(crc, rec, ENVELOPE_HDR_LEN + 8);
    envelope_put_be32(rec + ENVELOPE_HDR_LEN + 8, crc);
    out->len += ENVELOPE_HDR_LEN + ENVELOPE_END_LEN;
}

/* ---- decoding ---- */

/* Record types that may appear once, as bits of decoder->seen. */
enum {
    SEEN_MAGIC = 1 << 0,
    SEEN_SENDER = 1 << 1,
    SEEN_CLIENT = 1 << 2,
    SEEN_HELO = 1 << 3,
    SEEN_AUTH = 1 << 4,
    SEEN_LISTENER = 1 << 5,
    SEEN_RECEIVED = 1 << 6,
    SEEN_FLAGS = 1 << 7,
    SEEN_BODY = 1 << 8, /* not single: marks that the envelope is over */
    SEEN_PREFIX = 1 << 9,
    SEEN_DSN = 1 << 10,
    SEEN_TENANT = 1 << 11,
    SEEN_CAMPAIGN = 1 << 12,
};
#define SEEN_REQUIRED (SEEN_MAGIC | SEEN_SENDER | SEEN_RECEIVED | SEEN_FLAGS)

void envelope_decoder_init(struct envelope_decoder *d)
{
    memset(d, 0, sizeof *d);
}

void envelope_decoder_free(struct envelope_decoder *d)
{
    free((char *)d->env.sender);
    for (size_t i = 0; i < d->env.nrcpts; i++) {
        free(d->rcpts[i]);
        free(d->orcpt[i]);
    }
    free(d->rcpts);
    free(d->orcpt);
    free(d->notify);
    free((char *)d->dsn.envid);
    free((char *)d->env.client_addr);
    free((char *)d->env.helo);
    free((char *)d->env.auth_user);
    free((char *)d->env.listener);
    free((char *)d->env.tenant);
    free((char *)d->env.campaign);
    buf_free(&d->field);
    buf_free(&d->prefix);
    memset(d, 0, sizeof *d);
}

static int bad(struct buf *err, const char *why)
{
    buf_printf(err, "%s", why);
    return -EBADMSG;
}

/* Checks a record header before any of its payload is accepted. */
static int rec_start(struct envelope_decoder *d, struct buf *err)
{
    unsigned once = 0;
    uint32_t min = 0, max = ENVELOPE_STR_MAX;
    if (!(d->seen & SEEN_MAGIC) && d->type != ENVELOPE_REC_MAGIC)
        return bad(err, "no magic record: not a spool file");
    switch (d->type) {
    case ENVELOPE_REC_MAGIC:
        once = SEEN_MAGIC, min = max = sizeof ENVELOPE_MAGIC - 1;
        break;
    case ENVELOPE_REC_SENDER:
        once = SEEN_SENDER;
        break;
    case ENVELOPE_REC_RCPT:
        if (d->env.nrcpts >= ENVELOPE_RCPTS_MAX)
            return bad(err, "too many recipients");
        break;
    case ENVELOPE_REC_CLIENT:
        once = SEEN_CLIENT;
        break;
    case ENVELOPE_REC_HELO:
        once = SEEN_HELO;
        break;
    case ENVELOPE_REC_AUTH:
        once = SEEN_AUTH;
        break;
    case ENVELOPE_REC_LISTENER:
        once = SEEN_LISTENER;
        break;
    case ENVELOPE_REC_TENANT:
        once = SEEN_TENANT;
        break;
    case ENVELOPE_REC_CAMPAIGN:
        once = SEEN_CAMPAIGN;
        break;
    case ENVELOPE_REC_RECEIVED:
        once = SEEN_RECEIVED, min = max = 8;
        break;
    case ENVELOPE_REC_FLAGS:
        once = SEEN_FLAGS, min = max = 4;
        break;
    case ENVELOPE_REC_DSN:
        once = SEEN_DSN, min = 1, max = 1 + ENVELOPE_STR_MAX;
        break;
    case ENVELOPE_REC_RCPT_DSN:
        if (d->prev_type != ENVELOPE_REC_RCPT)
            return bad(err, "recipient DSN record not right after its recipient");
        min = 1, max = 1 + ENVELOPE_STR_MAX;
        break;
    case ENVELOPE_REC_BODY:
    case ENVELOPE_REC_PREFIX:
    case ENVELOPE_REC_END:
        if ((d->seen & SEEN_REQUIRED) != SEEN_REQUIRED)
            return bad(err, "envelope incomplete");
        if (d->type == ENVELOPE_REC_BODY && (d->seen & SEEN_PREFIX))
            return bad(err, "body record after the prefix");
        d->seen |= SEEN_BODY;
        if (d->type == ENVELOPE_REC_BODY)
            max = ENVELOPE_BODY_REC_MAX;
        else if (d->type == ENVELOPE_REC_PREFIX)
            once = SEEN_PREFIX, min = 1, max = ENVELOPE_PREFIX_MAX;
        else
            min = max = ENVELOPE_END_LEN;
        break;
    default:
        return bad(err, "unknown record type");
    }
    if (d->len < min || d->len > max)
        return bad(err, "record length out of bounds");
    if (d->seen & once)
        return bad(err, "record repeated");
    if ((d->seen & SEEN_BODY) && d->type != ENVELOPE_REC_BODY && d->type != ENVELOPE_REC_PREFIX &&
        d->type != ENVELOPE_REC_END)
        return bad(err, "envelope record after the body");
    d->seen |= once;
    return 0;
}

static int str_take(struct envelope_decoder *d, const char **dst, struct buf *err)
{
    if (d->field.len > 0 && memchr(d->field.data, '\0', d->field.len) != NULL)
        return bad(err, "NUL byte in an envelope string");
    *dst = xstrndup(d->field.len ? d->field.data : "", d->field.len);
    return 0;
}

/* A D or N record: its byte, then its string (an empty one stays NULL). */
static int dsn_take(struct envelope_decoder *d, struct buf *err)
{
    unsigned byte = (unsigned char)d->field.data[0];
    const char *s = NULL;
    if (d->field.len > 1) {
        if (memchr(d->field.data + 1, '\0', d->field.len - 1) != NULL)
            return bad(err, "NUL byte in an envelope string");
        s = xstrndup(d->field.data + 1, d->field.len - 1);
    }
    if (d->type == ENVELOPE_REC_DSN) {
        d->dsn.ret = byte;
        d->dsn.envid = s;
    } else {
        d->notify[d->env.nrcpts - 1] = (unsigned char)byte;
        d->orcpt[d->env.nrcpts - 1] = (char *)s;
    }
    d->env.dsn = &d->dsn;
    return 0;
}

/* Acts on a record whose payload is complete (in d->field unless it is a body record). */
static int rec_finish(struct envelope_decoder *d, struct buf *err)
{
    const char *rcpt;
    switch (d->type) {
    case ENVELOPE_REC_MAGIC:
        if (memcmp(d->field.data, ENVELOPE_MAGIC, d->field.len) != 0)
            return bad(err, "unknown spool format or version");
        return 0;
    case ENVELOPE_REC_SENDER:
        return str_take(d, &d->env.sender, err);
    case ENVELOPE_REC_RCPT:
        if (str_take(d, &rcpt, err) < 0)
            return -EBADMSG;
        if (d->env.nrcpts == d->rcpts_cap) {
            d->rcpts_cap = d->rcpts_cap ? d->rcpts_cap * 2 : 4;
            d->rcpts = xrealloc(d->rcpts, d->rcpts_cap * sizeof *d->rcpts);
            d->orcpt = xrealloc(d->orcpt, d->rcpts_cap * sizeof *d->orcpt);
            d->notify = xrealloc(d->notify, d->rcpts_cap * sizeof *d->notify);
            d->env.rcpts = (const char *const *)d->rcpts;
            d->dsn.orcpt = (const char *const *)d->orcpt;
            d->dsn.notify = d->notify;
        }
        d->orcpt[d->env.nrcpts] = NULL;
        d->notify[d->env.nrcpts] = 0;
        d->rcpts[d->env.nrcpts++] = (char *)rcpt;
        return 0;
    case ENVELOPE_REC_DSN:
    case ENVELOPE_REC_RCPT_DSN:
        return dsn_take(d, err);
    case ENVELOPE_REC_CLIENT:
        return str_take(d, &d->env.client_addr, err);
    case ENVELOPE_REC_HELO:
        return str_take(d, &d->env.helo, err);
    case ENVELOPE_REC_AUTH:
        return str_take(d, &d->env.auth_user, err);
    case ENVELOPE_REC_LISTENER:
        return str_take(d, &d->env.listener, err);
    case ENVELOPE_REC_TENANT:
        return str_take(d, &d->env.tenant, err);
    case ENVELOPE_REC_CAMPAIGN:
        return str_take(d, &d->env.campaign, err);
    case ENVELOPE_REC_RECEIVED:
        d->env.received_at = (int64_t)envelope_get_be64(d->field.data);
        return 0;
    case ENVELOPE_REC_FLAGS:
        d->env.flags = envelope_get_be32(d->field.data);
        return 0;
    case ENVELOPE_REC_BODY:
        return 0;
    case ENVELOPE_REC_PREFIX:
        buf_append(&d->prefix, d->field.data, d->field.len);
        return 0;
    default: /* ENVELOPE_REC_END: the only other type rec_start lets through */
        d->crc = envelope_crc32(d->crc, d->field.data, 8);
        if (envelope_get_be32(d->field.data + 8) != d->crc)
            return bad(err, "checksum mismatch");
        if (envelope_get_be64(d->field.data) != d->body_size)
            return bad(err, "body size mismatch");
        d->done = 1;
        return 0;
    }
}

int envelope_decoder_feed(struct envelope_decoder *d, const void *data, size_t len,
                          struct buf *body, struct buf *err)
{
    const char *p = data;
    while (len > 0) {
        if (d->done)
            return bad(err, "bytes after the end record");
        size_t take;
        if (d->hdr_got < ENVELOPE_HDR_LEN) {
            take = ENVELOPE_HDR_LEN - d->hdr_got < len ? ENVELOPE_HDR_LEN - d->hdr_got : len;
            memcpy(d->hdr + d->hdr_got, p, take);
            d->crc = envelope_crc32(d->crc, p, take);
            d->hdr_got += take;
            p += take, len -= take;
            if (d->hdr_got < ENVELOPE_HDR_LEN)
                break;
            d->type = (unsigned char)d->hdr[0];
            d->len = envelope_get_be32(d->hdr + 1);
            d->got = 0;
            buf_reset(&d->field);
            if (rec_start(d, err) < 0)
                return -EBADMSG;
        } else {
            take = d->len - d->got < len ? d->len - d->got : len;
            if (d->type == ENVELOPE_REC_BODY) {
                d->crc = envelope_crc32(d->crc, p, take);
                d->body_size += take;
                if (body != NULL)
                    buf_append(body, p, take);
            } else {
                /* The end record is checksummed once complete: its last 4 bytes are the CRC. */
                if (d->type != ENVELOPE_REC_END)
                    d->crc = envelope_crc32(d->crc, p, take);
                buf_append(&d->field, p, take);
            }
            d->got += (uint32_t)take;
            p += take, len -= take;
        }
        if (d->got == d->len) {
            if (rec_finish(d, err) < 0)
                return -EBADMSG;
            d->hdr_got = 0;
            d->prev_type = d->type;
        }
    }
    return d->done;
}
