/*
 * The control socket: the admin interface of a running daemon, which `sluice queue` talks to. A
 * unix-domain socket at <spool>/control (mode 0600) takes one request line per connection, passes
 * it to a table of handlers the daemon fills (the scheduler's functions), answers "ok" or
 * "error: <reason>" and the handler's payload, then closes. This module knows nothing of the
 * queue; it owns the socket, its connections and the request syntax. Both ends live here: the
 * daemon side on the loop, and a blocking client for the command line.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"

/* A request line is at most this long, its newline included. */
#define CONTROL_REQUEST_MAX 1024
/* Connections served at once; more get "error: too many control connections" and are closed. */
#define CONTROL_MAX_CONNS 8
/* A client that has not sent its whole request (or taken its answer) in this time is dropped. */
#define CONTROL_IDLE_TIMEOUT_MS 5000
/* The longest `suspend DEST DURATION`: 30 days. */
#define CONTROL_SUSPEND_MAX_S (30 * 86400)

/* An answer the handler gives later (see CONTROL_LATER). */
struct control_later;
/* Returned by list when it answers later, once messages on disk are read: it keeps later and calls
 * control_later_done exactly once, on the loop. */
#define CONTROL_LATER 1

/* What the daemon does for each request. Each handler appends its payload (or, on failure, a
 * one-line reason) to out and returns 0 or a negative errno (-ENOENT: no such message or
 * destination). arg is the one given to control_open. */
struct control_handlers {
    /* JSON: a page of at most limit messages whose queue id sorts after `after` ("": the first) */
    int (*list)(void *arg, const char *after, unsigned limit, struct buf *out,
                struct control_later *later);
    int (*retry)(void *arg, const char *id, struct buf *out); /* id may be "all" */
    int (*delete)(void *arg, const char *id, struct buf *out);
    /* seconds 0: until resumed */
    int (*suspend)(void *arg, const char *destination, uint32_t seconds, struct buf *out);
    int (*resume)(void *arg, const char *destination, struct buf *out);
    /* Text: what holds each destination back (destination "": every one). */
    int (*destinations)(void *arg, const char *destination, struct buf *out);
    int (*status)(void *arg, struct buf *out); /* JSON, see mta/http/status.h */
    /* A tenant's mail (campaign "": all of it) held, or released. */
    int (*suspend_tenant)(void *arg, const char *tenant, const char *campaign, struct buf *out);
    int (*resume_tenant)(void *arg, const char *tenant, const char *campaign, struct buf *out);
    /* The waiting mail for a destination and of a tenant and campaign (each "": any, not all
     * three), with DSNs; the answer says what starts (scheduler_bounce_selected). */
    int (*bounce_selected)(void *arg, const char *destination, const char *tenant,
                           const char *campaign, struct buf *out);
    int (*bounce)(void *arg, const char *id, struct buf *out); /* one message, with a DSN */
    /* Text: the TLS reports held (RFC 8460), sent now; a line per policy domain and day. */
    int (*tls_rpt_send)(void *arg, struct buf *out);
};

enum control_verb {
    CONTROL_LIST,
    CONTROL_RETRY,
    CONTROL_DELETE,
    CONTROL_SUSPEND,
    CONTROL_RESUME,
    CONTROL_DESTINATIONS,
    CONTROL_STATUS,
    CONTROL_SUSPEND_TENANT,
    CONTROL_RESUME_TENANT,
    CONTROL_BOUNCE_TENANT,
    CONTROL_BOUNCE,
    CONTROL_BOUNCE_DESTINATION,
    CONTROL_TLS_RPT_SEND,
};

/* The largest page of a list request, and the page when none is asked for. */
#define CONTROL_PAGE_MAX 1000

/* A parsed request; target is a copy, NUL-terminated (list: the queue id to list after, or ""). */
struct control_request {
    enum control_verb verb;
    char target[256];
    uint32_t seconds;   /* suspend only; 0 when no duration was given */
    unsigned limit;     /* list only: the page size */
    char tenant[256];   /* bounce-destination only: "" when none was given */
    char campaign[256]; /* the -tenant requests and bounce-destination: "" when none was given */
};

/* Parses one request line (without its line end): "list [LIMIT [AFTER-ID]]", "retry ID|all",
 * "delete ID", "suspend DEST [DURATION]" (DURATION: N, Ns, Nm, Nh or Nd), "resume DEST",
 * "destinations [DEST]", "status", "suspend-tenant TENANT [CAMPAIGN]",
 * "resume-tenant TENANT [CAMPAIGN]", "bounce-tenant TENANT [CAMPAIGN]", "bounce ID",
 * "bounce-destination DEST [TENANT [CAMPAIGN]]", "tls-rpt-send". Returns 0, or -EINVAL with the
 * reason in err. Pure; the input is untrusted. */
int control_request_parse(const char *line, size_t len, struct control_request *req,
                          struct buf *err);

/* Writes "<spool>/control" to path. Returns 0, or -ENAMETOOLONG with the reason in err when it
 * does not fit a unix socket address. */
int control_socket_path(const char *spool, struct buf *path, struct buf *err);

struct control;

/* Listens on path (see control_socket_path). A stale socket left by a dead daemon is removed
 * first; when another daemon answers on it, fails with -EADDRINUSE. Synchronous: call at start.
 * handlers (copied) and arg must stay valid until control_close. Returns 0 or -errno with the
 * reason in err; after a failure the loop must still run once to free what was opened. */
int control_open(uv_loop_t *loop, const char *path, const struct control_handlers *handlers,
                 void *arg, struct control **out, struct buf *err);
/* The answer of a handler that returned CONTROL_LATER: status and payload as a handler's return
 * value and out. The connection may have gone meanwhile: then nothing is sent. Frees later. */
void control_later_done(struct control_later *later, int status, const struct buf *payload);
/* Or the answer a piece at a time as the handler makes it: the next bytes of the payload (the
 * first put sends "ok"), then control_later_done with status 0 (an empty payload) to end it, or
 * with an error, which closes the connection on a payload cut short. Nothing is sent once the
 * connection has gone. */
void control_later_put(struct control_later *later, const char *data, size_t len);
/* 1 when the client has not taken enough of what was put: the handler waits until wake(arg) is
 * called, once (also when the connection goes). 0: put on. */
int control_later_full(struct control_later *later, void (*wake)(void *arg), void *arg);
/* Shortens the idle timeout (tests). */
void control_set_idle_timeout(struct control *c, uint64_t ms);
/* Stops listening, drops open connections and removes the socket file. The memory is freed once
 * every handle has closed, so the loop must run afterwards. NULL is fine. */
void control_close(struct control *c);

/* The client: sends request (one line, without its newline) to the daemon at path and reads the
 * whole answer into answer. Blocking, with timeout_ms for the whole exchange: for the command
 * line, never for the loop. Returns 0 when an answer came (whatever it says), -ENOENT or
 * -ECONNREFUSED when no daemon listens, another -errno on failure; the reason is in err. */
int control_call(const char *path, const char *request, int timeout_ms, struct buf *answer,
                 struct buf *err);

#endif
