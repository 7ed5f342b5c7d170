/*
 * Fuzzes the control socket's request parser. A refused line must come with a reason; an accepted
 * one must yield a target that is a NUL-terminated word of printable ASCII within its buffer, a
 * duration within the cap, and must parse to the same request when rebuilt from its parts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/control.h"

/* In the order of enum control_verb. */
static const char *const verb_names[] = {"list",   "retry",        "delete", "suspend",
                                         "resume", "destinations", "status"};
#define NVERBS (sizeof verb_names / sizeof verb_names[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct control_request req, again;
    struct buf err = BUF_INIT;
    int rc = control_request_parse((const char *)data, size, &req, &err);
    if (rc != 0) {
        if (rc != -EINVAL || err.len == 0)
            abort();
        buf_free(&err);
        return 0;
    }
    size_t tlen = strnlen(req.target, sizeof(req.target));
    if (tlen == sizeof(req.target) || (unsigned)req.verb >= NVERBS)
        abort();
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)req.target[i] <= 0x20 || (unsigned char)req.target[i] >= 0x7f)
            abort();
    if (req.seconds > CONTROL_SUSPEND_MAX_S || (req.seconds != 0 && req.verb != CONTROL_SUSPEND))
        abort();
    if ((req.verb == CONTROL_LIST || req.verb == CONTROL_STATUS) && tlen != 0)
        abort(); /* no target; destinations may have one */
    if (req.verb != CONTROL_LIST && req.verb != CONTROL_STATUS &&
        req.verb != CONTROL_DESTINATIONS && tlen == 0)
        abort();
    struct buf line = BUF_INIT;
    buf_printf(&line, "%s", verb_names[req.verb]);
    if (tlen > 0)
        buf_printf(&line, " %s", req.target);
    if (req.seconds != 0)
        buf_printf(&line, " %us", (unsigned)req.seconds);
    if (control_request_parse(line.data, line.len, &again, &err) != 0 || again.verb != req.verb ||
        strcmp(again.target, req.target) != 0 || again.seconds != req.seconds)
        abort();
    buf_free(&line);
    buf_free(&err);
    return 0;
}
