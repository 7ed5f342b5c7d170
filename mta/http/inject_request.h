/*
 * The body of POST /api/v1/inject (mta/http/api_inject.c), parsed: one message as a JSON object
 * {sender, recipients[], content, tenant?, campaign?, headers?{}} or a batch {"messages": [...]}.
 * Checks shapes only (types, the keys known, header names and values that cannot break the
 * message); addresses and policy are the injection's. Pure: the body is untrusted, unit tested
 * (tests/unit/test_inject_request.c) and fuzzed (tests/fuzz/fuzz_inject_request.c).
 */
#ifndef SLUICE_INJECT_REQUEST_H
#define SLUICE_INJECT_REQUEST_H

#include <stddef.h>

#include "lib/buf.h"

/* Messages in one request at most. */
#define INJECT_BATCH_MAX 1000
/* A campaign name or a header field's name is at most this long. */
#define INJECT_NAME_MAX 64

struct inject_field {
    char *name;  /* RFC 5322 field name: printable ASCII but ':' */
    char *value; /* no CR, LF or NUL: the injection folds nothing */
};

struct inject_message {
    char *sender; /* as given: "" is the null sender */
    char **rcpts; /* as given, at least one */
    size_t nrcpts;
    char *content; /* RFC 5322 text, line ends as given */
    size_t content_len;
    char *tenant;                /* NULL: not given */
    char *campaign;              /* NULL: not given */
    struct inject_field *fields; /* "headers", in the order given */
    size_t nfields;
};

struct inject_request {
    struct inject_message *msgs;
    size_t nmsgs;
    int batch; /* {"messages": [...]}: answered with a list */
};

/* Parses body[0..len). Returns 0 with *out filled, or -1 with what is wrong in err (naming where:
 * "messages[2].recipients[0]: not a string") and *out empty. */
int inject_request_parse(const char *body, size_t len, struct inject_request *out, struct buf *err);
void inject_request_free(struct inject_request *r);

#endif
