/*
 * Free space of the file system the spool is on, so that the SMTP server can refuse MAIL early
 * (452 4.3.1) rather than read a whole message it cannot store. Reading the figure never blocks:
 * it is taken with statfs on libuv's thread pool every SPOOL_SPACE_INTERVAL_MS, after every
 * SPOOL_SPACE_REFRESH_BYTES noted as written, and on request; in between, bytes noted as written
 * are taken off it. The daemon makes one for its SMTP server and frees it when it stops.
 */
#ifndef SLUICE_SPOOL_SPACE_H
#define SLUICE_SPOOL_SPACE_H

#include <stdint.h>
#include <uv.h>

#define SPOOL_SPACE_INTERVAL_MS 2000
#define SPOOL_SPACE_REFRESH_BYTES (16u * 1024 * 1024)

struct spool_space;

struct spool_space_figure {
    uint64_t available; /* octets an unprivileged writer may still use, less those written since */
    uint64_t total;     /* size of the file system, in octets */
};

/* Starts watching the file system holding dir (copied). Takes the first figure at once and
 * synchronously, so call it before the loop runs. Never fails: while statfs does, the figure is
 * unknown (spool_space_get says so) and the next refresh tries again. */
struct spool_space *spool_space_new(uv_loop_t *loop, const char *dir);
/* The latest figure: returns 0, or the negative errno of the last statfs when none is known. */
int spool_space_get(const struct spool_space *sp, struct spool_space_figure *out);
/* Notes octets about to be written into the spool. */
void spool_space_written(struct spool_space *sp, uint64_t octets);
/* Takes a fresh figure now (e.g. after a write failed with ENOSPC), unless one is being taken. */
void spool_space_refresh(struct spool_space *sp);
/* Stops watching; the memory goes once a statfs in flight has returned. NULL is fine. */
void spool_space_free(struct spool_space *sp);

#endif
