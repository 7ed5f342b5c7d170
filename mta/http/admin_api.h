/*
 * The admin API: the queue operations of `sluice queue` for HTTP clients, under /api/v1/queue/...
 * (docs/operate.md). Each handler calls the same scheduler function the control socket does
 * (scheduler.h), so an HTTP client and `sluice queue` get the same answer: here as JSON, with the
 * command line's words in "result". Parameters come in the query string, which is untrusted. The
 * daemon's route table calls these with its scheduler (NULL while it stops).
 */
#ifndef SLUICE_ADMIN_API_H
#define SLUICE_ADMIN_API_H

#include "mta/delivery/scheduler.h"
#include "mta/http/http_route.h"

/* GET /api/v1/queue/destinations: {"destinations":[...]} as in `queue list --json`. */
void admin_api_destinations(struct scheduler *s, const struct http_call *call,
                            struct http_answer *answer);
/* POST /api/v1/queue/suspend?destination=NAME[&seconds=N], .../resume?destination=NAME (or either
 * with tenant=T[&campaign=C]: scheduler_hold_tenant) and .../retry?id=ID|all: {"result": "..."};
 * 400 for a bad parameter, 404 for no such message or destination, 503 while the daemon stops, each
 * with {"error": "..."}. */
void admin_api_suspend(struct scheduler *s, const struct http_call *call,
                       struct http_answer *answer);
void admin_api_resume(struct scheduler *s, const struct http_call *call,
                      struct http_answer *answer);
void admin_api_retry(struct scheduler *s, const struct http_call *call, struct http_answer *answer);
/* POST /api/v1/queue/bounce?id=ID, or ?destination=D and/or tenant=T[&campaign=C]: the waiting
 * recipients fail with a DSN to the sender (scheduler_bounce_message, scheduler_bounce_selected);
 * answered as retry. */
void admin_api_bounce(struct scheduler *s, const struct http_call *call,
                      struct http_answer *answer);
/* GET /api/v1/queue/messages[?limit=N][&after=ID][&destination=D][&state=S][&tenant=T]
 * [&campaign=C]: a page of `queue list --json` (scheduler_list_stream),
 * {"messages":[...],"next":ID or null,...}, streamed as the scheduler writes it (chunked): a slow
 * client makes the walk wait, a client that leaves stops it. */
void admin_api_messages(struct scheduler *s, const struct http_call *call,
                        struct http_answer *answer);
/* GET /api/v1/queue/messages/ID: one message and why it waits (scheduler_show); 404 when it is
 * not queued. */
void admin_api_message(struct scheduler *s, const struct http_call *call,
                       struct http_answer *answer);

#endif
