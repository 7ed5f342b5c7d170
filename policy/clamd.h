/*
 * Virus scanning with clamd's INSTREAM protocol (clamd(8)): "zINSTREAM\0", then the message in
 * chunks each preceded by its length as 4 octets in network order, a zero length at the end, and
 * one reply: "stream: OK" or "stream: <name> FOUND" (or "... ERROR"). The session streams the
 * message to clamd while DATA arrives, over a unix socket or TCP through libuv, and asks for the
 * verdict at the final dot; nothing here blocks the loop (a host name is resolved on the pool).
 */
#ifndef SLUICE_CLAMD_H
#define SLUICE_CLAMD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Bytes queued towards clamd above which clamd_scan_write asks the writer to wait. */
#define CLAMD_QUEUE_HIGH (1u << 20)
#define CLAMD_REPLY_MAX 256 /* octets of clamd's reply kept */

enum clamd_status {
    CLAMD_CLEAN,
    CLAMD_FOUND, /* see clamd_result.virus */
    CLAMD_ERROR, /* clamd could not be reached, failed, or timed out: see clamd_result.error */
};

struct clamd_result {
    enum clamd_status status;
    const char *virus; /* CLAMD_FOUND: the signature name, printable ASCII */
    const char *error; /* CLAMD_ERROR: what went wrong */
};

/* Called once the queue is below CLAMD_QUEUE_HIGH again after clamd_scan_write returned 1. */
typedef void (*clamd_writable_cb)(void *arg);
typedef void (*clamd_result_cb)(void *arg, const struct clamd_result *res);

struct clamd_scan;

/* Starts a scan: connects to `address` ("/path" of a unix socket, or "host:port", "[v6]:port").
 * `timeout_ms` bounds every wait on clamd (connecting, a write, the reply). Never fails: an error
 * is kept and reported by clamd_scan_finish. */
struct clamd_scan *clamd_scan_new(uv_loop_t *loop, const char *address, uint64_t timeout_ms,
                                  clamd_writable_cb on_writable, void *arg);
/* Queues the next `len` octets of the message (copied). Returns 1 when the caller should wait for
 * on_writable before writing more, else 0. After an error the data is dropped. */
int clamd_scan_write(struct clamd_scan *c, const char *data, size_t len);
/* Ends the message and waits for clamd's verdict; cb runs once, never from inside this call, with
 * a result that lives as long as the scan. */
void clamd_scan_finish(struct clamd_scan *c, clamd_result_cb cb, void *arg);
/* Ends the scan at any point; no callback runs afterwards. NULL is allowed. */
void clamd_scan_free(struct clamd_scan *c);

/* Parses one clamd reply for a stream ("stream: OK", "stream: Eicar-Test-Signature FOUND"),
 * trailing NUL/newline allowed, into *res (virus points into `name`, of size CLAMD_REPLY_MAX + 1).
 * Pure, for tests. */
void clamd_reply_parse(const char *reply, size_t len, char *name, struct clamd_result *res);

#endif
