/*
 * Pipelined RCPTs' suppression answers, read ahead (smtp_rcpt_ahead.h). The lines are parsed and
 * decided here only to learn which addresses to read: what the client is answered comes from
 * the RCPT's own dispatch later, which takes an answer only for the same address.
 */
#include "mta/server/smtp_rcpt_ahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mta/server/smtp_tx_dsn.h"

struct ahead_answer {
    char *addr;
    int found;                       /* as suppression_check returns it; -EAGAIN until read */
    struct suppression_entry *entry; /* when found is 1 */
};

struct rcpt_ahead {
    struct ahead_answer *a;
    size_t n, next; /* next: the one the next RCPT may take */
};

/* The next complete command line of *in (without its CRLF), consumed; 0 when there is none (a
 * partial, over-long or bare-LF line ends the look-ahead: the line reader will answer it). */
static int next_line(struct smtp_slice *in, struct smtp_slice *line)
{
    const char *nl = memchr(in->ptr, '\n', in->len);
    if (nl == NULL || nl == in->ptr || nl[-1] != '\r' ||
        (size_t)(nl + 1 - in->ptr) > SMTP_CMD_LINE_MAX)
        return 0;
    *line = (struct smtp_slice){in->ptr, (size_t)(nl - 1 - in->ptr)};
    in->len -= (size_t)(nl + 1 - in->ptr);
    in->ptr = nl + 1;
    return 1;
}

struct rcpt_ahead *rcpt_ahead_scan(struct smtp_slice input, const struct rcpt_facts *f, size_t max)
{
    struct rcpt_ahead *a = NULL;
    struct rcpt_facts next = *f;
    struct smtp_slice line;
    struct rcpt_decision *r = xmalloc(sizeof *r);
    for (size_t k = 0; k < max && next_line(&input, &line); k++) {
        struct smtp_cmd cmd;
        if (smtp_cmd_parse(line.ptr, line.len, &cmd) < 0 || cmd.verb != SMTP_VERB_RCPT)
            break;
        struct smtp_tx_dsn scratch = {0}; /* the DSN parameters, cut off as RCPT does */
        const char *why;
        int bad = smtp_tx_dsn_rcpt_arg(&scratch, &cmd.arg, &why) < 0;
        smtp_tx_dsn_free(&scratch);
        next.nrcpts++; /* the ones before, as if accepted */
        if (bad)
            continue;
        rcpt_policy_decide(&next, cmd.arg, r);
        if (r->outcome != RCPT_NEED_SUPPRESSION)
            continue;
        if (a == NULL)
            a = xcalloc(1, sizeof *a);
        a->a = xrealloc(a->a, (a->n + 1) * sizeof *a->a);
        a->a[a->n++] = (struct ahead_answer){.addr = xstrdup(r->addr), .found = -EAGAIN};
    }
    free(r);
    return a;
}

size_t rcpt_ahead_count(const struct rcpt_ahead *a)
{
    return a != NULL ? a->n : 0;
}

const char *rcpt_ahead_address(const struct rcpt_ahead *a, size_t i)
{
    return a->a[i].addr;
}

void rcpt_ahead_answered(struct rcpt_ahead *a, const struct suppression_answer *answers)
{
    for (size_t i = 0; i < a->n; i++) {
        a->a[i].found = answers[i].found;
        if (answers[i].entry != NULL) {
            a->a[i].entry = xmalloc(sizeof *a->a[i].entry);
            *a->a[i].entry = *answers[i].entry;
        }
    }
}

int rcpt_ahead_take(struct rcpt_ahead *a, const char *addr, int *found,
                    const struct suppression_entry **e)
{
    if (a == NULL || a->next >= a->n || strcmp(a->a[a->next].addr, addr) != 0) {
        if (a != NULL)
            a->next = a->n; /* out of step: the rest serves nobody */
        return 0;
    }
    *found = a->a[a->next].found;
    *e = a->a[a->next].entry;
    a->next++;
    return 1;
}

void rcpt_ahead_free(struct rcpt_ahead *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->a[i].addr);
        free(a->a[i].entry);
    }
    free(a->a);
    free(a);
}
