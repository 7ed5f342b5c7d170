/*
 * Inbound SMTP: what a session does before its banner (smtp_greet.c): the connect-time checks
 * whose results RCPT weighs later. Part of the session: called by smtp_server.c.
 */
#ifndef SLUICE_SMTP_GREET_H
#define SLUICE_SMTP_GREET_H

struct smtp_session;

/* Sends the banner, or for an inbound session first starts the connect-time checks and waits
 * (pregreet test, DNSBL and reverse DNS answers). */
void smtp_greet_start(struct smtp_session *s);
/* The session is closing: cancels the lookups in flight. */
void smtp_greet_close(struct smtp_session *s);

#endif
