/*
 * The record format of a spool file: 1 type byte, a 4-byte big-endian payload length, the payload.
 * A file is a magic record, the envelope records, body records, at most one prefix record (header
 * fields such as DKIM-Signature that go in front of the body, known only once the body is whole)
 * and one end record holding the body size and a CRC-32 of every byte before the CRC itself. The
 * encoder is used by spool.c while a message arrives; the streaming decoder reads committed files
 * back (recovery, scan, delivery) and accepts any bytes: every length is capped before anything is
 * allocated.
 */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "spool/spool.h"

#define ENVELOPE_HDR_LEN 5
#define ENVELOPE_STR_MAX 1000 /* sender, recipient, client, helo, auth user, listener, tenant...   \
                               */
#define ENVELOPE_RCPTS_MAX 10000      /* recipients of one message */
#define ENVELOPE_BODY_REC_MAX 1048576 /* payload of one body record */
#define ENVELOPE_PREFIX_MAX 65536     /* payload of the prefix record */

enum envelope_rec {
    ENVELOPE_REC_MAGIC = 'M',  /* ENVELOPE_MAGIC: format and version */
    ENVELOPE_REC_SENDER = 'S', /* once */
    ENVELOPE_REC_RCPT = 'R',   /* once per recipient */
    ENVELOPE_REC_CLIENT = 'C', /* at most once, like helo, auth user and listener */
    ENVELOPE_REC_HELO = 'H',
    ENVELOPE_REC_AUTH = 'A',
    ENVELOPE_REC_LISTENER = 'L',
    ENVELOPE_REC_RECEIVED = 'T', /* once: 8 bytes, signed unix seconds */
    ENVELOPE_REC_FLAGS = 'F',    /* once: 4 bytes */
    ENVELOPE_REC_DSN = 'D',      /* at most once: RET (1 byte), then the decoded ENVID */
    ENVELOPE_REC_RCPT_DSN = 'N', /* at most once right after an R record: that recipient's NOTIFY
                                    bits (1 byte), then its decoded ORCPT */
    ENVELOPE_REC_TENANT = 'G',   /* at most once, like the campaign; files written before tenancy
                                    have neither */
    ENVELOPE_REC_CAMPAIGN = 'K',
    ENVELOPE_REC_BODY = 'B',   /* body bytes, after every envelope record */
    ENVELOPE_REC_PREFIX = 'P', /* optional, once, after the body: bytes read before the body */
    ENVELOPE_REC_END = 'E',    /* last: 8 bytes body size, 4 bytes CRC-32 */
};

/* A message's DSN parameters (RFC 3461, values as lib/smtp_dsn.h parses them). Files written
 * before they were kept, or for messages without them, have no D or N record: all absent. */
struct envelope_dsn {
    unsigned ret;                /* SMTP_DSN_RET_*; 0: not given */
    const char *envid;           /* decoded ENVID; NULL or "": not given */
    const unsigned char *notify; /* per recipient: SMTP_DSN_NOTIFY_* bits; 0: not given */
    const char *const *orcpt;    /* per recipient: "addr-type;address" decoded; NULL: not given */
};

/* Big-endian integers, as every length and number in spool files is stored. */
static inline void envelope_put_be32(char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static inline void envelope_put_be64(char *p, uint64_t v)
{
    envelope_put_be32(p, (uint32_t)(v >> 32));
    envelope_put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t envelope_get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static inline uint64_t envelope_get_be64(const char *p)
{
    return (uint64_t)envelope_get_be32(p) << 32 | envelope_get_be32(p + 4);
}

/* Appends a record header. */
void envelope_rec_begin(struct buf *out, enum envelope_rec type, uint32_t len);
/* Rewrites the length of the record header at hdr (body records grow while appends arrive). */
void envelope_rec_set_len(char *hdr, uint32_t len);

/* Appends the magic record and the envelope records. Returns 0, or -EINVAL when env breaks a cap
 * or lacks a sender or a recipient string (the decoder would refuse the file); out is then
 * unchanged. */
int envelope_encode(const struct spool_envelope *env, struct buf *out);
/* Appends the prefix record, unless len is 0. len must be at most ENVELOPE_PREFIX_MAX. */
void envelope_prefix_append(struct buf *out, const void *data, size_t len);
/* Appends the end record. crc is envelope_crc32 of every byte before it; the record's own size
 * field is folded in before the CRC is stored. */
void envelope_end_append(struct buf *out, uint64_t body_size, uint32_t crc);

/* CRC-32 (IEEE 802.3, as zlib's crc32): start with 0, feed the bytes in order. */
uint32_t envelope_crc32(uint32_t crc, const void *data, size_t len);

/* Streaming decoder: feed a file's bytes in pieces of any size. */
struct envelope_decoder {
    struct spool_envelope env; /* the result: strings owned by the decoder; NULL when absent */
    uint64_t body_size;        /* body bytes seen so far (prefix not counted); whole once done */
    struct buf prefix;         /* the prefix record's payload; empty when there is none */
    /* private */
    struct envelope_dsn dsn; /* env.dsn points here once a D or N record is read */
    unsigned char *notify;   /* dsn.notify and dsn.orcpt, grown with rcpts */
    char **orcpt;
    unsigned prev_type; /* the record before the current one: N must follow R */
    char **rcpts;
    size_t rcpts_cap;
    char hdr[ENVELOPE_HDR_LEN];
    size_t hdr_got;
    unsigned type;
    uint32_t len, got; /* payload length of the current record and bytes of it seen */
    struct buf field;  /* payload of the current record, except body records */
    uint32_t crc;      /* of every byte consumed before the current record's payload ends */
    unsigned seen;     /* bit per single-valued record type already decoded */
    int done;
};

void envelope_decoder_init(struct envelope_decoder *d);
/* Consumes bytes. Body payload is appended to body unless body is NULL (the prefix, which comes
 * after the body in the file, is kept in d->prefix: the reader puts it in front). Returns 1 once
 * the end record is read and checked (the file is whole), 0 when more bytes are needed, or -EBADMSG
 * with a reason in err (also for any byte after the end record). After an error, only _free is
 * valid. */
int envelope_decoder_feed(struct envelope_decoder *d, const void *data, size_t len,
                          struct buf *body, struct buf *err);
void envelope_decoder_free(struct envelope_decoder *d);

#endif
