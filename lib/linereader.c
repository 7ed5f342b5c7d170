#include "lib/linereader.h"

#include <string.h>

void linereader_init(struct linereader *lr, size_t max)
{
    lr->max = max;
    lr->discarding = LINE_OK;
}

/* Remembers why the current line is being skipped; the first reason wins. */
static void start_discarding(struct linereader *lr, enum line_result why)
{
    if (lr->discarding == LINE_OK)
        lr->discarding = why;
}

enum line_result linereader_next(struct linereader *lr, const char *data, size_t len,
                                 const char **line, size_t *line_len, size_t *consumed)
{
    size_t start = 0; /* where the current line begins in data */
    *line = NULL;
    *line_len = 0;

    for (;;) {
        const char *lf = memchr(data + start, '\n', len - start);
        if (lf == NULL) {
            size_t have = len - start;
            if (lr->discarding != LINE_OK || have >= lr->max) {
                /* Drop what we have, but keep a trailing CR so a CRLF split across reads is seen.
                 */
                start_discarding(lr, LINE_TOO_LONG);
                *consumed = len > start && data[len - 1] == '\r' ? len - 1 : len;
                return LINE_NEED_MORE;
            }
            *consumed = start;
            return LINE_NEED_MORE;
        }
        size_t end = (size_t)(lf - data) + 1; /* just past the LF */
        size_t total = end - start;
        if (total < 2 || data[end - 2] != '\r') {
            /* A bare LF does not end the line: skip on to the CRLF that does. */
            start_discarding(lr, LINE_BAD_EOL);
            start = end;
            continue;
        }
        *consumed = end;
        if (lr->discarding != LINE_OK) {
            enum line_result why = lr->discarding;
            lr->discarding = LINE_OK;
            return why;
        }
        if (total > lr->max)
            return LINE_TOO_LONG;
        if (memchr(data + start, '\r', total - 2) != NULL)
            return LINE_BAD_EOL;
        *line = data + start;
        *line_len = total - 2;
        return LINE_OK;
    }
}
