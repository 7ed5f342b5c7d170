/*
 * Loading a configuration from text for the config unit tests (test_config*.c): load returns
 * config_load_string's result with the errors in err; load_good expects no error and prints the
 * errors when there are some; minute_ms and hour_ms for durations.
 */
#ifndef SLUICE_TEST_CONFIG_LOAD_H
#define SLUICE_TEST_CONFIG_LOAD_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "tests/unit/check.h"

static const uint64_t minute_ms = 60 * 1000, hour_ms = 3600 * 1000;

static inline int load(const char *text, struct config **cfg, struct buf *err)
{
    buf_reset(err);
    *cfg = NULL;
    return config_load_string(text, strlen(text), "t.yaml", cfg, err);
}

/* Loads text that must be valid; prints the errors when it is not. */
static inline struct config *load_good(const char *text)
{
    struct buf err = BUF_INIT;
    struct config *cfg;
    int rc = load(text, &cfg, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "unexpected errors for:\n%s---\n%.*s", text, (int)err.len, err.data);
    buf_free(&err);
    return rc == 0 ? cfg : NULL;
}

#endif
