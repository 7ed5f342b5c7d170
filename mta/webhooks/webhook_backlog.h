/*
 * One webhook endpoint's backlog on disk: an append-only file of JSON lines (one event each) under
 * <spool>/webhooks/, whose header holds the read offset: the first event the endpoint has not
 * taken yet. Events are appended and synced in batches, read from the offset in batches, and the
 * offset moves on once the endpoint took a batch; a file read to its end is emptied, and one read
 * mostly through is rewritten without its head. Every function here does disk I/O and syncs: call
 * them on the thread pool only (webhooks.c does), one at a time per backlog.
 */
#ifndef SLUICE_WEBHOOK_BACKLOG_H
#define SLUICE_WEBHOOK_BACKLOG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct webhook_backlog {
    int fd;            /* -1: not open */
    char *path;        /* owned */
    uint64_t read_off; /* the first event not taken yet */
    uint64_t size;     /* the end of the file: the next event goes there */
    uint64_t unsent;   /* events in [read_off, size) */
};

/* The file's name for an endpoint: <spool>/webhooks/<hash of url>.backlog (malloc'ed). */
char *webhook_backlog_path(const char *spool, const char *url);

/* Opens the file at path (creating it and its directory), reads the offset, drops a last line cut
 * short by a crash and counts the events waiting. Returns 0 or -errno (a file that is not a
 * backlog: -EINVAL), with why in err. */
int webhook_backlog_open(struct webhook_backlog *b, const char *path, struct buf *err);
void webhook_backlog_close(struct webhook_backlog *b);

/* Appends whole lines (each ending in \n; nevents of them) and syncs them. 0 or -errno; on error
 * the file is cut back to where it was. */
int webhook_backlog_append(struct webhook_backlog *b, const char *lines, size_t len,
                           uint64_t nevents);

/* Reads up to max_events lines (and about max_bytes, at least one line) from the offset into out
 * (lines, each with its \n). *nevents gets their count; 0 or -errno. */
int webhook_backlog_read(struct webhook_backlog *b, unsigned max_events, size_t max_bytes,
                         struct buf *out, uint64_t *nevents);

/* The endpoint took len octets (nevents lines) from the offset: moves the offset on and syncs it;
 * empties or rewrites the file when that frees enough. 0 or -errno. */
int webhook_backlog_ack(struct webhook_backlog *b, uint64_t len, uint64_t nevents);

#endif
