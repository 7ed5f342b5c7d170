/*
 * A header-named tenant's suppression list, read at the end of the header section (see
 * smtp_tx_suppress.h), for every recipient in one batch. Each recipient's answer goes through the
 * same decision as RCPT's (rcpt_policy_suppressed), so the entry's text and the tenant's action are
 * RCPT's.
 */
#include "mta/server/smtp_tx_suppress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "policy/relay.h"
#include "policy/suppression.h"

struct smtp_tx_suppress {
    struct smtp_session *s;
    char *tenant;
    smtp_tx_suppress_cb cb;
    struct suppression_batch *batch; /* the read of every recipient; NULL once answered */
    size_t n;                        /* recipients of s->tx when started */
    struct rcpt_decision refusal;    /* its d, when refused */
    unsigned refused : 1;
};

void smtp_log_suppressed(const struct smtp_session *s, const char *tenant,
                         const struct rcpt_decision *r, const char *stage)
{
    struct logrec rec;
    log_begin(&rec, LOG_INFO, "suppression.hit");
    log_int(&rec, "session", (long long)s->id);
    log_str(&rec, "tenant", tenant);
    log_str(&rec, "address", r->addr);
    log_str(&rec, "listed", r->suppressed_tenant[0] != '\0' ? "tenant" : "global");
    log_str(&rec, "source", r->suppressed_by);
    log_str(&rec, "added", r->suppressed_on);
    log_str(&rec, "action", r->outcome == RCPT_DROP ? "drop" : "reject");
    log_str(&rec, "stage", stage);
    log_end(&rec);
}

/* Takes recipient i out of the transaction, with its DSN parameters. */
static void tx_rcpt_remove(struct smtp_tx *tx, size_t i)
{
    free(tx->rcpts[i]);
    memmove(&tx->rcpts[i], &tx->rcpts[i + 1], (tx->nrcpts - i - 1) * sizeof *tx->rcpts);
    tx->nrcpts--;
    smtp_tx_dsn_remove(&tx->dsn, i);
}

/* The answers, in the order of the recipients (NULL: the list cannot be read now): a suppressed
 * one leaves; the first refusal owed (the list unreadable, or every recipient refused) is kept
 * for the end of the message. */
static void answers_apply(struct smtp_tx_suppress *c, const struct suppression_answer *answers)
{
    struct smtp_session *s = c->s;
    struct smtp_tx *tx = s->tx;
    struct rcpt_facts f = {.cfg = s->cfg, .tenant = c->tenant};
    size_t kept = 0, refused = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct rcpt_decision r = {.outcome = RCPT_NEED_SUPPRESSION};
        snprintf(r.addr, sizeof r.addr, "%s", tx->rcpts[kept]);
        if (answers != NULL)
            rcpt_policy_suppressed(&f, answers[i].found, answers[i].entry, &r);
        else
            rcpt_policy_suppressed(&f, -EAGAIN, NULL, &r);
        if (r.outcome == RCPT_ACCEPT) {
            kept++;
            continue;
        }
        if (r.suppressed_by == NULL) { /* the list could not be read: 451, as RCPT would */
            if (!c->refused)
                c->refusal = r, c->refused = 1;
            kept++;
            continue;
        }
        smtp_log_suppressed(s, c->tenant, &r, "data");
        tx_rcpt_remove(tx, kept);
        if (r.outcome == RCPT_DROP) {
            tx->nrcpts_dropped++;
        } else if (refused++ == 0 && !c->refused) {
            c->refusal = r; /* owed only if no recipient is left */
        }
    }
    if (refused > 0 && tx->nrcpts == 0)
        c->refused = 1;
    /* d.text may point into the decision itself: it moved with the copy. */
    if (c->refused && c->refusal.suppressed_by != NULL)
        c->refusal.d.text = c->refusal.text;
}

static void tx_on_answers(void *arg, const struct suppression_answer *answers, size_t n)
{
    struct smtp_tx_suppress *c = arg;
    (void)n; /* c->n */
    c->batch = NULL;
    answers_apply(c, answers);
    c->cb(c->s);
}

/* Whether the list applies: what RCPT's suppression stage asks, for a tenant RCPT did not know. */
static int tenant_list_applies(const struct smtp_session *s, const char *tenant)
{
    return tenant != NULL && tenant[0] != '\0' && s->auth_user == NULL &&
           s->srv->suppression != NULL && s->cfg->suppression.enabled && !s->inbound &&
           policy_relay_authorized(s->cfg, s->listener, (const struct sockaddr *)&s->peer, NULL)
                   .verdict == POLICY_ACCEPT;
}

struct smtp_tx_suppress *smtp_tx_suppress_start(struct smtp_session *s, const char *tenant,
                                                smtp_tx_suppress_cb cb)
{
    struct smtp_tx *tx = s->tx;
    if (!tenant_list_applies(s, tenant) || tx->nrcpts == 0)
        return NULL;
    struct smtp_tx_suppress *c = xcalloc(1, sizeof *c);
    c->s = s;
    c->tenant = xstrdup(tenant);
    c->cb = cb;
    c->n = tx->nrcpts;
    c->batch = suppression_batch_start(s->srv->suppression, tenant, (const char *const *)tx->rcpts,
                                       c->n, time(NULL), tx_on_answers, c);
    if (c->batch == NULL) /* it could not be queued: answered now, cb does not run */
        answers_apply(c, NULL);
    return c;
}

int smtp_tx_suppress_pending(const struct smtp_tx_suppress *c)
{
    return c != NULL && c->batch != NULL;
}

const struct policy_decision *smtp_tx_suppress_refusal(const struct smtp_tx_suppress *c)
{
    return c != NULL && c->refused ? &c->refusal.d : NULL;
}

void smtp_tx_suppress_free(struct smtp_tx_suppress *c)
{
    if (c == NULL)
        return;
    suppression_batch_cancel(c->batch);
    free(c->tenant);
    free(c);
}
