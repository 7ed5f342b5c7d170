/*
 * IP warm-up: how many messages a new egress address may send to each provider today, by the
 * warm-up schedule of its egress.pools entry (struct config_warmup), and how many it has sent. A
 * destination (destination.c) asks before it hands a message to a connection from a warming
 * address and counts the message when it does, before it is sent. The counts, one per (address,
 * provider), belong to struct warmup, which the scheduler owns; they are written to
 * <spool>/warmup on the thread pool after each change and read back at start, so a restart keeps
 * them (a crash loses at most the counts of messages handed out since the last write finished).
 */
#ifndef SLUICE_WARMUP_H
#define SLUICE_WARMUP_H

#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"

#define WARMUP_FILE "warmup" /* in the spool directory */

/* ---- Schedule arithmetic (pure) ---- */

/* The day of unix_ms at offset_minutes east of UTC, as days since 1970-01-01. */
int64_t warmup_day(int64_t unix_ms, int offset_minutes);
/* Milliseconds from unix_ms until the next day begins at offset_minutes. */
uint64_t warmup_ms_to_next_day(int64_t unix_ms, int offset_minutes);
/* The schedule's day number on `today` (days since 1970-01-01): 1 on the start day (and before
 * it), 2 the day after, ... */
int64_t warmup_day_number(int64_t start_day, int64_t today);
/* Messages allowed on day number n (1-based) by per_day[0..ndays), or UINT64_MAX after its last
 * day: warm. */
uint64_t warmup_allowance(const uint64_t *per_day, size_t ndays, int64_t n);
/* The schedule entry for the destination called `provider`: its own (case-insensitive), else
 * "*", else NULL. */
const struct config_warmup_step *warmup_step_find(const struct config_warmup *w,
                                                  const char *provider);

/* ---- Counts ---- */

struct warmup;
/* One (egress address, provider)'s schedule and today's count. Owned by its struct warmup and
 * valid as long as it is. */
struct warmup_count;

/* Counts kept in the spool directory spool_dir (read back on the thread pool: until that is
 * done, no warming address sends). */
struct warmup *warmup_new(uv_loop_t *loop, const char *spool_dir);
/* Frees it once the writes in flight (and a last one for changes since) are done. */
void warmup_free(struct warmup *w);
/* The count of egress address ea at the destination called `provider`, with ea's schedule for it
 * (a reload's new schedule replaces the old; the count carries over). NULL when ea does not warm
 * up towards that provider. */
struct warmup_count *warmup_for(struct warmup *w, const struct config_egress_addr *ea,
                                const char *provider);
/* Milliseconds until c may take one more message: 0 (now, or c is NULL), until the next day when
 * today's allowance is used (logged once a day, with what happens to the mail), or a short wait
 * while the counts are still being read. */
uint64_t warmup_wait_ms(struct warmup_count *c);
/* 1 when c's allowance is used and its mail waits (overflow: wait) rather than going from the
 * pool's other addresses. */
int warmup_holds_pool(struct warmup_count *c);
/* One more message today from c's address to its provider (NULL: nothing); written to disk. */
void warmup_take(struct warmup_count *c);
/* Appends ,"warmup":{day, allowance, used, overflow} for `sluice queue list --json` (nothing for
 * NULL). */
void warmup_describe(const struct warmup_count *c, struct buf *out);
/* The same as a line of text for `sluice queue destinations`, indented by `indent` (nothing for
 * NULL). */
void warmup_explain(const struct warmup_count *c, const char *indent, struct buf *out);

#endif
