/*
 * Fuzzes the parser of clamd's reply (what a broken or hostile clamd could send): the result must
 * be one of the three statuses, a found name non-empty printable ASCII within the cap, and an
 * error always has its text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/clamd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[CLAMD_REPLY_MAX + 1];
    struct clamd_result res;
    clamd_reply_parse((const char *)data, size, name, &res);
    switch (res.status) {
    case CLAMD_CLEAN:
        break;
    case CLAMD_FOUND: {
        size_t len = strlen(res.virus);
        if (len == 0 || len > CLAMD_REPLY_MAX)
            abort();
        for (size_t i = 0; i < len; i++)
            if (res.virus[i] < 0x20 || res.virus[i] >= 0x7f)
                abort();
        break;
    }
    case CLAMD_ERROR:
        if (res.error == NULL)
            abort();
        break;
    default:
        abort();
    }
    return 0;
}
