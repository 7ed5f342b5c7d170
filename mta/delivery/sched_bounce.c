/*
 * An administrator bounces one queued message (`sluice queue bounce ID`, POST
 * /api/v1/queue/bounce?id=ID; scheduler.h): its jobs waiting at destinations come back and its
 * waiting recipients fail (msg_fail_waiting), so the sender gets a DSN. A message waiting on disk
 * beyond the active window is bounced when it is read back, which it is at once (sched_active.c).
 */
#include <errno.h>

#include "lib/log.h"
#include "mta/delivery/sched_int.h"

static int job_of_msg(const struct job *job, const void *arg)
{
    return job->msg == arg;
}

static void dest_return_msg(const char *key, void *value, void *arg)
{
    (void)key;
    dest_return_jobs(value, job_of_msg, arg);
}

int scheduler_bounce_message(struct scheduler *s, const char *id, struct buf *out)
{
    struct qmsg *m = strmap_get(&s->msgs, id);
    if (m == NULL || m->deleted) {
        int rc = sched_active_bounce(s, id, out);
        if (rc < 0)
            return rc;
    } else {
        strmap_each(&s->dests, dest_return_msg, m);
        strmap_each(&s->retired, dest_return_msg, m);
        msg_fail_waiting(m, SCHED_ADMIN_BOUNCE);
    }
    struct logrec r;
    log_begin(&r, LOG_WARN, "queue.bounced");
    log_str(&r, "queue_id", id);
    log_end(&r);
    buf_printf(out, "%s bounced\n", id);
    return 0;
}
