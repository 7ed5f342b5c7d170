/*
 * The manual pages sluice(8) (the commands, from the command table) and sluice.yaml(5) (every
 * configuration key, from the key table), so neither can drift from the program. Rendered as roff
 * for man (docs/man/, installed by `cmake --install` and the package) or as plain text for
 * `sluice help sluice` and `sluice help sluice.yaml` where man is not installed.
 */
#ifndef SLUICE_MANUAL_H
#define SLUICE_MANUAL_H

#include "lib/buf.h"

enum manual_format { MANUAL_TEXT, MANUAL_ROFF };

/* The page names `sluice help` knows, NULL-terminated. */
extern const char *const manual_pages[];

/* Appends the page called name ("sluice" or "sluice.yaml") in format to out. Returns 0, or
 * -ENOENT for a name that is no page. */
int manual_render(const char *name, enum manual_format format, struct buf *out);

#endif
