/*
 * A whole message from a sender we relay for, handed over at once rather than streamed over SMTP
 * (the HTTP injection, mta/http/api_inject.c): it takes the VERP return path, our Received field
 * and the trace (X-Sluice-Trace, Feedback-ID, the campaign from X-Sluice-Campaign), goes through
 * the same body sinks as SMTP's DATA (the checks, DKIM signing, then the spool: smtp_sinks.h) and,
 * once durable, to the scheduler. The caller has decided the recipients; this is the way from
 * there to the commit. Loop only.
 */
#ifndef SLUICE_SUBMIT_H
#define SLUICE_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "policy/policy.h"
#include "spool/spool.h"

struct smtp_server;
struct submit;

struct submit_message {
    const char *sender;       /* canonical, "" for the null sender */
    const char *const *rcpts; /* canonical, accepted */
    size_t nrcpts;
    const char *auth_user; /* who submits it: the tenant of the trace */
    const char *client;    /* its address as text */
    const char *listener;  /* the name its envelope, log and metrics carry: "http" */
    const char *protocol;  /* the Received field's "with": "HTTP" */
    unsigned flags;        /* SPOOL_ENV_* */
    const char *text;      /* the message, CRLF line ends, ending in CRLF */
    size_t len;
};

/* What became of it: d accepts (the message is durable as queue_id, size bytes, its return path
 * `sender`, VERP or as given) or refuses with its reply. The strings live until submit_free. */
struct submit_outcome {
    const struct policy_decision *d;
    const char *queue_id;
    const char *sender;
    uint64_t size;
};

typedef void (*submit_done_cb)(void *arg, const struct submit_outcome *out);

/* Starts storing m (copied) under cfg, which must outlive it. Returns the submission, whose done
 * follows (never from inside this call), or NULL with the reply in *refused when it is refused at
 * once (the spool could not start a message, a check refused it). */
struct submit *submit_start(struct smtp_server *srv, const struct config *cfg,
                            const struct submit_message *m, submit_done_cb done, void *arg,
                            struct policy_decision *refused);
/* Frees it: before done, the message is rolled back, or if already committing, delivered
 * unacknowledged (as a session that left while the commit ran). */
void submit_free(struct submit *s);

/* Relayed mail's VERP return path, bounce+TRACE@feedback.verp_domain made from the queue id:
 * sets it in msg's envelope (env as given to spool_msg_new, its sender replaced) and writes it to
 * out. Returns 1 when it did, 0 when the sender stays (no verp_domain, the null sender). */
int submit_verp(const struct config *cfg, const char *queue_id, struct spool_msg *msg,
                struct spool_envelope *env, char *out, size_t size);

#endif
