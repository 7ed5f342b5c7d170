/*
 * A rate as a receiver counts it: at most `count` events in any window of the rate's period,
 * widened by a safety margin so that network jitter between the send and the receiver's clock
 * cannot crowd count + 1 events into one period there. A sliding log of the last `count` events
 * (an event may go when the count-th before it left the window), so a burst of `count` is allowed
 * but never a second one within the window. Rates above RATEWINDOW_LOG_MAX events per window are
 * spaced evenly instead (one event every window/count, a token bucket of one), which keeps the same
 * guarantee without a log. Pure arithmetic on a clock the caller passes in (monotonic ms, e.g.
 * uv_now()); used by mta/delivery/shaping.c; the caller owns the struct, ratewindow_free its log.
 */
#ifndef SLUICE_RATEWINDOW_H
#define SLUICE_RATEWINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "lib/ratelimit.h"

/* Largest count kept as a log (8 bytes an event); larger rates are spaced evenly. */
#define RATEWINDOW_LOG_MAX 1024u
/* Largest margin, in percent of the period. */
#define RATEWINDOW_MARGIN_MAX 100u

struct ratewindow {
    struct ratelimit_rate rate; /* as configured; count 0: unlimited */
    unsigned margin_percent;
    uint64_t window_ms;             /* rate.period_ms widened by the margin */
    uint64_t *expiry;               /* ring: when each of the last count events leaves the window */
    size_t oldest;                  /* ring index of the event that leaves first */
    struct ratelimit_bucket spaced; /* instead of the log when count > RATEWINDOW_LOG_MAX */
};

/* Sets w up at now_ms as if events had gone at the full rate, evenly spaced, right up to now: a
 * new limiter (a restart, a changed rate) ramps in at one event per window/count instead of
 * bursting on top of what was sent just before. margin_percent is clamped to
 * RATEWINDOW_MARGIN_MAX. */
void ratewindow_init(struct ratewindow *w, struct ratelimit_rate rate, unsigned margin_percent,
                     uint64_t now_ms);
/* A new margin (a reload): the events already counted stay, their window becomes the new one. */
void ratewindow_set_margin(struct ratewindow *w, unsigned margin_percent);
/* Milliseconds from now_ms until one more event may go (0: now). Changes nothing. */
uint64_t ratewindow_wait_ms(const struct ratewindow *w, uint64_t now_ms);
/* Counts an event at now_ms if one may go now: 1 (counted) or 0 (nothing changed). */
int ratewindow_take(struct ratewindow *w, uint64_t now_ms);
/* The same for n events at once (a message's recipients). n above what may go at once (the
 * rate's count; for a spaced rate its burst) counts as that much: such a group goes whole once
 * the window is clear. */
uint64_t ratewindow_wait_n_ms(const struct ratewindow *w, uint64_t n, uint64_t now_ms);
int ratewindow_take_n(struct ratewindow *w, uint64_t n, uint64_t now_ms);
/* 1 when no event counted is inside the window any more at now_ms: a new limiter in w's place
 * (which ramps in) could not then put more than count in one window. */
int ratewindow_idle(const struct ratewindow *w, uint64_t now_ms);
void ratewindow_free(struct ratewindow *w);

#endif
