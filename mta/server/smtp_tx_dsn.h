/*
 * The DSN request of one inbound transaction (RFC 3461): RET and ENVID from MAIL, NOTIFY and ORCPT
 * from each RCPT, checked with lib/smtp_dsn.h and kept until the message is spooled, where they
 * become the envelope's DSN records (spool/envelope.h). Embedded in struct smtp_tx, which owns it;
 * smtp_server_tx.c feeds it the parameters and the recipients it accepts.
 */
#ifndef SLUICE_SMTP_TX_DSN_H
#define SLUICE_SMTP_TX_DSN_H

#include <stddef.h>

#include "lib/smtp_cmd.h"
#include "spool/envelope.h"

struct smtp_tx_dsn {
    char *envid;           /* decoded ENVID, NULL when not given */
    unsigned ret;          /* SMTP_DSN_RET_*, 0 when not given */
    unsigned char *notify; /* per accepted recipient: SMTP_DSN_NOTIFY_* bits, 0 when not given */
    char **orcpt;          /* per accepted recipient: decoded ORCPT, or NULL */
    size_t nrcpts;
    unsigned next_notify; /* the RCPT being decided: its parameters until accepted */
    char *next_orcpt;
    struct envelope_dsn view; /* smtp_tx_dsn_view's result, pointing into the fields above */
};

/* One MAIL parameter: 1 when it was RET or ENVID and valid (kept), 0 when it is not a DSN
 * parameter, -1 when its value is bad or repeated (*why: the reply text). */
int smtp_tx_dsn_mail_param(struct smtp_tx_dsn *d, const struct smtp_param *p, const char **why);
/* A RCPT's parameters, before the recipient is decided: 1 when every one is a valid NOTIFY or
 * ORCPT (kept for smtp_tx_dsn_accept), 0 when one is something else (nothing kept), -1 when a
 * DSN value is bad (*why: the reply text). */
int smtp_tx_dsn_rcpt_params(struct smtp_tx_dsn *d, const struct smtp_path_args *args,
                            const char **why);
/* The same for a whole RCPT argument (after "RCPT "): when every parameter is a valid DSN one,
 * they are kept and cut off *arg, so the policy sees the path alone; other parameters stay for the
 * policy to refuse, and a syntax error is left to it too. Returns -1 when a DSN value is bad (*why:
 * the reply text, 501 5.5.4), else 0. */
int smtp_tx_dsn_rcpt_arg(struct smtp_tx_dsn *d, struct smtp_slice *arg, const char **why);
/* The recipient the last RCPT named was accepted as the nrcpts-th: it takes that RCPT's
 * parameters. `original`, when not NULL, is the address the client gave where a different one
 * is spooled (the postmaster's mailbox): it becomes the ORCPT unless the client sent one. */
void smtp_tx_dsn_accept(struct smtp_tx_dsn *d, const char *original);
/* The i-th accepted recipient was taken out again (a tenant's suppression list): its parameters
 * go too, and the later ones move down. */
void smtp_tx_dsn_remove(struct smtp_tx_dsn *d, size_t i);
/* The parameters for the spool envelope; NULL when the client gave none. Valid until the next
 * call on d. */
const struct envelope_dsn *smtp_tx_dsn_view(struct smtp_tx_dsn *d);
void smtp_tx_dsn_free(struct smtp_tx_dsn *d);

#endif
