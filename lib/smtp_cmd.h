/*
 * SMTP command line parsing (RFC 5321 §4.1). Turns one command line (CRLF already removed) into a
 * verb and its argument, and splits MAIL/RCPT arguments into the path and ESMTP parameters.
 * No I/O and no allocation: every result is a slice borrowed from the caller's line, valid while
 * the line is.
 */
#ifndef SLUICE_SMTP_CMD_H
#define SLUICE_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* Most ESMTP parameters one MAIL or RCPT may carry; more is a syntax error. */
#define SMTP_PARAMS_MAX 16

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
};

struct smtp_slice {
    const char *ptr;
    size_t len;
};

struct smtp_cmd {
    enum smtp_verb verb;
    struct smtp_slice verb_text; /* the verb as sent */
    struct smtp_slice arg; /* everything after the verb and one or more spaces; may be empty */
};

struct smtp_param {
    struct smtp_slice key;   /* esmtp-keyword, e.g. "SIZE" */
    struct smtp_slice value; /* esmtp-value; len 0 and ptr NULL when the parameter has no "=" */
};

struct smtp_path_args {
    struct smtp_slice path; /* "<...>" including the angle brackets */
    struct smtp_param params[SMTP_PARAMS_MAX];
    size_t nparams;
};

/* Splits a command line into verb and argument. The verb is matched case-insensitively; an unknown
 * verb gives SMTP_VERB_UNKNOWN (not an error). Returns 0, or -EINVAL for a line with NUL or other
 * control bytes, or no verb at all. */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

/* Parses the argument of MAIL ("FROM:") or RCPT ("TO:"): `prefix` is matched case-insensitively and
 * may be followed by spaces before the path (a common client deviation we accept). Parameters are
 * separated by single or multiple spaces; each key must be an esmtp-keyword and each value an
 * esmtp-value (RFC 5321 §4.1.2; UTF-8 allowed in values, RFC 6531). Returns 0, -EINVAL on syntax
 * errors, -E2BIG when there are more than SMTP_PARAMS_MAX parameters. */
int smtp_cmd_parse_path_args(struct smtp_slice arg, const char *prefix, struct smtp_path_args *out);

/* Parses the argument of BDAT (RFC 3030 §2): chunk-size (1*DIGIT, at most 2^64 - 1) and an
 * optional end-marker "LAST" (any case) after spaces. Returns 0, or -EINVAL for anything else. */
int smtp_cmd_parse_bdat(struct smtp_slice arg, uint64_t *size, int *last);

/* Case-insensitive find of a parameter by key; NULL when absent. */
const struct smtp_param *smtp_param_find(const struct smtp_path_args *args, const char *key);

#endif
