/*
 * Reading the small line-oriented files the configuration names (relay.users, a domain's
 * recipients): one entry a line, blank lines and '#' comments skipped, each problem reported as
 * "file:line: message". Blocking: at start, reload and check-config only.
 */
#ifndef SLUICE_LINE_FILE_H
#define SLUICE_LINE_FILE_H

#include <stddef.h>

#include "lib/buf.h"

/* One entry: line[0..len) without its line end and surrounding blanks, NUL-terminated (the callee
 * may keep pointers into it only until it returns). Returns NULL, or what is wrong with it. */
typedef const char *(*line_file_entry_fn)(void *arg, const char *line, size_t len);

/* Reads `path` (`what` names it in the open error, e.g. "users file"). Returns 0, -EINVAL when
 * some lines were refused (each appended to err), -EIO on a read error, or -errno when the file
 * cannot be opened. The line buffer is wiped before it is freed: these files may hold secrets. */
int line_file_read(const char *path, const char *what, line_file_entry_fn entry, void *arg,
                   struct buf *err);

#endif
