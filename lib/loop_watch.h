/*
 * The loop's own measure of its turns: the CPU time the loop's thread spends between two waits
 * for events. A turn longer than LOOP_SLOW_TURN_MS delays every client's next reply by as much
 * (a banner, a reply), so each is logged (loop.slow_turn, at most one line a second, counting the
 * others). CPU time rather than wall time: other processes on the machine do not lengthen it.
 *
 * What a client sees is wall time, which the machine lengthens too: a turn under the bound of CPU
 * whose work took LOOP_SLOW_TURN_MS or more of wall time, or whose thread waited as long for a CPU
 * (runnable, on the run queue, in the turn or on waking for it), is logged as loop.late_turn with
 * the three figures, so that a late reply can be told apart: the loop's work, or the machine's.
 */
#ifndef SLUICE_LOOP_WATCH_H
#define SLUICE_LOOP_WATCH_H

#include <uv.h>

#define LOOP_SLOW_TURN_MS 20

struct loop_watch;

/* Watches loop's turns from the next on; the watch does not keep the loop alive. */
struct loop_watch *loop_watch_start(uv_loop_t *loop);
/* Stops watching; freed once the loop has run the close. NULL is fine. */
void loop_watch_close(struct loop_watch *w);

#endif
