/*
 * Fuzzes what a stranger sends to our feedback addresses: the report reader (report.h) on the
 * whole input, and the trace reader (trace.h) on the trace it found and on the input itself.
 * Every field must stay NUL-terminated within its cap, and a trace must never verify unless it
 * was made with our key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/feedback/report.h"

static const struct config_trace_key key = {.id = "k1", .secret = "fuzzing secret, 16+"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feedback_report r;
    report_parse((const char *)data, size, &r);
    const char *fields[] = {r.provider, r.feedback_type, r.source_ip, r.sender,
                            r.subject,  r.recipient,     r.status};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strlen(fields[i]) > REPORT_FIELD_MAX)
            abort();
    if (strlen(r.trace) > TRACE_TOKEN_MAX || r.format == NULL)
        abort();
    struct trace_fields f;
    if (trace_verify(&key, 1, r.trace, strlen(r.trace), &f) == TRACE_VALID ||
        trace_verify(&key, 1, (const char *)data, size, &f) == TRACE_VALID)
        abort(); /* no seed is signed with this key */
    if (strlen(f.tenant) > TRACE_NAME_MAX || strlen(f.campaign) > TRACE_NAME_MAX)
        abort();
    return 0;
}
