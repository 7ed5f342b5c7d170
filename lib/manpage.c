/*
 * roff escaping and plain-text wrapping for the manual pages (see manpage.h).
 */
#include "lib/manpage.h"

#include <string.h>

void manpage_roff(struct buf *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int line_start = i == 0 || text[i - 1] == '\n';
        if (line_start && (text[i] == '.' || text[i] == '\''))
            buf_append_str(out, "\\&");
        if (text[i] == '\\')
            buf_append_str(out, "\\e");
        else if (text[i] == '-')
            buf_append_str(out, "\\-");
        else
            buf_append(out, &text[i], 1);
    }
}

void manpage_roff_str(struct buf *out, const char *text)
{
    manpage_roff(out, text, strlen(text));
}

void manpage_wrap(struct buf *out, const char *text, int indent, int width)
{
    int col = 0;
    for (const char *p = text; *p != '\0';) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        if (col > 0 && col + 1 + (int)len > width) {
            buf_append_str(out, "\n");
            col = 0;
        }
        if (col == 0) {
            buf_printf(out, "%*s", indent, "");
            col = indent;
        } else {
            buf_append_str(out, " ");
            col++;
        }
        buf_append(out, p, len);
        col += (int)len;
        p += len;
    }
    if (col > 0)
        buf_append_str(out, "\n");
}
