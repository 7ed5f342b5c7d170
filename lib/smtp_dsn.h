/*
 * The DSN extension's parameters (RFC 3461): NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL, and
 * the xtext encoding (§4) their free-form values travel in. Parses and checks the values the SMTP
 * server receives, and encodes them again for the next hop. No I/O; results go into the caller's
 * buffers, every length capped by the RFC before anything is copied.
 */
#ifndef SLUICE_SMTP_DSN_H
#define SLUICE_SMTP_DSN_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/smtp_cmd.h"

/* RFC 3461 §4.2: an ORCPT value is at most 500 characters; §4.4: an ENVID at most 100. */
#define SMTP_DSN_ORCPT_MAX 500
#define SMTP_DSN_ENVID_MAX 100

/* NOTIFY (§4.1) as bits; 0: not given (the receiver's default: failures, maybe delays). */
enum smtp_dsn_notify {
    SMTP_DSN_NOTIFY_NEVER = 1u << 0,
    SMTP_DSN_NOTIFY_SUCCESS = 1u << 1,
    SMTP_DSN_NOTIFY_FAILURE = 1u << 2,
    SMTP_DSN_NOTIFY_DELAY = 1u << 3,
};

/* RET (§4.3); NONE: not given. */
enum smtp_dsn_ret {
    SMTP_DSN_RET_NONE = 0,
    SMTP_DSN_RET_FULL,
    SMTP_DSN_RET_HDRS,
};

/* 1 when p is one of RCPT's DSN parameters (NOTIFY or ORCPT, with a value), else 0. */
int smtp_dsn_is_rcpt_param(const struct smtp_param *p);

/* "NEVER", or a comma list of SUCCESS, FAILURE and DELAY, each at most once (any case). Returns
 * the bits, or -EINVAL (empty, unknown word, repeated word, NEVER combined with another). */
int smtp_dsn_notify_parse(struct smtp_slice value);
/* Writes "NEVER" or the list, in the order SUCCESS,FAILURE,DELAY; nothing for 0. */
void smtp_dsn_notify_format(unsigned notify, struct buf *out);

/* "FULL" or "HDRS" (any case). Returns the value, or -EINVAL. */
int smtp_dsn_ret_parse(struct smtp_slice value);

/* Appends the xtext-decoded value to out (NUL-terminated, the NUL not counted in out->len).
 * Returns 0, or -EINVAL for an octet outside "!".."~", a '=', a '+' not followed by two upper-case
 * hex digits, or a decoded octet that is not printable ASCII (out is then unchanged). */
int smtp_xtext_decode(struct smtp_slice value, struct buf *out);
/* Appends text as xtext: '+', '=' and octets outside "!".."~" become "+XX". */
void smtp_xtext_encode(const char *text, size_t len, struct buf *out);

/* ENVID: xtext of at most SMTP_DSN_ENVID_MAX characters; appends it decoded. 0 or -EINVAL. */
int smtp_dsn_envid_parse(struct smtp_slice value, struct buf *out);
/* ORCPT: "addr-type;xtext" of at most SMTP_DSN_ORCPT_MAX characters, addr-type an atom; appends
 * "addr-type;decoded-address" with the type as sent. 0 or -EINVAL. */
int smtp_dsn_orcpt_parse(struct smtp_slice value, struct buf *out);

#endif
