/*
 * The consumers of a message body. While DATA arrives the SMTP session writes the same bytes to
 * every sink of its transaction (the spool, DKIM signing and verification, clamd, the attachment
 * check: smtp_sinks.c), stops reading while any sink asks it to wait, and at the final dot finishes
 * them one after the other in the order they were added. Each accepts, possibly adding header
 * fields or an Authentication-Results result for the front of the message, or refuses the message
 * with the reply to give. The spool's sink comes last and its finish is the commit, so the 250
 * still follows only once the message is durable. The set belongs to the transaction; loop only.
 */
#ifndef SLUICE_BODY_SINK_H
#define SLUICE_BODY_SINK_H

#include <stddef.h>

#include "lib/buf.h"
#include "policy/dmarc.h"
#include "policy/policy.h"

struct body_sink;
struct body_sinks;

/* What the sinks add to the front of the message as they finish; the spool's sink writes it. */
struct body_end {
    struct buf fields;       /* header fields (DKIM-Signature), each ending in CRLF, in order */
    struct buf results;      /* Authentication-Results results, each after ";\r\n\t" */
    const char *authserv_id; /* names us in Authentication-Results: server.hostname */
    struct dmarc_dkim_results dkim; /* what DKIM verification found, for DMARC after it */
};

/* Appends a new Authentication-Results result to `end` and returns the buffer to write it to. */
struct buf *body_end_result(struct body_end *end);
/* Appends what goes in front of the message: the fields, then one Authentication-Results field
 * (RFC 8601) when there are results. */
void body_end_front(const struct body_end *end, struct buf *out);

struct body_sink_ops {
    const char *name;
    /* 1: the sink takes the message as stored, our trace field (Received:) first; 0: as the
     * client sent it (decoded, forged Authentication-Results fields removed). */
    unsigned stored;
    /* Takes the next bytes (copied). Returns 1 when the writer should wait until the sink calls
     * body_sink_writable, else 0. */
    int (*write)(struct body_sink *sink, const char *data, size_t len);
    /* The message is complete: the sink calls body_sink_done exactly once, later or from inside
     * this call. `end` lives until the set is freed. */
    void (*finish)(struct body_sink *sink, struct body_end *end);
    /* Frees the sink at any point: before finish (the message is dropped), while it finishes (no
     * callback afterwards; work that cannot be cancelled ends on its own) or after done. */
    void (*free)(struct body_sink *sink);
};

/* Embedded at the start of each sink; the set fills it in. */
struct body_sink {
    const struct body_sink_ops *ops;
    struct body_sinks *set;
    struct body_sink *next;
    unsigned full : 1;      /* asked the writer to wait */
    unsigned finishing : 1; /* finish called, body_sink_done not yet */
    unsigned finished : 1;  /* body_sink_done called */
};

/* Called by a sink that asked the writer to wait and has room again. */
void body_sink_writable(struct body_sink *sink);
/* Called by a sink once after finish: d accepts (POLICY_ACCEPT) or refuses the message with its
 * reply; d's strings must live as long as the sink. The sink may be freed before this returns. */
void body_sink_done(struct body_sink *sink, const struct policy_decision *d);

/* The outcome of finishing: every sink accepted (`sink` is the last one) or `sink` refused. */
struct body_outcome {
    struct body_sink *sink;
    struct policy_decision decision;
};

/* No sink asks the writer to wait any more. */
typedef void (*body_sinks_writable_cb)(void *arg);
/* The outcome of a finish that did not end at once; the set is idle again. */
typedef void (*body_sinks_done_cb)(void *arg, const struct body_outcome *out);

struct body_sinks {
    struct body_sink *head, *tail;
    struct body_sink *current; /* finishing and not reported yet, else NULL */
    unsigned nfull;            /* sinks that asked the writer to wait */
    unsigned in_finish : 1;    /* inside a sink's finish call */
    struct body_outcome outcome;
    struct body_end end;
    body_sinks_writable_cb on_writable;
    body_sinks_done_cb on_done;
    void *arg;
};

void body_sinks_init(struct body_sinks *set, const char *authserv_id,
                     body_sinks_writable_cb on_writable, body_sinks_done_cb on_done, void *arg);
/* Appends a sink (the set owns it from now on): sinks finish in the order they were added. */
void body_sinks_add(struct body_sinks *set, struct body_sink *sink);
/* Writes the client's message to every sink. */
void body_sinks_write(struct body_sinks *set, const char *data, size_t len);
/* Writes a trace field of ours (Received:) to the sinks that take the message as stored. */
void body_sinks_write_trace(struct body_sinks *set, const char *data, size_t len);
/* 1 while some sink asks the writer to wait. */
int body_sinks_full(const struct body_sinks *set);
/* Finishes the sinks in order, stopping at the first refusal (the ones after it are never
 * finished). Returns 0 when the outcome is known at once (in *out), or 1 when a sink works on:
 * on_done follows, unless the set is freed first. */
int body_sinks_finish(struct body_sinks *set, struct body_outcome *out);
/* 1 between a body_sinks_finish that returned 1 and its on_done. */
int body_sinks_waiting(const struct body_sinks *set);
/* Frees every sink (no callback runs afterwards) and what the set holds. */
void body_sinks_free(struct body_sinks *set);

#endif
