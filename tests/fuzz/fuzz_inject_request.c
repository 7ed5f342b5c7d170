/*
 * Fuzzes the injection request's parser (mta/http/inject_request.h) with any body: it parses or is
 * refused with a message, never both; what it parses keeps to the promises the injection relies on
 * (at least one message and one recipient each, content non-empty with no NUL, header fields and
 * the campaign free of line breaks, header names without ':' or blanks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/http/inject_request.h"

static void check_text(const char *s)
{
    if (strchr(s, '\r') != NULL || strchr(s, '\n') != NULL)
        abort();
}

static void check_message(const struct inject_message *m)
{
    if (m->sender == NULL || m->nrcpts == 0 || m->content_len == 0 ||
        strlen(m->content) != m->content_len)
        abort();
    for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i] == NULL)
            abort();
    if (m->campaign != NULL) {
        check_text(m->campaign);
        if (strlen(m->campaign) == 0 || strlen(m->campaign) > INJECT_NAME_MAX)
            abort();
    }
    for (size_t i = 0; i < m->nfields; i++) {
        const char *name = m->fields[i].name;
        check_text(m->fields[i].value);
        if (name[0] == '\0' || strlen(name) > INJECT_NAME_MAX || strpbrk(name, ": \t") != NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inject_request r;
    struct buf err = BUF_INIT;
    int rc = inject_request_parse((const char *)data, size, &r, &err);
    if (rc == 0) {
        if (err.len != 0 || r.nmsgs == 0 || r.nmsgs > INJECT_BATCH_MAX ||
            (!r.batch && r.nmsgs != 1))
            abort();
        for (size_t i = 0; i < r.nmsgs; i++)
            check_message(&r.msgs[i]);
        inject_request_free(&r);
    } else if (rc != -1 || err.len == 0 || r.msgs != NULL) {
        abort();
    }
    buf_free(&err);
    return 0;
}
