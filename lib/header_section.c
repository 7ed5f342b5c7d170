/*
 * A message's header section, collected from a stream (see header_section.h).
 */
#include "lib/header_section.h"

#include <string.h>

enum header_section_state header_section_feed(struct header_section *hs, const char *data,
                                              size_t len)
{
    if (hs->data.len + len > HEADER_SECTION_MAX)
        return HEADER_SECTION_TOO_BIG;
    buf_append(&hs->data, data, len);
    while (hs->scan < hs->data.len) {
        const char *line = hs->data.data + hs->scan;
        const char *nl = memchr(line, '\n', hs->data.len - hs->scan);
        if (nl == NULL)
            return HEADER_SECTION_MORE;
        size_t line_len = (size_t)(nl - line) + 1;
        if (line_len == 1 || (line_len == 2 && line[0] == '\r')) {
            hs->fields = hs->scan;
            hs->body = hs->scan + line_len;
            return HEADER_SECTION_COMPLETE;
        }
        hs->scan += line_len;
    }
    return HEADER_SECTION_MORE;
}

void header_section_end(struct header_section *hs)
{
    hs->fields = hs->body = hs->data.len;
}

void header_section_free(struct header_section *hs)
{
    buf_free(&hs->data);
}

size_t header_field_end(const char *h, size_t at, size_t end)
{
    size_t next = at;

    do {
        const char *nl = memchr(h + next, '\n', end - next);
        next = nl != NULL ? (size_t)(nl - h) + 1 : end;
    } while (next < end && (h[next] == ' ' || h[next] == '\t'));
    return next;
}
