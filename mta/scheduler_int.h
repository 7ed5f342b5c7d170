/*
 * What destinations need to know of the scheduler's messages. Private to mta/scheduler.c and
 * mta/destination.c.
 */
#ifndef SLUICE_SCHEDULER_INT_H
#define SLUICE_SCHEDULER_INT_H

struct qmsg;

const char *scheduler_msg_id(const struct qmsg *m);
const char *scheduler_msg_sender(const struct qmsg *m);
const char *scheduler_msg_rcpt(const struct qmsg *m, size_t i);
unsigned scheduler_msg_flags(const struct qmsg *m);
/* A job split in two: the new part keeps the message in the queue until it is done too. */
void scheduler_msg_hold(struct qmsg *m);

#endif
