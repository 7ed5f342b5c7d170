/*
 * Loading the configuration for a command: from the file given with -c, or the embedded default,
 * then through the relay lint, so no command (run, reload, check-config) can use a configuration
 * that relays for strangers unless the file acknowledges it.
 */
#ifndef SLUICE_CONFIG_LOAD_H
#define SLUICE_CONFIG_LOAD_H

#include "lib/buf.h"
#include "lib/config.h"

/* Returns the configuration, or NULL after writing "file:line:column: message" lines into err. */
struct config *config_load_for_command(const char *path, struct buf *err);

#endif
