/*
 * Line-oriented configuration files (see line_file.h).
 */
#include "lib/line_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int line_file_read(const char *path, const char *what, line_file_entry_fn entry, void *arg,
                   struct buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        buf_printf(err, "%s: cannot open %s: %s\n", path, what, strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    int problems = 0;
    while ((n = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        char *s = line;
        size_t len = (size_t)n;
        while (len > 0 && is_blank(s[len - 1]))
            len--;
        while (len > 0 && is_blank(*s)) {
            s++;
            len--;
        }
        s[len] = '\0';
        if (len == 0 || s[0] == '#')
            continue;
        const char *why = entry(arg, s, len);
        if (why != NULL) {
            buf_printf(err, "%s:%u: %s\n", path, lineno, why);
            problems++;
        }
    }
    int read_error = ferror(f);
    fclose(f);
    if (line != NULL) {
        explicit_bzero(line, line_cap);
        free(line);
    }
    if (read_error) {
        buf_printf(err, "%s: read error\n", path);
        return -EIO;
    }
    return problems ? -EINVAL : 0;
}
