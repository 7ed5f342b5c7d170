/*
 * The recipient states of a committed message: append-only records, the last one of a recipient
 * wins, appended to its queue file after the end record (so a message is one file), or, for a
 * message queued by an earlier version, to its state file <spool>/state/<leaf>/<id>, which then
 * holds them all and is used as long as it exists. Each record is a 4-byte big-endian payload
 * length, the payload and a 4-byte big-endian CRC-32 of length and payload. The payload is the
 * recipient index (4 bytes), the status (1), attempts (4), next attempt (8, signed unix seconds)
 * and the reply text (at most SPOOL_REPLY_MAX bytes), then, when a remote host gave the reply, a
 * NUL and the host's name (at most SPOOL_REMOTE_MTA_MAX bytes). Text never holds a NUL, so records
 * written before the remote MTA was kept read the same. A crash mid-append leaves a torn last
 * record: the decoder stops at the first record that breaks a cap or its CRC and ignores everything
 * after it, and recovery cuts the file back to its valid records so that later appends are read
 * again. Where a message's records go and are read from is decided in spool_ops.c, spool_fs.c and
 * spool_replay.c alike: the state file when there is one, else the queue file.
 */
#ifndef SLUICE_SPOOL_STATE_H
#define SLUICE_SPOOL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "spool/spool.h"

#define SPOOL_STATE "state" /* the state files' directory under the spool */

#define SPOOL_STATE_FIXED 17 /* payload bytes before the reply */
#define SPOOL_STATE_PAYLOAD_MAX (SPOOL_STATE_FIXED + SPOOL_REPLY_MAX + 1 + SPOOL_REMOTE_MTA_MAX)
#define SPOOL_STATE_REC_MAX (4 + SPOOL_STATE_PAYLOAD_MAX + 4)

/* Appends one record per update. Replies and remote MTAs are cut to their caps (at a UTF-8
 * character boundary) and control characters become spaces, so each is one printable line. */
void spool_state_encode(const struct spool_rcpt_update *updates, size_t n, struct buf *out);

/* Streaming decoder: feed a state file's bytes in pieces of any size. */
struct spool_state {
    size_t nrcpts;
    struct spool_rcpt_state *rcpts; /* nrcpts entries, PENDING until a record says otherwise */
    uint64_t valid_len;             /* bytes of whole, valid records from the start of the file */
    uint64_t fed_len;               /* bytes fed */
    size_t rcpt_end; /* 1 + the largest recipient index a whole record names, even one beyond
                        nrcpts (so a reader that does not know nrcpts learns how many to ask) */
    /* private */
    char **replies;     /* owned copies behind rcpts[i].reply, NULL for "" */
    char **remote_mtas; /* the same for rcpts[i].remote_mta */
    char **notice_dsns; /* the same for rcpts[i].notice_dsn */
    char rec[SPOOL_STATE_REC_MAX];
    size_t got;
    int broken; /* a record failed its checks: the rest is ignored */
};

void spool_state_init(struct spool_state *st, size_t nrcpts);
void spool_state_feed(struct spool_state *st, const void *data, size_t len);
void spool_state_free(struct spool_state *st);
/* 1 when every recipient is DELIVERED (with no success notice owed) or BOUNCED: the message has
 * nothing left to do. */
int spool_state_all_final(const struct spool_state *st);

/* Reads the state file `name` (a spool_layout_name) of directory dirfd into st (initialised for
 * nrcpts recipients). Returns 1 when the file was read, 0 when there is none (or dirfd < 0: a
 * spool from before state files): st then says every recipient is pending, for the caller to feed
 * the queue file's tail; or -errno with a reason in err, st then being freed. */
int spool_state_read(int dirfd, const char *name, size_t nrcpts, struct spool_state *st,
                     struct buf *err);

#endif
