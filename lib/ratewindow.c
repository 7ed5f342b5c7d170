/* Sliding-log rate limiter (see ratewindow.h). */
#include "lib/ratewindow.h"

#include <stdlib.h>

#include "lib/xalloc.h"

static uint64_t widen(uint64_t period_ms, unsigned margin_percent)
{
    /* Rounded up: a margin never shrinks to nothing on a short period. */
    return period_ms + (period_ms * margin_percent + 99) / 100;
}

static int logged(const struct ratewindow *w)
{
    return w->expiry != NULL;
}

/* A token bucket takes at most burst + rate - 1 in any window of its period (lib/ratelimit.h):
 * rate count - burst + 1 keeps that at count. A burst of a little more than the events of one
 * millisecond keeps the clock's whole milliseconds from losing time to rounding. */
static void spaced_init(struct ratewindow *w, uint64_t now_ms)
{
    uint64_t burst = (w->rate.count + w->window_ms - 1) / w->window_ms + 1;
    struct ratelimit_rate spaced = {w->rate.count - burst + 1, w->window_ms};
    ratelimit_bucket_init(&w->spaced, spaced, burst, now_ms, 0);
}

void ratewindow_init(struct ratewindow *w, struct ratelimit_rate rate, unsigned margin_percent,
                     uint64_t now_ms)
{
    *w = (struct ratewindow){.rate = rate};
    w->margin_percent =
        margin_percent < RATEWINDOW_MARGIN_MAX ? margin_percent : RATEWINDOW_MARGIN_MAX;
    w->window_ms = widen(rate.period_ms, w->margin_percent);
    if (rate.count == 0)
        return;
    if (rate.count > RATEWINDOW_LOG_MAX) {
        spaced_init(w, now_ms);
        return;
    }
    w->expiry = xcalloc(rate.count, sizeof *w->expiry);
    /* The i-th of count events spaced evenly over the window that ends now leaves it at
     * now + window * (i + 1) / count. */
    for (uint64_t i = 0; i < rate.count; i++)
        w->expiry[i] = now_ms + (w->window_ms * (i + 1) + rate.count - 1) / rate.count;
}

void ratewindow_set_margin(struct ratewindow *w, unsigned margin_percent)
{
    if (margin_percent > RATEWINDOW_MARGIN_MAX)
        margin_percent = RATEWINDOW_MARGIN_MAX;
    uint64_t old = w->window_ms;
    w->margin_percent = margin_percent;
    w->window_ms = widen(w->rate.period_ms, margin_percent);
    if (w->rate.count == 0 || w->window_ms == old)
        return;
    if (!logged(w)) {
        /* The spacing changes: start the bucket over, empty, so that it cannot burst. */
        spaced_init(w, w->spaced.last_ms);
        return;
    }
    /* Each event's expiry is its time plus the window: move it by the window's change. */
    for (uint64_t i = 0; i < w->rate.count; i++) {
        uint64_t sent = w->expiry[i] > old ? w->expiry[i] - old : 0;
        w->expiry[i] = sent + w->window_ms;
    }
}

uint64_t ratewindow_wait_ms(const struct ratewindow *w, uint64_t now_ms)
{
    if (w->rate.count == 0)
        return 0;
    if (!logged(w))
        return ratelimit_bucket_wait_ms(&w->spaced, 1, now_ms);
    uint64_t leaves = w->expiry[w->oldest];
    return leaves > now_ms ? leaves - now_ms : 0;
}

int ratewindow_take(struct ratewindow *w, uint64_t now_ms)
{
    if (w->rate.count == 0)
        return 1;
    if (!logged(w))
        return ratelimit_bucket_take(&w->spaced, 1, now_ms);
    if (ratewindow_wait_ms(w, now_ms) > 0)
        return 0;
    w->expiry[w->oldest] = now_ms + w->window_ms;
    w->oldest = (w->oldest + 1) % w->rate.count;
    return 1;
}

/* n clamped to what can go at once (at least 1): a window's count, or the spacing's burst. */
static uint64_t group(const struct ratewindow *w, uint64_t n)
{
    uint64_t most = logged(w) ? w->rate.count : w->spaced.burst;
    return n == 0 ? 1 : n > most ? most : n;
}

uint64_t ratewindow_wait_n_ms(const struct ratewindow *w, uint64_t n, uint64_t now_ms)
{
    if (w->rate.count == 0)
        return 0;
    n = group(w, n);
    if (!logged(w))
        return ratelimit_bucket_wait_ms(&w->spaced, n, now_ms);
    /* The ring runs from the oldest event on: n may go once the n-th of them has left. */
    uint64_t leaves = w->expiry[(w->oldest + n - 1) % w->rate.count];
    return leaves > now_ms ? leaves - now_ms : 0;
}

int ratewindow_take_n(struct ratewindow *w, uint64_t n, uint64_t now_ms)
{
    if (w->rate.count == 0)
        return 1;
    n = group(w, n);
    if (!logged(w))
        return ratelimit_bucket_take(&w->spaced, n, now_ms);
    if (ratewindow_wait_n_ms(w, n, now_ms) > 0)
        return 0;
    for (uint64_t i = 0; i < n; i++) {
        w->expiry[w->oldest] = now_ms + w->window_ms;
        w->oldest = (w->oldest + 1) % w->rate.count;
    }
    return 1;
}

int ratewindow_idle(const struct ratewindow *w, uint64_t now_ms)
{
    if (w->rate.count == 0)
        return 1;
    if (!logged(w))
        return now_ms >= w->spaced.last_ms + w->window_ms;
    /* The newest event is the one just before the oldest in the ring. */
    size_t newest = (w->oldest + w->rate.count - 1) % w->rate.count;
    return w->expiry[newest] <= now_ms;
}

void ratewindow_free(struct ratewindow *w)
{
    free(w->expiry);
    w->expiry = NULL;
}
