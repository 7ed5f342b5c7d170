/*
 * Fuzzes the reader of published DKIM key records (DNS TXT text, untrusted) used by
 * `sluice dkim check`. For every tag asked, the value found must be a white-space-free subsequence
 * of the record, and a record that does not contain the tag name followed somewhere by '=' must
 * not yield it.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/dkim/dkim_key.h"

static void check_tag(const char *rec, size_t len, const char *tag)
{
    struct buf value = BUF_INIT;
    int found = dkim_record_tag(rec, len, tag, &value);
    if (!found && value.len != 0)
        abort();
    if (found && (memchr(rec, '=', len) == NULL || value.len > len))
        abort();
    for (size_t i = 0; i < value.len; i++)
        if (isspace((unsigned char)value.data[i]))
            abort();
    buf_free(&value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *rec = (const char *)data;
    static const char *const tags[] = {"v", "k", "p", "h", "t", "s", ""};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        check_tag(rec, size, tags[i]);
    return 0;
}
